//! The async interface, for tokio (cargo feature `tokio`, off by default).
//!
//! Every endpoint kind works here as it does with blocking calls: the same
//! endpoint strings, the same messages, the same errors. [`connect`]
//! returns an [`AsyncChannel`], [`listen`] an [`AsyncListener`]; a channel
//! splits into an [`AsyncSender`] and an [`AsyncReceiver`] for two tasks.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> shmsg::Result<()> {
//! let endpoint = format!("shm:doc-tokio-{}", std::process::id());
//! let mut listener = shmsg::tokio::listen(&endpoint)?;
//! let client = tokio::spawn({
//!     let endpoint = endpoint.clone();
//!     async move {
//!         let mut channel = shmsg::tokio::connect(&endpoint).await?;
//!         channel.send(b"ping").await?;
//!         let mut reply = Vec::new();
//!         channel.recv(&mut reply).await?;
//!         shmsg::Result::Ok(reply)
//!     }
//! });
//! let mut channel = listener.accept().await?;
//! let mut request = Vec::new();
//! channel.recv(&mut request).await?;
//! channel.send(b"pong").await?;
//! assert_eq!(client.await.unwrap()?, b"pong");
//! # Ok(())
//! # }
//! ```
//!
//! # How it waits
//!
//! Each end waits on the descriptor its [`Readiness`] names, through
//! tokio's [`AsyncFd`], following the one rule documented there: attempt;
//! arm; attempt again; wait for the descriptor; disarm; again. A
//! shared-memory end waits on its ring's eventfd (see
//! [`crate::shm::signal`]), and first spins for a few microseconds
//! ([`SPIN`] polls): a busy stream takes and gives messages with no system
//! call, and the runtime sees no event. A dead peer sends no signal, so a
//! ring's wait also ends when the channel's connection to the peer hangs
//! up, or after [`IDLE_CHECK`] (one [`SLICE`] for a ring without such a
//! connection), and [`Receiver::idle`] looks for it. A socket end waits on
//! its socket alone: the kernel reports a dead peer as readiness.
//!
//! # Cancel safety
//!
//! As tokio states it per method:
//!
//! * [`AsyncReceiver::recv`] is cancel safe: a message is taken from the
//!   ring or the socket only inside a poll that returns it, so dropping the
//!   future never loses one;
//! * [`AsyncSender::send`] is cancel safe in the same sense: the message
//!   is handed over whole inside one poll, or not at all (over a stream
//!   socket, a message the kernel took in part is finished by the sender
//!   before the next one, as with blocking sends);
//! * [`AsyncListener::accept`] is cancel safe: a channel is returned by the
//!   poll that completes its handshake; a dropped future leaves handshakes
//!   in progress to the next call.
//!
//! A future dropped while armed withdraws its announcement.
//!
//! # Connecting
//!
//! [`connect`] runs the blocking connect (a few system calls and, for
//! shared memory, one round trip with the listener, bounded by the
//! options' timeout) on tokio's blocking pool, so it needs a runtime with
//! it (any multi-thread runtime, or `current_thread` with the default
//! blocking pool).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use ::tokio::io::Interest as TokioInterest;
use ::tokio::io::unix::AsyncFd;

use crate::channel::{Channel, Interest, Readiness, Receiver, Sender};
use crate::endpoint::{Listener, Options};
use crate::error::{Error, Result};
use crate::peer::Credentials;
use crate::shm::signal::Signals;
use crate::shm::wait::SLICE;

/// Polls a shared-memory end makes (with a spin hint between polls, a few
/// microseconds in all) before it arms and yields to the runtime.
///
/// ```
/// assert!(shmsg::tokio::SPIN > 0);
/// ```
pub const SPIN: u32 = 256;

