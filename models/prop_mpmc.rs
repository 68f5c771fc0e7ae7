//! Property tests of the multi-producer rings on the production backend
//! (`shmsg::shm::Mapped` over the heap, the same code as over a region).
//!
//! * `ring_matches_reference`: a state machine of operations by three
//!   producer handles and (for `Mpmc`) two consumer handles: copying and
//!   in-place sends of arbitrary sizes (too large included, and in-place
//!   sends that write less than they reserve, or claim to write more),
//!   copying and in-place receives, detaching and re-attaching any handle.
//!   The reference is a queue per producer plus the order in which the ring
//!   interleaves them (one thread: the order of the sends). Positions start
//!   anywhere, including just below `u64::MAX`. Every received message must
//!   be the next one, byte for byte; `Empty`, `Disconnected` and
//!   `MessageTooLarge` must occur exactly when the reference says; `Full`
//!   only when an independent bound allows it.
//! * `dead_producer_claims_are_skipped`: producers that die in the middle of
//!   a claim (before and after a wrap, with the record after the wrap
//!   committed or not) do not wedge the consumer: it pads their claims and
//!   delivers everything else, in order.
//! * `a_dead_producers_slot_is_taken_over_once_its_claim_is_settled`:
//!   taking over a dead producer's slot waits for its claim to be
//!   committed or padded.
//! * `a_release_cut_short_is_finished_by_the_next_consumer`: an `Mpsc`
//!   consumer that takes over a slot finishes its dead holder's release.
//! * `a_panicking_fill_leaves_padding`: an in-place send whose closure
//!   panics commits its claim as padding, which consumers skip.
//! * `an_entry_held_by_a_gone_consumer_is_handed_back_for_it`,
//!   `an_entry_held_by_a_live_consumer_is_left_to_it`: an `Mpmc` entry at
//!   the head held by a consumer that left without handing it back is
//!   handed back for it (and not delivered again); one held by a live
//!   consumer is left to it, however long the others wait.
//! * `a_recovery_left_half_done_is_finished`,
//!   `a_header_not_the_entrys_is_left_alone`: the hand-back for a gone
//!   consumer is decided on the entry's header word; a gone recoverer's
//!   mark is taken over, a zero header needs only the head moved, a live
//!   recoverer's mark or a later lap's record is left alone;
//!   `gone_claims_that_disagree_are_left_alone`: so are gone consumers'
//!   claims that disagree on the entry's length.
//! * `a_full_ring_with_every_entry_taken_reads_empty`,
//!   `a_full_ring_held_by_gone_consumers_is_handed_back_by_a_waiting_one`:
//!   four consumers of a ring that three entries fill; with the three
//!   entries taken, the fourth finds nothing to receive (not a corrupt
//!   header) and leaves live holders alone, and hands back the entries of
//!   holders that are gone while it waits for data.
//! * `a_claim_that_never_moved_the_tail_is_not_recovered`: a producer that
//!   died between writing its claim words and its compare-and-swap claimed
//!   nothing; its claim at the tail is neither padded nor `Corrupt`.
//! * `a_gone_consumers_impossible_claim_is_corrupt`,
//!   `a_dead_producers_impossible_claim_is_corrupt`: the claim lengths that
//!   recovery reads from the region are checked: an impossible one is
//!   `Corrupt`, refused before anything is written (these kill logic
//!   mutants of `src/shm/mpmc/consumer/recover.rs` that the state machine
//!   never reaches: `models/README.md`, "Logic mutants").
//! * `the_watchdog_detaches_dead_consumers_only`: `detach_dead_consumers`
//!   detaches the attached, dead consumers, once each, and no other.
//! * Pure: header decoding accepts or refuses any word without panicking.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256; deep tier 4096).
//! Failures are saved in `prop_mpmc.proptest-regressions`; commit it.

mod common;

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FaultSet, NoFault, ReleaseWithoutZeroing, initial_position, payload};
use proptest::prelude::*;
use shmsg::shm::Geometry;
use shmsg::shm::Mapped;
use shmsg::shm::layout::{RingKind, record_size};
use shmsg::shm::mpmc::{Consumer, Entry, Producer, decode};
use shmsg::shm::wait::SLICE;
use shmsg::sync::{Backend, Control, Event, Faults, SlotWord};
use shmsg::{Error, Role};

/// The production backend with a seeded defect `F`, and producer and
/// consumer slots that the test can declare dead.
struct Faulty<F> {
    memory: Mapped,
    /// Dead producer slots.
    dead: Arc<Mutex<Vec<usize>>>,
    /// Dead consumer slots.
    dead_consumers: Arc<Mutex<Vec<usize>>>,
    _fault: PhantomData<fn() -> F>,
}

impl<F> Clone for Faulty<F> {
    fn clone(&self) -> Self {
        Faulty {
            memory: self.memory.clone(),
            dead: Arc::clone(&self.dead),
            dead_consumers: Arc::clone(&self.dead_consumers),
            _fault: PhantomData,
        }
    }
}

