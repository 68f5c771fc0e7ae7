//! The model backend: the production protocols of both rings, the
//! single-producer one (`shmsg::shm::spsc`) and the multi-producer ones
//! (`shmsg::shm::mpmc`), with the wait protocol and the watchdog's detach,
//! instantiated over model-checker memory instead of a mapping.
//!
//! Memory is laid out as the seam names it (`shmsg::sync::Control`): the
//! single-producer ring's words (tail, head, the two epochs), the shared
//! read cursor of an `Mpmc` ring, the four words of every producer and
//! consumer slot of the multi-producer rings, the two event words, and the
//! data area. The data area is one array of 64-bit words, exactly as in a
//! region: a word that holds a record header in one lap holds payload bytes
//! in the next, so a stale payload word that the protocol fails to clear is
//! seen by the consumer just as it would be in shared memory.
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
//! * `spin` is the model's yield, so spin loops terminate under the checker;
//!   `fence` is the model's `SeqCst` fence.
//! * The futex is a *model futex* ([`ModelFutex`]): the checker's mutex and
//!   condition variable. `futex_wait` takes the mutex, compares the event
//!   word's epoch with the expected value and, if equal, waits on the
//!   condition variable *without a timeout*; `futex_wake` takes the mutex and
//!   notifies all. As in the kernel, the comparison and the queueing are
//!   atomic with respect to a wake. A wake-up that the protocol loses leaves
//!   the sleeper blocked for good, which the checker reports as a deadlock.
//! * The spin limit is chosen per backend ([`ModelBackend::with_spin_limit`]):
//!   `u32::MAX` (the default) spins and never sleeps, as the ring models
//!   want; 0 makes every wait sleep at once, as the wait model wants.
//!
//! * With `SHMSG_MODEL_TRACE=1`, every operation through the backend is
//!   logged as a protocol event, and a failing execution's log is printed
//!   ([`trace`]; `ci/explore.sh`).
//!
//! Seeded defects are chosen per backend type through [`FaultSet`].

#![allow(dead_code)]

pub mod loom_model;
pub mod shuttle_model;
pub mod trace;

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shmsg::Role;
use shmsg::shm::Geometry;
use shmsg::shm::layout::{MAX_CONSUMERS, MAX_PRODUCERS};
use shmsg::shm::wait::epoch;
use shmsg::sync::{Backend, Control, Event, Faults, SlotWord, Word};
use trace::{Log, Name, Op};

/// How many times a wait reached the (model) futex in this test process:
/// lets a model check that its schedules exercise the sleep path.
pub static SLEEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
            fn fetch_add(&self, value: u64, order: std::sync::atomic::Ordering) -> u64 {
                self.0.fetch_add(value, order)
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

/// The model checker's scheduling hooks and blocking primitives.
pub trait Scheduler: Send + Sync + 'static {
    type Futex: ModelFutex;
    fn yield_now();
    /// A `SeqCst` fence that the checker sees.
    fn fence();
    /// The running thread, short (`t0`, `t1`), for the trace.
    fn thread() -> String;
}

/// A model futex: a sleeper blocks until woken, with no timeout.
pub trait ModelFutex: Send + Sync + 'static {
    fn new() -> Self;
    /// Blocks until [`ModelFutex::wake`] if `still()` holds, checked under
    /// the futex's lock.
    fn wait(&self, still: impl FnOnce() -> bool);
    /// Wakes every sleeper.
    fn wake(&self);
}

/// A set of seeded defects.
pub trait FaultSet: Send + Sync + 'static {
    const FAULTS: Faults;
}

/// One word of model memory.
pub struct ModelWord<A, T> {
    atomic: A,
    tracker: T,
    /// The word's name and the execution's log, when tracing
    /// (`SHMSG_MODEL_TRACE`, see [`trace`]).
    name: Name,
    log: Option<(Arc<Log>, usize)>,
}

