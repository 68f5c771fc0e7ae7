//! The cost of a connection: from the start of [`shmsg::connect`] until both
//! the client's `connect` and the listener's `accept` have returned, per
//! endpoint kind, with default [`shmsg::Options`].
//!
//! | kind | what a connection is |
//! |---|---|
//! | `shm` | `shm:NAME`: the rendezvous at `@shmsg.NAME` (hello, two fresh sealed memfd rings of 1 MiB handed over, mapped, attached, acknowledged) |
//! | `mpsc` | `mpsc:NAME`: the same, with the listener's one multi-producer ring and a fresh reply ring |
//! | `unix` | `unix:@NAME`: a Unix stream socket and the frame hellos |
//! | `seqpacket` | `seqpacket:@NAME`: a Unix seqpacket socket and its hellos |
//! | `tcp` | `tcp:127.0.0.1:0`: TCP over loopback and the frame hellos |
//!
//! Each listener accepts in a thread of its own; the main thread takes the
//! time, connects, and waits for the accepted channel. Both channels are
//! dropped before the next connection, outside the timed span. The kinds
//! take turns in chunks of ten connections, so that a noisy moment on the
//! machine hits them alike; each gets an untimed warm-up first.
//!
//! A second table splits the `shm:` figure, the three taking turns: making
//! the two rings of a connection (`Region::anonymous` twice: `memfd_create`,
//! the creator's lock, `fallocate`, the seals, `mmap`; the listener's
//! part), mapping two such rings as the client does (`Region::from_fd`
//! twice: the seals, size and header checked, `mmap`), and whole `shm:`
//! connections. Unmapping and closing are not timed.
//!
//! ```text
//! cargo bench --bench connect
//! SHMSG_BENCH_CONNECTIONS=1000 cargo bench --bench connect
//! ```

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmsg::endpoint::{DEFAULT_CAPACITY, DEFAULT_SHM_MAX_MESSAGE};
use shmsg::shm::{Geometry, Region};
use shmsg::{Channel, Listener};
use shmsg_bench_support::stats::quantile;

const WARMUP: usize = 20;
/// Connections measured per kind; `SHMSG_BENCH_CONNECTIONS` overrides it.
fn connections() -> usize {
    std::env::var("SHMSG_BENCH_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(200)
}
/// Connections of one kind in a row before the next kind's turn.
const CHUNK: usize = 10;
const KINDS: [&str; 5] = ["shm", "mpsc", "unix", "seqpacket", "tcp"];

/// The endpoint string of `kind`, unique to this process and kind (`shm:`
/// and `mpsc:` of one name would meet at the same socket).
fn endpoint(kind: &str) -> String {
    let name = format!("shmsg-bench-connect-{kind}-{}", std::process::id());
    match kind {
        "shm" => format!("shm:{name}"),
        "mpsc" => format!("mpsc:{name}"),
        "unix" => format!("unix:@{name}"),
        "seqpacket" => format!("seqpacket:@{name}"),
        "tcp" => "tcp:127.0.0.1:0".to_owned(),
        other => unreachable!("unknown kind {other}"),
    }
}

/// A listener accepting `count` connections in its own thread and handing
/// each channel back with the moment `accept` returned.
struct Acceptor {
    endpoint: String,
    accepted: mpsc::Receiver<(Instant, Channel)>,
    thread: JoinHandle<()>,
}

impl Acceptor {
    fn start(kind: &str, count: usize) -> Acceptor {
        let mut listener: Listener = shmsg::listen(&endpoint(kind)).expect("listen");
        let endpoint = listener.endpoint();
        let (tx, accepted) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for _ in 0..count {
                let channel = listener.accept().expect("accept");
                let now = Instant::now();
                if tx.send((now, channel)).is_err() {
                    return;
                }
            }
        });
        Acceptor {
            endpoint,
            accepted,
            thread,
        }
    }

    /// One connection: the time until both sides have their channel.
    fn connect_once(&self) -> Duration {
        let start = Instant::now();
        let client = shmsg::connect(&self.endpoint).expect("connect");
        let connected = Instant::now();
        let (accepted, server) = self.accepted.recv().expect("accepted channel");
        let took = connected.max(accepted) - start;
        drop(client);
        drop(server);
        took
    }
}

