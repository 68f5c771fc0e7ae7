//! Loom models of the rings' fault paths, run on the production protocol
//! code through the model backend in `common/`: processes that crash at
//! any step, a producer that takes over from a dead one, and the watchdog
//! that detaches a dead receiver on its behalf ([`shmsg::shm::watch`]).
//!
//! # How a crash is modelled
//!
//! A handle built on `memory.crashing_after(k)` panics with `Crashed` just
//! before its `k`-th memory access (a control, event or data word, or a
//! payload copy). While that panic unwinds, the model memory drops every
//! store and wake-up, so the handle's `Drop` (its clean detach) does
//! nothing: what is left in memory is exactly what a process killed at that
//! point leaves. The thread catches the panic and marks its process dead
//! (`memory.mark`), which is what the kernel's lock reports after a
//! SIGKILL; the death also wakes sleepers, as the end of their sleep slice
//! eventually would. Each scenario runs for every `k` from 0 until the
//! handle's whole life completes without reaching `k`.
//!
//! # What it proves
//!
//! * `spsc_producer_crash_and_takeover`: for every crash step of the
//!   producer and every interleaving within the bound, a producer that
//!   takes over resumes after the last record its predecessor committed
//!   (the tail recovery): the consumer receives every message the dead
//!   producer completed, at most the one it was writing (whole), then the
//!   new producer's, in order, untorn, no data race, then `Disconnected`.
//! * `spsc_consumer_crash_and_watchdog`: the consumer crashes at any step
//!   while a watchdog thread looks at it. The watchdog never detaches a
//!   live consumer; once it detached a dead one, the producer's next send
//!   is `Disconnected`; what the consumer received before it died is an
//!   untorn prefix, in order.
//! * `spsc_watchdog_races_a_takeover`: the consumer dies at any step, and
//!   a new consumer takes over while the watchdog looks: the new consumer
//!   receives the rest in order (the dead one's last message may come
//!   again: at-least-once), and whatever order the takeover and the
//!   watchdog ran in, the consumer epoch says attached while the new
//!   consumer holds the role and detached once it left.
//! * `a_watchdog_finds_a_consumer_that_took_a_slot_over_alive`: an `Mpmc`
//!   consumer dies and another takes its slot over while a watchdog looks:
//!   the watchdog never detaches the live newcomer.
//! * `a_consumer_recovers_a_message_held_by_a_detached_dead_one`: the
//!   message of an `Mpmc` consumer that died holding it is recovered by
//!   the consumer waiting behind it after the watchdog detached the dead
//!   one, and the producer refills those bytes: no data race.
//! * `two_consumers_hand_a_dead_ones_message_back_once`: two consumers
//!   waiting behind such a message both hand it back; the one that moves
//!   the head may not be the one that zeroed it, and the producer refills
//!   those bytes: no data race, every live message once.
//! * `a_consumer_never_takes_a_slot_whose_claim_is_pending`: an `Mpmc`
//!   consumer dies holding a message, the watchdog detaches its slot, and
//!   a consumer that synchronized with neither attaches to that slot: it
//!   is refused, since taking the slot would clear the claim through which
//!   the others recover the message.
//!
//! # Teeth
//!
//! Seeded defects, one per scenario, make it fail: `no_tail_recovery`
//! (takeover starts at the shared tail), `detach_live_consumer` (the
//! watchdog does not ask), `detach_by_store` (the watchdog's
//! compare-and-swap replaced by a store), `relaxed_slot_epoch` (a slot's
//! epoch loaded `Relaxed` at attach).
//!
//! # Bounds
//!
//! A 64-byte ring, two or three messages, preemption bound 2
//! (`SHMSG_LOOM_FAULTS_PREEMPTIONS` overrides it; the deep tier raises it).

mod common;

use common::loom_model::LoomBackend;
use common::*;
use shmsg::shm::Geometry;
use shmsg::shm::layout::RingKind;
use shmsg::shm::mpmc;
use shmsg::shm::spsc::{Consumer, Producer, detach_dead_consumer};
use shmsg::sync::{Backend, Control, Word};
use shmsg::{Error, Role};

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(env_usize("SHMSG_LOOM_FAULTS_PREEMPTIONS", 2));
    builder
}

