//! The model backend: the production ring protocol of `shmsg::shm::spsc`,
//! instantiated over model-checker memory instead of a mapping.
//!
//! Memory is one array of 64-bit words, exactly as in a region: a word that
//! holds a record header in one lap holds payload bytes in the next, so a
//! stale payload word that the protocol fails to clear is seen by the
//! consumer just as it would be in shared memory.
//!
//! * Every word is a model atomic (loom's or shuttle's). Header loads and
//!   stores go straight to it with the protocol's orderings. Payload bytes are
//!   moved with `Relaxed` loads and stores of whole words, which create no
//!   ordering of their own: the protocol's acquire/release pairs must supply it.
//! * Every word also carries a tracker. Under loom it is a
//!   `loom::cell::UnsafeCell<()>`: a payload write or a header store is
//!   recorded as a mutable access, a payload read as a shared access, so two
//!   accesses to one word that the protocol leaves unordered are reported by
//!   loom as a data race (a causality violation). Header *loads* are not
//!   tracked: polling a word that the other side may be storing is the
//!   protocol's intent, and atomics make it well defined.
//! * `pause` is the model's yield, so spin loops terminate under the checker.
//!
//! Seeded defects are chosen per backend type through [`FaultSet`].

#![allow(dead_code)]

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shmsg::Role;
use shmsg::shm::Geometry;
use shmsg::sync::{Backend, Control, Faults, Word};

/// A model checker's 64-bit atomic, wrapped so that it implements the
/// crate's [`Word`].
pub trait ModelAtomic: Word + 'static {
    fn new(value: u64) -> Self;
}

/// Wraps a model checker's `AtomicU64` type as a [`ModelAtomic`].
#[macro_export]
macro_rules! model_atomic {
    ($name:ident, $atomic:ty) => {
        /// A model atomic that implements the crate's word seam.
        pub struct $name($atomic);
        impl shmsg::sync::Word for $name {
            fn load(&self, order: std::sync::atomic::Ordering) -> u64 {
                self.0.load(order)
            }
            fn store(&self, value: u64, order: std::sync::atomic::Ordering) {
                self.0.store(value, order)
            }
            fn compare_exchange(
                &self,
                current: u64,
                new: u64,
                success: std::sync::atomic::Ordering,
                failure: std::sync::atomic::Ordering,
            ) -> Result<u64, u64> {
                self.0.compare_exchange(current, new, success, failure)
            }
        }
        impl $crate::common::ModelAtomic for $name {
            fn new(value: u64) -> Self {
                $name(<$atomic>::new(value))
            }
        }
    };
}

/// Records accesses to a word's bytes for data-race detection.
pub trait Tracker: Send + Sync + 'static {
    fn new() -> Self;
    /// A non-atomic read of the word.
    fn read(&self);
    /// A non-atomic write of the word.
    fn write(&self);
}

/// The model checker's scheduling hooks.
pub trait Scheduler: Send + Sync + 'static {
    fn yield_now();
}

/// A set of seeded defects.
pub trait FaultSet: Send + Sync + 'static {
    const FAULTS: Faults;
}

/// One word of model memory.
pub struct ModelWord<A, T> {
    atomic: A,
    tracker: T,
}

impl<A: ModelAtomic, T: Tracker> ModelWord<A, T> {
    fn new() -> Self {
        ModelWord {
            atomic: A::new(0),
            tracker: T::new(),
        }
    }
}

impl<A: ModelAtomic, T: Tracker> Word for ModelWord<A, T> {
    fn load(&self, order: Ordering) -> u64 {
        self.atomic.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        // A header store overwrites whatever the word held, payload included:
        // it must be ordered after every earlier read of that payload.
        self.tracker.write();
        self.atomic.store(value, order)
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.atomic.compare_exchange(current, new, success, failure)
    }
}

struct Memory<A, T> {
    geometry: Geometry,
    control: [ModelWord<A, T>; 4],
    data: Vec<ModelWord<A, T>>,
}

/// A ring's memory under a model checker.
pub struct ModelBackend<A, T, S, F> {
    memory: Arc<Memory<A, T>>,
    _marker: PhantomData<fn() -> (S, F)>,
}

impl<A, T, S, F> Clone for ModelBackend<A, T, S, F> {
    fn clone(&self) -> Self {
        ModelBackend {
            memory: Arc::clone(&self.memory),
            _marker: PhantomData,
        }
    }
}

