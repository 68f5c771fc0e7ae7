//! # shmsg: inter-process communication in the two classic models
//!
//! shmsg carries messages between processes in either of the two classic
//! models, side by side:
//!
//! * the **shared memory model** ([`shm`]): a lock-free ring in a shared
//!   region carries the messages, and after set-up a busy stream makes no
//!   system call per message;
//! * the **message passing model** ([`msg`]): `send` / `receive` over a
//!   kernel link (Unix stream and seqpacket sockets, pipes, TCP), where the
//!   kernel copies and synchronizes.
//!
//! Both implement one interface, [`Sender`] and [`Receiver`], and one
//! endpoint string picks the model and the transport: `shm:NAME`,
//! `mpsc:NAME`, `unix:PATH`, `unix:@NAME`, `seqpacket:PATH`,
//! `tcp:HOST:PORT`, `pipe` (see [`endpoint`]). [`listen`] and [`connect`]
//! return a [`Channel`] whatever the model, so an application switches
//! models by changing a string.
//!
//! Every concurrent protocol is paired with models that run *the production
//! code*: loom (exhaustive, weak memory, data races on ring bytes), shuttle
//! (long randomized and PCT schedules, replayable) and proptest (operation
//! sequences against a reference model). See `models/README.md`.
//!
//! ## 1. A ring in memory
//!
//! [`shm::spsc::channel`] makes a single-producer ring in this process's
//! heap, with the same layout and protocol as one in a shared region. A
//! send copies the message into the ring; a receive copies it out into a
//! buffer the caller reuses.
//!
//! ```
//! use shmsg::shm::{Geometry, spsc};
//!
//! let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
//! let sender = std::thread::spawn(move || {
//!     for i in 0..1000u32 {
//!         tx.send(&i.to_le_bytes())?;
//!     }
//!     Ok::<_, shmsg::Error>(())
//! }); // dropping `tx` detaches the producer
//!
//! let mut buf = Vec::new();
//! let mut expected = 0u32;
//! loop {
//!     match rx.recv(&mut buf) {
//!         Ok(_) => {
//!             assert_eq!(buf, expected.to_le_bytes());
//!             expected += 1;
//!         }
//!         // Everything sent has been received, and the producer is gone.
//!         Err(shmsg::Error::Disconnected) => break,
//!         Err(other) => return Err(other),
//!     }
//! }
//! assert_eq!(expected, 1000);
//! sender.join().unwrap()?;
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! Several producers share one ring with [`shm::mpmc`] instead.
//!
//! ## 2. A `shm:` listener and a client
//!
//! Between processes, the easy way is an endpoint. A `shm:NAME` listener
//! waits at the Unix socket `@shmsg.NAME`; each client that connects is
//! handed sealed memfd rings of its own (one per direction), and from then
//! on messages go through shared memory. Here the client is a thread of the
//! same process, so that the example runs as it is; in real use it would
//! be another process running the same `connect` call.
//!
//! ```
//! use shmsg::{Receiver, Sender};
//!
//! // A name of this process's own, so that two runs never meet.
//! let endpoint = format!("shm:tutorial-{}", std::process::id());
//! let mut listener = shmsg::listen(&endpoint)?;
//!
//! let client = std::thread::spawn({
//!     let endpoint = endpoint.clone();
//!     move || -> shmsg::Result<Vec<u8>> {
//!         let mut channel = shmsg::connect(&endpoint)?;
//!         channel.send(b"hello")?;
//!         let mut reply = Vec::new();
//!         channel.recv(&mut reply)?;
//!         Ok(reply)
//!     }
//! });
//!
//! let mut channel = listener.accept()?;
//! let mut request = Vec::new();
//! channel.recv(&mut request)?;
//! request.make_ascii_uppercase();
//! channel.send(&request)?;
//! assert_eq!(client.join().unwrap()?, b"HELLO");
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! A listener serves many clients at once, as a socket does, and by default
//! lets in only processes of its own user ([`Allow`], set through
//! [`Options`] with [`listen_with`] and [`connect_with`]). Nothing is
//! created in `/dev/shm`: a crash leaves nothing behind.
//!
//! ## 3. The same code over `unix:`
//!
//! The channel is the same type whatever the endpoint, so the server and
//! the client above work unchanged over a Unix socket (or TCP, or
//! `seqpacket:`); only the string changes:
//!
//! ```
//! use shmsg::{Channel, Receiver, Sender};
//!
//! fn upper(channel: &mut Channel) -> shmsg::Result<()> {
//!     let mut request = Vec::new();
//!     channel.recv(&mut request)?;
//!     request.make_ascii_uppercase();
//!     channel.send(&request)
//! }
//!
//! let pid = std::process::id();
//! for endpoint in [format!("shm:same-{pid}"), format!("unix:@shmsg-same-{pid}")] {
//!     let mut listener = shmsg::listen(&endpoint)?;
//!     let client = std::thread::spawn(move || -> shmsg::Result<Vec<u8>> {
//!         let mut channel = shmsg::connect(&endpoint)?;
//!         channel.send(b"either model")?;
//!         let mut reply = Vec::new();
//!         channel.recv(&mut reply)?;
//!         Ok(reply)
//!     });
//!     upper(&mut listener.accept()?)?;
//!     assert_eq!(client.join().unwrap()?, b"EITHER MODEL");
//! }
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! ## 4. Errors
//!
//! Everything returns [`Error`]: flow control ([`Error::Full`],
//! [`Error::Empty`], [`Error::Timeout`]) is part of normal operation, a
//! peer that has gone is [`Error::Disconnected`] once everything it sent has
//! been received, and a wrong argument says what is wrong with it:
//!
//! ```
//! use std::time::Duration;
//! use shmsg::{Error, Receiver, Sender};
//! use shmsg::shm::{Geometry, spsc};
//!
//! // A malformed endpoint names the part that is wrong.
//! match shmsg::connect("tcp:localhost") {
//!     Err(Error::InvalidEndpoint { part, .. }) => assert_eq!(part, "port"),
//!     other => panic!("{other:?}"),
//! }
//!
//! let (mut tx, mut rx) = spsc::channel(Geometry::new(4096, 1024)?)?;
//! // Nothing waiting: Empty at once, Timeout after waiting.
//! let mut buf = Vec::new();
//! assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
//! assert!(matches!(
//!     rx.recv_timeout(&mut buf, Duration::from_millis(1)),
//!     Err(Error::Timeout)
//! ));
//! // Too large for the ring: refused, nothing sent.
//! assert!(matches!(
//!     tx.send(&[0; 2000]),
//!     Err(Error::MessageTooLarge { len: 2000, max: 1024 })
//! ));
//! // The producer leaves: what it sent is still received, then Disconnected.
//! tx.send(b"last words")?;
//! drop(tx);
//! rx.recv(&mut buf)?;
//! assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! The shared region is untrusted input: a value another process wrote that
//! makes no sense is [`Error::Corrupt`], never a panic, an out-of-bounds
//! access or an endless loop; a region laid out by another build is
//! [`Error::LayoutMismatch`], naming the field.
//!
//! ## 5. A named region, below the endpoints
//!
//! The rings can also be used directly. One process creates a named region
//! ([`shm::Region`], a file under `/dev/shm`, mode 0600) and attaches one
//! side; another opens it by name and attaches the other. (A named file can
//! be truncated by any process of the same user, which makes its peers
//! fault; the `shm:` endpoints use sealed anonymous regions instead.)
//! Exactly one producer and one consumer may be attached at a time; a side
//! whose process dies is reported as [`Error::Disconnected`] to the other,
//! and can be attached again. This example needs two processes:
//!
//! ```no_run
//! use std::sync::Arc;
//! use shmsg::shm::{Geometry, Region, spsc::{Consumer, Producer}};
//!
//! // Process A: create the region and receive.
//! let region = Arc::new(Region::create("orders", Geometry::new(1 << 20, 4096)?)?);
//! let mut rx = Consumer::attach(&region)?;
//! let mut buf = Vec::new();
//! rx.recv(&mut buf)?;
//!
//! // Process B: open it by name and send, writing the message in place.
//! let region = Arc::new(Region::open("orders")?);
//! let mut tx = Producer::attach(&region)?;
//! tx.send_with(5, |slot| {
//!     slot.copy_from_slice(b"hello");
//!     5
//! })?;
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! ## When to pick which
//!
//! Shared memory wins when messages are frequent or large and both processes
//! are on one machine: a message costs a copy into the ring and a cache-line
//! transfer, no system call. Message passing is simpler to reason about
//! across trust boundaries and is the only choice between machines.
//! `shmsg demo` measures the ring on your machine.
//!
//! ## Layout of the crate
//!
//! Each layer uses only the layers above it in this list:
//!
//! * [`error`] and [`options`]: the one [`Error`] type, the [`Deadline`] of
//!   every blocking call, and the endpoint [`Options`]; [`peer`]: who is at
//!   the other end of a Unix socket ([`Credentials`]), and who may be
//!   ([`Allow`]);
//! * [`sync`]: the backend seam through which the models run the ring code;
//! * [`shm`]: regions ([`shm::Region`]), their header ([`shm::layout`]),
//!   the single-producer ring ([`shm::spsc`]) and the multi-producer ring
//!   ([`shm::mpmc`]);
//! * [`channel`]: the interface both models implement ([`Sender`],
//!   [`Receiver`], [`Channel`]);
//! * [`msg`]: the frame codec, the stream and seqpacket channels, Unix
//!   addresses and listeners, pipes to a child;
//! * [`endpoint`]: endpoint strings, [`listen`] / [`connect`], listeners,
//!   and the shared-memory rendezvous;
//! * [`typed`]: fixed-size values over any channel; [`workload`]:
//!   deterministic, self-checking message streams for tests and
//!   benchmarks.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod channel;
mod credentials;
pub mod endpoint;
pub mod error;
pub mod msg;
pub mod options;
pub mod peer;
pub mod shm;
pub mod sync;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod typed;
pub mod workload;

pub use channel::{Channel, Receiver, Sender};
pub use endpoint::{Endpoint, Listener, Options, connect, connect_with, listen, listen_with};
pub use error::{Error, Result, Role};
pub use options::Deadline;
pub use peer::{Allow, Credentials};