/// How long a shared-memory end whose channel has a connection to its peer
/// waits without a signal before it looks for a dead peer anyway: the
/// connection reports a dead (or departed) peer at once, so this only
/// bounds what it cannot report (a dead producer's claim on a shared
/// `mpsc:` ring), and keeps idle ends from waking 50 times a second.
///
/// ```
/// assert!(shmsg::tokio::IDLE_CHECK >= shmsg::shm::wait::SLICE);
/// ```
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A descriptor registered with tokio, and how to treat it.
#[derive(Debug)]
struct Waker {
    fd: AsyncFd<OwnedFd>,
    interest: TokioInterest,
    /// A ring's eventfd: consume its signal once readable.
    signalled: bool,
    /// The channel's connection to its peer, if it has one (a
    /// shared-memory channel from a listener): readable once the peer
    /// hung up. `None` once it reported a hang-up of a live peer (one that
    /// split its channel, say): the slice then bounds the wait again.
    link: Option<Arc<AsyncFd<OwnedFd>>>,
    /// Seeded defect for the cancel-safety test (`tests/tokio.rs`).
    yield_after_take: bool,
}

/// What ended a wait.
enum Woken {
    /// The descriptor is ready: attempt again.
    Ready,
    /// Time to look for a dead peer ([`Receiver::idle`]).
    Idle,
}

impl Waker {
    /// Registers a duplicate of `readiness`'s descriptor with the current
    /// runtime.
    fn new(
        readiness: Option<Readiness<'_>>,
        link: Option<Arc<AsyncFd<OwnedFd>>>,
        what: &str,
    ) -> Result<Waker> {
        let readiness = readiness.ok_or_else(|| {
            Error::InvalidConfig(format!(
                "this {what} cannot be waited on by an event loop (a ring in a region \
                 opened by name has no eventfds)"
            ))
        })?;
        let fd = readiness
            .fd
            .try_clone_to_owned()
            .map_err(|e| Error::io("cannot duplicate a descriptor for tokio", e))?;
        let interest = match readiness.interest {
            Interest::Readable => TokioInterest::READABLE,
            Interest::Writable => TokioInterest::WRITABLE,
        };
        let fd = register(fd, interest)?;
        Ok(Waker {
            fd,
            interest,
            signalled: readiness.signalled,
            link: link.filter(|_| readiness.signalled),
            yield_after_take: false,
        })
    }

    /// Waits until the descriptor is ready, or, for a ring, until it is
    /// time to look for a dead peer: after one slice, or, with a connection
    /// to the peer, when it hangs up (and after [`IDLE_CHECK`] at the
    /// latest). A socket or a pipe waits for readiness alone.
    async fn wait(&mut self) -> Result<Woken> {
        let ready = async {
            match self.fd.ready(self.interest).await {
                Ok(mut guard) => {
                    // A ring's eventfd: one signal per waiter (semaphore
                    // mode). Clear tokio's readiness only once none is
                    // left, so that the next wait sees a pending signal.
                    if !self.signalled || !Signals::consume(self.fd.get_ref().as_fd()) {
                        guard.clear_ready();
                    }
                    Ok(Woken::Ready)
                }
                Err(e) => Err(Error::io("cannot wait for readiness", e)),
            }
        };
        if !self.signalled {
            // A socket or a pipe: the kernel reports a dead peer as
            // readiness (end of stream, hang-up), so no idle check is due.
            return ready.await;
        }
        let Some(link) = self.link.clone() else {
            return match ::tokio::time::timeout(SLICE, ready).await {
                Ok(woken) => woken,
                Err(_) => Ok(Woken::Idle),
            };
        };
        let hung_up = async {
            // The peer sends nothing after the handshake: any readiness
            // is the end of the connection. Left set, for the other half.
            let _ = link.readable().await;
        };
        ::tokio::select! {
            woken = ready => woken,
            _ = hung_up => {
                // Reported once: a live peer that closed its connection
                // (and kept its rings) must not wake this end again.
                self.link = None;
                Ok(Woken::Idle)
            }
            _ = ::tokio::time::sleep(IDLE_CHECK) => Ok(Woken::Idle),
        }
    }
}

