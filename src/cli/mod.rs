//! The command-line interface: argument parsing (clap derive), one file per
//! command under `commands/`, and the HTTP client of the daemon.
//!
//! Holds no engine logic: every command except `daemon` (and the hidden
//! `shim` sub-mode) is a thin client of the API.

pub mod template;

use clap::{Parser, Subcommand};

/// amber: a container engine for preserving and moving state.
#[derive(Debug, Parser)]
#[command(name = "amber", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Internal: the per-container supervisor (started by the daemon).
    #[command(hide = true)]
    Shim {
        /// Arguments passed through to the runtime's shim.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Parse the command line, run the command and return the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Shim { args } => crate::runtime::shim_main(args),
    }
}
