//! The sending half of a stream channel: frames written to a [`Link`]
//! without ever blocking inside the kernel.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::fs::{FileType, OFlags};
use rustix::net::{SendAncillaryBuffer, SendFlags, Shutdown};

use super::{expired, poll_fd, stream_error};
use crate::channel::{self, Interest, Readiness, Sender};
use crate::error::{Error, Result};
use crate::msg::frame::{self, HEADER_LEN, HELLO_LEN, Hello};
use crate::options::Deadline;

/// Frames per system call in a batch (two slices each, within `IOV_MAX`).
const BATCH_FRAMES: usize = 512;
/// Frames up to this size (header included) are sent from one buffer.
const SMALL_FRAME: usize = 512;

/// Where a [`StreamSender`] puts its bytes: the seam between the framing
/// logic and the kernel, so that the models can run the sender over a model
/// link.
///
/// ```
/// use std::io::IoSlice;
/// use std::time::Duration;
/// use shmsg::Deadline;
/// use shmsg::msg::stream::{Link, StreamSender};
///
/// /// A link into memory, always writable.
/// struct Memory(Vec<u8>);
///
/// impl Link for Memory {
///     fn write_nonblocking(&mut self, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
///         let before = self.0.len();
///         for slice in slices {
///             self.0.extend_from_slice(slice);
///         }
///         Ok(self.0.len() - before)
///     }
///     fn wait_writable(&mut self, _: Deadline) -> shmsg::Result<bool> {
///         Ok(true)
///     }
/// }
///
/// let mut tx = StreamSender::new(Memory(Vec::new()), 1024, Duration::ZERO);
/// tx.send(b"hi")?;
/// assert_eq!(tx.link().0, [2, 0, 0, 0, b'h', b'i']);
/// # Ok::<(), shmsg::Error>(())
/// ```
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

    /// The descriptor an event loop waits on until the link may take more
    /// bytes (writable), if it has one.
    fn descriptor(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// A kernel descriptor as a [`Link`]: a socket or the writing end of a pipe.
///
/// ```
/// use std::time::Duration;
/// use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
///
/// // The writing end of a pipe (switched to non-blocking mode).
/// let (read, write) = std::io::pipe().unwrap();
/// let mut tx = StreamSender::new(FdLink::new(write.into())?, 1024, Duration::from_secs(1));
/// let mut rx = StreamReceiver::new(read.into(), 1024)?;
/// tx.send(b"piped")?;
/// let mut buf = Vec::new();
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"piped");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct FdLink {
    fd: OwnedFd,
    socket: bool,
}

impl FdLink {
    /// Wraps `fd`. A socket is written with `MSG_DONTWAIT | MSG_NOSIGNAL`;
    /// anything else (a pipe) is switched to `O_NONBLOCK`.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use shmsg::msg::stream::FdLink;
    ///
    /// let (a, _b) = UnixStream::pair().unwrap();
    /// let _link = FdLink::new(a.into())?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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

pub(super) fn is_socket(fd: BorrowedFd<'_>) -> Result<bool> {
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

    fn descriptor(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }
}

impl AsFd for FdLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The sending half of a stream channel.
///
/// ```
/// # use std::os::unix::net::UnixStream;
/// # use std::time::Duration;
/// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
/// # let (a, b) = UnixStream::pair().unwrap();
/// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
/// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
/// # let mut buf: Vec<u8> = Vec::new();
/// tx.send(b"one way")?;
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"one way");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct StreamSender<L: Link = FdLink> {
    link: L,
    /// The peer's maximum message size, from its hello.
    pub(super) send_limit: usize,
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
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert_eq!(tx.send_limit(), 1 << 20);
    /// # let _ = rx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// assert!(matches!(tx.send(&vec![0; (1 << 20) + 1]), Err(shmsg::Error::MessageTooLarge { .. })));
    /// # let _ = rx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    /// The link.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// use std::os::fd::AsFd;
    /// let _fd = tx.link().as_fd();
    /// # let _ = rx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Sends one message, waiting for room as long as it takes: one system
    /// call when the link has room.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send(b"a")?;
    /// rx.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.send_frames(&[message], Deadline::Never)
    }

    /// Sends one message if the link has room for some of it now;
    /// [`Error::Full`] with nothing sent if not.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.try_send(b"if there is room")?;
    /// rx.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.send_frames(&[message], Deadline::Now)
    }

    /// Sends one message, waiting at most `timeout` for room;
    /// [`Error::Timeout`] with nothing sent if none came.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send_timeout(b"b", Duration::from_millis(100))?;
    /// rx.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.send_frames(&[message], Deadline::after(timeout))
    }

    /// Sends `messages` in order, one system call per 512 messages when the
    /// link has room. Nothing is sent if any message is too large.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send_batch(&[b"x", b"y"])?;
    /// rx.recv(&mut buf)?;
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"y");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        let messages: Vec<&[u8]> = messages.iter().map(AsRef::as_ref).collect();
        self.send_frames(&messages, Deadline::Never)
    }

    /// Finishes a frame the kernel accepted only in part, waiting as long as
    /// it takes.
    ///
    /// ```
    /// # use std::os::unix::net::UnixStream;
    /// # use std::time::Duration;
    /// # use shmsg::msg::stream::{FdLink, StreamReceiver, StreamSender};
    /// # let (a, b) = UnixStream::pair().unwrap();
    /// # let mut tx = StreamSender::new(FdLink::new(a.into())?, 1 << 20, Duration::from_secs(1));
    /// # let mut rx = StreamReceiver::new(b.into(), 1 << 20)?;
    /// # let mut buf: Vec<u8> = Vec::new();
    /// tx.send(b"c")?;
    /// tx.flush()?;
    /// rx.recv(&mut buf)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    pub(super) fn send_hello(&mut self, max_message: usize, deadline: Deadline) -> Result<()> {
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
    fn try_flush(&mut self) -> Result<()> {
        match self.flush_pending(Deadline::Now)? {
            true => Ok(()),
            false => Err(Error::Full),
        }
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        let fd = self.link.descriptor()?;
        Some(Readiness::link(fd, Interest::Writable))
    }
}
