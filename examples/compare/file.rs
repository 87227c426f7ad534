//! `file_read/qd1` and `file_read/qd32`: random 4 KiB reads from a page-cached file.
//!
//! The file (256 MiB; 64 MiB with `--quick`) is written once per process in the temp dir,
//! unlinked at once (the open descriptor keeps it; nothing is left behind) and read through
//! once, so every read hits the page cache. A run does `file_reads` reads at 4 KiB-aligned
//! offsets drawn from a fixed pseudo-random sequence, by `depth` tasks each awaiting one read
//! at a time: `depth` reads in flight.
//!
//! * ringloop (either backend): `op::read_at` on the descriptor, one owned 4 KiB buffer per
//!   task. On io_uring an `IORING_OP_READ`; on epoll a `preadv2(RWF_NOWAIT)` that a cached
//!   page satisfies at once, the blocking pool only for pages not in memory.
//! * tokio: `spawn_blocking(pread)` per read (what `tokio::fs` does underneath).
//! * raw: one thread calling `pread` in a loop, the limit; it ignores the depth.

use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::time::Instant;

use crate::workload::Measured;

/// Bytes per read.
pub const BLOCK: usize = 4096;

/// The cached, already unlinked file, and its size.
fn data_file(bytes: u64) -> &'static std::fs::File {
    static FILE: OnceLock<std::fs::File> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "ringloop-compare-file-read-{}.dat",
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create the file_read data file");
        let _ = std::fs::remove_file(&path);
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut at = 0;
        while at < bytes {
            file.write_all_at(&chunk, at).expect("write the data file");
            at += chunk.len() as u64;
        }
        // Read it through once so that every page is cached.
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < bytes {
            at += file.read_at(&mut buf, at).expect("read the data file") as u64;
        }
        file
    })
}

/// `count` 4 KiB-aligned offsets below `bytes`, the same sequence every run.
fn offsets(bytes: u64, count: usize) -> Vec<u64> {
    let blocks = bytes / BLOCK as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            // xorshift64*: cheap and well spread.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % blocks) * BLOCK as u64
        })
        .collect()
}

/// ringloop on `backend`: `depth` tasks of awaited `op::read_at`.
pub fn ringloop_sample(
    backend: ringloop::Backend,
    depth: usize,
    reads: usize,
    bytes: u64,
) -> Result<Measured, String> {
    use std::os::fd::AsRawFd;
    let fd = data_file(bytes).as_raw_fd();
    let offsets = std::rc::Rc::new(offsets(bytes, reads));
    let runtime = ringloop::Runtime::builder()
        .backend(backend)
        .build()
        .map_err(|e| format!("ringloop ({backend:?}) failed to build: {e}"))?;
    let before = runtime.stats().kernel_enters;
    let measured = runtime.block_on(crate::workload::measure(|| {
        let offsets = offsets.clone();
        async move {
            let per_task = offsets.len() / depth;
            let tasks: Vec<_> = (0..depth)
                .map(|t| {
                    let offsets = offsets.clone();
                    ringloop::spawn(async move {
                        let mut buf = Vec::with_capacity(BLOCK);
                        for &offset in &offsets[t * per_task..(t + 1) * per_task] {
                            buf.clear();
                            let (n, back) = ringloop::op::read_at(fd, buf, offset).await;
                            assert_eq!(n.expect("read_at"), BLOCK);
                            buf = back;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("read task");
            }
            (per_task * depth) as u64
        }
    }));
    let enters = runtime.stats().kernel_enters - before;
    Ok(Measured {
        kernel_enters: Some(enters / 2),
        ..measured
    })
}

/// tokio (current thread): `depth` tasks, each awaiting `spawn_blocking(pread)` per read.
pub fn tokio_sample(depth: usize, reads: usize, bytes: u64) -> Result<Measured, String> {
    let file = data_file(bytes);
    let offsets = std::sync::Arc::new(offsets(bytes, reads));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime failed to build: {e}"))?;
    Ok(runtime.block_on(crate::workload::measure(|| {
        let offsets = offsets.clone();
        async move {
            let per_task = offsets.len() / depth;
            let tasks: Vec<_> = (0..depth)
                .map(|t| {
                    let offsets = offsets.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; BLOCK];
                        for k in t * per_task..(t + 1) * per_task {
                            let offset = offsets[k];
                            buf = tokio::task::spawn_blocking(move || {
                                let n = file.read_at(&mut buf, offset).expect("pread");
                                assert_eq!(n, BLOCK);
                                buf
                            })
                            .await
                            .expect("spawn_blocking");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("read task");
            }
            (per_task * depth) as u64
        }
    })))
}

/// The limit: one thread, `pread` after `pread`, no runtime.
pub fn raw_sample(reads: usize, bytes: u64) -> Result<Measured, String> {
    let file = data_file(bytes);
    let offsets = offsets(bytes, reads);
    let mut buf = vec![0u8; BLOCK];
    let mut run = || {
        for &offset in &offsets {
            let n = file.read_at(&mut buf, offset).expect("pread");
            assert_eq!(n, BLOCK);
        }
    };
    run();
    let start = Instant::now();
    run();
    Ok(Measured::timed(start.elapsed(), offsets.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_in_range_and_spread() {
        let bytes = 64 << 20;
        let offs = offsets(bytes, 10_000);
        assert!(
            offs.iter()
                .all(|&o| o % BLOCK as u64 == 0 && o + BLOCK as u64 <= bytes)
        );
        let distinct: std::collections::HashSet<_> = offs.iter().collect();
        // 10 000 uniform draws from 16 384 blocks give about 7 490 distinct ones.
        assert!(
            distinct.len() > 7_000,
            "only {} distinct offsets",
            distinct.len()
        );
        assert_eq!(offs, offsets(bytes, 10_000));
    }
}
