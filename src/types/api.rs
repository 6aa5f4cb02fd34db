//! Docker Engine API bodies (the subset amber serves), with Docker's field
//! names. Shared by the daemon's handlers and the CLI client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The newest Docker Engine API version amber speaks.
pub const API_VERSION: &str = "1.45";
/// The oldest Docker Engine API version amber accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// Docker's error body: `{"message": "..."}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What failed.
    pub message: String,
}

/// Progress of a transfer in a [`JsonMessage`].
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default)]
    pub current: u64,
    /// Bytes in all (0 when unknown).
    #[serde(default)]
    pub total: u64,
}

/// One line of a Docker JSON progress stream (`/images/create`, `/build`...).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JsonMessage {
    /// Status text, e.g. the new image ID of an import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What the status is about (a layer's short ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Bytes done and total of a transfer.
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// Structured result (`{"Tag", "Digest", "Size"}` of a push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
    /// Free-form output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The error message, when the operation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The structured error.
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorBody>,
}

/// `GET /images/json` element.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Parent image ID ("" when none).
    pub parent_id: String,
    /// Tags, familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `name@sha256:` digests of pushed/pulled manifests.
    pub repo_digests: Vec<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Bytes of all layers.
    pub size: i64,
    /// Bytes shared with other images (-1: not computed).
    pub shared_size: i64,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Containers using the image (-1: not computed).
    pub containers: i64,
}

/// Docker's container configuration, as it appears in image and container
/// inspect (`.Config`). Also the body of `POST /containers/create`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    /// Hostname.
    pub hostname: String,
    /// Domain name.
    pub domainname: String,
    /// `user[:group]`.
    pub user: String,
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// `{"80/tcp": {}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Allocate a tty.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin after the first attach ends.
    pub stdin_once: bool,
    /// `KEY=VALUE` list.
    pub env: Option<Vec<String>>,
    /// Default command.
    pub cmd: Option<Vec<String>>,
    /// Image name the container was created from.
    pub image: String,
    /// `{"/data": {}}`.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Working directory.
    pub working_dir: String,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// ONBUILD triggers.
    pub on_build: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Signal that stops the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// HEALTHCHECK of the image (`Test`, `Interval`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    /// SHELL of the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// `.RootFS` of an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Layer diff IDs, bottom first.
    pub layers: Vec<String>,
}

/// `.GraphDriver` of an image or container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// `overlay2`.
    pub name: String,
    /// Driver details (`LowerDir`, `UpperDir`...).
    pub data: BTreeMap<String, String>,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Tags, familiar form.
    pub repo_tags: Vec<String>,
    /// Manifest digests.
    pub repo_digests: Vec<String>,
    /// Parent image ID.
    pub parent: String,
    /// Commit message / import comment.
    pub comment: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Engine that made it.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Runtime defaults.
    pub config: ContainerConfig,
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Bytes of all layers.
    pub size: i64,
    /// Storage details.
    pub graph_driver: GraphDriver,
    /// The layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// Local metadata.
    pub metadata: serde_json::Value,
}

/// One element of `DELETE /images/{name}`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeleteItem {
    /// A tag that was removed.
    #[serde(rename = "Untagged", default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// An image or layer that was removed.
    #[serde(rename = "Deleted", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// One component of `GET /version`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    /// Component name (`Engine`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Free-form details.
    pub details: BTreeMap<String, String>,
}

/// `GET /version`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionResponse {
    /// `{"Name": "amber"}`.
    pub platform: BTreeMap<String, String>,
    /// Components.
    pub components: Vec<ComponentVersion>,
    /// Engine version.
    pub version: String,
    /// Newest API version.
    pub api_version: String,
    /// Oldest API version.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Source revision.
    pub git_commit: String,
    /// Toolchain (Docker reports Go's; amber its Rust edition).
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub arch: String,
    /// Host kernel release.
    pub kernel_version: String,
    /// Build time.
    pub build_time: String,
}

/// Result of `amber system check`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Blobs whose digest was verified.
    pub blobs_checked: usize,
    /// Layer directories found.
    pub layers_checked: usize,
    /// Images found.
    pub images_checked: usize,
    /// Every inconsistency, one line each.
    pub problems: Vec<String>,
}
