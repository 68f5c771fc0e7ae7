//! Attacks on the connection-oriented shared-memory endpoints (`shm:`,
//! `mpsc:`) and on every listener's handshakes: hostile clients against a
//! real listener, and fake listeners against a real client.
//!
//! Each test is named for what must hold; one that fails shows a bug (see
//! the comment above it). Every test takes `SERIAL`, so that the
//! descriptor counts of `/proc/self/fd` only see one test at a time. The
//! credential cases run a thread with another effective uid (Linux
//! credentials are per thread), so they need root and are skipped without.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
use shmsg::channel::{Receiver, Sender};
use shmsg::shm::layout::RingKind;
use shmsg::shm::{Geometry, Region};
use shmsg::sync::Event;
use shmsg::{Allow, Error, Options};

mod common;
use common::raw::{listen_abstract, raw_connect, rdv, recv_with_fds, send_with_fds, socket_name};

/// (what, first datagram, with 100 fds, second datagram, second with fds)
type GarbageCase = (&'static str, Vec<u8>, bool, Option<Vec<u8>>, bool);
/// (what, the fake listener's answer, the descriptors it sends, then what)
type LyingCase = (&'static str, Option<Vec<u8>>, Vec<OwnedFd>, Then);

/// A wait that only a bug makes long.
const PATIENCE: Duration = Duration::from_secs(30);
/// The user the credential cases act as.
const NOBODY: u32 = 65534;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn unique(tag: &str) -> String {
    common::unique("atk", tag)
}

fn quick(timeout_ms: u64) -> Options {
    Options {
        timeout: Duration::from_millis(timeout_ms),
        ..Options::default()
    }
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `f` in a thread whose effective uid and gid are `NOBODY` (only
/// that thread: the kernel keeps credentials per thread).
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let (uid, gid) = (
            rustix::process::Uid::from_raw(NOBODY),
            rustix::process::Gid::from_raw(NOBODY),
        );
        rustix::thread::set_thread_res_gid(None, gid, None).unwrap();
        rustix::thread::set_thread_res_uid(None, uid, None).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn file_size(fd: &OwnedFd) -> u64 {
    rustix::fs::fstat(fd).unwrap().st_size as u64
}

/// Accepts in a thread of its own for `for_ms`, collecting what came.
fn accept_for(
    mut listener: shmsg::Listener,
    for_ms: u64,
) -> std::thread::JoinHandle<(shmsg::Listener, Vec<shmsg::Result<shmsg::Channel>>)> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_millis(for_ms);
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match listener.accept_timeout(left) {
                Err(Error::Timeout) => {}
                other => got.push(other),
            }
        }
        (listener, got)
    })
}

// ------------------------------------------------------------- listener side

/// Fixed finding (DoS amplification). A 24-byte hello whose "largest reply" is
/// u64::MAX or 2^40 makes a `shm:` listener with default options (1 MiB
/// rings) create and fallocate a reply ring of 64 MiB (the hello's value is
/// clamped only to 16 MiB messages, `src/endpoint/accept.rs` `Rings::make`),
/// before the client has acknowledged anything; the client gets the
/// descriptor, so it can keep that memory (charged to the listener) forever,
/// and 256 pending connections hold 16 GiB. The listener should never
/// allocate for a client more than its own configuration allows.
#[test]
fn a_hello_cannot_make_the_listener_allocate_more_than_its_rings() {
    let _serial = serial();
    for (scheme, kind) in [("shm:", 1), ("mpsc:", 2)] {
        let endpoint = format!("{scheme}{}", unique("huge"));
        let listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
        let accepting = accept_for(listener, 300);
        let mut sizes = Vec::new();
        for wanted in [u64::MAX, 1 << 40, 1 << 24] {
            let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
            rustix::net::send(&socket, &rdv(kind, wanted), SendFlags::NOSIGNAL).unwrap();
            let (answer, fds) = recv_with_fds(&socket, PATIENCE).expect("an answer");
            assert_eq!(
                &answer[12..16],
                &0u32.to_le_bytes(),
                "{endpoint}: answer OK"
            );
            assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
            let requests = file_size(&fds[0]);
            let replies = file_size(&fds[3]);
            let allocated = rustix::fs::fstat(&fds[3]).unwrap().st_blocks as u64 * 512;
            sizes.push((wanted, requests, replies, allocated));
        }
        let _ = accepting.join().unwrap();
        for (wanted, requests, replies, allocated) in sizes {
            assert!(
                replies <= requests,
                "{endpoint}: a hello asking for replies of {wanted} bytes made the listener \
                 allocate a {replies}-byte reply ring ({allocated} bytes committed) beside its \
                 own {requests}-byte ring"
            );
        }
    }
}

/// Handled: many clients that send a valid hello, take the rings and never
/// acknowledge cost the listener nothing once their hello deadline passed:
/// no descriptor is left (the rings are only kept alive by the clients).
#[test]
fn unacknowledged_hellos_leave_no_descriptors() {
    let _serial = serial();
    for (scheme, kind) in [("shm:", 1u32), ("mpsc:", 2)] {
        let endpoint = format!("{scheme}{}", unique("noack"));
        let listener = shmsg::listen_with(&endpoint, &quick(200)).unwrap();
        let before = fd_count();
        let accepting = accept_for(listener, 1200);
        let mut sockets = Vec::new();
        for _ in 0..64 {
            let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
            rustix::net::send(&socket, &rdv(kind, 0), SendFlags::NOSIGNAL).unwrap();
            let (_, fds) = recv_with_fds(&socket, PATIENCE).expect("an answer");
            assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
            drop(fds);
            sockets.push(socket);
        }
        let (listener, got) = accepting.join().unwrap();
        assert!(got.is_empty(), "{endpoint}: {} accepted", got.len());
        // Every one was dropped at its deadline: each sees the end.
        for socket in &sockets {
            assert!(recv_with_fds(socket, PATIENCE).is_none());
        }
        drop(sockets);
        assert_eq!(fd_count(), before, "{endpoint}: descriptors left behind");
        drop(listener);
    }
}

