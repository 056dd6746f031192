//! provd-udp: the batched UDP socket every datagram service of provd (DHCP, TFTP, syslog,
//! time, MTA provisioning) reads and writes through, and the rate limit their warnings share.
//!
//! - [`UdpSocket::recv_batch`] fills a [`RecvBatch`] with one `recvmmsg`: up to its capacity of
//!   datagrams, each with its source and, when IP_PKTINFO is on, the local address it was sent
//!   to and the interface it arrived on ([`Meta`]).
//! - [`UdpSocket::send_batch`] sends a [`SendBatch`] with `sendmmsg`, each datagram from the
//!   local address (and interface) chosen for it; runs of equal-sized datagrams to one peer go
//!   as one UDP GSO message (a TFTP window in one trip down the stack), falling back to single
//!   datagrams when the path cannot segment.
//! - [`UdpSocket::send_each`] sends datagrams straight from the caller's buffers (the DHCP
//!   workers' replies), without the copy into slots.
//! - [`poll_readable`] waits on several sockets; [`InterfaceMtus`] caches interface MTUs.
//! - [`RateLimit`] lets a few warnings a second through and counts the rest.
//!
//! A region of modems rebooting at once is a burst of small datagrams: one system call per
//! batch instead of per datagram is what keeps the receive queue from overflowing. All of the
//! crate's `unsafe` is the C interface of those calls; each block says why it is sound.

mod batch;
mod limit;
mod rate;

pub use batch::{
    CMSG_WORDS, InterfaceMtus, Meta, Options, Outgoing, RecvBatch, SendBatch, UdpSocket, Wait,
    pktinfo, poll_readable, set_pktinfo,
};
pub use limit::SourceLimit;
pub use rate::RateLimit;
