//! `shmsg peer bench`: the two processes of one `shmsg compare`
//! measurement. Every transport goes through the common interface
//! (`shmsg::listen` / `shmsg::connect` and the `Sender` / `Receiver`
//! traits), so the figures compare the transports, not the code around
//! them; the rings are also measured used in place, and the reference ring
//! beside them.
//!
//! Roles, in pairs: `ping` (times round trips) with `echo`, `send`
//! (streams) with `recv` (times the stream), and `rate-send` (sends at a
//! fixed rate, each message stamped with the time it was due) with
//! `rate-recv` (records each message's latency from that time in an
//! HdrHistogram: the coordinated-omission-free method, since a send that
//! stalls delays every message due behind it). `--link` says how the two
//! are joined (`links.rs`): the common interface, the rings used in place,
//! or the reference ring; the roles are written once for all. `--batch N`
//! (the `shm-batch` row) makes the `send` role over `--link channel` hand
//! `N` filled messages at a time to `send_batch`; `send` and `recv` also
//! report how many messages they sent and checked in all (`sent`,
//! `checked`), warm-up included. The listening side prints
//! `ready ENDPOINT` on stdout once it listens (not for `pipe`, whose stdin
//! and stdout are the channel). Each side writes what it measured as
//! `key value` lines into its `--report` file.
//!
//! Every message is written whole by its sender (its sequence number, then
//! a byte pattern) and read whole and checked by its receiver; a message of
//! 0 bytes ends the run. Each side excludes a warm-up from its window, and
//! reads the clock only every so many messages inside it, so that the
//! clock's cost stays out of the figures.
//!
//! (Over 600 lines: the six roles are one function over one [`Link`] so
//! that each is written once for every transport.)

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use shmsg::Error;

use shmsg_bench_support::cpu::pin;
use shmsg_bench_support::message::{STAMPED_MIN, check, check_stamped, fill, fill_stamped};
use shmsg_bench_support::stats::quantile;

use super::links::{ChannelLink, InPlaceLink, Link, LinkKind, MAX_BATCH, RefRingLink};
use super::measure::{SyscallCounter, Usage, timer_cost_ns};
use crate::failure::Failure;
use crate::types::STREAM_BATCH_BYTES;
use crate::units::size_name;

/// What one side of a pair does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchRole {
    /// Sends a message, waits for it to come back, checks it; times each
    /// round trip (or batch of them).
    Ping,
    /// Receives and checks each message, and sends it back.
    Echo,
    /// Streams messages as fast as the channel takes them.
    Send,
    /// Receives and checks the stream, and times it.
    Recv,
    /// Sends at a fixed rate (`--interval-ns`), each message stamped with
    /// the time it was due.
    RateSend,
    /// Receives and checks the stamped messages, and records each one's
    /// latency from the time it was due (HdrHistogram).
    RateRecv,
}

/// `shmsg peer bench` flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// This side's role.
    #[arg(long, value_enum)]
    pub role: BenchRole,
    /// The endpoint to listen on (with `--listen`) or connect to.
    #[arg(long)]
    pub endpoint: String,
    /// Listen and accept one peer instead of connecting.
    #[arg(long)]
    pub listen: bool,
    /// Bytes per message (at least 1: a 0-byte message ends the run).
    #[arg(long)]
    pub size: usize,
    /// Length of the timed window in milliseconds.
    #[arg(long)]
    pub duration_ms: u64,
    /// Untimed warm-up before the window, in milliseconds.
    #[arg(long)]
    pub warmup_ms: u64,
    /// The CPU to pin this process to.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Where to write the measurements.
    #[arg(long)]
    pub report: PathBuf,
    /// Count system calls in the window (perf tracepoint counter).
    #[arg(long)]
    pub count_syscalls: bool,
    /// How the two sides are joined.
    #[arg(long, value_enum, default_value_t = LinkKind::Channel)]
    pub link: LinkKind,
    /// Rate roles: nanoseconds between two messages' intended send times.
    #[arg(long, default_value_t = 0)]
    pub interval_ns: u64,
    /// Send role, `--link channel` only: messages per `send_batch` call
    /// (1: one `send` per message), at most 64.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
}

