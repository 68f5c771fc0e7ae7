//! Unix socket addresses, `connect` and `UnixListener` over real sockets:
//! many concurrent clients, path and abstract names, stale socket files,
//! live listeners left alone, clean-up on drop, and typed errors.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use shmsg::Error;
use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};

mod common;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh socket path in the temporary directory.
fn temp_path(tag: &str) -> PathBuf {
    common::temp_socket("ul", tag)
}

/// A fresh abstract name.
fn abstract_name(tag: &str) -> UnixAddr {
    UnixAddr::Abstract(common::unique("shmsg-ul", tag).into_bytes())
}

/// The kind of an `Error::Io`, with its context; panics on other errors.
fn io_kind(error: Error) -> (io::ErrorKind, String) {
    match error {
        Error::Io { context, source } => (source.kind(), context),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Accepts `clients` connections on `listener`, each served by its own
/// thread that echoes one line, while `clients` threads connect at once.
fn echo_many(addr: &UnixAddr, clients: usize) {
    let listener = UnixListener::bind(addr, SocketKind::Stream).unwrap();
    assert_eq!(listener.addr(), addr);
    assert_eq!(listener.kind(), SocketKind::Stream);
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut served = Vec::new();
            for _ in 0..clients {
                let fd = listener.accept_timeout(TIMEOUT).unwrap();
                served.push(thread::spawn(move || {
                    let mut stream = UnixStream::from(fd);
                    let mut buf = [0u8; 8];
                    stream.read_exact(&mut buf).unwrap();
                    stream.write_all(&buf).unwrap();
                }));
            }
            for handle in served {
                handle.join().unwrap();
            }
        });
        let handles: Vec<_> = (0..clients as u64)
            .map(|id| {
                let addr = addr.clone();
                scope.spawn(move || {
                    let fd = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap();
                    let mut stream = UnixStream::from(fd);
                    stream.write_all(&id.to_le_bytes()).unwrap();
                    let mut buf = [0u8; 8];
                    stream.read_exact(&mut buf).unwrap();
                    assert_eq!(u64::from_le_bytes(buf), id);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
}

#[test]
fn many_concurrent_clients_on_a_path() {
    let path = temp_path("many");
    echo_many(&UnixAddr::Path(path.clone()), 16);
    assert!(!path.exists(), "the listener removes its socket file");
}

#[test]
fn many_concurrent_clients_on_an_abstract_name() {
    echo_many(&abstract_name("many"), 16);
}

#[test]
fn seqpacket_listener_on_both_kinds_of_address() {
    for addr in [UnixAddr::Path(temp_path("seq")), abstract_name("seq")] {
        let listener = UnixListener::bind(&addr, SocketKind::Seqpacket).unwrap();
        let client = unix::connect(&addr, SocketKind::Seqpacket, TIMEOUT).unwrap();
        let server = listener.accept_timeout(TIMEOUT).unwrap();
        let kind = rustix::net::sockopt::socket_type(&server).unwrap();
        assert_eq!(kind, rustix::net::SocketType::SEQPACKET);
        drop(client);
        // A stream client cannot connect to a seqpacket listener: at a path
        // the kernel says the type is wrong; abstract names are looked up
        // per socket type, so no stream socket listens on this one.
        let err = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap_err();
        let (kind, context) = io_kind(err);
        match addr {
            UnixAddr::Path(_) => assert!(context.contains("not a stream socket"), "{context}"),
            UnixAddr::Abstract(_) => assert_eq!(kind, io::ErrorKind::ConnectionRefused),
        }
    }
}

#[test]
fn stale_socket_file_is_replaced() {
    let path = temp_path("stale");
    // std's listener leaves its file behind when dropped: a stale leftover.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let addr = UnixAddr::Path(path.clone());
    let err = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap_err();
    let (kind, context) = io_kind(err);
    assert_eq!(kind, io::ErrorKind::ConnectionRefused);
    assert!(context.contains("no one listens"), "{context}");

    let listener = UnixListener::bind(&addr, SocketKind::Stream).unwrap();
    let _client = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap();
    listener.accept_timeout(TIMEOUT).unwrap();
    drop(listener);
    assert!(!path.exists());
}

#[test]
fn live_listener_is_not_replaced() {
    let path = temp_path("live");
    let addr = UnixAddr::Path(path.clone());
    let first = UnixListener::bind(&addr, SocketKind::Stream).unwrap();
    for kind in [SocketKind::Stream, SocketKind::Seqpacket] {
        let err = UnixListener::bind(&addr, kind).unwrap_err();
        let (io_kind, context) = io_kind(err);
        assert_eq!(io_kind, io::ErrorKind::AddrInUse);
        assert!(context.contains(path.to_str().unwrap()), "{context}");
        assert!(context.contains("listens"), "{context}");
    }
    // The first listener still owns its path and works (the probes'
    // connections are queued; accept them first).
    let _client = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap();
    first.accept_timeout(TIMEOUT).unwrap();
    assert!(path.exists());

    // A live listener from outside this library is left alone too.
    let other_path = temp_path("live-std");
    let _std = std::os::unix::net::UnixListener::bind(&other_path).unwrap();
    let err =
        UnixListener::bind(&UnixAddr::Path(other_path.clone()), SocketKind::Stream).unwrap_err();
    assert_eq!(io_kind(err).0, io::ErrorKind::AddrInUse);
    assert!(other_path.exists());
    let _ = std::fs::remove_file(&other_path);

    // An abstract name in use.
    let name = abstract_name("live");
    let _held = UnixListener::bind(&name, SocketKind::Stream).unwrap();
    let err = UnixListener::bind(&name, SocketKind::Stream).unwrap_err();
    assert_eq!(io_kind(err).0, io::ErrorKind::AddrInUse);
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let path = temp_path("regular");
    std::fs::write(&path, b"keep me").unwrap();
    let err = UnixListener::bind(&UnixAddr::Path(path.clone()), SocketKind::Stream).unwrap_err();
    let (kind, context) = io_kind(err);
    assert_eq!(kind, io::ErrorKind::AddrInUse);
    assert!(context.contains("not a socket"), "{context}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn drop_removes_only_the_file_it_created() {
    let path = temp_path("drop");
    let addr = UnixAddr::Path(path.clone());
    drop(UnixListener::bind(&addr, SocketKind::Seqpacket).unwrap());
    assert!(!path.exists());

    // Someone replaced the socket file: the drop leaves the new file.
    let listener = UnixListener::bind(&addr, SocketKind::Stream).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"new owner").unwrap();
    drop(listener);
    assert_eq!(std::fs::read(&path).unwrap(), b"new owner");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn bad_addresses_are_invalid_endpoints() {
    let long = "x".repeat(108);
    for (s, part) in [
        ("", "path"),
        ("@", "abstract name"),
        (long.as_str(), "path"),
        (&format!("@{long}"), "abstract name"),
        ("a\0b", "path"),
        ("@a\0b", "abstract name"),
    ] {
        match UnixAddr::parse("unix:whatever", s) {
            Err(Error::InvalidEndpoint {
                endpoint,
                part: got,
                why,
            }) => {
                assert_eq!(endpoint, "unix:whatever");
                assert_eq!(got, part, "{s:?}: {why}");
            }
            other => panic!("{s:?} parsed as {other:?}"),
        }
    }
    // The longest addresses that fit.
    let path = "p".repeat(107);
    assert_eq!(
        UnixAddr::parse("e", &path).unwrap(),
        UnixAddr::Path(PathBuf::from(&path))
    );
    let name = format!("@{}", "n".repeat(107));
    let addr = UnixAddr::parse("e", &name).unwrap();
    assert_eq!(addr, UnixAddr::Abstract(vec![b'n'; 107]));
    assert_eq!(addr.to_string(), name);
    assert_eq!(
        UnixAddr::parse("e", "/tmp/x.sock").unwrap().to_string(),
        "/tmp/x.sock"
    );
}

#[test]
fn connect_to_a_missing_path_is_not_found() {
    let path = temp_path("missing");
    let err =
        unix::connect(&UnixAddr::Path(path.clone()), SocketKind::Stream, TIMEOUT).unwrap_err();
    let (kind, context) = io_kind(err);
    assert_eq!(kind, io::ErrorKind::NotFound);
    assert!(context.contains(path.to_str().unwrap()), "{context}");

    let err = unix::connect(&abstract_name("missing"), SocketKind::Seqpacket, TIMEOUT).unwrap_err();
    assert_eq!(io_kind(err).0, io::ErrorKind::ConnectionRefused);
}

#[test]
fn accept_timeout_times_out() {
    let listener = UnixListener::bind(&abstract_name("timeout"), SocketKind::Stream).unwrap();
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    assert!(matches!(
        listener.accept_timeout(timeout),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
    assert!(matches!(
        listener.accept_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
}

#[test]
fn blocking_accept_waits_for_a_client() {
    let addr = abstract_name("blocking");
    let listener = UnixListener::bind(&addr, SocketKind::Stream).unwrap();
    let client = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let fd = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap();
        UnixStream::from(fd).write_all(b"hi").unwrap();
    });
    let mut stream = UnixStream::from(listener.accept().unwrap());
    let mut buf = [0u8; 2];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    client.join().unwrap();
}

#[test]
fn descriptors_are_close_on_exec() {
    let addr = abstract_name("cloexec");
    let listener = UnixListener::bind(&addr, SocketKind::Stream).unwrap();
    let client = unix::connect(&addr, SocketKind::Stream, TIMEOUT).unwrap();
    let server = listener.accept_timeout(TIMEOUT).unwrap();
    for fd in [&client, &server] {
        let flags = rustix::io::fcntl_getfd(fd).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }
    let flags = rustix::io::fcntl_getfd(&listener).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
}
