//! Backend selection and the report of what was chosen and why.

use std::fmt;
use std::io;

use io_uring::{IoUring, opcode};

/// Which backend a runtime should use.
///
/// ```
/// use ringloop::{Backend, Runtime};
/// let rt = Runtime::builder().backend(Backend::Epoll).build().unwrap();
/// assert_eq!(rt.backend_report().backend(), ringloop::BackendKind::Epoll);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// io_uring when it can run here, else epoll. `RINGLOOP_BACKEND` may override it.
    ///
    /// On Android, `Auto` is epoll without probing: the platform's seccomp policy kills an app
    /// that calls `io_uring_setup` (SIGSYS) instead of failing the call, so a probe cannot
    /// fall back. [`Backend::IoUring`] still tries it there.
    #[default]
    Auto,
    /// io_uring or an error saying why it cannot run.
    IoUring,
    /// epoll, with completions emulated from readiness.
    Epoll,
}

/// The backend a runtime actually runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The io_uring proactor.
    IoUring,
    /// The epoll readiness emulation.
    Epoll,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Epoll => "epoll",
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::IoUring => "io_uring",
            Backend::Epoll => "epoll",
        })
    }
}

/// Which backend runs, why, and which features are on.
///
/// ```
/// let rt = ringloop::Runtime::builder().build().unwrap();
/// let report = rt.backend_report();
/// println!("{report}");
/// if report.backend() == ringloop::BackendKind::Epoll {
///     println!("fell back because: {:?}", report.fallback_reason());
/// }
/// ```
#[derive(Clone, Debug)]
pub struct BackendReport {
    pub(crate) backend: BackendKind,
    pub(crate) requested: Backend,
    pub(crate) source: &'static str,
    pub(crate) fallback_reason: Option<String>,
    pub(crate) errno: Option<i32>,
    pub(crate) features: Vec<(&'static str, bool)>,
    pub(crate) fault_seed: Option<u64>,
}

impl BackendReport {
    /// The backend that runs.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }
    /// What was asked for (after `RINGLOOP_BACKEND`).
    pub fn requested(&self) -> Backend {
        self.requested
    }
    /// Why io_uring is not running, when `Auto` fell back to epoll.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }
    /// The errno that made io_uring unusable, if that is why epoll runs.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }
    /// Named features and whether they are on.
    pub fn features(&self) -> &[(&'static str, bool)] {
        &self.features
    }
    /// The seed of the fault injector wrapping the backend, when it runs
    /// (`RINGLOOP_BACKEND=faults`, `RINGLOOP_FAULT_SEED` or [`Builder::fault_injection`]).
    ///
    /// [`Builder::fault_injection`]: crate::Builder::fault_injection
    pub fn fault_seed(&self) -> Option<u64> {
        self.fault_seed
    }
}

impl fmt::Display for BackendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "backend: {} (requested: {}, from {})",
            self.backend, self.requested, self.source
        )?;
        if let Some(reason) = &self.fallback_reason {
            writeln!(f, "fallback: {reason}")?;
        }
        if let Some(seed) = self.fault_seed {
            writeln!(f, "faults: injected, RINGLOOP_FAULT_SEED={seed}")?;
        }
        write!(f, "features:")?;
        for (name, on) in &self.features {
            write!(f, " {name}={}", if *on { "on" } else { "off" })?;
        }
        Ok(())
    }
}

/// The symbolic name of an errno, for messages.
fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECANCELED => "ECANCELED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => "errno",
    }
}

/// What to change, for each errno that stops io_uring.
fn hint(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => {
            "io_uring is denied: a seccomp filter (container runtimes' default profiles) or \
             sysctl kernel.io_uring_disabled; allow io_uring_setup/io_uring_enter/\
             io_uring_register or set kernel.io_uring_disabled=0"
        }
        libc::EACCES => {
            "io_uring is denied by a security module (an SELinux or AppArmor policy); allow \
             io_uring for this process in the policy"
        }
        libc::ENOSYS => {
            "the kernel has no io_uring (older than 5.1 or built without CONFIG_IO_URING)"
        }
        libc::ENOMEM => {
            "not enough locked memory for the ring even at the smallest size; raise \
             RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK"
        }
        _ => "set RINGLOOP_BACKEND=epoll to skip io_uring",
    }
}

/// Why io_uring cannot run here.
pub struct Unavailable {
    pub errno: Option<i32>,
    pub message: String,
}

