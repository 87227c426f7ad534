//! [`Server`]: listening sockets that turn connections into transports (asyncio's `Server`).
//!
//! Each listener has an accept task; each accepted connection runs in a connection task the
//! server counts. `close` cancels the accept tasks (their listeners close when the tasks are
//! dropped, on the loop's next turn); `wait_closed` waits for those tasks and, as in Python
//! 3.12+, for every connection task to finish.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use super::extra::{SocketInfo, TransportAddr};
use super::socket::SocketListener;
use super::stream::Transport;
use crate::JoinHandle;

/// How long an accept loop waits after an error such as `EMFILE` before accepting again, so a
/// process out of descriptors does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A running server. Clones share it; dropping every clone does not stop it (call
/// [`close`](Self::close)), as an asyncio server lives on in its loop.
///
/// # Shutting down on a signal
///
/// A server killed by a signal it does not handle keeps its port bound for a little while
/// after the process is gone on io_uring (see the [module docs](super)). Handle the signal,
/// close, and let the runtime drop:
///
/// ```no_run
/// use ringloop::signal::Signals;
/// use ringloop::transport::{self, Protocol};
///
/// struct Silent;
/// impl Protocol for Silent {}
///
/// fn main() -> std::io::Result<()> {
///     let rt = ringloop::Runtime::builder().build()?;
///     rt.block_on(async {
///         let server = transport::create_server(|| Silent, "127.0.0.1:7000").await?;
///         let mut stop = Signals::new([libc::SIGINT, libc::SIGTERM])?;
///         stop.recv().await?;
///         server.close(); // the listeners close: the port is free
///         server.close_clients();
///         server.wait_closed().await;
///         Ok(())
///     })
///     // `rt` drops here: requests still in the kernel are cancelled and drained.
/// }
/// ```
///
/// ```
/// use ringloop::transport::{self, Protocol};
///
/// struct Silent;
/// impl Protocol for Silent {}
///
/// # ringloop::run(async {
/// let server = transport::create_server(|| Silent, "127.0.0.1:0").await.unwrap();
/// assert!(server.is_serving());
/// let addr = server.local_addrs()[0].as_inet().unwrap();
/// assert_eq!(addr.ip().to_string(), "127.0.0.1");
/// server.close();
/// server.wait_closed().await;
/// assert!(!server.is_serving());
/// # });
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Rc<Inner>,
}

struct Inner {
    addrs: Vec<TransportAddr>,
    state: RefCell<State>,
    clients: Rc<Clients>,
}

/// The transports of a server's live connections, for `close_clients`/`abort_clients`.
///
/// A connection is accepted by the accept task but makes its transport later, in its own
/// task; `close_clients` or `abort_clients` called in between must still reach it. So each
/// accepted connection holds a [`ClientSlot`] that remembers how many closes and aborts had
/// been asked for when it was accepted, and its transport gets those asked for since.
#[derive(Default)]
pub(crate) struct Clients {
    transports: RefCell<slab::Slab<Transport>>,
    /// `close_clients` calls so far.
    closes: Cell<u64>,
    /// `abort_clients` calls so far.
    aborts: Cell<u64>,
}

impl Clients {
    /// The slot of a connection accepted now.
    fn reserve(self: &Rc<Self>) -> ClientSlot {
        ClientSlot {
            clients: Rc::clone(self),
            closes: self.closes.get(),
            aborts: self.aborts.get(),
        }
    }

