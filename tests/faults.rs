//! Liveness under faults: every call returns by its deadline, and a value
//! another process writes into the region is a typed error, never a panic
//! (these tests run in the test profile, with overflow checks on).
//!
//! Each case is a defect once seen from outside the project:
//!
//! * `mpmc_hostile_head`: another process stores `head - 8` into an Mpmc
//!   ring's head; a consumer's `recv_timeout(100 ms)` used to wait forever
//!   for a hand-back turn that never comes;
//! * `mpmc_dead_consumer`: a consumer process SIGKILLed inside `recv_with`'s
//!   closure (holding a record); the other consumer's `recv_timeout` calls
//!   used to never return, and the ring stayed wedged. Now the other
//!   consumer hands the dead one's record back for it and the ring flows;
//! * `mpmc_stalled_consumer`: a live consumer stalls inside `recv_with`;
//!   the other's `recv_timeout(100 ms)` used to last as long as the stall;
//! * `mpsc_hostile_tail`: another process sets an Mpsc ring's tail far past
//!   its head; `try_send` used to panic ("attempt to add with overflow") in
//!   a debug build and claim space at the hostile tail in a release build;
//! * `mpsc_consumer_killed_mid_release`: an Mpsc consumer SIGKILLed while
//!   it zeroes a large record it has read (its release); the consumer that
//!   took over used to deliver that record with part of it zeroed (torn),
//!   or, killed after the header was zeroed, find a zero header at the head
//!   and stall for good. Found by the crash campaign;
//! * `dead_receiver_{spsc,mpsc,mpmc}`: a receiving process is SIGKILLed
//!   while the ring has space; the sender used to go on "sending" until the
//!   ring filled. Now it gets `Disconnected` within a watchdog period or
//!   two ([`shmsg::shm::watch`]); the case prints the time from the kill
//!   to the first `Disconnected` (median and max of its rounds);
//! * `dead_sender_{spsc,mpsc,mpmc}`: the other direction: a receiver
//!   blocked on an empty ring whose sender process is SIGKILLed gets
//!   `Disconnected` (timed the same way).
//!
//! The time bounds are far above what the calls take (100 ms plus at most
//! a 20 ms sleep slice) and far below what the defects took (seconds, or
//! forever), so a loaded machine passes and a regression fails; each says
//! its margin.
//!
//! This file has its own `main` (`harness = false`): a child is this
//! executable with `SHMSG_FAULTS_ROLE` set. An argument runs only the cases
//! whose names contain it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::patch;
use shmsg::Error;
use shmsg::shm::layout::{RingKind, offsets};
use shmsg::shm::mpmc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};

/// The timeout the calls under test are given.
const TIMEOUT: Duration = Duration::from_millis(100);
/// The most a call given [`TIMEOUT`] may take here: it takes at most 120 ms
/// on an idle machine (the timeout plus one sleep slice); 3 s is 25 times
/// that, and well below the seconds or forever that the defects took.
const BOUND: Duration = Duration::from_secs(3);

fn name(case: &str) -> String {
    common::unique("faults", case)
}

/// Starts this executable as a child in `role` on region `name` (more
/// variables in `env`) and waits for the line it prints once it is ready,
/// which must be `ready_line`.
fn child(role: &str, name: &str, env: &[(&str, &str)], ready_line: &str) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SHMSG_FAULTS_ROLE", role)
        .env("SHMSG_FAULTS_REGION", name)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), ready_line, "the {role} child did not start");
    child
}

