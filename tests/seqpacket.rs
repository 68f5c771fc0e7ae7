//! The seqpacket channel over real sockets (a socketpair, and a listener on
//! a path and on an abstract name): order and content, flow control,
//! timeouts, size limits, disconnects, and peers that break the protocol
//! (raw datagrams written by the test, bypassing the library).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rustix::net::{AddressFamily, SendAncillaryBuffer, SendFlags, SocketFlags, SocketType};
use shmsg::msg::frame::{HELLO_LEN, Hello};
use shmsg::msg::seqpacket::{MAX_DATAGRAM, SeqpacketChannel};
use shmsg::msg::unix::{SocketKind, UnixAddr, UnixListener};
use shmsg::{Error, Receiver, Sender};

mod common;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes of message `seq` of `len` bytes: a checkable pattern.
fn message(seq: usize, len: usize) -> Vec<u8> {
    common::pattern(seq as u64, len)
}

/// A raw seqpacket socketpair, for a test that plays a misbehaving peer.
fn raw_pair() -> (OwnedFd, OwnedFd) {
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap()
}

/// Sends one raw datagram (payload, then the kind byte) on `fd`.
fn raw_send(fd: impl AsFd, parts: &[&[u8]]) -> rustix::io::Result<usize> {
    let slices: Vec<_> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    rustix::net::sendmsg(
        fd,
        &slices,
        &mut SendAncillaryBuffer::default(),
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )
}

/// A raw peer that has sent a valid hello accepting `max` bytes.
fn raw_peer(max: usize) -> (SeqpacketChannel, OwnedFd) {
    let (ours, raw) = raw_pair();
    raw_send(&raw, &[&Hello::new(max).encode(), &[1]]).unwrap();
    let channel = SeqpacketChannel::handshake(ours, 1000, TIMEOUT).unwrap();
    // Take the library's hello off the raw side.
    let mut buf = [0u8; 64];
    let (_, n) = rustix::net::recv(&raw, &mut buf[..], rustix::net::RecvFlags::empty()).unwrap();
    assert_eq!(n, HELLO_LEN + 1);
    assert_eq!(buf[HELLO_LEN], 1);
    (channel, raw)
}

fn temp_path(tag: &str) -> PathBuf {
    common::temp_socket("sp", tag)
}

/// Sends messages of every size in `sizes` from one thread and checks that
/// they arrive identical and in order on the other.
fn check_order(mut tx: SeqpacketChannel, mut rx: SeqpacketChannel, sizes: &[usize]) {
    thread::scope(|scope| {
        scope.spawn(|| {
            for (seq, &len) in sizes.iter().enumerate() {
                tx.send(&message(seq, len)).unwrap();
            }
        });
        let mut buf = Vec::new();
        for (seq, &len) in sizes.iter().enumerate() {
            assert_eq!(rx.recv(&mut buf).unwrap(), len);
            assert!(buf == message(seq, len), "message {seq} differs");
        }
    });
}

#[test]
fn many_messages_of_every_size_arrive_in_order() {
    let (a, b) = SeqpacketChannel::pair(4096).unwrap();
    assert_eq!(a.max_message(), 4096);
    assert_eq!(a.send_limit(), 4096);
    let sizes: Vec<usize> = (0..=4096).chain((0..2000).map(|i| i % 7)).collect();
    check_order(a, b, &sizes);
}

