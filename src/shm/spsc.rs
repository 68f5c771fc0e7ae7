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
//! `position / 8`:
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
//! 5. store the new tail (`Release`; it serves re-attachment and inspection only).
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
//! but whose tail store was lost.
//!
//! The same code runs in production ([`crate::shm::Mapped`]) and in the loom
//! and shuttle models (`models/`), through the [`Backend`] seam.

use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::Duration;

use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::layout::{Geometry, RingKind, WRAP_LEN, record_size};
use crate::shm::region::{Region, RoleLock};
use crate::shm::wait::{self, Slept, Spin, Woke};
use crate::shm::watch::{self, Watched};
use crate::shm::{Mapped, Owner};
use crate::sync::{Backend, Control, Event, Word};

const COMMITTED: u64 = 1 << 31;
const LEN_MASK: u64 = (1 << 31) - 1;

/// The header word of a record of `len` bytes at `position`.
#[inline(always)]
pub fn encode_header(position: u64, len: u32) -> u64 {
    ((position >> 3) << 32) | COMMITTED | u64::from(len)
}

/// What a header word says about the record at `position`.
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
#[inline(always)]
pub fn decode_header(word: u64, position: u64, geometry: Geometry) -> Result<Slot> {
    if word == 0 {
        return Ok(Slot::Empty);
    }
    if word >> 32 != (position >> 3) & 0xFFFF_FFFF || word & COMMITTED == 0 {
        return Err(Error::corrupt("record header tag", word));
    }
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

#[inline(always)]
fn publish_order<B: Backend>() -> std::sync::atomic::Ordering {
    if B::FAULTS.relaxed_publish {
        Relaxed
    } else {
        Release
    }
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

/// Whether the epoch word of `role` says it has detached.
#[inline(always)]
fn detached<B: Backend>(backend: &B, role: Role) -> bool {
    let epoch = backend.control(Control::epoch(role)).load(Acquire);
    epoch != 0 && epoch.is_multiple_of(2)
}

/// Detaches the consumer on its behalf if its epoch says attached but its
/// process is dead: the watchdog's look ([`crate::shm::watch`]), written
/// against the backend seam so that the models run it beside the producer.
/// Returns whether it detached.
///
/// The compare-and-swap stores exactly what the consumer's `Drop` would
/// have stored, and fails if the consumer detached or was taken over
/// (its epoch moved) since the load.
#[doc(hidden)]
pub fn detach_dead_consumer<B: Backend>(backend: &B) -> bool {
    let word = backend.control(Control::ConsumerEpoch);
    let epoch = word.load(Acquire);
    if epoch.is_multiple_of(2)
        || (!B::FAULTS.detach_live_consumer && backend.peer_alive(Role::Consumer))
    {
        return false;
    }
    if B::FAULTS.detach_by_store {
        // Seeded defect: a store, which can undo a takeover since the load.
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

/// The writing end of a single-producer ring.
///
/// At most one `Producer` is attached to a ring at a time, across all
/// processes. Dropping it detaches: the consumer gets
/// [`Error::Disconnected`] once it has received everything sent.
pub struct Producer<B: Backend = Mapped> {
    backend: B,
    /// Position where the next record goes (private cursor).
    tail: u64,
    /// Last head seen; the true head is never behind it.
    head_cache: u64,
    capacity: u64,
    mask: u64,
    max_message: usize,
    epoch: u64,
    spin: Spin,
}

/// Where a reserved record goes.
#[derive(Clone, Copy)]
struct Reservation {
    /// Position of the record's header.
    start: u64,
    /// Whether a wrap marker must be stored at the old tail.
    wrapped: bool,
}

impl<B: Backend> Producer<B> {
    /// Attaches as the producer of the ring in `backend`.
    ///
    /// Fails with [`Error::RoleTaken`] if a producer is attached, and with
    /// [`Error::Corrupt`] if the shared positions are impossible.
    pub fn with_backend(backend: B) -> Result<Self> {
        Self::attach_inner(backend, false)
    }

    /// Attaches as the producer even if the epoch says one is attached. The
    /// caller knows by other means (a lock the kernel released) that the
    /// previous producer is dead.
    #[doc(hidden)]
    pub fn with_backend_taking_over(backend: B) -> Result<Self> {
        Self::attach_inner(backend, true)
    }

    fn attach_inner(backend: B, take_over: bool) -> Result<Self> {
        let geometry = Geometry::of(&backend);
        let capacity = geometry.capacity() as u64;
        // Own the role first: nobody else writes the ring while we recover.
        let epoch = attach_epoch(&backend, Role::Producer, take_over)?;
        let tail = match Self::recover_tail(&backend, geometry) {
            Ok(tail) => tail,
            Err(error) => {
                backend
                    .control(Control::ProducerEpoch)
                    .store(epoch.wrapping_add(1), Release);
                return Err(error);
            }
        };
        let head = backend.control(Control::Head).load(Acquire);
        let backend_spin_limit = backend.spin_limit();
        // The recovered tail is published before any record.
        backend.control(Control::Tail).store(tail, Release);
        Ok(Producer {
            backend,
            tail,
            head_cache: head,
            capacity,
            mask: capacity - 1,
            max_message: geometry.max_message(),
            epoch,
            spin: Spin::new(backend_spin_limit),
        })
    }

    /// The tail a new producer starts from: the shared tail, advanced over
    /// records that a dead producer committed but did not publish a tail for.
    fn recover_tail(backend: &B, geometry: Geometry) -> Result<u64> {
        let capacity = geometry.capacity() as u64;
        let mask = capacity - 1;
        let head = backend.control(Control::Head).load(Acquire);
        let mut tail = backend.control(Control::Tail).load(Acquire);
        if !tail.is_multiple_of(8) {
            return Err(Error::corrupt("tail", tail));
        }
        // Each step moves forward by at least 8 bytes, so a lap bounds the
        // walk (none at all under the seeded defect).
        let steps = if B::FAULTS.no_tail_recovery {
            0
        } else {
            capacity / 8
        };
        for _ in 0..steps {
            let word = backend
                .data_word(((tail & mask) / 8) as usize)
                .load(Acquire);
            match decode_header(word, tail, geometry) {
                Ok(Slot::Record(len)) => tail = tail.wrapping_add(record_size(len) as u64),
                Ok(Slot::Wrap) => tail = tail.wrapping_add(capacity - (tail & mask)),
                // Anything else ends the chain of committed records.
                Ok(Slot::Empty) | Err(_) => break,
            }
        }
        if tail.wrapping_sub(head) > capacity || !head.is_multiple_of(8) {
            return Err(Error::corrupt("head and tail", head));
        }
        Ok(tail)
    }

    /// How many messages this producer has committed that the consumer
    /// has not released yet: the records between the shared head and our
    /// tail. [`Error::Corrupt`] if the head, or a record in between, is
    /// not what we wrote (another process scribbled on the region).
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// tx.send(b"one")?;
    /// tx.send(b"two")?;
    /// assert_eq!(tx.unreleased()?, 2);
    /// rx.recv(&mut Vec::new())?;
    /// assert_eq!(tx.unreleased()?, 1);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn unreleased(&self) -> Result<u64> {
        let head = self.backend.control(Control::Head).load(Acquire);
        let geometry = self.geometry();
        if self.tail.wrapping_sub(head) > self.capacity || !head.is_multiple_of(8) {
            return Err(Error::corrupt("head", head));
        }
        let mut at = head;
        let mut count = 0;
        // Each step moves forward by at least 8 bytes: a lap bounds the walk.
        for _ in 0..self.capacity / 8 {
            if at == self.tail {
                return Ok(count);
            }
            let word = self.word_at(at).load(Acquire);
            match decode_header(word, at, geometry)? {
                Slot::Record(len) => {
                    count += 1;
                    at = at.wrapping_add(record_size(len) as u64);
                }
                Slot::Wrap => at = at.wrapping_add(self.capacity - (at & self.mask)),
                Slot::Empty => break,
            }
            if at.wrapping_sub(head) > self.tail.wrapping_sub(head) {
                break;
            }
        }
        Err(Error::corrupt("records between head and tail", at))
    }

    /// The ring's capacity and maximum message size.
    pub fn geometry(&self) -> Geometry {
        Geometry::of(&self.backend)
    }

    /// Sends `message` if there is room now; [`Error::Full`] if not.
    #[inline]
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        let reservation = self.reserve(message.len())?;
        let offset = (reservation.start & self.mask) as usize + 8;
        if B::FAULTS.commit_before_payload {
            self.commit(reservation, message.len());
        }
        // SAFETY: `reserve` checked that the record lies inside the data area
        // and in space the consumer has released.
        unsafe { self.backend.write(offset, message) };
        if !B::FAULTS.commit_before_payload {
            self.commit(reservation, message.len());
        }
        Ok(())
    }

    /// Sends `message`, waiting while the ring is full.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.send_until(message, Deadline::Never)
    }

    /// Sends `message`, waiting at most `timeout` while the ring is full.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.send_until(message, Deadline::after(timeout))
    }

    fn send_until(&mut self, message: &[u8], deadline: Deadline) -> Result<()> {
        self.blocking(deadline, |p| p.try_send(message))
    }

    /// Writes a message of at most `max_len` bytes in place: `fill` gets the
    /// record's payload bytes (their previous contents are unspecified) and
    /// returns how many it wrote. [`Error::Full`] if there is no room now.
    ///
    /// If `fill` returns more than `max_len`, nothing is sent and the result
    /// is [`Error::MessageTooLarge`].
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

    /// One attempt of an in-place send; `fill` is taken only once there is
    /// room, so a blocking caller can retry with it.
    #[inline(always)]
    fn send_with_once(
        &mut self,
        max_len: usize,
        fill: &mut Option<impl FnOnce(&mut [u8]) -> usize>,
    ) -> Result<usize> {
        let reservation = self.reserve(max_len)?;
        let fill = fill.take().expect("an in-place send fills once");
        let offset = (reservation.start & self.mask) as usize + 8;
        // SAFETY: as in `try_send`, for `max_len` bytes.
        let len = unsafe { self.backend.write_in_place(offset, max_len, fill) };
        if len > max_len {
            return Err(Error::MessageTooLarge { len, max: max_len });
        }
        self.commit(reservation, len);
        Ok(len)
    }

    /// Sends as many of `messages` as fit now, in order, and returns how many
    /// were sent; an error (such as [`Error::Full`] or
    /// [`Error::MessageTooLarge`]) only if the first one could not be sent.
    ///
    /// The batch becomes visible to the consumer at once: every record but
    /// the first is committed as it is written, and the first, which the
    /// consumer is polling, last. So the tail is stored once, and the
    /// consumer finds the whole batch ready.
    pub fn try_send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<usize> {
        // The first record's header (and wrap marker), held back until the rest is written.
        let mut first: Option<(u64, u64, Option<u64>)> = None;
        let mut sent = 0;
        for message in messages {
            let message = message.as_ref();
            let reservation = match self.reserve(message.len()) {
                Ok(reservation) => reservation,
                Err(error) if sent == 0 => return Err(error),
                Err(_) => break,
            };
            let offset = (reservation.start & self.mask) as usize + 8;
            // SAFETY: `reserve` checked that the record lies inside the data
            // area and in space the consumer has released.
            unsafe { self.backend.write(offset, message) };
            let header = encode_header(reservation.start, message.len() as u32);
            let wrap = reservation.wrapped.then_some(self.tail);
            if first.is_none() {
                first = Some((reservation.start, header, wrap));
            } else {
                // Unreachable for the consumer until the first header is stored.
                self.publish(reservation.start, header, wrap);
            }
            self.tail = reservation
                .start
                .wrapping_add(record_size(message.len()) as u64);
            sent += 1;
        }
        if let Some((start, header, wrap)) = first {
            // Every record's successor is the next record's header, except
            // the last one's.
            if !B::FAULTS.skip_next_clear {
                self.word_at(self.tail).store(0, Relaxed);
            }
            self.publish(start, header, wrap);
            self.backend
                .control(Control::Tail)
                .store(self.tail, Release);
            wait::notify(&self.backend, Event::Data);
        }
        Ok(sent)
    }

    /// Sends all of `messages`, in order, waiting while the ring is full.
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        let mut rest = messages;
        while !rest.is_empty() {
            let sent = self.blocking(Deadline::Never, |p| p.try_send_batch(rest))?;
            rest = &rest[sent..];
        }
        Ok(())
    }

    /// Runs `attempt` in the one wait loop ([`wait::block`]) until it stops
    /// reporting [`Error::Full`], waiting on [`Event::Space`]; a dead
    /// consumer ends the wait with [`Error::Disconnected`].
    fn blocking<T>(
        &mut self,
        deadline: Deadline,
        attempt: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        wait::block_for_space(self, deadline, attempt)
    }

    /// Finds room for a record of `len` payload bytes.
    #[inline(always)]
    fn reserve(&mut self, len: usize) -> Result<Reservation> {
        if len > self.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        if detached(&self.backend, Role::Consumer) {
            return Err(Error::Disconnected);
        }
        let record = record_size(len) as u64;
        let offset = self.tail & self.mask;
        let to_end = self.capacity - offset;
        // The record, and the header word after it, which step 2 clears.
        let (start, wrapped, mut needed) = if record <= to_end {
            (self.tail, false, record + 8)
        } else {
            (self.tail.wrapping_add(to_end), true, to_end + record + 8)
        };
        if B::FAULTS.full_check_off_by_one {
            needed -= 8;
        }
        if self.tail.wrapping_sub(self.head_cache) + needed > self.capacity {
            let head = self.backend.control(Control::Head).load(Acquire);
            let used = self.tail.wrapping_sub(head);
            if used > self.capacity || !head.is_multiple_of(8) {
                return Err(Error::corrupt("head", head));
            }
            self.head_cache = head;
            if used + needed > self.capacity {
                return Err(Error::Full);
            }
        }
        Ok(Reservation { start, wrapped })
    }

    /// Publishes a reserved record of `len` bytes whose payload is written,
    /// then wakes the consumer if it sleeps.
    #[inline(always)]
    fn commit(&mut self, reservation: Reservation, len: usize) {
        // Seeded defect: the look for a sleeper comes before the publish.
        let early = B::FAULTS
            .notify_before_publish
            .then(|| wait::sleeper_announced(&self.backend, Event::Data));
        let next = reservation.start.wrapping_add(record_size(len) as u64);
        if !B::FAULTS.skip_next_clear {
            self.word_at(next).store(0, Relaxed);
        }
        let header = encode_header(reservation.start, len as u32);
        self.publish(
            reservation.start,
            header,
            reservation.wrapped.then_some(self.tail),
        );
        self.tail = next;
        self.backend.control(Control::Tail).store(next, Release);
        match early {
            None => wait::notify(&self.backend, Event::Data),
            Some(true) => wait::wake(&self.backend, Event::Data),
            Some(false) => {}
        }
    }

    /// Stores a record's header at `start`, then the wrap marker at `wrap`
    /// (the old tail) if the record wrapped: the consumer polls the marker's
    /// position, so the record must be complete before the marker appears.
    #[inline(always)]
    fn publish(&self, start: u64, header: u64, wrap: Option<u64>) {
        self.word_at(start).store(header, publish_order::<B>());
        if let Some(at) = wrap {
            self.word_at(at)
                .store(encode_header(at, WRAP_LEN), publish_order::<B>());
        }
    }

    #[inline(always)]
    fn word_at(&self, position: u64) -> &B::Word {
        self.backend
            .data_word(((position & self.mask) / 8) as usize)
    }
}

