//! Loom model of the single-producer ring (`shmsg::shm::spsc`), run on the
//! production protocol code through the model backend in `common/`.
//!
//! # What it proves
//!
//! For every interleaving of one producer thread and one consumer thread, and
//! every weak-memory outcome loom explores within the preemption bound:
//!
//! * no data race on ring memory: every payload write and read and every
//!   header store is tracked by a `loom::cell::UnsafeCell`, so a read of bytes
//!   the producer has not published, or a write over bytes the consumer has
//!   not released, is reported;
//! * the consumer receives exactly the messages sent, in order, byte for byte
//!   (no loss, duplication, tearing or phantom message), then
//!   `Disconnected` once the producer has detached;
//! * the scenarios exercise the empty ring, the full ring (the producer
//!   blocks), a wrap marker and a record at offset 0, a zero-length message
//!   and positions that wrap around `u64::MAX`.
//!
//! # Bounds
//!
//! A 64-byte ring (at most 16-byte messages), four or five messages, and a
//! preemption bound of 4 (`LOOM_MAX_PREEMPTIONS` overrides it; the deep tier
//! runs 6). Loom's DPOR explores all interleavings within the bound; the run time
//! and iteration counts on this machine are in `models/README.md`.
//!
//! # Teeth
//!
//! `seeded_*` tests run the same scenario with one defect compiled into the
//! production protocol (see `shmsg::sync::Faults`) and require loom to fail.

mod common;

use common::loom_model::LoomBackend;
use common::*;
use shmsg::shm::Geometry;
use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::sync::{Backend, Control, Word};
use shmsg::{Error, Role};
use std::sync::atomic::Ordering;

/// Message sizes: 16 + 24 + 8 bytes fill 48 of 64 bytes, the fourth record
/// (24 bytes) does not fit before the end, so the producer stores a wrap
/// marker and places it at offset 0, reusing words that held the first
/// records' headers and payloads.
const SIZES: [usize; 4] = [5, 16, 0, 11];

/// Maximum-size messages (24-byte records): the third does not fit before the
/// end, so it wraps as soon as the first record is released, leaving exactly
/// one header word between the new record's end and the unread second record.
const TIGHT: [usize; 3] = [16, 16, 16];

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(4);
    }
    builder
}

/// How the producer sends and the consumer receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    /// `send` and `recv`.
    Copy,
    /// `send_with` and `recv_with`.
    InPlace,
    /// `send_batch` of two messages at a time, and `recv`.
    Batch,
}

/// One producer sends `sizes` through `api`, then detaches; the consumer
/// receives until `Disconnected` and checks the stream.
///
/// Returns the number of executions loom explored.
fn stream<F: FaultSet>(sizes: &'static [usize], initial_position: u64, api: Api) -> usize {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    builder().check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<F>::new(geometry, initial_position);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let sender = loom::thread::spawn(move || {
            let messages: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(seq, &len)| payload(seq, len))
                .collect();
            match api {
                Api::Copy => messages.iter().for_each(|m| producer.send(m).unwrap()),
                Api::Batch => messages
                    .chunks(2)
                    .for_each(|batch| producer.send_batch(batch).unwrap()),
                Api::InPlace => {
                    for message in &messages {
                        let len = message.len();
                        let sent = producer
                            .send_with(len, |buf| {
                                buf.copy_from_slice(message);
                                len
                            })
                            .unwrap();
                        assert_eq!(sent, len);
                    }
                }
            }
        });
        let mut received = Vec::new();
        let mut buf = Vec::new();
        loop {
            let result = if api == Api::InPlace {
                consumer
                    .recv_with(|bytes| bytes.to_vec())
                    .map(|bytes| buf = bytes)
            } else {
                consumer.recv(&mut buf).map(drop)
            };
            match result {
                Ok(()) => received.push(std::mem::take(&mut buf)),
                Err(Error::Disconnected) => break,
                Err(other) => panic!("consumer error: {other}"),
            }
        }
        sender.join().unwrap();
        let expected: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(seq, &len)| payload(seq, len))
            .collect();
        assert_eq!(received, expected, "stream differs from what was sent");
    });
    let executions = executions.load(Ordering::Relaxed);
    eprintln!(
        "loom explored {executions} executions of {sizes:?} via {api:?} from position {initial_position:#x}"
    );
    executions
}

/// The scenarios are only worth something if loom explores many schedules
/// of them; a protocol change that serialized the threads would show here.
fn explored(executions: usize) {
    assert!(
        executions >= 100,
        "loom explored only {executions} executions"
    );
}

