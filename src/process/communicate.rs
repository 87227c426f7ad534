//! Feeding a child's stdin while draining its stdout and stderr, concurrently.
//!
//! The three directions run as three tasks on the loop, so a child that fills its stdout
//! pipe before it has read all its input (or the reverse) never deadlocks with us.

use std::io;

use super::pipe::{ChildStderr, ChildStdin, ChildStdout};

/// Writes `input` to `stdin` and closes it, while reading `stdout` and `stderr` to the end.
/// A broken stdin pipe (the child stopped reading) is not an error.
pub(super) async fn exchange(
    stdin: Option<ChildStdin>,
    input: Option<Vec<u8>>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let out = stdout.map(|mut pipe| {
        crate::spawn(async move {
            let mut data = Vec::new();
            pipe.read_to_end(&mut data).await.map(|_| data)
        })
    });
    let err = stderr.map(|mut pipe| {
        crate::spawn(async move {
            let mut data = Vec::new();
            pipe.read_to_end(&mut data).await.map(|_| data)
        })
    });
    if let Some(mut stdin) = stdin {
        if let Some(input) = input {
            let (res, _) = stdin.write_all(input).await;
            match res {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        drop(stdin);
    }
    let collect = |joined: Result<io::Result<Vec<u8>>, crate::JoinError>| {
        joined.map_err(|e| io::Error::other(format!("pipe reader task failed: {e}")))?
    };
    let stdout = match out {
        Some(task) => collect(task.await)?,
        None => Vec::new(),
    };
    let stderr = match err {
        Some(task) => collect(task.await)?,
        None => Vec::new(),
    };
    Ok((stdout, stderr))
}
