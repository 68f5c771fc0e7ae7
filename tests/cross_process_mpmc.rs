//! Multi-producer rings between real processes: N producer processes
//! (N = 2, 3, 4) and one or two consumer processes share a named region
//! ([`shmsg::shm::mpmc`]); 10^6 messages in all, each carrying its
//! producer, its sequence number and a pattern of both. The consumers
//! check every message whole, and each producer's messages in order; the
//! parent checks that together they received every message exactly once.
//!
//! This file has its own `main` (`harness = false`): the children are this
//! executable with `SHMSG_MPMC_ROLE` set. `SHMSG_CROSS_MESSAGES` sets the
//! total count (default 1 000 000); an argument runs only the cases whose
//! names contain it.

use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use shmsg::Error;
use shmsg::shm::layout::RingKind;
use shmsg::shm::mpmc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};

mod common;

use common::Case;
use common::env;

const TIMEOUT: Duration = Duration::from_secs(60);

fn count() -> u64 {
    common::env_u64("SHMSG_CROSS_MESSAGES", 1_000_000)
}

/// Message `seq` of producer `id`: the id, the sequence number, then 7 to
/// 90 bytes of a pattern of both.
fn message(id: u8, seq: u64, out: &mut Vec<u8>) {
    common::tagged_message(id, seq, 16, out);
}

/// A producer child: sends its share, alternating copying and in-place sends.
fn produce(region: &Arc<Region>, id: u8, share: u64) -> Result<(), String> {
    let mut producer = Producer::attach(region).map_err(|e| format!("attach: {e}"))?;
    let mut m = Vec::new();
    for seq in 0..share {
        message(id, seq, &mut m);
        let result = if seq % 2 == 0 {
            producer.send_timeout(&m, TIMEOUT)
        } else {
            producer
                .send_with(m.len() + 7, |buf| {
                    buf[..m.len()].copy_from_slice(&m);
                    m.len()
                })
                .map(drop)
        };
        result.map_err(|e| format!("producer {id} message {seq}: {e}"))?;
    }
    Ok(())
}

/// A consumer child: receives until `Disconnected`, checks each message and
/// each producer's order, and writes (id, seq) of each to `out`.
fn consume(region: &Arc<Region>, out: &str) -> Result<(), String> {
    let mut consumer = Consumer::attach(region).map_err(|e| format!("attach: {e}"))?;
    let mut next = [0u64; 256];
    let mut log = Vec::new();
    let mut buf = Vec::new();
    let mut expected = Vec::new();
    loop {
        match consumer.recv_timeout(&mut buf, TIMEOUT) {
            Ok(_) => {}
            Err(Error::Disconnected) => break,
            Err(e) => return Err(format!("after {} messages: {e}", log.len() / 9)),
        }
        if buf.len() < 9 {
            return Err(format!("torn message {buf:?}"));
        }
        let id = buf[0];
        let seq = u64::from_le_bytes(buf[1..9].try_into().unwrap());
        message(id, seq, &mut expected);
        if buf != expected {
            return Err(format!("message {seq} of producer {id} is torn"));
        }
        if seq < next[id as usize] {
            return Err(format!(
                "producer {id}: message {seq} after {}",
                next[id as usize]
            ));
        }
        next[id as usize] = seq + 1;
        log.extend_from_slice(&buf[..9]);
    }
    std::fs::write(out, log).map_err(|e| e.to_string())
}

