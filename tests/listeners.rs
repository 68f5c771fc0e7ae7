//! Listeners against hostile and careless peers, in one process: clients
//! that connect and say nothing or say their hello one byte at a time,
//! clients that take the rings and try to resize them, and listeners that
//! hand out rings no client should map.

use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketType};
use shmsg::channel::{Receiver, Sender};
use shmsg::shm::{Geometry, Region};
use shmsg::{Error, Options};

mod common;
use common::raw::{kind_of, listen_abstract, raw_connect, rdv, recv_with_fds, socket_name};

/// A wait that only a bug makes long: the tests never wait for it to pass.
const PATIENCE: Duration = Duration::from_secs(60);

fn unique(tag: &str) -> String {
    common::unique("lst", tag)
}

/// Two silent clients and 100 that send the first byte of a hello and
/// stall do not keep a legitimate client out: it is accepted at once (the
/// old inline handshake made it wait for the 10 s hello timeout of every
/// stalled client before it), and a listener with only stalled clients
/// returns from `accept_timeout` by its deadline.
#[test]
fn stalled_clients_do_not_delay_others() {
    for scheme in ["unix:@", "seqpacket:@", "shm:", "tcp:"] {
        let endpoint = if scheme == "tcp:" {
            "tcp:127.0.0.1:0".to_owned()
        } else {
            format!("{scheme}{}", unique("stall"))
        };
        let mut listener = shmsg::listen(&endpoint).unwrap();
        let endpoint = listener.endpoint();
        let mut stalled = Vec::new();
        for i in 0..102 {
            let fd: OwnedFd = if scheme == "tcp:" {
                let addr = endpoint.strip_prefix("tcp:").unwrap();
                std::net::TcpStream::connect(addr).unwrap().into()
            } else {
                raw_connect(&socket_name(&endpoint), kind_of(&endpoint))
            };
            // The first two say nothing; the others one byte of a hello
            // (a stream) or a runt datagram.
            if i >= 2 {
                rustix::net::send(&fd, b"s", SendFlags::NOSIGNAL).unwrap();
            }
            stalled.push(fd);
        }
        // Only stalled clients: accept_timeout returns by its deadline (the
        // bound is 10x the timeout, for a loaded machine).
        let start = Instant::now();
        assert!(matches!(
            listener.accept_timeout(Duration::from_millis(100)),
            Err(Error::Timeout)
        ));
        let waited = start.elapsed();
        assert!(waited < Duration::from_secs(1), "{endpoint}: {waited:?}");
        // A legitimate client now: connect in a thread, accept here.
        let start = Instant::now();
        let target = endpoint.clone();
        let client = std::thread::spawn(move || shmsg::connect(&target));
        let mut server = listener.accept_timeout(PATIENCE).unwrap();
        let delay = start.elapsed();
        let mut client = client.join().unwrap().unwrap();
        client.send(b"through").unwrap();
        let mut buf = Vec::new();
        server.recv_timeout(&mut buf, PATIENCE).unwrap();
        assert_eq!(buf, b"through");
        // Typically about a millisecond; the bound is 100 ms (the
        // old listener took over 10 s here).
        assert!(
            delay < Duration::from_millis(100),
            "{endpoint}: the legitimate client waited {delay:?}"
        );
        eprintln!("{endpoint}: accepted after {delay:?} beside 102 stalled clients");
    }
}

/// A client whose hello does not arrive within the listener's timeout is
/// dropped: it sees the end of the stream.
#[test]
fn slow_hellos_are_dropped_at_their_deadline() {
    let options = Options {
        timeout: Duration::from_millis(200),
        ..Options::default()
    };
    for scheme in ["unix:@", "seqpacket:@", "shm:"] {
        let endpoint = format!("{scheme}{}", unique("drop"));
        let mut listener = shmsg::listen_with(&endpoint, &options).unwrap();
        let silent = raw_connect(&socket_name(&endpoint), kind_of(&endpoint));
        // The listener serves pending hellos only while someone accepts.
        assert!(matches!(
            listener.accept_timeout(Duration::from_millis(600)),
            Err(Error::Timeout)
        ));
        let mut byte = [0u8; 64];
        rustix::net::sockopt::set_socket_timeout(
            &silent,
            rustix::net::sockopt::Timeout::Recv,
            Some(PATIENCE),
        )
        .unwrap();
        let got = rustix::net::recv(&silent, &mut byte, RecvFlags::empty());
        assert!(
            matches!(got, Ok((0, _)) | Err(Errno::CONNRESET)),
            "{endpoint}: the silent client got {got:?}, not the end of the stream"
        );
    }
}

