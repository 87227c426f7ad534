//! Runs a command and streams its stdout to ours, byte for byte, as it arrives; then exits
//! with the child's status (128 + N when a signal N killed it, as shells report it).
//!
//! ```text
//! cargo run --example subprocess_pipe -- ls -l /
//! RINGLOOP_BACKEND=epoll cargo run --example subprocess_pipe -- sh -c 'echo hi; exit 3'
//! ```

use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use ringloop::buf::IoBuf;
use ringloop::process::{Command, Stdio};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: subprocess_pipe CMD [ARGS...]");
        return ExitCode::from(2);
    };
    ringloop::run(async move {
        let mut child = match Command::new(&program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("subprocess_pipe: {e}");
                return ExitCode::from(127);
            }
        };
        let mut stdout = child.stdout.take().expect("piped");
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            let (n, back) = stdout.read(buf).await;
            buf = back;
            match n {
                Ok(0) => break,
                Ok(_) => {
                    let (res, back) = write_all_stdout(buf).await;
                    buf = back;
                    if let Err(e) = res {
                        // Our reader went away: stop copying, let the child finish.
                        eprintln!("subprocess_pipe: writing stdout: {e}");
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("subprocess_pipe: reading the child's stdout: {e}");
                    break;
                }
            }
        }
        drop(stdout);
        match child.wait().await {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => ExitCode::from(code as u8),
                (None, Some(signal)) => ExitCode::from(128 + signal as u8),
                (None, None) => ExitCode::FAILURE,
            },
            Err(e) => {
                eprintln!("subprocess_pipe: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Writes all of `buf` to fd 1 through the loop, giving the buffer back.
async fn write_all_stdout(buf: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
    let len = buf.len();
    let mut buf = buf.slice(..len);
    while buf.begin() < buf.end() {
        let (begin, end) = (buf.begin(), buf.end());
        let (n, back) = ringloop::op::write(1, buf).await;
        let whole = back.into_inner();
        match n {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), whole),
            Ok(n) => buf = whole.slice(begin + n..end),
            Err(e) => return (Err(e), whole),
        }
    }
    (Ok(()), buf.into_inner())
}
