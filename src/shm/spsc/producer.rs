//! The writing end of a single-producer ring (the protocol: [`super`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{Slot, attach_epoch, decode_header, encode_header};
use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::Mapped;
use crate::shm::attach::{self, detached};
use crate::shm::layout::{Geometry, WRAP_LEN, record_size};
use crate::shm::record::word_at;
use crate::shm::region::Region;
use crate::shm::wait::{self, Spin};
use crate::sync::{Backend, Control, Event, Word, order};

/// The writing end of a single-producer ring.
///
/// At most one `Producer` is attached to a ring at a time, across all
/// processes. Dropping it detaches: the consumer gets
/// [`Error::Disconnected`] once it has received everything sent.
///
/// ```
/// use shmsg::shm::{Geometry, spsc};
///
/// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
/// tx.send(b"first")?;
/// tx.try_send(b"second")?;
/// drop(tx);
/// let mut buf = Vec::new();
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"first");
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"second");
/// assert!(matches!(rx.recv(&mut buf), Err(shmsg::Error::Disconnected)));
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::{Geometry, Mapped, spsc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let mut tx = spsc::Producer::with_backend(memory.clone())?;
    /// let mut rx = spsc::Consumer::with_backend(memory.clone())?;
    /// // One producer at a time.
    /// assert!(matches!(spsc::Producer::with_backend(memory), Err(Error::RoleTaken(_))));
    /// tx.send(b"ping")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"ping");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn with_backend(backend: B) -> Result<Self> {
        Self::attach_inner(backend, false)
    }

    /// Attaches as the producer even if the epoch says one is attached. The
    /// caller knows by other means (a lock the kernel released) that the
    /// previous producer is dead.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::{Geometry, Mapped, spsc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let mut rx = spsc::Consumer::with_backend(memory.clone())?;
    /// let mut dead = spsc::Producer::with_backend(memory.clone())?;
    /// dead.send(b"before")?;
    /// std::mem::forget(dead); // as if its process died: still attached
    /// assert!(matches!(spsc::Producer::with_backend(memory.clone()), Err(Error::RoleTaken(_))));
    /// let mut tx = spsc::Producer::with_backend_taking_over(memory)?;
    /// tx.send(b"after")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"before");
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"after");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
                // `Release`: our compare-and-swap acquired the previous
                // producer's detach, and a consumer that finds this even
                // epoch must see what that producer committed before its
                // last poll (`loom_spsc` `producer_refused_for_a_corrupt_tail`).
                backend
                    .control(Control::ProducerEpoch)
                    .store(epoch.wrapping_add(1), Release);
                return Err(error);
            }
        };
        // `Acquire`, paired with the consumer's release of the head: this
        // producer fills space up to this head without loading it again,
        // so the consumer's reads of the bytes it released must happen
        // before our writes over them (`loom_spsc`
        // `takeover_while_the_consumer_releases` fails without it).
        let head = backend.control(Control::Head).load(Acquire);
        let backend_spin_limit = backend.spin_limit();
        // The recovered tail is published before any record. `Relaxed`
        // (no model tells it from `Release`, `ci/mutate-orderings.sh`): the
        // tail word is read only by the next producer's `recover_tail` and
        // by inspection (a plain copy of the header); the consumer never
        // reads it. The next producer is ordered after everything this one
        // does by the epoch after a clean detach (`Drop`'s `Release` store,
        // acquired by its attach's compare-and-swap) and by the role lock
        // after a takeover from a dead one (`Region::lock_role`: the lock
        // the kernel releases at our death, or within a process its `held`
        // bits, `Release` / `AcqRel`), so it reads this store, or a later
        // one, without an ordering of its own (`loom_faults`
        // `spsc_producer_crash_and_takeover`, `loom_spsc`
        // `takeover_while_the_consumer_releases`).
        backend.control(Control::Tail).store(tail, Relaxed);
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
    ///
    /// Every load here is `Relaxed` (no model tells any of them from
    /// `Acquire`, `ci/mutate-orderings.sh`). The tail and the header words
    /// are written only by producers, and every previous producer's stores
    /// happen before this attach: after a clean detach through the epoch
    /// (`Drop`'s `Release` store, acquired by `attach_epoch`'s
    /// compare-and-swap), after a takeover from a dead one through the role
    /// lock (the kernel's, released at its death, or within a process its
    /// `held` bits: see `Region::lock_role`), which is how the caller of
    /// [`Producer::with_backend_taking_over`] knows it is dead. So these
    /// loads read the last tail and headers (or later ones) whatever their
    /// ordering, and an `Acquire` would order nothing more: the payloads
    /// behind those headers are not read here. The head is the consumer's,
    /// read only for the check at the end: it is at least the head the
    /// previous producer last loaded (coherence, through the same edges), so
    /// an honest ring passes; the head this producer fills space up to is
    /// loaded again with `Acquire` in `attach_inner`. Models of the paths:
    /// `loom_faults` `spsc_producer_crash_and_takeover` (a takeover after a
    /// crash at every step), `loom_spsc` `takeover_while_the_consumer_releases`
    /// and `producer_refused_for_a_corrupt_tail`.
    fn recover_tail(backend: &B, geometry: Geometry) -> Result<u64> {
        let capacity = geometry.capacity() as u64;
        let mask = capacity - 1;
        let head = backend.control(Control::Head).load(Relaxed);
        let mut tail = backend.control(Control::Tail).load(Relaxed);
        if !tail.is_multiple_of(8) {
            return Err(Error::corrupt("tail", tail));
        }
        // Each step moves forward by at least 8 bytes, so a lap bounds the
        // walk. Seeded defect `no_tail_recovery`: no walk at all.
        let steps = if B::FAULTS.no_tail_recovery {
            0
        } else {
            capacity / 8
        };
        for _ in 0..steps {
            let word = word_at(backend, mask, tail).load(Relaxed);
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
        // `Relaxed`, here and for the headers below (no model tells either
        // from `Acquire`, `ci/mutate-orderings.sh`): this only counts. The
        // headers between the head and our tail are this producer's own
        // stores (or, before its attach, its predecessors', ordered before
        // it as `recover_tail` says), read in program order; no payload is
        // read; and the head read here is not kept: the space this producer
        // writes over is ordered after the consumer's reads by the
        // `Acquire` head loads of `attach_inner` and `reserve`.
        let head = self.backend.control(Control::Head).load(Relaxed);
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
            let word = word_at(&self.backend, self.mask, at).load(Relaxed);
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let geometry = Geometry::new(4096, 100)?;
    /// let (tx, _rx) = spsc::channel(geometry)?;
    /// assert_eq!(tx.geometry(), geometry);
    /// assert_eq!(tx.geometry().max_message(), 100);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&self) -> Geometry {
        Geometry::of(&self.backend)
    }

    /// Sends `message` if there is room now; [`Error::Full`] if not.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// let mut sent = 0;
    /// while tx.try_send(&[7; 8]).is_ok() {
    ///     sent += 1;
    /// }
    /// assert!(matches!(tx.try_send(&[7; 8]), Err(Error::Full)));
    /// assert!(matches!(tx.try_send(&[0; 65]), Err(Error::MessageTooLarge { .. })));
    /// // Receiving one message makes room for another.
    /// rx.recv(&mut Vec::new())?;
    /// tx.try_send(&[7; 8])?;
    /// assert_eq!(tx.unreleased()?, sent);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        let reservation = self.reserve(message.len())?;
        let offset = (reservation.start & self.mask) as usize + 8;
        // Seeded defect `commit_before_payload`: the commit comes first.
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

    wait::send_methods!("spsc::channel(Geometry::new(1024, 64)?)");
    wait::event_loop_methods!("try_send");

    /// Writes a message of at most `max_len` bytes in place: `fill` gets the
    /// record's payload bytes (their previous contents are unspecified) and
    /// returns how many it wrote. [`Error::Full`] if there is no room now.
    ///
    /// If `fill` returns more than `max_len`, nothing is sent and the result
    /// is [`Error::MessageTooLarge`].
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
    /// let written = tx.try_send_with(64, |payload| {
    ///     let text = b"formatted in place";
    ///     payload[..text.len()].copy_from_slice(text);
    ///     text.len()
    /// })?;
    /// assert_eq!(written, 18);
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"formatted in place");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline]
    pub fn try_send_with(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize> {
        self.send_with_once(max_len, &mut Some(fill))
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// assert_eq!(tx.try_send_batch(&["one", "two", "three"])?, 3);
    /// // Only what fits now is sent: 100 records of 16 bytes do not.
    /// let many = vec![[1u8; 8]; 100];
    /// let sent = tx.try_send_batch(&many)?;
    /// assert!(0 < sent && sent < 100);
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"one");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
            // the last one's. Seeded defect `skip_next_clear`: left out.
            if !B::FAULTS.skip_next_clear {
                word_at(&self.backend, self.mask, self.tail).store(0, Relaxed);
            }
            self.publish(start, header, wrap);
            // `Relaxed`: as in `commit`.
            self.backend
                .control(Control::Tail)
                .store(self.tail, Relaxed);
            wait::notify(&self.backend, Event::Data);
        }
        Ok(sent)
    }

    /// Sends all of `messages`, in order, waiting while the ring is full.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
    /// let messages: Vec<[u8; 8]> = (0..1000u64).map(u64::to_le_bytes).collect();
    /// let reader = std::thread::spawn(move || -> shmsg::Result<u64> {
    ///     let mut buf = Vec::new();
    ///     let mut sum = 0;
    ///     for _ in 0..1000 {
    ///         rx.recv(&mut buf)?;
    ///         sum += u64::from_le_bytes(buf[..].try_into().unwrap());
    ///     }
    ///     Ok(sum)
    /// });
    /// // Far more than the ring holds: the call waits for the reader.
    /// tx.send_batch(&messages)?;
    /// assert_eq!(reader.join().unwrap()?, 999 * 1000 / 2);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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

    /// The `woke` hook of every wait of this producer.
    fn on_wake(&mut self, slept: wait::Slept) -> Result<wait::Woke> {
        wait::sender_woke(slept)
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
        // Seeded defect `full_check_off_by_one`: the next header forgotten.
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
        // Seeded defect `notify_before_publish`: the look for a sleeper
        // comes before the publish.
        let early = if B::FAULTS.notify_before_publish {
            Some(wait::sleeper_announced(&self.backend, Event::Data))
        } else {
            None
        };
        let next = reservation.start.wrapping_add(record_size(len) as u64);
        // Seeded defect `skip_next_clear`: left out.
        if !B::FAULTS.skip_next_clear {
            word_at(&self.backend, self.mask, next).store(0, Relaxed);
        }
        let header = encode_header(reservation.start, len as u32);
        self.publish(
            reservation.start,
            header,
            reservation.wrapped.then_some(self.tail),
        );
        self.tail = next;
        // `Relaxed` (no model tells it from `Release`,
        // `ci/mutate-orderings.sh`): the consumer never reads the tail
        // (it polls the header, step 4); only the next producer's
        // `recover_tail` and inspection do, and the next producer is
        // ordered after this one by the epoch or the role lock (see
        // `attach_inner`'s tail store).
        self.backend.control(Control::Tail).store(next, Relaxed);
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
        let publish = order(B::FAULTS.relaxed_publish, Release);
        word_at(&self.backend, self.mask, start).store(header, publish);
        if let Some(at) = wrap {
            word_at(&self.backend, self.mask, at).store(encode_header(at, WRAP_LEN), publish);
        }
    }
}