/// Handled: hellos and acknowledgements of every wrong shape, with and
/// without descriptors (100 of them), leave no descriptor in the listener,
/// close what was sent to it, and do not disturb it.
#[test]
fn garbage_handshakes_leak_nothing() {
    let _serial = serial();
    for (scheme, kind) in [("shm:", 1u32), ("mpsc:", 2)] {
        let endpoint = format!("{scheme}{}", unique("garbage"));
        let mut listener = shmsg::listen_with(&endpoint, &quick(300)).unwrap();
        let name = socket_name(&endpoint);
        // Warm up: one real client (threads, lazily opened files).
        {
            let target = endpoint.clone();
            let client = std::thread::spawn(move || shmsg::connect(&target).unwrap());
            let _server = listener.accept_timeout(PATIENCE).unwrap();
            drop(client.join().unwrap());
        }
        let before = fd_count();
        // A pipe whose write end goes to the listener 100 times: its read
        // end sees the end of the stream only once every copy is closed.
        let (pipe_r, pipe_w) = rustix::pipe::pipe().unwrap();
        let many: Vec<BorrowedFd<'_>> = (0..100).map(|_| pipe_w.as_fd()).collect();
        let mut long = [0u8; 1000];
        long[..24].copy_from_slice(&rdv(kind, 0));
        let refusal = {
            let mut r = rdv(0, 0);
            r[..8].copy_from_slice(b"shmsg\0no");
            r
        };
        let mut clients = Vec::new();
        let cases: Vec<GarbageCase> = vec![
            // (what, first datagram, with 100 fds, second datagram, second with fds)
            ("empty datagram", vec![], false, None, false),
            ("23 bytes", rdv(kind, 0)[..23].to_vec(), false, None, false),
            (
                "25 bytes",
                [&rdv(kind, 0)[..], &[0]].concat(),
                false,
                None,
                false,
            ),
            ("1000 bytes", long.to_vec(), false, None, false),
            ("a refusal", refusal.to_vec(), false, None, false),
            (
                "hello with 100 fds",
                rdv(kind, 0).to_vec(),
                true,
                None,
                false,
            ),
            (
                "ack with 100 fds",
                rdv(kind, 0).to_vec(),
                false,
                Some(rdv(0, 0).to_vec()),
                true,
            ),
            (
                "ack code 7",
                rdv(kind, 0).to_vec(),
                false,
                Some(rdv(7, 0).to_vec()),
                false,
            ),
            (
                "hello twice",
                rdv(kind, 0).to_vec(),
                false,
                Some(rdv(kind, 0).to_vec()),
                false,
            ),
            (
                "short ack",
                rdv(kind, 0).to_vec(),
                false,
                Some(rdv(0, 0)[..20].to_vec()),
                false,
            ),
        ];
        for (what, first, first_fds, second, second_fds) in &cases {
            let socket = raw_connect(&name, SocketType::SEQPACKET);
            let fds: &[BorrowedFd<'_>] = if *first_fds { &many } else { &[] };
            send_with_fds(&socket, first, fds).unwrap_or_else(|e| panic!("{what}: {e}"));
            if let Some(second) = second {
                let fds: &[BorrowedFd<'_>] = if *second_fds { &many } else { &[] };
                send_with_fds(&socket, second, fds).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            clients.push((*what, socket));
        }
        drop(many);
        drop(pipe_w);
        assert!(matches!(
            listener.accept_timeout(Duration::from_millis(800)),
            Err(Error::Timeout)
        ));
        for (what, socket) in &clients {
            // Whatever came (an answer, rings), the connection then ends.
            let mut n = 0;
            while recv_with_fds(socket, PATIENCE).is_some() {
                n += 1;
                assert!(n < 3, "{endpoint}: {what}: still talking");
            }
        }
        drop(clients);
        let mut eof = [0u8; 1];
        let mut pfd = [rustix::event::PollFd::new(
            &pipe_r,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut pfd, Some(&ts)).unwrap();
        assert_eq!(
            rustix::io::read(&pipe_r, &mut eof).ok(),
            Some(0),
            "{endpoint}: a descriptor sent to the listener is still open"
        );
        assert_eq!(
            fd_count(),
            before + 1,
            "{endpoint}: descriptors left behind"
        );
        // And it still serves.
        let target = endpoint.clone();
        let client = std::thread::spawn(move || shmsg::connect(&target));
        let _server = listener.accept_timeout(PATIENCE).unwrap();
        client.join().unwrap().unwrap();
    }
}

/// Handled: a client that acknowledges in the same breath as its hello
/// (before the answer arrived, so before it could attach anything) gets its
/// rings but is not accepted: an acknowledgement counts only when the
/// client's sides are attached.
#[test]
fn an_early_ack_is_not_accepted() {
    let _serial = serial();
    let endpoint = format!("shm:{}", unique("early"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(1, 0), SendFlags::NOSIGNAL).unwrap();
    rustix::net::send(&socket, &rdv(0, 0), SendFlags::NOSIGNAL).unwrap();
    let server = listener.accept_timeout(Duration::from_millis(500));
    assert!(matches!(server, Err(Error::Timeout)), "{server:?}");
    let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
    assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
}

/// Fixed finding (stall, "die → Disconnected"). A client that acknowledges
/// but never attached its sides (a raw client, or one that dies between the
/// answer and attaching if it acked first) used to leave the listener with
/// a channel whose `recv` waited forever. The listener now checks at the
/// acknowledgement that the client's sides are attached: such a client is
/// dropped, never returned by `accept`, and the next client gets in.
#[test]
fn a_client_gone_before_attaching_is_never_accepted() {
    let _serial = serial();
    let endpoint = format!("shm:{}", unique("ghost"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(1, 0), SendFlags::NOSIGNAL).unwrap();
    let accepting = std::thread::spawn(move || {
        let channel = listener.accept_timeout(PATIENCE);
        (listener, channel)
    });
    let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
    assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
    drop(fds);
    rustix::net::send(&socket, &rdv(0, 0), SendFlags::NOSIGNAL).unwrap();
    drop(socket);
    // The listener's accept goes on; a real client completes it.
    let mut client = shmsg::connect_with(&endpoint, &quick(5000)).unwrap();
    let (_listener, channel) = accepting.join().unwrap();
    let mut channel = channel.unwrap();
    client.send(b"real").unwrap();
    let mut buf = Vec::new();
    channel.recv_timeout(&mut buf, PATIENCE).unwrap();
    assert_eq!(
        buf, b"real",
        "the channel accept returned is the real client's"
    );
}

/// Handled: `accept_timeout(0)` returns at once, and called again and again
/// it completes a client's handshake (each call advances it).
#[test]
fn accept_timeout_zero_polls_and_progresses() {
    let _serial = serial();
    for scheme in ["shm:", "mpsc:", "unix:@", "seqpacket:@"] {
        let endpoint = format!("{scheme}{}", unique("zero"));
        let mut listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
        let start = Instant::now();
        assert!(matches!(
            listener.accept_timeout(Duration::ZERO),
            Err(Error::Timeout)
        ));
        // A call that does not wait takes microseconds; 1 s leaves a loaded
        // machine a margin of far more than 10x and still catches a call
        // that waits for a hello deadline (2 s here).
        assert!(start.elapsed() < Duration::from_secs(1));
        let target = endpoint.clone();
        let client = std::thread::spawn(move || shmsg::connect_with(&target, &quick(5000)));
        let deadline = Instant::now() + PATIENCE;
        let server = loop {
            match listener.accept_timeout(Duration::ZERO) {
                Ok(channel) => break channel,
                Err(Error::Timeout) => assert!(Instant::now() < deadline, "{endpoint}"),
                Err(e) => panic!("{endpoint}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut client = client.join().unwrap().unwrap();
        client.send(b"x").unwrap();
        let mut server = server;
        let mut buf = Vec::new();
        server.recv_timeout(&mut buf, PATIENCE).unwrap();
        assert_eq!(buf, b"x");
    }
}

/// Handled: dropping a listener while clients are mid-handshake (answered,
/// not acknowledged; or connecting) returns at once; each such client
/// sees the end, and a connecting client gets an error by its deadline.
#[test]
fn listener_drop_mid_handshake() {
    let _serial = serial();
    for (scheme, kind) in [("shm:", 1u32), ("mpsc:", 2)] {
        let endpoint = format!("{scheme}{}", unique("dropmid"));
        let mut listener = shmsg::listen_with(&endpoint, &quick(5000)).unwrap();
        let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
        rustix::net::send(&socket, &rdv(kind, 0), SendFlags::NOSIGNAL).unwrap();
        if scheme == "shm:" {
            assert!(matches!(
                listener.accept_timeout(Duration::from_millis(100)),
                Err(Error::Timeout)
            ));
        }
        let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
        assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
        let silent = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
        let start = Instant::now();
        drop(listener);
        // Dropping takes milliseconds (a mpsc: listener joins its thread,
        // which wakes at once); 5 s is far more than 10x that.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{endpoint}: drop took {:?}",
            start.elapsed()
        );
        assert!(recv_with_fds(&socket, Duration::from_secs(5)).is_none());
        assert!(recv_with_fds(&silent, Duration::from_secs(5)).is_none());
        let start = Instant::now();
        let late = shmsg::connect_with(&endpoint, &quick(300));
        assert!(late.is_err(), "{endpoint}");
        // Within its 300 ms timeout; 3 s is a 10x margin for a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(3), "{endpoint}");
    }
}

/// Handled: an `mpsc:` listener whose queue is full (16 channels never
/// accepted, a 17th waiting) is dropped promptly: its thread notices.
#[test]
fn mpsc_drop_with_a_full_queue_does_not_hang() {
    let _serial = serial();
    let endpoint = format!("mpsc:{}", unique("fullq"));
    let listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
    // 16 queued channels (one process holds at most 16 producers)...
    let clients: Vec<_> = (0..16)
        .map(|_| shmsg::connect_with(&endpoint, &quick(5000)).unwrap())
        .collect();
    // ... and a 17th handshake, completed by hand, that the thread holds
    // while it waits for room in the queue.
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(2, 0), SendFlags::NOSIGNAL).unwrap();
    let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
    assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
    rustix::net::send(&socket, &rdv(0, 0), SendFlags::NOSIGNAL).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(listener);
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
        "dropping the listener hangs"
    );
    drop((clients, socket, fds));
}

/// Fixed finding (stall). An `mpsc:` listener answers clients from a thread that
/// puts every finished channel into a queue of 16 for `accept`, and stops
/// answering while it is full (`src/endpoint/listener.rs` `Background::start`).
/// The documented use is an application that accepted once and then only
/// receives; but channels of clients that are long gone stay queued, so
/// the 18th client over the listener's life (one client opening 17
/// connections is enough) finds no one answering: `connect` times out,
/// although every producer slot is free again. Suggested: drop queued
/// channels whose link has hung up, and keep answering (a channel that no
/// one accepts still lets its client send into the shared ring).
#[test]
fn mpsc_short_lived_clients_do_not_stall_the_listener() {
    let _serial = serial();
    let endpoint = format!("mpsc:{}", unique("churn"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(1000)).unwrap();
    let mut first = shmsg::connect_with(&endpoint, &quick(2000)).unwrap();
    let mut server = listener.accept_timeout(PATIENCE).unwrap();
    first.send(b"first").unwrap();
    let mut buf = Vec::new();
    server.recv_timeout(&mut buf, PATIENCE).unwrap();
    // The application now only receives. Clients come and go.
    for i in 0..24 {
        let client = shmsg::connect_with(&endpoint, &quick(2000));
        let mut client = match client {
            Ok(client) => client,
            Err(e) => panic!("client {i} (each earlier one has left): {e}"),
        };
        client.send(format!("{i}").as_bytes()).unwrap();
        server.recv_timeout(&mut buf, PATIENCE).unwrap();
        assert_eq!(buf, format!("{i}").as_bytes());
    }
}

/// Fixed finding (stall by a refused peer). The `mpsc:` listener's thread queues
/// `Err(PeerRefused)` for every refused connection, in the same queue of 16
/// as the channels (and sleeps 10 ms after each). So 17 connections from a
/// user the listener refuses stop it from answering anyone, including
/// allowed clients, until the application calls `accept`.
#[test]
fn refused_peers_do_not_stall_an_mpsc_listener() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root to connect as another user");
        return;
    }
    let endpoint = format!("mpsc:{}", unique("refusedq"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(1000)).unwrap();
    let mut first = shmsg::connect_with(&endpoint, &quick(2000)).unwrap();
    let mut server = listener.accept_timeout(PATIENCE).unwrap();
    let name = socket_name(&endpoint);
    let refusals = as_nobody(move || {
        let mut refusals = 0;
        for _ in 0..20 {
            let socket = raw_connect(&name, SocketType::SEQPACKET);
            if let Some((answer, _)) = recv_with_fds(&socket, Duration::from_secs(2))
                && answer.starts_with(b"shmsg\0no")
            {
                refusals += 1;
            }
        }
        refusals
    });
    assert!(refusals > 0, "the other user was not refused");
    let start = Instant::now();
    let client = shmsg::connect_with(&endpoint, &quick(2000));
    assert!(
        client.is_ok(),
        "an allowed client after {refusals} refused ones: {client:?} after {:?}",
        start.elapsed()
    );
    first.send(b"still here").unwrap();
    let mut buf = Vec::new();
    server.recv_timeout(&mut buf, PATIENCE).unwrap();
}

/// Fixed finding (one client disables an `mpsc:` listener for good). Every client
/// gets the descriptor of the listener's one ring. The listener attaches
/// its consumer only while a channel (or a pending one) lives
/// (`Shared::consumer` is a `Weak`, `src/endpoint/accept.rs`). A client
/// that takes the rings and never acknowledges makes the listener drop the
/// only channel at the hello deadline, which detaches the consumer; the
/// client then attaches a consumer itself (public API, or one OFD lock),
/// and every later `Rings::make` fails: each later client is told "no
/// rings". The attacker also receives every other producer's messages.
/// Suggested: the listener attaches its consumer once, at `listen`, and
/// keeps it for its life.
#[test]
fn one_client_cannot_take_the_mpsc_consumer() {
    let _serial = serial();
    let endpoint = format!("mpsc:{}", unique("hijack"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(200)).unwrap();
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(2, 0), SendFlags::NOSIGNAL).unwrap();
    let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
    assert_eq!(fds.len(), 6, "two rings, each a memfd and two eventfds");
    // Past the hello deadline: the listener dropped the pending channel.
    std::thread::sleep(Duration::from_millis(800));
    let shared = Arc::new(Region::from_fd(&fds[0]).unwrap());
    let hijacked = shmsg::shm::mpmc::Consumer::attach(&shared);
    // An honest client now.
    let client = shmsg::connect_with(&endpoint, &quick(2000));
    let mut client = match client {
        Ok(client) => client,
        Err(e) => panic!(
            "a client after the attacker attached a consumer ({}): {e}",
            if hijacked.is_ok() {
                "it could"
            } else {
                "it could not"
            }
        ),
    };
    client.send(b"for the listener").unwrap();
    let mut server = listener.accept_timeout(PATIENCE).unwrap();
    let mut buf = Vec::new();
    server.recv_timeout(&mut buf, PATIENCE).unwrap();
    assert_eq!(buf, b"for the listener");
}

/// Fixed finding (panic). `Options::timeout` of `Duration::MAX` ("wait forever
/// for hellos") makes the listener panic when a client connects: the
/// hello deadline is `Instant::now() + self.timeout` (`src/endpoint/accept.rs`
/// `accept_new`), which overflows. For `mpsc:` it kills the listener's
/// thread, after which `accept` only says `Disconnected`. Suggested:
/// `checked_add`, `None` meaning no deadline (as `Deadline::after` does).
#[test]
fn a_huge_timeout_does_not_panic_the_listener() {
    let _serial = serial();
    let options = Options {
        timeout: Duration::MAX,
        ..Options::default()
    };
    for scheme in ["shm:", "unix:@", "seqpacket:@", "mpsc:"] {
        let endpoint = format!("{scheme}{}", unique("forever"));
        let mut listener = shmsg::listen_with(&endpoint, &options).unwrap();
        let kind = if scheme == "unix:@" {
            SocketType::STREAM
        } else {
            SocketType::SEQPACKET
        };
        let _silent = raw_connect(&socket_name(&endpoint), kind);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            listener.accept_timeout(Duration::from_millis(200))
        }));
        match result {
            Ok(Err(Error::Timeout)) => {}
            Ok(other) => panic!("{endpoint}: accept_timeout returned {other:?}"),
            Err(_) => panic!("{endpoint}: the listener panicked on a client's connection"),
        }
        // And it still serves.
        let target = endpoint.clone();
        let client = std::thread::spawn(move || shmsg::connect_with(&target, &quick(2000)));
        let server = listener.accept_timeout(Duration::from_secs(5));
        assert!(server.is_ok(), "{endpoint}: {server:?}");
        client.join().unwrap().unwrap();
    }
}

/// Fixed finding (listener stall). Clients connecting back to back as fast as
/// they can (three threads, never saying hello) keep `accept_timeout(100 ms)`
/// from returning for as long as the flood lasts (22 s seen; a 100 ms sleep
/// beside it takes 105 ms): `Handshakes::next` only returns `Timeout` when
/// a round accepted no new connection (`fresh`), and under a flood every
/// round does. The deadline must win: return `Timeout` once it has passed,
/// whatever `accept_new` found.
#[test]
fn a_connection_flood_does_not_hold_accept_timeout() {
    let _serial = serial();
    let endpoint = format!("shm:{}", unique("flood"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(100)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            let name = socket_name(&endpoint);
            std::thread::spawn(move || {
                let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let fd = rustix::net::socket_with(
                        AddressFamily::UNIX,
                        SocketType::SEQPACKET,
                        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                        None,
                    )
                    .unwrap();
                    let _ = rustix::net::connect(&fd, &addr);
                }
            })
        })
        .collect();
    // A watchdog ends the flood after 5 s, so that a bug cannot hold the
    // test longer than that.
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut worst = Duration::ZERO;
    let mut control = Duration::ZERO;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && worst < Duration::from_secs(1) {
        let start = Instant::now();
        let _ = listener.accept_timeout(Duration::from_millis(100));
        worst = worst.max(start.elapsed());
        // The same wait as a plain sleep, under the same load: what the
        // machine alone makes of 100 ms.
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        control = control.max(start.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    assert!(
        worst < Duration::from_secs(1),
        "accept_timeout(100 ms) took {worst:?} (a 100 ms sleep beside it: {control:?})"
    );
}

/// Handled (on this machine): under the same flood, an honest client still
/// gets in while the listener accepts continuously, although the pending
/// set keeps only the newest 256 connections (`MAX_PENDING`; `accept_new`
/// evicts `pending[0]`, which after `swap_remove` is not always the
/// oldest).
#[test]
fn a_connection_flood_does_not_lock_out_clients() {
    let _serial = serial();
    let endpoint = format!("shm:{}", unique("starve"));
    let listener = shmsg::listen_with(&endpoint, &quick(1000)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let name = socket_name(&endpoint);
            std::thread::spawn(move || {
                let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(8);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    let fd = rustix::net::socket_with(
                        AddressFamily::UNIX,
                        SocketType::SEQPACKET,
                        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                        None,
                    )
                    .unwrap();
                    let _ = rustix::net::connect(&fd, &addr);
                }
            })
        })
        .collect();
    let accepting = accept_for(listener, 4000);
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let client = shmsg::connect_with(&endpoint, &quick(3000));
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    let _ = accepting.join().unwrap();
    assert!(
        client.is_ok(),
        "an honest client during a flood: {client:?} after {took:?}"
    );
}

// ------------------------------------------------------------ stream listener

/// Handled: a stream client that sends its hello and 200 frames in one
/// write loses none of them; one that dribbles its hello a byte at a time
/// is dropped at its deadline (not extended by each byte); a TCP peer has
/// no credentials.
#[test]
fn stream_hellos_with_frames_and_dribbles() {
    let _serial = serial();
    use shmsg::msg::frame::{Hello, encode};
    let endpoint = format!("unix:@{}", unique("frames"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(400)).unwrap();
    let mut stream = std::os::unix::net::UnixStream::from(raw_connect(
        &socket_name(&endpoint),
        SocketType::STREAM,
    ));
    let mut wire = Hello::new(1 << 20).encode().to_vec();
    for i in 0..200u32 {
        encode(&i.to_le_bytes(), 1 << 20, &mut wire).unwrap();
    }
    stream.write_all(&wire).unwrap();
    let mut server = listener.accept_timeout(PATIENCE).unwrap();
    let mut buf = Vec::new();
    for i in 0..200u32 {
        server.recv_timeout(&mut buf, PATIENCE).unwrap();
        assert_eq!(buf, i.to_le_bytes());
    }
    // The dribbler: one byte every 50 ms, 20 bytes would take 1 s.
    let name = socket_name(&endpoint);
    let dribbler = std::thread::spawn(move || {
        let mut s = std::os::unix::net::UnixStream::from(raw_connect(&name, SocketType::STREAM));
        let hello = Hello::new(1024).encode();
        let start = Instant::now();
        for b in hello {
            if s.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut out = [0u8; 64];
        let got = s.read(&mut out);
        (start.elapsed(), got.map_err(|e| e.kind()))
    });
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(1500)),
        Err(Error::Timeout)
    ));
    let (_, got) = dribbler.join().unwrap();
    assert!(
        matches!(got, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
        "the dribbler was served: {got:?}"
    );
    // TCP: no credentials.
    let mut tcp = shmsg::listen_with("tcp:127.0.0.1:0", &quick(2000)).unwrap();
    let target = tcp.endpoint();
    let client = std::thread::spawn(move || shmsg::connect(&target));
    let server = tcp.accept_timeout(PATIENCE).unwrap();
    assert_eq!(server.peer(), None);
    client.join().unwrap().unwrap();
}

/// Handled: TCP clients that reset their connection before the listener
/// accepts it (SO_LINGER 0), many times, are not an error of `accept`.
#[test]
fn tcp_resets_before_accept_are_not_errors() {
    let _serial = serial();
    let mut listener = shmsg::listen_with("tcp:127.0.0.1:0", &quick(500)).unwrap();
    let addr = listener.endpoint().strip_prefix("tcp:").unwrap().to_owned();
    for _ in 0..50 {
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
        drop(stream);
    }
    let got = listener.accept_timeout(Duration::from_millis(300));
    assert!(matches!(got, Err(Error::Timeout)), "{got:?}");
    let target = listener.endpoint();
    let client = std::thread::spawn(move || shmsg::connect(&target));
    listener.accept_timeout(PATIENCE).unwrap();
    client.join().unwrap().unwrap();
}

/// DESIGN (not fixable without another `mpsc:` design; run with
/// `--ignored`). Every `mpsc:` client maps the listener's one ring read and
/// write, so one client can take all 16 producer slots (and, as any
/// producer, read every other client's messages or corrupt the ring):
/// here, one connection's ring and 16 `Producer::attach` lock every
/// later client out.
#[test]
#[ignore = "inherent to one shared writable ring per mpsc: listener"]
fn one_mpsc_client_cannot_take_every_producer_slot() {
    let _serial = serial();
    let endpoint = format!("mpsc:{}", unique("slots"));
    let mut listener = shmsg::listen_with(&endpoint, &quick(2000)).unwrap();
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(2, 0), SendFlags::NOSIGNAL).unwrap();
    let (_, fds) = recv_with_fds(&socket, PATIENCE).unwrap();
    rustix::net::send(&socket, &rdv(0, 0), SendFlags::NOSIGNAL).unwrap();
    let _first = listener.accept_timeout(PATIENCE).unwrap();
    let shared = Arc::new(Region::from_fd(&fds[0]).unwrap());
    let hogs: Vec<_> = (0..16)
        .filter_map(|_| shmsg::shm::mpmc::Producer::attach(&shared).ok())
        .collect();
    let client = shmsg::connect_with(&endpoint, &quick(2000));
    assert!(
        client.is_ok(),
        "after one client took {} producer slots: {client:?}",
        hogs.len()
    );
}

// ---------------------------------------------------------- client side

/// What a fake listener does after its answer.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Waits for the client's next datagram (the ack), then closes.
    AwaitAck,
    /// Closes at once.
    Close,
}

