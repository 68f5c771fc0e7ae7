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
//!
//! (This file runs past 600 lines because it is one idea: the wire format,
//! the size limits and the three handles that share them, most of it docs.)

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags, Shutdown, SocketFlags,
    SocketType,
};

use super::frame::{HELLO_LEN, Hello};
use super::unix::{self, SocketKind, UnixAddr};
use crate::channel::{Receiver, Sender};
use crate::error::{Error, Result};
use crate::options::Deadline;

/// Kind byte of a datagram that carries a message.
const KIND_MESSAGE: u8 = 0;
/// Kind byte of the hello datagram.
const KIND_HELLO: u8 = 1;
/// Bytes of the kind trailer on every datagram.
const TRAILER_LEN: usize = 1;
/// `unix_dgram_sendmsg` refuses datagrams longer than `sk_sndbuf - 32`.
const SNDBUF_OVERHEAD: usize = 32;
/// The longest datagram (payload and kind byte) we send or accept: above
/// about 4 MiB the kernel cannot allocate a datagram's linear part.
pub const MAX_DATAGRAM: usize = 4 << 20;
/// Messages per `sendmmsg` (the kernel's cap on its vector, `UIO_MAXIOV`).
const BATCH_MESSAGES: usize = 1024;

/// A message channel over a connected `SOCK_SEQPACKET` socket.
#[derive(Debug)]
pub struct SeqpacketChannel {
    fd: OwnedFd,
    /// The largest message we accept (what our hello said).
    max_message: usize,
    /// The largest message we send: the peer's maximum, capped by our
    /// datagram limit.
    send_limit: usize,
}

/// Raises `fd`'s send buffer toward a datagram of `want` payload bytes and
/// returns the longest payload one datagram of ours can carry.
fn datagram_limit(fd: BorrowedFd<'_>, want: usize) -> Result<usize> {
    let cap = MAX_DATAGRAM - TRAILER_LEN;
    let want = want.min(cap);
    let limit = |sndbuf: usize| {
        sndbuf
            .saturating_sub(SNDBUF_OVERHEAD + TRAILER_LEN)
            .min(cap)
    };
    let read = || {
        rustix::net::sockopt::socket_send_buffer_size(fd)
            .map_err(|e| Error::io("cannot read the socket's send buffer size", e))
    };
    let sndbuf = read()?;
    if limit(sndbuf) >= want {
        return Ok(limit(sndbuf));
    }
    // The kernel doubles the request (for its bookkeeping), capped at
    // `net.core.wmem_max`: asking for one datagram's worth leaves room for
    // two in flight.
    let request = want + TRAILER_LEN + SNDBUF_OVERHEAD;
    let set = |size: usize| {
        rustix::net::sockopt::set_socket_send_buffer_size(fd, size)
            .map_err(|e| Error::io("cannot raise the socket's send buffer size", e))
    };
    set(request)?;
    let raised = read()?;
    if raised < sndbuf {
        // `wmem_max` below the default: the request lowered the buffer.
        set(sndbuf / 2)?;
        return Ok(limit(read()?));
    }
    Ok(limit(raised))
}

/// Maps a send error to the crate's error for a `len`-byte message.
fn send_error(error: Errno, len: usize, send_limit: usize) -> Error {
    match error {
        Errno::PIPE | Errno::CONNRESET | Errno::CONNREFUSED | Errno::NOTCONN => Error::Disconnected,
        Errno::MSGSIZE => Error::MessageTooLarge {
            len,
            max: send_limit,
        },
        Errno::NOBUFS | Errno::NOMEM => Error::io(
            format!("the kernel cannot allocate a datagram of {len} bytes now"),
            error,
        ),
        other => Error::io("cannot send on the seqpacket socket", other),
    }
}

