//! Raw Unix sockets for tests that speak the handshakes by hand: hostile
//! clients against a real listener, fake listeners against a real client.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// A socket of `kind` connected to the abstract name `name`; `None` while
/// no one listens there.
pub fn try_connect(name: &str, kind: SocketType) -> Option<OwnedFd> {
    let fd =
        rustix::net::socket_with(AddressFamily::UNIX, kind, SocketFlags::CLOEXEC, None).unwrap();
    let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).unwrap();
    rustix::net::connect(&fd, &addr).ok().map(|()| fd)
}

/// A socket of `kind` connected to the abstract name `name`.
pub fn raw_connect(name: &str, kind: SocketType) -> OwnedFd {
    try_connect(name, kind).unwrap_or_else(|| panic!("no one listens at @{name}"))
}

/// The abstract socket name behind an endpoint (`shm:NAME` meets at
/// `@shmsg.NAME`).
pub fn socket_name(endpoint: &str) -> String {
    match shmsg::Endpoint::parse(endpoint).unwrap() {
        shmsg::Endpoint::Shm(name) | shmsg::Endpoint::Mpsc(name) => format!("shmsg.{name}"),
        shmsg::Endpoint::Unix(addr) | shmsg::Endpoint::Seqpacket(addr) => {
            addr.to_string().trim_start_matches('@').to_owned()
        }
        other => panic!("{other} has no abstract name"),
    }
}

/// The socket type of an endpoint's listener.
pub fn kind_of(endpoint: &str) -> SocketType {
    if endpoint.starts_with("unix:") {
        SocketType::STREAM
    } else {
        SocketType::SEQPACKET
    }
}

/// A rendezvous datagram (see `src/endpoint/shm.rs`): the magic, version
/// 2, `code` and `value`. A hello's code is the endpoint kind (1 `shm:`, 2
/// `mpsc:`) and its value the largest reply wanted; an answer's code 0 is
/// "the rings follow"; an acknowledgement is code 0.
pub fn rdv(code: u32, value: u64) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(b"shmsg\0sm");
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&code.to_le_bytes());
    bytes[16..].copy_from_slice(&value.to_le_bytes());
    bytes
}

/// Sends `bytes` with the descriptors `fds` (up to 128) attached.
pub fn send_with_fds(
    socket: &OwnedFd,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> rustix::io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(128))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
}

/// One datagram (up to 64 bytes) and its descriptors, waiting at most
/// `wait`; `None` at end of stream or if nothing came.
pub fn recv_with_fds(socket: &OwnedFd, wait: Duration) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    rustix::net::sockopt::set_socket_timeout(
        socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(wait),
    )
    .unwrap();
    let mut bytes = [0u8; 64];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = match rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut bytes)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    ) {
        Ok(received) => received,
        Err(Errno::CONNRESET | Errno::AGAIN) => return None,
        Err(e) => panic!("recvmsg: {e}"),
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    if received.bytes == 0 {
        return None;
    }
    Some((bytes[..received.bytes].to_vec(), fds))
}

/// A socket of `kind` bound to the abstract name `name` and listening: a
/// fake listener.
pub fn listen_abstract(name: &str, kind: SocketType) -> OwnedFd {
    let fd =
        rustix::net::socket_with(AddressFamily::UNIX, kind, SocketFlags::CLOEXEC, None).unwrap();
    let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).unwrap();
    rustix::net::bind(&fd, &addr).unwrap();
    rustix::net::listen(&fd, 8).unwrap();
    fd
}
