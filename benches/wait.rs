//! Waking a parked receiver: the ring's futex eventcount ([`shmsg::shm::wait`])
//! against a raw futex ping-pong, measured in the same run.
//!
//! Each variant runs two threads, pinned to two CPUs when the process may
//! use two, over memory shared the way two processes share it (the rings in
//! anonymous regions, sealed memfds; the raw futex words in a memfd mapping:
//! the same shared, non-private futexes, keyed by file and offset). One round
//! trip, timed by thread A:
//!
//! | variant            | what one round trip is |
//! |--------------------|------------------------|
//! | `ring`             | B is asleep in `recv` on the request ring (its sleeper count is set and it has had 200 µs to enter `FUTEX_WAIT`). A `send`s an 8-byte message (the producer sees the sleeper, bumps the epoch, `FUTEX_WAKE`s), B wakes, receives it and `send`s it back on the reply ring; A `recv`s it with the library's own wait (adaptive spin, then sleep). |
//! | `raw/reply_spun`   | B is asleep in `FUTEX_WAIT` on a request word. A stores the word and calls `FUTEX_WAKE`; B wakes, stores a reply word and calls `FUTEX_WAKE`; A spins on the reply word. The direct analogue of `ring`: one parked side, one active. |
//! | `raw/both_park`    | As `raw/reply_spun`, but A waits for the reply in `FUTEX_WAIT` too: two wake-ups per round trip, the classic futex ping-pong. |
//!
//! Between round trips (untimed) A waits until B has announced itself and
//! then 200 µs more, so that every timed round trip wakes a sleeping B. The
//! variants alternate in ten chunks, so that drift on a shared machine hits
//! them alike. The report gives the median, 10th and 90th percentiles of
//! each, and the ratios of medians.
//!
//! ```text
//! cargo bench --bench wait                       # 2000 round trips per variant
//! SHMSG_BENCH_ROUNDS=10000 cargo bench --bench wait
//! ```

use std::hint::spin_loop;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use std::time::{Duration, Instant};

use rustix::thread::futex;
use shmsg::shm::layout::offsets;
use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::wait::sleepers;
use shmsg::shm::{Geometry, Region};
use shmsg_bench_support::cpu::{cpu_pair, pin};
use shmsg_bench_support::stats;

/// How long A lets B settle into `FUTEX_WAIT` after B announced itself.
const SETTLE: Duration = Duration::from_micros(200);

/// `n` round trips through two rings to a receiver that is asleep each time.
fn ring(n: usize, cpus: Option<[usize; 2]>) -> Vec<Duration> {
    let geometry = Geometry::new(1 << 12, 64).unwrap();
    let requests = Arc::new(Region::anonymous(geometry).unwrap());
    let replies = Arc::new(Region::anonymous(geometry).unwrap());
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus.map(|c| c[0]));
            let mut rx = Consumer::attach(&requests).unwrap();
            let mut tx = Producer::attach(&replies).unwrap();
            let mut buf = Vec::new();
            for _ in 0..n {
                rx.recv(&mut buf).unwrap();
                tx.send(&buf).unwrap();
            }
        });
        s.spawn(|| {
            pin(cpus.map(|c| c[1]));
            let mut tx = Producer::attach(&requests).unwrap();
            let mut rx = Consumer::attach(&replies).unwrap();
            let mut buf = Vec::new();
            let mut times = Vec::with_capacity(n);
            for i in 0..n as u64 {
                while sleepers(requests.header_word(offsets::DATA_EVENT)) == 0 {
                    spin_loop();
                }
                std::thread::sleep(SETTLE);
                let start = Instant::now();
                tx.send(&i.to_le_bytes()).unwrap();
                rx.recv(&mut buf).unwrap();
                times.push(start.elapsed());
                assert_eq!(buf, i.to_le_bytes());
            }
            times
        })
        .join()
        .unwrap()
    })
}

/// Three futex words on separate cache lines of a shared memfd mapping.
struct Words {
    map: memmap2::MmapRaw,
}

impl Words {
    fn new() -> Words {
        let fd =
            rustix::fs::memfd_create("shmsg-bench-futex", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let file = std::fs::File::from(fd);
        file.set_len(4096).unwrap();
        Words {
            map: memmap2::MmapRaw::map_raw(&file).unwrap(),
        }
    }

    /// Word `i` (0: request, 1: reply, 2: B parked).
    fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < 3);
        // SAFETY: the mapping is 4096 bytes, page-aligned and lives as long
        // as `self`; offset `128 * i` is inside it and 4-aligned; the words
        // are only accessed atomically (and by the kernel's futex).
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(128 * i).cast()) }
    }
}

/// `n` raw futex round trips to a receiver that is asleep each time; A
/// waits for the reply in `FUTEX_WAIT` if `park`, else by spinning.
fn raw(n: usize, cpus: Option<[usize; 2]>, park: bool) -> Vec<Duration> {
    let words = Words::new();
    let (request, reply, parked) = (words.word(0), words.word(1), words.word(2));
    let shared = futex::Flags::empty();
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus.map(|c| c[0]));
            let mut seen = 0;
            for _ in 0..n {
                loop {
                    let now = request.load(Acquire);
                    if now != seen {
                        seen = now;
                        break;
                    }
                    parked.store(1, SeqCst);
                    let _ = futex::wait(request, shared, seen, None);
                    parked.store(0, SeqCst);
                }
                reply.store(seen, Release);
                let _ = futex::wake(reply, shared, 1);
            }
        });
        s.spawn(|| {
            pin(cpus.map(|c| c[1]));
            let mut times = Vec::with_capacity(n);
            for i in 1..=n as u32 {
                while parked.load(Acquire) == 0 {
                    spin_loop();
                }
                std::thread::sleep(SETTLE);
                let start = Instant::now();
                request.store(i, Release);
                let _ = futex::wake(request, shared, 1);
                loop {
                    let now = reply.load(Acquire);
                    if now == i {
                        break;
                    }
                    if park {
                        let _ = futex::wait(reply, shared, now, None);
                    } else {
                        spin_loop();
                    }
                }
                times.push(start.elapsed());
            }
            times
        })
        .join()
        .unwrap()
    })
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // this is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = if smoke {
        20
    } else {
        std::env::var("SHMSG_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    };
    let cpus = cpu_pair();
    let chunks = 10;
    let per_chunk = rounds.div_ceil(chunks);
    let names = ["ring", "raw/reply_spun", "raw/both_park"];
    let mut results: [Vec<Duration>; 3] = Default::default();
    for _ in 0..chunks {
        results[0].extend(ring(per_chunk, cpus));
        results[1].extend(raw(per_chunk, cpus, false));
        results[2].extend(raw(per_chunk, cpus, true));
    }
    println!(
        "parked-receiver round trips, {} each, CPUs {cpus:?}",
        results[0].len()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10}",
        "variant", "median", "p10", "p90"
    );
    let mut medians = [Duration::ZERO; 3];
    for (i, times) in results.iter_mut().enumerate() {
        times.sort();
        let quantile = |q| stats::quantile(times, q).unwrap_or_default();
        medians[i] = quantile(0.5);
        println!(
            "{:<16} {:>10.1?} {:>10.1?} {:>10.1?}",
            names[i],
            medians[i],
            quantile(0.1),
            quantile(0.9)
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "ring / raw/reply_spun = {:.2}; ring / raw/both_park = {:.2}",
        ratio(medians[0], medians[1]),
        ratio(medians[0], medians[2])
    );
}
