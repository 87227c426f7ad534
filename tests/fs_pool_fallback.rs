//! Where the kernel's io_uring lacks a filesystem opcode, that call runs on the blocking pool
//! and behaves the same. Forced with `RINGLOOP_MISSING_OPS=all` in a re-executed child (the
//! variable is read when a runtime is built, so it cannot be set in this process): the child
//! checks that the backend report shows the `op_*` features off on io_uring, then opens,
//! writes, stats, truncates, allocates, syncs, links, renames and removes through the `fs` API,
//! and that the blocking pool ran them.
//! On epoll every one of these calls goes to the pool anyway; the same body runs there.

mod fs_support;
mod support;

use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::{self, OpenOptions};
use support::{CHILD_ENV, assert_child_passed, backend_role, child_backend, run_child};

/// The child: every fs call with the fs opcodes reported missing.
#[test]
fn child_fs_without_fs_opcodes() {
    let Some(backend) = child_backend() else {
        return;
    };
    let _dog = support::watchdog(Duration::from_secs(30), "fs without opcodes");
    let rt = support::runtime(backend);
    if backend == ringloop::Backend::IoUring {
        let features = rt.backend_report().features().to_vec();
        for name in [
            "op_openat",
            "op_statx",
            "op_ftruncate",
            "op_fallocate",
            "op_mkdirat",
        ] {
            assert!(
                features.contains(&(name, false)),
                "{name} not reported off: {features:?}"
            );
        }
    }
    let dir = TempDir::new("pool-fallback");
    rt.block_on(async {
        let path = dir.join("f");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all_at(b"0123456789".to_vec(), 0)
            .await
            .0
            .unwrap();
        file.set_len(4).await.unwrap();
        file.allocate(0, 8192).await.unwrap();
        file.sync_all().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 8192);
        file.close().await.unwrap();
        fs::create_dir_all(dir.join("a/b")).await.unwrap();
        fs::hard_link(&path, dir.join("a/hard")).await.unwrap();
        fs::symlink(&path, dir.join("a/soft")).await.unwrap();
        fs::rename(dir.join("a/hard"), dir.join("a/b/moved"))
            .await
            .unwrap();
        assert_eq!(
            &fs::read(dir.join("a/b/moved")).await.unwrap()[..4],
            b"0123"
        );
        assert!(
            fs::symlink_metadata(dir.join("a/soft"))
                .await
                .unwrap()
                .is_symlink()
        );
        fs::remove_file(dir.join("a/b/moved")).await.unwrap();
        fs::remove_dir(dir.join("a/b")).await.unwrap();
        let err = fs::File::open(dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
    // None of these calls has a pool path of its own (unlike `read_dir`): on io_uring the
    // driver sent them there because their opcodes are missing. Idle threads stay for 10 s.
    assert!(rt.blocking_pool_threads() > 0, "no fs call ran on the pool");
}

both_backends! {
    /// With every fs opcode reported missing, the `fs` API still works (through the pool).
    fn fs_works_without_fs_opcodes(backend: Backend) {
        let role = backend_role(backend);
        let name = "child_fs_without_fs_opcodes";
        let output = run_child(name, &[(CHILD_ENV, role), ("RINGLOOP_MISSING_OPS", "all")]);
        assert_child_passed(name, &output);
    }
}
