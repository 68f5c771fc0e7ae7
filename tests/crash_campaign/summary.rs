//! The one summary block the campaign prints.

use std::time::Instant;

use shmsg::shm::layout::RingKind;

use super::account::Tally;
use super::hostile::Hostile;
use super::kind_name;
use super::shared::ERROR_KINDS;

/// A row of the kill table: its label and what it counts.
type Row = (&'static str, fn(&Tally) -> u64);

#[allow(clippy::too_many_arguments)]
pub fn print_summary(
    kinds: &[RingKind],
    tallies: &[Tally],
    total: &Tally,
    hostiles: &[Hostile],
    seed: u64,
    kills: u64,
    writes: u64,
    started: Instant,
) {
    let names: Vec<&str> = kinds.iter().map(|&k| kind_name(k)).collect();
    let mut out = String::new();
    out += &format!(
        "== crash campaign summary: seed {seed}, SHMSG_CAMPAIGN_KILLS={kills}, SHMSG_CAMPAIGN_WRITES={writes}, {:.1} s ==\n",
        started.elapsed().as_secs_f64()
    );
    if tallies.iter().any(|t| t.rounds > 0) {
        out += &format!("{:<28}", "kill campaign");
        for n in &names {
            out += &format!("{n:>12}");
        }
        out += &format!("{:>12}\n", "total");
        let all: Vec<&Tally> = tallies.iter().chain([total]).collect();
        let rows: [Row; 20] = [
            ("rounds (rings)", |t| t.rounds),
            ("kills: producers", |t| t.kills_producer),
            ("kills: consumers", |t| t.kills_consumer),
            ("messages sent", |t| t.sent),
            ("received (intact)", |t| t.received),
            ("in flight at a kill", |t| t.in_flight),
            ("  of which delivered", |t| t.in_flight_delivered),
            ("redelivered (at-least-once)", |t| t.redelivered),
            ("torn *", |t| t.torn),
            ("duplicates *", |t| t.duplicates),
            ("gaps (lost) *", |t| t.gaps),
            ("phantoms *", |t| t.phantoms),
            ("reordered *", |t| t.reordered),
            ("panics *", |t| t.panics),
            ("child errors *", |t| t.errors),
            ("hangs *", |t| t.hangs),
            ("stalls (not documented) *", |t| t.stalls),
            ("dropped with its consumer", |t| t.dropped_with_consumer),
            ("  messages stranded", |t| t.stranded),
            ("death-to-Disconnected n", |t| t.disconnect.len() as u64),
        ];
        for (label, get) in rows {
            out += &format!("{label:<28}");
            for t in &all {
                out += &format!("{:>12}", get(t));
            }
            out += "\n";
        }
        out += &format!("{:<28}", "  median/max (ms)");
        for t in &all {
            out += &format!("{:>12}", t.disconnect_times());
        }
        out += "\n";
    }
    if !hostiles.is_empty() {
        out += &format!("{:<28}", "hostile writer");
        for n in &names {
            out += &format!("{n:>12}");
        }
        out += "\n";
        let mut row = |label: &str, get: &dyn Fn(&Hostile) -> u64| {
            out += &format!("{label:<28}");
            for h in hostiles {
                out += &format!("{:>12}", get(h));
            }
            out += "\n";
        };
        row("words written", &|h| h.writes);
        for (k, kind) in ERROR_KINDS.iter().enumerate() {
            if hostiles.iter().any(|h| h.errors[k] > 0) {
                row(&format!("errors: {kind}"), &|h| h.errors[k]);
            }
        }
        row("messages intact", &|h| h.intact);
        row("messages bad checksum", &|h| h.bad);
        row("panics *", &|h| h.panics);
        row("child errors *", &|h| h.failed);
        row("hangs (slow calls too) *", &|h| h.hangs);
    }
    out += "(* fails the campaign. An Mpmc consumer that dies holding a record has it handed back \
            for it by the other consumers, not delivered again (documented in src/shm/mpmc/mod.rs): at \
            most one such message per Mpmc consumer kill is counted as dropped with its consumer.)";
    println!("{out}");
}
