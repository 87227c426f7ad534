//! Whole-file and directory functions: `read`, `write`, `remove_file`, `create_dir_all`, ...

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use super::{File, Metadata, OpenOptions, path_cstring, with_path};
use crate::buf::IoBuf;
use crate::op::{self, keep_fd};

/// Chunk size of [`read`]'s growth and of [`copy`]'s read/write loop.
const CHUNK: usize = 128 * 1024;

/// Reads the whole file into a `Vec`.
///
/// ```
/// # ringloop::run(async {
/// let bytes = ringloop::fs::read("/proc/self/stat").await.unwrap();
/// assert!(!bytes.is_empty());
/// # });
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    // /proc files report size 0: the size is only a hint.
    let hint = file.metadata().await.map_or(0, |m| m.len() as usize);
    let mut buf = Vec::with_capacity(hint.max(CHUNK / 16) + 1);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().clamp(CHUNK / 16, CHUNK * 8));
        }
        let offset = buf.len() as u64;
        let (res, back) = file.read_at(buf, offset).await;
        buf = back;
        if res? == 0 {
            return Ok(buf);
        }
    }
}

/// Reads the whole file as UTF-8.
///
/// ```
/// # ringloop::run(async {
/// let text = ringloop::fs::read_to_string("/proc/self/status").await.unwrap();
/// assert!(text.contains("Name:"));
/// # });
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        with_path(
            io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
            "read_to_string",
            path,
        )
    })
}

/// Writes `contents` as the whole file, creating it or replacing what it held.
///
/// ```
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-write-{}", std::process::id()));
/// ringloop::fs::write(&path, "text").await.unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"text");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, contents: B) -> io::Result<()> {
    let file = File::create(path).await?;
    let (res, _) = file.write_all_at(contents, 0).await;
    res
}

/// Removes a file (or a symbolic link).
///
/// ```
/// # ringloop::run(async {
/// let err = ringloop::fs::remove_file("/no/such/file").await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # });
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let removed = async { op::unlinkat(libc::AT_FDCWD, path_cstring(path)?, 0).await };
    removed.await.map_err(|e| with_path(e, "remove_file", path))
}

/// Removes an empty directory.
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir().join(format!("ringloop-doc-rmdir-{}", std::process::id()));
/// ringloop::fs::create_dir(&dir).await.unwrap();
/// ringloop::fs::remove_dir(&dir).await.unwrap();
/// assert!(!dir.exists());
/// # });
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let removed = async {
        let c = path_cstring(path)?;
        op::unlinkat(libc::AT_FDCWD, c, libc::AT_REMOVEDIR).await
    };
    removed.await.map_err(|e| with_path(e, "remove_dir", path))
}

/// Creates a directory (mode `0o777` less the umask); its parent must exist.
///
/// ```
/// # ringloop::run(async {
/// let err = ringloop::fs::create_dir("/no/such/parent/dir").await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # });
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    mkdir(path)
        .await
        .map_err(|e| with_path(e, "create_dir", path))
}

async fn mkdir(path: &Path) -> io::Result<()> {
    op::mkdirat(libc::AT_FDCWD, path_cstring(path)?, 0o777).await
}

/// Whether `path` exists as a directory, for `create_dir_all`'s `AlreadyExists` case.
async fn is_dir(path: &Path) -> bool {
    metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Creates a directory and every missing parent (`mkdir -p`); a directory already there is
/// success.
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir().join(format!("ringloop-doc-mkdirp-{}", std::process::id()));
/// ringloop::fs::create_dir_all(dir.join("x/y/z")).await.unwrap();
/// ringloop::fs::create_dir_all(dir.join("x/y/z")).await.unwrap();
/// assert!(dir.join("x/y/z").is_dir());
/// std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up until a directory exists or is made, then make the missing ones going down.
    let mut missing = Vec::new();
    let mut cur = path;
    loop {
        if cur.as_os_str().is_empty() {
            break;
        }
        match mkdir(cur).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(cur).await => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.parent() {
                Some(parent) => {
                    missing.push(cur);
                    cur = parent;
                }
                None => return Err(with_path(e, "create_dir_all", cur)),
            },
            Err(e) => return Err(with_path(e, "create_dir_all", cur)),
        }
    }
    for dir in missing.into_iter().rev() {
        match mkdir(dir).await {
            Ok(()) => {}
            // Made by someone else meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(dir).await => {}
            Err(e) => return Err(with_path(e, "create_dir_all", dir)),
        }
    }
    Ok(())
}

