//! Multi-producer rings of variable-size messages: many producers and one
//! consumer ([`RingKind::Mpsc`]), or many producers and many consumers
//! ([`RingKind::Mpmc`], each message to exactly one consumer).
//!
//! (This file is longer than 600 lines: the claim, commit, ordered release
//! and dead-claim recovery are one protocol, and splitting it would scatter
//! the invariants that tie them together.)
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
//! of the data area. A header word:
//!
//! ```text
//! bit 63..32  tag = (position >> 3) as u32
//! bit 31      1: committed (a header is never zero)
//! bit 30      1: padding, 0: a message
//! bit 29..0   payload length (message), or bytes covered (padding)
//! ```
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
//!    (`Release`, so that the recorded attempt is visible to anyone who sees
//!    the new tail); on failure, retry from the tail it saw;
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
//! # A consumer that dies holding a record
//!
//! An `Mpmc` consumer records the entry it claims in its slot (`claim`,
//! `claim_len`) before the compare-and-swap on the read cursor (whose
//! `Release` publishes them), clears a claim whose swap failed, and clears
//! it again once the entry is handed back. A consumer whose hand-back turn
//! has not come after a sleep slice looks at the entry at the head: if
//! every slot that claims it belongs to a consumer that is gone (its
//! process dead, or detached without handing it back), it clears that
//! claim with a compare-and-swap (so one consumer recovers), zeroes the
//! entry and moves the head past it. A claimant that is alive, even one
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
//! has a liveness lock ([`Region::lock_slot`]), so the slot of a dead
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

use std::sync::Arc;
use std::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed, Release};
use std::time::Duration;

use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::layout::{Geometry, MAX_CONSUMERS, MAX_PRODUCERS, RingKind, record_size};
use crate::shm::region::{Region, RoleLock};
use crate::shm::wait::{self, Slept, Spin, Woke};
use crate::shm::watch::{self, Watched};
use crate::shm::{Mapped, Owner};
use crate::sync::{Backend, Control, Event, SlotWord, Word};

const COMMITTED: u64 = 1 << 31;
const PAD: u64 = 1 << 30;
const LEN_MASK: u64 = (1 << 30) - 1;
/// "No claim" in a producer slot's claim word: never a position (not a
/// multiple of 8).
const NO_CLAIM: u64 = u64::MAX;

/// One more than the largest message a multi-producer ring carries: record
/// lengths have 30 bits.
pub const MAX_MESSAGE: usize = (1 << 30) - 16;

/// The header word of a message of `len` bytes at `position`.
#[inline(always)]
pub fn encode_record(position: u64, len: usize) -> u64 {
    ((position >> 3) << 32) | COMMITTED | len as u64
}

/// The header word of padding that covers `bytes` bytes from `position`.
#[inline(always)]
pub fn encode_pad(position: u64, bytes: u64) -> u64 {
    ((position >> 3) << 32) | COMMITTED | PAD | bytes
}

/// What a header word says about the entry at a position.
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
    fn extent(self) -> u64 {
        match self {
            Entry::Empty => 0,
            Entry::Pad(bytes) => bytes as u64,
            Entry::Record(len) => record_size(len) as u64,
        }
    }
}

/// Decodes the header word `word` read at `position` of a ring of
/// `geometry`. Pure; any word is either a valid entry or [`Error::Corrupt`].
#[inline(always)]
pub fn decode(word: u64, position: u64, geometry: Geometry) -> Result<Entry> {
    if word == 0 {
        return Ok(Entry::Empty);
    }
    if word >> 32 != (position >> 3) & 0xFFFF_FFFF || word & COMMITTED == 0 {
        return Err(Error::corrupt("record header tag", word));
    }
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

static ZEROS: [u8; 4096] = [0; 4096];

#[inline(always)]
fn order(weakened: bool, order: Ordering) -> Ordering {
    if weakened { Relaxed } else { order }
}

#[inline(always)]
fn slot<B: Backend>(backend: &B, role: Role, index: usize, word: SlotWord) -> &B::Word {
    backend.control(Control::Slot { role, index, word })
}

/// The slots a ring of `kind` offers to `role`.
fn slot_limit(kind: RingKind, role: Role) -> usize {
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

/// Whether every `role` that ever attached has detached.
#[inline(always)]
fn all_detached<B: Backend>(backend: &B, role: Role) -> bool {
    let count = backend.control(Control::epoch(role)).load(Acquire);
    count != 0 && count.is_multiple_of(2)
}

/// Takes slot `index` of `role`: a free one (even epoch), or, with
/// `take_over`, one whose holder the caller knows to be dead. A taken-over
/// slot keeps its place in the count.
fn attach_slot<B: Backend>(backend: &B, role: Role, index: usize, take_over: bool) -> Result<u64> {
    let word = slot(backend, role, index, SlotWord::Epoch);
    let mut current = word.load(Acquire);
    loop {
        let fresh = current.is_multiple_of(2);
        if !fresh && !take_over {
            return Err(Error::RoleTaken(role));
        }
        let next = current.wrapping_add(if fresh { 1 } else { 2 });
        match word.compare_exchange(current, next, AcqRel, Acquire) {
            Ok(_) => {
                if fresh {
                    count_attach(backend, role);
                }
                return Ok(next);
            }
            Err(seen) => current = seen,
        }
    }
}

/// Frees slot `index` of `role` and counts one fewer.
fn detach_slot<B: Backend>(backend: &B, role: Role, index: usize, epoch: u64) {
    slot(backend, role, index, SlotWord::Epoch).store(epoch.wrapping_add(1), Release);
    count_detach(backend, role);
}

fn check_geometry(geometry: Geometry) -> Result<()> {
    if geometry.max_message() >= MAX_MESSAGE {
        return Err(Error::InvalidConfig(format!(
            "a multi-producer ring takes messages of less than {MAX_MESSAGE} bytes, not {}",
            geometry.max_message()
        )));
    }
    Ok(())
}

/// Zeroes `len` bytes (a multiple of 8) of the data area from `offset`.
///
/// # Safety
///
/// The caller has exclusive use of the range, as for [`Backend::write`].
unsafe fn zero<B: Backend>(backend: &B, offset: usize, len: usize) {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len());
        // SAFETY: a sub-range of the caller's exclusive, in-bounds range;
        // `offset + done` stays a multiple of 8.
        unsafe { backend.write(offset + done, &ZEROS[..n]) };
        done += n;
    }
}

