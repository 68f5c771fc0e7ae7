//! The backend seam: the one place where the ring protocols meet memory.
//!
//! The ring protocols in [`crate::shm`] are written once, against the
//! [`Backend`] trait defined here. A backend supplies
//!
//! * the atomic words the protocol synchronizes on ([`Word`]): the control
//!   words (indices and attachment epochs) and the record headers inside the
//!   data area;
//! * the byte moves for payloads ([`Backend::write`], [`Backend::read`] and
//!   their in-place variants), which are plain, unsynchronized accesses;
//! * the wait primitives: a spin hint ([`Backend::spin`]), the sequentially
//!   consistent fence of the eventcount ([`Backend::fence`]), a futex on the
//!   two event words ([`Backend::futex_wait`], [`Backend::futex_wake`]), a
//!   descriptor event loops wait on ([`Backend::signal`],
//!   [`Backend::descriptor`]), and the liveness test of the peer
//!   ([`Backend::peer_alive`]). The protocol
//!   that decides when to announce, fence, re-check, sleep and wake is in
//!   [`crate::shm::wait`], written once against these.
//!
//! Production code uses [`crate::shm::Mapped`], which lays the words over a
//! shared mapping (or over a heap allocation with the same layout) with
//! [`AtomicU64::from_ptr`] and copies payload bytes through raw pointers. The
//! models in `models/` implement the same trait with loom and shuttle types
//! and instantiate the very same protocol code: payload bytes go through
//! `loom::cell::UnsafeCell` tracking, so two accesses to one word that the
//! protocol fails to order are reported as a data race.
//!
//! This module is the bottom layer of the ring code: it knows nothing of the
//! region layout ([`crate::shm::layout`]) or of the rings, and imports
//! nothing from them. The seam speaks of words by name ([`Control`],
//! [`Event`], data word indices) and of the ring's size by plain numbers.
//!
//! No `--cfg` flag is involved: the models are ordinary test targets.

pub(crate) mod futex;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Role;

/// A 64-bit atomic word, the unit the ring protocols synchronize on.
///
/// Implemented for [`AtomicU64`] here, and for loom's and shuttle's atomics
/// (through newtypes) in the models.
///
/// Protocol code is generic over it:
///
/// ```
/// use std::sync::atomic::AtomicU64;
/// use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
/// use shmsg::sync::Word;
///
/// /// Claims `len` bytes at the tail, as a multi-producer ring does.
/// fn claim<W: Word>(tail: &W, len: u64) -> u64 {
///     let mut current = tail.load(Relaxed);
///     loop {
///         match tail.compare_exchange(current, current + len, AcqRel, Relaxed) {
///             Ok(start) => return start,
///             Err(seen) => current = seen,
///         }
///     }
/// }
/// let tail = AtomicU64::new(0);
/// assert_eq!(claim(&tail, 16), 0);
/// assert_eq!(claim(&tail, 24), 16);
/// assert_eq!(Word::fetch_add(&tail, 8, AcqRel), 40);
/// Word::store(&tail, 0, Relaxed);
/// assert_eq!(Word::load(&tail, Acquire), 0);
/// ```
pub trait Word: Send + Sync {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic compare-and-exchange, as [`AtomicU64::compare_exchange`].
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    /// Atomic wrapping add, as [`AtomicU64::fetch_add`]; returns the previous value.
    fn fetch_add(&self, value: u64, order: Ordering) -> u64;
}

impl Word for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    #[inline(always)]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
    #[inline(always)]
    fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
        AtomicU64::fetch_add(self, value, order)
    }
}

/// The control words of a ring, each owned (written) by one side.
///
/// ```
/// use std::sync::atomic::Ordering::Acquire;
/// use shmsg::Role;
/// use shmsg::shm::{Geometry, Mapped, spsc};
/// use shmsg::sync::{Backend, Control, Word};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// let epoch = |role| memory.control(Control::epoch(role)).load(Acquire);
/// assert_eq!(epoch(Role::Producer), 0); // never attached
/// let tx = spsc::Producer::with_backend(memory.clone())?;
/// assert_eq!(epoch(Role::Producer), 1); // attached
/// drop(tx);
/// assert_eq!(epoch(Role::Producer), 2); // detached
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Position one past the last committed record; written by the producer.
    Tail,
    /// The producer's attachment epoch: 0 never attached, odd attached, even detached.
    ProducerEpoch,
    /// Position of the next record to read; written by the consumer.
    Head,
    /// The consumer's attachment epoch, as [`Control::ProducerEpoch`].
    ConsumerEpoch,
    /// The read cursor that the consumers of a multi-consumer ring share
    /// ([`crate::shm::mpmc`]): position of the next record to claim for reading.
    ReadCursor,
    /// A word of the attachment slot `index` of `role` in a multi-producer
    /// ring ([`crate::shm::mpmc`]); `index` is below
    /// [`crate::shm::layout::MAX_PRODUCERS`] or
    /// [`crate::shm::layout::MAX_CONSUMERS`].
    Slot {
        /// Producer or consumer slots.
        role: Role,
        /// Which slot.
        index: usize,
        /// Which word of it.
        word: SlotWord,
    },
}

