//! The reading end of a multi-producer ring (the protocol: [`super`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::{
    Entry, NO_CLAIM, attach_slot, check_geometry, decode, detach_slot, held_from_last_lap, slot,
    slot_limit,
};
use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::Mapped;
use crate::shm::attach::{self, detached};
use crate::shm::layout::{Geometry, MAX_CONSUMERS, RingKind, record_size};
use crate::shm::record::word_at;
use crate::shm::region::Region;
use crate::shm::wait::{self, Slept, Spin, Woke};
use crate::sync::{Backend, Control, Event, SlotWord, Word, order};

mod recover;

static ZEROS: [u8; 4096] = [0; 4096];

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

/// `Mpsc`: finishes the release a consumer of slot `index` died in the
/// middle of, for the consumer taking the slot: if the slot's claim is the
/// head, its record was read and was being zeroed (payload, then header)
/// when its consumer died. Delivering it again could give torn bytes, and
/// leaving it would show a zero header at the head (the ring would stall),
/// so it is zeroed and the head moved past it: the message counts as
/// received by the dead consumer, as one whose head store had landed.
///
/// The loads are `Relaxed`: what orders the predecessor's release words,
/// head and zeroing before them is the attach that preceded this call,
/// either its `Acquire` load of the epoch the predecessor's detach stored
/// (`attach_slot`), or, after a death, the slot lock this process took
/// after the kernel released the dead one's. No other consumer writes the
/// head of an `Mpsc` ring meanwhile: it has one consumer slot, and it is
/// ours.
fn finish_release<B: Backend>(backend: &B, index: usize) -> Result<()> {
    let head = backend.control(Control::Head).load(Relaxed);
    let claim = slot(backend, Role::Consumer, index, SlotWord::Claim).load(Relaxed);
    let len = slot(backend, Role::Consumer, index, SlotWord::ClaimLen).load(Relaxed);
    // A slot never used has a zero length; any other claim is a finished
    // release, behind the head.
    if claim != head || len == 0 {
        return Ok(());
    }
    let capacity = backend.capacity() as u64;
    let offset = head & (capacity - 1);
    // Only a bound for the check below: the record lay below the tail
    // the predecessor saw, ordered before us as above.
    let tail = backend.control(Control::Tail).load(Relaxed);
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

/// The reading end of a multi-producer ring: the one consumer of an
/// [`RingKind::Mpsc`] ring, or one of up to [`MAX_CONSUMERS`](crate::shm::layout::MAX_CONSUMERS) of an
/// [`RingKind::Mpmc`] ring.
///
/// ```
/// # use shmsg::shm::{Geometry, layout::RingKind, mpmc};
/// let (mut tx, mut a) = mpmc::channel(Geometry::default(), RingKind::Mpmc)?;
/// let mut b = a.another()?;
/// tx.send(b"1")?; // goes to exactly one consumer
/// assert!(a.try_recv(&mut Vec::new()).is_ok() && b.try_recv(&mut Vec::new()).is_err());
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    /// `Mpmc`: the last look found a full ring with every entry taken
    /// ([`held_from_last_lap`]); the wait for data then hands back entries
    /// at the head held by consumers that are gone ([`Consumer::on_wake`]).
    full_of_taken: bool,
}