/// Registers `fd` with the current runtime's reactor for `interest`;
/// [`Error::Io`] outside a runtime (never a panic).
fn register(fd: OwnedFd, interest: TokioInterest) -> Result<AsyncFd<OwnedFd>> {
    if ::tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::io(
            "cannot register with the tokio runtime",
            std::io::Error::other("not called from inside a tokio runtime"),
        ));
    }
    // SAFETY: the `AsyncFd` owns `fd` (an `OwnedFd`, a duplicate made for
    // it alone): it stays open and refers to the same open file
    // description until the `AsyncFd` is dropped, and `as_raw_fd` always
    // returns the same number.
    unsafe { AsyncFd::register_with_interest(fd, interest) }
        .map_err(|e| Error::io("cannot register with the tokio runtime", e.into_parts().1))
}

/// The event-loop steps of a sender or a receiver.
trait End {
    fn arm(&mut self);
    fn disarm(&mut self);
    fn idle(&mut self) -> Result<()>;
}

impl End for Box<dyn Sender + Send> {
    fn arm(&mut self) {
        Sender::arm(&mut **self)
    }
    fn disarm(&mut self) {
        Sender::disarm(&mut **self)
    }
    fn idle(&mut self) -> Result<()> {
        Sender::idle(&mut **self)
    }
}

impl End for Box<dyn Receiver + Send> {
    fn arm(&mut self) {
        Receiver::arm(&mut **self)
    }
    fn disarm(&mut self) {
        Receiver::disarm(&mut **self)
    }
    fn idle(&mut self) -> Result<()> {
        Receiver::idle(&mut **self)
    }
}

/// An end while one operation waits: disarms when the operation ends, and
/// when its future is dropped (cancelled) while armed.
struct Waiting<'a, E: End> {
    end: &'a mut E,
    armed: bool,
}

impl<E: End> Waiting<'_, E> {
    fn arm(&mut self) {
        self.end.arm();
        self.armed = true;
    }

    fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.end.disarm();
        }
    }
}

impl<E: End> Drop for Waiting<'_, E> {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Runs `attempt` (a non-blocking operation; `would_block` says when it
/// found nothing to do) until it is done, waiting on `waker` between
/// attempts by the rule of [`Readiness`].
async fn drive<E: End, T>(
    end: &mut E,
    waker: &mut Waker,
    would_block: fn(&Error) -> bool,
    mut attempt: impl FnMut(&mut E) -> Result<T>,
) -> Result<T> {
    let done = drive_inner(end, waker, would_block, &mut attempt).await;
    // Seeded defect `yield_after_take`: an await between taking a message
    // and returning it, where a dropped future loses it.
    if waker.yield_after_take {
        ::tokio::task::yield_now().await;
    }
    done
}

async fn drive_inner<E: End, T>(
    end: &mut E,
    waker: &mut Waker,
    would_block: fn(&Error) -> bool,
    attempt: &mut impl FnMut(&mut E) -> Result<T>,
) -> Result<T> {
    let mut end = Waiting { end, armed: false };
    // A ring: spin a little first (each poll a few loads, no system call).
    if waker.signalled {
        for _ in 0..SPIN {
            match attempt(end.end) {
                Err(ref e) if would_block(e) => std::hint::spin_loop(),
                done => return done,
            }
        }
    }
    loop {
        match attempt(end.end) {
            Err(ref e) if would_block(e) => {}
            done => return done,
        }
        if !end.armed {
            // Announced: the next attempt is the re-check that makes the
            // wait safe.
            end.arm();
            continue;
        }
        if let Woken::Idle = waker.wait().await? {
            // No signal for a while, or the connection ended: the peer may
            // be dead.
            match end.end.idle() {
                Ok(()) => {}
                Err(Error::Disconnected) => {
                    return match attempt(end.end) {
                        Err(ref e) if would_block(e) => Err(Error::Disconnected),
                        done => done,
                    };
                }
                Err(e) => return Err(e),
            }
        }
        end.disarm();
    }
}