/// Commits padding `pad` in a dead producer's claim at `word`, unless the
/// producer committed there after all: between a recoverer's look at the
/// empty header and this store, the producer may have committed its record
/// and only then died (`shuttle_faults` found a store overwriting such a
/// record). A compare-and-swap from empty never overwrites a commit.
fn pad_if_empty<W: Word>(word: &W, pad: u64) {
    let _ = word.compare_exchange(0, pad, Release, Relaxed);
}

/// `Mpsc`: finishes the release a consumer of slot `index` died in the
/// middle of, for the consumer taking the slot: if the slot's claim is the
/// head, its record was read and was being zeroed (payload, then header)
/// when its consumer died. Delivering it again could give torn bytes, and
/// leaving it would show a zero header at the head (the ring would stall),
/// so it is zeroed and the head moved past it: the message counts as
/// received by the dead consumer, as one whose head store had landed.
fn finish_release<B: Backend>(backend: &B, index: usize) -> Result<()> {
    let head = backend.control(Control::Head).load(Acquire);
    let claim = slot(backend, Role::Consumer, index, SlotWord::Claim).load(Acquire);
    let len = slot(backend, Role::Consumer, index, SlotWord::ClaimLen).load(Acquire);
    // A slot never used has a zero length; any other claim is a finished
    // release, behind the head.
    if claim != head || len == 0 {
        return Ok(());
    }
    let capacity = backend.capacity() as u64;
    let offset = head & (capacity - 1);
    let tail = backend.control(Control::Tail).load(Acquire);
    if len < 8
        || !len.is_multiple_of(8)
        || !head.is_multiple_of(8)
        || len > tail.wrapping_sub(head)
        || offset + len > capacity
    {
        return Err(Error::corrupt("an interrupted release's length", len));
    }
    // SAFETY: the record lies inside the data area (checked above) and is
    // ours: we hold the only consumer slot, and producers write it only
    // after the head moves past it.
    unsafe { zero(backend, offset as usize + 8, len as usize - 8) };
    backend.data_word((offset / 8) as usize).store(0, Relaxed);
    backend
        .control(Control::Head)
        .store(head.wrapping_add(len), Release);
    wait::notify(backend, Event::Space);
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

/// The writing end of a multi-producer ring; one of up to
/// [`MAX_PRODUCERS`].
///
/// Dropping it detaches; once every producer has detached, the consumers
/// get [`Error::Disconnected`] after the last message.
pub struct Producer<B: Backend = Mapped> {
    backend: B,
    index: usize,
    epoch: u64,
    /// Last head seen; the true head is never behind it.
    head_cache: u64,
    capacity: u64,
    mask: u64,
    max_message: usize,
    spin: Spin,
}

/// Bytes a producer has claimed.
#[derive(Clone, Copy, Debug)]
struct Claim {
    /// The tail the claim starts at.
    at: u64,
    /// Where the record's header goes: `at`, or the start of the next lap.
    start: u64,
    /// Bytes from `start` the record may use.
    record: u64,
}

impl Claim {
    fn wrapped(&self) -> bool {
        self.start != self.at
    }
}

impl<B: Backend> Producer<B> {
    /// Attaches a producer to the ring in `backend`, in the first free
    /// slot. [`Error::RoleTaken`] if all [`MAX_PRODUCERS`] are taken;
    /// [`Error::InvalidConfig`] if the ring's maximum message is too large
    /// for this kind of ring.
    pub fn with_backend(backend: B) -> Result<Self> {
        for index in 0..MAX_PRODUCERS {
            match Self::attach_in(&backend, index, false) {
                Ok(epoch) => return Ok(Self::build(backend, index, epoch)),
                Err(Error::RoleTaken(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::RoleTaken(Role::Producer))
    }

    /// Attaches in slot `index`; with `take_over`, a slot whose epoch says
    /// attached is taken too (the caller knows its holder is dead), unless
    /// that holder's last claim may still be pending.
    #[doc(hidden)]
    pub fn with_backend_in_slot(backend: B, index: usize, take_over: bool) -> Result<Self> {
        let epoch = Self::attach_in(&backend, index, take_over)?;
        Ok(Self::build(backend, index, epoch))
    }

    fn attach_in(backend: &B, index: usize, take_over: bool) -> Result<u64> {
        check_geometry(Geometry::of(backend))?;
        if index >= MAX_PRODUCERS {
            return Err(Error::RoleTaken(Role::Producer));
        }
        if take_over {
            // A dead holder's claim in `head..tail` may be a hole that a
            // consumer will recover through this slot's claim words.
            let head = backend.control(Control::Head).load(Acquire);
            let claim = slot(backend, Role::Producer, index, SlotWord::Claim).load(Acquire);
            let tail = backend.control(Control::Tail).load(Acquire);
            let epoch = slot(backend, Role::Producer, index, SlotWord::Epoch).load(Acquire);
            if epoch % 2 == 1
                && claim != NO_CLAIM
                && claim.wrapping_sub(head) < tail.wrapping_sub(head)
            {
                return Err(Error::RoleTaken(Role::Producer));
            }
        }
        let epoch = attach_slot(backend, Role::Producer, index, take_over)?;
        slot(backend, Role::Producer, index, SlotWord::Claim).store(NO_CLAIM, Relaxed);
        Ok(epoch)
    }

    fn build(backend: B, index: usize, epoch: u64) -> Self {
        let geometry = Geometry::of(&backend);
        let capacity = geometry.capacity() as u64;
        let head = backend.control(Control::Head).load(Acquire);
        Producer {
            spin: Spin::new(backend.spin_limit()),
            backend,
            index,
            epoch,
            head_cache: head,
            capacity,
            mask: capacity - 1,
            max_message: geometry.max_message(),
        }
    }

    /// The ring's capacity and maximum message size.
    pub fn geometry(&self) -> Geometry {
        Geometry::of(&self.backend)
    }

    /// The slot this producer holds (0 to [`MAX_PRODUCERS`] - 1).
    pub fn slot(&self) -> usize {
        self.index
    }

    /// Sends `message` if there is room now; [`Error::Full`] if not.
    #[inline]
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        let claim = self.claim(message.len())?;
        let offset = (claim.start & self.mask) as usize + 8;
        if B::FAULTS.commit_before_payload {
            self.commit(claim, message.len());
        }
        // SAFETY: `claim` made `claim.start .. claim.start + claim.record`
        // ours: inside the data area, released by the consumers, and no
        // other producer's.
        unsafe { self.backend.write(offset, message) };
        if !B::FAULTS.commit_before_payload {
            self.commit(claim, message.len());
        }
        Ok(())
    }

    /// Sends `message`, waiting while the ring is full.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.blocking(Deadline::Never, |p| p.try_send(message))
    }

    /// Sends `message`, waiting at most `timeout` while the ring is full.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.blocking(Deadline::after(timeout), |p| p.try_send(message))
    }

    /// Writes a message of at most `max_len` bytes in place: `fill` gets the
    /// record's payload bytes (their previous contents are unspecified) and
    /// returns how many it wrote. [`Error::Full`] if there is no room now.
    ///
    /// If `fill` returns more than `max_len`, or panics, the claimed bytes
    /// are committed as padding (consumers skip them) and nothing is sent;
    /// the result is [`Error::MessageTooLarge`] (or the panic goes on).
    #[inline]
    pub fn try_send_with(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize> {
        self.send_with_once(max_len, &mut Some(fill))
    }

    /// [`Producer::try_send_with`], waiting while the ring is full.
    pub fn send_with(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize> {
        let mut fill = Some(fill);
        self.blocking(Deadline::Never, |p| p.send_with_once(max_len, &mut fill))
    }

    #[inline(always)]
    fn send_with_once(
        &mut self,
        max_len: usize,
        fill: &mut Option<impl FnOnce(&mut [u8]) -> usize>,
    ) -> Result<usize> {
        let claim = self.claim(max_len)?;
        let fill = fill.take().expect("an in-place send fills once");
        let offset = (claim.start & self.mask) as usize + 8;
        // Pads the claim if `fill` panics: a live producer never leaves a hole.
        let guard = AbortOnUnwind {
            producer: self,
            claim,
        };
        // SAFETY: as in `try_send`, for `max_len` bytes.
        let len = unsafe { guard.producer.backend.write_in_place(offset, max_len, fill) };
        let producer = guard.disarm();
        if len > max_len {
            producer.abort(claim);
            return Err(Error::MessageTooLarge { len, max: max_len });
        }
        producer.commit(claim, len);
        Ok(len)
    }

    /// Test support: claims room for `len` bytes, scribbles on it, and
    /// vanishes without committing or detaching, as a process killed in the
    /// middle of a send would.
    #[doc(hidden)]
    pub fn abandon_claim(mut self, len: usize) -> Result<()> {
        let claim = self.claim(len)?;
        let offset = (claim.start & self.mask) as usize + 8;
        // SAFETY: as in `try_send`.
        unsafe { self.backend.write(offset, &vec![0xAB; len]) };
        std::mem::forget(self);
        Ok(())
    }

    /// Runs `attempt` in the one wait loop of [`crate::shm::wait`] until it stops
    /// reporting [`Error::Full`], waiting on [`Event::Space`].
    fn blocking<T>(
        &mut self,
        deadline: Deadline,
        attempt: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        wait::block_for_space(self, deadline, attempt)
    }

    /// Claims room for a record of `len` payload bytes (module docs, step 1).
    #[inline(always)]
    fn claim(&mut self, len: usize) -> Result<Claim> {
        if len > self.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        if all_detached(&self.backend, Role::Consumer) {
            return Err(Error::Disconnected);
        }
        let record = record_size(len) as u64;
        let tail = self.backend.control(Control::Tail);
        let mut at = tail.load(Relaxed);
        loop {
            if !at.is_multiple_of(8) {
                return Err(Error::corrupt("tail", at));
            }
            let to_end = self.capacity - (at & self.mask);
            let (start, needed) = if record <= to_end {
                (at, record)
            } else {
                (at.wrapping_add(to_end), to_end + record)
            };
            // `at` is read from the region: any value. The distance from the
            // cached head saturates rather than wraps, so a tail far ahead
            // of it takes the checked path below instead of a false fit.
            if at.wrapping_sub(self.head_cache).saturating_add(needed) > self.capacity {
                let head = self.backend.control(Control::Head).load(Acquire);
                let used = at.wrapping_sub(head);
                if used > self.capacity || !head.is_multiple_of(8) {
                    // Our tail may be stale: the consumers passed it.
                    let now = tail.load(Relaxed);
                    if now != at {
                        at = now;
                        continue;
                    }
                    if !head.is_multiple_of(8) {
                        return Err(Error::corrupt("head", head));
                    }
                    return Err(Error::corrupt("tail (more than a ring past the head)", at));
                }
                self.head_cache = head;
                if used.saturating_add(needed) > self.capacity {
                    return Err(Error::Full);
                }
            }
            // The attempt, for a consumer recovering from our death; the
            // `Release` below publishes it with the new tail.
            let slot_word = |word| slot(&self.backend, Role::Producer, self.index, word);
            slot_word(SlotWord::ClaimLen).store(needed, Relaxed);
            slot_word(SlotWord::Claim).store(at, Relaxed);
            let next = at.wrapping_add(needed);
            if B::FAULTS.claim_without_cas {
                // Seeded defect: a load and a store instead of one atomic step.
                let seen = tail.load(Relaxed);
                if seen == at {
                    tail.store(next, Release);
                    return Ok(Claim { at, start, record });
                }
                at = seen;
                continue;
            }
            match tail.compare_exchange(at, next, Release, Relaxed) {
                Ok(_) => return Ok(Claim { at, start, record }),
                Err(seen) => at = seen,
            }
        }
    }

    /// Publishes a claimed record of `len` bytes whose payload is written
    /// (module docs, steps 3 and 4).
    #[inline(always)]
    fn commit(&mut self, claim: Claim, len: usize) {
        let early = B::FAULTS
            .notify_before_publish
            .then(|| wait::sleeper_announced(&self.backend, Event::Data));
        let used = record_size(len) as u64;
        if used < claim.record {
            // An in-place message that came out shorter: pad the rest. The
            // record's `Release` below publishes it.
            let at = claim.start.wrapping_add(used);
            self.word_at(at)
                .store(encode_pad(at, claim.record - used), Relaxed);
        }
        let publish = order(B::FAULTS.relaxed_publish, Release);
        self.word_at(claim.start)
            .store(encode_record(claim.start, len), publish);
        self.pad_wrap(claim, publish);
        match early {
            None => wait::notify(&self.backend, Event::Data),
            Some(true) => wait::wake(&self.backend, Event::Data),
            Some(false) => {}
        }
    }

    /// Commits a claim as padding: nothing is sent, consumers skip it.
    fn abort(&mut self, claim: Claim) {
        self.word_at(claim.start)
            .store(encode_pad(claim.start, claim.record), Release);
        self.pad_wrap(claim, Release);
        wait::notify(&self.backend, Event::Data);
    }

    /// After the record, the padding before the wrap, if any.
    #[inline(always)]
    fn pad_wrap(&self, claim: Claim, order: Ordering) {
        if claim.wrapped() {
            let bytes = claim.start.wrapping_sub(claim.at);
            self.word_at(claim.at)
                .store(encode_pad(claim.at, bytes), order);
        }
    }

    #[inline(always)]
    fn word_at(&self, position: u64) -> &B::Word {
        self.backend
            .data_word(((position & self.mask) / 8) as usize)
    }
}

/// Commits a claim as padding if the closure filling it panics.
struct AbortOnUnwind<'a, B: Backend> {
    producer: &'a mut Producer<B>,
    claim: Claim,
}

impl<'a, B: Backend> AbortOnUnwind<'a, B> {
    fn disarm(self) -> &'a mut Producer<B> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the reference is moved out
        // exactly once.
        unsafe { std::ptr::read(&this.producer) }
    }
}

impl<B: Backend> Drop for AbortOnUnwind<'_, B> {
    fn drop(&mut self) {
        self.producer.abort(self.claim);
    }
}

