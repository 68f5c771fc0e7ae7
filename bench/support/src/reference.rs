//! The cache-line reference: two cores bouncing one cache line, each waiting
//! for the other's store and answering it. No shared-memory round trip
//! between the same two cores can be faster, so measurements print it beside
//! their own round trips.

use std::hint::spin_loop;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cpu::pin;

/// One atomic word alone on its cache line (128 bytes: adjacent-line
/// prefetchers pair 64-byte lines).
#[repr(align(128))]
struct Line(AtomicU64);

/// Tells the echo thread to stop.
const STOP: u64 = u64::MAX;

/// Runs `timed` on the calling thread against an echo thread pinned to
/// `peer_cpu`; `timed` gets a function that makes `count` round trips and
/// returns how long they took.
fn bounce<R>(
    peer_cpu: Option<usize>,
    timed: impl FnOnce(&mut dyn FnMut(u64) -> Duration) -> R,
) -> R {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let theirs = Arc::clone(&line);
    let echo = std::thread::spawn(move || {
        pin(peer_cpu);
        let mut expect = 1;
        loop {
            let value = theirs.0.load(Ordering::Acquire);
            if value == STOP {
                return;
            }
            if value == expect {
                theirs.0.store(value + 1, Ordering::Release);
                expect += 2;
            }
            spin_loop();
        }
    });
    let mut value = 0;
    let mut trips = |count: u64| {
        let start = Instant::now();
        for _ in 0..count {
            line.0.store(value + 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != value + 2 {
                spin_loop();
            }
            value += 2;
        }
        start.elapsed()
    };
    let result = timed(&mut trips);
    line.0.store(STOP, Ordering::Release);
    echo.join().expect("the echo thread does not panic");
    result
}

/// Nanoseconds per round trip of one cache line between the calling thread
/// and a thread pinned to `peer_cpu`: `warm` round trips untimed, then
/// `count` timed.
pub fn cacheline_round_trips(peer_cpu: Option<usize>, warm: u64, count: u64) -> f64 {
    let count = count.max(1);
    bounce(peer_cpu, |trips| {
        trips(warm);
        trips(count).as_nanos() as f64 / count as f64
    })
}

/// Nanoseconds per round trip of one cache line between the calling thread
/// and a thread pinned to `peer_cpu`, timed over about `duration` after a
/// calibrating warm-up of a tenth of it.
pub fn cacheline_round_trip_for(peer_cpu: Option<usize>, duration: Duration) -> f64 {
    bounce(peer_cpu, |trips| {
        let mut count = 1000;
        let mut took = trips(count);
        while took < duration / 10 {
            count *= 2;
            took = trips(count);
        }
        let timed = ((count as f64) * duration.as_secs_f64() / took.as_secs_f64()).max(1.0) as u64;
        trips(timed).as_nanos() as f64 / timed as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_take_time() {
        let by_count = cacheline_round_trips(None, 10, 1000);
        assert!(by_count > 0.0 && by_count.is_finite(), "{by_count}");
        let by_time = cacheline_round_trip_for(None, Duration::from_millis(20));
        assert!(by_time > 0.0 && by_time.is_finite(), "{by_time}");
    }
}
