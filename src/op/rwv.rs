//! Vectored read and write: one op over several owned buffers.
//!
//! io_uring: `IORING_OP_READV` / `IORING_OP_WRITEV`; epoll: `preadv2`/`pwritev2` (or, where the
//! kernel refuses `RWF_NOWAIT` on a pollable fd, `recvmsg`/`sendmsg` or a guarded
//! `readv`/`writev`, as for [`read`](super::read)).
//! The iovec array lives on the heap inside the op, so it stays put until the completion.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};

use super::readiness::{RwCall, limit_iovecs};
use super::rw::{POSITION_CURRENT, syscall_offset as offset_for_syscall};
use super::{Op, sealed::OperationImpl, to_result};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Completion, Describe, Syscall};

/// A vectored read; see [`readv`].
pub struct ReadVectored<B> {
    fd: RawFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

/// Reads from `fd` into the spare capacity of each buffer in turn.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// std::io::Write::write_all(&mut &tx, b"abcdef").unwrap();
/// let bufs = vec![Vec::with_capacity(2), Vec::with_capacity(4)];
/// let (n, bufs) = ringloop::op::readv(rx.as_raw_fd(), bufs).await;
/// assert_eq!(n.unwrap(), 6);
/// assert_eq!((&bufs[0][..], &bufs[1][..]), (&b"ab"[..], &b"cdef"[..]));
/// # });
/// ```
pub fn readv<B: IoBufMut>(fd: RawFd, bufs: Vec<B>) -> Op<ReadVectored<B>> {
    readv_at(fd, bufs, POSITION_CURRENT)
}

/// Like [`readv`], at `offset`.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-readv-at-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// let bufs = vec![Vec::with_capacity(2), Vec::with_capacity(2)];
/// let (n, bufs) = ringloop::op::readv_at(file.as_raw_fd(), bufs, 6).await;
/// assert_eq!(n.unwrap(), 4);
/// assert_eq!(bufs.concat(), b"6789");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn readv_at<B: IoBufMut>(fd: RawFd, mut bufs: Vec<B>, offset: u64) -> Op<ReadVectored<B>> {
    let iovecs = bufs
        .iter_mut()
        .map(|b| {
            let init = b.bytes_init();
            libc::iovec {
                // SAFETY: `init <= bytes_total`, inside the buffer's allocation.
                iov_base: unsafe { b.stable_mut_ptr().add(init) }.cast(),
                iov_len: b.bytes_total() - init,
            }
        })
        .collect();
    Op::new(ReadVectored {
        fd,
        bufs,
        iovecs,
        offset,
    })
}

impl<B: IoBufMut> Describe for ReadVectored<B> {
    fn opcode(&self) -> u8 {
        opcode::Readv::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Readv::new(Fd(self.fd), self.iovecs.as_ptr(), self.iovecs.len() as u32)
            .offset(self.offset)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        vectored_call(self.fd, &self.iovecs, self.offset, false)
    }
    fn limit(&mut self, max: usize) -> bool {
        limit_vectored(self.fd, &mut self.iovecs, max)
    }
}

/// The readiness half of a vectored read or write.
fn vectored_call(fd: RawFd, iovecs: &[libc::iovec], offset: u64, write: bool) -> Syscall {
    let offset = offset_for_syscall(offset);
    RwCall::iovecs(fd, iovecs.as_ptr(), iovecs.len(), offset, write).syscall()
}

/// Caps a vectored transfer at `max` bytes (see [`Describe::limit`]): the iovecs past it are
/// left out (a read's buffers then receive nothing beyond).
fn limit_vectored(fd: RawFd, iovecs: &mut Vec<libc::iovec>, max: usize) -> bool {
    match limit_iovecs(fd, iovecs, max) {
        Some(keep) => {
            iovecs.truncate(keep);
            true
        }
        None => false,
    }
}

impl<B: IoBufMut> OperationImpl for ReadVectored<B> {
    type Output = (io::Result<usize>, Vec<B>);
    fn complete(mut self, done: Completion) -> Self::Output {
        let res = to_result(done.result);
        if let Ok(mut n) = res {
            for (buf, iov) in self.bufs.iter_mut().zip(&self.iovecs) {
                let filled = n.min(iov.iov_len);
                let init = buf.bytes_init() + filled;
                // SAFETY: the kernel filled `filled` bytes of this buffer's spare capacity.
                unsafe { buf.set_init(init) };
                n -= filled;
            }
        }
        (res, self.bufs)
    }
}

/// A vectored write; see [`writev`].
pub struct WriteVectored<B> {
    fd: RawFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

/// Writes the initialised bytes of each buffer in turn, in one syscall.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let (rx, tx) = std::io::pipe().unwrap();
/// let (n, _) = ringloop::op::writev(tx.as_raw_fd(), vec![b"ab".as_slice(), b"cd".as_slice()]).await;
/// assert_eq!(n.unwrap(), 4);
/// let (_, buf) = ringloop::op::read(rx.as_raw_fd(), Vec::with_capacity(4)).await;
/// assert_eq!(buf, b"abcd");
/// # });
/// ```
pub fn writev<B: IoBuf>(fd: RawFd, bufs: Vec<B>) -> Op<WriteVectored<B>> {
    writev_at(fd, bufs, POSITION_CURRENT)
}

/// Like [`writev`], at `offset`.
///
/// ```
/// use std::os::fd::AsRawFd;
/// # ringloop::run(async {
/// let path = std::env::temp_dir().join(format!("ringloop-doc-writev-at-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// let (n, _) = ringloop::op::writev_at(file.as_raw_fd(), vec![b"xy".as_slice(), b"z".as_slice()], 1).await;
/// assert_eq!(n.unwrap(), 3);
/// assert_eq!(std::fs::read(&path).unwrap(), b"\0xyz");
/// std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub fn writev_at<B: IoBuf>(fd: RawFd, bufs: Vec<B>, offset: u64) -> Op<WriteVectored<B>> {
    let iovecs = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.stable_ptr() as *mut _,
            iov_len: b.bytes_init(),
        })
        .collect();
    Op::new(WriteVectored {
        fd,
        bufs,
        iovecs,
        offset,
    })
}

impl<B: IoBuf> Describe for WriteVectored<B> {
    fn opcode(&self) -> u8 {
        opcode::Writev::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Writev::new(Fd(self.fd), self.iovecs.as_ptr(), self.iovecs.len() as u32)
            .offset(self.offset)
            .build()
    }
    fn syscall(&mut self) -> Syscall {
        vectored_call(self.fd, &self.iovecs, self.offset, true)
    }
    fn limit(&mut self, max: usize) -> bool {
        limit_vectored(self.fd, &mut self.iovecs, max)
    }
}

impl<B: IoBuf> OperationImpl for WriteVectored<B> {
    type Output = (io::Result<usize>, Vec<B>);
    fn complete(self, done: Completion) -> Self::Output {
        (to_result(done.result), self.bufs)
    }
}
