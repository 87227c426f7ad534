//! The server examples shut down cleanly on SIGTERM: each runs in a child process (this test
//! binary, re-executed), is sent SIGTERM once it serves, exits 0, and its port can be bound
//! again the moment the process is gone, on both backends. The TCP ones are run twice: idle,
//! and with a client connected that never closes its side (the server must close it).
//!
//! A process killed by the signal instead leaves its io_uring to be torn down by the kernel
//! after the process is gone; requests still in flight (the listener's accept, the socket's
//! receive) keep the socket, and so its port, busy for a while after that, and an immediate
//! restart fails with `EADDRINUSE`.

// Each example includes its own copy of `examples/common/shutdown.rs`, as when it is built
// alone.
#![allow(clippy::duplicate_mod)]

mod support;

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;
#[allow(dead_code)]
#[path = "../examples/echo_protocol.rs"]
mod echo_protocol;
#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;
#[allow(dead_code)]
#[path = "../examples/udp_echo.rs"]
mod udp_echo;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The child side: serves the example named by the role on a free port until a signal.
#[test]
fn child_example_server() {
    let Some(role) = support::child_role() else {
        return; // only meaningful when re-executed by a test below
    };
    let (example, backend) = role.split_once(':').expect("role is example:backend");
    let backend = match backend {
        "io_uring" => ringloop::Backend::IoUring,
        _ => ringloop::Backend::Epoll,
    };
    let rt = support::runtime(backend);
    let any = "127.0.0.1:0";
    rt.block_on(async {
        match example {
            "echo_server" => echo_server::serve(any).await,
            "echo_protocol" => echo_protocol::serve(any).await,
            "chat" => chat::serve(any).await,
            "udp_echo" => udp_echo::serve(any.parse().unwrap()).await,
            other => panic!("unknown example {other}"),
        }
    })
    .expect("the example server");
}

/// What the parent does with the example's port.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Port {
    Udp,
    TcpIdle,
    TcpWithClient,
}

/// Starts `example` in a child process on `backend`, sends it SIGTERM once it announced its
/// address, waits for it to exit and binds that address again at once.
fn restart_after_sigterm(example: &str, backend: ringloop::Backend, port: Port) {
    let _watchdog = support::watchdog(TEST_LIMIT, example);
    let role = format!("{example}:{}", support::backend_role(backend));
    let what = format!("{role} {port:?}");
    let mut child = Command::new(std::env::current_exe().expect("current test executable"))
        .args([
            "child_example_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("RINGLOOP_BACKEND")
        .env(support::CHILD_ENV, &role)
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-executing the test binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The examples announce "... on ADDR" once they serve (and listen for the signals).
    let addr: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.rsplit(" on ").next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: no address announced"));
    // A client that stays connected and never closes: the server must close it to finish.
    let client = (port == Port::TcpWithClient).then(|| {
        let mut client = std::net::TcpStream::connect(addr).expect("connecting a client");
        std::io::Write::write_all(&mut client, b"hello\n").expect("writing to the server");
        client
    });
    // SAFETY: kill(2) on our own child, which has not been waited for (its pid is ours).
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("waiting for the child");
    drop(client);
    // At once: no retry, no pause.
    let rebound = if port == Port::Udp {
        std::net::UdpSocket::bind(addr).map(drop)
    } else {
        std::net::TcpListener::bind(addr).map(drop)
    };
    if let Err(e) = rebound {
        panic!("{what}: binding {addr} right after the server exited ({status}): {e}");
    }
    assert!(
        status.success(),
        "{what}: exited with {status}; output: {rest:?}"
    );
}

both_backends! {
    /// `echo_server` (streams) releases its port on SIGTERM.
    fn echo_server_releases_its_port_on_sigterm(backend: Backend) {
        restart_after_sigterm("echo_server", backend, Port::TcpIdle);
        restart_after_sigterm("echo_server", backend, Port::TcpWithClient);
    }

    /// `echo_protocol` (Protocol API) releases its port on SIGTERM.
    fn echo_protocol_releases_its_port_on_sigterm(backend: Backend) {
        restart_after_sigterm("echo_protocol", backend, Port::TcpIdle);
        restart_after_sigterm("echo_protocol", backend, Port::TcpWithClient);
    }

    /// `chat` releases its port on SIGTERM.
    fn chat_releases_its_port_on_sigterm(backend: Backend) {
        restart_after_sigterm("chat", backend, Port::TcpIdle);
        restart_after_sigterm("chat", backend, Port::TcpWithClient);
    }

    /// `udp_echo` releases its UDP port on SIGTERM.
    fn udp_echo_releases_its_port_on_sigterm(backend: Backend) {
        restart_after_sigterm("udp_echo", backend, Port::Udp);
    }
}
