//! `get_extra_info` on both backends: `peername`/`sockname` of a client and a server-side
//! transport are each other's addresses, `socket` is the descriptor until close, unknown
//! names give `None`, and the addresses stay readable after the connection is gone.

mod support;
mod transport_support;

use ringloop::transport::{self, ExtraInfo};
use transport_support::{Recorder, Shared, TEST_LIMIT, any_loopback_port, wait_until};

fn inet(info: Option<ExtraInfo>) -> std::net::SocketAddr {
    info.expect("extra info present")
        .as_addr()
        .expect("an address")
        .as_inet()
        .expect("an IP address")
}

both_backends! {
    /// Client `peername` is the server's listening address and client `sockname` is what the
    /// server side sees as `peername` (and the other way round); `socket` is an open
    /// descriptor, the same as `fd()`; unknown names are `None`. After close, `socket` is gone
    /// but both addresses remain.
    fn extra_info_names_both_ends(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "extra_info_names_both_ends");
        rt.block_on(async {
            let shared = Shared::default();
            let factory = shared.clone();
            let server = transport::create_server(move || factory.add(Recorder::default), any_loopback_port())
                .await
                .unwrap();
            let addr = server.local_addrs()[0].as_inet().unwrap();
            let (client, recorder) = transport::create_connection(Recorder::default, addr).await.unwrap();
            wait_until("accepted", || shared.len() == 1).await;
            let server_side = shared.get(0).borrow().transport.clone().unwrap();

            assert_eq!(inet(client.get_extra_info("peername")), addr);
            assert_eq!(inet(server_side.get_extra_info("sockname")), addr);
            assert_eq!(
                inet(client.get_extra_info("sockname")),
                inet(server_side.get_extra_info("peername"))
            );
            assert_eq!(client.peername().unwrap().as_inet(), Some(addr));
            assert_eq!(
                client.sockname().unwrap().as_inet(),
                server_side.peername().unwrap().as_inet()
            );

            let fd = client.get_extra_info("socket").and_then(|i| i.as_fd()).expect("socket fd");
            assert_eq!(Some(fd), client.fd());
            assert!(std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists());
            assert_ne!(Some(fd), server_side.fd());
            assert!(client.get_extra_info("cipher").is_none());

            client.close();
            wait_until("closed", || recorder.borrow().lost()).await;
            assert!(client.get_extra_info("socket").is_none());
            assert_eq!(client.fd(), None);
            assert_eq!(inet(client.get_extra_info("peername")), addr);
            server.close();
            server.wait_closed().await;
        });
    }
}
