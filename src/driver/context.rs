//! The loop context: the crate's one thread-local, and the per-loop state it points to.
//!
//! # What lives where
//!
//! * **Per loop** — owned by its `Runtime`, whichever thread has it entered:
//!   * [`LoopCore`], what the bottom layers keep: the driver (and its id, readable while the
//!     driver is borrowed), and the loop's shared receive ring (`buf::loop_ring`);
//!   * the runtime's `LoopContext` (ready queue, timers, tasks), reached through the
//!     thread-local as an opaque `Rc<dyn Any>` that only the runtime names the type of
//!     ([`with_upper`]): see *Layering*.
//!
//!   Work asked of the driver while it is borrowed (orphans, descriptor pins, a buffer ring
//!   to unregister) waits in the driver's own queue, [`DriverCell`](super::DriverCell), not
//!   here: it belongs to that driver whichever loop is entered when it is asked.
//! * **Per thread** — [`Thread`], the thread-local itself: which loop is entered (set by
//!   [`Enter`]), and the state of the poll running now: the id of the task being polled and
//!   whether its run is a cancelling one (the runtime's), how many ops it started (the op
//!   layer's cooperative budget), and the thread's signal-mask counts (`crate::signal`).
//!
//! The per-poll state belongs to the thread, not to a loop: a thread runs one poll at a time,
//! whichever loop it belongs to, and the blocking pool's threads run a task's job — which
//! reads the cancelling flag — without any loop. A loop entered inside a poll of another (a
//! runtime dropped from inside a task: its tasks are cancelled there) saves the outer poll's
//! state and puts it back when it leaves ([`Enter`]), so the outer task does not come back
//! under the inner loop's last task id.
//!
//! The signal counts are per thread because the signal mask is: `pthread_sigmask` blocks a
//! signal for the thread, whichever loop asked, so two loops on one thread listening for the
//! same signal share one block, undone when the thread's last listener goes.
//!
//! # Layering
//!
//! The driver is the bottom layer: every other layer may reach it, and it may reach none of
//! them. The thread-local lives here so that `driver::current()`, asked on every op submit,
//! reads it directly; a context module above the driver would have the driver reach up to it
//! (or every op take its driver from somewhere else). The runtime's per-loop state is a type
//! of a higher layer, so it is held as `dyn Any` and only the runtime names its type; the
//! other fields are plain cells whose meaning the layer that owns them defines (the op
//! layer's budget, the runtime's task id), or types of the driver itself (the signal counts
//! live beside the `pthread_sigmask` calls in `driver::signal`). The loop's receive ring is
//! likewise `dyn Any`: `buf` sits above the driver.
//!
//! # Several loops
//!
//! Each runtime owns its context, so loops on different threads share nothing here, and
//! loops on one thread take turns: `block_on` enters its loop and leaves it on return.
//! `block_on` inside a running loop (of any runtime) panics before entering, as a loop cannot
//! block itself; a runtime dropped inside another loop's task enters its own loop for the
//! drop and puts the outer loop back after.
//!
//! # Cost
//!
//! The thread-local holds no `Rc`, only a pointer to the innermost [`Enter`] guard's record
//! of the entered loop (the guard owns the references), so it needs no destructor: an access
//! is a plain thread-local read, with no check that the thread's locals are being torn down,
//! and it never fails. [`current`] (every op submit) is that read, a hop to the [`LoopCore`]
//! and the `Rc` clone the op keeps, without the `RefCell` borrow the driver's own
//! thread-local needed; the per-poll fields (read on every task poll and op poll) are `Cell`s.
//! The runtime's half is checked against the type recorded when the loop was entered (a
//! comparison with a constant), not with `Any`'s indirect call.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;

use super::DriverRef;
use super::signal::{SIGNAL_SLOTS, ThreadListeners};

/// What the bottom layers keep for one loop. Owned (`Rc`) by the runtime's loop context, and
/// by [`Enter`] while the loop is entered.
pub struct LoopCore {
    driver: DriverRef,
    driver_id: u64,
    /// The loop's shared receive ring, a `buf::BufRing` made on first use by
    /// `buf::loop_ring` (`Any`: `buf` sits above the driver).
    loop_ring: RefCell<Option<Box<dyn Any>>>,
}

impl LoopCore {
    pub fn new(driver: DriverRef) -> LoopCore {
        let driver_id = driver.borrow().id();
        LoopCore {
            driver,
            driver_id,
            loop_ring: RefCell::new(None),
        }
    }