/// Waits for `fd` to be writable (`out`) or readable until `deadline`;
/// `Ok(false)` if it passed (at once for [`Deadline::Now`]).
fn wait_ready(fd: BorrowedFd<'_>, deadline: Deadline, out: bool) -> Result<bool> {
    let timeout = match deadline.remaining() {
        Some(Duration::ZERO) => return Ok(false),
        left => left,
    };
    let ready = if out {
        unix::poll_out(fd, timeout)
    } else {
        unix::poll_in(fd, timeout)
    };
    ready.map_err(|e| Error::io("cannot poll the seqpacket socket", e))
}

fn invalid_data(what: String) -> Error {
    Error::io(
        "the peer broke the seqpacket protocol",
        io::Error::new(io::ErrorKind::InvalidData, what),
    )
}

/// Datagrams up to this size (trailer included) are sent from one buffer.
const SMALL_DATAGRAM: usize = 512;

/// Sends `payload` with the `kind` trailer as one datagram (one
/// `send` or `sendmsg`); [`Error::Full`] when it would wait past `deadline`.
fn send_datagram(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    kind: u8,
    send_limit: usize,
    deadline: Deadline,
) -> Result<()> {
    let trailer = [kind];
    let slices = [IoSlice::new(payload), IoSlice::new(&trailer)];
    // A small datagram goes out from one contiguous buffer with `send`,
    // which costs the kernel less than a two-slice `sendmsg`.
    let mut small = [0u8; SMALL_DATAGRAM];
    let contiguous = payload.len() < SMALL_DATAGRAM;
    if contiguous {
        small[..payload.len()].copy_from_slice(payload);
        small[payload.len()] = kind;
    }
    let mut flags = SendFlags::NOSIGNAL;
    if !matches!(deadline, Deadline::Never) {
        flags |= SendFlags::DONTWAIT;
    }
    loop {
        let sent = if contiguous {
            rustix::net::send(fd, &small[..payload.len() + TRAILER_LEN], flags)
        } else {
            rustix::net::sendmsg(fd, &slices, &mut SendAncillaryBuffer::default(), flags)
        };
        match sent {
            Ok(n) if n == payload.len() + TRAILER_LEN => return Ok(()),
            Ok(n) => {
                return Err(Error::io(
                    format!(
                        "the kernel took {n} of {} bytes of a datagram",
                        payload.len() + TRAILER_LEN
                    ),
                    io::Error::from(io::ErrorKind::WriteZero),
                ));
            }
            Err(Errno::INTR) => {}
            // A non-blocking descriptor (given to `handshake`) or a
            // deadline: wait for room.
            Err(Errno::AGAIN) => {
                if !wait_ready(fd, deadline, true)? {
                    return Err(Error::Full);
                }
            }
            Err(e) => return Err(send_error(e, payload.len(), send_limit)),
        }
    }
}

/// Sends one message, refusing it before any system call if it exceeds
/// `send_limit`.
fn send_message(
    fd: BorrowedFd<'_>,
    send_limit: usize,
    message: &[u8],
    deadline: Deadline,
) -> Result<()> {
    if message.len() > send_limit {
        return Err(Error::MessageTooLarge {
            len: message.len(),
            max: send_limit,
        });
    }
    send_datagram(fd, message, KIND_MESSAGE, send_limit, deadline)
}

