//! `amber exec` / `amber container exec`.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::Value;

use crate::cli::client::{enc_path, read_all, Client};
use crate::cli::stream::{self, RawTerminal};
use crate::types::container::{ExecConfig, ExecStartConfig};

/// Execute a command in a running container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// The container.
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Run it: exit with the command's exit code.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let attach = !args.detach;
    if args.tty && args.interactive && attach && !std::io::stdin().is_terminal() {
        anyhow::bail!("the input device is not a TTY");
    }
    let cfg = ExecConfig {
        attach_stdin: args.interactive && attach,
        attach_stdout: attach,
        attach_stderr: attach,
        tty: args.tty,
        env: (!args.env.is_empty()).then(|| args.env.clone()),
        cmd: args.command.clone(),
        user: args.user.clone().unwrap_or_default(),
        working_dir: args.workdir.clone().unwrap_or_default(),
        privileged: args.privileged,
        console_size: if args.tty {
            stream::terminal_size().map(|(h, w)| vec![h, w])
        } else {
            None
        },
        ..Default::default()
    };
    let path = format!("/containers/{}/exec", enc_path(&args.container));
    let created: Value = serde_json::from_slice(&read_all(c.post_json(&path, &cfg).await?).await?)?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("unexpected answer from the daemon: no exec Id"))?
        .to_string();
    let start = ExecStartConfig {
        detach: args.detach,
        tty: args.tty,
        console_size: cfg.console_size.clone(),
    };
    if args.detach {
        read_all(c.post_json(&format!("/exec/{id}/start"), &start).await?).await?;
        return Ok(0);
    }
    let io = c
        .hijack(
            &format!("/exec/{id}/start"),
            Some(serde_json::to_vec(&start)?),
        )
        .await?;
    let raw = if args.tty && cfg.attach_stdin {
        RawTerminal::enable()?
    } else {
        None
    };
    let resizer = args
        .tty
        .then(|| stream::spawn_resizer(c.clone(), format!("/exec/{id}/resize")));
    let pumped = stream::pump(io, args.tty, cfg.attach_stdin).await;
    drop(raw);
    if let Some(h) = resizer {
        h.abort();
    }
    let ended = pumped.map_err(|e| anyhow::anyhow!("error streaming the exec's output: {e}"))?;
    if ended == stream::Ended::Detached {
        eprintln!("read escape sequence");
        return Ok(0);
    }
    exit_code(c, &id).await
}

/// `GET /exec/{id}/json` until the process has exited.
async fn exit_code(c: &Client, id: &str) -> anyhow::Result<i32> {
    for _ in 0..100 {
        let v: Value = c.get(&format!("/exec/{id}/json")).await?;
        if v["Running"] != Value::Bool(true) {
            if let Some(code) = v["ExitCode"].as_i64() {
                return Ok(code as i32);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("exec {id} did not report an exit code")
}