// SAFETY: every method forwards to `Mapped`, which upholds the contract.
unsafe impl<F: FaultSet> Backend for Faulty<F> {
    type Word = AtomicU64;
    const FAULTS: Faults = F::FAULTS;
    fn capacity(&self) -> usize {
        self.memory.capacity()
    }
    fn max_message(&self) -> usize {
        self.memory.max_message()
    }
    fn control(&self, which: Control) -> &AtomicU64 {
        self.memory.control(which)
    }
    fn data_word(&self, index: usize) -> &AtomicU64 {
        self.memory.data_word(index)
    }
    unsafe fn write(&self, offset: usize, src: &[u8]) {
        // SAFETY: forwarded caller contract.
        unsafe { self.memory.write(offset, src) }
    }
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { self.memory.read(offset, dst, len) }
    }
    unsafe fn write_in_place<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        // SAFETY: forwarded caller contract.
        unsafe { self.memory.write_in_place(offset, len, f) }
    }
    unsafe fn read_in_place<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: forwarded caller contract.
        unsafe { self.memory.read_in_place(offset, len, f) }
    }
    fn spin(&self) {
        self.memory.spin()
    }
    fn spin_limit(&self) -> u32 {
        self.memory.spin_limit()
    }
    fn fence(&self) {
        self.memory.fence()
    }
    fn event(&self, which: Event) -> &AtomicU64 {
        self.memory.event(which)
    }
    fn futex_wait(&self, which: Event, expected: u32, timeout: Duration) {
        self.memory.futex_wait(which, expected, timeout)
    }
    fn futex_wake(&self, which: Event) {
        self.memory.futex_wake(which)
    }
    fn signal(&self, which: Event, count: u32) {
        self.memory.signal(which, count)
    }
    fn descriptor(&self, which: Event) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.memory.descriptor(which)
    }
    fn peer_alive(&self, role: Role) -> bool {
        match role {
            Role::Producer => (0..shmsg::shm::layout::MAX_PRODUCERS).any(|index| {
                let epoch = self.control(Control::Slot {
                    role,
                    index,
                    word: shmsg::sync::SlotWord::Epoch,
                });
                epoch.load(std::sync::atomic::Ordering::Acquire) % 2 == 1
                    && self.slot_alive(role, index)
            }),
            Role::Consumer => true,
        }
    }
    fn slot_alive(&self, role: Role, index: usize) -> bool {
        let dead = match role {
            Role::Producer => &self.dead,
            Role::Consumer => &self.dead_consumers,
        };
        !dead.lock().unwrap().contains(&index)
    }
}

fn faulty<F>(geometry: Geometry, initial: u64) -> Faulty<F> {
    Faulty {
        memory: Mapped::heap(geometry, initial).unwrap(),
        dead: Arc::new(Mutex::new(Vec::new())),
        dead_consumers: Arc::new(Mutex::new(Vec::new())),
        _fault: PhantomData,
    }
}

const PRODUCERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Copying send of `len` bytes by producer `p`.
    Send { p: usize, len: usize },
    /// In-place send by `p` reserving `len` bytes and reporting `written`
    /// (more than `len`: refused, the claim becomes padding).
    SendWith {
        p: usize,
        len: usize,
        written: usize,
    },
    /// Copying (`in_place` false) or in-place receive by consumer `c`.
    Recv { c: usize, in_place: bool },
    /// Detach producer `p` if attached, else attach one.
    ToggleProducer(usize),
    /// Detach consumer `c` if attached, else attach one.
    ToggleConsumer(usize),
}

fn op(max: usize) -> impl Strategy<Value = Op> {
    let p = 0..PRODUCERS;
    prop_oneof![
        4 => (p.clone(), 0..=max + 8).prop_map(|(p, len)| Op::Send { p, len }),
        2 => (p.clone(), 0..=max, 0..=8usize, any::<bool>()).prop_map(|(p, len, d, over)| Op::SendWith {
            p,
            len,
            written: if over && d > 0 { len + d } else { len.saturating_sub(d) },
        }),
        5 => (0..2usize, any::<bool>()).prop_map(|(c, in_place)| Op::Recv { c, in_place }),
        1 => p.prop_map(Op::ToggleProducer),
        1 => (0..2usize).prop_map(Op::ToggleConsumer),
    ]
}

fn case() -> impl Strategy<Value = (Geometry, u64, bool, Vec<Op>)> {
    (6u32..=9, any::<bool>(), 0u64..4096, any::<bool>()).prop_flat_map(
        |(log_capacity, near_end, start, mpmc)| {
            let capacity = 1usize << log_capacity;
            let limit = Geometry::max_message_for(capacity);
            (1..=limit).prop_flat_map(move |max| {
                let geometry = Geometry::new(capacity, max).unwrap();
                let initial = initial_position(near_end, start);
                proptest::collection::vec(op(max), 1..200)
                    .prop_map(move |ops| (geometry, initial, mpmc, ops))
            })
        },
    )
}

/// A message and the producer that sent it; `None` for the padding of a
/// refused in-place send.
type Sent = Option<(usize, Vec<u8>)>;

/// What the ring holds, as the reference sees it: the entries in ring
/// order, each a message (with its producer) or the padding of a refused
/// in-place send, with the bytes it claimed.
struct Reference {
    entries: VecDeque<(Sent, usize)>,
    /// Each producer's messages not yet received, in order.
    queues: Vec<VecDeque<Vec<u8>>>,
    capacity: usize,
}

impl Reference {
    fn messages(&self) -> usize {
        self.entries.iter().filter(|(m, _)| m.is_some()).count()
    }

    /// Each entry covers its claim plus at most as much again of padding
    /// before a wrap; a new claim needs as much again too.
    fn may_be_full(&self, claim: usize) -> bool {
        let pending: usize = self.entries.iter().map(|(_, bytes)| 2 * bytes).sum();
        !self.entries.is_empty() && pending + 2 * claim > self.capacity
    }
}

