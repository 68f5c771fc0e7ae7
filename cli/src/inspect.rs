//! What `shmsg inspect NAME` shows of a named region: as text for people,
//! or (`--json`) as one JSON object for programs.
//!
//! Everything comes from [`RegionInfo`]: the file's size, its liveness locks
//! and the header words read with `pread` (the region is never mapped, so a
//! file truncated meanwhile cannot fault the command). The words are
//! untrusted: a position, length or pid may be anything. Nothing here
//! indexes or divides by them unchecked; an impossible combination is
//! reported as a problem ("corrupt"), and the rest is still shown.
//!
//! The JSON object has the keys `name`, `path`, `size` (bytes of the file),
//! `accessible`, `valid` and `error` (why an opener refuses the region, or
//! `null`), `kind` (`"spsc"`, `"mpsc"`, `"mpmc"`, or `null` when the
//! header is refused), `abi_version`, `capacity`, `max_message`, `tail`,
//! `head`, `read_cursor` (`mpmc` only, else `null`), `used_bytes` (from the
//! head to the tail), `unread_bytes` (`mpmc`: from the read cursor to the
//! tail), `fill` (`used_bytes / capacity`), `creator` {`pid`, `alive`};
//! for `spsc` (and a refused header), `producer` and `consumer` {`state`:
//! `"attached"`, `"detached"` or `"never"`, `pid`, `alive`}; for `mpsc`
//! and `mpmc`, `max_producers`, `max_consumers` and the arrays `producers`
//! and `consumers` of the slots ever used, each {`index`, `state`, `pid`,
//! `alive`, `claim`: `null` or {`position`, `bytes`, `pending`}};
//! `corrupt` and `problems` (what is impossible in the words), and `stale`.
//! A figure that cannot be known is `null`. `alive` is whether the side's
//! liveness lock is held: a live process is attached there.

use std::fmt::Write as _;
use std::path::Path;

use shmsg::Role;
use shmsg::shm::layout::{ABI_VERSION, RingKind};
use shmsg::shm::region::{HeaderInfo, RegionInfo, SlotInfo};

use super::export::json;

/// A slot's claim word when it has none.
const NO_CLAIM: u64 = u64::MAX;

/// What an attachment epoch says: 0 never attached, odd attached, even
/// detached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Never,
    Attached,
    Detached,
}

impl State {
    fn of(epoch: u64) -> State {
        match epoch {
            0 => State::Never,
            e if !e.is_multiple_of(2) => State::Attached,
            _ => State::Detached,
        }
    }

    fn name(self) -> &'static str {
        match self {
            State::Never => "never",
            State::Attached => "attached",
            State::Detached => "detached",
        }
    }
}

/// What a slot's claim words record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimOf {
    /// A producer's latest record (claimed, then committed unless the
    /// producer died first).
    Record,
    /// The record an `mpmc` consumer took and has not handed back.
    Held,
    /// The record an `mpsc` consumer last handed back (zeroed).
    Release,
}

/// The latest claim a slot records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Claim {
    of: ClaimOf,
    position: u64,
    bytes: u64,
    /// Still in the ring: a producer's not yet consumed (maybe not yet
    /// committed), an `mpmc` consumer's not yet handed back, an `mpsc`
    /// consumer's release not yet finished. `None` when the ring's
    /// positions are impossible.
    pending: Option<bool>,
}

/// One side of a ring: the single producer or consumer of an `spsc` ring,
/// or one slot of a multi-producer ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Side {
    index: usize,
    state: State,
    pid: u64,
    /// Its liveness lock is held.
    alive: bool,
    claim: Option<Claim>,
}

