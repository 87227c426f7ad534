//! ringloop against tokio, monoio and a bare io_uring loop, on the same workloads in one run.
//!
//! ```text
//! cargo run --release --example compare                      # 7 rounds, two to three minutes
//! cargo run --release --example compare -- --quick           # 3 rounds, small counts (CI smoke)
//! cargo run --release --example compare -- --filter nop --json out.json
//! ```
//!
//! # What is measured
//!
//! | workload         | loop (the same source for every runtime)                        | unit     |
//! | ---------------- | ---------------------------------------------------------------- | -------- |
//! | `nop/1`, `/32`, `/256` | N tasks each awaiting `op::nop()` in a loop: N NOPs in flight | Mops/s |
//! | `spawn_join`     | spawn 100 000 tasks returning a small value, then await them all | ns/task  |
//! | `sleep/10000`    | 10 000 tasks sleeping 1..=10 ms (all distinct), all awaited      | ms       |
//! | `timeout_cancel` | 100 000 × `timeout(10 s, yield_now())`: poll once (the timer registers), drop (it is cancelled) | ns/op |
//! | `yield`          | one task awaiting `yield_now()` 1 000 000 times                 | ns/yield |
//! | `echo/Cconn/S`   | C = 1, 16, 128 connections, each with one S = 64 B or 4 KiB message in flight, echoed | req/s, us/req, enters/req, KiB/conn |
//! | `http/1conn`, `/64conn` | HTTP/1.1 keep-alive `GET /` answered with a 13-byte body by hyper's http1 server; 1 or 64 connections, one request in flight each | req/s, us/req, p50 us and p99 us (1conn), enters/req, KiB/conn |
//! | `stream/64KiB`   | one connection of 64 KiB writes; the server reads and discards  | bytes/s, us/req, enters/req |
//! | `tls_echo/16conn/4KiB` | `echo/16conn/4KiB` over TLS 1.3 (rustls, *ring* provider): 16 connections, one 4 KiB message each in flight | req/s, us/req, enters/req, KiB/conn |
//! | `tls_stream/64KiB` | `stream/64KiB` over TLS: 64 KiB plaintext writes, read and discarded | bytes/s, us/req, enters/req |
//! | `tls_handshake` | connect, full TLS 1.3 handshake (ECDSA P-256 certificate, no resumption), one byte back, close_notify; one connection at a time | hs/s, us/req, enters/req |
//! | `idle_rss/10000` | 10 000 idle connections (1 000 with `--quick`), each with a pending 4 KiB read | KiB/conn |
//! | `process_spawn`  | spawn `true` and await its exit, 1 000 times in a row (100 with `--quick`); ringloop and tokio only | ns/process |
//! | `lock/uncontended` | one task: `sync::Lock` acquire + release 1 000 000 times, vs `tokio::sync::Mutex` (ringloop and tokio only) | ns/lock |
//! | `lock/contended/16` | 16 tasks take turns: acquire, yield holding it, release; 1 000 000 in all | ns/lock |
//! | `queue/1M` | a producer and a consumer task move 1 000 000 integers through a bounded queue of 128: `queue::Queue` vs `tokio::sync::mpsc` | ns/item |
//! | `queue/1M/mpsc` | the same through ringloop's thread-safe `sync::mpsc`; tokio's row is its `mpsc` again (the baseline) | ns/item |
//! | `taskgroup/10000` | spawn 10 000 children (each yields once) into a `task::TaskGroup` and join it, vs `tokio::task::JoinSet` | ns/child |
//! | `spawn_threadsafe` | a plain thread spawns a task onto the loop and blocks for its result, 10 000 times: `Handle::spawn` + `JoinHandle::wait` vs tokio's `Handle::spawn` + `block_on` | ns/trip |
//! | `file_read/qd1`, `/qd32` | random 4 KiB reads of a page-cached 256 MiB file (64 MiB with `--quick`) by 1 or 32 tasks (see `file.rs`); `raw` is a single-thread `pread` loop | ns/read |
//!
//! The networking rows (see `net/mod.rs`) run the server in a child process on the runtime
//! named, its loop thread pinned to one CPU, against one load generator pinned to another (a
//! bare epoll loop, the same for every server). Each of their numbers is a line of its own,
//! with its own unit, median, min, max and ratio: the throughput (`req/s`, `bytes/s`), the
//! server thread's CPU time per request (`us/req`, getrusage), ringloop's kernel entries per
//! request (`enters/req`) and the server's RSS growth per connection (`KiB/conn`, the only line
//! of `idle_rss/N`). Their runtimes are ringloop on both backends, tokio and monoio (raw has no
//! server); the TLS rows (`net/tls/`) have no monoio server: ringloop's `tls::TlsStream`
//! against tokio-rustls, both on the same rustls and *ring* provider, with a rustls client in
//! the load generator. Under the table, `tls_stream/64KiB`'s median is set against
//! `stream/64KiB`'s of the same run for each runtime: the share of plain throughput TLS keeps.
//! The TLS rows need ringloop's `tls` feature (on by default).
//!
//! The HTTP rows (`net/http/`) serve hyper's HTTP/1.1 server with one handler: on ringloop
//! through its `hyper` feature (the socket is hyper's I/O, `ringloop::hyper::Timer`), on tokio
//! through hyper-util's `TokioIo` and `TokioTimer`; monoio has no HTTP server here. The load
//! generator sends a fixed `GET /` and reads one whole response per request, one in flight per
//! connection, and at one connection records every request's latency (p50, p99). The
//! `ringloop-io_uring+tokio-io` and `ringloop-epoll+tokio-io` columns run `echo/16conn/64B`
//! only: ringloop's echo server written against tokio's `AsyncRead`/`AsyncWrite` (its
//! `tokio-io` impls), set under the table against the native server of the same run. The
//! `hyper` and `tokio-io` features these need are turned on for the examples by ringloop's
//! dev-dependency on itself (Cargo.toml), so the plain command runs them.
//!
//! Runtimes: `ringloop-io_uring` and `ringloop-epoll` (ringloop with the backend forced; with
//! `+tokio-io`, the echo server through tokio's I/O traits),
//! `tokio` (current-thread, all drivers), `monoio` (io_uring driver, timer on) and `raw`, a bare
//! io_uring loop (push N NOP SQEs, one `submit_and_wait(N)`, reap, repeat) that marks the limit
//! for `nop/N`. Only ringloop and raw have `nop/N` rows: tokio has no NOP op and monoio keeps its
//! NOP private. `sleep/10000` is total wall time from the first spawn to the last wake, so its
//! floor is 10 ms (the longest sleep); the excess is spawning plus timer lateness.
//!
//! # How a number is taken
//!
//! For each workload, `rounds` rounds (7, or 3 with `--quick`); in each round every runtime takes
//! one sample, in an order rotated by one per round. A sample builds a fresh runtime on a fresh
//! thread, runs the workload once untimed (warm-up: memory faulted in, pools and timer wheels
//! grown), then times a second, identical run with `Instant`. A networking sample starts a fresh
//! server process, loads it untimed for 100 ms (10 ms with `--quick`), then times a 300 ms
//! (30 ms) window. The tables show median, min and max over the rounds, and the ratio of the
//! median to the baseline's (tokio; `raw` for `nop/N`) in the same unit, oriented so that above
//! 1.00x is better whether the unit is better higher or lower.
//!
//! A runtime that cannot start here (no io_uring, say) is reported and left out; a sample that
//! panics drops its row with a note; a sample that hangs for a minute stops the run.

