//! Loom model of the multi-producer rings (`shmsg::shm::mpmc`), run on the
//! production protocol code through the model backend in `common/`.
//!
//! # What it proves
//!
//! For every interleaving and every weak-memory outcome loom explores within
//! the preemption bound:
//!
//! * `Mpsc`, two producer threads and one consumer: no data race on ring
//!   memory (every payload write, payload read, zeroing and header store is
//!   tracked by a `loom::cell::UnsafeCell`, so two producers writing one
//!   range, or a read of bytes not yet committed, is reported); the consumer
//!   receives every message exactly once, byte for byte, each producer's in
//!   the order it sent them, then `Disconnected` once both have detached;
//! * `Mpmc`, one producer and two consumer threads: the same, with each
//!   message received by exactly one consumer, each consumer's messages in
//!   send order, and the in-order hand-back of records read concurrently;
//! * the scenarios wrap the 64-byte data area (padding before the end, a
//!   record at offset 0), fill it (producers wait for space), send a
//!   zero-length message, and start just below `u64::MAX`.
//!
//! # Bounds
//!
//! A 64-byte ring (messages up to 16 bytes), four messages, preemption bound
//! per scenario (`SHMSG_LOOM_MPSC_PREEMPTIONS` and `SHMSG_LOOM_MPMC_PREEMPTIONS`
//! override it). Counts and times: `models/README.md`.
//!
//! # Teeth
//!
//! `seeded_*` tests compile one defect into the production protocol (see
//! `shmsg::sync::Faults`) and require loom to fail: the claiming
//! compare-and-swap replaced by a load and a store; the commit published
//! before the payload; the header published `Relaxed`; records handed back
//! without zeroing; `Mpmc` records handed back out of order.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, atomic::AtomicUsize};

use common::loom_model::LoomBackend;
use common::*;
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::layout::RingKind;
use shmsg::shm::mpmc::{Consumer, Producer};

fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The preemption bound: `SHMSG_LOOM_MPMC_PREEMPTIONS` for the
/// two-consumer scenarios and `SHMSG_LOOM_MPSC_PREEMPTIONS` for the others,
/// else `quick`. Not `LOOM_MAX_PREEMPTIONS`: the single-producer models'
/// deep bound (6) is far beyond what three threads that all wait can
/// explore (bound 3 for two producers already takes about 70 s).
fn builder(mpmc: bool, quick: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    let knob = if mpmc {
        "SHMSG_LOOM_MPMC_PREEMPTIONS"
    } else {
        "SHMSG_LOOM_MPSC_PREEMPTIONS"
    };
    builder.preemption_bound = Some(env_u32(knob).map_or(quick, |b| b as usize));
    builder.max_branches = 100_000;
    builder
}

/// The waits' spin limit: `SHMSG_LOOM_SPIN` if set, else `default`
/// (`u32::MAX`: spin and never sleep; 0: sleep on the model futex at once).
fn spin_limit(default: u32) -> u32 {
    env_u32("SHMSG_LOOM_SPIN").unwrap_or(default)
}

/// Producer `id`'s messages: sizes chosen so that no two messages of the
/// scenario are equal, and so that together they fill and wrap the ring.
fn messages(sizes: &[usize], id: usize) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(seq, &len)| payload(100 * id + seq, len))
        .collect()
}

/// Checks that `received` is an interleaving of `sent`, each list whole and
/// in order, nothing else.
fn check_interleaving(received: &[Vec<u8>], sent: &[Vec<Vec<u8>>]) {
    let mut next = vec![0; sent.len()];
    for message in received {
        let from = (0..sent.len()).find(|&p| sent[p].get(next[p]) == Some(message));
        match from {
            Some(p) => next[p] += 1,
            None => panic!("message {message:?} is not the next of any producer: {next:?}"),
        }
    }
    for (p, list) in sent.iter().enumerate() {
        assert_eq!(next[p], list.len(), "producer {p} lost messages");
    }
}

/// Receives until `Disconnected`, alternating the copying and in-place API.
fn drain<F: FaultSet>(consumer: &mut Consumer<LoomBackend<F>>) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = Vec::new();
    loop {
        let result = if received.len() % 2 == 1 {
            consumer.recv_with(|bytes| bytes.to_vec()).map(|b| buf = b)
        } else {
            consumer.recv(&mut buf).map(drop)
        };
        match result {
            Ok(()) => received.push(std::mem::take(&mut buf)),
            Err(Error::Disconnected) => return received,
            Err(other) => panic!("consumer error: {other}"),
        }
    }
}

