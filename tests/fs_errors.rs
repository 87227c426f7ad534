//! Bad input to the file API, both backends: a missing file is `NotFound` naming the path; a
//! directory read as a file fails with `EISDIR` naming it; `create_new` on an existing file is
//! `AlreadyExists`; contradictory open options are `InvalidInput`; a path with a NUL byte is
//! `InvalidInput`, not a panic.

mod fs_support;
mod support;

use std::io::ErrorKind;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::{self, File, OpenOptions};

both_backends! {
    /// Opening a file that does not exist fails with `NotFound`, and the message names the path.
    fn open_missing_file_is_not_found_naming_the_path(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "open missing");
        let dir = TempDir::new("open-missing");
        let path = dir.join("no-such-file.txt");
        rt.block_on(async {
            let err = File::open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            let msg = err.to_string();
            assert!(msg.contains("no-such-file.txt") && msg.contains("open"), "{msg}");
            let err = fs::read(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(err.to_string().contains("no-such-file.txt"), "{err}");
            let err = fs::metadata(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(err.to_string().contains("no-such-file.txt"), "{err}");
        });
    }

    /// Reading a directory as a file fails with `IsADirectory` (EISDIR), naming the directory.
    fn reading_a_directory_is_a_clear_error(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "read dir");
        let dir = TempDir::new("read-dir");
        rt.block_on(async {
            let err = fs::read(dir.path()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
            assert!(err.to_string().contains(dir.path().to_str().unwrap()), "{err}");
            let err = fs::read_to_string(dir.path()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
        });
    }

    /// `create_new` refuses a file that exists (`AlreadyExists`) and leaves its contents alone.
    fn create_new_refuses_an_existing_file(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "create_new");
        let dir = TempDir::new("create-new");
        let path = dir.join("f");
        std::fs::write(&path, b"keep").unwrap();
        rt.block_on(async {
            let err = OpenOptions::new().write(true).create_new(true).open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    /// Options that cannot be honoured (no access mode; create without write) and paths with a
    /// NUL byte are `InvalidInput` errors, and nothing is created.
    fn invalid_options_and_paths_are_invalid_input(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "invalid options");
        let dir = TempDir::new("invalid-options");
        let path = dir.join("never");
        rt.block_on(async {
            let err = OpenOptions::new().open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            let err = OpenOptions::new().read(true).create(true).open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            let err = fs::remove_file("bad\0path").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        });
        assert!(!path.exists());
    }

    /// Writing through a file opened read-only fails with the OS error, naming the path.
    fn writing_a_read_only_file_fails_naming_it(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "write read-only");
        let dir = TempDir::new("write-ro");
        let path = dir.join("ro");
        std::fs::write(&path, b"x").unwrap();
        rt.block_on(async {
            let file = File::open(&path).await.unwrap();
            let (res, _) = file.write_at(b"y".to_vec(), 0).await;
            let err = res.unwrap_err();
            assert!(err.to_string().contains("ro"), "{err}");
            let inner = err.get_ref().and_then(|e| e.source()).and_then(|e| e.downcast_ref::<std::io::Error>());
            assert_eq!(inner.and_then(|e| e.raw_os_error()), Some(libc::EBADF), "{err:?}");
        });
    }
}
