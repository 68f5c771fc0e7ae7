//! A single-producer, single-consumer ring of variable-size messages.
//!
//! # Records
//!
//! The data area is a power-of-two number of bytes, addressed by 64-bit
//! *positions* that only grow (and wrap around `u64::MAX`, which the
//! power-of-two capacity divides); `position & (capacity - 1)` is the byte
//! offset. A message is stored as one *record*: an 8-byte header word followed
//! by the payload, padded to 8 bytes. A record never straddles the end of the
//! data area: a producer that reaches the end stores a *wrap marker* there and
//! starts the record at offset 0.
//!
//! A committed header holds the record's length and a tag, the low 32 bits of
//! `position / 8` (the tag and commit bit are those of every ring,
//! `src/shm/record.rs`):
//!
//! ```text
//! bit 63..32  tag = (position >> 3) as u32
//! bit 31      1 (a committed header is never zero)
//! bit 30..0   payload length, or 0x7fff_ffff for a wrap marker
//! ```
//!
//! # Protocol
//!
//! The consumer does not read the producer's tail to find new messages; it
//! polls the header word at its own head (an *in-slot commit word*, as in
//! Aeron's log buffers), so a busy stream moves only the record's own cache
//! lines between cores. For that, the word after the newest record must never
//! look committed. The producer keeps it so:
//!
//! 1. reserve: the record, plus one header word after it, must fit between the
//!    tail and `head + capacity` (the head is cached and re-read only when the
//!    cached value says the ring is full);
//! 2. clear the header word that follows the record (`Relaxed`);
//! 3. copy the payload;
//! 4. store the record's header with `Release` (the commit); after a wrap, the
//!    wrap marker is stored last, also with `Release`;
//! 5. store the new tail (`Relaxed`; it serves re-attachment and inspection
//!    only, and the next producer is ordered after this one by the epoch or
//!    the role lock, see below).
//!
//! The consumer loads the header at its head with `Acquire`. Zero means empty.
//! A header whose tag or length is impossible is [`Error::Corrupt`]: the
//! consumer never follows it. Otherwise it copies the payload out, advances
//! its private head and stores it with `Release`, which hands the bytes back
//! to the producer (paired with the producer's `Acquire` load of the head).
//!
//! Each side keeps private cursors and reads every shared value once; the
//! region is untrusted input, so every position, length and offset read from
//! it is checked before use.
//!
//! # Attachment
//!
//! Each side has an epoch word: 0 never attached, odd attached, even
//! detached. Attaching moves it from even to odd with a compare-and-swap, so
//! a second producer (or consumer) is refused with [`Error::RoleTaken`];
//! across processes a lock that the kernel drops when a process dies decides
//! (see [`crate::shm::region`]), so a role held by a dead process can be taken
//! over. Dropping a handle stores the next even epoch. A consumer that finds
//! the ring empty and the producer detached polls once more (everything the
//! producer committed happens-before its detach) and then reports
//! [`Error::Disconnected`]; a producer whose consumer detached reports it on
//! the next send. Detaching also wakes a sleeping peer. A sleeping side asks
//! the backend, once per sleep slice, whether the attached peer process is
//! alive, so a peer killed with SIGKILL is reported in bounded time.
//!
//! # Waiting
//!
//! A blocking send or receive spins, then sleeps on a futex eventcount in
//! the region ([`crate::shm::wait`]): the consumer on [`Event::Data`], the
//! producer on [`Event::Space`]. After each commit (step 4 above, or once per
//! batch) the producer notifies `Data`; after each release the consumer
//! notifies `Space`: a fence and one load, and a wake-up system call only if
//! the other side sleeps.
//!
//! A producer that takes over from a dead one recovers the tail from the
//! shared tail word, then steps over the at most one record that was committed
//! but whose tail store was lost. Everything the previous producer stored
//! happens before the new one attaches: after a clean detach through the
//! epoch (the detach's `Release`, the attach's `AcqRel` compare-and-swap),
//! after a death through the role lock, which the kernel releases when the
//! process dies (within a process, the lock's `held` bits); a handle taken
//! over through the backend API ([`Producer::with_backend_taking_over`])
//! needs such an edge from its caller, which is how the caller knows the
//! previous one is dead. So the recovery's loads, and the tail stores that
//! serve it, are `Relaxed`; the consumer side is the same (the head).
//!
//! The same code runs in production ([`crate::shm::Mapped`]) and in the loom
//! and shuttle models (`models/`), through the [`Backend`] seam.
//!
//! # Files
//!
//! This file holds the record format, the attachment of either side and the
//! watchdog's look at the consumer; [`Producer`] is in `producer.rs`,
//! [`Consumer`] in `consumer.rs`.

