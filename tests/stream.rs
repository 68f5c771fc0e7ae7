//! The stream channel (`shmsg::msg::stream`) over real sockets: Unix stream
//! pairs and TCP on loopback, with well-behaved and hostile peers.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shmsg::Error;
use shmsg::msg::frame::{HEADER_LEN, Hello, READ_CHUNK, encode};
use shmsg::msg::stream::{StreamChannel, StreamReceiver, StreamSender};
use shmsg::workload::Workload;

const SECOND: Duration = Duration::from_secs(10);

/// Streams `count` workload messages from `a` to `b` (alternating single
/// sends and batches of 7), checks each one, then closes `a` and expects
/// `Disconnected`.
fn stream_through<S: Into<OwnedFd> + Send + 'static>(a: S, b: S, count: u64) {
    let workload = Workload {
        seed: 11,
        max_len: 70_000,
    };
    let sender = std::thread::spawn(move || {
        let mut tx = StreamChannel::handshake(a, 1 << 20, SECOND).unwrap();
        let mut seq = 0;
        while seq < count {
            if seq % 2 == 0 {
                tx.send(&workload.message(seq)).unwrap();
                seq += 1;
            } else {
                let end = (seq + 7).min(count);
                let batch: Vec<Vec<u8>> = (seq..end).map(|s| workload.message(s)).collect();
                tx.send_batch(&batch).unwrap();
                seq = end;
            }
        }
    });
    let mut rx = StreamChannel::handshake(b, 1 << 20, SECOND).unwrap();
    let mut buf = Vec::new();
    for seq in 0..count {
        rx.recv_timeout(&mut buf, SECOND).unwrap();
        if let Err(mismatch) = workload.verify(seq, &buf) {
            panic!("message {seq}: {mismatch}");
        }
    }
    sender.join().unwrap();
    assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));
}

#[test]
fn unix_stream_pair_carries_messages_in_order() {
    let (a, b) = UnixStream::pair().unwrap();
    stream_through(a, b, 5_000);
}

#[test]
fn tcp_loopback_carries_messages_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    stream_through(a, b, 2_000);
}

/// A raw peer that sends its hello (if `hello`) and `bytes`, then closes.
fn hostile(bytes: Vec<u8>, hello: bool) -> StreamChannel {
    let (mut raw, ours) = UnixStream::pair().unwrap();
    if hello {
        raw.write_all(&Hello::new(1 << 20).encode()).unwrap();
    }
    raw.write_all(&bytes).unwrap();
    let channel = match StreamChannel::handshake(ours, 1000, SECOND) {
        Ok(channel) => channel,
        Err(error) => panic!("handshake failed: {error}"),
    };
    // Closed after our hello went out (a write to a closed peer is EPIPE).
    drop(raw);
    channel
}

