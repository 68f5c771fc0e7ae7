//! The message-passing transports against raw descriptors of the same kind,
//! measured in one run (two threads of this process, one per side).
//!
//! | row | what is timed |
//! |---|---|
//! | `pingpong/8B/KIND` | one round trip of an 8-byte message, both threads on one CPU: shmsg `send` + `recv` on both sides, against raw `write` + `read` of 8 bytes on a bare descriptor pair of the same kind (socketpair, two pipes, TCP loopback, seqpacket socketpair) |
//! | `stream/64B/unix` | one-way stream of 64-byte messages: shmsg `send` per message, and `send_batch` of 64; the receiver `recv`s each message and sums its bytes |
//! | `stream/1MiB/unix` | one-way stream of 1 MiB messages over a Unix stream socketpair, shmsg `send`/`recv` against raw `write_all`/`read_exact`; both sides touch every byte (the sender writes a pattern, the receiver sums 64-bit words) |
//!
//! Samples of the shmsg variant and of its raw reference alternate, so
//! that both see the same machine; medians of the samples and their ratio
//! are printed. Run with
//!
//! ```text
//! cargo bench --bench transports
//! cargo bench --bench transports -- stream/64B    # rows whose name contains this
//! ```
//!
//! System calls per message: run one row under strace, e.g.
//! `strace -c -f target/release/deps/transports-* stream/64B/unix/batch`.

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use shmsg::msg::seqpacket::SeqpacketChannel;
use shmsg::msg::stream::StreamChannel;
use shmsg::{Channel, Receiver, Sender};
use shmsg_bench_support as support;
use support::message::sum_words;
use support::stats::Spread;

const SAMPLES: usize = 7;
/// Round trips per ping-pong sample; `SHMSG_BENCH_ROUND_TRIPS` overrides it
/// (e.g. to count instructions under callgrind).
fn round_trips() -> u64 {
    std::env::var("SHMSG_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}
const SMALL_MESSAGES: u64 = 200_000;
const LARGE: usize = 1 << 20;
const LARGE_MESSAGES: u64 = 200;
const MAX: usize = 2 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Unix,
    Pipe,
    Tcp,
    Seqpacket,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Unix => "unix",
            Kind::Pipe => "pipe",
            Kind::Tcp => "tcp",
            Kind::Seqpacket => "seqpacket",
        }
    }
}

/// Two connected duplex descriptor pairs: (read, write) for each side.
type Side = (OwnedFd, OwnedFd);

fn raw_pair(kind: Kind) -> (Side, Side) {
    let dup = |fd: &OwnedFd| fd.try_clone().expect("dup");
    match kind {
        Kind::Unix => {
            let (a, b) = UnixStream::pair().expect("socketpair");
            let (a, b) = (OwnedFd::from(a), OwnedFd::from(b));
            ((dup(&a), a), (dup(&b), b))
        }
        Kind::Seqpacket => {
            use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
            let (a, b) = socketpair(
                AddressFamily::UNIX,
                SocketType::SEQPACKET,
                SocketFlags::CLOEXEC,
                None,
            )
            .expect("socketpair");
            ((dup(&a), a), (dup(&b), b))
        }
        Kind::Pipe => {
            let (ar, bw) = std::io::pipe().expect("pipe");
            let (br, aw) = std::io::pipe().expect("pipe");
            ((ar.into(), aw.into()), (br.into(), bw.into()))
        }
        Kind::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let a = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            let (b, _) = listener.accept().expect("accept");
            a.set_nodelay(true).expect("nodelay");
            b.set_nodelay(true).expect("nodelay");
            let (a, b) = (OwnedFd::from(a), OwnedFd::from(b));
            ((dup(&a), a), (dup(&b), b))
        }
    }
}

/// A shmsg channel pair over a fresh descriptor pair of `kind`.
fn channel_pair(kind: Kind) -> (Channel, Channel) {
    if let Kind::Seqpacket = kind {
        let (a, b) = SeqpacketChannel::pair(MAX).expect("seqpacket pair");
        let (at, ar) = a.split().expect("split");
        let (bt, br) = b.split().expect("split");
        return (Channel::new(at, ar), Channel::new(bt, br));
    }
    let ((ar, aw), (br, bw)) = raw_pair(kind);
    let peer = std::thread::spawn(move || {
        StreamChannel::handshake_split(br, bw, MAX, TIMEOUT).expect("handshake")
    });
    let a = StreamChannel::handshake_split(ar, aw, MAX, TIMEOUT).expect("handshake");
    let b = peer.join().expect("handshake thread");
    let (at, ar) = a.split();
    let (bt, br) = b.split();
    (Channel::new(at, ar), Channel::new(bt, br))
}