mod consumer;
mod producer;

pub use consumer::Consumer;
pub use producer::Producer;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::error::{Error, Result, Role};
use crate::shm::Mapped;
use crate::shm::layout::{Geometry, RingKind, WRAP_LEN, record_size};
use crate::shm::record::{check_tag, committed_at};
use crate::shm::wait;
use crate::sync::{Backend, Control, Event, Word};

const LEN_MASK: u64 = (1 << 31) - 1;

/// The header word of a record of `len` bytes at `position`.
///
/// ```
/// use shmsg::shm::{Geometry, spsc::{self, Slot}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// let word = spsc::encode_header(16, 5);
/// assert_eq!(word >> 32, 16 / 8); // the tag: the position in words
/// assert_eq!(spsc::decode_header(word, 16, geometry)?, Slot::Record(5));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline(always)]
pub fn encode_header(position: u64, len: u32) -> u64 {
    committed_at(position) | u64::from(len)
}

/// What a header word says about the record at `position`.
///
/// ```
/// use shmsg::shm::layout::WRAP_LEN;
/// use shmsg::shm::{Geometry, spsc::{self, Slot}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// assert_eq!(spsc::decode_header(0, 40, geometry)?, Slot::Empty);
/// let marker = spsc::encode_header(1000, WRAP_LEN);
/// assert_eq!(spsc::decode_header(marker, 1000, geometry)?, Slot::Wrap);
/// let record = spsc::encode_header(40, 64);
/// assert_eq!(spsc::decode_header(record, 40, geometry)?, Slot::Record(64));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Nothing committed there yet.
    Empty,
    /// A wrap marker: the next record is at the start of the data area.
    Wrap,
    /// A record of this many payload bytes.
    Record(usize),
}

/// Decodes the header word `word` read at `position` of a ring of `geometry`.
/// Pure; any word is either a valid slot or [`Error::Corrupt`].
///
/// ```
/// use shmsg::Error;
/// use shmsg::shm::{Geometry, spsc::{self, Slot}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// let word = spsc::encode_header(80, 12);
/// assert_eq!(spsc::decode_header(word, 80, geometry)?, Slot::Record(12));
/// // Read at another position, the tag does not match.
/// assert!(matches!(spsc::decode_header(word, 88, geometry), Err(Error::Corrupt { .. })));
/// // Longer than the ring's largest message.
/// let word = spsc::encode_header(80, 65);
/// assert!(matches!(spsc::decode_header(word, 80, geometry), Err(Error::Corrupt { .. })));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline(always)]
pub fn decode_header(word: u64, position: u64, geometry: Geometry) -> Result<Slot> {
    if word == 0 {
        return Ok(Slot::Empty);
    }
    check_tag(word, position)?;
    let len = word & LEN_MASK;
    let mask = geometry.capacity() as u64 - 1;
    let offset = position & mask;
    if len == u64::from(WRAP_LEN) {
        // A marker at offset 0 would skip a whole lap.
        return if offset == 0 {
            Err(Error::corrupt("wrap marker at offset 0", word))
        } else {
            Ok(Slot::Wrap)
        };
    }
    let len = len as usize;
    if len > geometry.max_message() || offset + record_size(len) as u64 > mask + 1 {
        return Err(Error::corrupt("record length", word));
    }
    Ok(Slot::Record(len))
}

