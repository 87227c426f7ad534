//! Multishot receive with buffer select: one submission, a completion per chunk of data, each
//! in a buffer the kernel picked from a [`BufRing`] when the data arrived.
//!
//! io_uring: `IORING_OP_RECV` with `IORING_RECV_MULTISHOT` and `IOSQE_BUFFER_SELECT`; each CQE
//! carries `IORING_CQE_F_BUFFER` and the buffer id. epoll: a [`RecvSelect`] call queued on
//! the fd: on each readiness report it takes a buffer from the ring's user-space pool and
//! receives into it, repeated until `EAGAIN`.
//!
//! The stream ends at end of file (a completion of 0), on an error, or with `ENOBUFS` when no
//! buffer was free — the data then stays in the socket for the next receive.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types::Fd};

use super::net::recv_now;
use super::sealed::OperationImpl;
use super::stream::{OpStream, sealed::MultishotImpl};
use super::to_result;
use crate::buf::{BufRing, RingBuf};
use crate::driver::{
    BUFFER_SHIFT, BufferSource, Completion, Describe, F_BUFFER, Mode, Perform, Performed, Syscall,
};

/// The multishot receive op; see [`recv_multishot`].
pub struct RecvMulti {
    fd: RawFd,
    ring: BufRing,
    /// `fd` is a TCP socket (see [`RecvSelect`]).
    tcp: bool,
}

/// Receives from socket `fd` into buffers `ring` picks, as a stream: `Ok(Some(buf))` per chunk
/// of data, `Ok(None)` at end of file, then the stream ends. An `ENOBUFS` error means every
/// buffer was in use; nothing was lost, and a new stream picks up where this one stopped
/// ([`net::RecvStream`](crate::net::RecvStream) does that by itself).
///
/// Not available on io_uring kernels without buffer rings ([`BufRing::is_kernel`] false on
/// io_uring): the stream then fails with `EBADF`; use `net::RecvStream`, which falls back.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use ringloop::buf::BufRing;
/// # ringloop::run(async {
/// let ring = BufRing::builder().build().unwrap();
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let mut chunks = ringloop::op::recv_multishot(b.as_raw_fd(), &ring);
/// std::io::Write::write_all(&mut &a, b"hi").unwrap();
/// let buf = chunks.next().await.unwrap().unwrap().unwrap();
/// assert_eq!(&buf[..], b"hi");
/// # });
/// ```
pub fn recv_multishot(fd: RawFd, ring: &BufRing) -> OpStream<RecvMulti> {
    OpStream::new(RecvMulti {
        fd,
        ring: ring.clone(),
        tcp: false,
    })
}

/// [`recv_multishot`] on a stream socket that is TCP or not (`tcp`): from TCP the epoll
/// backend stops trying once a receive comes back short (see
/// [`recv_stream`](super::net::recv_stream)).
pub(crate) fn recv_multishot_stream(fd: RawFd, ring: &BufRing, tcp: bool) -> OpStream<RecvMulti> {
    OpStream::new(RecvMulti {
        fd,
        ring: ring.clone(),
        tcp,
    })
}

impl RecvMulti {
    fn received(&mut self, done: Completion) -> io::Result<Option<RingBuf>> {
        let n = to_result(done.result)?;
        if done.flags & F_BUFFER != 0 {
            let bid = (done.flags >> BUFFER_SHIFT) as u16;
            return Ok(Some(self.ring.lend(bid, n)));
        }
        // No buffer: end of file (the only bufferless success).
        Ok(None)
    }
}

impl Describe for RecvMulti {
    fn opcode(&self) -> u8 {
        opcode::RecvMulti::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        match self.ring.group() {
            Some(bgid) => opcode::RecvMulti::new(Fd(self.fd), bgid).build(),
            // A user-space ring on io_uring cannot be selected from by the kernel: fail with
            // EBADF rather than receive into nothing.
            None => opcode::RecvMulti::new(Fd(-1), 0).build(),
        }
    }
    fn syscall(&mut self) -> Syscall {
        let call = RecvSelect {
            fd: self.fd,
            source: self.ring.source(),
            tcp: self.tcp,
        };
        // Receives until EAGAIN on each report; end of file ends the stream.
        Syscall::on_readable(self.fd, call)
            .draining()
            .ending_at_eof()
    }
    fn multishot(&self) -> bool {
        true
    }
    fn buf_group(&self) -> Option<u16> {
        self.ring.group()
    }
    fn shares_buffers(&self) -> bool {
        crate::buf::is_loop_ring(&self.ring)
    }
}

/// `recv(fd, ...)` into a buffer `source` picks, as io_uring's buffer select does: the
/// completion's flags carry `IORING_CQE_F_BUFFER` and the buffer id. No buffer free:
/// `-ENOBUFS`. Nothing received: the buffer goes back to `source`.
#[derive(Clone, Copy)]
struct RecvSelect {
    fd: RawFd,
    /// The ring's buffers, alive as long as the op (which holds the ring).
    source: *const (dyn BufferSource + 'static),
    /// A TCP socket: a receive that fills less than its buffer has drained the socket (see
    /// [`recv_stream`](super::net::recv_stream) for the sockets where it has not).
    tcp: bool,
}

impl Perform for RecvSelect {
    unsafe fn perform(&self, mode: Mode) -> Performed {
        // SAFETY: the op holds the ring, so the source outlives the op (the caller's contract).
        let source = unsafe { &*self.source };
        let Some((bid, buf, len)) = source.take() else {
            return Performed::plain(-libc::ENOBUFS);
        };
        // SAFETY: the source lent `buf` for `len` bytes until it is given back or recycled.
        let result = unsafe { recv_now(self.fd, buf, len, mode.nowait()) };
        if result <= 0 {
            source.give_back(bid);
            return Performed::plain(result);
        }
        Performed {
            result,
            flags: F_BUFFER | (u32::from(bid) << BUFFER_SHIFT),
            drained: self.tcp && (result as usize) < len,
        }
    }
}

impl OperationImpl for RecvMulti {
    type Output = io::Result<Option<RingBuf>>;
    fn complete(mut self, done: Completion) -> Self::Output {
        self.received(done)
    }
    fn release(&mut self, done: Completion) {
        if done.flags & F_BUFFER != 0 {
            self.ring
                .recycle_unread((done.flags >> BUFFER_SHIFT) as u16);
        }
    }
}

impl MultishotImpl for RecvMulti {
    type Item = io::Result<Option<RingBuf>>;
    fn item(&mut self, done: Completion) -> Self::Item {
        self.received(done)
    }
}
