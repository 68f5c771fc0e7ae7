//! The crash campaign: producer and consumer processes stream checked
//! messages through each ring kind (Spsc; Mpsc with 2 or 3 producers; Mpmc
//! with 2 producers and 2 consumers) while the parent kills them, and
//! while another process scribbles on the region.
//!
//! **Kill campaign.** The parent SIGKILLs a random child 2 to 40 ms into
//! its run (or within 10 ms, for one that has run longer) and starts a new
//! process in its role: a producer goes on from the sequence number after
//! the last one its predecessor attempted, a consumer takes the dead one's
//! slot. Before each kill, and after the last, the ring must hand back a
//! whole lap of records (it is alive). Half the rings carry messages of 24
//! to 224 bytes, the other half of up to 6 KiB (longer copies and
//! hand-backs for the kills to land in). Producers record, in a shared status
//! file, the sequence number they attempt before each send and the one
//! sent after it returns; consumers log (producer, sequence) of each
//! message as soon as `recv_with`'s closure gets it, before the ring takes
//! the record back, and then whether its bytes were right. So every message
//! is accounted for exactly:
//!
//! * *sent*: its send returned `Ok`; it must arrive (else a *gap*);
//! * the one send in progress when a producer was killed may arrive or not;
//! * *redelivered*: a message that a killed consumer logged last (it held
//!   it) arrives again: at-least-once, documented; any other second copy
//!   is a *duplicate*;
//! * *torn*: bytes that are not exactly a message sent (producer id,
//!   sequence number, checksum and body are checked);
//! * *phantom*: a message never sent; *reordered*: a consumer got a
//!   producer's messages out of order.
//!
//! Where a survivor should notice the death (the other side of an Spsc
//! ring; the producers of an Mpsc ring whose consumer died), half the
//! kills wait for its `Disconnected` before the restart and time it; the
//! other half restart at once (the new process takes over a slot whose
//! holder's death may not be noticed yet).
//!
//! An Mpmc consumer that dies holding a record has it handed back for it
//! by the others, not delivered again (documented in `src/shm/mpmc/mod.rs`):
//! at most one missing message per Mpmc consumer kill is counted as
//! *dropped with its consumer*, any other as a gap. A ring that stops
//! moving is a *stall*, a failure (its messages still in the ring count as
//! stranded).
//!
//! **Hostile writer.** While producers and consumers stream (retrying and
//! re-attaching on errors), a process maps the region and stores random
//! values at random words of its header and data area. No child may panic
//! or make a call that outlasts its timeout by 2 s; the errors are counted
//! by kind, as are intact and bad messages.
//!
//! Knobs: `SHMSG_CAMPAIGN_KILLS` (default 90, spread over the ring kinds;
//! the deep tier runs 1000), `SHMSG_CAMPAIGN_WRITES` (default 100 000;
//! deep tier 10^6), `SHMSG_CAMPAIGN_SEED` (default: the clock; printed).
//! Arguments select parts and kinds: `kill`, `hostile`, `spsc`, `mpsc`,
//! `mpmc`. This file has its own `main` (`harness = false`): a child is
//! this executable with `SHMSG_CAMPAIGN_ROLE` set.

#[path = "crash_campaign/account.rs"]
mod account;
#[path = "crash_campaign/child.rs"]
mod child;
#[path = "crash_campaign/hostile.rs"]
mod hostile;
#[path = "crash_campaign/shared.rs"]
mod shared;
#[path = "crash_campaign/summary.rs"]
mod summary;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use shmsg::shm::layout::{RingKind, offsets};
use shmsg::shm::{Geometry, Region};

use account::{Incarnation, Side, Tally, account, ring_contents};
use hostile::{Hostile, hostile_round};
use shared::*;
use summary::print_summary;

