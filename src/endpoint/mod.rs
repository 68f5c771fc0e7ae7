//! Endpoint strings: one string picks the model and the transport.
//!
//! | endpoint | model | what it is |
//! |---|---|---|
//! | `shm:NAME` | shared memory | two rings (one per direction) per connection, sealed memfds handed out over the Unix socket `@shmsg.NAME` |
//! | `shm:/PATH` | shared memory | the same, meeting at the socket file `PATH` (directory permissions apply) |
//! | `mpsc:NAME`, `mpsc:/PATH` | shared memory | the listener's one multi-producer ring ([`crate::shm::mpmc`]), handed to every client, and a reply ring per client |
//! | `unix:PATH` | message passing | a Unix stream socket bound at `PATH` |
//! | `unix:@NAME` | message passing | a Unix stream socket with the Linux abstract name `NAME` |
//! | `seqpacket:PATH`, `seqpacket:@NAME` | message passing | a Unix `SOCK_SEQPACKET` socket: the kernel keeps message boundaries |
//! | `tcp:HOST:PORT` | message passing | TCP (`TCP_NODELAY`), also between machines; `[::1]:PORT` for IPv6 |
//! | `pipe` | message passing | this process's stdin (receive) and stdout (send), for a child spawned by [`crate::msg::pipe::spawn`] |
//! | `pipe:RFD,WFD` | message passing | inherited descriptors: read `RFD`, write `WFD` |
//!
//! [`listen`] creates or binds the endpoint and [`Listener::accept`] returns
//! a [`Channel`] per peer; [`connect`] returns the peer's [`Channel`]. The
//! channel is the same type whatever the model:
//!
//! ```no_run
//! use shmsg::channel::{Receiver, Sender};
//!
//! // Server: any endpoint string works here, e.g. "shm:orders" or "tcp:127.0.0.1:7000".
//! let mut listener = shmsg::listen("unix:@orders")?;
//! let mut channel = listener.accept()?;
//! let mut request = Vec::new();
//! while channel.recv(&mut request).is_ok() {
//!     request.make_ascii_uppercase();
//!     channel.send(&request)?;
//! }
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! Every listener serves any number of clients at once. A shared-memory
//! client connects to the listener's Unix socket, says hello, and receives
//! the descriptors of rings the listener made for it
//! ([`shm`] describes the exchange); after that, messages go
//! through the rings with no system call while the stream is busy. Nothing
//! is created in `/dev/shm`, so a crash leaves nothing behind and no one
//! can truncate a ring under its peer (the memfds are sealed). An `mpsc:`
//! listener hands every client its one multi-producer ring: each channel
//! `accept` returns sends to its own client, and a receive on any of them
//! takes the next message from any client; its producers are disconnected
//! once the listener and all its channels are gone. It answers clients in a
//! thread of its own, so that producers can connect while the application
//! only receives; of the channels not yet accepted it keeps
//! [`MAX_QUEUED`], dropping first those whose clients have left.
//!
//! Unix-socket endpoints (`unix:`, `seqpacket:`, `shm:`, `mpsc:`) let in
//! only processes of the listener's user unless [`Options::allow`] says
//! otherwise, and [`Channel::peer`] tells who is at the other end (see
//! [`crate::peer`]). TCP has no such check.
//!
//! No client can stall a listener: hellos are read as they arrive, for all
//! pending connections at once, a connection whose hello has not arrived
//! within [`Options::timeout`] is dropped, and `accept_timeout` returns by
//! its deadline.

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::msg::seqpacket::SeqpacketChannel;
use crate::msg::stream::StreamChannel;
use crate::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
use crate::options::Deadline;
use crate::peer::{Allow, Credentials};
use crate::shm::layout::{RECORD_HEADER, offsets, round8};
use crate::shm::mpmc;
use crate::shm::spsc::{Consumer, Producer};
use crate::shm::{Geometry, Region};

mod accept;
pub mod shm;

use accept::{Handshakes, Protocol, Rings, Socket};
use shm::{ACK_ATTACHED, Kind, Msg, answer};

