//! `shmsg compare`: the two models side by side, measured on this machine.
//!
//! (Over 600 lines: the run's passes, references, pairs, `--rate` and the
//! system-call count, stay in one function so that the progress total and
//! the passes cannot drift apart; the tables, files and plot are elsewhere.)
//!
//! For every transport (the shared-memory rings `shm` and `mpsc`, Unix
//! stream sockets `unix`, Unix seqpacket sockets `seqpacket`, a pair of
//! pipes `pipe`, TCP over loopback `tcp`) and message size, the command
//! spawns a pair of `shmsg peer bench` processes that talk through
//! `shmsg::connect` / `shmsg::listen` with the copying API (the sender
//! fills a buffer that `send` copies in; `recv` copies out into a buffer
//! that is then checked). The rings are measured a second time used in
//! place (`shm-in-place`, `mpsc-in-place`: the same rings, with the same
//! geometry, handed over a Unix socket; `send_with` fills each message
//! inside the ring and `recv_with` checks it there: every byte still
//! written and read, one pass each instead of two). `shm` is streamed a
//! third way, `shm-batch`: the same `shm:` rings and copying API, the
//! sender handing 32 filled messages at a time to `send_batch` (as many as
//! fit in 1 MiB where fewer; one store of the ring's tail per batch), the receiver one `recv` per message;
//! with one message in flight a batch is meaningless, so this row has no
//! ping-pong and no `--rate` figures (their reason says so). Each pair
//! measures:
//!
//! * **ping-pong**: one process sends a message, the other checks it and
//!   sends it back; the round trip's median, 99th and 99.9th percentile.
//!   Round trips are timed in batches just large enough that one clock
//!   reading costs under 5% of the batch (1 when the round trip is slow);
//!   the clock's cost is measured and printed;
//! * **streaming**: one process sends as fast as the channel takes messages,
//!   the other checks them; messages and bytes per second;
//! * **kernel intervention**, per message (streaming) or per round trip
//!   (ping-pong), both processes together: system calls, counted by a perf
//!   counter on the tracepoint `raw_syscalls:sys_enter` in a separate,
//!   untimed pass (the counter slows system calls a little); voluntary
//!   context switches and the share of CPU time spent in the kernel, from
//!   `getrusage` inside each process's timed window. As root on a machine
//!   where tracefs is not mounted, a child mounts it in a mount namespace
//!   of its own to read the tracepoint's id (nothing stays mounted). Where
//!   the kernel does not let the counter open, the figure is "not
//!   measured", with the reason;
//! * **references**, in the same run: two threads on the two CPUs bouncing
//!   one cache line (the round-trip limit of any shared-memory protocol) and
//!   a single-core `memcpy` of blocks of each size (the bandwidth limit of a
//!   copy); round trips are also shown as multiples of the first and
//!   throughputs as shares of the second. And the reference ring
//!   (`shmsg_bench_support::ring`: fixed slots, spinning, one copy in and
//!   one out), measured like a transport between the same two pinned
//!   processes at every size (both ping-pong and streaming; the two rings
//!   lie in a memfd both processes get as their stdin): every row's
//!   `x ref ring` is its ratio to it;
//! * with `--rate N/s`, **latency at a fixed offered rate**: one pair per
//!   transport (and the reference ring), the sender sending message `k` at
//!   `start + k / rate`, stamped with that intended time; the receiver
//!   records `arrival - intended` of each message (after the warm-up) in
//!   an HdrHistogram (3 significant digits), for `--runs` x `--duration`.
//!   Measuring from the intended time is the standard correction for
//!   coordinated omission: a sender that stalls delays every message due
//!   behind it, and each of them is recorded with its full wait. p50, p99,
//!   p99.9 and max, and the rate the receiver actually took. Messages are
//!   the smallest `--sizes` size, at least 16 bytes (a sequence number and
//!   the stamp).
//!
//! Every byte of every message is written by the sender and read and
//! checked by the receiver. Each run has an untimed warm-up; each figure is
//! the median of `--runs` runs, run interleaved (run 1 of everything, then
//! run 2, ...) so that a noisy moment spreads over all figures, and the
//! spread (min .. max of the runs) is shown beside it. The two processes
//! are pinned to two CPUs unless `--no-pin`, and the output says which.
//!
//! # Output
//!
//! On stdout: the machine and method, the classic comparison table (each
//! textbook claim with the figure that backs or refutes it), then the
//! detailed ping-pong and streaming tables. A progress line goes to stderr.
//! In `--out` (default `./shmsg-compare`):
//!
//! * `compare.json`: schema `shmsg-compare/1`: `machine` {cpu, cores,
//!   kernel}, `settings`, `timer_ns`, `syscall_method` ({measured} or
//!   {not_measured}), `references` {cacheline_round_trip_ns {median, min,
//!   max}, memcpy [{size, bytes_per_s}], ring [one object per size, as in
//!   `results`, transport `ref-ring`, model `reference`]}, `classic`
//!   \[rows\], `rate` (`null` without `--rate`; else {offered_per_s, size,
//!   window_ms, method, results: [{transport, p50_ns, p99_ns, p999_ns,
//!   max_ns, received_per_s, not_measured}]}), and `results`:
//!   one object per transport and size with `pingpong` {round_trip_ns,
//!   p99_ns, p999_ns, batch, samples, syscalls, voluntary_switches,
//!   kernel_share, not_measured} and `stream` {messages_per_s, bytes_per_s,
//!   messages, send_batch (messages per send call: 32 for `shm-batch`, else
//!   1), syscalls, voluntary_switches, kernel_share, not_measured}. A
//!   figure that was not measured is `null`, and `not_measured` maps its
//!   name to the reason;
//! * `compare.csv`: one row per transport and size, then one per size for
//!   the reference ring, the columns of `export::CSV_COLUMNS` (with each
//!   row's ratios to the reference ring, and the transport's `--rate`
//!   figures): a cell without a figure is empty, and the last column,
//!   `not_measured`, names it with the reason;
//! * `compare.svg`: round trip and throughput against message size, one
//!   line per transport, log-log, with the references and the machine.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmsg::Error;

