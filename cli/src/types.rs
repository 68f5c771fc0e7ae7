//! The types the `shmsg compare` modules share: what is measured
//! ([`Transport`], [`Workload`]), what one run gives ([`RunFigures`]), and
//! the results ([`Report`] and its parts), which `report.rs` renders as
//! tables, `export.rs` as JSON and CSV, and `plot.rs` as SVG.

use shmsg_bench_support::stats::Spread;

use super::measure::Machine;

/// A measured value, or why there is none.
pub type Figure<T = f64> = Result<T, String>;

/// A transport `shmsg compare` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Transport {
    /// The shared-memory ring (`shm:NAME`), copying API (`send` copies the
    /// sender's buffer in, `recv` copies out into the receiver's).
    Shm,
    /// The rings of `shm:`, used in place: `send_with` fills the message
    /// inside the ring, `recv_with` checks it there.
    ShmInPlace,
    /// `shm:` again, streaming with `send_batch` (32 messages per call,
    /// fewer where they would exceed 1 MiB: [`Transport::batch`]; one
    /// store of the ring's tail per call); one `recv` per message.
    /// Streaming only: ping-pong and `--rate` have one message in flight.
    ShmBatch,
    /// The multi-producer shared-memory ring, one producer (`mpsc:NAME`),
    /// copying API.
    Mpsc,
    /// The rings of `mpsc:`, used in place (`send_with` / `recv_with`).
    MpscInPlace,
    /// A Unix stream socket (`unix:@NAME`).
    Unix,
    /// A Unix seqpacket socket (`seqpacket:@NAME`).
    Seqpacket,
    /// A pair of pipes (`pipe`).
    Pipe,
    /// TCP over loopback (`tcp:127.0.0.1:0`).
    Tcp,
    /// The reference ring (`shmsg_bench_support::ring`): not a transport
    /// of the library, measured beside them as the yardstick of a ring.
    #[value(skip)]
    RefRing,
}

impl Transport {
    /// Every transport, in table order.
    pub const ALL: [Transport; 9] = [
        Transport::Shm,
        Transport::ShmInPlace,
        Transport::ShmBatch,
        Transport::Mpsc,
        Transport::MpscInPlace,
        Transport::Unix,
        Transport::Seqpacket,
        Transport::Pipe,
        Transport::Tcp,
    ];

    /// The short name used in flags, tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Shm => "shm",
            Transport::ShmInPlace => "shm-in-place",
            Transport::ShmBatch => "shm-batch",
            Transport::Mpsc => "mpsc",
            Transport::MpscInPlace => "mpsc-in-place",
            Transport::Unix => "unix",
            Transport::Seqpacket => "seqpacket",
            Transport::Pipe => "pipe",
            Transport::Tcp => "tcp",
            Transport::RefRing => "ref-ring",
        }
    }

    /// The name in the classic table for its figure at messages of `size`
    /// bytes, which says which API a shared-memory figure used: "shm copy",
    /// "shm in place", "shm send_batch x32", ...
    pub fn label(self, size: usize) -> String {
        match self {
            Transport::Shm => "shm copy".into(),
            Transport::ShmInPlace => "shm in place".into(),
            Transport::ShmBatch => format!("shm send_batch x{}", self.batch(size)),
            Transport::Mpsc => "mpsc copy".into(),
            Transport::MpscInPlace => "mpsc in place".into(),
            other => other.name().into(),
        }
    }

    /// The `--link` value of `shmsg peer bench` for it.
    pub(crate) fn link_name(self) -> &'static str {
        use crate::links::LinkKind;
        match self.link() {
            LinkKind::Channel => "channel",
            LinkKind::InPlace => "in-place",
            LinkKind::InPlaceMpsc => "in-place-mpsc",
            LinkKind::RefRing => "ref-ring",
        }
    }

    /// How `shmsg peer bench` joins a pair over it.
    pub(crate) fn link(self) -> crate::links::LinkKind {
        use crate::links::LinkKind;
        match self {
            Transport::ShmInPlace => LinkKind::InPlace,
            Transport::MpscInPlace => LinkKind::InPlaceMpsc,
            Transport::RefRing => LinkKind::RefRing,
            _ => LinkKind::Channel,
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Transport::Shm => "shared-memory ring",
            Transport::ShmInPlace => "shared-memory ring, used in place",
            Transport::ShmBatch => {
                "shared-memory ring, streamed with send_batch of up to 32 (streaming only)"
            }
            Transport::Mpsc => "multi-producer shared-memory ring",
            Transport::MpscInPlace => "multi-producer shared-memory ring, used in place",
            Transport::RefRing => "reference ring (fixed slots, spin only, one copy in and out)",
            Transport::Unix => "Unix stream socket",
            Transport::Seqpacket => "Unix seqpacket socket",
            Transport::Pipe => "pair of pipes",
            Transport::Tcp => "TCP over loopback",
        }
    }

    /// Whether it belongs to the shared memory model (else message passing).
    pub fn shared_memory(self) -> bool {
        matches!(
            self,
            Transport::Shm
                | Transport::ShmInPlace
                | Transport::ShmBatch
                | Transport::Mpsc
                | Transport::MpscInPlace
                | Transport::RefRing
        )
    }

    /// Messages per `send_batch` call of the streaming sender at messages of
    /// `size` bytes (1: one `send` per message): [`STREAM_BATCH`], fewer
    /// where that many would hold more than [`STREAM_BATCH_BYTES`].
    pub fn batch(self, size: usize) -> usize {
        if self == Transport::ShmBatch {
            (STREAM_BATCH_BYTES / size.max(1)).clamp(1, STREAM_BATCH)
        } else {
            1
        }
    }

    /// Why it has no ping-pong or `--rate` figure, if it has none: a batch
    /// needs several messages in flight, and those workloads have one.
    pub fn streaming_only(self) -> Option<&'static str> {
        (self == Transport::ShmBatch).then_some(
            "streaming only: ping-pong and --rate have one message in flight, so a batch \
             is one send (the shm row measures that)",
        )
    }

    /// "shared memory", "message passing", or "reference" (the reference
    /// ring).
    pub fn model(self) -> &'static str {
        if self == Transport::RefRing {
            "reference"
        } else if self.shared_memory() {
            "shared memory"
        } else {
            "message passing"
        }
    }
}