impl Side {
    /// In words, from the lock (authoritative) and the header's words.
    fn describe(&self) -> String {
        let mut text = match (self.alive, self.state, self.pid) {
            (true, _, pid) => format!("attached by pid {pid}, alive"),
            (false, State::Attached, pid) => {
                format!("pid {pid} attached and died without detaching")
            }
            (false, _, 0) | (false, State::Never, _) => "never attached".into(),
            (false, State::Detached, pid) => format!("none attached (last: pid {pid}, detached)"),
        };
        if let Some(c) = self.claim.filter(|c| c.pending == Some(true)) {
            let (bytes, at) = (c.bytes, c.position);
            match c.of {
                // A live or detached producer's latest record is in the
                // ring until read: nothing to say. A dead one's may be
                // uncommitted.
                ClaimOf::Record if self.alive || self.state != State::Attached => {}
                ClaimOf::Record => {
                    let _ = write!(
                        text,
                        "; its last claim ({bytes} bytes at position {at}) is still in the \
                         ring (a consumer pads it if it was never committed)"
                    );
                }
                ClaimOf::Held => {
                    let _ = write!(
                        text,
                        "; holds the record of {bytes} bytes at position {at} (not handed back yet)"
                    );
                }
                ClaimOf::Release if self.alive => {
                    let _ = write!(text, "; handing back {bytes} bytes at position {at}");
                }
                ClaimOf::Release => {
                    let _ = write!(
                        text,
                        "; its hand-back of {bytes} bytes at position {at} was not finished \
                         (the next consumer finishes it)"
                    );
                }
            }
        }
        text
    }

    fn json(&self, with_slot: bool) -> String {
        let mut fields = Vec::new();
        if with_slot {
            fields.push(("index", self.index.to_string()));
        }
        fields.push(("state", json::string(self.state.name())));
        fields.push((
            "pid",
            if self.state == State::Never && self.pid == 0 {
                "null".into()
            } else {
                self.pid.to_string()
            },
        ));
        fields.push(("alive", self.alive.to_string()));
        if with_slot {
            let claim = self.claim.map_or("null".into(), |c| {
                json::object(&[
                    ("position", c.position.to_string()),
                    ("bytes", c.bytes.to_string()),
                    (
                        "pending",
                        c.pending.map_or("null".into(), |p| p.to_string()),
                    ),
                ])
            });
            fields.push(("claim", claim));
        }
        json::object(&fields)
    }
}

fn kind_name(kind: RingKind) -> &'static str {
    match kind {
        RingKind::Spsc => "spsc",
        RingKind::Mpsc => "mpsc",
        RingKind::Mpmc => "mpmc",
    }
}

fn kind_words(kind: RingKind) -> String {
    let (producers, consumers) = kind.limits();
    match kind {
        RingKind::Spsc => "single-producer, single-consumer ring (spsc)".into(),
        RingKind::Mpsc => format!(
            "multi-producer, single-consumer ring (mpsc: up to {producers} producers, \
             {consumers} consumer)"
        ),
        RingKind::Mpmc => format!(
            "multi-producer, multi-consumer ring (mpmc: up to {producers} producers, \
             {consumers} consumers)"
        ),
    }
}

/// The slots of `role` that were ever used or whose lock is held, in index
/// order, up to the ring kind's limit.
fn slots(info: &RegionInfo, h: &HeaderInfo, role: Role) -> Vec<Side> {
    let (words, locks): (&[SlotInfo], &[bool]) = match role {
        Role::Producer => (&h.producer_slots, &info.producer_slot_locks),
        Role::Consumer => (&h.consumer_slots, &info.consumer_slot_locks),
    };
    let (producers, consumers) = h.kind.limits();
    let limit = match role {
        Role::Producer => producers,
        Role::Consumer => consumers,
    };
    words
        .iter()
        .zip(locks)
        .take(limit)
        .enumerate()
        .filter(|(_, (w, locked))| w.epoch != 0 || **locked)
        .map(|(index, (w, &alive))| Side {
            index,
            state: State::of(w.epoch),
            pid: w.pid,
            alive,
            claim: claim(h, role, w),
        })
        .collect()
}

