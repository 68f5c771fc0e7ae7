//! The writing end of a multi-producer ring (the protocol: [`super`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::{self, Acquire, Relaxed, Release};

use super::{NO_CLAIM, attach_slot, check_geometry, detach_slot, encode_pad, encode_record, slot};
use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::Mapped;
use crate::shm::attach::{self, detached};
use crate::shm::layout::{Geometry, MAX_PRODUCERS, record_size};
use crate::shm::record::word_at;
use crate::shm::region::Region;
use crate::shm::wait::{self, Spin};
use crate::sync::{Backend, Control, Event, SlotWord, Word, order};

/// The writing end of a multi-producer ring; one of up to
/// [`MAX_PRODUCERS`].
///
/// Dropping it detaches; once every producer has detached, the consumers
/// get [`Error::Disconnected`] after the last message.
///
/// ```
/// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
///
/// let (mut first, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
/// let mut second = first.another()?;
/// first.send(b"from the first")?;
/// second.send(b"from the second")?;
/// drop((first, second));
/// let mut buf = Vec::new();
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"from the first");
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"from the second");
/// assert!(matches!(rx.recv(&mut buf), Err(shmsg::Error::Disconnected)));
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, Mapped, layout::RingKind, mpmc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let mut a = mpmc::Producer::with_backend(memory.clone())?;
    /// let b = mpmc::Producer::with_backend(memory.clone())?;
    /// assert_eq!((a.slot(), b.slot()), (0, 1));
    /// let mut rx = mpmc::Consumer::with_backend(memory, RingKind::Mpsc)?;
    /// a.send(b"hi")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"hi");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, Mapped, mpmc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let tx = mpmc::Producer::with_backend_in_slot(memory.clone(), 3, false)?;
    /// assert_eq!(tx.slot(), 3);
    /// assert!(mpmc::Producer::with_backend_in_slot(memory, 3, false).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
        // A dead holder's claim in `head..tail` may be a hole that a
        // consumer will recover through this slot's claim words. The loads
        // follow the `Acquire` of the slot's epoch (`attach_slot`); a slot
        // is taken over only after its holder died, and the slot lock
        // taken since orders everything the holder stored before them.
        let pending = |epoch: u64| {
            if !take_over || epoch.is_multiple_of(2) {
                return false;
            }
            let head = backend.control(Control::Head).load(Relaxed);
            let claim = slot(backend, Role::Producer, index, SlotWord::Claim).load(Relaxed);
            let tail = backend.control(Control::Tail).load(Relaxed);
            claim != NO_CLAIM && claim.wrapping_sub(head) < tail.wrapping_sub(head)
        };
        let epoch = attach_slot(backend, Role::Producer, index, take_over, pending)?;
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let geometry = Geometry::new(4096, 256)?;
    /// let (tx, _rx) = mpmc::channel(geometry, RingKind::Mpmc)?;
    /// assert_eq!(tx.geometry(), geometry);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&self) -> Geometry {
        Geometry::of(&self.backend)
    }

    /// The slot this producer holds (0 to [`MAX_PRODUCERS`] - 1).
    ///
    /// ```
    /// use shmsg::shm::{Geometry, layout::{MAX_PRODUCERS, RingKind}, mpmc};
    ///
    /// let (tx, _rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
    /// let more = (1..MAX_PRODUCERS).map(|_| tx.another()).collect::<shmsg::Result<Vec<_>>>()?;
    /// assert_eq!(more.last().unwrap().slot(), MAX_PRODUCERS - 1);
    /// // Every slot is taken.
    /// assert!(matches!(tx.another(), Err(shmsg::Error::RoleTaken(_))));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn slot(&self) -> usize {
        self.index
    }

    /// Sends `message` if there is room now; [`Error::Full`] if not.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (mut tx, mut rx) = mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpsc)?;
    /// while tx.try_send(&[7; 8]).is_ok() {}
    /// assert!(matches!(tx.try_send(&[7; 8]), Err(Error::Full)));
    /// assert!(matches!(tx.try_send(&[0; 65]), Err(Error::MessageTooLarge { .. })));
    /// rx.recv(&mut Vec::new())?; // makes room
    /// tx.try_send(&[7; 8])?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        let claim = self.claim(message.len())?;
        let offset = (claim.start & self.mask) as usize + 8;
        // Seeded defect `commit_before_payload`: the commit comes first.
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

    wait::send_methods!("mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpmc)");
    wait::event_loop_methods!("try_send");

    /// Writes a message of at most `max_len` bytes in place: `fill` gets the
    /// record's payload bytes (their previous contents are unspecified) and
    /// returns how many it wrote. [`Error::Full`] if there is no room now.
    ///
    /// If `fill` returns more than `max_len`, or panics, the claimed bytes
    /// are committed as padding (consumers skip them) and nothing is sent;
    /// the result is [`Error::MessageTooLarge`] (or the panic goes on).
    ///
    /// ```
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (mut tx, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
    /// // Claims 64 bytes, uses 5: the rest becomes padding.
    /// let written = tx.try_send_with(64, |payload| {
    ///     payload[..5].copy_from_slice(b"short");
    ///     5
    /// })?;
    /// assert_eq!(written, 5);
    /// tx.send(b"next")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"short");
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"next");
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
    ///
    /// ```
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (tx, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
    /// tx.abandon_claim(16)?;
    /// // The claim is never committed: its header reads empty.
    /// assert!(matches!(rx.try_recv(&mut Vec::new()), Err(shmsg::Error::Empty)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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

    /// The `woke` hook of every wait of this producer.
    fn on_wake(&mut self, slept: wait::Slept) -> Result<wait::Woke> {
        wait::sender_woke(slept)
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
        if detached(&self.backend, Role::Consumer) {
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
            // The attempt, for a consumer recovering from our death.
            let slot_word = |word| slot(&self.backend, Role::Producer, self.index, word);
            slot_word(SlotWord::ClaimLen).store(needed, Relaxed);
            slot_word(SlotWord::Claim).store(at, Relaxed);
            let next = at.wrapping_add(needed);
            if B::FAULTS.claim_without_cas {
                // Seeded defect `claim_without_cas`: a load and a store
                // instead of one atomic step.
                let seen = tail.load(Relaxed);
                if seen == at {
                    tail.store(next, Release);
                    return Ok(Claim { at, start, record });
                }
                at = seen;
                continue;
            }
            // `Relaxed`: its atomicity makes the bytes ours. A consumer
            // recovers only a dead producer's claim, and reads its length
            // after the liveness test that found it dead (the kernel's
            // unlock at our death, the model's mark), which orders the
            // claim words above before it. A tail or a claim word it reads
            // older than ours (the tail still `at`, a claim naming an
            // earlier position) shows it nothing to recover yet: it looks
            // again after its next sleep slice.
            match tail.compare_exchange(at, next, Relaxed, Relaxed) {
                Ok(_) => return Ok(Claim { at, start, record }),
                Err(seen) => {
                    // Lost the race: our slot must not keep naming a
                    // position another producer claimed. A consumer leaves
                    // a dead producer's claim alone while a live producer's
                    // slot names it, and we may now find the ring full and
                    // wait, or go idle, for good: the ring would stall
                    // there (`shuttle_faults`
                    // `mpsc_producer_that_lost_a_race_never_stalls_a_recovery`).
                    // `Relaxed`: a consumer that reads the old claim looks
                    // again after its next sleep slice. Seeded defect
                    // `keep_lost_claim`: left out.
                    if !B::FAULTS.keep_lost_claim {
                        slot_word(SlotWord::Claim).store(NO_CLAIM, Relaxed);
                    }
                    at = seen;
                }
            }
        }
    }

    /// Publishes a claimed record of `len` bytes whose payload is written
    /// (module docs, steps 3 and 4).
    #[inline(always)]
    fn commit(&mut self, claim: Claim, len: usize) {
        // Seeded defect `notify_before_publish`: the look for a sleeper
        // comes before the publish.
        let early = if B::FAULTS.notify_before_publish {
            Some(wait::sleeper_announced(&self.backend, Event::Data))
        } else {
            None
        };
        let used = record_size(len) as u64;
        if used < claim.record {
            // An in-place message that came out shorter: pad the rest. The
            // record's `Release` below publishes it.
            let at = claim.start.wrapping_add(used);
            word_at(&self.backend, self.mask, at)
                .store(encode_pad(at, claim.record - used), Relaxed);
        }
        let publish = order(B::FAULTS.relaxed_publish, Release);
        word_at(&self.backend, self.mask, claim.start)
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
        word_at(&self.backend, self.mask, claim.start)
            .store(encode_pad(claim.start, claim.record), Release);
        self.pad_wrap(claim, Release);
        wait::notify(&self.backend, Event::Data);
    }

    /// After the record, the padding before the wrap, if any.
    #[inline(always)]
    fn pad_wrap(&self, claim: Claim, ordering: Ordering) {
        if claim.wrapped() {
            let bytes = claim.start.wrapping_sub(claim.at);
            word_at(&self.backend, self.mask, claim.at)
                .store(encode_pad(claim.at, bytes), ordering);
        }
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
        wait::disarm(self);
        // Every commit happens-before the count says we are gone.
        detach_slot(&self.backend, Role::Producer, self.index, self.epoch);
        wait::notify(&self.backend, Event::Data);
    }
}

