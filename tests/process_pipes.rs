//! Child processes' pipes: data through stdin/stdout, both directions at once, `output()`,
//! `communicate()`, and the futures-io traits.

mod support;

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use ringloop::process::{Command, Stdio};
use support::watchdog;

/// A pseudo-random, position-dependent pattern, so that lost, duplicated or reordered
/// chunks show up as a mismatch.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Bytes for the both-directions test: 100 MiB each way.
const BIG: usize = 100 << 20;

both_backends! {
    /// Bytes written to `cat`'s stdin come back on its stdout, and closing stdin ends it
    /// with status 0.
    fn cat_echoes_stdin_to_stdout(rt) {
        let _wd = watchdog(Duration::from_secs(30), "cat_echoes_stdin_to_stdout");
        rt.block_on(async {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            for line in ["one\n", "two\n", "three\n"] {
                let (res, _) = stdin.write_all(line.as_bytes().to_vec()).await;
                res.unwrap();
                let mut got = Vec::new();
                while got.len() < line.len() {
                    let (n, buf) = stdout.read(Vec::with_capacity(64)).await;
                    assert!(n.unwrap() > 0, "cat closed its stdout early");
                    got.extend_from_slice(&buf);
                }
                assert_eq!(got, line.as_bytes());
            }
            drop(stdin);
            let (n, _) = stdout.read(Vec::with_capacity(64)).await;
            assert_eq!(n.unwrap(), 0, "end of file once cat's stdin is closed");
            assert!(child.wait().await.unwrap().success());
        });
    }

    /// A child that echoes a 100 MiB stream while we are still writing it does not
    /// deadlock: communicate() writes stdin and drains stdout at once, and every byte comes
    /// back in order.
    fn large_stream_both_ways_does_not_deadlock(rt) {
        let _wd = watchdog(Duration::from_secs(120), "large_stream_both_ways_does_not_deadlock");
        rt.block_on(async {
            let input = pattern(BIG);
            let child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = child.communicate(Some(input)).await.unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len(), BIG);
            // Regenerated rather than kept, so only one 100 MiB copy is alive at a time.
            assert!(out.stdout == pattern(BIG), "the echoed stream differs from the input");
            assert!(out.stderr.is_empty());
        });
    }

    /// `output()` collects stdout and stderr separately and reports the exit code; its stdin
    /// is /dev/null, so a child reading stdin does not wait for us.
    fn output_collects_both_streams_and_code(rt) {
        let _wd = watchdog(Duration::from_secs(30), "output_collects_both_streams_and_code");
        rt.block_on(async {
            let out = Command::new("sh")
                .args(["-c", "cat; printf out; printf err >&2; exit 5"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.stdout, b"out");
            assert_eq!(out.stderr, b"err");
            assert_eq!(out.status.code(), Some(5));
        });
    }

    /// `communicate` with a large stderr and stdout together (more than a pipe buffer each)
    /// completes: both are drained concurrently.
    fn communicate_drains_stdout_and_stderr_together(rt) {
        let _wd = watchdog(Duration::from_secs(60), "communicate_drains_both_streams");
        rt.block_on(async {
            let child = Command::new("sh")
                .args(["-c", "head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let out = child.communicate(None).await.unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len(), 1_000_000);
            assert_eq!(out.stderr.len(), 1_000_000);
        });
    }

    /// A child that exits without reading its input: communicate still returns its output
    /// and status (the broken stdin pipe is not an error).
    fn communicate_tolerates_child_not_reading(rt) {
        let _wd = watchdog(Duration::from_secs(30), "communicate_tolerates_child_not_reading");
        rt.block_on(async {
            let child = Command::new("sh")
                .args(["-c", "echo bye"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = child.communicate(Some(vec![7; 4 << 20])).await.unwrap();
            assert_eq!(out.stdout, b"bye\n");
            assert!(out.status.success());
        });
    }

    /// One child's stdout converted into another's stdin makes a pipeline (`printf | tr`),
    /// and the second child can read it with blocking reads (the fd is blocking again).
    fn child_stdout_feeds_another_child(rt) {
        let _wd = watchdog(Duration::from_secs(30), "child_stdout_feeds_another_child");
        rt.block_on(async {
            let mut first = Command::new("sh")
                .args(["-c", "sleep 0.05; printf 'loud and clear'"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let piped: Stdio = first.stdout.take().unwrap().try_into().unwrap();
            let out = Command::new("tr").args(["a-z", "A-Z"]).stdin(piped).output().await.unwrap();
            assert_eq!(out.stdout, b"LOUD AND CLEAR");
            assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(first.wait().await.unwrap().success());
        });
    }

    /// The futures-io traits move data through the pipes too (AsyncWrite on stdin,
    /// AsyncRead on stdout), including more than a pipe buffer.
    fn futures_io_traits_work_on_pipes(rt) {
        let _wd = watchdog(Duration::from_secs(30), "futures_io_traits_work_on_pipes");
        rt.block_on(async {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let input = pattern(1 << 20);
            let expected = input.clone();
            let writer = ringloop::spawn(async move {
                AsyncWriteExt::write_all(&mut stdin, &input).await.unwrap();
                stdin.close().await.unwrap();
            });
            let mut got = Vec::new();
            AsyncReadExt::read_to_end(&mut stdout, &mut got).await.unwrap();
            writer.await.unwrap();
            assert!(got == expected, "stream differs");
            assert!(child.wait().await.unwrap().success());
        });
    }
}