#[test]
fn works_through_a_listener_on_a_path_and_an_abstract_name() {
    let name = common::unique("shmsg-sp", "listener");
    for addr in [
        UnixAddr::Path(temp_path("listener")),
        UnixAddr::Abstract(name.into_bytes()),
    ] {
        let listener = UnixListener::bind(&addr, SocketKind::Seqpacket).unwrap();
        let server = thread::spawn(move || {
            let fd = listener.accept_timeout(TIMEOUT).unwrap();
            let mut channel = SeqpacketChannel::handshake(fd, 1 << 16, TIMEOUT).unwrap();
            // Echo until the client leaves.
            let mut buf = Vec::new();
            let mut echoed = 0;
            loop {
                match channel.recv(&mut buf) {
                    Ok(_) => {
                        channel.send(&buf).unwrap();
                        echoed += 1;
                    }
                    Err(Error::Disconnected) => return echoed,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let mut client = SeqpacketChannel::connect(&addr, 1 << 16, TIMEOUT).unwrap();
        let mut buf = Vec::new();
        for seq in 0..100 {
            let sent = message(seq, seq * 97 % 5000);
            client.send(&sent).unwrap();
            client.recv(&mut buf).unwrap();
            assert_eq!(buf, sent);
        }
        drop(client);
        assert_eq!(server.join().unwrap(), 100);
    }
}

#[test]
fn try_recv_is_empty_and_recv_timeout_times_out() {
    let (mut a, mut b) = SeqpacketChannel::pair(100).unwrap();
    let mut buf = Vec::new();
    assert!(matches!(b.try_recv(&mut buf), Err(Error::Empty)));
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    assert!(matches!(
        b.recv_timeout(&mut buf, timeout),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
    a.send(b"late").unwrap();
    assert_eq!(b.recv_timeout(&mut buf, timeout).unwrap(), 4);
    assert_eq!(buf, b"late");
    a.send(b"").unwrap();
    assert_eq!(b.try_recv(&mut buf).unwrap(), 0);
    assert!(buf.is_empty());
}

#[test]
fn a_full_socket_refuses_try_send_then_makes_progress() {
    let (mut a, mut b) = SeqpacketChannel::pair(1024).unwrap();
    let chunk = [7u8; 1024];
    let mut sent = 0;
    loop {
        match a.try_send(&chunk) {
            Ok(()) => sent += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 1_000_000, "the socket never filled");
    }
    assert!(sent > 0);
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    assert!(matches!(
        a.send_timeout(&chunk, timeout),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
    // Nothing of the refused sends arrived: exactly `sent` messages.
    let mut buf = Vec::new();
    for _ in 0..sent {
        assert_eq!(b.try_recv(&mut buf).unwrap(), 1024);
    }
    assert!(matches!(b.try_recv(&mut buf), Err(Error::Empty)));
    a.try_send(b"after").unwrap();
    a.send_timeout(b"again", timeout).unwrap();
    b.recv(&mut buf).unwrap();
    assert_eq!(buf, b"after");
    b.recv(&mut buf).unwrap();
    assert_eq!(buf, b"again");
}

#[test]
fn a_blocked_send_resumes_when_the_reader_drains() {
    let (mut a, mut b) = SeqpacketChannel::pair(1024).unwrap();
    let chunk = [1u8; 1024];
    while a.try_send(&chunk).is_ok() {}
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let mut buf = Vec::new();
        let mut last = Vec::new();
        while let Ok(n) = b.recv(&mut buf) {
            if n != 1024 {
                last = buf.clone();
            }
        }
        last
    });
    a.send(b"unblocked").unwrap();
    drop(a);
    assert_eq!(reader.join().unwrap(), b"unblocked");
}

#[test]
fn oversized_messages_are_refused_by_the_sender() {
    let (mut a, mut b) = SeqpacketChannel::pair(1000).unwrap();
    let too_big = vec![0u8; 1001];
    for result in [
        a.send(&too_big),
        a.try_send(&too_big),
        a.send_timeout(&too_big, TIMEOUT),
        a.send_batch(&[&b"fine"[..], &too_big]),
    ] {
        assert!(matches!(
            result,
            Err(Error::MessageTooLarge {
                len: 1001,
                max: 1000
            })
        ));
    }
    a.send(b"next").unwrap();
    let mut buf = Vec::new();
    b.recv(&mut buf).unwrap();
    assert_eq!(buf, b"next", "nothing of the refused messages was sent");
    assert!(matches!(b.try_recv(&mut buf), Err(Error::Empty)));
}

#[test]
fn the_smaller_maximum_wins() {
    let (small, big) = raw_pair();
    let t = thread::spawn(move || SeqpacketChannel::handshake(big, 5000, TIMEOUT).unwrap());
    let mut small = SeqpacketChannel::handshake(small, 100, TIMEOUT).unwrap();
    let mut big = t.join().unwrap();
    assert_eq!(big.send_limit(), 100);
    assert_eq!(small.send_limit(), 5000);
    assert!(matches!(
        big.send(&[0u8; 101]),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    ));
    small.send(&[3u8; 5000]).unwrap();
    let mut buf = Vec::new();
    assert_eq!(big.recv(&mut buf).unwrap(), 5000);
}

#[test]
fn peer_close_is_disconnected_after_draining() {
    let (mut a, mut b) = SeqpacketChannel::pair(100).unwrap();
    for i in 0..5u8 {
        a.send(&[i; 10]).unwrap();
    }
    drop(a);
    let mut buf = Vec::new();
    for i in 0..5u8 {
        assert_eq!(b.recv(&mut buf).unwrap(), 10);
        assert_eq!(buf, [i; 10]);
    }
    assert!(matches!(b.recv(&mut buf), Err(Error::Disconnected)));
    assert!(matches!(b.try_recv(&mut buf), Err(Error::Disconnected)));
    assert!(matches!(
        b.recv_timeout(&mut buf, TIMEOUT),
        Err(Error::Disconnected)
    ));
    assert!(matches!(b.send(b"x"), Err(Error::Disconnected)));
    assert!(matches!(b.try_send(b"x"), Err(Error::Disconnected)));
    assert!(matches!(b.send_batch(&[b"x"]), Err(Error::Disconnected)));
}

#[test]
fn peer_close_with_unread_messages_still_delivers_ours() {
    // The closing side has unread datagrams: the kernel reports ECONNRESET
    // once to the survivor, ahead of what is still queued for it.
    let (mut a, mut b) = SeqpacketChannel::pair(100).unwrap();
    b.send(b"never read").unwrap();
    for i in 0..3u8 {
        a.send(&[i]).unwrap();
    }
    drop(a);
    let mut buf = Vec::new();
    for i in 0..3u8 {
        b.recv(&mut buf).unwrap();
        assert_eq!(buf, [i]);
    }
    assert!(matches!(b.recv(&mut buf), Err(Error::Disconnected)));

    // The same, when the survivor sends first after the close.
    let (mut a, mut b) = SeqpacketChannel::pair(100).unwrap();
    b.send(b"never read").unwrap();
    a.send(b"last").unwrap();
    drop(a);
    assert!(matches!(b.send(b"x"), Err(Error::Disconnected)));
    b.recv(&mut buf).unwrap();
    assert_eq!(buf, b"last");
    assert!(matches!(b.recv(&mut buf), Err(Error::Disconnected)));
}

#[test]
fn split_halves_work_from_two_threads() {
    let (a, mut b) = SeqpacketChannel::pair(100).unwrap();
    let (mut tx, mut rx) = a.split().unwrap();
    assert_eq!(tx.send_limit(), 100);
    assert_eq!(rx.max_message(), 100);
    let sender = thread::spawn(move || {
        for i in 0..1000u32 {
            tx.send(&i.to_le_bytes()).unwrap();
        }
        // Dropping the sender ends our messages although `rx` lives on.
    });
    let mut buf = Vec::new();
    for i in 0..1000u32 {
        b.recv(&mut buf).unwrap();
        assert_eq!(buf, i.to_le_bytes());
    }
    sender.join().unwrap();
    assert!(matches!(b.recv(&mut buf), Err(Error::Disconnected)));
    b.send(b"still here").unwrap();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"still here");
}

#[test]
fn send_never_raises_sigpipe() {
    // Rust ignores SIGPIPE by default; restore the default action so that
    // a send without MSG_NOSIGNAL would kill this test binary.
    // SAFETY: `signal` with SIG_DFL installs no handler; every send in
    // this binary uses MSG_NOSIGNAL.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (mut a, b) = SeqpacketChannel::pair(100).unwrap();
    drop(b);
    assert!(matches!(a.send(b"x"), Err(Error::Disconnected)));
    assert!(matches!(
        a.send_batch(&[b"x", b"y"]),
        Err(Error::Disconnected)
    ));
}

fn handshake_error(datagram: &[&[u8]]) -> Error {
    let (ours, raw) = raw_pair();
    raw_send(&raw, datagram).unwrap();
    SeqpacketChannel::handshake(ours, 1000, TIMEOUT).unwrap_err()
}

#[test]
fn hello_mismatches_are_typed_errors() {
    let good = Hello::new(1000).encode();
    let mut magic = good;
    magic[0] = b'X';
    assert!(matches!(
        handshake_error(&[&magic, &[1]]),
        Error::Handshake { field: "magic", .. }
    ));
    let mut version = good;
    version[8] = 9;
    assert!(matches!(
        handshake_error(&[&version, &[1]]),
        Error::Handshake {
            field: "version",
            found: 9,
            ..
        }
    ));
    assert!(matches!(
        handshake_error(&[&good, &[0]]),
        Error::Handshake {
            field: "hello kind",
            found: 0,
            ..
        }
    ));
    assert!(matches!(
        handshake_error(&[&good]),
        Error::Handshake {
            field: "hello length",
            found: 20,
            ..
        }
    ));
    assert!(matches!(
        handshake_error(&[&good, &[1], &[0; 1000]]),
        Error::Handshake {
            field: "hello length",
            found: 1021,
            ..
        }
    ));
    // An empty datagram reads as the end of the stream.
    assert!(matches!(handshake_error(&[]), Error::Disconnected));

    // A peer that never says hello, or leaves before it does.
    let (ours, raw) = raw_pair();
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    assert!(matches!(
        SeqpacketChannel::handshake(ours, 1000, timeout),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
    drop(raw);
    let (ours, raw) = raw_pair();
    drop(raw);
    assert!(matches!(
        SeqpacketChannel::handshake(ours, 1000, TIMEOUT),
        Err(Error::Disconnected)
    ));
}

#[test]
fn garbage_kind_bytes_are_typed_errors_and_the_channel_goes_on() {
    let (mut channel, raw) = raw_peer(1000);
    let mut buf = Vec::new();
    for kind in [1u8, 2, 0xff] {
        raw_send(&raw, &[b"abc", &[kind]]).unwrap();
        match channel.recv(&mut buf) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::InvalidData)
            }
            other => panic!("kind {kind}: {other:?}"),
        }
        assert!(buf.is_empty());
    }
    raw_send(&raw, &[b"ok", &[0]]).unwrap();
    assert_eq!(channel.recv(&mut buf).unwrap(), 2);
    assert_eq!(buf, b"ok");
    // Our messages reach the raw peer with the kind byte last.
    channel.send(b"hi").unwrap();
    let mut raw_buf = [0u8; 16];
    let (_, n) =
        rustix::net::recv(&raw, &mut raw_buf[..], rustix::net::RecvFlags::empty()).unwrap();
    assert_eq!(&raw_buf[..n], b"hi\0");
    // An empty datagram means the peer is gone.
    raw_send(&raw, &[]).unwrap();
    assert!(matches!(channel.recv(&mut buf), Err(Error::Disconnected)));
}

#[test]
fn an_oversized_raw_datagram_is_refused_by_the_receiver() {
    let (mut channel, raw) = raw_peer(1000);
    assert_eq!(channel.max_message(), 1000);
    let mut buf = Vec::new();
    raw_send(&raw, &[&[5u8; 5000], &[0]]).unwrap();
    raw_send(&raw, &[&[6u8; 1001], &[0]]).unwrap();
    raw_send(&raw, &[&[7u8; 1000], &[0]]).unwrap();
    assert!(matches!(
        channel.recv(&mut buf),
        Err(Error::MessageTooLarge {
            len: 5000,
            max: 1000
        })
    ));
    assert!(matches!(
        channel.try_recv(&mut buf),
        Err(Error::MessageTooLarge {
            len: 1001,
            max: 1000
        })
    ));
    // Each oversized datagram was consumed; the next one arrives whole.
    assert_eq!(channel.recv(&mut buf).unwrap(), 1000);
    assert_eq!(buf, [7u8; 1000]);
    assert!(buf.capacity() <= 1000 + 64, "capacity {}", buf.capacity());
}

#[test]
fn receive_buffers_are_reused() {
    let (mut a, mut b) = SeqpacketChannel::pair(10_000).unwrap();
    let mut buf = Vec::new();
    a.send(&[1; 10]).unwrap();
    b.recv(&mut buf).unwrap();
    let (ptr, capacity) = (buf.as_ptr(), buf.capacity());
    assert!(
        (10_001..10_001 + 64).contains(&capacity),
        "capacity {capacity}"
    );
    for len in [10_000, 0, 5, 9_999] {
        a.send(&vec![2; len]).unwrap();
        assert_eq!(b.recv(&mut buf).unwrap(), len);
        assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, capacity));
    }
}

#[test]
fn send_batch_of_ten_thousand_small_messages_arrives_in_order() {
    let (mut a, mut b) = SeqpacketChannel::pair(64).unwrap();
    let messages: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| {
            let mut m = i.to_le_bytes().to_vec();
            m.resize(4 + (i % 60) as usize, i as u8);
            m
        })
        .collect();
    thread::scope(|scope| {
        scope.spawn(|| a.send_batch(&messages).unwrap());
        let mut buf = Vec::new();
        for expected in &messages {
            b.recv(&mut buf).unwrap();
            assert_eq!(&buf, expected);
        }
    });
    assert!(matches!(b.try_recv(&mut Vec::new()), Err(Error::Empty)));
}

#[test]
fn messages_at_the_datagram_limit_work() {
    let (a, b) = SeqpacketChannel::pair(usize::MAX).unwrap();
    let limit = a.send_limit();
    assert_eq!(b.max_message(), limit);
    assert!(limit < MAX_DATAGRAM);
    // The limit is the kernel's: SO_SNDBUF - 32 bytes per datagram, one of
    // them our kind byte (unless capped at MAX_DATAGRAM).
    let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&a).unwrap();
    assert!(sndbuf >= 212_992, "the buffer was not lowered: {sndbuf}");
    if sndbuf - 32 < MAX_DATAGRAM {
        assert_eq!(limit, sndbuf - 33);
        // One byte more and the kernel itself refuses the datagram.
        let big = vec![0u8; limit + 1];
        assert_eq!(raw_send(&a, &[&big, &[0]]), Err(rustix::io::Errno::MSGSIZE));
    } else {
        assert_eq!(limit, MAX_DATAGRAM - 1);
    }
    let mut a = a;
    assert!(matches!(
        a.send(&vec![0u8; limit + 1]),
        Err(Error::MessageTooLarge { len, max }) if len == limit + 1 && max == limit
    ));
    check_order(a, b, &[limit, limit - 1, 0, limit, 1, limit]);
}

