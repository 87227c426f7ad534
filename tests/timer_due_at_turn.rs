//! A timer of the main future that is already due when the loop turns (because a task ran
//! longer than the timer's delay in the same tick) wakes the main future instead of leaving
//! the loop asleep in the kernel with no deadline.

mod support;

use std::time::{Duration, Instant};

both_backends! {
    /// The main future sleeps 1 ms while a spawned task busy-works 5 ms in the same tick: when
    /// the loop turns, the timer is due, and the sleep must still complete (it once hung: the
    /// turn fired the timer but decided its wait from a "main woken" flag read before that).
    fn main_sleep_due_during_a_long_tick_completes(rt) {
        let _watchdog = support::watchdog(Duration::from_secs(20), "main_sleep_due_during_a_long_tick_completes");
        rt.block_on(async {
            for _ in 0..3 {
                ringloop::spawn(async {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(5) {
                        std::hint::spin_loop();
                    }
                });
                ringloop::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }
}