fn child_main(role: &str) -> ExitCode {
    let region = match Region::open(&env("SHMSG_REGION")) {
        Ok(region) => Arc::new(region),
        Err(e) => {
            eprintln!("{role}: open: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match role {
        "producer" => produce(
            &region,
            env("SHMSG_ID").parse().unwrap(),
            env("SHMSG_SHARE").parse().unwrap(),
        ),
        "consumer" => consume(&region, &env("SHMSG_OUT")),
        other => Err(format!("unknown role {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spawn(role: &str, name: &str, vars: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("the test executable"));
    command
        .env("SHMSG_MPMC_ROLE", role)
        .env("SHMSG_REGION", name);
    for (k, v) in vars {
        command.env(k, v);
    }
    command.spawn().expect("spawn a child")
}

fn wait(child: &mut Child, what: &str) -> Result<(), String> {
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {status}"))
    }
}

/// With `kill`, the last producer is killed (SIGKILL) in the middle of its
/// stream: its messages received must be a prefix of what it sent, and
/// everyone else's complete; the consumers end with `Disconnected`.
fn case(producers: u8, consumers: usize, kind: RingKind, kill: bool) -> Result<String, String> {
    let total = count();
    let name = format!(
        "mpmc-test-{}-{producers}-{consumers}-{kill}",
        std::process::id()
    );
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, kind).map_err(|e| e.to_string())?);
    // Holds the producers' count up until every child producer is done, so
    // that no consumer sees "all detached" before a late producer attaches.
    let guard = Producer::attach(&region).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir();
    let outs: Vec<String> = (0..consumers)
        .map(|c| dir.join(format!("{name}-{c}.log")).display().to_string())
        .collect();
    let mut readers: Vec<Child> = outs
        .iter()
        .map(|out| spawn("consumer", &name, &[("SHMSG_OUT", out.clone())]))
        .collect();
    let shares: Vec<u64> = (0..producers as u64)
        .map(|p| total / producers as u64 + u64::from(p < total % producers as u64))
        .collect();
    let mut writers: Vec<Child> = (0..producers)
        .map(|id| {
            let vars = [
                ("SHMSG_ID", id.to_string()),
                ("SHMSG_SHARE", shares[id as usize].to_string()),
            ];
            spawn("producer", &name, &vars)
        })
        .collect();
    let mut failures = Vec::new();
    if kill {
        std::thread::sleep(Duration::from_millis(30));
        let mut victim = writers.pop().unwrap();
        let killed = victim.kill();
        let _ = victim.wait();
        killed.map_err(|e| e.to_string())?;
    }
    for (i, w) in writers.iter_mut().enumerate() {
        failures.extend(wait(w, &format!("producer {i}")).err());
    }
    drop(guard);
    for (i, r) in readers.iter_mut().enumerate() {
        failures.extend(wait(r, &format!("consumer {i}")).err());
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    // Exactly once, across the consumers.
    let mut seen: Vec<Vec<bool>> = shares.iter().map(|&n| vec![false; n as usize]).collect();
    let mut per_consumer = Vec::new();
    for out in &outs {
        let log = std::fs::read(out).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(out);
        per_consumer.push(log.len() / 9);
        for record in log.chunks(9) {
            let id = record[0] as usize;
            let seq = u64::from_le_bytes(record[1..9].try_into().unwrap()) as usize;
            let slot = seen
                .get_mut(id)
                .and_then(|s| s.get_mut(seq))
                .ok_or(format!("phantom message {seq} of producer {id}"))?;
            if std::mem::replace(slot, true) {
                return Err(format!("message {seq} of producer {id} received twice"));
            }
        }
    }
    let mut cut = None;
    for (id, s) in seen.iter().enumerate() {
        if let Some(seq) = s.iter().position(|&x| !x) {
            let victim = kill && id + 1 == producers as usize;
            if !victim || s[seq..].iter().any(|&x| x) {
                return Err(format!("message {seq} of producer {id} lost"));
            }
            cut = Some(seq);
        }
    }
    if kill {
        return Ok(format!(
            "{producers} producers -> {consumers} consumers ({kind:?}), the last killed after {cut:?} of its {} messages, received {per_consumer:?}",
            shares[producers as usize - 1]
        ));
    }
    Ok(format!(
        "{producers} producers -> {consumers} consumers ({kind:?}), received {per_consumer:?}"
    ))
}

const CASES: &[Case] = &[
    ("mpsc_2_producers", || case(2, 1, RingKind::Mpsc, false)),
    ("mpsc_3_producers", || case(3, 1, RingKind::Mpsc, false)),
    ("mpsc_4_producers", || case(4, 1, RingKind::Mpsc, false)),
    ("mpmc_2_producers_2_consumers", || {
        case(2, 2, RingKind::Mpmc, false)
    }),
    ("mpmc_4_producers_2_consumers", || {
        case(4, 2, RingKind::Mpmc, false)
    }),
    ("mpsc_killed_producer", || case(3, 1, RingKind::Mpsc, true)),
    ("mpmc_killed_producer", || case(3, 2, RingKind::Mpmc, true)),
];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_MPMC_ROLE") {
        return child_main(&role);
    }
    common::run_cases(CASES, |what| format!("{} messages, {what}", count()))
}
