//! The epoll half of the filesystem ops: calls no fd readiness can announce.
//!
//! Opening, stat-ing, syncing and renaming may block on the disk, and epoll cannot poll them
//! (nor regular files at all), so the epoll backend hands every [`FsCall`] to the blocking
//! pool; it never runs on the loop thread. Paths are raw pointers to NUL-terminated strings
//! that the op owns until its completion.

use std::os::fd::RawFd;

use libc::c_char;

/// A filesystem syscall with raw arguments, as its SQE would carry them.
#[derive(Clone, Copy, Debug)]
pub enum FsCall {
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
    /// Performs the call (blocking) and returns the result or a negated errno, like a CQE.
    ///
    /// # Safety
    ///
    /// Every path must point to a NUL-terminated string and a statx buffer must be valid for
    /// writes, as when the op was built; the op table keeps them alive until completion.
    pub unsafe fn perform(&self) -> i32 {
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
        if ret < 0 {
            -std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        } else {
            ret.min(i32::MAX as libc::c_long) as i32
        }
    }
}
