//! The async interface (`shmsg::tokio`, feature `tokio`): every endpoint
//! kind carries messages whole and in order between tasks of one runtime,
//! futures dropped at random points lose, duplicate and tear nothing
//! (cancel safety, a property test), a dead peer ends a wait, and an
//! async end and a blocking one talk to each other.

mod common;

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::{pattern, temp_socket, unique};
use proptest::prelude::*;
use shmsg::Error;
use shmsg::tokio::{AsyncChannel, AsyncListener};

/// Every endpoint kind a listener serves, one fresh name each.
fn endpoints(tag: &str) -> Vec<String> {
    vec![
        format!("shm:{}", unique("tokio", tag)),
        format!("mpsc:{}", unique("tokio", tag)),
        format!("unix:{}", temp_socket("tokio", tag).display()),
        format!("seqpacket:@{}", unique("tokio", tag)),
        "tcp:127.0.0.1:0".to_string(),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Lengths that cross the rings' and the sockets' sizes: empty, small,
/// and larger than a 64 KiB ring's half.
const LENGTHS: [usize; 6] = [0, 1, 64, 1000, 40_000, 9];

/// A client echoes `count` messages through a server task, both on one
/// runtime: every reply is the request, in order, over every endpoint.
#[test]
fn every_endpoint_echoes_in_order() {
    runtime().block_on(async {
        for endpoint in endpoints("echo") {
            let mut listener = shmsg::tokio::listen(&endpoint).unwrap();
            let endpoint = listener.endpoint();
            let count = 300u64;
            let server = tokio::spawn(async move {
                let mut channel = listener.accept().await?;
                let mut buf = Vec::new();
                for seq in 0.. {
                    // Every other message lent in place (`recv_with`).
                    let got = if seq % 2 == 0 {
                        channel.recv(&mut buf).await.map(drop)
                    } else {
                        channel.recv_with(|m| buf = m.to_vec()).await
                    };
                    match got {
                        Ok(()) => channel.send(&buf).await?,
                        Err(Error::Disconnected) => return shmsg::Result::Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                unreachable!()
            });
            let mut client = shmsg::tokio::connect(&endpoint).await.unwrap();
            let mut reply = Vec::new();
            for seq in 0..count {
                let message = pattern(seq, LENGTHS[seq as usize % LENGTHS.len()]);
                client.send(&message).await.unwrap();
                client.recv(&mut reply).await.unwrap();
                assert_eq!(reply, message, "{endpoint}: reply {seq}");
            }
            drop(client);
            server.await.unwrap().unwrap();
        }
    });
}

/// A stream far larger than the ring or the socket buffer: the sender
/// waits for space (its ring's `Space` eventfd, its socket's writability)
/// as often as the receiver waits for data.
#[test]
fn streams_wait_for_space_and_for_data() {
    runtime().block_on(async {
        for endpoint in endpoints("stream") {
            let mut listener = shmsg::tokio::listen(&endpoint).unwrap();
            let endpoint = listener.endpoint();
            let count = 5_000u64;
            let consumer = tokio::spawn(async move {
                let mut channel = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                for seq in 0..count {
                    channel.recv(&mut buf).await.unwrap();
                    assert_eq!(buf, pattern(seq, 100 + (seq % 3000) as usize), "{seq}");
                    // Slow now and then, so that the sender fills up.
                    if seq % 500 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                assert!(matches!(
                    channel.recv(&mut buf).await,
                    Err(Error::Disconnected)
                ));
            });
            let mut client = shmsg::tokio::connect(&endpoint).await.unwrap();
            for seq in 0..count {
                client
                    .send(&pattern(seq, 100 + (seq % 3000) as usize))
                    .await
                    .unwrap();
            }
            drop(client);
            consumer.await.unwrap();
        }
    });
}

/// A blocking client (its own thread) and an async server talk as two
/// async ends would: the server's waits are woken by futex-side notifiers
/// and the client's futex sleeps by the async side's.
#[test]
fn async_and_blocking_ends_talk() {
    use shmsg::{Receiver, Sender};
    for endpoint in endpoints("mixed") {
        let rt = runtime();
        let mut listener = rt
            .block_on(async { shmsg::tokio::listen(&endpoint) })
            .unwrap();
        let endpoint = listener.endpoint();
        let client = std::thread::spawn(move || {
            let mut channel = shmsg::connect(&endpoint).unwrap();
            let mut buf = Vec::new();
            for seq in 0..200u64 {
                // Sometimes wait before sending, so the server sleeps.
                if seq % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
                channel.send(&pattern(seq, 33)).unwrap();
                channel.recv(&mut buf).unwrap();
                assert_eq!(buf, pattern(seq + 1, 17));
            }
        });
        rt.block_on(async {
            let mut channel = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            for seq in 0..200u64 {
                channel.recv(&mut buf).await.unwrap();
                assert_eq!(buf, pattern(seq, 33));
                if seq % 70 == 0 {
                    // The client sleeps on its futex meanwhile.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                channel.send(&pattern(seq + 1, 17)).await.unwrap();
            }
        });
        client.join().unwrap();
    }
}

/// The peer of [`a_killed_peer_ends_an_async_wait`]: when run as a child
/// (the endpoint in `SHMSG_TOKIO_PEER`), connects, says hello, and sleeps
/// until it is killed; a test that passes at once otherwise.
#[test]
fn killed_peer_child() {
    let Ok(endpoint) = std::env::var("SHMSG_TOKIO_PEER") else {
        return;
    };
    let mut channel = shmsg::connect(&endpoint).unwrap();
    shmsg::Sender::send(&mut channel, b"hello").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// A peer process killed with SIGKILL sends no wake-up: the async wait
/// still ends, with `Disconnected`.
#[test]
fn a_killed_peer_ends_an_async_wait() {
    for scheme in ["shm:", "mpsc:", "unix:@"] {
        let endpoint = format!("{scheme}{}", unique("tokio", "kill"));
        let rt = runtime();
        let mut listener = rt
            .block_on(async { shmsg::tokio::listen(&endpoint) })
            .unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "killed_peer_child", "--nocapture"])
            .env("SHMSG_TOKIO_PEER", &endpoint)
            .spawn()
            .unwrap();
        let result = rt.block_on(async {
            let mut channel: AsyncChannel = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            channel.recv(&mut buf).await.unwrap();
            assert_eq!(buf, b"hello");
            child.kill().unwrap();
            child.wait().unwrap();
            // Nothing more comes; the wait ends once the peer is found
            // dead. (60 s: its connection reports the death at once, and
            // the idle check comes every second: a wide margin on a
            // loaded machine.)
            tokio::time::timeout(Duration::from_secs(60), channel.recv(&mut buf)).await
        });
        assert!(
            matches!(result, Ok(Err(Error::Disconnected))),
            "{scheme}: {result:?}"
        );
    }
}

/// A receiver over a ring without eventfds (a region opened by name)
/// cannot be waited on by an event loop: a typed error, not a hang.
#[test]
fn a_ring_without_eventfds_is_refused() {
    use std::sync::Arc;
    let name = unique("tokio", "named");
    let region = Arc::new(shmsg::shm::Region::create(&name, Default::default()).unwrap());
    let rx = shmsg::shm::spsc::Consumer::attach(&region).unwrap();
    let rt = runtime();
    let result = rt.block_on(async { shmsg::tokio::AsyncReceiver::new(Box::new(rx)) });
    assert!(matches!(result, Err(Error::InvalidConfig(_))), "{result:?}");
    // Outside a runtime: an error too, not tokio's panic.
    let (_, rx) = shmsg::shm::spsc::channel(Default::default()).unwrap();
    let outside = shmsg::tokio::AsyncReceiver::new(Box::new(rx));
    assert!(matches!(outside, Err(Error::Io { .. })), "{outside:?}");
}

/// A small deterministic generator for the cancellation pattern.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Polls `future` at most `polls` times: its output, or `None` if it was
/// still pending then (and is dropped: cancelled).
async fn within_polls<T>(future: impl std::future::Future<Output = T>, polls: u32) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut left = polls;
    std::future::poll_fn(|cx| {
        if left == 0 {
            return std::task::Poll::Ready(None);
        }
        left -= 1;
        match future.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
            // Woken by the future's own waker when it can go on; once the
            // polls are spent, the next poll gives up.
            std::task::Poll::Pending if left > 0 => std::task::Poll::Pending,
            std::task::Poll::Pending => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// The cancel-safety property on one endpoint: a sender task whose `send`
/// futures are dropped at random (after a random number of polls, or when
/// a timer of a random few microseconds fires first) and a receiver task
/// whose `recv` futures are dropped the same ways. Each sent message carries
/// its number; a cancelled send moves on to the next number. The receiver
/// must see increasing numbers only (nothing duplicated or reordered),
/// every message whose send completed, and every payload whole.
async fn cancel_safety(endpoint: &str, seed: u64, count: u64, seeded: bool) {
    let mut listener: AsyncListener = shmsg::tokio::listen(endpoint).unwrap();
    let endpoint = listener.endpoint();
    let receiver = tokio::spawn(async move {
        let channel = listener.accept().await.unwrap();
        let (_tx, mut rx) = channel.split();
        if seeded {
            rx.seed_yield_after_take();
        }
        let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::new();
        let mut received = Vec::new();
        loop {
            let got = if rng.next().is_multiple_of(2) {
                within_polls(rx.recv(&mut buf), 1 + (rng.next() % 3) as u32).await
            } else {
                let wait = Duration::from_micros(rng.next() % 200);
                tokio::select! {
                    got = rx.recv(&mut buf) => Some(got),
                    _ = tokio::time::sleep(wait) => None,
                }
            };
            match got {
                None => {} // cancelled: the message, if any, is still there
                Some(Ok(_)) => {
                    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    assert_eq!(buf[8..], pattern(seq, buf.len() - 8)[..], "torn {seq}");
                    received.push(seq);
                }
                Some(Err(Error::Disconnected)) => return received,
                Some(Err(e)) => panic!("recv: {e}"),
            }
        }
    });
    let mut channel = shmsg::tokio::connect(&endpoint).await.unwrap();
    let mut rng = Rng(seed | 1);
    let mut completed = Vec::new();
    for seq in 0..count {
        let len = (rng.next() % 2000) as usize;
        let mut message = seq.to_le_bytes().to_vec();
        message.extend(pattern(seq, len));
        let sent = match rng.next() % 4 {
            0 => {
                let wait = Duration::from_micros(rng.next() % 100);
                tokio::select! {
                    sent = channel.send(&message) => Some(sent),
                    _ = tokio::time::sleep(wait) => None,
                }
            }
            1 => within_polls(channel.send(&message), 1 + (rng.next() % 3) as u32).await,
            _ => Some(channel.send(&message).await),
        };
        match sent {
            Some(Ok(())) => completed.push(seq),
            Some(Err(e)) => panic!("send {seq}: {e}"),
            None => {} // cancelled: sent whole, or not at all
        }
    }
    drop(channel);
    let received = receiver.await.unwrap();
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "{endpoint}: out of order or duplicated"
    );
    let mut at = 0;
    for seq in &completed {
        at += received[at..]
            .iter()
            .position(|r| r == seq)
            .unwrap_or_else(|| panic!("{endpoint}: completed send {seq} never arrived"));
    }
}

proptest! {
    // Each case runs the pattern over shared memory and a Unix socket; the
    // deep tier raises the number of cases (PROPTEST_CASES).
    #![proptest_config(ProptestConfig {
        cases: common::env_u64("PROPTEST_CASES", 6) as u32,
        ..ProptestConfig::default()
    })]
    #[test]
    fn futures_dropped_at_random_lose_nothing(seed in any::<u64>()) {
        runtime().block_on(async {
            for scheme in ["shm:", "unix:@"] {
                let endpoint = format!("{scheme}{}", unique("tokio", "cancel"));
                cancel_safety(&endpoint, seed, 2_000, false).await;
            }
        });
    }
}

/// Teeth: a receiver that awaits between taking a message and returning it
/// (so a dropped `recv` future loses the message) fails the property.
#[test]
fn seeded_yield_after_take_is_caught() {
    let caught = std::panic::catch_unwind(|| {
        runtime().block_on(async {
            let endpoint = format!("shm:{}", unique("tokio", "seeded"));
            cancel_safety(&endpoint, 7, 2_000, true).await;
        })
    });
    assert!(caught.is_err(), "the lost messages went unnoticed");
}

/// Pipes (`pipe:RFD,WFD`, two inherited descriptors each way) carry async
/// messages too: both ends in one process, each over its own two pipes.
#[test]
fn pipes_carry_async_messages() {
    use std::os::fd::IntoRawFd;
    let (a_read, b_write) = std::io::pipe().unwrap();
    let (b_read, a_write) = std::io::pipe().unwrap();
    let a = format!(
        "pipe:{},{}",
        OwnedFd::from(a_read).into_raw_fd(),
        OwnedFd::from(a_write).into_raw_fd()
    );
    let b = format!(
        "pipe:{},{}",
        OwnedFd::from(b_read).into_raw_fd(),
        OwnedFd::from(b_write).into_raw_fd()
    );
    // A sender that left part of a message unsent would make both sides
    // wait for each other for good: fail instead (120 s: the exchange takes
    // well under a second).
    let exchange = async {
        // Each side's handshake waits for the other's hello: both at once.
        let (a, b) = tokio::join!(shmsg::tokio::connect(&a), shmsg::tokio::connect(&b));
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let echo = tokio::spawn(async move {
            let mut buf = Vec::new();
            while b.recv(&mut buf).await.is_ok() {
                b.send(&buf).await.unwrap();
            }
        });
        let mut reply = Vec::new();
        for seq in 0..200u64 {
            // Up to 100 KB: more than a pipe holds, so both wait for space.
            let message = pattern(seq, (seq as usize * 509) % 100_000);
            a.send(&message).await.unwrap();
            a.recv(&mut reply).await.unwrap();
            assert_eq!(reply, message, "{seq}");
        }
        drop(a);
        echo.await.unwrap();
    };
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(120), exchange)
            .await
            .expect("the two ends wait for each other")
    });
}

