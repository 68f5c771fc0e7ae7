//! Accepting peers without letting any one of them stall the listener.
//!
//! A listener keeps every connection whose hello has not arrived yet in a
//! pending set, and waits for all of them and for new connections in one
//! `poll`. Reading a hello never blocks: a stream hello is collected as its
//! bytes arrive, a seqpacket or rendezvous hello is one datagram. Whichever
//! connection completes first is returned; a connection whose hello has not
//! completed within the options' timeout is dropped, as is one that sends
//! something that is not a hello. So a silent or slow client costs the
//! listener one descriptor and a few bytes until its hello deadline, and
//! `accept_timeout` returns by its own deadline whatever the clients do.
//!
//! Unix-socket peers are checked against the [`Allow`] policy before
//! anything else is read from them (see [`crate::peer`]).

use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, epoll};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, SocketFlags};

use super::ring_geometry;
use super::shared::SharedConsumer;
use super::shm::{self as rendezvous, ACK_ATTACHED, Kind, Msg, answer};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::msg::frame::{HELLO_LEN, Hello};
use crate::msg::seqpacket::SeqpacketChannel;
use crate::msg::stream::StreamChannel;
use crate::msg::unix::UnixListener;
use crate::options::Deadline;
use crate::options::Options;
use crate::peer::{Allow, Credentials};
use crate::shm::layout::{Geometry, offsets};
use crate::shm::spsc::{Consumer, Producer};
use crate::shm::{Region, mpmc};

/// Connections whose hello is still awaited, at most; a new one beyond
/// this drops the oldest (the closest to its own deadline).
pub(super) const MAX_PENDING: usize = 256;
/// Connections of a shared-memory listener that may hold rings they have
/// not acknowledged yet: bounds what clients that never acknowledge cost
/// (two rings each). Beyond it, the oldest such connection is dropped once
/// it has held its rings for [`ATTACH_GRACE`]; until then, new hellos
/// wait unread.
pub(super) const MAX_ATTACHING: usize = 32;
/// How long a client may take to acknowledge its rings before a newer
/// client may take its place (when [`MAX_ATTACHING`] hold rings). A client
/// acknowledges within microseconds on an idle machine, but a burst of
/// client processes starting at once on a loaded one can take tens of
/// milliseconds each: dropping the oldest at once would hand live clients
/// a channel whose listener side is already gone.
pub(super) const ATTACH_GRACE: Duration = Duration::from_secs(1);
/// Connections taken from the kernel's queue per round, so that pending
/// hellos are served between bursts.
const ACCEPTS_PER_ROUND: usize = 64;

/// The socket a listener accepts on.
pub(super) enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Socket {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Unix(listener) => listener.as_fd(),
            Socket::Tcp(listener) => listener.as_fd(),
        }
    }

    /// The next connection in the kernel's queue, if any (never waits).
    fn try_accept(&self) -> Result<Option<OwnedFd>> {
        match self {
            Socket::Unix(listener) => match listener.accept_until(Deadline::Now) {
                Ok(fd) => Ok(Some(fd)),
                Err(Error::Timeout) => Ok(None),
                Err(e) => Err(e),
            },
            Socket::Tcp(listener) => loop {
                match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
                    Ok(fd) => {
                        rustix::net::sockopt::set_tcp_nodelay(&fd, true)
                            .map_err(|e| Error::io("cannot set TCP_NODELAY", e))?;
                        return Ok(Some(fd));
                    }
                    Err(Errno::INTR | Errno::CONNABORTED) => {}
                    Err(Errno::AGAIN) => return Ok(None),
                    Err(e) => return Err(Error::io("cannot accept a TCP connection", e)),
                }
            },
        }
    }
}

/// What a listener speaks once a peer is connected.
pub(super) enum Protocol {
    /// Frames over a byte stream (`unix:`, `tcp:`).
    Stream,
    /// `seqpacket:`.
    Seqpacket,
    /// The shared-memory rendezvous (`shm:`, `mpsc:`).
    Rings(Rings),
}

/// How a shared-memory listener makes the rings of a connection.
pub(super) struct Rings {
    kind: Kind,
    /// The geometry of the request rings (and of reply rings whose client
    /// asks for no particular size).
    geometry: Geometry,
    /// `mpsc:`: the one request ring every client gets.
    shared: Option<Shared>,
}

/// The ring of an `mpsc:` listener and its consumer, attached at `listen`
/// and held for the listener's life (and by every channel it returned), so
/// that no client can ever take the consumer's place. Its producers see
/// [`Error::Disconnected`] once the listener and all its channels are gone.
struct Shared {
    region: Arc<Region>,
    consumer: SharedConsumer,
}

