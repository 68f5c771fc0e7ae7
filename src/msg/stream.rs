//! A message channel over a byte stream (a Unix stream socket, TCP, or a pair
//! of pipes), framed by [`super::frame`].
//!
//! Both sides send a [`Hello`] first. A send is one system call (`sendmsg`
//! on a socket, `writev` on a pipe) carrying the frame header and the
//! payload; a batch is one call for up to 512 frames. Receives read into the
//! decoder's buffer, which takes as many small frames per `read` as the
//! kernel has. A large frame's payload is read straight into the caller's
//! buffer, grown as its bytes arrive, never to the length its header
//! announces at once (see [`super::frame`] for the bound); a deadline that
//! passes in its middle keeps the bytes read so far for the next receive.
//!
//! Sends never block inside the kernel: sockets are written with
//! `MSG_DONTWAIT | MSG_NOSIGNAL` and pipes are switched to `O_NONBLOCK` on
//! the writing end, and a full link is waited for with `poll`. So
//! [`StreamSender::try_send`] and [`StreamSender::send_timeout`] are honest:
//! [`Error::Full`] / [`Error::Timeout`] mean nothing of the message was sent.
//! A frame the kernel accepted only in part is finished before the next
//! frame starts (frames never interleave); if the deadline passes first, the
//! rest is kept and sent by the next call, by [`StreamSender::flush`], or
//! when the sender is dropped (which waits for that at most the channel's
//! timeout).
//!
//! A peer that closes the stream is [`Error::Disconnected`] (after every
//! complete frame it sent has been received); one that closes in the middle
//! of a frame is [`Error::TruncatedFrame`]. Dropping a sender shuts the
//! socket down for writing, so the peer sees the end of the stream even while
//! this side's receiver lives on; dropping a receiver shuts it down for
//! reading.
//!
//! Writing to a pipe whose reader is gone raises `SIGPIPE`; Rust programs
//! ignore it by default (the standard library's runtime does), and shmsg
//! reports [`Error::Disconnected`]. A non-Rust host must ignore `SIGPIPE`
//! itself. Sockets are written with `MSG_NOSIGNAL` and never raise it.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{FileType, OFlags};
use rustix::net::{SendAncillaryBuffer, SendFlags, Shutdown};

use super::frame::{self, Decoder, HEADER_LEN, HELLO_LEN, Hello};
use crate::channel::{self, Receiver, Sender};
use crate::error::{Error, Result};
use crate::options::Deadline;

/// Frames per system call in a batch (two slices each, within `IOV_MAX`).
const BATCH_FRAMES: usize = 512;
/// Frames up to this size (header included) are sent from one buffer.
const SMALL_FRAME: usize = 512;
/// Payloads at least this long are read straight into the caller's buffer
/// once their header has arrived, rather than through the decoder's.
const DIRECT_FRAME: usize = 64 << 10;

/// The error for "could not, by `deadline`": `now` for a call that does
/// not wait (`try_*`), [`Error::Timeout`] for one that does.
fn expired(deadline: Deadline, now: Error) -> Error {
    match deadline {
        Deadline::Now => now,
        _ => Error::Timeout,
    }
}

/// Maps the errors that mean "the peer is gone" to [`Error::Disconnected`].
fn stream_error(context: &str, error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => Error::Disconnected,
        _ => Error::io(context, error),
    }
}

/// Polls `fd` for `flags` until it is ready or `deadline` passes; returns
/// whether it is ready (or closed, or failed: the call that follows says
/// which).
fn poll_fd(fd: BorrowedFd<'_>, flags: PollFlags, deadline: Deadline) -> Result<bool> {
    loop {
        let timeout = deadline.remaining();
        let timespec = timeout.map(|t| Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
        match rustix::event::poll(&mut fds, timespec.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("cannot poll the link", e)),
        }
    }
}

/// Where a [`StreamSender`] puts its bytes: the seam between the framing
/// logic and the kernel, so that the models can run the sender over a model
/// link.
pub trait Link {
    /// Hands over a prefix of `slices` without blocking; returns how many
    /// bytes were taken, or an error of kind [`io::ErrorKind::WouldBlock`]
    /// when none could be.
    fn write_nonblocking(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Waits until the link may take more bytes; `false` if `deadline`
    /// passed first. [`StreamSender`] never calls it with [`Deadline::Now`]
    /// (a `try_send` gives up at once instead).
    fn wait_writable(&mut self, deadline: Deadline) -> Result<bool>;

    /// Tells the peer no more bytes will come (the sender is dropped).
    fn close_write(&mut self) {}
}

/// A kernel descriptor as a [`Link`]: a socket or the writing end of a pipe.
#[derive(Debug)]
pub struct FdLink {
    fd: OwnedFd,
    socket: bool,
}

impl FdLink {
    /// Wraps `fd`. A socket is written with `MSG_DONTWAIT | MSG_NOSIGNAL`;
    /// anything else (a pipe) is switched to `O_NONBLOCK`.
    pub fn new(fd: OwnedFd) -> Result<FdLink> {
        let socket = is_socket(fd.as_fd())?;
        if !socket {
            let flags = rustix::fs::fcntl_getfl(&fd)
                .map_err(|e| Error::io("cannot read the descriptor's flags", e))?;
            rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)
                .map_err(|e| Error::io("cannot make the descriptor non-blocking", e))?;
        }
        Ok(FdLink { fd, socket })
    }
}

