//! Linearizability of real multi-process runs: producer and consumer
//! processes record every send and receive (message id, invocation and
//! response times on `CLOCK_MONOTONIC`, which all processes share) in a
//! log file they map; the parent merges the logs and checks the history
//! against a FIFO queue ([`common::linearizable`]), for every ring kind
//! and for the message-passing transports, with SIGKILLed producers and
//! consumers, and a seeded bug (a consumer that delivers two records
//! swapped) that the checker must report.
//!
//! A log is a mapped file, so a record survives its process's SIGKILL up
//! to the last store: word 0 counts the records begun; record `i` is the
//! three words `1 + 3i ..`: id, invocation, response (0 while pending). A
//! send writes its id and invocation, counts the record, sends, and writes
//! the response; a receive writes the id and the response after it
//! returns, and uncounts the record if it returned no message.
//!
//! The cases: each ring kind (`Spsc` 1 -> 1, `Mpsc` 3 -> 1, `Mpmc`
//! 3 -> 2 processes), each with its last producer SIGKILLed a third of the
//! way into its share, or with its (first) consumer SIGKILLed a third of
//! the way in: an `Spsc` or `Mpsc` consumer is replaced by a new process
//! that takes over its role (a record the dead one held is delivered again),
//! an `Mpmc` consumer is not (the other consumer drains the ring, and the
//! checker accepts one message held by the dead one's pending receive),
//! and the message-passing transports (`unix:`, `seqpacket:`, `tcp:`, one
//! producer and one consumer), with and without a killed producer (a
//! stream consumer whose producer died inside a frame ends with
//! [`Error::TruncatedFrame`], accepted only then). The seeded bug: a
//! consumer that holds back every 1000th message and delivers it after the
//! next ([`Swapping`]), over an `Spsc` ring (every pair it swaps was sent
//! in that order by the one producer, so each is a violation) and an
//! `Mpsc` ring with three producers (a swapped pair of overlapping sends
//! from two producers is no violation, but of 100 swaps some pair is one
//! producer's, or sequential); both cases pass when the checker reports
//! the swap as an order violation of four operations.
//!
//! This file has its own `main` (`harness = false`): the children are this
//! executable with `SHMSG_LIN_ROLE` set. `SHMSG_LIN_MESSAGES` sets the
//! messages per case (default 100 000); an argument runs only the cases
//! whose names contain it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use shmsg::shm::layout::RingKind;
use shmsg::shm::{Geometry, Region, mpmc, spsc};
use shmsg::{Error, Receiver, Sender};

mod common;

use common::Case;
use common::env;
use common::linearizable::{Op, PENDING, Summary, Violation, check};

const TIMEOUT: Duration = Duration::from_secs(60);

/// How a consumer's error starts when its stream ended inside a frame;
/// the consumer then exits with status 3.
const TRUNCATED: &str = "truncated";

/// Swaps the messages of every this-many-th pair in the seeded-bug case.
const SWAP_EVERY: u64 = 1000;

fn count() -> u64 {
    common::env_u64("SHMSG_LIN_MESSAGES", 100_000)
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process.
fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A process's history log: a mapped file of words (see the module
/// documentation).
struct Log {
    map: memmap2::MmapMut,
    capacity: usize,
}

impl Log {
    fn create(path: &Path, capacity: usize) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create a log");
        file.set_len(8 * (1 + 3 * capacity as u64))
            .expect("size a log");
        // SAFETY: the file is this process's own; the parent reads it only
        // to follow progress, never writing.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.expect("map a log");
        Log { map, capacity }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        let words = self.map.as_ptr() as *const AtomicU64;
        assert!(i < 1 + 3 * self.capacity);
        // SAFETY: the mapping is page-aligned, `1 + 3 * capacity` words
        // long (checked above) and lives as long as `self`; it is only
        // accessed through atomics.
        unsafe { &*words.add(i) }
    }

    fn len(&self) -> usize {
        self.word(0).load(SeqCst) as usize
    }

    /// Records the invocation of an operation on `id` (0 for a receive):
    /// returns its index.
    fn invoke(&self, id: u64) -> usize {
        let i = self.len();
        self.word(1 + 3 * i).store(id, SeqCst);
        self.word(2 + 3 * i).store(now(), SeqCst);
        self.word(3 + 3 * i).store(0, SeqCst);
        self.word(0).store(i as u64 + 1, SeqCst);
        i
    }

    fn respond(&self, i: usize, id: u64) {
        let t = now();
        self.word(1 + 3 * i).store(id, SeqCst);
        self.word(3 + 3 * i).store(t, SeqCst);
    }

    /// Forgets record `i` (a receive that returned no message).
    fn cancel(&self, i: usize) {
        self.word(0).store(i as u64, SeqCst);
    }
}

