//! Property tests of the single-producer ring on the production backend
//! (`shmsg::shm::Mapped` over the heap, the same code as over a region).
//!
//! * `ring_matches_reference`: a state machine of operations (copying and
//!   in-place sends of arbitrary sizes, including too-large ones; copying and
//!   in-place receives; detaching and re-attaching either side, with a second
//!   attach refused meanwhile) runs against a `VecDeque` reference. Ring
//!   positions start anywhere, including just below `u64::MAX`, so counter
//!   wrap-around is covered. Every received message must be the reference's
//!   front, byte for byte; `Empty`, `Disconnected`, `MessageTooLarge` must
//!   occur exactly when the reference says; `Full` is allowed only when an
//!   independent bound says the ring may be full (never when it is empty).
//!   After every operation the producer's `unreleased` count is the
//!   reference's length.
//! * Pure parts: header decoding and region-header validation accept or
//!   reject arbitrary words without panicking.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256; the deep tier
//! runs 4096). A failing case is saved in `prop_spsc.proptest-regressions`
//! beside this file and replayed first on every later run; commit it.

mod common;

use std::collections::VecDeque;

use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;

use common::{FaultSet, FullCheckOffByOne, NoFault, SkipNextClear, initial_position, payload};
use proptest::prelude::*;
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::Mapped;
use shmsg::shm::layout::{Identity, RingKind, record_size};
use shmsg::shm::spsc::{Consumer, Producer, Slot, decode_header, encode_header};
use shmsg::sync::{Backend, Control, Event, Faults};

/// The production backend with a seeded defect compiled into the protocol
/// (none for [`NoFault`]); every call is delegated to [`Mapped`].
struct Faulty<F>(Mapped, PhantomData<fn() -> F>);

impl<F> Clone for Faulty<F> {
    fn clone(&self) -> Self {
        Faulty(self.0.clone(), PhantomData)
    }
}

// SAFETY: every method forwards to `Mapped`, which upholds the contract.
unsafe impl<F: FaultSet> Backend for Faulty<F> {
    type Word = AtomicU64;
    const FAULTS: Faults = F::FAULTS;
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
    fn max_message(&self) -> usize {
        self.0.max_message()
    }
    fn control(&self, which: Control) -> &AtomicU64 {
        self.0.control(which)
    }
    fn data_word(&self, index: usize) -> &AtomicU64 {
        self.0.data_word(index)
    }
    unsafe fn write(&self, offset: usize, src: &[u8]) {
        // SAFETY: forwarded caller contract.
        unsafe { self.0.write(offset, src) }
    }
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { self.0.read(offset, dst, len) }
    }
    unsafe fn write_in_place<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        // SAFETY: forwarded caller contract.
        unsafe { self.0.write_in_place(offset, len, f) }
    }
    unsafe fn read_in_place<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: forwarded caller contract.
        unsafe { self.0.read_in_place(offset, len, f) }
    }
    fn spin(&self) {
        self.0.spin()
    }
    fn spin_limit(&self) -> u32 {
        self.0.spin_limit()
    }
    fn fence(&self) {
        self.0.fence()
    }
    fn event(&self, which: Event) -> &AtomicU64 {
        self.0.event(which)
    }
    fn futex_wait(&self, which: Event, expected: u32, timeout: std::time::Duration) {
        self.0.futex_wait(which, expected, timeout)
    }
    fn futex_wake(&self, which: Event) {
        self.0.futex_wake(which)
    }
    fn signal(&self, which: Event, count: u32) {
        self.0.signal(which, count)
    }
    fn descriptor(&self, which: Event) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.0.descriptor(which)
    }
    fn peer_alive(&self, role: shmsg::Role) -> bool {
        self.0.peer_alive(role)
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Copying send of `len` bytes.
    Send(usize),
    /// In-place send reserving `len` bytes and writing `len - shrink`.
    SendWith { len: usize, shrink: usize },
    /// Batch send of messages of these sizes.
    SendBatch(Vec<usize>),
    /// Copying receive.
    TryRecv,
    /// In-place receive.
    RecvWith,
    /// Detach the producer if attached, else attach one.
    ToggleProducer,
    /// Detach the consumer if attached, else attach one.
    ToggleConsumer,
}