use shmsg_bench_support::cpu::allowed_cpus;
use shmsg_bench_support::stats::Spread;

use super::measure::{self, Machine, SyscallCounter};
use super::pair::{self, Context};
use super::types::{
    Cell, Figure, Kernel, PingPong, RateReport, RateResult, Report, RunFigures, Settings, Stream,
    Transport, Workload,
};
use super::units::{parse_duration, parse_rate, parse_size, size_name};
use super::{export, plot, report};
use crate::failure::Failure;

/// `shmsg compare` flags.
#[derive(clap::Args, Debug, Default)]
pub struct CompareArgs {
    /// A short run (sizes 8 B, 1 KiB, 64 KiB, 1 MiB; 3 runs of 50 ms): under
    /// a minute. Other flags still override its choices.
    #[arg(long)]
    pub quick: bool,
    /// Transports to measure, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub transports: Vec<Transport>,
    /// Message sizes in bytes, comma-separated; K and M suffixes (KiB, MiB)
    /// allowed, from 1 B to 16M [default: 8,64,512,4K,32K,256K,1M].
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Vec<usize>,
    /// Repetitions of each measurement; the median is reported [default: 5,
    /// quick 3].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Timed window of each run, e.g. 200ms or 1s [default: 200ms, quick 50ms].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Untimed warm-up before each window [default: 50ms, quick 10ms].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Pin the two processes of a pair to these two CPUs [default: the
    /// first two this process may use].
    #[arg(long, value_delimiter = ',', num_args = 1, conflicts_with = "no_pin")]
    pub cpus: Vec<usize>,
    /// Do not pin: let the scheduler place the processes.
    #[arg(long)]
    pub no_pin: bool,
    /// Skip the system-call counting pass (the figures then read "not measured").
    #[arg(long)]
    pub no_syscalls: bool,
    /// Directory for compare.json, compare.csv and compare.svg.
    #[arg(long, default_value = "shmsg-compare")]
    pub out: PathBuf,
    /// Print the report as JSON on stdout (what compare.json holds)
    /// instead of the tables; the files are written all the same.
    #[arg(long)]
    pub json: bool,
    /// Also measure latency at a fixed offered rate, e.g. 100000/s or
    /// 100k/s: over each transport, one process sends a message every
    /// 1/rate seconds (messages of the smallest --sizes size, at least
    /// 16 B), the other records each one's latency from the time it was due
    /// to be sent (so a stall counts against every message held up behind
    /// it: no coordinated omission); p50, p99, p99.9 and max, over a
    /// window of --runs times --duration.
    #[arg(long, value_name = "N/s", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Print the settings these flags resolve to, as JSON, and exit.
    #[arg(long, hide = true)]
    pub plan: bool,
}

