//! A linearizability checker for FIFO-queue histories recorded from real
//! runs (`tests/linearizable.rs`).
//!
//! A history is a set of operations, each with its invocation and response
//! times on one clock (`CLOCK_MONOTONIC`, system-wide on Linux): sends of
//! unique message ids, and receives that returned an id. An operation whose
//! process was killed before it returned is *pending* (no response).
//! Receives that returned no message (`Empty`, `Timeout`, `Disconnected`)
//! are not recorded: every recorded receive took a message.
//!
//! # What is checked
//!
//! Write `op1 → op2` when `op1` responded before `op2` was invoked
//! (real-time order; one process's operations are totally ordered by it).
//! [`check`] reports a violation when any of these holds:
//!
//! 1. *fresh*: a receive returned an id never sent, or returned it before
//!    its send was invoked (`recv(x) → send(x)`);
//! 2. *repeated*: an id was received twice;
//! 3. *lost*: a send that responded was never received, in a run whose
//!    consumers received until `Disconnected` (so everything sent was
//!    there to take). Relaxation: a receive left pending by a killed
//!    consumer may have taken one message and died before recording it
//!    (an `Mpmc` consumer's held record is recovered without being
//!    delivered again: at most once); so up to one lost message per
//!    pending receive is accepted, and it counts as received by a receive
//!    invoked at the earliest pending receive's invocation that never
//!    responded. A pending send (its producer killed) may have been
//!    delivered or not: both are accepted;
//! 4. *order*: two messages `a`, `b` with `send(a) → send(b)` and
//!    `recv(b) → recv(a)` (or `b` received and `a` not: a lost `a` counts
//!    as received at infinity, and a pending send never precedes anything).
//!
//! # Why this suffices
//!
//! With unique ids and no receive that reports an empty queue, these are
//! the queue violations `VFresh`, `VRepet` and `VOrd` of Henzinger, Sezgin
//! and Vafeiadis ("Aspect-oriented linearizability proofs", CONCUR 2013;
//! their `VWit` concerns dequeues that return *empty*, not recorded here).
//! Each is plainly necessary. That their absence suffices, in brief:
//!
//! *Completion.* A pending send that was delivered gets a response at
//! infinity, one that was not is dropped; a message counted as held by a
//! killed consumer is received by its pending receive, completed at
//! infinity. (With one pending receive, as in the runs here, that is a
//! completion; with several, giving every held message the earliest
//! one's invocation is a relaxation.) Write `E(x)`, `D(x)` for the send and
//! receive intervals of message `x`.
//!
//! *An order suffices.* Let `π` be a total order of the messages that puts
//! `x` before `y` whenever `E(x) → E(y)`, or `D(x) → D(y)`, or
//! `D(x) → E(y)`, or `x` was received and `y` not. Give a send the
//! latest send invocation, and a receive the latest send or receive
//! invocation, among the messages up to its own in `π`, as its
//! linearization point. Every point lies
//! inside its operation's interval (a later invocation is not after the
//! response, by the edges of `π` and condition 1), so real-time order is
//! kept; sorted by (point, sends first, `π`), sends and receives each come
//! in `π` order, each receive after its send and after the receives of all
//! earlier messages: a legal FIFO sequence.
//!
//! *Such an order exists.* Each edge `x → y` above says that an end of
//! `x` (`e2`, `d2`) precedes a start of `y` (`e1`, `d1`). Two edges
//! `x → y → z` compose into one edge `x → z` except when they are an `E`
//! then a `D` edge, or a `D` then an `E` edge (`d1(y) ≤ e2(y)` is not
//! known; `e1 ≤ d2` is condition 1). So a shortest cycle alternates `E`
//! and `D` edges. With length 2 it is condition 4. With length 4 or more,
//! `E(a) → E(b)` and `E(c) → E(d)` for consecutive `E` edges `a→b`, `c→d`
//! around `D(b) → D(c)` give `E(a) → E(d)` or `E(c) → E(b)` (for
//! intervals, `A → B` and `C → D` imply `A → D` or `C → B`): the first
//! shortens the cycle, the second with `D(b) → D(c)` is condition 4. A
//! cycle through an unreceived message leaves it by `E` edges only, and
//! the first received message it reaches is condition 4 with an
//! unreceived `a` (or condition 3 rejected the history already).
//!
//! One consumer's receives are totally ordered in real time, so for
//! `Spsc` and `Mpsc` rings condition 4 compares every pair of messages in
//! that consumer's order; several `Mpmc` consumers' receives that overlap
//! are unordered, as the queue allows. Ring kinds are checked against the
//! same FIFO queue; they differ only in the relaxations above (the killed
//! consumer's held record). A killed `Spsc` or `Mpsc` consumer's
//! unreleased record, delivered again to the consumer that takes over (at
//! least once), appears once in the history: the receives recorded here
//! copy the message out and release it before they return, so the killed
//! consumer's receive that held it is pending, and a pending receive may
//! have taken no effect. A message received twice is never accepted.
//!
//! # Cost
//!
//! Condition 4 is a sweep, not a comparison of all pairs: messages in the
//! order of their sends' invocations, with the messages whose sends
//! responded before the current send began (a pointer into the order of
//! send responses) summarised by the latest receive invocation among them.
//! `b` is a violation exactly when that latest invocation comes after
//! `recv(b)` responded, and the message holding it is the witness `a`.
//! Sorting makes it O(n log n) in all.