/// A fake listener at `@shmsg.NAME`, bound by the calling thread (whose
/// credentials the client sees): answers one client's hello with `answer`
/// (if any) and `fds`.
fn fake_listener(
    name: &str,
    answer: Option<Vec<u8>>,
    fds: Vec<OwnedFd>,
    then: Then,
) -> std::thread::JoinHandle<()> {
    let listening = listen_abstract(&format!("shmsg.{name}"), SocketType::SEQPACKET);
    std::thread::spawn(move || {
        let client = rustix::net::accept(&listening).unwrap();
        let mut hello = [0u8; 64];
        let _ = rustix::net::recv(&client, &mut hello, RecvFlags::empty());
        if let Some(answer) = answer {
            let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
            let _ = send_with_fds(&client, &answer, &borrowed);
        }
        drop(fds);
        if then == Then::AwaitAck {
            let _ = rustix::net::recv(&client, &mut hello, RecvFlags::empty());
        }
    })
}

fn ok_answer() -> Vec<u8> {
    rdv(0, 0).to_vec()
}

/// What a listener sends for a fresh ring of `kind`: its memfd and its two
/// eventfds.
fn ring_fds(kind: RingKind, geometry: Geometry) -> Vec<OwnedFd> {
    region_fds(&Region::anonymous_kind(geometry, kind).unwrap())
}