impl Unavailable {
    fn from_setup(e: &io::Error) -> Self {
        let errno = e.raw_os_error();
        let code = errno.unwrap_or(0);
        let why = if code == libc::EPERM {
            eperm_cause(IoUringSysctl::read().as_ref())
        } else {
            hint(code).to_owned()
        };
        Unavailable {
            errno,
            message: format!(
                "io_uring_setup failed with {} ({}): {}",
                errno_name(code),
                e,
                why
            ),
        }
    }

    pub fn into_io_error(self) -> io::Error {
        let kind = match self.errno {
            Some(libc::EPERM) | Some(libc::EACCES) => io::ErrorKind::PermissionDenied,
            Some(libc::ENOMEM) => io::ErrorKind::OutOfMemory,
            _ => io::ErrorKind::Unsupported,
        };
        io::Error::new(
            kind,
            format!("io_uring backend unavailable: {}", self.message),
        )
    }
}

/// What `kernel.io_uring_disabled` (Linux 6.6+) decides for this process.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IoUringSysctl {
    /// `kernel.io_uring_disabled`: 0 everyone may create rings; 1 only members of
    /// `io_uring_group` and holders of `CAP_SYS_ADMIN`; 2 nobody (`io_uring_setup` fails with
    /// `EPERM`).
    disabled: i64,
    /// `kernel.io_uring_group` (-1, the default: no group, only `CAP_SYS_ADMIN`).
    group: i64,
    /// The process's real and effective gids, then its supplementary groups.
    gids: Vec<u32>,
    /// `CAP_SYS_ADMIN` is in the effective set (it lifts the restriction of level 1).
    cap_sys_admin: bool,
}

impl IoUringSysctl {
    /// Reads the sysctls and the process's groups; None when the kernel has no such sysctl
    /// (before 6.6) or it cannot be read.
    fn read() -> Option<IoUringSysctl> {
        let number =
            |path: &str| -> Option<i64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
        let disabled = number("/proc/sys/kernel/io_uring_disabled")?;
        let group = number("/proc/sys/kernel/io_uring_group").unwrap_or(-1);
        // SAFETY: getgid/getegid cannot fail and touch no memory.
        let mut gids = unsafe { vec![libc::getgid(), libc::getegid()] };
        // SAFETY: a count query: size 0 with a null list writes nothing.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        if n > 0 {
            let mut groups = vec![0 as libc::gid_t; n as usize];
            // SAFETY: `groups` has room for `n` entries, the size passed.
            let got = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
            groups.truncate(got.max(0) as usize);
            gids.extend(groups);
        }
        Some(IoUringSysctl {
            disabled,
            group,
            gids,
            cap_sys_admin: has_cap_sys_admin(),
        })
    }

    fn in_group(&self) -> bool {
        self.group >= 0 && self.gids.iter().any(|&g| i64::from(g) == self.group)
    }
}

/// Whether `CAP_SYS_ADMIN` (bit 21) is in the effective set (`CapEff` of /proc/self/status).
fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Why `io_uring_setup` failed with `EPERM`, given what the sysctl says (None: no sysctl):
/// the sysctl when it denies this process, else a seccomp filter.
fn eperm_cause(sysctl: Option<&IoUringSysctl>) -> String {
    const SECCOMP: &str = "so a seccomp filter denies it (container runtimes' default \
        profiles do); allow io_uring_setup/io_uring_enter/io_uring_register in it";
    let Some(s) = sysctl else {
        return format!(
            "this kernel has no kernel.io_uring_disabled sysctl (before 6.6), {SECCOMP}"
        );
    };
    let gids = s
        .gids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    match s.disabled {
        0 => format!("kernel.io_uring_disabled=0 allows io_uring, {SECCOMP}"),
        2 => "kernel.io_uring_disabled=2 disables io_uring for every process (RHEL 10's \
              default); set it to 0, or to 1 with kernel.io_uring_group naming a group of \
              this user"
            .to_owned(),
        1 if s.cap_sys_admin => format!(
            "kernel.io_uring_disabled=1 allows this process (it has CAP_SYS_ADMIN), {SECCOMP}"
        ),
        1 if s.in_group() => format!(
            "kernel.io_uring_disabled=1 allows this process (it is in kernel.io_uring_group={}), \
             {SECCOMP}",
            s.group
        ),
        1 if s.group < 0 => format!(
            "kernel.io_uring_disabled=1 limits io_uring to kernel.io_uring_group, which is \
             unset (-1), so only CAP_SYS_ADMIN may use it and this process (gids {gids}) lacks \
             it; set kernel.io_uring_group to one of its groups, or the sysctl to 0"
        ),
        1 => format!(
            "kernel.io_uring_disabled=1 limits io_uring to members of \
             kernel.io_uring_group={}, and this process (gids {gids}) is not one and lacks \
             CAP_SYS_ADMIN; add the user to group {}, or set the sysctl to 0",
            s.group, s.group
        ),
        other => format!(
            "kernel.io_uring_disabled={other} (a value this runtime does not know) may deny it, \
             or a seccomp filter; set the sysctl to 0 or allow io_uring_setup in the filter"
        ),
    }
}

