//! [`File`]: an open file whose reads, writes, syncs and stats are ring ops.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::file_poll::FilePoll;
use super::{Metadata, OpenOptions, with_path};
use crate::buf::{IoBuf, IoBufMut};
use crate::op::{self, keep_fd};

/// An open file. Reads and writes take and give back owned buffers, like the [`op`] layer:
/// `(io::Result<usize>, B)`. Positioned I/O (`read_at`, `write_at`) takes `&self`; sequential
/// I/O (`read`, `write`, `readv`, `writev`) moves a cursor kept in the `File` and takes
/// `&mut self`. Every read and write names an offset, so a `File` is for seekable files;
/// for a FIFO or a terminal use [`op::read`]/[`op::write`] on its descriptor.
///
/// Dropping a `File` closes its descriptor synchronously with `close(2)`, which for a regular
/// file is a cheap, non-blocking call (an op on it whose future was dropped keeps the
/// descriptor open until that op finishes, so a late call never reaches a reused fd number); [`close`](File::close) closes it through the ring and
/// reports the error `close(2)` gives.
///
/// ```
/// use ringloop::fs::File;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-file-{}", std::process::id()));
/// let mut file = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
/// let (res, _) = file.write_all(b"hello, file".to_vec()).await;
/// res.unwrap();
/// let (n, buf) = file.read_at(Vec::with_capacity(4), 7).await;
/// assert_eq!((n.unwrap(), &buf[..]), (4, &b"file"[..]));
/// file.close().await.unwrap();
/// ringloop::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
///
/// # Poll-based I/O
///
/// `File` implements futures-io's `AsyncRead` and `AsyncWrite` (and, with the `tokio-io`
/// feature, tokio's), moving the same cursor. Their ops live in the `File`: a read reads
/// ahead into a buffer the `File` owns, a write is accepted into one and written in the
/// background; `poll_flush` (or the cursor methods, which wait for it first) reports its
/// error. See `fs/file_poll.rs` for exactly when.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use ringloop::fs::File;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-file-poll-{}", std::process::id()));
/// let mut file = File::create(&path).await.unwrap();
/// // The inherent owned-buffer methods share these names: name the trait.
/// AsyncWriteExt::write_all(&mut file, b"through futures-io").await.unwrap();
/// AsyncWriteExt::flush(&mut file).await.unwrap();
/// file.close().await.unwrap();
/// let mut text = String::new();
/// File::open(&path).await.unwrap().read_to_string(&mut text).await.unwrap();
/// assert_eq!(text, "through futures-io");
/// # ringloop::fs::remove_file(&path).await.unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct File {
    /// Shared with the ops in flight on it, so that an abandoned op never outlives the
    /// descriptor (whose number could be reused by then).
    fd: Arc<OwnedFd>,
    path: PathBuf,
    pos: u64,
    append: bool,
    /// The poll-based reads and writes, made on first use.
    polled: Option<Box<FilePoll>>,
}

impl File {
    pub(crate) fn from_parts(fd: OwnedFd, path: PathBuf, append: bool) -> File {
        File {
            fd: Arc::new(fd),
            path,
            pos: 0,
            append,
            polled: None,
        }
    }

    /// Opens `path` for reading.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` for writing, creating it or cutting it to length 0.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor, shared with the ops in flight on it.
    pub(crate) fn shared_fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn err(&self, e: io::Error, what: &'static str) -> io::Error {
        with_path(e, what, &self.path)
    }

