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
//! * the wait primitive ([`Backend::pause`]) and the liveness test of the peer
//!   ([`Backend::peer_alive`]).
//!
//! Production code uses [`Mapped`], which lays the words over a shared mapping
//! (or over a heap allocation with the same layout) with
//! [`AtomicU64::from_ptr`] and copies payload bytes through raw pointers. The
//! models in `models/` implement the same trait with loom and shuttle types
//! and instantiate the very same protocol code: payload bytes go through
//! `loom::cell::UnsafeCell` tracking, so two accesses to one word that the
//! protocol fails to order are reported as a data race.
//!
//! No `--cfg` flag is involved: the models are ordinary test targets.

mod mapped;
mod pause;

pub use mapped::Mapped;
pub(crate) use mapped::Owner;
pub use pause::Pause;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Role;
use crate::shm::layout::Geometry;

/// A 64-bit atomic word, the unit the ring protocols synchronize on.
///
/// Implemented for [`AtomicU64`] here, and for loom's and shuttle's atomics
/// (through newtypes) in the models.
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
}

/// The control words of a ring, each owned (written) by one side.
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
}

impl Control {
    /// The epoch word of `role`.
    pub fn epoch(role: Role) -> Control {
        match role {
            Role::Producer => Control::ProducerEpoch,
            Role::Consumer => Control::ConsumerEpoch,
        }
    }
}

/// Deliberate protocol defects, used only by the models to show that they
/// catch real bugs. Production backends leave [`Backend::FAULTS`] at
/// [`Faults::NONE`]; every branch on a fault is resolved at compile time.
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
}

impl Faults {
    /// No fault: the protocol as designed.
    pub const NONE: Faults = Faults {
        relaxed_publish: false,
        relaxed_poll: false,
        relaxed_release: false,
        full_check_off_by_one: false,
        skip_next_clear: false,
        commit_before_payload: false,
        no_drain_on_disconnect: false,
    };
}

/// Memory and waiting for one ring: the seam between the protocol and the
/// machine (or the model checker).
///
/// # Safety
///
/// Implementors guarantee that
/// * `data_word(i)` is valid for every `i < geometry().capacity() / 8`, and
///   that the payload methods are valid for every byte range inside
///   `0..geometry().capacity()`;
/// * `data_word(i)` and bytes `8 * i .. 8 * i + 8` of the payload methods are
///   the same memory, so that a header written as a word is overwritten by a
///   later payload and vice versa;
/// * `geometry()` returns the same validated value for the backend's lifetime.
pub unsafe trait Backend: Send {
    /// The atomic word type.
    type Word: Word;

    /// Seeded defects, for the models only.
    #[doc(hidden)]
    const FAULTS: Faults = Faults::NONE;

    /// The ring's capacity and maximum message size, validated.
    fn geometry(&self) -> Geometry;

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

    /// Waits a little before the caller polls again; `round` counts the polls
    /// that found nothing to do since the operation started.
    fn pause(&self, round: u32);

    /// Whether a caller that has waited `round` rounds should check the peer's
    /// liveness with [`Backend::peer_alive`] now.
    fn check_peer_now(&self, round: u32) -> bool;

    /// Whether the process attached as `role` is still alive. Called only
    /// while the peer's epoch says it is attached, and only from wait loops.
    fn peer_alive(&self, role: Role) -> bool;
}