/// A peer that announces a frame and sends garbage as its hello, or a
/// rendezvous hello of another kind or version, is dropped without
/// disturbing the listener.
#[test]
fn bad_hellos_are_dropped() {
    let endpoint = format!("shm:{}", unique("bad"));
    let mut listener = shmsg::listen(&endpoint).unwrap();
    let name = socket_name(&endpoint);
    let garbage = raw_connect(&name, SocketType::SEQPACKET);
    rustix::net::send(&garbage, &[0xAB; 24], SendFlags::NOSIGNAL).unwrap();
    let wrong_kind = raw_connect(&name, SocketType::SEQPACKET);
    rustix::net::send(&wrong_kind, &rdv(2, 0), SendFlags::NOSIGNAL).unwrap();
    let mut future = rdv(1, 0);
    future[8] = 9;
    let wrong_version = raw_connect(&name, SocketType::SEQPACKET);
    rustix::net::send(&wrong_version, &future, SendFlags::NOSIGNAL).unwrap();
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(200)),
        Err(Error::Timeout)
    ));
    // Each got an answer or the end of the stream, and no rings.
    for fd in [&garbage, &wrong_kind, &wrong_version] {
        let fds = recv_with_fds(fd, PATIENCE)
            .map(|(_, fds)| fds)
            .unwrap_or_default();
        assert!(fds.is_empty());
    }
    // And the listener still serves.
    let target = endpoint.clone();
    let client = std::thread::spawn(move || shmsg::connect(&target));
    let _server = listener.accept_timeout(PATIENCE).unwrap();
    client.join().unwrap().unwrap();
    // A client of the other kind learns why.
    let mpsc = endpoint.replacen("shm:", "mpsc:", 1);
    let client = std::thread::spawn(move || shmsg::connect(&mpsc));
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(500)),
        Err(Error::Timeout)
    ));
    match client.join().unwrap() {
        Err(Error::Handshake { field, .. }) => assert!(field.contains("kind"), "{field}"),
        other => panic!("an mpsc: client of a shm: listener got {other:?}"),
    }
}

/// Clients connecting while the listener accepts; joined after.
fn connect_all(endpoint: &str, n: usize) -> Vec<std::thread::JoinHandle<shmsg::Channel>> {
    (0..n)
        .map(|_| {
            let endpoint = endpoint.to_owned();
            std::thread::spawn(move || shmsg::connect(&endpoint).unwrap())
        })
        .collect()
}

/// The rings a client receives are sealed: no size change of any kind,
/// through the received descriptor or a re-opened one, and the seals
/// cannot be removed.
#[test]
fn received_rings_cannot_be_resized() {
    let endpoint = format!("shm:{}", unique("seal"));
    let _listener_thread;
    let mut listener = shmsg::listen(&endpoint).unwrap();
    let socket = raw_connect(&socket_name(&endpoint), SocketType::SEQPACKET);
    rustix::net::send(&socket, &rdv(1, 0), SendFlags::NOSIGNAL).unwrap();
    // The listener answers while it accepts; the client never acknowledges.
    _listener_thread = std::thread::spawn(move || {
        let result = listener.accept_timeout(Duration::from_millis(500));
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    });
    let (answer, fds) = recv_with_fds(&socket, PATIENCE).expect("an answer");
    assert_eq!(&answer[..8], b"shmsg\0sm");
    assert_eq!(
        fds.len(),
        6,
        "the answer carries the two rings, each a memfd and two eventfds"
    );
    for fd in fds.iter().step_by(3) {
        let reopened = Region::from_fd(fd).unwrap();
        let size = rustix::fs::fstat(fd).unwrap().st_size as u64;
        for target in [fd.as_fd(), reopened.as_fd()] {
            for len in [0, size / 2, size * 2] {
                assert_eq!(
                    rustix::fs::ftruncate(target, len),
                    Err(Errno::PERM),
                    "ftruncate to {len}"
                );
            }
            assert_eq!(
                rustix::fs::fallocate(target, rustix::fs::FallocateFlags::empty(), size, 4096),
                Err(Errno::PERM)
            );
            assert_eq!(
                rustix::fs::fcntl_add_seals(target, rustix::fs::SealFlags::WRITE),
                Err(Errno::PERM),
                "the seals are sealed"
            );
        }
    }
}

