//! The kernel half of the engine: namespaces, mounts, cgroups, capabilities,
//! seccomp, the container process and its per-container shim.
//!
//! Knows nothing of images, the store or HTTP. Synchronous; no tokio.

/// Entry point of the hidden `amber shim ...` sub-mode (argv after `shim`).
/// Returns the process exit code.
pub fn shim_main(args: Vec<String>) -> i32 {
    eprintln!("amber shim: not implemented ({} args)", args.len());
    1
}
