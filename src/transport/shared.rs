//! Who owns a transport's protocol: its task, through an [`OwnedProtocol`]; the caller gets
//! a [`SharedProtocol`], a view onto it.
//!
//! The task makes every callback and needs `&mut` access for each, for as long as the
//! connection lives; [`OwnedProtocol::call`] is the only way to make one. The caller of
//! `create_connection` (or `create_datagram_endpoint`, `subprocess_exec`) may read the
//! protocol at any time through its view, even holding a borrow across an await, and after the
//! task has ended (the view keeps the protocol alive, so what it collected stays readable). A
//! callback that falls due while such a borrow is held must wait for it, and the wait must
//! cost nothing: the task registers its waker and sleeps, and the guard of the caller's borrow
//! ([`ProtocolRef`], [`ProtocolRefMut`]) wakes it when it is dropped. A `RefCell` alone could
//! not say when a borrow ends, so its user would have to poll.

use std::cell::{self, BorrowError, BorrowMutError, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A view onto the protocol a transport's task owns: what [`create_connection`] and the other
/// loop functions return beside the transport. Borrow it like a `RefCell`; clones share it.
/// It keeps the protocol alive after the transport has ended, so its fields stay readable.
///
/// A borrow may be held across an await: a callback that falls due meanwhile waits (asleep,
/// without polling) until the borrow ends, then runs; it is postponed, never dropped. Inside
/// a callback of the same protocol a borrow panics, as a `RefCell` borrow would.
///
/// [`create_connection`]: super::create_connection
///
/// ```
/// use ringloop::transport::{self, Protocol};
///
/// #[derive(Default)]
/// struct Count(usize);
/// impl Protocol for Count {
///     fn data_received(&mut self, data: &[u8]) { self.0 += data.len(); }
/// }
///
/// # ringloop::run(async {
/// let listener = ringloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = listener.local_addr().unwrap();
/// let (t, count) = transport::create_connection(Count::default, addr).await.unwrap();
/// let (peer, _) = listener.accept().await.unwrap();
/// peer.write_all(b"four".as_slice()).await.0.unwrap();
/// while count.borrow().0 < 4 {
///     ringloop::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
/// count.borrow_mut().0 = 0;
/// assert_eq!(count.borrow().0, 0);
/// t.close();
/// # });
/// ```
pub struct SharedProtocol<P> {
    inner: Rc<Inner<P>>,
}

/// The task's hold on its protocol: the only way to make a callback. Every transport's task
/// owns one; the caller's [`SharedProtocol`] is a [`view`](Self::view) onto the same protocol.
pub(crate) struct OwnedProtocol<P> {
    inner: Rc<Inner<P>>,
}

/// The protocol and the tasks waiting to call it, one allocation for owner and views.
struct Inner<P> {
    /// Tasks whose callback found the protocol borrowed; woken when a guard drops.
    waiting: RefCell<Vec<Waker>>,
    protocol: RefCell<P>,
}

/// A transport run by several tasks (a subprocess's pipe readers, stdin writer and supervisor)
/// gives each task its own hold.
impl<P> Clone for OwnedProtocol<P> {
    fn clone(&self) -> Self {
        OwnedProtocol {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<P> OwnedProtocol<P> {
    /// Takes `protocol` (whose `connection_made` has been called) for a transport's task.
    pub(crate) fn new(protocol: P) -> OwnedProtocol<P> {
        OwnedProtocol {
            inner: Rc::new(Inner {
                waiting: RefCell::new(Vec::new()),
                protocol: RefCell::new(protocol),
            }),
        }
    }

    /// A view for the caller, to borrow the protocol without making callbacks.
    pub(crate) fn view(&self) -> SharedProtocol<P> {
        SharedProtocol {
            inner: Rc::clone(&self.inner),
        }
    }

    /// Calls `f` on the protocol (a callback), first waiting, asleep, while a guard of the
    /// caller's holds a borrow. The task's own borrow ends with `f`, so it needs no guard.
    pub(crate) async fn call<R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        let mut f = Some(f);
        poll_fn(|cx| match self.inner.protocol.try_borrow_mut() {
            Ok(mut protocol) => Poll::Ready((f.take().expect("polled after Ready"))(&mut protocol)),
            Err(_) => {
                let mut waiting = self.inner.waiting.borrow_mut();
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

impl<P> Clone for SharedProtocol<P> {
    fn clone(&self) -> Self {
        SharedProtocol {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for SharedProtocol<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.protocol.try_borrow() {
            Ok(p) => f.debug_tuple("SharedProtocol").field(&*p).finish(),
            Err(_) => f.write_str("SharedProtocol(<borrowed>)"),
        }
    }
}

impl<P> SharedProtocol<P> {
    /// Borrows the protocol to read it.
    ///
    /// # Panics
    ///
    /// If it is mutably borrowed (by a [`borrow_mut`](Self::borrow_mut) guard, or because a
    /// callback of this protocol is running), as `RefCell::borrow` does.
    #[track_caller]
    pub fn borrow(&self) -> ProtocolRef<'_, P> {
        ProtocolRef {
            borrow: self.inner.protocol.borrow(),
            waiting: &self.inner.waiting,
        }
    }

    /// Borrows the protocol to change it.
    ///
    /// # Panics
    ///
    /// If it is borrowed at all (a guard is alive, or a callback of this protocol is running),
    /// as `RefCell::borrow_mut` does.
    #[track_caller]
    pub fn borrow_mut(&self) -> ProtocolRefMut<'_, P> {
        ProtocolRefMut {
            borrow: self.inner.protocol.borrow_mut(),
            waiting: &self.inner.waiting,
        }
    }

    /// [`borrow`](Self::borrow), or an error instead of the panic.
    ///
    /// # Errors
    ///
    /// `BorrowError` while the protocol is mutably borrowed.
    pub fn try_borrow(&self) -> Result<ProtocolRef<'_, P>, BorrowError> {
        Ok(ProtocolRef {
            borrow: self.inner.protocol.try_borrow()?,
            waiting: &self.inner.waiting,
        })
    }

    /// [`borrow_mut`](Self::borrow_mut), or an error instead of the panic.
    ///
    /// # Errors
    ///
    /// `BorrowMutError` while the protocol is borrowed.
    pub fn try_borrow_mut(&self) -> Result<ProtocolRefMut<'_, P>, BorrowMutError> {
        Ok(ProtocolRefMut {
            borrow: self.inner.protocol.try_borrow_mut()?,
            waiting: &self.inner.waiting,
        })
    }
}

/// Wakes every task waiting for the protocol: a guard is being dropped. Waking only queues
/// the tasks, so they run after the guard (and its borrow) is gone; one that finds another
/// borrow still held waits again.
fn wake_waiting(waiting: &RefCell<Vec<Waker>>) {
    let woken = std::mem::take(&mut *waiting.borrow_mut());
    for waker in woken {
        waker.wake();
    }
}

/// A shared borrow of a [`SharedProtocol`]; dropping it lets a waiting callback run.
pub struct ProtocolRef<'a, P> {
    borrow: cell::Ref<'a, P>,
    waiting: &'a RefCell<Vec<Waker>>,
}

impl<P> Deref for ProtocolRef<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.borrow
    }
}

impl<P> Drop for ProtocolRef<'_, P> {
    fn drop(&mut self) {
        wake_waiting(self.waiting);
    }
}

impl<P: fmt::Debug> fmt::Debug for ProtocolRef<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.borrow, f)
    }
}

/// A mutable borrow of a [`SharedProtocol`]; dropping it lets a waiting callback run.
pub struct ProtocolRefMut<'a, P> {
    borrow: cell::RefMut<'a, P>,
    waiting: &'a RefCell<Vec<Waker>>,
}

impl<P> Deref for ProtocolRefMut<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.borrow
    }
}

impl<P> DerefMut for ProtocolRefMut<'_, P> {
    fn deref_mut(&mut self) -> &mut P {
        &mut self.borrow
    }
}

impl<P> Drop for ProtocolRefMut<'_, P> {
    fn drop(&mut self) {
        wake_waiting(self.waiting);
    }
}

impl<P: fmt::Debug> fmt::Debug for ProtocolRefMut<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.borrow, f)
    }
}
