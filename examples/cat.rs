//! `cat FILE...`: writes each file to stdout in turn, like cat(1); `-` is stdin.
//!
//! ```text
//! cargo run --example cat -- Cargo.toml README.md
//! RINGLOOP_BACKEND=epoll cargo run --example cat -- Cargo.toml
//! ```
//!
//! Files are read through the ring 128 KiB at a time ([`ringloop::fs::File::read`]) and each
//! chunk is written with [`ringloop::op::write`] until it is all out. A file that cannot be
//! read is reported on stderr (`cat: open "x": No such file or directory`), the others are
//! still written, and the exit status is 1. A closed stdout (`cat f | head`) ends quietly.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use ringloop::fs::File;

/// Bytes read per op.
const CHUNK: usize = 128 * 1024;

/// Writes all of `buf` to `out`; returns the buffer for reuse.
async fn write_all(out: RawFd, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let mut done = 0;
    while done < buf.len() {
        let (res, back) = ringloop::op::write(out, ringloop::buf::IoBuf::slice(buf, done..)).await;
        buf = back.into_inner();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// Copies `input` (read at its current position) to `out`.
async fn pump(input: RawFd, out: RawFd) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let (res, back) = ringloop::op::read(input, buf).await;
        if res? == 0 {
            return Ok(());
        }
        let (res, back) = write_all(out, back).await;
        res?;
        buf = back;
    }
}

/// Copies one file to `out` with cursor reads.
async fn copy_file(path: &Path, out: RawFd) -> io::Result<()> {
    let mut file = File::open(path).await?;
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let (res, back) = file.read(buf).await;
        if res? == 0 {
            return Ok(());
        }
        let (res, back) = write_all(out, back).await;
        res.map_err(|e| io::Error::new(e.kind(), WriteError(e)))?;
        buf = back;
    }
}

/// An error writing to the output, as opposed to reading an input.
#[derive(Debug)]
struct WriteError(io::Error);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "write to stdout: {}", self.0)
    }
}

impl std::error::Error for WriteError {}

/// Writes each of `paths` (`-`: stdin) to `out` in order. Errors are collected, not fatal,
/// except a broken output, which stops at once.
pub async fn cat(paths: &[String], out: RawFd) -> Vec<io::Error> {
    let mut errors = Vec::new();
    for path in paths {
        let res = if path == "-" {
            pump(io::stdin().as_raw_fd(), out).await
        } else {
            copy_file(Path::new(path), out).await
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                errors.push(e);
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

fn main() {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths.push("-".into());
    }
    // A closed stdout must be an error we see (EPIPE), not a signal that kills us.
    // SAFETY: setting SIGPIPE's disposition to ignore has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let errors = ringloop::run(async move { cat(&paths, io::stdout().as_raw_fd()).await });
    let mut status = 0;
    for e in &errors {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("cat: {e}");
            status = 1;
        }
    }
    std::process::exit(status);
}
