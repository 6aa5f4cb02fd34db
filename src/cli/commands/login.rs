//! `amber login` / `amber logout`.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::client::Client;
use crate::cli::credentials;
use crate::registry::client::Credentials;

/// Log in to a registry (credentials are checked by the daemon, then kept
/// in ~/.amber/config.json, mode 0600).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry (`host:port`); Docker Hub when omitted.
    pub server: Option<String>,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Log out from a registry.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry (`host:port`); Docker Hub when omitted.
    pub server: Option<String>,
}

fn prompt(label: &str) -> anyhow::Result<String> {
    print!("{label}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Run `login`.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let server = credentials::server_key(args.server.as_deref().unwrap_or(""));
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("cannot prompt for a password: use --password-stdin");
            }
            prompt("Password: ")?
        }
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("user name and password must not be empty");
    }
    let creds = Credentials {
        username: username.clone(),
        password: password.clone(),
        serveraddress: server.clone(),
        ..Default::default()
    };
    let resp = c.post_json("/auth", &creds).await?;
    crate::cli::client::read_all(resp).await?;
    let path = credentials::store(&server, &username, &password)?;
    eprintln!("credentials stored in {}", path.display());
    println!("Login Succeeded");
    Ok(0)
}

/// Run `logout`.
pub async fn logout(args: LogoutArgs) -> anyhow::Result<i32> {
    let server = credentials::server_key(args.server.as_deref().unwrap_or(""));
    if credentials::remove(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}