impl<B: Backend> Drop for Producer<B> {
    fn drop(&mut self) {
        // Every commit happens-before the count says we are gone.
        detach_slot(&self.backend, Role::Producer, self.index, self.epoch);
        wait::notify(&self.backend, Event::Data);
    }
}

/// The reading end of a multi-producer ring: the one consumer of an
/// [`RingKind::Mpsc`] ring, or one of up to [`MAX_CONSUMERS`] of an
/// [`RingKind::Mpmc`] ring.
pub struct Consumer<B: Backend = Mapped> {
    backend: B,
    index: usize,
    epoch: u64,
    /// Whether consumers share the read cursor (`Mpmc`).
    shared: bool,
    /// `Mpsc`: the position of the next entry (private cursor).
    head: u64,
    mask: u64,
    geometry: Geometry,
    spin: Spin,
    /// `Mpmc`: an entry this consumer has consumed and zeroed, whose hand
    /// back waits for the consumers before it (start, extent). It is
    /// finished by the next call, within that call's deadline.
    pending: Option<(u64, u64)>,
    /// The deadline of the call in progress, for the hand-back wait.
    deadline: Deadline,
}

impl<B: Backend> Consumer<B> {
    /// Attaches a consumer to the ring of `kind` ([`RingKind::Mpsc`] or
    /// [`RingKind::Mpmc`]) in `backend`, in the first free slot.
    /// [`Error::RoleTaken`] if all are taken (one for `Mpsc`).
    pub fn with_backend(backend: B, kind: RingKind) -> Result<Self> {
        for index in 0..slot_limit(kind, Role::Consumer) {
            match Self::attach_in(&backend, kind, index, false) {
                Ok((epoch, head)) => return Ok(Self::build(backend, kind, index, epoch, head)),
                Err(Error::RoleTaken(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::RoleTaken(Role::Consumer))
    }

    /// Attaches in slot `index`, as [`Producer::with_backend_in_slot`].
    #[doc(hidden)]
    pub fn with_backend_in_slot(
        backend: B,
        kind: RingKind,
        index: usize,
        take_over: bool,
    ) -> Result<Self> {
        let (epoch, head) = Self::attach_in(&backend, kind, index, take_over)?;
        Ok(Self::build(backend, kind, index, epoch, head))
    }

    fn attach_in(backend: &B, kind: RingKind, index: usize, take_over: bool) -> Result<(u64, u64)> {
        check_geometry(Geometry::of(backend))?;
        if kind == RingKind::Spsc {
            return Err(Error::InvalidConfig(
                "a single-producer ring has no multi-producer consumer".into(),
            ));
        }
        if index >= slot_limit(kind, Role::Consumer) {
            return Err(Error::RoleTaken(Role::Consumer));
        }
        if kind == RingKind::Mpmc {
            // A record a gone consumer of this slot held and nobody has
            // recovered yet stays claimed through the slot until it is
            // (a consumer waiting for its hand-back turn recovers it).
            // (A slot never attached, epoch 0, has made no claim.)
            let head = backend.control(Control::Head).load(Acquire);
            let claim = slot(backend, Role::Consumer, index, SlotWord::Claim).load(Acquire);
            let cursor = backend.control(Control::ReadCursor).load(Acquire);
            let epoch = slot(backend, Role::Consumer, index, SlotWord::Epoch).load(Acquire);
            if epoch != 0
                && claim != NO_CLAIM
                && claim.wrapping_sub(head) < cursor.wrapping_sub(head)
            {
                return Err(Error::RoleTaken(Role::Consumer));
            }
        }
        let epoch = attach_slot(backend, Role::Consumer, index, take_over)?;
        if kind == RingKind::Mpsc
            && !B::FAULTS.no_release_finish
            && let Err(error) = finish_release(backend, index)
        {
            detach_slot(backend, Role::Consumer, index, epoch);
            return Err(error);
        }
        slot(backend, Role::Consumer, index, SlotWord::Claim).store(NO_CLAIM, Relaxed);
        let head = backend.control(Control::Head).load(Acquire);
        if !head.is_multiple_of(8) {
            detach_slot(backend, Role::Consumer, index, epoch);
            return Err(Error::corrupt("head", head));
        }
        Ok((epoch, head))
    }

    fn build(backend: B, kind: RingKind, index: usize, epoch: u64, head: u64) -> Self {
        let geometry = Geometry::of(&backend);
        Consumer {
            spin: Spin::new(backend.spin_limit()),
            backend,
            index,
            epoch,
            shared: kind == RingKind::Mpmc,
            head,
            mask: geometry.capacity() as u64 - 1,
            geometry,
            pending: None,
            deadline: Deadline::Now,
        }
    }

    /// The ring's capacity and maximum message size.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Receives the next message into `buf` (replacing its contents) if one
    /// is waiting, and returns its length. [`Error::Empty`] if none is;
    /// [`Error::Disconnected`] if none is and every producer has detached.
    #[inline]
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.deadline = Deadline::Now;
        self.recv_once(buf)
    }

    /// Receives the next message, waiting while the ring is empty.
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.blocking(Deadline::Never, |c| c.recv_once(buf))
    }

    /// Receives the next message, waiting at most `timeout` (plus at most
    /// one sleep slice), whatever the other processes do.
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.blocking(Deadline::after(timeout), |c| c.recv_once(buf))
    }

