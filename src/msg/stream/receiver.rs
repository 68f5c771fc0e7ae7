//! The receiving half of a stream channel: a [`Decoder`] that takes as
//! many frames per `read` as the kernel has, and large payloads read
//! straight into the caller's buffer.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::net::Shutdown;

use super::sender::is_socket;
use super::{expired, poll_fd, stream_error};
use crate::error::{Error, Result};
use crate::msg::frame::{self, Decoder, HELLO_LEN, Hello};
use crate::options::Deadline;

/// Payloads at least this long are read straight into the caller's buffer
/// once their header has arrived, rather than through the decoder's.
const DIRECT_FRAME: usize = 64 << 10;

/// The receiving half of a stream channel.
///
/// ```
/// # use std::os::unix::net::UnixStream;
/// # use std::time::Duration;
/// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
/// # let (a, b) = UnixStream::pair().unwrap();
/// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
/// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
/// # let mut buf: Vec<u8> = Vec::new();
/// tx.send(b"frames")?;
/// tx.send(b"in order")?;
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"frames");
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"in order");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct StreamReceiver {
    fd: OwnedFd,
    decoder: Decoder,
    socket: bool,
    /// A large frame a deadline interrupted: its announced payload length
    /// and the payload bytes received so far, in the allocation they were
    /// read into. The next receive resumes it. Kept here, not pushed back
    /// into the decoder, so that the bytes are neither copied again nor
    /// held twice.
    partial: Option<(usize, Vec<u8>)>,
}

