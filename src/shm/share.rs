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
use crate::shm::{Region, RegionOptions};

/// The one data byte that carries the descriptor (a message with ancillary
/// data must carry at least one byte).
const TAG: u8 = b'R';

impl Region {
    /// Sends this region's descriptor over the connected Unix socket `socket`,
    /// for [`Region::receive_from`] in another process. Both processes then
    /// share the memory; each attaches its own side.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use std::sync::Arc;
    ///
    /// use shmsg::shm::layout::Geometry;
    /// use shmsg::shm::{Region, spsc};
    ///
    /// let (here, there) = UnixStream::pair().unwrap();
    /// let region = Arc::new(Region::anonymous(Geometry::default())?);
    /// region.send_over(&here)?;
    /// // The receiving end is usually another process.
    /// let received = Arc::new(Region::receive_from(&there)?);
    /// let mut producer = spsc::Producer::attach(&region)?;
    /// let mut consumer = spsc::Consumer::attach(&received)?;
    /// producer.send(b"over the socket")?;
    /// let mut buf = Vec::new();
    /// consumer.recv(&mut buf)?;
    /// assert_eq!(buf, b"over the socket");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    /// Unix socket `socket`, and validates it as [`Region::from_fd`] does,
    /// accepting any geometry and kind: `Region::options().receive_from(socket)`
    /// ([`RegionOptions::receive_from`], which says what can fail).
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    ///
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let (here, there) = UnixStream::pair().unwrap();
    /// let region = Region::anonymous(Geometry::default())?;
    /// region.send_over(&here)?;
    /// let received = Region::receive_from(&there)?;
    /// assert!(received.creator_alive());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn receive_from(socket: impl AsFd) -> Result<Region> {
        Region::options().receive_from(socket)
    }
}

impl RegionOptions {
    /// Receives a region sent with [`Region::send_over`] from the connected
    /// Unix socket `socket`, validates it as [`RegionOptions::from_fd`]
    /// does, and checks it against the geometry and kind if set.
    ///
    /// [`Error::Disconnected`] if the peer closed the socket first; a message
    /// without exactly one descriptor is [`Error::Io`] (`InvalidData`), and
    /// any descriptors it did carry are closed.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    ///
    /// use shmsg::Error;
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let (here, there) = UnixStream::pair().unwrap();
    /// let g = Geometry::new(4096, 100)?;
    /// let region = Region::options().geometry(g).kind(RingKind::Mpsc).anonymous()?;
    /// region.send_over(&here)?;
    /// let received = Region::options().geometry(g).kind(RingKind::Mpsc).receive_from(&there)?;
    /// assert_eq!(received.geometry(), g);
    ///
    /// drop(here);
    /// assert!(matches!(Region::options().receive_from(&there), Err(Error::Disconnected)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn receive_from(&self, socket: impl AsFd) -> Result<Region> {
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
            (TAG, 1) => self.from_fd(fds.pop().expect("one descriptor")),
            (TAG, n) => Err(invalid(&format!("expected one descriptor, got {n}"))),
            (other, _) => Err(invalid(&format!("not a region message (byte {other:#x})"))),
        }
    }
}
