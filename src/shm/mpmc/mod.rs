//! Multi-producer rings of variable-size messages: many producers and one
//! consumer ([`RingKind::Mpsc`]), or many producers and many consumers
//! ([`RingKind::Mpmc`], each message to exactly one consumer).
//!
//! This file holds the protocol (below), the record format and what both
//! sides share (slots, counts); [`Producer`] is in `producer.rs`,
//! [`Consumer`] in `consumer.rs`.
//!
//! # Why claimed length written last (Aeron), not per-slot sequences (Vyukov)
//!
//! Vyukov's bounded queue gives every slot a sequence word, which makes
//! multi-consumer release trivial, but its slots have one fixed size: a ring
//! for messages of up to 64 KiB holds a handful of them, and a stream of
//! small messages would use a few bytes of every slot. Aeron's log buffers
//! (`ManyToOneRingBuffer`) keep variable-size records packed end to end:
//! a producer claims bytes by advancing the shared tail with a
//! compare-and-swap, fills them, and *commits* by storing the record's
//! header word last, with `Release`. The consumer polls the header at its
//! head exactly as the single-producer ring does ([`crate::shm::spsc`]), so
//! one producer and one consumer cost about what they cost there, and the
//! record format is the same apart from the header's flag bits. We chose
//! Aeron's scheme for that memory use and that speed; the price is paid
//! by multiple consumers, which must hand records back in order (below).
//!
//! # Records
//!
//! Positions, offsets and records are those of [`crate::shm::spsc`]: an
//! 8-byte header, the payload padded to 8 bytes, never straddling the end
//! of the data area. A header word (the tag and commit bit are those of
//! every ring, `src/shm/record.rs`):
//!
//! ```text
//! bit 63..32  tag = (position >> 3) as u32
//! bit 31      1: committed (a header is never zero)
//! bit 30      1: padding, 0: a message
//! bit 29..0   payload length (message), or bytes covered (padding)
//! ```
//!
//! One more word may stand in a header's place, in an `Mpmc` ring only:
//! while a consumer hands back an entry for consumers that are gone, its
//! *recovery mark* (the tag, bit 31 clear, the consumer's slot in bits
//! 30..28 and the low 28 bits of its slot epoch; [`recovery_mark`]).
//! Readers never take it for an entry (it is not committed), and it stands
//! only at the head.
//!
//! Padding fills what a claim does not use: the end of the data area before
//! a record that wraps to offset 0, the tail of an in-place claim whose
//! message came out shorter, a claim abandoned by a panic or by a dead
//! producer. Messages are shorter than [`MAX_MESSAGE`] (1 GiB).
//!
//! # Producing
//!
//! 1. *claim*: read the tail `t`; the record (plus padding to the end of the
//!    data area if it would straddle it) must fit below `head + capacity`
//!    (the head, the position up to which consumers have handed bytes back,
//!    is cached and re-read with `Acquire` only when the cache says full);
//!    record the attempt in the producer's slot (`claim = t`,
//!    `claim_len`), then `compare_exchange(t, t + len)` on the tail
//!    (`Relaxed`: only a dead producer's attempt is ever read, after the
//!    liveness test that orders it); on failure, clear the claim word (it
//!    must not go on naming a position another producer claimed: a
//!    consumer leaves a dead producer's claim alone while a live
//!    producer's slot names it) and retry from the tail it saw;
//! 2. write the payload (plain stores: the claim makes the bytes ours);
//! 3. *commit*: store the record's header with `Release`; then, if the claim
//!    wrapped, the padding header at `t`, also with `Release` (so a consumer
//!    that passes the padding finds the record committed);
//! 4. notify [`Event::Data`] (a fence and a load; a system call only if a
//!    consumer sleeps).
//!
//! Released bytes are all zero (consumers zero what they consume), so the
//! header word of a claimed but uncommitted record reads zero: *empty*. A
//! reader never sees a claimed, uncommitted record, whichever producer
//! commits first; each producer's records are claimed, so ordered, in the
//! order it sends them.
//!
//! # Consuming
//!
//! The consumer of an `Mpsc` ring keeps a private head, loads the header
//! there (`Acquire`), copies the payload out (or lends it to a closure),
//! zeroes the record, and stores the new head with `Release`, which hands
//! the bytes back to the producers (paired with their `Acquire` load of the
//! head); then it notifies [`Event::Space`].
//!
//! The consumers of an `Mpmc` ring share a read cursor: a consumer loads it,
//! loads the header there, and claims the record by advancing the cursor
//! with a compare-and-swap (which also proves that the header it read was
//! current). Records are handed back in order: a consumer that finished a
//! record waits until the head reaches it (the consumers before it handed
//! theirs back), zeroes it and stores the head past it. A consumer waits for
//! its turn in the one wait loop of [`crate::shm::wait`] on [`Event::Space`],
//! which every hand-back notifies, until the deadline of the call it is
//! in. If the turn has not come by then, the message is still delivered
//! (it was read) and its hand-back stays *pending*: the consumer's next
//! call finishes it first, within that call's deadline, and takes nothing
//! new until it has (a try reports [`Error::Empty`], a timed call
//! [`Error::Timeout`]); dropping the consumer gives it one more sleep
//! slice. So a consumer that stalls inside [`Consumer::recv_with`] delays
//! the others' hand-backs, never their calls past their deadlines.
//!
//! Each consumer holds at most one entry that is not handed back, so a ring
//! can be full with every entry in it taken only where the consumers are
//! more than the entries (large messages, many consumers). The cursor then
//! stands a whole ring past the head, on the header word of the entry at
//! the head, which its consumer is still reading or handing back: a header
//! (or recovery mark) with the tag of the position one lap before. A
//! consumer reads that as *empty* ([`held_from_last_lap`]), not as a
//! corrupt header, unless the head has passed that entry and the header
//! still reads the same (handed back without being zeroed: corrupt).
//!
//! # A consumer that dies holding a record
//!
//! An `Mpmc` consumer records the entry it claims in its slot (`claim`,
//! `claim_len`) before the compare-and-swap on the read cursor (its death,
//! or its detach's `Release`, orders them before a recoverer reads them),
//! clears a claim whose swap failed, and clears
//! it again once the entry is handed back. A consumer whose hand-back turn
//! has not come after a sleep slice looks at the entry at the head, and so
//! does a consumer waiting for data after each sleep slice (if every entry
//! of a full ring is held by consumers that are gone, nobody has a
//! hand-back waiting, and the producers wait for that space): if
//! every slot that claims it belongs to a consumer that is gone (its
//! process dead, or detached without handing it back), it hands the entry
//! back for it. Who does is decided on the entry's header word, which no
//! other entry shares: a compare-and-swap puts the recovering consumer's
//! mark there ([`recovery_mark`]; a mark left by a consumer that is gone
//! since is taken over), it zeroes the payload, stores a zero header and
//! moves the head with a compare-and-swap from the position it read (a
//! zero header found there, the holder's own zeroing done before it died,
//! leaves only that). Several slots may claim one entry (a consumer that
//! lost the race for it and died before clearing its claim), and the head
//! a recoverer read may be stale, so neither a claim word nor a plain head
//! store could elect one recoverer. A claimant that is alive, even one
//! whose stale claim lost its swap, blocks the recovery until it moves on.
//! The recovered message is **not delivered again**: a dead `Mpmc`
//! consumer loses at most the one record it held (at-most-once for it),
//! where a dead `Spsc` or `Mpsc` consumer's unreleased record is delivered
//! again to the consumer that takes over (at-least-once). A new consumer
//! does not take a slot whose claim is still pending.
//!
//! An `Mpsc` consumer records the release it is making in its slot before
//! it zeroes the record; one that takes over the slot first finishes a
//! release its predecessor died in the middle of (the claim is the head),
//! so that record is neither delivered again half zeroed nor left as a
//! zero header at the head.
//!
//! # Attachment
//!
//! The region has [`MAX_PRODUCERS`] producer slots and [`MAX_CONSUMERS`]
//! consumer slots ([`crate::shm::layout`]; an `Mpsc` ring uses one consumer
//! slot). Each slot has an epoch (0 never attached, odd attached, even
//! detached) and a pid; a producer slot also has the claim words. Attaching
//! takes a free slot with a compare-and-swap on its epoch; when none is
//! free the result is [`Error::RoleTaken`]. Across processes each slot also
//! has a liveness lock ([`crate::shm::Region::lock_slot`]), so the slot of a dead
//! process can be taken over.
//!
//! The [`Control::ProducerEpoch`] and [`Control::ConsumerEpoch`] words count
//! the attached sides: `2n - 1` while `n >= 1` are attached (odd), 2 once
//! all have detached, 0 before the first attach. So the wait protocol's test
//! "odd means attached" holds, a consumer reports [`Error::Disconnected`]
//! when every producer has detached and the ring is drained, and a producer
//! when every consumer has.
//!
//! # A producer that dies in the middle of a claim
//!
//! Its claimed bytes stay uncommitted, and every consumer would wait at
//! them forever. Instead, a consumer that has slept a slice at a zero header
//! while the tail is past it looks at the producer slots: if every attached
//! slot whose `claim` is that position belongs to a dead process (and they
//! agree on its length), it claims the recovery by swapping that slot's
//! `claim` word to "none" (so only one consumer recovers), and commits
//! padding over the claim (over the part before the end of the data area
//! only, if the record after the wrap was committed already). The
//! consumers then skip and zero it as any padding; no message is lost but
//! the dead one's, none is torn. A live producer's claim is never touched.
//! A producer that takes over a dead slot leaves it alone while its claim
//! may still be pending. If all producers are dead, the consumer recovers
//! every claim it meets, delivers every committed message, then reports
//! [`Error::Disconnected`].
//!
//! # Untrusted memory
//!
//! Every position, length and epoch read from the region is checked; a bad
//! one is [`Error::Corrupt`], never an out-of-bounds access or a panic. A
//! consumer of an `Mpmc` ring may load (atomically) the header word at a
//! read cursor it read a moment ago while the record there was already
//! consumed and the bytes reused; whatever it reads, the failing
//! compare-and-swap on the cursor makes it discard the value.
//!
//! The same code runs in production ([`Mapped`]) and in the loom and shuttle
//! models (`models/loom_mpmc.rs`, `models/shuttle_mpmc.rs`) through the
//! [`Backend`] seam.