/// The words of an attachment slot of a multi-producer ring (see
/// [`crate::shm::layout::ProducerSlot`] and
/// [`crate::shm::layout::ConsumerSlot`]).
///
/// ```
/// use std::sync::atomic::Ordering::Acquire;
/// use shmsg::Role;
/// use shmsg::shm::{Geometry, Mapped, mpmc};
/// use shmsg::sync::{Backend, Control, SlotWord, Word};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// let tx = mpmc::Producer::with_backend(memory.clone())?;
/// let word = SlotWord::Epoch;
/// let slot = Control::Slot { role: Role::Producer, index: tx.slot(), word };
/// assert_eq!(memory.control(slot).load(Acquire) % 2, 1); // attached
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotWord {
    /// 0 never attached, odd attached, even detached.
    Epoch,
    /// The attached process's id.
    Pid,
    /// Start of the producer's latest claim, or of the record an `Mpmc`
    /// consumer holds.
    Claim,
    /// Length of that claim in bytes.
    ClaimLen,
}

impl Control {
    /// The epoch word of `role`.
    ///
    /// ```
    /// use shmsg::Role;
    /// use shmsg::sync::Control;
    ///
    /// assert_eq!(Control::epoch(Role::Producer), Control::ProducerEpoch);
    /// assert_eq!(Control::epoch(Role::Consumer), Control::ConsumerEpoch);
    /// ```
    pub fn epoch(role: Role) -> Control {
        match role {
            Role::Producer => Control::ProducerEpoch,
            Role::Consumer => Control::ConsumerEpoch,
        }
    }
}

/// The two events a ring's sides sleep on, each an eventcount word in the
/// region (see [`crate::shm::wait`]).
///
/// ```
/// use std::sync::atomic::Ordering::Relaxed;
/// use shmsg::shm::{Geometry, Mapped, wait};
/// use shmsg::sync::{Backend, Event, Word};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// for event in [Event::Data, Event::Space] {
///     // Nobody sleeps: a notifier makes no system call.
///     assert_eq!(wait::sleepers(memory.event(event).load(Relaxed)), 0);
/// }
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Records to read: the consumer waits; the producer notifies after it
    /// publishes, and when it detaches.
    Data,
    /// Space to write: the producer waits; the consumer notifies after it
    /// releases a record, and when it detaches.
    Space,
}

