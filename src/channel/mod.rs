//! The one interface both models implement.
//!
//! A [`Sender`] sends messages and a [`Receiver`] receives them, whatever
//! carries them: a shared-memory ring, single-producer ([`crate::shm::spsc`])
//! or multi-producer ([`crate::shm::mpmc`]), or a Unix stream or seqpacket
//! socket, a pipe or TCP ([`crate::msg`]). An application written against
//! these traits switches models by changing the endpoint string it gives
//! [`crate::connect`] or [`crate::listen`]. A [`Channel`] holds one of each,
//! the two directions to one peer.
//!
//! The rings' adapters to these traits are in one place (`rings.rs`): each
//! method forwards to the ring handle's method of the same name. So a ring
//! made between threads is a [`Sender`] and a [`Receiver`] as it is:
//!
//! ```
//! use shmsg::channel::{Receiver, Sender};
//! use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};
//!
//! /// Sends three numbered messages, whatever carries them.
//! fn count(tx: &mut dyn Sender) -> shmsg::Result<()> {
//!     for i in 0..3u8 {
//!         tx.send(&[i])?;
//!     }
//!     Ok(())
//! }
//!
//! let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
//! count(&mut tx)?;
//! let (mut mtx, mut mrx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
//! count(&mut mtx)?;
//! let mut buf = Vec::new();
//! for rx in [&mut rx as &mut dyn Receiver, &mut mrx] {
//!     for i in 0..3u8 {
//!         rx.recv(&mut buf)?;
//!         assert_eq!(buf, [i]);
//!     }
//! }
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! The observable behaviour is the same in both models (one property test,
//! `tests/same_behaviour.rs`, runs unchanged over all of them):
//!
//! * messages arrive whole, in the order they were sent, none lost or
//!   duplicated; a message of 0 bytes is a message;
//! * `try_*` never blocks: [`Error::Full`] / [`Error::Empty`], nothing sent
//!   or received;
//! * `*_timeout` waits at most the timeout: [`Error::Timeout`], nothing sent
//!   or received;
//! * a message longer than [`Sender::max_message`] is refused with
//!   [`Error::MessageTooLarge`] before anything is sent;
//! * once the peer is gone, a receiver gets every message the peer sent and
//!   then [`Error::Disconnected`]; a sender gets [`Error::Disconnected`].
//!
//! One difference is inherent to the kernel's buffering: a message-passing
//! send that was accepted only partly by the kernel (a large message into an
//! almost full socket) keeps the rest and finishes it before the next send,
//! in [`Sender::flush`] or when the sender is dropped. `try_send` returns
//! [`Error::Full`] only when nothing of the message was taken.
//!
//! [`Error::Full`] is an observation of the moment in both models, but what
//! ends it differs: a ring's free space grows only when its receiver
//! releases a record, while a kernel link's buffers also drain into the
//! peer's socket buffer and grow on their own (TCP autotuning). So after a
//! `Full`, a send with a timeout on a ring times out unless the receiver
//! receives; on a kernel link it may succeed without one.

use std::time::Duration;

use crate::error::{Error, Result};

mod readiness;
mod rings;
mod shared;

pub use readiness::{Interest, Readiness};
pub use shared::{Lock, SharedSender};

/// The sending half of a channel.
///
/// The examples send into a single-producer ring between threads
/// ([`crate::shm::spsc::channel`]); every transport behaves alike.
///
/// ```
/// use shmsg::channel::{Receiver, Sender};
/// use shmsg::shm::{Geometry, spsc};
///
/// let (tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
/// let mut tx: Box<dyn Sender + Send> = Box::new(tx);
/// tx.send(b"hello")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.recv(&mut buf)?, 5);
/// assert_eq!(buf, b"hello");
/// # Ok::<(), shmsg::Error>(())
/// ```
pub trait Sender {
    /// The largest message this sender can send (the smaller of this side's
    /// setting and what the peer accepts).
    ///
    /// ```
    /// use shmsg::channel::Sender;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, _rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// assert_eq!(Sender::max_message(&tx), 64);
    /// assert!(matches!(
    ///     Sender::send(&mut tx, &[0; 65]),
    ///     Err(shmsg::Error::MessageTooLarge { len: 65, max: 64 })
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn max_message(&self) -> usize;

    /// Sends `message` if there is room now; [`Error::Full`] if not, with
    /// nothing sent.
    ///
    /// ```
    /// use shmsg::channel::Sender;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, _rx) = spsc::channel(Geometry::new(64, 16)?)?;
    /// // Nobody receives: the ring fills up, and `try_send` says so.
    /// let full = loop {
    ///     if let Err(error) = Sender::try_send(&mut tx, b"0123456789") {
    ///         break error;
    ///     }
    /// };
    /// assert!(matches!(full, shmsg::Error::Full));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn try_send(&mut self, message: &[u8]) -> Result<()>;

    /// Sends `message`, waiting for room as long as it takes.
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(64, 16)?)?;
    /// // Far more than the ring holds: `send` waits for the receiver.
    /// let sender = std::thread::spawn(move || {
    ///     (0..100u32).try_for_each(|i| Sender::send(&mut tx, &i.to_le_bytes()))
    /// });
    /// let mut buf = Vec::new();
    /// for i in 0..100u32 {
    ///     Receiver::recv(&mut rx, &mut buf)?;
    ///     assert_eq!(buf, i.to_le_bytes());
    /// }
    /// sender.join().unwrap()?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn send(&mut self, message: &[u8]) -> Result<()>;

    /// Sends `message`, waiting for room at most `timeout`; [`Error::Timeout`]
    /// with nothing sent if there was none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::channel::Sender;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, _rx) = spsc::channel(Geometry::new(64, 16)?)?;
    /// let wait = Duration::from_millis(10);
    /// let timed_out = loop {
    ///     if let Err(error) = Sender::send_timeout(&mut tx, b"0123456789", wait) {
    ///         break error;
    ///     }
    /// };
    /// assert!(matches!(timed_out, shmsg::Error::Timeout));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()>;

    /// Sends every message of `messages` in order, waiting for room as long
    /// as it takes, with as few system calls (message passing) or shared
    /// stores (shared memory) as the model allows. If one message is too
    /// large, none of them is sent.
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// Sender::send_batch(&mut tx, &[b"one", b"two"])?;
    /// // A message too large refuses the whole batch.
    /// assert!(Sender::send_batch(&mut tx, &[b"three", &[0; 65]]).is_err());
    /// let mut buf = Vec::new();
    /// Receiver::recv(&mut rx, &mut buf)?;
    /// assert_eq!(buf, b"one");
    /// Receiver::recv(&mut rx, &mut buf)?;
    /// assert_eq!(buf, b"two");
    /// assert!(matches!(Receiver::try_recv(&mut rx, &mut buf), Err(shmsg::Error::Empty)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        check_batch(messages, self.max_message())?;
        messages.iter().try_for_each(|message| self.send(message))
    }

    /// Finishes any message the kernel accepted only partly. A no-op for
    /// shared memory, where a send is all or nothing.
    ///
    /// ```
    /// use shmsg::channel::Sender;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, _rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// Sender::send(&mut tx, b"whole")?;
    /// Sender::flush(&mut tx)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// How many of the messages sent the receiver has not released yet,
    /// where the model can tell: a single-producer ring counts its records
    /// between the receiver's head and its own tail. `None` where it
    /// cannot: a kernel link (the bytes may sit in either side's buffers),
    /// or a ring that several producers share. After a receiver died,
    /// these are the messages it never received.
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// Sender::send_batch(&mut tx, &[b"one", b"two"])?;
    /// Receiver::recv(&mut rx, &mut Vec::new())?;
    /// assert_eq!(Sender::unreleased(&tx), Some(1));
    ///
    /// let (shared, _rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpsc)?;
    /// assert_eq!(Sender::unreleased(&shared), None);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn unreleased(&self) -> Option<u64> {
        None
    }

    /// Sends, without waiting, what is left of a message the kernel took
    /// only in part (a large message into a nearly full stream socket or
    /// pipe; see the [module docs](self)): `Ok` once nothing is left,
    /// [`Error::Full`] while something is. Rings and datagram sockets take
    /// whole messages: nothing to do. An event loop calls it after a
    /// `try_send` until it is `Ok`, waiting on [`Sender::readiness`].
    ///
    /// ```
    /// use shmsg::channel::Sender;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, _rx) = spsc::channel(Geometry::default())?;
    /// Sender::try_send(&mut tx, b"whole")?;
    /// Sender::try_flush(&mut tx)?; // a ring took it whole
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn try_flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// What an event loop waits on when [`Sender::try_send`] would block
    /// (see [`Receiver::readiness`] and [`Readiness`]).
    fn readiness(&self) -> Option<Readiness<'_>> {
        None
    }

    /// As [`Receiver::arm`], for space to send.
    fn arm(&mut self) {}

    /// As [`Receiver::disarm`].
    fn disarm(&mut self) {}

    /// As [`Receiver::idle`]: [`Error::Disconnected`] once the receiver is
    /// dead.
    fn idle(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The receiving half of a channel.
///
/// The examples receive from a multi-consumer ring between threads
/// ([`crate::shm::mpmc::channel`]); every transport behaves alike.
///
/// ```
/// use shmsg::channel::{Receiver, Sender};
/// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
///
/// let (mut tx, rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
/// let mut rx: Box<dyn Receiver + Send> = Box::new(rx);
/// tx.send(b"hello")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.recv(&mut buf)?, 5);
/// assert_eq!(buf, b"hello");
/// # Ok::<(), shmsg::Error>(())
/// ```
pub trait Receiver {
    /// The largest message this receiver accepts.
    ///
    /// ```
    /// use shmsg::channel::Receiver;
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (_tx, rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
    /// assert_eq!(Receiver::max_message(&rx), 64);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn max_message(&self) -> usize;

    /// Receives the next message into `buf` (replacing its contents) if one
    /// is waiting; returns its length, or [`Error::Empty`].
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (mut tx, mut rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
    /// let mut buf = Vec::new();
    /// assert!(matches!(Receiver::try_recv(&mut rx, &mut buf), Err(shmsg::Error::Empty)));
    /// Sender::send(&mut tx, b"now")?;
    /// assert_eq!(Receiver::try_recv(&mut rx, &mut buf)?, 3);
    /// // Once every sender is gone and the ring is drained: `Disconnected`.
    /// drop(tx);
    /// assert!(matches!(
    ///     Receiver::try_recv(&mut rx, &mut buf),
    ///     Err(shmsg::Error::Disconnected)
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize>;

    /// Receives the next message into `buf`, waiting as long as it takes.
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (mut tx, mut rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
    /// let sender = std::thread::spawn(move || Sender::send(&mut tx, b"later"));
    /// let mut buf = Vec::new();
    /// Receiver::recv(&mut rx, &mut buf)?;
    /// assert_eq!(buf, b"later");
    /// sender.join().unwrap()?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize>;

    /// Receives the next message into `buf`, waiting at most `timeout`;
    /// [`Error::Timeout`] if none came.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::channel::Receiver;
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (_tx, mut rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)?;
    /// let mut buf = Vec::new();
    /// assert!(matches!(
    ///     Receiver::recv_timeout(&mut rx, &mut buf, Duration::from_millis(10)),
    ///     Err(shmsg::Error::Timeout)
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize>;

    /// Receives the next message if one is waiting, lends it to `read`,
    /// and returns its length; [`Error::Empty`] if none is (`read` not
    /// called). A ring lends the message where it lies, in the ring (no
    /// copy: see the rings' `try_recv_with`); the default receives it into
    /// a buffer first. `read` runs once per message received.
    ///
    /// ```
    /// use shmsg::channel::{Receiver, Sender};
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
    /// Sender::send(&mut tx, b"in place")?;
    /// let mut seen = 0;
    /// let len = Receiver::try_recv_lend(&mut rx, &mut |m| seen = m.len())?;
    /// assert_eq!((len, seen), (8, 8));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn try_recv_lend(&mut self, read: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut buf = Vec::new();
        let len = self.try_recv(&mut buf)?;
        read(&buf);
        Ok(len)
    }

    /// What an event loop waits on when [`Receiver::try_recv`] would block:
    /// a descriptor and the readiness to wait for (see [`Readiness`] for
    /// the rule). `None` for a receiver that can only block a thread (a
    /// ring in a region opened by name, which has no eventfds).
    ///
    /// ```
    /// use shmsg::channel::{Interest, Receiver, Sender};
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
    /// let readiness = Receiver::readiness(&rx).expect("a ring between threads has eventfds");
    /// assert_eq!(readiness.interest, Interest::Readable);
    /// assert!(readiness.signalled); // a ring's eventfd: consume its signal
    /// # let _ = &mut tx; let _ = &mut rx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    fn readiness(&self) -> Option<Readiness<'_>> {
        None
    }

    /// Before waiting on [`Receiver::readiness`]: asks the peer to signal
    /// the descriptor (a ring announces a descriptor sleeper; a socket
    /// needs nothing). Re-check with `try_recv` after it.
    fn arm(&mut self) {}

    /// After waiting: withdraws what [`Receiver::arm`] announced.
    fn disarm(&mut self) {}

    /// After waiting a slice ([`crate::shm::wait::SLICE`]) without the
    /// descriptor becoming ready: looks for a dead peer, which nobody
    /// would signal about (a ring; a socket's kernel reports it as
    /// readiness). `Ok`: attempt again; [`Error::Disconnected`]: attempt
    /// once more, and if it would block, the peer is gone.
    fn idle(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Refuses a batch with a message over `max` before anything is sent.
pub(crate) fn check_batch(messages: &[&[u8]], max: usize) -> Result<()> {
    match messages.iter().find(|m| m.len() > max) {
        Some(m) => Err(Error::MessageTooLarge { len: m.len(), max }),
        None => Ok(()),
    }
}

impl<S: Sender + ?Sized> Sender for Box<S> {
    fn max_message(&self) -> usize {
        (**self).max_message()
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        (**self).try_send(message)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        (**self).send(message)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        (**self).send_timeout(message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        (**self).send_batch(messages)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn unreleased(&self) -> Option<u64> {
        (**self).unreleased()
    }
    fn try_flush(&mut self) -> Result<()> {
        (**self).try_flush()
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        (**self).readiness()
    }
    fn arm(&mut self) {
        (**self).arm()
    }
    fn disarm(&mut self) {
        (**self).disarm()
    }
    fn idle(&mut self) -> Result<()> {
        (**self).idle()
    }
}

impl<R: Receiver + ?Sized> Receiver for Box<R> {
    fn max_message(&self) -> usize {
        (**self).max_message()
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        (**self).try_recv(buf)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        (**self).recv(buf)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        (**self).recv_timeout(buf, timeout)
    }
    fn try_recv_lend(&mut self, read: &mut dyn FnMut(&[u8])) -> Result<usize> {
        (**self).try_recv_lend(read)
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        (**self).readiness()
    }
    fn arm(&mut self) {
        (**self).arm()
    }
    fn disarm(&mut self) {
        (**self).disarm()
    }
    fn idle(&mut self) -> Result<()> {
        (**self).idle()
    }
}

/// Both directions between two processes: what [`crate::connect`] and
/// [`crate::Listener::accept`] return.
///
/// Over a socket or a pair of pipes the two halves share one connection;
/// over shared memory they are two rings, one per direction. Split it to
/// send and receive from different threads.
///
/// A channel is itself a [`Sender`] (through [`Channel::tx`]) and a
/// [`Receiver`] (through [`Channel::rx`]). Two rings between threads make
/// a pair of channels, as [`crate::connect`] and a listener would:
///
/// ```
/// use shmsg::{Channel, Receiver, Sender};
/// use shmsg::shm::{Geometry, spsc};
///
/// let (a_to_b, from_a) = spsc::channel(Geometry::new(1024, 64)?)?;
/// let (b_to_a, from_b) = spsc::channel(Geometry::new(1024, 64)?)?;
/// let mut a = Channel::new(a_to_b, from_b);
/// let mut b = Channel::new(b_to_a, from_a);
///
/// a.send(b"ping")?;
/// let mut buf = Vec::new();
/// b.recv(&mut buf)?;
/// assert_eq!(buf, b"ping");
/// b.send(b"pong")?;
/// a.recv(&mut buf)?;
/// assert_eq!(buf, b"pong");
/// # Ok::<(), shmsg::Error>(())
/// ```
pub struct Channel {
    /// Sends to the peer.
    pub tx: Box<dyn Sender + Send>,
    /// Receives from the peer.
    pub rx: Box<dyn Receiver + Send>,
    peer: Option<crate::peer::Credentials>,
    /// A shared-memory channel's connection to its peer, kept open for the
    /// channel's life: the peer's socket closes when its process dies.
    link: Option<std::os::fd::OwnedFd>,
}

impl Channel {
    /// A channel from its two halves.
    ///
    /// ```
    /// use shmsg::{Channel, Receiver, Sender};
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// // A channel that talks to itself: its sender feeds its receiver.
    /// let (tx, rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpsc)?;
    /// let mut echo = Channel::new(tx, rx);
    /// echo.send(b"me")?;
    /// let mut buf = Vec::new();
    /// echo.recv(&mut buf)?;
    /// assert_eq!(buf, b"me");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new(tx: impl Sender + Send + 'static, rx: impl Receiver + Send + 'static) -> Channel {
        Channel {
            tx: Box::new(tx),
            rx: Box::new(rx),
            peer: None,
            link: None,
        }
    }

    /// The process at the other end, for channels over a Unix socket
    /// (`unix:`, `seqpacket:`, `shm:`, `mpsc:`): as the kernel recorded it
    /// at connect time (see [`crate::peer`]). `None` for TCP, pipes and
    /// channels made with [`Channel::new`].
    ///
    /// ```
    /// use shmsg::Channel;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (tx, rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// assert!(Channel::new(tx, rx).peer().is_none());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn peer(&self) -> Option<crate::peer::Credentials> {
        self.peer
    }

    pub(crate) fn with_peer(mut self, peer: Option<crate::peer::Credentials>) -> Channel {
        self.peer = peer;
        self
    }

    pub(crate) fn with_link(mut self, link: std::os::fd::OwnedFd) -> Channel {
        self.link = Some(link);
        self
    }

    /// The connection a shared-memory channel keeps to its peer (see
    /// [`Channel::peer_left`]), taken out of the channel.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_link(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.link.take()
    }

    /// Whether the peer of a shared-memory channel has closed its end of
    /// the connection (its process exited, or it dropped the channel). The
    /// peer sends nothing on it after the handshake, so any readiness is
    /// the end. `false` for channels without one.
    pub(crate) fn peer_left(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let Some(link) = &self.link else {
            return false;
        };
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            let mut fds = [PollFd::new(link, PollFlags::IN)];
            match poll(&mut fds, Some(&now)) {
                Ok(ready) => return ready > 0,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
        }
    }

    /// The two halves, to move to different threads.
    ///
    /// ```
    /// use shmsg::Channel;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (tx, rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// let (mut tx, mut rx) = Channel::new(tx, rx).split();
    /// let sender = std::thread::spawn(move || tx.send(b"across"));
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"across");
    /// sender.join().unwrap()?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn split(self) -> (Box<dyn Sender + Send>, Box<dyn Receiver + Send>) {
        (self.tx, self.rx)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("send_max", &self.tx.max_message())
            .field("recv_max", &self.rx.max_message())
            .field("peer", &self.peer)
            .finish()
    }
}

impl Sender for Channel {
    fn max_message(&self) -> usize {
        self.tx.max_message()
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.try_send(message)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.send(message)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.tx.send_timeout(message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        self.tx.send_batch(messages)
    }
    fn flush(&mut self) -> Result<()> {
        self.tx.flush()
    }
    fn unreleased(&self) -> Option<u64> {
        self.tx.unreleased()
    }
    fn try_flush(&mut self) -> Result<()> {
        self.tx.try_flush()
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        self.tx.readiness()
    }
    fn arm(&mut self) {
        self.tx.arm()
    }
    fn disarm(&mut self) {
        self.tx.disarm()
    }
    fn idle(&mut self) -> Result<()> {
        self.tx.idle()
    }
}

impl Receiver for Channel {
    fn max_message(&self) -> usize {
        self.rx.max_message()
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.try_recv(buf)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.recv(buf)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.rx.recv_timeout(buf, timeout)
    }
    fn try_recv_lend(&mut self, read: &mut dyn FnMut(&[u8])) -> Result<usize> {
        self.rx.try_recv_lend(read)
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        self.rx.readiness()
    }
    fn arm(&mut self) {
        self.rx.arm()
    }
    fn disarm(&mut self) {
        self.rx.disarm()
    }
    fn idle(&mut self) -> Result<()> {
        self.rx.idle()
    }
}