    #[inline(always)]
    fn recv_once(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_with_once(&mut Some(|payload: &[u8]| {
            buf.clear();
            buf.extend_from_slice(payload);
            payload.len()
        }))
    }

    /// Reads the next message in place: `read` gets the payload bytes inside
    /// the ring, and the record is handed back when it returns (in an
    /// `Mpmc` ring, once the records before it are handed back too).
    #[inline]
    pub fn try_recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.deadline = Deadline::Now;
        self.recv_with_once(&mut Some(read))
    }

    /// [`Consumer::try_recv_with`], waiting while the ring is empty.
    pub fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let mut read = Some(read);
        self.blocking(Deadline::Never, |c| c.recv_with_once(&mut read))
    }

    /// [`Consumer::recv_with`] with a timeout.
    pub fn recv_with_timeout<R>(
        &mut self,
        timeout: Duration,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let mut read = Some(read);
        self.blocking(Deadline::after(timeout), |c| c.recv_with_once(&mut read))
    }

    #[inline(always)]
    fn recv_with_once<R>(&mut self, read: &mut Option<impl FnOnce(&[u8]) -> R>) -> Result<R> {
        let (start, len) = match self.take()? {
            Some(found) => found,
            None => {
                if !all_detached(&self.backend, Role::Producer) {
                    return Err(Error::Empty);
                }
                // Every commit happens-before the last detach: one more look.
                match self.take()? {
                    Some(found) => found,
                    None => return Err(Error::Disconnected),
                }
            }
        };
        let read = read.take().expect("an in-place receive reads once");
        let offset = (start & self.mask) as usize + 8;
        // SAFETY: `take` validated that the committed record lies inside the
        // data area and made it ours (private head, or a won claim on the
        // read cursor); nobody writes it until we hand it back below.
        let result = unsafe { self.backend.read_in_place(offset, len, read) };
        // The message is ours and read: it is delivered even if its hand
        // back must wait past this call's deadline (it stays pending).
        self.hand_back(start, record_size(len) as u64)?;
        Ok(result)
    }

    /// Finds the next committed message and makes it ours, handing back any
    /// padding on the way; `None` if nothing is committed.
    #[inline(always)]
    fn take(&mut self) -> Result<Option<(u64, usize)>> {
        // One entry at a time: a hand-back still waiting for the consumers
        // before it is finished first (within the call's deadline), else
        // the call would block.
        if self.pending.is_some() && !self.settle()? {
            return Err(Error::Empty);
        }
        let poll = order(B::FAULTS.relaxed_poll, Acquire);
        // Each round moves past at least 8 bytes of padding, or retries
        // after another consumer moved the cursor: bounded by a lap.
        for _ in 0..=self.geometry.capacity() / 8 {
            let at = if self.shared {
                self.backend.control(Control::ReadCursor).load(Acquire)
            } else {
                self.head
            };
            if !at.is_multiple_of(8) {
                return Err(Error::corrupt("read cursor", at));
            }
            let word = self.word_at(at).load(poll);
            let entry = match decode(word, at, self.geometry) {
                Ok(entry) => entry,
                // Stale if another consumer moved the cursor meanwhile.
                Err(_) if self.shared && self.cursor_moved(at) => continue,
                Err(error) => return Err(error),
            };
            if entry == Entry::Empty {
                // A stale cursor reads as empty too: another consumer may
                // have moved it past a record it has since zeroed. A plain
                // load may return an old cursor; a read-modify-write reads
                // its latest value, so "empty" is confirmed there (and a
                // consumer never reports `Disconnected`, or sleeps, on a
                // stale look; the loom model `loom_faults` found this).
                if self.shared
                    && self
                        .backend
                        .control(Control::ReadCursor)
                        .fetch_add(0, AcqRel)
                        != at
                {
                    continue;
                }
                return Ok(None);
            }
            let end = at.wrapping_add(entry.extent());
            if self.shared {
                // The entry we are claiming, for a consumer recovering it
                // should we die holding it; the `Release` of the claim below
                // publishes it with the new cursor.
                let word = |word| slot(&self.backend, Role::Consumer, self.index, word);
                word(SlotWord::ClaimLen).store(entry.extent(), Relaxed);
                word(SlotWord::Claim).store(at, Relaxed);
                let cursor = self.backend.control(Control::ReadCursor);
                if cursor.compare_exchange(at, end, AcqRel, Relaxed).is_err() {
                    word(SlotWord::Claim).store(NO_CLAIM, Relaxed);
                    continue;
                }
            } else {
                self.head = end;
            }
            match entry {
                Entry::Record(len) => return Ok(Some((at, len))),
                _ => {
                    if !self.hand_back(at, entry.extent())? {
                        return Err(Error::Empty);
                    }
                }
            }
        }
        Ok(None)
    }

    fn cursor_moved(&self, at: u64) -> bool {
        self.backend.control(Control::ReadCursor).load(Acquire) != at
    }

    /// Zeroes the entry at `start` and hands it back: moves the head past
    /// it, after the entries before it (`Mpmc`), and wakes producers waiting
    /// for space. Returns whether the hand-back is done; if the consumers
    /// before it have not handed theirs back by the call's deadline, it
    /// stays pending ([`Consumer::settle`]).
    #[inline(always)]
    fn hand_back(&mut self, start: u64, extent: u64) -> Result<bool> {
        if !self.shared {
            // `Mpsc`: the release under way, for a consumer that takes over
            // should we die before the head moves (an `Mpmc` consumer's
            // claim already says so).
            let word = |word| slot(&self.backend, Role::Consumer, self.index, word);
            word(SlotWord::ClaimLen).store(extent, Relaxed);
            word(SlotWord::Claim).store(start, Release);
        }
        if !B::FAULTS.release_without_zeroing {
            let offset = (start & self.mask) as usize;
            // SAFETY: the entry is ours until the head moves past it, and
            // lies inside the data area (`decode` checked it).
            unsafe { zero(&self.backend, offset + 8, extent as usize - 8) };
            self.word_at(start).store(0, Relaxed);
        }
        self.pending = Some((start, extent));
        self.settle()
    }

    /// Finishes the pending hand-back, if any: waits (until the call's
    /// deadline) for the head to reach it, then stores the head past it.
    /// Returns whether nothing is pending any more.
    fn settle(&mut self) -> Result<bool> {
        let Some((start, extent)) = self.pending else {
            return Ok(true);
        };
        if self.shared && !B::FAULTS.release_out_of_order {
            match self.wait_for_turn(start) {
                Ok(()) => {}
                Err(Error::Timeout) => return Ok(false),
                Err(error) => return Err(error),
            }
        }
        self.pending = None;
        let release = order(B::FAULTS.relaxed_release, Release);
        self.backend
            .control(Control::Head)
            .store(start.wrapping_add(extent), release);
        if self.shared {
            // Handed back: nothing left to recover for us (a claim left
            // behind the head would never match it again anyway).
            slot(&self.backend, Role::Consumer, self.index, SlotWord::Claim)
                .store(NO_CLAIM, Relaxed);
        }
        wait::notify(&self.backend, Event::Space);
        Ok(true)
    }

    /// `Mpmc`: if the entry at the head is held by consumers that are all
    /// gone (dead, or detached without handing it back), hands it back for
    /// them: one consumer, elected by a compare-and-swap that clears the
    /// holder's claim, zeroes it and moves the head past it. The entry is
    /// not delivered again (module docs). Returns whether it recovered one.
    fn recover_abandoned(&mut self) -> Result<bool> {
        let head = self.backend.control(Control::Head).load(Acquire);
        let mut holder: Option<(usize, u64)> = None;
        for index in 0..MAX_CONSUMERS {
            let word = |word| slot(&self.backend, Role::Consumer, index, word);
            let epoch = word(SlotWord::Epoch).load(Acquire);
            // A slot never attached (epoch 0) has made no claim.
            if index == self.index || epoch == 0 || word(SlotWord::Claim).load(Acquire) != head {
                continue;
            }
            let attached = epoch % 2 == 1;
            if attached
                && !B::FAULTS.recover_live_consumer
                && self.backend.slot_alive(Role::Consumer, index)
            {
                return Ok(false);
            }
            let len = word(SlotWord::ClaimLen).load(Acquire);
            if len == 0 {
                // Never claimed anything (it died before its first claim).
                continue;
            }
            match holder {
                // A claim that lost its compare-and-swap and was not cleared
                // (its consumer died in between) may disagree: leave it.
                Some((_, other)) if other != len => return Ok(false),
                _ => holder = Some((index, len)),
            }
        }
        let Some((index, len)) = holder else {
            return Ok(false);
        };
        let cursor = self.backend.control(Control::ReadCursor).load(Acquire);
        let offset = head & self.mask;
        if len < 8
            || !len.is_multiple_of(8)
            || !head.is_multiple_of(8)
            || len > cursor.wrapping_sub(head)
            || offset + len > self.geometry.capacity() as u64
        {
            return Err(Error::corrupt("a gone consumer's claim length", len));
        }
        let claim = slot(&self.backend, Role::Consumer, index, SlotWord::Claim);
        if claim
            .compare_exchange(head, NO_CLAIM, AcqRel, Relaxed)
            .is_err()
        {
            return Ok(false);
        }
        // SAFETY: the entry lies inside the data area (checked above) and is
        // ours now: its holder is gone, the compare-and-swap made us the
        // only recoverer, and nobody writes it until the head moves past it.
        unsafe { zero(&self.backend, offset as usize + 8, len as usize - 8) };
        self.word_at(head).store(0, Relaxed);
        self.backend
            .control(Control::Head)
            .store(head.wrapping_add(len), Release);
        wait::notify(&self.backend, Event::Space);
        Ok(true)
    }

    /// `Mpmc`: waits until the consumers before us have handed back
    /// everything before `start`, in the one wait loop on [`Event::Space`]
    /// (which every hand-back notifies), until the call's deadline:
    /// [`Error::Timeout`] then. A consumer before us that stalls delays our
    /// hand-back, never our call past its deadline; after each sleep slice,
    /// a record held by a consumer that is gone is recovered
    /// ([`Consumer::recover_abandoned`]).
    fn wait_for_turn(&mut self, start: u64) -> Result<()> {
        if self.turn_arrived(start)? {
            return Ok(());
        }
        // Past the deadline (or none to wait for): no spin either, since
        // the caller's own wait loop polls this again and again.
        if self.deadline == Deadline::Now || self.deadline.passed() {
            return Err(Error::Timeout);
        }
        let deadline = self.deadline;
        wait::block(
            self,
            Event::Space,
            Role::Consumer,
            deadline,
            wait::empty,
            |c| match c.turn_arrived(start)? {
                true => Ok(()),
                false => Err(Error::Empty),
            },
            // A sleep slice without our turn: the consumer before us may be
            // gone; if so, hand its entry back for it, then look again.
            |c, _| {
                c.recover_abandoned()?;
                Ok(Woke::Again)
            },
        )
    }

    /// Whether the head has reached `start`; [`Error::Corrupt`] if the
    /// head (read from the region) is not within a ring before it.
    fn turn_arrived(&self, start: u64) -> Result<bool> {
        let now = self.backend.control(Control::Head).load(Acquire);
        if start.wrapping_sub(now) > self.geometry.capacity() as u64 {
            return Err(Error::corrupt("head", now));
        }
        Ok(now == start)
    }

    /// Runs `attempt` in the one wait loop of [`crate::shm::wait`] until it stops
    /// reporting [`Error::Empty`], waiting on [`Event::Data`]; after each
    /// sleep, recovers a dead producer's claim that blocks the ring.
    fn blocking<T>(
        &mut self,
        deadline: Deadline,
        attempt: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        self.deadline = deadline;
        wait::block(
            self,
            Event::Data,
            Role::Producer,
            deadline,
            wait::empty,
            attempt,
            |c, slept| {
                let recovered = c.recover_dead_claim()?;
                Ok(match slept {
                    Slept::Again => Woke::Again,
                    // Every producer is dead: recover their holes one by
                    // one, deliver what they committed, then the stream is
                    // over.
                    Slept::PeerDead if recovered => Woke::Again,
                    Slept::PeerDead => Woke::LastTry(Error::Disconnected),
                })
            },
        )
    }

    /// If the next entry is a claim of a dead producer, commits padding over
    /// it (module docs). Returns whether it did.
    fn recover_dead_claim(&mut self) -> Result<bool> {
        let at = if self.shared {
            self.backend.control(Control::ReadCursor).load(Acquire)
        } else {
            self.head
        };
        let tail = self.backend.control(Control::Tail).load(Acquire);
        if tail == at || !at.is_multiple_of(8) || self.word_at(at).load(Acquire) != 0 {
            return Ok(false);
        }
        let mut owner: Option<(usize, u64)> = None;
        for index in 0..MAX_PRODUCERS {
            let word = |word| slot(&self.backend, Role::Producer, index, word);
            if word(SlotWord::Epoch).load(Acquire) % 2 == 0
                || word(SlotWord::Claim).load(Acquire) != at
            {
                continue;
            }
            if self.backend.slot_alive(Role::Producer, index) {
                return Ok(false);
            }
            let len = word(SlotWord::ClaimLen).load(Acquire);
            if len == 0 {
                // Never claimed anything: it died between taking the slot
                // and its first claim (a fresh region's words are zero).
                continue;
            }
            match owner {
                Some((_, other)) if other != len => {
                    return Err(Error::corrupt("dead claims disagree on their length", len));
                }
                _ => owner = Some((index, len)),
            }
        }
        let Some((index, len)) = owner else {
            return Ok(false);
        };
        let capacity = self.geometry.capacity() as u64;
        if len == 0 || !len.is_multiple_of(8) || len > tail.wrapping_sub(at) || len > capacity {
            return Err(Error::corrupt("dead claim length", len));
        }
        // Only the consumer that clears the claim recovers it.
        let claim = slot(&self.backend, Role::Producer, index, SlotWord::Claim);
        if claim
            .compare_exchange(at, NO_CLAIM, AcqRel, Relaxed)
            .is_err()
        {
            return Ok(false);
        }
        let to_end = capacity - (at & self.mask);
        if len > to_end {
            let start = at.wrapping_add(to_end);
            let rest = len - to_end;
            if rest > LEN_MASK || rest > capacity / 2 {
                return Err(Error::corrupt("dead claim length", len));
            }
            // The record after the wrap may have been committed before the
            // producer died; then only the padding before it is missing.
            pad_if_empty(self.word_at(start), encode_pad(start, rest));
            pad_if_empty(self.word_at(at), encode_pad(at, to_end));
        } else {
            if len > LEN_MASK {
                return Err(Error::corrupt("dead claim length", len));
            }
            pad_if_empty(self.word_at(at), encode_pad(at, len));
        }
        Ok(true)
    }

    #[inline(always)]
    fn word_at(&self, position: u64) -> &B::Word {
        self.backend
            .data_word(((position & self.mask) / 8) as usize)
    }
}