/// The multi-producer scenarios' builder: three or four threads, so a
/// bound of their own (`SHMSG_LOOM_FAULTS_MPMC_PREEMPTIONS`, default 1),
/// and room for the long paths of consumers asleep slice after slice.
fn mpmc_builder() -> loom::model::Builder {
    let mut builder = builder();
    builder.preemption_bound = Some(env_usize("SHMSG_LOOM_FAULTS_MPMC_PREEMPTIONS", 1));
    builder.max_branches = 100_000;
    builder
}

/// A 64-byte multi-producer ring whose liveness is tracked over its slots
/// and whose waits sleep at once, every sleep ending as a slice would.
fn sleeping_mpmc_memory<F: FaultSet>() -> LoomBackend<F> {
    LoomBackend::<F>::new(Geometry::new(64, 16).unwrap(), 0)
        .tracking_liveness()
        .multi_producer()
        .with_slice_timeouts()
        .with_spin_limit(0)
}

/// Message `seq` of producer `id`: every byte depends on both, lengths 3 to
/// 10 (records of 16 bytes).
fn message(id: u8, seq: u8) -> Vec<u8> {
    let len = 3 + (seq as usize * 5 + id as usize) % 8;
    let mut m = payload(100 * id as usize + seq as usize, len);
    m[0] = id;
    m[1] = seq;
    m
}

/// Checks that `received` is producer `id`'s messages `0..n` in order,
/// whole; returns `n`.
fn prefix_of(id: u8, received: &[Vec<u8>]) -> usize {
    for (seq, m) in received.iter().enumerate() {
        assert_eq!(m, &message(id, seq as u8), "message {seq} of producer {id}");
    }
    received.len()
}

/// The first `k` for which a handle's whole life (`steps` accesses) never
/// reaches its crash: the loop bound of the scenarios.
const MAX_STEPS: usize = 200;

/// Runs `scenario(k)` for every crash step `k` until one completes without
/// a crash in any execution; returns the number of steps tried.
fn every_crash_step(mut scenario: impl FnMut(usize) -> bool) -> usize {
    quiet_crashes();
    // `SHMSG_LOOM_FAULTS_STEP=k` runs crash step `k` alone (to replay it).
    if let Some(k) = std::env::var("SHMSG_LOOM_FAULTS_STEP")
        .ok()
        .and_then(|k| k.parse().ok())
    {
        scenario(k);
        return k;
    }
    for k in 0..MAX_STEPS {
        if !scenario(k) {
            return k;
        }
    }
    panic!("the handle still crashed after {MAX_STEPS} steps");
}

/// Whether some execution of one scenario run crashed: one per run, as
/// the tests run in parallel.
#[derive(Clone, Default)]
struct CrashSeen(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CrashSeen {
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn producer_crash_and_takeover<F: FaultSet>(k: usize) -> bool {
    let seen = CrashSeen::default();
    let crash_seen = seen.clone();
    builder().check(move || {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<F>::new(geometry, 0).tracking_liveness();
        let mut consumer = Consumer::with_backend(memory.clone()).unwrap();
        let reader = loom::thread::spawn(move || receive_all(&mut consumer));
        let m = memory.clone();
        let mut completed = 0;
        let crashed = may_crash(|| {
            let mut p = Producer::with_backend(m.crashing_after(k)).unwrap();
            for seq in 0..2 {
                p.send(&message(0, seq)).unwrap();
                completed += 1;
            }
        });
        let mut second = 0;
        if crashed {
            crash_seen.set();
            memory.mark(Peer::Role(Role::Producer), true);
            // Killed after its detach store, the producer had in effect left
            // (the stream is over, the consumer may be gone): no takeover.
            let epoch = memory
                .control(Control::ProducerEpoch)
                .load(std::sync::atomic::Ordering::Acquire);
            let left = epoch != 0 && epoch.is_multiple_of(2);
            if !left {
                // A new process takes the producer's role over (its lock
                // first).
                memory.mark(Peer::Role(Role::Producer), false);
                let mut p = Producer::with_backend_taking_over(memory.clone()).unwrap();
                for seq in 0..2 {
                    p.send(&message(1, seq)).unwrap();
                    second += 1;
                }
            }
        }
        let received = reader.join().unwrap();
        let from_first = received.iter().take_while(|m| m[0] == 0).count();
        let n = prefix_of(0, &received[..from_first]);
        assert!(
            n == completed || (crashed && n == completed + 1),
            "{n} messages of the first producer arrived, {completed} completed"
        );
        let rest = &received[from_first..];
        assert_eq!(prefix_of(1, rest), second, "the new producer's messages");
    });
    seen.get()
}

#[test]
fn spsc_producer_crash_and_takeover() {
    let steps = every_crash_step(producer_crash_and_takeover::<NoFault>);
    eprintln!("producer crash: {steps} crash steps, each explored by loom");
}

#[test]
fn seeded_no_tail_recovery_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(producer_crash_and_takeover::<NoTailRecovery>);
    });
    assert!(failed.is_some(), "loom accepted the seeded defect");
}

