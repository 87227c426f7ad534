//! A server that `serve_forever` served until `close` frees all of its memory once closed and
//! dropped, on both backends. Counted with a test allocator that tracks the live allocations
//! made on the test's own thread (the harness runs other tests on other threads).

mod support;
mod transport_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ringloop::transport;
use transport_support::{Recorder, TEST_LIMIT, any_loopback_port};

/// The system allocator, counting live allocations per thread.
struct CountingAlloc;

thread_local! {
    /// Allocations minus deallocations made on this thread (const-initialised and without a
    /// destructor, so reading it from the allocator never allocates).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counting touches no allocation.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1);
        // SAFETY: the caller's layout obligations are passed on to `System`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-1);
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; a reallocation keeps the count.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn live_allocations() -> isize {
    LIVE.with(Cell::get)
}

/// Creates a server, serves it until another task closes it, waits until it is closed and
/// drops it.
async fn serve_once() {
    let server = transport::create_server(Recorder::default, any_loopback_port())
        .await
        .unwrap();
    let closer = server.clone();
    ringloop::spawn(async move { closer.close() });
    server.serve_forever().await.expect("serve_forever");
    server.wait_closed().await;
}

/// Servers served per measurement: a leak of even one allocation per server shows as this many.
const ROUNDS: isize = 200;

both_backends! {
    /// After a warm-up (the loop's tables and rings reach their size), 200 servers each served
    /// with `serve_forever` until closed leave fewer than 50 allocations behind in total (a
    /// leaked server state would leave at least one per server).
    fn serve_forever_leaks_nothing(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "serve_forever_leaks_nothing");
        rt.block_on(async {
            for _ in 0..ROUNDS {
                serve_once().await;
            }
            let before = live_allocations();
            for _ in 0..ROUNDS {
                serve_once().await;
            }
            let grown = live_allocations() - before;
            assert!(grown < ROUNDS / 4, "{grown} allocations left behind by {ROUNDS} servers");
        });
    }
}
