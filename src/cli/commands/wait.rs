//! `amber wait` / `amber container wait`.

use crate::cli::client::{enc_path, Client};

use super::attach::open_wait;

/// Block until one or more containers stop, then print their exit codes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &args.containers {
        let waited = match open_wait(c, &enc_path(name), "not-running").await {
            Ok(task) => task.await.map_err(anyhow::Error::from).and_then(|r| r),
            Err(e) => Err(e.into()),
        };
        match waited {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("{}", crate::cli::one_line(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}