/// The consumer crashes at step `k` while the producer sends three
/// messages with `try_send` and a watchdog looks twice.
fn consumer_crash_and_watchdog<F: FaultSet>(k: usize) -> bool {
    let seen = CrashSeen::default();
    let crash_seen = seen.clone();
    builder().check(move || {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<F>::new(geometry, 0).tracking_liveness();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        let m = memory.clone();
        let consumer = loom::thread::spawn(move || {
            let mut received = Vec::new();
            let crashed = may_crash(|| {
                let mut c = Consumer::with_backend(m.crashing_after(k)).unwrap();
                let mut buf = Vec::new();
                while received.len() < 3 {
                    match c.try_recv(&mut buf) {
                        Ok(_) => received.push(buf.clone()),
                        Err(Error::Empty) => loom::thread::yield_now(),
                        Err(other) => panic!("consumer: {other}"),
                    }
                }
            });
            if crashed {
                m.mark(Peer::Role(Role::Consumer), true);
            }
            (crashed, received)
        });
        let m = memory.labelled("watchdog");
        let watchdog = loom::thread::spawn(move || {
            (0..2).any(|_| {
                let detached = detach_dead_consumer(&m);
                loom::thread::yield_now();
                detached
            })
        });
        let mut sent = 0u8;
        let mut disconnected = false;
        for _ in 0..3 {
            match producer.try_send(&message(0, sent)) {
                Ok(()) => sent += 1,
                Err(Error::Full) => {}
                Err(Error::Disconnected) => disconnected = true,
                Err(other) => panic!("producer: {other}"),
            }
            loom::thread::yield_now();
        }
        let (crashed, received) = consumer.join().unwrap();
        let detached = watchdog.join().unwrap();
        if crashed {
            crash_seen.set();
        }
        assert!(
            crashed || !detached,
            "the watchdog detached a live consumer"
        );
        assert!(!disconnected || detached, "Disconnected with nobody gone");
        if detached {
            assert!(matches!(
                producer.try_send(b"after"),
                Err(Error::Disconnected)
            ));
        }
        prefix_of(0, &received);
        assert!(received.len() <= sent as usize);
    });
    seen.get()
}

#[test]
fn spsc_consumer_crash_and_watchdog() {
    let steps = every_crash_step(consumer_crash_and_watchdog::<NoFault>);
    eprintln!("consumer crash: {steps} crash steps, each explored by loom");
}

#[test]
fn seeded_detach_live_consumer_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(consumer_crash_and_watchdog::<DetachLiveConsumer>);
    });
    assert!(failed.is_some(), "loom accepted the seeded defect");
}

