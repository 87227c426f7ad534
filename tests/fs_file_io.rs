//! `File` I/O on both backends: positioned writes and reads round-trip at any offset; the
//! cursor advances over sequential reads and writes (vectored too); append writes go to the
//! end; metadata reports size and kind; `set_len` and `allocate` change the size; syncs and
//! an explicit close succeed.

mod fs_support;
mod support;

use std::io::SeekFrom;
use std::time::Duration;

use fs_support::TempDir;
use ringloop::fs::{self, File, OpenOptions};

/// Read-write, created if missing.
fn rw() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true);
    o
}

// A read or write may move fewer bytes than asked (`read(2)`, `write(2)`); the helpers below
// read on until they have what the test wants.

/// `len` bytes of `file` at `offset`, fewer only where the file ends, in as many `read_at`s
/// as it takes.
async fn read_exact_at(file: &File, len: usize, offset: u64) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        let at = offset + got.len() as u64;
        let (n, buf) = file.read_at(Vec::with_capacity(len - got.len()), at).await;
        if n.unwrap() == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    got
}

/// `len` bytes of `file` from its cursor, fewer only where the file ends, in as many `read`s
/// as it takes.
async fn read_exact(file: &mut File, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        let (n, buf) = file.read(Vec::with_capacity(len - got.len())).await;
        if n.unwrap() == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    got
}