/// The descriptors of several rings, in order.
fn joined<const N: usize>(rings: [Vec<OwnedFd>; N]) -> Vec<OwnedFd> {
    rings.into_iter().flatten().collect()
}

/// What a listener sends for `region`.
fn region_fds(region: &Region) -> Vec<OwnedFd> {
    let signals = region.signals().unwrap().try_clone().unwrap();
    vec![
        region.as_fd().try_clone_to_owned().unwrap(),
        signals.fd(Event::Data).try_clone_to_owned().unwrap(),
        signals.fd(Event::Space).try_clone_to_owned().unwrap(),
    ]
}

/// Handled: a fake listener that answers with the wrong kind of ring, too
/// many descriptors, a datagram of the wrong length, or not at all, or
/// that closes before answering, is a typed error by the deadline, and
/// leaves no descriptor in the client.
#[test]
fn clients_survive_lying_listeners() {
    let _serial = serial();
    let g = Geometry::new(1 << 16, 1024).unwrap();
    for scheme in ["shm:", "mpsc:"] {
        let before = fd_count();
        let other = if scheme == "shm:" {
            RingKind::Mpsc
        } else {
            RingKind::Spsc
        };
        let own = if scheme == "shm:" {
            RingKind::Spsc
        } else {
            RingKind::Mpsc
        };
        let cases: Vec<LyingCase> = vec![
            (
                "rings of the other kind",
                Some(ok_answer()),
                joined([ring_fds(other, g), ring_fds(RingKind::Spsc, g)]),
                Then::AwaitAck,
            ),
            (
                "an mpsc reply ring",
                Some(ok_answer()),
                joined([ring_fds(own, g), ring_fds(RingKind::Mpsc, g)]),
                Then::AwaitAck,
            ),
            (
                "three rings",
                Some(ok_answer()),
                joined([
                    ring_fds(own, g),
                    ring_fds(RingKind::Spsc, g),
                    ring_fds(RingKind::Spsc, g),
                ]),
                Then::AwaitAck,
            ),
            (
                "two memfds only",
                Some(ok_answer()),
                vec![
                    ring_fds(own, g).swap_remove(0),
                    ring_fds(RingKind::Spsc, g).swap_remove(0),
                ],
                Then::AwaitAck,
            ),
            (
                "a socket where an eventfd belongs",
                Some(ok_answer()),
                {
                    let mut fds = joined([ring_fds(own, g), ring_fds(RingKind::Spsc, g)]);
                    let (a, _b) = rustix::net::socketpair(
                        AddressFamily::UNIX,
                        SocketType::STREAM,
                        SocketFlags::CLOEXEC,
                        None,
                    )
                    .unwrap();
                    fds[1] = a;
                    fds
                },
                Then::AwaitAck,
            ),
            (
                "a memfd where an eventfd belongs",
                Some(ok_answer()),
                {
                    let mut fds = joined([ring_fds(own, g), ring_fds(RingKind::Spsc, g)]);
                    fds[5] = ring_fds(RingKind::Spsc, g).swap_remove(0);
                    fds
                },
                Then::AwaitAck,
            ),
            (
                "25 bytes",
                Some([&ok_answer()[..], &[0]].concat()),
                joined([ring_fds(own, g), ring_fds(RingKind::Spsc, g)]),
                Then::AwaitAck,
            ),
            (
                "23 bytes",
                Some(ok_answer()[..23].to_vec()),
                vec![],
                Then::AwaitAck,
            ),
            (
                "unknown code",
                Some(rdv(77, 0).to_vec()),
                vec![],
                Then::AwaitAck,
            ),
            ("silence", None, vec![], Then::AwaitAck),
            ("closed", None, vec![], Then::Close),
        ];
        for (what, answer, fds, then) in cases {
            let name = unique("liar");
            let server = fake_listener(&name, answer, fds, then);
            let start = Instant::now();
            let result = shmsg::connect_with(&format!("{scheme}{name}"), &quick(500));
            let took = start.elapsed();
            match result {
                Err(
                    Error::Corrupt { .. }
                    | Error::Handshake { .. }
                    | Error::Io { .. }
                    | Error::LayoutMismatch { .. }
                    | Error::Timeout
                    | Error::Disconnected,
                ) => {}
                other => panic!("{scheme} {what}: connect returned {other:?}"),
            }
            assert!(took < Duration::from_secs(5), "{scheme} {what}: {took:?}");
            server.join().unwrap();
        }
        assert_eq!(
            fd_count(),
            before,
            "{scheme}: descriptors left in the client"
        );
    }
}

