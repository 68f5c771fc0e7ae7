//! Shuttle model of the single-producer ring (`shmsg::shm::spsc`), run on the
//! production protocol code through the model backend in `common/`.
//!
//! # What it shows
//!
//! Loom is exhaustive but only for a handful of messages. Shuttle samples
//! schedules of much longer runs: one producer sends a few hundred messages
//! of pseudo-random sizes (0 to 64 bytes, through a 256-byte ring, so the ring
//! wraps and fills many times), alternating the copying, in-place and batch
//! APIs, then detaches; the consumer receives until `Disconnected`, also
//! alternating APIs, and checks every message byte for byte, in order, with
//! none lost, duplicated or torn. Shuttle's atomics are sequentially
//! consistent, so it does not check memory orderings (loom does); it checks
//! the protocol's logic under many long interleavings: the random scheduler
//! and PCT (which finds bugs of small depth with a known probability).
//!
//! # Bounds and knobs
//!
//! * `SHMSG_SHUTTLE_ITERATIONS` (default 2000) schedules per scheduler; the
//!   deep tier runs 20000.
//! * `SHMSG_SHUTTLE_MESSAGES` (default 400) messages per schedule.
//! * A failing schedule is written to a file (the test prints its path);
//!   `SHMSG_SHUTTLE_REPLAY=that/path cargo test --test shuttle_spsc random`
//!   replays exactly that schedule.
//!
//! # Teeth
//!
//! `seeded_*` tests compile one defect into the protocol, require shuttle to
//! find a failing schedule, and then replay the persisted schedule and require
//! it to fail again.

mod common;

use common::shuttle_model::{FailureDir, ShuttleBackend};
use common::*;
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::spsc::{Consumer, Producer};
use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler as ShuttleScheduler};
use shuttle::{Config, FailurePersistence, Runner};
use std::path::PathBuf;

/// Message sizes: a fixed pseudo-random sequence (xorshift), 0 to 64 bytes.
fn sizes(count: usize) -> Vec<usize> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 65) as usize
        })
        .collect()
}

/// One schedule of the stream scenario.
fn scenario<F: FaultSet>() {
    let count = env_usize("SHMSG_SHUTTLE_MESSAGES", 400);
    let geometry = Geometry::new(256, 64).unwrap();
    // Start close to the end of the position space so the run crosses it.
    // A spin limit of a few polls: waits often reach the sleep phase (the
    // model futex), so the eventcount runs under the same schedules.
    let memory = ShuttleBackend::<F>::new(geometry, u64::MAX - 8 * 100 + 1)
        .with_spin_limit(env_usize("SHMSG_SHUTTLE_SPIN", 3) as u32);
    let mut producer = Producer::with_backend(memory.clone()).unwrap();
    let mut consumer = Consumer::with_backend(memory).unwrap();
    let lens = sizes(count);
    let sent = lens.clone();
    let sender = shuttle::thread::spawn(move || {
        let mut seq = 0;
        while seq < sent.len() {
            let len = sent[seq];
            let message = payload(seq, len);
            match seq % 4 {
                // A batch of up to three messages.
                3 => {
                    let end = (seq + 3).min(sent.len());
                    let batch: Vec<Vec<u8>> = (seq..end).map(|s| payload(s, sent[s])).collect();
                    producer.send_batch(&batch).unwrap();
                    seq = end;
                    continue;
                }
                2 => {
                    producer
                        .send_with(len, |buf| {
                            buf.copy_from_slice(&message);
                            len
                        })
                        .unwrap();
                }
                _ => producer.send(&message).unwrap(),
            }
            seq += 1;
        }
    });
    let mut seq = 0;
    let mut buf = Vec::new();
    loop {
        let result = if seq % 2 == 1 {
            consumer
                .recv_with(|bytes| bytes.to_vec())
                .map(|bytes| buf = bytes)
        } else {
            consumer.recv(&mut buf).map(drop)
        };
        match result {
            Ok(()) => {
                assert!(seq < count, "phantom message {seq}");
                assert_eq!(buf, payload(seq, lens[seq]), "message {seq} differs");
                seq += 1;
            }
            Err(Error::Disconnected) => break,
            Err(other) => panic!("consumer error at message {seq}: {other}"),
        }
    }
    assert_eq!(seq, count, "messages lost");
    sender.join().unwrap();
}

