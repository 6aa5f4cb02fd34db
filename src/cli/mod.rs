//! The command-line interface: argument parsing (clap derive), one file per
//! command under `commands/`, and the HTTP client of the daemon.
//!
//! Holds no engine logic: every command except `daemon` (and the hidden
//! `shim` sub-mode) is a thin client of the API.

pub mod client;
mod commands;
mod credentials;
mod download;
pub mod output;
mod progress;
pub mod remote;
pub mod stream;
pub mod template;

use clap::{Parser, Subcommand};

use client::{Client, DEFAULT_HOST};
use commands::*;

/// amber: an application container engine for preserving and moving state.
#[derive(Debug, Parser)]
#[command(name = "amber", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Daemon address (unix:///PATH or tcp://HOST:PORT); `amber daemon`
    /// accepts several.
    #[arg(short = 'H', long = "host", global = true, env = "AMBER_HOST")]
    pub host: Vec<String>,
    /// Remote access: mutual TLS files, bearer token.
    #[command(flatten)]
    pub remote: remote::RemoteFlags,
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
    /// Build an image from a Dockerfile.
    Build(build::Args),
    /// List images.
    Images(images::Args),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show low-level information on containers and images.
    Inspect(inspect::Args),
    /// Give an image another name.
    Tag(tag::Args),
    /// Create and run a new container from an image.
    Run(run::Args),
    /// Create a new container.
    Create(create::Args),
    /// List containers.
    Ps(ps::Args),
    /// Start one or more stopped containers.
    Start(start::Args),
    /// Stop one or more running containers.
    Stop(stop::Args),
    /// Restart one or more containers.
    Restart(restart::Args),
    /// Kill one or more running containers.
    Kill(kill::Args),
    /// Pause all processes within one or more containers.
    Pause(pause::Args),
    /// Unpause all processes within one or more containers.
    Unpause(pause::UnpauseArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(wait::Args),
    /// Remove one or more containers.
    Rm(rm::Args),
    /// List port mappings or a specific mapping for the container.
    Port(port::Args),
    /// Rename a container.
    Rename(rename::Args),
    /// Attach to a running container.
    Attach(attach::Args),
    /// Execute a command in a running container.
    Exec(exec::Args),
    /// Fetch the logs of a container.
    Logs(logs::Args),
    /// Display the running processes of a container.
    Top(top::Args),
    /// Display container resource usage statistics.
    Stats(stats::Args),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::Args),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(diff::Args),
    /// Create a new image from a container's changes.
    Commit(commit::Args),
    /// Export a container's filesystem as a tar archive.
    Export(export::Args),
    /// Show the history of an image.
    History(history::Args),
    /// Save images to a tar archive.
    Save(save::Args),
    /// Load images from a tar archive.
    Load(load::Args),
    /// Download an image from a registry.
    Pull(pull::Args),
    /// Upload an image to a registry.
    Push(push::Args),
    /// Log in to a registry.
    Login(login::Args),
    /// Log out from a registry.
    Logout(login::LogoutArgs),
    /// Search a registry for repositories.
    Search(search::Args),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Remove images.
    Rmi(rmi::Args),
    /// Manage the engine.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::Command),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::Command),
    /// Run an OCI distribution registry server, collect its garbage.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Capture containers into a bundle (prints the bundle ID).
    Capture(capture::Args),
    /// Manage capture bundles.
    #[command(subcommand)]
    Bundle(bundle::Command),
    /// Manage baselines (named bundles to roll back to).
    #[command(subcommand)]
    Baseline(baseline::Command),
    /// Put every container of a baseline back to its captured state.
    Rollback(baseline::RollbackArgs),
    /// Manage the cluster: the host inventory and whole-cluster commands.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Recreate the containers of a bundle (files, config, log) and start
    /// those that were running.
    Restore(restore::Args),
    /// Move containers to another host (capture, transfer, restore there).
    Migrate(migrate::Args),
    /// Internal: the per-container supervisor (started by the daemon).
    #[command(hide = true)]
    Shim {
        /// Arguments passed through to the runtime's shim.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Internal: the proxy of one published port (started by the daemon).
    #[command(hide = true)]
    Proxy {
        /// Arguments passed through to the proxy.
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
    /// Build an image from a Dockerfile.
    Build(build::Args),
    /// Show the history of an image.
    History(history::Args),
    /// Remove unused images.
    Prune(image_prune::Args),
    /// Save images to a tar archive.
    Save(save::Args),
    /// Load images from a tar archive.
    Load(load::Args),
    /// Download an image from a registry.
    Pull(pull::Args),
    /// Upload an image to a registry.
    Push(push::Args),
}

/// `amber container ...`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::Args),
    /// Create and run a new container from an image.
    Run(run::Args),
    /// Create a new container.
    Create(create::Args),
    /// Start one or more stopped containers.
    Start(start::Args),
    /// Stop one or more running containers.
    Stop(stop::Args),
    /// Restart one or more containers.
    Restart(restart::Args),
    /// Kill one or more running containers.
    Kill(kill::Args),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(rm::Args),
    /// Display detailed information on one or more containers.
    Inspect(inspect::Args),
    /// Fetch the logs of a container.
    Logs(logs::Args),
    /// Execute a command in a running container.
    Exec(exec::Args),
    /// Attach to a running container.
    Attach(attach::Args),
    /// Display the running processes of a container.
    Top(top::Args),
    /// Display container resource usage statistics.
    Stats(stats::Args),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::Args),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(diff::Args),
    /// Create a new image from a container's changes.
    Commit(commit::Args),
    /// Export a container's filesystem as a tar archive.
    Export(export::Args),
    /// Rename a container.
    Rename(rename::Args),
    /// Pause all processes within one or more containers.
    Pause(pause::Args),
    /// Unpause all processes within one or more containers.
    Unpause(pause::UnpauseArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(wait::Args),
    /// Remove all stopped containers.
    Prune(prune::Args),
    /// List port mappings or a specific mapping for the container.
    Port(port::Args),
}