/// The first two CPUs this process may run on, if it may run on two.
/// Read once, before any thread is pinned.
fn cpu_pair() -> Option<[usize; 2]> {
    static PAIR: std::sync::OnceLock<Option<[usize; 2]>> = std::sync::OnceLock::new();
    *PAIR.get_or_init(support::cpu::cpu_pair)
}

/// Pins the calling thread to the `side`th CPU of [`cpu_pair`]; best
/// effort. Both sides of every variant are pinned the same way, so that
/// scheduler placement does not differ between shmsg and raw samples:
/// streams run their two sides on two CPUs; ping-pongs run both on one,
/// so that a round trip is two context switches and four system calls,
/// without the cross-CPU wake-up latency that swamps everything else on a
/// virtual machine (tens of microseconds, varying from run to run), which
/// leaves the library's own cost in plain view.
fn pin(side: usize) {
    support::cpu::pin(cpu_pair().map(|cpus| cpus[side]));
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = rustix::io::write(fd, bytes).expect("write");
        bytes = &bytes[n..];
    }
}

fn read_exact(fd: &OwnedFd, mut buf: &mut [u8]) {
    while !buf.is_empty() {
        let n = rustix::io::read(fd, &mut *buf).expect("read");
        assert!(n > 0, "end of stream");
        buf = &mut buf[n..];
    }
}

/// Seconds per round trip, raw.
fn raw_pingpong(kind: Kind) -> f64 {
    let ((ar, aw), (br, bw)) = raw_pair(kind);
    let echo = std::thread::spawn(move || {
        pin(0);
        let mut buf = [0u8; 8];
        for _ in 0..round_trips() {
            read_exact(&br, &mut buf);
            write_all(&bw, &buf);
        }
    });
    let mut buf = [0u8; 8];
    let start = Instant::now();
    for i in 0..round_trips() {
        write_all(&aw, &i.to_le_bytes());
        read_exact(&ar, &mut buf);
        black_box(sum_words(&buf));
    }
    let elapsed = start.elapsed();
    echo.join().expect("echo");
    elapsed.as_secs_f64() / round_trips() as f64
}

/// Seconds per round trip, shmsg.
fn shmsg_pingpong(kind: Kind) -> f64 {
    let (mut a, mut b) = channel_pair(kind);
    let echo = std::thread::spawn(move || {
        pin(0);
        let mut buf = Vec::new();
        for _ in 0..round_trips() {
            b.recv(&mut buf).expect("recv");
            b.send(&buf).expect("send");
        }
    });
    let mut buf = Vec::new();
    let start = Instant::now();
    for i in 0..round_trips() {
        a.send(&i.to_le_bytes()).expect("send");
        a.recv(&mut buf).expect("recv");
        black_box(sum_words(&buf));
    }
    let elapsed = start.elapsed();
    echo.join().expect("echo");
    elapsed.as_secs_f64() / round_trips() as f64
}

/// A thread on the second CPU that receives `count` messages from `b` and
/// reads every byte.
fn shmsg_reader(mut b: Channel, count: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        pin(1);
        let mut buf = Vec::new();
        let mut total = 0u64;
        for _ in 0..count {
            b.recv(&mut buf).expect("recv");
            total = total.wrapping_add(sum_words(&buf));
        }
        black_box(total);
    })
}

/// Messages per second of 64-byte messages, shmsg, single sends or batches.
fn shmsg_stream_small(batch: usize) -> f64 {
    let (mut a, b) = channel_pair(Kind::Unix);
    let reader = shmsg_reader(b, SMALL_MESSAGES);
    let start = Instant::now();
    let mut messages = vec![[0u8; 64]; batch];
    let mut seq = 0u64;
    while seq < SMALL_MESSAGES {
        let n = batch.min((SMALL_MESSAGES - seq) as usize);
        for (i, m) in messages[..n].iter_mut().enumerate() {
            m.fill((seq + i as u64) as u8);
        }
        if batch == 1 {
            a.send(&messages[0]).expect("send");
        } else {
            let slices: Vec<&[u8]> = messages[..n].iter().map(|m| &m[..]).collect();
            a.send_batch(&slices).expect("send_batch");
        }
        seq += n as u64;
    }
    reader.join().expect("reader");
    SMALL_MESSAGES as f64 / start.elapsed().as_secs_f64()
}