fn op(max: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..=max + 8).prop_map(Op::Send),
        2 => (0..=max, 0..=8usize).prop_map(|(len, shrink)| Op::SendWith { len, shrink: shrink.min(len) }),
        1 => proptest::collection::vec(0..=max + 8, 0..6).prop_map(Op::SendBatch),
        4 => Just(Op::TryRecv),
        2 => Just(Op::RecvWith),
        1 => Just(Op::ToggleProducer),
        1 => Just(Op::ToggleConsumer),
    ]
}

/// The start that overflowed (`u64::MAX - 8 * start + 1` with `start ==
/// 0`), and the largest start the strategies make.
#[test]
fn initial_positions_at_the_edges() {
    assert_eq!(initial_position(true, 0), u64::MAX - 7);
    assert_eq!(initial_position(true, 4095), 0u64.wrapping_sub(8 * 4096));
    assert_eq!(initial_position(false, 0), 0);
    for start in [0, 1, 4095] {
        let position = initial_position(true, start);
        assert_eq!(position % 8, 0);
        assert_eq!(position.wrapping_add(8 * (start + 1)), 0);
    }
}

fn case() -> impl Strategy<Value = (Geometry, u64, Vec<Op>)> {
    (6u32..=9, any::<bool>(), 0u64..4096).prop_flat_map(|(log_capacity, near_end, start)| {
        let capacity = 1usize << log_capacity;
        let limit = Geometry::max_message_for(capacity);
        (1..=limit).prop_flat_map(move |max| {
            let geometry = Geometry::new(capacity, max).unwrap();
            let initial = initial_position(near_end, start);
            proptest::collection::vec(op(max), 1..200).prop_map(move |ops| (geometry, initial, ops))
        })
    })
}

/// Attachment as the reference sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Attached,
    Detached,
}

struct Reference {
    pending: VecDeque<Vec<u8>>,
    producer: Side,
    consumer: Side,
    geometry: Geometry,
}

impl Reference {
    /// Whether an independent bound allows the ring to be full for a new
    /// record of `len` bytes: each pending record occupies its size plus at
    /// most the same again in wrap waste before it, and a new record needs
    /// its size, as much again for a wrap, and one header word.
    fn may_be_full(&self, len: usize) -> bool {
        let pending: usize = self.pending.iter().map(|m| 2 * record_size(m.len())).sum();
        !self.pending.is_empty() && pending + 2 * record_size(len) + 8 > self.geometry.capacity()
    }
}

