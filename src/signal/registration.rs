//! Who listens for which signal: per-thread and process-wide reference counts.
//!
//! * **Per thread** (in the thread's loop context, as the mask itself is per thread, whichever
//!   loop asked): the first registration of a signal on a thread blocks it there
//!   (`pthread_sigmask`) and remembers whether it was blocked before; the last one puts the
//!   mask back as it was.
//! * **Per process** (a mutex): the threads listening for each signal, and the disposition to
//!   restore. The first listener installs the forwarding handler (see `driver::signal`); the
//!   last one discards what is still pending (nobody will read it) and restores the previous
//!   disposition before unblocking.

use std::io;
use std::sync::Mutex;

use crate::driver::context;
use crate::driver::signal as sys;

const SLOTS: usize = sys::SIGNAL_SLOTS;

#[derive(Default)]
struct ProcessEntry {
    /// Listening threads: (kernel thread id, registrations on that thread).
    threads: Vec<(i32, usize)>,
    saved: Option<sys::SavedAction>,
}

static PROCESS: Mutex<Vec<ProcessEntry>> = Mutex::new(Vec::new());

/// Checks that `sig` is a signal a program may listen for.
pub fn validate(sig: i32) -> io::Result<()> {
    let invalid = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig}: {why}"),
        ))
    };
    match sig {
        libc::SIGKILL | libc::SIGSTOP => invalid("SIGKILL and SIGSTOP cannot be caught or blocked"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => invalid(
            "a fault signal is raised by the faulting thread itself; it cannot be read from a signalfd",
        ),
        s if !(1..=sys::MAX_SIGNAL).contains(&s) => {
            invalid(&format!("not a signal number (1..={})", sys::MAX_SIGNAL))
        }
        s if (32..sys::sigrtmin()).contains(&s) => {
            invalid("reserved by the C library for its threads")
        }
        _ => Ok(()),
    }
}

/// Listening for a set of signals on this thread; dropping it ends the listening.
pub struct Registration {
    signals: Vec<i32>,
}

impl Registration {
    /// Registers the calling thread as a listener for each of `signals` (validated, without
    /// duplicates).
    pub fn new(signals: &[i32]) -> io::Result<Registration> {
        let mut done = Registration {
            signals: Vec::with_capacity(signals.len()),
        };
        for &sig in signals {
            validate(sig)?;
            if done.signals.contains(&sig) {
                continue;
            }
            acquire(sig)?;
            // On an error above, dropping `done` releases what was acquired so far.
            done.signals.push(sig);
        }
        Ok(done)
    }

    /// The signals registered.
    pub fn signals(&self) -> &[i32] {
        &self.signals
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        for &sig in &self.signals {
            release(sig);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<ProcessEntry>> {
    let mut table = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if table.is_empty() {
        table.resize_with(SLOTS, ProcessEntry::default);
    }
    table
}

fn acquire(sig: i32) -> io::Result<()> {
    let slot = sig as usize;
    let tid = sys::thread_id();
    let mut table = lock();
    let entry = &mut table[slot];
    context::with_thread(|t| -> io::Result<()> {
        let mut t = t.signals.borrow_mut();
        if t[slot].count == 0 {
            t[slot].was_blocked = sys::block(sig)?;
        }
        t[slot].count += 1;
        Ok(())
    })?;
    if entry.saved.is_none() {
        match sys::install_forwarder(sig) {
            Ok(saved) => entry.saved = Some(saved),
            Err(e) => {
                drop(table);
                release_thread(sig);
                return Err(e);
            }
        }
    }
    match entry.threads.iter_mut().find(|(t, _)| *t == tid) {
        Some((_, n)) => *n += 1,
        None => entry.threads.push((tid, 1)),
    }
    sys::forward_to(sig, tid);
    Ok(())
}

/// Drops this thread's count; unblocks when it reaches zero and the signal was not blocked
/// before. Returns whether the thread stopped listening.
fn release_thread(sig: i32) -> bool {
    let slot = sig as usize;
    context::with_thread(|t| {
        let mut t = t.signals.borrow_mut();
        t[slot].count = t[slot].count.saturating_sub(1);
        if t[slot].count > 0 {
            return false;
        }
        if !t[slot].was_blocked {
            let _ = sys::unblock(sig);
        }
        true
    })
}

fn release(sig: i32) {
    let slot = sig as usize;
    let tid = sys::thread_id();
    let mut table = lock();
    let entry = &mut table[slot];
    if let Some(i) = entry.threads.iter().position(|(t, _)| *t == tid) {
        entry.threads[i].1 -= 1;
        if entry.threads[i].1 == 0 {
            entry.threads.remove(i);
        }
    }
    sys::forward_to(sig, entry.threads.last().map_or(0, |(t, _)| *t));
    let last_in_process = entry.threads.is_empty();
    let (thread_count, was_blocked) = context::with_thread(|t| {
        let t = t.signals.borrow();
        (t[slot].count, t[slot].was_blocked)
    });
    if last_in_process && thread_count == 1 && !was_blocked {
        // Still blocked here: what is pending now was never read and would hit the restored
        // disposition the moment the signal is unblocked.
        sys::discard_pending(sig);
    }
    if last_in_process && let Some(saved) = entry.saved.take() {
        sys::restore_action(sig, saved);
    }
    drop(table);
    release_thread(sig);
}