/// SIGKILLs `child` and reaps it.
fn kill(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `call`, requires it to return within [`BOUND`], and returns its
/// result.
fn timed<T>(what: &str, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = call();
    let took = started.elapsed();
    eprintln!("  {what}: {took:?}");
    assert!(took < BOUND, "{what} took {took:?}");
    result
}

fn mpmc_hostile_head() {
    let name = name("head");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpmc).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    producer.send(b"one").unwrap();
    producer.send(b"two").unwrap();
    let head = region.header_word(offsets::HEAD);
    patch(&name, offsets::HEAD, head.wrapping_sub(8));
    let mut consumer = Consumer::attach(&region).unwrap();
    let mut buf = Vec::new();
    // The message is delivered; its hand-back waits for a turn that never
    // comes, and stays pending past the deadline.
    let first = timed("first recv_timeout", || {
        consumer.recv_timeout(&mut buf, TIMEOUT)
    });
    assert_eq!(first.unwrap(), 3);
    assert_eq!(buf, b"one");
    // Nothing more while the hand-back is stuck: a timeout, on time.
    let second = timed("second recv_timeout", || {
        consumer.recv_timeout(&mut buf, TIMEOUT)
    });
    assert!(matches!(second, Err(Error::Timeout)), "{second:?}");
    assert!(matches!(consumer.try_recv(&mut buf), Err(Error::Empty)));
    // Dropping the consumer gives up on the hand-back within a slice.
    timed("drop", || drop(consumer));
}

/// Child role: attach a consumer, say "holding" from inside `recv_with`'s
/// closure, and wait there to be killed.
fn hold() -> Result<(), String> {
    let name = std::env::var("SHMSG_FAULTS_REGION").map_err(|e| e.to_string())?;
    let region = Arc::new(Region::open(&name).map_err(|e| e.to_string())?);
    let mut consumer = Consumer::attach(&region).map_err(|e| e.to_string())?;
    consumer
        .recv_with(|_| {
            println!("holding");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        })
        .map_err(|e| e.to_string())
}

fn mpmc_dead_consumer() {
    let name = name("dead");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpmc).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    for message in [&b"held"[..], b"two", b"three"] {
        producer.send(message).unwrap();
    }
    kill(child("hold", &name, &[], "holding"));
    let mut consumer = Consumer::attach(&region).unwrap();
    let mut buf = Vec::new();
    // "two" is after the dead consumer's record: delivered, and its
    // hand-back waits for the head to pass "held". After a sleep slice the
    // waiting consumer finds the holder dead and hands "held" back for it
    // (not delivered again: module docs of shm::mpmc); the ring flows on.
    for expected in [&b"two"[..], b"three"] {
        let got = timed("recv_timeout after the death", || {
            consumer.recv_timeout(&mut buf, TIMEOUT)
        });
        assert_eq!(got.unwrap(), expected.len());
        assert_eq!(buf, expected);
    }
    let empty = timed("recv_timeout on the empty ring", || {
        consumer.recv_timeout(&mut buf, TIMEOUT)
    });
    assert!(matches!(empty, Err(Error::Timeout)), "{empty:?}");
    assert_eq!(
        region.header_word(offsets::HEAD),
        region.header_word(offsets::TAIL),
        "every record handed back, the dead consumer's too"
    );
    // Not wedged: a ring's worth of messages goes through.
    let mut sent = 0;
    for seq in 0..200u32 {
        producer.send_timeout(&seq.to_le_bytes(), BOUND).unwrap();
        sent += 1;
        assert_eq!(consumer.recv_timeout(&mut buf, BOUND).unwrap(), 4);
        assert_eq!(buf, seq.to_le_bytes());
    }
    assert_eq!(sent, 200);
}