use std::fmt;

/// "No response": the operation is pending (its process was killed).
pub const PENDING: u64 = u64::MAX;

/// A recorded operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// `true` for a send, `false` for a receive.
    pub send: bool,
    /// The process (or thread) that performed it.
    pub process: u32,
    /// The message id (a pending receive's is meaningless).
    pub id: u64,
    /// Invocation time, in nanoseconds.
    pub invoke: u64,
    /// Response time, or [`PENDING`].
    pub respond: u64,
}

impl Op {
    /// A completed send.
    pub fn send(process: u32, id: u64, invoke: u64, respond: u64) -> Self {
        Op {
            send: true,
            process,
            id,
            invoke,
            respond,
        }
    }

    /// A completed receive.
    pub fn recv(process: u32, id: u64, invoke: u64, respond: u64) -> Self {
        Op {
            send: false,
            process,
            id,
            invoke,
            respond,
        }
    }

    fn pending(&self) -> bool {
        self.respond == PENDING
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.send { "send" } else { "recv" };
        if self.pending() {
            let id = if self.send {
                self.id.to_string()
            } else {
                "?".to_string()
            };
            write!(
                f,
                "process {}: {what}({id}) [{} .. pending]",
                self.process, self.invoke
            )
        } else {
            write!(
                f,
                "process {}: {what}({}) [{} .. {}]",
                self.process, self.id, self.invoke, self.respond
            )
        }
    }
}

/// A violation: which condition, and a minimal sub-history that is not
/// linearizable on its own.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// The condition violated: `fresh`, `repeated`, `lost` or `order`.
    pub kind: &'static str,
    /// A short explanation.
    pub what: String,
    /// The operations of the minimal non-linearizable sub-history, in
    /// invocation order.
    pub ops: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable ({}): {}; sub-history:",
            self.kind, self.what
        )?;
        for op in &self.ops {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// What a linearizable history contained.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages received.
    pub received: u64,
    /// Pending sends (killed producers) whose message arrived.
    pub pending_delivered: u64,
    /// Pending sends whose message did not.
    pub pending_dropped: u64,
    /// Completed sends never received, each accounted to a receive left
    /// pending by a killed consumer.
    pub held_by_killed: u64,
}

fn violation(kind: &'static str, what: String, mut ops: Vec<Op>) -> Violation {
    ops.sort_by_key(|op| (op.invoke, !op.send));
    Violation { kind, what, ops }
}

