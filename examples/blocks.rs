//! A producer streams large blocks (think camera frames) to a consumer.
//!
//! Over shared memory (`shm:NAME`, which this example takes as the named
//! region `NAME`, to reach the ring's own interface) it uses the zero-copy
//! API: the producer renders each block directly inside the ring
//! (`send_with`) and the
//! consumer checks it where it lies (`recv_with`), so a block is written
//! once and read once, with no copy through the kernel or a buffer. Over
//! any other endpoint the same program sends and receives through the
//! common interface, and the kernel copies each block twice.
//!
//! ```text
//! cargo run --release --example blocks -- shm:frames          # one process per side, spawned
//! cargo run --release --example blocks -- unix:@frames
//! ```
//!
//! With no argument it runs both and prints the throughput of each.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};
use shmsg::{Receiver, Sender};

mod common;

const BLOCK: usize = 256 << 10;
const BLOCKS: u64 = 2_000;

/// Renders block `n`: every 8-byte word holds `n` plus its index.
fn render(n: u64, block: &mut [u8]) {
    for (i, word) in block.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(n + i as u64).to_le_bytes());
    }
}

/// Checks that `block` is block `n`.
fn check(n: u64, block: &[u8]) -> bool {
    block.len() == BLOCK
        && block
            .chunks_exact(8)
            .enumerate()
            .all(|(i, word)| word == (n + i as u64).to_le_bytes())
}

fn produce(endpoint: &str) -> shmsg::Result<()> {
    if let Some(name) = endpoint.strip_prefix("shm:") {
        let region = Arc::new(open_when_ready(name)?);
        let mut tx = Producer::attach(&region)?;
        for n in 0..BLOCKS {
            tx.send_with(BLOCK, |slot| {
                render(n, slot);
                BLOCK
            })?;
        }
        return Ok(());
    }
    let mut channel = connect_when_ready(endpoint)?;
    let mut block = vec![0u8; BLOCK];
    for n in 0..BLOCKS {
        render(n, &mut block);
        channel.send(&block)?;
    }
    Ok(())
}

fn consume(endpoint: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut child;
    let start;
    if let Some(name) = endpoint.strip_prefix("shm:") {
        // An 8 MiB ring: 32 blocks in flight.
        let region = Arc::new(Region::create(name, Geometry::new(8 << 20, BLOCK)?)?);
        let mut rx = Consumer::attach(&region)?;
        child = Command::new(exe).args(["produce", endpoint]).spawn()?;
        start = Instant::now();
        for n in 0..BLOCKS {
            if !rx.recv_with(|block| check(n, block))? {
                return Err(format!("block {n} is wrong").into());
            }
        }
    } else {
        let mut listener = shmsg::listen(endpoint)?;
        child = Command::new(exe).args(["produce", endpoint]).spawn()?;
        let mut channel = listener.accept()?;
        start = Instant::now();
        let mut block = Vec::new();
        for n in 0..BLOCKS {
            channel.recv(&mut block)?;
            if !check(n, &block) {
                return Err(format!("block {n} is wrong").into());
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if !child.wait()?.success() {
        return Err("the producer failed".into());
    }
    Ok((BLOCK as u64 * BLOCKS) as f64 / seconds)
}

fn open_when_ready(name: &str) -> shmsg::Result<Region> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Region::open(name) {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => return other,
        }
    }
}

fn connect_when_ready(endpoint: &str) -> shmsg::Result<shmsg::Channel> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match shmsg::connect(endpoint) {
            // Nothing listens there yet; other errors do not pass by waiting.
            Err(shmsg::Error::Io { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other,
        }
    }
}

const USAGE: &str =
    "usage: blocks [ENDPOINT]\n(no arguments: over shm: and unix:@, each with its throughput)";

fn main() -> std::process::ExitCode {
    common::main("blocks", USAGE, run)
}

fn run(args: &[String]) -> common::Outcome {
    let endpoints = match args {
        [role, endpoint] if role == "produce" => return Ok(produce(endpoint)?),
        [endpoint] => vec![endpoint.clone()],
        [] => {
            let id = std::process::id();
            vec![
                format!("shm:example-blocks-{id}"),
                format!("unix:@example-blocks-{id}"),
            ]
        }
        _ => return Err(USAGE.into()),
    };
    for endpoint in endpoints {
        let rate = consume(&endpoint)?;
        println!(
            "{BLOCKS} blocks of {} KiB over {endpoint}: {:.2} GB/s, every byte written and checked",
            BLOCK >> 10,
            rate / 1e9
        );
    }
    Ok(())
}
