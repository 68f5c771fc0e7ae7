//! The hostile writer campaign: a process stores random words into a
//! region while producers and consumers stream through it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Acquire;
use std::time::{Duration, Instant};

use shmsg::shm::layout::RingKind;

use super::account::{Side, Tally};
use super::shared::*;
use super::{Round, kind_name, shape};

/// What the hostile writer campaign counts for one ring kind.
#[derive(Default)]
pub struct Hostile {
    pub writes: u64,
    pub errors: [u64; ERROR_KINDS.len()],
    pub intact: u64,
    pub bad: u64,
    pub panics: u64,
    pub failed: u64,
    pub hangs: u64,
}

/// Streams through a ring of `kind` while a hostile process writes
/// `writes` random words into it.
pub fn hostile_round(kind: RingKind, writes: u64, seed: u64, dir: &Path, rng: &mut Rng) -> Hostile {
    let mut tally = Tally::default();
    let (producers, consumers) = shape(kind, rng);
    let label = format!("hostile-{}", kind_name(kind));
    let mut round = Round::new(kind, &label, dir, &mut tally, true, SMALL_BODY);
    for c in 0..consumers {
        round.spawn(Side::Consumer, c, 0);
    }
    round.attached();
    for p in 0..producers {
        round.spawn(Side::Producer, p, 0);
    }
    round.attached();
    // The stream flows before the first write.
    std::thread::sleep(Duration::from_millis(50));
    let path = dir.join(format!("{}.hostile", round.name));
    let status = Words::create(&path, STATUS_WORDS);
    round.files.push(path.clone());
    let mut writer = Command::new(std::env::current_exe().expect("the test executable"))
        .env("SHMSG_CAMPAIGN_ROLE", "hostile")
        .env("SHMSG_CAMPAIGN_REGION", &round.name)
        .env("SHMSG_CAMPAIGN_STATUS", &path)
        .env("SHMSG_CAMPAIGN_WRITES", writes.to_string())
        .env("SHMSG_CAMPAIGN_SEED", seed.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the hostile writer");
    // A write takes about 15 us with the pacing; 30 s plus 200 us a write
    // is over 10 times that.
    let bound = Duration::from_secs(30) + Duration::from_micros(200) * writes as u32;
    let started = Instant::now();
    let mut result = Hostile::default();
    loop {
        match writer.try_wait() {
            Ok(Some(status)) => {
                round.exited(status, "hostile writer");
                break;
            }
            Ok(None) if started.elapsed() > bound => {
                result.hangs += 1;
                eprintln!("  {}: the hostile writer took over {bound:?}", round.name);
                let _ = writer.kill();
                let _ = writer.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    round.finish(true);
    result.writes = status.word(BAD).load(Acquire);
    for inc in &round.ended {
        let w = |i| inc.status.word(i).load(Acquire);
        for (k, count) in result.errors.iter_mut().enumerate() {
            *count += w(KINDS + k);
        }
        result.intact += w(INTACT);
        result.bad += w(BAD);
    }
    drop(round);
    result.panics = tally.panics;
    result.failed = tally.errors;
    result.hangs += tally.hangs;
    result
}