/// Deliberate protocol defects, used only by the models to show that they
/// catch real bugs. Production backends leave [`Backend::FAULTS`] at
/// [`Faults::NONE`]; every branch on a fault is resolved at compile time.
///
/// The protocols spell a seeded defect one of two ways:
///
/// * one that only weakens an ordering is the ordering argument
///   `order(B::FAULTS.flag, Release)` ([`order`]): the production ordering
///   is the one the reader sees, and `ci/mutate-orderings.sh` finds the
///   site as it finds a literal one;
/// * one that changes what the code does is an `if` on the flag, with a
///   comment that begins `Seeded defect`: `if B::FAULTS.flag { .. }` holds
///   the defect's code (an `else` the production code it replaces), and
///   `if !B::FAULTS.flag { .. }` a production step the defect leaves out.
///
/// ```
/// use shmsg::shm::Mapped;
/// use shmsg::sync::{Backend, Faults};
///
/// assert_eq!(<Mapped as Backend>::FAULTS, Faults::NONE);
/// let seeded = Faults { relaxed_publish: true, ..Faults::NONE };
/// assert_ne!(seeded, Faults::NONE);
/// ```
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The producer publishes a record header with `Relaxed` instead of `Release`.
    pub relaxed_publish: bool,
    /// The consumer polls record headers with `Relaxed` instead of `Acquire`.
    pub relaxed_poll: bool,
    /// The consumer returns space (stores `head`) with `Relaxed` instead of `Release`.
    pub relaxed_release: bool,
    /// The free-space check forgets the word reserved for the next header.
    pub full_check_off_by_one: bool,
    /// The producer does not clear the header word that follows a new record.
    pub skip_next_clear: bool,
    /// The producer publishes the header before it writes the payload.
    pub commit_before_payload: bool,
    /// The consumer reports `Disconnected` without polling the ring once more
    /// after it sees the producer's detach.
    pub no_drain_on_disconnect: bool,
    /// A waiter announces itself and re-checks the ring without the
    /// sequentially consistent fence in between (a lost wake-up).
    pub no_waiter_fence: bool,
    /// The producer looks for a sleeping consumer before it publishes the
    /// record instead of after (a lost wake-up).
    pub notify_before_publish: bool,
    /// Multi-producer ring: the claiming compare-and-swap on the tail is
    /// replaced by a load and a store, so two producers can claim one range.
    pub claim_without_cas: bool,
    /// Multi-consumer ring: a consumer hands its record back without waiting
    /// for the records before it to be handed back (out-of-order release).
    pub release_out_of_order: bool,
    /// Multi-producer ring: the consumer hands a record back without zeroing
    /// it, so stale bytes can pass for a later record's header.
    pub release_without_zeroing: bool,
    /// The watchdog detaches a consumer without asking whether it is alive.
    pub detach_live_consumer: bool,
    /// The watchdog detaches a dead consumer with a plain store instead of a
    /// compare-and-swap, so it can undo a takeover that happened meanwhile.
    pub detach_by_store: bool,
    /// A producer that takes over starts at the shared tail without walking
    /// the records its dead predecessor committed after its last tail store.
    pub no_tail_recovery: bool,
    /// Multi-consumer ring: a consumer waiting for its hand-back turn
    /// recovers the record before it without asking whether its holder is
    /// alive.
    pub recover_live_consumer: bool,
    /// Multi-producer ring: a consumer that takes over an `Mpsc` slot does
    /// not finish the release its dead predecessor was in the middle of.
    pub no_release_finish: bool,
    /// An event-loop waiter arms itself without announcing a descriptor
    /// sleeper, so no notifier signals its descriptor (a lost wake-up).
    pub arm_without_announce: bool,
    /// A notifier that finds sleepers wakes the futex only, and never
    /// signals the descriptor event-loop waiters wait on (a lost wake-up).
    pub wake_futex_only: bool,
    /// Multi-consumer ring: a hand-back wakes producers only, not the
    /// event-loop consumers whose turn it may bring (a lost wake-up).
    pub no_hand_back_signal: bool,
    /// Multi-producer ring: attaching to a slot loads its epoch with
    /// `Relaxed`, so the look for a pending claim may read a claim older
    /// than the detach that freed the slot.
    pub relaxed_slot_epoch: bool,
    /// Multi-consumer ring: the hand-back for a gone consumer is decided on
    /// its claim word and ends with a plain store of the head (no mark on
    /// the entry's header), so two consumers can recover one entry.
    pub recover_by_claim: bool,
    /// Multi-producer ring: a producer that loses the race for a claim
    /// keeps its claim word naming the position another producer claimed,
    /// so a consumer never pads that claim if its owner dies.
    pub keep_lost_claim: bool,
}

/// The ordering of an atomic operation that a seeded defect weakens to
/// `Relaxed`: `production` unless `seeded`, a flag of [`Backend::FAULTS`],
/// is set. Written `order(B::FAULTS.flag, Release)` at every such site.
///
/// ```
/// use std::sync::atomic::Ordering::{Relaxed, Release};
/// use shmsg::sync::order;
///
/// assert_eq!(order(false, Release), Release);
/// assert_eq!(order(true, Release), Relaxed);
/// ```
#[doc(hidden)]
#[inline(always)]
pub const fn order(seeded: bool, production: Ordering) -> Ordering {
    if seeded {
        Ordering::Relaxed
    } else {
        production
    }
}

impl Faults {
    /// No fault: the protocol as designed.
    ///
    /// ```
    /// use shmsg::sync::Faults;
    ///
    /// assert_eq!(Faults::NONE, Faults::default());
    /// ```
    pub const NONE: Faults = Faults {
        relaxed_publish: false,
        relaxed_poll: false,
        relaxed_release: false,
        full_check_off_by_one: false,
        skip_next_clear: false,
        commit_before_payload: false,
        no_drain_on_disconnect: false,
        no_waiter_fence: false,
        notify_before_publish: false,
        claim_without_cas: false,
        release_out_of_order: false,
        release_without_zeroing: false,
        detach_live_consumer: false,
        detach_by_store: false,
        no_tail_recovery: false,
        recover_live_consumer: false,
        no_release_finish: false,
        arm_without_announce: false,
        wake_futex_only: false,
        no_hand_back_signal: false,
        relaxed_slot_epoch: false,
        recover_by_claim: false,
        keep_lost_claim: false,
    };
}