mod consumer;
mod producer;

pub use consumer::Consumer;
pub use producer::Producer;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::error::{Error, Result, Role};
use crate::shm::Mapped;
use crate::shm::layout::{Geometry, MAX_CONSUMERS, MAX_PRODUCERS, RingKind, record_size};
use crate::shm::record::{check_tag, committed_at, tagged};
use crate::shm::wait;
use crate::sync::{Backend, Control, Event, SlotWord, Word, order};

pub(super) const PAD: u64 = 1 << 30;
pub(super) const LEN_MASK: u64 = (1 << 30) - 1;
/// "No claim" in a producer slot's claim word: never a position (not a
/// multiple of 8).
pub(super) const NO_CLAIM: u64 = u64::MAX;

/// One more than the largest message a multi-producer ring carries: record
/// lengths have 30 bits.
///
/// ```
/// use shmsg::shm::mpmc;
///
/// // A record's length field has 30 bits.
/// assert!(mpmc::MAX_MESSAGE < 1 << 30);
/// let largest = mpmc::encode_record(0, mpmc::MAX_MESSAGE - 1);
/// assert_eq!(largest & ((1 << 30) - 1), mpmc::MAX_MESSAGE as u64 - 1);
/// ```
pub const MAX_MESSAGE: usize = (1 << 30) - 16;

