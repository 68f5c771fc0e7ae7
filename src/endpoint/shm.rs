//! The rendezvous of a shared-memory endpoint (`shm:NAME`, `mpsc:NAME`):
//! a Unix seqpacket socket over which the listener hands each client the
//! descriptors of sealed memfd rings made for it.
//!
//! ```text
//! client                                   listener
//!   connect(@shmsg.NAME) ─────────────────▶ accept; SO_PEERCRED checked
//!   Hello{kind, max reply} ───────────────▶ makes the rings, attaches its sides
//!                         ◀──────────────── Answer{ok} + SCM_RIGHTS[requests, replies]
//!                                           (each ring: memfd, data and space eventfds)
//!   verifies seals and layout, maps,
//!   attaches its sides
//!   Ack ──────────────────────────────────▶ accept returns the Channel
//! ```
//!
//! Every message is one datagram of 24 bytes: the magic `b"shmsg\0sm"`,
//! the protocol version (`u32`), a code (`u32`) and a value (`u64`), all
//! little-endian. The hello's code is the endpoint kind (1 `shm:`, 2
//! `mpsc:`) and its value the largest reply the client accepts (0: the
//! listener's size); the answer's code is 0 with the six descriptors
//! (each ring's memfd, then its [`Event::Data`] and
//! [`Event::Space`] eventfds, which event loops wait on), or
//! why not (1 version, 2 kind, 3 no rings) with the listener's value; the
//! acknowledgement's code is 0. The answer to a peer the listener refuses
//! is a datagram starting with [`REFUSED_MAGIC`], as on the other Unix
//! endpoints.
//!
//! For `shm:` the two rings are new for each connection, so one listener
//! serves any number of clients at once. For `mpsc:` the request ring is the
//! listener's one multi-producer ring, handed to every client, and the reply
//! ring is the client's own. Nothing is created in `/dev/shm`: the rings
//! live as long as a process maps them, and the seals (no shrinking, no
//! growing, no unsealing) mean no one can truncate them under a peer.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::error::{Error, Result};
use crate::msg::frame::{REFUSED_MAGIC, check_magic_and_version, check_refusal};
use crate::options::Deadline;
use crate::shm::Region;
use crate::shm::signal::Signals;
use crate::sync::Event;

/// `b"shmsg\0sm"`: the magic of every rendezvous datagram.
pub(super) const MAGIC: [u8; 8] = *b"shmsg\0sm";
/// Version of the rendezvous protocol; bump on any change.
pub(super) const VERSION: u32 = 2;
/// Descriptors per ring in the answer: the memfd and the two eventfds.
pub(super) const RING_FDS: usize = 3;
/// Descriptors in an answer: the request ring's, then the reply ring's.
pub(super) const ANSWER_FDS: usize = 2 * RING_FDS;
/// Bytes of every rendezvous datagram.
pub(super) const MSG_LEN: usize = 24;

/// The client's hello code: which kind of endpoint it connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Kind {
    /// `shm:`: a single-producer ring each way.
    Shm = 1,
    /// `mpsc:`: the shared multi-producer ring, and a reply ring.
    Mpsc = 2,
}

/// The codes of a listener's answer.
pub(super) mod answer {
    /// The rings follow (two descriptors).
    pub const OK: u32 = 0;
    /// The client's protocol version differs; the value is ours.
    pub const VERSION: u32 = 1;
    /// The client asked for the other kind of endpoint; the value is ours.
    pub const KIND: u32 = 2;
    /// The listener could not make the rings.
    pub const NO_RINGS: u32 = 3;
}

/// The code of the client's acknowledgement: its sides are attached.
pub(super) const ACK_ATTACHED: u32 = 0;

/// One rendezvous datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Msg {
    pub code: u32,
    pub value: u64,
}

impl Msg {
    pub(super) fn encode(self) -> [u8; MSG_LEN] {
        let mut bytes = [0u8; MSG_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.code.to_le_bytes());
        bytes[16..].copy_from_slice(&self.value.to_le_bytes());
        bytes
    }

    /// Decodes a datagram of `len` bytes (the real length, which may exceed
    /// the buffer): [`Error::Handshake`] names what is wrong, a refusal is
    /// [`Error::PeerRefused`].
    pub(super) fn decode(bytes: &[u8; MSG_LEN], len: usize) -> Result<Msg> {
        check_refusal(bytes)?;
        if len != MSG_LEN {
            return Err(Error::Handshake {
                field: "rendezvous message length",
                expected: MSG_LEN as u64,
                found: len as u64,
            });
        }
        check_magic_and_version(
            bytes,
            MAGIC,
            VERSION,
            ["rendezvous magic", "rendezvous version"],
        )?;
        Ok(Msg {
            code: u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")),
            value: u64::from_le_bytes(bytes[16..].try_into().expect("8 bytes")),
        })
    }
}