    /// Reads into the spare capacity of `buf` from `offset`; 0 bytes at end of file.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        let (res, buf) = keep_fd(op::read_at(self.fd(), buf, offset), &self.fd).await;
        (res.map_err(|e| self.err(e, "read")), buf)
    }

    /// Writes the initialised bytes of `buf` at `offset`; may write fewer.
    pub async fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        let (res, buf) = keep_fd(op::write_at(self.fd(), buf, offset), &self.fd).await;
        (res.map_err(|e| self.err(e, "write")), buf)
    }

    /// Writes all initialised bytes of `buf` at `offset`, however many writes that takes.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<()>, B) {
        let len = buf.bytes_init();
        let mut buf = buf;
        let mut done = 0;
        while done < len {
            let (res, slice) = self
                .write_at(buf.slice(done..len), offset + done as u64)
                .await;
            buf = slice.into_inner();
            match res {
                Ok(0) => return (Err(self.err(io::ErrorKind::WriteZero.into(), "write")), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Waits until the bytes a poll-based write accepted are written (their error, if
    /// any), and drops the poll-based read-ahead: the cursor methods start from the cursor.
    async fn settle(&mut self) -> io::Result<()> {
        let Some(polled) = &mut self.polled else {
            return Ok(());
        };
        polled.forget_reads();
        if !polled.write_pending() {
            return Ok(());
        }
        std::future::poll_fn(|cx| polled.poll_written(cx))
            .await
            .map_err(|e| with_path(e, "write", &self.path))
    }

    /// Reads at the cursor and advances it.
    pub async fn read<B: IoBufMut>(&mut self, buf: B) -> (io::Result<usize>, B) {
        if let Err(e) = self.settle().await {
            return (Err(e), buf);
        }
        let (res, buf) = self.read_at(buf, self.pos).await;
        if let Ok(n) = res {
            self.pos += n as u64;
        }
        (res, buf)
    }

    /// Writes at the cursor (at the end of the file when opened with `append`) and advances
    /// it; may write fewer bytes than given.
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        if let Err(e) = self.settle().await {
            return (Err(e), buf);
        }
        if self.append {
            let (res, buf) = keep_fd(op::write(self.fd(), buf), &self.fd).await;
            return (res.map_err(|e| self.err(e, "write")), buf);
        }
        let (res, buf) = self.write_at(buf, self.pos).await;
        if let Ok(n) = res {
            self.pos += n as u64;
        }
        (res, buf)
    }

    /// Writes all of `buf` at the cursor and advances it.
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> (io::Result<()>, B) {
        let len = buf.bytes_init();
        let mut buf = buf;
        let mut done = 0;
        while done < len {
            let (res, slice) = self.write(buf.slice(done..len)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => return (Err(self.err(io::ErrorKind::WriteZero.into(), "write")), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads at the cursor into several buffers in turn (`preadv`), advancing the cursor.
    pub async fn readv<B: IoBufMut>(&mut self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        if let Err(e) = self.settle().await {
            return (Err(e), bufs);
        }
        let (res, bufs) = keep_fd(op::readv_at(self.fd(), bufs, self.pos), &self.fd).await;
        if let Ok(n) = res {
            self.pos += n as u64;
        }
        (res.map_err(|e| self.err(e, "read")), bufs)
    }

    /// Writes several buffers in turn at the cursor (`pwritev`), advancing it.
    pub async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        if let Err(e) = self.settle().await {
            return (Err(e), bufs);
        }
        if self.append {
            let (res, bufs) = keep_fd(op::writev(self.fd(), bufs), &self.fd).await;
            return (res.map_err(|e| self.err(e, "write")), bufs);
        }
        let (res, bufs) = keep_fd(op::writev_at(self.fd(), bufs, self.pos), &self.fd).await;
        if let Ok(n) = res {
            self.pos += n as u64;
        }
        (res.map_err(|e| self.err(e, "write")), bufs)
    }

    /// Moves the cursor; returns the new position. `End` asks the file for its size.
    pub async fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.settle().await?;
        let base = match to {
            io::SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            io::SeekFrom::Current(d) => (self.pos, d),
            io::SeekFrom::End(d) => (self.metadata().await?.len(), d),
        };
        let pos = base.0.checked_add_signed(base.1).ok_or_else(|| {
            self.err(
                io::Error::new(io::ErrorKind::InvalidInput, "seek before byte 0"),
                "seek",
            )
        })?;
        self.pos = pos;
        Ok(pos)
    }

    /// The cursor's position (after the bytes poll-based reads handed out and poll-based
    /// writes accepted).
    pub fn stream_position(&self) -> u64 {
        self.pos
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        keep_fd(op::fsync(self.fd(), false), &self.fd)
            .await
            .map_err(|e| self.err(e, "fsync"))
    }

    /// Flushes the data, and only the metadata needed to read it back (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        keep_fd(op::fsync(self.fd(), true), &self.fd)
            .await
            .map_err(|e| self.err(e, "fdatasync"))
    }

    /// Cuts or extends (with zeros) the file to `len` bytes (`ftruncate`; the blocking pool on
    /// kernels before 6.9).
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        keep_fd(op::ftruncate(self.fd(), len), &self.fd)
            .await
            .map_err(|e| self.err(e, "set_len"))
    }

    /// Reserves disk space for `offset..offset + len`, growing the file if needed
    /// (`fallocate` mode 0).
    pub async fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        keep_fd(op::fallocate(self.fd(), 0, offset, len), &self.fd)
            .await
            .map_err(|e| self.err(e, "allocate"))
    }

    /// Sets the permission bits (`mode & 0o7777`, `fchmod`; on the blocking pool: io_uring
    /// has no opcode for it). Unlike a create mode, the umask does not apply.
    pub async fn set_permissions(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let fd = Arc::clone(&self.fd);
        super::on_pool(move || {
            // std's File::set_permissions is fchmod; a duplicate descriptor lends it one.
            let file = std::fs::File::from(fd.try_clone()?);
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        })
        .await
        .map_err(|e| self.err(e, "set_permissions"))
    }

    /// The file's status (`statx` on the descriptor).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
        let stat = op::statx(self.fd(), c"".into(), libc::AT_EMPTY_PATH, mask);
        keep_fd(stat, &self.fd)
            .await
            .map(Metadata::from_statx)
            .map_err(|e| self.err(e, "metadata"))
    }

    /// Closes the file through the ring and reports `close(2)`'s error. If an op on the file
    /// was abandoned (its future dropped) and has not finished yet, the descriptor is closed
    /// when that op finishes instead, and this returns `Ok`.
    pub async fn close(mut self) -> io::Result<()> {
        self.settle().await?;
        let File {
            fd, path, polled, ..
        } = self;
        drop(polled);
        match Arc::try_unwrap(fd) {
            Ok(fd) => op::close(fd)
                .await
                .map_err(|e| with_path(e, "close", &path)),
            Err(_still_used) => Ok(()),
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl File {
    fn polled(&mut self) -> &mut FilePoll {
        let fd = &self.fd;
        self.polled
            .get_or_insert_with(|| Box::new(FilePoll::new(fd)))
    }
}

impl futures_io::AsyncRead for File {
    /// Reads at the cursor (through the `File`'s read-ahead buffer) and advances it.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut pos = this.pos;
        let res = this.polled().poll_read(cx, &mut pos, buf);
        this.pos = pos;
        res.map_err(|e| this.err(e, "read"))
    }
}

impl futures_io::AsyncWrite for File {
    /// Accepts up to 64 KiB at the cursor (at the end when opened with `append`) and
    /// advances it; the write goes on in the `File`.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (mut pos, append) = (this.pos, this.append);
        let res = this.polled().poll_write(cx, &mut pos, append, buf);
        this.pos = pos;
        res.map_err(|e| this.err(e, "write"))
    }

    /// Ready when every accepted byte is written (not synced: see
    /// [`sync_all`](File::sync_all)).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.polled {
            Some(polled) => polled
                .poll_written(cx)
                .map_err(|e| with_path(e, "write", &this.path)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// As `poll_flush`; the descriptor closes when the `File` is dropped.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