/// Memory and waiting for one ring: the seam between the protocol and the
/// machine (or the model checker).
///
/// # Safety
///
/// Implementors guarantee that
/// * `data_word(i)` is valid for every `i < capacity() / 8`, and that the
///   payload methods are valid for every byte range inside `0..capacity()`;
/// * `data_word(i)` and bytes `8 * i .. 8 * i + 8` of the payload methods are
///   the same memory, so that a header written as a word is overwritten by a
///   later payload and vice versa;
/// * `capacity()` and `max_message()` return the same values for the
///   backend's lifetime, and together they pass the validation of a ring's
///   geometry ([`crate::shm::layout::Geometry::new`]).
pub unsafe trait Backend: Send {
    /// The atomic word type.
    type Word: Word;

    /// Seeded defects, for the models only.
    #[doc(hidden)]
    const FAULTS: Faults = Faults::NONE;

    /// The size of the data area in bytes (the ring's capacity), a power
    /// of two.
    fn capacity(&self) -> usize;

    /// The largest message the ring carries, in bytes.
    fn max_message(&self) -> usize;

    /// One of the control words.
    fn control(&self, which: Control) -> &Self::Word;

    /// Data word `index` (bytes `8 * index .. 8 * index + 8` of the data area),
    /// used for record headers.
    fn data_word(&self, index: usize) -> &Self::Word;

    /// Copies `src` into the data area at byte `offset`, zero-filling up to the
    /// next multiple of 8 bytes.
    ///
    /// # Safety
    ///
    /// `offset` is a multiple of 8, `offset + src.len()` rounded up to 8 is at
    /// most the capacity, and the protocol gives the caller exclusive access to
    /// that range (no other thread or process reads or writes it now).
    unsafe fn write(&self, offset: usize, src: &[u8]);

    /// Copies `len` bytes at data offset `offset` to `dst`.
    ///
    /// # Safety
    ///
    /// As for [`Backend::write`], with shared instead of exclusive access to
    /// the range; `dst` is valid for `len` bytes of writes.
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize);

    /// Lends `len` bytes at `offset` to `f` for writing in place.
    ///
    /// # Safety
    ///
    /// As for [`Backend::write`].
    unsafe fn write_in_place<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R;

    /// Lends `len` bytes at `offset` to `f` for reading in place.
    ///
    /// # Safety
    ///
    /// As for [`Backend::read`].
    unsafe fn read_in_place<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R;

    /// One poll's pause in the spin phase of a wait: a spin hint (a yield
    /// under a model checker, so that spinning threads make progress).
    fn spin(&self);

    /// The most polls a wait spends spinning before it sleeps: the upper
    /// bound of the adaptive spin budget (see [`crate::shm::wait`]). 0 makes
    /// every wait sleep at once (the wait models); `u32::MAX` makes waits
    /// spin and never sleep.
    fn spin_limit(&self) -> u32;

    /// A sequentially consistent fence (the model checker's own under a model).
    fn fence(&self);

    /// The eventcount word of `which`, in the region.
    fn event(&self, which: Event) -> &Self::Word;

    /// Sleeps while the futex half (bits 63..32) of the event word `which`
    /// equals `expected`, for at most `timeout`. Returns when woken by
    /// [`Backend::futex_wake`], when the value differs (at once), when the
    /// timeout passes, or spuriously: the caller re-checks in every case.
    /// A model futex ignores `timeout` and blocks until woken, so that a lost
    /// wake-up shows as a deadlock.
    fn futex_wait(&self, which: Event, expected: u32, timeout: Duration);

    /// Wakes every thread or process sleeping in [`Backend::futex_wait`] on
    /// `which`.
    fn futex_wake(&self, which: Event);

    /// Signals `count` descriptor sleepers of `which`: makes the event's
    /// descriptor ([`Backend::descriptor`]) readable until `count` waiters
    /// have each consumed one signal (an eventfd in semaphore mode). A
    /// model backend signals its model descriptor (a counter and a
    /// condition variable). Never blocks.
    fn signal(&self, which: Event, count: u32);

    /// The descriptor an event loop waits on for `which` (readable once
    /// signalled), if the ring has one: rings made by a listener and rings
    /// between threads do, rings in a region opened by name do not (no
    /// socket carried a descriptor to their peers). The default: none.
    fn descriptor(&self, which: Event) -> Option<std::os::fd::BorrowedFd<'_>> {
        let _ = which;
        None
    }

    /// Whether the process attached as `role` is still alive. Called only
    /// while the peer's epoch says it is attached, and only from the sleep
    /// phase of waits (it may be a system call).
    fn peer_alive(&self, role: Role) -> bool;

    /// Whether the process attached in slot `index` of `role` of a
    /// multi-producer ring is alive (see [`crate::shm::mpmc`]). Called only
    /// while that slot's epoch says it is attached, and only from the sleep
    /// phase of waits. The default asks [`Backend::peer_alive`].
    fn slot_alive(&self, role: Role, index: usize) -> bool {
        let _ = index;
        self.peer_alive(role)
    }
}