/// The default maximum message size of message-passing endpoints (16 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;
/// The default ring capacity of a shared-memory endpoint, per direction.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The default maximum message size of a shared-memory endpoint (64 KiB).
pub const DEFAULT_SHM_MAX_MESSAGE: usize = 64 << 10;
/// Prefix of the abstract socket name of `shm:NAME` and `mpsc:NAME`: they
/// meet at `@shmsg.NAME`.
pub const SOCKET_PREFIX: &str = "shmsg.";
/// The longest `NAME` of `shm:NAME`: what an abstract socket name holds
/// (107 bytes) after [`SOCKET_PREFIX`].
pub const MAX_SOCKET_NAME: usize = 107 - SOCKET_PREFIX.len();

/// A parsed endpoint string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `shm:NAME` or `shm:/PATH`: a pair of shared-memory rings per
    /// connection. Holds `NAME` or the absolute `/PATH`.
    Shm(String),
    /// `mpsc:NAME` or `mpsc:/PATH`: the listener's multi-producer ring and a
    /// reply ring per connection.
    Mpsc(String),
    /// `unix:PATH` or `unix:@NAME`: a Unix stream socket.
    Unix(UnixAddr),
    /// `seqpacket:PATH` or `seqpacket:@NAME`: a Unix seqpacket socket.
    Seqpacket(UnixAddr),
    /// `tcp:HOST:PORT`.
    Tcp {
        /// Host name or address (without brackets for IPv6).
        host: String,
        /// Port; 0 lets [`listen`] pick one.
        port: u16,
    },
    /// `pipe` (stdin and stdout) or `pipe:RFD,WFD`.
    Pipe {
        /// The descriptor to read from.
        read: RawFd,
        /// The descriptor to write to.
        write: RawFd,
    },
}

impl Endpoint {
    /// Parses an endpoint string; a malformed one is
    /// [`Error::InvalidEndpoint`] naming the part that is wrong.
    pub fn parse(endpoint: &str) -> Result<Endpoint> {
        let (scheme, rest) = match endpoint.split_once(':') {
            Some((scheme, rest)) => (scheme, Some(rest)),
            None => (endpoint, None),
        };
        let need = |part: &'static str, example: &str| {
            rest.ok_or_else(|| {
                Error::endpoint(
                    endpoint,
                    part,
                    format!("is missing (write {scheme}:{example})"),
                )
            })
        };
        match scheme {
            "shm" | "mpsc" => {
                let name = need("name", "NAME")?;
                if name.starts_with('/') {
                    // Checked as a socket path (length, NUL bytes).
                    UnixAddr::parse(endpoint, name)?;
                } else {
                    // The socket's abstract name must fit too.
                    UnixAddr::parse(endpoint, &format!("@{SOCKET_PREFIX}{name}")).map_err(
                        |_| {
                            Error::endpoint(
                                endpoint,
                                "name",
                                format!(
                                    "is {} bytes long; at most {} fit in the socket name",
                                    name.len(),
                                    MAX_SOCKET_NAME
                                ),
                            )
                        },
                    )?;
                    crate::shm::region::validate_name(name).map_err(|e| match e {
                        Error::InvalidName { why, .. } => Error::endpoint(
                            endpoint,
                            "name",
                            format!("{why} (or give an absolute socket path: {scheme}:/PATH)"),
                        ),
                        other => other,
                    })?;
                }
                Ok(if scheme == "shm" {
                    Endpoint::Shm(name.to_owned())
                } else {
                    Endpoint::Mpsc(name.to_owned())
                })
            }
            "unix" => Ok(Endpoint::Unix(UnixAddr::parse(
                endpoint,
                need("path", "PATH")?,
            )?)),
            "seqpacket" => Ok(Endpoint::Seqpacket(UnixAddr::parse(
                endpoint,
                need("path", "PATH")?,
            )?)),
            "tcp" => parse_tcp(endpoint, need("host", "HOST:PORT")?),
            "pipe" => match rest {
                None => Ok(Endpoint::Pipe { read: 0, write: 1 }),
                Some(fds) => parse_fds(endpoint, fds),
            },
            "" => Err(Error::endpoint(
                endpoint,
                "scheme",
                "is missing (shm:, mpsc:, unix:, seqpacket:, tcp: or pipe)",
            )),
            other => Err(Error::endpoint(
                endpoint,
                "scheme",
                format!("{other:?} is unknown (use shm, mpsc, unix, seqpacket, tcp or pipe)"),
            )),
        }
    }

    /// Whether the endpoint uses the shared memory model.
    pub fn is_shared_memory(&self) -> bool {
        matches!(self, Endpoint::Shm(_) | Endpoint::Mpsc(_))
    }

    /// The Unix socket a shared-memory endpoint meets at: `@shmsg.NAME`,
    /// or the path; `None` for the other endpoints.
    pub fn rendezvous(&self) -> Option<UnixAddr> {
        match self {
            Endpoint::Shm(name) | Endpoint::Mpsc(name) => Some(rendezvous_addr(name)),
            _ => None,
        }
    }
}

