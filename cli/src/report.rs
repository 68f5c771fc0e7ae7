//! The results of `shmsg compare` as text: the preamble (machine, method,
//! references), the classic comparison table and the detailed tables.
//! (`export.rs` writes them as JSON and CSV, `plot.rs` as SVG; the types
//! are in `types.rs`.)
//!
//! A figure is `Ok(value)` or `Err(why it was not measured)`; every
//! rendering shows the reason (tables, JSON) or "not measured" (CSV), never
//! a made-up value.

use std::fmt::Write as _;

use super::types::{Cell, Figure, Report, STREAM_BATCH, STREAM_BATCH_BYTES, Transport};
use super::units::{bytes_rate_name, rate_name, size_name, time_name};

/// A figure for a table: its rendering, or "not measured".
fn shown<T>(figure: &Figure<T>, show: impl Fn(&T) -> String) -> String {
    match figure {
        Ok(value) => show(value),
        Err(_) => "not measured".into(),
    }
}

fn per(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value < 0.01 {
        format!("{value:.4}")
    } else if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.0}")
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Of the cells of `transports` at `size`, the one whose `key` is best
/// (`lower` or higher), with its value.
fn best(
    report: &Report,
    size: usize,
    message_passing: bool,
    key: impl Fn(&Cell) -> Option<f64>,
    lower: bool,
) -> Option<(&Cell, f64)> {
    report
        .cells
        .iter()
        .filter(|c| c.size == size && c.transport.shared_memory() != message_passing)
        .filter_map(|c| key(c).map(|v| (c, v)))
        .min_by(|a, b| {
            if lower {
                a.1.total_cmp(&b.1)
            } else {
                b.1.total_cmp(&a.1)
            }
        })
}

/// Why a classic-table cell has no figure: the first reason among the
/// candidate cells, or that no transport of the model was measured.
fn missing(
    report: &Report,
    size: usize,
    mp: bool,
    why: impl Fn(&Cell) -> Option<String>,
) -> String {
    let reason = report
        .cells
        .iter()
        .filter(|c| c.size == size && c.transport.shared_memory() != mp)
        .find_map(why)
        .unwrap_or_else(|| "no transport of this model was run".into());
    format!("not measured: {reason}")
}

/// " (a, b)", or nothing if there are no notes.
fn paren(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    }
}

fn rtt(cell: &Cell) -> Option<f64> {
    cell.ping.round_trip_ns.as_ref().ok().map(|s| s.median)
}

fn rate(cell: &Cell) -> Option<f64> {
    cell.stream.messages_per_s.as_ref().ok().map(|s| s.median)
}

/// A row of the classic table: the aspect, what the textbook says of each
/// model, the measured figure backing each, and the measured verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicRow {
    /// The aspect ("Communication speed", ...).
    pub aspect: String,
    /// What the textbook says of shared memory.
    pub shm_claim: &'static str,
    /// What the textbook says of message passing.
    pub mp_claim: &'static str,
    /// The measured figure for shared memory.
    pub shm: String,
    /// The measured figure for message passing (the best of its transports).
    pub mp: String,
    /// What the figures say about the claim.
    pub verdict: String,
}

fn ratio_verdict(shm: Option<f64>, mp: Option<f64>, lower_is_better: bool, what: &str) -> String {
    match (shm, mp) {
        (Some(s), Some(m)) if s > 0.0 && m > 0.0 => {
            let (shm_wins, r) = if lower_is_better {
                (s <= m, if s <= m { m / s } else { s / m })
            } else {
                (s >= m, if s >= m { s / m } else { m / s })
            };
            if shm_wins {
                format!("shared memory {r:.1}x {what}")
            } else {
                format!("message passing {r:.1}x {what}")
            }
        }
        _ => "not measured: a side has no figure".into(),
    }
}

