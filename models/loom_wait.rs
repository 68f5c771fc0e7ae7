//! Loom model of the wait protocol (`shmsg::shm::wait`): the spin-then-futex
//! eventcount of the rings, and its descriptor sleepers (event loops), run
//! on the production code through the model backend in `common/`, with a
//! model futex and a model descriptor.
//!
//! # What it proves
//!
//! The model backend's spin limit is 0, so every wait skips the spin phase:
//! it announces itself, fences, re-checks the ring and sleeps on the model
//! futex (a loom mutex and condition variable, no timeout). An event-loop
//! waiter follows the rule of the handles' `readiness()` docs: attempt;
//! `arm()` (announce a descriptor sleeper, fence); attempt again; wait on
//! the ring's model descriptor (`wait_descriptor`: an eventfd in semaphore
//! mode, blocking until a signal is pending, no timeout); `disarm()`. A
//! wake-up that the protocol loses leaves a thread asleep for good, and
//! loom reports the deadlock. For every interleaving and weak-memory
//! outcome loom explores within the preemption bound:
//!
//! * a consumer asleep on an empty ring is woken by the next publish
//!   (`ping_pong`: two rings, each side sleeps for the other's message, so a
//!   lost wake-up in either direction deadlocks both);
//! * a producer asleep on a full ring is woken by the consumer's release
//!   (`producer_sleeps_for_space`);
//! * mixed waiters, both directions: an event-loop consumer waiting on the
//!   `Data` descriptor is signalled by a producer that itself sleeps on the
//!   futex for space (`event_loop_consumer`), and an event-loop producer
//!   waiting on the `Space` descriptor is signalled by a consumer that
//!   sleeps on the futex for data (`event_loop_producer`); the handles stay
//!   attached until every message is in, so no detach hides a lost one;
//! * both kinds of sleepers on one event at once: an `Mpmc` ring whose two
//!   consumers wait for `Data`, one on the futex and one on the descriptor;
//!   one notifier's wake-up reaches both (`both_sleepers_on_one_event`,
//!   which also requires that some execution has both announced at once);
//! * a detach wakes a peer asleep on either event, which then reports
//!   `Disconnected` (`detach_wakes_*`), and signals a peer waiting on
//!   either descriptor (`detach_signals_*`);
//! * and every message arrives complete, in order, exactly once.
//!
//! Each mixed model also requires that the event loop reached its
//! descriptor wait in some execution, so the descriptor path is exercised.
//!
//! # Bounds
//!
//! 64-byte rings, one or two round trips or two or three messages, and a
//! preemption bound of 3; `SHMSG_LOOM_WAIT_PREEMPTIONS` overrides it, and
//! `LOOM_MAX_PREEMPTIONS` does up to 4 (see `builder`). The `Mpmc` model
//! (three threads that all wait) is capped at 2
//! (`SHMSG_LOOM_WAIT_MPMC_PREEMPTIONS` overrides it). Counts and times are
//! in `models/README.md`.
//!
//! # Teeth
//!
//! `seeded_*` compile one defect into the production wait protocol and
//! require a loom deadlock: the fence between a waiter's announcement and its
//! re-check removed (`no_waiter_fence`; also beside each event loop, so the
//! futex sleepers of the mixed models have teeth), the producer's look for a
//! sleeper moved before its publish (`notify_before_publish`; also with an
//! event-loop consumer), an event loop that arms without announcing itself
//! (`arm_without_announce`), and a notifier that wakes the futex but never
//! signals the descriptor (`wake_futex_only`); the last two in each mixed
//! model.

mod common;

use common::loom_model::LoomBackend;
use common::*;
use shmsg::Error;
use shmsg::shm::layout::RingKind;
use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::wait::{descriptor_sleepers, sleepers};
use shmsg::shm::{Geometry, mpmc};
use shmsg::sync::{Backend, Event, Word};
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

