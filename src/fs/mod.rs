//! Files and directories through the ring.
//!
//! [`File`] and [`OpenOptions`] work like their `std::fs` namesakes, but every call is an
//! operation the loop awaits: on io_uring `IORING_OP_OPENAT`, `READ`, `WRITE`, `STATX`,
//! `FSYNC`, `FALLOCATE`, `FTRUNCATE`, `UNLINKAT`, `RENAMEAT`, `MKDIRAT`, `LINKAT`,
//! `SYMLINKAT`; on epoll the same syscalls on the blocking pool (a page-cached read is tried
//! at once with `RWF_NOWAIT`). The loop thread never blocks on the disk.
//!
//! ```
//! # ringloop::run(async {
//! let dir = std::env::temp_dir().join(format!("ringloop-doc-fs-{}", std::process::id()));
//! ringloop::fs::create_dir_all(dir.join("a/b")).await.unwrap();
//! ringloop::fs::write(dir.join("a/b/f.txt"), b"hi".to_vec()).await.unwrap();
//! assert_eq!(ringloop::fs::read_to_string(dir.join("a/b/f.txt")).await.unwrap(), "hi");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```
//!
//! # Implementation
//!
//! * Paths become owned `CString`s that the op keeps until its completion; an open whose
//!   future is dropped closes the descriptor it produced when the completion arrives, so
//!   cancelled opens leak nothing.
//! * Every error names the path: `open "/x": No such file or directory (os error 2)`, with the
//!   [`io::ErrorKind`] of the underlying error.
//! * Where the kernel's io_uring lacks one of these opcodes (the runtime reports each as an
//!   `op_*` feature in its backend report; `FTRUNCATE` needs 6.9), the driver runs that call
//!   alone on the blocking pool.
//! * [`read_dir`] and [`set_permissions`] run on the blocking pool (io_uring has no getdents
//!   or chmod opcode); `read_dir` reads 64 entries per trip.
//! * [`copy`] splices through a pipe (`IORING_OP_SPLICE`, 64 KiB per op: the bytes never
//!   enter user space), falling back to a read/write loop where the source cannot be spliced.

mod file;
mod file_poll;
mod functions;
mod metadata;
mod open_options;
mod read_dir;

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use file::File;
pub use functions::{
    copy, create_dir, create_dir_all, hard_link, metadata, read, read_to_string, remove_dir,
    remove_file, rename, set_permissions, symlink, symlink_metadata, write,
};
pub use metadata::Metadata;
pub use open_options::OpenOptions;
pub use read_dir::{DirEntry, ReadDir, read_dir};

/// Runs a call io_uring has no opcode for (`chmod`, `fchmod`) on the blocking pool.
async fn on_pool<R: Send + 'static>(
    f: impl FnOnce() -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    crate::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

/// `path` as the NUL-terminated string the kernel takes.
fn path_cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains an interior NUL byte",
        )
    })
}

/// An error with the operation and path it concerns.
#[derive(Debug)]
struct PathError {
    what: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.what, self.path, self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `e` so that it names `what` was done to `path`, keeping its kind.
fn with_path(e: io::Error, what: &'static str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        PathError {
            what,
            path: path.to_owned(),
            source: e,
        },
    )
}
