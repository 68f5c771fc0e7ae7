//! A message channel over a Unix `SOCK_SEQPACKET` socket, where the kernel
//! keeps message boundaries: each message is one datagram.
//!
//! ## Wire format
//!
//! A datagram is the payload followed by one **kind byte**: `0` for a
//! message, `1` for the hello. The trailer makes every datagram at least one
//! byte long, so a zero-byte read unambiguously means the peer closed (on a
//! seqpacket socket an empty datagram and end-of-stream both read as 0
//! bytes). It sits *after* the payload so that a receive lands the payload
//! at the start of the caller's buffer and stripping the kind byte is a
//! truncation, not a copy. Any other kind is refused with an [`Error::Io`] of
//! kind `InvalidData` (the datagram is consumed; the channel stays usable).
//!
//! The first datagram each side sends is the same 20-byte [`Hello`] that
//! byte streams use (magic, protocol version, the sender's maximum message
//! size) with kind `1`; a wrong magic or version is [`Error::Handshake`]
//! naming the field, a hello of the wrong length or kind is
//! [`Error::Handshake`] with field `"hello length"` or `"hello kind"`.
//!
//! ## Messages larger than a datagram: an error, not fragmentation
//!
//! The kernel charges a datagram to the sender's send buffer until the
//! receiver reads it, and `unix_dgram_sendmsg` refuses one longer than
//! `SO_SNDBUF - 32` bytes with `EMSGSIZE` (checked on this kernel: with the
//! default 212 992-byte buffer, 212 960 bytes pass and 212 961 fail).
//! Above about 4 MiB the kernel also fails to allocate the datagram's
//! linear part (`ENOBUFS`), whatever the buffer. So at set-up each side
//! raises its `SO_SNDBUF` toward its maximum message size (the kernel caps
//! the request at `net.core.wmem_max`, then doubles it; it is never
//! lowered), reads it back, and computes its **datagram limit**:
//! `min(SO_SNDBUF - 32, 4 MiB) - 1` payload bytes. It advertises
//! `min(max_message, datagram limit)` in its hello, and sends at most
//! `min(peer's maximum, own datagram limit)`: a longer message is refused
//! *by the sender* with [`Error::MessageTooLarge`] before anything is sent,
//! and an `EMSGSIZE` from the kernel maps to the same error. Messages are
//! never split: a message is delivered whole or not at all, and the
//! receiver never reassembles. (`SO_RCVBUF` is left alone: `AF_UNIX`
//! datagrams count against the sender's buffer, not the receiver's.)
//!
//! A datagram longer than the receiver's maximum (only a peer bypassing
//! this library sends one) is detected with `MSG_TRUNC` and refused with
//! [`Error::MessageTooLarge`] carrying its real length; it is consumed, and
//! the next receive returns the next datagram.
//!
//! ## System calls
//!
//! A send is one `sendmsg` of two slices (payload, kind byte), or one
//! `send` from a copy for a datagram under 512 bytes, with
//! `MSG_NOSIGNAL`, so a closed peer is [`Error::Disconnected`], never
//! `SIGPIPE`. [`SeqpacketChannel::send_batch`] is one `sendmmsg` per 1024
//! messages. A blocking receive of a waiting datagram is one `recvfrom`
//! into the caller's buffer; `try_` variants add `MSG_DONTWAIT` and make no
//! other call, and timed variants `poll` only when the first attempt would
//! block.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType};

use super::frame::{HELLO_LEN, Hello};
use super::unix::{self, SocketKind, UnixAddr};
use crate::channel::{Interest, Readiness, Receiver, Sender};
use crate::error::{Error, Result};
use crate::options::Deadline;

mod wire;

pub use wire::MAX_DATAGRAM;
use wire::{
    KIND_HELLO, KIND_MESSAGE, TRAILER_LEN, datagram_limit, recv_datagram, recv_message,
    recv_timeout, send_batch, send_datagram, send_message, send_timeout,
};