impl<A: ModelAtomic, T: Tracker> ModelWord<A, T> {
    fn new(name: Name, log: &Option<(Arc<Log>, usize)>) -> Self {
        ModelWord {
            atomic: A::new(0),
            tracker: T::new(),
            name,
            log: log.clone(),
        }
    }

    fn record(&self, op: impl FnOnce(Name) -> Op) -> Option<usize> {
        let (log, ring) = self.log.as_ref()?;
        Some(log.record(*ring, op(self.name)))
    }
}

/// Whether this thread is unwinding from a failure the checker reported.
/// The handles' `Drop` (detach, wake the peer) then runs while the checker
/// has no execution left (after a deadlock no thread is runnable), and a
/// model operation would panic again and abort the test process; so the
/// model memory does nothing during unwinding: loads read 0, stores and
/// wake-ups are dropped. Nothing is checked after a failure anyway.
fn unwinding() -> bool {
    std::thread::panicking()
}

impl<A: ModelAtomic, T: Tracker> Word for ModelWord<A, T> {
    fn load(&self, order: Ordering) -> u64 {
        if unwinding() {
            return 0;
        }
        let value = self.atomic.load(order);
        let _ = self.record(|n| Op::Load(n, order, value));
        value
    }
    fn store(&self, value: u64, order: Ordering) {
        if unwinding() {
            return;
        }
        // Recorded before the tracker, which reports a race by panicking
        // (the trace then ends with the store that raced), and moved after
        // whatever other threads did before the store took effect (the
        // checker may switch threads inside it).
        let line = self.record(|n| Op::Store(n, order, value));
        // A header store overwrites whatever the word held, payload included:
        // it must be ordered after every earlier read of that payload, and
        // before the store (a `Release` store publishes the write too).
        self.tracker.write();
        self.atomic.store(value, order);
        if let (Some((log, _)), Some(line)) = (&self.log, line) {
            let _ = log.move_to_end(line);
        }
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        if unwinding() {
            return Err(0);
        }
        let result = self.atomic.compare_exchange(current, new, success, failure);
        let _ = self.record(|n| Op::Cas(n, current, new, success, result));
        result
    }
    fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
        if unwinding() {
            return 0;
        }
        let old = self.atomic.fetch_add(value, order);
        let _ = self.record(|n| Op::FetchAdd(n, order, value, old));
        old
    }
}

struct Memory<A, T, X> {
    geometry: Geometry,
    /// Liveness of the processes the handles stand for, as the kernel
    /// would report it (a lock held or released): 0 alive, 1 dead. Word 0
    /// the producer role, 1 the consumer role, then one per producer slot,
    /// then one per consumer slot. Read only if `tracks_liveness`.
    liveness: Vec<ModelWord<A, T>>,
    tracks_liveness: bool,
    /// The memory holds a multi-producer ring: liveness of a role is that
    /// of its attached slots, as in production, even while none is
    /// attached ([`ModelBackend::multi_producer`]).
    slotted: bool,
    /// Every futex wait ends as if its sleep slice had passed (see
    /// [`ModelBackend::with_slice_timeouts`]).
    slice_timeouts: bool,
    /// Futex waits begun on this memory: outside the model (no ordering,
    /// no schedule of its own), for scenarios that hold a thread back
    /// until a wait has slept ([`ModelBackend::sleeps`]).
    sleeps: std::sync::atomic::AtomicUsize,
    control: [ModelWord<A, T>; 5],
    /// The attachment slots of the multi-producer rings: four words per
    /// producer slot, then four per consumer slot.
    slots: Vec<ModelWord<A, T>>,
    /// The `Data` and `Space` event words.
    events: [ModelWord<A, T>; 2],
    futexes: [X; 2],
    /// The model descriptors (eventfds) of `Data` and `Space`: a count of
    /// pending signals, and a model futex their waiters sleep on.
    signal_counts: [ModelWord<A, T>; 2],
    descriptors: [X; 2],
    data: Vec<ModelWord<A, T>>,
    /// The execution's log and this ring's number in it, when tracing.
    log: Option<(Arc<Log>, usize)>,
}