/// Messages per `send_batch` call of the `shm-batch` row's streaming
/// sender, for messages of up to [`STREAM_BATCH_BYTES`] / 32 bytes.
pub const STREAM_BATCH: usize = 32;

/// The most bytes one `send_batch` call of the `shm-batch` row hands over:
/// the sender fills a whole batch in one buffer first, so larger messages
/// go fewer per call (one per call from 1 MiB up). A batch of 32 messages
/// of 16 MiB would take 512 MiB of the sender's memory.
pub const STREAM_BATCH_BYTES: usize = 1 << 20;

/// What the kernel did per message (streaming) or per round trip (ping-pong).
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// System calls, both processes together.
    pub syscalls: Figure,
    /// Voluntary context switches (a process blocked), both together.
    pub voluntary_switches: Figure,
    /// The share of both processes' CPU time spent in the kernel, 0 ..= 1.
    pub kernel_share: Figure,
}

impl Kernel {
    /// Nothing measured, for `why`.
    #[cfg(test)]
    pub fn missing(why: &str) -> Kernel {
        Kernel {
            syscalls: Err(why.into()),
            voluntary_switches: Err(why.into()),
            kernel_share: Err(why.into()),
        }
    }
}

/// Ping-pong figures of one transport at one size, over all runs.
#[derive(Clone, Debug, PartialEq)]
pub struct PingPong {
    /// Round trip in nanoseconds: the spread of the runs' medians.
    pub round_trip_ns: Figure<Spread>,
    /// The 99th percentile, median over runs.
    pub p99_ns: Figure,
    /// The 99.9th percentile, median over runs.
    pub p999_ns: Figure,
    /// Round trips per clock reading (1: each round trip timed alone).
    pub batch: u64,
    /// Round trips timed, all runs together.
    pub samples: u64,
    /// Kernel work per round trip.
    pub kernel: Kernel,
}

/// Streaming figures of one transport at one size, over all runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// Messages per second: the spread of the runs.
    pub messages_per_s: Figure<Spread>,
    /// Messages timed, all runs together.
    pub messages: u64,
    /// Kernel work per message.
    pub kernel: Kernel,
}

/// Everything measured for one transport at one message size.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The transport.
    pub transport: Transport,
    /// Bytes per message.
    pub size: usize,
    /// Ping-pong figures.
    pub ping: PingPong,
    /// Streaming figures.
    pub stream: Stream,
}