fn run<F: FaultSet>(
    geometry: Geometry,
    initial: u64,
    mpmc: bool,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let kind = if mpmc { RingKind::Mpmc } else { RingKind::Mpsc };
    let memory = faulty::<F>(geometry, initial);
    let mut producers: Vec<Option<Producer<Faulty<F>>>> = (0..PRODUCERS)
        .map(|_| Some(Producer::with_backend(memory.clone()).unwrap()))
        .collect();
    let mut consumers: Vec<Option<Consumer<Faulty<F>>>> = vec![
        Some(Consumer::with_backend(memory.clone(), kind).unwrap()),
        None,
    ];
    if mpmc {
        consumers[1] = Some(Consumer::with_backend(memory.clone(), kind).unwrap());
    } else {
        prop_assert!(matches!(
            Consumer::with_backend(memory.clone(), kind),
            Err(Error::RoleTaken(Role::Consumer))
        ));
    }
    let mut reference = Reference {
        entries: VecDeque::new(),
        queues: vec![VecDeque::new(); PRODUCERS],
        capacity: geometry.capacity(),
    };
    let max = geometry.max_message();
    let mut seq = 0;
    for op in ops {
        match op {
            Op::Send { p, len } | Op::SendWith { p, len, .. } => {
                let Some(producer) = producers[p].as_mut() else {
                    continue;
                };
                let written = match op {
                    Op::SendWith { written, .. } => written,
                    _ => len,
                };
                seq += 1;
                let message = payload(seq, written);
                let result = match op {
                    Op::Send { .. } => producer.try_send(&message),
                    _ => producer
                        .try_send_with(len, |buf| {
                            let n = written.min(len);
                            buf[..n].copy_from_slice(&message[..n]);
                            written
                        })
                        .map(drop),
                };
                let no_consumer = consumers.iter().all(Option::is_none);
                match result {
                    Ok(()) => {
                        prop_assert!(len <= max && written <= len && !no_consumer);
                        reference
                            .entries
                            .push_back((Some((p, message.clone())), record_size(len)));
                        reference.queues[p].push_back(message);
                    }
                    Err(Error::MessageTooLarge { .. }) if len > max => {}
                    Err(Error::MessageTooLarge { .. }) if written > len => {
                        reference.entries.push_back((None, record_size(len)));
                    }
                    Err(Error::Disconnected) => prop_assert!(no_consumer && len <= max),
                    Err(Error::Full) => prop_assert!(
                        reference.may_be_full(record_size(len)),
                        "full with {} entries",
                        reference.entries.len()
                    ),
                    Err(other) => prop_assert!(false, "send: {other}"),
                }
            }
            Op::Recv { c, in_place } => {
                let Some(consumer) = consumers[c].as_mut() else {
                    continue;
                };
                let mut buf = Vec::new();
                let result = if in_place {
                    consumer.try_recv_with(|b| buf = b.to_vec())
                } else {
                    consumer.try_recv(&mut buf).map(drop)
                };
                match result {
                    Ok(()) => {
                        while let Some((None, _)) = reference.entries.front() {
                            reference.entries.pop_front();
                        }
                        let Some((Some((p, expected)), _)) = reference.entries.pop_front() else {
                            return Err(TestCaseError::fail("phantom message"));
                        };
                        prop_assert_eq!(&buf, &expected);
                        prop_assert_eq!(reference.queues[p].pop_front(), Some(expected));
                    }
                    Err(Error::Empty) => {
                        prop_assert_eq!(reference.messages(), 0);
                        prop_assert!(producers.iter().any(Option::is_some));
                    }
                    Err(Error::Disconnected) => {
                        prop_assert_eq!(reference.messages(), 0);
                        prop_assert!(producers.iter().all(Option::is_none));
                    }
                    Err(other) => prop_assert!(false, "recv: {other}"),
                }
            }
            Op::ToggleProducer(p) => {
                producers[p] = match producers[p].take() {
                    Some(_) => None,
                    None => Some(Producer::with_backend(memory.clone()).unwrap()),
                };
            }
            Op::ToggleConsumer(c) => {
                consumers[c] = match consumers[c].take() {
                    Some(_) => None,
                    None => match Consumer::with_backend(memory.clone(), kind) {
                        Ok(consumer) => Some(consumer),
                        Err(Error::RoleTaken(Role::Consumer)) => {
                            prop_assert!(!mpmc && consumers.iter().any(Option::is_some));
                            None
                        }
                        Err(other) => return Err(TestCaseError::fail(format!("attach: {other}"))),
                    },
                };
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn ring_matches_reference((geometry, initial, mpmc, ops) in case()) {
        run::<NoFault>(geometry, initial, mpmc, ops)?;
    }

    #[test]
    fn decode_never_panics(word in any::<u64>(), position in any::<u64>(), log in 6u32..=12) {
        let capacity = 1usize << log;
        let geometry = Geometry::new(capacity, Geometry::max_message_for(capacity)).unwrap();
        let position = position & !7;
        if let Ok(entry) = decode(word, position, geometry) {
            let end = (position as usize & (capacity - 1))
                + match entry {
                    Entry::Empty => 0,
                    Entry::Pad(bytes) => bytes,
                    Entry::Record(len) => record_size(len),
                };
            prop_assert!(end <= capacity);
        }
    }
}

/// The seeded defect must be found: without zeroing, a stale header of an
/// earlier lap is read as corrupt (or a stale record as a message).
#[test]
fn seeded_release_without_zeroing_is_caught() {
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 256,
        failure_persistence: None,
        ..Default::default()
    });
    let result = runner.run(&case(), |(geometry, initial, mpmc, ops)| {
        run::<ReleaseWithoutZeroing>(geometry, initial, mpmc, ops)
    });
    assert!(result.is_err(), "proptest accepted a seeded defect");
}

/// Producers that die in the middle of a claim: the consumer pads their
/// claims after a sleep slice and delivers everything else in order.
#[test]
fn dead_producer_claims_are_skipped() {
    // (start, sizes before the dead claim, dead claim size): the dead claim
    // fits before the end, or wraps.
    for (start, before, dead_len) in [(0u64, 1usize, 20usize), (u64::MAX - 63, 2, 40)] {
        let geometry = Geometry::new(128, 40).unwrap();
        let memory = faulty::<NoFault>(geometry, start);
        let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        let mut alive = Producer::with_backend(memory.clone()).unwrap();
        let doomed = Producer::with_backend(memory.clone()).unwrap();
        let mut sent = Vec::new();
        for i in 0..before {
            let m = payload(i, 16);
            alive.send(&m).unwrap();
            sent.push(m);
        }
        memory.dead.lock().unwrap().push(doomed.slot());
        doomed.abandon_claim(dead_len).unwrap();
        let m = payload(99, 5);
        alive.send(&m).unwrap();
        sent.push(m);
        let mut buf = Vec::new();
        for expected in &sent {
            consumer
                .recv_timeout(&mut buf, Duration::from_secs(5))
                .unwrap();
            assert_eq!(&buf, expected);
        }
        drop(alive);
        // Only the dead producer is left: `Disconnected` once drained.
        assert!(matches!(
            consumer.recv_timeout(&mut buf, Duration::from_secs(5)),
            Err(Error::Disconnected)
        ));
    }
}

/// A ring of 1024 bytes (messages up to 64) of `kind` from position 0, its
/// consumer and two producers.
#[allow(clippy::type_complexity)]
fn one_consumer_two_producers(
    kind: RingKind,
) -> (
    Faulty<NoFault>,
    Consumer<Faulty<NoFault>>,
    Producer<Faulty<NoFault>>,
    Producer<Faulty<NoFault>>,
) {
    let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), 0);
    let consumer = Consumer::with_backend(memory.clone(), kind).unwrap();
    let a = Producer::with_backend(memory.clone()).unwrap();
    let b = Producer::with_backend(memory.clone()).unwrap();
    (memory, consumer, a, b)
}

