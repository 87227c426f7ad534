//! Path operations: open, stat, unlink, rename, mkdir, link, symlink.
//!
//! io_uring: `IORING_OP_OPENAT`, `STATX`, `UNLINKAT`, `RENAMEAT`, `MKDIRAT`, `LINKAT`,
//! `SYMLINKAT`. epoll: the same syscalls ([`FsCall`]), always on the blocking pool (they may
//! block on the disk and cannot be polled); so on io_uring where the kernel's ring lacks the
//! op's opcode, which the driver then runs on the pool in its place. Each op owns its paths
//! as `CString`s until its completion, so a dropped op leaves nothing dangling; an orphaned
//! open closes the fd it produced.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types::Fd};

use super::fs_call::FsCall;
use super::{Op, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Syscall};

fn unit(done: Completion) -> io::Result<()> {
    to_result(done.result).map(drop)
}

/// Opens a file; see [`openat`].
pub struct OpenAt {
    dirfd: RawFd,
    path: CString,
    flags: i32,
    mode: u32,
}

/// Opens `path` relative to `dirfd` (`libc::AT_FDCWD`: the working directory) with `open(2)`
/// `flags` (`O_CLOEXEC` is always added) and `mode` for a created file.
///
/// ```
/// # ringloop::run(async {
/// let fd = ringloop::op::openat(libc::AT_FDCWD, c"/dev/null".into(), libc::O_RDONLY, 0)
///     .await
///     .unwrap();
/// drop(fd);
/// # });
/// ```
pub fn openat(dirfd: RawFd, path: CString, flags: i32, mode: u32) -> Op<OpenAt> {
    Op::new(OpenAt {
        dirfd,
        path,
        flags: flags | libc::O_CLOEXEC,
        mode,
    })
}