#[test]
fn hostile_peers_get_typed_errors() {
    let mut buf = Vec::new();
    // An oversized length: refused before anything is allocated for it.
    let mut rx = hostile(u32::MAX.to_le_bytes().to_vec(), true);
    assert!(matches!(
        rx.recv(&mut buf),
        Err(Error::MessageTooLarge { max: 1000, .. })
    ));
    // A frame cut short, then the peer closes.
    let mut rx = hostile(vec![100, 0, 0, 0, 1, 2, 3], true);
    assert!(matches!(
        rx.recv(&mut buf),
        Err(Error::TruncatedFrame { missing: 97 })
    ));
    // Complete frames, then a clean close.
    let mut wire = Vec::new();
    encode(b"one", 1000, &mut wire).unwrap();
    encode(b"", 1000, &mut wire).unwrap();
    let mut rx = hostile(wire, true);
    assert_eq!(rx.recv(&mut buf).unwrap(), 3);
    assert_eq!(rx.recv(&mut buf).unwrap(), 0);
    assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));
    // Not a shmsg peer at all.
    let (mut raw, ours) = UnixStream::pair().unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(matches!(
        StreamChannel::handshake(ours, 1000, SECOND),
        Err(Error::Handshake { field: "magic", .. })
    ));
    // A peer that closes before its hello, and one that never sends it.
    let (raw, ours) = UnixStream::pair().unwrap();
    drop(raw);
    assert!(matches!(
        StreamChannel::handshake(ours, 1000, SECOND),
        Err(Error::Disconnected)
    ));
    let (_raw, ours) = UnixStream::pair().unwrap();
    assert!(matches!(
        StreamChannel::handshake(ours, 1000, Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
}

#[test]
fn empty_timeout_and_limits() {
    let (a, b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || StreamChannel::handshake(a, 10, SECOND).unwrap());
    let mut rx = StreamChannel::handshake(b, 1000, SECOND).unwrap();
    let mut tx = peer.join().unwrap();
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    // The sender is held to the receiver's maximum, and the receiver's peer to 10 bytes.
    assert_eq!(tx.send_limit(), 1000);
    assert_eq!(rx.send_limit(), 10);
    assert!(matches!(
        rx.send(&[0; 11]),
        Err(Error::MessageTooLarge { len: 11, max: 10 })
    ));
    assert!(matches!(
        tx.send_batch(&[vec![0; 5], vec![0; 1001]]),
        Err(Error::MessageTooLarge { .. })
    ));
    tx.send(b"x").unwrap();
    assert_eq!(rx.recv_timeout(&mut buf, SECOND).unwrap(), 1);
    // Nothing of the refused batch was sent.
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    // A closed peer makes sends fail with `Disconnected` (SIGPIPE is ignored
    // by Rust programs, so the kernel returns EPIPE).
    drop(rx);
    let mut result = Ok(());
    for _ in 0..1000 {
        result = tx.send(b"y");
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
}

#[test]
fn pipes_carry_messages_in_order() {
    let (a_read, b_write) = std::io::pipe().unwrap();
    let (b_read, a_write) = std::io::pipe().unwrap();
    let workload = Workload {
        seed: 3,
        max_len: 100_000,
    };
    let sender = std::thread::spawn(move || {
        let mut tx = StreamChannel::handshake_split(a_read, a_write, 1 << 20, SECOND).unwrap();
        for seq in 0..3_000 {
            tx.send(&workload.message(seq)).unwrap();
        }
    });
    let mut rx = StreamChannel::handshake_split(b_read, b_write, 1 << 20, SECOND).unwrap();
    let mut buf = Vec::new();
    for seq in 0..3_000 {
        rx.recv_timeout(&mut buf, SECOND).unwrap();
        workload.verify(seq, &buf).unwrap();
    }
    sender.join().unwrap();
    assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));
}

/// `try_send` into a full link: `Full` with nothing sent, or, when the
/// kernel takes part of a frame, the rest is kept and finished before the
/// next frame, so the receiver sees every accepted message whole and in
/// order. Over a socket and over a pipe.
#[test]
fn try_send_on_a_full_link_loses_and_tears_nothing() {
    let (a, b) = UnixStream::pair().unwrap();
    let socket = (
        OwnedFd::from(a.try_clone().unwrap()),
        OwnedFd::from(a),
        OwnedFd::from(b),
    );
    let (pr1, pw1) = std::io::pipe().unwrap();
    let (pr2, pw2) = std::io::pipe().unwrap();
    for (label, (tx_read, tx_write, rx_fd, rx_write)) in [
        ("socket", (socket.0, socket.1, socket.2, None)),
        (
            "pipe",
            (
                OwnedFd::from(pr2),
                OwnedFd::from(pw1),
                OwnedFd::from(pr1),
                Some(OwnedFd::from(pw2)),
            ),
        ),
    ] {
        let peer = std::thread::spawn(move || match rx_write {
            None => StreamChannel::handshake(rx_fd, 1 << 20, SECOND).unwrap(),
            Some(w) => StreamChannel::handshake_split(rx_fd, w, 1 << 20, SECOND).unwrap(),
        });
        let mut tx = StreamChannel::handshake_split(tx_read, tx_write, 1 << 20, SECOND).unwrap();
        let mut rx = peer.join().unwrap();
        let workload = Workload {
            seed: 5,
            max_len: 50_000,
        };
        // Stuff the link until the kernel refuses a whole message.
        let mut accepted = 0u64;
        let mut fulls = 0;
        while fulls < 3 {
            match tx.try_send(&workload.message(accepted)) {
                Ok(()) => accepted += 1,
                Err(Error::Full) => fulls += 1,
                Err(other) => panic!("{label}: {other}"),
            }
            assert!(accepted < 100_000, "{label}: the link never filled");
        }
        assert!(matches!(
            tx.send_timeout(&workload.message(accepted), Duration::from_millis(20)),
            Err(Error::Timeout)
        ));
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut seq = 0;
            loop {
                match rx.recv_timeout(&mut buf, SECOND) {
                    Ok(_) => {
                        workload.verify(seq, &buf).unwrap();
                        seq += 1;
                    }
                    Err(Error::Disconnected) => return seq,
                    Err(other) => panic!("{other}"),
                }
            }
        });
        // A blocking send waits for the reader; dropping the sender
        // finishes whatever is pending.
        tx.send(&workload.message(accepted)).unwrap();
        drop(tx);
        assert_eq!(reader.join().unwrap(), accepted + 1, "{label}");
    }
}

