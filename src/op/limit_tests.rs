//! [`Describe::limit`](crate::driver::Describe::limit): an op capped at `max` bytes before it is submitted transfers at most
//! that many, and the right ones, on both backends (so both halves, the SQE and the readiness
//! call, honour the cap); on a datagram socket it refuses and changes nothing, since the
//! kernel never splits a message; an op without a length refuses too.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Control, Interest, Op, Operation};
use crate::{Backend, Runtime};

const DATA: &[u8] = b"0123456789abcdef";
const MAX: usize = 5;

/// A connected Unix socket pair of type `ty`.
fn pair(ty: libc::c_int) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let flags = ty | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors socketpair(2) returns.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Whatever `fd` holds now, up to 64 bytes (one datagram on a datagram socket).
fn take_now(fd: &OwnedFd) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            64,
            libc::MSG_DONTWAIT,
        )
    };
    buf[..n.max(0) as usize].to_vec()
}

/// Caps `op` at `max` bytes, as a backend does before submitting it; whether it took.
fn limited<T: Operation>(mut op: Op<T>, max: usize) -> (Op<T>, bool) {
    let took = op
        .data
        .as_mut()
        .expect("an idle op has its data")
        .limit(max);
    (op, took)
}

/// Runs `case` on a runtime of each backend, with a fresh connected pair of each socket type:
/// `case(runtime, this end, the peer, whether it is a stream, a name for messages)`.
fn each_case(case: impl Fn(&Runtime, OwnedFd, OwnedFd, bool, &str)) {
    for backend in [Backend::IoUring, Backend::Epoll] {
        for (ty, stream) in [(libc::SOCK_STREAM, true), (libc::SOCK_DGRAM, false)] {
            let rt = Runtime::builder().backend(backend).build().unwrap();
            let (a, b) = pair(ty);
            case(&rt, a, b, stream, &format!("{backend:?} stream={stream}"));
        }
    }
}

/// The op `start` builds on one end, capped (where it can be), sends what the other end then
/// receives; `sent` reads the count from its output.
fn check_send<T: Operation>(start: impl Fn(RawFd) -> Op<T>, sent: impl Fn(T::Output) -> usize) {
    each_case(|rt, a, b, stream, case| {
        let (op, took) = limited(start(a.as_raw_fd()), MAX);
        assert_eq!(took, stream, "{case}");
        let n = sent(rt.block_on(op));
        if stream {
            assert!((1..=MAX).contains(&n), "{case}: sent {n}");
        } else {
            assert_eq!(n, DATA.len(), "{case}");
        }
        assert_eq!(take_now(&b), &DATA[..n], "{case}");
    });
}

/// As [`check_send`] for a receive: the peer sends `DATA` first; the capped op receives its
/// first bytes, and the rest stays in the socket (`received`: count and bytes).
fn check_recv<T: Operation>(
    start: impl Fn(RawFd) -> Op<T>,
    received: impl Fn(T::Output) -> (usize, Vec<u8>),
) {
    each_case(|rt, a, b, stream, case| {
        // SAFETY: DATA is valid for reads of its length.
        let r = unsafe { libc::send(b.as_raw_fd(), DATA.as_ptr().cast(), DATA.len(), 0) };
        assert_eq!(r, DATA.len() as isize);
        let (op, took) = limited(start(a.as_raw_fd()), MAX);
        assert_eq!(took, stream, "{case}");
        let (n, got) = received(rt.block_on(op));
        assert_eq!(got, &DATA[..n], "{case}");
        if stream {
            assert!((1..=MAX).contains(&n), "{case}: received {n}");
            assert_eq!(take_now(&a), &DATA[n..], "{case}: the rest waits");
        } else {
            assert_eq!(n, DATA.len(), "{case}");
        }
    });
}

fn count<B>((res, _): (io::Result<usize>, B)) -> usize {
    res.unwrap()
}

fn two_bufs() -> Vec<Vec<u8>> {
    vec![DATA[..3].to_vec(), DATA[3..].to_vec()]
}

#[test]
fn limited_write_is_short_on_streams_only() {
    check_send(|fd| super::write(fd, DATA.to_vec()), count);
}

#[test]
fn limited_writev_is_short_on_streams_only() {
    check_send(|fd| super::writev(fd, two_bufs()), count);
}

#[test]
fn limited_send_is_short_on_streams_only() {
    check_send(|fd| super::send(fd, DATA.to_vec()), count);
}

#[test]
fn limited_sendmsg_is_short_on_streams_only() {
    check_send(
        |fd| super::sendmsg(fd, DATA.to_vec(), None, Control::new()),
        count,
    );
    check_send(|fd| super::sendmsg_vectored(fd, two_bufs()), count);
}

/// A one-buffer receive's count and the bytes it received.
fn whole<B: Into<Vec<u8>>>((res, buf): (io::Result<usize>, B)) -> (usize, Vec<u8>) {
    (res.unwrap(), buf.into())
}

#[test]
fn limited_read_and_recv_are_short_on_streams_only() {
    check_recv(|fd| super::read(fd, Vec::with_capacity(64)), whole);
    check_recv(|fd| super::recv(fd, Vec::with_capacity(64)), whole);
}

#[test]
fn limited_readv_is_short_on_streams_only() {
    let bufs = || vec![Vec::with_capacity(3), Vec::with_capacity(61)];
    check_recv(
        |fd| super::readv(fd, bufs()),
        |(res, bufs)| (res.unwrap(), bufs.concat()),
    );
}

#[test]
fn limited_recvmsg_is_short_on_streams_only() {
    check_recv(
        |fd| super::recvmsg(fd, Vec::with_capacity(64), 0),
        |(res, buf)| (res.unwrap().len, buf),
    );
}

/// An op already within the cap, or without a length, is left as it is.
#[test]
fn limit_refuses_what_it_cannot_shorten() {
    let (a, _b) = pair(libc::SOCK_STREAM);
    let (_, took) = limited(super::write(a.as_raw_fd(), DATA.to_vec()), DATA.len());
    assert!(!took, "no more than the cap already");
    let (_, took) = limited(super::poll_add(a.as_raw_fd(), Interest::READABLE), 1);
    assert!(!took, "a poll has no length");
    let (_, took) = limited(super::accept(a.as_raw_fd()), 1);
    assert!(!took, "an accept has no length");
}
