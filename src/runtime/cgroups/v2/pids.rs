//! v2 pids controller: `pids.max`, `pids.current`.
//!
//! The pids controller's interface files are the same in both versions
//! (Documentation/admin-guide/cgroup-v2.rst, "PID"), so v2 uses the v1
//! implementation rather than a copy of it.

pub use super::super::v1::pids::Pids;