wait::waiter!(Producer, Consumer);

impl<B: Backend> Drop for Consumer<B> {
    fn drop(&mut self) {
        // A hand-back still waiting for the consumers before it gets one
        // more sleep slice (not while a panic unwinds: no wait then); past
        // that its entry stays claimed, as a dead consumer's would, and the
        // others recover it (module docs).
        if self.pending.is_some() && !std::thread::panicking() {
            self.deadline = Deadline::after(wait::SLICE);
            let _ = self.settle();
        }
        detach_slot(&self.backend, Role::Consumer, self.index, self.epoch);
        wait::notify(&self.backend, Event::Space);
    }
}

impl<B: Backend + Clone> Producer<B> {
    /// Attaches another producer to the same ring (in this process).
    pub fn another(&self) -> Result<Self> {
        Producer::with_backend(self.backend.clone())
    }
}

impl<B: Backend + Clone> Consumer<B> {
    /// Attaches another consumer to the same ring (in this process):
    /// [`Error::RoleTaken`] for an `Mpsc` ring, whose one consumer is this one.
    pub fn another(&self) -> Result<Self> {
        let kind = if self.shared {
            RingKind::Mpmc
        } else {
            RingKind::Mpsc
        };
        Consumer::with_backend(self.backend.clone(), kind)
    }
}