/// A large frame is read straight into the caller's buffer; a deadline that
/// passes in its middle gives `Timeout` and loses nothing, and a peer that
/// closes in its middle gives `TruncatedFrame`.
#[test]
fn large_frames_survive_timeouts_and_report_truncation() {
    let (mut raw, ours) = UnixStream::pair().unwrap();
    raw.write_all(&Hello::new(1 << 20).encode()).unwrap();
    let mut rx = StreamChannel::handshake(ours, 1 << 20, SECOND).unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    encode(&payload, 1 << 20, &mut wire).unwrap();
    encode(b"next", 1 << 20, &mut wire).unwrap();
    let (first, rest) = wire.split_at(50_000);
    raw.write_all(first).unwrap();
    let mut buf = Vec::new();
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    raw.write_all(rest).unwrap();
    assert_eq!(rx.recv(&mut buf).unwrap(), 100_000);
    assert_eq!(buf, payload);
    assert_eq!(rx.recv(&mut buf).unwrap(), 4);
    assert_eq!(buf, b"next");
    // Cut inside a large frame.
    raw.write_all(&wire[..4 + 10]).unwrap();
    drop(raw);
    assert!(matches!(
        rx.recv(&mut buf),
        Err(Error::TruncatedFrame { missing: 99_990 })
    ));
    assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));
}

/// The frame size a hostile peer announces below: the default maximum.
const ANNOUNCED: usize = 16 << 20;

/// Our side of a Unix stream pair whose raw peer has sent its hello (and
/// nothing else yet), split; the channel accepts `ANNOUNCED`-byte messages.
fn announcing_peer() -> (UnixStream, StreamSender, StreamReceiver) {
    let (mut raw, ours) = UnixStream::pair().unwrap();
    raw.write_all(&Hello::new(1 << 20).encode()).unwrap();
    let (tx, rx) = StreamChannel::handshake(ours, ANNOUNCED, SECOND)
        .unwrap()
        .split();
    (raw, tx, rx)
}