/// A message channel over a connected `SOCK_SEQPACKET` socket.
///
/// ```
/// use shmsg::msg::seqpacket::SeqpacketChannel;
///
/// let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
/// a.send(b"one datagram")?;
/// a.send(b"")?; // an empty message is a message too
/// let mut buf = Vec::new();
/// assert_eq!(b.recv(&mut buf)?, 12);
/// assert_eq!(b.recv(&mut buf)?, 0);
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct SeqpacketChannel {
    fd: OwnedFd,
    /// The largest message we accept (what our hello said).
    max_message: usize,
    /// The largest message we send: the peer's maximum, capped by our
    /// datagram limit.
    send_limit: usize,
}

impl SeqpacketChannel {
    /// Exchanges hellos over the connected seqpacket socket `fd` and returns
    /// the channel. We accept messages of up to `max_message` bytes, capped
    /// by our datagram limit (see the module docs); [`Self::max_message`]
    /// says what was advertised. Waits at most `timeout` for the peer's hello.
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// use std::time::Duration;
    /// use shmsg::msg::seqpacket::SeqpacketChannel;
    /// use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    ///
    /// let addr = UnixAddr::Abstract(format!("shmsg-doc-sp-{}", std::process::id()).into_bytes());
    /// let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// let client = std::thread::spawn({
    ///     let addr = addr.clone();
    ///     move || -> shmsg::Result<SeqpacketChannel> {
    ///         let fd: OwnedFd = unix::connect(&addr, SocketKind::Seqpacket, Duration::from_secs(10))?;
    ///         SeqpacketChannel::handshake(fd, 1024, Duration::from_secs(10))
    ///     }
    /// });
    /// let mut server = SeqpacketChannel::handshake(listener.accept()?, 1024, Duration::from_secs(10))?;
    /// let mut client = client.join().unwrap()?;
    /// client.send(b"ok")?;
    /// let mut buf = Vec::new();
    /// server.recv(&mut buf)?;
    /// assert_eq!(buf, b"ok");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn handshake(fd: OwnedFd, max_message: usize, timeout: Duration) -> Result<Self> {
        Self::handshake_until(fd, max_message, Deadline::after(timeout))
    }

    /// As [`Self::handshake`], waiting for the peer's hello until `deadline`.
    fn handshake_until(fd: OwnedFd, max_message: usize, deadline: Deadline) -> Result<Self> {
        let (mut channel, limit) = Self::prepare(fd, max_message)?;
        if let Err(e) = channel.send_hello(deadline) {
            // A listener that refused us may have closed already: its
            // refusal is still waiting to be read.
            return Err(match channel.recv_hello(limit, Deadline::Now) {
                Err(refused @ Error::PeerRefused(_)) => refused,
                _ => e,
            });
        }
        channel.recv_hello(limit, deadline)?;
        Ok(channel)
    }

    /// The listener's side of a handshake on `fd`, whose peer hello is
    /// waiting (the socket polled readable): reads it, then sends ours.
    /// [`Error::Timeout`] if nothing is waiting after all.
    pub(crate) fn accepted(fd: OwnedFd, max_message: usize) -> Result<Self> {
        let (mut channel, limit) = Self::prepare(fd, max_message)?;
        channel.recv_hello(limit, Deadline::Now)?;
        channel.send_hello(Deadline::Now)?;
        Ok(channel)
    }

    /// Tells the peer on `fd` that the listener refuses it, in place of a
    /// hello (best effort: the peer may be gone).
    pub(crate) fn refuse(fd: BorrowedFd<'_>) {
        let _ = send_datagram(fd, &Hello::refusal(), KIND_HELLO, HELLO_LEN, Deadline::Now);
    }

    /// Two connected channels (a `socketpair`), each accepting messages of
    /// up to `max_message` bytes (capped by the datagram limit): for tests,
    /// and for a parent and the child it spawns.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// b.send(b"back")?;
    /// a.recv(&mut buf)?;
    /// assert_eq!(buf, b"back");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn pair(max_message: usize) -> Result<(Self, Self)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("cannot create a seqpacket socket pair", e))?;
        let (mut a, a_limit) = Self::prepare(a, max_message)?;
        let (mut b, b_limit) = Self::prepare(b, max_message)?;
        // A fresh socket has room for a hello: neither send blocks, and
        // each hello is waiting when the other side reads.
        a.send_hello(Deadline::Never)?;
        b.send_hello(Deadline::Never)?;
        a.recv_hello(a_limit, Deadline::Now)?;
        b.recv_hello(b_limit, Deadline::Now)?;
        Ok((a, b))
    }

    /// Connects to a seqpacket listener at `addr` and exchanges hellos,
    /// waiting at most `timeout` in all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::msg::seqpacket::SeqpacketChannel;
    /// use shmsg::msg::unix::{SocketKind, UnixAddr, UnixListener};
    ///
    /// let addr = UnixAddr::Abstract(format!("shmsg-doc-sp-connect-{}", std::process::id()).into_bytes());
    /// let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// let server = std::thread::spawn(move || -> shmsg::Result<Vec<u8>> {
    ///     let mut channel = SeqpacketChannel::handshake(listener.accept()?, 1024, Duration::from_secs(10))?;
    ///     let mut buf = Vec::new();
    ///     channel.recv(&mut buf)?;
    ///     Ok(buf)
    /// });
    /// let mut client = SeqpacketChannel::connect(&addr, 1024, Duration::from_secs(10))?;
    /// client.send(b"hi")?;
    /// assert_eq!(server.join().unwrap()?, b"hi");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn connect(addr: &UnixAddr, max_message: usize, timeout: Duration) -> Result<Self> {
        let deadline = Deadline::after(timeout);
        let fd = unix::connect_until(addr, SocketKind::Seqpacket, deadline)?;
        Self::handshake_until(fd, max_message, deadline)
    }

    /// Sizes the socket's buffer; returns the channel (its `send_limit`
    /// not yet known) and our datagram limit.
    fn prepare(fd: OwnedFd, max_message: usize) -> Result<(Self, usize)> {
        let limit = datagram_limit(fd.as_fd(), max_message)?;
        let channel = SeqpacketChannel {
            fd,
            max_message: max_message.min(limit),
            send_limit: 0,
        };
        Ok((channel, limit))
    }

    fn send_hello(&self, deadline: Deadline) -> Result<()> {
        let hello = Hello::new(self.max_message).encode();
        send_datagram(self.fd.as_fd(), &hello, KIND_HELLO, HELLO_LEN, deadline).map_err(|e| match e
        {
            Error::Full => Error::Timeout,
            other => other,
        })
    }

    fn recv_hello(&mut self, datagram_limit: usize, deadline: Deadline) -> Result<()> {
        // Room for one byte more than a hello, to see a longer datagram
        // (MSG_TRUNC gives its real length).
        let mut buf = Vec::with_capacity(HELLO_LEN + TRAILER_LEN + 1);
        let len = recv_datagram(self.fd.as_fd(), &mut buf, deadline).map_err(|e| match e {
            Error::Empty => Error::Timeout,
            other => other,
        })?;
        if len != HELLO_LEN + TRAILER_LEN {
            return Err(Error::Handshake {
                field: "hello length",
                expected: (HELLO_LEN + TRAILER_LEN) as u64,
                found: len as u64,
            });
        }
        let kind = buf.get(HELLO_LEN).copied().unwrap_or(KIND_MESSAGE);
        if kind != KIND_HELLO {
            return Err(Error::Handshake {
                field: "hello kind",
                expected: u64::from(KIND_HELLO),
                found: u64::from(kind),
            });
        }
        let hello: &[u8; HELLO_LEN] = buf
            .get(..HELLO_LEN)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(Error::Disconnected)?;
        let peer = Hello::decode(hello)?;
        self.send_limit = Hello::send_limit(&peer).min(datagram_limit);
        Ok(())
    }

    /// The largest message the peer accepts and our socket can carry: a
    /// longer one is refused with [`Error::MessageTooLarge`].
    ///
    /// ```
    /// use shmsg::msg::seqpacket::SeqpacketChannel;
    ///
    /// let (a, b) = SeqpacketChannel::pair(1000)?;
    /// assert_eq!(a.send_limit(), b.max_message());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    /// The largest message we accept (what our hello advertised).
    ///
    /// ```
    /// use shmsg::msg::seqpacket::SeqpacketChannel;
    ///
    /// let (a, _b) = SeqpacketChannel::pair(1000)?;
    /// assert_eq!(a.max_message(), 1000);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Sends one message (one `sendmsg`), blocking while the socket is full.
    /// [`Error::MessageTooLarge`] (nothing sent) if it exceeds
    /// [`Self::send_limit`]; [`Error::Disconnected`] if the peer is gone.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"x")?;
    /// assert!(matches!(a.send(&vec![0; (1 << 16) + 1]), Err(shmsg::Error::MessageTooLarge { .. })));
    /// b.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Never)
    }

    /// Sends one message if the socket has room now; [`Error::Full`]
    /// (nothing sent) if not.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// // Nobody reads: the socket fills up, and then nothing more is sent.
    /// while a.try_send(&[0; 1000]).is_ok() {}
    /// assert!(matches!(a.try_send(b"more"), Err(shmsg::Error::Full)));
    /// # let _ = (b, buf);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Now)
    }

    /// As [`Self::send`], waiting at most `timeout` for room;
    /// [`Error::Timeout`] (nothing sent) if none frees.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send_timeout(b"y", Duration::from_secs(1))?;
    /// b.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        send_timeout(self.fd.as_fd(), self.send_limit, message, timeout)
    }

    /// Sends `messages` in order, one `sendmmsg` per 1024 messages (the
    /// kernel may take fewer per call; the rest follow), blocking while the
    /// socket is full. Nothing is sent if any message exceeds
    /// [`Self::send_limit`]. On another error (the peer gone), a prefix of
    /// the batch may have been sent.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send_batch(&[&b"1"[..], b"22", b"333"])?;
    /// for len in 1..=3 {
    ///     assert_eq!(b.recv(&mut buf)?, len);
    /// }
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        send_batch(self.fd.as_fd(), self.send_limit, messages)
    }

    /// Receives the next message into `buf` (replacing its contents), blocking
    /// until one arrives; returns its length. [`Error::Disconnected`] once
    /// the peer has closed and every message it sent has been received.
    ///
    /// `buf` is grown once to [`Self::max_message`] + 1 bytes of capacity
    /// and reused; the kernel writes the message straight into it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"bye")?;
    /// drop(a);
    /// assert_eq!(b.recv(&mut buf)?, 3);
    /// assert!(matches!(b.recv(&mut buf), Err(shmsg::Error::Disconnected)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Never)
    }

    /// Receives the next message if one has arrived; [`Error::Empty`] if not.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(b.try_recv(&mut buf), Err(shmsg::Error::Empty)));
    /// a.send(b"z")?;
    /// assert_eq!(b.try_recv(&mut buf)?, 1);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Now)
    }

    /// As [`Self::recv`], waiting at most `timeout`; [`Error::Timeout`] if
    /// nothing arrives.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(b.recv_timeout(&mut buf, Duration::from_millis(1)), Err(shmsg::Error::Timeout)));
    /// # let _ = a;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        recv_timeout(self.fd.as_fd(), self.max_message, buf, timeout)
    }

    /// The two halves, to use from different threads: the descriptor is
    /// duplicated. Dropping the sender shuts the socket down for writing, so
    /// the peer sees [`Error::Disconnected`] even while our receiver lives.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// use shmsg::{Receiver, Sender};
    /// let (mut tx, mut rx) = a.split()?;
    /// let writer = std::thread::spawn(move || tx.send(b"from a thread"));
    /// b.send(b"to the other")?;
    /// rx.recv(&mut buf)?;
    /// writer.join().unwrap()?;
    /// b.recv(&mut buf)?;
    /// assert_eq!(buf, b"from a thread");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn split(self) -> Result<(SeqpacketSender, SeqpacketReceiver)> {
        let read = self
            .fd
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the seqpacket socket", e))?;
        Ok((
            SeqpacketSender {
                fd: self.fd,
                send_limit: self.send_limit,
            },
            SeqpacketReceiver {
                fd: read,
                max_message: self.max_message,
            },
        ))
    }
}