#[test]
fn fifo_with_wrap_and_full() {
    explored(stream::<NoFault>(&SIZES, 0, Api::Copy));
}

#[test]
fn fifo_tight_wrap() {
    explored(stream::<NoFault>(&TIGHT, 0, Api::Copy));
}

#[test]
fn fifo_in_place() {
    explored(stream::<NoFault>(&SIZES, 0, Api::InPlace));
}

#[test]
fn fifo_batches() {
    // Two batches of two: the second batch's wrap marker and record are
    // committed before the batch's first header, and only the last record's
    // successor is cleared.
    explored(stream::<NoFault>(&SIZES, 0, Api::Batch));
    explored(stream::<NoFault>(&TIGHT, 0, Api::Batch));
}

#[test]
fn fifo_across_u64_wrap() {
    // The second record crosses position u64::MAX.
    explored(stream::<NoFault>(&[5, 16, 0, 11], u64::MAX - 23, Api::Copy));
}

/// A consumer that detaches makes the producer's next send fail instead of
/// filling a ring nobody reads; a second producer is refused meanwhile.
#[test]
fn consumer_detach_and_second_producer() {
    builder().check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let consumer = Consumer::with_backend(memory.clone()).unwrap();
        assert!(matches!(
            Producer::with_backend(memory.clone()),
            Err(Error::RoleTaken(shmsg::Role::Producer))
        ));
        let t = loom::thread::spawn(move || drop(consumer));
        loop {
            match producer.send(b"x") {
                Ok(()) => {}
                Err(Error::Disconnected) => break,
                Err(other) => panic!("{other}"),
            }
            loom::thread::yield_now();
        }
        t.join().unwrap();
        let again = Consumer::with_backend(memory).unwrap();
        drop(again);
    });
}

/// The producer sends in one thread and its handle is dropped in another
/// (moved out through `join`). The sending thread's fences (each commit's
/// wake-up check) are not sequenced before the detach store, so that store
/// itself must be `Release`: the consumer's last poll after it must see
/// the message, not `Disconnected` before it.
#[test]
fn producer_dropped_by_another_thread() {
    builder().check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let receiver = loom::thread::spawn(move || receive_all(&mut consumer));
        let sender = loom::thread::spawn(move || {
            producer.send(&payload(0, 5)).unwrap();
            producer
        });
        drop(sender.join().unwrap());
        assert_eq!(receiver.join().unwrap(), vec![payload(0, 5)]);
    });
}

fn seeded<F: FaultSet>(sizes: &'static [usize]) {
    let message = panic_message(|| {
        stream::<F>(sizes, 0, Api::Copy);
    });
    assert!(message.is_some(), "loom accepted a seeded defect");
}

#[test]
fn seeded_relaxed_publish_is_caught() {
    seeded::<RelaxedPublish>(&SIZES);
}

#[test]
fn seeded_relaxed_poll_is_caught() {
    seeded::<RelaxedPoll>(&SIZES);
}

#[test]
fn seeded_relaxed_release_is_caught() {
    seeded::<RelaxedRelease>(&SIZES);
}

#[test]
fn seeded_batch_without_clear_is_caught() {
    let message = panic_message(|| {
        stream::<SkipNextClear>(&SIZES, 0, Api::Batch);
    });
    assert!(
        message.is_some(),
        "loom accepted a batch that leaves a stale successor"
    );
}

#[test]
fn seeded_full_check_off_by_one_is_caught() {
    seeded::<FullCheckOffByOne>(&TIGHT);
}

#[test]
fn seeded_skip_next_clear_is_caught() {
    seeded::<SkipNextClear>(&SIZES);
}

#[test]
fn seeded_commit_before_payload_is_caught() {
    seeded::<CommitBeforePayload>(&SIZES);
}

#[test]
fn seeded_no_drain_on_disconnect_is_caught() {
    seeded::<NoDrainOnDisconnect>(&SIZES);
}

/// A thread that attaches a consumer as soon as the role is free (retrying
/// while it is taken) and receives until `Disconnected`.
fn reattaching_consumer(memory: LoomBackend<NoFault>) -> loom::thread::JoinHandle<Vec<Vec<u8>>> {
    loom::thread::spawn(move || {
        let mut c = loop {
            match Consumer::with_backend(memory.clone()) {
                Ok(c) => break c,
                Err(Error::RoleTaken(_)) => loom::thread::yield_now(),
                Err(other) => panic!("{other}"),
            }
        };
        let mut got = Vec::new();
        let mut buf = Vec::new();
        while c.recv(&mut buf).is_ok() {
            got.push(buf.clone());
        }
        got
    })
}