/// Named features and whether they are on.
pub type Features = Vec<(&'static str, bool)>;

/// Why `Backend::Auto` does not even probe io_uring on this platform (None: it probes).
///
/// Android's seccomp policy answers `io_uring_setup` with SIGSYS, which kills the process,
/// rather than with an errno (libuv hit this, issue #4010): probing there is fatal, so `Auto`
/// takes epoll straight away. An explicit `Backend::IoUring` still probes: the caller asked.
#[cfg(target_os = "android")]
pub const AUTO_SKIPS_PROBE: Option<&str> = Some(
    "on Android the seccomp policy kills a process that calls io_uring_setup (SIGSYS), so \
     Auto does not probe io_uring; ask for Backend::IoUring to try it anyway",
);
/// Why `Backend::Auto` does not even probe io_uring on this platform (None: it probes).
#[cfg(not(target_os = "android"))]
pub const AUTO_SKIPS_PROBE: Option<&str> = None;

/// The opcodes the runtime needs.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Nop::CODE, "NOP"),
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Readv::CODE, "READV"),
    (opcode::Writev::CODE, "WRITEV"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::LinkTimeout::CODE, "LINK_TIMEOUT"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::RecvMsg::CODE, "RECVMSG"),
];

/// Filesystem opcodes the runtime uses when the kernel has them; each is reported as a
/// feature (`op_openat=on`). Where one is missing, the driver runs that op on the blocking
/// pool instead (FTRUNCATE needs Linux 6.9; MKDIRAT, SYMLINKAT, LINKAT 5.15).
const OPTIONAL: &[(u8, &str)] = &[
    (opcode::OpenAt::CODE, "op_openat"),
    (opcode::Statx::CODE, "op_statx"),
    (opcode::Fsync::CODE, "op_fsync"),
    (opcode::Fallocate::CODE, "op_fallocate"),
    (opcode::Ftruncate::CODE, "op_ftruncate"),
    (opcode::UnlinkAt::CODE, "op_unlinkat"),
    (opcode::RenameAt::CODE, "op_renameat"),
    (opcode::MkDirAt::CODE, "op_mkdirat"),
    (opcode::LinkAt::CODE, "op_linkat"),
    (opcode::SymlinkAt::CODE, "op_symlinkat"),
    (opcode::Splice::CODE, "op_splice"),
];

/// Optional opcodes the kernel's io_uring lacks, one bit per opcode (the kernel is the same
/// for every ring in the process, so the last probe speaks for all).
static MISSING_OPS: [std::sync::atomic::AtomicU64; 4] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 4];

/// Whether the io_uring backend can run `code` (false only for an optional opcode the probe
/// found missing; the epoll backend does not ask).
pub fn ring_has_op(code: u8) -> bool {
    let bit = 1u64 << (code % 64);
    MISSING_OPS[usize::from(code / 64)].load(std::sync::atomic::Ordering::Relaxed) & bit == 0
}

/// Records which optional opcodes `probe` lacks and reports each as a feature.
///
/// `RINGLOOP_MISSING_OPS` (feature names separated by commas, e.g. `op_ftruncate`, or `all`)
/// makes the runtime treat those opcodes as missing, to exercise the pool fallback on a kernel
/// that has them (as `RINGLOOP_BACKEND=epoll` forces the epoll fallback).
fn note_optional_ops(probe: &io_uring::Probe, forced: &ForcedMissing, features: &mut Features) {
    for &(code, name) in OPTIONAL {
        let on = probe.is_supported(code) && !forced.names(name);
        let bit = 1u64 << (code % 64);
        let word = &MISSING_OPS[usize::from(code / 64)];
        if on {
            word.fetch_and(!bit, std::sync::atomic::Ordering::Relaxed);
        } else {
            word.fetch_or(bit, std::sync::atomic::Ordering::Relaxed);
        }
        features.push((name, on));
    }
}

/// `RINGLOOP_MISSING_OPS`, read once per probe.
struct ForcedMissing(String);

impl ForcedMissing {
    fn from_env() -> ForcedMissing {
        ForcedMissing(std::env::var("RINGLOOP_MISSING_OPS").unwrap_or_default())
    }