/// Moves `from` to `to`, replacing `to` if it exists.
///
/// ```
/// # ringloop::run(async {
/// let err = ringloop::fs::rename("/no/such/a", "/no/such/b").await.unwrap_err();
/// assert!(err.to_string().contains("/no/such/a"));
/// # });
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let renamed = async {
        let (old, new) = (path_cstring(from)?, path_cstring(to)?);
        op::renameat(libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0).await
    };
    renamed.await.map_err(|e| with_path(e, "rename", from))
}

/// Creates `link` as a new name for the file `original` (a hard link).
///
/// ```
/// # ringloop::run(async {
/// let err = ringloop::fs::hard_link("/no/such/file", "/tmp/x").await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # });
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let linked = async {
        let (old, new) = (path_cstring(original)?, path_cstring(link)?);
        op::linkat(libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0).await
    };
    linked.await.map_err(|e| with_path(e, "hard_link", link))
}

/// Creates `link` as a symbolic link pointing to `original`.
///
/// ```
/// # ringloop::run(async {
/// let link = std::env::temp_dir().join(format!("ringloop-doc-symlink-fn-{}", std::process::id()));
/// ringloop::fs::symlink("/", &link).await.unwrap();
/// assert!(ringloop::fs::symlink_metadata(&link).await.unwrap().is_symlink());
/// ringloop::fs::remove_file(&link).await.unwrap();
/// # });
/// ```
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let linked = async {
        let (target, new) = (path_cstring(original)?, path_cstring(link)?);
        op::symlinkat(target, libc::AT_FDCWD, new).await
    };
    linked.await.map_err(|e| with_path(e, "symlink", link))
}

async fn stat(path: &Path, flags: i32) -> io::Result<Metadata> {
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    let st = op::statx(libc::AT_FDCWD, path_cstring(path)?, flags, mask).await?;
    Ok(Metadata::from_statx(st))
}

/// The status of `path`, following symbolic links.
///
/// ```
/// # ringloop::run(async {
/// assert!(ringloop::fs::metadata("/proc/self/stat").await.unwrap().is_file());
/// # });
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    stat(path, 0)
        .await
        .map_err(|e| with_path(e, "metadata", path))
}

/// Sets the permission bits of `path` (`mode & 0o7777`, following symbolic links; `chmod` on
/// the blocking pool: io_uring has no opcode for it).
///
/// ```
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-perm-{}", std::process::id()));
/// ringloop::fs::write(&path, b"x".to_vec()).await.unwrap();
/// ringloop::fs::set_permissions(&path, 0o640).await.unwrap();
/// assert_eq!(ringloop::fs::metadata(&path).await.unwrap().permissions(), 0o640);
/// ringloop::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
pub async fn set_permissions(path: impl AsRef<Path>, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.as_ref();
    let owned = path.to_owned();
    super::on_pool(move || {
        std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(mode & 0o7777))
    })
    .await
    .map_err(|e| with_path(e, "set_permissions", path))
}

/// The status of `path` itself, not following a final symbolic link.
///
/// ```
/// # ringloop::run(async {
/// assert!(!ringloop::fs::symlink_metadata("/").await.unwrap().is_symlink());
/// # });
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    stat(path, libc::AT_SYMLINK_NOFOLLOW)
        .await
        .map_err(|e| with_path(e, "symlink_metadata", path))
}