/// The consumer dies at step `k`; a new consumer takes over while the
/// watchdog looks once.
fn watchdog_races_a_takeover<F: FaultSet>(k: usize) -> bool {
    let seen = CrashSeen::default();
    let crash_seen = seen.clone();
    builder().check(move || {
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<F>::new(geometry, 0).tracking_liveness();
        let mut producer = Producer::with_backend(memory.clone()).unwrap();
        for seq in 0..2 {
            producer.send(&message(0, seq)).unwrap();
        }
        drop(producer);
        let mut first = Vec::new();
        let crashed = may_crash(|| {
            let mut c = Consumer::with_backend(memory.crashing_after(k)).unwrap();
            let mut buf = Vec::new();
            loop {
                match c.try_recv(&mut buf) {
                    Ok(_) => first.push(buf.clone()),
                    Err(Error::Disconnected) => break,
                    Err(other) => panic!("consumer: {other}"),
                }
            }
        });
        prefix_of(0, &first);
        if !crashed {
            assert_eq!(first.len(), 2);
            return;
        }
        // What the dead consumer released: its receives returned those
        // messages, except perhaps the last (killed after the release, before
        // the return: lost, as documented; the in-flight message of a
        // consumer killed before its release comes again instead). Records
        // are 16 bytes from position 0.
        let released = (memory
            .control(Control::Head)
            .load(std::sync::atomic::Ordering::Acquire)
            / 16) as usize;
        assert!(
            released == first.len() || released == first.len() + 1,
            "{released} released, {} received",
            first.len()
        );
        crash_seen.set();
        memory.mark(Peer::Role(Role::Consumer), true);
        let m = memory.labelled("watchdog");
        let watchdog = loom::thread::spawn(move || detach_dead_consumer(&m));
        // A new process takes the consumer's role (its lock first).
        memory.mark(Peer::Role(Role::Consumer), false);
        let mut second = Vec::new();
        let mut c = Consumer::with_backend_taking_over(memory.clone()).unwrap();
        let mut buf = Vec::new();
        loop {
            match c.try_recv(&mut buf) {
                Ok(_) => second.push(buf.clone()),
                Err(Error::Disconnected) => break,
                Err(other) => panic!("second consumer: {other}"),
            }
        }
        watchdog.join().unwrap();
        // Whatever order the takeover and the watchdog ran in, the role says
        // attached while the new consumer holds it.
        let epoch = || {
            memory
                .control(Control::ConsumerEpoch)
                .load(std::sync::atomic::Ordering::Acquire)
        };
        assert!(
            !epoch().is_multiple_of(2),
            "consumer epoch {} says detached under a live consumer",
            epoch()
        );
        drop(c);
        // The rest, in order, from the first message not released.
        let resumed = second.first().map_or(2, |m| m[1] as usize);
        assert_eq!(
            resumed, released,
            "the new consumer did not resume at the head"
        );
        for (i, m) in second.iter().enumerate() {
            assert_eq!(m, &message(0, (resumed + i) as u8));
        }
        assert_eq!(resumed + second.len(), 2, "messages lost");
        assert!(
            epoch().is_multiple_of(2),
            "consumer epoch {} after it left",
            epoch()
        );
    });
    seen.get()
}

#[test]
fn spsc_watchdog_races_a_takeover() {
    let steps = every_crash_step(watchdog_races_a_takeover::<NoFault>);
    eprintln!("watchdog vs takeover: {steps} crash steps, each explored by loom");
}

#[test]
fn seeded_detach_by_store_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(watchdog_races_a_takeover::<DetachByStore>);
    });
    assert!(failed.is_some(), "loom accepted the seeded defect");
}

/// An `Mpmc` ring with two consumers: consumer 0 crashes at step `k` of
/// receiving one message, consumer 1 receives until `Disconnected`, the
/// producer sends two messages and leaves. Consumer 1 must get every
/// message but the one consumer 0 returned and, if it crashed, at most the
/// one it held (recovered for it, not delivered again), in order, untorn:
/// a dead consumer never stops the others.
fn mpmc_consumer_crash<F: FaultSet>(k: usize) -> bool {
    const SENT: u8 = 2;
    let seen = CrashSeen::default();
    let crash_seen = seen.clone();
    mpmc_builder().check(move || {
        let memory = sleeping_mpmc_memory::<F>();
        let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
        // Consumer 1 is attached before consumer 0 can leave: a ring whose
        // consumers have all left refuses sends (`Disconnected`).
        let mut c =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 1, false).unwrap();
        let m = memory.clone();
        let first = loom::thread::spawn(move || {
            let mut got = Vec::new();
            let crashed = may_crash(|| {
                let mut c = mpmc::Consumer::with_backend_in_slot(
                    m.crashing_after(k),
                    RingKind::Mpmc,
                    0,
                    false,
                )
                .unwrap();
                let mut buf = Vec::new();
                match c.recv(&mut buf) {
                    Ok(_) => got.push(buf.clone()),
                    Err(Error::Disconnected) => {}
                    Err(other) => panic!("consumer 0: {other}"),
                }
            });
            if crashed {
                m.mark(Peer::Slot(Role::Consumer, 0), true);
            }
            (crashed, got)
        });
        let second = loom::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = Vec::new();
            loop {
                match c.recv(&mut buf) {
                    Ok(_) => got.push(buf.clone()),
                    Err(Error::Disconnected) => return got,
                    Err(other) => panic!("consumer 1: {other}"),
                }
            }
        });
        for seq in 0..SENT {
            producer.send(&message(0, seq)).unwrap();
        }
        drop(producer);
        let (crashed, first_got) = first.join().unwrap();
        let second_got = second.join().unwrap();
        if crashed {
            crash_seen.set();
        }
        let mut seqs: Vec<u8> = Vec::new();
        for m in first_got.iter().chain(&second_got) {
            assert_eq!(m, &message(0, m[1]), "a torn message");
            seqs.push(m[1]);
        }
        assert!(
            second_got.windows(2).all(|w| w[0][1] < w[1][1]),
            "consumer 1 out of order"
        );
        let mut sorted = seqs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seqs.len(), "a message delivered twice");
        let lost = SENT as usize - seqs.len();
        assert!(
            lost == 0 || (crashed && lost == 1),
            "{lost} messages lost (consumer 0 crashed at step {k}: {crashed}; it got {:?}, consumer 1 {:?})",
            first_got.iter().map(|m| m[1]).collect::<Vec<_>>(),
            second_got.iter().map(|m| m[1]).collect::<Vec<_>>()
        );
    });
    seen.get()
}