/// The bound of the `Mpmc` model (three threads that all wait):
/// `SHMSG_LOOM_WAIT_MPMC_PREEMPTIONS` if set, else `builder`'s bound capped
/// at 2 (bound 3 explores 439089 executions, about 100 s in debug; the
/// deep tier's 5 would take hours).
fn mpmc_builder() -> loom::model::Builder {
    let mut builder = builder();
    let own = std::env::var("SHMSG_LOOM_WAIT_MPMC_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok());
    builder.preemption_bound = match (own, builder.preemption_bound) {
        (Some(bound), _) => Some(bound),
        (None, bound) => bound.map(|b| b.min(2)),
    };
    builder
}

/// A fresh 64-byte ring whose waits sleep at once.
fn ring<F: FaultSet>() -> LoomBackend<F> {
    LoomBackend::<F>::new(Geometry::new(64, 16).unwrap(), 0).with_spin_limit(0)
}

/// Runs `scenario` under loom and returns how many executions it explored.
fn explore(name: &str, scenario: impl Fn() + Send + Sync + 'static) -> usize {
    explore_with(builder(), name, scenario)
}

/// `explore` with the bounds of `builder`.
fn explore_with(
    builder: loom::model::Builder,
    name: &str,
    scenario: impl Fn() + Send + Sync + 'static,
) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    builder.check(move || {
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

/// What `recv_in_event_loop` needs of a consumer: the same inherent methods
/// on both rings' consumers.
trait EventLoopConsumer {
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error>;
    fn arm(&mut self);
    fn disarm(&mut self);
}

impl<F: FaultSet> EventLoopConsumer for Consumer<LoomBackend<F>> {
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        Consumer::try_recv(self, buf)
    }
    fn arm(&mut self) {
        Consumer::arm(self)
    }
    fn disarm(&mut self) {
        Consumer::disarm(self)
    }
}

impl<F: FaultSet> EventLoopConsumer for mpmc::Consumer<LoomBackend<F>> {
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        mpmc::Consumer::try_recv(self, buf)
    }
    fn arm(&mut self) {
        mpmc::Consumer::arm(self)
    }
    fn disarm(&mut self) {
        mpmc::Consumer::disarm(self)
    }
}

/// Receives one message as a task of an event loop does (the rule of
/// `Consumer::readiness`): attempt; arm; attempt again; wait for the ring's
/// model descriptor (the stand-in for `epoll`), consume one signal, disarm;
/// again. `before_wait` runs before each descriptor wait: the models count
/// the waits there, to show that their schedules reach them.
fn recv_in_event_loop<F: FaultSet>(
    rx: &mut impl EventLoopConsumer,
    descriptor: &LoomBackend<F>,
    buf: &mut Vec<u8>,
    before_wait: &impl Fn(),
) -> Result<usize, Error> {
    loop {
        match rx.try_recv(buf) {
            Err(Error::Empty) => {}
            done => return done,
        }
        rx.arm();
        match rx.try_recv(buf) {
            Err(Error::Empty) => {}
            done => {
                rx.disarm();
                return done;
            }
        }
        before_wait();
        // Without slice timeouts or a dead process the model descriptor
        // returns only with a signal: a lost one blocks for good.
        assert!(descriptor.wait_descriptor(Event::Data));
        rx.disarm();
    }
}

/// Sends `message` as a task of an event loop does (the rule of
/// `Producer::readiness`, waiting for `Space`); see `recv_in_event_loop`.
fn send_in_event_loop<F: FaultSet>(
    tx: &mut Producer<LoomBackend<F>>,
    descriptor: &LoomBackend<F>,
    message: &[u8],
    before_wait: &impl Fn(),
) -> Result<(), Error> {
    loop {
        match tx.try_send(message) {
            Err(Error::Full) => {}
            done => return done,
        }
        tx.arm();
        match tx.try_send(message) {
            Err(Error::Full) => {}
            done => {
                tx.disarm();
                return done;
            }
        }
        before_wait();
        assert!(descriptor.wait_descriptor(Event::Space));
        tx.disarm();
    }
}

/// Requires that the event-loop side of a mixed model waited on its
/// descriptor in some explored execution (else the model would not test
/// the descriptor's wake-up at all).
fn waited(name: &str, waits: &AtomicUsize) {
    let waits = waits.load(Ordering::Relaxed);
    eprintln!("{name}: {waits} descriptor waits over all executions");
    assert!(waits > 0, "{name}: the event loop never waited");
}

/// Mixed waiters, the consumer an event loop: three maximum-size messages
/// through a ring that holds two. The producer thread sends with the
/// blocking `send`, so it sleeps on the futex for space until the consumer
/// releases the first; the consumer receives in an event loop and waits on
/// the `Data` descriptor whenever it is ahead. The producer's handle is
/// returned from its thread, still attached, so no detach's wake-up can
/// rescue a lost one: a signal the event loop misses, or a futex wake-up
/// the producer misses, deadlocks.
fn event_loop_consumer<F: FaultSet>() -> usize {
    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let executions = explore("event_loop_consumer", move || {
        let memory = ring::<F>();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let descriptor = memory.labelled("consumer");
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let count = || {
            counter.fetch_add(1, Ordering::Relaxed);
        };
        let sender = loom::thread::spawn(move || {
            for seq in 0..3 {
                producer.send(&payload(seq, 16)).unwrap();
            }
            producer
        });
        let mut buf = Vec::new();
        for seq in 0..3 {
            let len = recv_in_event_loop(&mut consumer, &descriptor, &mut buf, &count).unwrap();
            assert_eq!(len, 16);
            assert_eq!(buf, payload(seq, 16), "message {seq} differs");
        }
        let producer = sender.join().unwrap();
        // Exactly once: nothing is left in the ring.
        assert!(matches!(consumer.try_recv(&mut buf), Err(Error::Empty)));
        drop(producer);
        assert!(matches!(
            recv_in_event_loop(&mut consumer, &descriptor, &mut buf, &count),
            Err(Error::Disconnected)
        ));
    });
    waited("event_loop_consumer", &waits);
    executions
}

/// Mixed waiters, the producer an event loop: the same three messages, the
/// producer thread sending in an event loop (it waits on the `Space`
/// descriptor while the ring is full), the consumer receiving with the
/// blocking `recv` (it sleeps on the futex for data). The producer's handle
/// stays attached until the consumer has all three, as above.
fn event_loop_producer<F: FaultSet>() -> usize {
    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let executions = explore("event_loop_producer", move || {
        let memory = ring::<F>();
        let descriptor = memory.labelled("producer");
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let mut consumer = Consumer::with_backend(memory).unwrap();
        let counter = counter.clone();
        let sender = loom::thread::spawn(move || {
            let count = || {
                counter.fetch_add(1, Ordering::Relaxed);
            };
            for seq in 0..3 {
                send_in_event_loop(&mut producer, &descriptor, &payload(seq, 16), &count).unwrap();
            }
            producer
        });
        let mut buf = Vec::new();
        for seq in 0..3 {
            let len = consumer.recv(&mut buf).unwrap();
            assert_eq!(len, 16);
            assert_eq!(buf, payload(seq, 16), "message {seq} differs");
        }
        let producer = sender.join().unwrap();
        assert!(matches!(consumer.try_recv(&mut buf), Err(Error::Empty)));
        drop(producer);
        assert!(matches!(consumer.recv(&mut buf), Err(Error::Disconnected)));
    });
    waited("event_loop_producer", &waits);
    executions
}

/// Both kinds of sleepers on one event: an `Mpmc` ring (any consumer takes
/// the next record) with two consumer threads, one receiving with the
/// blocking `recv` (a futex sleeper on `Data`) and one in an event loop (a
/// descriptor sleeper on `Data`), each taking exactly one of the two
/// messages the main thread sends. One notifier's wake-up must reach both:
/// the futex and the descriptor. The producer stays attached until both
/// consumers have their message, so no detach rescues a lost wake-up.
fn both_sleepers_on_one_event<F: FaultSet>() -> usize {
    let waits = Arc::new(AtomicUsize::new(0));
    let both = Arc::new(AtomicUsize::new(0));
    let (counter, both_counter) = (waits.clone(), both.clone());
    let executions = explore_with(mpmc_builder(), "both_sleepers_on_one_event", move || {
        let memory = ring::<F>();
        let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
        let blocking = memory.labelled("futex consumer");
        let mut blocking = mpmc::Consumer::with_backend(blocking, RingKind::Mpmc).unwrap();
        let descriptor = memory.labelled("event-loop consumer");
        let mut event_loop =
            mpmc::Consumer::with_backend(memory.labelled("event-loop consumer"), RingKind::Mpmc)
                .unwrap();
        let futex_side = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            blocking.recv(&mut buf).unwrap();
            (buf, blocking)
        });
        let (counter, both_counter) = (counter.clone(), both_counter.clone());
        let event_loop_side = loom::thread::spawn(move || {
            // Counts the waits, and those that begin while the other
            // consumer is announced on the futex (a load of the event word:
            // `Relaxed`, it orders nothing).
            let count = || {
                counter.fetch_add(1, Ordering::Relaxed);
                let word = descriptor.event(Event::Data).load(Ordering::Relaxed);
                if sleepers(word) > 0 && descriptor_sleepers(word) > 0 {
                    both_counter.fetch_add(1, Ordering::Relaxed);
                }
            };
            let mut buf = Vec::new();
            recv_in_event_loop(&mut event_loop, &descriptor, &mut buf, &count).unwrap();
            (buf, event_loop)
        });
        let sent = [payload(0, 5), payload(1, 11)];
        for message in &sent {
            producer.send(message).unwrap();
        }
        let (a, blocking) = futex_side.join().unwrap();
        let (b, event_loop) = event_loop_side.join().unwrap();
        // Each message exactly once, whole.
        assert!(
            (a == sent[0] && b == sent[1]) || (a == sent[1] && b == sent[0]),
            "received {a:?} and {b:?}"
        );
        drop((blocking, event_loop));
        drop(producer);
    });
    waited("both_sleepers_on_one_event", &waits);
    let both = both.load(Ordering::Relaxed);
    eprintln!("both_sleepers_on_one_event: {both} waits with a futex sleeper announced too");
    assert!(
        both > 0,
        "both kinds of sleepers were never announced at once"
    );
    executions
}