fn send_all<F: FaultSet>(producer: &mut Producer<LoomBackend<F>>, messages: &[Vec<u8>]) {
    for (i, m) in messages.iter().enumerate() {
        if i % 2 == 1 {
            let len = m.len();
            producer
                .send_with(len + 3, |buf| {
                    buf[..len].copy_from_slice(m);
                    len
                })
                .unwrap();
        } else {
            producer.send(m).unwrap();
        }
    }
}

/// Two producers send `a` and `b` through an `Mpsc` ring; the consumer
/// checks the interleaving. Returns the executions explored.
fn two_producers<F: FaultSet>(a: &'static [usize], b: &'static [usize], start: u64) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    builder(false, 2).check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<F>::new(geometry, start).with_spin_limit(spin_limit(u32::MAX));
        let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        let sent = vec![messages(a, 0), messages(b, 1)];
        let threads: Vec<_> = sent
            .iter()
            .cloned()
            .map(|list| {
                let mut producer = Producer::with_backend(memory.clone()).unwrap();
                loom::thread::spawn(move || send_all(&mut producer, &list))
            })
            .collect();
        let received = drain(&mut consumer);
        threads.into_iter().for_each(|t| t.join().unwrap());
        check_interleaving(&received, &sent);
    });
    let n = executions.load(Ordering::Relaxed);
    eprintln!("loom explored {n} executions of producers {a:?} + {b:?} from {start:#x}");
    n
}

/// One producer sends `sizes` through an `Mpmc` ring; two consumer threads
/// receive; every message exactly once, each consumer's in send order.
fn two_consumers<F: FaultSet>(sizes: &'static [usize], start: u64) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    builder(true, 1).check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        let geometry = Geometry::new(64, 16).unwrap();
        // Idle consumers sleep on the model futex instead of spinning.
        let memory = LoomBackend::<F>::new(geometry, start).with_spin_limit(spin_limit(0));
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpmc).unwrap();
                loom::thread::spawn(move || drain(&mut consumer))
            })
            .collect();
        let sent = messages(sizes, 0);
        for m in &sent {
            producer.send(m).unwrap();
        }
        drop(producer);
        let mut all = Vec::new();
        for consumer in consumers {
            let got = consumer.join().unwrap();
            // Each consumer's messages are in send order.
            check_interleaving(
                &got,
                &[sent.iter().filter(|m| got.contains(m)).cloned().collect()],
            );
            all.extend(got);
        }
        assert_eq!(all.len(), sent.len(), "lost or duplicated messages");
        for m in &sent {
            assert_eq!(
                all.iter().filter(|x| *x == m).count(),
                1,
                "{m:?} not received once"
            );
        }
    });
    let n = executions.load(Ordering::Relaxed);
    eprintln!("loom explored {n} executions of {sizes:?} to two consumers from {start:#x}");
    n
}

fn explored(executions: usize) {
    assert!(
        executions >= 100,
        "loom explored only {executions} executions"
    );
}

/// From offset 48: the first 24-byte record does not fit before the end
/// (16 bytes of padding, then the record at offset 0), and in-place sends
/// reserve 3 bytes more than they write (padding after the record); the
/// claims add up to 72 bytes, more than the ring, so a producer waits for
/// space.
const A: [usize; 2] = [16, 0];
const B: [usize; 1] = [5];
/// One producer to two consumers: a wrap, and a record at offset 0.
const MPMC: [usize; 3] = [16, 5, 0];

#[test]
fn mpsc_two_producers() {
    explored(two_producers::<NoFault>(&A, &B, 48));
}

#[test]
fn mpsc_two_producers_across_u64_wrap() {
    // Offset 48 again; the wrap to offset 0 is the wrap to position 0.
    explored(two_producers::<NoFault>(&[16], &B, u64::MAX - 15));
}

#[test]
fn mpmc_two_consumers() {
    explored(two_consumers::<NoFault>(&MPMC, 48));
}

#[test]
fn mpmc_two_consumers_across_u64_wrap() {
    explored(two_consumers::<NoFault>(&MPMC, u64::MAX - 15));
}

/// Every producer slot taken: the next attach is refused with `RoleTaken`;
/// a detach frees a slot.
#[test]
fn attach_is_bounded() {
    loom::model(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0);
        let mut producers: Vec<_> = (0..shmsg::shm::layout::MAX_PRODUCERS)
            .map(|_| Producer::with_backend(memory.clone()).unwrap())
            .collect();
        assert!(matches!(
            Producer::with_backend(memory.clone()),
            Err(Error::RoleTaken(shmsg::Role::Producer))
        ));
        producers.pop();
        producers.push(Producer::with_backend(memory.clone()).unwrap());
        let _c = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        assert!(matches!(
            Consumer::with_backend(memory.clone(), RingKind::Mpsc),
            Err(Error::RoleTaken(shmsg::Role::Consumer))
        ));
    });
}

