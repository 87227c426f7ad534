//! [`OpenOptions`]: how to open a file, as in `std::fs::OpenOptions`.

use std::io;
use std::path::Path;

use super::{File, path_cstring, with_path};
use crate::op;

/// Options for opening a file, like `std::fs::OpenOptions`; the open itself is an
/// `IORING_OP_OPENAT` (the blocking pool on epoll).
///
/// ```
/// use ringloop::fs::OpenOptions;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-options-{}", std::process::id()));
/// let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).await.unwrap();
/// assert_eq!(file.metadata().await.unwrap().permissions() & 0o077, 0);
/// ringloop::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// All options off; a created file gets mode `0o666` (less the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }
    /// Every write goes to the end of the file (`O_APPEND`); implies writing.
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }
    /// Cut the file to length 0 on open (`O_TRUNC`); needs `write`.
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }
    /// Create the file if it does not exist (`O_CREAT`); needs `write` or `append`.
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }
    /// Create the file, failing with `AlreadyExists` if it exists (`O_CREAT | O_EXCL`).
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }
    /// Permission bits for a created file (less the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }
    /// Extra `open(2)` flags, e.g. `libc::O_DIRECT` or `libc::O_NOFOLLOW`; the access mode
    /// bits are ignored (use `read`/`write`).
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// The `open(2)` flags these options stand for.
    fn flags(&self) -> io::Result<i32> {
        let invalid = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => return invalid("open options: neither read nor write is set"),
        };
        let writes = self.write || self.append;
        if !writes && (self.truncate || self.create || self.create_new) {
            return invalid("open options: truncate and create need write or append");
        }
        if self.append && self.truncate && !self.create_new {
            return invalid("open options: append and truncate contradict each other");
        }
        let creation = if self.create_new {
            libc::O_CREAT | libc::O_EXCL
        } else {
            (if self.create { libc::O_CREAT } else { 0 })
                | (if self.truncate { libc::O_TRUNC } else { 0 })
        };
        let append = if self.append { libc::O_APPEND } else { 0 };
        Ok(access | creation | append | (self.custom_flags & !libc::O_ACCMODE))
    }

    /// Opens `path` with these options. Errors name the path.
    ///
    /// ```
    /// # ringloop::run(async {
    /// let err = ringloop::fs::OpenOptions::new().read(true).open("/no/such/file").await.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// assert!(err.to_string().contains("/no/such/file"));
    /// # });
    /// ```
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let opened = async {
            let flags = self.flags()?;
            let fd = op::openat(libc::AT_FDCWD, path_cstring(path)?, flags, self.mode).await?;
            Ok(File::from_parts(fd, path.to_owned(), self.append))
        };
        opened.await.map_err(|e| with_path(e, "open", path))
    }
}