    /// The listed transports (cloned, so closing one cannot touch the list while it is read).
    fn all(&self) -> Vec<Transport> {
        self.transports
            .borrow()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// An accepted connection's place in its server's [`Clients`], until its transport is made.
pub(crate) struct ClientSlot {
    clients: Rc<Clients>,
    /// `Clients::closes` and `Clients::aborts` when the connection was accepted.
    closes: u64,
    aborts: u64,
}

impl ClientSlot {
    /// Lists `transport` until the returned guard is dropped (when its connection ends). If
    /// the server's clients were aborted or closed since the connection was accepted, the
    /// transport is aborted or closed now.
    pub(crate) fn register(self, transport: Transport) -> ClientRegistration {
        if self.clients.aborts.get() != self.aborts {
            transport.abort();
        } else if self.clients.closes.get() != self.closes {
            transport.close();
        }
        let key = self.clients.transports.borrow_mut().insert(transport);
        ClientRegistration {
            clients: self.clients,
            key,
        }
    }
}

/// Keeps a transport in a server's [`Clients`] while its connection lives.
pub(crate) struct ClientRegistration {
    clients: Rc<Clients>,
    key: usize,
}

impl Drop for ClientRegistration {
    fn drop(&mut self) {
        self.clients.transports.borrow_mut().remove(self.key);
    }
}

struct State {
    /// Until `close`.
    serving: bool,
    accept_tasks: Vec<JoinHandle<()>>,
    /// Accept tasks not yet dropped (each holds its listener open).
    listeners_open: usize,
    /// Connection tasks not yet finished.
    connections: usize,
    /// Tasks in `wait_closed` or `serve_forever`.
    waiters: Vec<Waker>,
}

impl State {
    fn wake_all(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.borrow();
        f.debug_struct("Server")
            .field("addrs", &self.inner.addrs)
            .field("serving", &state.serving)
            .field("connections", &state.connections)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts serving `listeners`: every accepted connection is passed to `on_connection`, and
    /// the future it returns runs as a connection task that the server waits for in
    /// [`wait_closed`](Self::wait_closed). A handler that makes a transport registers it
    /// through the given [`ClientSlot`] (keeping the registration for the lifetime of its
    /// future) so that [`close_clients`](Self::close_clients) reaches it.
    ///
    /// This is the crate's way to build a server of any kind of connection handler:
    /// [`create_server`](super::create_server) passes a function that starts a transport with
    /// a new protocol; `streams::start_server` can pass one that runs the client callback.
    pub(crate) fn start<L, F, Fut>(listeners: Vec<L>, on_connection: F) -> Server
    where
        L: SocketListener,
        F: Fn(L::Stream, ClientSlot) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let addrs = listeners
            .iter()
            .filter_map(|l| SocketInfo::capture(l).sockname)
            .collect();
        let inner = Rc::new(Inner {
            addrs,
            state: RefCell::new(State {
                serving: true,
                accept_tasks: Vec::new(),
                listeners_open: listeners.len(),
                connections: 0,
                waiters: Vec::new(),
            }),
            clients: Rc::default(),
        });
        let on_connection = Rc::new(on_connection);
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                // The guard is an argument, so it is inside the future from the start: a task
                // cancelled before its first poll still closes and uncounts its listener.
                let open = OpenListener {
                    listener: Some(listener),
                    inner: Rc::clone(&inner),
                };
                crate::spawn(accept_loop(open, Rc::clone(&on_connection)))
            })
            .collect();
        inner.state.borrow_mut().accept_tasks = tasks;
        Server { inner }
    }

    /// Stops accepting: the listening sockets close (on the loop's next turn). Connections
    /// already accepted go on. Idempotent.
    pub fn close(&self) {
        let mut state = self.inner.state.borrow_mut();
        if !state.serving {
            return;
        }
        state.serving = false;
        for task in state.accept_tasks.drain(..) {
            task.cancel();
        }
        state.wake_all();
    }

    /// Closes every connection the server accepted, after each flushes its write buffer
    /// (Python 3.13's `close_clients`). The server itself keeps serving unless closed.
    pub fn close_clients(&self) {
        let clients = &self.inner.clients;
        clients.closes.set(clients.closes.get() + 1);
        for transport in self.inner.clients.all() {
            transport.close();
        }
    }

    /// Aborts every connection the server accepted, dropping their write buffers (Python
    /// 3.13's `abort_clients`).
    pub fn abort_clients(&self) {
        let clients = &self.inner.clients;
        clients.aborts.set(clients.aborts.get() + 1);
        for transport in self.inner.clients.all() {
            transport.abort();
        }
    }