fn mpmc_stalled_consumer() {
    let name = name("stall");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpmc).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    for message in [&b"stalled"[..], b"two", b"three"] {
        producer.send(message).unwrap();
    }
    let mut staller = Consumer::attach(&region).unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (holding, held) = std::sync::mpsc::channel::<()>();
    let stalled = std::thread::spawn(move || {
        staller
            .recv_with(|payload| {
                holding.send(()).unwrap();
                // Stalls until the test ends (60 s at most).
                let _ = released.recv_timeout(Duration::from_secs(60));
                payload.to_vec()
            })
            .unwrap()
    });
    held.recv().unwrap();
    let mut consumer = Consumer::attach(&region).unwrap();
    let mut buf = Vec::new();
    let first = timed("recv_timeout beside a stalled consumer", || {
        consumer.recv_timeout(&mut buf, TIMEOUT)
    });
    assert_eq!(first.unwrap(), 3);
    assert_eq!(buf, b"two");
    let second = timed("next recv_timeout", || {
        consumer.recv_timeout(&mut buf, TIMEOUT)
    });
    assert!(matches!(second, Err(Error::Timeout)), "{second:?}");
    // Once the staller hands its record back, ours follows and the rest
    // flows again: nothing lost, nothing twice.
    release.send(()).unwrap();
    assert_eq!(stalled.join().unwrap(), b"stalled");
    let third = consumer.recv_timeout(&mut buf, Duration::from_secs(10));
    assert_eq!(third.unwrap(), 5);
    assert_eq!(buf, b"three");
    assert!(matches!(consumer.try_recv(&mut buf), Err(Error::Empty)));
    assert_eq!(
        region.header_word(offsets::HEAD),
        region.header_word(offsets::TAIL),
        "every record handed back"
    );
}

fn mpsc_hostile_tail() {
    let name = name("tail");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpsc).unwrap());
    let _consumer = Consumer::attach(&region).unwrap();
    let mut producer = Producer::attach(&region).unwrap();
    assert_eq!(region.header_word(offsets::HEAD), 0);
    for tail in [u64::MAX - 7, (u64::MAX / 2) & !7, 1 << 20] {
        patch(&name, offsets::TAIL, tail);
        match producer.try_send(b"hello") {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("tail {tail:#x}: try_send gave {other:?}"),
        }
        let blocking = timed("send_timeout", || producer.send_timeout(b"hello", TIMEOUT));
        assert!(
            matches!(blocking, Err(Error::Corrupt { .. })),
            "tail {tail:#x}: {blocking:?}"
        );
    }
}

/// Child role: attach a receiver of the ring kind in `SHMSG_FAULTS_KIND`,
/// receive one message, say "ready", and wait to be killed.
fn receive_one() -> Result<(), String> {
    let name = std::env::var("SHMSG_FAULTS_REGION").map_err(|e| e.to_string())?;
    let kind = std::env::var("SHMSG_FAULTS_KIND").map_err(|e| e.to_string())?;
    let region = Arc::new(Region::open(&name).map_err(|e| e.to_string())?);
    let mut buf = Vec::new();
    let received = if kind == "spsc" {
        let mut consumer =
            shmsg::shm::spsc::Consumer::attach(&region).map_err(|e| e.to_string())?;
        let received = consumer.recv(&mut buf);
        std::mem::forget(consumer);
        received
    } else {
        let mut consumer = Consumer::attach(&region).map_err(|e| e.to_string())?;
        let received = consumer.recv(&mut buf);
        std::mem::forget(consumer);
        received
    };
    received.map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

/// Child role: attach the Mpsc consumer and receive (in place, the
/// payload only measured) until killed.
fn consume_forever() -> Result<(), String> {
    let name = std::env::var("SHMSG_FAULTS_REGION").map_err(|e| e.to_string())?;
    let region = Arc::new(Region::open(&name).map_err(|e| e.to_string())?);
    let mut consumer = Consumer::attach(&region).map_err(|e| e.to_string())?;
    println!("attached");
    std::io::stdout().flush().unwrap();
    loop {
        consumer
            .recv_with(|payload| payload.len())
            .map_err(|e| e.to_string())?;
    }
}

fn mpsc_consumer_killed_mid_release() {
    const LEN: usize = 200_000;
    let name = name("release");
    let geometry = Geometry::new(1 << 20, LEN).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpsc).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    let message = vec![0xAB; LEN];
    let mut buf = Vec::new();
    let (mut checked, mut empty) = (0, 0);
    for round in 0..20u64 {
        // Keep the ring full so the consumer is always zeroing something.
        while producer.try_send(&message).is_ok() {}
        let consumer = child("consume-forever", &name, &[], "attached");
        let feeder = Instant::now();
        while feeder.elapsed() < Duration::from_millis(5 + round % 7 * 5) {
            let _ = producer.try_send(&message);
        }
        kill(consumer);
        let mut consumer = Consumer::attach(&region).unwrap();
        match consumer.recv_timeout(&mut buf, Duration::from_secs(1)) {
            Ok(len) => {
                assert_eq!(len, LEN, "round {round}: length");
                let zeros = buf.iter().filter(|&&b| b != 0xAB).count();
                assert_eq!(zeros, 0, "round {round}: {zeros} bytes torn");
                checked += 1;
            }
            Err(Error::Timeout) => {
                assert_eq!(
                    region.header_word(offsets::HEAD),
                    region.header_word(offsets::TAIL),
                    "round {round}: the ring stalled with records in it"
                );
                empty += 1;
            }
            Err(other) => panic!("round {round}: {other}"),
        }
        // Drain what is left, checking it.
        while let Ok(len) = consumer.try_recv(&mut buf) {
            assert_eq!(len, LEN);
            assert!(buf.iter().all(|&b| b == 0xAB), "round {round}: torn");
        }
    }
    eprintln!("  20 kills: {checked} first messages intact, {empty} rings empty");
}

