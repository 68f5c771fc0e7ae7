//! The server's side: [`listen`], [`listen_with`] and the [`Listener`]
//! whose `accept` returns a [`Channel`] per peer.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::accept::{Handshakes, Protocol, Rings, Socket};
use super::connect::{stream_channel, take_pipe_fds};
use super::parse::{Endpoint, rendezvous_addr};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::msg::stream::StreamChannel;
use crate::msg::unix::{SocketKind, UnixListener};
use crate::options::{Deadline, Options};
use crate::peer::Credentials;

/// Listens on `endpoint` with default [`Options`].
///
/// ```
/// // Port 0: the system picks a free port, and the listener says which.
/// let listener = shmsg::listen("tcp:127.0.0.1:0")?;
/// let endpoint = listener.endpoint();
/// assert!(endpoint.starts_with("tcp:127.0.0.1:") && !endpoint.ends_with(":0"));
/// let client = std::thread::spawn(move || shmsg::connect(&endpoint));
/// # let mut listener = listener;
/// let _server = listener.accept()?;
/// let _client = client.join().unwrap()?;
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn listen(endpoint: &str) -> Result<Listener> {
    listen_with(endpoint, &Options::default())
}

/// Binds `endpoint` so that peers can [`connect`](crate::connect) to it.
///
/// A `shm:` or `mpsc:` endpoint binds its Unix socket (`@shmsg.NAME`, or
/// the path); an `mpsc:` listener also makes its ring now. A `unix:`,
/// `seqpacket:` or shared-memory path is removed when the listener is
/// dropped; a stale socket file nobody listens on is replaced. A name or
/// path another live listener holds is an [`Error::Io`] of kind
/// `AddrInUse`.
///
/// ```
/// use shmsg::{Allow, Options, Receiver, Sender};
///
/// // Rings of 64 KiB per direction, open to every local user.
/// let options = Options {
///     capacity: Some(64 << 10),
///     allow: Allow::Anyone,
///     ..Options::default()
/// };
/// let endpoint = format!("shm:doc-listen-with-{}", std::process::id());
/// let mut listener = shmsg::listen_with(&endpoint, &options)?;
/// let client = std::thread::spawn(move || -> shmsg::Result<()> {
///     shmsg::connect(&endpoint)?.send(b"hi")
/// });
/// let mut channel = listener.accept()?;
/// let mut buf = Vec::new();
/// channel.recv(&mut buf)?;
/// assert_eq!(buf, b"hi");
/// client.join().unwrap()?;
///
/// // A second listener on the same name is refused.
/// let taken = shmsg::listen(&listener.endpoint());
/// assert!(matches!(taken, Err(shmsg::Error::Io { .. })));
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn listen_with(endpoint: &str, options: &Options) -> Result<Listener> {
    let parsed = Endpoint::parse(endpoint)?;
    let kind = match &parsed {
        Endpoint::Shm(name) => {
            let rings = Rings::per_connection(options)?;
            let socket = UnixListener::bind(&rendezvous_addr(name), SocketKind::Seqpacket)
                .map_err(|e| in_use_hint(e, &parsed))?;
            ListenerKind::Handshakes(Handshakes::new(
                Socket::Unix(socket),
                Protocol::Rings(rings),
                options,
            ))
        }
        Endpoint::Mpsc(name) => {
            let rings = Rings::shared(options)?;
            let socket = UnixListener::bind(&rendezvous_addr(name), SocketKind::Seqpacket)
                .map_err(|e| in_use_hint(e, &parsed))?;
            ListenerKind::Background(Background::start(Handshakes::new(
                Socket::Unix(socket),
                Protocol::Rings(rings),
                options,
            ))?)
        }
        Endpoint::Unix(addr) => ListenerKind::Handshakes(Handshakes::new(
            Socket::Unix(UnixListener::bind(addr, SocketKind::Stream)?),
            Protocol::Stream,
            options,
        )),
        Endpoint::Seqpacket(addr) => ListenerKind::Handshakes(Handshakes::new(
            Socket::Unix(UnixListener::bind(addr, SocketKind::Seqpacket)?),
            Protocol::Seqpacket,
            options,
        )),
        Endpoint::Tcp { host, port } => {
            let listener = TcpListener::bind((host.as_str(), *port))
                .map_err(|e| Error::io(format!("cannot listen on {endpoint}"), e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| Error::io(format!("cannot listen on {endpoint}"), e))?;
            ListenerKind::Handshakes(Handshakes::new(
                Socket::Tcp(listener),
                Protocol::Stream,
                options,
            ))
        }
        Endpoint::Pipe { .. } => ListenerKind::Pipe(Some(parsed.clone())),
    };
    Ok(Listener {
        endpoint: parsed,
        kind,
        options: options.clone(),
    })
}

/// Names the shared-memory endpoint in a bind error (which otherwise
/// names the socket address).
fn in_use_hint(error: Error, endpoint: &Endpoint) -> Error {
    match error {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => Error::Io {
            context: format!("cannot listen on {endpoint}: another process listens there"),
            source,
        },
        Error::Io { context, source } => Error::Io {
            context: format!("cannot listen on {endpoint} ({context})"),
            source,
        },
        other => other,
    }
}

/// An endpoint waiting for peers: [`Listener::accept`] returns a [`Channel`]
/// per peer.
///
/// An `mpsc:` listener: every client sends into one shared ring, and any
/// accepted channel receives from all of them.
///
/// ```
/// use shmsg::{Receiver, Sender};
///
/// let endpoint = format!("mpsc:doc-listener-{}", std::process::id());
/// let mut listener = shmsg::listen(&endpoint)?;
/// let clients: Vec<_> = (0..3u8)
///     .map(|id| {
///         let endpoint = endpoint.clone();
///         std::thread::spawn(move || -> shmsg::Result<shmsg::Channel> {
///             let mut channel = shmsg::connect(&endpoint)?;
///             channel.send(&[id])?;
///             Ok(channel) // kept open until the messages are counted
///         })
///     })
///     .collect();
/// let mut channel = listener.accept()?;
/// let mut seen = Vec::new();
/// let mut buf = Vec::new();
/// for _ in 0..3 {
///     channel.recv(&mut buf)?;
///     seen.push(buf[0]);
/// }
/// seen.sort();
/// assert_eq!(seen, [0, 1, 2]);
/// for client in clients {
///     client.join().unwrap()?;
/// }
/// # Ok::<(), shmsg::Error>(())
/// ```
pub struct Listener {
    endpoint: Endpoint,
    kind: ListenerKind,
    options: Options,
}

enum ListenerKind {
    /// Handshakes run by `accept` itself.
    Handshakes(Handshakes),
    /// Handshakes run by a thread of the listener's (`mpsc:`).
    Background(Background),
    /// Stdin and stdout (or inherited descriptors), accepted once.
    Pipe(Option<Endpoint>),
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// The endpoint peers connect to (for `tcp:HOST:0`, with the port the
    /// system picked).
    ///
    /// ```
    /// let name = format!("unix:@shmsg-doc-endpoint-{}", std::process::id());
    /// let listener = shmsg::listen(&name)?;
    /// assert_eq!(listener.endpoint(), name);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn endpoint(&self) -> String {
        let tcp = match &self.kind {
            ListenerKind::Handshakes(handshakes) => match handshakes.socket() {
                Socket::Tcp(listener) => Some(listener),
                Socket::Unix(_) => None,
            },
            _ => None,
        };
        match tcp.map(TcpListener::local_addr) {
            Some(Ok(SocketAddr::V4(addr))) => format!("tcp:{addr}"),
            Some(Ok(SocketAddr::V6(addr))) => format!("tcp:[{}]:{}", addr.ip(), addr.port()),
            _ => self.endpoint.to_string(),
        }
    }

    /// Waits for the next peer and returns the channel to it.
    ///
    /// Peers complete their hellos concurrently; the first to complete is
    /// returned, and one whose hello does not arrive within the options'
    /// timeout is dropped. [`Error::PeerRefused`] reports a Unix-socket
    /// peer that [`Options::allow`] refused (it was told so); the listener
    /// stays usable, so a server logs it and calls `accept` again.
    ///
    /// ```
    /// use shmsg::{Receiver, Sender};
    ///
    /// let endpoint = format!("seqpacket:@shmsg-doc-accept-{}", std::process::id());
    /// let mut listener = shmsg::listen(&endpoint)?;
    /// let clients: Vec<_> = (0..2u8)
    ///     .map(|id| {
    ///         let endpoint = endpoint.clone();
    ///         std::thread::spawn(move || shmsg::connect(&endpoint)?.send(&[id]))
    ///     })
    ///     .collect();
    /// let mut buf = Vec::new();
    /// for _ in 0..2 {
    ///     // One channel per client, in the order their hellos complete.
    ///     let mut channel = listener.accept()?;
    ///     channel.recv(&mut buf)?;
    ///     assert!(buf[0] < 2);
    /// }
    /// for client in clients {
    ///     client.join().unwrap()?;
    /// }
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn accept(&mut self) -> Result<Channel> {
        self.accept_until(Deadline::Never)
    }

    /// As [`Listener::accept`], waiting at most `timeout` in all.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let endpoint = format!("unix:@shmsg-doc-accept-timeout-{}", std::process::id());
    /// let mut listener = shmsg::listen(&endpoint)?;
    /// // No client comes.
    /// assert!(matches!(
    ///     listener.accept_timeout(Duration::from_millis(10)),
    ///     Err(shmsg::Error::Timeout)
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn accept_timeout(&mut self, timeout: Duration) -> Result<Channel> {
        self.accept_until(Deadline::after(timeout))
    }

    /// The descriptor an event loop waits on (readable) before it calls
    /// [`Listener::accept_timeout`] with a zero timeout again: readable
    /// while a connection waits to be taken or a pending one sent
    /// something (an `mpsc:` listener: once its thread queued a channel).
    /// `None` for `pipe`, whose one channel is there at once. Readiness is a
    /// hint: `accept_timeout(Duration::ZERO)` decides, and
    /// [`Error::Timeout`] from it means wait again. (`shmsg::tokio`'s
    /// `AsyncListener`, feature `tokio`, does this.)
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let endpoint = format!("shm:doc-listener-readiness-{}", std::process::id());
    /// let mut listener = shmsg::listen(&endpoint)?;
    /// assert!(listener.readiness()?.is_some());
    /// assert!(matches!(
    ///     listener.accept_timeout(Duration::ZERO),
    ///     Err(shmsg::Error::Timeout)
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn readiness(&self) -> Result<Option<BorrowedFd<'_>>> {
        match &self.kind {
            ListenerKind::Handshakes(handshakes) => handshakes.readiness().map(Some),
            ListenerKind::Background(background) => Ok(Some(background.queued.as_fd())),
            ListenerKind::Pipe(_) => Ok(None),
        }
    }

    fn accept_until(&mut self, deadline: Deadline) -> Result<Channel> {
        let max = self.options.message_passing_max();
        let handshake = self.options.timeout;
        match &mut self.kind {
            ListenerKind::Handshakes(handshakes) => handshakes.next(deadline),
            ListenerKind::Background(background) => background.next(deadline),
            ListenerKind::Pipe(endpoint) => match endpoint.take() {
                Some(Endpoint::Pipe { read, write }) => {
                    let (read, write) = take_pipe_fds(&self.endpoint.to_string(), read, write)?;
                    stream_channel(StreamChannel::handshake_split(read, write, max, handshake)?)
                }
                _ => Err(Error::Disconnected),
            },
        }
    }
}