/// How the comparison was run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Transports measured.
    pub transports: Vec<Transport>,
    /// Message sizes in bytes, ascending.
    pub sizes: Vec<usize>,
    /// Repetitions of each measurement.
    pub runs: usize,
    /// Timed window of each run.
    pub duration: std::time::Duration,
    /// Untimed warm-up before each window.
    pub warmup: std::time::Duration,
    /// The CPUs the two processes of a pair are pinned to, if pinned.
    pub pinned: Option<(usize, usize)>,
    /// Whether system calls are counted (a separate, untimed pass).
    pub count_syscalls: bool,
    /// Whether this is `--quick`.
    pub quick: bool,
    /// `--rate`: the offered rate in messages per second, if given.
    pub rate: Option<f64>,
}

impl Settings {
    /// The message size of the `--rate` runs: the smallest of the sizes,
    /// at least 16 bytes (a sequence number and the stamp).
    pub fn rate_size(&self) -> usize {
        self.sizes
            .first()
            .copied()
            .unwrap_or(0)
            .max(shmsg_bench_support::message::STAMPED_MIN)
    }
}

/// What one transport gave at the offered rate.
#[derive(Clone, Debug, PartialEq)]
pub struct RateResult {
    /// The transport.
    pub transport: Transport,
    /// Latency from each message's intended send time: p50, p99, p99.9 and
    /// max, in nanoseconds.
    pub latency_ns: Figure<[f64; 4]>,
    /// Messages per second the receiver took in its window.
    pub received_per_s: Figure,
}

/// `compare --rate`: latency at a fixed offered rate.
#[derive(Clone, Debug, PartialEq)]
pub struct RateReport {
    /// The offered rate, messages per second.
    pub per_s: f64,
    /// Bytes per message.
    pub size: usize,
    /// Length of each transport's recorded window.
    pub window: std::time::Duration,
    /// One per transport (the reference ring last).
    pub results: Vec<RateResult>,
}

/// One comparison: settings, machine, references and cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// How it was run.
    pub settings: Settings,
    /// Where.
    pub machine: Machine,
    /// Nanoseconds one clock reading costs.
    pub timer_ns: f64,
    /// How system calls were counted, or why they were not.
    pub syscall_method: Figure<String>,
    /// Two cores bouncing one cache line: round trip in nanoseconds.
    pub cacheline_ns: Figure<Spread>,
    /// Single-core memcpy of blocks of each size: bytes per second.
    pub memcpy: Vec<(usize, Figure<Spread>)>,
    /// One per transport and size, in settings order.
    pub cells: Vec<Cell>,
    /// The reference ring, one per size (transport [`Transport::RefRing`]).
    pub ring_ref: Vec<Cell>,
    /// `--rate`: latency at a fixed offered rate, if asked for.
    pub rate: Option<RateReport>,
    /// Wall time of the whole comparison, in seconds.
    pub wall_s: f64,
}

impl Report {
    /// The memcpy reference at `size`.
    pub fn memcpy_at(&self, size: usize) -> Figure<Spread> {
        self.memcpy.iter().find(|(s, _)| *s == size).map_or_else(
            || Err("not measured at this size".into()),
            |(_, m)| m.clone(),
        )
    }

    /// The reference ring's figures at `size`.
    pub fn ring_ref_at(&self, size: usize) -> Option<&Cell> {
        self.ring_ref.iter().find(|c| c.size == size)
    }
}

/// The two workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    PingPong,
    Stream,
    /// Sends at the offered rate (`--rate`), latency from the intended
    /// send time.
    Rate,
}

/// What one run of one workload gave.
#[derive(Clone, Debug)]
pub(crate) struct RunFigures {
    /// Round trip median (ns) or messages per second (stream, rate).
    pub(crate) main: f64,
    /// Ping-pong only: 99th and 99.9th percentile (ns), batch, samples.
    pub(crate) tail: Option<(f64, f64, u64, u64)>,
    /// Messages or round trips timed.
    pub(crate) messages: u64,
    pub(crate) syscalls: Option<Result<f64, String>>,
    pub(crate) voluntary: f64,
    /// CPU time of both processes in the window: (kernel, total) in ns.
    pub(crate) cpu_ns: (u64, u64),
    /// Rate only: p50, p99, p99.9 and max latency (ns).
    pub(crate) rate: Option<[u64; 4]>,
}
