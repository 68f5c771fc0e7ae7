//! # shmsg: inter-process communication in the two classic models
//!
//! shmsg carries messages between processes in either of the two classic
//! models, side by side:
//!
//! * the **shared memory model** ([`shm`]): a lock-free ring in a shared
//!   region carries the messages, and after set-up a busy stream makes no
//!   system call per message. A `shm:` listener hands every client that
//!   connects to its Unix socket sealed memfd rings of its own; a named
//!   region is a file under `/dev/shm` that others open by name;
//! * the **message passing model** ([`msg`]): `send` / `receive` over a
//!   kernel link (Unix stream and seqpacket sockets, pipes, TCP), where the
//!   kernel copies and synchronizes.
//!
//! Both implement one interface, [`Sender`] and [`Receiver`], and an
//! endpoint string picks the model and transport ([`endpoint`]):
//! `shm:NAME`, `mpsc:NAME`, `unix:PATH`, `unix:@NAME`, `seqpacket:PATH`, `tcp:HOST:PORT`,
//! `pipe`. [`listen`] and [`connect`] return a [`Channel`] whatever the
//! model, so an application switches models by changing a string. A
//! shared-memory listener serves many clients at once, as a socket does:
//! each client meets it at a Unix socket and receives sealed rings of its
//! own; every Unix-socket listener lets in only its own user unless told
//! otherwise ([`peer`]).
//!
//! Every concurrent protocol is paired with models that run *the production
//! code*: loom (exhaustive, weak memory, data races on ring bytes), shuttle
//! (long randomized and PCT schedules, replayable) and proptest (operation
//! sequences against a reference model). See `models/README.md`.
//!
//! ## When to pick which
//!
//! Shared memory wins when messages are frequent or large and both processes
//! are on one machine: a message costs a copy into the ring and a cache-line
//! transfer, no system call. Message passing is simpler to reason about
//! across trust boundaries and is the only choice between machines.
//! `shmsg demo` measures the ring on your machine.
//!
//! ## A ring between two threads
//!
//! [`shm::spsc::channel`] makes a ring in this process's heap with the same
//! layout and protocol as a shared region:
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
//! ## A ring between two processes
//!
//! Below the endpoints, the rings can be used directly. One process creates
//! a named region (a file under `/dev/shm`, mode 0600) and attaches one
//! side; another opens it by name and attaches the other. (A named file can
//! be truncated by any process of the same user, which makes its peers
//! fault; the `shm:` endpoints use sealed anonymous regions instead.)
//! Exactly one producer and one consumer may be attached at a time; a side
//! whose process dies is reported as [`Error::Disconnected`] to the other,
//! and can be attached again.
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
//! ## Errors
//!
//! Everything returns [`Error`]. The shared region is untrusted input: a
//! value another process wrote that makes no sense is [`Error::Corrupt`],
//! never a panic, an out-of-bounds access or an endless loop; a region laid
//! out by another build is [`Error::LayoutMismatch`], naming the field.
//!
//! ## Layout of the crate
//!
//! * [`shm`]: regions ([`shm::Region`]), the header ([`shm::layout`]) and
//!   the single-producer ring ([`shm::spsc`]);
//! * [`msg`]: the frame codec, the stream and seqpacket channels, Unix
//!   addresses and listeners, pipes to a child;
//! * [`channel`] and [`endpoint`]: the interface both models implement, and
//!   endpoint strings, listeners and the shared-memory rendezvous;
//! * [`peer`]: who is at the other end of a Unix socket, and who may be;
//! * [`sync`]: the backend seam through which the models run the ring code;
//! * [`workload`]: deterministic, self-checking message streams for tests
//!   and benchmarks.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod channel;
pub mod endpoint;
pub mod error;
pub mod msg;
pub mod options;
pub mod peer;
pub mod shm;
pub mod sync;
pub mod typed;
pub mod workload;

pub use channel::{Channel, Receiver, Sender};
pub use endpoint::{Endpoint, Listener, Options, connect, connect_with, listen, listen_with};
pub use error::{Error, Result, Role};
pub use options::Deadline;
pub use peer::{Allow, Credentials};
