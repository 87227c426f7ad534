//! Ancillary data (control messages) for datagram sockets: typed helpers over the raw
//! `(level, type, data)` entries of [`ControlMessage`].
//!
//! A message is built with [`ControlMessage::new`] or a typed constructor and sent with
//! [`UdpSocket::sendmsg`](super::UdpSocket::sendmsg); received ones come back from
//! [`UdpSocket::recvmsg`](super::UdpSocket::recvmsg) and are read with the `as_*` helpers.
//! Passing descriptors (`SCM_RIGHTS`) has its own typed methods on the Unix socket types.

use std::net::{Ipv4Addr, SocketAddr};

pub use crate::op::ControlMessage;

/// `IP_PKTINFO` of a received IPv4 datagram (`struct in_pktinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Index of the interface the datagram arrived on.
    pub interface_index: i32,
    /// The local address the route chose (`ipi_spec_dst`).
    pub local: Ipv4Addr,
    /// The datagram's destination address from its header (`ipi_addr`).
    pub destination: Ipv4Addr,
}

fn int_data(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

impl ControlMessage {
    /// Bytes of control buffer one message with `data_len` data bytes takes (`CMSG_SPACE`);
    /// add these up for the `control_len` of a receive.
    ///
    /// ```
    /// use ringloop::net::ControlMessage;
    /// assert!(ControlMessage::space(4) >= 16 + 4);
    /// ```
    pub fn space(data_len: usize) -> usize {
        crate::op::control_space(data_len)
    }

    /// `IP_TTL` for sending: the time-to-live of this one datagram.
    ///
    /// ```
    /// use ringloop::net::ControlMessage;
    /// assert_eq!(ControlMessage::ip_ttl(7).as_ip_ttl(), Some(7));
    /// ```
    pub fn ip_ttl(ttl: u8) -> Self {
        ControlMessage::new(libc::IPPROTO_IP, libc::IP_TTL, int_data(i32::from(ttl)))
    }

    /// `IP_TOS` for sending: the type-of-service byte of this one datagram.
    ///
    /// ```
    /// use ringloop::net::ControlMessage;
    /// let tos = ControlMessage::ip_tos(0x10);
    /// assert_eq!((tos.level, tos.kind), (libc::IPPROTO_IP, libc::IP_TOS));
    /// ```
    pub fn ip_tos(tos: u8) -> Self {
        ControlMessage::new(libc::IPPROTO_IP, libc::IP_TOS, int_data(i32::from(tos)))
    }

    /// The TTL a received datagram arrived with (`IP_TTL`, delivered once
    /// [`set_recv_ttl`](super::UdpSocket::set_recv_ttl) is on).
    pub fn as_ip_ttl(&self) -> Option<u8> {
        if (self.level, self.kind) != (libc::IPPROTO_IP, libc::IP_TTL) {
            return None;
        }
        let bytes: [u8; 4] = self.data.get(..4)?.try_into().ok()?;
        u8::try_from(i32::from_ne_bytes(bytes)).ok()
    }

    /// The type-of-service byte a received datagram carried (`IP_TOS`, delivered once
    /// [`set_recv_tos`](super::UdpSocket::set_recv_tos) is on).
    pub fn as_ip_tos(&self) -> Option<u8> {
        if (self.level, self.kind) != (libc::IPPROTO_IP, libc::IP_TOS) {
            return None;
        }
        self.data.first().copied()
    }

    /// Where a received IPv4 datagram arrived (`IP_PKTINFO`, delivered once
    /// [`set_recv_pktinfo`](super::UdpSocket::set_recv_pktinfo) is on).
    pub fn as_ip_pktinfo(&self) -> Option<PacketInfo> {
        if (self.level, self.kind) != (libc::IPPROTO_IP, libc::IP_PKTINFO) {
            return None;
        }
        let data = self.data.get(..12)?;
        let addr = |at: usize| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
        Some(PacketInfo {
            interface_index: i32::from_ne_bytes(data[..4].try_into().ok()?),
            local: addr(4),
            destination: addr(8),
        })
    }
}

/// A datagram received by [`UdpSocket::recvmsg`](super::UdpSocket::recvmsg), with its
/// ancillary data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedDatagram {
    /// Bytes received into the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// The control messages, in the order they came.
    pub control: Vec<ControlMessage>,
    /// The datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    pub truncated: bool,
    /// The control messages did not all fit in `control_len` (`MSG_CTRUNC`).
    pub control_truncated: bool,
}