/// The settings the flags resolve to, or what is wrong with them.
pub fn resolve(args: &CompareArgs, allowed_cpus: &[usize]) -> Result<Settings, String> {
    let mut transports = if args.transports.is_empty() {
        Transport::ALL.to_vec()
    } else {
        args.transports.clone()
    };
    transports.sort();
    transports.dedup();
    let mut sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if args.quick {
        vec![8, 1 << 10, 64 << 10, 1 << 20]
    } else {
        vec![8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 1 << 20]
    };
    sizes.sort_unstable();
    sizes.dedup();
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 5 });
    if !(1..=1000).contains(&runs) {
        return Err(format!("--runs {runs} is out of range (1 to 1000)"));
    }
    let duration = args
        .duration
        .unwrap_or(Duration::from_millis(if args.quick { 50 } else { 200 }));
    if duration < Duration::from_millis(1) {
        return Err("--duration must be at least 1ms".into());
    }
    let warmup = args
        .warmup
        .unwrap_or(Duration::from_millis(if args.quick { 10 } else { 50 }));
    let pinned = if args.no_pin {
        None
    } else if !args.cpus.is_empty() {
        match args.cpus[..] {
            [a, b] if a != b => {
                if let Some(bad) = [a, b].into_iter().find(|c| !allowed_cpus.contains(c)) {
                    return Err(format!(
                        "--cpus: CPU {bad} is not available to this process (available: {allowed_cpus:?})"
                    ));
                }
                Some((a, b))
            }
            _ => return Err("--cpus takes two different CPUs, e.g. --cpus 0,1".into()),
        }
    } else {
        match allowed_cpus {
            [a, b, ..] => Some((*a, *b)),
            _ => None,
        }
    };
    Ok(Settings {
        transports,
        sizes,
        runs,
        duration,
        warmup,
        pinned,
        count_syscalls: !args.no_syscalls,
        quick: args.quick,
        rate: args.rate,
    })
}