/// The header word of a message of `len` bytes at `position`.
///
/// ```
/// use shmsg::shm::{Geometry, mpmc::{self, Entry}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// let word = mpmc::encode_record(64, 10);
/// assert_eq!(mpmc::decode(word, 64, geometry)?, Entry::Record(10));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline(always)]
pub fn encode_record(position: u64, len: usize) -> u64 {
    committed_at(position) | len as u64
}

/// The header word of padding that covers `bytes` bytes from `position`.
///
/// ```
/// use shmsg::shm::{Geometry, mpmc::{self, Entry}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// // The last 24 bytes of the data area, before a record that wraps.
/// let word = mpmc::encode_pad(1000, 24);
/// assert_eq!(mpmc::decode(word, 1000, geometry)?, Entry::Pad(24));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline(always)]
pub fn encode_pad(position: u64, bytes: u64) -> u64 {
    committed_at(position) | PAD | bytes
}

/// Bits 27..0 of a recovery mark: the low bits of its owner's slot epoch.
pub(super) const MARK_EPOCH: u64 = (1 << 28) - 1;

/// The mark that an `Mpmc` consumer in slot `index`, attached at slot epoch
/// `epoch`, writes over the header of the entry at `position` while it
/// hands that entry back for the consumers that held it and are gone
/// (module docs, "A consumer that dies holding a record"): the position's
/// tag, the commit bit clear (no reader takes it for an entry: a stale
/// cursor reads it as corrupt and moves on), the slot in bits 30..28 and
/// the epoch's low 28 bits. Never zero: an attached slot's epoch is odd.
///
/// ```
/// use shmsg::shm::{Geometry, mpmc};
///
/// let geometry = Geometry::new(1024, 64)?;
/// let mark = mpmc::recovery_mark(64, 2, 5);
/// assert_eq!(mark, (8 << 32) | (2 << 28) | 5);
/// // Not an entry: a reader reports it as corrupt.
/// assert!(mpmc::decode(mark, 64, geometry).is_err());
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn recovery_mark(position: u64, index: usize, epoch: u64) -> u64 {
    const _: () = assert!(MAX_CONSUMERS <= 8);
    ((position >> 3) << 32) | ((index as u64) << 28) | (epoch & MARK_EPOCH)
}