/// Checks `history` (in any order) against a FIFO queue, as the module
/// documentation says; `drained`: the consumers received until every
/// producer had gone and the queue was empty, so a completed send must have
/// been received (or held by a killed consumer's pending receive).
pub fn check(history: &[Op], drained: bool) -> Result<Summary, Violation> {
    // Sorted by id, sends and completed receives are walked side by side
    // (sorting, not hashing: 10^7 operations fit in less memory and time).
    let mut sends: Vec<Op> = history.iter().filter(|op| op.send).copied().collect();
    sends.sort_unstable_by_key(|op| (op.id, op.invoke));
    let mut recvs: Vec<Op> = history
        .iter()
        .filter(|op| !op.send && !op.pending())
        .copied()
        .collect();
    recvs.sort_unstable_by_key(|op| (op.id, op.invoke));
    let pending_recvs: Vec<Op> = history
        .iter()
        .filter(|op| !op.send && op.pending())
        .copied()
        .collect();
    if let Some(w) = sends.windows(2).find(|w| w[0].id == w[1].id) {
        // Not a property of the queue: the recording broke its rule.
        return Err(violation(
            "fresh",
            format!("id {} sent twice (ids must be unique)", w[0].id),
            w.to_vec(),
        ));
    }

    // Each message: send invoke, send respond, recv invoke, recv respond
    // (PENDING if not received), index in `sends`, index in `recvs`.
    let mut summary = Summary::default();
    let mut lost = Vec::new();
    let mut items: Vec<(u64, u64, u64, u64, usize, usize)> = Vec::with_capacity(sends.len());
    let mut r = 0;
    for (si, send) in sends.iter().enumerate() {
        if r < recvs.len() && recvs[r].id < send.id {
            return Err(violation(
                "fresh",
                format!("{} received, never sent", recvs[r].id),
                vec![recvs[r]],
            ));
        }
        let item = if r < recvs.len() && recvs[r].id == send.id {
            let recv = recvs[r];
            if recv.respond < send.invoke {
                return Err(violation(
                    "fresh",
                    format!("{} received before it was sent", recv.id),
                    vec![*send, recv],
                ));
            }
            if let Some(again) = recvs.get(r + 1).filter(|op| op.id == send.id) {
                return Err(violation(
                    "repeated",
                    format!("{} received twice", recv.id),
                    vec![*send, recv, *again],
                ));
            }
            summary.received += 1;
            if send.pending() {
                summary.pending_delivered += 1;
            }
            r += 1;
            (
                send.invoke,
                send.respond,
                recv.invoke,
                recv.respond,
                si,
                r - 1,
            )
        } else {
            if send.pending() {
                summary.pending_dropped += 1;
            } else if drained {
                lost.push(si);
            }
            (send.invoke, send.respond, PENDING, PENDING, si, usize::MAX)
        };
        items.push(item);
    }
    if let Some(extra) = recvs.get(r) {
        return Err(violation(
            "fresh",
            format!("{} received, never sent", extra.id),
            vec![*extra],
        ));
    }
    lost.sort_by_key(|&si| (sends[si].respond, sends[si].id));
    if lost.len() > pending_recvs.len() {
        let first = sends[lost[pending_recvs.len()]];
        return Err(violation(
            "lost",
            format!(
                "{} sent, never received ({} lost, {} receives left pending by killed consumers)",
                first.id,
                lost.len(),
                pending_recvs.len()
            ),
            vec![first],
        ));
    }
    summary.held_by_killed = lost.len() as u64;
    let held_by = pending_recvs.iter().min_by_key(|op| op.invoke).copied();
    if let Some(held_by) = held_by {
        // `items` is in the order of `sends`.
        for &si in &lost {
            items[si].2 = held_by.invoke;
        }
    }

    // The sweep of condition 4.
    let mut by_invoke: Vec<usize> = (0..items.len()).collect();
    by_invoke.sort_unstable_by_key(|&i| items[i].0);
    let mut by_respond: Vec<usize> = (0..items.len()).collect();
    by_respond.sort_unstable_by_key(|&i| items[i].1);
    let mut next = 0;
    // The latest receive invocation among the messages whose sends have
    // responded before the current send's invocation, and whose it is.
    let mut latest: Option<(u64, usize)> = None;
    for &b in &by_invoke {
        let (b_invoke, _, _, b_recv_respond, _, _) = items[b];
        while next < by_respond.len() && items[by_respond[next]].1 < b_invoke {
            let a = by_respond[next];
            if latest.is_none_or(|(t, _)| items[a].2 > t) {
                latest = Some((items[a].2, a));
            }
            next += 1;
        }
        let Some((t, a)) = latest else { continue };
        if b_recv_respond != PENDING && b_recv_respond < t {
            let (a, b) = (items[a], items[b]);
            let (a_id, b_id) = (sends[a.4].id, sends[b.4].id);
            let mut ops = vec![sends[a.4], sends[b.4], recvs[b.5]];
            let what = if a.5 != usize::MAX {
                ops.push(recvs[a.5]);
                format!("{a_id} was sent before {b_id} but received after it")
            } else if t != PENDING {
                // Lost, counted as held by a killed consumer's receive.
                ops.extend(held_by);
                format!(
                    "{a_id} was sent before {b_id}, {b_id} was received, and {a_id} was held by a receive that began after that"
                )
            } else {
                format!("{a_id} was sent before {b_id}, and {b_id} was received but {a_id} was not")
            };
            return Err(violation("order", what, ops));
        }
    }
    Ok(summary)
}