/// An `Mpmc` event-loop consumer whose hand-back is still pending: the
/// main thread sends three messages and stays attached; a blocking
/// consumer takes one, the event-loop consumer two. If the event loop's
/// first record lies after the other consumer's, its hand-back waits for
/// that one's (it stays pending: `try_recv` does not wait), and its next
/// `try_recv` reports `Empty` until the turn arrives, whatever the ring
/// holds. The turn arrives with the other consumer's hand-back, and the
/// event loop waits on the `Data` descriptor: so a hand-back signals the
/// `Data` descriptor sleepers too (`wait::notify_hand_back`).
///
/// Before that fix, this model deadlocked at bound 1 (the event loop
/// waiting on the `Data` descriptor with the third message in the ring
/// and its turn arrived, nobody to signal it); in production, a stall of
/// up to one slice. `seeded_wake_futex_only_*` covers the signal's removal.
fn event_loop_with_pending_hand_back<F: FaultSet>() -> usize {
    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let executions = explore_with(
        mpmc_builder(),
        "event_loop_with_pending_hand_back",
        move || {
            let memory = ring::<F>();
            let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
            let blocking = memory.labelled("futex consumer");
            let mut blocking = mpmc::Consumer::with_backend(blocking, RingKind::Mpmc).unwrap();
            let descriptor = memory.labelled("event-loop consumer");
            let mut event_loop = mpmc::Consumer::with_backend(
                memory.labelled("event-loop consumer"),
                RingKind::Mpmc,
            )
            .unwrap();
            let futex_side = loom::thread::spawn(move || {
                let mut buf = Vec::new();
                blocking.recv(&mut buf).unwrap();
                (vec![buf], blocking)
            });
            let counter = counter.clone();
            let event_loop_side = loom::thread::spawn(move || {
                let count = || {
                    counter.fetch_add(1, Ordering::Relaxed);
                };
                let mut got = Vec::new();
                for _ in 0..2 {
                    let mut buf = Vec::new();
                    recv_in_event_loop(&mut event_loop, &descriptor, &mut buf, &count).unwrap();
                    got.push(buf);
                }
                (got, event_loop)
            });
            let sent = [payload(0, 5), payload(1, 0), payload(2, 3)];
            for message in &sent {
                producer.send(message).unwrap();
            }
            let (mut all, blocking) = futex_side.join().unwrap();
            let (got, event_loop) = event_loop_side.join().unwrap();
            all.extend(got);
            all.sort();
            let mut expected = sent.to_vec();
            expected.sort();
            assert_eq!(all, expected, "not each message exactly once");
            drop((blocking, event_loop));
            drop(producer);
        },
    );
    waited("event_loop_with_pending_hand_back", &waits);
    executions
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

#[test]
fn event_loop_consumer_and_futex_producer() {
    explored(event_loop_consumer::<NoFault>(), 100);
}

#[test]
fn event_loop_producer_and_futex_consumer() {
    explored(event_loop_producer::<NoFault>(), 100);
}

#[test]
fn futex_and_descriptor_sleepers_on_one_event() {
    explored(both_sleepers_on_one_event::<NoFault>(), 100);
}

/// See `event_loop_with_pending_hand_back`.
#[test]
fn mpmc_event_loop_with_pending_hand_back() {
    explored(event_loop_with_pending_hand_back::<NoFault>(), 100);
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

/// An event-loop consumer waiting on the `Data` descriptor gets
/// `Disconnected` when the producer detaches without sending: the detach
/// signals the descriptor.
#[test]
fn detach_signals_event_loop_consumer() {
    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let count = move || {
        counter.fetch_add(1, Ordering::Relaxed);
    };
    explored(
        explore("detach_signals_event_loop_consumer", move || {
            let memory = ring::<NoFault>();
            let producer = Producer::with_backend(memory.clone()).unwrap();
            let descriptor = memory.labelled("consumer");
            let mut consumer = Consumer::with_backend(memory).unwrap();
            let t = loom::thread::spawn(move || drop(producer));
            let result = recv_in_event_loop(&mut consumer, &descriptor, &mut Vec::new(), &count);
            assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
            t.join().unwrap();
        }),
        20,
    );
    waited("detach_signals_event_loop_consumer", &waits);
}

/// An event-loop producer waiting on the `Space` descriptor of a full ring
/// gets `Disconnected` when the consumer detaches.
#[test]
fn detach_signals_event_loop_producer() {
    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let count = move || {
        counter.fetch_add(1, Ordering::Relaxed);
    };
    explored(
        explore("detach_signals_event_loop_producer", move || {
            let memory = ring::<NoFault>();
            let descriptor = memory.labelled("producer");
            let mut producer = Producer::with_backend(memory.clone()).unwrap();
            let consumer = Consumer::with_backend(memory).unwrap();
            let t = loom::thread::spawn(move || drop(consumer));
            // The third message never fits: the producer waits unless it
            // sees the detach first.
            let mut result = Ok(());
            for seq in 0..3 {
                result = send_in_event_loop(&mut producer, &descriptor, &payload(seq, 16), &count);
                if result.is_err() {
                    break;
                }
            }
            assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
            t.join().unwrap();
        }),
        20,
    );
    waited("detach_signals_event_loop_producer", &waits);
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

#[test]
fn seeded_arm_without_announce_is_caught() {
    deadlocks(event_loop_consumer::<ArmWithoutAnnounce>);
}

#[test]
fn seeded_arm_without_announce_is_caught_waiting_for_space() {
    deadlocks(event_loop_producer::<ArmWithoutAnnounce>);
}

#[test]
fn seeded_wake_futex_only_is_caught() {
    deadlocks(event_loop_consumer::<WakeFutexOnly>);
}

#[test]
fn seeded_wake_futex_only_is_caught_waiting_for_space() {
    deadlocks(event_loop_producer::<WakeFutexOnly>);
}

/// A hand-back that signals no event-loop consumer strands one whose turn
/// it brings (`event_loop_with_pending_hand_back`).
#[test]
fn seeded_no_hand_back_signal_is_caught() {
    deadlocks(event_loop_with_pending_hand_back::<NoHandBackSignal>);
}

#[test]
fn seeded_wake_futex_only_is_caught_with_both_sleepers_on_one_event() {
    deadlocks(both_sleepers_on_one_event::<WakeFutexOnly>);
}

#[test]
fn seeded_arm_without_announce_is_caught_with_both_sleepers_on_one_event() {
    deadlocks(both_sleepers_on_one_event::<ArmWithoutAnnounce>);
}

/// The futex sleepers of the mixed models have teeth too: the producer
/// sleeping for space beside an event-loop consumer, and the consumer
/// sleeping for data beside an event-loop producer.
#[test]
fn seeded_no_waiter_fence_is_caught_beside_an_event_loop_consumer() {
    deadlocks(event_loop_consumer::<NoWaiterFence>);
}

#[test]
fn seeded_no_waiter_fence_is_caught_beside_an_event_loop_producer() {
    deadlocks(event_loop_producer::<NoWaiterFence>);
}

/// A descriptor sleeper misses a record whose notifier looked for sleepers
/// before publishing it, as a futex sleeper does.
#[test]
fn seeded_notify_before_publish_is_caught_by_an_event_loop_consumer() {
    deadlocks(event_loop_consumer::<NotifyBeforePublish>);
}