impl Rings {
    /// `shm:`: fresh rings for every connection.
    pub(super) fn per_connection(options: &Options) -> Result<Rings> {
        Ok(Rings {
            kind: Kind::Shm,
            geometry: super::geometry(options)?,
            shared: None,
        })
    }

    /// `mpsc:`: one multi-producer ring, made now, and its consumer.
    pub(super) fn shared(options: &Options) -> Result<Rings> {
        let geometry = super::geometry(options)?;
        let region = Arc::new(Region::anonymous_kind(
            geometry,
            crate::shm::layout::RingKind::Mpsc,
        )?);
        let consumer = mpmc::Consumer::attach(&region)?;
        let consumer =
            SharedConsumer::new(consumer, geometry.max_message(), region.shared_signals());
        Ok(Rings {
            kind: Kind::Mpsc,
            geometry,
            shared: Some(Shared { region, consumer }),
        })
    }

    /// Makes the rings for a client that asked for replies of up to
    /// `wanted` bytes (0: the listener's size), attaches this side, and
    /// returns the two regions to send and this side's channel.
    fn make(&self, wanted: u64) -> Result<(Arc<Region>, Arc<Region>, Channel)> {
        // Never more than the listener's own maximum: what a client asks
        // for must not decide how much memory the listener gives away.
        let reply_geometry = match usize::try_from(wanted).unwrap_or(usize::MAX) {
            0 => self.geometry,
            wanted if wanted >= self.geometry.max_message() => self.geometry,
            wanted => ring_geometry(Some(wanted), None)?,
        };
        let replies = Arc::new(Region::anonymous(reply_geometry)?);
        let tx = Producer::attach(&replies)?;
        match &self.shared {
            None => {
                let requests = Arc::new(Region::anonymous(self.geometry)?);
                let rx = Consumer::attach(&requests)?;
                Ok((requests, replies, Channel::new(tx, rx)))
            }
            Some(shared) => Ok((
                shared.region.clone(),
                replies,
                Channel::new(tx, shared.consumer.clone()),
            )),
        }
    }
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rings")
            .field("kind", &self.kind)
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

/// A connection whose handshake has not completed.
struct Pending {
    fd: OwnedFd,
    peer: Option<Credentials>,
    expires: Instant,
    state: State,
}

enum State {
    /// A stream hello, `got` of its bytes in so far.
    StreamHello { got: usize, bytes: [u8; HELLO_LEN] },
    /// A seqpacket hello or a rendezvous hello: one datagram.
    Datagram,
    /// The rings went out; the client's acknowledgement that it attached
    /// them is awaited, then this channel is returned.
    Attaching(Box<Offered>),
}

/// The rings handed to a client, and this side's channel over them.
struct Offered {
    channel: Channel,
    requests: Arc<Region>,
    replies: Arc<Region>,
    /// When the rings went out.
    since: Instant,
}

impl Offered {
    /// Whether the client attached its sides, as its acknowledgement says:
    /// a client that acknowledges without attaching would leave this side
    /// waiting on a peer that never comes. An epoch is 0 until the first
    /// attach; a client that attached, sent and already left (an even
    /// epoch past 0) counts as attached, so that what it sent is received.
    fn attached(&self) -> bool {
        let ever = |region: &Region, offset| region.header_word(offset) != 0;
        // An mpsc: request ring has other producers: its count says nothing
        // of this client.
        let producing = self.requests.kind() != crate::shm::layout::RingKind::Spsc
            || ever(&self.requests, offsets::PRODUCER_EPOCH);
        producing && ever(&self.replies, offsets::CONSUMER_EPOCH)
    }
}

/// What reading from a pending connection came to.
enum Step {
    /// Its handshake goes on.
    Wait,
    /// It failed, or broke the protocol: close it.
    Drop,
    /// Its handshake is complete: make the channel.
    Finish,
}

/// A listening socket and its pending handshakes: see the [module
/// documentation](self).
pub(super) struct Handshakes {
    socket: Socket,
    protocol: Protocol,
    max_message: usize,
    timeout: Duration,
    allow: Allow,
    pending: Vec<Pending>,
    /// Readable (or hung up) when the owner wants [`Handshakes::next`] to
    /// stop waiting: it then returns [`Error::Disconnected`].
    stop: Option<OwnedFd>,
    /// For event loops, made on first use ([`Handshakes::readiness`]): an
    /// epoll instance holding the listening socket and every pending
    /// connection, readable while one of them is.
    epoll: std::sync::OnceLock<OwnedFd>,
}

impl Handshakes {
    pub(super) fn new(socket: Socket, protocol: Protocol, options: &Options) -> Handshakes {
        Handshakes {
            socket,
            protocol,
            max_message: options.message_passing_max(),
            timeout: options.timeout,
            allow: options.allow.clone(),
            pending: Vec::new(),
            stop: None,
            epoll: std::sync::OnceLock::new(),
        }
    }

