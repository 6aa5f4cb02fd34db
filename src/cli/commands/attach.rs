//! `amber attach`, and the attached session `run` and `start -a` share:
//! hijack the attach endpoint, open the wait, start, stream, exit code.

use std::io::IsTerminal;

use serde_json::Value;

use crate::cli::client::{enc_path, read_all, Client, ClientError};
use crate::cli::stream::{self, RawTerminal};
use crate::types::container::WaitResponse;

/// Attach local standard input, output, and error streams to a running container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// The container.
    pub container: String,
}

/// What a session carries.
#[derive(Debug, Clone, Copy)]
pub struct Wiring {
    /// Forward our stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
    /// The container has a tty (raw stream, raw terminal, resizes).
    pub tty: bool,
    /// Forward our signals (without a tty).
    pub sig_proxy: bool,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let v: Value = c
        .get(&format!("/containers/{}/json", enc_path(&args.container)))
        .await?;
    if v["State"]["Running"] != Value::Bool(true) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    if v["State"]["Paused"] == Value::Bool(true) {
        anyhow::bail!("You cannot attach to a paused container, unpause it first");
    }
    let cfg = &v["Config"];
    let tty = cfg["Tty"] == Value::Bool(true);
    let w = Wiring {
        stdin: !args.no_stdin && cfg["OpenStdin"] == Value::Bool(true),
        stdout: true,
        stderr: true,
        tty,
        sig_proxy: args.sig_proxy && !tty,
    };
    let id = v["Id"].as_str().unwrap_or(&args.container).to_string();
    session(c, &id, w, false, "not-running").await
}

/// Attach, open the wait (`condition`), optionally start, stream until the
/// output ends, and return the container's exit code (docker CLI order).
pub async fn session(
    c: &Client,
    id: &str,
    w: Wiring,
    start: bool,
    condition: &str,
) -> anyhow::Result<i32> {
    if w.tty && w.stdin && !std::io::stdin().is_terminal() {
        anyhow::bail!("the input device is not a TTY");
    }
    let path = format!(
        "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
        w.stdin as u8, w.stdout as u8, w.stderr as u8
    );
    let io = c.hijack(&path, None).await?;
    let wait = open_wait(c, id, condition).await?;
    let raw = if w.tty && w.stdin {
        RawTerminal::enable()?
    } else {
        None
    };
    let proxy = (w.sig_proxy && !w.tty).then(|| stream::spawn_sig_proxy(c.clone(), id.into()));
    if start {
        if let Err(e) = c.post(&format!("/containers/{id}/start")).await {
            drop(raw);
            eprintln!("{e}");
            return Ok(start_error_code(&e));
        }
    }
    let resizer = w
        .tty
        .then(|| stream::spawn_resizer(c.clone(), format!("/containers/{id}/resize")));
    let pumped = stream::pump(io, w.tty, w.stdin).await;
    drop(raw);
    for h in [resizer, proxy].into_iter().flatten() {
        h.abort();
    }
    let ended =
        pumped.map_err(|e| anyhow::anyhow!("error streaming the container's output: {e}"))?;
    if ended == stream::Ended::Detached {
        // As docker: the container keeps running, we exit 0.
        wait.abort();
        eprintln!("read escape sequence");
        return Ok(0);
    }
    wait.await?
}

/// `POST /containers/{id}/wait?condition=`: the headers come at once, the
/// body when the condition holds. Returns a task yielding the exit code.
pub async fn open_wait(
    c: &Client,
    id: &str,
    condition: &str,
) -> Result<tokio::task::JoinHandle<anyhow::Result<i32>>, ClientError> {
    let resp = c
        .send(
            hyper::Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
            crate::cli::client::empty(),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let bytes = read_all(resp).await?;
        let w: WaitResponse = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("unexpected answer from the daemon's wait: {e}"))?;
        if let Some(err) = w.error {
            anyhow::bail!("{}", err.message);
        }
        Ok(w.status_code as i32)
    }))
}

/// The docker CLI's `runStartContainerErr`: 127 when the command is not
/// found, 126 when it cannot be executed, else 125.
pub fn start_error_code(e: &ClientError) -> i32 {
    let msg = e.to_string();
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}