/// What a header word says about the entry at a position.
///
/// ```
/// use shmsg::shm::{Geometry, mpmc::{self, Entry}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// assert_eq!(mpmc::decode(0, 8, geometry)?, Entry::Empty);
/// assert_eq!(mpmc::decode(mpmc::encode_pad(8, 16), 8, geometry)?, Entry::Pad(16));
/// assert_eq!(mpmc::decode(mpmc::encode_record(8, 3), 8, geometry)?, Entry::Record(3));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Nothing committed there yet.
    Empty,
    /// Padding of this many bytes (its header included).
    Pad(usize),
    /// A message of this many payload bytes.
    Record(usize),
}

impl Entry {
    /// Bytes of the data area the entry covers.
    pub(super) fn extent(self) -> u64 {
        match self {
            Entry::Empty => 0,
            Entry::Pad(bytes) => bytes as u64,
            Entry::Record(len) => record_size(len) as u64,
        }
    }
}

/// Decodes the header word `word` read at `position` of a ring of
/// `geometry`. Pure; any word is either a valid entry or [`Error::Corrupt`].
///
/// ```
/// use shmsg::Error;
/// use shmsg::shm::{Geometry, mpmc::{self, Entry}};
///
/// let geometry = Geometry::new(1024, 64)?;
/// let word = mpmc::encode_record(128, 64);
/// assert_eq!(mpmc::decode(word, 128, geometry)?, Entry::Record(64));
/// // The tag names another position: a stale or forged word.
/// assert!(matches!(mpmc::decode(word, 136, geometry), Err(Error::Corrupt { .. })));
/// // Padding past the end of the data area.
/// let word = mpmc::encode_pad(1008, 32);
/// assert!(matches!(mpmc::decode(word, 1008, geometry), Err(Error::Corrupt { .. })));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline(always)]
pub fn decode(word: u64, position: u64, geometry: Geometry) -> Result<Entry> {
    if word == 0 {
        return Ok(Entry::Empty);
    }
    check_tag(word, position)?;
    let capacity = geometry.capacity() as u64;
    let offset = position & (capacity - 1);
    let len = word & LEN_MASK;
    if word & PAD != 0 {
        if len == 0 || !len.is_multiple_of(8) || offset + len > capacity {
            return Err(Error::corrupt("padding length", word));
        }
        return Ok(Entry::Pad(len as usize));
    }
    let len = len as usize;
    if len > geometry.max_message() || offset + record_size(len) as u64 > capacity {
        return Err(Error::corrupt("record length", word));
    }
    Ok(Entry::Record(len))
}

