//! `amber run` / `amber container run`.

use crate::cli::client::Client;
use crate::cli::stream;

use super::attach::{self, Wiring};
use super::container_opts::CreateOpts;
use super::create::{self, ENGINE_ERROR};

/// Create and run a new container from an image.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// The flags `create` and `run` share, then IMAGE [COMMAND...].
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// Run it: the container's exit code, or 125/126/127 as Docker's.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let o = &args.opts;
    if let Err(e) = o.validate(args.detach) {
        eprintln!("amber: {e}");
        return Ok(ENGINE_ERROR);
    }
    let console = if o.tty { stream::terminal_size() } else { None };
    let id = match create::create(c, o, args.detach, console).await {
        Ok(id) => id,
        Err(code) => return Ok(code),
    };
    if args.detach {
        if let Err(e) = c.post(&format!("/containers/{id}/start")).await {
            eprintln!("{e}");
            return Ok(attach::start_error_code(&e));
        }
        println!("{id}");
        return Ok(0);
    }
    let w = Wiring {
        stdin: o.attaches("stdin"),
        stdout: o.attaches("stdout"),
        stderr: o.attaches("stderr"),
        tty: o.tty,
        sig_proxy: args.sig_proxy,
    };
    let condition = if o.rm { "removed" } else { "next-exit" };
    match attach::session(c, &id, w, true, condition).await {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("{}", crate::cli::one_line(&e));
            Ok(ENGINE_ERROR)
        }
    }
}
