//! `shmsg-peers`: shmsg's two workloads over shmsg and its peers, measured
//! in one run and printed as one table.
//!
//! Workloads (the same code drives every row through [`Link`](link::Link)):
//!
//! * **ping-pong**: the driver sends an 8-byte message, the peer echoes it;
//!   every round trip is timed on its own, and each sample reports its
//!   median and 99th percentile;
//! * **stream**: the driver sends 64-byte messages (then, separately, 1 MiB
//!   messages) one way as fast as the link takes them; the peer reads them
//!   and answers with one 8-byte acknowledgement carrying the sum of all it
//!   read, which the driver checks. Time runs from the first send to the
//!   acknowledgement.
//!
//! Every payload byte is written by the sender (word `j` of a message is
//! `seed + j`) and read by the receiver (it sums the 64-bit words), so no
//! row skips the work of producing or consuming the data. Warm-up messages
//! (a tenth of each sample) run first and are not timed.
//!
//! Each row runs its two sides in two processes (this binary re-executed
//! with `--child`), except crossbeam-channel, which is a channel between
//! threads and runs in two threads. Samples are interleaved: each round
//! measures every row once, so all rows see the same machine.
//!
//! Run `cargo run --release -p shmsg-peers -- --help`.
//!
//! Modules: [`link`] (what every row shares), one module per peer
//! ([`ours`] for shmsg itself, [`raw`], [`crossbeam`], [`ipc`],
//! [`iceoryx`]), [`rows`] (the rows and their set-up), [`workload`] (the
//! two workloads); this file runs the samples and prints the table.
//! Statistics, pinning, the payload pattern and the cache-line reference
//! come from `shmsg-bench-support`, shared with the `shmsg` command and the
//! benchmarks.

mod crossbeam;
mod iceoryx;
mod ipc;
mod link;
mod ours;
mod raw;
mod rows;
mod workload;

use std::time::Instant;

use shmsg_bench_support::cpu::{cpu_pair, pin};
use shmsg_bench_support::reference::cacheline_round_trips;
use shmsg_bench_support::stats::{Spread, median, quantile};

use link::{Job, LARGE, PIN_ENV, PING, Res, SMALL};
use rows::{ROWS, Row, measure, open_child};
use workload::{Outcome, serve};

/// The median cost of reading the clock twice, in nanoseconds.
fn timer_cost() -> f64 {
    let costs: Vec<f64> = (0..10_001)
        .map(|_| {
            let start = Instant::now();
            start.elapsed().as_nanos() as f64
        })
        .collect();
    median(&costs)
}

/// The samples of one cell, and whether one failed.
#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    /// Ping-pong only: the 99th percentile of each sample.
    p99: Vec<f64>,
    error: Option<String>,
}

impl Cell {
    /// `median (min..max)` with `digits` decimals.
    fn summary(&self, digits: usize) -> String {
        if let Some(error) = &self.error {
            return format!("failed: {}", error.chars().take(30).collect::<String>());
        }
        if self.values.is_empty() {
            return "not run".to_owned();
        }
        match Spread::of(&self.values) {
            Some(Spread { median, min, max }) => {
                format!("{median:.digits$} ({min:.digits$}..{max:.digits$})")
            }
            None => "not measured".to_owned(),
        }
    }

    fn p99_summary(&self) -> String {
        if self.error.is_some() || self.p99.is_empty() {
            return "-".to_owned();
        }
        format!("{:.0}", median(&self.p99))
    }
}

struct Settings {
    samples: usize,
    round_trips: u64,
    small: u64,
    large: u64,
    rows: Vec<Row>,
    pin: bool,
}

impl Settings {
    fn jobs(&self) -> [Job; 3] {
        let job = |pingpong, len, count: u64| Job {
            pingpong,
            len,
            warm: (count / 10).max(1),
            count,
        };
        [
            job(true, PING, self.round_trips),
            job(false, SMALL, self.small),
            job(false, LARGE, self.large),
        ]
    }
}

const HELP: &str = "\
shmsg-peers: ping-pong and streaming over shmsg and its peers, one table from one run

usage: shmsg-peers [--quick] [--samples N] [--rows KEY,KEY,...] [--no-pin]

  --quick        a short run (3 samples, a tenth of the messages)
  --samples N    samples per cell (default 7); the table shows their median and min..max
  --rows KEYS    only these rows; keys: shm-inplace, shm, unix, seqpacket, pipe,
                 raw-socketpair, raw-pipe, crossbeam, ipc-channel, iceoryx2
  --no-pin       do not pin the two sides to two CPUs
";

fn parse_args(args: &[String]) -> Res<Settings> {
    let mut settings = Settings {
        samples: 7,
        round_trips: 20_000,
        small: 200_000,
        large: 300,
        rows: ROWS.to_vec(),
        pin: true,
    };
    let mut samples = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                settings.samples = 3;
                settings.round_trips = 2_000;
                settings.small = 20_000;
                settings.large = 40;
            }
            "--samples" => {
                i += 1;
                samples = Some(args.get(i).ok_or("--samples needs a number")?.parse()?);
            }
            "--rows" => {
                i += 1;
                let keys = args.get(i).ok_or("--rows needs a list")?;
                settings.rows = keys
                    .split(',')
                    .map(|key| Row::from_key(key).ok_or(format!("unknown row {key:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--no-pin" => settings.pin = false,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)").into()),
        }
        i += 1;
    }
    if let Some(samples) = samples {
        settings.samples = samples;
    }
    if settings.samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    Ok(settings)
}

