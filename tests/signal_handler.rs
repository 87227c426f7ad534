//! asyncio's `add_signal_handler` / `remove_signal_handler` on the loop `Handle`: callbacks run
//! on the loop for each signal, a new handler replaces the old one, and removing the last one
//! restores the mask and disposition at once. Each body runs in a child process (see
//! `signal_support`).

mod signal_support;
mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ringloop::Handle;
use signal_support::{blocked_here, disposition_is_default, in_child, raise_in_process};
use support::{watchdog, yield_until_deadline};

both_backends! {
    /// A handler runs on the loop thread once per signal raised, and keeps running after its
    /// callback panics.
    fn handler_runs_on_the_loop_for_each_signal(backend: Backend) {
        in_child("handler_runs_on_the_loop_for_each_signal", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "add_signal_handler");
            support::runtime(backend).block_on(async {
                let h = Handle::current();
                let loop_thread = std::thread::current().id();
                let calls = Rc::new(Cell::new(0u32));
                let seen = calls.clone();
                h.add_signal_handler(libc::SIGUSR1, move || {
                    assert_eq!(std::thread::current().id(), loop_thread);
                    seen.set(seen.get() + 1);
                    if seen.get() == 1 {
                        panic!("a failing callback (expected by the test)");
                    }
                })
                .expect("add_signal_handler");
                for expected in 1..=3 {
                    raise_in_process(libc::SIGUSR1);
                    yield_until_deadline("the handler ran", || calls.get() == expected).await;
                }
                assert!(h.remove_signal_handler(libc::SIGUSR1));
            });
            dog.disarm();
        });
    }

    /// Adding a handler for a signal that has one replaces it: only the new callback runs.
    fn new_handler_replaces_the_old(backend: Backend) {
        in_child("new_handler_replaces_the_old", backend, |backend| {
            let dog = watchdog(Duration::from_secs(20), "replacing a handler");
            support::runtime(backend).block_on(async {
                let h = Handle::current();
                let old = Rc::new(Cell::new(0u32));
                let new = Rc::new(Cell::new(0u32));
                let o = old.clone();
                h.add_signal_handler(libc::SIGUSR2, move || o.set(o.get() + 1))
                    .expect("first handler");
                let n = new.clone();
                h.add_signal_handler(libc::SIGUSR2, move || n.set(n.get() + 1))
                    .expect("second handler");
                raise_in_process(libc::SIGUSR2);
                yield_until_deadline("the new handler ran", || new.get() == 1).await;
                support::yield_turns(10).await;
                assert_eq!(old.get(), 0, "the replaced handler ran");
                assert!(h.remove_signal_handler(libc::SIGUSR2));
            });
            dog.disarm();
        });
    }

    /// `remove_signal_handler` returns true once and false after, and restores the mask and
    /// the default disposition immediately; dropping the runtime removes handlers left behind.
    fn remove_restores_mask_and_disposition(backend: Backend) {
        in_child("remove_restores_mask_and_disposition", backend, |backend| {
            let rt = support::runtime(backend);
            rt.block_on(async {
                let h = Handle::current();
                assert!(!h.remove_signal_handler(libc::SIGHUP), "no handler yet");
                h.add_signal_handler(libc::SIGHUP, || {}).expect("add");
                assert!(blocked_here(libc::SIGHUP));
                assert!(!disposition_is_default(libc::SIGHUP));
                assert!(h.remove_signal_handler(libc::SIGHUP));
                assert!(!blocked_here(libc::SIGHUP), "mask not restored by remove");
                assert!(disposition_is_default(libc::SIGHUP), "disposition not restored");
                assert!(!h.remove_signal_handler(libc::SIGHUP), "removed twice");
                h.add_signal_handler(libc::SIGWINCH, || {}).expect("add SIGWINCH");
            });
            assert!(blocked_here(libc::SIGWINCH));
            drop(rt);
            assert!(!blocked_here(libc::SIGWINCH), "runtime drop left the mask blocked");
        });
    }
}