/// A ring holding two messages, its producer gone: for the consumer
/// scenarios below.
fn two_messages_sent() -> LoomBackend<NoFault> {
    let geometry = Geometry::new(64, 16).unwrap();
    let memory = LoomBackend::<NoFault>::new(geometry, 0);
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    producer.send(&payload(0, 5)).unwrap();
    producer.send(&payload(1, 5)).unwrap();
    drop(producer);
    memory
}

/// A consumer that receives one of two messages and leaves while another
/// thread keeps trying to attach: the second gets exactly the message the
/// first did not (no message twice, none lost). Fails if the consumer
/// reads the head before its attach (the ordering sweep found it so).
#[test]
fn consumer_reattached_by_another_thread() {
    builder().check(|| {
        let memory = two_messages_sent();
        let mut first = Consumer::with_backend(memory.clone()).unwrap();
        let second = reattaching_consumer(memory.clone());
        let mut buf = Vec::new();
        first.recv(&mut buf).unwrap();
        assert_eq!(buf, payload(0, 5));
        drop(first);
        let got = second.join().unwrap();
        assert_eq!(got, vec![payload(1, 5)], "the second consumer's messages");
    });
}

/// As above, but the first consumer receives in one thread and is dropped
/// in another (moved out through `join`). The receiving thread's fences
/// (each release's wake-up check) are not sequenced before the detach
/// store, so only that store's `Release` (`Consumer`'s `Drop`) carries
/// the last head store to the next consumer's attach; without it the
/// second consumer may start at an older head and receive the first
/// message again. Killer of the ordering mutant that makes `Consumer`'s
/// `Drop` store `Relaxed` (in `consumer_reattached_by_another_thread`
/// the release's own fence precedes the detach in the same thread and
/// orders it).
#[test]
fn consumer_dropped_by_another_thread() {
    builder().check(|| {
        let memory = two_messages_sent();
        let mut first = Consumer::with_backend(memory.clone()).unwrap();
        let second = reattaching_consumer(memory.clone());
        let receiver = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            first.recv(&mut buf).unwrap();
            assert_eq!(buf, payload(0, 5));
            first
        });
        drop(receiver.join().unwrap());
        let got = second.join().unwrap();
        assert_eq!(got, vec![payload(1, 5)], "the second consumer's messages");
    });
}

/// A hostile process overwrites the head with an impossible (unaligned)
/// value while a consumer holds the role. One thread waits for the role
/// from the start; another is started once the holder has left and tries
/// once. Neither may attach: each refuses the ring as corrupt (or, the
/// one that tries once, finds the role taken). If the waiting one attaches
/// after the other's refusal, it acquires the refused attach's undone
/// epoch (its `Release` store), and through it the holder's detach and the
/// overwritten head; without that edge it may read an older head and
/// attach at a position the ring has already released. Killer of the
/// ordering mutant that makes the consumer's epoch store on its refused
/// attach (`Consumer::attach_inner`) `Relaxed`.
#[test]
fn consumer_refused_for_a_corrupt_head() {
    builder().check(|| {
        let memory = two_messages_sent();
        let mut first = Consumer::with_backend(memory.clone()).unwrap();
        let m = memory.clone();
        let waiting = loom::thread::spawn(move || {
            loop {
                match Consumer::with_backend(m.clone()) {
                    Err(Error::RoleTaken(_)) => loom::thread::yield_now(),
                    other => return other.map(drop),
                }
            }
        });
        let mut buf = Vec::new();
        first.recv(&mut buf).unwrap();
        // The hostile write, then the holder leaves.
        memory.control(Control::Head).store(3, Ordering::Relaxed);
        drop(first);
        let m = memory.clone();
        let once = loom::thread::spawn(move || Consumer::with_backend(m).map(drop));
        let result = once.join().unwrap();
        assert!(
            matches!(result, Err(Error::Corrupt { .. } | Error::RoleTaken(_))),
            "a consumer's attach over a corrupt head: {result:?}"
        );
        let result = waiting.join().unwrap();
        assert!(
            matches!(result, Err(Error::Corrupt { .. })),
            "the waiting consumer's attach over a corrupt head: {result:?}"
        );
    });
}

