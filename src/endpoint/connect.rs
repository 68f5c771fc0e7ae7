//! The client's side: [`connect`] and [`connect_with`].

use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::parse::{Endpoint, rendezvous_addr};
use super::shm::{self, ACK_ATTACHED, Kind, Msg, answer};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::msg::seqpacket::SeqpacketChannel;
use crate::msg::stream::StreamChannel;
use crate::msg::unix::{self, SocketKind};
use crate::options::{Deadline, Options};
use crate::shm::Region;
use crate::shm::layout::offsets;
use crate::shm::mpmc;
use crate::shm::spsc::{Consumer, Producer};

/// Connects to `endpoint` with default [`Options`].
///
/// ```
/// use shmsg::{Receiver, Sender};
///
/// let endpoint = format!("unix:@shmsg-doc-connect-{}", std::process::id());
/// let mut listener = shmsg::listen(&endpoint)?;
/// let server = std::thread::spawn(move || -> shmsg::Result<()> {
///     let mut channel = listener.accept()?;
///     let mut buf = Vec::new();
///     channel.recv(&mut buf)?;
///     channel.send(&buf) // an echo
/// });
///
/// let mut channel = shmsg::connect(&endpoint)?;
/// channel.send(b"ping")?;
/// let mut reply = Vec::new();
/// channel.recv(&mut reply)?;
/// assert_eq!(reply, b"ping");
/// server.join().unwrap()?;
/// # Ok::<(), shmsg::Error>(())
/// ```
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
///
/// ```
/// use std::time::Duration;
/// use shmsg::{Error, Options, Receiver, Sender};
///
/// // Messages of at most 4 KiB in either direction, and a short handshake.
/// let options = Options {
///     max_message: Some(4096),
///     timeout: Duration::from_secs(5),
///     ..Options::default()
/// };
/// let endpoint = format!("shm:doc-connect-with-{}", std::process::id());
/// let mut listener = shmsg::listen_with(&endpoint, &options)?;
/// let client = std::thread::spawn({
///     let (endpoint, options) = (endpoint.clone(), options.clone());
///     move || shmsg::connect_with(&endpoint, &options)
/// });
/// let mut server = listener.accept()?;
/// let mut client = client.join().unwrap()?;
///
/// client.send(&[7; 4096])?;
/// assert!(matches!(client.send(&[7; 4097]), Err(Error::MessageTooLarge { .. })));
/// let mut buf = Vec::new();
/// assert_eq!(server.recv(&mut buf)?, 4096);
///
/// // Nobody listens here: an I/O error at once, not a wait.
/// let nobody = format!("unix:@shmsg-doc-nobody-{}", std::process::id());
/// assert!(matches!(shmsg::connect_with(&nobody, &options), Err(Error::Io { .. })));
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    let shm::Received { msg, fds } =
        shm::recv(fd.as_fd(), shm::ANSWER_FDS, deadline).map_err(|e| match e {
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
    let [a, b, c, d, e, f]: [OwnedFd; shm::ANSWER_FDS] =
        fds.try_into()
            .map_err(|fds: Vec<OwnedFd>| Error::Handshake {
                field: "descriptors in the rendezvous answer",
                expected: shm::ANSWER_FDS as u64,
                found: fds.len() as u64,
            })?;
    let requests = Arc::new(shm::region_from([a, b, c])?);
    let replies = Arc::new(shm::region_from([d, e, f])?);
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
pub(super) fn take_pipe_fds(
    endpoint: &str,
    read: RawFd,
    write: RawFd,
) -> Result<(OwnedFd, OwnedFd)> {
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

pub(super) fn stream_channel(channel: StreamChannel) -> Result<Channel> {
    let (tx, rx) = channel.split();
    Ok(Channel::new(tx, rx))
}

pub(super) fn seqpacket_channel(channel: SeqpacketChannel) -> Result<Channel> {
    let (tx, rx) = channel.split()?;
    Ok(Channel::new(tx, rx))
}