impl<A: ModelAtomic, T: Tracker, S: Scheduler, F: FaultSet> ModelBackend<A, T, S, F> {
    /// Fresh, zeroed memory for a ring of `geometry` whose head and tail start
    /// at `initial_position`. Call inside the model checker's closure.
    pub fn new(geometry: Geometry, initial_position: u64) -> Self {
        let control = [
            ModelWord::new(),
            ModelWord::new(),
            ModelWord::new(),
            ModelWord::new(),
        ];
        let memory = Memory {
            geometry,
            control,
            data: (0..geometry.capacity() / 8)
                .map(|_| ModelWord::new())
                .collect(),
        };
        let backend = ModelBackend {
            memory: Arc::new(memory),
            _marker: PhantomData,
        };
        backend
            .control(Control::Head)
            .store(initial_position, Ordering::Relaxed);
        backend
            .control(Control::Tail)
            .store(initial_position, Ordering::Relaxed);
        backend
    }

    fn word(&self, offset: usize) -> &ModelWord<A, T> {
        &self.memory.data[offset / 8]
    }
}

// SAFETY: `data` has `capacity / 8` words, and payload byte `i` is byte
// `i % 8` of word `i / 8`, the same word `data_word(i / 8)` returns.
unsafe impl<A: ModelAtomic, T: Tracker, S: Scheduler, F: FaultSet> Backend
    for ModelBackend<A, T, S, F>
{
    type Word = ModelWord<A, T>;
    const FAULTS: Faults = F::FAULTS;

    fn geometry(&self) -> Geometry {
        self.memory.geometry
    }

    fn control(&self, which: Control) -> &Self::Word {
        let index = match which {
            Control::Tail => 0,
            Control::ProducerEpoch => 1,
            Control::Head => 2,
            Control::ConsumerEpoch => 3,
        };
        &self.memory.control[index]
    }

    fn data_word(&self, index: usize) -> &Self::Word {
        &self.memory.data[index]
    }

    unsafe fn write(&self, offset: usize, src: &[u8]) {
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            let word = self.word(offset + 8 * i);
            word.tracker.write();
            word.atomic
                .store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
    }

    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        let mut out = vec![0u8; len];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let word = self.word(offset + 8 * i);
            word.tracker.read();
            let bytes = word.atomic.load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        // SAFETY: the caller guarantees `dst` is valid for `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), dst, len) };
    }

    unsafe fn write_in_place<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let mut buf = vec![0u8; len];
        let result = f(&mut buf);
        // SAFETY: forwarded caller contract.
        unsafe { self.write(offset, &buf) };
        result
    }

    unsafe fn read_in_place<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut buf = vec![0u8; len];
        // SAFETY: forwarded caller contract; `buf` holds `len` bytes.
        unsafe { self.read(offset, buf.as_mut_ptr(), len) };
        f(&buf)
    }

    fn pause(&self, _round: u32) {
        S::yield_now()
    }

    fn check_peer_now(&self, _round: u32) -> bool {
        // Peers are threads of the model; they detach through their epochs.
        false
    }

    fn peer_alive(&self, _role: Role) -> bool {
        true
    }
}

/// The protocol as designed.
pub struct NoFault;
impl FaultSet for NoFault {
    const FAULTS: Faults = Faults::NONE;
}

/// Declares a [`FaultSet`] type with one seeded defect.
#[macro_export]
macro_rules! fault {
    ($name:ident, $field:ident) => {
        pub struct $name;
        impl $crate::common::FaultSet for $name {
            const FAULTS: shmsg::sync::Faults = shmsg::sync::Faults {
                $field: true,
                ..shmsg::sync::Faults::NONE
            };
        }
    };
}

fault!(RelaxedPublish, relaxed_publish);
fault!(RelaxedPoll, relaxed_poll);
fault!(RelaxedRelease, relaxed_release);
fault!(FullCheckOffByOne, full_check_off_by_one);
fault!(SkipNextClear, skip_next_clear);
fault!(CommitBeforePayload, commit_before_payload);
fault!(NoDrainOnDisconnect, no_drain_on_disconnect);

/// The payload of message `seq` with `len` bytes: a pattern that differs for
/// every (seq, byte index), so a torn, stale or misplaced byte is visible.
pub fn payload(seq: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(131).wrapping_add(i.wrapping_mul(7)) % 251) as u8 ^ 0x5a)
        .collect()
}

/// Runs `f` and returns its panic message, if it panicked. The panic is also
/// printed by the default hook; tests run in parallel, so the hook is left alone.
pub fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    Some(if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    })
}