fn full(error: &Error) -> bool {
    matches!(error, Error::Full)
}

fn empty(error: &Error) -> bool {
    matches!(error, Error::Empty)
}

/// The sending half of an [`AsyncChannel`].
pub struct AsyncSender {
    end: Box<dyn Sender + Send>,
    waker: Waker,
}

impl std::fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender")
            .field("max_message", &self.end.max_message())
            .finish_non_exhaustive()
    }
}

impl AsyncSender {
    /// Wraps a sender whose [`Sender::readiness`] names a descriptor
    /// (registered with the current tokio runtime: call it inside one).
    /// [`Error::InvalidConfig`] for a sender without one.
    pub fn new(sender: Box<dyn Sender + Send>) -> Result<AsyncSender> {
        AsyncSender::with_link(sender, None)
    }

    fn with_link(
        sender: Box<dyn Sender + Send>,
        link: Option<Arc<AsyncFd<OwnedFd>>>,
    ) -> Result<AsyncSender> {
        let waker = Waker::new(sender.readiness(), link, "sender")?;
        Ok(AsyncSender { end: sender, waker })
    }

    /// Sends `message`, waiting for room without blocking the thread.
    /// Cancel safe (see the [module docs](self)). Over a stream socket or
    /// a pipe, a message the kernel took in part is finished before this
    /// returns ([`AsyncSender::flush`]); a future dropped meanwhile leaves
    /// the rest to the next send.
    pub async fn send(&mut self, message: &[u8]) -> Result<()> {
        drive(&mut self.end, &mut self.waker, full, |end| {
            end.try_send(message)
        })
        .await?;
        self.flush().await
    }

    /// Finishes what is left of a message the kernel took in part
    /// ([`Sender::try_flush`]), waiting for room without blocking the
    /// thread; at once for rings and datagram sockets.
    pub async fn flush(&mut self) -> Result<()> {
        drive(&mut self.end, &mut self.waker, full, |end| end.try_flush()).await
    }

    /// Sends every message of `messages` in order, as
    /// [`Sender::send_batch`] does, waiting for room without blocking the
    /// thread. Not cancel safe: a dropped future may have sent a prefix of
    /// the batch (whole messages only).
    pub async fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        for message in messages {
            self.send(message).await?;
        }
        Ok(())
    }

    /// Sends `message` if there is room now: [`Sender::try_send`].
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.end.try_send(message)
    }

    /// The largest message this sender can send.
    pub fn max_message(&self) -> usize {
        self.end.max_message()
    }

    /// The blocking sender inside.
    pub fn into_inner(self) -> Box<dyn Sender + Send> {
        self.end
    }
}

/// The receiving half of an [`AsyncChannel`].
pub struct AsyncReceiver {
    end: Box<dyn Receiver + Send>,
    waker: Waker,
}

impl std::fmt::Debug for AsyncReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncReceiver")
            .field("max_message", &self.end.max_message())
            .finish_non_exhaustive()
    }
}

impl AsyncReceiver {
    /// Wraps a receiver whose [`Receiver::readiness`] names a descriptor
    /// (registered with the current tokio runtime: call it inside one).
    /// [`Error::InvalidConfig`] for a receiver without one.
    pub fn new(receiver: Box<dyn Receiver + Send>) -> Result<AsyncReceiver> {
        AsyncReceiver::with_link(receiver, None)
    }

    fn with_link(
        receiver: Box<dyn Receiver + Send>,
        link: Option<Arc<AsyncFd<OwnedFd>>>,
    ) -> Result<AsyncReceiver> {
        let waker = Waker::new(receiver.readiness(), link, "receiver")?;
        Ok(AsyncReceiver {
            end: receiver,
            waker,
        })
    }

