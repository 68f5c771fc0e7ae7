//! The wire format of a seqpacket channel: one datagram per message with
//! its kind byte, the datagram limit, and the system calls that send and
//! receive them (shared by [`SeqpacketChannel`](super::SeqpacketChannel) and
//! its halves).

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::error::{Error, Result};
use crate::msg::unix;
use crate::options::Deadline;

/// Kind byte of a datagram that carries a message.
pub(super) const KIND_MESSAGE: u8 = 0;
/// Kind byte of the hello datagram.
pub(super) const KIND_HELLO: u8 = 1;
/// Bytes of the kind trailer on every datagram.
pub(super) const TRAILER_LEN: usize = 1;
/// `unix_dgram_sendmsg` refuses datagrams longer than `sk_sndbuf - 32`.
pub(super) const SNDBUF_OVERHEAD: usize = 32;
/// The longest datagram (payload and kind byte) we send or accept: above
/// about 4 MiB the kernel cannot allocate a datagram's linear part.
pub const MAX_DATAGRAM: usize = 4 << 20;
/// Messages per `sendmmsg` (the kernel's cap on its vector, `UIO_MAXIOV`).
pub(super) const BATCH_MESSAGES: usize = 1024;

/// Raises `fd`'s send buffer toward a datagram of `want` payload bytes and
/// returns the longest payload one datagram of ours can carry.
pub(super) fn datagram_limit(fd: BorrowedFd<'_>, want: usize) -> Result<usize> {
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
pub(super) fn send_error(error: Errno, len: usize, send_limit: usize) -> Error {
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
pub(super) const SMALL_DATAGRAM: usize = 512;

/// Sends `payload` with the `kind` trailer as one datagram (one
/// `send` or `sendmsg`); [`Error::Full`] when it would wait past `deadline`.
pub(super) fn send_datagram(
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
pub(super) fn send_message(
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
pub(super) fn send_batch<M: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    send_limit: usize,
    messages: &[M],
) -> Result<()> {
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
pub(super) fn recv_message(
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
pub(super) fn recv_datagram(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    deadline: Deadline,
) -> Result<usize> {
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

pub(super) fn send_timeout(
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

pub(super) fn recv_timeout(
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
