//! The byte-stream core shared by [`TcpStream`](super::TcpStream) and
//! [`UnixStream`](super::UnixStream): a connected socket, its reads and writes, and what a
//! dropped read left behind.
//!
//! # Cancelled reads lose nothing
//!
//! A read future dropped while the kernel owns its op is not cancelled: the stream adopts the
//! op ([`adopt`](super::adopt)), and the next read first takes whatever that op received.
//! Bytes beyond what that next read's buffer holds wait in `leftover`; descriptors a dropped
//! `recv_with_fds` received wait in `fds` for the next `recv_with_fds`.
//!
//! Reads take the stream's turn ([`turn`](super::turn)) for their whole length — a
//! `read_exact` for all of its reads — so concurrent reads run one after another and get the
//! bytes in order, and two dropped together leave one adopted op, not two.
//!
//! # Poll-based I/O
//!
//! The futures-io (and tokio) traits on the stream types run here too: reads in
//! [`poll_read`](self::poll_read), whose receive waits in the same adopted slot a dropped
//! read's does, and writes in [`poll_write`](self::poll_write), whose accepted bytes and
//! send the stream keeps.

mod poll_read;
mod poll_write;

use std::cell::{OnceCell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll, ready};

use socket2::Socket;

use super::adopt::{self, AdoptOnDrop, Adopted};
use crate::buf::{self, IoBuf, IoBufMut};
use crate::op::{self, Control};

/// A connected stream socket with the reads a drop left behind. Public only inside a private
/// module, so that the split halves can name it in their sealed trait.
pub struct StreamSocket {
    /// What `poll_write` accepted and the send carrying it, shared with the task that
    /// drives the send; made on the first `poll_write`.
    write: OnceCell<poll_write::SharedWrite>,
    /// Dropped first: an adopted read still in flight is cancelled before the socket
    /// closes, so no op is left naming a closed descriptor.
    rescue: Rescue,
    /// Keeps the socket registered with the epoll backend; dropped before `socket` closes.
    _registration: op::Registration,
    socket: Socket,
    /// A TCP socket, where a short receive means the socket is empty (see [`op::recv_stream`]).
    tcp: bool,
}

/// Which stream socket a [`StreamSocket`] wraps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Family {
    Tcp,
    Unix,
}

impl StreamSocket {
    pub(crate) fn new(socket: Socket, family: Family) -> Self {
        StreamSocket {
            write: OnceCell::new(),
            rescue: Rescue::default(),
            _registration: op::Registration::new(socket.as_raw_fd()),
            socket,
            tcp: family == Family::Tcp,
        }
    }

    /// Wraps an accepted descriptor, switched to non-blocking.
    pub(crate) fn from_owned(fd: OwnedFd, family: Family) -> io::Result<Self> {
        let socket = Socket::from(fd);
        socket.set_nonblocking(true)?;
        Ok(StreamSocket::new(socket, family))
    }

    /// Whether this is a TCP socket (see [`op::recv_stream`]).
    pub(crate) fn is_tcp(&self) -> bool {
        self.tcp
    }

    /// A receive into `buf`, told what a short receive means on this socket.
    fn recv_op<B: IoBufMut>(&self, buf: B) -> op::Op<op::Recv<B>> {
        op::recv_stream(self.socket.as_raw_fd(), buf, self.tcp)
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Where a receive stream dropped mid-flight hands what it had received.
    pub(crate) fn receive_slot(&self) -> ReceiveSlot<'_> {
        ReceiveSlot(&self.rescue.adopted)
    }

    /// Whether a dropped read left bytes or descriptors, or is still in flight: the next
    /// read must come through [`read`](Self::read), which takes them first.
    #[cfg(feature = "tls")]
    pub(crate) fn has_rescued(&self) -> bool {
        !self.rescue.is_empty()
    }

