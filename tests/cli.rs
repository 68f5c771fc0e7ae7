//! The everyday commands end to end, with the built binary: `shmsg send`
//! and `shmsg recv` carry real data over every transport, lines and
//! length-prefixed frames; `shmsg inspect` and `shmsg clean` against live
//! and dead creators; error messages and exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;

use shmsg::Sender;
use shmsg::shm::region::{PREFIX, SHM_DIR};
use shmsg::shm::{Geometry, Region};

fn shmsg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmsg"))
}

fn unique(what: &str) -> String {
    format!("cli-{}-{what}", std::process::id())
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(what));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `shmsg recv`: the child, the endpoint it printed, and threads
/// collecting its stdout (read as it comes, so that a full pipe cannot stall
/// it) and the rest of its stderr.
struct Recv {
    child: Child,
    endpoint: String,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<String>,
}

impl Recv {
    fn start(mut command: Command) -> Recv {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmsg recv");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("shmsg recv: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from shmsg recv: {line:?}"))
            .to_string();
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            rest
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = out.read_to_end(&mut all);
            all
        });
        Recv {
            child,
            endpoint,
            stdout,
            stderr,
        }
    }

    fn listen(endpoint: &str, flags: &[&str]) -> Recv {
        let mut command = shmsg();
        command.arg("recv").args(flags).arg(endpoint);
        Recv::start(command)
    }

    /// Waits for it to exit; its stdout, after checking it succeeded.
    fn output(mut self) -> Vec<u8> {
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.join().unwrap();
        assert!(status.success(), "shmsg recv failed: {status:?}: {stderr}");
        self.stdout.join().unwrap()
    }
}