/// Sends `msg` on `socket` with `fds` attached, without waiting: a fresh
/// seqpacket socket always has room for one small datagram, and a peer
/// that filled ours has broken the protocol.
pub(super) fn send(socket: BorrowedFd<'_>, msg: Msg, fds: &[BorrowedFd<'_>]) -> Result<()> {
    send_bytes(socket, &msg.encode(), fds)
}

/// Sends the refusal datagram (best effort: the peer may be gone).
pub(super) fn refuse(socket: BorrowedFd<'_>) {
    let mut bytes = [0u8; MSG_LEN];
    bytes[..8].copy_from_slice(&REFUSED_MAGIC);
    let _ = send_bytes(socket, &bytes, &[]);
}

fn send_bytes(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(ANSWER_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Error::io(
            "cannot send the rings' descriptors",
            io::Error::other("no room for the descriptors in the control buffer"),
        ));
    }
    loop {
        match rustix::net::sendmsg(
            socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(Errno::PIPE | Errno::CONNRESET) => return Err(Error::Disconnected),
            Err(e) => return Err(Error::io("cannot send on the rendezvous socket", e)),
        }
    }
}

/// What [`recv`] got: a message, and the descriptors that came with it.
pub(super) struct Received {
    pub msg: Msg,
    pub fds: Vec<OwnedFd>,
}

/// Receives one datagram from `socket`, waiting until `deadline`.
/// [`Error::Disconnected`] at end of stream, [`Error::Timeout`] (or
/// [`Error::Empty`] for [`Deadline::Now`]) if none came. Descriptors beyond
/// `max_fds` truncate the message and are refused.
pub(super) fn recv(socket: BorrowedFd<'_>, max_fds: usize, deadline: Deadline) -> Result<Received> {
    let mut bytes = [0u8; MSG_LEN];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(ANSWER_FDS))];
    let mut reset = false;
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC | RecvFlags::DONTWAIT,
        );
        let received = match received {
            Ok(received) => received,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {
                if crate::msg::unix::poll_in(socket, deadline.remaining())
                    .map_err(|e| Error::io("cannot wait on the rendezvous socket", e))?
                {
                    continue;
                }
                return Err(match deadline {
                    Deadline::Now => Error::Empty,
                    _ => Error::Timeout,
                });
            }
            // A peer that closed with our datagram unread: the kernel says
            // so once, ahead of what it sent before (a refusal, say).
            Err(Errno::CONNRESET) if !reset => {
                reset = true;
                continue;
            }
            Err(Errno::CONNRESET) => return Err(Error::Disconnected),
            Err(e) => return Err(Error::io("cannot receive on the rendezvous socket", e)),
        };
        // Own every descriptor that arrived before anything can fail, so
        // that none leaks.
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                fds.extend(rights);
            }
        }
        if received.bytes == 0 {
            return Err(Error::Disconnected);
        }
        let msg = Msg::decode(&bytes, received.bytes)?;
        if received.flags.contains(rustix::net::ReturnFlags::CTRUNC) || fds.len() > max_fds {
            return Err(Error::Handshake {
                field: "descriptors in a rendezvous message",
                expected: max_fds as u64,
                found: fds.len() as u64,
            });
        }
        return Ok(Received { msg, fds });
    }
}

/// Validates and maps the ring a peer sent as `memfd` (sealed, with a
/// valid header: [`Region::from_fd`]), then closes `memfd`, so that this
/// process's locks on the ring are its own; `data` and `space` must be
/// eventfds ([`Signals::from_fds`]).
pub(super) fn region_from([memfd, data, space]: [OwnedFd; RING_FDS]) -> Result<Region> {
    let signals = Signals::from_fds(data, space)?;
    Ok(Region::from_fd(memfd.as_fd())?.with_signals(signals))
}

/// The descriptors that hand `region` to the peer: its memfd and its
/// eventfds ([`Error::InvalidConfig`] if it has none: only anonymous
/// regions, which have them, are sent).
pub(super) fn region_fds(region: &Region) -> Result<[BorrowedFd<'_>; RING_FDS]> {
    let signals = region.signals().ok_or_else(|| {
        Error::InvalidConfig("a ring handed to a peer needs its eventfds".to_string())
    })?;
    Ok([
        region.as_fd(),
        signals.fd(Event::Data),
        signals.fd(Event::Space),
    ])
}
