//! `shmsg demo` and the ring's worker roles `shmsg peer produce|consume|stream|echo`.
//!
//! The demo streams fixed-size messages through a named shared-memory ring
//! from a child process three ways (`send`, `send_with` in place,
//! `send_batch`), times ping-pong round trips, and prints them beside one
//! cache line bouncing between two cores. The worker roles serve the demo
//! and the cross-process tests (`tests/cross_process.rs`), which rely on
//! their flags and exit codes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use shmsg::Error;
use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};
use shmsg::workload::Workload;

use crate::failure::Failure;
use shmsg_bench_support::cpu::{cpu_pair, pin};
use shmsg_bench_support::message::{check, fill};
use shmsg_bench_support::reference::cacheline_round_trips;
use shmsg_bench_support::stats::{Spread, median};

/// How a streaming producer hands messages to the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SendMode {
    /// Fill a buffer, then `send` it (one copy into the ring).
    Copy,
    /// `send_with`: fill the message inside the ring.
    InPlace,
    /// Fill a batch of buffers, then `send_batch` them.
    Batch,
}

/// Messages per `send_batch` in the batch mode.
const BATCH: usize = 32;

/// A `shmsg::workload` stream through a region, named or received over a
/// Unix socket.
#[derive(clap::Args)]
pub struct WorkloadArgs {
    /// The region's name.
    #[arg(long, required_unless_present = "socket", conflicts_with = "socket")]
    region: Option<String>,
    /// Connect to this Unix socket and receive the region's descriptor there.
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    max_len: usize,
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
    #[arg(long, default_value_t = 0)]
    start: u64,
}

impl WorkloadArgs {
    fn open(&self) -> Result<(Arc<Region>, Workload), Failure> {
        let workload = Workload {
            seed: self.seed,
            max_len: self.max_len,
        };
        let region = match (&self.region, &self.socket) {
            (Some(name), _) => Region::open(name)?,
            (None, Some(path)) => {
                let socket =
                    std::os::unix::net::UnixStream::connect(path).map_err(|e| Error::Io {
                        context: format!("cannot connect to {}", path.display()),
                        source: e,
                    })?;
                Region::receive_from(&socket)?
            }
            (None, None) => unreachable!("clap requires --region or --socket"),
        };
        Ok((Arc::new(region), workload))
    }
}

#[derive(Subcommand)]
pub enum PeerRole {
    /// Send workload messages `start .. start + count` into a region.
    Produce(WorkloadArgs),
    /// Receive and verify workload messages `start ..` until the producer is
    /// gone, or `count` of them; print how many arrived.
    Consume(WorkloadArgs),
    /// Send `count` fixed-size messages, each byte written (sequence number first).
    Stream {
        #[arg(long)]
        region: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        cpu: Option<usize>,
        #[arg(long, value_enum, default_value_t = SendMode::Copy)]
        mode: SendMode,
    },
    /// Echo `count` messages from one region into another.
    Echo {
        #[arg(long)]
        inbound: String,
        #[arg(long)]
        outbound: String,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        cpu: Option<usize>,
    },
}

/// Runs one of the ring's worker roles.
pub fn peer(role: PeerRole) -> Result<(), Failure> {
    match role {
        PeerRole::Produce(args) => {
            let (region, workload) = args.open()?;
            let mut producer = Producer::attach(&region)?;
            for seq in args.start..args.start.saturating_add(args.count) {
                let len = workload.len(seq);
                producer.send_with(len, |buf| {
                    workload.fill(seq, buf);
                    len
                })?;
            }
            Ok(())
        }
        PeerRole::Consume(args) => {
            let (region, workload) = args.open()?;
            let mut consumer = Consumer::attach(&region)?;
            let mut buf = Vec::new();
            let mut received = 0;
            while received < args.count {
                match consumer.recv(&mut buf) {
                    Ok(_) => {}
                    Err(Error::Disconnected) => break,
                    Err(error) => return Err(error.into()),
                }
                let seq = args.start + received;
                if let Err(mismatch) = workload.verify(seq, &buf) {
                    return Err(Failure::Verify(format!("message {seq}: {mismatch}")));
                }
                received += 1;
            }
            println!("{received}");
            Ok(())
        }
        PeerRole::Stream {
            region,
            size,
            count,
            cpu,
            mode,
        } => {
            pin(cpu);
            let region = Arc::new(Region::open(&region)?);
            let mut producer = Producer::attach(&region)?;
            match mode {
                SendMode::Copy => {
                    let mut message = vec![0u8; size];
                    for seq in 0..count {
                        fill(seq, &mut message);
                        producer.send(&message)?;
                    }
                }
                SendMode::InPlace => {
                    for seq in 0..count {
                        producer.send_with(size, |buf| {
                            fill(seq, buf);
                            buf.len()
                        })?;
                    }
                }
                SendMode::Batch => {
                    let mut batch = vec![vec![0u8; size]; BATCH];
                    let mut seq = 0;
                    while seq < count {
                        let n = (count - seq).min(BATCH as u64) as usize;
                        for (i, message) in batch[..n].iter_mut().enumerate() {
                            fill(seq + i as u64, message);
                        }
                        producer.send_batch(&batch[..n])?;
                        seq += n as u64;
                    }
                }
            }
            Ok(())
        }
        PeerRole::Echo {
            inbound,
            outbound,
            count,
            cpu,
        } => {
            pin(cpu);
            let inbound = Arc::new(Region::open(&inbound)?);
            let outbound = Arc::new(Region::open(&outbound)?);
            let mut consumer = Consumer::attach(&inbound)?;
            let mut producer = Producer::attach(&outbound)?;
            let mut buf = Vec::new();
            for _ in 0..count {
                consumer.recv(&mut buf)?;
                producer.send(&buf)?;
            }
            Ok(())
        }
    }
}