    /// One descriptor that is readable while `next` has something to do:
    /// a connection to take, or a pending connection that sent something.
    /// Pending connections leave it when they are closed (dropped, expired)
    /// or become channels ([`Handshakes::finish`]).
    pub(super) fn readiness(&self) -> Result<BorrowedFd<'_>> {
        if let Some(epoll) = self.epoll.get() {
            return Ok(epoll.as_fd());
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| Error::io("cannot create the listener's epoll instance", e))?;
        watch(&epoll, self.socket.fd())?;
        for pending in &self.pending {
            watch(&epoll, pending.fd.as_fd())?;
        }
        Ok(self.epoll.get_or_init(|| epoll).as_fd())
    }

    pub(super) fn set_stop(&mut self, stop: OwnedFd) {
        self.stop = Some(stop);
    }

    pub(super) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The next peer whose handshake completes, waiting until `deadline`.
    /// [`Error::PeerRefused`] for a peer the policy refuses (call again for
    /// the next); [`Error::Timeout`] if none completes in time.
    pub(super) fn next(&mut self, deadline: Deadline) -> Result<Channel> {
        let mut fresh = false;
        let mut first_round = true;
        loop {
            let now = Instant::now();
            self.pending.retain(|p| p.expires > now);
            let mut wait = deadline.remaining();
            if fresh {
                wait = Some(Duration::ZERO);
            }
            // The first to expire, and the moment a hello waiting for room
            // for its rings may get it.
            let room = self.room_for_rings_at();
            if let Some(first) = self.pending.iter().map(|p| p.expires).chain(room).min() {
                let left = first.saturating_duration_since(now);
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            let (listener_ready, stop_ready, ready) = self.poll(wait)?;
            if stop_ready {
                return Err(Error::Disconnected);
            }
            // Descending, so that `swap_remove` only moves entries already seen.
            for i in ready.into_iter().rev() {
                match self.advance(i) {
                    Step::Wait => {}
                    Step::Drop => {
                        self.pending.swap_remove(i);
                    }
                    Step::Finish => {
                        let pending = self.pending.swap_remove(i);
                        // A peer that fails here is dropped like any other.
                        if let Ok(channel) = self.finish(pending) {
                            return Ok(channel);
                        }
                    }
                }
            }
            fresh = listener_ready && self.accept_new()?;
            // Past the deadline, one more round only for a call that does
            // not wait, to read the hellos of the connections it just took
            // (a flood of new connections must not keep any call going).
            if deadline.passed() && !(fresh && first_round) {
                return Err(Error::Timeout);
            }
            first_round = false;
        }
    }

    /// Polls the listener, the stop descriptor and every pending connection
    /// for at most `wait`; returns which are ready.
    fn poll(&self, wait: Option<Duration>) -> Result<(bool, bool, Vec<usize>)> {
        let timespec = wait.map(|t| Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        let mut fds = Vec::with_capacity(2 + self.pending.len());
        fds.push(PollFd::from_borrowed_fd(self.socket.fd(), PollFlags::IN));
        if let Some(stop) = &self.stop {
            fds.push(PollFd::from_borrowed_fd(stop.as_fd(), PollFlags::IN));
        }
        let first_pending = fds.len();
        // Hellos that wait for room for their rings are not read yet: their
        // connections would be ready at once, for nothing. An empty event
        // set keeps the indices aligned.
        let waiting_for_room = self
            .room_for_rings_at()
            .is_some_and(|at| at > Instant::now());
        for pending in &self.pending {
            let flags = match pending.state {
                State::Datagram
                    if waiting_for_room && matches!(self.protocol, Protocol::Rings(_)) =>
                {
                    PollFlags::empty()
                }
                _ => PollFlags::IN,
            };
            fds.push(PollFd::from_borrowed_fd(pending.fd.as_fd(), flags));
        }
        loop {
            match rustix::event::poll(&mut fds, timespec.as_ref()) {
                Ok(_) => break,
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::io("cannot poll the listener", e)),
            }
        }
        let listener_ready = !fds[0].revents().is_empty();
        let stop_ready = self.stop.is_some() && !fds[1].revents().is_empty();
        let ready = fds[first_pending..]
            .iter()
            .enumerate()
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(i, _)| i)
            .collect();
        Ok((listener_ready, stop_ready, ready))
    }

