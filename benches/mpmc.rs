//! The multi-producer rings (`shmsg::shm::mpmc`) against the
//! single-producer ring (`shmsg::shm::spsc`), measured in one run (threads
//! of this process, over heap rings with the layout of a region).
//!
//! | row | what is timed |
//! |---|---|
//! | `stream/64B` | one producer streams 64-byte messages (`send`) to one consumer (`recv`, which sums the bytes): time per message, spsc vs an `Mpsc` ring with one producer |
//! | `pingpong/8B` | one round trip of an 8-byte message over two rings (`send` + `recv` on both sides), spsc vs `Mpsc` |
//! | `scaling/P` | P producer threads stream 64-byte messages to one consumer (`Mpsc`) or two (`Mpmc`): messages per second in all |
//!
//! Samples of the two rings alternate, so that both see the same machine;
//! medians and their ratios are printed. Targets (issue 4): the `Mpsc`
//! ring's stream throughput at least 0.6x the spsc ring's, its ping-pong
//! round trip within 1.3x.
//!
//! ```text
//! cargo bench --bench mpmc                 # all rows
//! cargo bench --bench mpmc -- scaling      # rows whose name contains this
//! SHMSG_BENCH_PRODUCERS=8 cargo bench --bench mpmc -- scaling   # on more cores
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use shmsg::shm::layout::RingKind;
use shmsg::shm::{Geometry, mpmc, spsc};
use shmsg::{Error, Receiver, Sender};
use shmsg_bench_support::stats::median;

const SAMPLES: usize = 7;
const STREAM: u64 = 500_000;
const ROUND_TRIPS: u64 = 20_000;

fn geometry() -> Geometry {
    Geometry::new(1 << 16, 1024).unwrap()
}

/// Streams `count` messages from `tx` to `rx`; returns the time per message.
fn stream(mut tx: impl Sender + Send, mut rx: impl Receiver, count: u64) -> Duration {
    let message = [7u8; 64];
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..count {
                tx.send(black_box(&message)).unwrap();
            }
        });
        let start = Instant::now();
        let mut buf = Vec::new();
        let mut sum = 0u64;
        for _ in 0..count {
            rx.recv(&mut buf).unwrap();
            sum = sum.wrapping_add(buf.iter().map(|&b| u64::from(b)).sum::<u64>());
        }
        black_box(sum);
        start.elapsed() / count as u32
    })
}

/// `rounds` round trips over two rings; returns the time per round trip.
fn pingpong<S, R>(there: (S, R), back: (S, R), rounds: u64) -> Duration
where
    S: Sender + Send,
    R: Receiver + Send,
{
    let (mut tx, mut rx_there) = there;
    let (mut tx_back, mut rx) = back;
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut buf = Vec::new();
            for _ in 0..rounds {
                rx_there.recv(&mut buf).unwrap();
                tx_back.send(&buf).unwrap();
            }
        });
        let start = Instant::now();
        let mut buf = Vec::new();
        for i in 0..rounds {
            tx.send(&i.to_le_bytes()).unwrap();
            rx.recv(&mut buf).unwrap();
        }
        start.elapsed() / rounds as u32
    })
}

fn spsc_pair() -> (spsc::Producer, spsc::Consumer) {
    spsc::channel(geometry()).unwrap()
}

fn mpsc_pair() -> (mpmc::Producer, mpmc::Consumer) {
    mpmc::channel(geometry(), RingKind::Mpsc).unwrap()
}

/// Messages per second with `producers` producers and `consumers`
/// consumers (1: `Mpsc`, else `Mpmc`).
fn scaling(producers: usize, consumers: usize, count: u64) -> f64 {
    let kind = if consumers == 1 {
        RingKind::Mpsc
    } else {
        RingKind::Mpmc
    };
    let (first, consumer) = mpmc::channel(geometry(), kind).unwrap();
    let txs: Vec<_> = (0..producers).map(|_| first.another().unwrap()).collect();
    let rxs: Vec<_> = (1..consumers)
        .map(|_| consumer.another().unwrap())
        .collect();
    drop(first);
    let per = count / producers as u64;
    let start = Instant::now();
    let received = std::thread::scope(|s| {
        for mut tx in txs {
            s.spawn(move || {
                let message = [7u8; 64];
                for _ in 0..per {
                    tx.send(&message).unwrap();
                }
            });
        }
        let readers: Vec<_> = std::iter::once(consumer)
            .chain(rxs)
            .map(|mut rx| {
                s.spawn(move || {
                    let mut buf = Vec::new();
                    let mut n = 0u64;
                    loop {
                        match rx.recv(&mut buf) {
                            Ok(_) => n += 1,
                            Err(Error::Disconnected) => return n,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).sum::<u64>()
    });
    assert_eq!(received, per * producers as u64);
    received as f64 / start.elapsed().as_secs_f64()
}

fn wanted(row: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| row.contains(f.as_str()))
}

fn main() {
    if wanted("stream/64B") {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            let (tx, rx) = spsc_pair();
            a.push(stream(tx, rx, STREAM).as_nanos() as f64);
            let (tx, rx) = mpsc_pair();
            b.push(stream(tx, rx, STREAM).as_nanos() as f64);
        }
        let (a, b) = (median(&a), median(&b));
        println!(
            "stream/64B: spsc {a:.1} ns/msg, mpsc (1 producer) {b:.1} ns/msg; throughput ratio mpsc/spsc {:.2} (target >= 0.6)",
            a / b
        );
    }
    if wanted("pingpong/8B") {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            a.push(pingpong(spsc_pair(), spsc_pair(), ROUND_TRIPS).as_nanos() as f64);
            b.push(pingpong(mpsc_pair(), mpsc_pair(), ROUND_TRIPS).as_nanos() as f64);
        }
        let (a, b) = (median(&a), median(&b));
        println!(
            "pingpong/8B: spsc {a:.0} ns/round trip, mpsc {b:.0} ns; ratio mpsc/spsc {:.2} (target <= 1.3)",
            b / a
        );
    }
    let max: usize = std::env::var("SHMSG_BENCH_PRODUCERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if wanted("scaling") {
        println!("scaling ({cores} cores): producers | Mpsc msgs/s | Mpmc (2 consumers) msgs/s");
        for producers in 1..=max {
            let one = median(
                &(0..3)
                    .map(|_| scaling(producers, 1, STREAM))
                    .collect::<Vec<_>>(),
            );
            let two = median(
                &(0..3)
                    .map(|_| scaling(producers, 2, STREAM))
                    .collect::<Vec<_>>(),
            );
            println!(
                "scaling/{producers}: {producers} | {:.2e} | {:.2e}",
                one, two
            );
        }
    }
}