impl Describe for OpenAt {
    fn opcode(&self) -> u8 {
        opcode::OpenAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(Fd(self.dirfd), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::OpenAt {
            dirfd: self.dirfd,
            path: self.path.as_ptr(),
            flags: self.flags,
            mode: self.mode,
        }
        .syscall()
    }
}

impl OperationImpl for OpenAt {
    type Output = io::Result<OwnedFd>;
    const RETURNS_FD: bool = true;
    fn complete(self, done: Completion) -> Self::Output {
        // SAFETY: a non-negative result is a descriptor the kernel just created for us.
        to_result(done.result).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// File status; see [`statx`].
pub struct Statx {
    dirfd: RawFd,
    path: CString,
    flags: i32,
    mask: u32,
    buf: Box<libc::statx>,
}

/// `statx(2)`: the status of `path` relative to `dirfd`, or of `dirfd` itself with an empty
/// path and `libc::AT_EMPTY_PATH`. `mask` names the fields wanted (`libc::STATX_BASIC_STATS`).
///
/// ```
/// # ringloop::run(async {
/// let st = ringloop::op::statx(libc::AT_FDCWD, c"/".into(), 0, libc::STATX_BASIC_STATS)
///     .await
///     .unwrap();
/// assert_eq!(u32::from(st.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
/// # });
/// ```
pub fn statx(dirfd: RawFd, path: CString, flags: i32, mask: u32) -> Op<Statx> {
    // SAFETY: statx is plain integers; all-zero is a valid value.
    let buf = Box::new(unsafe { std::mem::zeroed::<libc::statx>() });
    Op::new(Statx {
        dirfd,
        path,
        flags,
        mask,
        buf,
    })
}

impl Describe for Statx {
    fn opcode(&self) -> u8 {
        opcode::Statx::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.buf;
        opcode::Statx::new(Fd(self.dirfd), self.path.as_ptr(), buf.cast())
            .flags(self.flags)
            .mask(self.mask)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::Statx {
            dirfd: self.dirfd,
            path: self.path.as_ptr(),
            flags: self.flags,
            mask: self.mask,
            buf: &mut *self.buf,
        }
        .syscall()
    }
}

impl OperationImpl for Statx {
    type Output = io::Result<libc::statx>;
    fn complete(self, done: Completion) -> Self::Output {
        to_result(done.result).map(|_| *self.buf)
    }
}

/// Removes a name; see [`unlinkat`].
pub struct UnlinkAt {
    dirfd: RawFd,
    path: CString,
    flags: i32,
}

/// Removes `path` relative to `dirfd`: a file, or an empty directory with
/// `libc::AT_REMOVEDIR`.
///
/// ```
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-unlink-{}", std::process::id()));
/// std::fs::write(&path, b"x").unwrap();
/// let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
/// ringloop::op::unlinkat(libc::AT_FDCWD, c, 0).await.unwrap();
/// assert!(!path.exists());
/// # });
/// ```
pub fn unlinkat(dirfd: RawFd, path: CString, flags: i32) -> Op<UnlinkAt> {
    Op::new(UnlinkAt { dirfd, path, flags })
}

impl Describe for UnlinkAt {
    fn opcode(&self) -> u8 {
        opcode::UnlinkAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(Fd(self.dirfd), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::UnlinkAt {
            dirfd: self.dirfd,
            path: self.path.as_ptr(),
            flags: self.flags,
        }
        .syscall()
    }
}

impl OperationImpl for UnlinkAt {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        unit(done)
    }
}

/// Renames; see [`renameat`].
pub struct RenameAt {
    old_dirfd: RawFd,
    old: CString,
    new_dirfd: RawFd,
    new: CString,
    flags: u32,
}

/// `renameat2(2)`: moves `old` to `new`, replacing `new` unless `flags` has
/// `libc::RENAME_NOREPLACE`.
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir();
/// let (a, b) = (dir.join(format!("ringloop-doc-mv-a-{}", std::process::id())),
///               dir.join(format!("ringloop-doc-mv-b-{}", std::process::id())));
/// std::fs::write(&a, b"x").unwrap();
/// let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
/// ringloop::op::renameat(libc::AT_FDCWD, c(&a), libc::AT_FDCWD, c(&b), 0).await.unwrap();
/// assert!(b.exists() && !a.exists());
/// std::fs::remove_file(&b).unwrap();
/// # });
/// ```
pub fn renameat(
    old_dirfd: RawFd,
    old: CString,
    new_dirfd: RawFd,
    new: CString,
    flags: u32,
) -> Op<RenameAt> {
    Op::new(RenameAt {
        old_dirfd,
        old,
        new_dirfd,
        new,
        flags,
    })
}

impl Describe for RenameAt {
    fn opcode(&self) -> u8 {
        opcode::RenameAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::RenameAt::new(
            Fd(self.old_dirfd),
            self.old.as_ptr(),
            Fd(self.new_dirfd),
            self.new.as_ptr(),
        )
        .flags(self.flags)
        .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::RenameAt {
            old_dirfd: self.old_dirfd,
            old: self.old.as_ptr(),
            new_dirfd: self.new_dirfd,
            new: self.new.as_ptr(),
            flags: self.flags,
        }
        .syscall()
    }
}

impl OperationImpl for RenameAt {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        unit(done)
    }
}

/// Creates a directory; see [`mkdirat`].
pub struct MkdirAt {
    dirfd: RawFd,
    path: CString,
    mode: u32,
}

/// Creates the directory `path` relative to `dirfd` with `mode` (less the umask).
///
/// ```
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-mkdir-{}", std::process::id()));
/// let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
/// ringloop::op::mkdirat(libc::AT_FDCWD, c, 0o755).await.unwrap();
/// assert!(path.is_dir());
/// std::fs::remove_dir(&path).unwrap();
/// # });
/// ```
pub fn mkdirat(dirfd: RawFd, path: CString, mode: u32) -> Op<MkdirAt> {
    Op::new(MkdirAt { dirfd, path, mode })
}

impl Describe for MkdirAt {
    fn opcode(&self) -> u8 {
        opcode::MkDirAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(Fd(self.dirfd), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::MkdirAt {
            dirfd: self.dirfd,
            path: self.path.as_ptr(),
            mode: self.mode,
        }
        .syscall()
    }
}

impl OperationImpl for MkdirAt {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        unit(done)
    }
}

/// Creates a hard link; see [`linkat`].
pub struct LinkAt {
    old_dirfd: RawFd,
    old: CString,
    new_dirfd: RawFd,
    new: CString,
    flags: i32,
}

/// Creates `new` as another name for `old` (a hard link).
///
/// ```
/// # ringloop::run(async {
/// let dir = std::env::temp_dir();
/// let (a, b) = (dir.join(format!("ringloop-doc-ln-a-{}", std::process::id())),
///               dir.join(format!("ringloop-doc-ln-b-{}", std::process::id())));
/// std::fs::write(&a, b"x").unwrap();
/// let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
/// ringloop::op::linkat(libc::AT_FDCWD, c(&a), libc::AT_FDCWD, c(&b), 0).await.unwrap();
/// assert_eq!(std::fs::read(&b).unwrap(), b"x");
/// std::fs::remove_file(&a).unwrap();
/// std::fs::remove_file(&b).unwrap();
/// # });
/// ```
pub fn linkat(
    old_dirfd: RawFd,
    old: CString,
    new_dirfd: RawFd,
    new: CString,
    flags: i32,
) -> Op<LinkAt> {
    Op::new(LinkAt {
        old_dirfd,
        old,
        new_dirfd,
        new,
        flags,
    })
}

impl Describe for LinkAt {
    fn opcode(&self) -> u8 {
        opcode::LinkAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::LinkAt::new(
            Fd(self.old_dirfd),
            self.old.as_ptr(),
            Fd(self.new_dirfd),
            self.new.as_ptr(),
        )
        .flags(self.flags)
        .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::LinkAt {
            old_dirfd: self.old_dirfd,
            old: self.old.as_ptr(),
            new_dirfd: self.new_dirfd,
            new: self.new.as_ptr(),
            flags: self.flags,
        }
        .syscall()
    }
}

impl OperationImpl for LinkAt {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        unit(done)
    }
}

/// Creates a symbolic link; see [`symlinkat`].
pub struct SymlinkAt {
    target: CString,
    new_dirfd: RawFd,
    link: CString,
}

/// Creates `link` (relative to `new_dirfd`) as a symbolic link whose content is `target`.
///
/// ```
/// # ringloop::run(async {
/// let link = std::env::temp_dir().join(format!("ringloop-doc-symlink-{}", std::process::id()));
/// let c = std::ffi::CString::new(link.to_str().unwrap()).unwrap();
/// ringloop::op::symlinkat(c"/".into(), libc::AT_FDCWD, c).await.unwrap();
/// assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/"));
/// std::fs::remove_file(&link).unwrap();
/// # });
/// ```
pub fn symlinkat(target: CString, new_dirfd: RawFd, link: CString) -> Op<SymlinkAt> {
    Op::new(SymlinkAt {
        target,
        new_dirfd,
        link,
    })
}

impl Describe for SymlinkAt {
    fn opcode(&self) -> u8 {
        opcode::SymlinkAt::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::SymlinkAt::new(Fd(self.new_dirfd), self.target.as_ptr(), self.link.as_ptr()).build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::SymlinkAt {
            target: self.target.as_ptr(),
            new_dirfd: self.new_dirfd,
            link: self.link.as_ptr(),
        }
        .syscall()
    }
}

impl OperationImpl for SymlinkAt {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        unit(done)
    }
}
