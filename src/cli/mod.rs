//! The command-line interface: argument parsing (clap derive), one file per
//! command under `commands/`, and the HTTP client of the daemon.
//!
//! Holds no engine logic: every command except `daemon` (and the hidden
//! `shim` sub-mode) is a thin client of the API.

pub mod client;
mod commands;
pub mod output;
pub mod template;

use clap::{Parser, Subcommand};

use client::{Client, DEFAULT_HOST};
use commands::*;

/// amber: an application container engine for preserving and moving state.
#[derive(Debug, Parser)]
#[command(name = "amber", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Daemon address (unix:///PATH); `amber daemon` accepts several.
    #[arg(short = 'H', long = "host", global = true, env = "AMBER_HOST")]
    pub host: Vec<String>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// Log format of the daemon: text or json.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine: serve the API on a unix socket.
    Daemon(daemon::Args),
    /// Show client and server versions.
    Version(version::Args),
    /// Show system-wide information.
    Info(info::Args),
    /// Import a root filesystem tar (plain, gzip or zstd) as an image.
    Import(import::Args),
    /// List images.
    Images(images::Args),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show low-level information on images.
    Inspect(inspect::Args),
    /// Give an image another name.
    Tag(tag::Args),
    /// Remove images.
    Rmi(rmi::Args),
    /// Manage the engine.
    #[command(subcommand)]
    System(SystemCommand),
    /// Internal: the per-container supervisor (started by the daemon).
    #[command(hide = true)]
    Shim {
        /// Arguments passed through to the runtime's shim.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `amber image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(images::Args),
    /// Show low-level information on images.
    Inspect(inspect::Args),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(rmi::Args),
    /// Give an image another name.
    Tag(tag::Args),
    /// Import a root filesystem tar as an image.
    Import(import::Args),
}

/// `amber system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Verify the store: every blob digest, every row against its file.
    Check(system::CheckArgs),
    /// Show system-wide information.
    Info(info::Args),
}

/// Parse the command line, run the command and return the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Command::Shim { args } = cli.command {
        return crate::runtime::shim_main(args);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: failed to start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(dispatch(cli));
    // Blocking work still running (a wait, a follow) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", one_line(&e));
            1
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let msg = format!("{e:#}");
    if msg.starts_with("Error") || msg.starts_with("Cannot connect") {
        msg
    } else {
        format!("Error: {msg}")
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let host = cli.host.last().map(String::as_str).unwrap_or(DEFAULT_HOST);
    let c = Client::new(host);
    match cli.command {
        Command::Daemon(args) => {
            init_logging(&cli.log_level, &cli.log_format)?;
            daemon::run(args, cli.host).await
        }
        Command::Shim { args } => Ok(crate::runtime::shim_main(args)),
        Command::Version(a) => version::run(&c?, a).await,
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::run(&c?, a).await,
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(&c?, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(&c?, a).await,
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => {
            inspect::run(&c?, a).await
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&c?, a).await,
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(&c?, a).await,
        Command::System(SystemCommand::Check(a)) => system::check(&c?, a).await,
    }
}

fn init_logging(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid --log-level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("invalid --log-format {other:?}: expected text or json"),
    }
    Ok(())
}
