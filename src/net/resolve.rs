//! Name resolution: [`ToSocketAddrs`] and [`lookup_host`]. A lookup can block, so it runs on
//! the blocking pool, never on the loop thread; an address needs no lookup and is answered at
//! once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What a [`ToSocketAddrs`] value stands for.
pub enum Target {
    /// Addresses, no lookup needed.
    Addrs(Vec<SocketAddr>),
    /// A host name and port to look up.
    Lookup(String, u16),
    /// A `"host:port"` string to look up.
    HostPort(String),
}

mod sealed {
    /// How a value becomes addresses (sealed: only ringloop implements it).
    pub trait Sealed {
        /// The addresses, or the name to look up.
        fn target(&self) -> super::Target;
    }
}

/// Values that name socket addresses: [`SocketAddr`] (and its V4/V6 forms), `(IpAddr, u16)`,
/// `(&str, u16)`, `(String, u16)`, `"host:port"` as `&str` or `String`, and `&[SocketAddr]`.
/// Host names are resolved by [`lookup_host`] on the blocking pool, never on the loop thread.
///
/// Sealed: implemented by ringloop only, like the resolution it stands for.
///
/// ```
/// use ringloop::net::{TcpListener, TcpStream};
/// # ringloop::run(async {
/// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
/// let port = listener.local_addr().unwrap().port();
/// let stream = TcpStream::connect(("localhost", port)).await.unwrap();
/// assert_eq!(stream.peer_addr().unwrap().port(), port);
/// # });
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}
impl<T: sealed::Sealed + ?Sized> ToSocketAddrs for T {}

macro_rules! addrs {
    ($($ty:ty => |$v:ident| $e:expr;)*) => {$(
        impl sealed::Sealed for $ty {
            fn target(&self) -> Target {
                let $v = self;
                Target::Addrs(vec![$e])
            }
        }
    )*};
}

addrs! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::from(*a);
    (Ipv4Addr, u16) => |a| SocketAddr::from(*a);
    (Ipv6Addr, u16) => |a| SocketAddr::from(*a);
}

impl sealed::Sealed for (&str, u16) {
    fn target(&self) -> Target {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Target::Addrs(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Target::Lookup(self.0.to_owned(), self.1),
        }
    }
}

impl sealed::Sealed for (String, u16) {
    fn target(&self) -> Target {
        (self.0.as_str(), self.1).target()
    }
}

impl sealed::Sealed for str {
    fn target(&self) -> Target {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Target::Addrs(vec![addr]),
            Err(_) => Target::HostPort(self.to_owned()),
        }
    }
}

impl sealed::Sealed for String {
    fn target(&self) -> Target {
        self.as_str().target()
    }
}

impl sealed::Sealed for [SocketAddr] {
    fn target(&self) -> Target {
        Target::Addrs(self.to_vec())
    }
}

impl<const N: usize> sealed::Sealed for [SocketAddr; N] {
    fn target(&self) -> Target {
        Target::Addrs(self.to_vec())
    }
}

impl sealed::Sealed for Vec<SocketAddr> {
    fn target(&self) -> Target {
        Target::Addrs(self.clone())
    }
}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn target(&self) -> Target {
        (**self).target()
    }
}

/// How a target reads in an error message.
pub(crate) fn describe(target: &Target) -> String {
    match target {
        Target::Addrs(addrs) if addrs.len() == 1 => addrs[0].to_string(),
        Target::Addrs(addrs) => {
            let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            format!("[{}]", list.join(", "))
        }
        Target::Lookup(host, port) => format!("{host}:{port}"),
        Target::HostPort(hp) => hp.clone(),
    }
}

/// Resolves `host` to socket addresses: `"host:port"`, `(host, port)`, or addresses (returned
/// as they are). Resolution can block, so it runs on the blocking pool, never on the loop
/// thread.
///
/// ```
/// # ringloop::run(async {
/// let addrs = ringloop::net::lookup_host("127.0.0.1:8080").await.unwrap();
/// assert_eq!(addrs, ["127.0.0.1:8080".parse().unwrap()]);
/// let local = ringloop::net::lookup_host(("localhost", 80)).await.unwrap();
/// assert!(local.iter().all(|a| a.ip().is_loopback()));
/// # });
/// ```
///
/// # Errors
///
/// A malformed input or a failed lookup; the message names `host`. No address found is
/// [`io::ErrorKind::NotFound`].
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    resolve(host.target()).await
}

pub(crate) async fn resolve(target: Target) -> io::Result<Vec<SocketAddr>> {
    let name = describe(&target);
    let addrs = match target {
        Target::Addrs(addrs) => addrs,
        Target::Lookup(host, port) => {
            blocking_lookup(&name, move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            })
            .await?
        }
        Target::HostPort(hp) => {
            blocking_lookup(&name, move || std::net::ToSocketAddrs::to_socket_addrs(&hp)).await?
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("lookup of {name}: no addresses"),
        ));
    }
    Ok(addrs)
}

async fn blocking_lookup<I: Iterator<Item = SocketAddr>>(
    name: &str,
    lookup: impl FnOnce() -> io::Result<I> + Send + 'static,
) -> io::Result<Vec<SocketAddr>> {
    let resolved = crate::spawn_blocking(move || lookup().map(|it| it.collect::<Vec<_>>()))
        .await
        .map_err(|e| io::Error::other(format!("lookup of {name} did not finish: {e}")))?;
    resolved.map_err(|e| io::Error::new(e.kind(), format!("lookup of {name}: {e}")))
}

/// The addresses or name `addr` stands for.
pub(crate) fn target_of<T: ToSocketAddrs + ?Sized>(addr: &T) -> Target {
    addr.target()
}