    /// Receives the next message into `buf` (replacing its contents) and
    /// returns its length, waiting without blocking the thread.
    /// [`Error::Disconnected`] once the peer is gone and everything it
    /// sent was received. Cancel safe (see the [module docs](self)).
    pub async fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        drive(&mut self.end, &mut self.waker, empty, |end| {
            end.try_recv(buf)
        })
        .await
    }

    /// Receives the next message and lends it to `read`, waiting without
    /// blocking the thread; returns what `read` returned. Over shared
    /// memory the message is read where it lies, in the ring (no copy);
    /// over a socket from the receiver's buffer. Cancel safe, as
    /// [`AsyncReceiver::recv`]: `read` runs inside the poll that takes the
    /// message, so a dropped future has taken none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> shmsg::Result<()> {
    /// use shmsg::shm::{Geometry, spsc};
    /// use shmsg::tokio::{AsyncReceiver, AsyncSender};
    ///
    /// let (tx, rx) = spsc::channel(Geometry::default())?;
    /// let (mut tx, mut rx) = (AsyncSender::new(Box::new(tx))?, AsyncReceiver::new(Box::new(rx))?);
    /// tx.send(b"12345").await?;
    /// let sum = rx.recv_with(|m| m.iter().map(|b| u32::from(*b)).sum::<u32>()).await?;
    /// assert_eq!(sum, u32::from(b'1' + b'2' + b'3' + b'4' + b'5'));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let mut read = Some(read);
        let mut out = None;
        drive(&mut self.end, &mut self.waker, empty, |end| {
            end.try_recv_lend(&mut |message| {
                if let Some(read) = read.take() {
                    out = Some(read(message));
                }
            })
        })
        .await?;
        out.ok_or_else(|| Error::InvalidConfig("a receiver lent no message".to_string()))
    }

    /// [`AsyncReceiver::recv`] with a timeout: [`Error::Timeout`] if no
    /// message came in time (nothing received).
    pub async fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        match ::tokio::time::timeout(timeout, self.recv(buf)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Compiles a defect into this receiver's `recv`: an await between
    /// taking a message and returning it, so that a dropped future loses
    /// the message. For the cancel-safety test, which must catch it.
    #[doc(hidden)]
    pub fn seed_yield_after_take(&mut self) {
        self.waker.yield_after_take = true;
    }

    /// Receives the next message if one is waiting: [`Receiver::try_recv`].
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.end.try_recv(buf)
    }

    /// The largest message this receiver accepts.
    pub fn max_message(&self) -> usize {
        self.end.max_message()
    }

    /// The blocking receiver inside.
    pub fn into_inner(self) -> Box<dyn Receiver + Send> {
        self.end
    }
}

/// Both directions to one peer, for tokio: what [`connect`] and
/// [`AsyncListener::accept`] return.
#[derive(Debug)]
pub struct AsyncChannel {
    /// The sending half.
    pub tx: AsyncSender,
    /// The receiving half.
    pub rx: AsyncReceiver,
    peer: Option<Credentials>,
}

impl AsyncChannel {
    /// Wraps a blocking [`Channel`] (registered with the current tokio
    /// runtime: call it inside one). Every channel [`crate::connect`] and
    /// [`crate::Listener::accept`] return can be wrapped.
    pub fn new(mut channel: Channel) -> Result<AsyncChannel> {
        let peer = channel.peer();
        // The connection stays open as long as either half lives (the
        // peer takes its end for ours leaving), and tells both halves
        // when the peer's end closes.
        let link = match channel.take_link() {
            Some(link) => Some(Arc::new(register(link, TokioInterest::READABLE)?)),
            None => None,
        };
        let (tx, rx) = channel.split();
        Ok(AsyncChannel {
            tx: AsyncSender::with_link(tx, link.clone())?,
            rx: AsyncReceiver::with_link(rx, link)?,
            peer,
        })
    }

    /// Sends `message`: [`AsyncSender::send`].
    pub async fn send(&mut self, message: &[u8]) -> Result<()> {
        self.tx.send(message).await
    }

