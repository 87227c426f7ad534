//! The `Signals` stream and `ctrl_c`: signals raised at the process arrive through a signalfd
//! on both backends, also while every task waits on I/O, and the signal mask and disposition
//! are put back when the last listener goes away. Each body runs in a child process (see
//! `signal_support`).

mod seccomp_support;
mod signal_support;
mod support;

use std::io::ErrorKind;
use std::os::fd::AsRawFd as _;
use std::sync::mpsc;
use std::time::Duration;

use futures_lite::StreamExt as _;
use ringloop::signal::{Signals, ctrl_c};
use ringloop::{Runtime, op};
use seccomp_support::deny_nowait_reads;
use signal_support::{blocked_here, disposition_is_default, in_child, raise_in_process};
use support::{pipe, watchdog};

fn runtime(backend: ringloop::Backend) -> Runtime {
    support::runtime(backend)
}

both_backends! {
    /// A `Signals` stream for SIGUSR1 yields SIGUSR1 after `kill(getpid(), SIGUSR1)`, and
    /// the next one after a second kill.
    fn stream_receives_sigusr1(backend: Backend) {
        in_child("stream_receives_sigusr1", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "SIGUSR1 through a Signals stream");
            runtime(backend).block_on(async {
                let mut signals = Signals::new([libc::SIGUSR1]).expect("listen for SIGUSR1");
                assert_eq!(signals.signals(), [libc::SIGUSR1]);
                for _ in 0..2 {
                    raise_in_process(libc::SIGUSR1);
                    let sig = signals.next().await.expect("a stream never ends");
                    assert_eq!(sig.expect("read the signalfd"), libc::SIGUSR1);
                }
            });
            dog.disarm();
        });
    }

    /// A stream for a set of signals yields each one raised, by number.
    fn stream_receives_each_signal_of_a_set(backend: Backend) {
        in_child("stream_receives_each_signal_of_a_set", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "a set of signals");
            runtime(backend).block_on(async {
                let mut signals =
                    Signals::new([libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP]).expect("listen");
                for sig in [libc::SIGHUP, libc::SIGUSR2, libc::SIGUSR1] {
                    raise_in_process(sig);
                    assert_eq!(signals.recv().await.expect("read the signalfd"), sig);
                }
            });
            dog.disarm();
        });
    }

    /// A signal sent by another thread (one that does not block it) while every task is parked
    /// on I/O — one on a pipe read nothing writes to, one on the signal stream — wakes the loop
    /// and is delivered; the signal's task then unblocks the reader.
    fn signal_arriving_while_all_tasks_wait_on_io_is_delivered(backend: Backend) {
        in_child(
            "signal_arriving_while_all_tasks_wait_on_io_is_delivered",
            backend,
            |backend| {
                let dog = watchdog(Duration::from_secs(20), "a signal during I/O waits");
                // Started before the listener, so this thread does not block SIGUSR2.
                let (go, wait) = mpsc::channel::<()>();
                let sender = std::thread::spawn(move || {
                    wait.recv().expect("the loop asks for the signal");
                    raise_in_process(libc::SIGUSR2);
                });
                runtime(backend).block_on(async move {
                    let (rx, tx) = pipe();
                    let mut signals = Signals::new([libc::SIGUSR2]).expect("listen");
                    let reader = ringloop::spawn(async move {
                        let (n, buf) = op::read(rx.as_raw_fd(), Vec::with_capacity(16)).await;
                        (n.expect("read the pipe"), buf)
                    });
                    let listener = ringloop::spawn(async move {
                        let sig = signals.recv().await.expect("read the signalfd");
                        let (n, _) = op::write(tx.as_raw_fd(), b"woken".to_vec()).await;
                        n.expect("write the pipe");
                        sig
                    });
                    // Both tasks are parked when the sender fires: nothing else is ready.
                    ringloop::yield_now().await;
                    go.send(()).expect("sender thread alive");
                    assert_eq!(listener.await.expect("listener task"), libc::SIGUSR2);
                    // The bytes, or their first few when a write or the read is short.
                    let (n, buf) = reader.await.expect("reader task");
                    assert!((1..=5).contains(&n), "read {n} bytes");
                    assert_eq!(&buf[..n], &b"woken"[..n]);
                });
                sender.join().expect("sender thread");
                dog.disarm();
            },
        );
    }

    /// `ctrl_c()` resolves when the process receives SIGINT, and the process survives it.
    fn ctrl_c_resolves_on_sigint(backend: Backend) {
        in_child("ctrl_c_resolves_on_sigint", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "ctrl_c on SIGINT");
            runtime(backend).block_on(async {
                let interrupted = ctrl_c();
                raise_in_process(libc::SIGINT);
                interrupted.await.expect("ctrl_c");
            });
            assert!(!blocked_here(libc::SIGINT), "SIGINT still blocked after ctrl_c");
            assert!(disposition_is_default(libc::SIGINT), "SIGINT disposition not restored");
            dog.disarm();
        });
    }

    /// The mask is reference-counted per signal: SIGUSR2 stays blocked while any of two
    /// listeners lives, is unblocked (and its default disposition back) once both are dropped,
    /// and a signal the thread had blocked itself stays blocked afterwards.
    fn mask_restored_after_last_listener(backend: Backend) {
        in_child("mask_restored_after_last_listener", backend, |backend| {
            runtime(backend).block_on(async {
                assert!(!blocked_here(libc::SIGUSR2));
                let first = Signals::new([libc::SIGUSR2]).expect("first listener");
                let second = Signals::new([libc::SIGUSR2, libc::SIGUSR2]).expect("second");
                assert_eq!(second.signals(), [libc::SIGUSR2], "duplicates are merged");
                assert!(blocked_here(libc::SIGUSR2));
                assert!(!disposition_is_default(libc::SIGUSR2), "no forwarder installed");
                drop(first);
                assert!(blocked_here(libc::SIGUSR2), "unblocked while a listener remains");
                drop(second);
                assert!(!blocked_here(libc::SIGUSR2), "mask not restored");
                assert!(disposition_is_default(libc::SIGUSR2), "disposition not restored");

                // A signal blocked before the first listener stays blocked after the last.
                let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                // SAFETY: sigemptyset/sigaddset initialise and fill the set; pthread_sigmask
                // reads it. Blocking SIGHUP in this child thread affects nothing else.
                unsafe {
                    libc::sigemptyset(set.as_mut_ptr());
                    libc::sigaddset(set.as_mut_ptr(), libc::SIGHUP);
                    libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
                }
                drop(Signals::new([libc::SIGHUP]).expect("listen for SIGHUP"));
                assert!(blocked_here(libc::SIGHUP), "a mask blocked beforehand was undone");
            });
        });
    }

    /// A signal raised but never read before the last listener goes away is discarded, not
    /// delivered to the restored default action (which would kill the process).
    fn unread_signal_is_discarded_when_last_listener_goes(backend: Backend) {
        in_child("unread_signal_is_discarded_when_last_listener_goes", backend, |backend| {
            runtime(backend).block_on(async {
                let signals = Signals::new([libc::SIGUSR1]).expect("listen");
                raise_in_process(libc::SIGUSR1);
                drop(signals);
            });
            assert!(disposition_is_default(libc::SIGUSR1));
        });
    }

    /// Numbers that are not signals, SIGKILL and SIGSTOP are refused with `InvalidInput` and
    /// a message naming the problem; no mask changes. (No signal is listened for, so this runs
    /// in the test process.)
    fn invalid_signals_are_refused(rt) {
        rt.block_on(async {
            for (sig, says) in [
                (0, "not a signal number"),
                (-3, "not a signal number"),
                (65, "not a signal number"),
                (libc::SIGKILL, "SIGKILL and SIGSTOP"),
                (libc::SIGSTOP, "SIGKILL and SIGSTOP"),
                (libc::SIGSEGV, "fault signal"),
            ] {
                let err = Signals::new([libc::SIGUSR1, sig])
                    .err()
                    .unwrap_or_else(|| panic!("signal {sig} accepted"));
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                let message = err.to_string();
                assert!(message.contains(says), "{message:?} should say {says:?}");
                assert!(message.contains(&sig.to_string()), "{message:?} should name {sig}");
                let err = ringloop::Handle::current()
                    .add_signal_handler(sig, || {})
                    .expect_err("handler for an invalid signal");
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            }
            assert!(!blocked_here(libc::SIGUSR1), "a refused listener changed the mask");
        });
    }
}