/// Kills per round (one ring); a new ring after that.
const ROUND_KILLS: u64 = 8;
/// How long a ring may go without handing back a lap of records before it
/// has stalled: a lap (32 KiB, 10 to 250 messages) takes well
/// under 10 ms in a flowing stream, and a restarted child starts in tens
/// of ms on a loaded 2-core machine; 2 s is 10 times a 200 ms worst case.
const STALL: Duration = Duration::from_secs(2);
/// How long a survivor may take to report `Disconnected` after its peer's
/// SIGKILL: a watchdog period (25 ms) or two sleep slices (20 ms each)
/// typically, 60 ms under load; 5 s is 80 times that.
const DISCONNECT_BOUND: Duration = Duration::from_secs(5);
/// How long children may take to start and attach, or to exit once told
/// to: each call returns within 100 ms plus a slice, a drain is one ring;
/// typically under 200 ms; 10 s is 50 times that.
const EXIT_BOUND: Duration = Duration::from_secs(10);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn geometry() -> Geometry {
    Geometry::new(1 << 15, 8192).expect("a valid geometry")
}

fn kind_name(kind: RingKind) -> &'static str {
    match kind {
        RingKind::Spsc => "spsc",
        RingKind::Mpsc => "mpsc",
        RingKind::Mpmc => "mpmc",
    }
}

/// Whether a survivor on `survivor`'s side sees `Disconnected` when a
/// `victim`-side peer dies: only when that peer was the last of its side
/// (either side of an Spsc ring, the consumer of an Mpsc ring).
fn notices(kind: RingKind, victim: Side, survivor: Side) -> bool {
    victim != survivor
        && match kind {
            RingKind::Spsc => true,
            RingKind::Mpsc => victim == Side::Consumer,
            RingKind::Mpmc => false,
        }
}

/// A live child.
struct Kid {
    side: Side,
    id: u64,
    child: Child,
    status: Words,
    started: Instant,
}

/// One ring and the children on it.
struct Round<'a> {
    kind: RingKind,
    name: String,
    region: Arc<Region>,
    dir: &'a Path,
    control: Words,
    control_path: PathBuf,
    files: Vec<PathBuf>,
    kids: Vec<Kid>,
    ended: Vec<Incarnation>,
    tally: &'a mut Tally,
    hostile: bool,
    /// The most body bytes a message has.
    body: usize,
}

impl<'a> Round<'a> {
    fn new(
        kind: RingKind,
        label: &str,
        dir: &'a Path,
        tally: &'a mut Tally,
        hostile: bool,
        body: usize,
    ) -> Self {
        let name = format!("campaign-{}-{label}", std::process::id());
        let region = Region::create_kind(&name, geometry(), kind).expect("create the region");
        let control_path = dir.join(format!("{name}.control"));
        let control = Words::create(&control_path, 8);
        tally.rounds += 1;
        Round {
            kind,
            region: Arc::new(region),
            dir,
            control,
            files: vec![control_path.clone()],
            control_path,
            name,
            kids: Vec::new(),
            ended: Vec::new(),
            tally,
            hostile,
            body,
        }
    }