/// This process's failing-schedule directory, held by the caller (see
/// [`FailureDir`]).
fn failure_dir() -> FailureDir {
    FailureDir::hold("shmsg-shuttle")
}

/// Seeded runs take turns, so the schedules a seeded run adds to the shared
/// failure directory are its own.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(dir: &FailureDir) -> Config {
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::File(Some(dir.path()));
    config
}

/// Explores `iterations` schedules with `scheduler`, or replays the schedule
/// named by `SHMSG_SHUTTLE_REPLAY`.
fn explore<F: FaultSet, S: ShuttleScheduler + 'static>(test: &str, scheduler: S) -> usize {
    if let Ok(path) = std::env::var("SHMSG_SHUTTLE_REPLAY") {
        shuttle::replay_from_file(scenario::<F>, path);
        return 1;
    }
    let dir = failure_dir();
    eprintln!(
        "shuttle {test}: failing schedules go to {}",
        dir.path().display()
    );
    Runner::new(scheduler, config(&dir)).run(scenario::<F>)
}

fn iterations() -> usize {
    env_usize("SHMSG_SHUTTLE_ITERATIONS", 2000)
}

#[test]
fn random() {
    let runs = explore::<NoFault, _>("random", RandomScheduler::new(iterations()));
    let sleeps = SLEEPS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("shuttle random: {runs} schedules, {sleeps} futex sleeps so far");
    // The waits' sleep path (announce, fence, re-check, model futex) runs too.
    assert!(
        sleeps > 0 || std::env::var("SHMSG_SHUTTLE_REPLAY").is_ok(),
        "no wait ever slept"
    );
    assert!(runs == iterations() || std::env::var("SHMSG_SHUTTLE_REPLAY").is_ok());
}

#[test]
fn pct() {
    let runs = explore::<NoFault, _>("pct", PctScheduler::new(3, iterations()));
    eprintln!("shuttle pct: {runs} schedules");
    assert!(runs == iterations() || std::env::var("SHMSG_SHUTTLE_REPLAY").is_ok());
}

/// Runs the scenario with a seeded defect under the random and PCT
/// schedulers; requires a failure, then replays the persisted schedule and
/// requires the replay to fail too.
fn seeded<F: FaultSet>(test: &str) {
    let _turn = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = failure_dir();
    let before = dir.schedules();
    let found = panic_message(|| {
        let runs = iterations().max(300);
        Runner::new(RandomScheduler::new(runs), config(&dir)).run(scenario::<F>);
        Runner::new(PctScheduler::new(3, runs), config(&dir)).run(scenario::<F>);
    });
    assert!(found.is_some(), "shuttle accepted the seeded defect {test}");
    let new: Vec<PathBuf> = dir.schedules().difference(&before).cloned().collect();
    let schedule = new.first().expect("the failing schedule was persisted");
    let replayed = panic_message(|| shuttle::replay_from_file(scenario::<F>, schedule));
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
fn seeded_commit_before_payload_is_caught() {
    seeded::<CommitBeforePayload>("commit_before_payload");
}

#[test]
fn seeded_skip_next_clear_is_caught() {
    seeded::<SkipNextClear>("skip_next_clear");
}

#[test]
fn seeded_full_check_off_by_one_is_caught() {
    seeded::<FullCheckOffByOne>("full_check_off_by_one");
}

#[test]
fn seeded_no_drain_on_disconnect_is_caught() {
    seeded::<NoDrainOnDisconnect>("no_drain_on_disconnect");
}
