//! Two real processes through a named region: the test process is the
//! consumer, `shmsg peer produce` (spawned) is the producer. Every message is
//! derived from a seed and its sequence number (`shmsg::workload`), so the
//! consumer checks order, length, sequence number, checksum and every byte.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The integration tests' shared helpers, beside the library's tests.
#[path = "../../tests/common/mod.rs"]
mod common;

use common::patch;
use shmsg::Error;
use shmsg::shm::layout::offsets;
use shmsg::shm::region::{PREFIX, SHM_DIR};
use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};
use shmsg::workload::Workload;

fn name(test: &str) -> String {
    common::unique("xp", test)
}

/// Spawns `shmsg peer ROLE` (`produce` or `consume`) on workload messages
/// `start .. start + count` through the named region.
fn peer(role: &str, region: &str, workload: Workload, start: u64, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shmsg"))
        .args(["peer", role, "--region", region])
        .args(["--seed", &workload.seed.to_string()])
        .args(["--max-len", &workload.max_len.to_string()])
        .args(["--start", &start.to_string(), "--count", &count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shmsg peer")
}

fn producer(region: &str, workload: Workload, start: u64, count: u64) -> Child {
    peer("produce", region, workload, start, count)
}

fn consumer(region: &str, workload: Workload, start: u64, count: u64) -> Child {
    peer("consume", region, workload, start, count)
}

/// Receives and verifies messages `start ..` until `Disconnected`, or until
/// `limit` messages; returns the next expected sequence number.
fn consume(consumer: &mut Consumer, workload: Workload, start: u64, limit: u64) -> u64 {
    let mut buf = Vec::new();
    let mut seq = start;
    while seq - start < limit {
        match consumer.recv_timeout(&mut buf, Duration::from_secs(30)) {
            Ok(_) => {
                if let Err(mismatch) = workload.verify(seq, &buf) {
                    panic!("message {seq}: {mismatch}");
                }
                seq += 1;
            }
            Err(Error::Disconnected) => break,
            Err(other) => panic!("after {} messages: {other}", seq - start),
        }
    }
    seq
}

/// As [`consume`] until `Disconnected` while `child` runs: a consumer that
/// polls before the child has attached sees the previous producer's death
/// (or detach) and reports `Disconnected`; that ends the stream only once
/// the child has exited.
fn consume_from(child: &mut Child, consumer: &mut Consumer, workload: Workload, start: u64) -> u64 {
    let mut next = start;
    loop {
        next = consume(consumer, workload, next, u64::MAX);
        if child.try_wait().unwrap().is_some() {
            // The child's last commits happen-before its exit: one more drain.
            return consume(consumer, workload, next, u64::MAX);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn million_messages_of_random_sizes() {
    let name = name("million");
    let geometry = Geometry::new(1 << 14, 512).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut consumer = Consumer::attach(&region).unwrap();
    // Sizes from 0 bytes to the region's maximum.
    let workload = Workload {
        seed: 1,
        max_len: geometry.max_message(),
    };
    let count = 1_000_000;
    let mut child = producer(&name, workload, 0, count);
    let next = consume_from(&mut child, &mut consumer, workload, 0);
    assert_eq!(next, count, "messages lost or extra");
    assert!(child.wait().unwrap().success());
}

/// `SHMSG_KILL_ROUNDS` (default 3; the deep tier runs 50) producers in a row
/// are killed with SIGKILL while the consumer keeps reading, each replaced by
/// a new producer process that continues the sequence.
#[test]
fn producer_killed_mid_stream_then_replaced() {
    let rounds: u64 = std::env::var("SHMSG_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let name = name("kill");
    let geometry = Geometry::new(1 << 16, 8192).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut consumer = Consumer::attach(&region).unwrap();
    let workload = Workload {
        seed: 2,
        max_len: 8192,
    };
    let mut next = 0;
    let mut after_flowing = 0;
    for round in 0..rounds {
        let mut child = producer(&name, workload, next, u64::MAX / 2);
        // Receive until the stream is flowing: until this child has attached
        // and sent, the consumer may still see the previous producer's
        // death as `Disconnected`.
        let mut flowing = next;
        while flowing < next + 2000 {
            flowing = consume(&mut consumer, workload, flowing, next + 2000 - flowing);
            assert!(child.try_wait().unwrap().is_none(), "the producer exited");
        }
        // Kill the producer while the consumer keeps reading, so the kill can
        // land in the middle of a write.
        let pid = child.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5 + 7 * round % 20));
            // SIGKILL: no chance to detach.
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            Instant::now()
        });
        // Only whole messages arrive, in order, then `Disconnected`.
        next = consume(&mut consumer, workload, flowing, u64::MAX);
        let noticed = killer.join().unwrap().elapsed();
        // A dead producer is noticed after one or two sleep slices (20 to
        // 40 ms); 5 s is over 100 times that, so only a consumer that never
        // notices fails, not a loaded machine.
        assert!(
            noticed < Duration::from_secs(5),
            "the dead producer took {noticed:?} to notice"
        );
        after_flowing += next - flowing;
        child.wait().unwrap();
    }
    assert!(
        after_flowing > 0,
        "nothing arrived while the producers were being killed"
    );
    // A last producer finishes cleanly: nothing was lost at any takeover.
    let mut last = producer(&name, workload, next, 5000);
    let end = consume_from(&mut last, &mut consumer, workload, next);
    assert_eq!(end, next + 5000);
    assert!(last.wait().unwrap().success());
}

#[test]
fn second_producer_is_refused_until_the_first_dies() {
    let name = name("second");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut consumer = Consumer::attach(&region).unwrap();
    let workload = Workload {
        seed: 3,
        max_len: 100,
    };
    // The first producer fills the ring and waits for room.
    let mut first = producer(&name, workload, 0, u64::MAX / 2);
    consume(&mut consumer, workload, 0, 1);
    // A second producer process is refused (exit code 4: role taken) ...
    let second = producer(&name, workload, 0, 1).wait_with_output().unwrap();
    assert_eq!(
        second.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("producer side"));
    // ... and so is one in this process.
    assert!(matches!(
        Producer::attach(&region),
        Err(Error::RoleTaken(shmsg::Role::Producer))
    ));
    first.kill().unwrap();
    first.wait().unwrap();
    // The dead producer's role can be taken over at once.
    let producer = Producer::attach(&region).unwrap();
    drop(producer);
}

#[test]
fn clean_detach_then_reattach_from_another_process() {
    let name = name("reattach");
    let geometry = Geometry::new(1 << 12, 200).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut consumer = Consumer::attach(&region).unwrap();
    let workload = Workload {
        seed: 4,
        max_len: 200,
    };
    for round in 0..3 {
        let mut child = producer(&name, workload, round * 100, 100);
        let next = consume_from(&mut child, &mut consumer, workload, round * 100);
        assert!(child.wait().unwrap().success());
        assert_eq!(next, (round + 1) * 100);
        assert!(matches!(
            consumer.try_recv(&mut Vec::new()),
            Err(Error::Disconnected)
        ));
    }
}

/// The producer side of a consumer's death: a consumer process takes 1000
/// messages and then is killed while it waits for more; the producer, which
/// keeps sending, gets `Disconnected` once the ring is full, within bounded
/// time; a new consumer process attaches and receives exactly the messages
/// sent after the first 1000.
#[test]
fn consumer_killed_then_replaced() {
    let name = name("consumer-kill");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut tx = Producer::attach(&region).unwrap();
    let workload = Workload {
        seed: 7,
        max_len: 100,
    };
    let mut first = consumer(&name, workload, 0, u64::MAX);
    for seq in 0..1000 {
        tx.send_timeout(&workload.message(seq), Duration::from_secs(30))
            .unwrap();
    }
    // Wait until the consumer has released everything, so it is blocked in
    // `recv` when it dies and has read nothing it did not release.
    let deadline = Instant::now() + Duration::from_secs(30);
    while region.header_word(offsets::HEAD) != region.header_word(offsets::TAIL) {
        assert!(
            Instant::now() < deadline,
            "the consumer did not drain the ring"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let started = Instant::now();
    let mut seq = 1000;
    loop {
        match tx.send_timeout(&workload.message(seq), Duration::from_secs(30)) {
            Ok(()) => seq += 1,
            Err(Error::Disconnected) => break,
            Err(other) => panic!("{other}"),
        }
    }
    // Filling the ring and noticing the dead consumer takes tens of
    // milliseconds; 5 s is over 100 times that (a loaded machine passes,
    // a producer that never notices does not).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let sent = seq;
    drop(tx);
    let out = consumer(&name, workload, 1000, u64::MAX)
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(received, sent - 1000);
}

/// An anonymous region (a sealed memfd, no name) handed to another process
/// over a Unix socket: the child connects, receives the descriptor, attaches
/// as the producer and streams; the parent consumes and verifies.
#[test]
fn anonymous_region_passed_over_a_unix_socket() {
    let geometry = Geometry::new(1 << 14, 512).unwrap();
    let region = Arc::new(Region::anonymous(geometry).unwrap());
    let path = common::temp_socket("xp", "share");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let workload = Workload {
        seed: 8,
        max_len: 512,
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmsg"))
        .args(["peer", "produce", "--socket"])
        .arg(&path)
        .args(["--seed", "8", "--max-len", "512", "--count", "20000"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (socket, _) = listener.accept().unwrap();
    region.send_over(&socket).unwrap();
    let mut consumer = Consumer::attach(&region).unwrap();
    let next = consume_from(&mut child, &mut consumer, workload, 0);
    assert_eq!(next, 20000);
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&path).unwrap();
    // A message without a descriptor, and a closed peer, are typed errors.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (&a).write_all(b"R").unwrap();
    assert!(matches!(Region::receive_from(&b), Err(Error::Io { .. })));
    drop(a);
    assert!(matches!(Region::receive_from(&b), Err(Error::Disconnected)));
}

#[test]
fn other_process_refuses_mismatched_layouts() {
    let workload = Workload {
        seed: 5,
        max_len: 10,
    };
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    for (field, offset, value) in [
        ("abi_version", offsets::ABI_VERSION, 99),
        ("cache_line", offsets::CACHE_LINE, 64),
        ("pointer_width", offsets::POINTER_WIDTH, 4),
        ("endian", offsets::ENDIAN, 0x0807_0605_0403_0201),
        ("ring_kind", offsets::RING_KIND, 7),
    ] {
        let name = name(&format!("mismatch-{field}"));
        let region = Region::create(&name, geometry).unwrap();
        patch(&name, offset, value);
        let out = producer(&name, workload, 0, 1).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{field}: {stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
        drop(region);
    }
    // A region file of the wrong size, made by hand.
    let name = name("mismatch-size");
    let region = Region::create(&name, geometry).unwrap();
    let path = std::path::Path::new(SHM_DIR).join(format!("{PREFIX}{name}"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(geometry.region_size() as u64 + 4096)
        .unwrap();
    let out = producer(&name, workload, 0, 1).wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("region size"));
    drop(region);
}

#[test]
fn corrupt_record_header_is_a_typed_error() {
    let name = name("corrupt");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut consumer = Consumer::attach(&region).unwrap();
    let workload = Workload {
        seed: 6,
        max_len: 100,
    };
    assert!(producer(&name, workload, 0, 3).wait().unwrap().success());
    assert_eq!(consume(&mut consumer, workload, 0, 1), 1);
    // Another process scribbles over the next record's header.
    let head = region.header_word(offsets::HEAD);
    let offset = shmsg::shm::layout::DATA_OFFSET + (head as usize & (geometry.capacity() - 1));
    for garbage in [u64::MAX, 0x1234_5678_9abc_def0, 1 << 31] {
        patch(&name, offset, garbage);
        match consumer.try_recv(&mut Vec::new()) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("garbage {garbage:#x} gave {other:?}"),
        }
    }
}

/// CPU time (user + system) and voluntary context switches of process `pid`
/// so far, from `/proc`.
fn cpu_and_switches(pid: u32) -> (Duration, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: `sysconf` with a valid name only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let cpu = Duration::from_nanos(ticks * 1_000_000_000 / per_second);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let switches = status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (cpu, switches)
}

/// Waits until the consumer is announced asleep on the data event (its
/// spin budget spent), then a moment more for it to enter the kernel.
fn asleep(region: &Region) {
    let started = Instant::now();
    while shmsg::shm::wait::sleepers(region.header_word(offsets::DATA_EVENT)) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the consumer never slept"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(5));
}

/// Waits until the consumer has released everything sent (head == tail).
fn drained(region: &Region) -> Duration {
    let started = Instant::now();
    while region.header_word(offsets::HEAD) != region.header_word(offsets::TAIL) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the consumer did not receive"
        );
        std::hint::spin_loop();
    }
    started.elapsed()
}

/// An idle consumer process sleeps in the kernel: over two idle seconds it
/// uses almost no CPU (a spinning waiter would use two seconds of it) and
/// wakes up about once per sleep slice (a waiter that polls every
/// millisecond would wake up thousands of times). Then each new message,
/// sent while the consumer is announced asleep, makes the producer wake it
/// (the event word's epoch moves: the notifier saw the sleeper), and the
/// consumer receives it.
///
/// How fast a sleeping consumer wakes is a performance figure, measured by
/// `cargo bench --bench wait` (parked-receiver round trips against a raw
/// futex); here the only time bound is a generous one that only a consumer
/// that never wakes would miss.
#[test]
fn idle_consumer_sleeps_and_wakes_on_the_next_message() {
    let name = name("idle");
    let geometry = Geometry::new(1 << 12, 100).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut tx = Producer::attach(&region).unwrap();
    let workload = Workload {
        seed: 9,
        max_len: 100,
    };
    let tries = 9;
    let child = consumer(&name, workload, 0, 1 + tries);
    let pid = child.id();
    tx.send(&workload.message(0)).unwrap();
    drained(&region);
    // Past the spin budget (microseconds), the consumer sleeps.
    asleep(&region);
    let idle = Duration::from_secs(2);
    let (cpu_before, switches_before) = cpu_and_switches(pid);
    std::thread::sleep(idle);
    let (cpu_after, switches_after) = cpu_and_switches(pid);
    let cpu = cpu_after - cpu_before;
    let wakeups = switches_after - switches_before;
    let slices = (idle.as_millis() / shmsg::shm::wait::SLICE.as_millis()) as u64;
    eprintln!(
        "idle for {idle:?}: consumer used {cpu:?} of CPU, {wakeups} voluntary context switches ({slices} slices)"
    );
    // A sleeping consumer uses well under a millisecond here; a spinning
    // one would use the whole two seconds: the bound (100 ms) is more than
    // 100 times the typical figure and 20 times below a spinner's.
    assert!(
        cpu < idle / 20,
        "the idle consumer used {cpu:?} of CPU in {idle:?}"
    );
    // One switch per slice at most (a loaded machine only stretches the
    // slices, which makes fewer); a millisecond poller would make 2000.
    assert!(
        wakeups <= 3 * slices,
        "the idle consumer woke up {wakeups} times in {idle:?}"
    );
    // A consumer at the end of a slice retracts its announcement and
    // announces again a few instructions later; a send that lands in that
    // window finds no sleeper and needs no wake-up (the consumer's re-check
    // sees the message). So all but two sends must wake it; a notifier that
    // never wakes fails every one.
    let mut woken = 0;
    for seq in 1..=tries {
        asleep(&region);
        let before = shmsg::shm::wait::epoch(region.header_word(offsets::DATA_EVENT));
        tx.send(&workload.message(seq)).unwrap();
        let after = shmsg::shm::wait::epoch(region.header_word(offsets::DATA_EVENT));
        woken += u64::from(before != after);
        // Received well within the 30 s that `drained` allows: a consumer
        // woken only by its slice takes 20 ms, one never woken forever.
        drained(&region);
    }
    assert!(
        woken + 2 >= tries,
        "only {woken} of {tries} messages sent to a sleeping consumer woke it"
    );
    drop(tx);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10");
}
