//! Several loops in one process: two runtimes on two threads run at once, and two runtimes on
//! one thread take turns; either way each loop's ops, timers, tasks, shared receive ring and
//! stats stay with that loop. A `block_on` of one runtime inside another's loop panics with a
//! message saying to spawn instead (and leaves both usable); a runtime dropped inside a task of
//! another loop gives that task back its own state.

mod support;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ringloop::streams::{StreamReader, StreamWriter, open_connection, start_server};
use ringloop::transport::Server;
use ringloop::{Runtime, op, spawn, time};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How long an awaited result may take before the test fails instead of hanging.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// NOPs each spawned task submits in the counting tests.
const NOPS_PER_TASK: u64 = 200;

/// Tasks submitting NOPs in the counting tests.
const NOP_TASKS: u64 = 8;

/// A loop's echo connection: its server, and a client made on the same loop (its transport
/// receives into that loop's shared receive ring).
struct Echo {
    _server: Server,
    reader: StreamReader,
    writer: StreamWriter,
}

/// Starts an echo server and connects a client to it, on the loop this runs on.
async fn echo() -> Echo {
    let server = start_server(
        |mut reader, writer| async move {
            while let Ok(data) = reader.read(4096).await {
                if data.is_empty() || writer.write(&data).is_err() || writer.drain().await.is_err()
                {
                    break;
                }
            }
            writer.close();
        },
        "127.0.0.1:0",
    )
    .await
    .expect("start_server on 127.0.0.1:0");
    let addr: SocketAddr = server.local_addrs()[0].as_inet().expect("an IP address");
    let (reader, writer) = open_connection(addr).await.expect("open_connection");
    Echo {
        _server: server,
        reader,
        writer,
    }
}

impl Echo {
    /// Sends `line` and checks that it comes back whole.
    async fn round_trip(&mut self, line: &str) {
        let line = format!("{line}\n");
        self.writer.write(line.as_bytes()).expect("write");
        self.writer.drain().await.expect("drain");
        let back = time::timeout(WAIT_LIMIT, self.reader.readline())
            .await
            .expect("the echo comes back in time")
            .expect("readline");
        assert_eq!(back, line.as_bytes());
    }
}