/// The progress line on stderr: redrawn in place on a terminal, one line
/// per step otherwise.
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    start: Instant,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let line = progress_line(self.done, self.total, self.start.elapsed(), what);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "shmsg compare: {line}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// One progress line: step `done` of `total` (the one starting now is
/// `what`), the time so far, and an estimate of the time left from the
/// average step so far (steps differ, so it is rough; none before the
/// first step has finished).
fn progress_line(done: usize, total: usize, elapsed: Duration, what: &str) -> String {
    let finished = done.saturating_sub(1);
    let left = if finished == 0 || done > total {
        String::new()
    } else {
        let per_step = elapsed.as_secs_f64() / finished as f64;
        let left = per_step * (total + 1 - done) as f64;
        format!(", about {left:.0} s left")
    };
    format!(
        "[{done}/{total}] {:.0} s{left}: {what}",
        elapsed.as_secs_f64()
    )
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Runs `shmsg compare`.
pub fn run(args: CompareArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let settings = resolve(&args, &allowed_cpus()).map_err(Failure::Usage)?;
    if args.plan {
        println!("{}", export::settings_json(&settings));
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).map_err(io(format!(
        "cannot create the output directory {} (pick another with --out)",
        args.out.display()
    )))?;
    let exe = std::env::current_exe().map_err(io("cannot find this executable to spawn peers"))?;
    let scratch = std::env::temp_dir().join(format!("shmsg-compare-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(io(format!(
        "cannot create the scratch directory {} (set TMPDIR to a writable directory)",
        scratch.display()
    )))?;
    let context = Context::new(settings.clone(), exe, scratch);
    let syscall_method = if settings.count_syscalls {
        SyscallCounter::open().map(|_| {
            "counted by a perf counter on the tracepoint raw_syscalls:sys_enter, in a separate \
             untimed pass; the measurement's own calls are subtracted"
                .to_string()
        })
    } else {
        Err("not counted (--no-syscalls)".into())
    };
    let pins = (settings.pinned.map(|p| p.0), settings.pinned.map(|p| p.1));
    let count_pass = syscall_method.is_ok();
    // A streaming-only transport (shm-batch) has no ping-pong pairs and no
    // --rate pair.
    let measured = |workload: Workload, transport: Transport| {
        workload == Workload::Stream || transport.streaming_only().is_none()
    };
    let pairs = settings
        .transports
        .iter()
        .map(|&t| {
            [Workload::PingPong, Workload::Stream]
                .into_iter()
                .filter(|&w| measured(w, t))
                .count()
        })
        .sum::<usize>()
        * settings.sizes.len();
    let ref_pairs = settings.sizes.len() * 2;
    let rate_transports: Vec<Transport> = settings
        .transports
        .iter()
        .copied()
        .filter(|&t| measured(Workload::Rate, t))
        .chain([Transport::RefRing])
        .collect();
    let rate_pairs = if settings.rate.is_some() {
        rate_transports.len()
    } else {
        0
    };
    let mut progress = Progress {
        total: settings.runs * (1 + settings.sizes.len() + ref_pairs + pairs)
            + rate_pairs
            + if count_pass { pairs } else { 0 },
        done: 0,
        tty: std::io::stderr().is_terminal(),
        start: Instant::now(),
    };
    let timer_ns = measure::timer_cost_ns();
    let reference_time = settings
        .duration
        .clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut cacheline = Vec::new();
    let mut memcpy = vec![Vec::new(); settings.sizes.len()];
    let cells_n = settings.transports.len() * settings.sizes.len();
    let mut ping_runs: Vec<Vec<Result<RunFigures, String>>> = vec![Vec::new(); cells_n];
    let mut stream_runs: Vec<Vec<Result<RunFigures, String>>> = vec![Vec::new(); cells_n];
    let sizes_n = settings.sizes.len();
    let mut ref_ping_runs: Vec<Vec<Result<RunFigures, String>>> = vec![Vec::new(); sizes_n];
    let mut ref_stream_runs: Vec<Vec<Result<RunFigures, String>>> = vec![Vec::new(); sizes_n];
    let pair_step = |progress: &mut Progress,
                     transport: Transport,
                     workload: Workload,
                     size: usize,
                     run: usize|
     -> Result<RunFigures, String> {
        progress.step(&format!(
            "{} {} {}, run {run}/{}",
            match workload {
                Workload::PingPong => "ping-pong",
                Workload::Stream => "streaming",
                Workload::Rate => "fixed rate",
            },
            transport.name(),
            size_name(size),
            settings.runs
        ));
        let result = pair::measure_pair(&context, transport, workload, size, false);
        if let Err(why) = &result {
            progress.finish();
            eprintln!(
                "shmsg compare: {} {}: {why}",
                transport.name(),
                size_name(size)
            );
        }
        result
    };
    for run in 1..=settings.runs {
        progress.step(&format!(
            "reference: cache line between two cores, run {run}/{}",
            settings.runs
        ));
        cacheline.push(measure::cacheline_round_trip(pins, reference_time));
        for (i, &size) in settings.sizes.iter().enumerate() {
            progress.step(&format!(
                "reference: memcpy of {}, run {run}/{}",
                size_name(size),
                settings.runs
            ));
            memcpy[i].push(measure::memcpy_rate(pins.0, size, reference_time));
        }
        for (i, &size) in settings.sizes.iter().enumerate() {
            for workload in [Workload::PingPong, Workload::Stream] {
                let result = pair_step(&mut progress, Transport::RefRing, workload, size, run);
                match workload {
                    Workload::PingPong => ref_ping_runs[i].push(result),
                    _ => ref_stream_runs[i].push(result),
                }
            }
        }
        for (t, &transport) in settings.transports.iter().enumerate() {
            for (s, &size) in settings.sizes.iter().enumerate() {
                let cell = t * settings.sizes.len() + s;
                for workload in [Workload::PingPong, Workload::Stream] {
                    let result = match transport.streaming_only() {
                        Some(why) if !measured(workload, transport) => Err(why.to_string()),
                        _ => pair_step(&mut progress, transport, workload, size, run),
                    };
                    match workload {
                        Workload::PingPong => ping_runs[cell].push(result),
                        _ => stream_runs[cell].push(result),
                    }
                }
            }
        }
    }
    let rate = settings.rate.map(|per_s| {
        let size = settings.rate_size();
        let results = rate_transports
            .iter()
            .map(|&transport| {
                let result = pair_step(&mut progress, transport, Workload::Rate, size, 1);
                RateResult {
                    transport,
                    latency_ns: result
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|r| r.rate.ok_or_else(|| "no latencies recorded".into()))
                        .map(|q| q.map(|v| v as f64)),
                    received_per_s: result.map(|r| r.main),
                }
            })
            .collect();
        RateReport {
            per_s,
            size,
            window: settings.duration * settings.runs as u32,
            results,
        }
    });
    let mut ping_calls = vec![None; cells_n];
    let mut stream_calls = vec![None; cells_n];
    if count_pass {
        for (t, &transport) in settings.transports.iter().enumerate() {
            for (s, &size) in settings.sizes.iter().enumerate() {
                let cell = t * settings.sizes.len() + s;
                for workload in [Workload::PingPong, Workload::Stream] {
                    if !measured(workload, transport) {
                        continue;
                    }
                    progress.step(&format!(
                        "counting system calls: {} {} {}",
                        if workload == Workload::PingPong {
                            "ping-pong"
                        } else {
                            "streaming"
                        },
                        transport.name(),
                        size_name(size)
                    ));
                    let counted =
                        match pair::measure_pair(&context, transport, workload, size, true) {
                            Ok(figures) => figures
                                .syscalls
                                .unwrap_or_else(|| Err("the peers did not count".into())),
                            Err(why) => Err(format!("the counting run failed: {why}")),
                        };
                    match workload {
                        Workload::PingPong => ping_calls[cell] = Some(counted),
                        _ => stream_calls[cell] = Some(counted),
                    }
                }
            }
        }
    }
    progress.finish();
    let not_counted = |calls: Option<Result<f64, String>>| -> Figure {
        match (calls, &syscall_method) {
            (Some(result), _) => result,
            (None, Err(why)) => Err(why.clone()),
            (None, Ok(_)) => Err("not counted".into()),
        }
    };
    let mut cells = Vec::new();
    for (t, &transport) in settings.transports.iter().enumerate() {
        for (s, &size) in settings.sizes.iter().enumerate() {
            let cell = t * settings.sizes.len() + s;
            cells.push(Cell {
                transport,
                size,
                ping: ping_figures(
                    &ping_runs[cell],
                    match transport.streaming_only() {
                        Some(why) => Err(why.into()),
                        None => not_counted(ping_calls[cell].take()),
                    },
                ),
                stream: stream_figures(&stream_runs[cell], not_counted(stream_calls[cell].take())),
            });
        }
    }
    let report = Report {
        settings: settings.clone(),
        machine: Machine::describe(),
        timer_ns,
        syscall_method,
        cacheline_ns: Spread::of(&cacheline).ok_or_else(|| "the reference did not run".to_string()),
        memcpy: settings
            .sizes
            .iter()
            .zip(&memcpy)
            .map(|(&size, rates)| {
                (
                    size,
                    Spread::of(rates).ok_or_else(|| "the reference did not run".to_string()),
                )
            })
            .collect(),
        cells,
        ring_ref: settings
            .sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Cell {
                transport: Transport::RefRing,
                size,
                ping: ping_figures(
                    &ref_ping_runs[i],
                    Err(
                        "not counted: spins only, no system call per message by construction"
                            .into(),
                    ),
                ),
                stream: stream_figures(
                    &ref_stream_runs[i],
                    Err(
                        "not counted: spins only, no system call per message by construction"
                            .into(),
                    ),
                ),
            })
            .collect(),
        rate,
        wall_s: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print!("{}", export::to_json(&report));
    } else {
        print!("{}", report::preamble(&report));
        println!();
        println!("The classic comparison, measured:");
        print!("{}", report::classic_table(&report));
        println!();
        print!("{}", report::detail_tables(&report));
        println!();
        if report.rate.is_some() {
            print!("{}", report::rate_table(&report));
            println!();
        }
    }
    write_files(&args.out, &report)?;
    let wrote = format!(
        "wrote {}, {} and {} in {:.0} s",
        args.out.join("compare.json").display(),
        args.out.join("compare.csv").display(),
        args.out.join("compare.svg").display(),
        report.wall_s
    );
    // With --json, stdout holds the JSON document and nothing else.
    if args.json {
        eprintln!("shmsg compare: {wrote}");
    } else {
        println!("{wrote}");
    }
    Ok(())
}