fn run<F: FaultSet>(geometry: Geometry, initial: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let memory = Faulty::<F>(Mapped::heap(geometry, initial).unwrap(), PhantomData);
    let mut producer = Some(Producer::with_backend(memory.clone()).unwrap());
    let mut consumer = Some(Consumer::with_backend(memory.clone()).unwrap());
    let mut reference = Reference {
        pending: VecDeque::new(),
        producer: Side::Attached,
        consumer: Side::Attached,
        geometry,
    };
    let mut seq = 0usize;
    let mut buf = Vec::new();
    for op in ops {
        match op {
            Op::Send(_) | Op::SendWith { .. } => {
                let Some(p) = producer.as_mut() else { continue };
                let (len, written) = match op {
                    Op::Send(len) => (len, len),
                    Op::SendWith { len, shrink } => (len, len - shrink),
                    _ => unreachable!(),
                };
                let message = payload(seq, written);
                let result = match op {
                    Op::Send(_) => p.try_send(&message),
                    _ => p
                        .try_send_with(len, |buf| {
                            buf[..written].copy_from_slice(&message);
                            written
                        })
                        .map(|n| assert_eq!(n, written)),
                };
                match result {
                    Ok(()) => {
                        prop_assert!(len <= geometry.max_message());
                        prop_assert!(
                            reference.consumer != Side::Detached,
                            "sent to a detached consumer"
                        );
                        reference.pending.push_back(message);
                        seq += 1;
                    }
                    Err(Error::MessageTooLarge { len: l, max }) => {
                        prop_assert_eq!((l, max), (len, geometry.max_message()));
                        prop_assert!(len > geometry.max_message());
                    }
                    Err(Error::Disconnected) => {
                        prop_assert!(reference.consumer == Side::Detached);
                    }
                    Err(Error::Full) => {
                        prop_assert!(
                            reference.may_be_full(len),
                            "Full with {} pending",
                            reference.pending.len()
                        );
                    }
                    Err(other) => prop_assert!(false, "send failed: {other}"),
                }
            }
            Op::SendBatch(lens) => {
                let Some(p) = producer.as_mut() else { continue };
                let messages: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| payload(seq + i, len))
                    .collect();
                match p.try_send_batch(&messages) {
                    Ok(sent) => {
                        // An empty batch sends nothing and checks nothing.
                        prop_assert!(sent <= messages.len() && (sent >= 1 || messages.is_empty()));
                        prop_assert!(
                            sent == 0 || reference.consumer != Side::Detached,
                            "sent to a detached consumer"
                        );
                        for message in &messages[..sent] {
                            prop_assert!(message.len() <= geometry.max_message());
                            reference.pending.push_back(message.clone());
                        }
                        seq += sent;
                        // It stops early only at a message that cannot go now.
                        if let Some(next) = messages.get(sent) {
                            prop_assert!(
                                next.len() > geometry.max_message()
                                    || reference.may_be_full(next.len())
                            );
                        }
                    }
                    Err(Error::MessageTooLarge { len, .. }) => prop_assert_eq!(len, lens[0]),
                    Err(Error::Disconnected) => prop_assert!(reference.consumer == Side::Detached),
                    Err(Error::Full) => prop_assert!(reference.may_be_full(lens[0])),
                    Err(other) => prop_assert!(false, "batch failed: {other}"),
                }
            }
            Op::TryRecv | Op::RecvWith => {
                let Some(c) = consumer.as_mut() else { continue };
                let result = match op {
                    Op::TryRecv => c.try_recv(&mut buf).map(|n| assert_eq!(n, buf.len())),
                    _ => c
                        .try_recv_with(|bytes| bytes.to_vec())
                        .map(|bytes| buf = bytes),
                };
                match (result, reference.pending.pop_front()) {
                    (Ok(()), Some(expected)) => prop_assert_eq!(&buf, &expected),
                    (Err(Error::Empty), None) => prop_assert!(reference.producer != Side::Detached),
                    (Err(Error::Disconnected), None) => {
                        prop_assert!(reference.producer == Side::Detached)
                    }
                    (result, expected) => {
                        prop_assert!(false, "receive gave {result:?}, reference has {expected:?}")
                    }
                }
            }
            Op::ToggleProducer => {
                if producer.is_some() {
                    prop_assert!(matches!(
                        Producer::with_backend(memory.clone()),
                        Err(Error::RoleTaken(shmsg::Role::Producer))
                    ));
                    producer = None;
                    reference.producer = Side::Detached;
                } else {
                    producer = Some(Producer::with_backend(memory.clone()).unwrap());
                    reference.producer = Side::Attached;
                }
            }
            Op::ToggleConsumer => {
                if consumer.is_some() {
                    prop_assert!(matches!(
                        Consumer::with_backend(memory.clone()),
                        Err(Error::RoleTaken(shmsg::Role::Consumer))
                    ));
                    consumer = None;
                    reference.consumer = Side::Detached;
                } else {
                    consumer = Some(Consumer::with_backend(memory.clone()).unwrap());
                    reference.consumer = Side::Attached;
                }
            }
        }
        // The producer's count of records the consumer has not released
        // (what `shmsg send` reports on exit) is the reference's length.
        if let Some(p) = &producer {
            prop_assert_eq!(p.unreleased()?, reference.pending.len() as u64);
        }
    }
    // Drain: everything still pending arrives, in order.
    let mut c = match consumer {
        Some(c) => c,
        None => Consumer::with_backend(memory.clone()).unwrap(),
    };
    drop(producer);
    for expected in reference.pending {
        c.try_recv(&mut buf).unwrap();
        prop_assert_eq!(&buf, &expected);
    }
    prop_assert!(matches!(c.try_recv(&mut buf), Err(Error::Disconnected)));
    Ok(())
}