    /// Waits until the server is closed, its listening sockets are closed, and every
    /// connection it accepted has finished (Python 3.12+ semantics). Before `close`, it waits
    /// for `close` too.
    pub async fn wait_closed(&self) {
        poll_fn(|cx| {
            let mut state = self.inner.state.borrow_mut();
            if !state.serving && state.listeners_open == 0 && state.connections == 0 {
                return Poll::Ready(());
            }
            state.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// Serves until [`close`](Self::close) is called. Serving starts when the server is
    /// created, so this only waits; dropping the future (a cancelled task) closes the server,
    /// as cancelling asyncio's `serve_forever` does.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the server is already closed.
    pub async fn serve_forever(&self) -> io::Result<()> {
        if !self.is_serving() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "serve_forever on a closed server",
            ));
        }
        let close_on_drop = CloseOnDrop(Some(self));
        poll_fn(|cx| {
            let mut state = self.inner.state.borrow_mut();
            if !state.serving {
                return Poll::Ready(());
            }
            state.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        close_on_drop.disarm();
        Ok(())
    }

    /// asyncio's `start_serving`: serving already started when the server was created, so
    /// this does nothing. Kept so code ported from Python finds it.
    pub async fn start_serving(&self) {}

    /// Whether the server accepts connections (until `close`).
    pub fn is_serving(&self) -> bool {
        self.inner.state.borrow().serving
    }

    /// The addresses of the listening sockets, with the ports the system chose for port 0
    /// (asyncio's `sockets()`, as addresses).
    #[doc(alias = "sockets")]
    pub fn local_addrs(&self) -> Vec<TransportAddr> {
        self.inner.addrs.clone()
    }

    /// Connections accepted and not yet finished.
    pub fn active_connections(&self) -> usize {
        self.inner.state.borrow().connections
    }
}

/// Closes the server if `serve_forever` is dropped before it returns. It borrows the server
/// (no clone of the `Rc`), so disarming it cannot leak one.
struct CloseOnDrop<'a>(Option<&'a Server>);

impl CloseOnDrop<'_> {
    /// `serve_forever` returned: leave the server as it is.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(server) = self.0 {
            server.close();
        }
    }
}

/// Counts a connection task from accept until the task ends (finished or cancelled).
struct ConnectionGuard(Rc<Inner>);

impl ConnectionGuard {
    fn new(inner: &Rc<Inner>) -> ConnectionGuard {
        inner.state.borrow_mut().connections += 1;
        ConnectionGuard(Rc::clone(inner))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut state = self.0.state.borrow_mut();
        state.connections -= 1;
        state.wake_all();
    }
}

async fn accept_loop<L, F, Fut>(open: OpenListener<L>, on_connection: Rc<F>)
where
    L: SocketListener,
    F: Fn(L::Stream, ClientSlot) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let Some(listener) = &open.listener else {
        return;
    };
    loop {
        match listener.accept_stream().await {
            Ok(stream) => {
                let connection = ConnectionGuard::new(&open.inner);
                let handler = on_connection(stream, open.inner.clients.reserve());
                crate::spawn(async move {
                    let _connection = connection;
                    handler.await;
                });
            }
            // The peer gave up before we accepted: nothing to do.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or memory, or an unexpected error: the listener stays, and
            // accepting resumes after a pause rather than spinning.
            Err(_) => crate::time::sleep(ACCEPT_ERROR_PAUSE).await,
        }
    }
}

/// A listener counted in `listeners_open` until its accept task is dropped; it closes the
/// listener first, so `wait_closed` returning means the port is released.
struct OpenListener<L> {
    listener: Option<L>,
    inner: Rc<Inner>,
}

impl<L> Drop for OpenListener<L> {
    fn drop(&mut self) {
        drop(self.listener.take());
        let mut state = self.inner.state.borrow_mut();
        state.listeners_open -= 1;
        state.wake_all();
    }
}
