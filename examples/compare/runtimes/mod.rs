//! The runtimes under test: what each is called in the table, which workloads it can run, and
//! how one sample is taken on it.
//!
//! Every sample builds a fresh runtime, so no state carries over from the previous sample.

mod monoio_rt;
mod raw;
mod ringloop_rt;
mod tokio_rt;

use crate::workload::{Kind, Measured, Sizes};
use ringloop::Backend;

/// One column of contenders; `name()` is the label in the table and the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeId {
    RingloopIoUring,
    RingloopEpoll,
    Tokio,
    Monoio,
    /// A bare io_uring loop written with the io-uring crate: the limit, not a runtime.
    Raw,
}

impl RuntimeId {
    /// All contenders, in the order the table lists them.
    pub const ALL: [RuntimeId; 5] = [
        RuntimeId::RingloopIoUring,
        RuntimeId::RingloopEpoll,
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
            RuntimeId::RingloopIoUring => ringloop_rt::probe(Backend::IoUring),
            RuntimeId::RingloopEpoll => ringloop_rt::probe(Backend::Epoll),
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
                RuntimeId::Monoio => Err("monoio has no file_read row".to_owned()),
            };
        }
        match self {
            RuntimeId::RingloopIoUring => ringloop_rt::sample(Backend::IoUring, kind, sizes),
            RuntimeId::RingloopEpoll => ringloop_rt::sample(Backend::Epoll, kind, sizes),
            RuntimeId::Tokio => tokio_rt::sample(kind, sizes),
            RuntimeId::Monoio => monoio_rt::sample(kind, sizes),
            RuntimeId::Raw => raw::sample(kind, sizes),
        }
    }
}

/// The report of ringloop's `Backend::Auto` selection on this machine (or why it failed).
pub fn auto_backend_report() -> String {
    ringloop_rt::auto_backend_report()
}