fn spawn_peer(args: &[String]) -> Result<std::process::Child, Failure> {
    let exe = std::env::current_exe().map_err(|e| Error::Io {
        context: "cannot find this executable to spawn the peer".into(),
        source: e,
    })?;
    Command::new(exe)
        .arg("peer")
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| {
            Failure::Shmsg(Error::Io {
                context: "cannot spawn the peer process".into(),
                source: e,
            })
        })
}

fn wait_peer(mut child: std::process::Child) -> Result<(), Failure> {
    let status = child.wait().map_err(|e| Error::Io {
        context: "waiting for the peer process".into(),
        source: e,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Verify(format!(
            "the peer process failed: {status}"
        )))
    }
}

/// The two CPUs the demo pins its two sides to, if the process may run on
/// two: decided once, before any pinning narrows the process's own mask.
/// How the demo's two sides are placed, for its first line.
fn pinning(here: Option<usize>, there: Option<usize>) -> String {
    match (here, there) {
        (Some(here), Some(there)) => format!("sides pinned to CPUs {here} and {there}"),
        _ => "sides not pinned".to_owned(),
    }
}

fn cpus() -> (Option<usize>, Option<usize>) {
    static CPUS: std::sync::OnceLock<(Option<usize>, Option<usize>)> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| cpu_pair().map_or((None, None), |[a, b]| (Some(a), Some(b))))
}

/// Streams `count` messages of `size` bytes from a child process; returns
/// messages per second.
fn stream_once(count: u64, size: usize, mode: SendMode) -> Result<f64, Failure> {
    let name = format!("demo-stream-{}", std::process::id());
    let geometry = Geometry::for_max_message(size, 1 << 20)?;
    let region = Arc::new(Region::create(&name, geometry)?);
    let mut consumer = Consumer::attach(&region)?;
    let (here, there) = cpus();
    pin(here);
    let child = spawn_peer(&[
        "stream".into(),
        "--region".into(),
        name,
        "--size".into(),
        size.to_string(),
        "--count".into(),
        count.to_string(),
        "--cpu".into(),
        there.map_or("0".into(), |c| c.to_string()),
        "--mode".into(),
        format!("{mode:?}")
            .to_lowercase()
            .replace("inplace", "in-place"),
    ])?;
    // The clock starts at the first message, so process start-up is excluded.
    let mut child = child;
    let mut ok = first_message(&mut consumer, &mut child, |buf| check(0, buf, size))?;
    let start = Instant::now();
    for seq in 1..count {
        ok &= consumer.recv_with(|buf| check(seq, buf, size))?;
    }
    let elapsed = start.elapsed();
    wait_peer(child)?;
    if !ok {
        return Err(Failure::Verify(
            "a streamed message was not the one sent".into(),
        ));
    }
    Ok((count - 1) as f64 / elapsed.as_secs_f64())
}

/// Waits for the first message from a child that has yet to attach, giving
/// up if the child exits first (it then never attaches, so the ring alone
/// cannot tell that it is gone).
fn first_message<R>(
    consumer: &mut Consumer,
    child: &mut std::process::Child,
    read: impl Fn(&[u8]) -> R,
) -> Result<R, Failure> {
    loop {
        match consumer.recv_with_timeout(Duration::from_millis(50), &read) {
            Err(Error::Timeout) => {}
            other => return Ok(other?),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::Verify(format!(
                "the peer process exited before sending: {status}"
            )));
        }
    }
}