/// A multi-producer ring between threads of this process, over a heap
/// allocation with the layout of a region: one producer and one consumer;
/// [`Producer::another`] and [`Consumer::another`] attach more.
pub fn channel(geometry: Geometry, kind: RingKind) -> Result<(Producer, Consumer)> {
    let memory = Mapped::heap(geometry, 0)?;
    Ok((
        Producer::with_backend(memory.clone())?,
        Consumer::with_backend(memory, kind)?,
    ))
}

/// Keeps a region mapped and a slot locked for as long as a handle lives;
/// a producer's also keeps the watchdog looking at the consumers.
struct Attached {
    region: Arc<Region>,
    kind: RingKind,
    _lock: Option<RoleLock>,
    _watch: Option<Arc<dyn Watched>>,
}

impl Attached {
    /// The watchdog's view of a ring: the region, no slot of its own.
    fn observer(region: &Arc<Region>, kind: RingKind) -> Attached {
        Attached {
            region: Arc::clone(region),
            kind,
            _lock: None,
            _watch: None,
        }
    }

    fn pid_is_ours(&self, role: Role, index: usize) -> bool {
        let offset = crate::shm::layout::offsets::slot(role, index, SlotWord::Pid);
        self.region.header_word(offset) == u64::from(std::process::id())
    }
}

