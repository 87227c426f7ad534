//! asyncio's subprocess transport: `SubprocessProtocol` callbacks and their order,
//! `SubprocessTransport` signals and return codes, and the stdin pipe transport.

mod support;

use std::io;
use std::time::Duration;

use ringloop::transport::{self, SubprocessProtocol, SubprocessTransport};
use support::watchdog;

/// One protocol callback, as recorded.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Made,
    Data(i32, Vec<u8>),
    PipeLost(i32, Option<io::ErrorKind>),
    Exited,
    Lost,
}

/// Records every callback.
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
    transport: Option<SubprocessTransport>,
}

impl SubprocessProtocol for Recorder {
    fn connection_made(&mut self, transport: SubprocessTransport) {
        self.events.push(Event::Made);
        self.transport = Some(transport);
    }
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        // Merge consecutive chunks of one pipe, so the log does not depend on chunking.
        if let Some(Event::Data(last, bytes)) = self.events.last_mut()
            && *last == fd
        {
            bytes.extend_from_slice(data);
            return;
        }
        self.events.push(Event::Data(fd, data.to_vec()));
    }
    fn pipe_connection_lost(&mut self, fd: i32, err: Option<io::Error>) {
        self.events.push(Event::PipeLost(fd, err.map(|e| e.kind())));
    }
    fn process_exited(&mut self) {
        self.events.push(Event::Exited);
        // The transport is usable in every callback, and the status is set by now.
        assert!(self.transport.as_ref().unwrap().get_returncode().is_some());
    }
    fn connection_lost(&mut self, err: Option<io::Error>) {
        assert!(err.is_none(), "{err:?}");
        self.events.push(Event::Lost);
    }
}

