//! Directory and path functions on both backends: `rename`, `remove_file`, `remove_dir`,
//! `create_dir_all` (mkdir -p, idempotent), hard and symbolic links, `copy`, whole-file
//! `read`/`write`; and a blocking open (a FIFO with no writer yet) never blocks the loop.

mod fs_support;
mod support;

use std::io::ErrorKind;
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::{self, File, OpenOptions};

both_backends! {
    /// `rename` moves a file (replacing the target), `remove_file` deletes it, and both fail
    /// with `NotFound` once it is gone.
    fn rename_and_remove_file(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "rename");
        let dir = TempDir::new("rename");
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"payload").unwrap();
        std::fs::write(&b, b"old").unwrap();
        rt.block_on(async {
            fs::rename(&a, &b).await.unwrap();
            assert_eq!(fs::read(&b).await.unwrap(), b"payload");
            assert_eq!(fs::metadata(&a).await.unwrap_err().kind(), ErrorKind::NotFound);
            fs::remove_file(&b).await.unwrap();
            assert_eq!(fs::remove_file(&b).await.unwrap_err().kind(), ErrorKind::NotFound);
            assert_eq!(fs::rename(&a, &b).await.unwrap_err().kind(), ErrorKind::NotFound);
        });
        assert!(!a.exists() && !b.exists());
    }

    /// `create_dir_all` makes every missing level, succeeds again on an existing tree, and
    /// fails when a level is a file; `create_dir` refuses an existing directory; `remove_dir`
    /// refuses a non-empty one and removes an empty one.
    fn create_dir_all_and_remove_dir(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "mkdir -p");
        let dir = TempDir::new("mkdir-p");
        let deep = dir.join("a/b/c/d");
        rt.block_on(async {
            fs::create_dir_all(&deep).await.unwrap();
            assert!(fs::metadata(&deep).await.unwrap().is_dir());
            fs::create_dir_all(&deep).await.unwrap();
            let err = fs::create_dir(&deep).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);
            fs::write(dir.join("a/file"), b"x".to_vec()).await.unwrap();
            let err = fs::create_dir_all(dir.join("a/file/sub")).await.unwrap_err();
            assert!(err.to_string().contains("file"), "{err}");
            let err = fs::remove_dir(dir.join("a/b")).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
            fs::remove_dir(&deep).await.unwrap();
            assert!(!deep.exists());
        });
    }

    /// A hard link shares the inode (a write through one name shows through the other); a
    /// symbolic link resolves to its target; `copy` duplicates contents and permission bits.
    fn links_and_copy(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "links");
        let dir = TempDir::new("links");
        let orig = dir.join("orig");
        rt.block_on(async {
            fs::write(&orig, b"one".to_vec()).await.unwrap();
            fs::hard_link(&orig, dir.join("hard")).await.unwrap();
            assert_eq!(fs::metadata(&orig).await.unwrap().nlink(), 2);
            assert_eq!(
                fs::metadata(dir.join("hard")).await.unwrap().ino(),
                fs::metadata(&orig).await.unwrap().ino()
            );
            fs::symlink("orig", dir.join("soft")).await.unwrap();
            assert_eq!(fs::read(dir.join("soft")).await.unwrap(), b"one");
            let err = fs::hard_link(&orig, dir.join("hard")).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);

            let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            let f = OpenOptions::new().write(true).create_new(true).mode(0o640)
                .open(dir.join("big")).await.unwrap();
            f.write_all_at(big.clone(), 0).await.0.unwrap();
            f.close().await.unwrap();
            assert_eq!(fs::copy(dir.join("big"), dir.join("big2")).await.unwrap(), 1_000_000);
            assert_eq!(fs::read(dir.join("big2")).await.unwrap(), big);
            let mode = fs::metadata(dir.join("big2")).await.unwrap().permissions();
            assert_eq!(mode & 0o700, 0o600, "mode {mode:o}");
        });
        assert_eq!(std::fs::read(dir.join("hard")).unwrap(), b"one");
    }

    /// `copy` of an empty file makes an empty file; a directory as source is `InvalidInput`
    /// and a target in a missing directory is `NotFound`, each naming its path; a file of
    /// several splice chunks plus a tail arrives intact; a source that cannot be spliced
    /// (procfs) is copied by the read/write loop.
    fn copy_edge_cases(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "copy edges");
        let dir = TempDir::new("copy-edges");
        rt.block_on(async {
            fs::write(dir.join("empty"), b"".as_slice()).await.unwrap();
            assert_eq!(fs::copy(dir.join("empty"), dir.join("empty2")).await.unwrap(), 0);
            assert!(fs::read(dir.join("empty2")).await.unwrap().is_empty());
            let err = fs::copy(dir.path(), dir.join("x")).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            let err = fs::copy(dir.join("empty"), dir.join("no/such/dir/x")).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(err.to_string().contains("no/such/dir/x"), "{err}");
            let odd: Vec<u8> = (0..3 * 65536 + 123).map(|i: u32| (i * 31 % 256) as u8).collect();
            fs::write(dir.join("odd"), odd.clone()).await.unwrap();
            assert_eq!(fs::copy(dir.join("odd"), dir.join("odd2")).await.unwrap(), odd.len() as u64);
            assert_eq!(fs::read(dir.join("odd2")).await.unwrap(), odd);
            // procfs cannot be spliced (EINVAL): the read/write loop copies it instead.
            let n = fs::copy("/proc/self/status", dir.join("status")).await.unwrap();
            let text = fs::read_to_string(dir.join("status")).await.unwrap();
            assert_eq!(text.len() as u64, n);
            assert!(text.starts_with("Name:"), "{text}");
        });
    }

    /// Opening a FIFO for reading blocks in the kernel until a writer appears; meanwhile the
    /// loop keeps running other tasks (here: the one that opens the writer), so the open is
    /// never performed on the loop thread.
    fn a_blocking_open_does_not_block_the_loop(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "fifo open");
        let dir = TempDir::new("fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        rt.block_on(async {
            let path = fifo.clone();
            let reader = ringloop::spawn(async move { File::open(&path).await });
            support::yield_turns(10).await;
            let writer = OpenOptions::new().write(true).open(&fifo).await.unwrap();
            let reader = reader.await.unwrap().unwrap();
            // A FIFO has no offsets: plain ops at the (absent) file position, as many as the
            // FIFO takes and gives the bytes in.
            let sent = b"through";
            let mut written = 0;
            while written < sent.len() {
                let rest = sent[written..].to_vec();
                let (n, _) = ringloop::op::write(writer.as_raw_fd(), rest).await;
                let n = n.unwrap();
                assert!(n > 0, "a write to the FIFO wrote nothing");
                written += n;
            }
            let got = support::read_fd_exact(reader.as_raw_fd(), sent.len(), "the FIFO").await;
            assert_eq!(got, sent);
        });
    }

    /// `copy` gives the target the source's permission bits exactly: not cut by the umask
    /// (0o777 survives a 022 umask) and replacing an existing target's own (0o600 → 0o644).
    fn copy_preserves_permissions(rt) {
        use std::os::unix::fs::PermissionsExt;
        let _dog = support::watchdog(Duration::from_secs(20), "copy permissions");
        let dir = TempDir::new("copy-perm");
        let (src, fresh, existing) = (dir.join("src"), dir.join("fresh"), dir.join("existing"));
        std::fs::write(&src, b"bits").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(&existing, b"old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o600)).unwrap();
        rt.block_on(async {
            fs::copy(&src, &fresh).await.unwrap();
            assert_eq!(fs::metadata(&fresh).await.unwrap().permissions(), 0o777);
            fs::set_permissions(&src, 0o644).await.unwrap();
            fs::copy(&src, &existing).await.unwrap();
            assert_eq!(fs::metadata(&existing).await.unwrap().permissions(), 0o644);
            assert_eq!(fs::read(&existing).await.unwrap(), b"bits");
        });
    }

    /// `fs::set_permissions` and `File::set_permissions` set the bits exactly (no umask);
    /// a missing path fails with `NotFound` and names the path.
    fn set_permissions_on_paths_and_files(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "set_permissions");
        let dir = TempDir::new("set-perm");
        let path = dir.join("f");
        std::fs::write(&path, b"x").unwrap();
        rt.block_on(async {
            fs::set_permissions(&path, 0o751).await.unwrap();
            assert_eq!(fs::metadata(&path).await.unwrap().permissions(), 0o751);
            let file = File::open(&path).await.unwrap();
            file.set_permissions(0o604).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().permissions(), 0o604);
            let missing = dir.join("missing");
            let err = fs::set_permissions(&missing, 0o600).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(err.to_string().contains("missing"), "{err}");
        });
    }

    /// `read_dir` lists every entry once (files, a directory, a symlink; 300 files, so several
    /// trips to the pool) with its type and a working `metadata`, without `.`/`..`; a missing
    /// directory fails with `NotFound` naming it, and a file is not a directory.
    fn read_dir_lists_every_entry_once(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "read_dir");
        let dir = TempDir::new("read-dir");
        for i in 0..300 {
            std::fs::write(dir.join(&format!("f{i:03}")), vec![b'x'; i]).unwrap();
        }
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("f001", dir.join("link")).unwrap();
        rt.block_on(async {
            let mut entries = fs::read_dir(dir.path()).await.unwrap();
            let mut seen = Vec::new();
            while let Some(entry) = entries.next_entry().await.unwrap() {
                let name = entry.file_name().into_string().unwrap();
                assert_eq!(entry.path(), dir.join(&name));
                let kind = entry.file_type();
                match name.as_str() {
                    "sub" => assert!(kind.is_dir()),
                    "link" => assert!(kind.is_symlink()),
                    _ => {
                        assert!(kind.is_file(), "{name}");
                        let len: u64 = name[1..].parse().unwrap();
                        assert_eq!(entry.metadata().await.unwrap().len(), len, "{name}");
                    }
                }
                seen.push(name);
            }
            assert!(entries.next_entry().await.unwrap().is_none(), "stays at the end");
            seen.sort();
            let mut want: Vec<String> = (0..300).map(|i| format!("f{i:03}")).collect();
            want.extend(["link".to_string(), "sub".to_string()]);
            want.sort();
            assert_eq!(seen, want);

            let err = fs::read_dir(dir.join("nowhere")).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(err.to_string().contains("nowhere"), "{err}");
            let err = fs::read_dir(dir.join("f001")).await.unwrap_err();
            assert_eq!(err.raw_os_error(), None, "wrapped with the path: {err}");
            assert!(err.to_string().contains("Not a directory"), "{err}");
        });
    }
}