/// `NOP_TASKS` spawned tasks each awaiting `NOPS_PER_TASK` NOPs; returns the NOPs done.
async fn spawned_nops() -> u64 {
    let tasks: Vec<_> = (0..NOP_TASKS)
        .map(|_| {
            spawn(async {
                for _ in 0..NOPS_PER_TASK {
                    op::nop().await.expect("nop");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a NOP task");
    }
    NOP_TASKS * NOPS_PER_TASK
}

/// Ops `rt` has submitted so far.
fn submitted(rt: &Runtime) -> u64 {
    rt.stats().ops_submitted
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

both_backends! {
    /// Two runtimes on two threads, started together, each run NOPs from spawned tasks, a
    /// timer and echo round trips through its own shared receive ring; each runtime's stats
    /// count exactly its own NOPs, not the other's.
    fn two_loops_on_two_threads_run_at_once(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "two_loops_on_two_threads_run_at_once");
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let start = start.clone();
                std::thread::spawn(move || {
                    let rt = support::runtime(backend);
                    start.wait();
                    // Nothing but NOPs on this loop yet, so its count is exact.
                    for round in 0..3 {
                        let before = submitted(&rt);
                        let nops = rt.block_on(spawned_nops());
                        assert_eq!(
                            submitted(&rt) - before,
                            nops,
                            "loop {i}, round {round}: its stats count its own NOPs only"
                        );
                    }
                    let mut echo = rt.block_on(echo());
                    for round in 0..3 {
                        rt.block_on(async {
                            time::sleep(Duration::from_millis(5)).await;
                            echo.round_trip(&format!("loop {i} round {round}")).await;
                        });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a loop thread");
        }
    }

    /// Two runtimes on one thread take turns: a task and timer of A left pending do not run
    /// while B's `block_on` runs (B's own NOPs, timer, task and echo do), B's ops are not
    /// counted on A, and A's task finishes when A runs again. Each loop's echo connection,
    /// made on it, keeps working across the turns: its receives stay on its own loop's ring.
    fn two_loops_on_one_thread_take_turns(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "two_loops_on_one_thread_take_turns");
        let a = support::runtime(backend);
        let b = support::runtime(backend);
        let mut a_echo = a.block_on(echo());
        let mut b_echo = b.block_on(echo());
        for round in 0..3 {
            let fired = Rc::new(Cell::new(false));
            let mut a_task = None;
            a.block_on(async {
                let fired = fired.clone();
                a_task = Some(spawn(async move {
                    time::sleep(Duration::from_millis(20)).await;
                    fired.set(true);
                    round
                }));
            });
            let a_task = a_task.expect("spawned on A");
            let (a_before, b_before) = (a.stats(), submitted(&b));
            let b_nops = b.block_on(async {
                let nops = spawned_nops().await;
                // Past A's timer: it must still not fire, A is not running.
                time::sleep(Duration::from_millis(40)).await;
                b_echo.round_trip(&format!("b {round}")).await;
                assert_eq!(spawn(async { 7 }).await.expect("a task of B"), 7);
                nops
            });
            assert!(!fired.get(), "round {round}: A's task ran while only B ran");
            assert_eq!(a.stats(), a_before, "round {round}: B's work counted on A");
            assert!(
                submitted(&b) - b_before >= b_nops,
                "round {round}: B's NOPs counted on B"
            );
            let done = a.block_on(async {
                let done = time::timeout(WAIT_LIMIT, a_task)
                    .await
                    .expect("A's task finishes once A runs");
                a_echo.round_trip(&format!("a {round}")).await;
                done
            });
            assert_eq!(done.expect("A's task"), round);
            assert!(fired.get());
        }
    }

    /// `block_on` of runtime B from inside runtime A's loop panics, saying to spawn the future
    /// instead, before entering B; A goes on running, and B works afterwards.
    fn block_on_inside_another_loop_panics(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "block_on_inside_another_loop_panics");
        let a = support::runtime(backend);
        let b = support::runtime(backend);
        a.block_on(async {
            let nested = catch_unwind(AssertUnwindSafe(|| b.block_on(async { 1 })));
            let message = panic_message(&*nested.expect_err("a nested block_on panics"));
            assert!(
                message.contains("block_on called from inside a ringloop loop"),
                "the panic says why: {message:?}"
            );
            let task = spawn(async { op::nop().await.map(|_| 5) });
            assert_eq!(task.await.expect("A's task").expect("A's NOP"), 5);
        });
        let nops = b.block_on(spawned_nops());
        assert_eq!(submitted(&b), nops, "B's NOPs ran on B, nothing else did");
    }

    /// A runtime dropped inside a task of another loop (its drop cancels its own tasks, on
    /// this thread) leaves the outer task its own identity: the task then parks, and
    /// cancelling it through its handle reaches it.
    fn a_loop_dropped_inside_a_task_of_another(backend: Backend) {
        let _w = support::watchdog(TEST_LIMIT, "a_loop_dropped_inside_a_task_of_another");
        let a = support::runtime(backend);
        let b = support::runtime(backend);
        // B's tasks, parked: B's drop runs each of them once more, to cancel it.
        b.block_on(async {
            for _ in 0..3 {
                drop(spawn(std::future::pending::<()>()));
            }
            ringloop::yield_now().await;
        });
        let b = Rc::new(RefCell::new(Some(b)));
        let dropped = Rc::new(Cell::new(false));
        a.block_on(async {
            // Task ids of A's own, so the task below does not share an id with B's tasks.
            for _ in 0..5 {
                spawn(async {}).await.expect("a task of A");
            }
            let task = spawn({
                let (b, dropped) = (b.clone(), dropped.clone());
                async move {
                    drop(b.borrow_mut().take());
                    dropped.set(true);
                    std::future::pending::<()>().await
                }
            });
            support::yield_until("B was dropped inside A's task", || dropped.get()).await;
            task.cancel();
            let joined = time::timeout(WAIT_LIMIT, task)
                .await
                .expect("the cancel reaches the parked task");
            assert!(joined.expect_err("cancelled").is_cancelled());
        });
    }
}