/// The claim slot `w` records, if it records one.
fn claim(h: &HeaderInfo, role: Role, w: &SlotInfo) -> Option<Claim> {
    if w.epoch == 0 || w.claim == NO_CLAIM {
        return None;
    }
    let from_head = w.claim.wrapping_sub(h.head);
    let (of, pending) = match (role, h.kind) {
        (Role::Producer, _) => (ClaimOf::Record, from_head < h.tail.wrapping_sub(h.head)),
        (Role::Consumer, RingKind::Mpmc) => (
            ClaimOf::Held,
            from_head < h.read_cursor.wrapping_sub(h.head),
        ),
        (Role::Consumer, _) => (ClaimOf::Release, w.claim == h.head && w.claim_len != 0),
    };
    Some(Claim {
        of,
        position: w.claim,
        bytes: w.claim_len,
        pending: positions_problems(h).is_empty().then_some(pending),
    })
}

/// The single producer and consumer of an `spsc` ring.
fn spsc_sides(info: &RegionInfo, h: &HeaderInfo) -> [Side; 2] {
    let side = |locked, epoch, pid| Side {
        index: 0,
        state: State::of(epoch),
        pid,
        alive: locked,
        claim: None,
    };
    [
        side(info.producer_locked, h.producer_epoch, h.producer_pid),
        side(info.consumer_locked, h.consumer_epoch, h.consumer_pid),
    ]
}

/// What is impossible in the ring's positions.
fn positions_problems(h: &HeaderInfo) -> Vec<String> {
    let capacity = h.geometry.capacity() as u64;
    let mut found = Vec::new();
    let used = h.tail.wrapping_sub(h.head);
    if !h.tail.is_multiple_of(8) || !h.head.is_multiple_of(8) {
        found.push(format!(
            "tail {} or head {} is not a multiple of 8",
            h.tail, h.head
        ));
    }
    if used > capacity {
        found.push(format!(
            "tail {} is {used} bytes past head {}, more than the capacity",
            h.tail, h.head
        ));
    }
    if h.kind == RingKind::Mpmc && h.read_cursor.wrapping_sub(h.head) > used {
        found.push(format!(
            "read cursor {} is not between head {} and tail {}",
            h.read_cursor, h.head, h.tail
        ));
    }
    found
}

/// What is impossible in the words of a region whose identity is valid:
/// its positions, and the claims its slots say are still in the ring.
fn problems(info: &RegionInfo, h: &HeaderInfo) -> Vec<String> {
    let capacity = h.geometry.capacity() as u64;
    let mut found = positions_problems(h);
    if h.kind != RingKind::Spsc {
        for role in [Role::Producer, Role::Consumer] {
            for side in slots(info, h, role) {
                if let Some(c) = side.claim.filter(|c| c.pending == Some(true))
                    && (!c.position.is_multiple_of(8)
                        || c.bytes == 0
                        || !c.bytes.is_multiple_of(8)
                        || c.bytes > capacity)
                {
                    found.push(format!(
                        "{role} slot {}: a claim of {} bytes at position {} cannot be",
                        side.index, c.bytes, c.position
                    ));
                }
            }
        }
    }
    found
}

fn alive(yes: bool) -> &'static str {
    if yes { "alive" } else { "dead" }
}

/// "1 attached, 1 detached" for `sides`.
fn tally(sides: &[Side]) -> String {
    let count = |f: &dyn Fn(&Side) -> bool| sides.iter().filter(|s| f(s)).count();
    let counts = [
        (count(&|s| s.alive), "attached"),
        (
            count(&|s| !s.alive && s.state == State::Attached),
            "dead without detaching",
        ),
        (
            count(&|s| !s.alive && s.state == State::Detached),
            "detached",
        ),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        "none attached".into()
    } else {
        parts.join(", ")
    }
}

