//! The `subprocess_pipe` example works: its code is compiled into this test (its `main` is
//! not run) and its relay copies a child's stdout byte for byte and returns its status.

mod support;

#[allow(dead_code)]
#[path = "../examples/subprocess_pipe.rs"]
mod subprocess_pipe;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

both_backends! {
    /// Several hundred KiB of a child's stdout arrive byte for byte, and the exit code (7)
    /// and a signal death (128 + 15) come back as a shell would report them.
    fn subprocess_pipe_relays_bytes_and_status(rt) {
        let _wd = support::watchdog(Duration::from_secs(30), "subprocess_pipe_relays");
        let script = "printf 'start\\n'; seq 1 100000; exit 7";
        let expected = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap()
            .stdout;
        let (rx, tx) = support::pipe();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::from(rx).read_to_end(&mut got).unwrap();
            got
        });
        let status = rt.block_on(subprocess_pipe::relay(
            "sh".into(),
            vec!["-c".into(), script.into()],
            tx.as_raw_fd(),
        ));
        drop(tx);
        assert_eq!(subprocess_pipe::exit_code(status.unwrap()), 7);
        let got = reader.join().unwrap();
        assert!(got == expected, "relayed {} bytes, expected {}", got.len(), expected.len());

        let (_rx, tx) = support::pipe();
        let status = rt.block_on(subprocess_pipe::relay(
            "sh".into(),
            vec!["-c".into(), "kill -TERM $$".into()],
            tx.as_raw_fd(),
        ));
        assert_eq!(subprocess_pipe::exit_code(status.unwrap()), 128 + 15);
    }
}