#[test]
fn mpmc_consumer_crash_never_stops_the_others() {
    let steps = every_crash_step(mpmc_consumer_crash::<NoFault>);
    eprintln!("mpmc consumer crash: {steps} crash steps, each explored by loom");
}

#[test]
fn seeded_recover_live_consumer_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(mpmc_consumer_crash::<RecoverLiveConsumer>);
    });
    assert!(failed.is_some(), "loom accepted the seeded defect");
}

/// An `Mpmc` consumer dies holding a message it claimed (its closure
/// never returns: a crash before the hand-back), and the watchdog
/// detaches its slot on its behalf. The slot's claim stays pending: the
/// surviving consumers recover the message through it. A consumer that
/// attaches meanwhile in another thread, one that has synchronized with
/// neither the dead one nor the watchdog (it waits for the watchdog
/// outside the model), must not take that slot: taking it clears the
/// claim, and the ring would stall at the abandoned message forever. The
/// attach decides on the epoch its compare-and-swap replaces, so it must
/// read the claim after acquiring that epoch (the watchdog's detach,
/// which follows the dead consumer's claim).
fn pending_claim_kept<F: FaultSet>() {
    quiet_crashes();
    mpmc_builder().check(|| {
        use std::sync::atomic::AtomicBool;
        let geometry = Geometry::new(64, 16).unwrap();
        // From position 16: a stale claim word (0, the initial value, or
        // "none") never names the message.
        let memory = LoomBackend::<F>::new(geometry, 16)
            .tracking_liveness()
            .multi_producer();
        let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
        let mut survivor =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 1, false).unwrap();
        producer.send(&message(0, 0)).unwrap();
        let watched = std::sync::Arc::new(AtomicBool::new(false));
        let (m, seen) = (memory.clone(), watched.clone());
        let newcomer = loom::thread::spawn(move || {
            while !seen.load(std::sync::atomic::Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            mpmc::Consumer::with_backend_in_slot(m, RingKind::Mpmc, 0, false).map(drop)
        });
        let m = memory.clone();
        let holder = loom::thread::spawn(move || {
            let crashed = may_crash(|| {
                let mut dead =
                    mpmc::Consumer::with_backend_in_slot(m.clone(), RingKind::Mpmc, 0, false)
                        .unwrap();
                let _ = dead.try_recv_with(|_| std::panic::panic_any(Crashed));
            });
            assert!(crashed, "the holder received nothing to die on");
            m.mark(Peer::Slot(Role::Consumer, 0), true);
        });
        holder.join().unwrap();
        assert_eq!(mpmc::detach_dead_consumers(&memory, RingKind::Mpmc), 1);
        watched.store(true, std::sync::atomic::Ordering::Relaxed);
        let attached = newcomer.join().unwrap();
        assert!(
            matches!(attached, Err(Error::RoleTaken(Role::Consumer))),
            "a consumer took the slot of a pending claim: {attached:?}"
        );
        drop(survivor.try_recv(&mut Vec::new()));
        drop(producer);
    });
}

