//! `BufRing::builder()` on both backends: bad sizes are errors that name the problem, never
//! panics; the cap is rounded up to a power of two; the initial count is bounded by the cap;
//! building outside a runtime is an error.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use ringloop::Backend;
use ringloop::buf::BufRing;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);

both_backends! {
    /// A zero buffer size, a zero cap, and a buffer size of 4 GiB or more are rejected with
    /// `InvalidInput` whose message names the bad value.
    fn bad_sizes_are_errors(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "bad_sizes_are_errors");
        rt.block_on(async {
            let cases = [
                ("buf_size 0", BufRing::builder().buf_size(0), "0"),
                ("max 0", BufRing::builder().max(0), "max 0"),
                ("buf_size 4 GiB", BufRing::builder().buf_size(1 << 32), "4294967296"),
            ];
            for (what, builder, named) in cases {
                match builder.build() {
                    Ok(ring) => panic!("{what}: built {ring:?}"),
                    Err(err) => {
                        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
                        let message = err.to_string();
                        assert!(message.contains(named), "{what}: {message:?} should name {named}");
                    }
                }
            }
        });
    }

    /// The cap is rounded up to a power of two (3 → 4, 1000 → 1024, 1 → 1), never beyond
    /// 32 768; `initial` allocates that many buffers, at least one and at most the cap; nothing
    /// is lent at first; a kernel ring is registered only on io_uring.
    fn sizes_are_normalised(backend: Backend) {
        let _watchdog = support::watchdog(TEST_LIMIT, "sizes_are_normalised");
        let rt = support::runtime(backend);
        rt.block_on(async {
            let cases: [(u16, u16, usize, usize); 5] = [
                // (initial, max, want buffers, want max_buffers)
                (2, 3, 2, 4),
                (16, 1000, 16, 1024),
                (8, 1, 1, 1),
                (0, 8, 1, 8),
                (1, 60_000, 1, 32_768),
            ];
            for (initial, max, buffers, max_buffers) in cases {
                let ring = BufRing::builder()
                    .buf_size(512)
                    .initial(initial)
                    .max(max)
                    .build()
                    .unwrap_or_else(|e| panic!("initial {initial}, max {max}: {e}"));
                let what = format!("initial {initial}, max {max}: {ring:?}");
                assert_eq!(ring.max_buffers(), max_buffers, "{what}: max_buffers");
                assert_eq!(ring.buffers(), buffers, "{what}: buffers");
                assert_eq!(ring.buf_size(), 512, "{what}: buf_size");
                assert_eq!(ring.in_use(), 0, "{what}: in_use");
                assert_eq!(ring.is_kernel(), backend == Backend::IoUring, "{what}: is_kernel");
            }
        });
    }

    /// Building a ring outside any runtime — before one exists and after it is dropped — is
    /// an `InvalidInput` error that says so, not a panic.
    fn build_outside_a_runtime_is_an_error(backend: Backend) {
        let _watchdog = support::watchdog(TEST_LIMIT, "build_outside_a_runtime_is_an_error");
        assert_build_fails_outside_a_runtime("before any runtime");
        let rt = support::runtime(backend);
        rt.block_on(async {});
        drop(rt);
        assert_build_fails_outside_a_runtime("after the runtime was dropped");
    }
}

/// Asserts that building a ring now fails with `InvalidInput` naming the missing runtime.
fn assert_build_fails_outside_a_runtime(when: &str) {
    match BufRing::builder().build() {
        Ok(ring) => panic!("{when}: built {ring:?} outside a runtime"),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{when}: {err}");
            assert!(err.to_string().contains("runtime"), "{when}: {err}");
        }
    }
}