fn write_files(out: &Path, report: &Report) -> Result<(), Failure> {
    for (name, text) in [
        ("compare.json", export::to_json(report)),
        ("compare.csv", export::to_csv(report)),
        ("compare.svg", plot::svg(report)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io(format!(
            "cannot write {} (pick another directory with --out)",
            path.display()
        )))?;
    }
    Ok(())
}

fn median_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    Spread::of(&values.collect::<Vec<_>>()).map(|s| s.median)
}

/// The first failure of `runs`, for a figure no run produced.
fn first_failure(runs: &[Result<RunFigures, String>]) -> String {
    runs.iter()
        .find_map(|r| r.as_ref().err().cloned())
        .unwrap_or_else(|| "no run".into())
}

fn kernel_of(ok: &[&RunFigures], syscalls: Figure, why: &str) -> Kernel {
    Kernel {
        syscalls,
        voluntary_switches: median_of(ok.iter().map(|r| r.voluntary))
            .ok_or_else(|| why.to_string()),
        // Summed over the runs: getrusage splits user and kernel time by
        // sampling at the scheduler tick, too coarse for one short window.
        kernel_share: {
            let (kernel, total) = ok
                .iter()
                .fold((0, 0), |(k, t), r| (k + r.cpu_ns.0, t + r.cpu_ns.1));
            if ok.is_empty() {
                Err(why.to_string())
            } else if total == 0 {
                Err("getrusage reported no CPU time in the windows (raise --duration)".into())
            } else {
                Ok(kernel as f64 / total as f64)
            }
        },
    }
}

