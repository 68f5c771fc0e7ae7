//! The async interface ([`shmsg::tokio`], feature `tokio`) against the
//! blocking calls and against tokio's own Unix socket, measured in one run
//! between two threads of this process (one per side, pinned to the first
//! two CPUs the process may run on, when it may run on two).
//!
//! Every async side runs on its own `current_thread` tokio runtime in its
//! own thread, and both sides are busy (each waits only for the other).
//! Each sample makes a fresh connection (outside the timed span).
//!
//! | row | what is timed |
//! |---|---|
//! | `rtt/8B/async-shm` | one round trip of an 8-byte message over `shm:`: `AsyncChannel::send` + `recv` on both sides (the echo side receives and sends back, the timed side sends, receives and sums the echo) |
//! | `rtt/8B/blocking-shm` | the same over `shm:` with the blocking [`shmsg::connect`]/[`shmsg::listen`] channels, `send` + `recv` (no runtime) |
//! | `rtt/8B/tokio-unixstream` | the same with a raw `tokio::net::UnixStream` pair: `write_all` + `read_exact` of 8 bytes |
//! | `rtt/8B/async-unix` | the same as `async-shm` over `unix:` (an abstract Unix socket), through [`shmsg::tokio`] |
//! | `stream/64B/async-shm` | one-way stream of 64-byte messages over `shm:`: the sender `send`s each message (`AsyncSender::send`), the receiver `recv`s each and sums its bytes; messages/s from the start of the stream to the receiver's last message |
//! | `stream/64B/async-unix` | the same over `unix:` |
//!
//! Samples of all the rows alternate (one sample of each row per round),
//! so that all see the same machine; medians of the samples, their range
//! and these ratios are printed: `async-shm / blocking-shm` and
//! `async-shm / tokio-unixstream` for round trips, `async-shm /
//! async-unix` for the stream. On a shared or virtualized machine figures
//! drift from minute to minute: compare ratios within one run.
//!
//! Run with
//!
//! ```text
//! cargo bench --features shmsg/tokio --bench async
//! cargo bench --features shmsg/tokio --bench async -- stream/64B   # rows whose name contains this
//! ```
//!
//! `SHMSG_BENCH_ROUND_TRIPS` sets the round trips per sample (default
//! 20 000), `SHMSG_BENCH_MESSAGES` the messages per stream sample (default
//! 200 000) and `SHMSG_BENCH_SAMPLES` the samples per row (default 7).
//! System calls of a busy stream (there should be none per message): run
//! one row under strace with two message counts and compare the totals,
//! e.g.
//!
//! ```text
//! SHMSG_BENCH_SAMPLES=1 SHMSG_BENCH_MESSAGES=10000 \
//!     strace -c -f target/release/deps/async-* stream/64B/async-shm
//! SHMSG_BENCH_SAMPLES=1 SHMSG_BENCH_MESSAGES=1000000 \
//!     strace -c -f target/release/deps/async-* stream/64B/async-shm
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use shmsg::{Receiver, Sender};
use shmsg_bench_support as support;
use support::message::sum_words;
use support::stats::Spread;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Samples per row; `SHMSG_BENCH_SAMPLES` overrides it.
fn samples() -> usize {
    env_or("SHMSG_BENCH_SAMPLES", 7) as usize
}

/// Round trips per sample; `SHMSG_BENCH_ROUND_TRIPS` overrides it.
fn round_trips() -> u64 {
    env_or("SHMSG_BENCH_ROUND_TRIPS", 20_000)
}

/// Messages per stream sample; `SHMSG_BENCH_MESSAGES` overrides it.
fn messages() -> u64 {
    env_or("SHMSG_BENCH_MESSAGES", 200_000)
}

/// The first two CPUs this process may run on, if it may run on two.
/// Read once, before any thread is pinned.
fn cpu_pair() -> Option<[usize; 2]> {
    static PAIR: std::sync::OnceLock<Option<[usize; 2]>> = std::sync::OnceLock::new();
    *PAIR.get_or_init(support::cpu::cpu_pair)
}

/// Pins the calling thread to the `side`th CPU of [`cpu_pair`]; best
/// effort. Both sides are busy, so they run on two CPUs.
fn pin(side: usize) {
    support::cpu::pin(cpu_pair().map(|cpus| cpus[side]));
}

