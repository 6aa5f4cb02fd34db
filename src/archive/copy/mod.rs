//! The primitives behind `docker cp` (`HEAD/GET/PUT /containers/{id}/archive`).
//!
//! Every path is resolved inside the container root as if it were `/`: the
//! parent directory is opened with `openat2(RESOLVE_IN_ROOT)`, then all work
//! is done with `*at` calls relative to that descriptor, so a symlink in the
//! container (`escape -> /`, `up -> ../../..`) lands on the container's root,
//! never the host's. No path string is ever resolved on the host; this is
//! the lesson of CVE-2018-15664 (symlink-exchange race in `docker cp`). No
//! library is loaded from the container (CVE-2019-14271): names and ids are
//! copied as numbers. See docs/archive.md.

mod extract;
mod resolve;
mod stat;
#[cfg(test)]
mod tests;
mod write;

pub use extract::{extract_tar_into, CopyOptions};
pub(crate) use resolve::{is_type, lstatat, openat, own, read_names};
pub use stat::{go_file_mode, go_mode, stat_path, PathStat};
pub use write::{write_tar_of, write_tar_one_fs};
