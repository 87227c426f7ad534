//! The `cat` example works: its code is compiled into this test (its `main` is not run) and,
//! on both backends, it writes several files, a large one included, byte for byte in order,
//! reports a missing file naming it and still writes the others.

mod fs_support;
mod support;

#[allow(dead_code)]
#[path = "../examples/cat.rs"]
mod cat;

use std::os::fd::AsRawFd as _;
use std::time::Duration;

use fs_support::TempDir;

both_backends! {
    /// Files come out concatenated in argument order, byte for byte; a missing one is
    /// reported (naming it) without stopping the rest.
    fn cat_concatenates_files_and_reports_missing_ones(rt) {
        let _dog = support::watchdog(Duration::from_secs(30), "cat");
        let dir = TempDir::new("cat");
        let big: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(dir.join("a"), b"first\n").unwrap();
        std::fs::write(dir.join("big"), &big).unwrap();
        std::fs::write(dir.join("c"), b"last\n").unwrap();
        let out = std::fs::File::create(dir.join("out")).unwrap();
        let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
        let args = [p("a"), p("missing"), p("big"), p("c")];
        let errors = rt.block_on(cat::cat(&args, out.as_raw_fd()));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].kind(), std::io::ErrorKind::NotFound);
        assert!(errors[0].to_string().contains("missing"), "{}", errors[0]);
        let mut want = b"first\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"last\n");
        support::assert_bytes_eq("cat output", &std::fs::read(dir.join("out")).unwrap(), &want);
    }
}
