//! [`Metadata`]: a file's status as `statx(2)` reports it.

use std::io;
use std::time::{Duration, SystemTime};

/// The status of a file: kind, size, permissions, times (from `statx(2)`).
///
/// ```
/// # ringloop::run(async {
/// let meta = ringloop::fs::metadata("/").await.unwrap();
/// assert!(meta.is_dir() && !meta.is_file());
/// # });
/// ```
#[derive(Clone, Copy)]
pub struct Metadata {
    st: libc::statx,
}

impl Metadata {
    pub(crate) fn from_statx(st: libc::statx) -> Metadata {
        Metadata { st }
    }

    fn kind(&self) -> u32 {
        u32::from(self.st.stx_mode) & libc::S_IFMT
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.st.stx_size
    }
    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }
    /// Permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        u32::from(self.st.stx_mode) & 0o7777
    }
    /// The full `st_mode` (kind and permissions).
    pub fn mode(&self) -> u32 {
        u32::from(self.st.stx_mode)
    }
    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.st.stx_ino
    }
    /// Number of hard links.
    pub fn nlink(&self) -> u32 {
        self.st.stx_nlink
    }
    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.st.stx_uid
    }
    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.st.stx_gid
    }
    /// Preferred I/O block size.
    pub fn blksize(&self) -> u32 {
        self.st.stx_blksize
    }
    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.st.stx_blocks
    }
    /// Last modification.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.st.stx_mtime)
    }
    /// Last access.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.st.stx_atime)
    }
    /// Creation (birth) time, where the filesystem records one.
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.st.stx_btime)
    }

    fn time(&self, field: u32, ts: libc::statx_timestamp) -> io::Result<SystemTime> {
        if self.st.stx_mask & field == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this filesystem does not report that time",
            ));
        }
        let nanos = Duration::from_nanos(u64::from(ts.tv_nsec));
        let t = if ts.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(ts.tv_sec as u64) + nanos
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(ts.tv_sec.unsigned_abs()) + nanos
        };
        Ok(t)
    }
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .field("nlink", &self.nlink())
            .finish()
    }
}