/// Fixed finding (same root cause as `a_client_gone_before_attaching_is_disconnected`).
/// A listener that hands out rings and vanishes (dies) before attaching
/// its sides gives the client a channel whose `recv_timeout` says `Timeout`
/// forever and whose blocking `recv` never returns, although its link
/// socket is closed. The client should check the listener's sides are
/// attached before trusting the channel, or watch the link.
#[test]
fn a_listener_gone_after_answering_is_disconnected() {
    let _serial = serial();
    let g = Geometry::new(1 << 16, 1024).unwrap();
    let name = unique("vanish");
    let server = fake_listener(
        &name,
        Some(ok_answer()),
        joined([ring_fds(RingKind::Spsc, g), ring_fds(RingKind::Spsc, g)]),
        Then::AwaitAck,
    );
    let result = shmsg::connect_with(&format!("shm:{name}"), &quick(2000));
    server.join().unwrap();
    let mut channel = match result {
        Err(_) => return, // refusing is fine
        Ok(channel) => channel,
    };
    let mut buf = Vec::new();
    let got = channel.recv_timeout(&mut buf, Duration::from_secs(2));
    assert!(
        matches!(got, Err(Error::Disconnected)),
        "the listener never attached and is gone, yet recv_timeout said {got:?}"
    );
}

