//! The everyday commands end to end, with the built binary: `shmsg send`
//! and `shmsg recv` carry real data over every transport, lines and
//! length-prefixed frames, from one sender or (on `mpsc:`) several at once;
//! a receiver lets in only its own user unless told otherwise; `shmsg
//! inspect` and `shmsg clean` against named regions of live and dead
//! creators; error messages and exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmsg::shm::region::{PREFIX, SHM_DIR};
use shmsg::shm::spsc::Producer;
use shmsg::shm::{Geometry, Region};

// The integration tests' shared helpers, beside the library's tests.
#[path = "../../tests/common/mod.rs"]
mod common;

/// How long a test waits for a child before it gives up on it.
const PATIENCE: Duration = Duration::from_secs(60);

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

/// A child process, SIGKILLed and reaped on drop (so that a failing test
/// leaves none behind).
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `shmsg recv`: the child, the endpoint it printed, and threads
/// collecting its stdout (read as it comes, so that a full pipe cannot stall
/// it, and visible while it runs) and the rest of its stderr.
struct Recv {
    child: Kid,
    endpoint: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Recv {
    fn start(mut command: Command) -> Recv {
        let mut child = Kid(command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmsg recv"));
        let mut err = BufReader::new(child.0.stderr.take().unwrap());
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
        let mut out = child.0.stdout.take().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&stdout);
        let stdout_reader = std::thread::spawn(move || {
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                match out.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => collected.lock().unwrap().extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        });
        Recv {
            child,
            endpoint,
            stdout,
            stdout_reader: Some(stdout_reader),
            stderr: Some(stderr),
        }
    }

    fn listen(endpoint: &str, flags: &[&str]) -> Recv {
        let mut command = shmsg();
        command.arg("recv").args(flags).arg(endpoint);
        Recv::start(command)
    }

    /// Waits until it has printed `expected` (its whole stdout so far).
    fn wait_for_output(&self, expected: &[u8]) {
        let start = Instant::now();
        while self.stdout.lock().unwrap().as_slice() != expected {
            assert!(
                start.elapsed() < PATIENCE,
                "shmsg recv printed {:?}, not {:?}",
                String::from_utf8_lossy(&self.stdout.lock().unwrap()),
                String::from_utf8_lossy(expected)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (at most `PATIENCE`, then kills it) for it to exit: its exit
    /// status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, Vec<u8>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.0.kill();
                let status = self.child.0.wait().unwrap();
                let stderr = self.stderr.take().unwrap().join().unwrap();
                panic!(
                    "shmsg recv {} did not exit within {PATIENCE:?} ({status:?}); stderr: {stderr}",
                    self.endpoint
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        self.stdout_reader.take().unwrap().join().unwrap();
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        (status, stdout, stderr)
    }

    /// Waits for it to exit; its stdout, after checking it succeeded.
    fn output(self) -> Vec<u8> {
        let (status, stdout, stderr) = self.finish();
        assert!(status.success(), "shmsg recv failed: {status:?}: {stderr}");
        stdout
    }
}

/// Runs `command` (a `shmsg send`) with `input` on its stdin.
fn run_with_input(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
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

fn send(endpoint: &str, flags: &[&str], input: &[u8]) -> Output {
    let mut command = shmsg();
    command.arg("send").args(flags).arg(endpoint);
    run_with_input(command, input)
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
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("shmsg recv {nobody}")), "{stderr}");

    let output = send("bogus:x", &[], b"");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("scheme"));

    let output = shmsg().args(["recv", "pipe"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pipe:3,4"));

    // No listener at a shared-memory endpoint: nobody answers at its
    // socket until the timeout (7), and it says what to start.
    for scheme in ["shm", "mpsc"] {
        let endpoint = format!("{scheme}:{}", unique("absent"));
        let output = send(&endpoint, &["--timeout", "200ms"], b"x\n");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(7), "{stderr}");
        assert!(
            stderr.contains(&format!("shmsg recv {endpoint}")),
            "{stderr}"
        );
    }

    // A region that does not exist.
    let output = shmsg()
        .args(["inspect", &unique("absent")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("shmsg clean"));

    // shm: and mpsc: endpoints have no named region to inspect: a usage
    // error that says so and what inspect does show.
    for scheme in ["shm", "mpsc"] {
        let output = shmsg()
            .args(["inspect", &format!("{scheme}:{}", unique("endpoint"))])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("not in a named region") && stderr.contains("shmsg inspect NAME"),
            "{stderr}"
        );
    }

    let output = shmsg()
        .args(["inspect", "tcp:127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    let help = shmsg().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Exit codes:") && help.contains("a received message failed"));
}

/// `recv --all` takes every sender at once: a second sender's messages
/// arrive while the first is still connected, and `--show-peer` says which
/// came from which.
#[test]
fn recv_all_takes_senders_at_once_and_names_them() {
    for endpoint in [
        format!("unix:@{}", unique("all")),
        format!("shm:{}", unique("all")),
        "tcp:127.0.0.1:0".to_owned(),
    ] {
        let recv = Recv::listen(&endpoint, &["--all", "--show-peer", "--count", "3"]);
        let mut first = Kid(shmsg()
            .args(["send", &recv.endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        let mut first_in = first.0.stdin.take().unwrap();
        first_in.write_all(b"first: one\n").unwrap();
        first_in.flush().unwrap();
        let first_pid = first.0.id();
        // The first sender stays connected while the second comes and goes.
        assert_ok(
            &send(&recv.endpoint, &[], b"second: one\n"),
            "the second sender",
        );
        let start = Instant::now();
        loop {
            let seen = String::from_utf8_lossy(&recv.stdout.lock().unwrap()).into_owned();
            if seen.contains("second: one") && seen.contains("first: one") {
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{endpoint}: the second sender waited for the first: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        first_in.write_all(b"first: two\n").unwrap();
        drop(first_in);
        assert!(first.0.wait().unwrap().success());
        let text = String::from_utf8(recv.output()).unwrap();
        // By message: which sender connected first is up to the scheduler.
        let mut lines: Vec<(&str, &str)> = text
            .lines()
            .map(|line| line.split_once('\t').expect("a peer, a tab, the message"))
            .map(|(peer, message)| (message, peer))
            .collect();
        lines.sort_unstable();
        let (messages, peers): (Vec<&str>, Vec<&str>) = lines.into_iter().unzip();
        assert_eq!(
            messages,
            ["first: one", "first: two", "second: one"],
            "{endpoint}"
        );
        if endpoint.starts_with("tcp:") {
            // No credentials over TCP: connections are numbered.
            assert!(
                peers.iter().all(|p| p.starts_with('#')),
                "{endpoint}: {text:?}"
            );
        } else {
            assert_eq!(peers[0], format!("pid {first_pid}"), "{endpoint}: {text:?}");
        }
        assert_eq!(peers[0], peers[1], "{endpoint}: {text:?}");
        assert_ne!(peers[2], peers[0], "{endpoint}: {text:?}");
    }
}

// ---- exit codes

/// The exit codes `shmsg --help` lists.
fn help_exit_codes() -> String {
    let help = shmsg().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let start = help
        .find("Exit codes:")
        .expect("--help lists the exit codes");
    let block = &help[start..];
    block[..block.find("\n\n").unwrap_or(block.len())].to_owned()
}

/// `shmsg --help` and the README list the same exit codes, word for word,
/// and every subcommand's help lists them too.
#[test]
fn the_readme_and_help_agree_on_exit_codes() {
    let codes = help_exit_codes();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&codes),
        "README.md does not quote `shmsg --help`'s exit codes:\n{codes}"
    );
    for command in ["send", "recv", "inspect", "clean", "compare"] {
        let help = shmsg().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains(&codes), "shmsg {command} --help");
    }
}

/// The README names every command `shmsg --help` lists and every flag of
/// each command's help.
#[test]
fn the_readme_names_every_command_and_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let help = shmsg().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .map_while(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.len() >= 6, "{commands:?}");
    for command in commands {
        assert!(
            readme.contains(&format!("shmsg {command}")),
            "shmsg {command}"
        );
        let help = shmsg().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        for flag in help
            .split_whitespace()
            .filter(|word| word.starts_with("--") && word.len() > 2)
            .map(|word| word.trim_end_matches([',', '.', ')']))
            .filter(|flag| *flag != "--help")
        {
            let flag = flag.split('=').next().unwrap();
            assert!(
                readme.contains(flag),
                "README.md does not name `shmsg {command} {flag}`"
            );
        }
    }
}

/// `shmsg completions bash` completes commands and each command's flags in
/// a real bash (bash calls the function with the command, the word and the
/// word before it); the fish and zsh scripts name every command and flag.
#[test]
fn completions_offer_every_command_and_flag() {
    let script = shmsg().args(["completions", "bash"]).output().unwrap();
    assert_ok(&script, "shmsg completions bash");
    let dir = Scratch::new("completions");
    let path = dir.0.join("shmsg.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let complete = |words: &str, index: usize| -> String {
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={index}; \
                 _shmsg shmsg \"${{COMP_WORDS[{index}]}}\" \"${{COMP_WORDS[{index}-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .expect("bash");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(complete("shmsg re", 1), "recv");
    assert_eq!(complete("shmsg c", 1), "compare clean completions");
    assert_eq!(
        complete("shmsg recv --al", 2),
        "--allow-uid --allow-gid --allow-anyone --all"
    );
    assert_eq!(complete("shmsg send --t", 2), "--timeout");
    for shell in ["fish", "zsh"] {
        let script = shmsg().args(["completions", shell]).output().unwrap();
        assert_ok(&script, shell);
        let script = String::from_utf8(script.stdout).unwrap();
        for word in [
            "send",
            "recv",
            "inspect",
            "clean",
            "compare",
            "demo",
            "show-peer",
            "no-syscalls",
        ] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let output = shmsg().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Exit code 4: a second receiver on an endpoint a live one holds is
/// refused as "taken", and the first receiver is not disturbed: the second
/// one's check of the path is never taken for a sender.
#[test]
fn a_second_receiver_exits_4_and_leaves_the_first_alone() {
    let dir = Scratch::new("taken");
    for endpoint in [
        format!("unix:{}", dir.0.join("sock").display()),
        format!("seqpacket:{}", dir.0.join("seq").display()),
        format!("shm:{}", unique("taken")),
        format!("unix:@{}", unique("taken")),
    ] {
        let first = Recv::listen(&endpoint, &["--count", "1"]);
        let second = shmsg().args(["recv", &endpoint]).output().unwrap();
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(4), "{endpoint}: {stderr}");
        assert!(stderr.contains("taken"), "{endpoint}: {stderr}");
        assert_ok(&send(&endpoint, &[], b"still here\n"), &endpoint);
        assert_eq!(first.output(), b"still here\n", "{endpoint}");
    }
}

/// Exit code 5: a ring whose header says another layout version. A fake
/// listener hands `shmsg send` a sealed ring whose ABI word was changed.
#[test]
fn a_ring_of_another_layout_exits_5() {
    use rustix::net::SocketType;
    use shmsg::shm::layout::offsets;
    let name = unique("layout");
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let rings: Vec<Region> = (0..2)
        .map(|_| Region::anonymous(geometry).unwrap())
        .collect();
    for ring in &rings {
        let other_version = (ring.header_word(offsets::ABI_VERSION) + 1).to_ne_bytes();
        rustix::io::pwrite(ring.as_fd(), &other_version, offsets::ABI_VERSION as u64).unwrap();
    }
    let listener = common::raw::listen_abstract(&format!("shmsg.{name}"), SocketType::SEQPACKET);
    let fake = std::thread::spawn(move || {
        let client = rustix::net::accept(&listener).unwrap();
        let mut hello = [0u8; 64];
        let _ = rustix::net::recv(&client, &mut hello, rustix::net::RecvFlags::empty());
        // "The rings follow", and the two rings: each a memfd and its two
        // eventfds.
        let fds: Vec<_> = rings
            .iter()
            .flat_map(|ring| {
                let signals = ring.signals().unwrap();
                [
                    ring.as_fd(),
                    signals.fd(shmsg::sync::Event::Data),
                    signals.fd(shmsg::sync::Event::Space),
                ]
            })
            .collect();
        common::raw::send_with_fds(&client, &common::raw::rdv(0, 0), &fds).unwrap();
        let _ = rustix::net::recv(&client, &mut hello, rustix::net::RecvFlags::empty());
    });
    let output = send(&format!("shm:{name}"), &[], b"x\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("layout"), "{stderr}");
    fake.join().unwrap();
}

/// Hints name what works: the `--max-message` a too-large message asks
/// for is one `recv` accepts (and then the message goes through), errors
/// name the endpoint's own scheme, and a bad name reads as a sentence.
#[test]
fn hints_name_what_works() {
    let endpoint = format!("unix:@{}", unique("large"));
    let recv = Recv::listen(&endpoint, &["--max-message", "1K"]);
    let line = vec![b'x'; 70_000];
    let mut input = line.clone();
    input.push(b'\n');
    let output = send(&endpoint, &[], &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--max-message 69K"), "{stderr}");
    drop(recv);
    let recv = Recv::listen(&endpoint, &["--max-message", "69K", "--count", "1"]);
    assert_ok(&send(&endpoint, &[], &input), "the suggested size");
    assert_eq!(recv.output(), input);

    // A regular file where a socket should be: the hint says to remove it.
    let dir = Scratch::new("regular");
    let path = dir.0.join("not-a-socket");
    std::fs::write(&path, b"data").unwrap();
    let output = shmsg()
        .args(["recv", &format!("unix:{}", path.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a socket") && stderr.contains("remove it"),
        "{stderr}"
    );
    assert!(!stderr.contains("shmsg clean"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"data",
        "the file is left alone"
    );

    let output = send(
        &format!("seqpacket:@{}", unique("nobody")),
        &["--timeout", "100ms"],
        b"",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to seqpacket:@"), "{stderr}");
    // A shared-memory endpoint is named as such, not as the socket it
    // meets at.
    let nobody = format!("shm:{}", unique("nobody"));
    let output = send(&nobody, &["--timeout", "100ms"], b"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to {nobody}")) && !stderr.contains("@shmsg."),
        "{stderr}"
    );
    for (endpoint, says) in [
        ("shm:", "the name is empty"),
        ("shm:.x", "the name starts with '.'"),
    ] {
        let output = send(endpoint, &[], b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{endpoint}: {stderr}");
        assert!(stderr.contains("seqpacket:@NAME"), "{endpoint}: {stderr}");
    }
}

/// The examples print their usage for `--help` (exit 0) and their errors as
/// messages (exit 1), not as a Rust `Debug` value.
#[test]
fn examples_answer_help_and_print_errors_as_messages() {
    // The examples are built beside the test binaries: target/debug/examples.
    let deps = std::env::current_exe().unwrap();
    let examples = deps.parent().unwrap().parent().unwrap().join("examples");
    for example in ["request_response", "chat", "blocks"] {
        let exe = examples.join(example);
        if !exe.exists() {
            println!("skipped {example}: not built at {}", exe.display());
            continue;
        }
        let help = Command::new(&exe).arg("--help").output().unwrap();
        assert_eq!(help.status.code(), Some(0), "{example} --help");
        assert!(String::from_utf8_lossy(&help.stdout).starts_with(&format!("usage: {example}")));
        let bad = Command::new(&exe)
            .args(["client", "nope:x"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(1), "{example}: {stderr}");
        assert!(
            stderr.starts_with(&format!("{example}: ")),
            "{example}: {stderr}"
        );
        assert!(!stderr.contains("Error: "), "{example}: {stderr}");
    }
}

/// Exit code 6: a received message that is not the one the workload says
/// was sent (the hidden worker role that `compare` and the demo use).
#[test]
fn a_message_that_fails_verification_exits_6() {
    let name = unique("verify");
    let region = Arc::new(Region::create(&name, Geometry::new(1 << 16, 1024).unwrap()).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    producer.send(b"not the workload's first message").unwrap();
    drop(producer);
    let output = shmsg()
        .args([
            "peer",
            "consume",
            "--region",
            &name,
            "--seed",
            "7",
            "--max-len",
            "64",
        ])
        .args(["--count", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("message 0"), "{stderr}");
}

fn inspect(name: &str) -> String {
    let output = shmsg().args(["inspect", name]).output().unwrap();
    assert_ok(&output, "shmsg inspect");
    String::from_utf8(output.stdout).unwrap()
}

/// A live named region made in this process: its header, fill level and
/// sides.
#[test]
fn inspect_live_region() {
    let name = unique("inspect");
    let geometry = Geometry::new(1 << 16, 1000).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    for _ in 0..3 {
        producer.send(&[7u8; 100]).unwrap();
    }
    let pid = std::process::id();
    for text in [inspect(&name), inspect(&format!("{PREFIX}{name}"))] {
        assert!(text.contains(&format!("region {name} ")), "{text}");
        assert!(
            text.contains("capacity 65536 bytes, max message 1000 bytes"),
            "{text}"
        );
        // Three records of 8 + 104 bytes wait in the ring.
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
}

/// Set in the environment of this test executable run again as a child:
/// the name of the region `region_creator_child` creates.
const CREATOR_NAME: &str = "SHMSG_CLI_CREATE_REGION";
/// With [`CREATOR_NAME`]: a directory where it creates the region too.
const CREATOR_DIR: &str = "SHMSG_CLI_CREATE_REGION_IN";
/// What `region_creator_child` prints once its regions exist.
const CREATED: &str = "region-creator: created";

/// Not a test of its own: run again by `inspect_and_clean_after_the_creator_died`
/// with [`CREATOR_NAME`] set, it creates that named region (in /dev/shm, and
/// in [`CREATOR_DIR`] if set), keeps it, says so and waits to be killed.
/// Without the variable it does nothing.
#[test]
fn region_creator_child() {
    let Ok(name) = std::env::var(CREATOR_NAME) else {
        return;
    };
    let geometry = Geometry::new(4096, 256).unwrap();
    let mut regions = vec![Region::create(&name, geometry).unwrap()];
    if let Ok(dir) = std::env::var(CREATOR_DIR) {
        regions.push(Region::create_in(Path::new(&dir), &name, geometry).unwrap());
    }
    for region in &mut regions {
        region.keep();
    }
    println!("{CREATED}");
    std::io::stdout().flush().unwrap();
    // The parent kills this process; if it cannot, stop after a while.
    std::thread::sleep(PATIENCE);
    std::process::exit(1);
}

/// A process that created a named region and was killed with SIGKILL
/// leaves it behind: inspect says the creator is dead, clean (a dry run)
/// offers to remove it, `clean --yes` removes it.
#[test]
fn inspect_and_clean_after_the_creator_died() {
    let name = unique("dead");
    let scratch = Scratch::new("dead-creator");
    let mut creator = Kid(Command::new(std::env::current_exe().unwrap())
        .args(["region_creator_child", "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CREATOR_NAME, &name)
        .env(CREATOR_DIR, &scratch.0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap());
    let pid = creator.0.id();
    // libtest may print "test region_creator_child ... " on the same line.
    let mut said = String::new();
    let mut out = BufReader::new(creator.0.stdout.take().unwrap());
    while !said.contains(CREATED) {
        said.clear();
        assert!(
            out.read_line(&mut said).unwrap() > 0,
            "the region creator exited without creating the region"
        );
    }
    creator.0.kill().unwrap();
    creator.0.wait().unwrap();

    let path = Path::new(SHM_DIR).join(format!("{PREFIX}{name}"));
    let text = inspect(&name);
    assert!(
        text.contains(&format!("creator: pid {pid}, dead")),
        "{text}"
    );
    assert!(text.contains("producer: never attached"), "{text}");
    assert!(text.contains("status: stale"), "{text}");
    let output = shmsg().arg("clean").output().unwrap();
    assert_ok(&output, "shmsg clean");
    let listing = String::from_utf8(output.stdout).unwrap();
    assert!(
        listing.contains(&format!("would remove {name}\n")),
        "{listing}"
    );
    assert!(listing.contains("shmsg clean --yes"), "{listing}");
    // A dry run removes nothing. (`clean --yes` runs in a directory of its
    // own: in /dev/shm it would also remove other tests' stale regions.)
    assert!(path.exists());
    Region::remove(&name).unwrap();

    let dir = scratch.0.to_str().unwrap();
    let output = shmsg()
        .args(["clean", "--yes", "--dir", dir])
        .output()
        .unwrap();
    assert_ok(&output, "shmsg clean --yes");
    let listing = String::from_utf8(output.stdout).unwrap();
    assert!(listing.contains(&format!("removed {name}\n")), "{listing}");
    assert!(!scratch.0.join(format!("{PREFIX}{name}")).exists());
}

/// A receiver SIGKILLed while a sender streams to it from a pipe: the
/// sender is told so (exit 3) at its next messages instead of "sending"
/// lines that nobody will read.
#[test]
fn send_to_a_dead_receiver_exits_3() {
    for endpoint in [
        format!("shm:{}", unique("dead-receiver")),
        format!("mpsc:{}", unique("dead-receiver")),
    ] {
        let mut recv = Recv::listen(&endpoint, &[]);
        let mut sender = shmsg()
            .arg("send")
            .arg(&endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = sender.stdin.take().unwrap();
        stdin.write_all(b"first\n").unwrap();
        recv.wait_for_output(b"first\n");
        recv.child.0.kill().unwrap();
        recv.child.0.wait().unwrap();
        // Go on streaming until the sender gives up (its stdin breaks), or
        // for at most PATIENCE.
        let writer = std::thread::spawn(move || {
            let start = Instant::now();
            let mut line = 0u64;
            while start.elapsed() < PATIENCE {
                if stdin.write_all(format!("{line}\n").as_bytes()).is_err() {
                    return;
                }
                line += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let output = sender.wait_with_output().unwrap();
        writer.join().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{endpoint}: {stderr}");
        assert!(stderr.contains("the receiver left"), "{endpoint}: {stderr}");
    }
}

/// Four `shmsg send` processes at once into one `shmsg recv` on an
/// `mpsc:` endpoint: every line of every sender arrives, each sender's in
/// the order it sent them.
#[test]
fn many_senders_into_one_mpsc_receiver() {
    const SENDERS: usize = 4;
    const LINES: usize = 100_000;
    let endpoint = format!("mpsc:{}", unique("mpsc"));
    let total = (SENDERS * LINES).to_string();
    let recv = Recv::listen(&endpoint, &["--count", &total]);
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let input: String = (0..LINES)
                .map(|line| format!("sender {sender} line {line}\n"))
                .collect();
            let endpoint = recv.endpoint.clone();
            std::thread::spawn(move || send(&endpoint, &[], input.as_bytes()))
        })
        .collect();
    for sender in senders {
        assert_ok(&sender.join().unwrap(), "shmsg send mpsc:");
    }
    let received = String::from_utf8(recv.output()).unwrap();
    let mut next = [0usize; SENDERS];
    for got in received.lines() {
        let (sender, line) = got
            .strip_prefix("sender ")
            .and_then(|rest| rest.split_once(" line "))
            .and_then(|(s, l)| Some((s.parse::<usize>().ok()?, l.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("a line no sender sent: {got:?}"));
        assert_eq!(
            line, next[sender],
            "sender {sender}'s line {line} arrived when line {} was due",
            next[sender]
        );
        next[sender] += 1;
    }
    assert_eq!(next, [LINES; SENDERS], "lines received per sender");
}

/// An `mpsc:` receiver takes senders as they come while another one stays
/// connected: over time, many more of them than the ring has sender slots
/// (16), each of whose lines arrives.
#[test]
fn mpsc_receiver_takes_senders_while_one_stays() {
    const SHORT: usize = 40;
    let endpoint = format!("mpsc:{}", unique("one-stays"));
    let recv = Recv::listen(&endpoint, &["--count", &(SHORT + 2).to_string()]);
    let mut stays = shmsg()
        .arg("send")
        .arg(&endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = stays.stdin.take().unwrap();
    stdin.write_all(b"stays: first\n").unwrap();
    let mut expected = b"stays: first\n".to_vec();
    recv.wait_for_output(&expected);
    for i in 0..SHORT {
        let line = format!("short {i}\n");
        let output = send(&endpoint, &["--timeout", "5s"], line.as_bytes());
        assert_ok(&output, &format!("sender {i} of {SHORT}"));
        expected.extend_from_slice(line.as_bytes());
        recv.wait_for_output(&expected);
    }
    stdin.write_all(b"stays: last\n").unwrap();
    drop(stdin);
    assert_ok(&stays.wait_with_output().unwrap(), "the sender that stays");
    expected.extend_from_slice(b"stays: last\n");
    assert_eq!(
        String::from_utf8(recv.output()).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

/// The user id the other-user tests run a sender as (`nobody`).
const NOBODY: u32 = 65534;

/// The `shmsg` binary copied where user [`NOBODY`] can run it.
struct ExeCopy(PathBuf);

impl ExeCopy {
    fn new() -> ExeCopy {
        let dir = std::env::temp_dir().join(unique("exe"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("shmsg");
        std::fs::copy(env!("CARGO_BIN_EXE_shmsg"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        ExeCopy(exe)
    }

    /// `shmsg send FLAGS ENDPOINT`, run as user and group [`NOBODY`].
    fn send_as_nobody(&self, endpoint: &str, flags: &[&str], input: &[u8]) -> Output {
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(&self.0)
            .arg("send")
            .args(flags)
            .arg(endpoint);
        run_with_input(command, input)
    }
}

impl Drop for ExeCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// A sender of another user is refused on every Unix-socket endpoint: it
/// fails saying so, and the receiver logs the refusal and goes on to take
/// the next sender. With `--allow-uid` the other user's messages arrive.
/// The sender, too, talks only to a receiver of its own user unless its
/// `--allow-uid` names the receiver's.
#[test]
fn other_users_are_refused_unless_allowed() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root to run a sender as another user");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("skipped: setpriv is not installed");
        return;
    }
    let exe = ExeCopy::new();
    for scheme in ["shm:", "mpsc:", "unix:@", "seqpacket:@"] {
        let endpoint = format!("{scheme}{}", unique("other-user"));
        let recv = Recv::listen(&endpoint, &["--count", "1"]);
        // A sender that does not trust the receiver's user sends nothing.
        let distrusting = exe.send_as_nobody(&endpoint, &[], b"from nobody\n");
        let said = String::from_utf8_lossy(&distrusting.stderr);
        assert!(!distrusting.status.success(), "{endpoint}: {said}");
        assert!(
            said.contains("another user listens") && said.contains("--allow-uid 0"),
            "{endpoint}: {said}"
        );
        let trusting = ["--allow-uid", "0"];
        let refused = exe.send_as_nobody(&endpoint, &trusting, b"from nobody\n");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{endpoint}: {said}");
        assert!(
            said.contains("refused") && said.contains(&format!("uid {NOBODY}")),
            "{endpoint}: {said}"
        );
        assert!(
            said.contains(&format!("--allow-uid {NOBODY}")),
            "{endpoint}: {said}"
        );
        // The receiver is still there for a sender of its own user.
        assert_ok(
            &send(&endpoint, &[], b"from me\n"),
            &format!("shmsg send {endpoint}"),
        );
        let (status, stdout, stderr) = recv.finish();
        assert!(status.success(), "{endpoint}: {status:?}: {stderr}");
        assert_eq!(stdout, b"from me\n", "{endpoint}");
        assert!(
            stderr.contains("shmsg recv: refused pid ")
                && stderr.contains(&format!("(uid {NOBODY}, gid {NOBODY})")),
            "{endpoint}: {stderr}"
        );

        let recv = Recv::listen(
            &endpoint,
            &["--allow-uid", &NOBODY.to_string(), "--count", "1"],
        );
        assert_ok(
            &exe.send_as_nobody(&endpoint, &trusting, b"from nobody\n"),
            &format!("shmsg send {endpoint} as uid {NOBODY}"),
        );
        assert_eq!(recv.output(), b"from nobody\n", "{endpoint}");
    }
}

/// `unshare --pid --fork --kill-child shmsg ARGS`: shmsg as pid 1 of a PID
/// namespace of its own, where it cannot see this process's pids (nor this
/// process its).
fn in_own_pid_namespace(args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--kill-child"])
        .arg(env!("CARGO_BIN_EXE_shmsg"))
        .args(args);
    command
}

/// Peers in separate PID namespaces, as in containers by default, even
/// with a shared network: the kernel reports a peer's pid the reader
/// cannot see as 0. Every Unix-socket endpoint should still connect them.
#[test]
fn peers_in_separate_pid_namespaces() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root to make PID namespaces");
        return;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        println!("skipped: unshare is not installed");
        return;
    }
    for scheme in ["shm:", "mpsc:", "unix:@", "seqpacket:@"] {
        let endpoint = format!("{scheme}{}", unique("pid-namespace"));
        let recv = Recv::start(in_own_pid_namespace(&["recv", "--count", "1", &endpoint]));
        assert_ok(
            &send(&endpoint, &["--timeout", "5s"], b"in\n"),
            &format!("shmsg send {endpoint} to a receiver in another PID namespace"),
        );
        assert_eq!(recv.output(), b"in\n", "{endpoint}");

        let recv = Recv::listen(&endpoint, &["--count", "1"]);
        assert_ok(
            &run_with_input(
                in_own_pid_namespace(&["send", "--timeout", "5s", &endpoint]),
                b"out\n",
            ),
            &format!("shmsg send {endpoint} from another PID namespace"),
        );
        assert_eq!(recv.output(), b"out\n", "{endpoint}");
    }
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
    recv.child.0.wait().unwrap();
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

// ---- signals, send retry, frame checks

/// Sends `signal` to `child`.
fn signal(child: &Child, signal: i32) {
    // SAFETY: `kill` with a live child's pid (not reaped yet) and a valid
    // signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// Waits until `child` catches `signal` (its handler is installed, as
/// /proc/PID/status says), so that the signal tests the handler, not the
/// default action on a process still starting.
fn wait_until_catching(child: &Child, signal: i32) {
    let status = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    loop {
        let caught = std::fs::read_to_string(&status)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (signal - 1)) != 0 {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "it never caught signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The signals that end a command cleanly, their names and the exit codes
/// shells expect (128 + the signal's number).
const SIGNALS: [(i32, &str, i32); 3] = [
    (libc::SIGINT, "INT", 130),
    (libc::SIGTERM, "TERM", 143),
    (libc::SIGHUP, "HUP", 129),
];

/// A receiver on a socket path ended by a signal removes the socket file
/// it created and exits with 128 + the signal's number; the next receiver
/// on the same path works.
#[test]
fn a_signal_ends_recv_and_removes_its_socket_file() {
    let scratch = Scratch::new("signal-recv");
    for scheme in ["unix", "seqpacket", "shm", "mpsc"] {
        for (sig, name, code) in SIGNALS {
            let path = scratch.0.join(format!("{scheme}-{name}.sock"));
            let endpoint = format!("{scheme}:{}", path.display());
            let recv = Recv::listen(&endpoint, &[]);
            assert!(path.exists(), "{endpoint}: no socket file while listening");
            signal(&recv.child.0, sig);
            let (status, _, stderr) = recv.finish();
            assert_eq!(status.code(), Some(code), "{endpoint} SIG{name}: {stderr}");
            assert!(!path.exists(), "{endpoint}: SIG{name} left the socket file");

            let recv = Recv::listen(&endpoint, &["--count", "1"]);
            assert_ok(
                &send(&endpoint, &[], b"again\n"),
                &format!("shmsg send {endpoint} after SIG{name}"),
            );
            assert_eq!(recv.output(), b"again\n", "{endpoint}");
        }
    }
}

/// A receiver ended by a signal leaves alone a file that another process
/// put at its socket's path after it started listening.
#[test]
fn a_signal_spares_a_file_that_replaced_the_socket() {
    let scratch = Scratch::new("signal-replaced");
    for scheme in ["unix", "shm"] {
        let path = scratch.0.join(format!("{scheme}.sock"));
        let endpoint = format!("{scheme}:{}", path.display());
        let recv = Recv::listen(&endpoint, &[]);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not the receiver's").unwrap();
        signal(&recv.child.0, libc::SIGTERM);
        let (status, _, stderr) = recv.finish();
        assert_eq!(status.code(), Some(143), "{endpoint}: {stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"not the receiver's",
            "{endpoint}"
        );
    }
}

/// A sender ended by a signal, while connected and while waiting for a
/// receiver, exits with 128 + the signal's number.
#[test]
fn a_signal_ends_send_with_128_plus_its_number() {
    for (sig, name, code) in SIGNALS {
        let endpoint = format!("unix:@{}", unique(&format!("signal-send-{name}")));
        let recv = Recv::listen(&endpoint, &[]);
        let mut sender = Kid(shmsg()
            .arg("send")
            .arg(&endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        let mut stdin = sender.0.stdin.take().unwrap();
        stdin.write_all(b"before\n").unwrap();
        recv.wait_for_output(b"before\n");
        signal(&sender.0, sig);
        assert_eq!(sender.0.wait().unwrap().code(), Some(code), "SIG{name}");
        assert_eq!(recv.output(), b"before\n");

        let nobody = format!("unix:@{}", unique(&format!("signal-waiting-{name}")));
        let mut waiting = Kid(shmsg()
            .args(["send", "--timeout", "60s", &nobody])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        wait_until_catching(&waiting.0, sig);
        signal(&waiting.0, sig);
        assert_eq!(waiting.0.wait().unwrap().code(), Some(code), "SIG{name}");
    }
}

/// `send --timeout` waits for a receiver to appear: senders started a
/// second before their receivers deliver their message.
#[test]
fn send_waits_for_a_receiver_until_its_timeout() {
    let scratch = Scratch::new("late-receiver");
    let endpoints = [
        format!("shm:{}", unique("late-shm")),
        format!("mpsc:{}", unique("late-mpsc")),
        format!("unix:{}", scratch.0.join("late.sock").display()),
        format!("seqpacket:@{}", unique("late-receiver")),
    ];
    let senders: Vec<_> = endpoints
        .iter()
        .map(|endpoint| {
            let endpoint = endpoint.clone();
            // 10 s: far more than the second the receivers start later, so
            // that a slow machine does not make the senders give up.
            std::thread::spawn(move || send(&endpoint, &["--timeout", "10s"], b"early\n"))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let receivers: Vec<_> = endpoints
        .iter()
        .map(|endpoint| Recv::listen(endpoint, &["--count", "1"]))
        .collect();
    for ((sender, recv), endpoint) in senders.into_iter().zip(receivers).zip(&endpoints) {
        assert_ok(&sender.join().unwrap(), &format!("shmsg send {endpoint}"));
        assert_eq!(recv.output(), b"early\n", "{endpoint}");
    }
}

/// With no receiver, `send --timeout 1s` tries for that second, then
/// exits 7 (timed out) saying what it waited for.
#[test]
fn send_gives_up_after_its_timeout_with_exit_7() {
    let nobody = format!("unix:@{}", unique("never"));
    let start = Instant::now();
    let output = send(&nobody, &["--timeout", "1s"], b"x\n");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(&format!("no receiver listened at {nobody} within 1s")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("shmsg recv {nobody}")), "{stderr}");
    // It tried for the whole second (less a margin for the clock), and
    // stopped soon after: 10 s, ten times the timeout, because a loaded
    // machine may be slow to start and reap the process.
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    assert!(took <= Duration::from_secs(10), "gave up after {took:?}");
}

/// An error that waiting cannot fix ends `send` at once, whatever its
/// timeout: here a stream socket where a seqpacket one was asked for.
#[test]
fn send_fails_at_once_where_waiting_cannot_help() {
    let scratch = Scratch::new("wrong-kind");
    let path = scratch.0.join("stream.sock");
    let _recv = Recv::listen(&format!("unix:{}", path.display()), &[]);
    let start = Instant::now();
    let output = send(
        &format!("seqpacket:{}", path.display()),
        &["--timeout", "60s"],
        b"x\n",
    );
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a seqpacket socket"), "{stderr}");
    // At once, not after the 60 s timeout: 10 s leaves a loaded machine
    // ample time to start and reap the process.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A length-prefixed frame.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// A frame whose length is over the receiver's maximum is refused from its
/// 4-byte header, before its bytes are read: the sender exits 1 naming the
/// length and the maximum, with the frames before it delivered, and its
/// memory stays small although 64 MiB of the frame follow.
#[test]
fn a_frame_over_the_receivers_maximum_is_refused_from_its_header() {
    let endpoint = format!("unix:@{}", unique("huge-frame"));
    let recv = Recv::listen(&endpoint, &["--length-prefixed", "--max-message", "1K"]);
    let mut input = frame(b"abc");
    input.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    input.resize(input.len() + (64 << 20), 0x5a);
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut command = Command::new(time);
        command.args(["-f", "max-rss-kib %M", env!("CARGO_BIN_EXE_shmsg")]);
        command
    } else {
        println!("note: /usr/bin/time is missing; the sender's memory is not checked");
        shmsg()
    };
    command
        .args(["send", "--length-prefixed"])
        .arg(&recv.endpoint);
    let output = run_with_input(command, &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} bytes", 0xFFFF_FFF0u32)) && stderr.contains("1024 bytes"),
        "{stderr}"
    );
    if let Some(kib) = stderr
        .lines()
        .find_map(|line| line.strip_prefix("max-rss-kib "))
    {
        let kib: u64 = kib.trim().parse().unwrap();
        // Far below the 64 MiB it would hold had it read the frame.
        assert!(kib < 32 << 10, "shmsg send peaked at {kib} KiB: {stderr}");
    }
    assert_eq!(recv.output(), frame(b"abc"));
}

/// Length-prefixed input that ends inside a frame is malformed input:
/// exit 8, saying where it ended; the frames before it are delivered.
#[test]
fn input_that_ends_inside_a_frame_exits_8() {
    let cut_message = [&frame(b"ok")[..], b"\x05\x00\x00\x00abc"].concat();
    let cut_length = [&frame(b"ok")[..], b"\x05\x00"].concat();
    for (input, says) in [
        (cut_message, "stdin ended inside a frame"),
        (cut_length, "stdin ended inside a frame's 4-byte length"),
    ] {
        let endpoint = format!("unix:@{}", unique("cut-frame"));
        let recv = Recv::listen(&endpoint, &["--length-prefixed"]);
        let output = send(&recv.endpoint, &["--length-prefixed"], &input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(8), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(recv.output(), frame(b"ok"));
    }
}

// ---- inspect every ring kind

use shmsg::Role;
use shmsg::shm::layout::{RingKind, offsets};
use shmsg::shm::mpmc;
use shmsg::sync::SlotWord;

/// The offset of `word` of slot `index` of `role`.
fn slot_word(role: Role, index: usize, word: SlotWord) -> usize {
    offsets::slot(role, index, word)
}

/// A JSON value, from the tiny parser below: enough to check what `shmsg
/// inspect --json` prints is one well-formed object and read its fields.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number's text, exactly as printed.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut parser = JsonParser {
            text: text.as_bytes(),
            at: 0,
        };
        let value = parser.value();
        parser.space();
        assert_eq!(parser.at, text.len(), "text after the JSON value: {text}");
        value
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => {
                let found: Vec<&Json> = fields
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(found.len(), 1, "key {key:?} once in {self:?}");
                found[0]
            }
            other => panic!("{key:?} of a non-object {other:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::String(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn u64(&self) -> u64 {
        match self {
            Json::Number(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            other => panic!("not a bool: {other:?}"),
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

struct JsonParser<'a> {
    text: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> u8 {
        let byte = *self.text.get(self.at).expect("the JSON text ends early");
        self.at += 1;
        byte
    }

    fn expect(&mut self, word: &str) {
        let end = self.at + word.len();
        assert_eq!(self.text.get(self.at..end), Some(word.as_bytes()));
        self.at = end;
    }

    fn value(&mut self) -> Json {
        self.space();
        match self.text.get(self.at).copied() {
            Some(b'{') => {
                self.at += 1;
                let mut fields = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Json::Object(fields);
                }
                loop {
                    self.space();
                    let Json::String(key) = self.value() else {
                        panic!("an object key is not a string at {}", self.at);
                    };
                    self.space();
                    assert_eq!(self.next(), b':', "':' after key {key:?}");
                    fields.push((key, self.value()));
                    self.space();
                    match self.next() {
                        b',' => {}
                        b'}' => return Json::Object(fields),
                        other => panic!("{:?} in an object at {}", other as char, self.at),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Json::Array(items);
                }
                loop {
                    items.push(self.value());
                    self.space();
                    match self.next() {
                        b',' => {}
                        b']' => return Json::Array(items),
                        other => panic!("{:?} in an array at {}", other as char, self.at),
                    }
                }
            }
            Some(b'"') => {
                self.at += 1;
                let mut bytes = Vec::new();
                loop {
                    match self.next() {
                        b'"' => return Json::String(String::from_utf8(bytes).unwrap()),
                        b'\\' => {
                            let c = match self.next() {
                                b'n' => '\n',
                                b't' => '\t',
                                b'r' => '\r',
                                b'b' => '\u{8}',
                                b'f' => '\u{c}',
                                b'u' => {
                                    let hex = std::str::from_utf8(&self.text[self.at..][..4])
                                        .unwrap()
                                        .to_owned();
                                    self.at += 4;
                                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                                }
                                c @ (b'"' | b'\\' | b'/') => c as char,
                                other => panic!("escape \\{}", other as char),
                            };
                            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        c if c < 0x20 => panic!("a raw control character in a string"),
                        c => bytes.push(c),
                    }
                }
            }
            Some(b't') => {
                self.expect("true");
                Json::Bool(true)
            }
            Some(b'f') => {
                self.expect("false");
                Json::Bool(false)
            }
            Some(b'n') => {
                self.expect("null");
                Json::Null
            }
            _ => {
                let start = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.text[start..self.at]).unwrap();
                assert!(
                    number.parse::<f64>().is_ok(),
                    "not a JSON value at {start}: {number:?}"
                );
                Json::Number(number.to_owned())
            }
        }
    }
}

/// `shmsg inspect --json NAME [FLAGS]`, parsed.
fn inspect_json(name: &str, flags: &[&str]) -> Json {
    let output = shmsg()
        .args(["inspect", "--json", name])
        .args(flags)
        .output()
        .unwrap();
    assert_ok(&output, "shmsg inspect --json");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.trim_start().starts_with('{'), "{text}");
    Json::parse(&text)
}

/// A slot or side as JSON: state, pid and whether it is alive.
fn assert_side(side: &Json, state: &str, pid: u32, alive: bool) {
    assert_eq!(side.get("state").str(), state, "{side:?}");
    assert_eq!(side.get("pid").u64(), u64::from(pid), "{side:?}");
    assert_eq!(side.get("alive").bool(), alive, "{side:?}");
}

/// A single-producer region: its kind, both sides (attached, alive, this
/// process) and its fill level, as text and as JSON.
#[test]
fn inspect_spsc_region_text_and_json() {
    let name = unique("inspect-spsc");
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let region = Arc::new(Region::create(&name, geometry).unwrap());
    let mut producer = Producer::attach(&region).unwrap();
    let _consumer = shmsg::shm::spsc::Consumer::attach(&region).unwrap();
    producer.send(&[1u8; 100]).unwrap();
    let pid = std::process::id();

    let text = inspect(&name);
    assert!(
        text.contains("layout: single-producer, single-consumer ring (spsc)"),
        "{text}"
    );
    assert!(text.contains("fill: 112 bytes waiting"), "{text}");
    assert!(
        text.contains(&format!("producer: attached by pid {pid}, alive")),
        "{text}"
    );
    assert!(
        text.contains(&format!("consumer: attached by pid {pid}, alive")),
        "{text}"
    );

    let json = inspect_json(&name, &[]);
    assert_eq!(json.get("name").str(), name);
    assert_eq!(json.get("path").str(), format!("{SHM_DIR}/{PREFIX}{name}"));
    assert_eq!(json.get("size").u64(), geometry.region_size() as u64);
    assert_eq!(json.get("kind").str(), "spsc");
    assert_eq!(json.get("capacity").u64(), 1 << 16);
    assert_eq!(json.get("max_message").u64(), 1024);
    assert_eq!(json.get("used_bytes").u64(), 112);
    assert_eq!(json.get("creator").get("pid").u64(), u64::from(pid));
    assert!(json.get("creator").get("alive").bool());
    assert_side(json.get("producer"), "attached", pid, true);
    assert_side(json.get("consumer"), "attached", pid, true);
    assert!(!json.get("corrupt").bool() && !json.get("stale").bool());
    assert!(json.get("valid").bool());
}

/// A multi-producer, single-consumer region with two producers (one of
/// them detached since) and a consumer: each slot is shown with its pid,
/// and the consumer with this process's pid, not the unused
/// single-producer words.
#[test]
fn inspect_mpsc_region_slot_by_slot() {
    let name = unique("inspect-mpsc");
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpsc).unwrap());
    let first = mpmc::Producer::attach(&region).unwrap();
    let mut second = mpmc::Producer::attach(&region).unwrap();
    let _consumer = mpmc::Consumer::attach(&region).unwrap();
    assert_eq!((first.slot(), second.slot()), (0, 1));
    drop(first);
    second.send(&[2u8; 100]).unwrap();
    let pid = std::process::id();

    let text = inspect(&name);
    assert!(
        text.contains("layout: multi-producer, single-consumer ring (mpsc"),
        "{text}"
    );
    assert!(!text.contains("single-producer"), "{text}");
    assert!(text.contains("fill: 112 bytes waiting"), "{text}");
    assert!(
        text.contains("producers: 2 of 16 slots used: 1 attached, 1 detached"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "producer slot 0: none attached (last: pid {pid}, detached)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("producer slot 1: attached by pid {pid}, alive")),
        "{text}"
    );
    assert!(
        text.contains("consumers: 1 of 1 slot used: 1 attached"),
        "{text}"
    );
    assert!(
        text.contains(&format!("consumer slot 0: attached by pid {pid}, alive")),
        "{text}"
    );
    assert!(!text.contains("pid 0"), "{text}");

    let json = inspect_json(&name, &[]);
    assert_eq!(json.get("kind").str(), "mpsc");
    assert_eq!(json.get("max_producers").u64(), 16);
    assert_eq!(json.get("max_consumers").u64(), 1);
    assert_eq!(json.get("used_bytes").u64(), 112);
    let producers = json.get("producers").array();
    assert_eq!(producers.len(), 2, "{json:?}");
    assert_eq!(producers[0].get("index").u64(), 0);
    assert_side(&producers[0], "detached", pid, false);
    assert_eq!(producers[1].get("index").u64(), 1);
    assert_side(&producers[1], "attached", pid, true);
    // The second producer's message is still in the ring.
    let claim = producers[1].get("claim");
    assert_eq!(claim.get("position").u64(), 0);
    assert_eq!(claim.get("bytes").u64(), 112);
    assert!(claim.get("pending").bool());
    let consumers = json.get("consumers").array();
    assert_eq!(consumers.len(), 1, "{json:?}");
    assert_side(&consumers[0], "attached", pid, true);
    assert!(!json.get("corrupt").bool() && !json.get("stale").bool());
}

/// A multi-consumer region with one producer and two consumers, one of
/// them holding a record while `inspect` looks.
#[test]
fn inspect_mpmc_region_with_two_consumers() {
    let name = unique("inspect-mpmc");
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpmc).unwrap());
    let mut producer = mpmc::Producer::attach(&region).unwrap();
    let mut holder = mpmc::Consumer::attach(&region).unwrap();
    let _idle = mpmc::Consumer::attach(&region).unwrap();
    for _ in 0..3 {
        producer.send(&[3u8; 100]).unwrap();
    }
    let pid = std::process::id();

    let (text, json) = holder
        .recv_with(|message| {
            assert_eq!(message.len(), 100);
            (inspect(&name), inspect_json(&name, &[]))
        })
        .unwrap();
    assert!(
        text.contains("layout: multi-producer, multi-consumer ring (mpmc"),
        "{text}"
    );
    assert!(
        text.contains("fill: 336 bytes waiting") && text.contains("consumers hold 112 bytes"),
        "{text}"
    );
    assert!(
        text.contains("producers: 1 of 16 slots used: 1 attached"),
        "{text}"
    );
    assert!(
        text.contains("consumers: 2 of 8 slots used: 2 attached"),
        "{text}"
    );
    assert!(
        text.contains(&format!("consumer slot 1: attached by pid {pid}, alive\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "consumer slot 0: attached by pid {pid}, alive; holds the record of 112 bytes \
             at position 0 (not handed back yet)"
        )),
        "{text}"
    );

    assert_eq!(json.get("kind").str(), "mpmc");
    assert_eq!(json.get("max_consumers").u64(), 8);
    assert_eq!(json.get("used_bytes").u64(), 336);
    assert_eq!(json.get("read_cursor").u64(), 112);
    assert_eq!(json.get("unread_bytes").u64(), 224);
    let producers = json.get("producers").array();
    assert_eq!(producers.len(), 1, "{json:?}");
    assert_side(&producers[0], "attached", pid, true);
    let consumers = json.get("consumers").array();
    assert_eq!(consumers.len(), 2, "{json:?}");
    for (index, consumer) in consumers.iter().enumerate() {
        assert_eq!(consumer.get("index").u64(), index as u64);
        assert_side(consumer, "attached", pid, true);
    }
    let held = consumers[0].get("claim");
    assert_eq!(
        (held.get("position").u64(), held.get("bytes").u64()),
        (0, 112)
    );
    assert!(held.get("pending").bool());
    assert_eq!(consumers[1].get("claim"), &Json::Null);

    // Handed back: the ring holds two records, nobody holds one.
    let json = inspect_json(&name, &[]);
    assert_eq!(json.get("used_bytes").u64(), 224);
    assert_eq!(json.get("read_cursor").u64(), 112);
    assert_eq!(json.get("consumers").array()[0].get("claim"), &Json::Null);
}

/// A producer slot whose epoch says attached but whose lock nobody holds
/// (its process died), with its last claim still in the ring: shown as
/// dead, with the claim, and counted apart from the live one.
#[test]
fn inspect_dead_producer_slot() {
    let name = unique("inspect-dead-slot");
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let region = Arc::new(Region::create_kind(&name, geometry, RingKind::Mpsc).unwrap());
    let mut producer = mpmc::Producer::attach(&region).unwrap();
    producer.send(&[4u8; 100]).unwrap();
    // Slot 3 as a producer killed after its claim would leave it.
    let path = Path::new(SHM_DIR).join(format!("{PREFIX}{name}"));
    for (word, value) in [
        (SlotWord::Pid, 4_000_001),
        (SlotWord::Claim, 0),
        (SlotWord::ClaimLen, 112),
        (SlotWord::Epoch, 1),
    ] {
        poke(&path, slot_word(Role::Producer, 3, word), value);
    }
    let text = inspect(&name);
    assert!(
        text.contains("producers: 2 of 16 slots used: 1 attached, 1 dead without detaching"),
        "{text}"
    );
    assert!(
        text.contains(
            "producer slot 3: pid 4000001 attached and died without detaching; its last \
             claim (112 bytes at position 0) is still in the ring"
        ),
        "{text}"
    );
    let json = inspect_json(&name, &[]);
    let dead = &json.get("producers").array()[1];
    assert_eq!(dead.get("index").u64(), 3);
    assert_eq!(dead.get("state").str(), "attached");
    assert_eq!(dead.get("pid").u64(), 4_000_001);
    assert!(!dead.get("alive").bool());
    assert!(dead.get("claim").get("pending").bool());
    assert!(!json.get("corrupt").bool());
}

/// Writes the header word at `offset` of the region file at `path`.
fn poke(path: &Path, offset: usize, value: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&value.to_ne_bytes(), offset as u64)
        .unwrap();
}

/// Garbage in a region's header: `inspect` shows what it can, says the
/// region is corrupt, and neither panics nor prints invalid JSON.
#[test]
fn inspect_corrupt_regions() {
    let scratch = Scratch::new("inspect-corrupt");
    let dir = scratch.0.to_str().unwrap();
    let geometry = Geometry::new(1 << 12, 256).unwrap();
    let path = |name: &str| scratch.0.join(format!("{PREFIX}{name}"));
    let run = |name: &str| {
        let output = shmsg()
            .args(["inspect", name, "--dir", dir])
            .output()
            .unwrap();
        assert_ok(&output, "shmsg inspect");
        let text = String::from_utf8(output.stdout).unwrap();
        (text, inspect_json(name, &["--dir", dir]))
    };

    // An unknown ring kind: the identity is refused.
    let _kind = Region::create_kind_in(&scratch.0, "kind", geometry, RingKind::Mpmc).unwrap();
    poke(&path("kind"), offsets::RING_KIND, 7);
    let (text, json) = run("kind");
    assert!(
        text.contains("layout: refused:") && text.contains("ring_kind"),
        "{text}"
    );
    assert!(text.contains("corrupt:"), "{text}");
    assert!(text.contains("creator alive"), "{text}");
    assert!(!json.get("valid").bool() && json.get("corrupt").bool());
    assert!(json.get("error").str().contains("ring_kind"), "{json:?}");
    assert_eq!(json.get("kind"), &Json::Null);
    assert!(json.get("creator").get("alive").bool());

    // A valid identity, impossible positions and garbage slot words.
    let _words = Region::create_kind_in(&scratch.0, "words", geometry, RingKind::Mpmc).unwrap();
    let garbage = [
        (offsets::TAIL, u64::MAX - 3),
        (offsets::HEAD, 1 << 40),
        (offsets::READ_CURSOR, 12345),
        (slot_word(Role::Producer, 0, SlotWord::Epoch), u64::MAX),
        (slot_word(Role::Producer, 0, SlotWord::Pid), u64::MAX),
        (slot_word(Role::Producer, 0, SlotWord::Claim), (1 << 40) + 8),
        (slot_word(Role::Producer, 0, SlotWord::ClaimLen), u64::MAX),
        (slot_word(Role::Consumer, 0, SlotWord::Epoch), 3),
        (slot_word(Role::Consumer, 0, SlotWord::Pid), 99),
    ];
    for (offset, value) in garbage {
        poke(&path("words"), offset, value);
    }
    let (text, json) = run("words");
    assert!(
        text.contains("multi-producer, multi-consumer ring"),
        "{text}"
    );
    assert!(text.contains("fill: impossible"), "{text}");
    assert!(text.contains("corrupt: tail"), "{text}");
    assert!(
        text.contains(&format!(
            "producer slot 0: pid {} attached and died without detaching",
            u64::MAX
        )),
        "{text}"
    );
    assert!(
        text.contains("consumer slot 0: pid 99 attached and died without detaching\n"),
        "{text}"
    );
    // With impossible positions, no claim is said to be in the ring.
    assert!(!text.contains("its last claim"), "{text}");
    assert!(json.get("valid").bool() && json.get("corrupt").bool());
    assert!(!json.get("problems").array().is_empty());
    assert_eq!(json.get("used_bytes"), &Json::Null);
    assert_eq!(json.get("fill"), &Json::Null);
    let producer = &json.get("producers").array()[0];
    assert_eq!(producer.get("pid").u64(), u64::MAX);
    assert_eq!(producer.get("claim").get("pending"), &Json::Null);

    // A valid header in a sparse file, which openers refuse: the header is
    // shown, and why the region is refused.
    let header = std::fs::read(path("kind")).unwrap()[..shmsg::shm::layout::DATA_OFFSET].to_vec();
    std::fs::write(path("sparse"), &header).unwrap();
    poke(&path("sparse"), offsets::RING_KIND, RingKind::Mpsc as u64);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path("sparse"))
        .unwrap();
    file.set_len(geometry.region_size() as u64).unwrap();
    let (text, json) = run("sparse");
    assert!(
        text.contains("multi-producer, single-consumer ring"),
        "{text}"
    );
    assert!(
        text.contains("corrupt: openers refuse it: corrupt region: region file has unallocated"),
        "{text}"
    );
    assert!(text.contains("status: stale"), "{text}");
    assert_eq!(json.get("kind").str(), "mpsc");
    assert!(!json.get("valid").bool() && json.get("corrupt").bool());
    assert!(json.get("stale").bool());
}