/// Everything received on pipe `fd`, in order.
fn received(events: &[Event], fd: i32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(f, d) if *f == fd => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn position(events: &[Event], wanted: &Event) -> usize {
    events
        .iter()
        .position(|e| e == wanted)
        .unwrap_or_else(|| panic!("{wanted:?} missing from {events:?}"))
}

both_backends! {
    /// Callbacks come in asyncio's order: connection_made first; each output pipe's data,
    /// then its pipe_connection_lost; process_exited after both outputs ended; stdin's
    /// pipe_connection_lost once; connection_lost last. The return code is reported.
    fn callbacks_come_in_order(rt) {
        let _wd = watchdog(Duration::from_secs(30), "callbacks_come_in_order");
        rt.block_on(async {
            let (t, proto) = transport::subprocess_shell(
                Recorder::default,
                "echo out; echo err >&2; echo more; exit 3",
            )
            .await
            .unwrap();
            assert!(t.get_pid() > 0);
            t.wait_closed().await;
            assert!(t.is_closing());
            assert_eq!(t.get_returncode(), Some(3));
            let events = proto.borrow().events.clone();
            assert_eq!(events[0], Event::Made);
            assert_eq!(events.last(), Some(&Event::Lost));
            assert_eq!(received(&events, 1), b"out\nmore\n");
            assert_eq!(received(&events, 2), b"err\n");
            let exited = position(&events, &Event::Exited);
            assert!(position(&events, &Event::PipeLost(1, None)) < exited, "{events:?}");
            assert!(position(&events, &Event::PipeLost(2, None)) < exited, "{events:?}");
            let last_data = events.iter().rposition(|e| matches!(e, Event::Data(..))).unwrap();
            assert!(last_data < exited, "{events:?}");
            let stdin_lost = events.iter().filter(|e| matches!(e, Event::PipeLost(0, _))).count();
            assert_eq!(stdin_lost, 1, "{events:?}");
            assert_eq!(events.iter().filter(|e| **e == Event::Exited).count(), 1);
        });
    }

    /// Bytes written through the stdin pipe transport reach the child (cat echoes them);
    /// closing the pipe transport ends cat, reported as an orderly stdin close.
    fn stdin_pipe_transport_feeds_the_child(rt) {
        let _wd = watchdog(Duration::from_secs(30), "stdin_pipe_transport_feeds_the_child");
        rt.block_on(async {
            let (t, proto) = transport::subprocess_exec(Recorder::default, "cat", ["-"])
                .await
                .unwrap();
            let stdin = t.get_pipe_transport(0).unwrap();
            assert!(t.get_pipe_transport(1).is_none());
            let big = vec![b'z'; 1 << 20];
            stdin.write(b"hello ").unwrap();
            stdin.write(&big).unwrap();
            stdin.close();
            assert!(stdin.is_closing());
            assert_eq!(stdin.write(b"x").unwrap_err().kind(), io::ErrorKind::NotConnected);
            t.wait_closed().await;
            assert_eq!(t.get_returncode(), Some(0));
            let events = proto.borrow().events.clone();
            let mut expected = b"hello ".to_vec();
            expected.extend_from_slice(&big);
            assert!(received(&events, 1) == expected, "echoed bytes differ");
            assert!(events.contains(&Event::PipeLost(0, None)));
            assert_eq!(stdin.get_write_buffer_size(), 0);
        });
    }

    /// `kill()` ends the child; the return code is minus the signal number, as in asyncio.
    fn kill_reports_negative_signal(rt) {
        let _wd = watchdog(Duration::from_secs(30), "kill_reports_negative_signal");
        rt.block_on(async {
            let (t, _proto) = transport::subprocess_exec(Recorder::default, "sleep", ["60"])
                .await
                .unwrap();
            assert_eq!(t.get_returncode(), None);
            t.kill().unwrap();
            t.wait_closed().await;
            assert_eq!(t.get_returncode(), Some(-libc::SIGKILL));
            // After the exit, signals are a harmless no-op.
            t.terminate().unwrap();
        });
    }

    /// Input the child never reads (it exits at once) ends as a BrokenPipe loss of pipe 0;
    /// nothing panics and this process is not signalled.
    fn unread_input_is_broken_pipe(rt) {
        let _wd = watchdog(Duration::from_secs(30), "unread_input_is_broken_pipe");
        rt.block_on(async {
            let (t, proto) = transport::subprocess_exec(
                Recorder::default,
                "true",
                std::iter::empty::<&str>(),
            )
            .await
            .unwrap();
            // Far more than a pipe holds, so the write cannot complete before `true` exits.
            t.get_pipe_transport(0).unwrap().write(&vec![1; 4 << 20]).unwrap();
            t.wait_closed().await;
            let events = proto.borrow().events.clone();
            assert!(
                events.contains(&Event::PipeLost(0, Some(io::ErrorKind::BrokenPipe))),
                "{events:?}"
            );
            assert_eq!(events.last(), Some(&Event::Lost));
            assert_eq!(t.get_returncode(), Some(0));
        });
    }

    /// Killing a shell while its own child (`cat`) holds the pipes does not hang: stdin is
    /// closed at the shell's exit, `cat` ends, the outputs end, and connection_lost comes.
    fn killed_shell_with_grandchild_finishes(rt) {
        let _wd = watchdog(Duration::from_secs(30), "killed_shell_with_grandchild_finishes");
        rt.block_on(async {
            let (t, proto) = transport::subprocess_shell(Recorder::default, "cat; echo done")
                .await
                .unwrap();
            t.get_pipe_transport(0).unwrap().write(b"x").unwrap();
            // Wait until cat runs and echoes, so the grandchild surely holds the pipes.
            support::yield_until_deadline("cat echoed", || {
                received(&proto.borrow().events, 1) == b"x"
            })
            .await;
            t.kill().unwrap();
            t.wait_closed().await;
            assert_eq!(t.get_returncode(), Some(-libc::SIGKILL));
            assert_eq!(received(&proto.borrow().events, 1), b"x", "echo done must not run");
        });
    }

    /// A paused stdout reader delivers nothing and reads nothing: a child writing 1 MB (more
    /// than a pipe holds) cannot finish while paused. After resume_reading every byte
    /// arrives, in order, and the child exits 0.
    fn pause_reading_holds_back_the_child(rt) {
        let _wd = watchdog(Duration::from_secs(30), "pause_reading_holds_back_the_child");
        rt.block_on(async {
            let (t, proto) = transport::subprocess_exec(
                Recorder::default,
                "head",
                ["-c", "1000000", "/dev/zero"],
            )
            .await
            .unwrap();
            let stdout = t.get_read_pipe_transport(1).unwrap();
            assert!(t.get_read_pipe_transport(0).is_none());
            stdout.pause_reading();
            assert!(!stdout.is_reading());
            // Many loop turns with kernel round trips: a reader that ignored the pause would
            // deliver data, and the child could finish.
            for _ in 0..200 {
                ringloop::op::nop().await.unwrap();
            }
            // A negative check (nothing may happen), so there is no event to await instead.
            ringloop::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(received(&proto.borrow().events, 1).len(), 0);
            assert_eq!(t.get_returncode(), None, "the child finished a 1 MB write while paused");
            stdout.resume_reading();
            t.wait_closed().await;
            assert_eq!(t.get_returncode(), Some(0));
            let got = received(&proto.borrow().events, 1);
            assert_eq!(got.len(), 1_000_000);
            assert!(got.iter().all(|&b| b == 0));
        });
    }

    /// A program that does not exist fails subprocess_exec with NotFound, and no protocol
    /// is made.
    fn missing_program_fails_exec(rt) {
        rt.block_on(async {
            let made = std::cell::Cell::new(false);
            let res = transport::subprocess_exec(
                || {
                    made.set(true);
                    Recorder::default()
                },
                "/nonexistent/ringloop",
                std::iter::empty::<&str>(),
            )
            .await;
            let Err(err) = res else { panic!("spawning a missing program succeeded") };
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(!made.get());
        });
    }
}
