//! Control messages (ancillary data) for `sendmsg`/`recvmsg`: the raw `cmsghdr` encoding.
//!
//! A control buffer is a run of `cmsghdr` headers, each followed by its data and padded to
//! the alignment of `size_t`, as `CMSG_SPACE(3)` lays them out. [`Control`] encodes messages
//! to send; a receive decodes what the kernel wrote into [`ControlMessage`]s, turning
//! `SCM_RIGHTS` descriptors into [`OwnedFd`]s at once so that none can leak. The buffers are
//! made of `u64` words, so every header is aligned however the allocator lays out bytes.

use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `CMSG_ALIGN`: rounds up to the alignment of `size_t`.
const fn align(len: usize) -> usize {
    let a = mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// Size of an aligned `cmsghdr`, where the data starts (`CMSG_LEN(0)`).
const HEADER: usize = align(mem::size_of::<libc::cmsghdr>());

/// `CMSG_SPACE(len)`: room one message with `len` data bytes takes in a control buffer.
pub(crate) const fn space(len: usize) -> usize {
    HEADER + align(len)
}

/// Room for one `SCM_RIGHTS` message carrying `fds` descriptors.
pub(crate) const fn fds_space(fds: usize) -> usize {
    space(fds * mem::size_of::<RawFd>())
}

/// One control message: `(level, type, data)` as in `cmsghdr`. `SCM_RIGHTS` descriptors
/// never appear here: a receive hands them over as owned descriptors instead.
///
/// ```
/// let ttl = ringloop::op::ControlMessage::new(libc::IPPROTO_IP, libc::IP_TTL, 7i32.to_ne_bytes().to_vec());
/// assert_eq!(ttl.data, 7i32.to_ne_bytes());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlMessage {
    /// `cmsg_level`, e.g. `IPPROTO_IP`.
    pub level: i32,
    /// `cmsg_type`, e.g. `IP_TTL`.
    pub kind: i32,
    /// The message's data, without padding.
    pub data: Vec<u8>,
}

impl ControlMessage {
    /// A message of `level` and `kind` carrying `data`.
    pub fn new(level: i32, kind: i32, data: Vec<u8>) -> Self {
        ControlMessage { level, kind, data }
    }
}

/// A zeroed control buffer of at least `bytes` bytes.
fn words_for(bytes: usize) -> Vec<u64> {
    vec![0; bytes.div_ceil(mem::size_of::<u64>())]
}

/// Ancillary data to send, encoded. Descriptors passed with [`push_fds`](Self::push_fds) are
/// owned by the buffer (and so by the op that sends it) until the send completes: closing
/// the caller's copy meanwhile cannot make the kernel pass a different file.
///
/// ```
/// use std::os::fd::OwnedFd;
/// let (rx, _tx) = std::io::pipe().unwrap();
/// let mut control = ringloop::op::Control::new();
/// control.push_fds(vec![OwnedFd::from(rx)]);
/// assert!(!control.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Control {
    words: Vec<u64>,
    len: usize,
    fds: Vec<OwnedFd>,
}

impl Control {
    /// An empty control buffer.
    pub fn new() -> Self {
        Control::default()
    }

    /// Appends one message.
    pub fn push(&mut self, level: i32, kind: i32, data: &[u8]) {
        let start = self.len;
        self.len += space(data.len());
        self.words
            .resize(self.len.div_ceil(mem::size_of::<u64>()), 0);
        // `start` is a multiple of the header alignment in a u64-aligned buffer; the resize
        // zeroed the padding.
        // SAFETY: the words hold `start + space(data.len())` bytes: room for an aligned header
        // at `start` and the data after it, which does not overlap `data`.
        unsafe {
            let base = self.words.as_mut_ptr().cast::<u8>().add(start);
            let mut header: libc::cmsghdr = mem::zeroed();
            header.cmsg_len = (HEADER + data.len()) as _;
            header.cmsg_level = level;
            header.cmsg_type = kind;
            base.cast::<libc::cmsghdr>().write(header);
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(HEADER), data.len());
        }
    }

    /// Appends an `SCM_RIGHTS` message passing `fds`, which the buffer keeps open until it is
    /// dropped.
    pub fn push_fds(&mut self, fds: Vec<OwnedFd>) {
        let raw: Vec<u8> = fds
            .iter()
            .flat_map(|fd| fd.as_raw_fd().to_ne_bytes())
            .collect();
        self.push(libc::SOL_SOCKET, libc::SCM_RIGHTS, &raw);
        self.fds.extend(fds);
    }

    /// Whether no message was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pointer and length for `msg_control` / `msg_controllen` (null and 0 when empty).
    pub(crate) fn raw(&mut self) -> (*mut libc::c_void, usize) {
        if self.len == 0 {
            (std::ptr::null_mut(), 0)
        } else {
            (self.words.as_mut_ptr().cast(), self.len)
        }
    }
}

