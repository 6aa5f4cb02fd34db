//! `amber rm` / `amber container rm`.

use hyper::Method;

use crate::cli::client::{enc_path, read_all, Client};

/// Remove one or more containers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    super::each(&args.containers, |name| {
        let path = format!(
            "/containers/{}?force={}&v={}",
            enc_path(name),
            args.force,
            args.volumes
        );
        async move {
            let resp = c
                .send(Method::DELETE, &path, None, crate::cli::client::empty())
                .await?;
            read_all(resp).await.map(|_| ())
        }
    })
    .await
}
