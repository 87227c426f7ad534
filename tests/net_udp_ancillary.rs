//! UDP ancillary data on both backends, over loopback: a TTL sent as a control message
//! (`IP_TTL`) is the TTL the receiver sees (`IP_RECVTTL`); `IP_PKTINFO` names the destination
//! address and interface; a control buffer too small or a datagram too long is flagged, not
//! an error; a receive dropped after it completed hands its datagram and controls to the
//! next one.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;

use ringloop::net::{ControlMessage, ReceivedDatagram, UdpSocket};
use ringloop::time;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a datagram that must arrive may take before the test fails.
const RECV_LIMIT: Duration = Duration::from_secs(10);

/// A UDP socket on a free loopback port.
fn bind() -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0")
}

/// The system's default TTL for IPv4 (`net.ipv4.ip_default_ttl`).
fn default_ttl() -> u8 {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").expect("read sysctl");
    text.trim().parse().expect("a TTL")
}

/// Receives one datagram with `control_len` bytes of control room, failing after a while.
async fn recvmsg(
    socket: &UdpSocket,
    cap: usize,
    control_len: usize,
) -> (ReceivedDatagram, Vec<u8>) {
    let recv = socket.recvmsg(Vec::with_capacity(cap), control_len);
    let (res, buf) = time::timeout(RECV_LIMIT, recv)
        .await
        .expect("the datagram arrives");
    (res.expect("recvmsg"), buf)
}

/// Whether a datagram waits in `socket`'s queue (a non-blocking `MSG_PEEK`).
fn datagram_waiting(socket: &UdpSocket) -> bool {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8];
    match socket2::SockRef::from(socket).peek(&mut buf) {
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(err) => panic!("peek: {err}"),
    }
}

/// The TTL among `msg`'s control messages, if any.
fn ttl_of(msg: &ReceivedDatagram) -> Option<u8> {
    msg.control.iter().find_map(ControlMessage::as_ip_ttl)
}

both_backends! {
    /// With `IP_RECVTTL` on, a datagram sent with an `IP_TTL` control message of 7 arrives
    /// with TTL 7, and one sent without arrives with the system's default TTL; the data and
    /// the sender are intact.
    fn ttl_control_message_round_trip(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "ttl_control_message_round_trip");
        rt.block_on(async {
            let (a, b) = (bind(), bind());
            b.set_recv_ttl(true).expect("IP_RECVTTL");
            let to = Some(b.local_addr().expect("local_addr"));
            let (n, _) = a.sendmsg(b"ttl7".as_slice(), to, &[ControlMessage::ip_ttl(7)]).await;
            assert_eq!(n.expect("sendmsg"), 4);
            let (n, _) = a.sendmsg(b"plain".as_slice(), to, &[]).await;
            assert_eq!(n.expect("sendmsg"), 5);

            let room = ControlMessage::space(4);
            let (msg, buf) = recvmsg(&b, 64, room).await;
            assert_eq!((&buf[..], msg.from), (&b"ttl7"[..], a.local_addr().unwrap()));
            assert_eq!(ttl_of(&msg), Some(7), "controls: {:?}", msg.control);
            assert!(!msg.truncated && !msg.control_truncated);
            let (msg, buf) = recvmsg(&b, 64, room).await;
            assert_eq!(&buf[..], b"plain");
            assert_eq!(ttl_of(&msg), Some(default_ttl()), "controls: {:?}", msg.control);
        });
    }

    /// With `IP_PKTINFO` and `IP_RECVTTL` on, one receive gets both: the packet info names
    /// 127.0.0.1 as the destination on a real interface, next to the TTL.
    fn pktinfo_names_the_destination(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "pktinfo_names_the_destination");
        rt.block_on(async {
            let (a, b) = (bind(), bind());
            b.set_recv_pktinfo(true).expect("IP_PKTINFO");
            b.set_recv_ttl(true).expect("IP_RECVTTL");
            let (n, _) = a.send_to(b"where".as_slice(), b.local_addr().unwrap()).await;
            assert_eq!(n.expect("send_to"), 5);
            let room = ControlMessage::space(12) + ControlMessage::space(4);
            let (msg, _) = recvmsg(&b, 64, room).await;
            let info = msg
                .control
                .iter()
                .find_map(ControlMessage::as_ip_pktinfo)
                .unwrap_or_else(|| panic!("no IP_PKTINFO among {:?}", msg.control));
            assert_eq!(info.destination, Ipv4Addr::LOCALHOST);
            assert!(info.interface_index > 0, "{info:?}");
            assert_eq!(ttl_of(&msg), Some(default_ttl()));
            assert!(!msg.control_truncated);
        });
    }

    /// A control buffer with room for one message when two come flags `control_truncated`
    /// (the datagram itself arrives whole); a buffer shorter than the datagram flags
    /// `truncated` and holds its first bytes.
    fn truncation_is_flagged(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "truncation_is_flagged");
        rt.block_on(async {
            let (a, b) = (bind(), bind());
            b.set_recv_pktinfo(true).expect("IP_PKTINFO");
            b.set_recv_ttl(true).expect("IP_RECVTTL");
            let to = b.local_addr().unwrap();
            for _ in 0..2 {
                let (n, _) = a.send_to(b"0123456789".as_slice(), to).await;
                assert_eq!(n.expect("send_to"), 10);
            }
            let (msg, buf) = recvmsg(&b, 64, ControlMessage::space(4)).await;
            assert!(msg.control_truncated, "two controls in room for one: {msg:?}");
            assert_eq!(&buf[..], b"0123456789");
            let room = ControlMessage::space(12) + ControlMessage::space(4);
            let (msg, buf) = recvmsg(&b, 4, room).await;
            assert!(msg.truncated && !msg.control_truncated, "{msg:?}");
            assert_eq!((msg.len, &buf[..]), (4, &b"0123"[..]));
        });
    }

    /// A `recvmsg` submitted, then dropped after the kernel gave it a datagram, is adopted:
    /// the next `recvmsg` gets that datagram with its TTL control message.
    fn dropped_recvmsg_keeps_datagram_and_controls(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "dropped_recvmsg_keeps_datagram_and_controls");
        rt.block_on(async {
            let (a, b) = (bind(), bind());
            b.set_recv_ttl(true).expect("IP_RECVTTL");
            let room = ControlMessage::space(4);
            let mut recv = Box::pin(b.recvmsg(Vec::with_capacity(64), room));
            assert!(poll_once(&mut recv).await.is_none(), "nothing sent yet");
            let to = Some(b.local_addr().unwrap());
            let (n, _) = a.sendmsg(b"late".as_slice(), to, &[ControlMessage::ip_ttl(3)]).await;
            assert_eq!(n.expect("sendmsg"), 4);
            // No event says a receive completed for a future nobody polls: wait with short
            // timers (the loop parks in the kernel, where it completes) until the queue is
            // empty, and one tick more.
            let deadline = Instant::now() + RECV_LIMIT;
            while datagram_waiting(&b) && Instant::now() < deadline {
                time::sleep(Duration::from_millis(1)).await;
            }
            assert!(!datagram_waiting(&b), "the submitted receive took the datagram");
            time::sleep(Duration::from_millis(1)).await;
            drop(recv);
            let (msg, buf) = recvmsg(&b, 64, room).await;
            assert_eq!(&buf[..], b"late");
            assert_eq!(ttl_of(&msg), Some(3), "{msg:?}");
        });
    }
}