/// What the watchdog looks at for a producer: the ring's consumers.
struct ConsumerWatch {
    memory: Mapped,
    kind: RingKind,
}

impl Watched for ConsumerWatch {
    fn check(&self) {
        detach_dead_consumers(&self.memory, self.kind);
    }
}

/// A backend over `region`'s mapping, kept alive by `owner`.
fn mapped(region: &Region, owner: Arc<dyn Owner>) -> Mapped {
    let base = std::ptr::NonNull::new(region.base()).expect("a mapping is never at address 0");
    // SAFETY: the region's mapping is `region_size()` bytes, page-aligned,
    // and `owner` keeps it alive; its header was validated when the region
    // was created or opened.
    unsafe { Mapped::new(owner, base, region.geometry()) }
}

impl Owner for Attached {
    /// Whether any attached slot of `role` belongs to a live process.
    fn peer_alive(&self, role: Role) -> bool {
        (0..slot_limit(self.kind, role)).any(|index| {
            let epoch = crate::shm::layout::offsets::slot(role, index, SlotWord::Epoch);
            self.region.header_word(epoch) % 2 == 1 && self.slot_alive(role, index)
        })
    }

    /// A slot's holder is alive while it holds the slot's lock; one in this
    /// process holds it through our own open file description, which the
    /// lock test does not see, and has written our pid.
    fn slot_alive(&self, role: Role, index: usize) -> bool {
        self.region.slot_held_elsewhere(role, index) || self.pid_is_ours(role, index)
    }
}