/// Whether the header word `word`, read at `position` of an `Mpmc` ring of
/// `capacity` bytes, belongs to the entry one lap before (its header or a
/// recovery mark): the ring is full, every entry in it is taken, and the
/// one at the head is still being read or handed back (module docs,
/// "Consuming"). Nothing is committed at `position` yet.
///
/// ```
/// use shmsg::shm::{Geometry, mpmc};
///
/// let geometry = Geometry::new(1024, 64)?;
/// // The record at 64 and the position a lap later share a header word.
/// let header = mpmc::encode_record(64, 16);
/// assert!(mpmc::decode(header, 64 + 1024, geometry).is_err());
/// assert!(mpmc::held_from_last_lap(header, 64 + 1024, 1024));
/// assert!(mpmc::held_from_last_lap(mpmc::recovery_mark(64, 2, 5), 64 + 1024, 1024));
/// assert!(!mpmc::held_from_last_lap(header, 64 + 2048, 1024));
/// assert!(!mpmc::held_from_last_lap(0, 64 + 1024, 1024));
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn held_from_last_lap(word: u64, position: u64, capacity: u64) -> bool {
    word != 0 && tagged(word, position.wrapping_sub(capacity))
}

#[inline(always)]
pub(super) fn slot<B: Backend>(backend: &B, role: Role, index: usize, word: SlotWord) -> &B::Word {
    backend.control(Control::Slot { role, index, word })
}

/// The slots a ring of `kind` offers to `role`.
pub(super) fn slot_limit(kind: RingKind, role: Role) -> usize {
    let (producers, consumers) = kind.limits();
    match role {
        Role::Producer => producers.min(MAX_PRODUCERS),
        Role::Consumer => consumers.min(MAX_CONSUMERS),
    }
}

