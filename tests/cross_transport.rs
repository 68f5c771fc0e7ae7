//! Every endpoint between two real processes: a million self-checking
//! messages (sequence number, checksum, per-byte pattern) from a child
//! process to this one, then a reply the other way, then the end of the
//! stream.
//!
//! This file has its own `main` (`harness = false` in Cargo.toml): the
//! child processes are this same executable with `SHMSG_PEER` set, and for
//! the stdin/stdout pipe endpoint nothing but the channel may write to the
//! child's stdout, which the standard test harness would.
//!
//! TCP runs between two network namespaces joined by a veth pair (two hosts
//! on one machine) when the tests run as root and `ip netns` works, and over
//! loopback otherwise; the output says which.
//!
//! `SHMSG_CROSS_MESSAGES` sets the count (default 1 000 000); an argument
//! runs only the cases whose names contain it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use shmsg::workload::Workload;
use shmsg::{Error, Options, Receiver, Sender};

mod common;
use common::Case;

const WORKLOAD: Workload = Workload {
    seed: 0x5eed,
    max_len: 100,
};
/// Messages per `send_batch` in the child's batch phases.
const BATCH: usize = 32;

fn count() -> u64 {
    common::env_u64("SHMSG_CROSS_MESSAGES", 1_000_000)
}

fn options() -> Options {
    Options {
        max_message: Some(4096),
        capacity: Some(1 << 20),
        timeout: Duration::from_secs(20),
        ..Options::default()
    }
}

/// The child's side: connect, send `count` workload messages (single sends
/// and batches alternating by thousands), wait for the reply, leave.
fn send_role(endpoint: &str, count: u64) -> shmsg::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut channel = loop {
        match shmsg::connect_with(endpoint, &options()) {
            Ok(channel) => break channel,
            // The receiver (in another namespace) may not be listening yet.
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => return Err(other),
        }
    };
    let mut seq = 0;
    while seq < count {
        if (seq / 1000) % 2 == 0 {
            channel.send(&WORKLOAD.message(seq))?;
            seq += 1;
        } else {
            let end = (seq + BATCH as u64).min(count);
            let batch: Vec<Vec<u8>> = (seq..end).map(|s| WORKLOAD.message(s)).collect();
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            channel.send_batch(&slices)?;
            seq = end;
        }
    }
    let mut reply = Vec::new();
    channel.recv_timeout(&mut reply, Duration::from_secs(60))?;
    if reply != b"received all" {
        return Err(Error::Io {
            context: format!("unexpected reply {reply:?}"),
            source: std::io::ErrorKind::InvalidData.into(),
        });
    }
    Ok(())
}

/// Receives and checks `count` messages on `channel`, replies, and expects
/// the end of the stream.
fn receive_all(mut channel: shmsg::Channel, count: u64) -> Result<(), String> {
    let mut buf = Vec::new();
    for seq in 0..count {
        channel
            .recv_timeout(&mut buf, Duration::from_secs(60))
            .map_err(|e| format!("message {seq}: {e}"))?;
        WORKLOAD
            .verify(seq, &buf)
            .map_err(|m| format!("message {seq}: {m}"))?;
    }
    channel
        .send(b"received all")
        .map_err(|e| format!("reply: {e}"))?;
    match channel.recv_timeout(&mut buf, Duration::from_secs(60)) {
        Err(Error::Disconnected) => Ok(()),
        other => Err(format!("after the last message: {other:?}")),
    }
}

/// The receiving side as a child (for the namespace test).
fn receive_role(endpoint: &str, count: u64) -> Result<(), String> {
    let mut listener = shmsg::listen_with(endpoint, &options()).map_err(|e| e.to_string())?;
    let channel = listener
        .accept_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    receive_all(channel, count)
}