fn machine() -> String {
    let cpus = rustix::thread::sched_getaffinity(None).map_or(0, |set| set.count());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}, Linux {kernel}")
}

fn run(settings: &Settings) -> Res<()> {
    // Before pinning, which narrows what this process may run on.
    let machine = machine();
    let pair = if settings.pin { cpu_pair() } else { None };
    if let Some([driver, peer]) = pair {
        pin(Some(driver));
        // SAFETY: set before any other thread of this process exists.
        unsafe { std::env::set_var(PIN_ENV, peer.to_string()) };
    }
    let jobs = settings.jobs();
    let timer = timer_cost();
    let mut cells: Vec<[Cell; 3]> = settings.rows.iter().map(|_| Default::default()).collect();
    let mut reference = Cell::default();
    let started = Instant::now();
    for sample in 0..settings.samples {
        eprintln!(
            "sample {}/{} ({:.0} s so far)",
            sample + 1,
            settings.samples,
            started.elapsed().as_secs_f64()
        );
        // One cache line between this thread and one on the peer's CPU: the
        // physical floor under any shared-memory round trip between the two.
        let round_trips = 5 * settings.round_trips;
        reference.values.push(cacheline_round_trips(
            pair.map(|p| p[1]),
            round_trips / 10,
            round_trips - round_trips / 10,
        ));
        for (j, job) in jobs.iter().enumerate() {
            for (r, &row) in settings.rows.iter().enumerate() {
                let cell = &mut cells[r][j];
                if cell.error.is_some() {
                    continue;
                }
                match measure(row, job, pair.map(|p| p[1])) {
                    Ok(Outcome::RoundTrips(mut times)) => {
                        times.sort_unstable();
                        let at = |q| quantile(&times, q).unwrap_or_default() as f64;
                        cell.values.push(at(0.5));
                        cell.p99.push(at(0.99));
                    }
                    Ok(Outcome::Stream(secs)) => {
                        let messages = job.count as f64 / secs;
                        cell.values.push(if job.len >= LARGE {
                            messages * job.len as f64 / 1e9
                        } else {
                            messages / 1e6
                        });
                    }
                    Err(error) => {
                        eprintln!("{} ({} B): {error}", row.key(), job.len);
                        cell.error = Some(error.to_string());
                    }
                }
            }
        }
    }

    println!(
        "shmsg-peers: {}; sides pinned to CPUs {}; {} samples per cell, interleaved; \
         timer read costs {timer:.0} ns; {:.0} s",
        machine,
        pair.map_or("(not pinned)".to_owned(), |[a, b]| format!(
            "{a} (driver) and {b} (peer)"
        )),
        settings.samples,
        started.elapsed().as_secs_f64(),
    );
    println!(
        "per sample: {} round trips, {} messages of 64 B, {} of 1 MiB (plus a tenth as untimed warm-up)",
        jobs[0].count, jobs[1].count, jobs[2].count
    );
    println!(
        "reference: one cache line bounced between the two CPUs (two threads), round trip {} ns",
        reference.summary(0)
    );
    println!("cells: median of the samples (min..max of the samples)");
    println!();
    println!(
        "| {:<36} | {:<11} | {:<22} | {:>7} | {:<22} | {:<22} |",
        "peer",
        "sides",
        "round trip 8 B, ns",
        "p99 ns",
        "64 B stream, M msg/s",
        "1 MiB stream, GB/s"
    );
    println!(
        "|{:-<38}|{:-<13}|{:-<24}|{:->9}|{:-<24}|{:-<24}|",
        "", "", "", ":", "", ""
    );
    for (r, &row) in settings.rows.iter().enumerate() {
        let [rt, small, large] = &cells[r];
        println!(
            "| {:<36} | {:<11} | {:<22} | {:>7} | {:<22} | {:<22} |",
            row.label(),
            row.sides(),
            rt.summary(0),
            rt.p99_summary(),
            small.summary(2),
            large.summary(2),
        );
    }
    Ok(())
}

fn child_main(args: &[String]) -> Res<()> {
    let [row, conn, rest @ ..] = args else {
        return Err("usage: --child ROW CONN JOB...".into());
    };
    let row = Row::from_key(row).ok_or("unknown row")?;
    let job = Job::parse(rest)?;
    pin(std::env::var(PIN_ENV).ok().and_then(|c| c.parse().ok()));
    let mut link = open_child(row, conn, &job)?;
    serve(&mut *link, &job)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--child") => child_main(&args[1..]).map_err(|e| format!("shmsg-peers child: {e}")),
        _ => parse_args(&args)
            .and_then(|settings| run(&settings))
            .map_err(|e| format!("shmsg-peers: {e}")),
    };
    if let Err(error) = result {
        eprintln!("{error}");
        std::process::exit(1);
    }
}