/// Fixed finding (low). A client's `Options::max_message` ("the largest message
/// this side accepts") is sent in the hello, but the reply ring the
/// listener returns is accepted whatever its maximum
/// (`src/endpoint/connect.rs` `connect_rings`): a listener can deliver
/// messages larger than the client accepts.
#[test]
fn clients_keep_their_max_message() {
    let _serial = serial();
    let small = Geometry::new(1 << 16, 1024).unwrap();
    let large = Geometry::new(1 << 18, 100_000).unwrap();
    let replies = Arc::new(Region::anonymous(large).unwrap());
    let name = unique("bigreply");
    let server = fake_listener(
        &name,
        Some(ok_answer()),
        joined([ring_fds(RingKind::Spsc, small), region_fds(&replies)]),
        Then::AwaitAck,
    );
    let options = Options {
        max_message: Some(1024),
        ..quick(2000)
    };
    let result = shmsg::connect_with(&format!("shm:{name}"), &options);
    server.join().unwrap();
    let channel = match result {
        Err(_) => return, // refusing the ring is fine
        Ok(channel) => channel,
    };
    assert!(
        channel.rx.max_message() <= 1024,
        "the client said it accepts 1024 bytes; its channel receives up to {}",
        channel.rx.max_message()
    );
}

/// Fixed finding (credentials, server impersonation). A client checked nothing
/// about the listener it reaches: any local user can bind the abstract
/// name `@shmsg.NAME` (or `unix:@NAME`, `seqpacket:@NAME`) before the real
/// listener and receive what same-user clients send. Fixed: the client
/// applies `Options::allow` (default: same user) to the listener's
/// credentials and fails with `ListenerNotAllowed` before it sends anything.
#[test]
fn clients_refuse_a_listener_of_another_user() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root to listen as another user");
        return;
    }
    let g = Geometry::new(1 << 16, 1024).unwrap();
    let name = unique("squat");
    let fds = joined([ring_fds(RingKind::Spsc, g), ring_fds(RingKind::Spsc, g)]);
    let server = {
        let name = name.clone();
        as_nobody(move || fake_listener(&name, Some(ok_answer()), fds, Then::AwaitAck))
    };
    let result = shmsg::connect_with(&format!("shm:{name}"), &quick(2000));
    server.join().unwrap();
    match result {
        Err(Error::ListenerNotAllowed(listener)) if listener.uid == NOBODY => {}
        Ok(channel) => panic!(
            "connected to a listener of uid {:?} with the default policy",
            channel.peer().map(|p| p.uid)
        ),
        Err(e) => panic!("connect: {e}"),
    }
    // The same on a stream endpoint: the impostor echoes a hello.
    let addr = unique("squat-unix");
    let listening = {
        let addr = addr.clone();
        as_nobody(move || {
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            rustix::net::bind(
                &fd,
                &SocketAddrUnix::new_abstract_name(addr.as_bytes()).unwrap(),
            )
            .unwrap();
            rustix::net::listen(&fd, 8).unwrap();
            fd
        })
    };
    let impostor = std::thread::spawn(move || {
        let client = rustix::net::accept(&listening).unwrap();
        let mut s = std::os::unix::net::UnixStream::from(client);
        // The client may have left already (it distrusts us): ignore that.
        let _ = s.write_all(&shmsg::msg::frame::Hello::new(1 << 20).encode());
        let mut b = [0u8; 64];
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.read(&mut b);
    });
    let result = shmsg::connect_with(&format!("unix:@{addr}"), &quick(2000));
    let refused = matches!(result, Err(Error::ListenerNotAllowed(_)));
    drop(result);
    impostor.join().unwrap();
    assert!(refused, "unix:@: connected to a listener of another user");
}