/// Run as a child (`SHMSG_TOKIO_FEW_FDS` set): with no descriptor left for
/// eventfds, a ring between threads is still made and works for blocked
/// threads, and an event loop gets a typed error for it.
#[test]
fn out_of_descriptors_child() {
    if std::env::var("SHMSG_TOKIO_FEW_FDS").is_err() {
        return;
    }
    use shmsg::{Receiver, Sender};
    // Use up every descriptor the limit allows.
    let mut held = Vec::new();
    while let Ok(fd) = std::fs::File::open("/dev/null") {
        held.push(fd);
    }
    let (mut tx, mut rx) = shmsg::shm::spsc::channel(Default::default()).unwrap();
    assert!(Receiver::readiness(&rx).is_none());
    Sender::send(&mut tx, b"still works").unwrap();
    let mut buf = Vec::new();
    Receiver::recv(&mut rx, &mut buf).unwrap();
    assert_eq!(buf, b"still works");
    drop(held);
    let refused = runtime().block_on(async { shmsg::tokio::AsyncReceiver::new(Box::new(rx)) });
    assert!(
        matches!(refused, Err(Error::InvalidConfig(_))),
        "{refused:?}"
    );
}

/// A process out of descriptors still makes rings between threads (they
/// lack only their eventfds): run in a child whose descriptor limit is low.
#[test]
fn rings_between_threads_survive_running_out_of_descriptors() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "out_of_descriptors_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMSG_TOKIO_FEW_FDS", "1");
    // SAFETY: `setrlimit` in the child before exec is async-signal-safe
    // and touches only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        child.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = child.status().unwrap();
    assert!(status.success(), "the child failed: {status}");
}
