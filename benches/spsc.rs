//! Benchmarks of the single-producer ring ([`shmsg::shm::spsc`]) between two
//! threads of this process, and two references measured in the same run.
//!
//! Every ring benchmark touches the payload: the producer writes every byte
//! of every message and the consumer reads every byte (it sums the message as
//! 64-bit words into a value passed to [`std::hint::black_box`]). Each sample
//! spawns its two threads (outside the timed span), pins them to the first two
//! CPUs the process may run on when it may run on at least two, starts them
//! together on a spin gate, and times one of them from the gate to its last
//! message.
//!
//! | benchmark                      | what one iteration is                                   |
//! |--------------------------------|---------------------------------------------------------|
//! | `stream/copy/64B`              | one 64-byte message streamed producer -> consumer: the producer fills its own buffer and `send`s it (a copy into the ring), the consumer `recv`s into a reused `Vec` (a copy out) and sums it. Throughput in messages/s. |
//! | `stream/in_place/64B`          | the same with `send_with` (the producer fills the record in the ring) and `recv_with` (the consumer sums the record in the ring). |
//! | `stream/copy/1MiB`             | as `stream/copy/64B` with 1 MiB messages on an 8 MiB ring; throughput in bytes/s. |
//! | `stream/in_place/1MiB`         | as `stream/in_place/64B` with 1 MiB messages on an 8 MiB ring. |
//! | `pingpong/8B`, `pingpong/64B`  | one round trip over two rings (one each way): thread A fills and sends a message, thread B receives it and sends it back, A receives and sums the echo. Both sides use `try_send`/`try_recv` in a spin loop (`spin_loop` hint), the same wait as the reference below. Time per round trip. |
//! | `reference/cacheline_pingpong` | one round trip of a single `AtomicU64` cache line: A stores `2i+1`, B waits for it and stores `2i+2`, A waits for that. The usual yardstick for a cross-core round trip, though not a strict floor: both threads write the one line, and a round trip over two lines each written by one side (what a ring round trip moves) can be faster. |
//! | `reference/memcpy/1MiB`        | one single-thread `copy_from_slice` of 1 MiB between two buffers; throughput in bytes/s. The floor for one copy. |
//!
//! The streams use the blocking `send`/`recv` (and `send_with`/`recv_with`),
//! whose waits spin, then sleep on a futex ([`shmsg::shm::wait`]); rings
//! of 64-byte messages use [`Geometry::default`] (1 MiB of records), as do
//! the ping-pong rings.
//!
//! Run everything (a little over a minute once built), or one benchmark by
//! name (a regular expression over the ids above):
//!
//! ```text
//! cargo bench --bench spsc
//! cargo bench --bench spsc -- stream/copy/64B
//! ```
//!
//! They run in the order `stream/*`, `reference/memcpy/1MiB`,
//! `reference/cacheline_pingpong`, `pingpong/*`, so that each reference runs
//! next to what it calibrates: on a shared or virtualized machine the
//! cross-core latency can change several-fold from one minute to the next,
//! and ratios are only meaningful between benchmarks of the same run.
//!
//! The ring benchmarks need two CPUs to mean anything: both sides spin.

use std::hint::{black_box, spin_loop};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shmsg::Error;
use shmsg::shm::Geometry;
use shmsg::shm::spsc::{Consumer, Producer, channel};
use shmsg_bench_support::cpu::{cpu_pair, pin};
use shmsg_bench_support::message::sum_words;

const SMALL: usize = 64;
const LARGE: usize = 1 << 20;
/// The ring for 1 MiB messages: 8 MiB of records.
const LARGE_CAPACITY: usize = 8 << 20;

/// Runs `untimed` and `timed` on two new threads, pinned to two CPUs when
/// possible, released together by a spin gate. Returns how long `timed` took
/// from the gate to its return; thread start-up is not counted.
fn run_pair(untimed: impl FnOnce() + Send, timed: impl FnOnce() + Send) -> Duration {
    let cpus = cpu_pair();
    let arrived = AtomicU64::new(0);
    let gate = || {
        arrived.fetch_add(1, AcqRel);
        while arrived.load(Acquire) < 2 {
            spin_loop();
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus.map(|c| c[0]));
            gate();
            untimed();
        });
        let timed_thread = s.spawn(|| {
            pin(cpus.map(|c| c[1]));
            gate();
            let start = Instant::now();
            timed();
            start.elapsed()
        });
        timed_thread.join().expect("timed thread panicked")
    })
}

/// `try_send` until there is room.
#[inline(always)]
fn spin_send(producer: &mut Producer, message: &[u8]) {
    loop {
        match producer.try_send(message) {
            Ok(()) => return,
            Err(Error::Full) => spin_loop(),
            Err(error) => panic!("send failed: {error}"),
        }
    }
}

/// `try_recv` until a message is there.
#[inline(always)]
fn spin_recv(consumer: &mut Consumer, buf: &mut Vec<u8>) {
    loop {
        match consumer.try_recv(buf) {
            Ok(_) => return,
            Err(Error::Empty) => spin_loop(),
            Err(error) => panic!("receive failed: {error}"),
        }
    }
}

