//! Old-kernel behaviour on a new kernel: a classic-BPF seccomp filter that fails one syscall
//! with a chosen errno when one of its arguments matches, the way a kernel without a feature
//! answers. Installed on every thread of the (child) process; it cannot be undone, so tests
//! use it only in a re-executed child.
//!
//! Not every test file uses every helper, hence `dead_code` is allowed for this module.
#![allow(dead_code)]

use std::mem::offset_of;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E); // EM_X86_64 | 64BIT | LE
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7); // EM_AARCH64 | 64BIT | LE
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

/// Which calls of the syscall fail: all of them, or a test on the low 32 bits of one argument.
#[derive(Clone, Copy)]
pub enum When {
    /// Every call.
    Always,
    /// Argument `arg` (0-based) equals the value.
    ArgEquals(usize, u32),
    /// Argument `arg` has any of the bits set.
    ArgHasBits(usize, u32),
}

/// Fails syscall `nr` with `errno` when `when` holds, on every thread of this process.
/// Returns false (after saying so) on an architecture the filter does not know.
pub fn fail_syscall(nr: libc::c_long, when: When, errno: i32) -> bool {
    let Some(arch) = AUDIT_ARCH else {
        println!("skipped: no seccomp filter for this architecture");
        return false;
    };
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // `Always` is "argument 0 has any bit of 0 set" turned around: the jump to the failure is
    // taken when the test is false (jt/jf swapped below), which it always is.
    let (arg, test, value, on_match) = match when {
        When::Always => (0, libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 0, false),
        When::ArgEquals(arg, v) => (arg, libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, v, true),
        When::ArgHasBits(arg, v) => (arg, libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, v, true),
    };
    // From the test: to the failure (0 ahead) when it decides the call fails, else 1 ahead.
    let (jt, jf) = if on_match { (0, 1) } else { (1, 0) };
    // Arguments are 64-bit; the low half comes first on a little-endian machine.
    let arg_low = (offset_of!(libc::seccomp_data, args) + arg * 8) as u32;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut filter = [
        op(load, offset_of!(libc::seccomp_data, arch) as u32, 0, 0),
        // Another ABI's syscall numbers mean other syscalls: leave them alone.
        op(jeq, arch, 1, 0),
        op(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
        op(load, offset_of!(libc::seccomp_data, nr) as u32, 0, 0),
        op(jeq, nr as u32, 1, 0),
        op(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
        op(load, arg_low, 0, 0),
        op(test, value, jt, jf),
        op(ret, libc::SECCOMP_RET_ERRNO | (errno as u32 & 0xffff), 0, 0),
        op(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only; it is required before an
    // unprivileged process may install a filter.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `program` points at `filter`, a valid BPF program that outlives the call; the
    // kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &program,
        )
    };
    assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
    true
}

/// `preadv2` with `RWF_NOWAIT` fails with `EOPNOTSUPP`, as it did for a signalfd before
/// Linux 6.7 (no `read_iter`). Checked on a pipe.
pub fn deny_nowait_reads() -> bool {
    // preadv2(fd, iov, iovcnt, pos_l, pos_h, flags)
    if !fail_syscall(
        libc::SYS_preadv2,
        When::ArgHasBits(5, libc::RWF_NOWAIT as u32),
        libc::EOPNOTSUPP,
    ) {
        return false;
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two c_ints, which pipe(2) fills in.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: `iov` describes one writable byte on our stack; fds[0] is the open read end.
    let rc = unsafe { libc::preadv2(fds[0], &iov, 1, -1, libc::RWF_NOWAIT) };
    let err = std::io::Error::last_os_error();
    for fd in fds {
        // SAFETY: both fds came from pipe(2) above and each is closed once.
        unsafe { libc::close(fd) };
    }
    assert!(
        rc == -1 && err.raw_os_error() == Some(libc::EOPNOTSUPP),
        "preadv2(RWF_NOWAIT) under the filter: {rc}, {err}"
    );
    true
}

/// `IORING_REGISTER_PBUF_STATUS` (opcode 26) fails with `EINVAL`, as on Linux before 6.8:
/// the kernel's head of a buffer ring cannot be asked.
pub fn deny_pbuf_status() -> bool {
    const IORING_REGISTER_PBUF_STATUS: u32 = 26;
    if !fail_syscall(
        libc::SYS_io_uring_register,
        When::ArgEquals(1, IORING_REGISTER_PBUF_STATUS),
        libc::EINVAL,
    ) {
        return false;
    }
    // Unfiltered, a bad fd gives EBADF.
    // SAFETY: io_uring_register with fd -1 touches no memory; it only fails.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            -1 as libc::c_long,
            IORING_REGISTER_PBUF_STATUS as libc::c_long,
            std::ptr::null::<u8>(),
            1 as libc::c_long,
        )
    };
    let err = std::io::Error::last_os_error();
    assert!(
        rc == -1 && err.raw_os_error() == Some(libc::EINVAL),
        "io_uring_register(PBUF_STATUS) under the filter: {rc}, {err}"
    );
    true
}
