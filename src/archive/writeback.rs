//! A file writer that starts the kernel's writeback as it goes.

use std::io;

/// Bytes written to a file before its writeback is started.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// A file writer that starts the kernel's writeback of every 8 MiB it
/// wrote (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous), so the
/// one `syncfs` that installs a layer finds most of a large file on disk
/// already instead of flushing it all at the end.
pub(crate) struct WritebackWriter {
    file: std::fs::File,
    written: u64,
    started: u64,
}

impl WritebackWriter {
    /// Wrap a file opened for writing.
    pub(crate) fn new(file: std::fs::File) -> Self {
        WritebackWriter {
            file,
            written: 0,
            started: 0,
        }
    }

    /// The file (the writeback of its last bytes left to the sync).
    pub(crate) fn into_inner(self) -> std::fs::File {
        self.file
    }

    /// The file, its writeback started.
    pub(crate) fn into_file(self) -> std::fs::File {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `write`.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
        self.file
    }
}

impl io::Write for WritebackWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_EVERY {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on a descriptor we own; a failure only
            // means the writeback starts later, at syncfs.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as i64,
                    (self.written - self.started) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
