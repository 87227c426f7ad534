//! [`read_dir`]: a directory's entries, read on the blocking pool (io_uring has no getdents
//! opcode) a batch at a time, so the loop never blocks on a large or slow directory.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};

use super::{Metadata, on_pool, symlink_metadata, with_path};

/// Entries read per trip to the blocking pool.
const BATCH: usize = 64;

/// The entries of a directory, from [`read_dir`]; `.` and `..` are left out.
pub struct ReadDir {
    path: PathBuf,
    /// The open directory stream while more may come; travels to the pool and back.
    dir: Option<std::fs::ReadDir>,
    batch: VecDeque<io::Result<DirEntry>>,
}

/// One entry of a [`ReadDir`].
#[derive(Debug)]
pub struct DirEntry {
    path: PathBuf,
    file_name: OsString,
    file_type: FileType,
}

/// Opens directory `path` for reading its entries.
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir().join(format!("ringloop-doc-readdir-{}", std::process::id()));
/// ringloop::fs::create_dir_all(dir.join("sub")).await.unwrap();
/// ringloop::fs::write(dir.join("a.txt"), b"a".to_vec()).await.unwrap();
/// let mut names = Vec::new();
/// let mut entries = ringloop::fs::read_dir(&dir).await.unwrap();
/// while let Some(entry) = entries.next_entry().await.unwrap() {
///     names.push((entry.file_name().into_string().unwrap(), entry.file_type().is_dir()));
/// }
/// names.sort();
/// assert_eq!(names, [("a.txt".to_string(), false), ("sub".to_string(), true)]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
///
/// # Errors
///
/// When `path` cannot be opened as a directory; the error names the path.
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let open = path.clone();
    let dir = on_pool(move || std::fs::read_dir(open))
        .await
        .map_err(|e| with_path(e, "read_dir", &path))?;
    Ok(ReadDir {
        path,
        dir: Some(dir),
        batch: VecDeque::new(),
    })
}

impl ReadDir {
    /// The next entry; `None` when the directory has no more. An error reading one entry is
    /// returned in its place (and names the directory); reading may go on after it.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        if self.batch.is_empty() {
            let Some(mut dir) = self.dir.take() else {
                return Ok(None);
            };
            let (dir, batch) = on_pool(move || {
                let batch: VecDeque<_> = dir.by_ref().take(BATCH).map(entry).collect();
                let more = batch.len() == BATCH;
                Ok((more.then_some(dir), batch))
            })
            .await?;
            self.dir = dir;
            self.batch = batch;
        }
        match self.batch.pop_front() {
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(e)) => Err(with_path(e, "read_dir", &self.path)),
            None => Ok(None),
        }
    }
}

/// Reads what [`DirEntry`] keeps, on the pool (`file_type` may need a `stat` where the
/// filesystem does not report types in its directory entries).
fn entry(e: io::Result<std::fs::DirEntry>) -> io::Result<DirEntry> {
    let e = e?;
    Ok(DirEntry {
        path: e.path(),
        file_name: e.file_name(),
        file_type: e.file_type()?,
    })
}

impl DirEntry {
    /// The directory's path joined with [`file_name`](Self::file_name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name, without the directory.
    pub fn file_name(&self) -> OsString {
        self.file_name.clone()
    }

    /// The entry's type, not following a symbolic link (read with the entry).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// The entry's status, not following a symbolic link (`statx` through the ring).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(&self.path).await
    }
}

impl std::fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDir").field("path", &self.path).finish()
    }
}
