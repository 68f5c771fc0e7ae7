//! Attacks on `shmsg recv` through the built binary: the CLI faces of the
//! listener attacks in the library's `tests/attack.rs` (many short-lived
//! senders beside a long one; silent, garbage and unacknowledging clients
//! before the real sender). Every test takes `SERIAL`, as there.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::net::{SendFlags, SocketType};

// The integration tests' shared helpers, beside the library's tests.
#[path = "../../tests/common/mod.rs"]
mod common;
use common::raw::{raw_connect, rdv, socket_name, try_connect};

/// A wait that only a bug makes long.
const PATIENCE: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An endpoint name of this process (each test uses its own `tag`).
fn unique(tag: &str) -> String {
    format!("atk-{}-{tag}", std::process::id())
}

/// Fixed finding (the CLI face of `mpsc_short_lived_clients_do_not_stall_the_listener`).
/// `shmsg recv mpsc:NAME` takes "any number of senders at once", but with
/// one sender connected throughout, the 18th short-lived `shmsg send`
/// cannot connect.
#[test]
fn cli_recv_mpsc_serves_many_short_senders() {
    let _serial = serial();
    let exe = env!("CARGO_BIN_EXE_shmsg");
    let endpoint = format!("mpsc:{}", unique("cli"));
    let mut recv = Command::new(exe)
        .args(["recv", &endpoint])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let spawn_send = |stdin: Stdio| {
        Command::new(exe)
            .args(["send", &endpoint, "--timeout", "3s"])
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Wait for the listener.
    let deadline = Instant::now() + PATIENCE;
    while try_connect(&socket_name(&endpoint), SocketType::SEQPACKET).is_none() {
        assert!(Instant::now() < deadline, "shmsg recv did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut long = spawn_send(Stdio::piped());
    long.stdin.as_mut().unwrap().write_all(b"long\n").unwrap();
    let mut failed = None;
    for i in 0..20 {
        let mut short = spawn_send(Stdio::piped());
        short
            .stdin
            .take()
            .unwrap()
            .write_all(format!("short {i}\n").as_bytes())
            .unwrap();
        let out = short.wait_with_output().unwrap();
        if !out.status.success() {
            failed = Some((i, String::from_utf8_lossy(&out.stderr).into_owned()));
            break;
        }
    }
    drop(long.stdin.take());
    let _ = long.wait();
    let _ = recv.kill();
    let _ = recv.wait();
    let mut printed = String::new();
    recv.stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    if let Some((i, stderr)) = failed {
        panic!(
            "short sender {i} failed: {stderr}\nprinted {} lines",
            printed.lines().count()
        );
    }
}

/// Handled: `shmsg recv shm:NAME` is not held up by silent, garbage and
/// unacknowledging clients before the real sender.
#[test]
fn cli_recv_shm_ignores_bad_clients() {
    let _serial = serial();
    let exe = env!("CARGO_BIN_EXE_shmsg");
    let endpoint = format!("shm:{}", unique("clishm"));
    let recv = Command::new(exe)
        .args(["recv", &endpoint, "--count", "1", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let name = socket_name(&endpoint);
    let silent = loop {
        if let Some(fd) = try_connect(&name, SocketType::SEQPACKET) {
            break fd;
        }
        assert!(Instant::now() < deadline, "shmsg recv did not listen");
        std::thread::sleep(Duration::from_millis(20));
    };
    let garbage = raw_connect(&name, SocketType::SEQPACKET);
    rustix::net::send(&garbage, &[0xEE; 24], SendFlags::NOSIGNAL).unwrap();
    let noack = raw_connect(&name, SocketType::SEQPACKET);
    rustix::net::send(&noack, &rdv(1, u64::MAX), SendFlags::NOSIGNAL).unwrap();
    let mut send = Command::new(exe)
        .args(["send", &endpoint, "--timeout", "5s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    send.stdin.take().unwrap().write_all(b"through\n").unwrap();
    assert!(send.wait().unwrap().success());
    let out = recv.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"through\n");
    drop((silent, garbage, noack));
}
