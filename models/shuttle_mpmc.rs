//! Shuttle model of the multi-producer rings (`shmsg::shm::mpmc`), run on
//! the production protocol code through the model backend in `common/`.
//!
//! # What it shows
//!
//! Long runs that loom cannot reach: four producers and one consumer
//! (`Mpsc`), and three producers and two consumers (`Mpmc`), a few hundred
//! messages of 5 to 64 bytes through a 256-byte ring that starts just below
//! `u64::MAX`, so the ring wraps, fills and crosses the end of the position
//! space many times; and a crowd (`mpmc_crowd_*`): two producers and five
//! consumers, messages of 5 to 48 bytes through 128 bytes, so the consumers
//! often hold every entry of a full ring and one finds the read cursor a
//! whole ring past the head, on the header of an entry still held (it
//! found that such a consumer reported the ring corrupt). Producers alternate copying and in-place sends (the
//! in-place ones reserve more than they write, leaving padding); consumers
//! alternate copying and in-place receives. Every message carries its
//! producer, its sequence number and a byte pattern derived from both:
//! each is received exactly once, whole, and each consumer sees each
//! producer's messages in the order they were sent. The waits spin at most
//! 3 polls (`SHMSG_SHUTTLE_SPIN`), so the futex path runs too.
//!
//! Shuttle's atomics are sequentially consistent: this model checks the
//! protocol's logic under many long schedules (random, and PCT depth 3);
//! loom (`loom_mpmc.rs`) checks the memory orderings.
//!
//! # Knobs
//!
//! * `SHMSG_SHUTTLE_MPMC_ITERATIONS` (else `SHMSG_SHUTTLE_ITERATIONS`,
//!   default 1000) schedules per scheduler and ring kind;
//!   `SHMSG_SHUTTLE_MESSAGES` (default 300) messages in all.
//! * A failing schedule is persisted to a file (the test prints its path);
//!   `SHMSG_SHUTTLE_REPLAY=PATH cargo test --test shuttle_mpmc mpmc_random`
//!   (or `mpsc_random`) replays it.
//!
//! # Teeth
//!
//! `seeded_*` tests compile one defect into the protocol, require shuttle to
//! find a failing schedule, and replay the persisted schedule.

mod common;

use std::path::PathBuf;

use common::shuttle_model::{FailureDir, ShuttleBackend};
use common::*;
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::layout::RingKind;
use shmsg::shm::mpmc::{Consumer, Producer};
use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler as ShuttleScheduler};
use shuttle::{Config, FailurePersistence, Runner};

/// The threads and the ring of a scenario.
#[derive(Clone, Copy, Debug)]
struct Shape {
    kind: RingKind,
    producers: usize,
    consumers: usize,
    capacity: usize,
    /// The longest message (the ring's maximum).
    max: usize,
}

/// Four producers and one consumer, messages of 5 to 64 bytes through 256.
const MPSC: Shape = Shape {
    kind: RingKind::Mpsc,
    producers: 4,
    consumers: 1,
    capacity: 256,
    max: 64,
};

/// Three producers and two consumers, messages of 5 to 64 bytes through 256.
const MPMC: Shape = Shape {
    kind: RingKind::Mpmc,
    producers: 3,
    consumers: 2,
    capacity: 256,
    max: 64,
};

/// More consumers than a full ring has entries: two producers and five
/// consumers, messages of 5 to 48 bytes through 128 (two to six entries
/// fill it), so the consumers often take every entry of a full ring and
/// find the read cursor a whole ring past the head.
const MPMC_CROWD: Shape = Shape {
    kind: RingKind::Mpmc,
    producers: 2,
    consumers: 5,
    capacity: 128,
    max: 48,
};

/// Message `seq` of producer `id`: id, sequence number, then a pattern of
/// both, 5 to `max` bytes in all.
fn message(id: usize, seq: usize, max: usize) -> Vec<u8> {
    let len = 5 + (seq * 7 + id * 13) % (max - 4);
    let mut m = vec![id as u8];
    m.extend_from_slice(&(seq as u32).to_le_bytes());
    m.extend((5..len).map(|i| (i * 31 + seq * 17 + id * 101) as u8));
    m
}

/// The (producer, sequence) of a received message, after checking that it
/// is exactly what that producer sent.
fn identify(m: &[u8], producers: usize, per: usize, max: usize) -> (usize, usize) {
    assert!(m.len() >= 5, "torn message {m:?}");
    let id = m[0] as usize;
    let seq = u32::from_le_bytes(m[1..5].try_into().unwrap()) as usize;
    assert!(id < producers && seq < per, "phantom message {m:?}");
    assert_eq!(
        m,
        message(id, seq, max),
        "message {seq} of producer {id} is torn"
    );
    (id, seq)
}