/// The system-call shape of the hot paths, for `strace -c -f`: 1000 sends
/// of 64 bytes, 1000 receives of waiting messages, then 16 batches of 64.
#[test]
fn syscall_shape() {
    let (mut a, mut b) = SeqpacketChannel::pair(4096).unwrap();
    let payload = [9u8; 64];
    let mut buf = Vec::new();
    for _ in 0..10 {
        for _ in 0..100 {
            a.send(&payload).unwrap();
        }
        for _ in 0..100 {
            assert_eq!(b.recv(&mut buf).unwrap(), 64);
        }
    }
    let batch = vec![&payload[..]; 64];
    for _ in 0..16 {
        a.send_batch(&batch).unwrap();
        for _ in 0..64 {
            b.recv(&mut buf).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_message_sequences_arrive_identical_and_in_order(
        sizes in prop::collection::vec(0usize..=2048, 0..64),
        batched in any::<bool>(),
    ) {
        let (mut a, mut b) = SeqpacketChannel::pair(2048).unwrap();
        let messages: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(seq, &len)| message(seq, len)).collect();
        // 64 messages of at most 2 KiB fit in the socket: no reader thread.
        if batched {
            a.send_batch(&messages).unwrap();
        } else {
            for m in &messages {
                a.send(m).unwrap();
            }
        }
        let mut buf = Vec::new();
        for m in &messages {
            prop_assert_eq!(b.recv(&mut buf).unwrap(), m.len());
            prop_assert_eq!(&buf, m);
        }
        prop_assert!(matches!(b.try_recv(&mut buf), Err(Error::Empty)));
    }
}

/// The kernel rule the datagram limit rests on (`unix_dgram_sendmsg`): a
/// datagram may be at most `SO_SNDBUF - 32` bytes long.
#[test]
fn kernel_datagram_bound_is_sndbuf_minus_32() {
    let (a, b) = raw_pair();
    rustix::net::sockopt::set_socket_send_buffer_size(&a, 50_000).unwrap();
    let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&a).unwrap();
    assert_eq!(sndbuf, 100_000, "the kernel doubles the request");
    let big = vec![0u8; sndbuf - 32];
    assert_eq!(raw_send(&a, &[&big]), Ok(sndbuf - 32));
    let mut buf = vec![0u8; sndbuf];
    let (_, n) = rustix::net::recv(&b, &mut buf[..], rustix::net::RecvFlags::empty()).unwrap();
    assert_eq!(n, sndbuf - 32);
    assert_eq!(raw_send(&a, &[&big, &[0]]), Err(rustix::io::Errno::MSGSIZE));
}