fn rendezvous_addr(name: &str) -> UnixAddr {
    if name.starts_with('/') {
        UnixAddr::Path(name.into())
    } else {
        UnixAddr::Abstract(format!("{SOCKET_PREFIX}{name}").into_bytes())
    }
}

fn parse_tcp(endpoint: &str, rest: &str) -> Result<Endpoint> {
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| Error::endpoint(endpoint, "port", "is missing (write tcp:HOST:PORT)"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(Error::endpoint(endpoint, "host", "is empty"));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(Error::endpoint(endpoint, "host", "contains a space or '/'"));
    }
    let port = port.parse::<u16>().map_err(|_| {
        Error::endpoint(
            endpoint,
            "port",
            format!("{port:?} is not a number from 0 to 65535"),
        )
    })?;
    Ok(Endpoint::Tcp {
        host: host.to_owned(),
        port,
    })
}

fn parse_fds(endpoint: &str, fds: &str) -> Result<Endpoint> {
    let parse = |part: &'static str, s: &str| {
        s.parse::<RawFd>()
            .ok()
            .filter(|fd| *fd >= 0)
            .ok_or_else(|| Error::endpoint(endpoint, part, format!("{s:?} is not a descriptor")))
    };
    let (read, write) = fds.split_once(',').ok_or_else(|| {
        Error::endpoint(endpoint, "descriptors", "must be two numbers: pipe:RFD,WFD")
    })?;
    let (read, write) = (
        parse("read descriptor", read)?,
        parse("write descriptor", write)?,
    );
    if read == write {
        return Err(Error::endpoint(endpoint, "descriptors", "must differ"));
    }
    Ok(Endpoint::Pipe { read, write })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Shm(name) => write!(f, "shm:{name}"),
            Endpoint::Mpsc(name) => write!(f, "mpsc:{name}"),
            Endpoint::Unix(addr) => write!(f, "unix:{addr}"),
            Endpoint::Seqpacket(addr) => write!(f, "seqpacket:{addr}"),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Endpoint::Pipe { read: 0, write: 1 } => f.write_str("pipe"),
            Endpoint::Pipe { read, write } => write!(f, "pipe:{read},{write}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse(s)
    }
}

/// Settings for [`connect_with`] and [`listen_with`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The largest message this side accepts (`None`: 16 MiB for message
    /// passing, 64 KiB for shared memory, or what the capacity allows).
    /// The sender's limit is the peer's setting.
    pub max_message: Option<usize>,
    /// The ring capacity per direction of a shared-memory endpoint created
    /// by [`listen_with`] (`None`: 1 MiB, or enough for `max_message`).
    pub capacity: Option<usize>,
    /// How long connecting and the hello may take; a listener drops a
    /// connection whose hello has not arrived by then.
    pub timeout: Duration,
    /// Which local processes a listener on a Unix socket (`unix:`,
    /// `seqpacket:`, `shm:`, `mpsc:`) lets in, and which listeners a client
    /// talks to: by default those of its own user. Not used by TCP, which
    /// carries no credentials. See [`crate::peer`].
    pub allow: Allow,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_message: None,
            capacity: None,
            timeout: Duration::from_secs(10),
            allow: Allow::SameUser,
        }
    }
}

impl Options {
    fn message_passing_max(&self) -> usize {
        self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE)
    }

    /// The geometry of the rings a shared-memory listener creates.
    fn geometry(&self) -> Result<Geometry> {
        ring_geometry(self.max_message, self.capacity)
    }
}

/// The geometry of a ring for messages of up to `max_message` bytes
/// (`None`: 64 KiB, or what `capacity` allows) of `capacity` bytes (`None`:
/// 1 MiB, or enough for two of the largest messages).
fn ring_geometry(max_message: Option<usize>, capacity: Option<usize>) -> Result<Geometry> {
    let max_message = match (max_message, capacity) {
        (Some(max), _) => max,
        (None, Some(capacity)) => Geometry::max_message_for(capacity).min(DEFAULT_MAX_MESSAGE),
        (None, None) => DEFAULT_SHM_MAX_MESSAGE,
    };
    let capacity = match capacity {
        Some(capacity) => capacity,
        // The smallest power of two that holds two largest records; a
        // maximum too large for that is refused, not overflowed.
        None => max_message
            .checked_add(7 + 2 * RECORD_HEADER)
            .and_then(|n| round8(n - 7).checked_mul(2))
            .and_then(usize::checked_next_power_of_two)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "maximum message size {max_message} is too large for a ring"
                ))
            })?
            .max(DEFAULT_CAPACITY),
    };
    Geometry::new(capacity, max_message)
}