fn peer_main(role: &str) -> ExitCode {
    let endpoint = std::env::var("SHMSG_ENDPOINT").unwrap_or_default();
    let count = count();
    let result = match role {
        "send" => send_role(&endpoint, count).map_err(|e| e.to_string()),
        "receive" => receive_role(&endpoint, count),
        other => Err(format!("unknown role {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer {role} on {endpoint}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn peer_command(role: &str, endpoint: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test executable"));
    command
        .env("SHMSG_PEER", role)
        .env("SHMSG_ENDPOINT", endpoint)
        .env("SHMSG_CROSS_MESSAGES", count().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn wait_ok(mut child: Child, what: &str) -> Result<(), String> {
    let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {status}"))
    }
}

/// This process listens on `endpoint`; a child connects and sends.
fn listen_and_receive(endpoint: &str) -> Result<String, String> {
    let mut listener = shmsg::listen_with(endpoint, &options()).map_err(|e| e.to_string())?;
    let endpoint = listener.endpoint();
    let child = peer_command("send", &endpoint)
        .spawn()
        .map_err(|e| e.to_string())?;
    let channel = listener
        .accept_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    receive_all(channel, count())?;
    wait_ok(child, "the sending child")?;
    Ok(endpoint)
}

fn case_shm() -> Result<String, String> {
    listen_and_receive(&format!("shm:{}", common::unique("cross", "shm")))
}

fn case_unix_path() -> Result<String, String> {
    let path = std::env::temp_dir().join(common::unique("shmsg-cross", "unix"));
    listen_and_receive(&format!("unix:{}", path.display()))
}

fn case_unix_abstract() -> Result<String, String> {
    listen_and_receive(&format!(
        "unix:@{}",
        common::unique("shmsg-cross", "abstract")
    ))
}

fn case_seqpacket() -> Result<String, String> {
    listen_and_receive(&format!(
        "seqpacket:@{}",
        common::unique("shmsg-cross", "seqpacket")
    ))
}

/// The child's stdin and stdout, through `shmsg::msg::pipe::spawn`.
fn case_pipe_stdio() -> Result<String, String> {
    let mut command = peer_command("send", "pipe");
    let (channel, child) =
        shmsg::msg::pipe::spawn(&mut command, &options()).map_err(|e| e.to_string())?;
    receive_all(channel, count())?;
    wait_ok(child, "the sending child")?;
    Ok("pipe".into())
}

/// Two pipes the child inherits as descriptors 3 and 4 (`pipe:3,4`).
fn case_pipe_inherited() -> Result<String, String> {
    let (child_read, our_write) = std::io::pipe().map_err(|e| e.to_string())?;
    let (our_read, child_write) = std::io::pipe().map_err(|e| e.to_string())?;
    let (child_read, child_write) = (OwnedFd::from(child_read), OwnedFd::from(child_write));
    let (r, w) = (child_read.as_raw_fd(), child_write.as_raw_fd());
    let mut command = peer_command("send", "pipe:3,4");
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls dup, dup2 and fcntl, which are async-signal-safe; `r` and `w` are open in the
    // parent (owned above) and so in the child. dup2 clears FD_CLOEXEC on
    // the copies. A source already at 3 or 4 is moved out of the way first.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(move || {
            let r = if r == 4 { libc::dup(r) } else { r };
            let w = if w == 3 { libc::dup(w) } else { w };
            for (from, to) in [(r, 3), (w, 4)] {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                let ok = if from == to {
                    libc::fcntl(to, libc::F_SETFD, 0) >= 0
                } else {
                    libc::dup2(from, to) >= 0
                };
                if !ok {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| e.to_string())?;
    drop((child_read, child_write));
    let channel = shmsg::connect_with(
        &format!(
            "pipe:{},{}",
            std::os::fd::IntoRawFd::into_raw_fd(our_read),
            std::os::fd::IntoRawFd::into_raw_fd(our_write)
        ),
        &options(),
    )
    .map_err(|e| e.to_string())?;
    receive_all(channel, count())?;
    wait_ok(child, "the sending child")?;
    Ok("pipe:3,4".into())
}

/// Two network namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    fn create() -> Option<Namespaces> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let id = std::process::id() % 100_000;
        let names = [format!("shmsg-a{id}"), format!("shmsg-b{id}")];
        let ns = Namespaces { names };
        let [a, b] = &ns.names;
        let (va, vb) = (format!("sva{id}"), format!("svb{id}"));
        let steps: [&[&str]; 9] = [
            &["netns", "add", a],
            &["netns", "add", b],
            &[
                "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
            ],
            &["-n", a, "addr", "add", "10.211.0.1/30", "dev", &va],
            &["-n", b, "addr", "add", "10.211.0.2/30", "dev", &vb],
            &["-n", a, "link", "set", &va, "up"],
            &["-n", b, "link", "set", &vb, "up"],
            &["-n", a, "link", "set", "lo", "up"],
            &["-n", b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let ok = Command::new("ip")
                .args(step)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
        }
        Some(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn case_tcp() -> Result<String, String> {
    let Some(namespaces) = Namespaces::create() else {
        return listen_and_receive("tcp:127.0.0.1:0")
            .map(|e| format!("{e} (loopback: not root or no ip netns)"));
    };
    let endpoint = "tcp:10.211.0.1:7411";
    let in_namespace = |ns: &str, role: &str| {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(std::env::current_exe().expect("the test executable"))
            .env("SHMSG_PEER", role)
            .env("SHMSG_ENDPOINT", endpoint)
            .env("SHMSG_CROSS_MESSAGES", count().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command.spawn().map_err(|e| e.to_string())
    };
    let receiver = in_namespace(&namespaces.names[0], "receive")?;
    let sender = in_namespace(&namespaces.names[1], "send")?;
    let sent = wait_ok(sender, "the sender (namespace b)");
    let received = wait_ok(receiver, "the receiver (namespace a)");
    sent.and(received)?;
    Ok(format!(
        "{endpoint} between network namespaces over a veth pair"
    ))
}

const CASES: [Case; 7] = [
    ("shm", case_shm),
    ("unix_path", case_unix_path),
    ("unix_abstract", case_unix_abstract),
    ("seqpacket", case_seqpacket),
    ("tcp", case_tcp),
    ("pipe_stdio", case_pipe_stdio),
    ("pipe_inherited", case_pipe_inherited),
];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_PEER") {
        return peer_main(&role);
    }
    common::run_cases(&CASES, |what| format!("{} messages over {what}", count()))
}
