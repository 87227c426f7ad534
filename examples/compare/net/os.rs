//! The few system calls the networking workloads need that std does not offer: CPU pinning,
//! per-thread CPU time, the open-file limit, dying with the parent, and a bare epoll set for the
//! load generator. Every `unsafe` block is a plain libc call on memory owned right here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The CPUs this process may run on, from `sched_getaffinity`.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the number of bits in `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    Ok(cpus)
}

/// Where the load generator and the server run: the first two allowed CPUs, or `None` on a
/// single-CPU machine (then neither is pinned).
pub fn cpu_pair(allowed: &[usize]) -> Option<(usize, usize)> {
    match allowed {
        [client, server, ..] => Some((*client, *server)),
        _ => None,
    }
}

/// Pins the calling thread to `cpu` (threads it starts afterwards inherit the mask).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE, the number of bits in `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("pin to CPU {cpu}: {e}")));
    }
    Ok(())
}

/// CPU time (user + system) the calling thread has used, from `getrusage(RUSAGE_THREAD)`.
pub fn thread_cpu_time() -> io::Result<Duration> {
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage the call fills in.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// Makes sure this process may hold `needed` open files, raising `RLIMIT_NOFILE` (the soft
/// limit up to the hard one; the hard one too where allowed, as root).
pub fn raise_nofile(needed: u64) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a live rlimit the call fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_NOFILE): {}",
            io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max.max(needed),
    };
    // SAFETY: `raised` is a live, initialised rlimit the call only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "need {needed} open files but RLIMIT_NOFILE is {} (hard {}) and raising it failed \
             ({}); run as root or after `ulimit -n {needed}`",
            limit.rlim_cur,
            limit.rlim_max,
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Asks the kernel to kill this process when the thread that started it ends, so a server
/// left behind by a hung or killed benchmark does not linger.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The resident set size of this process in KiB (`VmRSS` in `/proc/self/status`).
pub fn vm_rss_kib() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_vm_rss(&status).ok_or_else(|| io::Error::other("no VmRSS line in /proc/self/status"))
}

/// The `VmRSS:  1234 kB` value of a `/proc/<pid>/status` text.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// A level-or-edge epoll set; events carry the `u64` given at registration.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes only flags.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1 succeeded, so `fd` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Registers `fd` for `events` (`libc::EPOLLIN | ...`), tagged with `key`.
    pub fn add(&self, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: key };
        let epfd = self.fd.as_raw_fd();
        // SAFETY: `event` is a live epoll_event the kernel copies; both fds are open.
        let rc = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for events; fills `events` and returns how many arrived.
    /// `EINTR` returns 0 events.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        // Round up so a sub-millisecond remainder waits instead of spinning.
        let millis = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let capacity = events.len().min(i32::MAX as usize) as i32;
        let (epfd, out) = (self.fd.as_raw_fd(), events.as_mut_ptr());
        // SAFETY: `out` is a live, writable array of `capacity` epoll_event.
        let n = unsafe { libc::epoll_wait(epfd, out, capacity, millis) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_status_text() {
        let status = "Name:\tcompare\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(4321));
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(vm_rss_kib().unwrap() > 0);
    }

    #[test]
    fn cpu_pair_needs_two_cpus() {
        assert_eq!(cpu_pair(&[3, 5, 7]), Some((3, 5)));
        assert_eq!(cpu_pair(&[0]), None);
        assert_eq!(cpu_pair(&[]), None);
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let before = thread_cpu_time().unwrap();
        // The clock ticks in microseconds: a little work moves it; give up after a second.
        let start = std::time::Instant::now();
        while thread_cpu_time().unwrap() == before && start.elapsed() < Duration::from_secs(1) {
            std::hint::black_box(std::fs::metadata("/proc/self").ok());
        }
        assert!(thread_cpu_time().unwrap() > before);
    }
}