wait::waiter!(Producer, Event::Space, Role::Consumer);

impl<B: Backend + Clone> Producer<B> {
    /// Attaches another producer to the same ring (in this process).
    ///
    /// ```
    /// use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    ///
    /// let (tx, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpsc)?;
    /// let mut other = tx.another()?;
    /// assert_ne!(other.slot(), tx.slot());
    /// std::thread::spawn(move || other.send(b"from a thread")).join().unwrap()?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"from a thread");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn another(&self) -> Result<Self> {
        Producer::with_backend(self.backend.clone())
    }
}

impl Producer<Mapped> {
    /// Attaches a producer to a region created with
    /// [`Region::create_kind`] for [`RingKind::Mpsc`](crate::shm::layout::RingKind::Mpsc) or
    /// [`RingKind::Mpmc`](crate::shm::layout::RingKind::Mpmc),
    /// in a slot no live process holds (a dead process's slot is taken
    /// over). [`Error::RoleTaken`] if none is left;
    /// [`Error::LayoutMismatch`] for a single-producer region.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use shmsg::shm::{Region, layout::RingKind, mpmc};
    ///
    /// let region = Arc::new(Region::options().kind(RingKind::Mpsc).anonymous()?);
    /// let mut a = mpmc::Producer::attach(&region)?;
    /// let mut b = mpmc::Producer::attach(&region)?;
    /// let mut rx = mpmc::Consumer::attach(&region)?;
    /// a.send(b"a")?;
    /// b.send(b"b")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"a");
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"b");
    /// // A single-producer region is not for this ring.
    /// let spsc_region = Arc::new(Region::options().anonymous()?);
    /// assert!(mpmc::Producer::attach(&spsc_region).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        attach::to_slot(
            region,
            Role::Producer,
            super::watch_consumers,
            |memory, index| Producer::with_backend_in_slot(memory, index, true),
        )
    }
}

impl<B: Backend> std::fmt::Debug for Producer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpmc::Producer")
            .field("slot", &self.index)
            .finish_non_exhaustive()
    }
}
