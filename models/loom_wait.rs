//! Loom model of the wait protocol (`shmsg::shm::wait`): the spin-then-futex
//! eventcount of the single-producer ring, run on the production code
//! through the model backend in `common/`, with a model futex.
//!
//! # What it proves
//!
//! The model backend's spin limit is 0, so every wait skips the spin phase:
//! it announces itself, fences, re-checks the ring and sleeps on the model
//! futex (a loom mutex and condition variable, no timeout). A wake-up that
//! the protocol loses leaves a thread asleep for good, and loom reports the
//! deadlock. For every interleaving and weak-memory outcome loom explores
//! within the preemption bound:
//!
//! * a consumer asleep on an empty ring is woken by the next publish
//!   (`ping_pong`: two rings, each side sleeps for the other's message, so a
//!   lost wake-up in either direction deadlocks both);
//! * a producer asleep on a full ring is woken by the consumer's release
//!   (`producer_sleeps_for_space`);
//! * a detach wakes a peer asleep on either event, which then reports
//!   `Disconnected` (`detach_wakes_*`);
//! * and the streams arrive complete, in order, byte for byte.
//!
//! # Bounds
//!
//! 64-byte rings, one or two round trips or three messages, and a preemption
//! bound of 3; `SHMSG_LOOM_WAIT_PREEMPTIONS` overrides it, and
//! `LOOM_MAX_PREEMPTIONS` does up to 4 (see `builder`). Counts and times are
//! in `models/README.md`.
//!
//! # Teeth
//!
//! `seeded_*` compile one defect into the production wait protocol and
//! require a loom deadlock: the fence between a waiter's announcement and its
//! re-check removed (`no_waiter_fence`), and the producer's look for a
//! sleeper moved before its publish (`notify_before_publish`).

mod common;

use common::loom_model::LoomBackend;
use common::*;
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::spsc::{Consumer, Producer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The preemption bound: `SHMSG_LOOM_WAIT_PREEMPTIONS` if set, else
/// `LOOM_MAX_PREEMPTIONS` capped at 4, else 3. The cap keeps the deep tier's
/// global bound (6, meant for the ring models) from making this model run for
/// hours: its two model futexes and twice the atomics grow much faster with
/// the bound (see `models/README.md`).
fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    let own = std::env::var("SHMSG_LOOM_WAIT_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok());
    builder.preemption_bound = Some(match (own, builder.preemption_bound) {
        (Some(bound), _) => bound,
        (None, Some(global)) => global.min(4),
        (None, None) => 3,
    });
    builder
}

/// A fresh 64-byte ring whose waits sleep at once.
fn ring<F: FaultSet>() -> LoomBackend<F> {
    LoomBackend::<F>::new(Geometry::new(64, 16).unwrap(), 0).with_spin_limit(0)
}

/// Runs `scenario` under loom and returns how many executions it explored.
fn explore(name: &str, scenario: impl Fn() + Send + Sync + 'static) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    builder().check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        scenario();
    });
    let executions = executions.load(Ordering::Relaxed);
    eprintln!("loom explored {executions} executions of {name}");
    executions
}

/// `rounds` round trips: the main thread sends a request on one ring and
/// sleeps for the reply on the other; the echo thread sleeps for the
/// request and replies. Neither side detaches before the last reply, so a
/// lost wake-up cannot be rescued by a detach's wake-up.
fn ping_pong<F: FaultSet>(rounds: usize) -> usize {
    explore("ping_pong", move || {
        let requests = ring::<F>();
        let replies = ring::<F>();
        let mut ask = Producer::with_backend(requests.clone()).unwrap();
        let mut listen = Consumer::with_backend(requests).unwrap();
        let mut answer = Producer::with_backend(replies.clone()).unwrap();
        let mut hear = Consumer::with_backend(replies).unwrap();
        let echo = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            for _ in 0..rounds {
                listen.recv(&mut buf).unwrap();
                answer.send(&buf).unwrap();
            }
        });
        let mut buf = Vec::new();
        for seq in 0..rounds {
            let message = payload(seq, 3 + seq);
            ask.send(&message).unwrap();
            hear.recv(&mut buf).unwrap();
            assert_eq!(buf, message, "reply {seq} differs");
        }
        echo.join().unwrap();
    })
}