/// An in-place send whose fill reports more than it may write is aborted:
/// its claim becomes padding, which the consumer skips and hands back
/// (zeroing the bytes the fill wrote) while the producer goes on sending.
/// The consumer receives the next message and nothing else. The padding's
/// `Release` store (`Producer::abort`) is what orders the fill's writes
/// before the consumer's zeroing: the killer of the ordering mutant that
/// makes it `Relaxed` (a loom data race on those bytes), which no other
/// model reached (`ci/mutate-orderings.sh`, `producer.rs` `abort`).
#[test]
fn an_aborted_claim_becomes_padding() {
    builder(false, 2).check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0).with_spin_limit(spin_limit(u32::MAX));
        let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let sender = loom::thread::spawn(move || {
            let refused = producer.send_with(8, |buf| {
                buf[..8].fill(0xEE);
                9
            });
            assert!(
                matches!(refused, Err(Error::MessageTooLarge { len: 9, max: 8 })),
                "{refused:?}"
            );
            producer.send(&payload(1, 5)).unwrap();
        });
        let received = drain(&mut consumer);
        sender.join().unwrap();
        assert_eq!(received, vec![payload(1, 5)]);
    });
}

/// A producer attaches while the consumer is receiving and releasing what
/// another producer sent, then sends a message that wraps onto the bytes
/// of the first record, which the consumer read and zeroed. The new
/// producer fills space up to the head it read at attach without loading
/// it again, so only that load's `Acquire` (`Producer::build`) orders the
/// consumer's accesses before its writes: the killer of the ordering
/// mutant that makes it `Relaxed` (a loom data race), which no other model
/// reached (`ci/mutate-orderings.sh`, `producer.rs` `build`).
#[test]
fn a_producer_attached_meanwhile_fills_released_space() {
    builder(false, 2).check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0).with_spin_limit(spin_limit(u32::MAX));
        let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        let reader = loom::thread::spawn(move || drain(&mut consumer));
        let mut first = Producer::with_backend(memory.clone()).unwrap();
        first.send(&payload(0, 16)).unwrap();
        first.send(&payload(1, 16)).unwrap();
        let mut second = Producer::with_backend(memory.clone()).unwrap();
        // 24 bytes at 48 do not fit before the end: padding, then offset 0.
        // (No fence of this thread may come between the attach and this
        // write, so the first producer leaves only afterwards.)
        second.send(&payload(2, 16)).unwrap();
        drop(first);
        drop(second);
        let expected: Vec<Vec<u8>> = (0..3).map(|seq| payload(seq, 16)).collect();
        assert_eq!(reader.join().unwrap(), expected);
    });
}

/// An `Mpsc` consumer dies in the middle of a release (its slot's claim at
/// the head, as its hand-back writes it before zeroing); a consumer that
/// takes its slot over in another thread finishes the release (zeroes the
/// record, moves the head) while the producer sends a message that wraps
/// onto those bytes. Only the `Release` of the finishing head store
/// (`finish_release`) orders the zeroing before the producer's writes: the
/// killer of the ordering mutant that makes it `Relaxed` (a loom data
/// race), which no other model reached (`ci/mutate-orderings.sh`,
/// `consumer.rs` `finish_release`).
#[test]
fn a_release_cut_short_is_finished_while_the_producer_sends() {
    use shmsg::Role;
    use shmsg::sync::{Backend, Control, SlotWord, Word};
    builder(false, 2).check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0).with_spin_limit(spin_limit(u32::MAX));
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let dead = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        producer.send(&payload(0, 16)).unwrap();
        producer.send(&payload(1, 16)).unwrap();
        // The dead consumer's hand-back of message 0 had begun: 24 bytes at 0.
        let word = |word| {
            memory.control(Control::Slot {
                role: Role::Consumer,
                index: 0,
                word,
            })
        };
        word(SlotWord::ClaimLen).store(24, Ordering::SeqCst);
        word(SlotWord::Claim).store(0, Ordering::SeqCst);
        std::mem::forget(dead);
        let m = memory.clone();
        let heir = loom::thread::spawn(move || {
            let mut heir = Consumer::with_backend_in_slot(m, RingKind::Mpsc, 0, true).unwrap();
            drain(&mut heir)
        });
        // 24 bytes at 48 do not fit before the end: padding, then offset 0,
        // once the heir has moved the head past message 0.
        producer.send(&payload(2, 16)).unwrap();
        drop(producer);
        assert_eq!(heir.join().unwrap(), vec![payload(1, 16), payload(2, 16)]);
    });
}

