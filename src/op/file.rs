//! Descriptor operations on files: sync, allocate, truncate.
//!
//! io_uring: `IORING_OP_FSYNC` (with `IORING_FSYNC_DATASYNC`), `IORING_OP_FALLOCATE`,
//! `IORING_OP_FTRUNCATE` (Linux 6.9+; the driver uses the pool without it),
//! `IORING_OP_SPLICE`. epoll: `fsync`/`fdatasync`, `fallocate`, `ftruncate`, `splice` on the
//! blocking pool ([`FsCall`]).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd, types::FsyncFlags};

use super::fs_call::FsCall;
use super::{Op, sealed::OperationImpl, to_result};
use crate::driver::{Completion, Describe, Syscall};

/// Flushes a file to its device; see [`fsync`].
pub struct Fsync {
    fd: RawFd,
    data_only: bool,
}

/// Flushes `fd`'s data and metadata to the device (`fsync(2)`); with `data_only`, only what
/// reading the data back needs (`fdatasync(2)`).
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let file = std::fs::File::open("/dev/null").unwrap();
/// let _ = ringloop::op::fsync(file.as_raw_fd(), true).await;
/// # });
/// ```
pub fn fsync(fd: RawFd, data_only: bool) -> Op<Fsync> {
    Op::new(Fsync { fd, data_only })
}

impl Describe for Fsync {
    fn opcode(&self) -> u8 {
        opcode::Fsync::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let flags = if self.data_only {
            FsyncFlags::DATASYNC
        } else {
            FsyncFlags::empty()
        };
        opcode::Fsync::new(Fd(self.fd)).flags(flags).build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::Fsync {
            fd: self.fd,
            data_only: self.data_only,
        }
        .syscall()
    }
}

impl OperationImpl for Fsync {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        to_result(done.result).map(drop)
    }
}

/// Allocates or punches file space; see [`fallocate`].
pub struct Fallocate {
    fd: RawFd,
    mode: i32,
    offset: u64,
    len: u64,
}

/// `fallocate(2)`: with `mode` 0, reserves `offset..offset+len` (the file grows if needed).
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-fallocate-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// ringloop::op::fallocate(file.as_raw_fd(), 0, 0, 4096).await.unwrap();
/// assert_eq!(file.metadata().unwrap().len(), 4096);
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn fallocate(fd: RawFd, mode: i32, offset: u64, len: u64) -> Op<Fallocate> {
    Op::new(Fallocate {
        fd,
        mode,
        offset,
        len,
    })
}

impl Describe for Fallocate {
    fn opcode(&self) -> u8 {
        opcode::Fallocate::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Fallocate::new(Fd(self.fd), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::Fallocate {
            fd: self.fd,
            mode: self.mode,
            offset: self.offset,
            len: self.len,
        }
        .syscall()
    }
}

impl OperationImpl for Fallocate {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        to_result(done.result).map(drop)
    }
}

/// Sets a file's length; see [`ftruncate`].
pub struct Ftruncate {
    fd: RawFd,
    len: u64,
}

/// `ftruncate(2)`: cuts the file to `len` bytes or extends it with zeros.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-ftruncate-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
/// ringloop::op::ftruncate(file.as_raw_fd(), 4).await.unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"0123");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn ftruncate(fd: RawFd, len: u64) -> Op<Ftruncate> {
    Op::new(Ftruncate { fd, len })
}

impl Describe for Ftruncate {
    fn opcode(&self) -> u8 {
        opcode::Ftruncate::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(Fd(self.fd), self.len).build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::Ftruncate {
            fd: self.fd,
            len: self.len,
        }
        .syscall()
    }
}

impl OperationImpl for Ftruncate {
    type Output = io::Result<()>;
    fn complete(self, done: Completion) -> Self::Output {
        to_result(done.result).map(drop)
    }
}

/// Moves bytes between a file and a pipe; see [`splice`].
pub struct Splice {
    fd_in: RawFd,
    off_in: i64,
    fd_out: RawFd,
    off_out: i64,
    len: u32,
}

/// `splice(2)`: moves up to `len` bytes from `fd_in` at `off_in` to `fd_out` at `off_out`
/// without copying them through user space; one side must be a pipe, whose offset is -1.
/// Returns the bytes moved (0 at end of input).
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-splice-{}", std::process::id()));
/// std::fs::write(&path, b"spliced").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// let (rx, tx) = std::io::pipe().unwrap();
/// let n = ringloop::op::splice(file.as_raw_fd(), 0, tx.as_raw_fd(), -1, 4096).await.unwrap();
/// assert_eq!(n, 7);
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn splice(fd_in: RawFd, off_in: i64, fd_out: RawFd, off_out: i64, len: u32) -> Op<Splice> {
    Op::new(Splice {
        fd_in,
        off_in,
        fd_out,
        off_out,
        len,
    })
}

impl Describe for Splice {
    fn opcode(&self) -> u8 {
        opcode::Splice::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Splice::new(
            Fd(self.fd_in),
            self.off_in,
            Fd(self.fd_out),
            self.off_out,
            self.len,
        )
        .build()
    }
    fn syscall(&mut self) -> Syscall {
        FsCall::Splice {
            fd_in: self.fd_in,
            off_in: self.off_in,
            fd_out: self.fd_out,
            off_out: self.off_out,
            len: self.len,
        }
        .syscall()
    }
}

impl OperationImpl for Splice {
    type Output = io::Result<usize>;
    fn complete(self, done: Completion) -> Self::Output {
        to_result(done.result)
    }
}