/// A ring's memory under a model checker.
pub struct ModelBackend<A, T, S: Scheduler, F> {
    memory: Arc<Memory<A, T, S::Futex>>,
    spin_limit: u32,
    /// Memory accesses left before this handle's process crashes.
    crash: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// What the trace calls the handle holding this backend: set by
    /// [`ModelBackend::labelled`], else by the first epoch word it touches
    /// (`producer`, `consumer`).
    label: std::sync::OnceLock<String>,
    _marker: PhantomData<fn() -> (S, F)>,
}

impl<A, T, S: Scheduler, F> Clone for ModelBackend<A, T, S, F> {
    fn clone(&self) -> Self {
        ModelBackend {
            memory: Arc::clone(&self.memory),
            spin_limit: self.spin_limit,
            crash: None,
            label: std::sync::OnceLock::new(),
            _marker: PhantomData,
        }
    }
}

/// The panic payload of a modelled crash (see
/// [`ModelBackend::crashing_after`]).
pub struct Crashed;

/// A liveness the model tracks: a role (single-producer ring) or a slot.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Role(Role),
    Slot(Role, usize),
}

impl Peer {
    fn index(self) -> usize {
        match self {
            Peer::Role(Role::Producer) => 0,
            Peer::Role(Role::Consumer) => 1,
            Peer::Slot(Role::Producer, i) => 2 + i,
            Peer::Slot(Role::Consumer, i) => 2 + MAX_PRODUCERS + i,
        }
    }
}

/// Runs `body` as a process that may crash: returns `true` if it crashed
/// (a [`Crashed`] panic from a backend made by
/// [`ModelBackend::crashing_after`]); any other panic goes on.
pub fn may_crash(body: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(()) => false,
        Err(payload) if payload.is::<Crashed>() => true,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Keeps modelled crashes quiet: the default panic hook would print each.
pub fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Crashed>() {
                default(info)
            }
        }));
    });
}

fn event_index(which: Event) -> usize {
    match which {
        Event::Data => 0,
        Event::Space => 1,
    }
}

impl<A: ModelAtomic, T: Tracker, S: Scheduler, F: FaultSet> ModelBackend<A, T, S, F> {
    /// Fresh, zeroed memory for a ring of `geometry` whose head and tail start
    /// at `initial_position`. Call inside the model checker's closure.
    pub fn new(geometry: Geometry, initial_position: u64) -> Self {
        let log = Log::for_new_ring(S::thread);
        let control = [
            ModelWord::new(Name::Tail, &log),
            ModelWord::new(Name::ProducerEpoch, &log),
            ModelWord::new(Name::Head, &log),
            ModelWord::new(Name::ConsumerEpoch, &log),
            ModelWord::new(Name::ReadCursor, &log),
        ];
        let memory = Memory {
            geometry,
            liveness: (0..2 + MAX_PRODUCERS + MAX_CONSUMERS)
                .map(|i| ModelWord::new(Name::Alive(i), &log))
                .collect(),
            tracks_liveness: false,
            slotted: false,
            slice_timeouts: false,
            sleeps: std::sync::atomic::AtomicUsize::new(0),
            control,
            slots: (0..4 * MAX_PRODUCERS + 4 * MAX_CONSUMERS)
                .map(|i| {
                    let name = if i < 4 * MAX_PRODUCERS {
                        Name::Slot(Role::Producer, i / 4, i % 4)
                    } else {
                        let i = i - 4 * MAX_PRODUCERS;
                        Name::Slot(Role::Consumer, i / 4, i % 4)
                    };
                    ModelWord::new(name, &log)
                })
                .collect(),
            events: [
                ModelWord::new(Name::Event(0), &log),
                ModelWord::new(Name::Event(1), &log),
            ],
            futexes: [S::Futex::new(), S::Futex::new()],
            signal_counts: [
                ModelWord::new(Name::Signals(0), &log),
                ModelWord::new(Name::Signals(1), &log),
            ],
            descriptors: [S::Futex::new(), S::Futex::new()],
            data: (0..geometry.capacity() / 8)
                .map(|i| ModelWord::new(Name::Data(8 * i), &log))
                .collect(),
            log,
        };
        let backend = ModelBackend {
            memory: Arc::new(memory),
            spin_limit: u32::MAX,
            crash: None,
            label: std::sync::OnceLock::new(),
            _marker: PhantomData,
        };
        backend
            .control(Control::Head)
            .store(initial_position, Ordering::Relaxed);
        backend
            .control(Control::Tail)
            .store(initial_position, Ordering::Relaxed);
        backend
            .control(Control::ReadCursor)
            .store(initial_position, Ordering::Relaxed);
        backend
    }