impl<B: Backend> Drop for Producer<B> {
    fn drop(&mut self) {
        // Everything committed happens-before this store, which the consumer
        // loads with `Acquire` before it reports `Disconnected`.
        self.backend
            .control(Control::ProducerEpoch)
            .store(self.epoch.wrapping_add(1), Release);
        // A consumer asleep on an empty ring learns of it now.
        wait::notify(&self.backend, Event::Data);
    }
}

/// The reading end of a single-producer ring.
///
/// At most one `Consumer` is attached to a ring at a time, across all
/// processes.
pub struct Consumer<B: Backend = Mapped> {
    backend: B,
    /// Position of the next record (private cursor).
    head: u64,
    mask: u64,
    geometry: Geometry,
    epoch: u64,
    spin: Spin,
}

impl<B: Backend> Consumer<B> {
    /// Attaches as the consumer of the ring in `backend`.
    pub fn with_backend(backend: B) -> Result<Self> {
        Self::attach_inner(backend, false)
    }

    /// As [`Producer::with_backend_taking_over`].
    #[doc(hidden)]
    pub fn with_backend_taking_over(backend: B) -> Result<Self> {
        Self::attach_inner(backend, true)
    }

    fn attach_inner(backend: B, take_over: bool) -> Result<Self> {
        let geometry = Geometry::of(&backend);
        // Own the role first, then read the head: the compare-and-swap
        // acquires the previous consumer's detach (its `Release` store comes
        // after its last head store), so this load sees where it stopped. A
        // head read before the attach could be older, and the messages in
        // between would be delivered twice (found by the ordering sweep).
        let epoch = attach_epoch(&backend, Role::Consumer, take_over)?;
        let head = backend.control(Control::Head).load(Acquire);
        if !head.is_multiple_of(8) {
            backend
                .control(Control::ConsumerEpoch)
                .store(epoch.wrapping_add(1), Release);
            return Err(Error::corrupt("head", head));
        }
        let spin = Spin::new(backend.spin_limit());
        Ok(Consumer {
            spin,
            backend,
            head,
            mask: geometry.capacity() as u64 - 1,
            geometry,
            epoch,
        })
    }