    /// Receives the next message: [`AsyncReceiver::recv`].
    pub async fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.rx.recv(buf).await
    }

    /// Receives the next message and lends it to `read`:
    /// [`AsyncReceiver::recv_with`].
    pub async fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.rx.recv_with(read).await
    }

    /// Who is at the other end, where the transport tells (see
    /// [`Channel::peer`]).
    pub fn peer(&self) -> Option<Credentials> {
        self.peer
    }

    /// The two halves, for two tasks.
    pub fn split(self) -> (AsyncSender, AsyncReceiver) {
        (self.tx, self.rx)
    }
}

/// Connects to `endpoint` ([`crate::connect`]) and returns the channel for
/// tokio. The connect itself runs on tokio's blocking pool.
pub async fn connect(endpoint: &str) -> Result<AsyncChannel> {
    connect_with(endpoint, &Options::default()).await
}

/// [`connect`] with options ([`crate::connect_with`]).
pub async fn connect_with(endpoint: &str, options: &Options) -> Result<AsyncChannel> {
    let endpoint = endpoint.to_string();
    let options = options.clone();
    let channel = ::tokio::task::spawn_blocking(move || crate::connect_with(&endpoint, &options))
        .await
        .map_err(|e| Error::io("the connecting task failed", std::io::Error::other(e)))??;
    AsyncChannel::new(channel)
}

/// Listens at `endpoint` ([`crate::listen`]); call it inside a runtime.
pub fn listen(endpoint: &str) -> Result<AsyncListener> {
    listen_with(endpoint, &Options::default())
}

/// [`listen`] with options ([`crate::listen_with`]).
pub fn listen_with(endpoint: &str, options: &Options) -> Result<AsyncListener> {
    AsyncListener::new(crate::listen_with(endpoint, options)?)
}

/// A listener for tokio: [`AsyncListener::accept`] waits for the next
/// peer without blocking the thread.
#[derive(Debug)]
pub struct AsyncListener {
    inner: Listener,
    /// The listener's [`Listener::readiness`], if it has one (`pipe` has
    /// none: its one channel is there at once).
    fd: Option<AsyncFd<OwnedFd>>,
}

impl AsyncListener {
    /// Wraps a blocking listener (registered with the current tokio
    /// runtime: call it inside one).
    pub fn new(listener: Listener) -> Result<AsyncListener> {
        let fd = match listener.readiness()? {
            None => None,
            Some(fd) => {
                let fd = fd
                    .try_clone_to_owned()
                    .map_err(|e| Error::io("cannot duplicate a descriptor for tokio", e))?;
                Some(register(fd, TokioInterest::READABLE)?)
            }
        };
        Ok(AsyncListener {
            inner: listener,
            fd,
        })
    }

    /// The endpoint peers connect to ([`Listener::endpoint`]).
    pub fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    /// Waits for the next peer and returns the channel to it, as
    /// [`Listener::accept`] does (a refused peer is
    /// [`Error::PeerRefused`]; call again). Cancel safe.
    pub async fn accept(&mut self) -> Result<AsyncChannel> {
        loop {
            match self.inner.accept_timeout(Duration::ZERO) {
                Ok(channel) => return AsyncChannel::new(channel),
                Err(Error::Timeout) => {}
                Err(e) => return Err(e),
            }
            let Some(fd) = &self.fd else {
                return Err(Error::Disconnected);
            };
            // Still ready: more connections than one round takes, or
            // hellos that wait for room for their rings (a burst of
            // clients that have not acknowledged theirs yet). Look again
            // shortly, letting the other tasks run meanwhile.
            if crate::msg::unix::poll_in(fd.get_ref().as_fd(), Some(Duration::ZERO))
                .map_err(|e| Error::io("cannot poll the listener", e))?
            {
                ::tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let mut guard = fd
                .readable()
                .await
                .map_err(|e| Error::io("cannot wait for the listener", e))?;
            guard.clear_ready();
        }
    }

    /// The blocking listener inside.
    pub fn into_inner(self) -> Listener {
        self.inner
    }
}