    /// The same memory, with waits that spin at most `limit` polls before
    /// they sleep (0: sleep at once; `u32::MAX`: never sleep). Set it on the
    /// backend before the handles are attached: each handle reads it once.
    pub fn with_spin_limit(mut self, limit: u32) -> Self {
        self.spin_limit = limit;
        self
    }

    fn word(&self, offset: usize) -> &ModelWord<A, T> {
        &self.memory.data[offset / 8]
    }

    /// How many futex waits have begun on this memory. Read outside the
    /// model: a thread that yields until it grows waits for a sleep
    /// without acquiring anything from the sleeper.
    pub fn sleeps(&self) -> usize {
        self.memory.sleeps.load(Ordering::Relaxed)
    }

    /// The same memory, holding a multi-producer ring: with liveness
    /// tracked, a role is alive only through an attached, live slot, as
    /// production's liveness test says (without this, a role none of whose
    /// slots was ever attached counts as a single-producer ring's, decided
    /// by its role's liveness word alone).
    pub fn multi_producer(self) -> Self {
        let mut memory = Arc::try_unwrap(self.memory)
            .unwrap_or_else(|_| panic!("multi_producer before cloning"));
        memory.slotted = true;
        ModelBackend {
            memory: Arc::new(memory),
            ..self
        }
    }

    /// The same memory, with liveness tracked: `peer_alive` and
    /// `slot_alive` read the liveness words ([`ModelBackend::mark`]).
    /// Set it before cloning.
    pub fn tracking_liveness(self) -> Self {
        let mut memory = Arc::try_unwrap(self.memory)
            .unwrap_or_else(|_| panic!("tracking_liveness before cloning"));
        memory.tracks_liveness = true;
        ModelBackend {
            memory: Arc::new(memory),
            ..self
        }
    }

    /// The same memory, where every futex wait yields and returns, as a
    /// production sleep does when its slice ends without a wake-up: what a
    /// waiter does after a slice (look for a gone peer) then runs while
    /// its peers are alive and busy, not only after a death. Lost wake-ups
    /// go unseen in such a model (`loom_wait` checks those). Set it before
    /// cloning.
    pub fn with_slice_timeouts(self) -> Self {
        let mut memory = Arc::try_unwrap(self.memory)
            .unwrap_or_else(|_| panic!("with_slice_timeouts before cloning"));
        memory.slice_timeouts = true;
        ModelBackend {
            memory: Arc::new(memory),
            ..self
        }
    }

    /// A handle on the same memory whose process crashes just before its
    /// `steps`-th memory access (a control, event or data word, or a
    /// payload copy): it panics with [`Crashed`], and while that unwinds the
    /// memory drops every store and wake-up, so the handles' `Drop` does
    /// nothing, as after a SIGKILL. Catch it with [`may_crash`].
    pub fn crashing_after(&self, steps: usize) -> Self {
        ModelBackend {
            crash: Some(Arc::new(std::sync::atomic::AtomicUsize::new(steps))),
            ..self.clone()
        }
    }