/// A producer whose in-place fill panics leaves padding, not a hole: both
/// kinds' consumers skip it and receive what the producers send next, and
/// another producer's message sent meanwhile is not held up.
#[test]
fn a_panicking_fill_leaves_padding() {
    for kind in [RingKind::Mpsc, RingKind::Mpmc] {
        let (_memory, mut consumer, mut a, mut b) = one_consumer_two_producers(kind);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            a.try_send_with(32, |payload| {
                payload[..4].copy_from_slice(b"torn");
                b.send(b"meanwhile").unwrap();
                panic!("the fill fails");
            })
        }));
        assert!(panicked.is_err());
        a.send(b"after").unwrap();
        let mut buf = Vec::new();
        for expected in [&b"meanwhile"[..], b"after"] {
            consumer.try_recv(&mut buf).unwrap();
            assert_eq!(buf, expected, "{kind:?}");
        }
        assert!(matches!(consumer.try_recv(&mut buf), Err(Error::Empty)));
    }
}

/// A producer's slot can be taken over once its last claim is settled: at
/// once when it detached, or died after committing (its record consumed),
/// and only after a consumer pads the claim when it died in the middle of
/// it.
#[test]
fn a_dead_producers_slot_is_taken_over_once_its_claim_is_settled() {
    let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), 0);
    let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
    let mut alive = Producer::with_backend(memory.clone()).unwrap();
    let mut buf = Vec::new();

    // Detached cleanly: its slot is free, its record still unread.
    let mut left = Producer::with_backend(memory.clone()).unwrap();
    let slot = left.slot();
    left.send(b"goodbye").unwrap();
    drop(left);
    let mut successor = Producer::with_backend_in_slot(memory.clone(), slot, true).unwrap();
    successor.send(b"successor").unwrap();
    drop(successor);
    for expected in [&b"goodbye"[..], b"successor"] {
        consumer.try_recv(&mut buf).unwrap();
        assert_eq!(buf, expected);
    }

    // Died after committing: its record is consumed, its slot is free.
    let mut doomed = Producer::with_backend(memory.clone()).unwrap();
    let slot = doomed.slot();
    doomed.send(b"last words").unwrap();
    memory.dead.lock().unwrap().push(slot);
    std::mem::forget(doomed);
    consumer.try_recv(&mut buf).unwrap();
    assert_eq!(buf, b"last words");
    let mut heir = Producer::with_backend_in_slot(memory.clone(), slot, true).unwrap();
    memory.dead.lock().unwrap().retain(|&dead| dead != slot);
    heir.send(b"heir").unwrap();
    consumer.try_recv(&mut buf).unwrap();
    assert_eq!(buf, b"heir");

    // Died in the middle of a claim: the slot is refused while the claim
    // is a hole, and free once the consumer has padded it.
    let doomed = Producer::with_backend(memory.clone()).unwrap();
    let slot = doomed.slot();
    memory.dead.lock().unwrap().push(slot);
    doomed.abandon_claim(16).unwrap();
    assert!(matches!(
        Producer::with_backend_in_slot(memory.clone(), slot, true),
        Err(Error::RoleTaken(Role::Producer))
    ));
    alive.send(b"after").unwrap();
    consumer
        .recv_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"after");
    Producer::with_backend_in_slot(memory.clone(), slot, true).unwrap();
}

/// An `Mpsc` consumer that died in the middle of a release (its slot's
/// claim at the head, as its hand-back writes it before zeroing the
/// record): the consumer that takes the slot over finishes the release. The
/// record counts as received, every byte of it is zeroed (a later lap must
/// read an empty header there, not the old bytes), wherever it lies (the
/// start of the data area, its middle, a lap past `u64::MAX`), and an empty
/// message (a record of one word) is finished too.
#[test]
fn a_release_cut_short_is_finished_by_the_next_consumer() {
    for (start, len) in [
        (0u64, 0usize),
        (0, 8),
        (0, 24),
        (512, 24),
        (u64::MAX - 511, 8),
    ] {
        let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), start);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let dead = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        producer.send(&vec![0xAB; len]).unwrap();
        producer.send(b"next").unwrap();
        let record = record_size(len) as u64;
        let word = |word| {
            memory.control(Control::Slot {
                role: Role::Consumer,
                index: 0,
                word,
            })
        };
        word(SlotWord::ClaimLen).store(record, SeqCst);
        word(SlotWord::Claim).store(start, SeqCst);
        std::mem::forget(dead);
        let mut heir =
            Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpsc, 0, true).unwrap();
        let mut buf = Vec::new();
        heir.try_recv(&mut buf).unwrap();
        assert_eq!(buf, b"next", "payload of {len} bytes at {start}");
        let first = (start % 1024) as usize / 8;
        for index in first..first + record as usize / 8 {
            assert_eq!(memory.data_word(index).load(SeqCst), 0, "word {index}");
        }
    }
}