/// Reads the log at `path` as operations of `process` (only the records
/// counted: the rest of the file is a sparse hole).
fn read_log(path: &Path, process: u32, send: bool) -> Result<Vec<Op>, String> {
    use std::io::Read;
    let error = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(error)?;
    let _ = std::fs::remove_file(path);
    let mut head = [0u8; 8];
    file.read_exact(&mut head).map_err(error)?;
    let n = u64::from_ne_bytes(head) as usize;
    let mut bytes = vec![0u8; 8 * 3 * n];
    file.read_exact(&mut bytes).map_err(error)?;
    let word = |i: usize| u64::from_ne_bytes(bytes[8 * (i - 1)..8 * i].try_into().unwrap());
    Ok((0..n)
        .map(|i| {
            let respond = word(3 + 3 * i);
            Op {
                send,
                process,
                id: word(1 + 3 * i),
                invoke: word(2 + 3 * i),
                respond: if respond == 0 { PENDING } else { respond },
            }
        })
        .collect())
}

/// The records begun in the log at `path` so far (0 before it exists).
fn progress(path: &Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|b| {
            b.get(..8)
                .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
        })
        .unwrap_or(0)
}

/// Message `id`: the id, then a pattern of it.
fn message(id: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&id.to_le_bytes());
    m[8..].copy_from_slice(&(id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a).to_le_bytes());
    m
}

/// A receiver with the seeded bug: every [`SWAP_EVERY`]-th message is
/// held back and delivered after the one that follows it.
struct Swapping<R> {
    inner: R,
    swap: bool,
    held: Option<Vec<u8>>,
    received: u64,
}

impl<R: Receiver> Swapping<R> {
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> shmsg::Result<usize> {
        if let Some(held) = self.held.take() {
            *buf = held;
            return Ok(buf.len());
        }
        self.inner.recv_timeout(buf, timeout)?;
        self.received += 1;
        if self.swap && self.received.is_multiple_of(SWAP_EVERY) {
            let first = std::mem::take(buf);
            match self.inner.recv_timeout(buf, timeout) {
                Ok(_) => self.held = Some(first),
                Err(_) => *buf = first,
            }
        }
        Ok(buf.len())
    }
}

/// Message ids are `process * ID_BASE + seq`: producer 2's message 17 is
/// 2000000000017 in a report.
const ID_BASE: u64 = 1_000_000_000_000;

/// A producer child: sends ids `process * ID_BASE + seq` for `seq < share`.
/// Over a ring, a send refused with `Disconnected` (the consumer died, and
/// its replacement has not attached yet: nothing was sent) is retried, for
/// [`TIMEOUT`], as part of the same send.
fn produce(
    mut sender: Box<dyn Sender>,
    process: u64,
    share: u64,
    ring: bool,
    log: &Log,
) -> Result<(), String> {
    for seq in 0..share {
        let id = process * ID_BASE + seq;
        let i = log.invoke(id);
        let start = Instant::now();
        loop {
            match sender.send(&message(id)) {
                Ok(()) => break,
                Err(Error::Disconnected) if ring && start.elapsed() < TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("message {seq}: {e}")),
            }
        }
        log.respond(i, id);
    }
    sender.flush().map_err(|e| format!("flush: {e}"))
}