    /// Gives the socket back, unless a dropped read still owns bytes or descriptors, or
    /// bytes `poll_write` accepted are still being sent.
    pub(crate) fn into_socket(mut self, what: &str) -> io::Result<Socket> {
        if !self.rescue.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}::into_std: a dropped read is still in flight or left data unread"),
            ));
        }
        if self.write_unsent() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}::into_std: written bytes are still being sent (flush first)"),
            ));
        }
        // The stream closes a duplicate in its place when dropped (its `Drop` rules out
        // moving the socket out).
        let dup = self.socket.try_clone()?;
        Ok(std::mem::replace(&mut self.socket, dup))
    }

    pub(crate) async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let _turn = self.rescue.adopted.take_turn().await;
        self.read_in_turn(buf).await
    }

    /// A read by the holder of the turn.
    async fn read_in_turn<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        match self.rescue.take(|src| buf::fill_from(&mut buf, src)).await {
            Rescued::Bytes(n) => return (Ok(n), buf),
            Rescued::Eof => return (Ok(0), buf),
            Rescued::Failed(e) => return (Err(e), buf),
            Rescued::Nothing => {}
        }
        let op = self.recv_op(buf);
        AdoptOnDrop::new(&self.rescue.adopted, op, received::<B>).await
    }

    pub(crate) async fn readv<B: IoBufMut>(&self, mut bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        let _turn = self.rescue.adopted.take_turn().await;
        match self.rescue.take(|src| fill_each(&mut bufs, src)).await {
            Rescued::Bytes(n) => return (Ok(n), bufs),
            Rescued::Eof => return (Ok(0), bufs),
            Rescued::Failed(e) => return (Err(e), bufs),
            Rescued::Nothing => {}
        }
        let before: Vec<usize> = bufs.iter().map(IoBuf::bytes_init).collect();
        let op = op::readv(self.socket.as_raw_fd(), bufs);
        let adopt = move |(res, bufs): (io::Result<usize>, Vec<B>)| {
            res.map(|_| Arrived {
                bytes: bufs
                    .iter()
                    .zip(&before)
                    .flat_map(|(b, &from)| buf::init_bytes(b, from).to_vec())
                    .collect(),
                fds: Vec::new(),
                control_truncated: false,
            })
        };
        AdoptOnDrop::new(&self.rescue.adopted, op, adopt).await
    }

    pub(crate) async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        if let Err(e) = self.flush_accepted().await {
            return (Err(e), buf);
        }
        poll_write::at_once_if_alone(op::send(self.socket.as_raw_fd(), buf)).await
    }

    pub(crate) async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> (io::Result<usize>, Vec<B>) {
        if let Err(e) = self.flush_accepted().await {
            return (Err(e), bufs);
        }
        op::sendmsg_vectored(self.socket.as_raw_fd(), bufs).await
    }

    pub(crate) async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut written = 0;
        let mut buf = buf;
        while written < total {
            let (res, slice) = self.write(buf.slice(written..total)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes");
                    return (Err(e), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    pub(crate) async fn read_exact<B: IoBufMut>(&self, buf: B) -> (io::Result<()>, B) {
        let _turn = self.rescue.adopted.take_turn().await;
        let mut buf = buf;
        while buf.bytes_init() < buf.bytes_total() {
            let (res, b) = self.read_in_turn(buf).await;
            buf = b;
            match res {
                Ok(0) => {
                    let msg = format!(
                        "early EOF: {} of {} bytes arrived",
                        buf.bytes_init(),
                        buf.bytes_total()
                    );
                    return (Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)), buf);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Sends `buf` with copies of `fds` (`SCM_RIGHTS`). The copies are owned by the op until
    /// the kernel has taken them, so the caller may close its own at once.
    pub(crate) async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> (io::Result<usize>, B) {
        if let Err(e) = self.flush_accepted().await {
            return (Err(e), buf);
        }
        let control = match control_with(fds) {
            Ok(c) => c,
            Err(e) => return (Err(e), buf),
        };
        op::sendmsg(self.socket.as_raw_fd(), buf, None, control).await
    }

    pub(crate) async fn recv_with_fds<B: IoBufMut>(
        &self,
        mut buf: B,
        max_fds: usize,
    ) -> (io::Result<(usize, Vec<OwnedFd>)>, B) {
        let _turn = self.rescue.adopted.take_turn().await;
        match self.rescue.take(|src| buf::fill_from(&mut buf, src)).await {
            Rescued::Bytes(n) => return (Ok((n, self.rescue.take_fds())), buf),
            Rescued::Eof => return (Ok((0, self.rescue.take_fds())), buf),
            Rescued::Failed(e) => return (Err(e), buf),
            Rescued::Nothing => {}
        }
        let op = op::recvmsg(self.socket.as_raw_fd(), buf, op::fds_space(max_fds));
        let (res, buf) = AdoptOnDrop::new(&self.rescue.adopted, op, arrived_with_fds::<B>).await;
        let res = res.and_then(|msg| {
            let fds = msg.fds;
            if msg.flags & libc::MSG_CTRUNC != 0 {
                return Err(truncated(msg.len, fds.len(), max_fds));
            }
            Ok((msg.len, fds))
        });
        (res, buf)
    }
}

impl Drop for StreamSocket {
    /// Accepted bytes still being sent are sent before the socket closes (see
    /// [`poll_write`](self::poll_write)).
    fn drop(&mut self) {
        self.detach_write();
    }
}

/// A control buffer passing copies of `fds`.
pub(crate) fn control_with(fds: &[BorrowedFd<'_>]) -> io::Result<Control> {
    let mut control = Control::new();
    if !fds.is_empty() {
        let owned = fds
            .iter()
            .map(|fd| fd.try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        control.push_fds(owned);
    }
    Ok(control)
}

/// The error for a receive whose descriptors did not all fit (`MSG_CTRUNC`). The ones that
/// arrived were closed by the caller dropping them; the bytes are in the buffer.
pub(crate) fn truncated(len: usize, arrived: usize, max_fds: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "more descriptors were passed than the {max_fds} asked for: the {arrived} that \
             arrived were closed ({len} bytes received)"
        ),
    )
}

/// What a dropped read received: bytes, and the descriptors of a `recv_with_fds`.
struct Arrived {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
    control_truncated: bool,
}

/// A stream socket's slot for the bytes of a dropped [`RecvStream`](super::RecvStream).
#[derive(Clone, Copy)]
pub(crate) struct ReceiveSlot<'a>(&'a Adopted<io::Result<Arrived>>);

impl ReceiveSlot<'_> {
    /// Whether no dropped read holds the slot.
    pub(crate) fn is_free(self) -> bool {
        !self.0.is_occupied()
    }

    /// Adopts `drain`, which yields the bytes a dropped receive had taken from the socket:
    /// empty at end of file, `ECANCELED` if it took nothing. The socket's next read awaits it
    /// first, so it sees those bytes in order. The slot must be [free](Self::is_free).
    pub(crate) fn adopt(
        self,
        drain: impl std::future::Future<Output = io::Result<Vec<u8>>> + 'static,
    ) {
        debug_assert!(self.is_free(), "adopting into a slot a dropped read holds");
        self.0.put(Box::pin(async move {
            drain.await.map(|bytes| Arrived {
                bytes,
                fds: Vec::new(),
                control_truncated: false,
            })
        }));
    }
}

/// What a dropped read left for the next one. Kept small (most streams never need it): what
/// was left over lives in a box made on first use.
#[derive(Default)]
struct Rescue {
    /// Bytes and descriptors an adopted read received beyond what the next read could take.
    left: RefCell<Option<Box<Leftover>>>,
    /// A read dropped while the kernel owned it, still in flight.
    adopted: Adopted<io::Result<Arrived>>,
}

#[derive(Default)]
struct Leftover {
    /// Bytes not yet taken by a read: `bytes[at..]`. Once read out, the empty buffer is kept
    /// for the next poll-based receive.
    bytes: Vec<u8>,
    at: usize,
    /// Descriptors an adopted `recv_with_fds` received, for the next `recv_with_fds`.
    fds: Vec<OwnedFd>,
}

enum Rescued {
    Nothing,
    Bytes(usize),
    Eof,
    Failed(io::Error),
}

impl Rescue {
    fn is_empty(&self) -> bool {
        self.left
            .borrow()
            .as_ref()
            .is_none_or(|l| !l.has_bytes() && l.fds.is_empty())
            && !self.adopted.is_occupied()
    }

    fn take_fds(&self) -> Vec<OwnedFd> {
        self.left
            .borrow_mut()
            .as_mut()
            .map(|l| std::mem::take(&mut l.fds))
            .unwrap_or_default()
    }

    /// Hands rescued bytes to `fill` (which returns how many it took), first waiting for an
    /// adopted read if there is one.
    async fn take(&self, mut fill: impl FnMut(&[u8]) -> usize) -> Rescued {
        if let Some(n) = self.take_left(&mut fill) {
            return Rescued::Bytes(n);
        }
        match adopt::resume(&self.adopted).await {
            None => Rescued::Nothing,
            Some(result) => self.settle(result, fill),
        }
    }

    /// [`take`](Self::take) for a poll-based read: an adopted op stays in its slot while it
    /// is pending.
    fn poll_take(
        &self,
        cx: &mut Context<'_>,
        mut fill: impl FnMut(&[u8]) -> usize,
    ) -> Poll<Rescued> {
        if let Some(n) = self.take_left(&mut fill) {
            return Poll::Ready(Rescued::Bytes(n));
        }
        Poll::Ready(match ready!(adopt::poll_adopted(&self.adopted, cx)) {
            None => Rescued::Nothing,
            Some(result) => self.settle(result, fill),
        })
    }

    /// Hands bytes left over to `fill`; `None` if there are none.
    fn take_left(&self, mut fill: impl FnMut(&[u8]) -> usize) -> Option<usize> {
        let mut left = self.left.borrow_mut();
        let left = left.as_mut().filter(|l| l.has_bytes())?;
        let n = fill(left.unread());
        left.consume(n);
        Some(n)
    }

    /// Hands what an adopted op received to `fill`; keeps the rest (called with nothing
    /// left over). The op's byte buffer becomes the leftover as it is, not copied.
    fn settle(&self, result: io::Result<Arrived>, mut fill: impl FnMut(&[u8]) -> usize) -> Rescued {
        let arrived = match result {
            Ok(arrived) => arrived,
            // Cancelled (runtime shutdown): nothing was read; read afresh.
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => return Rescued::Nothing,
            Err(e) => return Rescued::Failed(e),
        };
        let mut left = self.left.borrow_mut();
        let left = left.get_or_insert_with(Box::default);
        if arrived.control_truncated {
            // Descriptors of a truncated message are closed, as a direct receive does.
            drop(arrived.fds);
        } else {
            left.fds.extend(arrived.fds);
        }
        if arrived.bytes.is_empty() {
            left.keep_spare(arrived.bytes);
            return Rescued::Eof;
        }
        let n = fill(&arrived.bytes);
        left.keep(arrived.bytes, n);
        Rescued::Bytes(n)
    }

    /// An empty buffer with room for `want` bytes: the leftover's, once it is read.
    fn spare(&self, want: usize) -> Vec<u8> {
        let mut buf = self
            .left
            .borrow_mut()
            .as_mut()
            .filter(|l| !l.has_bytes())
            .map(|l| std::mem::take(&mut l.bytes))
            .unwrap_or_default();
        buf.clear();
        buf.reserve(want);
        buf
    }
}

impl Leftover {
    fn has_bytes(&self) -> bool {
        self.at < self.bytes.len()
    }

    fn unread(&self) -> &[u8] {
        &self.bytes[self.at..]
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        if self.at == self.bytes.len() {
            // Read out: the buffer stays, empty, as the next poll-based receive's.
            self.bytes.clear();
            self.at = 0;
        }
    }

    /// Keeps `bytes` from `at` on (there are no other bytes left over).
    fn keep(&mut self, bytes: Vec<u8>, at: usize) {
        debug_assert!(
            !self.has_bytes(),
            "rescued bytes arrived with bytes left over"
        );
        if at == bytes.len() {
            self.keep_spare(bytes);
        } else {
            self.bytes = bytes;
            self.at = at;
        }
    }

    /// Keeps the larger of the two empty buffers for the next poll-based receive.
    fn keep_spare(&mut self, mut bytes: Vec<u8>) {
        if !self.has_bytes() && bytes.capacity() > self.bytes.capacity() {
            bytes.clear();
            self.bytes = bytes;
            self.at = 0;
        }
    }
}

/// Copies `src` into the spare capacity of each buffer in turn; returns how much fitted.
fn fill_each<B: IoBufMut>(bufs: &mut [B], mut src: &[u8]) -> usize {
    let mut total = 0;
    for b in bufs {
        let n = buf::fill_from(b, src);
        total += n;
        src = &src[n..];
    }
    total
}

/// The bytes a completed receive added to its buffer.
fn received<B: IoBufMut>((res, buf): (io::Result<usize>, B)) -> io::Result<Arrived> {
    res.map(|n| {
        let init = buf::init_bytes(&buf, 0);
        Arrived {
            bytes: init[init.len() - n..].to_vec(),
            fds: Vec::new(),
            control_truncated: false,
        }
    })
}

/// The bytes and descriptors a completed `recvmsg` received.
fn arrived_with_fds<B: IoBufMut>((res, buf): (io::Result<op::Received>, B)) -> io::Result<Arrived> {
    res.map(|msg| {
        let init = buf::init_bytes(&buf, 0);
        Arrived {
            bytes: init[init.len() - msg.len..].to_vec(),
            control_truncated: msg.control_truncated(),
            fds: msg.fds,
        }
    })
}