/// A word of consumer slot `index` or producer slot `index`.
fn slot_word(memory: &Faulty<NoFault>, role: Role, index: usize, word: SlotWord) -> &AtomicU64 {
    memory.control(Control::Slot { role, index, word })
}

/// An `Mpmc` ring whose head entry (message 1, `first_len` bytes, at
/// position `start`) is held by a consumer that left without handing it
/// back: it took the entry, its read failed (as if its process died in the
/// middle of it), and it detached. Message 2 (16 bytes) follows. Returns
/// the memory, the other consumer and the producer; the gone consumer held
/// slot 0.
fn held_by_a_gone_consumer(
    start: u64,
    first_len: usize,
) -> (
    Faulty<NoFault>,
    Consumer<Faulty<NoFault>>,
    Producer<Faulty<NoFault>>,
) {
    let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), start);
    let mut gone = Consumer::with_backend(memory.clone(), RingKind::Mpmc).unwrap();
    let other = gone.another().unwrap();
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    producer.send(&payload(1, first_len)).unwrap();
    producer.send(&payload(2, 16)).unwrap();
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gone.try_recv_with(|_| panic!("the consumer dies holding its entry"))
    }));
    assert!(died.is_err());
    drop(gone);
    let claim = slot_word(&memory, Role::Consumer, 0, SlotWord::Claim);
    assert_eq!(claim.load(SeqCst), start, "the gone consumer's claim");
    (memory, other, producer)
}

/// `Mpmc`: an entry at the head held by a consumer that detached without
/// handing it back is handed back for it by the next consumer whose own
/// hand-back waits behind it (after a sleep slice), and is not delivered
/// again: the stream goes on, at the start of the data area, in its
/// middle, and at its end.
#[test]
fn an_entry_held_by_a_gone_consumer_is_handed_back_for_it() {
    for start in [0u64, 512, 1000, u64::MAX - 23] {
        let (_memory, mut other, mut producer) = held_by_a_gone_consumer(start, 16);
        let mut buf = Vec::new();
        other
            .recv_timeout(&mut buf, Duration::from_secs(5))
            .unwrap();
        assert_eq!(buf, payload(2, 16), "at {start}");
        producer.send(&payload(3, 40)).unwrap();
        other.try_recv(&mut buf).unwrap();
        assert_eq!(buf, payload(3, 40), "at {start}");
        assert!(matches!(other.try_recv(&mut buf), Err(Error::Empty)));
    }
}

/// The data words of the entry of `len` bytes at `start` (a ring of 1024).
fn entry_words(memory: &Faulty<NoFault>, start: u64, len: u64) -> Vec<u64> {
    (0..len / 8)
        .map(|i| {
            memory
                .data_word(((start + 8 * i) % 1024) as usize / 8)
                .load(SeqCst)
        })
        .collect()
}

