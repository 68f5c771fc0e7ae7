//! Shuttle models of the multi-producer rings' fault paths, on the
//! production code (`shmsg::shm::mpmc`) through the model backend: a
//! process of each `Mpsc` role killed at every step of its life, with the
//! crash machinery of `loom_faults.rs` (a handle that panics before its
//! `k`-th memory access, whose unwinding the model memory ignores, so its
//! clean detach never happens, as after SIGKILL).
//!
//! # What it proves
//!
//! * `mpsc_producer_crash`: two producers and one consumer; producer 0
//!   crashes at each step `k` of sending three messages (in the middle of a
//!   claim included), producer 1 sends three and leaves. Under random and
//!   PCT schedules, the consumer gets all of producer 1's messages and the
//!   messages producer 0 completed (at most the one in flight besides),
//!   each producer's in order, untorn, once; the dead producer's claim is
//!   padded over (a sleep slice later), then `Disconnected`.
//! * `mpsc_consumer_crash_and_takeover`: the consumer crashes at each step
//!   `k` of receiving three messages (in the middle of a release included),
//!   a new consumer takes the slot over. Nothing it receives is torn, no
//!   message arrives twice, at most one is lost (the one whose release the
//!   new consumer finished for the dead one), and nothing stalls. This is
//!   the defect the crash campaign found (a half-zeroed record delivered,
//!   or a zero header left at the head); the seeded defect
//!   `no_release_finish` (the takeover skips finishing the release) fails
//!   it.
//!
//! * `mpsc_producer_that_lost_a_race_never_stalls_a_recovery`: a producer
//!   that lost the race for a position, found the ring full and went idle
//!   does not keep a dead winner's claim from being padded over (its claim
//!   word no longer names that position). The seeded defect
//!   `keep_lost_claim` fails it.
//! * `mpmc_two_recoverers_hand_a_message_back_once`: two `Mpmc` consumers
//!   died holding one message (the one that took it, and one that lost the
//!   race for it and died before clearing its claim); two live consumers
//!   waiting behind it both hand it back for them while a producer writes
//!   onto its bytes. It is handed back once: nothing written since is
//!   zeroed, the head never moves back. The seeded defect
//!   `recover_by_claim` (the election on a claim word, the head stored)
//!   fails it.
//!
//! Every sleep ends as a slice would (`with_slice_timeouts`), so what a
//! waiter does after a slice (pad a dead producer's claim, notice that
//! every producer is gone) runs under the schedules.
//!
//! `SHMSG_SHUTTLE_FAULTS_ITERATIONS` (default 40, deep tier 1000)
//! schedules per crash step and scheduler.

mod common;

use common::shuttle_model::ShuttleBackend;
use common::*;
use shmsg::shm::Geometry;
use shmsg::shm::layout::RingKind;
use shmsg::shm::mpmc::{Consumer, Producer};
use shmsg::{Error, Role};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};
use std::time::Duration;

/// Message `seq` of producer `id`: every byte depends on both, 3 to 8
/// bytes (records of 16 bytes).
fn message(id: u8, seq: u8) -> Vec<u8> {
    let len = 3 + (seq as usize * 3 + id as usize) % 6;
    let mut m = payload(100 * id as usize + seq as usize, len);
    m[0] = id;
    m[1] = seq;
    m
}

fn iterations() -> usize {
    env_usize("SHMSG_SHUTTLE_FAULTS_ITERATIONS", 40)
}

/// A multi-producer ring of `capacity` bytes whose liveness is tracked over
/// its slots and whose waits sleep at once, every sleep ending as a slice
/// would.
fn sleeping_memory<F: FaultSet>(capacity: usize) -> ShuttleBackend<F> {
    ShuttleBackend::<F>::new(Geometry::new(capacity, 16).unwrap(), 0)
        .tracking_liveness()
        .multi_producer()
        .with_slice_timeouts()
        .with_spin_limit(0)
}

/// Shuttle installs its panic hook (which reports every panic in a task)
/// at its first run; the quiet hook goes on top of it, so a modelled crash
/// is reported by neither.
fn quiet_shuttle_crashes() {
    Runner::new(RandomScheduler::new(1), Config::new()).run(|| {});
    quiet_crashes();
}

/// Shuttle's configuration; a scenario whose waits all end at real-time
/// deadlines (`deadlines`) lifts its step bound, which such waits would
/// exceed.
fn config(deadlines: bool) -> Config {
    let mut config = Config::new();
    if deadlines {
        config.max_steps = shuttle::MaxSteps::None;
    }
    config
}