/// The classic comparison's rows, each backed by the report's figures.
pub fn classic_rows(report: &Report) -> Vec<ClassicRow> {
    let sizes = &report.settings.sizes;
    let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
        return Vec::new();
    };
    let cacheline = report.cacheline_ns.as_ref().ok().map(|s| s.median);
    let mut rows = Vec::new();

    // Communication speed: the smallest message's round trip.
    let speed = |mp: bool| match best(report, small, mp, rtt, true) {
        Some((cell, ns)) => {
            let mut notes = Vec::new();
            // Which transport: both models have several.
            notes.push(cell.transport.label(cell.size));
            if let Some(c) = cacheline {
                notes.push(format!("{:.1}x cache line", ns / c));
            }
            if !mp && let Some(r) = report.ring_ref_at(small).and_then(rtt) {
                notes.push(format!("{:.2}x ref ring", ns / r));
            }
            format!(
                "{} round trip {}{}",
                size_name(small),
                time_name(ns),
                paren(&notes)
            )
        }
        None => missing(report, small, mp, |c| c.ping.round_trip_ns.clone().err()),
    };
    rows.push(ClassicRow {
        aspect: "Communication speed".into(),
        shm_claim: "faster",
        mp_claim: "slower (a system call per message)",
        shm: speed(false),
        mp: speed(true),
        verdict: ratio_verdict(
            best(report, small, false, rtt, true).map(|b| b.1),
            best(report, small, true, rtt, true).map(|b| b.1),
            true,
            "faster",
        ),
    });

    // Kernel intervention: system calls per streamed small message.
    let syscalls = |c: &Cell| c.stream.kernel.syscalls.as_ref().ok().copied();
    let kernel = |mp: bool| match best(report, small, mp, syscalls, true) {
        Some((cell, n)) => {
            let share = shown(&cell.stream.kernel.kernel_share, |s| percent(*s));
            let who = format!(" ({})", cell.transport.label(cell.size));
            format!("{} syscalls/msg{who}, kernel time {share}", per(n))
        }
        None => missing(report, small, mp, |c| {
            c.stream.kernel.syscalls.clone().err()
        }),
    };
    let shm_calls = best(report, small, false, syscalls, true).map(|b| b.1);
    let mp_calls = best(report, small, true, syscalls, true).map(|b| b.1);
    rows.push(ClassicRow {
        aspect: "Kernel intervention".into(),
        shm_claim: "only to set up the region",
        mp_claim: "on every message",
        shm: kernel(false),
        mp: kernel(true),
        verdict: match (shm_calls, mp_calls) {
            (Some(s), Some(m)) => format!(
                "{} vs {} syscalls per {} message",
                per(s),
                per(m),
                size_name(small)
            ),
            _ => "not measured: a side has no figure".into(),
        },
    });

    // Small data: streamed small messages per second.
    let small_rate = |mp: bool| match best(report, small, mp, rate, false) {
        Some((cell, r)) => {
            let who = format!(" ({})", cell.transport.label(cell.size));
            format!("{} of {}{who}", rate_name(r), size_name(small))
        }
        None => missing(report, small, mp, |c| c.stream.messages_per_s.clone().err()),
    };
    rows.push(ClassicRow {
        aspect: format!("Small data ({})", size_name(small)),
        shm_claim: "works, set-up cost",
        mp_claim: "suited to small data",
        shm: small_rate(false),
        mp: small_rate(true),
        verdict: ratio_verdict(
            best(report, small, false, rate, false).map(|b| b.1),
            best(report, small, true, rate, false).map(|b| b.1),
            false,
            "more messages/s",
        ),
    });

    // Large data: streamed bytes per second, as a share of memcpy.
    let memcpy = report.memcpy_at(large).ok().map(|m| m.median);
    let large_rate = |mp: bool| match best(report, large, mp, rate, false) {
        Some((cell, r)) => {
            let bytes = r * large as f64;
            let share = memcpy.map_or(String::new(), |m| {
                format!(", {} of memcpy", percent(bytes / m))
            });
            let reference = match report.ring_ref_at(large).and_then(rate) {
                Some(reference) if !mp => format!(", {:.2}x ref ring", r / reference),
                _ => String::new(),
            };
            let who = format!(" ({})", cell.transport.label(cell.size));
            format!("{}{who}{share}{reference}", bytes_rate_name(bytes))
        }
        None => missing(report, large, mp, |c| c.stream.messages_per_s.clone().err()),
    };
    rows.push(ClassicRow {
        aspect: format!("Large data ({})", size_name(large)),
        shm_claim: "suited to large data",
        mp_claim: "a kernel copy per byte",
        shm: large_rate(false),
        mp: large_rate(true),
        verdict: ratio_verdict(
            best(report, large, false, rate, false).map(|b| b.1),
            best(report, large, true, rate, false).map(|b| b.1),
            false,
            "more bytes/s",
        ),
    });

    // Synchronization cost: context switches per round trip, and the
    // round trip against the cache-line limit.
    let switches = |c: &Cell| c.ping.kernel.voluntary_switches.as_ref().ok().copied();
    let sync = |mp: bool| match best(report, small, mp, rtt, true) {
        Some((cell, ns)) => {
            let cs = shown(&cell.ping.kernel.voluntary_switches, |v| per(*v));
            let who = format!(" ({})", cell.transport.label(cell.size));
            let limit = cacheline.map_or(String::new(), |c| format!(", {:.1}x cache line", ns / c));
            format!("{cs} ctx switches/round trip{who}{limit}")
        }
        None => missing(report, small, mp, |c| c.ping.round_trip_ns.clone().err()),
    };
    rows.push(ClassicRow {
        aspect: "Synchronization cost".into(),
        shm_claim: "processes synchronize (atomics)",
        mp_claim: "the kernel synchronizes",
        shm: sync(false),
        mp: sync(true),
        verdict: match (
            best(report, small, false, rtt, true).and_then(|b| switches(b.0)),
            best(report, small, true, rtt, true).and_then(|b| switches(b.0)),
        ) {
            (Some(s), Some(m)) => format!("{} vs {} blocking waits per round trip", per(s), per(m)),
            _ => "not measured: a side has no figure".into(),
        },
    });
    rows
}

