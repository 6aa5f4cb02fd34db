//! `amber create` / `amber container create`.

use crate::cli::client::{enc, read_all, Client, ClientError};
use crate::types::container::CreateResponse;

use super::container_opts::CreateOpts;

/// Create a new container.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// The flags `create` and `run` share, then IMAGE [COMMAND...].
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// Docker's exit code for errors of the engine itself (not the container).
pub const ENGINE_ERROR: i32 = 125;

/// Run it: print the new container's ID.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    if let Err(e) = args.opts.validate(true) {
        eprintln!("amber: {e}");
        return Ok(ENGINE_ERROR);
    }
    match create(c, &args.opts, false, None).await {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

/// `POST /containers/create`; on failure the error is printed and the
/// exit code (125) returned, as the docker CLI does.
pub async fn create(
    c: &Client,
    opts: &CreateOpts,
    detach: bool,
    console: Option<(u16, u16)>,
) -> Result<String, i32> {
    let req = match opts.request(detach, console) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amber: {e:#}");
            return Err(ENGINE_ERROR);
        }
    };
    let mut path = "/containers/create".to_string();
    if let Some(n) = &opts.name {
        path.push_str(&format!("?name={}", enc(n)));
    }
    let send = || async {
        let resp = c.post_json(&path, &req).await?;
        let bytes = read_all(resp).await?;
        serde_json::from_slice::<CreateResponse>(&bytes)
            .map_err(|e| ClientError::Decode(e.to_string()))
    };
    let mut sent = send().await;
    // As `docker run`: a missing image is pulled, then the create retried.
    if let Err(e) = &sent {
        if e.is_not_found() && e.to_string().contains("No such image") {
            eprintln!("Unable to find image '{}' locally", full_ref(&opts.image));
            match super::pull::pull_image(c, &opts.image, true).await {
                Ok(()) => sent = send().await,
                Err(e) => {
                    eprintln!("{e:#}");
                    return Err(ENGINE_ERROR);
                }
            }
        }
    }
    match sent {
        Ok(r) => {
            for w in &r.warnings {
                eprintln!("WARNING: {w}");
            }
            Ok(r.id)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ENGINE_ERROR)
        }
    }
}

/// `busybox` → `busybox:latest`, as Docker prints it.
fn full_ref(image: &str) -> String {
    match crate::types::Reference::parse(image) {
        Ok(r) if r.tag().is_none() && r.digest().is_none() => format!("{}:latest", r.familiar()),
        Ok(r) => r.familiar(),
        Err(_) => image.to_string(),
    }
}
