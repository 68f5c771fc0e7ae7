//! What the parent and its children share: files of atomic words (status,
//! control, logs), the checked message format, a clock all processes read
//! alike, and a small random generator.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use shmsg::Error;
use shmsg::workload::{Workload, splitmix64};

/// The timeout every call of a child is given.
pub const TIMEOUT: Duration = Duration::from_millis(100);
/// The most a call given [`TIMEOUT`] may take: it returns by its timeout
/// plus one sleep slice (20 ms); 2 s more is 100 times that slice.
pub const SLOW: Duration = Duration::from_millis(2100);

// Words of a child's status file (each written by the child only; the
// parent reads them, live or after the child's death).
/// [`STARTING`], [`ATTACHED`], [`FLOWING`] or [`DISCONNECTED`].
pub const PHASE: usize = 0;
/// `now_ns()` when the child last went from flowing to disconnected.
pub const DISC_NS: usize = 1;
/// Calls that took longer than [`SLOW`].
pub const SLOW_CALLS: usize = 2;
/// Producer: one past the last sequence number it attempted (set before
/// the send starts). The parent sets it to the first one to send.
pub const ATTEMPTED: usize = 3;
/// Producer: one past the last sequence number whose send returned `Ok`.
pub const COMMITTED: usize = 4;
/// Consumer: log entries written (each after its two words).
pub const LOGGED: usize = 5;
/// Hostile mode: messages received whole and right.
pub const INTACT: usize = 6;
/// Hostile mode: messages received with bad bytes; hostile writer: writes made.
pub const BAD: usize = 7;
/// Producer: the first sequence number it was to send (set by the parent).
pub const FIRST: usize = 8;
/// Hostile mode: errors by kind, [`ERROR_KINDS`] words from here.
pub const KINDS: usize = 16;
/// Consumer log entries start here: (producer id or [`TORN`], sequence).
pub const LOG: usize = 32;
/// Status words of a producer (no log).
pub const STATUS_WORDS: usize = LOG;
/// Entries a consumer log holds: a consumer receives at most about
/// 2 * 10^6 messages a second here, and lives for one round (at most a
/// couple of seconds); the file is sparse, so unused room costs nothing.
pub const LOG_ENTRIES: usize = 16 << 20;

pub const STARTING: u64 = 0;
pub const ATTACHED: u64 = 1;
pub const FLOWING: u64 = 2;
pub const DISCONNECTED: u64 = 3;

/// A log entry's id word for a message whose bytes are not a sent message.
pub const TORN: u64 = u64::MAX;
/// Set in a log entry's id word until the message is checked: a consumer
/// logs a message as soon as it gets it, then checks it (so a kill while it
/// checks lands while it holds the record).
pub const PENDING: u64 = 1 << 32;

// Words of a round's control file (written by the parent only).
/// Producers stop; consumers stop at their next `Disconnected` (kill
/// mode) or at once (hostile mode).
pub const STOP: usize = 0;
/// Everyone stops after the call in progress (a stalled ring).
pub const ABORT: usize = 1;

/// Error kinds counted in hostile mode, in the order of their status words.
pub const ERROR_KINDS: [&str; 10] = [
    "Full",
    "Empty",
    "Timeout",
    "Disconnected",
    "Corrupt",
    "RoleTaken",
    "LayoutMismatch",
    "NotInitialized",
    "Io",
    "other",
];

/// The index of `error`'s kind in [`ERROR_KINDS`].
pub fn kind_index(error: &Error) -> usize {
    match error {
        Error::Full => 0,
        Error::Empty => 1,
        Error::Timeout => 2,
        Error::Disconnected => 3,
        Error::Corrupt { .. } => 4,
        Error::RoleTaken(_) => 5,
        Error::LayoutMismatch { .. } => 6,
        Error::NotInitialized => 7,
        Error::Io { .. } => 8,
        _ => 9,
    }
}

/// A file of `u64` words mapped shared: every process that maps it sees
/// the same words, and what a process stored survives its death.
pub struct Words {
    map: memmap2::MmapRaw,
    len: usize,
}

impl Words {
    /// Creates `path` with `len` zero words (a sparse file) and maps it.
    pub fn create(path: &Path, len: usize) -> Words {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        file.set_len(len as u64 * 8).expect("size a words file");
        Words::map(&file, len).expect("map a words file")
    }

    /// Maps the existing file `path`, all of it.
    pub fn open(path: &Path) -> std::io::Result<Words> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = (file.metadata()?.len() / 8) as usize;
        Words::map(&file, len)
    }

    fn map(file: &std::fs::File, len: usize) -> std::io::Result<Words> {
        let map = memmap2::MmapOptions::new().len(len * 8).map_raw(file)?;
        Ok(Words { map, len })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Word `i`.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len, "word {i} of {}", self.len);
        // SAFETY: the mapping is page-aligned and `len * 8` bytes long, so
        // word `i` is in bounds and 8-aligned; it lives as long as `self`;
        // every process accesses these words only atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>().add(i)) }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so a
/// child's timestamp and the parent's compare.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// SplitMix64 over a counter: seeded, fast, good enough to pick victims,
/// delays, offsets and values.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`; the bias is negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The high bits of a message's first word.
const TAG: u64 = 0xC7A5_CA3F_0000_0000;
/// Producer ids are below this.
pub const MAX_ID: u64 = 64;

/// Bodies of at most this many bytes: most rounds.
pub const SMALL_BODY: usize = 200;
/// Bodies of at most this many bytes: the other rounds (longer copies and
/// hand-backs, so more kills land inside them).
pub const LARGE_BODY: usize = 6000;

fn workload(id: u64, body: usize) -> Workload {
    Workload {
        seed: splitmix64(id ^ 0xC7A5),
        max_len: body,
    }
}

/// Message `seq` of producer `id`: `TAG | id`, `seq`, a check word of
/// `(id, seq, length)`, then a body of 0 to `body` bytes
/// ([`Workload::len`]), a pattern drawn from `(id, seq)` a word at a time.
/// A receiver compares every byte with the message regenerated from the
/// first two words.
pub fn message(id: u64, seq: u64, body: usize, out: &mut Vec<u8>) {
    let len = workload(id, body).len(seq);
    let base = splitmix64((TAG | id) ^ splitmix64(seq));
    out.clear();
    out.extend_from_slice(&(TAG | id).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&splitmix64(base ^ len as u64 ^ TAG).to_le_bytes());
    for j in 0..len.div_ceil(8) {
        out.extend_from_slice(&splitmix64(base ^ j as u64).to_le_bytes());
    }
    out.truncate(24 + len);
}

/// The longest message.
pub const MAX_LEN: usize = 24 + LARGE_BODY;

/// The `(id, seq)` that `payload`'s first two words claim, if they can be
/// a message's; nothing else is checked.
pub fn parse(payload: &[u8]) -> Option<(u64, u64)> {
    if payload.len() < 24 {
        return None;
    }
    let first = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let id = first & 0xFFFF_FFFF;
    if first & !0xFFFF_FFFF != TAG || id >= MAX_ID {
        return None;
    }
    let seq = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    Some((id, seq))
}

/// `(id, seq)` if `payload` is exactly message `seq` of producer `id` (with
/// bodies of at most `body` bytes); `None` for torn or foreign bytes.
pub fn check(payload: &[u8], body: usize, scratch: &mut Vec<u8>) -> Option<(u64, u64)> {
    let (id, seq) = parse(payload)?;
    message(id, seq, body, scratch);
    (scratch.as_slice() == payload).then_some((id, seq))
}