/// A control buffer a receive lends to the kernel. It starts zeroed, so decoding it after a
/// receive that never ran finds no message (a zero `cmsg_len` ends the walk).
#[derive(Debug, Default)]
pub(crate) struct ControlSpace {
    words: Vec<u64>,
    /// The bytes the kernel wrote (`msg_controllen` after the receive); 0 until then.
    written: usize,
}

/// What a receive's control buffer held: the messages, and the descriptors of any
/// `SCM_RIGHTS` messages.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) messages: Vec<ControlMessage>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl ControlSpace {
    /// A zeroed buffer with room for `bytes` bytes of messages.
    pub(crate) fn new(bytes: usize) -> Self {
        ControlSpace {
            words: words_for(bytes),
            written: 0,
        }
    }

    /// Pointer and capacity for `msg_control` / `msg_controllen` (null and 0 when empty).
    pub(crate) fn raw(&mut self) -> (*mut libc::c_void, usize) {
        if self.words.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            let len = self.words.len() * mem::size_of::<u64>();
            (self.words.as_mut_ptr().cast(), len)
        }
    }

    /// Records how many bytes the kernel wrote (`msg_controllen` after a receive).
    pub(crate) fn set_written(&mut self, len: usize) {
        self.written = len.min(self.words.len() * mem::size_of::<u64>());
    }

    /// Decodes the messages the kernel wrote, taking ownership of passed descriptors.
    pub(crate) fn take(&mut self) -> Decoded {
        let written = mem::take(&mut self.written);
        let bytes = self.bytes();
        let mut out = Decoded::default();
        let mut at = 0;
        while at + HEADER <= written {
            let (len, level, kind) = header_at(bytes, at);
            if len < HEADER {
                break;
            }
            let end = (at + len).min(written);
            let data = &bytes[at + HEADER..end];
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                for raw in data.chunks_exact(mem::size_of::<RawFd>()) {
                    let fd = RawFd::from_ne_bytes(raw.try_into().expect("chunk of 4 bytes"));
                    // SAFETY: the kernel installed this descriptor for this receive; the
                    // `written = 0` above means it is claimed exactly once.
                    out.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            } else {
                out.messages
                    .push(ControlMessage::new(level, kind, data.to_vec()));
            }
            at += space(len - HEADER);
        }
        out
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the words are initialised memory; any byte pattern is a valid u8.
        unsafe {
            std::slice::from_raw_parts(
                self.words.as_ptr().cast::<u8>(),
                self.words.len() * mem::size_of::<u64>(),
            )
        }
    }
}

/// `(cmsg_len, cmsg_level, cmsg_type)` of the header at byte `at` (a multiple of the header
/// alignment, with `HEADER` bytes available).
fn header_at(bytes: &[u8], at: usize) -> (usize, i32, i32) {
    assert!(at + HEADER <= bytes.len() && at.is_multiple_of(mem::align_of::<libc::cmsghdr>()));
    // SAFETY: checked above: the header lies inside the u64-aligned buffer at an aligned
    // offset; cmsghdr is plain integers, valid for any bytes.
    let header = unsafe { bytes.as_ptr().add(at).cast::<libc::cmsghdr>().read() };
    // glibc's `cmsg_len` is a size_t, musl's a socklen_t.
    #[allow(clippy::unnecessary_cast)]
    (
        header.cmsg_len as usize,
        header.cmsg_level,
        header.cmsg_type,
    )
}

/// Sets an integer socket option (`setsockopt(fd, level, name, &value, 4)`).
pub(crate) fn set_int_option(fd: RawFd, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: `value` is a live c_int on our stack, and its size is passed along with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An encoded buffer decodes to the same messages, in order.
    #[test]
    fn encode_then_decode() {
        let mut control = Control::new();
        control.push(1, 2, b"abc");
        control.push(3, 4, &[9; 13]);
        let mut space = ControlSpace::new(control.len);
        let (ptr, len) = control.raw();
        // SAFETY: both buffers hold at least `len` bytes and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), space.raw().0.cast(), len) };
        space.set_written(len);
        let decoded = space.take();
        assert_eq!(
            decoded.messages,
            [
                ControlMessage::new(1, 2, b"abc".to_vec()),
                ControlMessage::new(3, 4, vec![9; 13])
            ]
        );
        assert!(decoded.fds.is_empty());
    }
}