/// Lays out rows of cells in columns of the widest cell, two spaces apart.
fn columns(rows: &[Vec<String>], out: &mut String) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The classic table: for each aspect, what the textbook says of each model
/// (first line) and the figure measured here (second line), then the verdict.
pub fn classic_table(report: &Report) -> String {
    let mut rows = vec![vec![
        "".to_string(),
        "Shared memory (best ring)".to_string(),
        "Message passing (best transport)".to_string(),
        "Measured".to_string(),
    ]];
    for row in classic_rows(report) {
        rows.push(vec![
            row.aspect,
            format!("textbook: {}", row.shm_claim),
            format!("textbook: {}", row.mp_claim),
            String::new(),
        ]);
        rows.push(vec![String::new(), row.shm, row.mp, row.verdict]);
    }
    let mut out = String::new();
    columns(&rows, &mut out);
    out
}

/// The detailed tables: ping-pong and streaming, one line per transport and
/// size, with spreads and ratios to the references.
pub fn detail_tables(report: &Report) -> String {
    let cacheline = report.cacheline_ns.as_ref().ok().map(|s| s.median);
    let mut out = String::new();
    let mut rows = vec![vec![
        "ping-pong".into(),
        "size".into(),
        "median".into(),
        "p99".into(),
        "p99.9".into(),
        "runs min..max".into(),
        "x cache line".into(),
        "x ref ring".into(),
        "syscalls/rt".into(),
        "vol. cs/rt".into(),
        "kernel time".into(),
    ]];
    // A streaming-only row (shm-batch) has no ping-pong figures by
    // design; the legend says why.
    let ping_cells = report
        .cells
        .iter()
        .filter(|c| c.transport.streaming_only().is_none());
    for cell in ping_cells.chain(&report.ring_ref) {
        let p = &cell.ping;
        rows.push(vec![
            cell.transport.name().into(),
            size_name(cell.size),
            shown(&p.round_trip_ns, |s| time_name(s.median)),
            shown(&p.p99_ns, |v| time_name(*v)),
            shown(&p.p999_ns, |v| time_name(*v)),
            shown(&p.round_trip_ns, |s| {
                format!("{} .. {}", time_name(s.min), time_name(s.max))
            }),
            match (&p.round_trip_ns, cacheline) {
                (Ok(s), Some(c)) => format!("{:.1}x", s.median / c),
                _ => "not measured".into(),
            },
            match (rtt(cell), report.ring_ref_at(cell.size).and_then(rtt)) {
                (Some(a), Some(b)) => format!("{:.2}x", a / b),
                _ => "not measured".into(),
            },
            shown(&p.kernel.syscalls, |v| per(*v)),
            shown(&p.kernel.voluntary_switches, |v| per(*v)),
            shown(&p.kernel.kernel_share, |v| percent(*v)),
        ]);
    }
    columns(&rows, &mut out);
    out.push('\n');
    let mut rows = vec![vec![
        "streaming".into(),
        "size".into(),
        "msg/s".into(),
        "bytes/s".into(),
        "runs min..max".into(),
        "of memcpy".into(),
        "x ref ring".into(),
        "syscalls/msg".into(),
        "vol. cs/msg".into(),
        "kernel time".into(),
    ]];
    for cell in report.cells.iter().chain(&report.ring_ref) {
        let s = &cell.stream;
        let size = cell.size as f64;
        rows.push(vec![
            cell.transport.name().into(),
            size_name(cell.size),
            shown(&s.messages_per_s, |r| rate_name(r.median)),
            shown(&s.messages_per_s, |r| bytes_rate_name(r.median * size)),
            shown(&s.messages_per_s, |r| {
                format!(
                    "{} .. {}",
                    bytes_rate_name(r.min * size),
                    bytes_rate_name(r.max * size)
                )
            }),
            match (&s.messages_per_s, report.memcpy_at(cell.size)) {
                (Ok(r), Ok(m)) => percent(r.median * size / m.median),
                _ => "not measured".into(),
            },
            match (rate(cell), report.ring_ref_at(cell.size).and_then(rate)) {
                (Some(a), Some(b)) => format!("{:.2}x", a / b),
                _ => "not measured".into(),
            },
            shown(&s.kernel.syscalls, |v| per(*v)),
            shown(&s.kernel.voluntary_switches, |v| per(*v)),
            shown(&s.kernel.kernel_share, |v| percent(*v)),
        ]);
    }
    columns(&rows, &mut out);
    out
}