/// Sends `messages` in order with `sendmmsg`, [`BATCH_MESSAGES`] per call.
fn send_batch<M: AsRef<[u8]>>(fd: BorrowedFd<'_>, send_limit: usize, messages: &[M]) -> Result<()> {
    if let Some(m) = messages.iter().find(|m| m.as_ref().len() > send_limit) {
        return Err(Error::MessageTooLarge {
            len: m.as_ref().len(),
            max: send_limit,
        });
    }
    let trailer = [KIND_MESSAGE];
    for chunk in messages.chunks(BATCH_MESSAGES) {
        let slices: Vec<[IoSlice<'_>; 2]> = chunk
            .iter()
            .map(|m| [IoSlice::new(m.as_ref()), IoSlice::new(&trailer)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = chunk
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut headers: Vec<MMsgHdr<'_>> = slices
            .iter()
            .zip(controls.iter_mut())
            .map(|(slices, control)| MMsgHdr::new(slices, control))
            .collect();
        let mut sent = 0;
        while sent < headers.len() {
            match rustix::net::sendmmsg(fd, &mut headers[sent..], SendFlags::NOSIGNAL) {
                Ok(0) => {
                    return Err(Error::io(
                        "sendmmsg sent nothing",
                        io::Error::from(io::ErrorKind::WriteZero),
                    ));
                }
                Ok(n) => sent += n,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    wait_ready(fd, Deadline::Never, true)?;
                }
                Err(e) => {
                    let len = chunk.get(sent).map_or(0, |m| m.as_ref().len());
                    return Err(send_error(e, len, send_limit));
                }
            }
        }
    }
    Ok(())
}

/// Receives one message into `buf`, replacing its contents.
fn recv_message(
    fd: BorrowedFd<'_>,
    max_message: usize,
    buf: &mut Vec<u8>,
    deadline: Deadline,
) -> Result<usize> {
    buf.clear();
    if buf.capacity() < max_message + TRAILER_LEN {
        buf.reserve_exact(max_message + TRAILER_LEN);
    }
    let len = recv_datagram(fd, buf, deadline)?;
    if len > max_message + TRAILER_LEN {
        buf.clear();
        return Err(Error::MessageTooLarge {
            len: len - TRAILER_LEN,
            max: max_message,
        });
    }
    let kind = buf.pop();
    if kind != Some(KIND_MESSAGE) {
        buf.clear();
        return Err(invalid_data(match kind {
            Some(KIND_HELLO) => "a second hello".to_owned(),
            Some(kind) => format!("a datagram of unknown kind {kind}"),
            None => "an empty datagram".to_owned(),
        }));
    }
    Ok(len - TRAILER_LEN)
}

/// Receives one datagram into `buf`'s spare capacity (appending at most
/// that much) and returns its real length, which is larger than what was
/// stored if it did not fit. [`Error::Disconnected`] at end of stream,
/// [`Error::Empty`] when it would wait past `deadline`.
fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut Vec<u8>, deadline: Deadline) -> Result<usize> {
    let mut flags = RecvFlags::TRUNC;
    if !matches!(deadline, Deadline::Never) {
        flags |= RecvFlags::DONTWAIT;
    }
    let mut reset = false;
    loop {
        match rustix::net::recv(fd, rustix::buffer::spare_capacity(buf), flags) {
            Ok((_, 0)) => return Err(Error::Disconnected),
            Ok((_, len)) => return Ok(len),
            Err(Errno::INTR) => {}
            // The peer closed with our datagrams unread: the kernel reports
            // it once, ahead of the datagrams still queued for us. Deliver
            // those, then end of stream.
            Err(Errno::CONNRESET) if !reset => reset = true,
            Err(Errno::CONNRESET) => return Err(Error::Disconnected),
            Err(Errno::AGAIN) => {
                if !wait_ready(fd, deadline, false)? {
                    return Err(Error::Empty);
                }
            }
            Err(e) => return Err(Error::io("cannot receive on the seqpacket socket", e)),
        }
    }
}

impl SeqpacketChannel {
    /// Exchanges hellos over the connected seqpacket socket `fd` and returns
    /// the channel. We accept messages of up to `max_message` bytes, capped
    /// by our datagram limit (see the module docs); [`Self::max_message`]
    /// says what was advertised. Waits at most `timeout` for the peer's hello.
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
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    /// The largest message we accept (what our hello advertised).
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Sends one message (one `sendmsg`), blocking while the socket is full.
    /// [`Error::MessageTooLarge`] (nothing sent) if it exceeds
    /// [`Self::send_limit`]; [`Error::Disconnected`] if the peer is gone.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Never)
    }

    /// Sends one message if the socket has room now; [`Error::Full`]
    /// (nothing sent) if not.
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        send_message(self.fd.as_fd(), self.send_limit, message, Deadline::Now)
    }

    /// As [`Self::send`], waiting at most `timeout` for room;
    /// [`Error::Timeout`] (nothing sent) if none frees.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        send_timeout(self.fd.as_fd(), self.send_limit, message, timeout)
    }

    /// Sends `messages` in order, one `sendmmsg` per 1024 messages (the
    /// kernel may take fewer per call; the rest follow), blocking while the
    /// socket is full. Nothing is sent if any message exceeds
    /// [`Self::send_limit`]. On another error (the peer gone), a prefix of
    /// the batch may have been sent.
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        send_batch(self.fd.as_fd(), self.send_limit, messages)
    }

    /// Receives the next message into `buf` (replacing its contents), blocking
    /// until one arrives; returns its length. [`Error::Disconnected`] once
    /// the peer has closed and every message it sent has been received.
    ///
    /// `buf` is grown once to [`Self::max_message`] + 1 bytes of capacity
    /// and reused; the kernel writes the message straight into it.
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Never)
    }

    /// Receives the next message if one has arrived; [`Error::Empty`] if not.
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        recv_message(self.fd.as_fd(), self.max_message, buf, Deadline::Now)
    }

    /// As [`Self::recv`], waiting at most `timeout`; [`Error::Timeout`] if
    /// nothing arrives.
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        recv_timeout(self.fd.as_fd(), self.max_message, buf, timeout)
    }

    /// The two halves, to use from different threads: the descriptor is
    /// duplicated. Dropping the sender shuts the socket down for writing, so
    /// the peer sees [`Error::Disconnected`] even while our receiver lives.
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