fn is_socket(fd: BorrowedFd<'_>) -> Result<bool> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Error::io("cannot stat the descriptor", e))?;
    Ok(FileType::from_raw_mode(stat.st_mode) == FileType::Socket)
}

impl Link for FdLink {
    fn write_nonblocking(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let written = if let [one] = slices {
            if self.socket {
                rustix::net::send(&self.fd, one, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
            } else {
                rustix::io::write(&self.fd, one)
            }
        } else if self.socket {
            rustix::net::sendmsg(
                &self.fd,
                slices,
                &mut SendAncillaryBuffer::default(),
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            )
        } else {
            rustix::io::writev(&self.fd, slices)
        };
        Ok(written?)
    }

    fn wait_writable(&mut self, deadline: Deadline) -> Result<bool> {
        poll_fd(self.fd.as_fd(), PollFlags::OUT, deadline)
    }

    fn close_write(&mut self) {
        if self.socket {
            // Best effort: the peer may be gone already.
            let _ = rustix::net::shutdown(&self.fd, Shutdown::Write);
        }
    }
}

impl AsFd for FdLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The sending half of a stream channel.
#[derive(Debug)]
pub struct StreamSender<L: Link = FdLink> {
    link: L,
    /// The peer's maximum message size, from its hello.
    send_limit: usize,
    /// The unsent rest of a frame the kernel accepted only in part.
    pending: Vec<u8>,
    /// How much of `pending` has been sent.
    pending_sent: usize,
    /// How long dropping the sender waits to finish `pending`.
    linger: Duration,
    /// Where a small frame is assembled (kept to reuse its allocation).
    scratch: Vec<u8>,
}

impl<L: Link> StreamSender<L> {
    /// A sender over `link` to a peer that accepts messages of up to
    /// `send_limit` bytes (after the hellos have been exchanged); dropping
    /// it waits at most `linger` to finish a partly sent frame.
    pub fn new(link: L, send_limit: usize, linger: Duration) -> StreamSender<L> {
        StreamSender {
            link,
            send_limit,
            pending: Vec::new(),
            pending_sent: 0,
            linger,
            scratch: Vec::with_capacity(SMALL_FRAME),
        }
    }

    /// The largest message the peer accepts.
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Sends one message, waiting for room as long as it takes: one system
    /// call when the link has room.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.send_frames(&[message], Deadline::Never)
    }