#[test]
fn a_consumer_never_takes_a_slot_whose_claim_is_pending() {
    pending_claim_kept::<NoFault>();
}

#[test]
fn seeded_relaxed_slot_epoch_is_caught() {
    let failed = panic_message(pending_claim_kept::<RelaxedSlotEpoch>);
    assert!(
        failed.is_some_and(|m| m.contains("pending claim")),
        "loom accepted the seeded defect"
    );
}

/// An `Mpmc` consumer dies (forgotten, still attached); a consumer takes
/// its slot over in another thread (its liveness first: the slot lock,
/// taken before the ring's attach), and a watchdog that has synchronized
/// with neither looks once the takeover is done. It must not detach the
/// new, live consumer: when it reads the slot's new epoch it must also see
/// the new holder alive. The `Release` of the slot's compare-and-swap in
/// `attach_slot` (`src/shm/mpmc/mod.rs`) carries the liveness to it; the
/// killer of the ordering mutant that makes that compare-and-swap
/// `Relaxed`.
#[test]
fn a_watchdog_finds_a_consumer_that_took_a_slot_over_alive() {
    mpmc_builder().check(|| {
        use std::sync::atomic::AtomicBool;
        let geometry = Geometry::new(64, 16).unwrap();
        let memory = LoomBackend::<NoFault>::new(geometry, 0)
            .tracking_liveness()
            .multi_producer();
        let dead =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 0, false).unwrap();
        std::mem::forget(dead);
        memory.mark(Peer::Slot(Role::Consumer, 0), true);
        let taken = std::sync::Arc::new(AtomicBool::new(false));
        let (m, done) = (memory.clone(), taken.clone());
        let heir = loom::thread::spawn(move || {
            m.mark(Peer::Slot(Role::Consumer, 0), false);
            let heir = mpmc::Consumer::with_backend_in_slot(m, RingKind::Mpmc, 0, true).unwrap();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            heir
        });
        let m = memory.clone();
        let watchdog = loom::thread::spawn(move || {
            while !taken.load(std::sync::atomic::Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            mpmc::detach_dead_consumers(&m, RingKind::Mpmc)
        });
        let heir = heir.join().unwrap();
        assert_eq!(
            watchdog.join().unwrap(),
            0,
            "the watchdog detached the consumer that took the slot over"
        );
        drop(heir);
    });
}

/// An `Mpmc` consumer died holding message 0 (the watchdog has detached
/// it); two consumers, each holding a message after it and waiting for its
/// hand-back turn, hand it back for the dead one, and the producer sends a
/// message that wraps onto message 0's bytes as soon as the head has
/// passed them. The hand-back is decided on message 0's header word: one
/// consumer swaps its mark in, zeroes the payload and stores a zero
/// header; the head is then moved, once, by whichever of the two
/// compare-and-swaps it first.
///
/// When the one that moves the head is not the one that zeroed, only the
/// zero header's `Release` store and the `Acquire` load that reads it (in
/// `recover_abandoned`) order the zeroing before the head's `Release`,
/// which the producer acquires before writing there: either made
/// `Relaxed`, loom reports a data race on message 0's bytes.
#[test]
fn two_consumers_hand_a_dead_ones_message_back_once() {
    quiet_crashes();
    mpmc_builder().check(|| {
        let memory = sleeping_mpmc_memory::<NoFault>();
        let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
        // 16 bytes at 0 (a record of 24), 3 at 24 and 3 at 40; then
        // padding at 56 and 16 bytes at 0 again.
        let sent = [payload(0, 16), payload(1, 3), payload(2, 3), payload(3, 16)];
        for m in &sent[..3] {
            producer.send(m).unwrap();
        }
        let mut dead =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 0, false).unwrap();
        let crashed = may_crash(|| {
            let _ = dead.try_recv_with(|_| std::panic::panic_any(Crashed));
        });
        assert!(crashed, "the first consumer had nothing to die on");
        std::mem::forget(dead);
        memory.mark(Peer::Slot(Role::Consumer, 0), true);
        assert_eq!(mpmc::detach_dead_consumers(&memory, RingKind::Mpmc), 1);
        let waiting: Vec<_> = [1, 2]
            .into_iter()
            .map(|index| {
                let mut c = mpmc::Consumer::with_backend_in_slot(
                    memory.clone(),
                    RingKind::Mpmc,
                    index,
                    false,
                )
                .unwrap();
                loom::thread::spawn(move || {
                    let mut buf = Vec::new();
                    c.recv(&mut buf).unwrap();
                    (c, buf)
                })
            })
            .collect();
        producer.send(&sent[3]).unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut handles = Vec::new();
        for w in waiting {
            let (c, buf) = w.join().unwrap();
            got.push(buf);
            handles.push(c);
        }
        let mut buf = Vec::new();
        handles[0].recv(&mut buf).unwrap();
        got.push(buf);
        got.sort();
        let mut expected = sent[1..].to_vec();
        expected.sort();
        assert_eq!(got, expected, "lost, torn or twice");
        drop(producer);
    });
}