/// Handled (and documented, not fixable by SO_PEERCRED): `Allow::Listed`
/// lets in the listed uids and gids and the listener's own user, nobody
/// else. (What it checks is the connecting socket's creator: a socket
/// connected by an allowed process and passed to another keeps the
/// allowed credentials.)
#[test]
fn allow_listed_lets_in_exactly_the_listed() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root to connect as another user");
        return;
    }
    for (allow, let_in) in [
        (
            Allow::Listed {
                uids: vec![],
                gids: vec![],
            },
            false,
        ),
        (
            Allow::Listed {
                uids: vec![NOBODY],
                gids: vec![],
            },
            true,
        ),
        (
            Allow::Listed {
                uids: vec![],
                gids: vec![NOBODY],
            },
            true,
        ),
        (
            Allow::Listed {
                uids: vec![NOBODY + 1],
                gids: vec![NOBODY + 1],
            },
            false,
        ),
    ] {
        let endpoint = format!("shm:{}", unique("listed"));
        let options = Options {
            allow: allow.clone(),
            ..quick(2000)
        };
        let mut listener = shmsg::listen_with(&endpoint, &options).unwrap();
        let target = endpoint.clone();
        // The client trusts the listener's user: what is tested is the
        // listener's policy.
        let trusting = Options {
            allow: Allow::Listed {
                uids: vec![rustix::process::geteuid().as_raw()],
                gids: vec![],
            },
            ..quick(3000)
        };
        let client = std::thread::spawn(move || {
            as_nobody(move || shmsg::connect_with(&target, &trusting).map(|c| c.peer()))
        });
        let accepted = listener.accept_timeout(Duration::from_secs(5));
        let connected = client.join().unwrap();
        assert_eq!(accepted.is_ok(), let_in, "{allow:?}: accept {accepted:?}");
        assert_eq!(
            connected.is_ok(),
            let_in,
            "{allow:?}: connect {connected:?}"
        );
        if !let_in {
            assert!(matches!(accepted, Err(Error::PeerRefused(p)) if p.uid == NOBODY));
        }
    }
}
