//! Accounting: what a round's producers sent against what its consumers
//! logged, and what a stalled ring still holds.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

use shmsg::shm::Geometry;
use shmsg::shm::layout::{DATA_OFFSET, RingKind, offsets, record_size};
use shmsg::shm::{mpmc, spsc};

use super::shared::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Producer,
    Consumer,
}

/// One child process that has ended (killed, or exited), with its status
/// file still mapped.
pub struct Incarnation {
    pub side: Side,
    /// Producer id (producers).
    pub id: u64,
    pub status: Words,
    /// Killed by the campaign (SIGKILL), as opposed to exited.
    pub killed: bool,
}

/// The counts of one ring kind (or of all).
#[derive(Default)]
pub struct Tally {
    pub rounds: u64,
    pub kills_producer: u64,
    pub kills_consumer: u64,
    /// Messages whose send returned `Ok`.
    pub sent: u64,
    /// Sends in progress when their producer was killed, and how many of
    /// those were delivered anyway (either is right).
    pub in_flight: u64,
    pub in_flight_delivered: u64,
    /// Log entries of intact messages (redelivered copies included).
    pub received: u64,
    pub torn: u64,
    pub duplicates: u64,
    pub redelivered: u64,
    pub gaps: u64,
    /// Received, but never sent (or sent by a call that failed).
    pub phantoms: u64,
    /// A consumer got a producer's messages out of order.
    pub reordered: u64,
    pub panics: u64,
    /// Children that failed with an unexpected error (printed).
    pub errors: u64,
    pub hangs: u64,
    /// Mpmc: messages lost with a killed consumer that held them (its
    /// record is handed back for it, not delivered again: documented in
    /// src/shm/mpmc/mod.rs); at most one per Mpmc consumer kill, beyond that
    /// they are gaps.
    pub dropped_with_consumer: u64,
    /// Rings that stopped moving for any other reason (a defect), and the
    /// messages left in them.
    pub stalls: u64,
    pub stranded: u64,
    /// From a peer's SIGKILL to a survivor's `Disconnected`.
    pub disconnect: Vec<Duration>,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.rounds += o.rounds;
        self.kills_producer += o.kills_producer;
        self.kills_consumer += o.kills_consumer;
        self.sent += o.sent;
        self.in_flight += o.in_flight;
        self.in_flight_delivered += o.in_flight_delivered;
        self.received += o.received;
        self.torn += o.torn;
        self.duplicates += o.duplicates;
        self.redelivered += o.redelivered;
        self.gaps += o.gaps;
        self.phantoms += o.phantoms;
        self.reordered += o.reordered;
        self.panics += o.panics;
        self.errors += o.errors;
        self.hangs += o.hangs;
        self.dropped_with_consumer += o.dropped_with_consumer;
        self.stalls += o.stalls;
        self.stranded += o.stranded;
        self.disconnect.extend_from_slice(&o.disconnect);
    }

    /// Counts that fail the campaign.
    pub fn failures(&self) -> u64 {
        self.torn
            + self.duplicates
            + self.gaps
            + self.phantoms
            + self.reordered
            + self.panics
            + self.errors
            + self.hangs
            + self.stalls
    }

    /// "median/max" of the kill-to-`Disconnected` times, in ms.
    pub fn disconnect_times(&self) -> String {
        let mut d = self.disconnect.clone();
        if d.is_empty() {
            return "n/a".into();
        }
        d.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!("{:.0}/{:.0}", ms(d[d.len() / 2]), ms(d[d.len() - 1]))
    }
}