both_backends! {
    /// Bytes written at scattered offsets read back exactly, holes read as zeros, and a read
    /// past the end returns 0.
    fn writes_and_reads_round_trip_at_offsets(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "offsets");
        let dir = TempDir::new("offsets");
        let path = dir.join("f");
        rt.block_on(async {
            let file = rw().open(&path).await.unwrap();
            let (res, _) = file.write_all_at(b"abc".to_vec(), 10).await;
            res.unwrap();
            let (res, _) = file.write_all_at(vec![7u8; 100_000], 4096).await;
            res.unwrap();
            let got = read_exact_at(&file, 16, 8).await;
            assert_eq!(got, b"\0\0abc\0\0\0\0\0\0\0\0\0\0\0");
            let got = read_exact_at(&file, 8, 4096 + 99_996).await;
            assert_eq!(got, &[7, 7, 7, 7]);
            let (n, _) = file.read_at(Vec::with_capacity(8), 1 << 30).await;
            assert_eq!(n.unwrap(), 0);
            assert_eq!(file.metadata().await.unwrap().len(), 4096 + 100_000);
        });
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[10..13], b"abc");
        assert!(on_disk[4096..].iter().all(|&b| b == 7));
    }

    /// Sequential writes and reads move the cursor; seek repositions it (start, current, end).
    fn cursor_reads_and_writes_advance(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "cursor");
        let dir = TempDir::new("cursor");
        let path = dir.join("f");
        rt.block_on(async {
            let mut file = rw().open(&path).await.unwrap();
            file.write_all(b"hello ".to_vec()).await.0.unwrap();
            file.write_all(b"world".to_vec()).await.0.unwrap();
            assert_eq!(file.stream_position(), 11);
            assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
            let mut got = Vec::new();
            loop {
                let (n, buf) = file.read(Vec::with_capacity(4)).await;
                if n.unwrap() == 0 {
                    break;
                }
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, b"hello world");
            assert_eq!(file.seek(SeekFrom::End(-5)).await.unwrap(), 6);
            assert_eq!(read_exact(&mut file, 5).await, b"world");
            assert_eq!(file.seek(SeekFrom::Current(-11)).await.unwrap(), 0);
            assert!(file.seek(SeekFrom::Current(-1)).await.is_err());
        });
    }

    /// `writev` writes its buffers in order at the cursor and `readv` fills buffers in turn
    /// (when either moves fewer bytes than asked, the rest follows from where it stopped).
    fn vectored_io_uses_the_cursor(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "vectored");
        let dir = TempDir::new("vectored");
        let path = dir.join("f");
        rt.block_on(async {
            let mut file = rw().open(&path).await.unwrap();
            file.write_all(b">>".to_vec()).await.0.unwrap();
            let (n, _) = file.writev(vec![b"one".to_vec(), b"two".to_vec()]).await;
            let n = n.unwrap();
            assert!((1..=6).contains(&n), "writev wrote {n} bytes");
            assert_eq!(file.stream_position(), 2 + n as u64);
            file.write_all(b"onetwo"[n..].to_vec()).await.0.unwrap();
            assert_eq!(file.stream_position(), 8);
            file.seek(SeekFrom::Start(2)).await.unwrap();
            let (n, bufs) = file.readv(vec![Vec::with_capacity(4), Vec::with_capacity(8)]).await;
            let n = n.unwrap();
            assert!((1..=6).contains(&n), "readv read {n} bytes");
            let in_first = n.min(4);
            assert_eq!(bufs[0], &b"onetwo"[..in_first]);
            assert_eq!(bufs[1], &b"onetwo"[in_first..n]);
            assert_eq!(file.stream_position(), 2 + n as u64);
            assert_eq!(read_exact(&mut file, 6 - n).await, &b"onetwo"[n..]);
        });
        assert_eq!(std::fs::read(&path).unwrap(), b">>onetwo");
    }

    /// With `append`, every write lands at the end of the file, whatever the cursor says.
    fn append_writes_go_to_the_end(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "append");
        let dir = TempDir::new("append");
        let path = dir.join("log");
        std::fs::write(&path, b"first\n").unwrap();
        rt.block_on(async {
            let mut file = OpenOptions::new().append(true).open(&path).await.unwrap();
            file.write_all(b"second\n".to_vec()).await.0.unwrap();
            file.write_all(b"third\n".to_vec()).await.0.unwrap();
            file.close().await.unwrap();
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\nthird\n");
    }

    /// Metadata reports the size and the kind (file, directory, symlink), and the mode given
    /// at creation (less nothing: the umask only removes bits).
    fn metadata_reports_size_and_kind(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "metadata");
        let dir = TempDir::new("metadata");
        let path = dir.join("f");
        rt.block_on(async {
            fs::write(&path, vec![1u8; 12345]).await.unwrap();
            let m = fs::metadata(&path).await.unwrap();
            assert_eq!(m.len(), 12345);
            assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
            assert!(m.modified().is_ok());
            let d = fs::metadata(dir.path()).await.unwrap();
            assert!(d.is_dir() && !d.is_file());
            fs::symlink(&path, dir.join("link")).await.unwrap();
            assert!(fs::symlink_metadata(dir.join("link")).await.unwrap().is_symlink());
            assert!(fs::metadata(dir.join("link")).await.unwrap().is_file());
            let f = File::open(&path).await.unwrap();
            let fm = f.metadata().await.unwrap();
            assert_eq!((fm.len(), fm.ino()), (12345, m.ino()));
            let made = OpenOptions::new().write(true).create_new(true).mode(0o600)
                .open(dir.join("private")).await.unwrap();
            assert_eq!(made.metadata().await.unwrap().permissions() & 0o077, 0);
        });
    }

    /// `set_len` truncates and extends with zeros; `allocate` grows the file to cover the range;
    /// `sync_all` and `sync_data` succeed on a regular file.
    fn set_len_and_allocate_change_the_size(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "set_len");
        let dir = TempDir::new("set-len");
        let path = dir.join("f");
        rt.block_on(async {
            let file = rw().open(&path).await.unwrap();
            file.write_all_at(b"0123456789".to_vec(), 0).await.0.unwrap();
            file.set_len(4).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 4);
            file.set_len(8).await.unwrap();
            file.sync_data().await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"0123\0\0\0\0");
            file.allocate(0, 1 << 20).await.unwrap();
            let m = file.metadata().await.unwrap();
            assert_eq!(m.len(), 1 << 20);
            assert!(m.blocks() * 512 >= 1 << 20, "allocated blocks: {}", m.blocks());
            file.sync_all().await.unwrap();
            file.close().await.unwrap();
        });
    }

    /// A file opened with `O_DIRECT` via custom flags reads aligned blocks (where the
    /// filesystem supports direct I/O; tmpfs refuses it with `EINVAL`, which is accepted).
    fn custom_flags_reach_open(rt) {
        let _dog = support::watchdog(Duration::from_secs(20), "o_direct");
        let dir = TempDir::new("o-direct");
        let path = dir.join("f");
        std::fs::write(&path, vec![9u8; 8192]).unwrap();
        rt.block_on(async {
            let opened = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&path).await;
            match opened {
                Ok(_) => {}
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}"),
            }
            // O_NOFOLLOW on a symlink must fail: the flag really reaches openat.
            std::os::unix::fs::symlink(&path, dir.join("link")).unwrap();
            let err = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW)
                .open(dir.join("link")).await.unwrap_err();
            assert!(err.to_string().contains("link"), "{err}");
        });
    }
}