fn seeded_mpsc<F: FaultSet>() {
    let message = panic_message(|| {
        two_producers::<F>(&A, &B, 48);
    });
    assert!(message.is_some(), "loom accepted a seeded defect");
}

fn seeded_mpmc<F: FaultSet>() {
    let message = panic_message(|| {
        two_consumers::<F>(&MPMC, 48);
    });
    assert!(message.is_some(), "loom accepted a seeded defect");
}

#[test]
fn seeded_claim_without_cas_is_caught() {
    seeded_mpsc::<ClaimWithoutCas>();
}

#[test]
fn seeded_commit_before_payload_is_caught() {
    seeded_mpsc::<CommitBeforePayload>();
}

#[test]
fn seeded_relaxed_publish_is_caught() {
    seeded_mpsc::<RelaxedPublish>();
}

#[test]
fn seeded_release_without_zeroing_is_caught() {
    // The last poll, at offset 48 of the second lap, finds the padding
    // header of the first lap still there.
    seeded_mpmc::<ReleaseWithoutZeroing>();
}

#[test]
fn seeded_release_out_of_order_is_caught() {
    seeded_mpmc::<ReleaseOutOfOrder>();
}

/// The multi-producer ring's late consumer (`loom_spsc` has the
/// single-producer one): an `Mpsc` producer fills the ring before any
/// consumer has attached and blocks on its next send, sleeping slice
/// after slice; a consumer attaches late (it yields until the producer
/// has slept once) and receives everything. The sleeper's liveness test
/// (`peer_gone`) reads the consumers' count, then, as production does,
/// looks for an attached, live consumer slot: finding the count odd it
/// must find the slot attached. The count's compare-and-swap in
/// `count_attach` (`src/shm/mpmc/mod.rs`) carries the slot's attach to it
/// with its `Release`; without it the send ends `Disconnected` under a
/// live consumer: the killer of the ordering mutant that makes it
/// `Relaxed`.
#[test]
fn a_sleeping_producer_finds_a_consumer_that_attached_late() {
    builder(false, 2).check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0)
            .tracking_liveness()
            .multi_producer()
            .with_slice_timeouts()
            .with_spin_limit(0);
        let m = memory.clone();
        // A thread of its own: loom returns no store to a thread that saw
        // it before its last yield once a newer one exists.
        let producer = loom::thread::spawn(move || {
            let mut producer = Producer::with_backend(m).unwrap();
            let mut sent = 0;
            while producer.try_send(&payload(sent, 5)).is_ok() {
                sent += 1;
            }
            let result = producer.send(&payload(sent, 5));
            assert!(
                result.is_ok(),
                "a send blocked before the consumer attached: {result:?}"
            );
            sent + 1
        });
        while memory.sleeps() == 0 {
            loom::thread::yield_now();
        }
        loom::thread::yield_now();
        let mut consumer = Consumer::with_backend(memory, RingKind::Mpsc).unwrap();
        let received = drain(&mut consumer);
        let sent = producer.join().unwrap();
        let expected: Vec<_> = (0..sent).map(|i| payload(i, 5)).collect();
        assert_eq!(received, expected);
    });
}

/// An `Mpsc` producer sends one message in one thread and is dropped in
/// another; the consumer must receive the message before `Disconnected`.
/// The sending thread's fence (after the commit) does not come before the
/// detach in the dropping thread, so only the `Release` of the detach's
/// count (`count_detach` in `src/shm/mpmc/mod.rs`) carries the commit to
/// the consumer's last poll: the killer of the ordering mutant that makes
/// that compare-and-swap `Relaxed`. (`loom_spsc` has the single-producer
/// twin.)
#[test]
fn an_mpsc_producer_dropped_by_another_thread() {
    builder(false, 2).check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0).with_spin_limit(spin_limit(u32::MAX));
        let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        // The consumer looks only once the producer is gone (it waits
        // outside the model, acquiring nothing), so that its first look
        // may find the commit not yet visible and the count already even.
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = dropped.clone();
        let reader = loom::thread::spawn(move || {
            while !gone.load(Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            drain(&mut consumer)
        });
        producer.send(&payload(0, 5)).unwrap();
        loom::thread::spawn(move || {
            drop(producer);
            dropped.store(true, Ordering::Relaxed);
        })
        .join()
        .unwrap();
        assert_eq!(reader.join().unwrap(), vec![payload(0, 5)]);
    });
}