/// Two `Mpmc` consumers: the first claims message 0, reads it and dies
/// before its hand-back; the second receives message 1 and waits for its
/// hand-back turn, which never comes while message 0 is held, sleeping
/// slice after slice. The watchdog detaches the dead consumer (its slot's
/// epoch even, the claim still there), and the waiting consumer, on a
/// look after a slice, recovers message 0 for it: zeroes it and moves the
/// head. Meanwhile the producer sends two more messages; the second wraps
/// onto message 0's bytes as soon as the head has passed them.
///
/// * The zeroing must come after the dead consumer's read of the same
///   bytes: a detached holder gets no liveness test, so only the
///   `Acquire` of the epoch load in `recover_abandoned` (which reads the
///   watchdog's detach, which read the death) orders them.
/// * The producer's write must come after the zeroing: the producer may
///   find room by reading the recovery's head store before the recoverer
///   hands its own message back, so only that store's `Release` orders
///   them.
///
/// Either made `Relaxed`, loom reports a data race on message 0's bytes.
#[test]
fn a_consumer_recovers_a_message_held_by_a_detached_dead_one() {
    quiet_crashes();
    mpmc_builder().check(|| {
        let memory = sleeping_mpmc_memory::<NoFault>();
        let mut producer = mpmc::Producer::with_backend(memory.clone()).unwrap();
        let mut dead =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 0, false).unwrap();
        let mut waiting =
            mpmc::Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 1, false).unwrap();
        // 24 bytes at 0, 16 at 24; then 16 at 40 and, once the head has
        // passed message 0, padding at 56 and 16 bytes at 0.
        let sent = [payload(0, 16), payload(1, 3), payload(2, 8), payload(3, 8)];
        producer.send(&sent[0]).unwrap();
        producer.send(&sent[1]).unwrap();
        // The second consumer starts once message 0 is claimed (it waits
        // outside the model, acquiring nothing from the first).
        let claimed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, done) = (memory.clone(), claimed.clone());
        let holder = loom::thread::spawn(move || {
            let crashed = may_crash(|| {
                let _ = dead.try_recv_with(|payload| {
                    let _ = payload.iter().map(|&b| u64::from(b)).sum::<u64>();
                    std::panic::panic_any(Crashed)
                });
            });
            assert!(crashed, "the first consumer had nothing to die on");
            std::mem::forget(dead);
            m.mark(Peer::Slot(Role::Consumer, 0), true);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let second = loom::thread::spawn(move || {
            while !claimed.load(std::sync::atomic::Ordering::Relaxed) {
                loom::thread::yield_now();
            }
            let mut buf = Vec::new();
            (0..3)
                .map(|_| {
                    waiting.recv(&mut buf).unwrap();
                    buf.clone()
                })
                .collect::<Vec<_>>()
        });
        holder.join().unwrap();
        // The watchdog, after the death (it acquired it through the join).
        assert_eq!(mpmc::detach_dead_consumers(&memory, RingKind::Mpmc), 1);
        producer.send(&sent[2]).unwrap();
        producer.send(&sent[3]).unwrap();
        // Message 0 went with the dead consumer (at most once for it).
        assert_eq!(second.join().unwrap(), sent[1..].to_vec());
        drop(producer);
    });
}