impl<B: Backend> Drop for Producer<B> {
    fn drop(&mut self) {
        wait::disarm(self);
        // Everything committed happens-before this store, which the consumer
        // loads with `Acquire` before it reports `Disconnected`.
        self.backend
            .control(Control::ProducerEpoch)
            .store(self.epoch.wrapping_add(1), Release);
        // A consumer asleep on an empty ring learns of it now.
        wait::notify(&self.backend, Event::Data);
    }
}

wait::waiter!(Producer, Event::Space, Role::Consumer);

impl Producer<Mapped> {
    /// Attaches as the producer of a region's ring. Fails with
    /// [`Error::RoleTaken`] while another live process (or another handle in
    /// this one) is its producer; a producer that died is taken over.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use shmsg::shm::{Geometry, Region, spsc};
    ///
    /// // An anonymous region; a named one (`Region::create`) is attached
    /// // the same way from another process.
    /// let region = Arc::new(Region::anonymous(Geometry::default())?);
    /// let mut tx = spsc::Producer::attach(&region)?;
    /// assert!(matches!(spsc::Producer::attach(&region), Err(shmsg::Error::RoleTaken(_))));
    /// let mut rx = spsc::Consumer::attach(&region)?;
    /// tx.send(b"over shared memory")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"over shared memory");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let memory = attach::to_role(region, Role::Producer, super::watch_consumer)?;
        Producer::with_backend_taking_over(memory)
    }
}

impl<B: Backend> std::fmt::Debug for Producer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}