fn send_timeout(
    fd: BorrowedFd<'_>,
    send_limit: usize,
    message: &[u8],
    timeout: Duration,
) -> Result<()> {
    send_message(fd, send_limit, message, Deadline::after(timeout)).map_err(|e| match e {
        Error::Full => Error::Timeout,
        other => other,
    })
}

fn recv_timeout(
    fd: BorrowedFd<'_>,
    max_message: usize,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<usize> {
    recv_message(fd, max_message, buf, Deadline::after(timeout)).map_err(|e| match e {
        Error::Empty => Error::Timeout,
        other => other,
    })
}

/// The sending half of a [`SeqpacketChannel`], from [`SeqpacketChannel::split`].
#[derive(Debug)]
pub struct SeqpacketSender {
    fd: OwnedFd,
    send_limit: usize,
}

impl SeqpacketSender {
    /// See [`SeqpacketChannel::send_limit`]. The sending methods are those
    /// of [`Sender`], with the semantics of [`SeqpacketChannel`]'s.
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
}

/// The receiving half of a [`SeqpacketChannel`], from [`SeqpacketChannel::split`].
#[derive(Debug)]
pub struct SeqpacketReceiver {
    fd: OwnedFd,
    max_message: usize,
}

impl SeqpacketReceiver {
    /// See [`SeqpacketChannel::max_message`]. The receiving methods are
    /// those of [`Receiver`], with the semantics of [`SeqpacketChannel`]'s.
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
}

impl Sender for SeqpacketChannel {
    // The sending side's maximum is what the peer accepts.
    #[allow(clippy::misnamed_getters)]
    fn max_message(&self) -> usize {
        self.send_limit
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        SeqpacketChannel::try_send(self, message)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        SeqpacketChannel::send(self, message)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        SeqpacketChannel::send_timeout(self, message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        SeqpacketChannel::send_batch(self, messages)
    }
}

impl Receiver for SeqpacketChannel {
    fn max_message(&self) -> usize {
        self.max_message
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        SeqpacketChannel::try_recv(self, buf)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        SeqpacketChannel::recv(self, buf)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        SeqpacketChannel::recv_timeout(self, buf, timeout)
    }
}

impl AsFd for SeqpacketChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
