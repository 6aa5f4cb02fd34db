//! `amber start` / `amber container start`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client};

use super::attach::{self, Wiring};

/// Start one or more stopped containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        return attached(c, &args.containers[0], args.interactive).await;
    }
    let mut failed = Vec::new();
    for name in &args.containers {
        match c
            .post(&format!("/containers/{}/start", enc_path(name)))
            .await
        {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        anyhow::bail!("failed to start containers: {}", failed.join(", "))
    }
}

async fn attached(c: &Client, name: &str, interactive: bool) -> anyhow::Result<i32> {
    let v: Value = c
        .get(&format!("/containers/{}/json", enc_path(name)))
        .await?;
    let id = v["Id"].as_str().unwrap_or(name).to_string();
    let tty = v["Config"]["Tty"] == Value::Bool(true);
    let w = Wiring {
        stdin: interactive && v["Config"]["OpenStdin"] == Value::Bool(true),
        stdout: true,
        stderr: true,
        tty,
        sig_proxy: !tty,
    };
    let auto_remove = v["HostConfig"]["AutoRemove"] == Value::Bool(true);
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let code = attach::session(c, &id, w, true, condition).await?;
    Ok(code)
}