impl StreamReceiver {
    /// A receiver reading frames of up to `max_message` bytes from `fd` (a
    /// socket or the reading end of a pipe), after the hellos.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert_eq!(rx.max_message(), 1 << 20);
    /// # let _ = tx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new(fd: OwnedFd, max_message: usize) -> Result<StreamReceiver> {
        Ok(StreamReceiver {
            socket: is_socket(fd.as_fd())?,
            fd,
            decoder: Decoder::new(max_message)?,
            partial: None,
        })
    }

    /// The largest message this side accepts.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert_eq!(rx.max_message(), 1 << 20);
    /// # let _ = tx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.decoder.max_message()
    }

    /// Bytes this receiver holds allocated between calls: the decoder's
    /// buffer and an interrupted large frame's (for checking its memory
    /// bound in tests).
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send(&[1; 100])?;
    /// rx.recv(&mut buf)?;
    /// // A read's worth, whatever the maximum message size.
    /// assert!(rx.buffered_capacity() < 1 << 20);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[doc(hidden)]
    pub fn buffered_capacity(&self) -> usize {
        self.decoder.capacity()
            + self
                .partial
                .as_ref()
                .map_or(0, |(_, bytes)| bytes.capacity())
    }

    /// Receives the next message into `buf` (replacing its contents), blocking
    /// until one arrives; returns its length.
    ///
    /// A message is never returned in part. When the deadline of
    /// [`StreamReceiver::recv_timeout`] or [`StreamReceiver::try_recv`]
    /// passes in the middle of a large message, the receiver keeps the bytes
    /// so far for the next call, in the allocation they were read into
    /// (which may be `buf`'s), and leaves `buf` empty.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send(b"last")?;
    /// drop(tx);
    /// assert_eq!(rx.recv(&mut buf)?, 4);
    /// assert!(matches!(rx.recv(&mut buf), Err(shmsg::Error::Disconnected)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_within(buf, Deadline::Never)
    }

    /// As [`StreamReceiver::recv`], waiting at most `timeout`.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(rx.recv_timeout(&mut buf, Duration::from_millis(1)), Err(shmsg::Error::Timeout)));
    /// # let _ = tx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_within(buf, Deadline::after(timeout))
    }

    /// Receives the next message if one has arrived; [`Error::Empty`] if not.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(rx.try_recv(&mut buf), Err(shmsg::Error::Empty)));
    /// # let _ = tx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_within(buf, Deadline::Now)
    }

    fn recv_within(&mut self, buf: &mut Vec<u8>, deadline: Deadline) -> Result<usize> {
        if let Some((len, bytes)) = self.partial.take() {
            // The decoder is empty: it gave this frame's first bytes away.
            if buf.capacity() >= bytes.capacity() {
                buf.clear();
                buf.extend_from_slice(&bytes);
            } else {
                *buf = bytes;
            }
            return self.recv_direct(buf, len, deadline);
        }
        loop {
            if let Some(payload) = self.decoder.next_frame()? {
                buf.clear();
                buf.extend_from_slice(payload);
                return Ok(payload.len());
            }
            if let Some(len) = self.decoder.take_partial_frame(DIRECT_FRAME, buf) {
                return self.recv_direct(buf, len, deadline);
            }
            // A blocking receive reads at once (one system call per message
            // when data is waiting); the others poll first.
            if !matches!(deadline, Deadline::Never)
                && !poll_fd(self.fd.as_fd(), PollFlags::IN, deadline)?
            {
                return Err(expired(deadline, Error::Empty));
            }
            self.read_more(deadline)?;
        }
    }

    /// Reads the rest of a large frame's payload straight into `buf`, which
    /// holds its first bytes, growing `buf` as the bytes arrive (never to
    /// the announced length at once). If `deadline` passes first, or the
    /// read fails, the bytes are kept in `partial` for the next call, and
    /// `buf` is left empty.
    fn recv_direct(&mut self, buf: &mut Vec<u8>, len: usize, deadline: Deadline) -> Result<usize> {
        let result = loop {
            if buf.len() >= len {
                break Ok(());
            }
            frame::payload_read_space(buf, len);
            if !matches!(deadline, Deadline::Never) {
                match poll_fd(self.fd.as_fd(), PollFlags::IN, deadline) {
                    Ok(true) => {}
                    Ok(false) => break Err(expired(deadline, Error::Empty)),
                    Err(error) => break Err(error),
                }
            }
            match rustix::io::read(&self.fd, rustix::buffer::spare_capacity(buf)) {
                Ok(0) => {
                    break Err(Error::TruncatedFrame {
                        missing: len - buf.len(),
                    });
                }
                Ok(_) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => {
                    break Err(match stream_error("cannot receive", e.into()) {
                        Error::Disconnected => Error::TruncatedFrame {
                            missing: len - buf.len(),
                        },
                        other => other,
                    });
                }
            }
        };
        match result {
            Ok(()) => {
                // The read may have taken bytes of the next frames too.
                if buf.len() > len {
                    self.decoder.push(&buf[len..]);
                    buf.truncate(len);
                }
                Ok(len)
            }
            Err(Error::TruncatedFrame { missing }) => {
                buf.clear();
                Err(Error::TruncatedFrame { missing })
            }
            Err(error) => {
                self.partial = Some((len, std::mem::take(buf)));
                Err(error)
            }
        }
    }

    /// One `read` into the decoder's buffer.
    fn read_more(&mut self, deadline: Deadline) -> Result<()> {
        let space = self.decoder.read_space();
        match rustix::io::read(&self.fd, space) {
            Ok(0) => {
                self.decoder.finish()?;
                Err(Error::Disconnected)
            }
            Ok(n) => {
                self.decoder.commit(n);
                Ok(())
            }
            Err(rustix::io::Errno::INTR) => Ok(()),
            // A descriptor someone made non-blocking: wait, then read again.
            Err(rustix::io::Errno::AGAIN) => {
                if poll_fd(self.fd.as_fd(), PollFlags::IN, deadline)? {
                    Ok(())
                } else {
                    Err(expired(deadline, Error::Empty))
                }
            }
            Err(e) => Err(match stream_error("cannot receive", e.into()) {
                // A reset (a Unix peer that closed with our bytes unread, a
                // TCP RST) inside a frame is a truncation.
                Error::Disconnected => self.decoder.finish().err().unwrap_or(Error::Disconnected),
                other => other,
            }),
        }
    }

    /// Reads the peer's hello, waiting at most until `deadline`.
    pub(super) fn read_hello(&mut self, deadline: Deadline) -> Result<Hello> {
        let mut hello = [0u8; HELLO_LEN];
        let mut got = 0;
        while got < HELLO_LEN {
            if !poll_fd(self.fd.as_fd(), PollFlags::IN, deadline)? {
                return Err(Error::Timeout);
            }
            match rustix::io::read(&self.fd, &mut hello[got..]) {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(stream_error("cannot receive the hello", e.into())),
            }
        }
        Hello::decode(&hello)
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        if self.socket {
            // Best effort: tells a Unix peer's sender that no one reads.
            let _ = rustix::net::shutdown(&self.fd, Shutdown::Read);
        }
    }
}

impl AsFd for StreamReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

receiver_by_inherent_methods!(StreamReceiver);