    /// The loop's driver.
    #[inline]
    pub fn driver(&self) -> &DriverRef {
        &self.driver
    }

    /// The loop's shared receive ring (see the field); `buf` reads and fills it.
    pub fn loop_ring(&self) -> &RefCell<Option<Box<dyn Any>>> {
        &self.loop_ring
    }
}

/// The loop entered on a thread: its bottom half, and the runtime's half, opaque here. Owned
/// by the [`Enter`] guard that entered it; the thread-local points to it.
struct Entered {
    core: Rc<LoopCore>,
    /// Keeps the runtime's half alive while entered; it is reached through
    /// [`Thread`]'s copy of where it is (`Upper`), never through here.
    _upper: Rc<dyn Any>,
}

/// Where the runtime's half of the entered loop is, and its type: copied into the
/// thread-local by [`Enter`], so that [`with_upper`] (every timer registration, every task
/// spawn) reads it there, in one load, instead of through the `Entered` and the `Rc<dyn Any>`'s
/// vtable (for the value's offset) — a chain of dependent loads that showed in the timer
/// benchmarks — and checks the type against a constant without `Any::type_id`'s indirect call.
#[derive(Clone, Copy)]
struct Upper {
    ptr: NonNull<()>,
    ty: TypeId,
}

/// The thread-local: the loop entered on this thread, and the state of the poll running now
/// (see the module docs for who owns which field and why it is per thread).
///
/// Nothing in it needs dropping, so it has no destructor: an access never checks whether the
/// thread's locals are being torn down, and never fails.
pub struct Thread {
    /// The [`Entered`] of the innermost live [`Enter`] guard; `None` when no loop is entered.
    entered: Cell<Option<NonNull<Entered>>>,
    /// The runtime's half of that loop (the value its `Entered::upper` owns).
    upper: Cell<Option<Upper>>,
    /// The id of the task the loop is polling (the runtime's; 0: none).
    pub task_id: Cell<u64>,
    /// The poll running now is a cancelling one: the task must drop its future (the
    /// runtime's; set on blocking-pool threads too, for a job cancelled before it started).
    pub cancelling: Cell<bool>,
    /// Ops the task being polled has started in this poll (the op layer's budget).
    pub ops_this_poll: Cell<u32>,
    /// This thread's listeners per signal number (`crate::signal`'s registry).
    pub signals: RefCell<[ThreadListeners; SIGNAL_SLOTS]>,
}

thread_local! {
    static THREAD: Thread = const {
        Thread {
            entered: Cell::new(None),
            upper: Cell::new(None),
            task_id: Cell::new(0),
            cancelling: Cell::new(false),
            ops_this_poll: Cell::new(0),
            signals: RefCell::new([ThreadListeners::NONE; SIGNAL_SLOTS]),
        }
    };
}

/// Runs `f` with this thread's [`Thread`].
#[inline]
pub fn with_thread<R>(f: impl FnOnce(&Thread) -> R) -> R {
    THREAD.with(f)
}

/// Runs `f` with the loop entered on this thread, if any.
#[inline]
fn with_entered<R>(f: impl FnOnce(&Entered) -> R) -> Option<R> {
    let entered = THREAD.with(|t| t.entered.get())?;
    // `entered` is the `Entered` of the innermost live `Enter` guard, which owns it
    // (`Box::into_raw`) and frees it only in its drop, after putting back the pointer it
    // replaced. Guards live in stack frames (`block_on`, the runtime's drop), so this call,
    // made while the guard's frame is live, ends before that drop; a guard dropped out of
    // order (while a later one still points to its `Entered`) leaks it instead of freeing it.
    // SAFETY: the pointee is alive for this call (its guard outlives it) and only shared.
    Some(f(unsafe { entered.as_ref() }))
}

/// The driver of the loop entered on this thread.
#[inline]
pub fn current() -> Option<DriverRef> {
    with_entered(|e| e.core.driver.clone())
}

/// The id of the driver of the loop entered on this thread (0 when there is none); readable
/// while that driver is borrowed.
#[inline]
pub fn current_id() -> u64 {
    with_entered(|e| e.core.driver_id).unwrap_or(0)
}

/// Runs `f` with the bottom half of the loop entered on this thread, if any.
#[inline]
pub fn with_loop<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
    with_entered(|e| f(&e.core))
}