    /// The ring's capacity and maximum message size.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Receives the next message into `buf` (replacing its contents) if one
    /// is waiting, and returns its length. [`Error::Empty`] if none is;
    /// [`Error::Disconnected`] if none is and the producer has detached.
    #[inline]
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.try_recv_with(|payload| {
            buf.clear();
            buf.extend_from_slice(payload);
            payload.len()
        })
    }

    /// Receives the next message, waiting while the ring is empty.
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.blocking(Deadline::Never, |c| c.try_recv(buf))
    }

    /// Receives the next message, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.blocking(Deadline::after(timeout), |c| c.try_recv(buf))
    }

    /// Reads the next message in place: `read` gets the payload bytes inside
    /// the ring, and the record is released when it returns.
    #[inline]
    pub fn try_recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
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

    /// One attempt of an in-place receive; `read` is taken only once a record
    /// is there, so a blocking caller can retry with it.
    #[inline(always)]
    fn recv_with_once<R>(&mut self, read: &mut Option<impl FnOnce(&[u8]) -> R>) -> Result<R> {
        let (start, len) = match self.poll()? {
            Some(found) => found,
            None => return Err(self.empty_or_disconnected()),
        };
        let read = read.take().expect("an in-place receive reads once");
        let offset = (start & self.mask) as usize + 8;
        // SAFETY: `poll` validated that the committed record lies inside the
        // data area; it stays ours until the head store below.
        let result = unsafe { self.backend.read_in_place(offset, len, read) };
        self.release(start, len);
        Ok(result)
    }

    /// Runs `attempt` in the one wait loop ([`wait::block`]) until it stops
    /// reporting [`Error::Empty`], waiting on [`Event::Data`].
    fn blocking<T>(
        &mut self,
        deadline: Deadline,
        attempt: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        wait::block(
            self,
            Event::Data,
            Role::Producer,
            deadline,
            wait::empty,
            attempt,
            |_, slept| match slept {
                Slept::Again => Ok(Woke::Again),
                // Everything the dead producer committed is visible now: one
                // more attempt delivers it, then the stream is over.
                Slept::PeerDead => Ok(Woke::LastTry(Error::Disconnected)),
            },
        )
    }

    /// The position and length of the next committed record, stepping over
    /// a wrap marker; `None` if nothing is committed.
    #[inline(always)]
    fn poll(&mut self) -> Result<Option<(u64, usize)>> {
        let order = if B::FAULTS.relaxed_poll {
            Relaxed
        } else {
            Acquire
        };
        let mut position = self.head;
        let mut slot = decode_header(self.word_at(position).load(order), position, self.geometry)?;
        if slot == Slot::Wrap {
            position = position.wrapping_add(self.mask + 1 - (position & self.mask));
            // `Relaxed` (no model tells it from `Acquire`): the marker
            // load above acquired the marker, which the producer
            // stores with `Release` after this record's payload and header
            // (`Producer::publish`), so both happen-before this load: it
            // reads this header (or a later value), and the payload copy
            // is ordered after the writes.
            let word = self.word_at(position).load(Relaxed);
            slot = decode_header(word, position, self.geometry)?;
            // Only the producer's own wrap is followed; a second one is corrupt.
            if slot == Slot::Wrap {
                return Err(Error::corrupt("wrap marker after wrap marker", word));
            }
            // Skip the marker for good even if the record is not visible yet.
            self.head = position;
        }
        match slot {
            Slot::Record(len) => Ok(Some((position, len))),
            _ => Ok(None),
        }
    }

    /// Empty, or disconnected if the producer has detached and a last poll
    /// still finds nothing.
    #[cold]
    fn empty_or_disconnected(&mut self) -> Error {
        if !detached(&self.backend, Role::Producer) {
            return Error::Empty;
        }
        if !B::FAULTS.no_drain_on_disconnect {
            match self.poll() {
                Ok(None) => {}
                // A message arrived before the detach; the caller polls again.
                Ok(Some(_)) => return Error::Empty,
                Err(error) => return error,
            }
        }
        Error::Disconnected
    }

    /// Hands the record at `start` back to the producer.
    #[inline(always)]
    fn release(&mut self, start: u64, len: usize) {
        self.head = start.wrapping_add(record_size(len) as u64);
        let order = if B::FAULTS.relaxed_release {
            Relaxed
        } else {
            Release
        };
        self.backend.control(Control::Head).store(self.head, order);
        // A producer asleep on a full ring may go on now.
        wait::notify(&self.backend, Event::Space);
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
        self.backend
            .control(Control::ConsumerEpoch)
            .store(self.epoch.wrapping_add(1), Release);
        // A producer asleep on a full ring learns of it now.
        wait::notify(&self.backend, Event::Space);
    }
}