/// `Mpmc`: the hand-back of a gone consumer's entry is decided on the
/// entry's header word, and each state a recovery can leave there is
/// handled: the mark of a recoverer that is gone (a slot never attached;
/// the recovering consumer's own slot, whatever the epoch says, since it
/// recovers within one call) is taken over and the entry zeroed again
/// whole; a zero header (the holder had zeroed the entry, header last, and
/// died before moving the head) needs only the head moved. Either way the
/// stream goes on and the claim is cleared.
#[test]
fn a_recovery_left_half_done_is_finished() {
    use shmsg::shm::mpmc::recovery_mark;
    // What the header says: a mark (slot, or the recovering consumer's own
    // slot and epoch if `None`), or zero (the payload zeroed too).
    let cases = [
        ("a gone recoverer's mark", Some(Some(5))),
        ("a mark in the recovering consumer's own slot", Some(None)),
        ("zero, the payload zeroed", None),
    ];
    for start in [0u64, 1000] {
        for (what, mark) in cases {
            let (memory, mut other, mut producer) = held_by_a_gone_consumer(start, 16);
            let own_epoch = slot_word(&memory, Role::Consumer, 1, SlotWord::Epoch).load(SeqCst);
            let header = match mark {
                Some(Some(slot)) => recovery_mark(start, slot, 1),
                Some(None) => recovery_mark(start, 1, own_epoch),
                None => 0,
            };
            memory
                .data_word((start % 1024) as usize / 8)
                .store(header, SeqCst);
            let payload_left = mark.is_some();
            if !payload_left {
                for i in 1..3 {
                    memory
                        .data_word(((start + 8 * i) % 1024) as usize / 8)
                        .store(0, SeqCst);
                }
            }
            let mut buf = Vec::new();
            other
                .recv_timeout(&mut buf, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{what} at {start}: {e}"));
            assert_eq!(buf, payload(2, 16), "{what} at {start}");
            assert_eq!(entry_words(&memory, start, 24), [0; 3], "{what} at {start}");
            assert_eq!(
                slot_word(&memory, Role::Consumer, 0, SlotWord::Claim).load(SeqCst),
                u64::MAX,
                "{what} at {start}: the claim"
            );
            producer.send(&payload(3, 40)).unwrap();
            other.try_recv(&mut buf).unwrap();
            assert_eq!(buf, payload(3, 40), "{what} at {start}");
            assert!(matches!(other.try_recv(&mut buf), Err(Error::Empty)));
        }
    }
}

/// `Mpmc`: a header that is neither the gone consumer's entry nor a zero
/// one is not recovered over: the mark of a recoverer that is attached and
/// alive (it is zeroing the entry), or a record of a later lap (the head
/// the recoverer read was stale). The waiting consumer's hand-back stays
/// pending through its call (three sleep slices), the header and the head
/// are left as they were; once the marking recoverer is dead, the entry is
/// recovered and the stream goes on.
#[test]
fn a_header_not_the_entrys_is_left_alone() {
    use shmsg::shm::mpmc::{encode_record, recovery_mark};
    for live_mark in [true, false] {
        let (memory, mut other, mut producer) = held_by_a_gone_consumer(0, 16);
        let recoverer = other.another().unwrap();
        let epoch = slot_word(&memory, Role::Consumer, 2, SlotWord::Epoch).load(SeqCst);
        let found = if live_mark {
            recovery_mark(0, 2, epoch)
        } else {
            encode_record(1024, 16)
        };
        memory.data_word(0).store(found, SeqCst);
        let mut buf = Vec::new();
        other
            .recv_timeout(&mut buf, shmsg::shm::wait::SLICE * 3)
            .unwrap();
        assert_eq!(buf, payload(2, 16), "its hand-back pending");
        assert_eq!(
            memory.data_word(0).load(SeqCst),
            found,
            "live mark: {live_mark}"
        );
        assert_eq!(memory.control(Control::Head).load(SeqCst), 0);
        if !live_mark {
            continue;
        }
        // The recoverer dies before it finished.
        memory.dead_consumers.lock().unwrap().push(2);
        std::mem::forget(recoverer);
        assert!(matches!(
            other.recv_timeout(&mut buf, shmsg::shm::wait::SLICE * 3),
            Err(Error::Timeout)
        ));
        assert_eq!(memory.control(Control::Head).load(SeqCst), 48);
        assert_eq!(entry_words(&memory, 0, 24), [0; 3]);
        producer.send(&payload(3, 40)).unwrap();
        other.try_recv(&mut buf).unwrap();
        assert_eq!(buf, payload(3, 40));
    }
}

/// `Mpmc`: gone consumers' claims on the head entry that disagree on its
/// length are left alone. Only a corrupt or hostile region has them (a
/// consumer that lost the race for an entry read the header the winner
/// read), and where the entry is zeroed already (its holder died after
/// zeroing it, before moving the head) the claims alone would say how far
/// to move the head. The waiting consumer's message is delivered, its
/// hand-back stays pending, and the head does not move.
#[test]
fn gone_claims_that_disagree_are_left_alone() {
    let (memory, mut other, _producer) = held_by_a_gone_consumer(0, 16);
    for i in 0..3 {
        memory.data_word(i).store(0, SeqCst);
    }
    let ghost = other.another().unwrap();
    slot_word(&memory, Role::Consumer, 2, SlotWord::ClaimLen).store(16, SeqCst);
    slot_word(&memory, Role::Consumer, 2, SlotWord::Claim).store(0, SeqCst);
    memory.dead_consumers.lock().unwrap().push(2);
    std::mem::forget(ghost);
    let mut buf = Vec::new();
    other
        .recv_timeout(&mut buf, shmsg::shm::wait::SLICE * 3)
        .unwrap();
    assert_eq!(buf, payload(2, 16));
    assert_eq!(memory.control(Control::Head).load(SeqCst), 0);
}

/// `Mpmc`: what a gone consumer's slot says about the entry it held is
/// read from the region, so an impossible claim length is
/// [`Error::Corrupt`] for the consumer that would recover it, never a
/// wrong hand-back, an access out of bounds or a hang: shorter than a
/// header, not a multiple of 8, longer than what consumers have taken
/// (`cursor - head`), past the end of the data area, or at an unaligned
/// head. The refusal changes nothing: a third message, committed but not
/// taken yet, is still there (a length reaching over it would have zeroed
/// it).
#[test]
fn a_gone_consumers_impossible_claim_is_corrupt() {
    // (start, what the slot's length becomes): the entries of 24 bytes each
    // lie at offsets 0, 24 and 48, or at 1000 and (after the wrap) 0 and 24.
    for (start, len) in [(0u64, 4u64), (0, 12), (0, 72), (0, 200), (1000, 32)] {
        let (memory, mut other, mut producer) = held_by_a_gone_consumer(start, 16);
        producer.send(&payload(3, 16)).unwrap();
        let third = ((start + 48) % 1024) as usize / 8;
        let untaken: Vec<u64> = (third..third + 3)
            .map(|i| memory.data_word(i).load(SeqCst))
            .collect();
        slot_word(&memory, Role::Consumer, 0, SlotWord::ClaimLen).store(len, SeqCst);
        let mut buf = Vec::new();
        let result = other.recv_timeout(&mut buf, Duration::from_secs(5));
        assert!(
            matches!(result, Err(Error::Corrupt { .. })),
            "claim of {len} bytes at {start}: {result:?}"
        );
        let now: Vec<u64> = (third..third + 3)
            .map(|i| memory.data_word(i).load(SeqCst))
            .collect();
        assert_eq!(now, untaken, "claim of {len} bytes at {start}: message 3");
    }
    // The head and the claim both unaligned (the claim must name the head).
    let (memory, mut other, _producer) = held_by_a_gone_consumer(0, 16);
    memory.control(Control::Head).store(4, SeqCst);
    slot_word(&memory, Role::Consumer, 0, SlotWord::Claim).store(4, SeqCst);
    let result = other.recv_timeout(&mut Vec::new(), Duration::from_secs(5));
    assert!(
        matches!(result, Err(Error::Corrupt { .. })),
        "unaligned head: {result:?}"
    );
}

/// `Mpmc`: an entry held by a consumer that is still attached and alive is
/// never handed back for it, however long another consumer's hand-back
/// waits behind it (here ten sleep slices): the holder reads its whole
/// message in place meanwhile, and both hand-backs complete afterwards.
#[test]
fn an_entry_held_by_a_live_consumer_is_left_to_it() {
    let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), 0);
    let mut holder = Consumer::with_backend(memory.clone(), RingKind::Mpmc).unwrap();
    let mut other = holder.another().unwrap();
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    producer.send(&payload(1, 16)).unwrap();
    producer.send(&payload(2, 16)).unwrap();
    let mut buf = Vec::new();
    let held = holder
        .try_recv_with(|held| {
            // The other consumer takes message 2; its hand-back waits for ours.
            let got = other.recv_timeout(&mut buf, shmsg::shm::wait::SLICE * 10);
            assert_eq!(got.unwrap(), 16);
            held.to_vec()
        })
        .unwrap();
    assert_eq!(
        held,
        payload(1, 16),
        "the held entry changed under its reader"
    );
    assert_eq!(buf, payload(2, 16));
    // The other consumer's hand-back completes now; the stream goes on.
    assert!(matches!(other.try_recv(&mut buf), Err(Error::Empty)));
    producer.send(&payload(3, 16)).unwrap();
    holder.try_recv(&mut buf).unwrap();
    assert_eq!(buf, payload(3, 16));
}