    /// When the oldest of the connections holding unacknowledged rings
    /// may be dropped to make room for a new one, if [`MAX_ATTACHING`]
    /// hold rings now; `None` if there is room.
    fn room_for_rings_at(&self) -> Option<Instant> {
        let now = Instant::now();
        let holding = self.pending.iter().filter_map(|p| match &p.state {
            State::Attaching(offered) if p.expires > now => Some(offered.since),
            _ => None,
        });
        let oldest = holding.clone().min()?;
        (holding.count() >= MAX_ATTACHING).then(|| oldest + ATTACH_GRACE)
    }

    /// Before handing out rings: whether there is room. If
    /// [`MAX_ATTACHING`] connections hold rings they have not acknowledged,
    /// the oldest of them is expired (and closed, with its rings, at the
    /// start of the next round) once it has had [`ATTACH_GRACE`] to
    /// acknowledge; before that, there is no room and the new hello waits.
    fn make_room_for_rings(&mut self) -> bool {
        let Some(at) = self.room_for_rings_at() else {
            return true;
        };
        let now = Instant::now();
        if now < at {
            return false;
        }
        let oldest = self
            .pending
            .iter_mut()
            .filter(|p| matches!(p.state, State::Attaching(_)) && p.expires > now)
            .min_by_key(|p| match &p.state {
                State::Attaching(offered) => offered.since,
                _ => now,
            });
        if let Some(oldest) = oldest {
            oldest.expires = now;
        }
        true
    }

    /// Takes the connections waiting in the kernel's queue into the pending
    /// set; returns whether there were any. A peer the policy refuses is
    /// told so and reported as [`Error::PeerRefused`].
    fn accept_new(&mut self) -> Result<bool> {
        let mut any = false;
        for _ in 0..ACCEPTS_PER_ROUND {
            let Some(fd) = self.socket.try_accept()? else {
                break;
            };
            let peer = match &self.socket {
                Socket::Tcp(_) => None,
                Socket::Unix(_) => match self.allow.check(&fd) {
                    Ok(peer) => Some(peer),
                    Err(Error::PeerRefused(peer)) => {
                        self.refuse(fd.as_fd());
                        return Err(Error::PeerRefused(peer));
                    }
                    // No credentials to check: not a peer to let in.
                    Err(_) => continue,
                },
            };
            if self.pending.len() >= MAX_PENDING
                && let Some((oldest, _)) = self
                    .pending
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| p.expires)
            {
                self.pending.swap_remove(oldest);
            }
            let state = match self.protocol {
                Protocol::Stream => State::StreamHello {
                    got: 0,
                    bytes: [0; HELLO_LEN],
                },
                Protocol::Seqpacket | Protocol::Rings(_) => State::Datagram,
            };
            if let Some(epoll) = self.epoll.get() {
                watch(epoll, fd.as_fd())?;
            }
            self.pending.push(Pending {
                fd,
                peer,
                expires: hello_deadline(self.timeout),
                state,
            });
            any = true;
        }
        Ok(any)
    }

    /// Answers a refused peer in its protocol, in place of a hello.
    fn refuse(&self, fd: BorrowedFd<'_>) {
        match self.protocol {
            Protocol::Stream => {
                let _ = rustix::net::send(
                    fd,
                    &Hello::refusal(),
                    SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                );
            }
            Protocol::Seqpacket => SeqpacketChannel::refuse(fd),
            Protocol::Rings(_) => rendezvous::refuse(fd),
        }
    }

    /// Reads what pending connection `i` has sent, without waiting.
    fn advance(&mut self, i: usize) -> Step {
        if matches!(self.protocol, Protocol::Rings(_))
            && matches!(self.pending[i].state, State::Datagram)
            && !self.make_room_for_rings()
        {
            // The hello stays unread until there is room (`poll` leaves
            // such connections out meanwhile).
            return Step::Wait;
        }
        let pending = &mut self.pending[i];
        match &mut pending.state {
            State::StreamHello { got, bytes } => {
                match rustix::net::recv(&pending.fd, &mut bytes[*got..], RecvFlags::DONTWAIT) {
                    Ok((0, _)) => Step::Drop,
                    Ok((n, _)) => {
                        *got += n;
                        if *got == HELLO_LEN {
                            Step::Finish
                        } else {
                            Step::Wait
                        }
                    }
                    Err(Errno::AGAIN | Errno::INTR) => Step::Wait,
                    Err(_) => Step::Drop,
                }
            }
            // The socket is readable: the hello datagram is there (or the
            // end of the stream, which the channel's handshake reports).
            State::Datagram if matches!(self.protocol, Protocol::Seqpacket) => Step::Finish,
            State::Datagram => match &self.protocol {
                Protocol::Rings(rings) => match offer_rings(pending.fd.as_fd(), rings) {
                    Ok(Some(offered)) => {
                        pending.state = State::Attaching(Box::new(offered));
                        Step::Wait
                    }
                    Ok(None) => Step::Wait,
                    Err(_) => Step::Drop,
                },
                Protocol::Stream | Protocol::Seqpacket => Step::Drop,
            },
            State::Attaching(offered) => {
                match rendezvous::recv(pending.fd.as_fd(), 0, Deadline::Now) {
                    Ok(received) if received.msg.code == ACK_ATTACHED && offered.attached() => {
                        Step::Finish
                    }
                    Err(Error::Empty) => Step::Wait,
                    _ => Step::Drop,
                }
            }
        }
    }

    /// The channel of a connection whose handshake is complete.
    fn finish(&self, pending: Pending) -> Result<Channel> {
        // The connection lives on as the channel: out of the epoll set.
        if let Some(epoll) = self.epoll.get() {
            let _ = epoll::delete(epoll, &pending.fd);
        }
        let channel = match pending.state {
            State::StreamHello { bytes, .. } => super::connect::stream_channel(
                StreamChannel::accepted(pending.fd, &bytes, self.max_message, self.timeout)?,
            )?,
            State::Datagram => super::connect::seqpacket_channel(SeqpacketChannel::accepted(
                pending.fd,
                self.max_message,
            )?)?,
            State::Attaching(offered) => offered.channel.with_link(pending.fd),
        };
        Ok(channel.with_peer(pending.peer))
    }
}

