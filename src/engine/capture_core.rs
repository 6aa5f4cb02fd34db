//! Engine side of `capture --core`: which containers can be dumped (running
//! ones, once thawed), the summary of what was dumped, and reading a stored
//! core back (`bundle core`).

use serde_json::{json, Value};

use super::{ContainerView, Engine, EngineError};
use crate::capture::{self, BlobSink, CoreDump, CoreDumps};
use crate::runtime::Status;

/// Why a paused container has no cores.
const PAUSED: &str =
    "the container is paused: gdb cannot attach to frozen processes; unpause it to take cores";

impl Engine {
    /// Core dumps of the processes of `v` (entries of its manifest's
    /// `processes`). Must not run while capture holds it frozen.
    pub(super) fn core_dumps(
        &self,
        v: &ContainerView,
        processes: &[Value],
        sink: &mut BlobSink<'_>,
    ) -> Result<CoreDumps, EngineError> {
        match v.state.status {
            Status::Running => {}
            Status::Paused => {
                return Ok(CoreDumps {
                    error: Some(PAUSED.into()),
                    processes: Vec::new(),
                })
            }
            _ => return Ok(CoreDumps::default()),
        }
        let scratch = self.store.staging_path("core");
        Ok(capture::coredump::capture_cores(sink, &scratch, processes)?)
    }

    /// `bundle core`: the stored core of one process.
    pub fn bundle_core(
        &self,
        name: &str,
        container: &str,
        pid: i32,
    ) -> Result<CoreDump, EngineError> {
        let m = self.bundle_manifest(name)?;
        Ok(capture::read::core(&m, container, pid)?.clone())
    }

    /// Write a stored core's bytes.
    pub fn write_bundle_core(
        &self,
        dump: &CoreDump,
        mut w: impl std::io::Write,
    ) -> Result<(), EngineError> {
        capture::read_chunks(&self.store, &dump.chunks, &mut w)?;
        w.flush()
            .map_err(|e| capture::CaptureError::io("write", "core", e))?;
        Ok(())
    }
}

/// The capture summary's `Cores` of one container: how many were taken,
/// and why there are none or some are missing.
pub(super) fn core_report(c: &CoreDumps) -> Value {
    let failed: Vec<Value> = c
        .processes
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| json!({"Pid": d.pid, "Error": e})))
        .collect();
    json!({
        "Taken": c.processes.iter().filter(|d| d.error.is_none()).count(),
        "Bytes": c.processes.iter().map(|d| d.size).sum::<u64>(),
        "Error": c.error, "Failed": failed,
    })
}