/// A fresh endpoint name for `scheme` (`shm` or `unix`).
fn endpoint(scheme: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let at = if scheme == "unix" { "@" } else { "" };
    format!("{scheme}:{at}shmsg-bench-async-{}-{n}", std::process::id())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `server` on a new thread (pinned to CPU 0) inside its own runtime,
/// with a listener at a fresh `scheme` endpoint; `client` runs on another
/// new thread (pinned to CPU 1) inside its own, with the channel it
/// connected. Both are released together once connected; returns what
/// `client` returns (it times itself).
fn async_pair<S, C>(scheme: &str, server: S, client: C) -> f64
where
    S: AsyncFnOnce(shmsg::tokio::AsyncChannel) + Send + 'static,
    C: AsyncFnOnce(shmsg::tokio::AsyncChannel) -> f64 + Send + 'static,
{
    let endpoint = endpoint(scheme);
    let (listening, listened) = mpsc::channel();
    let gate = Arc::new(Barrier::new(2));
    let server: JoinHandle<()> = std::thread::spawn({
        let endpoint = endpoint.clone();
        let gate = gate.clone();
        move || {
            pin(0);
            runtime().block_on(async move {
                let mut listener = shmsg::tokio::listen(&endpoint).expect("listen");
                listening.send(()).expect("listening");
                let channel = listener.accept().await.expect("accept");
                gate.wait();
                server(channel).await;
            })
        }
    });
    listened.recv().expect("listener");
    let client = std::thread::spawn(move || {
        pin(1);
        runtime().block_on(async move {
            let channel = shmsg::tokio::connect(&endpoint).await.expect("connect");
            gate.wait();
            client(channel).await
        })
    });
    let result = client.join().expect("client");
    server.join().expect("server");
    result
}

/// Seconds per round trip, `shmsg::tokio` over `scheme`.
fn async_rtt(scheme: &str) -> f64 {
    let n = round_trips();
    async_pair(
        scheme,
        async move |mut channel| {
            let mut buf = Vec::new();
            for _ in 0..n {
                channel.recv(&mut buf).await.expect("recv");
                channel.send(&buf).await.expect("send");
            }
        },
        async move |mut channel| {
            let mut buf = Vec::new();
            let start = Instant::now();
            for i in 0..n {
                channel.send(&i.to_le_bytes()).await.expect("send");
                channel.recv(&mut buf).await.expect("recv");
                black_box(sum_words(&buf));
            }
            start.elapsed().as_secs_f64() / n as f64
        },
    )
}

/// Seconds per round trip, blocking `shm:` channels.
fn blocking_rtt() -> f64 {
    let n = round_trips();
    let endpoint = endpoint("shm");
    let mut listener = shmsg::listen(&endpoint).expect("listen");
    let gate = Arc::new(Barrier::new(2));
    let server = std::thread::spawn({
        let gate = gate.clone();
        move || {
            pin(0);
            let mut channel = listener.accept().expect("accept");
            gate.wait();
            let mut buf = Vec::new();
            for _ in 0..n {
                channel.recv(&mut buf).expect("recv");
                channel.send(&buf).expect("send");
            }
        }
    });
    let client = std::thread::spawn(move || {
        pin(1);
        let mut channel = shmsg::connect(&endpoint).expect("connect");
        gate.wait();
        let mut buf = Vec::new();
        let start = Instant::now();
        for i in 0..n {
            channel.send(&i.to_le_bytes()).expect("send");
            channel.recv(&mut buf).expect("recv");
            black_box(sum_words(&buf));
        }
        start.elapsed().as_secs_f64() / n as f64
    });
    let result = client.join().expect("client");
    server.join().expect("server");
    result
}

/// Seconds per round trip, raw `tokio::net::UnixStream` pair.
fn tokio_unix_rtt() -> f64 {
    let n = round_trips();
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    let gate = Arc::new(Barrier::new(2));
    let server = std::thread::spawn({
        let gate = gate.clone();
        move || {
            pin(0);
            runtime().block_on(async move {
                let mut b = tokio::net::UnixStream::from_std(b).expect("register");
                gate.wait();
                let mut buf = [0u8; 8];
                for _ in 0..n {
                    b.read_exact(&mut buf).await.expect("read");
                    b.write_all(&buf).await.expect("write");
                }
            })
        }
    });
    let client = std::thread::spawn(move || {
        pin(1);
        runtime().block_on(async move {
            let mut a = tokio::net::UnixStream::from_std(a).expect("register");
            gate.wait();
            let mut buf = [0u8; 8];
            let start = Instant::now();
            for i in 0..n {
                a.write_all(&i.to_le_bytes()).await.expect("write");
                a.read_exact(&mut buf).await.expect("read");
                black_box(sum_words(&buf));
            }
            start.elapsed().as_secs_f64() / n as f64
        })
    });
    let result = client.join().expect("client");
    server.join().expect("server");
    result
}

/// Messages per second of 64-byte messages, `shmsg::tokio` over `scheme`:
/// the listening side receives, the connecting side sends and times from
/// its first send to the receiver's last message.
fn async_stream(scheme: &str) -> f64 {
    let n = messages();
    let done = Arc::new(Barrier::new(2));
    let receiver_done = done.clone();
    async_pair(
        scheme,
        async move |mut channel| {
            let mut buf = Vec::new();
            let mut total = 0u64;
            for _ in 0..n {
                channel.recv(&mut buf).await.expect("recv");
                total = total.wrapping_add(sum_words(&buf));
            }
            black_box(total);
            receiver_done.wait();
        },
        async move |mut channel| {
            let mut message = [0u8; 64];
            let start = Instant::now();
            for i in 0..n {
                message.fill(i as u8);
                channel.send(&message).await.expect("send");
            }
            // The receiver's last message; its side only waits for this.
            done.wait();
            n as f64 / start.elapsed().as_secs_f64()
        },
    )
}

/// One row: its name, unit, scale, and one sample.
struct Row {
    name: &'static str,
    unit: &'static str,
    scale: f64,
    sample: fn() -> f64,
    values: Vec<f64>,
}

fn median(rows: &[Row], name: &str) -> Option<f64> {
    let row = rows.iter().find(|r| r.name == name)?;
    Spread::of(&row.values).map(|s| s.median)
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let row = |name, unit, scale, sample| Row {
        name,
        unit,
        scale,
        sample,
        values: Vec::new(),
    };
    let mut rows: Vec<Row> = [
        row("rtt/8B/async-shm", "us", 1e6, || async_rtt("shm")),
        row("rtt/8B/blocking-shm", "us", 1e6, blocking_rtt),
        row("rtt/8B/tokio-unixstream", "us", 1e6, tokio_unix_rtt),
        row("rtt/8B/async-unix", "us", 1e6, || async_rtt("unix")),
        row("stream/64B/async-shm", "Mmsg/s", 1e-6, || {
            async_stream("shm")
        }),
        row("stream/64B/async-unix", "Mmsg/s", 1e-6, || {
            async_stream("unix")
        }),
    ]
    .into_iter()
    .filter(|r| wanted(r.name))
    .collect();
    println!(
        "medians of {} samples [min..max]; rows alternate; sides pinned to CPUs {:?}; \
         {} round trips, {} stream messages per sample",
        samples(),
        cpu_pair(),
        round_trips(),
        messages(),
    );
    for _ in 0..samples() {
        for row in &mut rows {
            row.values.push((row.sample)() * row.scale);
        }
    }
    for row in &rows {
        if let Some(s) = Spread::of(&row.values) {
            println!(
                "{:<26} {:>10.3} {:<6} [{:.3}..{:.3}]",
                row.name, s.median, row.unit, s.min, s.max
            );
        }
    }
    let ratio = |what: &str, a: &str, b: &str| {
        if let (Some(a), Some(b)) = (median(&rows, a), median(&rows, b)) {
            println!("{what:<44} {:>8.3}", a / b);
        }
    };
    ratio(
        "rtt async-shm / blocking-shm (target <= 1.5)",
        "rtt/8B/async-shm",
        "rtt/8B/blocking-shm",
    );
    ratio(
        "rtt async-shm / tokio-unixstream",
        "rtt/8B/async-shm",
        "rtt/8B/tokio-unixstream",
    );
    ratio(
        "rtt async-shm / async-unix",
        "rtt/8B/async-shm",
        "rtt/8B/async-unix",
    );
    ratio(
        "stream async-shm / async-unix (target >= 10)",
        "stream/64B/async-shm",
        "stream/64B/async-unix",
    );
}