/// The sending half of a [`SeqpacketChannel`], from [`SeqpacketChannel::split`].
///
/// ```
/// # use std::time::Duration;
/// # use shmsg::msg::seqpacket::SeqpacketChannel;
/// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
/// # let mut buf: Vec<u8> = Vec::new();
/// use shmsg::Sender;
/// let (mut tx, _rx) = a.split()?;
/// tx.send(b"half")?;
/// drop(tx); // shuts down writing: the peer sees the end
/// b.recv(&mut buf)?;
/// assert!(matches!(b.recv(&mut buf), Err(shmsg::Error::Disconnected)));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct SeqpacketSender {
    fd: OwnedFd,
    send_limit: usize,
}

impl SeqpacketSender {
    /// See [`SeqpacketChannel::send_limit`]. The sending methods are those
    /// of [`Sender`], with the semantics of [`SeqpacketChannel`]'s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// let limit = a.send_limit();
    /// let (tx, _rx) = a.split()?;
    /// assert_eq!(tx.send_limit(), limit);
    /// # let _ = (b, buf);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }
}

impl Drop for SeqpacketSender {
    fn drop(&mut self) {
        // The receiving half holds a duplicate of the descriptor: without
        // this, the peer would not see the end of our messages. Best
        // effort: the peer may be gone already.
        let _ = rustix::net::shutdown(&self.fd, Shutdown::Write);
    }
}

