//! Endpoint strings: one string picks the model and the transport.
//!
//! | endpoint | model | what it is |
//! |---|---|---|
//! | `shm:NAME` | shared memory | two rings (one per direction) in regions `NAME` and `NAME.reply` under `/dev/shm` |
//! | `mpsc:NAME` | shared memory | the multi-producer ring ([`crate::shm::mpmc`]) in region `NAME` and a reply ring `NAME.reply`; other producers may attach to `NAME` directly |
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
//! // Server: any endpoint string works here, e.g. "shm:orders" or "tcp:0.0.0.0:7000".
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
//! A `shm:` endpoint carries one connection at a time (a ring has one
//! producer and one consumer); an `mpsc:` endpoint's `accept` returns a
//! channel that receives from every producer attached to the ring, with a
//! reply path to one connected client; socket endpoints accept any number.

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
use crate::shm::layout::RingKind;
use crate::shm::layout::{RECORD_HEADER, offsets, round8};
use crate::shm::mpmc;
use crate::shm::spsc::{Consumer, Producer};
use crate::shm::{Geometry, Region};

/// The default maximum message size of message-passing endpoints (16 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;
/// The default ring capacity of a shared-memory endpoint, per direction.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The default maximum message size of a shared-memory endpoint (64 KiB).
pub const DEFAULT_SHM_MAX_MESSAGE: usize = 64 << 10;
/// Suffix of the region that carries a shared-memory endpoint's replies.
pub const REPLY_SUFFIX: &str = ".reply";

