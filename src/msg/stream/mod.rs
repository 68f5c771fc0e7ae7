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

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

use super::frame::{HELLO_LEN, Hello};
use crate::error::{Error, Result};
use crate::options::Deadline;

mod receiver;
mod sender;

pub use receiver::StreamReceiver;
pub use sender::{FdLink, Link, StreamSender};

/// The error for "could not, by `deadline`": `now` for a call that does
/// not wait (`try_*`), [`Error::Timeout`] for one that does.
pub(super) fn expired(deadline: Deadline, now: Error) -> Error {
    match deadline {
        Deadline::Now => now,
        _ => Error::Timeout,
    }
}

/// Maps the errors that mean "the peer is gone" to [`Error::Disconnected`].
pub(super) fn stream_error(context: &str, error: io::Error) -> Error {
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
pub(super) fn poll_fd(fd: BorrowedFd<'_>, flags: PollFlags, deadline: Deadline) -> Result<bool> {
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

/// A framed message channel in both directions over a byte stream: a socket,
/// or a pair of pipes.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use shmsg::msg::stream::StreamChannel;
///
/// let (a, b) = UnixStream::pair().unwrap();
/// // Each side sends its hello and waits for the other's: two threads.
/// let peer = std::thread::spawn(move || -> shmsg::Result<()> {
///     let mut b = StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10))?;
///     let mut buf = Vec::new();
///     b.recv(&mut buf)?;
///     b.send(&buf)
/// });
/// let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
/// a.send(b"echo")?;
/// let mut buf = Vec::new();
/// a.recv(&mut buf)?;
/// assert_eq!(buf, b"echo");
/// peer.join().unwrap()?;
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"x")?;
    /// assert_eq!(b.recv(&mut buf)?, 1);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::msg::stream::StreamChannel;
    ///
    /// // Two pipes, one per direction, as between a parent and its child.
    /// let (up_read, up_write) = std::io::pipe().unwrap();
    /// let (down_read, down_write) = std::io::pipe().unwrap();
    /// let child = std::thread::spawn(move || {
    ///     StreamChannel::handshake_split(down_read, up_write, 1024, Duration::from_secs(10))
    /// });
    /// let mut parent = StreamChannel::handshake_split(up_read, down_write, 1024, Duration::from_secs(10))?;
    /// let mut child = child.join().unwrap()?;
    /// parent.send(b"over a pipe")?;
    /// let mut buf = Vec::new();
    /// child.recv(&mut buf)?;
    /// assert_eq!(buf, b"over a pipe");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert_eq!(a.send_limit(), b.max_message());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_limit(&self) -> usize {
        self.tx.send_limit
    }

    /// The largest message this side accepts.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert_eq!(a.max_message(), 1 << 20);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.rx.max_message()
    }

    /// The two halves, to use from different threads.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// let (mut tx, mut rx) = a.split();
    /// let writer = std::thread::spawn(move || tx.send(b"from another thread"));
    /// b.send(b"meanwhile")?;
    /// rx.recv(&mut buf)?;
    /// writer.join().unwrap()?;
    /// b.recv(&mut buf)?;
    /// assert_eq!(buf, b"from another thread");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.tx, self.rx)
    }

    /// See [`StreamSender::send`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"hello")?;
    /// b.recv(&mut buf)?;
    /// assert_eq!(buf, b"hello");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.send(message)
    }

    /// See [`StreamSender::try_send`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// // Nobody reads: the socket fills up, and then nothing more is sent.
    /// let full = loop {
    ///     match a.try_send(&[0; 4096]) {
    ///         Ok(()) => continue,
    ///         Err(error) => break error,
    ///     }
    /// };
    /// assert!(matches!(full, shmsg::Error::Full));
    /// # let _ = b;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.try_send(message)
    }

    /// See [`StreamSender::send_timeout`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send_timeout(b"soon", Duration::from_secs(1))?;
    /// b.recv(&mut buf)?;
    /// assert_eq!(buf, b"soon");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.tx.send_timeout(message, timeout)
    }

    /// See [`StreamSender::send_batch`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send_batch(&["one", "two", "three"])?;
    /// for expected in ["one", "two", "three"] {
    ///     b.recv(&mut buf)?;
    ///     assert_eq!(buf, expected.as_bytes());
    /// }
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        self.tx.send_batch(messages)
    }

    /// See [`StreamSender::flush`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"done")?;
    /// a.flush()?; // nothing was left half sent: returns at once
    /// b.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        self.tx.flush()
    }

    /// See [`StreamReceiver::recv`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// a.send(b"abc")?;
    /// assert_eq!(b.recv(&mut buf)?, 3);
    /// drop(a);
    /// assert!(matches!(b.recv(&mut buf), Err(shmsg::Error::Disconnected)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.recv(buf)
    }

    /// See [`StreamReceiver::recv_timeout`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// let nothing = b.recv_timeout(&mut buf, Duration::from_millis(1));
    /// assert!(matches!(nothing, Err(shmsg::Error::Timeout)));
    /// # let _ = a;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.rx.recv_timeout(buf, timeout)
    }

    /// See [`StreamReceiver::try_recv`].
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::StreamChannel;
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let peer = std::thread::spawn(move || StreamChannel::handshake(b, 1 << 20, Duration::from_secs(10)));
    /// # let mut a = StreamChannel::handshake(a, 1 << 20, Duration::from_secs(10))?;
    /// # let mut b = peer.join().unwrap()?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(b.try_recv(&mut buf), Err(shmsg::Error::Empty)));
    /// a.send(b"now")?;
    /// // On a Unix socket the bytes are in the peer's buffer once sent.
    /// assert_eq!(b.try_recv(&mut buf)?, 3);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.try_recv(buf)
    }
}