/// Connects to `endpoint` with default [`Options`].
pub fn connect(endpoint: &str) -> Result<Channel> {
    connect_with(endpoint, &Options::default())
}

/// Connects to `endpoint`: meets a shared-memory listener at its socket and
/// maps the rings it hands out, or connects a socket and exchanges hellos,
/// or takes over the pipe descriptors. Waits at most the options' timeout.
///
/// A Unix-socket listener that does not let this process in makes this
/// [`Error::PeerRefused`].
///
/// `pipe` and `pipe:RFD,WFD` transfer ownership of the descriptors to the
/// channel, as [`std::os::fd::OwnedFd::from_raw_fd`] does: they must be
/// descriptors this process inherited (or created) for the channel and uses
/// for nothing else, and each may be given to one channel only. Stdin and
/// stdout are moved to new descriptors and `/dev/null` takes their place.
pub fn connect_with(endpoint: &str, options: &Options) -> Result<Channel> {
    let max = options.message_passing_max();
    let deadline = Deadline::after(options.timeout);
    match Endpoint::parse(endpoint)? {
        Endpoint::Shm(name) => connect_rings(&name, Kind::Shm, options, deadline),
        Endpoint::Mpsc(name) => connect_rings(&name, Kind::Mpsc, options, deadline),
        Endpoint::Unix(addr) => {
            let fd = unix::connect_until(&addr, SocketKind::Stream, deadline)?;
            let peer = options.allow.check_listener(&fd)?;
            Ok(
                stream_channel(StreamChannel::handshake(fd, max, options.timeout)?)?
                    .with_peer(Some(peer)),
            )
        }
        Endpoint::Seqpacket(addr) => {
            let fd = unix::connect_until(&addr, SocketKind::Seqpacket, deadline)?;
            let peer = options.allow.check_listener(&fd)?;
            let left = deadline.remaining().unwrap_or(options.timeout);
            let channel = SeqpacketChannel::handshake(fd, max, left)?;
            Ok(seqpacket_channel(channel)?.with_peer(Some(peer)))
        }
        Endpoint::Tcp { host, port } => {
            let stream = tcp_connect(endpoint, &host, port, options.timeout)?;
            stream_channel(StreamChannel::handshake(stream, max, options.timeout)?)
        }
        Endpoint::Pipe { read, write } => {
            let (read, write) = take_pipe_fds(endpoint, read, write)?;
            stream_channel(StreamChannel::handshake_split(
                read,
                write,
                max,
                options.timeout,
            )?)
        }
    }
}

