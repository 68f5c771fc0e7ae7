//! The shared memory model: regions that one process creates and others
//! attach, and the rings inside them.
//!
//! The ring code is written against the backend seam ([`crate::sync`]) and
//! lives in these modules, each importing only those above it in the list:
//!
//! * [`layout`]: the region header, the ring's [`Geometry`];
//! * `record`: what the records of both rings share (header tag, commit
//!   bit, the data word at a position);
//! * [`wait`]: the one wait loop, spin and futex eventcount, and its
//!   descriptors for event loops ([`signal`]);
//! * [`watch`]: the watchdog that detaches dead consumers;
//! * [`region`] and [`share`]: the mapping of a region, its locks, and how
//!   it is handed to another process;
//! * [`Mapped`]: the production backend, a ring over a region's mapping
//!   (or a heap allocation with the same layout);
//! * `attach`: attaching a ring handle, to a backend or to a region's ring;
//! * the rings: [`spsc`] (single producer, single consumer) and [`mpmc`]
//!   (many producers, one or many consumers), each a `mod.rs` with the
//!   protocol and the record format, a `producer.rs` and a `consumer.rs`.

mod attach;
pub mod layout;
mod mapped;
pub mod mpmc;
mod record;
pub mod region;
pub mod share;
pub mod signal;
pub mod spsc;
pub mod wait;
pub mod watch;

pub use layout::Geometry;
pub use mapped::Mapped;
pub(crate) use mapped::Owner;
pub use region::{Region, RegionOptions};
