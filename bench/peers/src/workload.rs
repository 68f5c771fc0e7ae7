//! The two workloads, driven over any [`Link`]: ping-pong and stream.

use std::time::Instant;

use shmsg_bench_support::message::expected_sum;

use crate::link::{Job, Link, PING, Res};

/// The peer: echoes ping-pongs, or receives a stream and acknowledges it
/// (once after the warm-up, once after the timed part) with the sum of
/// everything it read.
pub fn serve(link: &mut dyn Link, job: &Job) -> Res<()> {
    if job.pingpong {
        for _ in 0..job.warm + job.count {
            // An 8-byte message is one word, so its sum is its seed.
            let seed = link.recv(job.len)?;
            link.send(job.len, seed)?;
        }
    } else {
        for count in [job.warm, job.count] {
            let mut total = 0u64;
            for _ in 0..count {
                total = total.wrapping_add(link.recv(job.len)?);
            }
            link.send(PING, total)?;
        }
    }
    Ok(())
}

/// What one sample measured.
pub enum Outcome {
    /// Nanoseconds of each timed round trip.
    RoundTrips(Vec<u64>),
    /// Seconds to stream the timed messages.
    Stream(f64),
}

/// The driver: runs `job` over `link` and checks every answer.
pub fn drive(link: &mut dyn Link, job: &Job) -> Res<Outcome> {
    if job.pingpong {
        let mut times = Vec::with_capacity(job.count as usize);
        for seed in 0..job.warm + job.count {
            let start = Instant::now();
            link.send(PING, seed)?;
            let echo = link.recv(PING)?;
            let elapsed = start.elapsed();
            if echo != seed {
                return Err(format!("echo {echo} for {seed}").into());
            }
            if seed >= job.warm {
                times.push(elapsed.as_nanos() as u64);
            }
        }
        return Ok(Outcome::RoundTrips(times));
    }
    let mut seed = 0u64;
    let mut secs = 0.0;
    for (count, timed) in [(job.warm, false), (job.count, true)] {
        let mut expected = 0u64;
        let start = Instant::now();
        for _ in 0..count {
            link.send(job.len, seed)?;
            expected = expected.wrapping_add(expected_sum(job.len, seed));
            seed += 1;
        }
        let ack = link.recv(PING)?;
        if timed {
            secs = start.elapsed().as_secs_f64();
        }
        if ack != expected {
            return Err(format!("the peer read sum {ack:#x}, expected {expected:#x}").into());
        }
    }
    Ok(Outcome::Stream(secs))
}