/// A consumer child: receives until `Disconnected` and `done` exists (the
/// parent creates it once every producer has ended), checking each
/// message whole.
fn consume(receiver: Box<dyn Receiver>, swap: bool, done: &Path, log: &Log) -> Result<(), String> {
    let mut receiver = Swapping {
        inner: receiver,
        swap,
        held: None,
        received: 0,
    };
    let mut buf = Vec::new();
    let mut finishing = false;
    loop {
        let i = log.invoke(0);
        match receiver.recv_timeout(&mut buf, TIMEOUT) {
            Ok(_) => {
                let id = buf
                    .get(..8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
                    .ok_or(format!("short message {buf:?}"))?;
                if buf[..] != message(id) {
                    return Err(format!("message {id:#x} is torn: {buf:?}"));
                }
                log.respond(i, id);
            }
            Err(Error::Disconnected) => {
                log.cancel(i);
                if finishing {
                    return Ok(());
                }
                // Producers that have not attached yet, or attached after
                // the others detached, are still to come.
                if done.exists() {
                    finishing = true;
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(e @ Error::TruncatedFrame { .. }) => {
                // A stream whose producer died inside a frame: the pending
                // send was not delivered. The parent accepts this exit only
                // when it killed the producer.
                log.cancel(i);
                return Err(format!("{TRUNCATED}: {e}"));
            }
            Err(e) => return Err(format!("after {i} receives: {e}")),
        }
    }
}

fn child_main(role: &str) -> ExitCode {
    let log = Log::create(
        Path::new(&env("SHMSG_LIN_LOG")),
        env("SHMSG_LIN_CAPACITY").parse().unwrap(),
    );
    let done = PathBuf::from(env("SHMSG_LIN_DONE"));
    let kind = std::env::var("SHMSG_LIN_KIND").unwrap_or_default();
    let result = (|| -> Result<(), String> {
        let producer = role == "producer";
        if kind == "ring" {
            let region =
                Arc::new(Region::open(&env("SHMSG_LIN_REGION")).map_err(|e| e.to_string())?);
            let spsc = region.kind() == RingKind::Spsc;
            if producer {
                let sender: Box<dyn Sender> = if spsc {
                    Box::new(spsc::Producer::attach(&region).map_err(|e| e.to_string())?)
                } else {
                    Box::new(mpmc::Producer::attach(&region).map_err(|e| e.to_string())?)
                };
                produce(
                    sender,
                    env("SHMSG_LIN_ID").parse().unwrap(),
                    env("SHMSG_LIN_SHARE").parse().unwrap(),
                    true,
                    &log,
                )
            } else {
                let receiver: Box<dyn Receiver> = if spsc {
                    Box::new(spsc::Consumer::attach(&region).map_err(|e| e.to_string())?)
                } else {
                    Box::new(mpmc::Consumer::attach(&region).map_err(|e| e.to_string())?)
                };
                consume(
                    receiver,
                    std::env::var_os("SHMSG_LIN_SWAP").is_some(),
                    &done,
                    &log,
                )
            }
        } else if producer {
            let channel = shmsg::connect(&env("SHMSG_LIN_ENDPOINT")).map_err(|e| e.to_string())?;
            produce(
                Box::new(channel),
                0,
                env("SHMSG_LIN_SHARE").parse().unwrap(),
                false,
                &log,
            )
        } else {
            let mut listener =
                shmsg::listen(&env("SHMSG_LIN_ENDPOINT")).map_err(|e| e.to_string())?;
            let file = env("SHMSG_LIN_ENDPOINT_FILE");
            std::fs::write(format!("{file}.tmp"), listener.endpoint())
                .map_err(|e| e.to_string())?;
            std::fs::rename(format!("{file}.tmp"), &file).map_err(|e| e.to_string())?;
            let channel = listener
                .accept_timeout(TIMEOUT)
                .map_err(|e| e.to_string())?;
            drop(listener);
            consume(Box::new(channel), false, &done, &log)
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{role}: {e}");
            if e.starts_with(TRUNCATED) {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Where a case runs: a ring of a kind, or a message-passing endpoint.
#[derive(Clone, Copy)]
enum Link {
    Ring(RingKind),
    Endpoint(&'static str),
}

/// Who is killed, once its log shows a third of its share done.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kill {
    None,
    Producer,
    Consumer,
}

struct Run {
    dir: PathBuf,
    name: String,
    children: Vec<(Child, PathBuf, u32, bool)>,
}

impl Run {
    fn spawn(&mut self, role: &str, process: u32, capacity: u64, vars: &[(&str, String)]) {
        let log = self.dir.join(format!("{}-{role}-{process}.log", self.name));
        let mut command = Command::new(std::env::current_exe().expect("the test executable"));
        command
            .env("SHMSG_LIN_ROLE", role)
            .env("SHMSG_LIN_LOG", &log)
            .env("SHMSG_LIN_CAPACITY", capacity.to_string())
            .env(
                "SHMSG_LIN_DONE",
                self.dir.join(format!("{}-done", self.name)),
            )
            .env("SHMSG_LIN_ID", process.to_string());
        for (k, v) in vars {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn a child");
        self.children
            .push((child, log, process, role == "producer"));
    }
}

impl Drop for Run {
    /// A case that failed early leaves no child running and no log behind.
    fn drop(&mut self) {
        for (child, log, _, _) in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_file(log);
        }
    }
}

/// Runs `producers` producer and `consumers` consumer processes over
/// `link`, killing one if `kill` says so, and checks the merged history;
/// `swap`: the consumers carry the seeded bug.
fn run(
    link: Link,
    producers: u32,
    consumers: u32,
    kill: Kill,
    swap: bool,
) -> Result<(u64, Result<Summary, Violation>, String), String> {
    let total = count();
    let name = format!(
        "lin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let dir = std::env::temp_dir();
    let mut run = Run {
        dir: dir.clone(),
        name: name.clone(),
        children: Vec::new(),
    };
    let shares: Vec<u64> = (0..producers as u64)
        .map(|p| total / producers as u64 + u64::from(p < total % producers as u64))
        .collect();
    let mut common_vars = vec![];
    let _region = match link {
        Link::Ring(kind) => {
            let geometry = Geometry::new(1 << 16, 1024).unwrap();
            let region = Region::create_kind(&name, geometry, kind).map_err(|e| e.to_string())?;
            common_vars.push(("SHMSG_LIN_KIND", "ring".to_string()));
            common_vars.push(("SHMSG_LIN_REGION", name.clone()));
            Some(region)
        }
        Link::Endpoint(endpoint) => {
            let endpoint = endpoint.replace("NAME", &name);
            common_vars.push(("SHMSG_LIN_KIND", "endpoint".to_string()));
            common_vars.push(("SHMSG_LIN_ENDPOINT", endpoint));
            None
        }
    };
    if swap {
        common_vars.push(("SHMSG_LIN_SWAP", "1".to_string()));
    }
    let endpoint_file = dir.join(format!("{name}-endpoint"));
    common_vars.push((
        "SHMSG_LIN_ENDPOINT_FILE",
        endpoint_file.display().to_string(),
    ));
    for c in 0..consumers {
        run.spawn("consumer", 100 + c, total + 1, &common_vars);
    }
    if let Link::Endpoint(_) = link {
        // The producer connects to the endpoint the consumer listens on.
        let start = Instant::now();
        let endpoint = loop {
            if let Ok(e) = std::fs::read_to_string(&endpoint_file) {
                break e;
            }
            if start.elapsed() > TIMEOUT {
                return Err("the consumer did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = std::fs::remove_file(&endpoint_file);
        common_vars.retain(|(k, _)| *k != "SHMSG_LIN_ENDPOINT");
        common_vars.push(("SHMSG_LIN_ENDPOINT", endpoint));
    }
    for p in 0..producers {
        let mut vars = common_vars.clone();
        vars.push(("SHMSG_LIN_SHARE", shares[p as usize].to_string()));
        run.spawn("producer", p, shares[p as usize] + 1, &vars);
    }
    let mut killed = None;
    if kill != Kill::None {
        // The last producer, or the first consumer, a third of the way in.
        let victim = match kill {
            Kill::Producer => run.children.len() - 1,
            _ => 0,
        };
        let goal = match kill {
            Kill::Producer => shares[producers as usize - 1] / 3,
            _ => total / consumers as u64 / 3,
        };
        let start = Instant::now();
        while progress(&run.children[victim].1) < goal && start.elapsed() < TIMEOUT {
            if run.children[victim]
                .0
                .try_wait()
                .map_err(|e| e.to_string())?
                .is_some()
            {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let child = &mut run.children[victim].0;
        child.kill().map_err(|e| e.to_string())?;
        let _ = child.wait();
        killed = Some(victim);
        if kill == Kill::Consumer && consumers == 1 {
            // A new consumer takes over the dead one's role; a record the
            // dead one was receiving is delivered again (at least once):
            // its pending receive took no effect.
            run.spawn("consumer", 100 + consumers, total + 1, &common_vars);
        }
    }
    let mut failures = Vec::new();
    // Producers first, then tell the consumers that no more will come.
    for (i, (child, _, process, producer)) in run.children.iter_mut().enumerate() {
        if *producer && killed != Some(i) {
            let status = child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                failures.push(format!("producer {process}: {status}"));
            }
        }
    }
    let done = dir.join(format!("{name}-done"));
    std::fs::write(&done, b"").map_err(|e| e.to_string())?;
    for (i, (child, _, process, producer)) in run.children.iter_mut().enumerate() {
        if !*producer && killed != Some(i) {
            let status = child.wait().map_err(|e| e.to_string())?;
            // Status 3: a stream that ended inside a frame (see `consume`).
            let truncated = status.code() == Some(3) && kill == Kill::Producer;
            if !(status.success() || truncated) {
                failures.push(format!("consumer {process}: {status}"));
            }
        }
    }
    let _ = std::fs::remove_file(&done);
    let mut history = Vec::new();
    for (_, log, process, producer) in &run.children {
        history.extend(read_log(log, *process, *producer)?);
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    let start = Instant::now();
    let verdict = check(&history, true);
    let timing = format!(
        "{} operations checked in {:.2} s",
        history.len(),
        start.elapsed().as_secs_f64()
    );
    let sent = history.iter().filter(|op| op.send).count() as u64;
    Ok((sent, verdict, timing))
}

/// A case that must be linearizable.
fn linearizable(link: Link, producers: u32, consumers: u32, kill: Kill) -> Result<String, String> {
    let (sent, verdict, timing) = run(link, producers, consumers, kill, false)?;
    let summary = verdict.map_err(|v| v.to_string())?;
    Ok(format!(
        "{} messages, {producers} -> {consumers} processes, {sent} sends, {summary:?}; {timing}",
        count()
    ))
}

/// The seeded bug: the checker must report the swapped pair.
fn seeded_swap(link: Link, producers: u32) -> Result<String, String> {
    let (_, verdict, timing) = run(link, producers, 1, Kill::None, true)?;
    match verdict {
        Ok(summary) => Err(format!("the swapped records went unreported: {summary:?}")),
        Err(v) if v.kind == "order" && v.ops.len() == 4 => Ok(format!(
            "reported as expected; {timing}; {}",
            v.to_string().trim_end().replace('\n', " |")
        )),
        Err(v) => Err(format!("reported as the wrong violation: {v}")),
    }
}

/// The checker on hand-written histories.
mod checker {
    use super::*;

    fn s(id: u64, i: u64, r: u64) -> Op {
        Op::send(0, id, i, r)
    }
    fn r(id: u64, i: u64, t: u64) -> Op {
        Op::recv(100, id, i, t)
    }
    fn expect(ok: bool, what: &str) -> Result<(), String> {
        if ok { Ok(()) } else { Err(what.to_string()) }
    }

    pub fn accepts() -> Result<String, String> {
        let histories: &[(&str, Vec<Op>)] = &[
            (
                "sequential",
                vec![s(1, 0, 1), s(2, 2, 3), r(1, 4, 5), r(2, 6, 7)],
            ),
            (
                "overlapping sends, either order",
                vec![s(1, 0, 3), s(2, 1, 4), r(2, 5, 6), r(1, 7, 8)],
            ),
            (
                "overlapping receives of two consumers, either order",
                vec![s(1, 0, 1), s(2, 2, 3), r(2, 4, 7), Op::recv(101, 1, 5, 8)],
            ),
            (
                "a receive overlapping its send",
                vec![s(1, 0, 5), r(1, 1, 2)],
            ),
            (
                "a pending send delivered",
                vec![s(1, 0, 1), s(2, 2, PENDING), r(1, 3, 4), r(2, 5, 6)],
            ),
            (
                "a pending send dropped",
                vec![s(1, 0, 1), s(2, 2, PENDING), r(1, 3, 4)],
            ),
            (
                "a killed consumer's pending receive holding one message",
                vec![
                    s(1, 0, 1),
                    s(2, 2, 3),
                    Op::recv(101, 0, 4, PENDING),
                    r(2, 5, 6),
                ],
            ),
        ];
        for (name, history) in histories {
            check(history, true).map_err(|v| format!("{name}: {v}"))?;
        }
        Ok(format!(
            "{} linearizable histories accepted",
            histories.len()
        ))
    }

    pub fn rejects() -> Result<String, String> {
        // Swapped: the sub-history is the offending pair's four operations.
        let history = [
            s(1, 0, 1),
            s(2, 2, 3),
            s(3, 4, 5),
            r(1, 6, 7),
            r(3, 8, 9),
            r(2, 10, 11),
        ];
        let v = check(&history, true)
            .err()
            .ok_or("a swapped pair accepted")?;
        expect(v.kind == "order", "swapped: not an order violation")?;
        expect(
            v.ops == [s(2, 2, 3), s(3, 4, 5), r(3, 8, 9), r(2, 10, 11)],
            &format!("swapped: sub-history {v}"),
        )?;
        let shown = v.to_string();
        // Duplicated.
        let history = [s(1, 0, 1), r(1, 2, 3), r(1, 4, 5)];
        let v = check(&history, true).err().ok_or("a duplicate accepted")?;
        expect(
            v.kind == "repeated" && v.ops == history,
            &format!("duplicate: {v}"),
        )?;
        // Lost.
        let history = [s(1, 0, 1), s(2, 2, 3), r(2, 4, 5)];
        let v = check(&history, true)
            .err()
            .ok_or("a lost message accepted")?;
        expect(
            v.kind == "lost" && v.ops == [s(1, 0, 1)],
            &format!("lost: {v}"),
        )?;
        // Lost, more than the killed consumers' pending receives can hold.
        let history = [
            s(1, 0, 1),
            s(2, 2, 3),
            s(3, 4, 5),
            Op::recv(101, 0, 6, PENDING),
            r(3, 7, 8),
        ];
        let v = check(&history, true)
            .err()
            .ok_or("two lost for one pending receive")?;
        expect(v.kind == "lost", &format!("lost beyond: {v}"))?;
        // Held by a killed consumer whose receive began after a later
        // message had been received.
        let history = [
            s(1, 0, 1),
            s(2, 2, 3),
            r(2, 4, 5),
            Op::recv(101, 0, 6, PENDING),
        ];
        let v = check(&history, true).err().ok_or("a late hold accepted")?;
        expect(
            v.kind == "order" && v.ops.len() == 4,
            &format!("late hold: {v}"),
        )?;
        // Never sent; received before sent.
        let v = check(&[r(1, 0, 1)], true)
            .err()
            .ok_or("a phantom accepted")?;
        expect(v.kind == "fresh", &format!("phantom: {v}"))?;
        let v = check(&[r(1, 0, 1), s(1, 2, 3)], true)
            .err()
            .ok_or("a time travel accepted")?;
        expect(v.kind == "fresh", &format!("received before sent: {v}"))?;
        Ok(format!(
            "swapped, duplicated, lost, phantom and early messages reported; the swap as: {}",
            shown.trim_end().replace('\n', " |")
        ))
    }
}

const CASES: &[Case] = &[
    ("checker_accepts", checker::accepts),
    ("checker_rejects", checker::rejects),
    ("spsc", || {
        linearizable(Link::Ring(RingKind::Spsc), 1, 1, Kill::None)
    }),
    ("mpsc", || {
        linearizable(Link::Ring(RingKind::Mpsc), 3, 1, Kill::None)
    }),
    ("mpmc", || {
        linearizable(Link::Ring(RingKind::Mpmc), 3, 2, Kill::None)
    }),
    ("spsc_killed_producer", || {
        linearizable(Link::Ring(RingKind::Spsc), 1, 1, Kill::Producer)
    }),
    ("mpsc_killed_producer", || {
        linearizable(Link::Ring(RingKind::Mpsc), 3, 1, Kill::Producer)
    }),
    ("mpmc_killed_producer", || {
        linearizable(Link::Ring(RingKind::Mpmc), 3, 2, Kill::Producer)
    }),
    ("spsc_killed_consumer", || {
        linearizable(Link::Ring(RingKind::Spsc), 1, 1, Kill::Consumer)
    }),
    ("mpsc_killed_consumer", || {
        linearizable(Link::Ring(RingKind::Mpsc), 3, 1, Kill::Consumer)
    }),
    ("mpmc_killed_consumer", || {
        linearizable(Link::Ring(RingKind::Mpmc), 2, 2, Kill::Consumer)
    }),
    ("unix", || {
        linearizable(Link::Endpoint("unix:@NAME"), 1, 1, Kill::None)
    }),
    ("seqpacket", || {
        linearizable(Link::Endpoint("seqpacket:@NAME"), 1, 1, Kill::None)
    }),
    ("tcp", || {
        linearizable(Link::Endpoint("tcp:127.0.0.1:0"), 1, 1, Kill::None)
    }),
    ("unix_killed_producer", || {
        linearizable(Link::Endpoint("unix:@NAME"), 1, 1, Kill::Producer)
    }),
    ("seqpacket_killed_producer", || {
        linearizable(Link::Endpoint("seqpacket:@NAME"), 1, 1, Kill::Producer)
    }),
    ("tcp_killed_producer", || {
        linearizable(Link::Endpoint("tcp:127.0.0.1:0"), 1, 1, Kill::Producer)
    }),
    ("seeded_swap_spsc", || {
        seeded_swap(Link::Ring(RingKind::Spsc), 1)
    }),
    ("seeded_swap_mpsc", || {
        seeded_swap(Link::Ring(RingKind::Mpsc), 3)
    }),
];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_LIN_ROLE") {
        return child_main(&role);
    }
    common::run_cases(CASES, |what| what)
}