    /// Whether the variable names `feature` (or says `all`).
    fn names(&self, feature: &str) -> bool {
        self.0
            .split(',')
            .any(|f| f.trim() == feature || f.trim() == "all")
    }
}

/// Multishot receive (`IORING_RECV_MULTISHOT`) came with Linux 6.0, after provided-buffer
/// rings (5.19), and no probe reports a flag: the kernel release decides. Without it, buffer
/// rings are served from user space and receive streams take one buffer per receive.
/// `RINGLOOP_MISSING_OPS=recv_multishot` turns it off on a kernel that has it.
fn has_recv_multishot(forced: &ForcedMissing) -> bool {
    !forced.names("recv_multishot") && kernel_release().is_some_and(|v| v >= (6, 0))
}

/// The running kernel's (major, minor), from `uname`.
fn kernel_release() -> Option<(u32, u32)> {
    // SAFETY: utsname is plain bytes; zeroed is a valid value for uname to fill.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a live, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_release(std::str::from_utf8(&release).ok()?)
}

/// "6.18.44-fc-v669" -> (6, 18).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Sets up a ring with the best flags the kernel accepts and checks it can run the runtime.
pub fn probe_uring(entries: u32, cq_entries: u32) -> Result<(IoUring, Features), Unavailable> {
    // (single_issuer + defer_taskrun, coop_taskrun, submit_all), best first; EINVAL = the
    // kernel does not know a flag, so try the next set.
    let flag_sets = [
        (true, true, true),
        (false, true, true),
        (false, false, false),
    ];
    let mut entries = entries.max(1);
    let mut last_err = None;
    'sizes: loop {
        for &(single, coop, submit_all) in &flag_sets {
            let mut b = IoUring::builder();
            b.setup_cqsize(cq_entries.max(entries)).setup_clamp();
            if single {
                b.setup_single_issuer().setup_defer_taskrun();
            }
            if coop {
                b.setup_coop_taskrun();
            }
            if submit_all {
                b.setup_submit_all();
            }
            match b.build(entries) {
                Ok(ring) => {
                    let features = vec![
                        ("single_issuer", single),
                        ("defer_taskrun", single),
                        ("coop_taskrun", coop),
                        ("submit_all", submit_all),
                        ("ext_arg", ring.params().is_feature_ext_arg()),
                        ("nodrop", ring.params().is_feature_nodrop()),
                        ("fast_poll", ring.params().is_feature_fast_poll()),
                        ("min_timeout", ring.params().is_feature_min_timeout()),
                    ];
                    let probe = check_ring(&ring)?;
                    let mut features = features;
                    let forced = ForcedMissing::from_env();
                    note_optional_ops(&probe, &forced, &mut features);
                    features.push(("buf_ring", probe_buf_ring(&ring)));
                    features.push(("recv_multishot", has_recv_multishot(&forced)));
                    return Ok((ring, features));
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
                // Locked memory: a smaller ring may still fit.
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && entries > 4 => {
                    entries /= 4;
                    last_err = Some(e);
                    continue 'sizes;
                }
                Err(e) => return Err(Unavailable::from_setup(&e)),
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL));
        return Err(Unavailable::from_setup(&e));
    }
}

fn check_ring(ring: &IoUring) -> Result<io_uring::Probe, Unavailable> {
    if !ring.params().is_feature_ext_arg() {
        return Err(Unavailable {
            errno: None,
            message: "the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11+), needed for timed waits"
                .into(),
        });
    }
    let mut probe = io_uring::Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        let code = e.raw_os_error().unwrap_or(0);
        return Err(Unavailable {
            errno: e.raw_os_error(),
            message: format!(
                "IORING_REGISTER_PROBE failed with {} ({e}): {}",
                errno_name(code),
                hint(code)
            ),
        });
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(Unavailable {
            errno: None,
            message: format!(
                "the kernel's io_uring lacks opcodes {}; a newer kernel (5.19+) has them",
                missing.join(", ")
            ),
        });
    }
    Ok(probe)
}

/// Whether the kernel takes a provided-buffer ring (`IORING_REGISTER_PBUF_RING`, 5.19+):
/// registers a one-entry ring and unregisters it.
fn probe_buf_ring(ring: &IoUring) -> bool {
    let Ok(region) = super::buf_ring::Region::map(0, 1) else {
        return false;
    };
    // SAFETY: the region is page-aligned memory for one descriptor; it is unregistered below
    // before it is unmapped (or leaked if unregistering fails).
    let registered = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(region.addr(), 1, 0, 0)
    };
    if registered.is_err() {
        return false;
    }
    if ring.submitter().unregister_buf_ring(0).is_err() {
        std::mem::forget(region);
    }
    true
}