/// Compares what `producers` producers sent with what the consumers of
/// `ended` logged. `in_ring`: the messages a stalled ring still holds (a
/// committed message found there is stranded, not lost). `droppable`: how
/// many missing messages a killed consumer may have taken with it (Mpmc:
/// one per consumer kill; 0 for the other kinds, which deliver it again).
pub fn account(
    producers: usize,
    ended: &[Incarnation],
    in_ring: Option<&HashSet<(u64, u64)>>,
    droppable: u64,
    tally: &mut Tally,
) {
    let mut droppable = droppable;
    let w = |inc: &Incarnation, i: usize| inc.status.word(i).load(Acquire);
    // Each producer id's incarnations send consecutive ranges: the next
    // one starts where the previous one's attempts ended.
    let mut top = vec![0u64; producers];
    for inc in ended.iter().filter(|i| i.side == Side::Producer) {
        let p = inc.id as usize;
        top[p] = top[p].max(w(inc, ATTEMPTED));
    }
    let mut counts: Vec<Vec<u16>> = top.iter().map(|&n| vec![0; n as usize]).collect();
    // A killed consumer's last entry may be delivered again.
    let mut redeliverable: HashMap<(u64, u64), u64> = HashMap::new();
    for inc in ended.iter().filter(|i| i.side == Side::Consumer) {
        let n = w(inc, LOGGED) as usize;
        let mut last = vec![None::<u64>; producers];
        for e in 0..n {
            let (id, seq) = (w(inc, LOG + 2 * e), w(inc, LOG + 2 * e + 1));
            if id == TORN {
                tally.torn += 1;
                continue;
            }
            // Not checked yet: the message a killed consumer held, which
            // the ring delivers again (Spsc, Mpsc) and is checked then.
            let id = id & !PENDING;
            let Some(slot) = counts
                .get_mut(id as usize)
                .and_then(|c| c.get_mut(seq as usize))
            else {
                tally.phantoms += 1;
                continue;
            };
            *slot = slot.saturating_add(1);
            tally.received += 1;
            let before = &mut last[id as usize];
            if before.is_some_and(|b| b >= seq) {
                tally.reordered += 1;
            }
            *before = Some(seq);
            if inc.killed && e + 1 == n {
                *redeliverable.entry((id, seq)).or_default() += 1;
            }
        }
    }
    for inc in ended.iter().filter(|i| i.side == Side::Producer) {
        let p = inc.id as usize;
        let (committed, attempted) = (w(inc, COMMITTED), w(inc, ATTEMPTED));
        if attempted > committed {
            let delivered = counts[p][committed as usize] > 0;
            if inc.killed {
                tally.in_flight += 1;
                tally.in_flight_delivered += u64::from(delivered);
            } else if delivered {
                // A send that returned an error delivered the message.
                tally.phantoms += 1;
            }
        }
    }
    // Every message up to each incarnation's commit point must be there,
    // once (plus the documented redeliveries).
    let mut committed_sets: Vec<Vec<bool>> = top.iter().map(|&n| vec![false; n as usize]).collect();
    for inc in ended.iter().filter(|i| i.side == Side::Producer) {
        let p = inc.id as usize;
        let first = inc.first_seq();
        for s in first..w(inc, COMMITTED) {
            committed_sets[p][s as usize] = true;
        }
        tally.sent += w(inc, COMMITTED) - first;
    }
    for (p, c) in counts.iter().enumerate() {
        for (s, &n) in c.iter().enumerate() {
            let key = (p as u64, s as u64);
            if n == 0 {
                if committed_sets[p][s] {
                    if in_ring.is_some_and(|r| r.contains(&key)) {
                        tally.stranded += 1;
                    } else if droppable > 0 {
                        droppable -= 1;
                        tally.dropped_with_consumer += 1;
                    } else {
                        tally.gaps += 1;
                    }
                }
                continue;
            }
            let extra = u64::from(n) - 1;
            let allowed = redeliverable.get(&key).copied().unwrap_or(0).min(extra);
            tally.redelivered += allowed;
            tally.duplicates += extra - allowed;
        }
    }
}

impl Incarnation {
    /// The first sequence number this producer incarnation was to send
    /// (stored by the parent as `FIRST`).
    pub fn first_seq(&self) -> u64 {
        self.status.word(FIRST).load(Acquire)
    }
}

/// The intact messages (bodies of at most `body` bytes) in region `bytes`
/// (a stalled ring, read after every child ended) between its
/// head and its tail.
pub fn ring_contents(
    bytes: &[u8],
    kind: RingKind,
    geometry: Geometry,
    body: usize,
) -> HashSet<(u64, u64)> {
    let word = |off: usize| {
        bytes
            .get(off..off + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    let capacity = geometry.capacity() as u64;
    let mask = capacity - 1;
    let head = word(offsets::HEAD);
    let tail = word(offsets::TAIL);
    let at = |pos: u64| DATA_OFFSET + (pos & mask) as usize;
    let mut found = HashSet::new();
    let mut scratch = Vec::new();
    let mut take = |pos: u64, len: usize| {
        let start = at(pos) + 8;
        if let Some(payload) = bytes.get(start..start + len)
            && let Some(key) = check(payload, body, &mut scratch)
        {
            found.insert(key);
        }
    };
    let mut pos = head;
    // Every step moves at least 8 bytes: a lap bounds the walk.
    for _ in 0..=capacity / 8 {
        let w = word(at(pos));
        if kind == RingKind::Spsc {
            // Committed records from the head on, up to the first empty
            // header (the tail word may lag one record behind).
            match spsc::decode_header(w, pos, geometry) {
                Ok(spsc::Slot::Record(len)) => {
                    take(pos, len);
                    pos = pos.wrapping_add(record_size(len) as u64);
                }
                Ok(spsc::Slot::Wrap) => pos = pos.wrapping_add(capacity - (pos & mask)),
                _ => break,
            }
            continue;
        }
        // Multi-producer: consumed entries between the head and the read
        // cursor are zeroed whole, and a dead producer's claim may hold
        // bytes without a header: step over any word that is not a header.
        if tail.wrapping_sub(pos).wrapping_sub(1) >= capacity {
            break;
        }
        match mpmc::decode(w, pos, geometry) {
            Ok(mpmc::Entry::Record(len)) => {
                take(pos, len);
                pos = pos.wrapping_add(record_size(len) as u64);
            }
            Ok(mpmc::Entry::Pad(n)) => pos = pos.wrapping_add(n as u64),
            _ => pos = pos.wrapping_add(8),
        }
    }
    found
}