fn ping_figures(runs: &[Result<RunFigures, String>], syscalls: Figure) -> PingPong {
    let ok: Vec<&RunFigures> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
    let why = first_failure(runs);
    let tails: Vec<(f64, f64, u64, u64)> = ok.iter().filter_map(|r| r.tail).collect();
    PingPong {
        round_trip_ns: Spread::of(&ok.iter().map(|r| r.main).collect::<Vec<_>>())
            .ok_or_else(|| why.clone()),
        p99_ns: median_of(tails.iter().map(|t| t.0)).ok_or_else(|| why.clone()),
        p999_ns: median_of(tails.iter().map(|t| t.1)).ok_or_else(|| why.clone()),
        batch: tails.iter().map(|t| t.2).max().unwrap_or(0),
        samples: tails.iter().map(|t| t.3).sum(),
        kernel: kernel_of(&ok, syscalls, &why),
    }
}

fn stream_figures(runs: &[Result<RunFigures, String>], syscalls: Figure) -> Stream {
    let ok: Vec<&RunFigures> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
    let why = first_failure(runs);
    Stream {
        messages_per_s: Spread::of(&ok.iter().map(|r| r.main).collect::<Vec<_>>())
            .ok_or_else(|| why.clone()),
        messages: ok.iter().map(|r| r.messages).sum(),
        kernel: kernel_of(&ok, syscalls, &why),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_estimates_the_time_left_from_the_steps_so_far() {
        use super::progress_line;
        use std::time::Duration;
        // Nothing finished yet: no estimate.
        assert_eq!(
            progress_line(1, 10, Duration::ZERO, "shm 8 B"),
            "[1/10] 0 s: shm 8 B"
        );
        // 4 steps took 20 s: 5 s each, 7 more to go (this one included).
        assert_eq!(
            progress_line(5, 10, Duration::from_secs(20), "tcp 1M"),
            "[5/10] 20 s, about 30 s left: tcp 1M"
        );
        assert_eq!(
            progress_line(10, 10, Duration::from_secs(45), "last"),
            "[10/10] 45 s, about 5 s left: last"
        );
    }

    use super::*;

    #[test]
    fn defaults_quick_and_overrides() {
        let cpus = [0, 1, 2];
        let s = resolve(&CompareArgs::default(), &cpus).unwrap();
        assert_eq!(s.transports, Transport::ALL);
        assert_eq!(s.sizes.len(), 7);
        assert_eq!((s.runs, s.pinned), (5, Some((0, 1))));
        let quick = CompareArgs {
            quick: true,
            ..CompareArgs::default()
        };
        let s = resolve(&quick, &cpus).unwrap();
        assert_eq!(s.sizes, [8, 1024, 65536, 1 << 20]);
        assert_eq!((s.runs, s.duration), (3, Duration::from_millis(50)));
        let args = CompareArgs {
            quick: true,
            transports: vec![Transport::Tcp, Transport::Shm, Transport::Tcp],
            sizes: vec![64, 8, 64],
            runs: Some(1),
            cpus: vec![2, 1],
            ..CompareArgs::default()
        };
        let s = resolve(&args, &cpus).unwrap();
        assert_eq!(s.transports, [Transport::Shm, Transport::Tcp]);
        assert_eq!(
            (s.sizes.as_slice(), s.runs, s.pinned),
            (&[8, 64][..], 1, Some((2, 1)))
        );
        let one_cpu = resolve(&CompareArgs::default(), &[0]).unwrap();
        assert_eq!(one_cpu.pinned, None);
        let unpinned = CompareArgs {
            no_pin: true,
            ..CompareArgs::default()
        };
        assert_eq!(resolve(&unpinned, &cpus).unwrap().pinned, None);
        for bad in [
            CompareArgs {
                runs: Some(0),
                ..CompareArgs::default()
            },
            CompareArgs {
                cpus: vec![1, 1],
                ..CompareArgs::default()
            },
            CompareArgs {
                cpus: vec![0, 7],
                ..CompareArgs::default()
            },
            CompareArgs {
                duration: Some(Duration::ZERO),
                ..CompareArgs::default()
            },
        ] {
            assert!(resolve(&bad, &cpus).is_err(), "{bad:?}");
        }
    }
}
