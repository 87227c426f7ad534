//! Runs a command and streams its stdout to ours, byte for byte, as it arrives; then exits
//! with the child's status (128 + N when a signal N killed it, as shells report it).
//!
//! ```text
//! cargo run --example subprocess_pipe -- ls -l /
//! RINGLOOP_BACKEND=epoll cargo run --example subprocess_pipe -- sh -c 'echo hi; exit 3'
//! ```

use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus};

use ringloop::buf::IoBuf;
use ringloop::process::{Command, Stdio};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: subprocess_pipe CMD [ARGS...]");
        return ExitCode::from(2);
    };
    let args: Vec<OsString> = args.collect();
    match ringloop::run(relay(program, args, 1)) {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            eprintln!("subprocess_pipe: {e}");
            ExitCode::from(if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                1
            })
        }
    }
}

/// Runs `program args`, copying its stdout to `out` as it arrives, and returns its status.
/// If `out` stops taking data (its reader went away), copying stops and the child's stdout
/// is closed; the child's status is still returned.
pub async fn relay(program: OsString, args: Vec<OsString>, out: RawFd) -> io::Result<ExitStatus> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (n, back) = stdout.read(buf).await;
        buf = back;
        if n? == 0 {
            break;
        }
        let (res, back) = write_all(out, buf).await;
        buf = back;
        if let Err(e) = res {
            eprintln!("subprocess_pipe: writing output: {e}");
            break;
        }
    }
    drop(stdout);
    child.wait().await
}

/// The exit code a shell would report for `status`.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128 + signal as u8,
        (None, None) => 1,
    }
}

/// Writes all of `buf` to `fd` through the loop, giving the buffer back.
async fn write_all(fd: RawFd, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let len = buf.len();
    let mut buf = buf.slice(..len);
    while buf.begin() < buf.end() {
        let (begin, end) = (buf.begin(), buf.end());
        let (n, back) = ringloop::op::write(fd, buf).await;
        let whole = back.into_inner();
        match n {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), whole),
            Ok(n) => buf = whole.slice(begin + n..end),
            Err(e) => return (Err(e), whole),
        }
    }
    (Ok(()), buf.into_inner())
}