/// A record that fits where it starts: a length up to the ring's maximum,
/// and a position (any lap, near `u64::MAX` included) whose offset leaves
/// room for the whole record before the end of the data area. Generated
/// valid, not filtered, so that any number of cases runs without rejects.
fn valid_record() -> impl Strategy<Value = (Geometry, u64, usize)> {
    let geometry = Geometry::for_max_message(1 << 20, 0).unwrap();
    let capacity = geometry.capacity() as u64;
    (0usize..=1 << 20).prop_flat_map(move |len| {
        let last_offset = capacity - record_size(len) as u64;
        (any::<u64>(), 0..=last_offset / 8).prop_map(move |(lap, slot)| {
            let position = (lap & !(capacity - 1)) | (slot * 8);
            (geometry, position, len)
        })
    })
}

proptest! {
    #[test]
    fn ring_matches_reference((geometry, initial, ops) in case()) {
        run::<NoFault>(geometry, initial, ops)?;
    }

    #[test]
    fn header_round_trip((geometry, position, len) in valid_record()) {
        let word = encode_header(position, len as u32);
        prop_assert_eq!(decode_header(word, position, geometry).unwrap(), Slot::Record(len));
        // The same word read at any other position is not a record there.
        prop_assert!(decode_header(word, position.wrapping_add(8), geometry).is_err());
    }

    #[test]
    fn any_header_word_decodes_or_is_corrupt(word in any::<u64>(), position in any::<u64>(), log in 6u32..30) {
        let geometry = Geometry::new(1 << log, Geometry::max_message_for(1 << log)).unwrap();
        match decode_header(word, position & !7, geometry) {
            Ok(Slot::Record(len)) => {
                prop_assert!(len <= geometry.max_message());
                prop_assert!(((position & !7) & (geometry.capacity() as u64 - 1)) as usize + record_size(len) <= geometry.capacity());
            }
            Ok(_) | Err(Error::Corrupt { .. }) => {}
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    #[test]
    fn any_identity_validates_or_errs(
        words in proptest::array::uniform9(prop_oneof![any::<u64>(), 0u64..256, Just(shmsg::shm::layout::MAGIC)]),
        len in any::<u64>(),
    ) {
        let identity = Identity {
            magic: words[0],
            abi_version: words[1],
            ring_kind: words[2],
            capacity: words[3],
            max_message: words[4],
            pointer_width: words[5],
            endian: words[6],
            cache_line: words[7],
            data_offset: words[8],
            creator_pid: 0,
        };
        if let Ok(geometry) = identity.validate(RingKind::Spsc, len) {
            prop_assert_eq!(geometry.region_size() as u64, len);
        }
    }
}

/// The state machine finds a seeded defect, or it is no check.
fn seeded<F: FaultSet>() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&case(), |(geometry, initial, ops)| {
        run::<F>(geometry, initial, ops)
    });
    assert!(
        result.is_err(),
        "the state machine accepted a seeded defect"
    );
}

#[test]
fn seeded_full_check_off_by_one_is_caught() {
    seeded::<FullCheckOffByOne>();
}

#[test]
fn seeded_skip_next_clear_is_caught() {
    seeded::<SkipNextClear>();
}
