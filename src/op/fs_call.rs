//! The readiness half of the filesystem ops (`fs.rs`, `file.rs`): calls no fd readiness can
//! announce.
//!
//! Opening, stat-ing, syncing and renaming may block on the disk, and epoll cannot poll them
//! (nor regular files at all), so every [`FsCall`] runs on the blocking pool
//! ([`Syscall::on_pool`]), never on the loop thread; so does the op on an io_uring kernel
//! without its opcode. Paths are raw pointers to NUL-terminated strings that the op owns
//! until its completion.

use std::os::fd::RawFd;

use libc::c_char;

use super::readiness::cqe_result;
use crate::driver::{Mode, Perform, Performed, Syscall};

/// A filesystem syscall with raw arguments, as its SQE would carry them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FsCall {
    /// `openat(dirfd, path, flags | O_CLOEXEC, mode)`; the result is the new fd.
    OpenAt {
        dirfd: RawFd,
        path: *const c_char,
        flags: i32,
        mode: u32,
    },
    /// `statx(dirfd, path, flags, mask, buf)`.
    Statx {
        dirfd: RawFd,
        path: *const c_char,
        flags: i32,
        mask: u32,
        buf: *mut libc::statx,
    },
    /// `fsync(fd)`, or `fdatasync(fd)` with `data_only`.
    Fsync { fd: RawFd, data_only: bool },
    /// `fallocate(fd, mode, offset, len)`.
    Fallocate {
        fd: RawFd,
        mode: i32,
        offset: u64,
        len: u64,
    },
    /// `ftruncate(fd, len)`.
    Ftruncate { fd: RawFd, len: u64 },
    /// `unlinkat(dirfd, path, flags)` (`AT_REMOVEDIR` removes a directory).
    UnlinkAt {
        dirfd: RawFd,
        path: *const c_char,
        flags: i32,
    },
    /// `renameat2(olddirfd, old, newdirfd, new, flags)`.
    RenameAt {
        old_dirfd: RawFd,
        old: *const c_char,
        new_dirfd: RawFd,
        new: *const c_char,
        flags: u32,
    },
    /// `mkdirat(dirfd, path, mode)`.
    MkdirAt {
        dirfd: RawFd,
        path: *const c_char,
        mode: u32,
    },
    /// `linkat(olddirfd, old, newdirfd, new, flags)`.
    LinkAt {
        old_dirfd: RawFd,
        old: *const c_char,
        new_dirfd: RawFd,
        new: *const c_char,
        flags: i32,
    },
    /// `splice(fd_in, off_in, fd_out, off_out, len, 0)`; an offset of -1 means none (a pipe).
    Splice {
        fd_in: RawFd,
        off_in: i64,
        fd_out: RawFd,
        off_out: i64,
        len: u32,
    },
    /// `symlinkat(target, newdirfd, linkpath)`.
    SymlinkAt {
        target: *const c_char,
        new_dirfd: RawFd,
        link: *const c_char,
    },
}

impl FsCall {
    /// The op's readiness half: the call, on the blocking pool.
    pub(crate) fn syscall(self) -> Syscall {
        Syscall::on_pool(self)
    }
}

impl Perform for FsCall {
    /// Performs the call, blocking whatever the mode (it is only ever performed on the pool).
    /// Every path points to a NUL-terminated string and a statx buffer is valid for writes,
    /// as when the op was built (the caller's contract).
    unsafe fn perform(&self, _mode: Mode) -> Performed {
        // SAFETY: the caller guarantees every path is NUL-terminated and every buffer valid.
        let ret: libc::c_long = unsafe {
            match *self {
                FsCall::OpenAt {
                    dirfd,
                    path,
                    flags,
                    mode,
                } => libc::openat(dirfd, path, flags | libc::O_CLOEXEC, mode).into(),
                FsCall::Statx {
                    dirfd,
                    path,
                    flags,
                    mask,
                    buf,
                } => libc::statx(dirfd, path, flags, mask, buf).into(),
                FsCall::Fsync { fd, data_only } => {
                    if data_only {
                        libc::fdatasync(fd).into()
                    } else {
                        libc::fsync(fd).into()
                    }
                }
                FsCall::Fallocate {
                    fd,
                    mode,
                    offset,
                    len,
                } => libc::fallocate(fd, mode, offset as i64, len as i64).into(),
                FsCall::Ftruncate { fd, len } => libc::ftruncate(fd, len as i64).into(),
                FsCall::UnlinkAt { dirfd, path, flags } => {
                    libc::unlinkat(dirfd, path, flags).into()
                }
                FsCall::RenameAt {
                    old_dirfd,
                    old,
                    new_dirfd,
                    new,
                    flags,
                } => libc::renameat2(old_dirfd, old, new_dirfd, new, flags).into(),
                FsCall::MkdirAt { dirfd, path, mode } => libc::mkdirat(dirfd, path, mode).into(),
                FsCall::LinkAt {
                    old_dirfd,
                    old,
                    new_dirfd,
                    new,
                    flags,
                } => libc::linkat(old_dirfd, old, new_dirfd, new, flags).into(),
                FsCall::Splice {
                    fd_in,
                    off_in,
                    fd_out,
                    off_out,
                    len,
                } => {
                    let (mut at_in, mut at_out) = (off_in, off_out);
                    let ptr = |off: &mut i64| {
                        if *off < 0 {
                            std::ptr::null_mut()
                        } else {
                            off as *mut i64
                        }
                    };
                    let (p_in, p_out) = (ptr(&mut at_in), ptr(&mut at_out));
                    libc::splice(fd_in, p_in, fd_out, p_out, len as usize, 0) as libc::c_long
                }
                FsCall::SymlinkAt {
                    target,
                    new_dirfd,
                    link,
                } => libc::symlinkat(target, new_dirfd, link).into(),
            }
        };
        Performed::plain(cqe_result(ret as isize))
    }
}
