//! The runtimes under test: what each is called in the table, which workloads it can run, and
//! how one sample is taken on it.
//!
//! Every sample builds a fresh runtime, so no state carries over from the previous sample.

mod monoio_rt;
mod raw;
mod ringloop_rt;
mod tokio_rt;

use crate::workload::{Kind, Measured, NetKind, Sizes, TOKIO_IO_ECHO_KIND};
use ringloop::Backend;

/// One column of contenders; `name()` is the label in the table and the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeId {
    RingloopIoUring,
    RingloopEpoll,
    /// ringloop's echo server written against tokio's `AsyncRead`/`AsyncWrite` (ringloop's
    /// `tokio-io` impls) instead of ringloop's own API: [`TOKIO_IO_ECHO`] only.
    ///
    /// [`TOKIO_IO_ECHO`]: crate::workload::TOKIO_IO_ECHO
    RingloopIoUringTokioIo,
    /// As [`RingloopIoUringTokioIo`](Self::RingloopIoUringTokioIo), on the epoll backend.
    RingloopEpollTokioIo,
    Tokio,
    Monoio,
    /// A bare io_uring loop written with the io-uring crate: the limit, not a runtime.
    Raw,
}

impl RuntimeId {
    /// All contenders, in the order the table lists them.
    pub const ALL: [RuntimeId; 7] = [
        RuntimeId::RingloopIoUring,
        RuntimeId::RingloopEpoll,
        RuntimeId::RingloopIoUringTokioIo,
        RuntimeId::RingloopEpollTokioIo,
        RuntimeId::Tokio,
        RuntimeId::Monoio,
        RuntimeId::Raw,
    ];

    /// The contender called `name` in the table.
    pub fn from_name(name: &str) -> Option<RuntimeId> {
        RuntimeId::ALL.into_iter().find(|id| id.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            RuntimeId::RingloopIoUring => "ringloop-io_uring",
            RuntimeId::RingloopEpoll => "ringloop-epoll",
            RuntimeId::RingloopIoUringTokioIo => "ringloop-io_uring+tokio-io",
            RuntimeId::RingloopEpollTokioIo => "ringloop-epoll+tokio-io",
            RuntimeId::Tokio => "tokio",
            RuntimeId::Monoio => "monoio",
            RuntimeId::Raw => "raw",
        }
    }

    /// Whether this contender has a row for `kind`.
    ///
    /// Only ringloop has an awaitable NOP (tokio has no such op; monoio keeps its NOP private),
    /// and the raw loop only does NOPs.
    pub fn runs(self, kind: Kind) -> bool {
        match (self, kind) {
            // The compat layer's cost: one echo row, next to the native server's.
            (RuntimeId::RingloopIoUringTokioIo | RuntimeId::RingloopEpollTokioIo, kind) => {
                kind == Kind::Net(TOKIO_IO_ECHO_KIND)
            }
            // hyper on ringloop (its `hyper` impls) against hyper on tokio (hyper-util's
            // TokioIo); monoio has no hyper server here.
            (RuntimeId::Monoio | RuntimeId::Raw, Kind::Net(NetKind::Http { .. })) => false,
            // monoio has no child-process support.
            (RuntimeId::Monoio | RuntimeId::Raw, Kind::ProcessSpawn) => false,
            (RuntimeId::Monoio, Kind::FileRead { .. }) => false,
            // No TLS server on monoio here: ringloop's TlsStream against tokio-rustls.
            (RuntimeId::Monoio, Kind::Net(net)) if net.is_tls() => false,
            // Single-loop primitives against tokio's; monoio and raw have none to compare.
            (RuntimeId::Monoio | RuntimeId::Raw, Kind::Asyncio(_)) => false,
            (RuntimeId::Raw, Kind::FileRead { .. }) => true,
            (RuntimeId::RingloopIoUring | RuntimeId::RingloopEpoll, _) => true,
            (RuntimeId::Raw, Kind::Nop { .. }) => true,
            (RuntimeId::Tokio | RuntimeId::Monoio, Kind::Nop { .. }) => false,
            (RuntimeId::Tokio | RuntimeId::Monoio, _) => true,
            (RuntimeId::Raw, _) => false,
        }
    }

    /// Checks that the contender can start here; the error says why not.
    pub fn probe(self) -> Result<(), String> {
        match self {
            RuntimeId::RingloopIoUring | RuntimeId::RingloopIoUringTokioIo => {
                ringloop_rt::probe(Backend::IoUring)
            }
            RuntimeId::RingloopEpoll | RuntimeId::RingloopEpollTokioIo => {
                ringloop_rt::probe(Backend::Epoll)
            }
            RuntimeId::Tokio => tokio_rt::probe(),
            RuntimeId::Monoio => monoio_rt::probe(),
            RuntimeId::Raw => raw::probe(),
        }
    }

    /// Builds the contender, warms it up, and times one run of `kind`.
    pub fn sample(self, kind: Kind, sizes: Sizes) -> Result<Measured, String> {
        if let Kind::Net(net) = kind {
            // The server runs in a child process on this runtime; the load generator here.
            return crate::net::sample(self, net, sizes);
        }
        if kind == Kind::ProcessSpawn {
            return crate::process::sample(self, sizes);
        }
        if let Kind::Asyncio(asyncio) = kind {
            return crate::asyncio::sample(self, asyncio, sizes);
        }
        if let Kind::FileRead { depth } = kind {
            let (reads, bytes) = (sizes.file_reads, sizes.file_bytes);
            return match self {
                RuntimeId::RingloopIoUring => {
                    crate::file::ringloop_sample(Backend::IoUring, depth, reads, bytes)
                }
                RuntimeId::RingloopEpoll => {
                    crate::file::ringloop_sample(Backend::Epoll, depth, reads, bytes)
                }
                RuntimeId::Tokio => crate::file::tokio_sample(depth, reads, bytes),
                RuntimeId::Raw => crate::file::raw_sample(reads, bytes),
                other => Err(format!("{} has no file_read row", other.name())),
            };
        }
        match self {
            RuntimeId::RingloopIoUring => ringloop_rt::sample(Backend::IoUring, kind, sizes),
            RuntimeId::RingloopEpoll => ringloop_rt::sample(Backend::Epoll, kind, sizes),
            RuntimeId::Tokio => tokio_rt::sample(kind, sizes),
            RuntimeId::Monoio => monoio_rt::sample(kind, sizes),
            RuntimeId::Raw => raw::sample(kind, sizes),
            RuntimeId::RingloopIoUringTokioIo | RuntimeId::RingloopEpollTokioIo => {
                Err(format!("{} has only networking rows", self.name()))
            }
        }
    }
}

/// The report of ringloop's `Backend::Auto` selection on this machine (or why it failed).
pub fn auto_backend_report() -> String {
    ringloop_rt::auto_backend_report()
}