/// Describes one region in words, or says why it cannot.
pub fn describe(path: &Path, info: &RegionInfo, out: &mut String) {
    let _ = writeln!(
        out,
        "region {} ({}), {} bytes",
        info.name,
        path.display(),
        info.size
    );
    if !info.accessible {
        let why = info.validation.as_ref().err().cloned().unwrap_or_default();
        let _ = writeln!(out, "  cannot inspect it: {why}");
        return;
    }
    match &info.header {
        Some(h) => describe_header(info, h, out),
        None => {
            let why = info.validation.as_ref().err().cloned().unwrap_or_default();
            let _ = writeln!(out, "  layout: refused: {why}");
            let _ = writeln!(
                out,
                "  corrupt: the header is damaged or from an incompatible build; only the \
                 locks can be read"
            );
            let _ = writeln!(
                out,
                "  creator {}, producer {}, consumer {} (from the locks)",
                alive(info.creator_locked),
                if info.producer_locked {
                    "attached"
                } else {
                    "none"
                },
                if info.consumer_locked {
                    "attached"
                } else {
                    "none"
                },
            );
        }
    }
    let _ = writeln!(
        out,
        "  status: {}",
        if info.is_stale() {
            "stale: no live process uses it (`shmsg clean --yes` removes it)"
        } else {
            "in use"
        }
    );
}

fn describe_header(info: &RegionInfo, h: &HeaderInfo, out: &mut String) {
    let capacity = h.geometry.capacity() as u64;
    let _ = writeln!(
        out,
        "  layout: {}, ABI version {ABI_VERSION}, capacity {capacity} bytes, max message {} bytes",
        kind_words(h.kind),
        h.geometry.max_message()
    );
    if let Err(why) = &info.validation {
        let _ = writeln!(out, "  corrupt: openers refuse it: {why}");
    }
    let problems = problems(info, h);
    let (tail, head) = (h.tail, h.head);
    if positions_problems(h).is_empty() {
        let used = tail.wrapping_sub(head);
        let _ = write!(
            out,
            "  fill: {used} bytes waiting ({:.1}% of capacity; tail {tail}, head {head})",
            used as f64 * 100.0 / capacity as f64
        );
        if h.kind == RingKind::Mpmc {
            let held = h.read_cursor.wrapping_sub(head);
            let _ = write!(
                out,
                "; consumers hold {held} bytes of it (read cursor {})",
                h.read_cursor
            );
        }
        out.push('\n');
    } else {
        let _ = writeln!(out, "  fill: impossible (tail {tail}, head {head})");
    }
    for problem in &problems {
        let _ = writeln!(out, "  corrupt: {problem}");
    }
    let _ = writeln!(
        out,
        "  creator: pid {}, {}",
        h.creator_pid,
        alive(info.creator_locked)
    );
    if h.kind == RingKind::Spsc {
        let [producer, consumer] = spsc_sides(info, h);
        let _ = writeln!(out, "  {}: {}", Role::Producer, producer.describe());
        let _ = writeln!(out, "  {}: {}", Role::Consumer, consumer.describe());
        return;
    }
    let (max_producers, max_consumers) = h.kind.limits();
    for (role, limit) in [
        (Role::Producer, max_producers),
        (Role::Consumer, max_consumers),
    ] {
        let sides = slots(info, h, role);
        let _ = writeln!(
            out,
            "  {role}s: {} of {limit} slot{} used: {}",
            sides.len(),
            if limit == 1 { "" } else { "s" },
            tally(&sides)
        );
        for side in &sides {
            let _ = writeln!(out, "    {role} slot {}: {}", side.index, side.describe());
        }
    }
}