/// The counters of this side's window.
struct Counters {
    syscalls: Option<Result<SyscallCounter, String>>,
    /// System calls one clock reading makes (0 where the clock is in the vDSO).
    clock_syscalls: f64,
}

/// Counter readings at the start of a window.
struct Mark {
    calls: Option<u64>,
    usage: Usage,
    at: Instant,
}

/// The window of a side that answers (echo, recv): it begins at the first
/// poll after `warmup` has passed since the first one. The clock is read
/// only at polls, and only before the window begins.
struct Window<'a> {
    counters: &'a Counters,
    warmup: Duration,
    first: Option<Instant>,
    /// The counters and the message count where the window began.
    begun: Option<(Mark, u64)>,
}

impl<'a> Window<'a> {
    fn new(counters: &'a Counters, warmup: Duration) -> Window<'a> {
        Window {
            counters,
            warmup,
            first: None,
            begun: None,
        }
    }

    /// After message `seq`: begins the window if the warm-up is over.
    fn poll(&mut self, seq: u64) {
        if self.begun.is_some() {
            return;
        }
        match self.first {
            None => self.first = Some(Instant::now()),
            Some(at) if at.elapsed() >= self.warmup => {
                self.begun = Some((self.counters.begin(), seq));
            }
            Some(_) => {}
        }
    }

    /// What the window measured, ending after `seq` messages (nothing if it
    /// never began).
    fn end(self, seq: u64) -> Measured {
        match self.begun {
            Some((mark, start)) => self.counters.end(mark, 0, seq - start),
            None => Measured::default(),
        }
    }
}

/// What one side measured in its window.
#[derive(Debug, Default)]
struct Measured {
    /// Messages (or round trips) in the window.
    messages: u64,
    elapsed_ns: u64,
    usage: Usage,
    /// System calls in the window, less the measurement's own.
    syscalls: Option<Result<u64, String>>,
}

impl Counters {
    fn new(count: bool) -> Counters {
        let syscalls = count.then(SyscallCounter::open);
        let clock_syscalls = match &syscalls {
            Some(Ok(counter)) => {
                const READS: u64 = 1000;
                match counter.read() {
                    Ok(before) => {
                        for _ in 0..READS {
                            std::hint::black_box(Instant::now());
                        }
                        counter.read().map_or(0.0, |after| {
                            after.saturating_sub(before + 1) as f64 / READS as f64
                        })
                    }
                    Err(_) => 0.0,
                }
            }
            _ => 0.0,
        };
        Counters {
            syscalls,
            clock_syscalls,
        }
    }

    fn begin(&self) -> Mark {
        let calls = match &self.syscalls {
            Some(Ok(counter)) => counter.read().ok(),
            _ => None,
        };
        let usage = Usage::now();
        Mark {
            calls,
            usage,
            at: Instant::now(),
        }
    }