/// Adds `fd` to the epoll instance `epoll`, for input (level-triggered).
fn watch(epoll: &OwnedFd, fd: BorrowedFd<'_>) -> Result<()> {
    epoll::add(
        epoll,
        fd,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )
    .map_err(|e| Error::io("cannot watch a connection for an event loop", e))
}

/// When the hello of a connection accepted now must have arrived: `timeout`
/// from now, or as far as an `Instant` reaches.
fn hello_deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

/// Reads a rendezvous hello from `fd` and answers it: with the rings
/// (returning this side's channel), or with why not (an error, after which
/// the connection is dropped). `None` if no datagram was there after all.
fn offer_rings(fd: BorrowedFd<'_>, rings: &Rings) -> Result<Option<Offered>> {
    let hello = match rendezvous::recv(fd, 0, Deadline::Now) {
        Ok(received) => received.msg,
        Err(Error::Empty) => return Ok(None),
        Err(e @ Error::Handshake { field, found, .. }) => {
            // Tell a client of another version which one we speak.
            if field == "rendezvous version" && found != u64::from(rendezvous::VERSION) {
                let ours = Msg {
                    code: answer::VERSION,
                    value: u64::from(rendezvous::VERSION),
                };
                let _ = rendezvous::send(fd, ours, &[]);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if hello.code != rings.kind as u32 {
        let ours = Msg {
            code: answer::KIND,
            value: rings.kind as u64,
        };
        let _ = rendezvous::send(fd, ours, &[]);
        return Err(Error::Handshake {
            field: "endpoint kind",
            expected: rings.kind as u64,
            found: u64::from(hello.code),
        });
    }
    let (requests, replies, channel) = match rings.make(hello.value) {
        Ok(made) => made,
        Err(e) => {
            let _ = rendezvous::send(
                fd,
                Msg {
                    code: answer::NO_RINGS,
                    value: 0,
                },
                &[],
            );
            return Err(e);
        }
    };
    let ok = Msg {
        code: answer::OK,
        value: 0,
    };
    let [a, b, c] = rendezvous::region_fds(&requests)?;
    let [d, e, f] = rendezvous::region_fds(&replies)?;
    rendezvous::send(fd, ok, &[a, b, c, d, e, f])?;
    Ok(Some(Offered {
        channel,
        requests,
        replies,
        since: Instant::now(),
    }))
}