/// Counts one more attached `role` in its count word (see the module docs).
fn count_attach<B: Backend>(backend: &B, role: Role) {
    let word = backend.control(Control::epoch(role));
    let mut current = word.load(Relaxed);
    loop {
        let next = if current % 2 == 1 {
            current.wrapping_add(2)
        } else {
            1
        };
        match word.compare_exchange(current, next, AcqRel, Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

/// Counts one fewer attached `role`; `Release`, so that everything the
/// detaching side did happens-before the count that says it is gone.
fn count_detach<B: Backend>(backend: &B, role: Role) {
    let word = backend.control(Control::epoch(role));
    let mut current = word.load(Relaxed);
    loop {
        let next = match current {
            1 => 2,
            odd if odd % 2 == 1 => odd - 2,
            // Not attached by the count: a peer wrote garbage; leave it.
            _ => return,
        };
        match word.compare_exchange(current, next, AcqRel, Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

/// Takes slot `index` of `role`: a free one (even epoch), or, with
/// `take_over`, one whose holder the caller knows to be dead; unless
/// `pending`, asked with the epoch the compare-and-swap would replace,
/// says a claim of the slot's last holder may still be pending
/// ([`Error::RoleTaken`] then). A taken-over slot keeps its place in the
/// count.
///
/// `pending` reads what the slot's last holder left (its claim), so it
/// runs after the `Acquire` load of the epoch and the slot is taken only
/// from that very epoch: whatever the holder, or a detach on its behalf,
/// stored before that epoch is what `pending` sees, or newer. (Checked
/// before the load, a claim read could be older than the detach that made
/// the slot free: `loom_faults`
/// `a_consumer_never_takes_a_slot_whose_claim_is_pending`.)
pub(super) fn attach_slot<B: Backend>(
    backend: &B,
    role: Role,
    index: usize,
    take_over: bool,
    pending: impl Fn(u64) -> bool,
) -> Result<u64> {
    let word = slot(backend, role, index, SlotWord::Epoch);
    loop {
        // Seeded defect `relaxed_slot_epoch`: the load `Relaxed`.
        let current = word.load(order(B::FAULTS.relaxed_slot_epoch, Acquire));
        let fresh = current.is_multiple_of(2);
        if (!fresh && !take_over) || pending(current) {
            return Err(Error::RoleTaken(role));
        }
        let next = current.wrapping_add(if fresh { 1 } else { 2 });
        // The failure ordering `Relaxed`: a failure starts over from the
        // `Acquire` load above.
        if word
            .compare_exchange(current, next, AcqRel, Relaxed)
            .is_ok()
        {
            if fresh {
                count_attach(backend, role);
            }
            return Ok(next);
        }
    }
}

/// Frees slot `index` of `role` and counts one fewer.
pub(super) fn detach_slot<B: Backend>(backend: &B, role: Role, index: usize, epoch: u64) {
    slot(backend, role, index, SlotWord::Epoch).store(epoch.wrapping_add(1), Release);
    count_detach(backend, role);
}

pub(super) fn check_geometry(geometry: Geometry) -> Result<()> {
    if geometry.max_message() >= MAX_MESSAGE {
        return Err(Error::InvalidConfig(format!(
            "a multi-producer ring takes messages of less than {MAX_MESSAGE} bytes, not {}",
            geometry.max_message()
        )));
    }
    Ok(())
}

/// Detaches, on their behalf, the consumers whose slot epoch says attached
/// but whose process is dead: the watchdog's look
/// ([`crate::shm::watch`]), written against the backend seam so that the
/// models run it beside the producers. Returns how many it detached.
///
/// Each compare-and-swap stores what the consumer's `Drop` would have
/// stored (then counts one fewer, as `Drop` does), and fails if the slot
/// was freed or taken over since the load. Producers are never detached
/// so: a dead producer's claim must stay recoverable through its slot.
///
/// ```
/// use shmsg::shm::{Geometry, Mapped, layout::RingKind, mpmc};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// let _rx = mpmc::Consumer::with_backend(memory.clone(), RingKind::Mpmc)?;
/// // Consumers in this process are alive: none is detached.
/// assert_eq!(mpmc::detach_dead_consumers(&memory, RingKind::Mpmc), 0);
/// # Ok::<(), shmsg::Error>(())
/// ```
#[doc(hidden)]
pub fn detach_dead_consumers<B: Backend>(backend: &B, kind: RingKind) -> usize {
    let mut detached = 0;
    for index in 0..slot_limit(kind, Role::Consumer) {
        let word = slot(backend, Role::Consumer, index, SlotWord::Epoch);
        let epoch = word.load(Acquire);
        if epoch.is_multiple_of(2) || backend.slot_alive(Role::Consumer, index) {
            continue;
        }
        if word
            .compare_exchange(epoch, epoch.wrapping_add(1), AcqRel, Relaxed)
            .is_ok()
        {
            count_detach(backend, Role::Consumer);
            detached += 1;
        }
    }
    if detached > 0 {
        // Producers asleep on a full ring learn of it now.
        wait::notify(backend, Event::Space);
    }
    detached
}

/// The watchdog's look ([`detach_dead_consumers`]) at a region's ring.
fn watch_consumers(memory: &Mapped, kind: RingKind) {
    detach_dead_consumers(memory, kind);
}

/// A multi-producer ring between threads of this process, over a heap
/// allocation with the layout of a region: one producer and one consumer;
/// [`Producer::another`] and [`Consumer::another`] attach more.
///
/// ```
/// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
///
/// let (tx, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
/// let senders: Vec<_> = (0..4u8)
///     .map(|id| {
///         let mut tx = tx.another()?;
///         Ok(std::thread::spawn(move || tx.send(&[id; 3])))
///     })
///     .collect::<shmsg::Result<_>>()?;
/// drop(tx);
/// let mut seen = Vec::new();
/// let mut buf = Vec::new();
/// // Every message arrives whole; the ring reports `Disconnected` once
/// // every producer has gone and everything is received.
/// while rx.recv(&mut buf).is_ok() {
///     assert_eq!(buf, [buf[0]; 3]);
///     seen.push(buf[0]);
/// }
/// for sender in senders {
///     sender.join().unwrap()?;
/// }
/// seen.sort();
/// assert_eq!(seen, [0, 1, 2, 3]);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn channel(geometry: Geometry, kind: RingKind) -> Result<(Producer, Consumer)> {
    let memory = Mapped::heap(geometry, 0)?;
    Ok((
        Producer::with_backend(memory.clone())?,
        Consumer::with_backend(memory, kind)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let g = Geometry::new(256, 64).unwrap();
        for position in [0u64, 8, 248, u64::MAX - 7] {
            let offset = position & 255;
            if offset + record_size(5) as u64 <= 256 {
                let w = encode_record(position, 5);
                assert_eq!(decode(w, position, g).unwrap(), Entry::Record(5));
            }
            let w = encode_pad(position, 256 - offset);
            assert_eq!(
                decode(w, position, g).unwrap(),
                Entry::Pad((256 - offset) as usize)
            );
            assert!(decode(w, position.wrapping_add(256), g).is_err());
        }
        assert_eq!(decode(0, 16, g).unwrap(), Entry::Empty);
        assert!(decode(encode_pad(8, 0), 8, g).is_err());
        assert!(decode(encode_pad(8, 12), 8, g).is_err());
        assert!(decode(encode_record(8, 65), 8, g).is_err());
    }

    #[test]
    fn mpsc_threads() {
        let g = Geometry::new(1 << 10, 100).unwrap();
        let (p0, mut c) = channel(g, RingKind::Mpsc).unwrap();
        assert!(matches!(c.another(), Err(Error::RoleTaken(Role::Consumer))));
        let producers: Vec<_> = (0..3u8)
            .map(|id| {
                let mut p = p0.another().unwrap();
                std::thread::spawn(move || {
                    for seq in 0..2000u32 {
                        let mut m = vec![id];
                        m.extend_from_slice(&seq.to_le_bytes());
                        m.resize(5 + (seq as usize % 40), id);
                        p.send(&m).unwrap();
                    }
                })
            })
            .collect();
        drop(p0);
        let mut next = [0u32; 3];
        let mut buf = Vec::new();
        loop {
            match c.recv(&mut buf) {
                Ok(_) => {
                    let id = buf[0] as usize;
                    let seq = u32::from_le_bytes(buf[1..5].try_into().unwrap());
                    assert_eq!(seq, next[id]);
                    next[id] += 1;
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, [2000; 3]);
        producers.into_iter().for_each(|t| t.join().unwrap());
    }
}