fn check_kind(region: &Region) -> Result<RingKind> {
    match region.kind() {
        RingKind::Spsc => Err(Error::LayoutMismatch {
            field: "ring_kind",
            expected: RingKind::Mpsc as u64,
            found: RingKind::Spsc as u64,
        }),
        kind => Ok(kind),
    }
}

/// Tries each slot of `role` whose lock is free: `attach` gets a backend
/// whose owner holds that slot's lock.
fn attach_region<T>(
    region: &Arc<Region>,
    role: Role,
    mut attach: impl FnMut(Mapped, usize) -> Result<T>,
) -> Result<T> {
    let kind = check_kind(region)?;
    for index in 0..slot_limit(kind, role) {
        let lock = match region.lock_slot(role, index) {
            Ok(lock) => lock,
            Err(Error::RoleTaken(_)) => continue,
            Err(error) => return Err(error),
        };
        let watch = (role == Role::Producer).then(|| {
            let observer = Arc::new(Attached::observer(region, kind));
            let watched: Arc<dyn Watched> = Arc::new(ConsumerWatch {
                memory: mapped(region, observer),
                kind,
            });
            watch::watch(&watched);
            watched
        });
        let owner = Arc::new(Attached {
            region: Arc::clone(region),
            kind,
            _lock: Some(lock),
            _watch: watch,
        });
        // Our pid before the slot's epoch says attached: the lock is ours,
        // so the slot is free or its holder dead, and a liveness test (the
        // watchdog's among them) that sees the epoch sees a live holder.
        // If the slot is not taken after all (a dead holder's claim is still
        // pending), its pid goes back: a consumer of this process must not
        // take the dead holder for alive.
        let pid = region.header_atomic(crate::shm::layout::offsets::slot(
            role,
            index,
            SlotWord::Pid,
        ));
        let previous = pid.swap(u64::from(std::process::id()), AcqRel);
        match attach(mapped(region, owner), index) {
            Ok(handle) => return Ok(handle),
            Err(error) => {
                pid.store(previous, Release);
                match error {
                    Error::RoleTaken(_) => continue,
                    error => return Err(error),
                }
            }
        }
    }
    Err(Error::RoleTaken(role))
}

impl Producer<Mapped> {
    /// Attaches a producer to a region created with
    /// [`Region::create_kind`] for [`RingKind::Mpsc`] or [`RingKind::Mpmc`],
    /// in a slot no live process holds (a dead process's slot is taken
    /// over). [`Error::RoleTaken`] if none is left;
    /// [`Error::LayoutMismatch`] for a single-producer region.
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        attach_region(region, Role::Producer, |memory, index| {
            Producer::with_backend_in_slot(memory, index, true)
        })
    }
}

impl Consumer<Mapped> {
    /// Attaches a consumer to a multi-producer region, as
    /// [`Producer::attach`].
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let kind = check_kind(region)?;
        attach_region(region, Role::Consumer, |memory, index| {
            Consumer::with_backend_in_slot(memory, kind, index, true)
        })
    }
}

impl<B: Backend> std::fmt::Debug for Producer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpmc::Producer")
            .field("slot", &self.index)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> std::fmt::Debug for Consumer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpmc::Consumer")
            .field("slot", &self.index)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
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