/// A ring between threads of this process: a producer and a consumer over a
/// heap allocation with the same layout and protocol as a shared region.
pub fn channel(geometry: Geometry) -> Result<(Producer, Consumer)> {
    let memory = Mapped::heap(geometry, 0)?;
    Ok((
        Producer::with_backend(memory.clone())?,
        Consumer::with_backend(memory)?,
    ))
}

/// Keeps a region mapped and a role locked for as long as a handle lives;
/// a producer's also keeps the watchdog looking at the consumer.
struct Attached {
    region: Arc<Region>,
    _lock: RoleLock,
    _watch: Option<Arc<dyn Watched>>,
}

/// A peer process is alive while it holds its role's lock. A peer attached
/// through this same `Region` (another thread of this process) holds it
/// through our own open file description, which the lock test does not
/// see; its pid word, written at attach, is then our pid, and a peer in
/// this process is alive as long as we are (it detaches in `Drop`).
fn region_peer_alive(region: &Region, role: Role) -> bool {
    let pid = match role {
        Role::Producer => crate::shm::layout::offsets::PRODUCER_PID,
        Role::Consumer => crate::shm::layout::offsets::CONSUMER_PID,
    };
    region.role_held_elsewhere(role) || region.header_word(pid) == u64::from(std::process::id())
}