/// One region as a JSON object (the keys are listed in the module
/// documentation).
pub fn to_json(path: &Path, info: &RegionInfo) -> String {
    let null = || "null".to_string();
    let mut fields = vec![
        ("name", json::string(&info.name)),
        ("path", json::string(&path.display().to_string())),
        ("size", info.size.to_string()),
        ("accessible", info.accessible.to_string()),
        ("valid", info.validation.is_ok().to_string()),
        (
            "error",
            info.validation
                .as_ref()
                .err()
                .map_or_else(null, |why| json::string(why)),
        ),
    ];
    let problems = info
        .header
        .as_ref()
        .map_or_else(Vec::new, |h| problems(info, h));
    match &info.header {
        Some(h) => {
            let capacity = h.geometry.capacity() as u64;
            let used = h.tail.wrapping_sub(h.head);
            let sane = positions_problems(h).is_empty();
            let mpmc = h.kind == RingKind::Mpmc;
            let known = |ok: bool, v: u64| if ok { v.to_string() } else { null() };
            fields.extend([
                ("kind", json::string(kind_name(h.kind))),
                ("abi_version", ABI_VERSION.to_string()),
                ("capacity", capacity.to_string()),
                ("max_message", h.geometry.max_message().to_string()),
                ("tail", h.tail.to_string()),
                ("head", h.head.to_string()),
                ("read_cursor", known(mpmc, h.read_cursor)),
                ("used_bytes", known(sane, used)),
                (
                    "unread_bytes",
                    known(sane && mpmc, h.tail.wrapping_sub(h.read_cursor)),
                ),
                (
                    "fill",
                    if sane {
                        json::number(used as f64 / capacity as f64)
                    } else {
                        null()
                    },
                ),
                (
                    "creator",
                    json::object(&[
                        ("pid", h.creator_pid.to_string()),
                        ("alive", info.creator_locked.to_string()),
                    ]),
                ),
            ]);
            if h.kind == RingKind::Spsc {
                let [producer, consumer] = spsc_sides(info, h);
                fields.push(("producer", producer.json(false)));
                fields.push(("consumer", consumer.json(false)));
            } else {
                let (max_producers, max_consumers) = h.kind.limits();
                let array = |role| {
                    let sides: Vec<String> =
                        slots(info, h, role).iter().map(|s| s.json(true)).collect();
                    json::array(&sides)
                };
                fields.extend([
                    ("max_producers", max_producers.to_string()),
                    ("max_consumers", max_consumers.to_string()),
                    ("producers", array(Role::Producer)),
                    ("consumers", array(Role::Consumer)),
                ]);
            }
        }
        None => {
            let unknown = |locked: bool| {
                json::object(&[
                    ("state", null()),
                    ("pid", null()),
                    ("alive", locked.to_string()),
                ])
            };
            for key in [
                "kind",
                "abi_version",
                "capacity",
                "max_message",
                "tail",
                "head",
                "read_cursor",
                "used_bytes",
                "unread_bytes",
                "fill",
            ] {
                fields.push((key, null()));
            }
            fields.extend([
                (
                    "creator",
                    json::object(&[("pid", null()), ("alive", info.creator_locked.to_string())]),
                ),
                ("producer", unknown(info.producer_locked)),
                ("consumer", unknown(info.consumer_locked)),
            ]);
        }
    }
    let corrupt = (info.accessible && info.validation.is_err()) || !problems.is_empty();
    let problems: Vec<String> = problems.iter().map(|p| json::string(p)).collect();
    fields.extend([
        ("corrupt", corrupt.to_string()),
        ("problems", json::array(&problems)),
        ("stale", info.is_stale().to_string()),
    ]);
    json::document(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(alive: bool, epoch: u64, pid: u64) -> String {
        Side {
            index: 0,
            state: State::of(epoch),
            pid,
            alive,
            claim: None,
        }
        .describe()
    }

    #[test]
    fn sides_in_words() {
        assert_eq!(side(true, 1, 7), "attached by pid 7, alive");
        assert_eq!(
            side(false, 1, 7),
            "pid 7 attached and died without detaching"
        );
        assert_eq!(side(false, 0, 0), "never attached");
        assert_eq!(side(false, 2, 7), "none attached (last: pid 7, detached)");
        // Garbage epochs and pids are still words, never a panic.
        assert_eq!(
            side(false, u64::MAX, u64::MAX),
            format!("pid {} attached and died without detaching", u64::MAX)
        );
    }
}