/// A peer that announces a 16 MiB frame and sends 1 byte of it costs the
/// receiver a fixed buffer, not the announced length, however often a
/// deadline passes (`recv_timeout`, `try_recv`); as the rest trickles in,
/// what the receiver and the caller's buffer hold between calls stays
/// within twice what was sent plus that buffer; the whole message then
/// arrives intact.
#[test]
fn an_announced_frame_costs_only_the_bytes_that_arrived() {
    let (mut raw, _tx, mut rx) = announcing_peer();
    let payload: Vec<u8> = (0..ANNOUNCED as u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::with_capacity(HEADER_LEN + ANNOUNCED);
    encode(&payload, ANNOUNCED, &mut wire).unwrap();
    raw.write_all(&wire[..HEADER_LEN + 1]).unwrap();
    // The decoder's read buffer, plus one chunk for the payload so far.
    let fixed = 3 * READ_CHUNK;
    let mut buf = Vec::new();
    for _ in 0..3 {
        assert!(matches!(
            rx.recv_timeout(&mut buf, Duration::from_millis(10)),
            Err(Error::Timeout)
        ));
        assert!(
            rx.buffered_capacity() <= fixed && buf.capacity() <= fixed,
            "after a timeout: the receiver holds {} bytes, the caller's buffer {}",
            rx.buffered_capacity(),
            buf.capacity()
        );
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        assert!(
            rx.buffered_capacity() <= fixed && buf.capacity() <= fixed,
            "after an empty try_recv: the receiver holds {} bytes, the caller's buffer {}",
            rx.buffered_capacity(),
            buf.capacity()
        );
    }
    // The rest, in 1 MiB writes; `offered` counts the bytes handed to the
    // kernel so far (a write's bytes count before it starts).
    let offered = Arc::new(AtomicUsize::new(HEADER_LEN + 1));
    let writer = {
        let offered = Arc::clone(&offered);
        std::thread::spawn(move || {
            for piece in wire[HEADER_LEN + 1..].chunks(1 << 20) {
                offered.fetch_add(piece.len(), Ordering::SeqCst);
                raw.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            raw
        })
    };
    let mut waits = 0u64;
    let len = loop {
        let result = if waits.is_multiple_of(2) {
            rx.try_recv(&mut buf)
        } else {
            rx.recv_timeout(&mut buf, Duration::from_millis(1))
        };
        match result {
            Ok(len) => break len,
            Err(Error::Empty | Error::Timeout) => {
                waits += 1;
                let sent = offered.load(Ordering::SeqCst);
                let held = rx.buffered_capacity() + buf.capacity();
                assert!(
                    held <= 2 * sent + fixed,
                    "holds {held} bytes with {sent} sent"
                );
            }
            Err(other) => panic!("{other}"),
        }
    };
    let _raw = writer.join().unwrap();
    assert_eq!(len, ANNOUNCED);
    assert!(buf == payload, "the message arrived altered");
    assert!(rx.buffered_capacity() <= fixed);
}

/// The `VmRSS` of this process, in KiB.
#[cfg(target_os = "linux")]
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Set in the child process that runs the measurement.
const RSS_CHILD: &str = "SHMSG_TEST_RSS_CHILD";

/// The acceptance test: 8 peers announcing 16 MiB frames cost less
/// than 1 MiB RSS. A server holds 8 stream channels; each peer sends its
/// hello, a header announcing 16 MiB and 1 byte; the server calls
/// `recv_timeout` on each, three rounds. The RSS growth from a baseline
/// taken after the channels are set up must stay under 1 MiB.
///
/// The measurement runs in a child process (this test binary, re-run for
/// this test alone), so that the other tests' allocations, on their own
/// threads, do not move the RSS it reads.
#[cfg(target_os = "linux")]
#[test]
fn eight_peers_announcing_16_mib_frames_cost_under_1_mib_rss() {
    const NAME: &str = "eight_peers_announcing_16_mib_frames_cost_under_1_mib_rss";
    if std::env::var_os(RSS_CHILD).is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(RSS_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "the measuring child failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        // The child's numbers, for `--nocapture`.
        println!("{}", stderr.trim());
        return;
    }
    let mut peers = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..8 {
        let (raw, tx, rx) = announcing_peer();
        peers.push((raw, tx));
        receivers.push((rx, Vec::new()));
    }
    let before = rss_kib();
    let mut announce = (ANNOUNCED as u32).to_le_bytes().to_vec();
    announce.push(0xAB);
    for (raw, _) in &mut peers {
        raw.write_all(&announce).unwrap();
    }
    for _ in 0..3 {
        for (rx, buf) in &mut receivers {
            assert!(matches!(
                rx.recv_timeout(buf, Duration::from_millis(10)),
                Err(Error::Timeout)
            ));
        }
    }
    let after = rss_kib();
    eprintln!(
        "8 peers announcing 16 MiB: RSS {before} KiB after set-up, {after} KiB after \
         3 rounds of recv_timeout (+{} KiB)",
        after.saturating_sub(before)
    );
    assert!(
        after.saturating_sub(before) < 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