impl<B: Backend> Consumer<B> {
    /// Attaches a consumer to the ring of `kind` ([`RingKind::Mpsc`] or
    /// [`RingKind::Mpmc`]) in `backend`, in the first free slot.
    /// [`Error::RoleTaken`] if all are taken (one for `Mpsc`).
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, Mapped, layout::RingKind, mpmc};
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let _rx = mpmc::Consumer::with_backend(memory.clone(), RingKind::Mpsc)?;
    /// let second = mpmc::Consumer::with_backend(memory, RingKind::Mpsc);
    /// assert!(matches!(second, Err(shmsg::Error::RoleTaken(_)))); // one for `Mpsc`
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
        // `Mpmc`: a record a gone consumer of this slot held and nobody has
        // recovered yet stays claimed through the slot until it is (a
        // consumer waiting for its hand-back turn recovers it). A slot never
        // attached (epoch 0) has made no claim. The loads follow the
        // `Acquire` of the epoch the attach replaces (`attach_slot`), so
        // the claim is at least the one the slot's last holder made before
        // it left (or before the watchdog detached it).
        let pending = |epoch: u64| {
            if kind != RingKind::Mpmc || epoch == 0 {
                return false;
            }
            let head = backend.control(Control::Head).load(Relaxed);
            let claim = slot(backend, Role::Consumer, index, SlotWord::Claim).load(Relaxed);
            let cursor = backend.control(Control::ReadCursor).load(Relaxed);
            claim != NO_CLAIM && claim.wrapping_sub(head) < cursor.wrapping_sub(head)
        };
        let epoch = attach_slot(backend, Role::Consumer, index, take_over, pending)?;
        // Seeded defect `no_release_finish`: the release is not finished.
        if kind == RingKind::Mpsc
            && !B::FAULTS.no_release_finish
            && let Err(error) = finish_release(backend, index)
        {
            detach_slot(backend, Role::Consumer, index, epoch);
            return Err(error);
        }
        slot(backend, Role::Consumer, index, SlotWord::Claim).store(NO_CLAIM, Relaxed);
        // `Relaxed`: the attach ordered the previous consumer's last head
        // store before us (as in `finish_release`), or `finish_release`
        // stored it; an `Mpmc` consumer reads the shared cursor instead.
        let head = backend.control(Control::Head).load(Relaxed);
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
            full_of_taken: false,
        }
    }

    /// The ring's capacity and maximum message size.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    /// let (_tx, rx) = mpmc::channel(Geometry::new(2048, 100)?, RingKind::Mpsc)?;
    /// assert_eq!(rx.geometry().max_message(), 100);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    wait::receive_methods!("mpmc::channel(Geometry::new(1024, 64)?, RingKind::Mpsc)");
    wait::event_loop_methods!("try_recv");

    /// Reads the next message in place: `read` gets the payload bytes inside
    /// the ring, and the record is handed back when it returns (in an
    /// `Mpmc` ring, once the records before it are handed back too).
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, layout::RingKind, mpmc};
    /// let (mut tx, mut rx) = mpmc::channel(Geometry::default(), RingKind::Mpmc)?;
    /// tx.send(&[1, 2, 3])?;
    /// assert_eq!(rx.try_recv_with(|payload| payload.iter().sum::<u8>())?, 6);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline]
    pub fn try_recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.deadline = Deadline::Now;
        self.recv_with_once(&mut Some(read))
    }

    #[inline(always)]
    fn recv_with_once<R>(&mut self, read: &mut Option<impl FnOnce(&[u8]) -> R>) -> Result<R> {
        let (start, len) = match self.take()? {
            Some(found) => found,
            None => {
                if !detached(&self.backend, Role::Producer) {
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
            let word = word_at(&self.backend, self.mask, at).load(poll);
            let entry = match decode(word, at, self.geometry) {
                Ok(entry) => entry,
                // Stale if another consumer moved the cursor meanwhile.
                Err(_) if self.shared && self.cursor_moved(at) => continue,
                // A full ring whose every entry is taken: nothing is
                // committed here yet (module docs, "Consuming").
                Err(_) if self.shared && self.held_at_head(word, at) => {
                    self.full_of_taken = true;
                    Entry::Empty
                }
                Err(error) => return Err(error),
            };
            if entry == Entry::Empty {
                // A stale cursor reads as empty too: another consumer may
                // have moved it past a record it has since zeroed. A plain
                // load may return an old cursor; a read-modify-write reads
                // its latest value, so "empty" is confirmed there (and a
                // consumer never reports `Disconnected`, or sleeps, on a
                // stale look; the loom model `loom_faults` found this).
                // `Relaxed`: the read-modify-write counts for reading the
                // latest cursor, which any ordering does; its value is only
                // compared, and the next look loads the cursor again with
                // `Acquire` (no model tells it from `AcqRel`,
                // `ci/mutate-orderings.sh`).
                if self.shared
                    && self
                        .backend
                        .control(Control::ReadCursor)
                        .fetch_add(0, Relaxed)
                        != at
                {
                    continue;
                }
                return Ok(None);
            }
            let end = at.wrapping_add(entry.extent());
            if self.shared {
                // The entry we are claiming, for a consumer recovering it
                // should we be gone holding it: our death (the liveness
                // test) or our detach (the slot epoch's `Release`) orders
                // these words before a recoverer reads them.
                let word = |word| slot(&self.backend, Role::Consumer, self.index, word);
                word(SlotWord::ClaimLen).store(entry.extent(), Relaxed);
                word(SlotWord::Claim).store(at, Relaxed);
                let cursor = self.backend.control(Control::ReadCursor);
                // `AcqRel`, for its `Release` half: the consumer that loads
                // the cursor at `end` next (`Acquire`, above) reads the
                // header word there, and must see the zeroing of whatever
                // the previous lap left at `end` (payload bytes of an entry
                // handed back, which would read as a corrupt header). That
                // zeroing happens before our claim: it comes before the
                // head store the entry's producer acquired before it
                // published, and we acquired that publish (the header
                // load). No model tells it from `Relaxed`: the two-consumer
                // loom scenarios never lap the ring, and two that do (three
                // records through 64 bytes, the producer waiting for room
                // in the ring or outside it) did not finish at bound 1 in
                // 15 minutes each (models/README.md, "Ordering mutants").
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

    /// Whether `word`, read at the cursor `at`, is the header word of the
    /// entry a lap before, not yet handed back: a full ring with every entry
    /// taken (module docs, "Consuming"). If the head has passed that entry
    /// (it may have done so since `word` was read), its hand-back zeroed the
    /// header first, so the header, read again, no longer holds `word`; if
    /// it does, the entry was handed back without being zeroed: not held,
    /// and the caller reports it corrupt (`shuttle_mpmc` `mpmc_crowd_*`
    /// find both the full ring and that race). The head's `Acquire` pairs
    /// with the hand-back's `Release`, making its zeroing visible to the
    /// second read (no loom model reaches this: a full ring with every
    /// entry taken needs three consumers); the second read needs no
    /// ordering of its own, since what it finds is only compared.
    fn held_at_head(&self, word: u64, at: u64) -> bool {
        let capacity = self.mask + 1;
        if !held_from_last_lap(word, at, capacity) {
            return false;
        }
        let head = self.backend.control(Control::Head).load(Acquire);
        head == at.wrapping_sub(capacity)
            || word_at(&self.backend, self.mask, at).load(Relaxed) != word
    }

    /// Whether another consumer moved the cursor since we read `at`.
    /// `Relaxed`: the value is only compared; a moved cursor is loaded
    /// again, with `Acquire`, by the next look (no model tells it from
    /// `Acquire`, `ci/mutate-orderings.sh`).
    fn cursor_moved(&self, at: u64) -> bool {
        self.backend.control(Control::ReadCursor).load(Relaxed) != at
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
            // `Relaxed`: read only by the next consumer of this slot
            // (`finish_release`), which our detach's `Release`, or after
            // our death the slot lock, orders after these stores.
            let word = |word| slot(&self.backend, Role::Consumer, self.index, word);
            word(SlotWord::ClaimLen).store(extent, Relaxed);
            word(SlotWord::Claim).store(start, Relaxed);
        }
        // Seeded defect `release_without_zeroing`: left out.
        if !B::FAULTS.release_without_zeroing {
            let offset = (start & self.mask) as usize;
            // SAFETY: the entry is ours until the head moves past it, and
            // lies inside the data area (`decode` checked it).
            unsafe { zero(&self.backend, offset + 8, extent as usize - 8) };
            word_at(&self.backend, self.mask, start).store(0, Relaxed);
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
        // Seeded defect `release_out_of_order`: no wait for the turn.
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
            // An event-loop consumer whose turn this was learns of it too.
            wait::notify_hand_back(&self.backend);
        } else {
            wait::notify(&self.backend, Event::Space);
        }
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
            Self::on_wake,
        )
    }

    /// The `woke` hook of every wait for data: recovers a dead producer's
    /// claim that blocks the ring, and, where the last look found a full
    /// `Mpmc` ring with every entry taken, hands back the entries at the
    /// head held by consumers that are gone: they may hold every entry, and
    /// then no consumer has a hand-back of its own waiting behind them to do
    /// it (module docs, "A consumer that dies holding a record"). Each
    /// consumer holds at most one entry, so at most [`MAX_CONSUMERS`] are
    /// handed back.
    fn on_wake(&mut self, slept: Slept) -> Result<Woke> {
        if std::mem::take(&mut self.full_of_taken) {
            for _ in 0..MAX_CONSUMERS {
                if !self.recover_abandoned()? {
                    break;
                }
            }
        }
        let recovered = self.recover_dead_claim()?;
        Ok(match slept {
            Slept::Again => Woke::Again,
            // Every producer is dead: recover their holes one by one,
            // deliver what they committed, then the stream is over.
            Slept::PeerDead if recovered => Woke::Again,
            Slept::PeerDead => Woke::LastTry(Error::Disconnected),
        })
    }
}

wait::waiter!(Consumer, Event::Data, Role::Producer);

impl<B: Backend> Drop for Consumer<B> {
    fn drop(&mut self) {
        wait::disarm(self);
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

impl<B: Backend + Clone> Consumer<B> {
    /// Attaches another consumer to the same ring (in this process):
    /// [`Error::RoleTaken`] for an `Mpsc` ring, whose one consumer is this one.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, layout::RingKind::{Mpmc, Mpsc}, mpmc};
    /// let _second = mpmc::channel(Geometry::default(), Mpmc)?.1.another()?;
    /// let (_tx, rx) = mpmc::channel(Geometry::default(), Mpsc)?;
    /// assert!(matches!(rx.another(), Err(shmsg::Error::RoleTaken(_))));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn another(&self) -> Result<Self> {
        let kind = if self.shared {
            RingKind::Mpmc
        } else {
            RingKind::Mpsc
        };
        Consumer::with_backend(self.backend.clone(), kind)
    }
}

impl Consumer<Mapped> {
    /// Attaches a consumer to a multi-producer region, as
    /// [`Producer::attach`](super::Producer::attach).
    ///
    /// ```
    /// # use shmsg::shm::{Region, layout::RingKind, mpmc};
    /// let region = std::sync::Arc::new(Region::options().kind(RingKind::Mpmc).anonymous()?);
    /// let (mut a, mut b) = (mpmc::Consumer::attach(&region)?, mpmc::Consumer::attach(&region)?);
    /// mpmc::Producer::attach(&region)?.send(b"one")?;
    /// assert_eq!(a.recv(&mut Vec::new())?, 3);
    /// assert!(b.try_recv(&mut Vec::new()).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let kind = attach::ring_kind(region, true)?;
        attach::to_slot(
            region,
            Role::Consumer,
            super::watch_consumers,
            |memory, index| Consumer::with_backend_in_slot(memory, kind, index, true),
        )
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