impl AsFd for SeqpacketSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Sender for SeqpacketSender {
    fn max_message(&self) -> usize {
        self.send_limit
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Now)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Never)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        send_timeout(self.fd.as_fd(), self.send_limit, message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        send_batch(self.fd.as_fd(), self.send_limit, messages)
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        Some(Readiness::link(self.fd.as_fd(), Interest::Writable))
    }
}

/// The receiving half of a [`SeqpacketChannel`], from [`SeqpacketChannel::split`].
///
/// ```
/// # use std::time::Duration;
/// # use shmsg::msg::seqpacket::SeqpacketChannel;
/// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
/// # let mut buf: Vec<u8> = Vec::new();
/// use shmsg::Receiver;
/// let (_tx, mut rx) = a.split()?;
/// b.send(b"in")?;
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"in");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct SeqpacketReceiver {
    fd: OwnedFd,
    max_message: usize,
}

impl SeqpacketReceiver {
    /// See [`SeqpacketChannel::max_message`]. The receiving methods are
    /// those of [`Receiver`], with the semantics of [`SeqpacketChannel`]'s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::seqpacket::SeqpacketChannel;
    /// # let (mut a, mut b) = SeqpacketChannel::pair(1 << 16)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// let (_tx, rx) = a.split()?;
    /// assert_eq!(rx.max_message(), 1 << 16);
    /// # let _ = (b, buf);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max_message
    }
}

impl AsFd for SeqpacketReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Receiver for SeqpacketReceiver {
    fn max_message(&self) -> usize {
        self.max_message
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Now)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Never)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        recv_timeout(self.fd.as_fd(), self.max_message, buf, timeout)
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        Some(Readiness::link(self.fd.as_fd(), Interest::Readable))
    }
}

// The sending side's maximum is what the peer accepts.
sender_by_inherent_methods!(SeqpacketChannel, max_message: send_limit);
receiver_by_inherent_methods!(SeqpacketChannel);

impl AsFd for SeqpacketChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
