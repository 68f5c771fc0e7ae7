//! The child roles: a producer, a consumer (each in kill mode or hostile
//! mode), and the hostile writer. A child reports through its status file
//! ([`super::shared`]) and its exit code: 0 done, 3 an unexpected error
//! (printed), 101 a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use shmsg::Error;
use shmsg::shm::layout::{DATA_OFFSET, RingKind};
use shmsg::shm::region::{PREFIX, SHM_DIR};
use shmsg::shm::{Region, mpmc, spsc};

use super::shared::*;

/// The sending end of any ring kind.
enum Tx {
    Spsc(spsc::Producer),
    Multi(mpmc::Producer),
}

impl Tx {
    fn attach(region: &Arc<Region>) -> shmsg::Result<Tx> {
        match region.kind() {
            RingKind::Spsc => spsc::Producer::attach(region).map(Tx::Spsc),
            _ => mpmc::Producer::attach(region).map(Tx::Multi),
        }
    }

    fn send_timeout(&mut self, m: &[u8]) -> shmsg::Result<()> {
        match self {
            Tx::Spsc(p) => p.send_timeout(m, TIMEOUT),
            Tx::Multi(p) => p.send_timeout(m, TIMEOUT),
        }
    }

    /// In place, claiming 16 bytes more than needed (padding in a
    /// multi-producer ring).
    fn try_send_in_place(&mut self, m: &[u8]) -> shmsg::Result<()> {
        let fill = |buf: &mut [u8]| {
            buf[..m.len()].copy_from_slice(m);
            m.len()
        };
        match self {
            Tx::Spsc(p) => p.try_send_with(m.len() + 16, fill).map(drop),
            Tx::Multi(p) => p.try_send_with(m.len() + 16, fill).map(drop),
        }
    }
}

/// The receiving end of any ring kind.
enum Rx {
    Spsc(spsc::Consumer),
    Multi(mpmc::Consumer),
}

impl Rx {
    fn attach(region: &Arc<Region>) -> shmsg::Result<Rx> {
        match region.kind() {
            RingKind::Spsc => spsc::Consumer::attach(region).map(Rx::Spsc),
            _ => mpmc::Consumer::attach(region).map(Rx::Multi),
        }
    }

    fn recv<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> shmsg::Result<R> {
        match self {
            Rx::Spsc(c) => c.recv_with_timeout(TIMEOUT, read),
            Rx::Multi(c) => c.recv_with_timeout(TIMEOUT, read),
        }
    }
}

struct Context {
    region: String,
    status: Words,
    control: Words,
    hostile: bool,
}

impl Context {
    fn stopping(&self) -> bool {
        self.control.word(STOP).load(Acquire) != 0
    }