/// A parsed endpoint string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `shm:NAME`: a pair of shared-memory rings.
    Shm(String),
    /// `mpsc:NAME`: a multi-producer ring and a reply ring.
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
                crate::shm::region::validate_name(name).map_err(|e| match e {
                    Error::InvalidName { why, .. } => Error::endpoint(endpoint, "name", why),
                    other => other,
                })?;
                if name.ends_with(REPLY_SUFFIX) {
                    return Err(Error::endpoint(
                        endpoint,
                        "name",
                        format!("ends with {REPLY_SUFFIX:?}, which names the reply ring"),
                    ));
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
    /// How long connecting and the hello may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_message: None,
            capacity: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    fn message_passing_max(&self) -> usize {
        self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE)
    }

    /// The geometry of the rings a shared-memory listener creates.
    fn geometry(&self) -> Result<Geometry> {
        let max_message = match (self.max_message, self.capacity) {
            (Some(max), _) => max,
            (None, Some(capacity)) => Geometry::max_message_for(capacity).min(DEFAULT_MAX_MESSAGE),
            (None, None) => DEFAULT_SHM_MAX_MESSAGE,
        };
        let capacity = match self.capacity {
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
}

/// Connects to `endpoint` with default [`Options`].
pub fn connect(endpoint: &str) -> Result<Channel> {
    connect_with(endpoint, &Options::default())
}

/// Connects to `endpoint`: opens a shared-memory endpoint made by
/// [`listen`], or connects a socket and exchanges hellos, or takes over the
/// pipe descriptors.
///
/// `pipe` and `pipe:RFD,WFD` transfer ownership of the descriptors to the
/// channel, as [`std::os::fd::OwnedFd::from_raw_fd`] does: they must be
/// descriptors this process inherited (or created) for the channel and uses
/// for nothing else, and each may be given to one channel only. Stdin and
/// stdout are moved to new descriptors and `/dev/null` takes their place.
pub fn connect_with(endpoint: &str, options: &Options) -> Result<Channel> {
    let max = options.message_passing_max();
    match Endpoint::parse(endpoint)? {
        Endpoint::Shm(name) => {
            let requests = Arc::new(Region::open(&name)?);
            let replies = Arc::new(Region::open(&reply_name(&name))?);
            refuse_dead_listener(&requests)?;
            let tx = Producer::attach(&requests)?;
            let rx = Consumer::attach(&replies)?;
            Ok(Channel::new(tx, rx))
        }
        Endpoint::Mpsc(name) => {
            let requests = Arc::new(Region::open(&name)?);
            let replies = Arc::new(Region::open(&reply_name(&name))?);
            refuse_dead_listener(&requests)?;
            let tx = mpmc::Producer::attach(&requests)?;
            let rx = Consumer::attach(&replies)?;
            Ok(Channel::new(tx, rx))
        }
        Endpoint::Unix(addr) => {
            let fd = unix::connect(&addr, SocketKind::Stream, options.timeout)?;
            stream_channel(StreamChannel::handshake(fd, max, options.timeout)?)
        }
        Endpoint::Seqpacket(addr) => {
            seqpacket_channel(SeqpacketChannel::connect(&addr, max, options.timeout)?)
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

/// Listens on `endpoint` with default [`Options`].
pub fn listen(endpoint: &str) -> Result<Listener> {
    listen_with(endpoint, &Options::default())
}

/// Creates or binds `endpoint` so that peers can [`connect`] to it.
///
/// For `shm:NAME` this creates the two regions (failing if they exist; see
/// `shmsg clean` for leftovers of dead processes); they are removed when the
/// listener is dropped. A `unix:` or `seqpacket:` path is removed when the
/// listener is dropped; a stale socket file nobody listens on is replaced.
pub fn listen_with(endpoint: &str, options: &Options) -> Result<Listener> {
    let parsed = Endpoint::parse(endpoint)?;
    let kind = match &parsed {
        Endpoint::Shm(name) => {
            let geometry = options.geometry()?;
            let requests = Arc::new(Region::create(name, geometry)?);
            let replies = Arc::new(Region::create(&reply_name(name), geometry)?);
            ListenerKind::Shm {
                requests,
                replies,
                seen: 0,
            }
        }
        Endpoint::Mpsc(name) => {
            let geometry = options.geometry()?;
            let requests = Arc::new(Region::create_kind(name, geometry, RingKind::Mpsc)?);
            let replies = Arc::new(Region::create(&reply_name(name), geometry)?);
            ListenerKind::Mpsc { requests, replies }
        }
        Endpoint::Unix(addr) => ListenerKind::Socket(UnixListener::bind(addr, SocketKind::Stream)?),
        Endpoint::Seqpacket(addr) => {
            ListenerKind::Socket(UnixListener::bind(addr, SocketKind::Seqpacket)?)
        }
        Endpoint::Tcp { host, port } => {
            let listener = TcpListener::bind((host.as_str(), *port))
                .map_err(|e| Error::io(format!("cannot listen on {endpoint}"), e))?;
            ListenerKind::Tcp(listener)
        }
        Endpoint::Pipe { .. } => ListenerKind::Pipe(Some(parsed.clone())),
    };
    Ok(Listener {
        endpoint: parsed,
        kind,
        options: options.clone(),
    })
}

/// An endpoint waiting for peers: [`Listener::accept`] returns a [`Channel`]
/// per peer.
pub struct Listener {
    endpoint: Endpoint,
    kind: ListenerKind,
    options: Options,
}

enum ListenerKind {
    Shm {
        requests: Arc<Region>,
        replies: Arc<Region>,
        /// The request ring's producer epoch when the last connection was
        /// accepted, moved on to its detach value.
        seen: u64,
    },
    /// The multi-producer ring's consumer and the reply ring's producer,
    /// attached by `accept` (one connection with a reply path at a time).
    Mpsc {
        requests: Arc<Region>,
        replies: Arc<Region>,
    },
    Socket(UnixListener),
    Tcp(TcpListener),
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
        match (&self.kind, &self.endpoint) {
            (ListenerKind::Tcp(listener), _) => match listener.local_addr() {
                Ok(SocketAddr::V4(addr)) => format!("tcp:{addr}"),
                Ok(SocketAddr::V6(addr)) => format!("tcp:[{}]:{}", addr.ip(), addr.port()),
                Err(_) => self.endpoint.to_string(),
            },
            (_, endpoint) => endpoint.to_string(),
        }
    }

    /// Waits for the next peer and returns the channel to it.
    pub fn accept(&mut self) -> Result<Channel> {
        self.accept_until(Deadline::Never)
    }

    /// As [`Listener::accept`], waiting at most `timeout`.
    pub fn accept_timeout(&mut self, timeout: Duration) -> Result<Channel> {
        self.accept_until(Deadline::after(timeout))
    }

    /// As [`Listener::accept`], waiting for a peer until `deadline` (the
    /// handshake then has the options' timeout).
    fn accept_until(&mut self, deadline: Deadline) -> Result<Channel> {
        let max = self.options.message_passing_max();
        let handshake = self.options.timeout;
        match &mut self.kind {
            ListenerKind::Shm {
                requests,
                replies,
                seen,
            } => accept_shm(requests, replies, seen, deadline),
            // Producers of a multi-producer ring come and go on their own:
            // the channel receives from all of them.
            ListenerKind::Mpsc { requests, replies } => {
                let rx = mpmc::Consumer::attach(requests)?;
                let tx = Producer::attach(replies)?;
                Ok(Channel::new(tx, rx))
            }
            ListenerKind::Socket(listener) => {
                let fd = listener.accept_until(deadline)?;
                match listener.kind() {
                    SocketKind::Stream => {
                        stream_channel(StreamChannel::handshake(fd, max, handshake)?)
                    }
                    SocketKind::Seqpacket => {
                        seqpacket_channel(SeqpacketChannel::handshake(fd, max, handshake)?)
                    }
                }
            }
            ListenerKind::Tcp(listener) => {
                if let Some(timeout) = deadline.remaining()
                    && !readable_within(listener, timeout)?
                {
                    return Err(Error::Timeout);
                }
                let (stream, _) = listener
                    .accept()
                    .map_err(|e| Error::io("cannot accept a TCP connection", e))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| Error::io("cannot set TCP_NODELAY", e))?;
                stream_channel(StreamChannel::handshake(stream, max, handshake)?)
            }
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

/// A shared-memory endpoint whose listener (the regions' creator) died
/// left its regions behind: nobody will accept, so messages sent there
/// would be lost. [`Error::Disconnected`] at connect instead.
fn refuse_dead_listener(requests: &Region) -> Result<()> {
    if requests.creator_alive() {
        Ok(())
    } else {
        Err(Error::Disconnected)
    }
}

fn reply_name(name: &str) -> String {
    format!("{name}{REPLY_SUFFIX}")
}

/// Waits until a client has attached the request ring's producer since the
/// last accept, then attaches this side; [`Error::Timeout`] if none has by
/// `deadline`.
fn accept_shm(
    requests: &Arc<Region>,
    replies: &Arc<Region>,
    seen: &mut u64,
    deadline: Deadline,
) -> Result<Channel> {
    let mut sleep = Duration::from_micros(50);
    loop {
        // 0 never attached, odd attached, even detached; a client that
        // connected and left before we looked still moved it past `seen`.
        let epoch = requests.header_word(offsets::PRODUCER_EPOCH);
        if epoch > *seen {
            let rx = Consumer::attach(requests)?;
            let tx = Producer::attach(replies)?;
            *seen = epoch + epoch % 2;
            return Ok(Channel::new(tx, rx));
        }
        if deadline.passed() {
            return Err(Error::Timeout);
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(5));
    }
}

fn readable_within(listener: &impl AsFd, timeout: Duration) -> Result<bool> {
    let timespec = rustix::event::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    loop {
        let mut fds = [rustix::event::PollFd::new(
            listener,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timespec)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("cannot poll the listener", e)),
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