    fn spawn(&mut self, side: Side, id: u64, first: u64) {
        let path = self
            .dir
            .join(format!("{}-{}.status", self.name, self.files.len()));
        let words = match side {
            Side::Consumer if !self.hostile => LOG + 2 * LOG_ENTRIES,
            _ => STATUS_WORDS,
        };
        let status = Words::create(&path, words);
        for word in [FIRST, ATTEMPTED, COMMITTED] {
            status.word(word).store(first, Release);
        }
        let role = match side {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        };
        let child = Command::new(std::env::current_exe().expect("the test executable"))
            .env("SHMSG_CAMPAIGN_ROLE", role)
            .env("SHMSG_CAMPAIGN_REGION", &self.name)
            .env("SHMSG_CAMPAIGN_STATUS", &path)
            .env("SHMSG_CAMPAIGN_CONTROL", &self.control_path)
            .env("SHMSG_CAMPAIGN_ID", id.to_string())
            .env("SHMSG_CAMPAIGN_BODY", self.body.to_string())
            .env(
                "SHMSG_CAMPAIGN_MODE",
                if self.hostile { "hostile" } else { "kill" },
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn a child");
        self.files.push(path);
        self.kids.push(Kid {
            side,
            id,
            child,
            status,
            started: Instant::now(),
        });
    }

    /// Counts how a child ended that the campaign did not kill.
    fn exited(&mut self, status: ExitStatus, what: &str) {
        if status.code() == Some(101) {
            self.tally.panics += 1;
            eprintln!("  {}: {what} panicked", self.name);
        } else if !status.success() {
            self.tally.errors += 1;
            eprintln!("  {}: {what} failed: {status}", self.name);
        }
    }

    fn end(&mut self, kid: Kid, killed: bool) {
        self.ended.push(Incarnation {
            side: kid.side,
            id: kid.id,
            status: kid.status,
            killed,
        });
    }

    /// Restarts, after counting, any child that exited while the ring runs
    /// (none should).
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.kids.len() {
            match self.kids[i].child.try_wait() {
                Ok(None) => i += 1,
                result => {
                    let kid = self.kids.swap_remove(i);
                    match result {
                        Ok(Some(status)) if status.success() => {
                            self.tally.errors += 1;
                            eprintln!("  {}: a {:?} exited early", self.name, kid.side);
                        }
                        Ok(Some(status)) => self.exited(status, &format!("{:?}", kid.side)),
                        _ => self.tally.errors += 1,
                    }
                    let first = kid.status.word(ATTEMPTED).load(Acquire);
                    let (side, id) = (kid.side, kid.id);
                    self.end(kid, false);
                    self.spawn(side, id, first);
                }
            }
        }
    }

    fn head(&self) -> u64 {
        self.region.header_word(offsets::HEAD)
    }

