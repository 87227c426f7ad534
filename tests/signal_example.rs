//! The `signals` example prints the name of each signal it receives, one a line, and returns
//! after SIGINT. Its code is compiled into this test (its `main` is not run) and runs in a
//! child process (see `signal_support`).

mod signal_support;
mod support;

#[allow(dead_code)]
#[path = "../examples/signals.rs"]
mod signals_example;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use signal_support::{in_child, raise_in_process};
use support::{watchdog, yield_until_deadline};

/// A `Write` into a shared buffer the test can read while the example runs.
#[derive(Clone, Default)]
struct SharedOutput(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedOutput {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).expect("UTF-8 output")
    }
}

both_backends! {
    /// SIGUSR1, SIGHUP, SIGRTMIN+1 and SIGINT sent one at a time come out as their names, one
    /// a line, and the example returns `Ok` after SIGINT.
    fn example_prints_signal_names_until_sigint(backend: Backend) {
        in_child("example_prints_signal_names_until_sigint", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "the signals example");
            support::runtime(backend).block_on(async {
                let out = SharedOutput::default();
                let mut writer = out.clone();
                let example = ringloop::spawn(async move {
                    signals_example::print_signals(&mut writer).await
                });
                // The example task registers its listener when first polled.
                ringloop::yield_now().await;
                let mut expected = String::new();
                for (sig, name) in [
                    (libc::SIGUSR1, "SIGUSR1"),
                    (libc::SIGHUP, "SIGHUP"),
                    (libc::SIGRTMIN() + 1, "SIGRTMIN+1"),
                    (libc::SIGINT, "SIGINT"),
                ] {
                    raise_in_process(sig);
                    expected.push_str(name);
                    expected.push('\n');
                    yield_until_deadline(&format!("the example printed {name}"), || {
                        out.text() == expected
                    })
                    .await;
                }
                example.await.expect("example task").expect("example result");
                assert_eq!(out.text(), "SIGUSR1\nSIGHUP\nSIGRTMIN+1\nSIGINT\n");
            });
            dog.disarm();
        });
    }
}