    /// Records that `peer` is dead (`dead`) or alive again (a new holder):
    /// what the kernel's lock would say. A death also wakes every sleeper,
    /// as the end of its sleep slice eventually would (the model futex has
    /// no timeout).
    pub fn mark(&self, peer: Peer, dead: bool) {
        self.memory.liveness[peer.index()].store(u64::from(dead), Ordering::Release);
        if dead {
            self.futex_wake(Event::Data);
            self.futex_wake(Event::Space);
            for descriptor in &self.memory.descriptors {
                descriptor.wake();
            }
        }
    }

    fn any_dead(&self) -> bool {
        self.memory.tracks_liveness
            && self
                .memory
                .liveness
                .iter()
                .any(|word| word.load(Ordering::Acquire) != 0)
    }

    fn alive(&self, peer: Peer) -> bool {
        !self.memory.tracks_liveness
            || self.memory.liveness[peer.index()].load(Ordering::Acquire) == 0
    }

    /// An event loop's wait on the descriptor of `which` (a model eventfd in
    /// semaphore mode): blocks until a signal is pending, then consumes
    /// one and returns `true`. With slice timeouts, or once a modelled
    /// process is dead, it yields and returns `false` instead, as a
    /// production wait does when its slice ends without a signal. A lost
    /// wake-up among live peers blocks for good: the checker reports it.
    pub fn wait_descriptor(&self, which: Event) -> bool {
        let i = event_index(which);
        let count = &self.memory.signal_counts[i];
        self.record(Op::DescriptorWait(Name::Signals(i)));
        loop {
            let pending = count.load(Ordering::SeqCst);
            if pending > 0 {
                if count
                    .compare_exchange(pending, pending - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    self.record(Op::DescriptorWoken(Name::Signals(i), true));
                    return true;
                }
                continue;
            }
            if self.memory.slice_timeouts || self.any_dead() {
                S::yield_now();
                self.record(Op::DescriptorWoken(Name::Signals(i), false));
                return false;
            }
            self.memory.descriptors[i]
                .wait(|| count.load(Ordering::SeqCst) == 0 && !self.any_dead());
        }
    }

    /// The same memory, for a handle the trace calls `label`.
    pub fn labelled(&self, label: &str) -> Self {
        let backend = self.clone();
        let _ = backend.label.set(label.to_string());
        backend
    }

    /// Tells the trace that the running thread acts through this backend.
    fn act(&self) {
        if let Some((log, ring)) = &self.memory.log {
            log.act(*ring, self.label.get().map_or("", String::as_str));
        }
    }

    fn record(&self, op: Op) -> usize {
        match &self.memory.log {
            Some((log, ring)) => {
                self.act();
                log.record(*ring, op)
            }
            None => usize::MAX,
        }
    }

    /// A payload copy's first line, moved to where its first word was
    /// copied (the checker may switch threads before that).
    fn started(&self, start: usize) -> usize {
        match &self.memory.log {
            Some((log, _)) if start != usize::MAX => log.move_to_end(start),
            _ => start,
        }
    }

    fn finish(&self, start: usize, done: Op) {
        if let Some((log, ring)) = &self.memory.log {
            log.finish(*ring, start, done);
        }
    }

    /// One step of a crashing handle (see [`ModelBackend::crashing_after`]).
    fn step(&self) {
        if let Some(left) = &self.crash
            && !unwinding()
            && left.fetch_sub(1, Ordering::Relaxed) == 0
        {
            let _ = self.record(Op::Crash);
            std::panic::panic_any(Crashed);
        }
    }
}