/// Handshakes run in a thread, for a listener whose application may never
/// call `accept` again (`mpsc:`: producers must be able to connect while
/// the application only receives). Finished channels wait for `accept`,
/// at most [`MAX_QUEUED`] of them: beyond that one is dropped, one whose
/// client has left if any, else the oldest (its client loses the reply
/// path, not the ring), so the thread never stops answering clients.
struct Background {
    queue: Arc<Queue>,
    /// Readable once the thread queued something (an eventfd, signalled by
    /// [`Queue::put`]), for event loops.
    queued: Arc<OwnedFd>,
    /// Dropping it wakes the thread, which then exits.
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Channels (and refused peers) waiting for an `mpsc:` listener's `accept`.
pub const MAX_QUEUED: usize = crate::shm::layout::MAX_PRODUCERS;

struct Queue {
    state: std::sync::Mutex<Queued>,
    ready: std::sync::Condvar,
    /// The eventfd [`Background::queued`].
    queued: Arc<OwnedFd>,
}

#[derive(Default)]
struct Queued {
    channels: std::collections::VecDeque<Channel>,
    refused: std::collections::VecDeque<Credentials>,
    /// An error of the listening socket itself (out of descriptors, say).
    error: Option<Error>,
    /// The thread has exited.
    done: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what the thread's handshakes came to; `false` once it stops.
    fn put(&self, item: Result<Channel>) -> bool {
        let mut queued = self.lock();
        let going_on = match item {
            Ok(channel) => {
                queued.channels.push_back(channel);
                if queued.channels.len() > MAX_QUEUED {
                    // A channel whose client has left goes first (what that
                    // client sent stays in the shared ring), else the oldest.
                    let gone = queued.channels.iter().position(Channel::peer_left);
                    queued.channels.remove(gone.unwrap_or(0));
                }
                true
            }
            Err(Error::PeerRefused(peer)) => {
                queued.refused.push_back(peer);
                while queued.refused.len() > MAX_QUEUED {
                    queued.refused.pop_front();
                }
                true
            }
            Err(Error::Disconnected) => {
                queued.done = true;
                false
            }
            Err(error) => {
                queued.error = Some(error);
                true
            }
        };
        drop(queued);
        self.ready.notify_all();
        // Best effort: an event loop also finds the queue at its next call.
        let _ = rustix::io::write(&*self.queued, &1u64.to_ne_bytes());
        going_on
    }
}

impl Background {
    fn start(mut handshakes: Handshakes) -> Result<Background> {
        let (stop_read, stop_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| Error::io("cannot create the listener's stop pipe", e))?;
        handshakes.set_stop(stop_read);
        let queued = Arc::new(
            rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .map_err(|e| Error::io("cannot create the listener's eventfd", e))?,
        );
        let queue = Arc::new(Queue {
            state: Default::default(),
            ready: Default::default(),
            queued: Arc::clone(&queued),
        });
        let shared = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("shmsg-listener".into())
            .spawn(move || {
                loop {
                    let item = handshakes.next(Deadline::Never);
                    let failed = matches!(item, Err(Error::Io { .. }));
                    if !shared.put(item) {
                        return;
                    }
                    // An error of the listening socket may repeat at once
                    // (out of descriptors): do not spin on it.
                    if failed {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the listener's thread", e))?;
        Ok(Background {
            queue,
            queued,
            stop: Some(stop_write),
            thread: Some(thread),
        })
    }

    /// A refused peer first (to report it), then the oldest channel (its
    /// client may have left already, as a socket's may: what it sent is
    /// still there to receive).
    fn next(&mut self, deadline: Deadline) -> Result<Channel> {
        // The event loops' signal is consumed before the queue is looked
        // at: a channel queued after this signals again.
        let mut drained = [0u8; 8];
        let _ = rustix::io::read(&*self.queued, &mut drained);
        let mut queued = self.queue.lock();
        loop {
            if let Some(peer) = queued.refused.pop_front() {
                return Err(Error::PeerRefused(peer));
            }
            if let Some(channel) = queued.channels.pop_front() {
                return Ok(channel);
            }
            if let Some(error) = queued.error.take() {
                return Err(error);
            }
            if queued.done {
                return Err(Error::Disconnected);
            }
            queued = match deadline.remaining() {
                None => self
                    .queue
                    .ready
                    .wait(queued)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(Duration::ZERO) => return Err(Error::Timeout),
                Some(left) => {
                    self.queue
                        .ready
                        .wait_timeout(queued, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