    /// Ends the window begun at `mark`, in which the clock was read
    /// `clock_reads` times besides the two readings at its ends.
    fn end(&self, mark: Mark, clock_reads: u64, messages: u64) -> Measured {
        let at = Instant::now();
        let usage = Usage::now().since(mark.usage);
        let syscalls = match &self.syscalls {
            None => None,
            Some(Err(why)) => Some(Err(why.clone())),
            Some(Ok(counter)) => Some(match (mark.calls, counter.read()) {
                (Some(before), Ok(after)) => {
                    // Two getrusage calls and the closing read are ours, and
                    // so are the clock's own system calls, if it makes any.
                    let ours = 3.0 + self.clock_syscalls * (clock_reads + 2) as f64;
                    Ok((after.saturating_sub(before) as f64 - ours)
                        .max(0.0)
                        .round() as u64)
                }
                (None, _) => Err("cannot read the perf counter".into()),
                (_, Err(why)) => Err(why),
            }),
        };
        Measured {
            messages,
            elapsed_ns: at.duration_since(mark.at).as_nanos() as u64,
            usage,
            syscalls,
        }
    }
}

/// Messages between two clock readings, so that reading the clock costs
/// about one part in a thousand of streaming `size`-byte messages.
fn stride(size: usize) -> u64 {
    ((64usize << 10) / size.max(1)).clamp(1, 1024) as u64
}

fn mismatch(seq: u64, len: usize, size: usize) -> Failure {
    Failure::Verify(format!(
        "message {seq} came back wrong ({len} bytes, expected {size} bytes of its pattern)"
    ))
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the
/// machine, so that a stamp written by one process can be read by another.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_MONOTONIC exists
    // on every Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Waits until the monotonic clock reaches `at`: sleeps while more than
/// 200 us are left, then spins, so that a send starts within a clock
/// reading of its intended time.
fn wait_until(at: u64) {
    loop {
        let now = monotonic_ns();
        if now >= at {
            return;
        }
        let left = at - now;
        if left > 200_000 {
            std::thread::sleep(Duration::from_nanos(left - 100_000));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Runs one side of a measurement and writes its report.
pub fn run(args: BenchArgs) -> Result<(), Failure> {
    if args.size == 0 {
        return Err(Failure::Usage(
            "--size must be at least 1 (a 0-byte message ends the run)".into(),
        ));
    }
    let rate_role = matches!(args.role, BenchRole::RateSend | BenchRole::RateRecv);
    if rate_role && args.size < STAMPED_MIN {
        return Err(Failure::Usage(format!(
            "--size must be at least {STAMPED_MIN} for the rate roles (a sequence number and a stamp)"
        )));
    }
    if !(1..=MAX_BATCH).contains(&args.batch) {
        return Err(Failure::Usage(format!(
            "--batch {} is out of range (1 to {MAX_BATCH})",
            args.batch
        )));
    }
    if args.batch > 1 && args.size.saturating_mul(args.batch) > STREAM_BATCH_BYTES {
        return Err(Failure::Usage(format!(
            "--batch {} of --size {} would fill {} bytes per call, more than {} (the sender \
             fills a whole batch in one buffer)",
            args.batch,
            args.size,
            args.size.saturating_mul(args.batch),
            size_name(STREAM_BATCH_BYTES)
        )));
    }
    if args.batch > 1 && (args.role != BenchRole::Send || args.link != LinkKind::Channel) {
        return Err(Failure::Usage(
            "--batch above 1 is for --role send with --link channel only (send_batch of the \
             common interface)"
                .into(),
        ));
    }
    if args.role == BenchRole::RateSend && args.interval_ns == 0 {
        return Err(Failure::Usage(
            "--interval-ns must be at least 1 for the rate-send role".into(),
        ));
    }
    pin(args.cpu);
    let counters = Counters::new(args.count_syscalls);
    let listen = args.listen;
    // Each link is dropped only after `side` has written the report: for
    // the rings, the peer sees the detach only after this.
    match args.link {
        LinkKind::Channel => {
            let mut link = ChannelLink::open(&args.endpoint, listen, args.size)?;
            side(&args, &counters, &mut link)
        }
        LinkKind::InPlace | LinkKind::InPlaceMpsc => {
            let mpsc = args.link == LinkKind::InPlaceMpsc;
            let path = std::path::Path::new(&args.endpoint);
            let mut link = InPlaceLink::open(path, listen, args.size, mpsc)?;
            side(&args, &counters, &mut link)
        }
        LinkKind::RefRing => {
            let stdin = std::io::stdin();
            let mut link = RefRingLink::open(stdin.as_fd(), listen, args.size)?;
            side(&args, &counters, &mut link)
        }
    }
}

/// Runs this side's role over `link` and writes the report.
fn side<L: Link>(args: &BenchArgs, counters: &Counters, link: &mut L) -> Result<(), Failure> {
    let warmup = Duration::from_millis(args.warmup_ms);
    let duration = Duration::from_millis(args.duration_ms.max(1));
    let size = args.size;
    let mut report = String::new();
    let measured = match args.role {
        BenchRole::Ping => {
            let timer = timer_cost_ns();
            let mut seq = 0u64;
            let trip = |link: &mut L, seq: u64| -> Result<(), Failure> {
                link.send(size, |message| fill(seq, message))?;
                link.recv(|reply| check(seq, reply, size).then_some(()).ok_or(reply.len()))?
                    .map_err(|len| mismatch(seq, len, size))
            };
            let start = Instant::now();
            while seq < 16 || start.elapsed() < warmup {
                trip(link, seq)?;
                seq += 1;
            }
            let warm_ns = start.elapsed().as_nanos() as f64 / seq as f64;
            // Enough round trips per clock reading that the clock's cost is
            // under 5% of what is timed; when counting system calls, few
            // readings at all.
            let batch = if args.count_syscalls {
                ((duration.as_nanos() as f64 / warm_ns) / 16.0).max(1.0) as u64
            } else {
                ((timer * 20.0) / warm_ns).ceil().clamp(1.0, 4096.0) as u64
            };
            let estimate = (duration.as_nanos() as f64 / warm_ns / batch as f64) as usize;
            let mut times: Vec<u64> = Vec::with_capacity(estimate.clamp(16, 1 << 24) + 16);
            let mark = counters.begin();
            let mut last = mark.at;
            let mut reads = 0;
            let mut trips = 0;
            loop {
                for _ in 0..batch {
                    trip(link, seq)?;
                    seq += 1;
                }
                let now = Instant::now();
                reads += 1;
                trips += batch;
                times.push(now.duration_since(last).as_nanos() as u64 / batch);
                last = now;
                if now.duration_since(mark.at) >= duration {
                    break;
                }
            }
            let measured = counters.end(mark, reads, trips);
            link.finish()?;
            times.sort_unstable();
            let q = |p: f64| quantile(&times, p).unwrap_or(0);
            let _ = writeln!(report, "timer_ns {timer:.1}");
            let _ = writeln!(report, "batch {batch}");
            let _ = writeln!(report, "samples {}", times.len());
            let _ = writeln!(report, "p50_ns {}", q(0.5));
            let _ = writeln!(report, "p99_ns {}", q(0.99));
            let _ = writeln!(report, "p999_ns {}", q(0.999));
            measured
        }
        BenchRole::Echo => {
            let mut seq = 0u64;
            let mut window = Window::new(counters, warmup);
            loop {
                match link.echo(|message| check(seq, message, size))? {
                    None => break,
                    Some(Err(len)) => return Err(mismatch(seq, len, size)),
                    Some(Ok(())) => {}
                }
                seq += 1;
                if seq % 16 == 1 {
                    window.poll(seq);
                }
            }
            window.end(seq)
        }
        BenchRole::Send => {
            let stride = stride(size);
            let batch = args.batch;
            let mut seq = 0u64;
            // One clock reading per `stride` messages; with `--batch`, per
            // as many whole batches as make at least `stride`.
            let burst = |link: &mut L, seq: &mut u64| -> Result<(), Failure> {
                if batch > 1 {
                    for _ in 0..stride.div_ceil(batch as u64) {
                        let first = *seq;
                        link.send_batch(size, batch, |i, message| fill(first + i as u64, message))?;
                        *seq += batch as u64;
                    }
                    return Ok(());
                }
                for _ in 0..stride {
                    let s = *seq;
                    link.send(size, |message| fill(s, message))?;
                    *seq += 1;
                }
                Ok(())
            };
            let start = Instant::now();
            while start.elapsed() < warmup {
                burst(link, &mut seq)?;
            }
            let mark = counters.begin();
            let first = seq;
            let mut reads = 0;
            loop {
                burst(link, &mut seq)?;
                reads += 1;
                if mark.at.elapsed() >= duration {
                    break;
                }
            }
            let measured = counters.end(mark, reads, seq - first);
            link.finish()?;
            // Every message sent, warm-up included: the receiver's
            // `checked` must match it.
            let _ = writeln!(report, "sent {seq}");
            measured
        }
        BenchRole::Recv => {
            let stride = stride(size);
            let mut seq = 0u64;
            let mut window = Window::new(counters, warmup);
            loop {
                let got = link.recv(|message| {
                    (!message.is_empty())
                        .then(|| check(seq, message, size).then_some(()).ok_or(message.len()))
                })?;
                match got {
                    None => break,
                    Some(Err(len)) => return Err(mismatch(seq, len, size)),
                    Some(Ok(())) => {}
                }
                seq += 1;
                if seq == 1 || seq.is_multiple_of(stride) {
                    window.poll(seq);
                }
            }
            // Every message received, each checked whole, in order.
            let _ = writeln!(report, "checked {seq}");
            window.end(seq)
        }
        BenchRole::RateSend => {
            // Message `seq` is due at `start + seq * interval`, whether or
            // not the sends before it kept up: its stamp is that intended
            // time, so a stalled send delays the latency of every message
            // due behind it (no coordinated omission).
            let interval = args.interval_ns;
            let start = monotonic_ns() + 1_000_000;
            let stop = start + (warmup + duration).as_nanos() as u64;
            let mark = counters.begin();
            let mut seq = 0u64;
            let mut late_max = 0u64;
            loop {
                let due = start + seq * interval;
                if due >= stop {
                    break;
                }
                wait_until(due);
                late_max = late_max.max(monotonic_ns() - due);
                link.send(size, |message| fill_stamped(seq, due, message))?;
                seq += 1;
            }
            let measured = counters.end(mark, seq, seq);
            link.finish()?;
            let _ = writeln!(report, "rate_late_max_ns {late_max}");
            measured
        }
        BenchRole::RateRecv => {
            let mut latencies =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600 * 1_000_000_000, 3)
                    .map_err(|e| Failure::Usage(format!("cannot make the histogram: {e}")))?;
            let warmup_ns = warmup.as_nanos() as u64;
            let mut seq = 0u64;
            let mut record_from = None;
            let mut window: Option<(u64, u64)> = None;
            loop {
                let got = link.recv(|message| {
                    (!message.is_empty())
                        .then(|| check_stamped(seq, message, size).ok_or(message.len()))
                })?;
                let now = monotonic_ns();
                let due = match got {
                    None => break,
                    Some(Err(len)) => return Err(mismatch(seq, len, size)),
                    Some(Ok(due)) => due,
                };
                seq += 1;
                // Messages due in the sender's warm-up are not recorded.
                let from = *record_from.get_or_insert(due.saturating_add(warmup_ns));
                if due >= from {
                    latencies.saturating_record(now.saturating_sub(due).max(1));
                    window = Some((window.map_or(now, |w| w.0), now));
                }
            }
            if !latencies.is_empty() {
                let _ = writeln!(report, "rate_p50_ns {}", latencies.value_at_quantile(0.5));
                let _ = writeln!(report, "rate_p99_ns {}", latencies.value_at_quantile(0.99));
                let _ = writeln!(
                    report,
                    "rate_p999_ns {}",
                    latencies.value_at_quantile(0.999)
                );
                let _ = writeln!(report, "rate_max_ns {}", latencies.max());
            }
            Measured {
                messages: latencies.len(),
                elapsed_ns: window.map_or(0, |(first, last)| last - first),
                ..Measured::default()
            }
        }
    };
    let _ = writeln!(report, "messages {}", measured.messages);
    let _ = writeln!(report, "elapsed_ns {}", measured.elapsed_ns);
    let _ = writeln!(report, "user_ns {}", measured.usage.user_ns);
    let _ = writeln!(report, "system_ns {}", measured.usage.system_ns);
    let _ = writeln!(report, "voluntary {}", measured.usage.voluntary);
    let _ = writeln!(report, "involuntary {}", measured.usage.involuntary);
    match &measured.syscalls {
        Some(Ok(n)) => {
            let _ = writeln!(report, "syscalls {n}");
        }
        Some(Err(why)) => {
            let _ = writeln!(report, "syscalls_error {}", why.replace('\n', " "));
        }
        None => {}
    }
    std::fs::write(&args.report, report).map_err(|e| Error::Io {
        context: format!("cannot write the report file {}", args.report.display()),
        source: e,
    })?;
    Ok(())
}

/// One side's report, as read back by `shmsg compare`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerReport {
    /// Messages (or round trips) in the window.
    pub messages: u64,
    /// The window's length.
    pub elapsed_ns: u64,
    /// CPU time and context switches in the window.
    pub usage: Usage,
    /// System calls in the window, if counted.
    pub syscalls: Option<Result<u64, String>>,
    /// Ping only: round trips per clock reading.
    pub batch: u64,
    /// Ping only: number of timed batches.
    pub samples: u64,
    /// Ping only: median, 99th and 99.9th percentile round trip (ns).
    pub quantiles: Option<(u64, u64, u64)>,
    /// Ping only: the clock's cost as this side measured it.
    pub timer_ns: Option<f64>,
    /// Rate-recv only: latency from the intended send time, p50, p99,
    /// p99.9 and max (ns).
    pub rate: Option<[u64; 4]>,
}

impl PeerReport {
    /// Parses a report file's text; an unknown key is ignored, a bad value
    /// is an error naming it.
    pub fn parse(text: &str) -> Result<PeerReport, String> {
        let mut report = PeerReport::default();
        let mut quantiles = (None, None, None);
        let mut rate = [None; 4];
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let number = || {
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("report line {line:?}: not a number"))
            };
            match key {
                "messages" => report.messages = number()?,
                "elapsed_ns" => report.elapsed_ns = number()?,
                "user_ns" => report.usage.user_ns = number()?,
                "system_ns" => report.usage.system_ns = number()?,
                "voluntary" => report.usage.voluntary = number()?,
                "involuntary" => report.usage.involuntary = number()?,
                "syscalls" => report.syscalls = Some(Ok(number()?)),
                "syscalls_error" => report.syscalls = Some(Err(value.to_string())),
                "batch" => report.batch = number()?,
                "samples" => report.samples = number()?,
                "p50_ns" => quantiles.0 = Some(number()?),
                "p99_ns" => quantiles.1 = Some(number()?),
                "p999_ns" => quantiles.2 = Some(number()?),
                "rate_p50_ns" => rate[0] = Some(number()?),
                "rate_p99_ns" => rate[1] = Some(number()?),
                "rate_p999_ns" => rate[2] = Some(number()?),
                "rate_max_ns" => rate[3] = Some(number()?),
                "timer_ns" => {
                    report.timer_ns = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| format!("report line {line:?}: not a number"))?,
                    );
                }
                _ => {}
            }
        }
        if let (Some(a), Some(b), Some(c)) = quantiles {
            report.quantiles = Some((a, b, c));
        }
        if let [Some(a), Some(b), Some(c), Some(d)] = rate {
            report.rate = Some([a, b, c, d]);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let text = "timer_ns 21.5\nbatch 2\nsamples 10\np50_ns 200\np99_ns 300\np999_ns 900\n\
                    messages 20\nelapsed_ns 5000\nuser_ns 1\nsystem_ns 2\nvoluntary 3\n\
                    involuntary 4\nsyscalls 40\nfuture_key 7\n";
        let r = PeerReport::parse(text).unwrap();
        assert_eq!(r.quantiles, Some((200, 300, 900)));
        assert_eq!(r.syscalls, Some(Ok(40)));
        assert_eq!(r.usage.voluntary, 3);
        assert_eq!(r.timer_ns, Some(21.5));
        assert_eq!(r.rate, None);
        let r = PeerReport::parse("rate_p50_ns 5\nrate_p99_ns 6\nrate_p999_ns 7\nrate_max_ns 8\n")
            .unwrap();
        assert_eq!(r.rate, Some([5, 6, 7, 8]));
        let r = PeerReport::parse("syscalls_error no tracefs\n").unwrap();
        assert_eq!(r.syscalls, Some(Err("no tracefs".into())));
        assert!(PeerReport::parse("messages lots\n").is_err());
    }
}