impl Owner for Attached {
    fn peer_alive(&self, role: Role) -> bool {
        region_peer_alive(&self.region, role)
    }
}

/// The watchdog's view of a ring: the region, no role of its own.
struct Observer {
    region: Arc<Region>,
}

impl Owner for Observer {
    fn peer_alive(&self, role: Role) -> bool {
        region_peer_alive(&self.region, role)
    }
}

/// What the watchdog looks at for a producer: the ring's consumer.
struct ConsumerWatch {
    memory: Mapped,
}

impl Watched for ConsumerWatch {
    fn check(&self) {
        detach_dead_consumer(&self.memory);
    }
}

/// A backend over `region`'s mapping, kept alive by `owner`.
fn mapped(region: &Region, owner: Arc<dyn Owner>) -> Mapped {
    let base = std::ptr::NonNull::new(region.base()).expect("a mapping is never at address 0");
    // SAFETY: the region's mapping is `region_size()` bytes, page-aligned,
    // and `owner` keeps the region (and so the mapping) alive; its header
    // was validated when the region was created or opened.
    unsafe { Mapped::new(owner, base, region.geometry()) }
}

fn attach_region(region: &Arc<Region>, role: Role) -> Result<Mapped> {
    // A region of another kind has another protocol in it (and opens fine).
    let kind = region.kind();
    if kind != RingKind::Spsc {
        return Err(Error::LayoutMismatch {
            field: "ring_kind",
            expected: RingKind::Spsc as u64,
            found: kind as u64,
        });
    }
    let lock = region.lock_role(role)?;
    let watch = (role == Role::Producer).then(|| {
        let observer = Arc::new(Observer {
            region: Arc::clone(region),
        });
        let watched: Arc<dyn Watched> = Arc::new(ConsumerWatch {
            memory: mapped(region, observer),
        });
        watch::watch(&watched);
        watched
    });
    let owner = Arc::new(Attached {
        region: Arc::clone(region),
        _lock: lock,
        _watch: watch,
    });
    Ok(mapped(region, owner))
}

impl Producer<Mapped> {
    /// Attaches as the producer of a region's ring. Fails with
    /// [`Error::RoleTaken`] while another live process (or another handle in
    /// this one) is its producer; a producer that died is taken over.
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let memory = attach_region(region, Role::Producer)?;
        memory
            .header_word(crate::shm::layout::offsets::PRODUCER_PID)
            .store(u64::from(std::process::id()), Relaxed);
        Producer::with_backend_taking_over(memory)
    }
}

impl Consumer<Mapped> {
    /// Attaches as the consumer of a region's ring; as [`Producer::attach`].
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let memory = attach_region(region, Role::Consumer)?;
        memory
            .header_word(crate::shm::layout::offsets::CONSUMER_PID)
            .store(u64::from(std::process::id()), Relaxed);
        Consumer::with_backend_taking_over(memory)
    }
}

impl<B: Backend> std::fmt::Debug for Producer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> std::fmt::Debug for Consumer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}
