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
//! a [`Channel`](crate::Channel) per peer; [`connect`] returns the peer's [`Channel`](crate::Channel). The
//! channel is the same type whatever the model:
//!
//! ```
//! use shmsg::channel::{Receiver, Sender};
//!
//! // Server: any endpoint string works here, e.g. "shm:orders" or "tcp:127.0.0.1:7000".
//! let endpoint = format!("unix:@orders-{}", std::process::id());
//! let mut listener = shmsg::listen(&endpoint)?;
//! // A client (another process, usually).
//! let client = std::thread::spawn(move || -> shmsg::Result<Vec<u8>> {
//!     let mut channel = shmsg::connect(&endpoint)?;
//!     channel.send(b"order 1")?;
//!     let mut reply = Vec::new();
//!     channel.recv(&mut reply)?;
//!     Ok(reply)
//! }); // the client hangs up when it returns
//!
//! let mut channel = listener.accept()?;
//! let mut request = Vec::new();
//! while channel.recv(&mut request).is_ok() {
//!     request.make_ascii_uppercase();
//!     channel.send(&request)?;
//! }
//! assert_eq!(client.join().unwrap()?, b"ORDER 1");
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
//! otherwise, and [`Channel::peer`](crate::Channel::peer) tells who is at the other end (see
//! [`crate::peer`]). TCP has no such check.
//!
//! No client can stall a listener: hellos are read as they arrive, for all
//! pending connections at once, a connection whose hello has not arrived
//! within [`Options::timeout`] is dropped, and `accept_timeout` returns by
//! its deadline.

mod accept;
mod connect;
mod listener;
mod parse;
mod shared;
pub mod shm;

pub use crate::options::{DEFAULT_CAPACITY, DEFAULT_MAX_MESSAGE, DEFAULT_SHM_MAX_MESSAGE, Options};
pub use connect::{connect, connect_with};
pub use listener::{Listener, MAX_QUEUED, listen, listen_with};
pub use parse::{Endpoint, MAX_SOCKET_NAME, SOCKET_PREFIX};

use crate::error::{Error, Result};
use crate::shm::Geometry;
use crate::shm::layout::{RECORD_HEADER, round8};

/// The geometry of the rings a shared-memory listener creates.
fn geometry(options: &Options) -> Result<Geometry> {
    ring_geometry(options.max_message, options.capacity)
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