// SAFETY: `data` has `capacity / 8` words, and payload byte `i` is byte
// `i % 8` of word `i / 8`, the same word `data_word(i / 8)` returns.
unsafe impl<A: ModelAtomic, T: Tracker, S: Scheduler, F: FaultSet> Backend
    for ModelBackend<A, T, S, F>
{
    type Word = ModelWord<A, T>;
    const FAULTS: Faults = F::FAULTS;

    fn capacity(&self) -> usize {
        self.memory.geometry.capacity()
    }

    fn max_message(&self) -> usize {
        self.memory.geometry.max_message()
    }

    fn control(&self, which: Control) -> &Self::Word {
        self.step();
        if self.memory.log.is_some() {
            let role = match which {
                Control::ProducerEpoch => Some("producer"),
                Control::ConsumerEpoch => Some("consumer"),
                Control::Slot {
                    role,
                    word: SlotWord::Epoch,
                    ..
                } => Some(match role {
                    Role::Producer => "producer",
                    Role::Consumer => "consumer",
                }),
                _ => None,
            };
            if let Some(role) = role {
                let _ = self.label.set(role.to_string());
            }
            self.act();
        }
        let index = match which {
            Control::Tail => 0,
            Control::ProducerEpoch => 1,
            Control::Head => 2,
            Control::ConsumerEpoch => 3,
            Control::ReadCursor => 4,
            Control::Slot { role, index, word } => {
                let word = match word {
                    SlotWord::Epoch => 0,
                    SlotWord::Pid => 1,
                    SlotWord::Claim => 2,
                    SlotWord::ClaimLen => 3,
                };
                let at = match role {
                    Role::Producer => {
                        assert!(index < MAX_PRODUCERS);
                        4 * index + word
                    }
                    Role::Consumer => {
                        assert!(index < MAX_CONSUMERS);
                        4 * MAX_PRODUCERS + 4 * index + word
                    }
                };
                return &self.memory.slots[at];
            }
        };
        &self.memory.control[index]
    }

    fn data_word(&self, index: usize) -> &Self::Word {
        self.step();
        self.act();
        &self.memory.data[index]
    }

    unsafe fn write(&self, offset: usize, src: &[u8]) {
        self.step();
        let mut start = self.record(Op::Write(offset, src.len(), false));
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            let word = self.word(offset + 8 * i);
            word.tracker.write();
            word.atomic
                .store(u64::from_le_bytes(bytes), Ordering::Relaxed);
            if i == 0 {
                start = self.started(start);
            }
        }
        self.finish(start, Op::Write(offset, src.len(), true));
    }

    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        self.step();
        let mut start = self.record(Op::Read(offset, len, false));
        let mut out = vec![0u8; len];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let word = self.word(offset + 8 * i);
            word.tracker.read();
            let bytes = word.atomic.load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
            if i == 0 {
                start = self.started(start);
            }
        }
        self.finish(start, Op::Read(offset, len, true));
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

    fn spin(&self) {
        S::yield_now()
    }

    fn spin_limit(&self) -> u32 {
        self.spin_limit
    }

    fn fence(&self) {
        if !unwinding() {
            S::fence();
            let _ = self.record(Op::Fence);
        }
    }

    fn event(&self, which: Event) -> &Self::Word {
        self.step();
        self.act();
        &self.memory.events[event_index(which)]
    }

    fn futex_wait(&self, which: Event, expected: u32, _timeout: Duration) {
        SLEEPS.fetch_add(1, Ordering::Relaxed);
        self.memory.sleeps.fetch_add(1, Ordering::Relaxed);
        // A modelled process is dead: nobody may ever wake this sleeper, and
        // in production the end of its sleep slice would; so it yields and
        // returns, as after a slice. The test is repeated under the futex's
        // lock, which `mark` takes to wake sleepers after it records a
        // death, so no death slips between the test and the sleep. (A lost
        // wake-up among live peers still blocks for good: the checker
        // reports it.)
        if self.memory.slice_timeouts || self.any_dead() {
            S::yield_now();
            return;
        }
        let word = self.event(which);
        let name = Name::Event(event_index(which));
        self.record(Op::FutexWait(name, expected));
        self.memory.futexes[event_index(which)]
            .wait(|| epoch(word.load(Ordering::Acquire)) == expected && !self.any_dead());
        self.record(Op::FutexWoken(name));
    }

    fn futex_wake(&self, which: Event) {
        if !unwinding() {
            self.record(Op::FutexWake(Name::Event(event_index(which))));
            self.memory.futexes[event_index(which)].wake()
        }
    }

    fn signal(&self, which: Event, count: u32) {
        if !unwinding() {
            let i = event_index(which);
            self.record(Op::Signal(Name::Signals(i), count));
            self.memory.signal_counts[i].fetch_add(u64::from(count), Ordering::SeqCst);
            self.memory.descriptors[i].wake()
        }
    }

    fn peer_alive(&self, role: Role) -> bool {
        // Peers are threads of the model; they detach through their epochs,
        // unless the model crashes them (`mark`). As in production, for a
        // multi-producer ring: some attached slot of `role` is alive.
        if !self.alive(Peer::Role(role)) {
            return false;
        }
        if !self.memory.tracks_liveness {
            return true;
        }
        let slots = match role {
            Role::Producer => MAX_PRODUCERS,
            Role::Consumer => MAX_CONSUMERS,
        };
        let epochs: Vec<u64> = (0..slots)
            .map(|index| {
                self.control(Control::Slot {
                    role,
                    index,
                    word: SlotWord::Epoch,
                })
                .load(Ordering::Acquire)
            })
            .collect();
        // A single-producer ring uses no slots: the role's word decides.
        (!self.memory.slotted && epochs.iter().all(|&e| e == 0))
            || epochs
                .iter()
                .enumerate()
                .any(|(i, &e)| e % 2 == 1 && self.alive(Peer::Slot(role, i)))
    }

    fn slot_alive(&self, role: Role, index: usize) -> bool {
        self.alive(Peer::Slot(role, index))
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
fault!(NoTailRecovery, no_tail_recovery);
fault!(DetachLiveConsumer, detach_live_consumer);
fault!(DetachByStore, detach_by_store);
fault!(RecoverLiveConsumer, recover_live_consumer);
fault!(NoReleaseFinish, no_release_finish);
fault!(RelaxedPoll, relaxed_poll);
fault!(RelaxedRelease, relaxed_release);
fault!(FullCheckOffByOne, full_check_off_by_one);
fault!(SkipNextClear, skip_next_clear);
fault!(CommitBeforePayload, commit_before_payload);
fault!(NoDrainOnDisconnect, no_drain_on_disconnect);
fault!(NoWaiterFence, no_waiter_fence);
fault!(NotifyBeforePublish, notify_before_publish);
fault!(ClaimWithoutCas, claim_without_cas);
fault!(ReleaseOutOfOrder, release_out_of_order);
fault!(ReleaseWithoutZeroing, release_without_zeroing);
fault!(ArmWithoutAnnounce, arm_without_announce);
fault!(WakeFutexOnly, wake_futex_only);
fault!(NoHandBackSignal, no_hand_back_signal);
fault!(RelaxedSlotEpoch, relaxed_slot_epoch);
fault!(RecoverByClaim, recover_by_claim);
fault!(KeepLostClaim, keep_lost_claim);

/// Everything a single-producer ring's `consumer` receives until
/// `Disconnected`; any other error fails the model.
pub fn receive_all<B: Backend>(consumer: &mut shmsg::shm::spsc::Consumer<B>) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = Vec::new();
    loop {
        match consumer.recv(&mut buf) {
            Ok(_) => received.push(buf.clone()),
            Err(shmsg::Error::Disconnected) => return received,
            Err(other) => panic!("consumer: {other}"),
        }
    }
}

/// The payload of message `seq` with `len` bytes: a pattern that differs for
/// every (seq, byte index), so a torn, stale or misplaced byte is visible.
pub fn payload(seq: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(131).wrapping_add(i.wrapping_mul(7)) % 251) as u8 ^ 0x5a)
        .collect()
}

/// Where a property case's positions start: `8 * start` from 0, or, near
/// the end, `8 * (start + 1)` bytes before the positions wrap past
/// `u64::MAX`. Written without overflow for every `start` (an earlier
/// `u64::MAX - 8 * start + 1` overflowed for `start == 0`).
pub fn initial_position(near_end: bool, start: u64) -> u64 {
    if near_end {
        (8 * (start + 1)).wrapping_neg()
    } else {
        8 * start
    }
}

/// The value of the environment variable `name` as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
