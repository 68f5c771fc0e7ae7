//! The one interface both models implement.
//!
//! A [`Sender`] sends messages and a [`Receiver`] receives them, whatever
//! carries them: the shared-memory ring ([`crate::shm::spsc`]), a Unix
//! stream or seqpacket socket, a pipe or TCP ([`crate::msg`]). An application
//! written against these traits switches models by changing the endpoint
//! string it gives [`crate::connect`] or [`crate::listen`].
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
use crate::shm::spsc::{Consumer, Producer};
use crate::sync::Backend;

/// The sending half of a channel.
pub trait Sender {
    /// The largest message this sender can send (the smaller of this side's
    /// setting and what the peer accepts).
    fn max_message(&self) -> usize;

    /// Sends `message` if there is room now; [`Error::Full`] if not, with
    /// nothing sent.
    fn try_send(&mut self, message: &[u8]) -> Result<()>;

    /// Sends `message`, waiting for room as long as it takes.
    fn send(&mut self, message: &[u8]) -> Result<()>;

    /// Sends `message`, waiting for room at most `timeout`; [`Error::Timeout`]
    /// with nothing sent if there was none.
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()>;

    /// Sends every message of `messages` in order, waiting for room as long
    /// as it takes, with as few system calls (message passing) or shared
    /// stores (shared memory) as the model allows. If one message is too
    /// large, none of them is sent.
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        check_batch(messages, self.max_message())?;
        messages.iter().try_for_each(|message| self.send(message))
    }

    /// Finishes any message the kernel accepted only partly. A no-op for
    /// shared memory, where a send is all or nothing.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// How many of the messages sent the receiver has not released yet,
    /// where the model can tell: a single-producer ring counts its records
    /// between the receiver's head and its own tail. `None` where it
    /// cannot: a kernel link (the bytes may sit in either side's buffers),
    /// or a ring that several producers share. After a receiver died,
    /// these are the messages it never received.
    fn unreleased(&self) -> Option<u64> {
        None
    }
}

/// The receiving half of a channel.
pub trait Receiver {
    /// The largest message this receiver accepts.
    fn max_message(&self) -> usize;

    /// Receives the next message into `buf` (replacing its contents) if one
    /// is waiting; returns its length, or [`Error::Empty`].
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize>;

    /// Receives the next message into `buf`, waiting as long as it takes.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize>;

    /// Receives the next message into `buf`, waiting at most `timeout`;
    /// [`Error::Timeout`] if none came.
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize>;
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
}

/// Both directions between two processes: what [`crate::connect`] and
/// [`crate::Listener::accept`] return.
///
/// Over a socket or a pair of pipes the two halves share one connection;
/// over shared memory they are two rings, one per direction. Split it to
/// send and receive from different threads.
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

    /// Whether the peer of a shared-memory channel has closed its end of
    /// the connection (its process exited, or it dropped the channel). The
    /// peer sends nothing on it after the handshake, so any readiness is
    /// the end. `false` for channels without one.
    pub(crate) fn peer_left(&self) -> bool {
        use std::os::fd::AsFd;
        self.link.as_ref().is_some_and(|link| {
            matches!(
                crate::msg::unix::poll_in(link.as_fd(), Some(std::time::Duration::ZERO)),
                Ok(true)
            )
        })
    }

    /// The two halves, to move to different threads.
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
}

impl<B: Backend + Send> Sender for Producer<B> {
    fn max_message(&self) -> usize {
        self.geometry().max_message()
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        Producer::try_send(self, message)
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        Producer::send(self, message)
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        Producer::send_timeout(self, message, timeout)
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        check_batch(messages, self.geometry().max_message())?;
        Producer::send_batch(self, messages)
    }
    fn unreleased(&self) -> Option<u64> {
        Producer::unreleased(self).ok()
    }
}

impl<B: Backend + Send> Receiver for Consumer<B> {
    fn max_message(&self) -> usize {
        self.geometry().max_message()
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        Consumer::try_recv(self, buf)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        Consumer::recv(self, buf)
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        Consumer::recv_timeout(self, buf, timeout)
    }
}

/// Mutual exclusion for [`SharedSender`]: the seam through which the models
/// run it with a model checker's mutex.
pub trait Lock<T> {
    /// A lock around `value`.
    fn new(value: T) -> Self;
    /// Runs `f` with the value, excluding every other holder meanwhile.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

impl<T> Lock<T> for std::sync::Mutex<T> {
    fn new(value: T) -> Self {
        std::sync::Mutex::new(value)
    }
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A holder that panicked cannot have left half a frame behind: a
        // frame the kernel took in part is kept by the sender and finished
        // by the next send.
        let mut guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// A sender many threads can share (clone it): each message goes out whole,
/// never interleaved with another thread's, and each thread's messages keep
/// their order.
///
/// Over a byte stream this is the rule that matters: the kernel may take a
/// frame in several writes, and another writer must not start a frame in
/// between. The lock covers the whole send, including the rest of a frame a
/// previous send left (see [`Sender::flush`]). `models/frames.rs` checks
/// this with loom and shuttle.
pub struct SharedSender<S, L = std::sync::Mutex<S>> {
    inner: std::sync::Arc<L>,
    _sender: std::marker::PhantomData<fn() -> S>,
}

impl<S: Sender, L: Lock<S>> SharedSender<S, L> {
    /// Shares `sender`.
    pub fn new(sender: S) -> Self {
        SharedSender {
            inner: std::sync::Arc::new(L::new(sender)),
            _sender: std::marker::PhantomData,
        }
    }
}

impl<S, L> Clone for SharedSender<S, L> {
    fn clone(&self) -> Self {
        SharedSender {
            inner: std::sync::Arc::clone(&self.inner),
            _sender: std::marker::PhantomData,
        }
    }
}

impl<S, L> std::fmt::Debug for SharedSender<S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSender").finish_non_exhaustive()
    }
}

impl<S: Sender, L: Lock<S>> Sender for SharedSender<S, L> {
    fn max_message(&self) -> usize {
        self.inner.with(|s| s.max_message())
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.inner.with(|s| s.try_send(message))
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        self.inner.with(|s| s.send(message))
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.inner.with(|s| s.send_timeout(message, timeout))
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        self.inner.with(|s| s.send_batch(messages))
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.with(|s| s.flush())
    }
}