/// The two rings the listener makes for one `shm:` connection.
fn make_rings(geometry: Geometry) -> Duration {
    let start = Instant::now();
    let requests = Region::anonymous(geometry).expect("anonymous region");
    let replies = Region::anonymous(geometry).expect("anonymous region");
    let took = start.elapsed();
    drop((requests, replies));
    took
}

/// The client's mapping of the two rings it was sent (`Region::from_fd`
/// twice: the seals, size and header checked, `mmap`).
fn map_rings(made: &(Region, Region)) -> Duration {
    let start = Instant::now();
    let requests = Region::from_fd(made.0.as_fd()).expect("map the request ring");
    let replies = Region::from_fd(made.1.as_fd()).expect("map the reply ring");
    let took = start.elapsed();
    drop((requests, replies));
    took
}

struct Summary {
    median: Duration,
    p90: Duration,
    max: Duration,
}

fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let at = |q: f64| quantile(samples, q).expect("samples");
    Summary {
        median: at(0.5),
        p90: at(0.9),
        max: samples[samples.len() - 1],
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn main() {
    let n = connections();
    let begun = Instant::now();

    // The shm: listener also serves the second table's connections.
    let acceptors: Vec<Acceptor> = KINDS
        .iter()
        .map(|&kind| Acceptor::start(kind, WARMUP + if kind == "shm" { 2 * n } else { n }))
        .collect();
    for acceptor in &acceptors {
        for _ in 0..WARMUP {
            acceptor.connect_once();
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); KINDS.len()];
    let mut done = 0;
    while done < n {
        let chunk = CHUNK.min(n - done);
        for (acceptor, samples) in acceptors.iter().zip(&mut samples) {
            for _ in 0..chunk {
                samples.push(acceptor.connect_once());
            }
        }
        done += chunk;
    }

    println!("connect + accept, default options, {n} connections per kind after {WARMUP} warm-up:");
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "kind", "median", "p90", "max"
    );
    for (kind, samples) in KINDS.iter().zip(&mut samples) {
        let s = summarize(samples);
        println!(
            "{:<10} {:>10} {:>10} {:>10}",
            kind,
            us(s.median),
            us(s.p90),
            us(s.max)
        );
    }

    // The shm: connection against the making of its two rings, in turns.
    let geometry = Geometry::new(DEFAULT_CAPACITY, DEFAULT_SHM_MAX_MESSAGE).expect("geometry");
    for _ in 0..WARMUP {
        make_rings(geometry);
    }
    let made = (
        Region::anonymous(geometry).expect("anonymous region"),
        Region::anonymous(geometry).expect("anonymous region"),
    );
    for _ in 0..WARMUP {
        map_rings(&made);
    }
    let shm = &acceptors[0];
    let mut rings = Vec::with_capacity(n);
    let mut maps = Vec::with_capacity(n);
    let mut whole = Vec::with_capacity(n);
    for _ in 0..n {
        rings.push(make_rings(geometry));
        maps.push(map_rings(&made));
        whole.push(shm.connect_once());
    }
    let (rings, maps, whole) = (
        summarize(&mut rings),
        summarize(&mut maps),
        summarize(&mut whole),
    );
    println!();
    println!(
        "shm: the rings' share, {} bytes each, against whole connections, in turns:",
        geometry.region_size()
    );
    println!("{:<26} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    for (what, s) in [
        ("make two rings (listener)", &rings),
        ("map two rings (client)", &maps),
        ("whole shm: connection", &whole),
    ] {
        println!(
            "{:<26} {:>10} {:>10} {:>10}",
            what,
            us(s.median),
            us(s.p90),
            us(s.max)
        );
    }
    let share = |s: &Summary| 100.0 * s.median.as_secs_f64() / whole.median.as_secs_f64();
    println!(
        "making the rings is {:.0}% of the median shm: connection, mapping them {:.0}%",
        share(&rings),
        share(&maps)
    );

    for acceptor in acceptors {
        acceptor.thread.join().expect("acceptor thread");
    }
    println!("\n(in {:.1} s)", begun.elapsed().as_secs_f64());
}