/// A sender whose receiver process is SIGKILLed while the ring has space
/// gets `Disconnected` from its next send after the watchdog's look.
fn dead_receiver(kind: &str) {
    let rounds = 5;
    let mut noticed = Vec::new();
    for round in 0..rounds {
        let name = name(&format!("receiver-{kind}-{round}"));
        // 1 MiB: filling it at one message a millisecond takes over 40 s, so
        // only a noticed death ends the loop below within its bound.
        let geometry = Geometry::new(1 << 20, 100).unwrap();
        let ring_kind = match kind {
            "spsc" => RingKind::Spsc,
            "mpsc" => RingKind::Mpsc,
            _ => RingKind::Mpmc,
        };
        let region = Arc::new(Region::create_kind(&name, geometry, ring_kind).unwrap());
        let mut producer: Box<dyn shmsg::Sender> = if kind == "spsc" {
            Box::new(shmsg::shm::spsc::Producer::attach(&region).unwrap())
        } else {
            Box::new(Producer::attach(&region).unwrap())
        };
        let mut send = |m: &[u8]| producer.send(m);
        // The child receives this first message, then says it is ready.
        send(b"first").unwrap();
        kill(child(
            "receive-one",
            &name,
            &[("SHMSG_FAULTS_KIND", kind)],
            "ready",
        ));
        let killed = Instant::now();
        // One small message a millisecond: the ring never fills within the
        // bound (3 s: at most 3000 records of 24 bytes).
        let mut sent = 0u64;
        let result = loop {
            match send(b"anyone there?") {
                Ok(()) => sent += 1,
                Err(error) => break error,
            }
            assert!(
                killed.elapsed() < BOUND,
                "{kind}: {sent} messages sent in {BOUND:?} after the receiver died"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let took = killed.elapsed();
        assert!(matches!(result, Error::Disconnected), "{kind}: {result:?}");
        // And it stays so.
        assert!(matches!(send(b"still?"), Err(Error::Disconnected)));
        noticed.push(took);
    }
    noticed.sort();
    eprintln!(
        "  {kind}: SIGKILL to Disconnected, median {:?}, max {:?} ({rounds} rounds)",
        noticed[noticed.len() / 2],
        noticed[noticed.len() - 1]
    );
}

/// Child role: attach a sender of the ring kind in `SHMSG_FAULTS_KIND`,
/// send one message, say "ready", and wait to be killed.
fn send_one() -> Result<(), String> {
    let name = std::env::var("SHMSG_FAULTS_REGION").map_err(|e| e.to_string())?;
    let kind = std::env::var("SHMSG_FAULTS_KIND").map_err(|e| e.to_string())?;
    let region = Arc::new(Region::open(&name).map_err(|e| e.to_string())?);
    let mut producer: Box<dyn shmsg::Sender> = if kind == "spsc" {
        Box::new(shmsg::shm::spsc::Producer::attach(&region).map_err(|e| e.to_string())?)
    } else {
        Box::new(Producer::attach(&region).map_err(|e| e.to_string())?)
    };
    producer.send(b"first").map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

/// A receiver blocked on an empty ring whose only sender process is
/// SIGKILLed gets `Disconnected`: after its sleep slices find the sender
/// dead (the wait loop's liveness check).
fn dead_sender(kind: &str) {
    let rounds = 5;
    let mut noticed = Vec::new();
    for round in 0..rounds {
        let name = name(&format!("sender-{kind}-{round}"));
        let geometry = Geometry::new(1 << 16, 100).unwrap();
        let ring_kind = match kind {
            "spsc" => RingKind::Spsc,
            "mpsc" => RingKind::Mpsc,
            _ => RingKind::Mpmc,
        };
        let region = Arc::new(Region::create_kind(&name, geometry, ring_kind).unwrap());
        let mut consumer: Box<dyn shmsg::Receiver> = if kind == "spsc" {
            Box::new(shmsg::shm::spsc::Consumer::attach(&region).unwrap())
        } else {
            Box::new(Consumer::attach(&region).unwrap())
        };
        let sender = child("send-one", &name, &[("SHMSG_FAULTS_KIND", kind)], "ready");
        let mut buf = Vec::new();
        assert_eq!(consumer.recv_timeout(&mut buf, BOUND).unwrap(), 5);
        kill(sender);
        let killed = Instant::now();
        let end = consumer.recv_timeout(&mut buf, BOUND);
        let took = killed.elapsed();
        assert!(matches!(end, Err(Error::Disconnected)), "{kind}: {end:?}");
        noticed.push(took);
    }
    noticed.sort();
    eprintln!(
        "  {kind}: sender SIGKILL to the receiver's Disconnected, median {:?}, max {:?} ({rounds} rounds)",
        noticed[noticed.len() / 2],
        noticed[noticed.len() - 1]
    );
}

fn dead_sender_spsc() {
    dead_sender("spsc");
}

fn dead_sender_mpsc() {
    dead_sender("mpsc");
}

fn dead_sender_mpmc() {
    dead_sender("mpmc");
}

fn dead_receiver_spsc() {
    dead_receiver("spsc");
}

fn dead_receiver_mpsc() {
    dead_receiver("mpsc");
}

fn dead_receiver_mpmc() {
    dead_receiver("mpmc");
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_FAULTS_ROLE") {
        let result = match role.as_str() {
            "hold" => hold(),
            "receive-one" => receive_one(),
            "consume-forever" => consume_forever(),
            "send-one" => send_one(),
            other => Err(format!("unknown role {other}")),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("child: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let cases: [(&str, fn()); 11] = [
        ("mpmc_hostile_head", mpmc_hostile_head),
        ("mpmc_dead_consumer", mpmc_dead_consumer),
        ("mpmc_stalled_consumer", mpmc_stalled_consumer),
        ("mpsc_hostile_tail", mpsc_hostile_tail),
        (
            "mpsc_consumer_killed_mid_release",
            mpsc_consumer_killed_mid_release,
        ),
        ("dead_receiver_spsc", dead_receiver_spsc),
        ("dead_receiver_mpsc", dead_receiver_mpsc),
        ("dead_receiver_mpmc", dead_receiver_mpmc),
        ("dead_sender_spsc", dead_sender_spsc),
        ("dead_sender_mpsc", dead_sender_mpsc),
        ("dead_sender_mpmc", dead_sender_mpmc),
    ];
    let filter = common::case_filter();
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if !common::selected(name, &filter) {
            continue;
        }
        eprintln!("{name}");
        match std::panic::catch_unwind(case) {
            Ok(()) => passed += 1,
            Err(_) => {
                eprintln!("{name} FAILED");
                failed += 1;
            }
        }
    }
    println!("test result: {passed} passed; {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
