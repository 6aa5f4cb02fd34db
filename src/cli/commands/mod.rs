//! One file per command: an `Args` struct (its doc comment is the help) and
//! a `run`.

pub mod attach;
pub mod baseline;
pub mod build;
pub mod bundle;
pub mod bundle_archive;
pub mod bundle_core;
pub mod bundle_transfer;
pub mod capture;
pub mod cluster;
pub mod cluster_certs;
pub mod commit;
pub mod container_opts;
pub mod cp;
pub mod create;
pub mod daemon;
pub mod diff;
pub mod exec;
pub mod export;
pub mod history;
pub mod image_prune;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logs;
pub mod migrate;
pub mod network;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry_gc;
pub mod registry_serve;
pub mod rename;
pub mod restart;
pub mod restore;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod search;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod tag;
pub mod top;
pub mod version;
pub mod volume;
pub mod wait;

use std::future::Future;

use crate::cli::client::ClientError;

/// Apply `op` to every container named, as Docker's multi-container
/// commands do: print the name on success, the daemon's error otherwise,
/// and exit 1 when any failed.
pub async fn each<'a, F, Fut>(names: &'a [String], op: F) -> anyhow::Result<i32>
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    let mut code = 0;
    for name in names {
        match op(name).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