/// Runs `scenario(k)` under random schedules (and PCT ones if `pct`) for
/// every crash step `k` until no schedule crashes; returns the number of
/// steps; `deadlines` as in [`config`].
fn every_crash_step(scenario: fn(usize, &CrashFlag), pct: bool, deadlines: bool) -> usize {
    quiet_shuttle_crashes();
    let schedulers: &[bool] = if pct { &[false, true] } else { &[false] };
    for k in 0..300 {
        let flag = CrashFlag::default();
        for &pct in schedulers {
            let f = flag.clone();
            let test = move || scenario(k, &f);
            if pct {
                Runner::new(PctScheduler::new(2, iterations()), config(deadlines)).run(test);
            } else {
                Runner::new(RandomScheduler::new(iterations()), config(deadlines)).run(test);
            }
        }
        if !flag.get() {
            return k;
        }
    }
    panic!("still crashing after 300 steps");
}

/// Whether some schedule of a crash step crashed.
#[derive(Clone, Default)]
struct CrashFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CrashFlag {
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn producer_crash(k: usize, flag: &CrashFlag) {
    let memory = sleeping_memory::<NoFault>(128);
    let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
    // Producer 1 is attached before producer 0 can die, and leaves only
    // after producer 0's life is over: with every producer dead or gone,
    // the consumer rightly reports `Disconnected`.
    let mut p = Producer::with_backend_in_slot(memory.clone(), 1, false).unwrap();
    let m = memory.clone();
    let first = shuttle::thread::spawn(move || {
        let mut completed = 0u8;
        let crashed = may_crash(|| {
            let mut p = Producer::with_backend_in_slot(m.crashing_after(k), 0, false).unwrap();
            for seq in 0..3 {
                p.send(&message(0, seq)).unwrap();
                completed += 1;
            }
        });
        if crashed {
            m.mark(Peer::Slot(Role::Producer, 0), true);
        }
        (crashed, completed)
    });
    let second = shuttle::thread::spawn(move || {
        for seq in 0..3 {
            p.send(&message(1, seq)).unwrap();
        }
        p
    });
    let reader = shuttle::thread::spawn(move || {
        let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut buf = Vec::new();
        loop {
            match consumer.recv(&mut buf) {
                Ok(_) => {
                    let (id, seq) = (buf[0], buf[1]);
                    assert!(id < 2, "a message from nowhere: {buf:?}");
                    assert_eq!(buf, message(id, seq), "a torn message");
                    got[id as usize].push(seq);
                }
                Err(Error::Disconnected) => return got,
                Err(other) => panic!("consumer: {other}"),
            }
        }
    });
    let (crashed, completed) = first.join().unwrap();
    drop(second.join().unwrap());
    let got = reader.join().unwrap();
    if crashed {
        flag.set();
    }
    assert_eq!(got[1], vec![0, 1, 2], "producer 1's messages");
    let n = got[0].len() as u8;
    assert!(
        got[0].iter().copied().eq(0..n),
        "producer 0's messages out of order or twice: {:?}",
        got[0]
    );
    assert!(
        n == completed || (crashed && n == completed + 1),
        "{n} of producer 0's messages arrived, {completed} completed"
    );
}

#[test]
fn mpsc_producer_crash() {
    let steps = every_crash_step(producer_crash, true, false);
    eprintln!("mpsc producer crash: {steps} crash steps");
}

/// Producers 0 and 1 race for the same position of a 64-byte ring that
/// holds one record already, each with a record of 24 bytes, so the loser
/// finds the ring full behind the winner's claim. Producer 0 crashes at
/// step `k` of its send (mid-claim included); producer 1 tries once
/// (`try_send`: `Full` is an answer) and then stays attached, idle. Then
/// producer 2 sends, waiting for room. Its message must arrive within its
/// deadline whoever won: a claim the winner left uncommitted is padded
/// over, which a live loser's claim word must not prevent (the consumer
/// leaves a claim alone while a live producer's slot names it, and an
/// idle producer's slot may name it for good).
fn lost_race_then_full<F: FaultSet>(k: usize, flag: &CrashFlag) {
    let memory = sleeping_memory::<F>(64);
    let mut consumer = Consumer::with_backend(memory.clone(), RingKind::Mpsc).unwrap();
    let mut loser = Producer::with_backend_in_slot(memory.clone(), 1, false).unwrap();
    let mut last = Producer::with_backend_in_slot(memory.clone(), 2, false).unwrap();
    // Records of 24 bytes: one at 0, then the race for 24; 48 + 24 > 64.
    let sent = |id: u8| {
        let mut m = payload(id as usize, 16);
        m[0] = id;
        m
    };
    last.send(&sent(3)).unwrap();
    let m = memory.clone();
    let first = shuttle::thread::spawn(move || {
        let crashed = may_crash(|| {
            let mut p = Producer::with_backend_in_slot(m.crashing_after(k), 0, false).unwrap();
            // If it lost the race, it may still wait for room when the
            // consumer, done, leaves.
            match p.send(&sent(0)) {
                Ok(()) | Err(Error::Disconnected) => {}
                Err(e) => panic!("producer 0: {e}"),
            }
        });
        if crashed {
            m.mark(Peer::Slot(Role::Producer, 0), true);
        }
        crashed
    });
    let second = shuttle::thread::spawn(move || {
        match loser.try_send(&sent(1)) {
            Ok(()) | Err(Error::Full) => {}
            Err(e) => panic!("producer 1: {e}"),
        }
        loser
    });
    let reader = shuttle::thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            consumer
                .recv_timeout(&mut buf, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("consumer: {e}"));
            assert!((0..4).any(|id| buf == sent(id)), "a torn message");
            if buf == sent(2) {
                return;
            }
        }
    });
    let idle = second.join().unwrap();
    last.send_timeout(&sent(2), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("producer 2: {e}"));
    reader.join().unwrap();
    if first.join().unwrap() {
        flag.set();
    }
    drop(idle);
}