/// The client's side of the rendezvous (see [`shm`](self::shm)).
fn connect_rings(name: &str, kind: Kind, options: &Options, deadline: Deadline) -> Result<Channel> {
    let scheme = match kind {
        Kind::Shm => "shm",
        Kind::Mpsc => "mpsc",
    };
    let fd = unix::connect_until(&rendezvous_addr(name), SocketKind::Seqpacket, deadline).map_err(
        |e| match e {
            // Name the endpoint, not the socket it meets at.
            Error::Io { context, source } => Error::Io {
                context: context.replacen(
                    &format!(
                        "{}{}",
                        SocketKind::Seqpacket.scheme(),
                        rendezvous_addr(name)
                    ),
                    &format!("{scheme}:{name}"),
                    1,
                ),
                source,
            },
            other => other,
        },
    )?;
    let peer = options.allow.check_listener(&fd)?;
    let hello = Msg {
        code: kind as u32,
        value: options.max_message.unwrap_or(0) as u64,
    };
    if let Err(e) = shm::send(fd.as_fd(), hello, &[]) {
        // A listener that refused us may have closed already: its answer
        // is still waiting.
        return Err(match shm::recv(fd.as_fd(), 0, Deadline::Now) {
            Err(refused @ Error::PeerRefused(_)) => refused,
            _ => e,
        });
    }
    let shm::Received { msg, fds } = shm::recv(fd.as_fd(), 2, deadline).map_err(|e| match e {
        Error::Empty => Error::Timeout,
        other => other,
    })?;
    let field = match msg.code {
        answer::OK => None,
        answer::VERSION => Some("rendezvous version"),
        answer::KIND => Some("endpoint kind (shm: or mpsc:)"),
        answer::NO_RINGS => {
            return Err(Error::io(
                format!("the listener at {name} could not make the rings"),
                std::io::Error::other("memfd_create, fallocate or mmap failed there"),
            ));
        }
        _ => Some("rendezvous answer"),
    };
    if let Some(field) = field {
        return Err(Error::Handshake {
            field,
            expected: kind as u64,
            found: msg.value,
        });
    }
    let [requests, replies]: [OwnedFd; 2] =
        fds.try_into()
            .map_err(|fds: Vec<OwnedFd>| Error::Handshake {
                field: "descriptors in the rendezvous answer",
                expected: 2,
                found: fds.len() as u64,
            })?;
    let requests = Arc::new(shm::region_from(requests)?);
    let replies = Arc::new(shm::region_from(replies)?);
    let largest_reply = replies.geometry().max_message();
    if let Some(max) = options.max_message
        && largest_reply > max
    {
        return Err(Error::Handshake {
            field: "largest reply (the reply ring's maximum message)",
            expected: max as u64,
            found: largest_reply as u64,
        });
    }
    // The listener attaches its sides before it answers: rings it never
    // attached (epoch 0) would leave this side waiting for a peer that
    // never comes. (One that attached and died since is reported as
    // Disconnected by the rings.)
    let attached = |region: &Region, offset| region.header_word(offset) != 0;
    if !attached(&requests, offsets::CONSUMER_EPOCH) || !attached(&replies, offsets::PRODUCER_EPOCH)
    {
        return Err(Error::Handshake {
            field: "listener's attachment to the rings",
            expected: 1,
            found: 0,
        });
    }
    let channel = match kind {
        Kind::Shm => Channel::new(Producer::attach(&requests)?, Consumer::attach(&replies)?),
        Kind::Mpsc => Channel::new(
            mpmc::Producer::attach(&requests)?,
            Consumer::attach(&replies)?,
        ),
    };
    let ack = Msg {
        code: ACK_ATTACHED,
        value: 0,
    };
    shm::send(fd.as_fd(), ack, &[])?;
    Ok(channel.with_peer(Some(peer)).with_link(fd))
}

/// Listens on `endpoint` with default [`Options`].
pub fn listen(endpoint: &str) -> Result<Listener> {
    listen_with(endpoint, &Options::default())
}

/// Binds `endpoint` so that peers can [`connect`] to it.
///
/// A `shm:` or `mpsc:` endpoint binds its Unix socket (`@shmsg.NAME`, or
/// the path); an `mpsc:` listener also makes its ring now. A `unix:`,
/// `seqpacket:` or shared-memory path is removed when the listener is
/// dropped; a stale socket file nobody listens on is replaced. A name or
/// path another live listener holds is an [`Error::Io`] of kind
/// `AddrInUse`.
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
    pub fn accept(&mut self) -> Result<Channel> {
        self.accept_until(Deadline::Never)
    }

    /// As [`Listener::accept`], waiting at most `timeout` in all.
    pub fn accept_timeout(&mut self, timeout: Duration) -> Result<Channel> {
        self.accept_until(Deadline::after(timeout))
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
    /// Dropping it wakes the thread, which then exits.
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Channels (and refused peers) waiting for an `mpsc:` listener's `accept`.
pub const MAX_QUEUED: usize = crate::shm::layout::MAX_PRODUCERS;

#[derive(Default)]
struct Queue {
    state: std::sync::Mutex<Queued>,
    ready: std::sync::Condvar,
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
        going_on
    }
}

impl Background {
    fn start(mut handshakes: Handshakes) -> Result<Background> {
        let (stop_read, stop_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| Error::io("cannot create the listener's stop pipe", e))?;
        handshakes.set_stop(stop_read);
        let queue = Arc::new(Queue::default());
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
            stop: Some(stop_write),
            thread: Some(thread),
        })
    }

    /// A refused peer first (to report it), then the oldest channel (its
    /// client may have left already, as a socket's may: what it sent is
    /// still there to receive).
    fn next(&mut self, deadline: Deadline) -> Result<Channel> {
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

fn tcp_connect(endpoint: &str, host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve the host of {endpoint}"), e))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .map_err(|e| Error::io("cannot set TCP_NODELAY", e))?;
                return Ok(stream);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::TimedOut => Error::io(
            format!("no answer from {addr} ({endpoint}) within {timeout:?}"),
            e,
        ),
        Some((addr, e)) => Error::io(format!("cannot connect to {addr} ({endpoint})"), e),
        None => Error::endpoint(endpoint, "host", "resolves to no address"),
    })
}

