//! Dockerfile builds: the parser (`parser`, `shell` for variable
//! substitution), `.dockerignore` (`ignore`), the build context (`context`),
//! `ADD` downloads and archives (`fetch`), and the executor that turns
//! instructions into images with a cache (`executor`, `copy`).
//!
//! Knows nothing of the store's layout or of HTTP: everything that touches
//! images and containers goes through [`BuildHost`], which the engine
//! implements. Synchronous.

pub mod context;
mod copy;
mod executor;
pub mod fetch;
pub mod ignore;
mod instructions;
mod metadata;
pub mod parser;
mod rootfs;
mod run;
pub mod shell;

pub use executor::{build, BuildOptions};
pub use parser::ParseError;

use std::io::Write;
use std::path::Path;

use serde_json::Value;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error("{0}")]
    Parse(ParseError),
    /// A step failed; the message says how, with the Dockerfile line.
    #[error("Dockerfile line {line}: {message}")]
    Step {
        /// 1-based line of the instruction.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// A RUN command exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as Docker shows it.
        command: String,
        /// Its exit code.
        code: i64,
    },
    /// The context, a source or the Dockerfile is unusable.
    #[error("{0}")]
    Context(String),
    /// An `ADD` URL could not be fetched.
    #[error("{0}")]
    Fetch(String),
    /// Bad instruction arguments.
    #[error("{0}")]
    Invalid(String),
    /// The engine refused or failed.
    #[error("{0}")]
    Host(String),
    /// The client went away.
    #[error("the build was cancelled")]
    Cancelled,
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        BuildError::Parse(e)
    }
}

impl std::error::Error for ParseError {}

/// An image as a build sees it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>`.
    pub id: String,
    /// The whole image config document (`config`, `rootfs`, `history`, ...).
    pub config: Value,
}

/// A RUN step's process.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The command line.
    pub argv: Vec<String>,
    /// Environment (`K=V`), build args included.
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: String,
    /// User.
    pub user: String,
    /// Set when the build is cancelled: the process is killed.
    pub cancel: Cancel,
    /// Network mode of the container (`--network`; empty: the default).
    pub network: String,
}

/// A build's cancellation flag (the client went away).
pub type Cancel = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Whether `c` was set.
pub fn cancelled(c: &Cancel) -> bool {
    c.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a step does to the filesystem.
pub enum Change<'a> {
    /// Nothing: a new config over the parent's layers.
    Config,
    /// Run a process in a container of the parent; its changes are the layer.
    Run(&'a RunSpec),
    /// Write into the root filesystem of a container of the parent; the
    /// changes (if any) are the layer.
    Files(&'a mut dyn FnMut(&Path) -> Result<(), BuildError>),
}

/// Text for the person following the build (`Step 1/3 : ...`, RUN output).
pub type Output<'a> = dyn FnMut(&str) + 'a;

/// What the build needs from the engine.
pub trait BuildHost {
    /// An image by name or ID.
    fn image(&self, name: &str) -> Result<Image, BuildError>;
    /// A child of `parent` (a base image when None) whose
    /// `container_config` equals `probe`: the build cache.
    fn cached(&self, parent: Option<&str>, probe: &Value) -> Result<Option<Image>, BuildError>;
    /// A new image on `parent`: its config document is `config` (the host
    /// fills `rootfs.diff_ids`, `created` and the last history entry's
    /// `empty_layer`).
    fn commit(
        &self,
        parent: Option<&str>,
        config: Value,
        change: Change<'_>,
        out: &mut Output<'_>,
    ) -> Result<Image, BuildError>;
    /// A tar of `path` in `image`'s filesystem (as `docker cp` makes it:
    /// entries under the path's last component).
    fn export(&self, image: &str, path: &str, out: &mut dyn Write) -> Result<(), BuildError>;
    /// Give `image` the name `name`.
    fn tag(&self, image: &str, name: &str) -> Result<(), BuildError>;
}

/// The 12-character short form of an image or container ID.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