/// An `Mpmc` ring of 64 bytes from `start` (offset 0 of a lap), filled
/// exactly by messages 1 to 3 (records of 24, 24 and 16 bytes), and four
/// consumers: one for each entry, and one more.
#[allow(clippy::type_complexity)]
fn full_ring(
    start: u64,
) -> (
    Faulty<NoFault>,
    Producer<Faulty<NoFault>>,
    Vec<Consumer<Faulty<NoFault>>>,
) {
    let memory = faulty::<NoFault>(Geometry::new(64, 16).unwrap(), start);
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    let consumers = (0..4)
        .map(|_| Consumer::with_backend(memory.clone(), RingKind::Mpmc).unwrap())
        .collect();
    for (tag, len) in [(1, 16), (2, 16), (3, 8)] {
        producer.try_send(&payload(tag, len)).unwrap();
    }
    assert!(matches!(producer.try_send(&[]), Err(Error::Full)));
    (memory, producer, consumers)
}

/// The starts of `full_ring`: the first lap, a later one, and the lap that
/// ends at `u64::MAX`.
const FULL_RING_STARTS: [u64; 3] = [0, 64 * 1000, u64::MAX - 63];

/// `Mpmc`: with more consumers than entries, a ring can be full with every
/// entry in it taken. The read cursor then stands a whole ring past the
/// head, on the header word of the entry its consumer is still reading. A
/// consumer that looks there finds nothing to receive (`Empty`, `Timeout`
/// after waiting), not a corrupt header, and leaves the live holders'
/// entries to them; the stream goes on once they are handed back.
#[test]
fn a_full_ring_with_every_entry_taken_reads_empty() {
    for start in FULL_RING_STARTS {
        let (_memory, mut producer, mut consumers) = full_ring(start);
        let [a, b, c, look] = &mut consumers[..] else {
            unreachable!()
        };
        let (mut second, mut third, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        let first = a
            .try_recv_with(|first| {
                // Each takes its entry; their hand-backs wait for `a`'s.
                b.try_recv(&mut second).unwrap();
                c.try_recv(&mut third).unwrap();
                let got = look.try_recv(&mut buf);
                assert!(matches!(got, Err(Error::Empty)), "{got:?} at {start}");
                let got = look.recv_timeout(&mut buf, SLICE * 2);
                assert!(matches!(got, Err(Error::Timeout)), "{got:?} at {start}");
                first.to_vec()
            })
            .unwrap();
        assert_eq!(
            [first, second, third],
            [payload(1, 16), payload(2, 16), payload(3, 8)],
            "at {start}"
        );
        // `b` and `c` finish their hand-backs, in order; the ring is empty.
        for holder in [b, c] {
            assert!(matches!(holder.try_recv(&mut buf), Err(Error::Empty)));
        }
        producer.try_send(&payload(4, 16)).unwrap();
        look.try_recv(&mut buf).unwrap();
        assert_eq!(buf, payload(4, 16), "at {start}");
    }
}

/// `Mpmc`: when every entry of a full ring is held by consumers that are
/// gone (detached, or dead while attached), no consumer has a hand-back of
/// its own waiting behind them; a consumer waiting for data hands them
/// back (their messages are not delivered again), and the producers have
/// room again.
#[test]
fn a_full_ring_held_by_gone_consumers_is_handed_back_by_a_waiting_one() {
    for dead in [false, true] {
        for start in FULL_RING_STARTS {
            let (memory, mut producer, consumers) = full_ring(start);
            let mut consumers = consumers.into_iter();
            let mut holders: Vec<_> = consumers.by_ref().take(3).collect();
            let mut look = consumers.next().unwrap();
            let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let [a, b, c] = &mut holders[..] else {
                    unreachable!()
                };
                a.try_recv_with(|_| {
                    b.try_recv_with(|_| {
                        c.try_recv_with(|_| panic!("three consumers die holding every entry"))
                    })
                })
            }));
            assert!(died.is_err());
            if dead {
                // Their processes die: still attached, never detached.
                memory.dead_consumers.lock().unwrap().extend(0..3);
                holders.into_iter().for_each(std::mem::forget);
            } else {
                drop(holders);
            }
            let mut buf = Vec::new();
            // Each wait hands back what it can after a sleep slice; a loaded
            // machine may end a wait before its first slice, so it may take
            // a few (without the hand-back, the ring stays full for good).
            let sent = (0..50).any(|_| {
                let got = look.recv_timeout(&mut buf, SLICE * 2);
                assert!(matches!(got, Err(Error::Timeout)), "{got:?} at {start}");
                producer.try_send(&payload(4, 16)).is_ok()
            });
            assert!(sent, "the ring stayed full (dead: {dead}, at {start})");
            look.try_recv(&mut buf).unwrap();
            assert_eq!(buf, payload(4, 16), "dead: {dead}, at {start}");
            assert!(matches!(look.try_recv(&mut buf), Err(Error::Empty)));
        }
    }
}

