//! Handing a region to another process over a Unix domain socket.
//!
//! An anonymous region (a sealed memfd) has no name to open; its descriptor
//! travels instead, either inherited by a child process or passed over a
//! Unix socket as `SCM_RIGHTS` ancillary data. The receiver validates it like
//! any region ([`Region::from_fd`]: sealed against resizing, header and
//! fingerprint checked) before it maps more than the header.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::error::{Error, Result};
use crate::shm::Region;

/// The one data byte that carries the descriptor (a message with ancillary
/// data must carry at least one byte).
const TAG: u8 = b'R';

impl Region {
    /// Sends this region's descriptor over the connected Unix socket `socket`,
    /// for [`Region::receive_from`] in another process. Both processes then
    /// share the memory; each attaches its own side.
    pub fn send_over(&self, socket: impl AsFd) -> Result<()> {
        let fds = [self.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(Error::io(
                "cannot send the region's descriptor",
                io::Error::other("no room for the descriptor in the control buffer"),
            ));
        }
        rustix::net::sendmsg(
            socket,
            &[IoSlice::new(&[TAG])],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| Error::io("cannot send the region's descriptor", e))?;
        Ok(())
    }

    /// Receives a region sent with [`Region::send_over`] from the connected
    /// Unix socket `socket`, and validates it as [`Region::from_fd`] does.
    ///
    /// [`Error::Disconnected`] if the peer closed the socket first; a message
    /// without exactly one descriptor is [`Error::Io`] (`InvalidData`), and
    /// any descriptors it did carry are closed.
    pub fn receive_from(socket: impl AsFd) -> Result<Region> {
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| Error::io("cannot receive a region's descriptor", e))?;
        if received.bytes == 0 {
            return Err(Error::Disconnected);
        }
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                fds.extend(rights);
            }
        }
        let invalid = |why: &str| {
            Error::io(
                "cannot receive a region's descriptor",
                io::Error::new(io::ErrorKind::InvalidData, why.to_owned()),
            )
        };
        if received.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(invalid("the descriptors were truncated"));
        }
        match (byte[0], fds.len()) {
            (TAG, 1) => Region::from_fd(fds.pop().expect("one descriptor")),
            (TAG, n) => Err(invalid(&format!("expected one descriptor, got {n}"))),
            (other, _) => Err(invalid(&format!("not a region message (byte {other:#x})"))),
        }
    }
}