/// Takes ownership of the pipe descriptors `read` and `write`. For stdin and
/// stdout, the process's descriptors 0 and 1 are then pointed at
/// `/dev/null`, so that nothing else (a stray `print!`) can write into the
/// channel's stream or read from it.
fn take_pipe_fds(endpoint: &str, read: RawFd, write: RawFd) -> Result<(OwnedFd, OwnedFd)> {
    for (fd, part) in [(read, "read descriptor"), (write, "write descriptor")] {
        // SAFETY: `fd` is only borrowed for this call; fcntl on a closed
        // number fails with EBADF and touches nothing.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if rustix::io::fcntl_getfd(borrowed).is_err() {
            return Err(Error::endpoint(
                endpoint,
                part,
                format!("{fd} is not an open descriptor"),
            ));
        }
    }
    let own = |fd: RawFd| -> Result<OwnedFd> {
        if fd > 2 {
            // SAFETY: `fd` is open (checked above) and the endpoint string
            // hands it to this channel, which becomes its only owner: as
            // documented on `connect`, a `pipe:RFD,WFD` endpoint transfers
            // ownership of inherited descriptors that nothing else uses.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        // A standard descriptor: move it to a new number and leave /dev/null
        // in its place.
        // SAFETY: as above, borrowed for the duration of the call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let moved = rustix::io::fcntl_dupfd_cloexec(borrowed, 3)
            .map_err(|e| Error::io("cannot duplicate a standard descriptor", e))?;
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::io("cannot open /dev/null", e))?;
        // SAFETY: `fd` is an open standard descriptor, replaced atomically by
        // dup2; nothing in this process owns it as an `OwnedFd`.
        let mut target = unsafe { OwnedFd::from_raw_fd(fd) };
        let replaced = rustix::io::dup2(&null, &mut target);
        // The standard descriptor stays open (now /dev/null): forget it.
        std::mem::forget(target);
        replaced.map_err(|e| Error::io("cannot redirect a standard descriptor", e))?;
        Ok(moved)
    };
    Ok((own(read)?, own(write)?))
}

fn stream_channel(channel: StreamChannel) -> Result<Channel> {
    let (tx, rx) = channel.split();
    Ok(Channel::new(tx, rx))
}

fn seqpacket_channel(channel: SeqpacketChannel) -> Result<Channel> {
    let (tx, rx) = channel.split()?;
    Ok(Channel::new(tx, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_endpoints_name_their_socket() {
        for scheme in ["shm", "mpsc"] {
            let named = Endpoint::parse(&format!("{scheme}:orders")).unwrap();
            assert_eq!(
                named.rendezvous(),
                Some(UnixAddr::Abstract(b"shmsg.orders".to_vec()))
            );
            assert_eq!(named.to_string(), format!("{scheme}:orders"));
            let path = Endpoint::parse(&format!("{scheme}:/run/app/orders")).unwrap();
            assert_eq!(
                path.rendezvous(),
                Some(UnixAddr::Path("/run/app/orders".into()))
            );
            assert_eq!(path.to_string(), format!("{scheme}:/run/app/orders"));
            // The longest name whose socket name fits, and one byte more.
            let longest = "n".repeat(MAX_SOCKET_NAME);
            assert!(Endpoint::parse(&format!("{scheme}:{longest}")).is_ok());
            for bad in [
                format!("{longest}n"),
                "../x".into(),
                "a/b".into(),
                String::new(),
            ] {
                assert!(
                    matches!(
                        Endpoint::parse(&format!("{scheme}:{bad}")),
                        Err(Error::InvalidEndpoint { part: "name", .. })
                    ),
                    "{scheme}:{bad}"
                );
            }
            let too_long = format!("{scheme}:/{}", "p".repeat(107));
            assert!(Endpoint::parse(&too_long).is_err());
        }
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:1").unwrap().rendezvous(),
            None
        );
    }
}