/// A producer sends one message, a hostile process overwrites the tail
/// with an impossible (unaligned) value, and the producer detaches; a
/// second producer, attaching in another thread, is refused (`Corrupt`)
/// and undoes its epoch. The consumer, which reads nothing but the header
/// words, must still receive the message before `Disconnected`: when it
/// finds the refused producer's even epoch, its last poll must see what
/// the producer before it committed. The refused attach's epoch store
/// (`Producer::attach_inner`) carries that with its `Release` (its
/// compare-and-swap acquired the detach); killer of the ordering mutant
/// that makes that store `Relaxed`.
#[test]
fn producer_refused_for_a_corrupt_tail() {
    builder().check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0);
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let mut consumer = Consumer::with_backend(memory.clone()).unwrap();
        let m = memory.clone();
        let first = loom::thread::spawn(move || {
            producer.send(&payload(0, 5)).unwrap();
            m.control(Control::Tail).store(4, Ordering::Relaxed);
            drop(producer);
            // A thread of its own: it inherits nothing released by this
            // one's fences, only what its attach acquires.
            loom::thread::spawn(move || {
                assert!(matches!(
                    Producer::with_backend(m),
                    Err(Error::Corrupt { .. })
                ));
            })
            .join()
            .unwrap();
        });
        let received = receive_all(&mut consumer);
        first.join().unwrap();
        assert_eq!(received, vec![payload(0, 5)], "the consumer's messages");
    });
}

/// A producer sends two maximum-size messages and "dies" (forgotten:
/// still attached); a new one takes over in the same thread (program
/// order standing in for the role lock the kernel released) while the
/// consumer is receiving, and sends two more. The new producer fills
/// space up to the head it read at attach without loading the head again:
/// its first record, wrapped to offset 0, lands on the first message's
/// payload, which the consumer read just before releasing it. Only the
/// `Acquire` of the attach's head load (`Producer::attach_inner`) orders
/// that read before the write (the releases' fences need not precede the
/// new producer's first fence); killer of the ordering mutant that makes
/// it `Relaxed` (a loom data race).
#[test]
fn takeover_while_the_consumer_releases() {
    builder().check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0);
        let mut consumer = Consumer::with_backend(memory.clone()).unwrap();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let reader = loom::thread::spawn(move || receive_all(&mut consumer));
        producer.send(&payload(0, 16)).unwrap();
        producer.send(&payload(1, 16)).unwrap();
        std::mem::forget(producer);
        let mut producer = Producer::with_backend_taking_over(memory).unwrap();
        producer.send(&payload(2, 16)).unwrap();
        producer.send(&payload(3, 16)).unwrap();
        drop(producer);
        let expected: Vec<Vec<u8>> = (0..4).map(|seq| payload(seq, 16)).collect();
        assert_eq!(reader.join().unwrap(), expected);
    });
}

/// A producer fills the ring before any consumer has attached and blocks
/// on its next send, sleeping slice after slice: its liveness test finds
/// the consumer epoch even (nobody attached, not gone). A consumer then
/// takes the role, its liveness first (as the kernel's role lock is taken
/// before the ring's attach), and receives everything. When the sleeper's
/// test (`peer_gone` in `src/shm/wait.rs`) finds the new consumer's odd
/// epoch, it must also find that consumer alive: only the `Acquire` of its
/// epoch load orders the liveness test after the attach it read. Without
/// it the send ends `Disconnected` while the consumer is alive; killer of
/// the ordering mutant that makes that load `Relaxed`.
///
/// The producer runs in a thread of its own, which has not seen the
/// "nobody holds the role" liveness store itself: loom does not return a
/// store to a thread that saw it before its last yield (a sleep slice is
/// one) once a newer one exists.
#[test]
fn a_sleeping_producer_finds_a_consumer_that_attached_alive() {
    let mut builder = builder();
    builder.preemption_bound = Some(env_usize("SHMSG_LOOM_SLEEPER_PREEMPTIONS", 3));
    builder.check(|| {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0)
            .tracking_liveness()
            .with_slice_timeouts()
            .with_spin_limit(0);
        // Nobody holds the consumer role yet.
        memory.mark(Peer::Role(Role::Consumer), true);
        let m = memory.clone();
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
        // A consumer that comes late: once the producer has slept a
        // slice, and after one more yield, so that the producer's next
        // round may begin before the attach (and, within the preemption
        // bound, the attach may fall inside that round).
        while memory.sleeps() == 0 {
            loom::thread::yield_now();
        }
        loom::thread::yield_now();
        memory.mark(Peer::Role(Role::Consumer), false);
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let received = receive_all(&mut consumer);
        let sent = producer.join().unwrap();
        let expected: Vec<_> = (0..sent).map(|i| payload(i, 5)).collect();
        assert_eq!(received, expected);
    });
}