    /// Sends one message if the link has room for some of it now;
    /// [`Error::Full`] with nothing sent if not.
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.send_frames(&[message], Deadline::Now)
    }

    /// Sends one message, waiting at most `timeout` for room;
    /// [`Error::Timeout`] with nothing sent if none came.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.send_frames(&[message], Deadline::after(timeout))
    }

    /// Sends `messages` in order, one system call per 512 messages when the
    /// link has room. Nothing is sent if any message is too large.
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        let messages: Vec<&[u8]> = messages.iter().map(AsRef::as_ref).collect();
        self.send_frames(&messages, Deadline::Never)
    }

    /// Finishes a frame the kernel accepted only in part, waiting as long as
    /// it takes.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_pending(Deadline::Never).map(|_| ())
    }

    /// Sends what is left of a partly sent frame; `false` if `deadline`
    /// passed first.
    fn flush_pending(&mut self, deadline: Deadline) -> Result<bool> {
        while self.pending_sent < self.pending.len() {
            match self
                .link
                .write_nonblocking(&[IoSlice::new(&self.pending[self.pending_sent..])])
            {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => self.pending_sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait_writable(deadline)? {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(stream_error("cannot send", e)),
            }
        }
        self.pending.clear();
        self.pending_sent = 0;
        Ok(true)
    }

    /// Waits for room until `deadline`; `false` if it passed first (at once
    /// for [`Deadline::Now`], without asking the link).
    fn wait_writable(&mut self, deadline: Deadline) -> Result<bool> {
        match deadline {
            Deadline::Now => Ok(false),
            deadline => self.link.wait_writable(deadline),
        }
    }

    /// Sends `messages` as frames. Until the first byte is taken, a passed
    /// `deadline` fails with nothing sent; after it, the frames are finished
    /// by `deadline` or their rest is kept in `pending`.
    fn send_frames(&mut self, messages: &[&[u8]], deadline: Deadline) -> Result<()> {
        // Check every length before anything is sent.
        for message in messages {
            frame::header(message.len(), self.send_limit)?;
        }
        if !self.flush_pending(deadline)? {
            return Err(expired(deadline, Error::Full));
        }
        if let [message] = messages
            && message.len() <= SMALL_FRAME - HEADER_LEN
        {
            // A small frame goes out from one contiguous buffer: a plain
            // `write` / `send` costs the kernel less than a two-slice
            // `writev` / `sendmsg`, which shows in a round trip.
            let mut frame = std::mem::take(&mut self.scratch);
            frame.clear();
            frame.extend_from_slice(&frame::header(message.len(), self.send_limit)?);
            frame.extend_from_slice(message);
            let sent = self.send_slices(&mut [IoSlice::new(&frame)], &[], deadline, false);
            self.scratch = frame;
            return sent;
        }
        let mut headers = Vec::with_capacity(messages.len().min(BATCH_FRAMES));
        let mut taken = false;
        for (i, chunk) in messages.chunks(BATCH_FRAMES).enumerate() {
            headers.clear();
            for message in chunk {
                headers.push(frame::header(message.len(), self.send_limit)?);
            }
            let mut storage: Vec<IoSlice<'_>> = headers
                .iter()
                .zip(chunk)
                .flat_map(|(header, message)| [IoSlice::new(header), IoSlice::new(message)])
                .collect();
            let later = ((i + 1) * BATCH_FRAMES).min(messages.len());
            taken = self
                .send_slices(&mut storage, &messages[later..], deadline, taken)
                .map(|()| true)?;
            if !self.pending.is_empty() {
                // The rest is kept (with every later frame): stop here.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends `slices` (whole frames); `taken` says whether an earlier part
    /// of this call was already taken by the kernel. When `deadline` passes
    /// before the first byte, fails with nothing sent; after it, keeps the
    /// rest and the frames of `later` in `pending`.
    fn send_slices(
        &mut self,
        storage: &mut [IoSlice<'_>],
        later: &[&[u8]],
        deadline: Deadline,
        mut taken: bool,
    ) -> Result<()> {
        let mut slices = storage;
        while !slices.is_empty() {
            match self.link.write_nonblocking(slices) {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => {
                    taken = true;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.wait_writable(deadline)? {
                        continue;
                    }
                    if !taken {
                        return Err(expired(deadline, Error::Full));
                    }
                    self.stash(slices, later);
                    return Ok(());
                }
                Err(e) => return Err(stream_error("cannot send", e)),
            }
        }
        Ok(())
    }

    /// Keeps the unsent `slices` and the frames of `later` for the next call.
    fn stash(&mut self, slices: &[IoSlice<'_>], later: &[&[u8]]) {
        for slice in slices {
            self.pending.extend_from_slice(slice);
        }
        for message in later {
            // Checked by `send_frames` before anything was sent.
            if let Ok(header) = frame::header(message.len(), self.send_limit) {
                self.pending.extend_from_slice(&header);
                self.pending.extend_from_slice(message);
            }
        }
    }
}

impl StreamSender {
    /// Writes our hello as the stream's first bytes (no frame header).
    fn send_hello(&mut self, max_message: usize, deadline: Deadline) -> Result<()> {
        let hello = Hello::new(max_message).encode();
        let mut sent = 0;
        while sent < HELLO_LEN {
            match self.link.write_nonblocking(&[IoSlice::new(&hello[sent..])]) {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait_writable(deadline)? {
                        return Err(Error::Timeout);
                    }
                }
                Err(e) => return Err(stream_error("cannot send the hello", e)),
            }
        }
        Ok(())
    }
}

impl<L: Link> Drop for StreamSender<L> {
    fn drop(&mut self) {
        if self.pending_sent < self.pending.len() {
            // Best effort within the linger time: the peer may be gone.
            let _ = self.flush_pending(Deadline::after(self.linger));
        }
        self.link.close_write();
    }
}

impl<L: Link> Sender for StreamSender<L> {
    fn max_message(&self) -> usize {
        self.send_limit
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        StreamSender::try_send(self, message)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        StreamSender::send(self, message)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        StreamSender::send_timeout(self, message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        channel::check_batch(messages, self.send_limit)?;
        self.send_frames(messages, Deadline::Never)
    }
    fn flush(&mut self) -> Result<()> {
        StreamSender::flush(self)
    }
}

/// The receiving half of a stream channel.
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
    pub fn new(fd: OwnedFd, max_message: usize) -> Result<StreamReceiver> {
        Ok(StreamReceiver {
            socket: is_socket(fd.as_fd())?,
            fd,
            decoder: Decoder::new(max_message)?,
            partial: None,
        })
    }

    /// The largest message this side accepts.
    pub fn max_message(&self) -> usize {
        self.decoder.max_message()
    }

    /// Bytes this receiver holds allocated between calls: the decoder's
    /// buffer and an interrupted large frame's (for checking its memory
    /// bound in tests).
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
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_within(buf, Deadline::Never)
    }

    /// As [`StreamReceiver::recv`], waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_within(buf, Deadline::after(timeout))
    }

    /// Receives the next message if one has arrived; [`Error::Empty`] if not.
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
    fn read_hello(&mut self, deadline: Deadline) -> Result<Hello> {
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

impl Receiver for StreamReceiver {
    fn max_message(&self) -> usize {
        StreamReceiver::max_message(self)
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        StreamReceiver::try_recv(self, buf)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        StreamReceiver::recv(self, buf)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        StreamReceiver::recv_timeout(self, buf, timeout)
    }
}

/// A framed message channel in both directions over a byte stream: a socket,
/// or a pair of pipes.
#[derive(Debug)]
pub struct StreamChannel {
    tx: StreamSender,
    rx: StreamReceiver,
}

impl StreamChannel {
    /// Exchanges hellos over a connected stream socket (Unix or TCP) and
    /// returns the channel. We accept messages of up to `max_message` bytes
    /// and send at most what the peer accepts. Waits at most `timeout` for
    /// the peer's hello.
    pub fn handshake(
        socket: impl Into<OwnedFd>,
        max_message: usize,
        timeout: Duration,
    ) -> Result<StreamChannel> {
        let write = socket.into();
        let read = write
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the socket", e))?;
        StreamChannel::handshake_split(read, write, max_message, timeout)
    }

    /// As [`StreamChannel::handshake`], over two descriptors: one to read
    /// from and one to write to (two pipes, for a parent and its child).
    pub fn handshake_split(
        read: impl Into<OwnedFd>,
        write: impl Into<OwnedFd>,
        max_message: usize,
        timeout: Duration,
    ) -> Result<StreamChannel> {
        let deadline = Deadline::after(timeout);
        let mut rx = StreamReceiver::new(read.into(), max_message)?;
        let mut tx = StreamSender::new(FdLink::new(write.into())?, usize::MAX, timeout);
        if let Err(e) = tx.send_hello(max_message, deadline) {
            // A listener that refused us may have closed already: its
            // refusal is still waiting to be read.
            return Err(match rx.read_hello(Deadline::Now) {
                Err(refused @ Error::PeerRefused(_)) => refused,
                _ => e,
            });
        }
        let peer = rx.read_hello(deadline)?;
        tx.send_limit = Hello::send_limit(&peer);
        Ok(StreamChannel { tx, rx })
    }

    /// The listener's side of a handshake whose peer hello (`peer`) has
    /// already been read from `socket`: sends ours and returns the channel.
    pub(crate) fn accepted(
        socket: OwnedFd,
        peer: &[u8; HELLO_LEN],
        max_message: usize,
        timeout: Duration,
    ) -> Result<StreamChannel> {
        let peer = Hello::decode(peer)?;
        let read = socket
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the socket", e))?;
        let rx = StreamReceiver::new(read, max_message)?;
        let mut tx = StreamSender::new(FdLink::new(socket)?, usize::MAX, timeout);
        tx.send_hello(max_message, Deadline::after(timeout))?;
        tx.send_limit = Hello::send_limit(&peer);
        Ok(StreamChannel { tx, rx })
    }

    /// The largest message the peer accepts.
    pub fn send_limit(&self) -> usize {
        self.tx.send_limit
    }

    /// The largest message this side accepts.
    pub fn max_message(&self) -> usize {
        self.rx.max_message()
    }

    /// The two halves, to use from different threads.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.tx, self.rx)
    }

    /// See [`StreamSender::send`].
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.send(message)
    }

    /// See [`StreamSender::try_send`].
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.try_send(message)
    }

    /// See [`StreamSender::send_timeout`].
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.tx.send_timeout(message, timeout)
    }

    /// See [`StreamSender::send_batch`].
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        self.tx.send_batch(messages)
    }

    /// See [`StreamSender::flush`].
    pub fn flush(&mut self) -> Result<()> {
        self.tx.flush()
    }

    /// See [`StreamReceiver::recv`].
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.recv(buf)
    }

    /// See [`StreamReceiver::recv_timeout`].
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.rx.recv_timeout(buf, timeout)
    }

    /// See [`StreamReceiver::try_recv`].
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.try_recv(buf)
    }
}