/// Three maximum-size messages through a ring that holds two: the producer
/// sleeps for space until the consumer releases the first, and the consumer
/// sleeps for data whenever it is ahead. The producer cannot detach before
/// its third message is in, so a lost space wake-up deadlocks.
fn producer_sleeps_for_space<F: FaultSet>() -> usize {
    explore("producer_sleeps_for_space", || {
        let memory = ring::<F>();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let sender = loom::thread::spawn(move || {
            for seq in 0..3 {
                producer.send(&payload(seq, 16)).unwrap();
            }
        });
        let mut buf = Vec::new();
        for seq in 0..3 {
            consumer.recv(&mut buf).unwrap();
            assert_eq!(buf, payload(seq, 16), "message {seq} differs");
        }
        assert!(matches!(consumer.recv(&mut buf), Err(Error::Disconnected)));
        sender.join().unwrap();
    })
}

/// The loom scenarios must explore many schedules to mean anything; a
/// protocol change that serialized the threads would show here.
fn explored(executions: usize, at_least: usize) {
    assert!(
        executions >= at_least,
        "loom explored only {executions} executions"
    );
}

#[test]
fn ping_pong_one_round() {
    explored(ping_pong::<NoFault>(1), 100);
}

#[test]
fn ping_pong_two_rounds() {
    explored(ping_pong::<NoFault>(2), 100);
}

#[test]
fn producer_sleeps_for_space_and_is_woken() {
    explored(producer_sleeps_for_space::<NoFault>(), 100);
}

/// A consumer asleep on an empty ring gets `Disconnected` when the producer
/// detaches without sending.
#[test]
fn detach_wakes_sleeping_consumer() {
    explored(
        explore("detach_wakes_sleeping_consumer", || {
            let memory = ring::<NoFault>();
            let producer = Producer::with_backend(memory.clone()).unwrap();
            let mut consumer = Consumer::with_backend(memory).unwrap();
            let t = loom::thread::spawn(move || drop(producer));
            assert!(matches!(
                consumer.recv(&mut Vec::new()),
                Err(Error::Disconnected)
            ));
            t.join().unwrap();
        }),
        20,
    );
}

/// A producer asleep on a full ring gets `Disconnected` when the consumer
/// detaches.
#[test]
fn detach_wakes_sleeping_producer() {
    explored(
        explore("detach_wakes_sleeping_producer", || {
            let memory = ring::<NoFault>();
            let mut producer = Producer::with_backend(memory.clone()).unwrap();
            let consumer = Consumer::with_backend(memory).unwrap();
            let t = loom::thread::spawn(move || drop(consumer));
            // The third message never fits: the producer sleeps unless it sees
            // the detach first.
            let mut result = Ok(());
            for seq in 0..3 {
                result = producer.send(&payload(seq, 16));
                if result.is_err() {
                    break;
                }
            }
            assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
            t.join().unwrap();
        }),
        20,
    );
}

/// Requires `scenario` to fail under loom with a deadlock: the symptom of a
/// lost wake-up.
fn deadlocks(scenario: impl FnOnce() -> usize) {
    let message = panic_message(|| {
        scenario();
    })
    .expect("loom accepted a seeded defect");
    assert!(
        message.contains("deadlock"),
        "loom failed, but not with a deadlock: {message}"
    );
}

#[test]
fn seeded_no_waiter_fence_is_caught() {
    deadlocks(|| ping_pong::<NoWaiterFence>(1));
}

#[test]
fn seeded_no_waiter_fence_is_caught_on_a_full_ring() {
    deadlocks(producer_sleeps_for_space::<NoWaiterFence>);
}

#[test]
fn seeded_notify_before_publish_is_caught() {
    deadlocks(|| ping_pong::<NotifyBeforePublish>(1));
}