fn scenario<F: FaultSet>(shape: Shape) {
    let Shape {
        kind,
        producers,
        consumers,
        capacity,
        max,
    } = shape;
    let per = env_usize("SHMSG_SHUTTLE_MESSAGES", 300) / producers;
    let geometry = Geometry::new(capacity, max).unwrap();
    let memory = ShuttleBackend::<F>::new(geometry, u64::MAX - 8 * 100 + 1)
        .with_spin_limit(env_usize("SHMSG_SHUTTLE_SPIN", 3) as u32);
    let readers: Vec<_> = (0..consumers)
        .map(|_| {
            let mut consumer = Consumer::with_backend(memory.clone(), kind).unwrap();
            shuttle::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = Vec::new();
                loop {
                    let result = if got.len() % 2 == 1 {
                        consumer.recv_with(|b| buf = b.to_vec())
                    } else {
                        consumer.recv(&mut buf).map(drop)
                    };
                    match result {
                        Ok(()) => got.push(identify(&buf, producers, per, max)),
                        Err(Error::Disconnected) => return got,
                        Err(other) => panic!("consumer error: {other}"),
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..producers)
        .map(|id| {
            let mut producer = Producer::with_backend(memory.clone()).unwrap();
            shuttle::thread::spawn(move || {
                for seq in 0..per {
                    let m = message(id, seq, max);
                    if seq % 3 == 1 {
                        let len = m.len();
                        let reserve = (len + 9).min(max);
                        producer
                            .send_with(reserve, |buf| {
                                buf[..len].copy_from_slice(&m);
                                len
                            })
                            .unwrap();
                    } else {
                        producer.send(&m).unwrap();
                    }
                }
            })
        })
        .collect();
    drop(memory);
    writers.into_iter().for_each(|w| w.join().unwrap());
    let mut seen = vec![vec![0u32; per]; producers];
    for reader in readers {
        let got = reader.join().unwrap();
        let mut last = vec![None; producers];
        for (id, seq) in got {
            assert!(
                last[id].is_none_or(|l| l < seq),
                "producer {id}'s message {seq} out of order"
            );
            last[id] = Some(seq);
            seen[id][seq] += 1;
        }
    }
    for (id, counts) in seen.iter().enumerate() {
        for (seq, &n) in counts.iter().enumerate() {
            assert_eq!(n, 1, "message {seq} of producer {id} received {n} times");
        }
    }
}

/// This process's failing-schedule directory, held by the caller.
fn failure_dir() -> FailureDir {
    FailureDir::hold("shmsg-shuttle-mpmc")
}

/// Seeded runs take turns, so the schedules a seeded run adds are its own.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(dir: &FailureDir) -> Config {
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::File(Some(dir.path()));
    config
}

/// `SHMSG_SHUTTLE_MPMC_ITERATIONS`, else `SHMSG_SHUTTLE_ITERATIONS`, else
/// 1000: five threads per schedule make an iteration several times dearer
/// than the single-producer model's, so the deep tier sets its own count.
fn iterations() -> usize {
    let shared = env_usize("SHMSG_SHUTTLE_ITERATIONS", 1000);
    env_usize("SHMSG_SHUTTLE_MPMC_ITERATIONS", shared)
}

fn replaying() -> bool {
    std::env::var("SHMSG_SHUTTLE_REPLAY").is_ok()
}

fn explore<S: ShuttleScheduler + 'static>(test: &str, shape: Shape, scheduler: S) {
    if let Ok(path) = std::env::var("SHMSG_SHUTTLE_REPLAY") {
        shuttle::replay_from_file(move || scenario::<NoFault>(shape), path);
        return;
    }
    let dir = failure_dir();
    eprintln!(
        "shuttle {test}: failing schedules go to {}",
        dir.path().display()
    );
    let runs = Runner::new(scheduler, config(&dir)).run(move || scenario::<NoFault>(shape));
    eprintln!("shuttle {test}: {runs} schedules");
    assert_eq!(runs, iterations());
}

#[test]
fn mpsc_random() {
    explore("mpsc_random", MPSC, RandomScheduler::new(iterations()));
}

#[test]
fn mpsc_pct() {
    explore("mpsc_pct", MPSC, PctScheduler::new(3, iterations()));
}

#[test]
fn mpmc_random() {
    explore("mpmc_random", MPMC, RandomScheduler::new(iterations()));
    let sleeps = SLEEPS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sleeps > 0 || replaying(), "no wait ever slept");
}

#[test]
fn mpmc_pct() {
    explore("mpmc_pct", MPMC, PctScheduler::new(3, iterations()));
}

#[test]
fn mpmc_crowd_random() {
    explore(
        "mpmc_crowd_random",
        MPMC_CROWD,
        RandomScheduler::new(iterations()),
    );
}

#[test]
fn mpmc_crowd_pct() {
    explore(
        "mpmc_crowd_pct",
        MPMC_CROWD,
        PctScheduler::new(3, iterations()),
    );
}

/// Requires shuttle to find a failing schedule of the scenario with the
/// defect `F`, then replays the persisted schedule and requires it to fail.
fn seeded<F: FaultSet>(test: &str, shape: Shape) {
    let _turn = SEEDED.lock().unwrap_or_else(|p| p.into_inner());
    let dir = failure_dir();
    let before = dir.schedules();
    let found = panic_message(|| {
        let runs = iterations().max(300);
        Runner::new(RandomScheduler::new(runs), config(&dir)).run(move || scenario::<F>(shape));
        Runner::new(PctScheduler::new(3, runs), config(&dir)).run(move || scenario::<F>(shape));
    });
    assert!(found.is_some(), "shuttle accepted the seeded defect {test}");
    let new: Vec<PathBuf> = dir.schedules().difference(&before).cloned().collect();
    let schedule = new.first().expect("the failing schedule was persisted");
    let replayed =
        panic_message(|| shuttle::replay_from_file(move || scenario::<F>(shape), schedule));
    assert!(
        replayed.is_some(),
        "replaying {} did not fail",
        schedule.display()
    );
    for path in new {
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn seeded_claim_without_cas_is_caught() {
    seeded::<ClaimWithoutCas>("claim_without_cas", MPSC);
}

#[test]
fn seeded_commit_before_payload_is_caught() {
    seeded::<CommitBeforePayload>("commit_before_payload", MPSC);
}

#[test]
fn seeded_release_out_of_order_is_caught() {
    seeded::<ReleaseOutOfOrder>("release_out_of_order", MPMC);
}

#[test]
fn seeded_release_without_zeroing_is_caught() {
    seeded::<ReleaseWithoutZeroing>("release_without_zeroing", MPSC);
}