both_backends! {
    /// Where a signalfd cannot be read with `RWF_NOWAIT` (Linux before 6.7: a seccomp filter
    /// fails such reads with `EOPNOTSUPP` here), a `Signals` stream still yields each signal
    /// forwarded to the loop thread. The epoll backend used to hand that read to its blocking
    /// pool, whose thread does not see the loop thread's pending signals: `EAGAIN`, an error.
    fn signals_arrive_where_signalfd_has_no_nowait_read(backend: Backend) {
        in_child("signals_arrive_where_signalfd_has_no_nowait_read", backend, |backend| {
            if !deny_nowait_reads() {
                return;
            }
            let dog = watchdog(Duration::from_secs(20), "SIGUSR1 without RWF_NOWAIT");
            runtime(backend).block_on(async {
                let mut signals = Signals::new([libc::SIGUSR1]).expect("listen for SIGUSR1");
                for round in 0..3 {
                    // First wait with nothing pending, then find one already pending.
                    if round != 1 {
                        let pending = futures_lite::future::poll_once(signals.recv()).await;
                        assert!(pending.is_none(), "a signal arrived before any was sent");
                    }
                    raise_in_process(libc::SIGUSR1);
                    let sig = ringloop::time::timeout(Duration::from_secs(5), signals.recv())
                        .await
                        .expect("the signal arrived")
                        .expect("read the signalfd");
                    assert_eq!(sig, libc::SIGUSR1);
                }
            });
            dog.disarm();
        });
    }

    /// A `Signals` dropped while its read is in flight does not swallow the next signal: a new
    /// listener for the same signal receives it.
    fn dropped_listener_does_not_steal_the_next_signal(backend: Backend) {
        in_child("dropped_listener_does_not_steal_the_next_signal", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "signal after a dropped listener");
            runtime(backend).block_on(async {
                let mut first = Signals::new([libc::SIGUSR1]).expect("first listener");
                let pending = futures_lite::future::poll_once(first.recv()).await;
                assert!(pending.is_none(), "a signal arrived before any was sent");
                // Lets the read reach the kernel before it is dropped.
                ringloop::yield_now().await;
                drop(first);
                let mut second = Signals::new([libc::SIGUSR1]).expect("second listener");
                raise_in_process(libc::SIGUSR1);
                let sig = ringloop::time::timeout(Duration::from_secs(5), second.recv())
                    .await
                    .expect("the signal reached the new listener")
                    .expect("read the signalfd");
                assert_eq!(sig, libc::SIGUSR1);
            });
            dog.disarm();
        });
    }
}