/// Copies the contents of `from` to `to` (created or truncated, with `from`'s permission bits
/// less the umask); returns the bytes copied. The bytes move through a pipe with `splice(2)`
/// (`IORING_OP_SPLICE`; the blocking pool on epoll), 64 KiB per op, never through user space;
/// where the source cannot be spliced (`EINVAL`), a read/write loop through the ring does it.
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir();
/// let (a, b) = (dir.join(format!("ringloop-doc-cp-a-{}", std::process::id())),
///               dir.join(format!("ringloop-doc-cp-b-{}", std::process::id())));
/// std::fs::write(&a, b"copy me").unwrap();
/// assert_eq!(ringloop::fs::copy(&a, &b).await.unwrap(), 7);
/// assert_eq!(std::fs::read(&b).unwrap(), b"copy me");
/// std::fs::remove_file(&a).unwrap();
/// std::fs::remove_file(&b).unwrap();
/// # });
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(with_path(e, "copy", from));
    }
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.permissions())
        .open(to)
        .await?;
    // As std's copy: the target gets the source's permissions exactly — the create mode
    // above was cut by the umask, and an existing target kept its own.
    dst.set_permissions(meta.permissions()).await?;
    let copied = match splice_all(&src, &dst).await? {
        Spliced::All(n) => n,
        Spliced::Unsupported => copy_loop(&src, &dst).await?,
    };
    dst.close().await?;
    Ok(copied)
}

/// Bytes per splice: the default pipe capacity, so a splice into the emptied pipe never waits.
const SPLICE_CHUNK: u32 = 64 * 1024;

enum Spliced {
    All(u64),
    /// The first splice said `EINVAL`: this source (or target) cannot be spliced.
    Unsupported,
}

/// Copies `src` to `dst` through a pipe.
async fn splice_all(src: &File, dst: &File) -> io::Result<Spliced> {
    let (pipe_r, pipe_w) = io::pipe()?;
    // Shared with the ops, so that an abandoned splice never meets a reused fd number.
    let (pipe_r, pipe_w) = (
        Arc::new(OwnedFd::from(pipe_r)),
        Arc::new(OwnedFd::from(pipe_w)),
    );
    let (src_fd, dst_fd) = (src.as_raw_fd(), dst.as_raw_fd());
    let mut copied = 0u64;
    loop {
        let fill = op::splice(src_fd, copied as i64, pipe_w.as_raw_fd(), -1, SPLICE_CHUNK);
        let n = match keep_fd(keep_fd(fill, src.shared_fd()), &pipe_w).await {
            Ok(0) => return Ok(Spliced::All(copied)),
            Ok(n) => n,
            Err(e) if copied == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                return Ok(Spliced::Unsupported);
            }
            Err(e) => return Err(with_path(e, "copy", src.path())),
        };
        let mut left = n;
        while left > 0 {
            let at = (copied + (n - left) as u64) as i64;
            let drain = op::splice(pipe_r.as_raw_fd(), -1, dst_fd, at, left as u32);
            match keep_fd(keep_fd(drain, dst.shared_fd()), &pipe_r).await {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(with_path(e, "copy", dst.path()));
                }
                Ok(m) => left -= m,
                Err(e) => return Err(with_path(e, "copy", dst.path())),
            }
        }
        copied += n as u64;
    }
}

/// Copies `src` to `dst` with reads and writes through the ring, [`CHUNK`] at a time.
async fn copy_loop(src: &File, dst: &File) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut copied = 0u64;
    loop {
        buf.clear();
        let (res, back) = src.read_at(buf, copied).await;
        let n = res?;
        if n == 0 {
            return Ok(copied);
        }
        let (res, back) = dst.write_all_at(back, copied).await;
        res?;
        buf = back;
        copied += n as u64;
    }
}