/// `Mpsc` and `Mpmc`: a dead producer's claim length is read from the
/// region, so an impossible one is [`Error::Corrupt`] for the consumer that
/// would pad it: not a multiple of 8, longer than the ring holds beyond
/// the claim (`tail - claim`), or longer than the ring, and it is refused
/// before any padding is written; a length of 0 (the producer died before
/// its first claim) is not a claim at all.
#[test]
fn a_dead_producers_impossible_claim_is_corrupt() {
    for kind in [RingKind::Mpsc, RingKind::Mpmc] {
        for len in [0u64, 12, 56, 2048] {
            let (memory, mut consumer, mut alive, doomed) = one_consumer_two_producers(kind);
            let slot = doomed.slot();
            memory.dead.lock().unwrap().push(slot);
            // A claim of 24 bytes at 0, then a record of 24 bytes: tail 48.
            doomed.abandon_claim(16).unwrap();
            alive.send(&payload(1, 16)).unwrap();
            slot_word(&memory, Role::Producer, slot, SlotWord::ClaimLen).store(len, SeqCst);
            let result = consumer.recv_timeout(&mut Vec::new(), shmsg::shm::wait::SLICE * 5);
            if len == 0 {
                assert!(
                    matches!(result, Err(Error::Timeout)),
                    "{kind:?}: {result:?}"
                );
            } else {
                assert!(
                    matches!(result, Err(Error::Corrupt { .. })),
                    "{kind:?}, claim of {len} bytes: {result:?}"
                );
            }
            // Refused before anything was written: no padding in the claim.
            assert_eq!(memory.data_word(0).load(SeqCst), 0, "{kind:?}, {len} bytes");
        }
    }
}

/// `Mpsc` and `Mpmc`: a producer that died after writing its claim words
/// and before its compare-and-swap on the tail claimed nothing: its claim
/// names the tail. A consumer waiting there pads nothing and reports
/// nothing wrong (its wait times out), and the next message sent arrives.
#[test]
fn a_claim_that_never_moved_the_tail_is_not_recovered() {
    for kind in [RingKind::Mpsc, RingKind::Mpmc] {
        let (memory, mut consumer, mut alive, doomed) = one_consumer_two_producers(kind);
        let slot = doomed.slot();
        memory.dead.lock().unwrap().push(slot);
        slot_word(&memory, Role::Producer, slot, SlotWord::ClaimLen).store(24, SeqCst);
        slot_word(&memory, Role::Producer, slot, SlotWord::Claim).store(0, SeqCst);
        std::mem::forget(doomed);
        let mut buf = Vec::new();
        let result = consumer.recv_timeout(&mut buf, shmsg::shm::wait::SLICE * 3);
        assert!(
            matches!(result, Err(Error::Timeout)),
            "{kind:?}: {result:?}"
        );
        assert_eq!(memory.data_word(0).load(SeqCst), 0, "{kind:?}: no padding");
        alive.send(&payload(1, 16)).unwrap();
        consumer.try_recv(&mut buf).unwrap();
        assert_eq!(buf, payload(1, 16), "{kind:?}");
    }
}

/// The watchdog's look (`detach_dead_consumers`) detaches exactly the
/// consumers that are attached and dead, once each, and says how many: a
/// live one and one that detached itself are left alone. Once every
/// consumer is gone, producers get `Disconnected`.
#[test]
fn the_watchdog_detaches_dead_consumers_only() {
    use shmsg::shm::mpmc::detach_dead_consumers;
    for kind in [RingKind::Mpsc, RingKind::Mpmc] {
        let memory = faulty::<NoFault>(Geometry::new(1024, 64).unwrap(), 0);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let first = Consumer::with_backend(memory.clone(), kind).unwrap();
        let epoch = |index| slot_word(&memory, Role::Consumer, index, SlotWord::Epoch).load(SeqCst);
        assert_eq!(
            detach_dead_consumers(&memory, kind),
            0,
            "{kind:?}: all alive"
        );
        if kind == RingKind::Mpmc {
            // Three consumers: 0 dies, 1 lives, 2 detaches by itself.
            let live = first.another().unwrap();
            let left = first.another().unwrap();
            drop(left);
            let detached_itself = epoch(2);
            memory.dead_consumers.lock().unwrap().push(0);
            std::mem::forget(first);
            assert_eq!(detach_dead_consumers(&memory, kind), 1, "{kind:?}");
            assert_eq!(epoch(0) % 2, 0, "{kind:?}: the dead one detached");
            assert_eq!(epoch(1) % 2, 1, "{kind:?}: the live one attached");
            assert_eq!(epoch(2), detached_itself, "{kind:?}: left alone");
            assert_eq!(detach_dead_consumers(&memory, kind), 0, "{kind:?}: once");
            producer.send(b"still read").unwrap();
            memory.dead_consumers.lock().unwrap().push(1);
            std::mem::forget(live);
        } else {
            memory.dead_consumers.lock().unwrap().push(0);
            std::mem::forget(first);
        }
        assert_eq!(
            detach_dead_consumers(&memory, kind),
            1,
            "{kind:?}: the last one"
        );
        assert_eq!(detach_dead_consumers(&memory, kind), 0, "{kind:?}: once");
        assert!(
            matches!(producer.try_send(b"nobody"), Err(Error::Disconnected)),
            "{kind:?}"
        );
    }
}
