//! UDP ancillary data on both backends, over loopback: a TTL sent as a control message
//! (`IP_TTL`) is the TTL the receiver sees (`IP_RECVTTL`); `IP_PKTINFO` names the destination
//! address and interface; a control buffer too small or a datagram too long is flagged, not
//! an error; a receive that timed out hands its datagram and controls to the next one.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ringloop::net::{ControlMessage, ReceivedDatagram, UdpSocket};
use ringloop::time;

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a datagram that must arrive may take before the test fails.
const RECV_LIMIT: Duration = Duration::from_secs(5);

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

    /// A `recvmsg` that times out is adopted: the next `recvmsg` gets the datagram sent
    /// afterwards with its TTL control message.
    fn timed_out_recvmsg_keeps_datagram_and_controls(rt) {
        let _watchdog = support::watchdog(TEST_LIMIT, "timed_out_recvmsg_keeps_datagram_and_controls");
        rt.block_on(async {
            let (a, b) = (bind(), bind());
            b.set_recv_ttl(true).expect("IP_RECVTTL");
            let room = ControlMessage::space(4);
            let idle = time::timeout(Duration::from_millis(2), b.recvmsg(Vec::with_capacity(64), room));
            assert!(idle.await.is_err(), "an idle receive finished");
            let to = Some(b.local_addr().unwrap());
            let (n, _) = a.sendmsg(b"late".as_slice(), to, &[ControlMessage::ip_ttl(3)]).await;
            assert_eq!(n.expect("sendmsg"), 4);
            let (msg, buf) = recvmsg(&b, 64, room).await;
            assert_eq!(&buf[..], b"late");
            assert_eq!(ttl_of(&msg), Some(3), "{msg:?}");
        });
    }
}