/// Reads `RINGLOOP_BACKEND`: the backend asked for, and whether the fault injector wraps it
/// (`faults`, `faults+io_uring`, `faults+epoll`). None when unset.
pub fn backend_from_env() -> io::Result<Option<(Backend, bool)>> {
    match std::env::var("RINGLOOP_BACKEND") {
        Err(_) => Ok(None),
        Ok(v) => {
            let lower = v.trim().to_ascii_lowercase();
            let (faults, name) = match lower.strip_prefix("faults") {
                Some(rest) => (true, rest.strip_prefix('+').unwrap_or(rest)),
                None => (false, lower.as_str()),
            };
            let backend = match name {
                "" if faults => Backend::IoUring,
                "" | "auto" => Backend::Auto,
                "io_uring" | "iouring" | "uring" => Backend::IoUring,
                "epoll" => Backend::Epoll,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "RINGLOOP_BACKEND={v:?} is not a backend; use io_uring, epoll, auto, \
                             faults (over io_uring) or faults+epoll"
                        ),
                    ));
                }
            };
            Ok(Some((backend, faults)))
        }
    }
}

/// Reads `RINGLOOP_FAULT_SEED`: the fault injector's seed. None when unset.
pub fn fault_seed_from_env() -> io::Result<Option<u64>> {
    match std::env::var("RINGLOOP_FAULT_SEED") {
        Err(_) => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("RINGLOOP_FAULT_SEED={v:?} is not a seed (an unsigned 64-bit number): {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(disabled: i64, group: i64, gids: &[u32], cap_sys_admin: bool) -> IoUringSysctl {
        IoUringSysctl {
            disabled,
            group,
            gids: gids.to_vec(),
            cap_sys_admin,
        }
    }

    /// The EPERM reason names the sysctl when it denies the process, and a seccomp filter
    /// when the sysctl allows it or does not exist.
    #[test]
    fn eperm_cause_names_the_sysctl_or_seccomp() {
        let none = eperm_cause(None);
        assert!(
            none.contains("no kernel.io_uring_disabled") && none.contains("seccomp"),
            "{none}"
        );

        let open = eperm_cause(Some(&sysctl(0, -1, &[1000], false)));
        assert!(
            open.contains("io_uring_disabled=0") && open.contains("seccomp"),
            "{open}"
        );

        let all = eperm_cause(Some(&sysctl(2, 50, &[50], true)));
        assert!(
            all.contains("io_uring_disabled=2") && all.contains("every process"),
            "{all}"
        );
        assert!(!all.contains("seccomp"), "{all}");

        let no_group = eperm_cause(Some(&sysctl(1, -1, &[1000, 1000, 27], false)));
        assert!(no_group.contains("unset (-1)"), "{no_group}");
        assert!(no_group.contains("gids 1000,1000,27"), "{no_group}");
        assert!(!no_group.contains("seccomp"), "{no_group}");

        let outsider = eperm_cause(Some(&sysctl(1, 990, &[1000, 1000, 27], false)));
        assert!(outsider.contains("io_uring_group=990"), "{outsider}");
        assert!(outsider.contains("is not one"), "{outsider}");
        assert!(outsider.contains("gids 1000,1000,27"), "{outsider}");

        let member = eperm_cause(Some(&sysctl(1, 27, &[1000, 1000, 27], false)));
        assert!(
            member.contains("is in kernel.io_uring_group=27"),
            "{member}"
        );
        assert!(member.contains("seccomp"), "{member}");

        let admin = eperm_cause(Some(&sysctl(1, 990, &[0, 0], true)));
        assert!(
            admin.contains("CAP_SYS_ADMIN") && admin.contains("seccomp"),
            "{admin}"
        );
    }

    /// Reading the sysctl here gives this process's real groups (the gid first).
    #[test]
    fn sysctl_reads_this_process_groups() {
        if let Some(s) = IoUringSysctl::read() {
            // SAFETY: getgid cannot fail and touches no memory.
            let gid = unsafe { libc::getgid() };
            assert_eq!(s.gids.first(), Some(&gid), "{s:?}");
        }
    }

    #[test]
    fn kernel_releases_parse_to_major_minor() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("5.19.0"), Some((5, 19)));
        assert_eq!(parse_release("6.0-rc1"), Some((6, 0)));
        assert_eq!(parse_release("4.4"), Some((4, 4)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(parse_release("6"), None);
        assert!(parse_release("5.19.0").unwrap() < (6, 0));
        assert!(
            kernel_release().is_some(),
            "uname gives this kernel's release"
        );
    }
}