fn send(endpoint: &str, flags: &[&str], input: &[u8]) -> Output {
    let mut child = shmsg()
        .arg("send")
        .args(flags)
        .arg(endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shmsg send");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    let _ = writer.join().unwrap();
    output
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Lines of all kinds: empty, non-ASCII, long.
fn lines() -> Vec<u8> {
    let mut text = String::new();
    for i in 0..300 {
        match i % 5 {
            0 => text.push('\n'),
            1 => text.push_str(&format!("line {i}: grüße, 日本\n")),
            2 => text.push_str(&format!("{}\n", "x".repeat(i * 30))),
            _ => text.push_str(&format!("message number {i}\n")),
        }
    }
    text.into_bytes()
}

/// Frames of binary messages, with newlines, zero bytes and empty ones.
fn frames() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..200u32 {
        let message: Vec<u8> = (0..(i * 37) % 5000).map(|j| (j * 7 + i) as u8).collect();
        out.extend_from_slice(&(message.len() as u32).to_le_bytes());
        out.extend_from_slice(&message);
    }
    out
}

fn round_trip(endpoint: &str, flags: &[&str], input: &[u8]) {
    let recv = Recv::listen(endpoint, flags);
    let output = send(&recv.endpoint, flags, input);
    assert_ok(&output, &format!("shmsg send {}", recv.endpoint));
    let received = recv.output();
    assert_eq!(received.len(), input.len(), "over {endpoint}");
    assert!(received == input, "the data changed over {endpoint}");
}

fn transports(scratch: &Path) -> Vec<String> {
    vec![
        format!("shm:{}", unique("shm")),
        format!("unix:{}", scratch.join("stream.sock").display()),
        format!("unix:@{}", unique("abstract")),
        format!("seqpacket:{}", scratch.join("seq.sock").display()),
        format!("seqpacket:@{}", unique("seqpacket")),
        "tcp:127.0.0.1:0".to_string(),
    ]
}

#[test]
fn lines_over_every_transport() {
    let scratch = Scratch::new("lines");
    for endpoint in transports(&scratch.0) {
        round_trip(&endpoint, &[], &lines());
    }
}

#[test]
fn frames_over_every_transport() {
    let scratch = Scratch::new("frames");
    for endpoint in transports(&scratch.0) {
        round_trip(&endpoint, &["--length-prefixed"], &frames());
    }
}

/// `pipe:RFD,WFD` between two processes, over two named pipes opened by
/// the shell in an order that cannot deadlock.
#[test]
fn lines_and_frames_over_pipes() {
    for flags in [&[][..], &["--length-prefixed"][..]] {
        let scratch = Scratch::new("pipes");
        let (a, b) = (scratch.0.join("a"), scratch.0.join("b"));
        for fifo in [&a, &b] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let input = if flags.is_empty() { lines() } else { frames() };
        let flags = flags.join(" ");
        // The shells open the pipes before `shmsg` starts, and an open
        // blocks until the other end is opened too: start both, then wait
        // for the receiver's first line.
        let mut sender = Command::new("sh")
            .args([
                "-c",
                &format!(r#"exec "$0" send {flags} pipe:3,4 3<"$1" 4>"$2""#),
                env!("CARGO_BIN_EXE_shmsg"),
            ])
            .arg(&b)
            .arg(&a)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!(r#"exec "$0" recv {flags} pipe:3,4 4>"$1" 3<"$2""#),
            env!("CARGO_BIN_EXE_shmsg"),
        ]);
        command.arg(&b).arg(&a);
        let recv = Recv::start(command);
        assert_eq!(recv.endpoint, "pipe:3,4");
        sender.stdin.take().unwrap().write_all(&input).unwrap();
        let output = sender.wait_with_output().unwrap();
        assert_ok(&output, "shmsg send pipe:3,4");
        assert!(recv.output() == input, "the data changed over pipes");
    }
}

#[test]
fn recv_stops_after_count() {
    let recv = Recv::listen(&format!("unix:@{}", unique("count")), &["--count", "2"]);
    // The sender may see the receiver leave before it has sent everything.
    let _ = send(&recv.endpoint, &[], b"one\ntwo\nthree\nfour\n");
    assert_eq!(recv.output(), b"one\ntwo\n");
}

#[test]
fn errors_say_what_to_do_with_documented_codes() {
    let nobody = format!("unix:@{}", unique("nobody"));
    let output = send(&nobody, &["--timeout", "1s"], b"x\n");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("shmsg recv {nobody}")), "{stderr}");

    let output = send("bogus:x", &[], b"");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("scheme"));

    let output = shmsg().args(["recv", "pipe"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pipe:3,4"));

    let output = send(&format!("shm:{}", unique("absent")), &[], b"x\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("shmsg recv shm:"));

    let output = shmsg()
        .args(["inspect", &format!("shm:{}", unique("absent"))])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("shmsg clean"));

    let output = shmsg()
        .args(["inspect", "tcp:127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    let help = shmsg().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Exit codes:") && help.contains("6  a received message failed"));
}

fn inspect(endpoint: &str) -> String {
    let output = shmsg().args(["inspect", endpoint]).output().unwrap();
    assert_ok(&output, "shmsg inspect");
    String::from_utf8(output.stdout).unwrap()
}

/// A live endpoint made in this process: its header, fill level and sides.
#[test]
fn inspect_live_endpoint() {
    let name = unique("inspect");
    let endpoint = format!("shm:{name}");
    let options = shmsg::Options {
        max_message: Some(1000),
        capacity: Some(1 << 16),
        ..shmsg::Options::default()
    };
    let _listener = shmsg::listen_with(&endpoint, &options).unwrap();
    let mut client = shmsg::connect(&endpoint).unwrap();
    for _ in 0..3 {
        client.send(&[7u8; 100]).unwrap();
    }
    let text = inspect(&endpoint);
    let pid = std::process::id();
    assert!(text.contains(&format!("region {name} ")), "{text}");
    assert!(text.contains(&format!("region {name}.reply ")), "{text}");
    assert!(
        text.contains("capacity 65536 bytes, max message 1000 bytes"),
        "{text}"
    );
    // Three records of 8 + 104 bytes wait in the request ring.
    assert!(text.contains("fill: 336 bytes waiting"), "{text}");
    assert!(
        text.contains(&format!("creator: pid {pid}, alive")),
        "{text}"
    );
    assert!(
        text.contains(&format!("producer: attached by pid {pid}, alive")),
        "{text}"
    );
    assert!(text.contains("consumer: never attached"), "{text}");
    assert!(text.contains("status: in use"), "{text}");
}

/// A receiver killed with SIGKILL leaves its regions: inspect says the
/// creator is dead, clean (a dry run) offers to remove them.
#[test]
fn inspect_and_clean_after_the_creator_died() {
    let name = unique("dead");
    let endpoint = format!("shm:{name}");
    let mut recv = Recv::listen(&endpoint, &[]);
    let pid = recv.child.id();
    recv.child.kill().unwrap();
    recv.child.wait().unwrap();
    let text = inspect(&endpoint);
    assert!(
        text.contains(&format!("creator: pid {pid}, dead")),
        "{text}"
    );
    assert!(text.contains("status: stale"), "{text}");
    let output = shmsg().arg("clean").output().unwrap();
    assert_ok(&output, "shmsg clean");
    let listing = String::from_utf8(output.stdout).unwrap();
    assert!(
        listing.contains(&format!("would remove {name}\n")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("would remove {name}.reply\n")),
        "{listing}"
    );
    assert!(listing.contains("shmsg clean --yes"), "{listing}");
    // A dry run removes nothing. (`clean --yes` is tested in a directory of
    // its own: here it would also remove other tests' stale regions.)
    let path = Path::new(SHM_DIR).join(format!("{PREFIX}{name}"));
    assert!(path.exists());
    Region::remove(&name).unwrap();
    Region::remove(&format!("{name}.reply")).unwrap();
}

/// A sender on a shared-memory endpoint whose receiver was SIGKILLed (its
/// regions left behind) is told so (exit 3) instead of "sending" lines
/// that nobody will read.
#[test]
fn send_to_a_dead_receiver_exits_3() {
    let name = unique("dead-receiver");
    let endpoint = format!("shm:{name}");
    let mut recv = Recv::listen(&endpoint, &[]);
    recv.child.kill().unwrap();
    recv.child.wait().unwrap();
    let output = send(&endpoint, &[], b"a\nb\nc\n");
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Region::remove(&name).unwrap();
    Region::remove(&format!("{name}.reply")).unwrap();
}

/// A receiver that leaves mid-stream: the sender exits 3 and says how
/// many messages the receiver actually received (the ring tells), not how
/// many were sent.
#[test]
fn send_reports_what_a_departed_receiver_received() {
    let name = unique("departed");
    let endpoint = format!("shm:{name}");
    let mut recv = Recv::listen(&endpoint, &["--count", "1"]);
    // Far more than the ring holds, so the sender is still sending when
    // the receiver leaves after one message.
    let input: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let output = send(&endpoint, &[], &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("it received 1 message of the"), "{stderr}");
    recv.child.wait().unwrap();
}

#[test]
fn clean_removes_only_regions_nobody_uses() {
    let scratch = Scratch::new("clean");
    let dir = scratch.0.to_str().unwrap();
    let geometry = Geometry::new(4096, 256).unwrap();
    let _live = Region::create_in(&scratch.0, "live", geometry).unwrap();
    let mut dead = Region::create_in(&scratch.0, "dead", geometry).unwrap();
    dead.keep();
    drop(dead);
    let run = |flags: &[&str]| {
        let output = shmsg()
            .arg("clean")
            .args(flags)
            .args(["--dir", dir])
            .output()
            .unwrap();
        assert_ok(&output, "shmsg clean");
        String::from_utf8(output.stdout).unwrap()
    };
    let listing = run(&[]);
    assert!(listing.contains("would remove dead\n"), "{listing}");
    assert!(!listing.contains("would remove live"), "{listing}");
    assert!(listing.contains("in use (creator alive)"), "{listing}");
    assert!(scratch.0.join(format!("{PREFIX}dead")).exists());
    let listing = run(&["--yes"]);
    assert!(listing.contains("removed dead\n"), "{listing}");
    assert!(!scratch.0.join(format!("{PREFIX}dead")).exists());
    assert!(scratch.0.join(format!("{PREFIX}live")).exists());
    assert!(run(&["--yes"]).contains("nothing to clean"));
}
