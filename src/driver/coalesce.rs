//! Adaptive completion coalescing for the io_uring backend's waits.
//!
//! A loop that waits for *one* completion wakes up, and enters the kernel, once per trickle of
//! completions: under load from many connections that is an `io_uring_enter` for every two or
//! three requests. Linux 6.12 can do better (`IORING_FEAT_MIN_TIMEOUT`): wait for `n`
//! completions, but no longer than `min_wait` for them — after that, return as soon as there is
//! one. [`Coalesce`] picks `n` from what the previous waits saw, the way a network card
//! moderates its interrupts:
//!
//! * a wait that found **at least two more** completions than it asked for means they arrive
//!   faster than the loop wakes: ask for one more next time (additive increase, up to the
//!   cap). One more is no evidence: a lone request/response connection often finds its own
//!   send's completion (it completes inside the enter that submits it) beside the next
//!   receive, and asking it for two would make it sit out the window whenever the peer is
//!   slower than that (`echo/1conn`: ~10 % more CPU per request);
//! * a wait that found **fewer** means `min_wait` ran out before the batch filled — the loop
//!   sat idle for nothing, and the flow does not sustain that batch: start over from one.
//!   (Halving instead kept a single fast stream oscillating around a target of three, one
//!   wait in six or so sitting out the window: `stream/64KiB` cost 7 % more CPU per chunk.
//!   Starting over keeps those rare; many-connection echo still climbs to the cap.)
//!
//! A loop serving one connection at a time therefore keeps waiting for one completion and
//! pays nothing; at most `min_wait` is added to the one wake-up that ends a burst.
//!
//! What a wait found is counted in ops: a run of completions from one multishot op (a single
//! stream's chunks) is one source, and batching one source only delays it (`stream/64KiB`:
//! ~10 % more CPU per chunk when its chunks counted one by one). Ops the same enter completed
//! by submitting them (a send that completed inline) count too.

use std::time::Duration;

/// What [`Coalesce`] starts from: batches of up to 8 completions, waited for at most 20 µs.
pub const DEFAULT_MAX_BATCH: u32 = 8;
/// See [`DEFAULT_MAX_BATCH`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_micros(20);

/// The completion-batch target of one ring's blocking waits.
#[derive(Debug, Clone)]
pub struct Coalesce {
    target: u32,
    max_batch: u32,
    min_wait_usec: u32,
}

impl Coalesce {
    /// A controller that asks for up to `max_batch` completions per wait and waits at most
    /// `max_delay` for a batch to fill. `max_batch` ≤ 1 or a zero delay turns coalescing off.
    pub fn new(max_batch: u32, max_delay: Duration) -> Coalesce {
        let min_wait_usec = max_delay.as_micros().min(u32::MAX as u128) as u32;
        let max_batch = if min_wait_usec == 0 {
            1
        } else {
            max_batch.max(1)
        };
        Coalesce {
            target: 1,
            max_batch,
            min_wait_usec,
        }
    }

    /// Coalescing off: every wait returns at the first completion.
    pub fn off() -> Coalesce {
        Coalesce::new(1, Duration::ZERO)
    }

    /// Whether waits may ask for more than one completion at all.
    pub fn enabled(&self) -> bool {
        self.max_batch > 1
    }

    /// How many completions the next blocking wait asks for.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// The kernel's `min_wait_usec` for the next wait: 0 when it asks for one completion
    /// (nothing to coalesce, so no timer is armed).
    pub fn min_wait_usec(&self) -> u32 {
        if self.target > 1 {
            self.min_wait_usec
        } else {
            0
        }
    }

    /// Whether a wait with this timeout (None = none) should ask for a batch: not when the
    /// batch target is one, nor when a timer falls due before `min_wait` would end — the
    /// kernel lets `min_wait` run out before it looks at the timeout, so the timer would fire
    /// late.
    pub fn applies_to(&self, timeout: Option<Duration>) -> bool {
        self.target > 1 && timeout.is_none_or(|t| t.as_micros() >= u128::from(self.min_wait_usec))
    }

    /// Records how many completions a blocking wait for [`target`](Self::target) found (the
    /// caller counts a run of one multishot op's completions as one).
    pub fn observe(&mut self, found: usize) {
        let target = self.target as usize;
        if found >= target + 2 {
            self.target = (self.target + 1).min(self.max_batch);
        } else if found < target {
            self.target = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Coalesce {
        Coalesce::new(DEFAULT_MAX_BATCH, DEFAULT_MAX_DELAY)
    }

    #[test]
    fn one_at_a_time_never_waits_for_more() {
        let mut c = default();
        for _ in 0..100 {
            c.observe(1);
            assert_eq!(c.target(), 1);
            assert_eq!(c.min_wait_usec(), 0, "no timer when waiting for one");
        }
    }

    #[test]
    fn one_extra_completion_is_not_a_reason_to_batch() {
        let mut c = default();
        for _ in 0..100 {
            c.observe(2); // a send that completed inline, and the next receive
            assert_eq!(c.target(), 1);
        }
        c.observe(3);
        assert_eq!(c.target(), 2);
        c.observe(3);
        assert_eq!(c.target(), 2, "one more than asked: keep");
    }

    #[test]
    fn steady_surplus_climbs_to_the_cap_and_stays() {
        let mut c = default();
        let mut seen = vec![c.target()];
        for _ in 0..20 {
            c.observe(c.target() as usize + 3);
            seen.push(c.target());
        }
        assert_eq!(&seen[..9], &[1, 2, 3, 4, 5, 6, 7, 8, 8]);
        assert_eq!(c.target(), DEFAULT_MAX_BATCH);
        assert_eq!(c.min_wait_usec(), 20);
    }

    #[test]
    fn a_short_batch_starts_over_from_one() {
        let mut c = default();
        for _ in 0..10 {
            c.observe(100);
        }
        assert_eq!(c.target(), 8);
        c.observe(7);
        assert_eq!(c.target(), 1);
        assert_eq!(c.min_wait_usec(), 0);
        c.observe(3);
        c.observe(4);
        assert_eq!(c.target(), 3);
        c.observe(0); // a timeout or an interrupted wait
        assert_eq!(c.target(), 1);
        c.observe(0);
        assert_eq!(c.target(), 1);
    }

    #[test]
    fn an_exact_batch_keeps_the_target() {
        let mut c = default();
        c.observe(5);
        c.observe(5);
        assert_eq!(c.target(), 3);
        c.observe(3);
        assert_eq!(c.target(), 3);
        c.observe(4);
        assert_eq!(c.target(), 3);
    }

    #[test]
    fn a_timer_due_before_the_batch_window_waits_plainly() {
        let mut c = default();
        assert!(!c.applies_to(None), "target one: nothing to coalesce");
        c.observe(10);
        assert!(c.applies_to(None));
        assert!(c.applies_to(Some(Duration::from_millis(1))));
        assert!(c.applies_to(Some(DEFAULT_MAX_DELAY)));
        assert!(!c.applies_to(Some(Duration::from_micros(5))));
        assert!(!c.applies_to(Some(Duration::ZERO)));
    }

    #[test]
    fn off_and_degenerate_settings_never_batch() {
        for mut c in [
            Coalesce::off(),
            Coalesce::new(0, DEFAULT_MAX_DELAY),
            Coalesce::new(16, Duration::ZERO),
            Coalesce::new(16, Duration::from_nanos(500)),
        ] {
            for _ in 0..10 {
                c.observe(50);
            }
            assert_eq!(c.target(), 1, "{c:?}");
            assert_eq!(c.min_wait_usec(), 0);
        }
    }
}
