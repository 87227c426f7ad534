//! Runs one benchmark body on each backend, as one criterion group.

use std::future::Future;
use std::time::Duration;

use criterion::Criterion;
use ringloop::{Backend, Runtime};

/// The backends, in output order, with the name each benchmark function takes.
const BACKENDS: [(&str, Backend); 2] = [("io_uring", Backend::IoUring), ("epoll", Backend::Epoll)];

/// Shorter than criterion's defaults (3 s warm-up, 5 s measurement), for quick iteration:
/// every path here runs well over a thousand iterations a second. `--warm-up-time` and
/// `--measurement-time` on the command line still override it.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

/// Benchmarks `body` as group `name`, once per backend.
///
/// `body(iters)` runs inside the backend's loop (`block_on`) and returns how long `iters`
/// iterations took, so the loop's start-up is never timed. A backend that cannot run on this
/// machine (io_uring denied by a seccomp profile or a sysctl, say) is skipped with a message.
pub fn on_each_backend<F, Fut>(c: &mut Criterion, name: &str, body: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Duration>,
{
    let mut group = c.benchmark_group(name);
    for (label, backend) in BACKENDS {
        let runtime = match Runtime::builder().backend(backend).build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("{name}/{label}: skipped, this backend cannot run here: {error}");
                continue;
            }
        };
        group.bench_function(label, |b| {
            b.iter_custom(|iters| runtime.block_on(body(iters)))
        });
    }
    group.finish();
}