    /// Waits until every child says it attached; false (a hang) if one
    /// does not within [`EXIT_BOUND`].
    fn attached(&mut self) -> bool {
        let started = Instant::now();
        while self
            .kids
            .iter()
            .any(|k| k.status.word(PHASE).load(Acquire) == STARTING)
        {
            if started.elapsed() > EXIT_BOUND {
                self.tally.hangs += 1;
                eprintln!("  {}: a child did not attach in {EXIT_BOUND:?}", self.name);
                return false;
            }
            self.reap();
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Whether the ring hands back a whole lap of records from `head0`
    /// within [`STALL`].
    fn progress(&mut self, head0: u64) -> bool {
        let started = Instant::now();
        let capacity = geometry().capacity() as u64;
        loop {
            if self.head().wrapping_sub(head0) >= capacity {
                return true;
            }
            if started.elapsed() > STALL {
                return false;
            }
            self.reap();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kills a random child at a random moment, times the survivors'
    /// `Disconnected` where they should see one (every other time), and
    /// starts a new child in its role. Returns the victim's side.
    fn kill_one(&mut self, rng: &mut Rng) -> Side {
        let v = rng.below(self.kids.len() as u64) as usize;
        let at = self.kids[v].started + Duration::from_millis(2 + rng.below(39));
        let now = Instant::now();
        std::thread::sleep(if at > now {
            at - now
        } else {
            Duration::from_millis(rng.below(10))
        });
        let mut victim = self.kids.swap_remove(v);
        let wait = rng.below(2) == 0;
        let watched: Vec<usize> = (0..self.kids.len())
            .filter(|&i| {
                let k = &self.kids[i];
                wait && notices(self.kind, victim.side, k.side)
                    && k.status.word(PHASE).load(Acquire) == FLOWING
            })
            .collect();
        let killed_at = now_ns();
        let _ = victim.child.kill();
        match victim.child.wait() {
            Ok(status) if status.signal() == Some(libc::SIGKILL) => {}
            Ok(status) => self.exited(status, &format!("{:?} (before its kill)", victim.side)),
            Err(_) => self.tally.errors += 1,
        }
        match victim.side {
            Side::Producer => self.tally.kills_producer += 1,
            Side::Consumer => self.tally.kills_consumer += 1,
        }
        for i in watched {
            let status = &self.kids[i].status;
            let started = Instant::now();
            loop {
                if status.word(PHASE).load(Acquire) == DISCONNECTED {
                    let at = status.word(DISC_NS).load(Relaxed);
                    let took = Duration::from_nanos(at.saturating_sub(killed_at));
                    self.tally.disconnect.push(took);
                    break;
                }
                if started.elapsed() > DISCONNECT_BOUND {
                    self.tally.hangs += 1;
                    eprintln!(
                        "  {}: a {:?} was not told Disconnected within {DISCONNECT_BOUND:?} of its peer's death",
                        self.name, self.kids[i].side
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let (side, id) = (victim.side, victim.id);
        let first = victim.status.word(ATTEMPTED).load(Acquire);
        self.end(victim, true);
        self.spawn(side, id, first);
        side
    }

    /// Waits (up to [`EXIT_BOUND`]) for the children of `side` (all if
    /// `None`) to exit; one that does not is a hang, and is killed.
    fn wait_exit(&mut self, side: Option<Side>) {
        let started = Instant::now();
        loop {
            let mut i = 0;
            while i < self.kids.len() {
                if side.is_some_and(|s| s != self.kids[i].side) {
                    i += 1;
                    continue;
                }
                match self.kids[i].child.try_wait() {
                    Ok(None) => i += 1,
                    result => {
                        let kid = self.kids.swap_remove(i);
                        match result {
                            Ok(Some(status)) => self.exited(status, &format!("{:?}", kid.side)),
                            _ => self.tally.errors += 1,
                        }
                        self.end(kid, false);
                    }
                }
            }
            if !self.kids.iter().any(|k| side.is_none_or(|s| s == k.side)) {
                return;
            }
            if started.elapsed() > EXIT_BOUND {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut i = 0;
        while i < self.kids.len() {
            if side.is_some_and(|s| s != self.kids[i].side) {
                i += 1;
                continue;
            }
            let mut kid = self.kids.swap_remove(i);
            self.tally.hangs += 1;
            eprintln!(
                "  {}: a {:?} did not exit within {EXIT_BOUND:?} of being told",
                self.name, kid.side
            );
            let _ = kid.child.kill();
            let _ = kid.child.wait();
            self.end(kid, true);
        }
    }

    /// Ends the round: cleanly (producers stop, consumers drain until
    /// `Disconnected`), or by abort (everyone stops after the call in
    /// progress).
    fn finish(&mut self, clean: bool) {
        if clean && !self.hostile {
            self.control.word(STOP).store(1, Release);
            self.wait_exit(Some(Side::Producer));
            self.wait_exit(Some(Side::Consumer));
        } else {
            let word = if clean { STOP } else { ABORT };
            self.control.word(word).store(1, Release);
            self.wait_exit(None);
        }
        for inc in &self.ended {
            self.tally.hangs += inc.status.word(SLOW_CALLS).load(Acquire);
        }
    }

    /// The region's bytes, read after every child ended.
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(child::region_path(&self.name)).unwrap_or_default()
    }

    /// Region words of interest, for a stall report.
    fn describe(&self) -> String {
        let w = |o| self.region.header_word(o);
        format!(
            "head {:#x}, read cursor {:#x}, tail {:#x}",
            w(offsets::HEAD),
            w(offsets::READ_CURSOR),
            w(offsets::TAIL)
        )
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        for kid in &mut self.kids {
            let _ = kid.child.kill();
            let _ = kid.child.wait();
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// How many producers and consumers a ring of `kind` gets.
fn shape(kind: RingKind, rng: &mut Rng) -> (u64, u64) {
    match kind {
        RingKind::Spsc => (1, 1),
        RingKind::Mpsc => (2 + rng.below(2), 1),
        RingKind::Mpmc => (2, 2),
    }
}

/// One ring with up to `wanted` kills; returns the kills made.
fn kill_round(
    kind: RingKind,
    number: u64,
    wanted: u64,
    rng: &mut Rng,
    dir: &Path,
    tally: &mut Tally,
) -> u64 {
    let (producers, consumers) = shape(kind, rng);
    let label = format!("kill-{}-{number}", kind_name(kind));
    let body = if rng.below(2) == 0 {
        SMALL_BODY
    } else {
        LARGE_BODY
    };
    let mut round = Round::new(kind, &label, dir, tally, false, body);
    for c in 0..consumers {
        round.spawn(Side::Consumer, c, 0);
    }
    // Consumers first: a producer's first send then finds its ring read.
    let mut clean = round.attached();
    let mut kills = 0;
    if clean {
        for p in 0..producers {
            round.spawn(Side::Producer, p, 0);
        }
        let mut last = None;
        let mut head = round.head();
        clean = loop {
            if !round.progress(head) {
                round.tally.stalls += 1;
                eprintln!(
                    "  {}: STALL after killing a {last:?} ({} producers, {} consumers): {}",
                    round.name,
                    producers,
                    consumers,
                    round.describe()
                );
                break false;
            }
            if kills == wanted {
                break true;
            }
            last = Some(round.kill_one(rng));
            kills += 1;
            head = round.head();
        };
    }
    round.finish(clean);
    let in_ring = (!clean).then(|| ring_contents(&round.bytes(), kind, geometry(), body));
    let ended = std::mem::take(&mut round.ended);
    let droppable = if kind == RingKind::Mpmc {
        ended
            .iter()
            .filter(|i| i.side == Side::Consumer && i.killed)
            .count() as u64
    } else {
        0
    };
    account(
        producers as usize,
        &ended,
        in_ring.as_ref(),
        droppable,
        round.tally,
    );
    kills
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_CAMPAIGN_ROLE") {
        return child::main(&role);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |word: &str, group: &[&str]| {
        !filter.iter().any(|f| group.contains(&f.as_str())) || filter.iter().any(|f| f == word)
    };
    let parts = ["kill", "hostile"];
    let kinds: Vec<RingKind> = [RingKind::Spsc, RingKind::Mpsc, RingKind::Mpmc]
        .into_iter()
        .filter(|&k| wants(kind_name(k), &["spsc", "mpsc", "mpmc"]))
        .collect();
    let kills = knob("SHMSG_CAMPAIGN_KILLS", 90);
    let writes = knob("SHMSG_CAMPAIGN_WRITES", 100_000);
    let seed = knob("SHMSG_CAMPAIGN_SEED", now_ns());
    let mut rng = Rng::new(seed);
    let dir = std::env::temp_dir().join(format!("shmsg-campaign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the campaign's files");
    let started = Instant::now();
    eprintln!("crash campaign: seed {seed}");

    let mut tallies: Vec<Tally> = kinds.iter().map(|_| Tally::default()).collect();
    if wants("kill", &parts) {
        let per_kind = kills.div_ceil(kinds.len().max(1) as u64);
        for (kind, tally) in kinds.iter().zip(&mut tallies) {
            let kind_started = Instant::now();
            let (mut made, mut number) = (0, 0);
            // A round that stalls before its first kill still ends; the
            // bound on rounds keeps a ring that always stalls from looping.
            while made < per_kind && number < per_kind + 10 {
                made += kill_round(
                    *kind,
                    number,
                    (per_kind - made).min(ROUND_KILLS),
                    &mut rng,
                    &dir,
                    tally,
                );
                number += 1;
            }
            eprintln!(
                "  {}: {made} kills in {number} rounds, {:.1} s",
                kind_name(*kind),
                kind_started.elapsed().as_secs_f64()
            );
        }
    }
    let mut hostiles: Vec<Hostile> = Vec::new();
    if wants("hostile", &parts) {
        let per_kind = writes.div_ceil(kinds.len().max(1) as u64);
        for &kind in &kinds {
            let kind_started = Instant::now();
            hostiles.push(hostile_round(kind, per_kind, rng.next(), &dir, &mut rng));
            eprintln!(
                "  hostile {}: {:.1} s",
                kind_name(kind),
                kind_started.elapsed().as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut total = Tally::default();
    for t in &tallies {
        total.add(t);
    }
    let hostile_failures: u64 = hostiles.iter().map(|h| h.panics + h.failed + h.hangs).sum();
    let failures = total.failures() + hostile_failures;
    print_summary(
        &kinds, &tallies, &total, &hostiles, seed, kills, writes, started,
    );
    println!(
        "test result: {}",
        if failures == 0 { "ok" } else { "FAILED" }
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