#[test]
fn mpsc_producer_that_lost_a_race_never_stalls_a_recovery() {
    let steps = every_crash_step(lost_race_then_full::<NoFault>, true, true);
    eprintln!("lost race then full: {steps} crash steps");
}

#[test]
fn seeded_keep_lost_claim_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(lost_race_then_full::<KeepLostClaim>, true, true);
    });
    assert!(failed.is_some(), "shuttle accepted the seeded defect");
}

fn consumer_crash_and_takeover<F: FaultSet>(k: usize, flag: &CrashFlag) {
    let memory = sleeping_memory::<F>(64);
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    for seq in 0..3 {
        producer.send(&message(0, seq)).unwrap();
    }
    // The producer stays attached: the consumers never see `Disconnected`
    // before the end; it leaves once the new consumer has drained.
    let m = memory.clone();
    let first = shuttle::thread::spawn(move || {
        let mut got = Vec::new();
        let crashed = may_crash(|| {
            let mut c =
                Consumer::with_backend_in_slot(m.crashing_after(k), RingKind::Mpsc, 0, false)
                    .unwrap();
            let mut buf = Vec::new();
            while got.len() < 3 {
                match c.try_recv(&mut buf) {
                    Ok(_) => got.push(buf.clone()),
                    Err(Error::Empty) => shuttle::thread::yield_now(),
                    Err(other) => panic!("consumer 0: {other}"),
                }
            }
        });
        if crashed {
            m.mark(Peer::Slot(Role::Consumer, 0), true);
        }
        (crashed, got)
    });
    let (crashed, first_got) = first.join().unwrap();
    if crashed {
        flag.set();
    }
    for m in &first_got {
        assert_eq!(m, &message(0, m[1]), "consumer 0 got a torn message");
    }
    let mut second_got = Vec::new();
    if crashed {
        // A new process takes the slot over (its lock first).
        memory.mark(Peer::Slot(Role::Consumer, 0), false);
        let mut c = Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpsc, 0, true)
            .expect("the takeover");
        let mut buf = Vec::new();
        loop {
            match c.try_recv(&mut buf) {
                Ok(_) => second_got.push(buf.clone()),
                Err(Error::Empty) => break,
                Err(other) => panic!("consumer 1: {other}"),
            }
        }
    }
    drop(producer);
    let mut seqs = Vec::new();
    for m in first_got.iter().chain(&second_got) {
        assert_eq!(m, &message(0, m[1]), "a torn message");
        seqs.push(m[1]);
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order or twice: {seqs:?}"
    );
    let lost = 3 - seqs.len();
    assert!(
        lost == 0 || (crashed && lost == 1),
        "{lost} messages lost (crashed: {crashed}): {seqs:?}"
    );
}

#[test]
fn mpsc_consumer_crash_and_takeover() {
    let steps = every_crash_step(consumer_crash_and_takeover::<NoFault>, false, false);
    eprintln!("mpsc consumer crash: {steps} crash steps");
}

#[test]
fn seeded_no_release_finish_is_caught() {
    let failed = panic_message(|| {
        every_crash_step(consumer_crash_and_takeover::<NoReleaseFinish>, false, false);
    });
    assert!(failed.is_some(), "shuttle accepted the seeded defect");
}