/// A fake listener at `@shmsg.NAME` that answers every hello with
/// `answer` and the descriptors `fds`.
fn fake_listener(name: &str, answer: [u8; 24], fds: Vec<OwnedFd>) -> std::thread::JoinHandle<()> {
    let fd = listen_abstract(&format!("shmsg.{name}"), SocketType::SEQPACKET);
    std::thread::spawn(move || {
        let client = rustix::net::accept(&fd).unwrap();
        let mut hello = [0u8; 64];
        let _ = rustix::net::recv(&client, &mut hello, RecvFlags::empty());
        let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !borrowed.is_empty() {
            assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
        }
        let _ = rustix::net::sendmsg(
            &client,
            &[IoSlice::new(&answer)],
            &mut control,
            SendFlags::NOSIGNAL,
        );
        // Keep the connection open until the client is done with it.
        let _ = rustix::net::recv(&client, &mut hello, RecvFlags::empty());
    })
}

fn ok_answer() -> [u8; 24] {
    rdv(0, 0)
}

/// A listener is untrusted too: rings that are not sealed memfds, a
/// descriptor that is not a ring, too few descriptors, or garbage are each
/// a typed error at `connect`, never a mapping that could fault.
#[test]
fn clients_refuse_bad_rings() {
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let ring = || -> OwnedFd {
        let region = Region::anonymous(geometry).unwrap();
        region.as_fd().try_clone_to_owned().unwrap()
    };
    // An unsealed memfd holding a valid-looking ring: copy a real one.
    let unsealed = || -> OwnedFd {
        let region = Region::anonymous(geometry).unwrap();
        let len = rustix::fs::fstat(region.as_fd()).unwrap().st_size as usize;
        let mut bytes = vec![0u8; len];
        rustix::io::pread(region.as_fd(), &mut bytes, 0).unwrap();
        let fd = rustix::fs::memfd_create("fake", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut file = std::fs::File::from(fd);
        file.write_all(&bytes).unwrap();
        file.into()
    };
    let null = || -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let pipe = || -> OwnedFd { UnixStream::pair().unwrap().0.into() };
    let cases: Vec<(&str, [u8; 24], Vec<OwnedFd>)> = vec![
        ("unsealed", ok_answer(), vec![unsealed(), ring()]),
        ("not a file", ok_answer(), vec![ring(), pipe()]),
        ("a device", ok_answer(), vec![null(), ring()]),
        ("one ring", ok_answer(), vec![ring()]),
        ("no rings", ok_answer(), vec![]),
        ("garbage", [0x5A; 24], vec![ring(), ring()]),
    ];
    for (what, answer, fds) in cases {
        let name = unique("fake");
        let server = fake_listener(&name, answer, fds);
        let options = Options {
            timeout: Duration::from_secs(5),
            ..Options::default()
        };
        let result = shmsg::connect_with(&format!("shm:{name}"), &options);
        match result {
            Err(Error::Corrupt { .. } | Error::Handshake { .. } | Error::Io { .. }) => {}
            other => panic!("{what}: connect returned {other:?}"),
        }
        drop(server);
    }
}

/// `shm:/PATH` meets at a socket file, which the listener removes when
/// dropped; two clients at once each get their own rings.
#[test]
fn path_endpoints_and_many_clients() {
    let dir = std::env::temp_dir().join(unique("dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring");
    let endpoint = format!("shm:{}", path.display());
    let mut listener = shmsg::listen(&endpoint).unwrap();
    assert!(path.exists());
    let clients = connect_all(&endpoint, 2);
    let mut servers: Vec<_> = (0..2)
        .map(|_| listener.accept_timeout(PATIENCE).unwrap())
        .collect();
    let mut clients: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(format!("client {i}").as_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = Vec::new();
    for server in &mut servers {
        server.recv_timeout(&mut buf, PATIENCE).unwrap();
        got.push(String::from_utf8(buf.clone()).unwrap());
        server.send(&buf).unwrap();
    }
    got.sort();
    assert_eq!(got, ["client 0", "client 1"]);
    for (i, client) in clients.iter_mut().enumerate() {
        client.recv_timeout(&mut buf, PATIENCE).unwrap();
        assert_eq!(buf, format!("client {i}").as_bytes());
    }
    drop(listener);
    assert!(
        !path.exists(),
        "the socket file is removed with the listener"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every client of an `mpsc:` listener sends into the one ring; each
/// channel's replies go to its own client.
#[test]
fn mpsc_clients_share_the_ring() {
    let endpoint = format!("mpsc:{}", unique("mpsc"));
    let mut listener = shmsg::listen(&endpoint).unwrap();
    // The listener answers mpsc: clients from its own thread: they connect
    // before anyone accepts.
    let mut clients: Vec<_> = (0..3).map(|_| shmsg::connect(&endpoint).unwrap()).collect();
    let mut servers: Vec<_> = (0..3)
        .map(|_| listener.accept_timeout(PATIENCE).unwrap())
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(&[i as u8]).unwrap();
    }
    // Any channel receives from every client.
    let mut from = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..3 {
        servers[0].recv_timeout(&mut buf, PATIENCE).unwrap();
        from.push(buf[0]);
    }
    from.sort_unstable();
    assert_eq!(from, [0, 1, 2]);
    assert!(matches!(servers[1].try_recv(&mut buf), Err(Error::Empty)));
    // Replies go to one client each.
    for (i, server) in servers.iter_mut().enumerate() {
        server.send(&[100 + i as u8]).unwrap();
    }
    let mut replies: Vec<u8> = clients
        .iter_mut()
        .map(|client| {
            client.recv_timeout(&mut buf, PATIENCE).unwrap();
            buf[0]
        })
        .collect();
    replies.sort_unstable();
    assert_eq!(replies, [100, 101, 102]);
}

/// Clients that take their rings and never acknowledge them cannot make a
/// listener hold more than 32 pairs: beyond that the oldest are dropped
/// (once they had a second to acknowledge: a burst of live clients on a
/// loaded machine may take that long), and a legitimate client still gets
/// in.
#[test]
fn clients_that_never_acknowledge_cannot_hoard_rings() {
    let endpoint = format!("shm:{}", unique("hoard"));
    let mut listener = shmsg::listen(&endpoint).unwrap();
    let name = socket_name(&endpoint);
    let server = std::thread::spawn(move || {
        let channel = listener.accept_timeout(PATIENCE);
        (listener, channel)
    });
    let mut hoarders = Vec::new();
    for _ in 0..40 {
        let socket = raw_connect(&name, SocketType::SEQPACKET);
        rustix::net::send(&socket, &rdv(1, 0), SendFlags::NOSIGNAL).unwrap();
        let (_, rings) = recv_with_fds(&socket, PATIENCE).expect("an answer");
        assert_eq!(rings.len(), 6, "two rings, each a memfd and two eventfds");
        hoarders.push(socket);
    }
    let _client = shmsg::connect(&endpoint).unwrap();
    let (_listener, channel) = server.join().unwrap();
    channel.unwrap();
    let closed: Vec<usize> = hoarders
        .iter()
        .enumerate()
        .filter(|(_, socket)| {
            let mut byte = [0u8; 1];
            matches!(
                rustix::net::recv(*socket, &mut byte, RecvFlags::DONTWAIT),
                Ok((0, _))
            )
        })
        .map(|(i, _)| i)
        .collect();
    // The 8 oldest made room for the last 8 hoarders, the 9th for the
    // legitimate client.
    assert_eq!(closed, (0..9).collect::<Vec<_>>(), "the oldest are dropped");
}
