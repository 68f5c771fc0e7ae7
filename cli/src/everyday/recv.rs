//! `shmsg recv ENDPOINT`: listens, and prints each message that arrives.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use shmsg::channel::Receiver;
use shmsg::msg::unix::UnixAddr;
use shmsg::{Endpoint, Error, Options};

use super::{RecvArgs, hint, refuse_stdio_pipe};
use crate::failure::Failure;

/// `shmsg recv ENDPOINT`: listens, accepts one sender (on `mpsc:`, every
/// sender, as they come) and prints what arrives until `--count` messages,
/// or until the sender is gone (on `mpsc:`, until a signal).
pub fn recv(args: RecvArgs) -> Result<(), Failure> {
    refuse_stdio_pipe("recv", &args.endpoint)?;
    let options = Options {
        max_message: args.max_message,
        allow: args.allow.policy(),
        ..Options::default()
    };
    // The listener removes its socket file when dropped; a signal ends the
    // process without dropping it, so the file is registered for removal
    // on a signal too.
    let (mut listener, _remove_socket) = crate::signals::create_removed_on_signal(
        || shmsg::listen_with(&args.endpoint, &options),
        |_| socket_file(&args.endpoint),
    )
    .map_err(|e| hint(e, "recv", &args.endpoint))?;
    eprintln!("shmsg recv: listening on {}", listener.endpoint());
    let deadline = args.timeout.map(shmsg::Deadline::after);
    let mut channel = accept(&mut listener, deadline).map_err(|e| match e {
        Error::Timeout => Failure::Hint {
            error: Error::Timeout,
            hint: format!(
                "no sender connected; run `shmsg send {}`",
                listener.endpoint()
            ),
        },
        other => hint(other, "recv", &args.endpoint),
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.all {
        return recv_all(&mut listener, &args, channel, &mut out);
    }
    let peer = args.show_peer.then(|| peer_label(channel.peer(), 1));
    // An mpsc: endpoint takes senders as they come: when all are gone, wait
    // for the next.
    let many_senders = matches!(Endpoint::parse(&args.endpoint), Ok(Endpoint::Mpsc(_)));
    let mut message = Vec::new();
    let mut received = 0u64;
    while args.count.is_none_or(|count| received < count) {
        let got = if many_senders {
            // The channels of the senders that connect later wait in the
            // listener's queue; take them now and then (a receive on any
            // of them takes from every sender), so that it never fills up
            // and shuts later senders out while this one is in use.
            take_waiting(&mut listener)?;
            match channel.recv_timeout(&mut message, Duration::from_millis(100)) {
                Err(Error::Timeout) => continue,
                got => got,
            }
        } else {
            channel.recv(&mut message)
        };
        match got {
            Ok(_) => received += 1,
            Err(Error::Disconnected) if many_senders => {
                channel = accept(&mut listener, None)?;
                continue;
            }
            Err(Error::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
        if !write_message(&mut out, &message, args.length_prefixed, peer.as_deref())? {
            return Ok(());
        }
    }
    Ok(())
}

/// `recv --all`: every sender that connects, at once. A thread per sender
/// receives; this one accepts, and writes each message whole as it comes.
fn recv_all(
    listener: &mut shmsg::Listener,
    args: &RecvArgs,
    first: shmsg::Channel,
    out: &mut impl Write,
) -> Result<(), Failure> {
    type Message = (std::sync::Arc<str>, Vec<u8>);
    let (tx, messages) = std::sync::mpsc::sync_channel::<Message>(1024);
    let mut senders = 0;
    let mut serve = |channel: shmsg::Channel| {
        senders += 1;
        let peer: std::sync::Arc<str> = peer_label(channel.peer(), senders).into();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut channel = channel;
            let mut message = Vec::new();
            // Ends when the sender leaves, or when recv has what it wanted.
            while channel.recv(&mut message).is_ok() {
                if tx
                    .send((peer.clone(), std::mem::take(&mut message)))
                    .is_err()
                {
                    return;
                }
            }
        });
    };
    serve(first);
    let mut received = 0u64;
    while args.count.is_none_or(|count| received < count) {
        loop {
            match listener.accept_timeout(Duration::ZERO) {
                Ok(channel) => serve(channel),
                Err(Error::Timeout) => break,
                Err(Error::PeerRefused(who)) => log_refused(who),
                Err(e) => return Err(e.into()),
            }
        }
        match messages.recv_timeout(Duration::from_millis(20)) {
            Ok((peer, message)) => {
                let peer = args.show_peer.then_some(&*peer);
                if !write_message(out, &message, args.length_prefixed, peer)? {
                    return Ok(());
                }
                received += 1;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => unreachable!("tx is here"),
        }
    }
    Ok(())
}

/// How `--show-peer` names a sender: its pid where known, else the number
/// of its connection.
fn peer_label(peer: Option<shmsg::Credentials>, connection: usize) -> String {
    match peer.and_then(|peer| peer.pid) {
        Some(pid) => format!("pid {pid}"),
        None => format!("#{connection}"),
    }
}

/// Writes one received message (after `peer` and a tab, if given) and
/// flushes; `Ok(false)` if the reader of our output is gone (`shmsg recv
/// ... | head`).
fn write_message(
    out: &mut impl Write,
    message: &[u8],
    length_prefixed: bool,
    peer: Option<&str>,
) -> Result<bool, Failure> {
    let written = if length_prefixed {
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        out.write_all(&len.to_le_bytes())
            .and_then(|()| out.write_all(message))
    } else {
        let prefix = peer.map(|peer| format!("{peer}\t")).unwrap_or_default();
        out.write_all(prefix.as_bytes())
            .and_then(|()| out.write_all(message))
            .and_then(|()| out.write_all(b"\n"))
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Io {
            context: "cannot write to stdout".into(),
            source: e,
        }
        .into()),
    }
}

/// The socket file a listener on `endpoint` creates: the path of
/// `unix:PATH`, `seqpacket:PATH`, `shm:/PATH` and `mpsc:/PATH`.
fn socket_file(endpoint: &str) -> Option<PathBuf> {
    match Endpoint::parse(endpoint).ok()? {
        Endpoint::Unix(UnixAddr::Path(path)) | Endpoint::Seqpacket(UnixAddr::Path(path)) => {
            Some(path)
        }
        shared @ (Endpoint::Shm(_) | Endpoint::Mpsc(_)) => match shared.rendezvous()? {
            UnixAddr::Path(path) => Some(path),
            UnixAddr::Abstract(_) => None,
        },
        _ => None,
    }
}

/// The next sender, logging (on stderr) and skipping those the listener
/// refused.
fn accept(
    listener: &mut shmsg::Listener,
    deadline: Option<shmsg::Deadline>,
) -> Result<shmsg::Channel, Error> {
    loop {
        let accepted = match deadline {
            Some(deadline) => match deadline.remaining() {
                Some(left) if !left.is_zero() => listener.accept_timeout(left),
                _ => return Err(Error::Timeout),
            },
            None => listener.accept(),
        };
        match accepted {
            Ok(channel) => return Ok(channel),
            Err(Error::PeerRefused(who)) => log_refused(who),
            Err(e) => return Err(e),
        }
    }
}

fn log_refused(who: shmsg::Credentials) {
    eprintln!("shmsg recv: refused {who}: not an allowed user (see --allow-uid, --allow-gid)");
}

/// Takes (and drops) the channels of `mpsc:` senders waiting to be
/// accepted, logging refused ones: the channel in use already receives
/// their messages, and the listener's queue of them is bounded.
fn take_waiting(listener: &mut shmsg::Listener) -> Result<(), Error> {
    loop {
        match listener.accept_timeout(Duration::ZERO) {
            Ok(_another_sender) => {}
            Err(Error::PeerRefused(who)) => log_refused(who),
            Err(Error::Timeout) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