/// Bytes per second of 1 MiB messages over a Unix socketpair, raw.
fn raw_stream_large() -> f64 {
    let ((_ar, aw), (br, _bw)) = raw_pair(Kind::Unix);
    let reader = std::thread::spawn(move || {
        pin(1);
        let mut buf = vec![0u8; LARGE];
        let mut total = 0u64;
        for _ in 0..LARGE_MESSAGES {
            read_exact(&br, &mut buf);
            total = total.wrapping_add(sum_words(&buf));
        }
        black_box(total);
    });
    let mut message = vec![0u8; LARGE];
    let start = Instant::now();
    for i in 0..LARGE_MESSAGES {
        message.fill(i as u8);
        write_all(&aw, &message);
    }
    reader.join().expect("reader");
    (LARGE as u64 * LARGE_MESSAGES) as f64 / start.elapsed().as_secs_f64()
}

/// Bytes per second of 1 MiB messages over a Unix socketpair, shmsg.
fn shmsg_stream_large() -> f64 {
    let (mut a, b) = channel_pair(Kind::Unix);
    let reader = shmsg_reader(b, LARGE_MESSAGES);
    let mut message = vec![0u8; LARGE];
    let start = Instant::now();
    for i in 0..LARGE_MESSAGES {
        message.fill(i as u8);
        a.send(&message).expect("send");
    }
    reader.join().expect("reader");
    (LARGE as u64 * LARGE_MESSAGES) as f64 / start.elapsed().as_secs_f64()
}

/// The median, smallest and largest of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    Spread::of(values).map_or((f64::NAN, f64::NAN, f64::NAN), |s| (s.median, s.min, s.max))
}

/// Alternates samples of `ours` and `raw`; prints medians and their ratio.
fn compare(name: &str, unit: &str, scale: f64, ours: &dyn Fn() -> f64, raw: &dyn Fn() -> f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        a.push(ours() * scale);
        b.push(raw() * scale);
    }
    let ((ma, a0, a1), (mb, b0, b1)) = (spread(&a), spread(&b));
    println!(
        "{name:<26} shmsg {ma:>10.2} {unit} [{a0:.2}..{a1:.2}]   raw {mb:>10.2} {unit} [{b0:.2}..{b1:.2}]   shmsg/raw {:.3}",
        ma / mb
    );
}

fn single(name: &str, unit: &str, scale: f64, f: &dyn Fn() -> f64) {
    let values: Vec<f64> = (0..SAMPLES).map(|_| f() * scale).collect();
    let (median, lo, hi) = spread(&values);
    println!("{name:<26} shmsg {median:>10.2} {unit} [{lo:.2}..{hi:.2}]");
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    pin(0);
    println!(
        "medians of {SAMPLES} samples [min..max]; shmsg and raw samples alternate; sides pinned to CPUs {:?}",
        cpu_pair()
    );
    for kind in [Kind::Unix, Kind::Pipe, Kind::Tcp, Kind::Seqpacket] {
        let name = format!("pingpong/8B/{}", kind.name());
        if wanted(&name) {
            compare(&name, "us", 1e6, &|| shmsg_pingpong(kind), &|| {
                raw_pingpong(kind)
            });
        }
    }
    if wanted("stream/64B/unix/single") {
        single("stream/64B/unix/single", "Mmsg/s", 1e-6, &|| {
            shmsg_stream_small(1)
        });
    }
    if wanted("stream/64B/unix/batch") {
        single("stream/64B/unix/batch64", "Mmsg/s", 1e-6, &|| {
            shmsg_stream_small(64)
        });
    }
    if wanted("stream/1MiB/unix") {
        compare(
            "stream/1MiB/unix",
            "GB/s",
            1e-9,
            &shmsg_stream_large,
            &raw_stream_large,
        );
    }
}