    fn aborting(&self) -> bool {
        self.control.word(ABORT).load(Acquire) != 0
    }

    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        self.status.word(i)
    }

    /// Times one call: one that took longer than [`SLOW`] is counted.
    fn timed<T>(&self, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = call();
        let took = started.elapsed();
        if took > SLOW {
            self.word(SLOW_CALLS).fetch_add(1, Relaxed);
            eprintln!(
                "campaign child {}: a call took {took:?}",
                std::process::id()
            );
        }
        result
    }

    fn flowing(&self) {
        if self.word(PHASE).load(Relaxed) != FLOWING {
            self.word(PHASE).store(FLOWING, Release);
        }
    }

    fn disconnected(&self) {
        if self.word(PHASE).load(Relaxed) != DISCONNECTED {
            self.word(DISC_NS).store(now_ns(), Relaxed);
            self.word(PHASE).store(DISCONNECTED, Release);
        }
    }

    fn count(&self, error: &Error) {
        self.word(KINDS + kind_index(error)).fetch_add(1, Relaxed);
    }

    /// Attaches with `attach` until it works (hostile mode: counting each
    /// failure) or the round stops; kill mode: a failure is the child's.
    fn attach<T>(
        &self,
        region: &Arc<Region>,
        attach: fn(&Arc<Region>) -> shmsg::Result<T>,
    ) -> Result<Option<T>, String> {
        loop {
            if self.stopping() || self.aborting() {
                return Ok(None);
            }
            match attach(region) {
                Ok(handle) => {
                    self.word(PHASE).store(ATTACHED, Release);
                    return Ok(Some(handle));
                }
                Err(error) if self.hostile => {
                    self.count(&error);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(error) => return Err(format!("attach: {error}")),
            }
        }
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn num(name: &str) -> Result<u64, String> {
    env(name)?.parse().map_err(|e| format!("{name}: {e}"))
}

/// Runs the child role `role`.
pub fn main(role: &str) -> ExitCode {
    // A child outlives no parent (a parent that panicked leaves no
    // streaming children behind).
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches
    // no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let result = match role {
        "producer" | "consumer" => context().and_then(|ctx| {
            if role == "producer" {
                produce(&ctx)
            } else {
                consume(&ctx)
            }
        }),
        "hostile" => hostile(),
        other => Err(format!("unknown role {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("campaign {role} {}: {why}", std::process::id());
            ExitCode::from(3)
        }
    }
}

fn context() -> Result<Context, String> {
    let status = Words::open(Path::new(&env("SHMSG_CAMPAIGN_STATUS")?))
        .map_err(|e| format!("status: {e}"))?;
    let control = Words::open(Path::new(&env("SHMSG_CAMPAIGN_CONTROL")?))
        .map_err(|e| format!("control: {e}"))?;
    Ok(Context {
        region: env("SHMSG_CAMPAIGN_REGION")?,
        status,
        control,
        hostile: env("SHMSG_CAMPAIGN_MODE")? == "hostile",
    })
}

fn open(ctx: &Context) -> Result<Arc<Region>, String> {
    Region::open(&ctx.region)
        .map(Arc::new)
        .map_err(|e| format!("open: {e}"))
}

/// Sends messages `ATTEMPTED..` of producer `SHMSG_CAMPAIGN_ID` until the
/// round stops; a quarter of them in place. `ATTEMPTED` is stored before
/// each send and `COMMITTED` after it returned `Ok`, so after a SIGKILL the
/// parent knows every message sent and the one that may have been.
fn produce(ctx: &Context) -> Result<(), String> {
    let id = num("SHMSG_CAMPAIGN_ID")?;
    let body = num("SHMSG_CAMPAIGN_BODY")? as usize;
    let region = open(ctx)?;
    let Some(mut tx) = ctx.attach(&region, Tx::attach)? else {
        return Ok(());
    };
    let mut seq = ctx.word(ATTEMPTED).load(Relaxed);
    let mut m = Vec::new();
    message(id, seq, body, &mut m);
    while !ctx.stopping() && !ctx.aborting() {
        ctx.word(ATTEMPTED).store(seq + 1, SeqCst);
        let result = ctx.timed(|| {
            if seq % 4 == 1 {
                match tx.try_send_in_place(&m) {
                    Err(Error::Full) => tx.send_timeout(&m),
                    other => other,
                }
            } else {
                tx.send_timeout(&m)
            }
        });
        match result {
            Ok(()) => {
                ctx.word(COMMITTED).store(seq + 1, SeqCst);
                ctx.flowing();
                seq += 1;
                message(id, seq, body, &mut m);
                continue;
            }
            Err(Error::Timeout | Error::Full) => {}
            Err(Error::Disconnected) => {
                ctx.disconnected();
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) if !ctx.hostile => return Err(format!("message {seq}: {error}")),
            Err(_) => {}
        }
        if let Err(error) = result
            && ctx.hostile
        {
            ctx.count(&error);
            if !matches!(error, Error::Timeout | Error::Full | Error::Disconnected) {
                // Start over (a damaged ring may refuse the attach too),
                // leaving the CPU to the others a moment first.
                std::thread::sleep(Duration::from_micros(100));
                drop(tx);
                let Some(again) = ctx.attach(&region, Tx::attach)? else {
                    return Ok(());
                };
                tx = again;
            }
        }
    }
    Ok(())
}

/// Receives until the round stops. Kill mode: each message is logged as
/// soon as `recv_with`'s closure gets it, before the ring takes it back,
/// then checked, so a consumer killed at any point has logged every
/// message it took for good (and perhaps the one it held, which is then
/// delivered again).
fn consume(ctx: &Context) -> Result<(), String> {
    let region = open(ctx)?;
    let Some(mut rx) = ctx.attach(&region, Rx::attach)? else {
        return Ok(());
    };
    let capacity = ((ctx.status.len() - LOG) / 2) as u64;
    let body = num("SHMSG_CAMPAIGN_BODY")? as usize;
    let mut scratch = Vec::with_capacity(MAX_LEN);
    loop {
        if ctx.aborting() || (ctx.hostile && ctx.stopping()) {
            return Ok(());
        }
        let result = ctx.timed(|| {
            rx.recv(|payload| {
                if ctx.hostile {
                    let checked = check(payload, body, &mut scratch);
                    let word = if checked.is_some() { INTACT } else { BAD };
                    ctx.word(word).fetch_add(1, Relaxed);
                    return true;
                }
                let n = ctx.word(LOGGED).load(Relaxed);
                if n >= capacity {
                    return false;
                }
                // Logged first, checked second: see `PENDING`.
                let parsed = parse(payload);
                let (id, seq) = parsed.unwrap_or((TORN, 0));
                let at = LOG + 2 * n as usize;
                let pending = if parsed.is_some() { id | PENDING } else { TORN };
                ctx.word(at).store(pending, Relaxed);
                ctx.word(at + 1).store(seq, Relaxed);
                ctx.word(LOGGED).store(n + 1, Release);
                if parsed.is_some() {
                    let verdict = match check(payload, body, &mut scratch) {
                        Some(_) => id,
                        None => TORN,
                    };
                    ctx.word(at).store(verdict, Release);
                }
                true
            })
        });
        match result {
            Ok(true) => ctx.flowing(),
            Ok(false) => return Err(format!("the log is full ({capacity} entries)")),
            Err(Error::Timeout | Error::Empty) => {}
            Err(Error::Disconnected) => {
                ctx.disconnected();
                if ctx.stopping() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) if !ctx.hostile => return Err(format!("recv: {error}")),
            Err(_) => {}
        }
        if let Err(error) = result
            && ctx.hostile
        {
            ctx.count(&error);
            if !matches!(error, Error::Timeout | Error::Empty | Error::Disconnected) {
                std::thread::sleep(Duration::from_micros(100));
                drop(rx);
                let Some(again) = ctx.attach(&region, Rx::attach)? else {
                    return Ok(());
                };
                rx = again;
            }
        }
    }
}

/// The path of region `name`'s file.
pub fn region_path(name: &str) -> PathBuf {
    Path::new(SHM_DIR).join(format!("{PREFIX}{name}"))
}

/// Maps the region's file and stores `SHMSG_CAMPAIGN_WRITES` random values
/// at random words: a third in the header, the rest in the data area. The
/// values: any `u64`, small multiples of 8, zero, near `u64::MAX`, or the
/// word's value moved by a few words (plausible positions are the ones
/// that get past the cheap checks). Paced (16 writes, then 200 us) so the
/// stream goes on between them. Counts its writes in `BAD`.
fn hostile() -> Result<(), String> {
    let status = Words::open(Path::new(&env("SHMSG_CAMPAIGN_STATUS")?))
        .map_err(|e| format!("status: {e}"))?;
    let region = Words::open(&region_path(&env("SHMSG_CAMPAIGN_REGION")?))
        .map_err(|e| format!("map the region: {e}"))?;
    let writes = num("SHMSG_CAMPAIGN_WRITES")?;
    let mut rng = Rng::new(num("SHMSG_CAMPAIGN_SEED")?);
    let header = (DATA_OFFSET / 8) as u64;
    let data = region.len() as u64 - header;
    for i in 0..writes {
        let index = if rng.below(3) == 0 {
            rng.below(header)
        } else {
            header + rng.below(data)
        } as usize;
        let word = region.word(index);
        let value = match rng.below(6) {
            0 => rng.next(),
            1 => rng.below(512) * 8,
            2 => 0,
            3 => u64::MAX - rng.below(64) * 8,
            _ => word
                .load(Relaxed)
                .wrapping_add(rng.below(64).wrapping_sub(32).wrapping_mul(8)),
        };
        word.store(value, Relaxed);
        status.word(BAD).store(i + 1, Relaxed);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}