/// `amber system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Verify the store: every blob digest, every row against its file.
    Check(system::CheckArgs),
    /// Show system-wide information.
    Info(info::Args),
}

/// `amber registry ...`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI distribution (registry v2) API in the foreground.
    Serve(registry_serve::Args),
    /// Remove blobs no manifest references.
    Gc(registry_gc::Args),
}

/// Parse the command line, run the command and return the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Shim { args } => return crate::runtime::shim_main(args),
        Command::Proxy { args } => return crate::net::proxy_process::proxy_main(args),
        _ => {}
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

/// An error as the one line amber prints.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let msg = format!("{e:#}");
    if msg.starts_with("Error") || msg.starts_with("Cannot connect") {
        msg
    } else {
        format!("Error: {msg}")
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let host = cli.host.last().map(String::as_str).unwrap_or(DEFAULT_HOST);
    // Credentials are read only by the commands that talk to a daemon.
    let c = cli
        .remote
        .client_auth()
        .and_then(|auth| Ok(Client::with_auth(host, auth)?));
    match cli.command {
        Command::Daemon(args) => {
            init_logging(&cli.log_level, &cli.log_format)?;
            daemon::run(args, cli.host, cli.remote).await
        }
        Command::Cluster(cluster::ClusterCommand::Certs(a)) => cluster_certs::run(a),
        Command::Shim { args } => Ok(crate::runtime::shim_main(args)),
        Command::Proxy { args } => Ok(crate::net::proxy_process::proxy_main(args)),
        Command::Registry(RegistryCommand::Serve(a)) => {
            init_logging(&cli.log_level, &cli.log_format)?;
            registry_serve::run(a).await
        }
        Command::Registry(RegistryCommand::Gc(a)) => {
            init_logging(&cli.log_level, &cli.log_format)?;
            registry_gc::run(a).await
        }
        Command::Version(a) => version::run(&c?, a).await,
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::run(&c?, a).await,
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(&c?, a).await,
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::run(&c?, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(&c?, a).await,
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => {
            inspect::run(&c?, a).await
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&c?, a).await,
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(&c?, a).await,
        Command::Image(ImageCommand::Prune(a)) => image_prune::run(&c?, a).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            history::run(&c?, a).await
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(&c?, a).await,
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(&c?, a).await,
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(&c?, a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(&c?, a).await,
        Command::Login(a) => login::run(&c?, a).await,
        Command::Logout(a) => login::logout(a).await,
        Command::Search(a) => search::run(&c?, a).await,
        Command::System(SystemCommand::Check(a)) => system::check(&c?, a).await,
        Command::Container(cmd) => container(&c?, cmd).await,
        Command::Network(cmd) => network::run(&c?, cmd).await,
        Command::Volume(cmd) => volume::run(&c?, cmd).await,
        Command::Capture(a) => capture::run(&c?, a).await,
        Command::Bundle(cmd) => bundle::run(&c?, cmd).await,
        Command::Restore(a) => restore::run(&c?, a).await,
        Command::Migrate(a) => migrate::run(&c?, a).await,
        Command::Baseline(cmd) => baseline::run(&c?, cmd).await,
        Command::Rollback(a) => baseline::rollback(&c?, a).await,
        Command::Cluster(cmd) => cluster::run(&c?, cmd).await,
        other => container(&c?, top_level(other)?).await,
    }
}

/// The top-level container commands are the `container` group's.
fn top_level(cmd: Command) -> anyhow::Result<ContainerCommand> {
    use ContainerCommand as C;
    Ok(match cmd {
        Command::Run(a) => C::Run(a),
        Command::Create(a) => C::Create(a),
        Command::Ps(a) => C::Ls(a),
        Command::Start(a) => C::Start(a),
        Command::Stop(a) => C::Stop(a),
        Command::Restart(a) => C::Restart(a),
        Command::Kill(a) => C::Kill(a),
        Command::Pause(a) => C::Pause(a),
        Command::Unpause(a) => C::Unpause(a),
        Command::Wait(a) => C::Wait(a),
        Command::Rm(a) => C::Rm(a),
        Command::Rename(a) => C::Rename(a),
        Command::Port(a) => C::Port(a),
        Command::Attach(a) => C::Attach(a),
        Command::Exec(a) => C::Exec(a),
        Command::Logs(a) => C::Logs(a),
        Command::Top(a) => C::Top(a),
        Command::Stats(a) => C::Stats(a),
        Command::Cp(a) => C::Cp(a),
        Command::Diff(a) => C::Diff(a),
        Command::Commit(a) => C::Commit(a),
        Command::Export(a) => C::Export(a),
        other => anyhow::bail!("internal: {other:?} is not a container command"),
    })
}

async fn container(c: &Client, cmd: ContainerCommand) -> anyhow::Result<i32> {
    use ContainerCommand as C;
    match cmd {
        C::Ls(a) => ps::run(c, a).await,
        C::Run(a) => run::run(c, a).await,
        C::Create(a) => create::run(c, a).await,
        C::Start(a) => start::run(c, a).await,
        C::Stop(a) => stop::run(c, a).await,
        C::Restart(a) => restart::run(c, a).await,
        C::Kill(a) => kill::run(c, a).await,
        C::Rm(a) => rm::run(c, a).await,
        C::Inspect(mut a) => {
            a.kind.get_or_insert_with(|| "container".into());
            inspect::run(c, a).await
        }
        C::Logs(a) => logs::run(c, a).await,
        C::Exec(a) => exec::run(c, a).await,
        C::Attach(a) => attach::run(c, a).await,
        C::Top(a) => top::run(c, a).await,
        C::Stats(a) => stats::run(c, a).await,
        C::Cp(a) => cp::run(c, a).await,
        C::Diff(a) => diff::run(c, a).await,
        C::Commit(a) => commit::run(c, a).await,
        C::Export(a) => export::run(c, a).await,
        C::Rename(a) => rename::run(c, a).await,
        C::Pause(a) => pause::run(c, a).await,
        C::Unpause(a) => pause::unpause(c, a).await,
        C::Wait(a) => wait::run(c, a).await,
        C::Prune(a) => prune::run(c, a).await,
        C::Port(a) => port::run(c, a).await,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn run_parses_like_docker() {
        use clap::Parser;
        let cli = super::Cli::parse_from([
            "amber", "run", "-it", "--rm", "-h", "box", "busybox", "ls", "-l",
        ]);
        let super::Command::Run(a) = cli.command else {
            panic!("not run");
        };
        assert!(a.opts.interactive && a.opts.tty && a.opts.rm);
        assert_eq!(a.opts.hostname.as_deref(), Some("box"));
        assert_eq!(a.opts.command, ["ls", "-l"]);
    }
}