/// `iters` messages of `len` bytes, built in the producer's buffer and copied
/// through the ring with `send` / `recv`.
fn stream_copy(
    producer: &mut Producer,
    consumer: &mut Consumer,
    len: usize,
    iters: u64,
) -> Duration {
    run_pair(
        || {
            let mut message = vec![0u8; len];
            for i in 0..iters {
                message.fill(i as u8);
                producer.send(&message).expect("send");
            }
        },
        || {
            let mut buf = Vec::with_capacity(len);
            let mut sum = 0u64;
            for _ in 0..iters {
                consumer.recv(&mut buf).expect("recv");
                sum = sum.wrapping_add(sum_words(&buf));
            }
            black_box(sum);
        },
    )
}

/// `iters` messages of `len` bytes, written and read in the ring with
/// `send_with` / `recv_with`.
fn stream_in_place(
    producer: &mut Producer,
    consumer: &mut Consumer,
    len: usize,
    iters: u64,
) -> Duration {
    run_pair(
        || {
            for i in 0..iters {
                producer
                    .send_with(len, |record| {
                        record.fill(i as u8);
                        len
                    })
                    .expect("send_with");
            }
        },
        || {
            let mut sum = 0u64;
            for _ in 0..iters {
                let part = consumer.recv_with(sum_words).expect("recv_with");
                sum = sum.wrapping_add(part);
            }
            black_box(sum);
        },
    )
}

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    for (len, label, geometry, throughput) in [
        (SMALL, "64B", Geometry::default(), Throughput::Elements(1)),
        (
            LARGE,
            "1MiB",
            Geometry::new(LARGE_CAPACITY, LARGE).expect("geometry"),
            Throughput::Bytes(LARGE as u64),
        ),
    ] {
        group.throughput(throughput);
        group.bench_function(BenchmarkId::new("copy", label), |b| {
            let (mut producer, mut consumer) = channel(geometry).expect("channel");
            b.iter_custom(|iters| stream_copy(&mut producer, &mut consumer, len, iters));
        });
        group.bench_function(BenchmarkId::new("in_place", label), |b| {
            let (mut producer, mut consumer) = channel(geometry).expect("channel");
            b.iter_custom(|iters| stream_in_place(&mut producer, &mut consumer, len, iters));
        });
    }
    group.finish();
}

fn pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("pingpong");
    for (len, label) in [(8, "8B"), (64, "64B")] {
        group.bench_function(label, |b| {
            let (mut there_tx, mut there_rx) = channel(Geometry::default()).expect("channel");
            let (mut back_tx, mut back_rx) = channel(Geometry::default()).expect("channel");
            b.iter_custom(|iters| {
                run_pair(
                    // B: echoes each message, touching every byte both ways.
                    || {
                        let mut buf = Vec::with_capacity(len);
                        for _ in 0..iters {
                            spin_recv(&mut there_rx, &mut buf);
                            spin_send(&mut back_tx, &buf);
                        }
                    },
                    // A: one round trip per iteration.
                    || {
                        let mut message = vec![0u8; len];
                        let mut buf = Vec::with_capacity(len);
                        let mut sum = 0u64;
                        for i in 0..iters {
                            message.fill(i as u8);
                            spin_send(&mut there_tx, &message);
                            spin_recv(&mut back_rx, &mut buf);
                            sum = sum.wrapping_add(sum_words(&buf));
                        }
                        black_box(sum);
                    },
                )
            });
        });
    }
    group.finish();
}

/// One `AtomicU64` alone on its (pair of) cache line(s).
#[repr(align(128))]
struct Line(AtomicU64);

/// Runs right after the 1 MiB streams it is compared with.
fn reference_memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference");
    group.throughput(Throughput::Bytes(LARGE as u64));
    group.bench_function(BenchmarkId::new("memcpy", "1MiB"), |b| {
        let source: Vec<u8> = (0..LARGE).map(|i| i as u8).collect();
        let mut target = vec![0u8; LARGE];
        b.iter(|| {
            target.copy_from_slice(black_box(&source));
            black_box(&mut target);
        });
    });
    group.finish();
}

/// Runs right before the ping-pongs it is compared with.
fn reference_cacheline(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference");
    group.bench_function("cacheline_pingpong", |b| {
        b.iter_custom(|iters| {
            let line = Line(AtomicU64::new(0));
            run_pair(
                // B: answers each odd value with the next one.
                || {
                    for i in 0..iters {
                        while line.0.load(Acquire) != 2 * i + 1 {
                            spin_loop();
                        }
                        line.0.store(2 * i + 2, Release);
                    }
                },
                // A: one round trip per iteration.
                || {
                    for i in 0..iters {
                        line.0.store(2 * i + 1, Release);
                        while line.0.load(Acquire) != 2 * i + 2 {
                            spin_loop();
                        }
                    }
                },
            )
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
}

criterion_group! {
    name = benches;
    config = config();
    targets = stream, reference_memcpy, reference_cacheline, pingpong
}
criterion_main!(benches);