mod asyncio;
mod cli;
mod file;
mod harness;
mod net;
mod process;
mod report;
mod runtimes;
mod workload;

use cli::Command;
use harness::Plan;
use runtimes::RuntimeId;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::NetServer(spec)) => return net::server_main(spec),
        Err(error) => {
            eprintln!("compare: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let workloads = selected_workloads(options.filter.as_deref(), options.quick);
    if workloads.is_empty() {
        let names: Vec<_> = workload::all(options.quick)
            .iter()
            .map(|w| w.name)
            .collect();
        eprintln!(
            "compare: no workload matches the filter; workloads: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    print_preamble();
    let (runtimes, mut notes) = startable_runtimes();
    let plan = Plan {
        workloads,
        runtimes,
        rounds: if options.quick { 3 } else { 7 },
        sizes: if options.quick {
            workload::Sizes::quick()
        } else {
            workload::Sizes::normal()
        },
        hang_limit: Duration::from_secs(60),
    };

    let started = Instant::now();
    let outcome = harness::run(&plan);
    notes.extend(outcome.notes);

    println!(
        "\n{} rounds{}, {:.1} s in all.\n",
        plan.rounds,
        if options.quick {
            " (--quick: small counts)"
        } else {
            ""
        },
        started.elapsed().as_secs_f64(),
    );
    report::print_table(&outcome.rows);
    print_notes(&notes);

    if let Some(path) = &options.json {
        match report::write_json(path, &outcome.rows) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(error) => {
                eprintln!("compare: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if outcome.hung {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The workloads whose name contains `filter` (all of them without one).
fn selected_workloads(filter: Option<&str>, quick: bool) -> Vec<workload::Workload> {
    workload::all(quick)
        .into_iter()
        .filter(|w| filter.is_none_or(|f| w.name.contains(f)))
        .collect()
}

/// What the numbers below were measured on.
fn print_preamble() {
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; run with --release for meaningful numbers.\n");
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("kernel {kernel}, {cpus} CPUs");
    println!("{}", net::placement());
    println!("ringloop backend report (Backend::Auto):");
    let report = std::panic::catch_unwind(runtimes::auto_backend_report)
        .unwrap_or_else(|_| "building the runtime panicked".to_owned());
    for line in report.lines() {
        println!("  {line}");
    }
}

/// The runtimes that start on this machine, and a note for each that does not.
fn startable_runtimes() -> (Vec<RuntimeId>, Vec<String>) {
    let mut runtimes = Vec::new();
    let mut notes = Vec::new();
    for id in RuntimeId::ALL {
        // A runtime that panics while starting is reported like one that returns an error.
        let probed = std::panic::catch_unwind(|| id.probe())
            .unwrap_or_else(|_| Err("panicked while starting".to_owned()));
        match probed {
            Ok(()) => runtimes.push(id),
            Err(why) => notes.push(format!("{} skipped: {why}", id.name())),
        }
    }
    (runtimes, notes)
}

fn print_notes(notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    println!("\nnotes:");
    for note in notes {
        println!("  - {note}");
    }
}