/// Times `count` round trips of `size`-byte messages through a child that
/// echoes them; returns nanoseconds per round trip.
fn pingpong_once(count: u64, size: usize) -> Result<f64, Failure> {
    let out_name = format!("demo-ping-{}", std::process::id());
    let in_name = format!("demo-pong-{}", std::process::id());
    let geometry = Geometry::new(1 << 16, 1 << 10)?;
    let out_region = Arc::new(Region::create(&out_name, geometry)?);
    let in_region = Arc::new(Region::create(&in_name, geometry)?);
    let mut producer = Producer::attach(&out_region)?;
    let mut consumer = Consumer::attach(&in_region)?;
    let (here, there) = cpus();
    pin(here);
    let warm_up = count / 10;
    let child = spawn_peer(&[
        "echo".into(),
        "--inbound".into(),
        out_name,
        "--outbound".into(),
        in_name,
        "--count".into(),
        (count + warm_up).to_string(),
        "--cpu".into(),
        there.map_or("0".into(), |c| c.to_string()),
    ])?;
    let mut message = vec![0u8; size];
    let mut reply = Vec::with_capacity(size);
    let mut child = child;
    fill(0, &mut message);
    producer.send(&message)?;
    first_message(&mut consumer, &mut child, |buf| check(0, buf, size))?;
    let mut start = Instant::now();
    for seq in 1..count + warm_up {
        if seq == warm_up {
            start = Instant::now();
        }
        fill(seq, &mut message);
        producer.send(&message)?;
        consumer.recv(&mut reply)?;
        if !check(seq, &reply, size) {
            return Err(Failure::Verify(format!("echo {seq} came back wrong")));
        }
    }
    let elapsed = start.elapsed();
    wait_peer(child)?;
    Ok(elapsed.as_nanos() as f64 / count as f64)
}

/// Runs `shmsg demo`.
pub fn demo(messages: u64, size: usize, round_trips: u64, runs: usize) -> Result<(), Failure> {
    let messages = messages.max(2);
    let round_trips = round_trips.max(1);
    let (here, there) = cpus();
    if here.is_none() {
        println!("(fewer than two CPUs: both sides share one, and the figures show it)");
    }
    println!(
        "shmsg demo: two processes, {}; median of {runs} runs, measured in turn",
        pinning(here, there)
    );
    let modes = [
        (SendMode::Copy, "send per message"),
        (SendMode::InPlace, "send_with, in place"),
        (SendMode::Batch, "send_batch of 32"),
    ];
    let mut rates = vec![Vec::new(); modes.len()];
    let mut trips = Vec::new();
    let mut lines = Vec::new();
    // Interleaved, so that a noisy moment spreads over all measurements.
    for _ in 0..runs {
        for (rates, &(mode, _)) in rates.iter_mut().zip(&modes) {
            rates.push(stream_once(messages, size, mode)?);
        }
        trips.push(pingpong_once(round_trips, 8)?);
        // Two threads on two cores bouncing one cache line.
        let (here, there) = cpus();
        pin(here);
        lines.push(cacheline_round_trips(there, 0, round_trips));
    }
    let spread = |v: &[f64], scale: f64| match Spread::of(v) {
        Some(s) => format!("{:.1} .. {:.1}", s.min / scale, s.max / scale),
        None => String::new(),
    };
    let row = |what: String, median: String, spread: String| {
        println!("{what:<46} {median:>14} {spread:>18}");
    };
    println!();
    row("measurement".into(), "median".into(), "min .. max".into());
    for (rates, &(_, how)) in rates.iter().zip(&modes) {
        let rate = median(rates);
        row(
            format!("stream {size}-byte messages, {how}"),
            format!("{:.1} M msg/s", rate / 1e6),
            spread(rates, 1e6),
        );
        row(
            "  as bytes".into(),
            format!("{:.2} GB/s", rate * size as f64 / 1e9),
            String::new(),
        );
    }
    let trip = median(&trips);
    let line = median(&lines);
    row(
        "ping-pong round trip, 8-byte messages".into(),
        format!("{trip:.0} ns"),
        spread(&trips, 1.0),
    );
    row(
        "reference: one cache line between two cores".into(),
        format!("{line:.0} ns"),
        spread(&lines, 1.0),
    );
    row(
        "round trip / cache-line reference".into(),
        format!("{:.2}x", trip / line),
        String::new(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pinning_names_the_cpus_not_options() {
        assert_eq!(
            super::pinning(Some(0), Some(1)),
            "sides pinned to CPUs 0 and 1"
        );
        assert_eq!(super::pinning(None, None), "sides not pinned");
    }
}