/// Runs `f` with the runtime's half of the loop entered on this thread, if there is one and
/// it is a `T`.
#[inline]
pub fn with_upper<T: Any, R>(f: impl FnOnce(&T) -> R) -> Option<R> {
    let upper = upper_ptr::<T>()?;
    // The borrow lasts this call, which ends before the `Enter` guard keeping `T` is dropped.
    // SAFETY: `upper_ptr` returned a pointer to a live `T` of the checked type.
    Some(f(unsafe { upper.as_ref() }))
}

/// The runtime's half of the entered loop, if it is a `T`: a pointer to the value the
/// innermost live [`Enter`] guard's `Entered::upper` owns. That guard lives in a stack frame
/// below the caller's, so the value outlives the caller's use of the pointer.
#[inline]
fn upper_ptr<T: Any>() -> Option<NonNull<T>> {
    let upper = THREAD.with(|t| t.upper.get())?;
    // `ty` is the type of the value `ptr` points to (both taken from it in `Enter::new`).
    (upper.ty == TypeId::of::<T>()).then(|| upper.ptr.cast::<T>())
}

/// The runtime's half of the loop entered on this thread, if there is one and it is a `T`.
///
/// Checked against the recorded type like [`with_upper`], not with `Rc::downcast`, whose
/// indirect `Any::type_id` call made a timer's registration and cancellation (two of these
/// each) measurably slower.
#[inline]
pub fn upper<T: Any>() -> Option<Rc<T>> {
    let ptr = upper_ptr::<T>()?.as_ptr().cast_const();
    // `ptr` points to the live `T` that the `Rc` in the innermost `Entered::upper` owns, and
    // it is `Rc::as_ptr` of that `Rc`, what its `into_raw` would give (made as an `Rc<T>`,
    // coerced to `Rc<dyn Any>`: the allocation's layout is `T`'s). The strong count added
    // before `from_raw` makes the returned `Rc` a new owner, as `clone` would.
    // SAFETY: `ptr` came from a live `Rc<T>`'s allocation, whose count is raised first.
    unsafe {
        Rc::increment_strong_count(ptr);
        Some(Rc::from_raw(ptr))
    }
}

/// Enters a loop on this thread for the guard's life: the loop becomes the one
/// [`current`] and friends see, and the poll state starts afresh (no task, not cancelling).
/// Dropping the guard — on return or while unwinding — puts back the loop and the poll state
/// that were there before, so guards nest. Keep it in a stack frame (a local of the function
/// that runs the loop), so that guards end in the reverse order they began: the thread-local
/// points to what the innermost one owns.
pub struct Enter {
    /// Owned (from `Box::into_raw`): what the thread-local points to while this guard is the
    /// innermost.
    entered: NonNull<Entered>,
    prev: Option<NonNull<Entered>>,
    prev_upper: Option<Upper>,
    task_id: u64,
    cancelling: bool,
    ops_this_poll: u32,
}

impl Enter {
    /// Enters the loop whose bottom half is `core` and whose runtime half is `upper`.
    pub fn new(core: &Rc<LoopCore>, upper: Rc<dyn Any>) -> Enter {
        let this_upper = Upper {
            ptr: NonNull::from(&*upper).cast(),
            // The value's type, not the `Rc`'s.
            ty: (*upper).type_id(),
        };
        let entered = NonNull::from(Box::leak(Box::new(Entered {
            core: core.clone(),
            _upper: upper,
        })));
        THREAD.with(|t| Enter {
            entered,
            prev: t.entered.replace(Some(entered)),
            prev_upper: t.upper.replace(Some(this_upper)),
            task_id: t.task_id.replace(0),
            cancelling: t.cancelling.replace(false),
            ops_this_poll: t.ops_this_poll.get(),
        })
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let innermost = THREAD.with(|t| {
            if t.entered.get() != Some(self.entered) {
                return false;
            }
            t.entered.set(self.prev);
            t.upper.set(self.prev_upper);
            t.task_id.set(self.task_id);
            t.cancelling.set(self.cancelling);
            t.ops_this_poll.set(self.ops_this_poll);
            true
        });
        if innermost {
            // The thread-local no longer points to it, and no guard entered later is live
            // (this one was the innermost), so nothing else can reach it.
            // SAFETY: `entered` came from `Box::leak` in `new` and is freed only here, once.
            drop(unsafe { Box::from_raw(self.entered.as_ptr()) });
        }
        // Else a guard entered later is still live and may point back here (its `prev`):
        // the `Entered` is leaked so that pointer stays valid. Guards in stack frames never
        // get here.
    }
}
