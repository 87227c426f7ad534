//! Read and write on any fd, at the current position or at an offset.
//!
//! io_uring: `IORING_OP_READ` / `IORING_OP_WRITE` (offset -1 = current position).
//! epoll: `preadv2`/`pwritev2` with `RWF_NOWAIT` when the fd is ready; the blocking pool for
//! fds epoll cannot poll. Where the kernel refuses `RWF_NOWAIT` on a pollable fd (pipes and
//! sockets on Linux 6.1), `recv`/`send` with `MSG_DONTWAIT` on a socket, else a read or write
//! guarded by `O_NONBLOCK` or a zero-timeout `poll(2)` (a write then capped at `PIPE_BUF`):
//! the [`RwCall`] this file shares with the vectored ops.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};

use super::readiness::{RwCall, limit_len, spare_within};
use super::{Op, filled, sealed::OperationImpl, to_result};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Syscall};

/// "Use the file position", as io_uring spells it.
const CURRENT_POSITION: u64 = u64::MAX;

pub(crate) fn syscall_offset(offset: u64) -> i64 {
    if offset == CURRENT_POSITION {
        -1
    } else {
        offset as i64
    }
}

/// A read into an owned buffer; see [`read`] and [`read_at`].
pub struct Read<B> {
    fd: RawFd,
    buf: B,
    offset: u64,
    /// Most bytes to transfer (see [`Describe::limit`]).
    max: usize,
}

/// Reads from `fd` at its current position into the spare capacity of `buf`.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// std::io::Write::write_all(&mut &tx, b"ping").unwrap();
/// let (n, buf) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(64)).await;
/// assert_eq!((n.unwrap(), &buf[..]), (4, &b"ping"[..]));
/// # });
/// ```
pub fn read<B: IoBufMut>(fd: RawFd, buf: B) -> Op<Read<B>> {
    read_at(fd, buf, CURRENT_POSITION)
}

/// Reads from `fd` at `offset` (a positioned read: files, block devices).
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-read-at-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// let (n, buf) = ringloop::op::read_at(file.as_raw_fd(), Vec::with_capacity(3), 4).await;
/// assert_eq!((n.unwrap(), &buf[..]), (3, &b"456"[..]));
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn read_at<B: IoBufMut>(fd: RawFd, buf: B, offset: u64) -> Op<Read<B>> {
    Op::new(Read {
        fd,
        buf,
        offset,
        max: usize::MAX,
    })
}

impl<B: IoBufMut> Read<B> {
    /// The spare capacity to read into, within the limit.
    fn target(&mut self) -> (*mut u8, usize) {
        spare_within(&mut self.buf, self.max)
    }
}

impl<B: IoBufMut> Describe for Read<B> {
    fn opcode(&self) -> u8 {
        opcode::Read::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let (ptr, len) = self.target();
        opcode::Read::new(Fd(self.fd), ptr, len as u32)
            .offset(self.offset)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        let (ptr, len) = self.target();
        RwCall::buffer(self.fd, ptr, len, syscall_offset(self.offset), false).syscall()
    }
    fn limit(&mut self, max: usize) -> bool {
        let len = self.target().1;
        limit_len(self.fd, len, max, &mut self.max)
    }
}

impl<B: IoBufMut> OperationImpl for Read<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        filled(self.buf, done)
    }
}

/// A write from an owned buffer; see [`write()`] and [`write_at`].
pub struct Write<B> {
    fd: RawFd,
    buf: B,
    offset: u64,
    /// Most bytes to transfer (see [`Describe::limit`]).
    max: usize,
}

/// Writes the initialised bytes of `buf` to `fd` at its current position. Like `write(2)`,
/// it may write fewer bytes than given; the count comes back with the buffer.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (_rx, tx) = std::io::pipe().unwrap();
/// let (n, _buf) = ringloop::op::write(tx.as_raw_fd(), b"pong".to_vec()).await;
/// assert_eq!(n.unwrap(), 4);
/// # });
/// ```
pub fn write<B: IoBuf>(fd: RawFd, buf: B) -> Op<Write<B>> {
    write_at(fd, buf, CURRENT_POSITION)
}

/// Writes the initialised bytes of `buf` to `fd` at `offset`.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-write-at-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// let (n, _) = ringloop::op::write_at(file.as_raw_fd(), b"abc".as_slice(), 2).await;
/// assert_eq!(n.unwrap(), 3);
/// assert_eq!(std::fs::read(&path).unwrap(), b"\0\0abc");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn write_at<B: IoBuf>(fd: RawFd, buf: B, offset: u64) -> Op<Write<B>> {
    Op::new(Write {
        fd,
        buf,
        offset,
        max: usize::MAX,
    })
}

impl<B: IoBuf> Write<B> {
    /// The bytes to write, within the limit.
    fn len(&self) -> usize {
        self.buf.bytes_init().min(self.max)
    }
}

impl<B: IoBuf> Describe for Write<B> {
    fn opcode(&self) -> u8 {
        opcode::Write::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        let len = self.len().min(u32::MAX as usize) as u32;
        opcode::Write::new(Fd(self.fd), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        let (ptr, len) = (self.buf.stable_ptr(), self.len());
        RwCall::buffer(self.fd, ptr, len, syscall_offset(self.offset), true).syscall()
    }
    fn limit(&mut self, max: usize) -> bool {
        limit_len(self.fd, self.len(), max, &mut self.max)
    }
}

impl<B: IoBuf> OperationImpl for Write<B> {
    type Output = (io::Result<usize>, B);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.buf)
    }
}

pub(crate) const POSITION_CURRENT: u64 = CURRENT_POSITION;