/// Two `Mpmc` consumers died holding message 0, at the head: the one that
/// took it (slot 0, killed while reading it) and one that lost the race
/// for it and died before clearing its claim (slot 1: its claim words
/// still name message 0, as `take` writes them before the cursor's
/// compare-and-swap). Two live consumers (slots 2 and 3) each receive a
/// message after it and wait for their hand-back turns, sleeping slice
/// after slice, so both try to hand message 0 back for the dead. A
/// producer meanwhile sends message 3, whose record wraps onto message 0's
/// bytes once the head has passed them.
///
/// Message 0 must be handed back exactly once: a second recoverer that read
/// the head before the first one moved it, and then found the other dead
/// claim, would zero message 3 where it lies and move the head back.
/// Messages 1 to 3 arrive whole, once each.
fn two_recoverers<F: FaultSet>() {
    let memory = sleeping_memory::<F>(64);
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    // 16 bytes at 0 (a record of 24), 3 at 24 and 3 at 40; then padding at
    // 56 and 16 bytes at 64, offset 0 again.
    let sent = [payload(0, 16), payload(1, 3), payload(2, 3), payload(3, 16)];
    for m in &sent[..3] {
        producer.send(m).unwrap();
    }
    let mut taker =
        Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 0, false).unwrap();
    let crashed = may_crash(|| {
        let _ = taker.try_recv_with(|_| std::panic::panic_any(Crashed));
    });
    assert!(crashed, "the first consumer had nothing to die on");
    std::mem::forget(taker);
    let loser = Consumer::with_backend_in_slot(memory.clone(), RingKind::Mpmc, 1, false).unwrap();
    std::mem::forget(loser);
    {
        use shmsg::sync::{Backend, Control, SlotWord, Word};
        let word = |word| {
            memory.control(Control::Slot {
                role: Role::Consumer,
                index: 1,
                word,
            })
        };
        word(SlotWord::ClaimLen).store(24, std::sync::atomic::Ordering::SeqCst);
        word(SlotWord::Claim).store(0, std::sync::atomic::Ordering::SeqCst);
    }
    memory.mark(Peer::Slot(Role::Consumer, 0), true);
    memory.mark(Peer::Slot(Role::Consumer, 1), true);
    let receivers: Vec<_> = [2, 3]
        .into_iter()
        .map(|index| {
            let m = memory.clone();
            shuttle::thread::spawn(move || {
                let mut c =
                    Consumer::with_backend_in_slot(m, RingKind::Mpmc, index, false).unwrap();
                let mut buf = Vec::new();
                c.recv_timeout(&mut buf, Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("consumer {index}: {e}"));
                (c, buf)
            })
        })
        .collect();
    let last = sent[3].clone();
    let sender = shuttle::thread::spawn(move || {
        producer.send(&last).unwrap();
        producer
    });
    let mut got = Vec::new();
    let mut handles = Vec::new();
    for r in receivers {
        let (c, buf) = r.join().unwrap();
        got.push(buf);
        handles.push(c);
    }
    let producer = sender.join().unwrap();
    let mut buf = Vec::new();
    handles[0]
        .recv_timeout(&mut buf, Duration::from_secs(2))
        .unwrap_or_else(|e| {
            use shmsg::sync::{Backend, Control, Word};
            let o = std::sync::atomic::Ordering::SeqCst;
            let words: Vec<u64> = (0..8).map(|i| memory.data_word(i).load(o)).collect();
            panic!(
                "the last message: {e} head {} cursor {} tail {} data {words:x?}",
                memory.control(Control::Head).load(o),
                memory.control(Control::ReadCursor).load(o),
                memory.control(Control::Tail).load(o)
            )
        });
    got.push(buf);
    got.sort();
    let mut expected = sent[1..].to_vec();
    expected.sort();
    assert_eq!(got, expected, "a message lost, torn or twice");
    drop(producer);
}

/// Random and PCT schedules of [`two_recoverers`]. The waits are bounded
/// by real-time deadlines (2 s), so shuttle's step bound is lifted.
fn explore_two_recoverers<F: FaultSet>() {
    quiet_shuttle_crashes();
    Runner::new(RandomScheduler::new(iterations() * 25), config(true)).run(two_recoverers::<F>);
    Runner::new(PctScheduler::new(3, iterations() * 25), config(true)).run(two_recoverers::<F>);
}

#[test]
fn mpmc_two_recoverers_hand_a_message_back_once() {
    explore_two_recoverers::<NoFault>();
}

#[test]
fn seeded_recover_by_claim_is_caught() {
    let failed = panic_message(explore_two_recoverers::<RecoverByClaim>);
    assert!(failed.is_some(), "shuttle accepted the seeded defect");
}