/// The `--rate` table: latency at the offered rate, per transport (empty
/// without `--rate`).
pub fn rate_table(report: &Report) -> String {
    let Some(rate) = &report.rate else {
        return String::new();
    };
    let mut rows = vec![vec![
        format!("at {}", rate_name(rate.per_s)),
        "size".into(),
        "p50".into(),
        "p99".into(),
        "p99.9".into(),
        "max".into(),
        "received".into(),
    ]];
    for result in &rate.results {
        let q = |i: usize| shown(&result.latency_ns, |l| time_name(l[i]));
        rows.push(vec![
            result.transport.name().into(),
            size_name(rate.size),
            q(0),
            q(1),
            q(2),
            q(3),
            shown(&result.received_per_s, |r| rate_name(*r)),
        ]);
    }
    let mut out = String::new();
    columns(&rows, &mut out);
    out
}

/// The lines above the tables: machine, settings, timer, references.
pub fn preamble(report: &Report) -> String {
    let s = &report.settings;
    let mut out = String::new();
    let _ = writeln!(out, "machine: {}", report.machine.line());
    let _ = writeln!(
        out,
        "pinning: {}",
        match s.pinned {
            Some((a, b)) => format!("the two processes pinned to CPUs {a} and {b}"),
            None => "not pinned (the scheduler places the processes)".into(),
        }
    );
    let _ = writeln!(
        out,
        "method: {} run(s) of {} ms each after {} ms warm-up, median of runs; every byte \
         written by the sender and checked by the receiver",
        s.runs,
        s.duration.as_millis(),
        s.warmup.as_millis()
    );
    let batches = report.cells.iter().map(|c| c.ping.batch).filter(|b| *b > 0);
    let (least, most) = batches.fold((u64::MAX, 0), |(lo, hi), b| (lo.min(b), hi.max(b)));
    let _ = writeln!(
        out,
        "timer: one clock reading costs {:.0} ns; round trips are timed in batches that keep it \
         under 5% of the batch ({} round trip(s) per reading); percentiles are of batch means",
        report.timer_ns,
        if most == 0 {
            "none timed".to_string()
        } else if least == most {
            format!("{most}")
        } else {
            format!("{least} to {most}")
        }
    );
    let _ = writeln!(
        out,
        "system calls: {}",
        match &report.syscall_method {
            Ok(how) => how.clone(),
            Err(why) => format!("not measured: {why}"),
        }
    );
    let _ = writeln!(
        out,
        "reference: one cache line between two cores, round trip {}",
        shown(&report.cacheline_ns, |c| format!(
            "{} ({} .. {})",
            time_name(c.median),
            time_name(c.min),
            time_name(c.max)
        ))
    );
    let memcpy: Vec<String> = report
        .memcpy
        .iter()
        .map(|(size, m)| {
            format!(
                "{} {}",
                size_name(*size),
                shown(m, |m| bytes_rate_name(m.median))
            )
        })
        .collect();
    let _ = writeln!(out, "reference: single-core memcpy: {}", memcpy.join(", "));
    if !report.ring_ref.is_empty() {
        let _ = writeln!(
            out,
            "reference: a minimal ring between the same two processes (fixed slots, spinning, \
             one copy in and one out): the ref-ring rows; \"x ref ring\" is each row's ratio to it"
        );
    }
    let names: Vec<String> = s
        .transports
        .iter()
        .map(|t| format!("{} = {}", t.name(), t.describe()))
        .collect();
    let _ = writeln!(out, "transports: {}", names.join("; "));
    let _ = writeln!(
        out,
        "in place: the in-place rows fill each message inside the ring (send_with) and check it \
         there (recv_with); the others fill a buffer that send copies in, and check the copy \
         recv makes"
    );
    if s.transports.contains(&Transport::ShmBatch) {
        let _ = writeln!(
            out,
            "batch: the shm-batch row streams over the shm rings with send_batch, {STREAM_BATCH} \
             messages per call, as many as fit in {} where fewer (one per call from {} up; JSON \
             send_batch gives the number), each filled in the sender's buffer, copied in, one \
             store of the ring's tail per call, and received with one recv per message; it is \
             not in the ping-pong {}: with one message in flight a batch is one send (the shm \
             row)",
            size_name(STREAM_BATCH_BYTES),
            size_name(STREAM_BATCH_BYTES),
            if report.rate.is_some() {
                "or fixed-rate tables"
            } else {
                "table"
            }
        );
    }
    if let Some(rate) = &report.rate {
        let _ = writeln!(
            out,
            "fixed rate: {} offered, {} messages, {} ms per transport; latency from each \
             message's intended send time, so a stall counts against every message due behind \
             it (corrected for coordinated omission); HdrHistogram, 3 significant digits",
            rate_name(rate.per_s),
            size_name(rate.size),
            rate.window.as_millis()
        );
    }
    out
}

#[cfg(test)]
#[path = "report_tests.rs"]
pub(crate) mod tests;