/// Moves an epoch word from even to odd. With `take_over`, an odd epoch (a
/// holder that the caller knows to be dead) is replaced too.
fn attach_epoch<B: Backend>(backend: &B, role: Role, take_over: bool) -> Result<u64> {
    let word = backend.control(Control::epoch(role));
    // `Relaxed` (no model tells it from `Acquire`: `ci/mutate-orderings.sh`):
    // the value is only the compare-and-swap's guess. A successful
    // compare-and-swap acquires (its `AcqRel`) the store it replaces, the
    // latest in the word's modification order, so it orders this attach
    // after the previous holder's detach; on `RoleTaken` nothing is read.
    let mut current = word.load(Relaxed);
    loop {
        let next = if current % 2 == 1 {
            if !take_over {
                return Err(Error::RoleTaken(role));
            }
            current.wrapping_add(2)
        } else {
            current.wrapping_add(1)
        };
        // Failure `Relaxed`, as the load above: the value seen is only the
        // next guess.
        match word.compare_exchange(current, next, AcqRel, Relaxed) {
            Ok(_) => return Ok(next),
            Err(seen) => current = seen,
        }
    }
}

/// Detaches the consumer on its behalf if its epoch says attached but its
/// process is dead: the watchdog's look ([`crate::shm::watch`]), written
/// against the backend seam so that the models run it beside the producer.
/// Returns whether it detached.
///
/// The compare-and-swap stores exactly what the consumer's `Drop` would
/// have stored, and fails if the consumer detached or was taken over
/// (its epoch moved) since the load.
///
/// ```
/// use shmsg::shm::{Geometry, Mapped, spsc};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// let _rx = spsc::Consumer::with_backend(memory.clone())?;
/// // A consumer in this process is alive: it stays attached.
/// assert!(!spsc::detach_dead_consumer(&memory));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[doc(hidden)]
pub fn detach_dead_consumer<B: Backend>(backend: &B) -> bool {
    let word = backend.control(Control::ConsumerEpoch);
    let epoch = word.load(Acquire);
    // Seeded defect `detach_live_consumer`: no liveness test.
    if epoch.is_multiple_of(2)
        || (!B::FAULTS.detach_live_consumer && backend.peer_alive(Role::Consumer))
    {
        return false;
    }
    if B::FAULTS.detach_by_store {
        // Seeded defect `detach_by_store`: a store, which can undo a
        // takeover since the load.
        word.store(epoch.wrapping_add(1), Release);
    } else if word
        // `Relaxed` (no model tells it from `AcqRel`): what matters is its
        // atomicity, which makes it fail if a new consumer took the role
        // since the `Acquire` load above (that load orders the liveness
        // test after it). The watchdog has written nothing for it to
        // publish, reads nothing of the dead consumer's after it (the
        // wake-up below is ordered by its own `SeqCst` fence), and an RMW
        // of any ordering continues the release sequence of the attach.
        .compare_exchange(epoch, epoch.wrapping_add(1), Relaxed, Relaxed)
        .is_err()
    {
        return false;
    }
    // A producer asleep on a full ring learns of it now.
    wait::notify(backend, Event::Space);
    true
}

/// The watchdog's look ([`detach_dead_consumer`]) at a region's ring.
fn watch_consumer(memory: &Mapped, _kind: RingKind) {
    detach_dead_consumer(memory);
}

/// A ring between threads of this process: a producer and a consumer over a
/// heap allocation with the same layout and protocol as a shared region.
///
/// ```
/// use shmsg::shm::{Geometry, spsc};
///
/// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
/// let sender = std::thread::spawn(move || -> shmsg::Result<()> {
///     for i in 0..100u32 {
///         tx.send(&i.to_le_bytes())?;
///     }
///     Ok(())
/// });
/// let mut buf = Vec::new();
/// for i in 0..100u32 {
///     rx.recv(&mut buf)?;
///     assert_eq!(buf, i.to_le_bytes());
/// }
/// sender.join().unwrap()?;
/// // The producer is gone and everything it sent was received.
/// assert!(matches!(rx.recv(&mut buf), Err(shmsg::Error::Disconnected)));
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn channel(geometry: Geometry) -> Result<(Producer, Consumer)> {
    let memory = Mapped::heap(geometry, 0)?;
    Ok((
        Producer::with_backend(memory.clone())?,
        Consumer::with_backend(memory)?,
    ))
}
