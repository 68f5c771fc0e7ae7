//! The everyday commands: `send`, `recv`, `inspect` and `clean`.
//!
//! `shmsg recv ENDPOINT` listens on any endpoint string, accepts one peer
//! (on `mpsc:`, every sender that comes) and prints each message it
//! receives; `shmsg send ENDPOINT` connects and sends each message it reads
//! from stdin. So two terminals talk over shared memory or a socket with the
//! same two commands:
//!
//! ```text
//! terminal 1$ shmsg recv shm:chat         # or unix:/tmp/chat, tcp:127.0.0.1:7000, ...
//! terminal 2$ echo hello | shmsg send shm:chat
//! ```
//!
//! Messages are lines by default (the newline is not part of the message),
//! or, with `--length-prefixed`, frames of a 4-byte little-endian length and
//! that many bytes, on stdin for `send` and on stdout for `recv`.
//!
//! On the Unix-socket endpoints `recv` lets in only processes of its own
//! user unless `--allow-uid`, `--allow-gid` or `--allow-anyone` say
//! otherwise; it logs each sender it refuses on stderr and goes on.
//!
//! `shmsg inspect NAME` shows a named region (the file
//! `/dev/shm/shmsg.NAME` a program made with the `Region` API): the kind of
//! ring, capacity, fill level and who is attached (each producer and
//! consumer slot of a multi-producer ring), and whether those processes
//! are alive; `--json` prints the same as one JSON object (see
//! `inspect.rs`). `shm:` and `mpsc:` endpoints have no such file:
//! their rings are memfds handed over a socket. `shmsg clean` lists named
//! regions no live process uses; `shmsg clean --yes` removes them.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use shmsg::channel::{Receiver, Sender};
use shmsg::msg::unix::UnixAddr;
use shmsg::shm::Region;
use shmsg::shm::region::{PREFIX, RegionInfo, SHM_DIR};
use shmsg::{Endpoint, Error, Options};

use super::compare::parse_size;
use crate::Failure;

/// `shmsg send` flags.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// Where to send: shm:NAME, mpsc:NAME, unix:PATH, unix:@NAME, seqpacket:PATH,
    /// seqpacket:@NAME, tcp:HOST:PORT or pipe:RFD,WFD (shm: and mpsc: also
    /// take /PATH). A receiver must be listening there (`shmsg recv
    /// ENDPOINT`), or start to within --timeout, and let this user in.
    pub endpoint: String,
    /// Read frames of a 4-byte little-endian length and that many bytes
    /// instead of lines.
    #[arg(long)]
    pub length_prefixed: bool,
    /// How long to try connecting, e.g. 10s: while no receiver listens
    /// at ENDPOINT, send tries again until this has passed, then exits 7.
    #[arg(long, default_value = "10s", value_parser = super::compare::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub allow: AllowArgs,
}

/// Who may be at the other end of a Unix-socket endpoint (shm:, mpsc:,
/// unix:, seqpacket:): by default only processes of this user. TCP checks
/// no credentials.
#[derive(clap::Args, Debug)]
pub struct AllowArgs {
    /// Also accept a peer of this user id (repeatable): for recv, senders
    /// that may connect; for send, the user the receiver may run as.
    #[arg(long, value_name = "UID")]
    pub allow_uid: Vec<u32>,
    /// Also accept a peer of this group id (repeatable).
    #[arg(long, value_name = "GID")]
    pub allow_gid: Vec<u32>,
    /// Accept any local process as the peer.
    #[arg(long, conflicts_with_all = ["allow_uid", "allow_gid"])]
    pub allow_anyone: bool,
}

impl AllowArgs {
    fn policy(&self) -> shmsg::Allow {
        if self.allow_anyone {
            shmsg::Allow::Anyone
        } else if self.allow_uid.is_empty() && self.allow_gid.is_empty() {
            shmsg::Allow::SameUser
        } else {
            shmsg::Allow::Listed {
                uids: self.allow_uid.clone(),
                gids: self.allow_gid.clone(),
            }
        }
    }
}

/// `shmsg recv` flags.
#[derive(clap::Args, Debug)]
pub struct RecvArgs {
    /// Where to listen: shm:NAME or shm:/PATH (a socket file), mpsc:NAME
    /// or mpsc:/PATH (up to 16 senders at once, any number over time; runs
    /// until --count or a signal), unix:PATH, unix:@NAME, seqpacket:PATH,
    /// seqpacket:@NAME, tcp:HOST:PORT (port 0: any free port; TCP checks no
    /// credentials, so prefer 127.0.0.1) or pipe:RFD,WFD. The actual
    /// endpoint is printed on stderr.
    pub endpoint: String,
    /// Write frames of a 4-byte little-endian length and the message instead
    /// of lines.
    #[arg(long)]
    pub length_prefixed: bool,
    /// Exit after this many messages (default: when the sender is gone; on
    /// mpsc:, never).
    #[arg(long)]
    pub count: Option<u64>,
    /// The largest message to accept, e.g. 64K or 16M (default: 64 KiB for
    /// shm, 16 MiB otherwise).
    #[arg(long, value_parser = parse_size)]
    pub max_message: Option<usize>,
    /// How long to wait for a sender (default: forever), e.g. 30s.
    #[arg(long, value_parser = super::compare::parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub allow: AllowArgs,
    /// Take every sender that connects, receiving from all at once, until
    /// --count messages in all or a signal (mpsc: endpoints always do).
    #[arg(long)]
    pub all: bool,
    /// Print each message after the sender it came from and a tab: its
    /// pid where the endpoint knows it (Unix sockets, shm:), else the
    /// number of its connection (#1, #2, ...).
    #[arg(long, conflicts_with = "length_prefixed")]
    pub show_peer: bool,
}

/// `shmsg inspect` flags.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The NAME of a named region (a file /dev/shm/shmsg.NAME made with the
    /// Region API). shm: and mpsc: endpoints keep their rings in anonymous
    /// memory: there is nothing to inspect by name.
    pub endpoint: String,
    /// Print one JSON object instead of text: the ring's kind, geometry,
    /// fill level, creator, and each producer and consumer (slot) with its
    /// pid and whether it is alive.
    #[arg(long)]
    pub json: bool,
    /// Look in this directory instead of /dev/shm.
    #[arg(long, hide = true)]
    pub dir: Option<PathBuf>,
}

/// `shmsg clean` flags.
#[derive(clap::Args, Debug)]
pub struct CleanArgs {
    /// Remove the regions; without it, only list what would be removed.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Look in this directory instead of /dev/shm.
    #[arg(long, hide = true)]
    pub dir: Option<PathBuf>,
}

/// `pipe` alone means stdin and stdout, which `send` and `recv` use for the
/// messages themselves.
fn refuse_stdio_pipe(command: &str, endpoint: &str) -> Result<(), Failure> {
    if let Ok(Endpoint::Pipe { read: 0, .. } | Endpoint::Pipe { write: 1, .. }) =
        Endpoint::parse(endpoint)
    {
        return Err(Failure::Usage(format!(
            "`shmsg {command}` uses stdin and stdout for the messages, so its channel cannot be \
             `{endpoint}`; pass other descriptors, e.g. `shmsg {command} pipe:3,4 3<IN 4>OUT`"
        )));
    }
    Ok(())
}

/// Adds what to do about a failed connect or listen.
fn hint(error: Error, command: &str, endpoint: &str) -> Failure {
    let hint = match &error {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                if command == "send" =>
            {
                format!("is a receiver listening? Start `shmsg recv {endpoint}` first")
            }
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::AddrInUse
                if error.to_string().contains("not a socket") =>
            {
                format!(
                    "a file that is not a socket is at that path: remove it, or pick \
                     another path than {endpoint}"
                )
            }
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::AddrInUse => format!(
                "{endpoint} is taken by a live receiver; pick another name or path, or stop \
                 that receiver (a socket file left by a process that died is replaced by itself)"
            ),
            std::io::ErrorKind::PermissionDenied => {
                "this user may not use that path (directory or socket permissions); \
                 pick another"
                    .into()
            }
            _ => return Failure::Shmsg(error),
        },
        Error::InvalidEndpoint { .. } => "write shm:NAME, shm:/PATH, mpsc:NAME, mpsc:/PATH, \
             unix:PATH, unix:@NAME, seqpacket:PATH, seqpacket:@NAME, tcp:HOST:PORT or \
             pipe:RFD,WFD"
            .into(),
        Error::RoleTaken(_) => format!(
            "every sender slot of {endpoint} is taken by a live process; try again when \
             one of them is gone"
        ),
        Error::PeerRefused(me) => format!(
            "the receiver lets in only the users it allows (by default its own); start it \
             with `shmsg recv --allow-uid {} {endpoint}` to let this user in",
            me.uid
        ),
        Error::ListenerNotAllowed(listener) => format!(
            "another user listens at {endpoint}: if you trust it, pass `--allow-uid {}`",
            listener.uid
        ),
        Error::Timeout if command == "send" => {
            format!("no receiver answered; start `shmsg recv {endpoint}` first, or raise --timeout")
        }
        _ => return Failure::Shmsg(error),
    };
    Failure::Hint { error, hint }
}

/// What to do about a message of `len` bytes that the receiver at
/// `endpoint` does not take: a `--max-message` it accepts (rounded up to
/// whole KiB or MiB), or, beyond the largest, splitting the message.
fn max_message_advice(len: usize, endpoint: &str) -> String {
    let size = if len <= 1 << 20 {
        format!("{}K", len.div_ceil(1 << 10))
    } else {
        format!("{}M", len.div_ceil(1 << 20))
    };
    match parse_size(&size) {
        Ok(_) => format!("start the receiver with `shmsg recv --max-message {size} {endpoint}`"),
        Err(_) => "no receiver takes more than 16M: split it into smaller messages".into(),
    }
}

/// The hint for message `number` of `len` bytes, too large for the
/// receiver at `endpoint`.
fn too_large_hint(number: u64, len: usize, endpoint: &str) -> String {
    format!(
        "message {number} ({len} bytes) is too large for the receiver; {}",
        max_message_advice(len, endpoint)
    )
}

/// Reads and drops the rest of a line (up to `limit` bytes, its newline
/// not counted); returns how many bytes it had.
fn skip_line(input: &mut impl BufRead, limit: u64) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    while skipped < limit {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let (used, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        skipped += (used - usize::from(end)) as u64;
        input.consume(used);
        if end {
            break;
        }
    }
    Ok(skipped.min(limit))
}

/// Reads the next message from `input`: a line without its newline, or a
/// length-prefixed frame. `None` at the end of the input.
///
/// A frame whose length is over `max` (what the receiver accepts) is
/// [`Error::MessageTooLarge`] as soon as its 4-byte length is read: its
/// bytes are neither read nor stored, so a wrong or hostile length cannot
/// make this process read gigabytes into memory. Input that ends inside a
/// frame is [`Failure::Input`].
fn next_message(
    input: &mut impl BufRead,
    length_prefixed: bool,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, Failure> {
    buf.clear();
    let stdin_error = |e| Error::Io {
        context: "cannot read stdin".into(),
        source: e,
    };
    if !length_prefixed {
        // At most the longest message and its newline: a longer line is
        // refused without reading (or holding) the rest of it.
        let limit = max.saturating_add(1) as u64;
        let n = input
            .by_ref()
            .take(limit)
            .read_until(b'\n', buf)
            .map_err(stdin_error)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if n as u64 == limit {
            // Measure the line without holding it, up to just past what
            // any receiver takes, for a hint that names a size that works.
            let rest =
                skip_line(input, (super::compare::MAX_SIZE + 1) as u64).map_err(stdin_error)?;
            let len = n.saturating_add(rest as usize);
            return Err(Error::MessageTooLarge { len, max }.into());
        }
        return Ok(Some(()));
    }
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(Failure::Input(format!(
                    "stdin ended inside a frame's 4-byte length ({got} bytes of it); \
                     --length-prefixed input is a little-endian u32 length, then the message"
                )));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stdin_error(e).into()),
        }
    }
    let len = u32::from_le_bytes(header) as u64;
    if len > max as u64 {
        return Err(Error::MessageTooLarge {
            len: len as usize,
            max,
        }
        .into());
    }
    let read = input.take(len).read_to_end(buf).map_err(stdin_error)?;
    if read as u64 != len {
        return Err(Failure::Input(format!(
            "stdin ended inside a frame: its length says {len} bytes, only {read} followed"
        )));
    }
    Ok(Some(()))
}

/// Whether `error` says that nobody listens at the endpoint yet (no socket
/// file, or no listener on the socket or port): a receiver started a
/// moment later fixes it.
fn nobody_listens(error: &Error) -> bool {
    matches!(
        error,
        Error::Io { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        )
    )
}

/// The first pause between two connects of [`connect_waiting`]; each
/// next one is twice as long, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause between two connects: how late at most `send` sees a
/// receiver that started listening.
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Connects to `endpoint`, trying again while nobody listens there (a
/// receiver may be starting) until `options.timeout` has passed; other
/// errors (a bad endpoint, a receiver that refuses this user, a handshake
/// that fails) end it at once.
fn connect_waiting(endpoint: &str, options: &Options) -> Result<shmsg::Channel, Failure> {
    // A pipe's descriptors are taken by the first try: there is no second.
    let retry = !matches!(Endpoint::parse(endpoint), Ok(Endpoint::Pipe { .. }));
    let deadline = shmsg::Deadline::after(options.timeout);
    let left = || deadline.remaining().unwrap_or(options.timeout);
    let mut pause = FIRST_PAUSE;
    loop {
        // Each try may take what is left of the timeout, and at least a
        // moment, so that a receiver found at the last moment can answer.
        let attempt = Options {
            timeout: left().max(Duration::from_millis(100)),
            ..options.clone()
        };
        let error = match shmsg::connect_with(endpoint, &attempt) {
            Ok(channel) => return Ok(channel),
            Err(error) => error,
        };
        let timed_out = matches!(
            &error,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut
        );
        if !retry || !(nobody_listens(&error) || timed_out) {
            return Err(hint(error, "send", endpoint));
        }
        if timed_out || left().is_zero() {
            return Err(Failure::Hint {
                error: Error::Timeout,
                hint: format!(
                    "no receiver listened at {endpoint} within {:?} (last try: {error}); \
                     start `shmsg recv {endpoint}` first, or raise --timeout",
                    options.timeout
                ),
            });
        }
        std::thread::sleep(pause.min(left()));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// `shmsg send ENDPOINT`: connects and sends every message read from stdin.
pub fn send(args: SendArgs) -> Result<(), Failure> {
    refuse_stdio_pipe("send", &args.endpoint)?;
    let options = Options {
        timeout: args.timeout,
        allow: args.allow.policy(),
        ..Options::default()
    };
    let mut channel = connect_waiting(&args.endpoint, &options)?;
    let mut input = std::io::stdin().lock();
    let mut message = Vec::new();
    let mut sent = 0u64;
    // The receiver's limit (the sending half's maximum).
    let max = Sender::max_message(&channel);
    loop {
        match next_message(&mut input, args.length_prefixed, max, &mut message) {
            Ok(Some(())) => {}
            Ok(None) => break,
            Err(failure) => {
                // The messages before the bad one go out whole.
                channel.flush()?;
                return Err(match failure {
                    Failure::Shmsg(Error::MessageTooLarge { len, max }) if args.length_prefixed => {
                        Failure::Hint {
                            error: Error::MessageTooLarge { len, max },
                            hint: format!(
                                "frame {} of stdin says it is {len} bytes long, more than the \
                                 receiver accepts, so none of it was read or sent ({} before \
                                 it went out); if that length is right, {}; if not, stdin is \
                                 not --length-prefixed frames (a little-endian u32 length, \
                                 then the message)",
                                sent + 1,
                                messages(sent),
                                max_message_advice(len, &args.endpoint)
                            ),
                        }
                    }
                    Failure::Shmsg(Error::MessageTooLarge { len, max }) => Failure::Hint {
                        error: Error::MessageTooLarge { len, max },
                        hint: too_large_hint(sent + 1, len, &args.endpoint),
                    },
                    other => other,
                });
            }
        }
        match channel.send(&message) {
            Ok(()) => sent += 1,
            Err(Error::MessageTooLarge { len, max }) => {
                return Err(Failure::Hint {
                    error: Error::MessageTooLarge { len, max },
                    hint: too_large_hint(sent + 1, len, &args.endpoint),
                });
            }
            Err(Error::Disconnected) => {
                let hint = match channel.unreleased() {
                    Some(left) => format!(
                        "the receiver left; it received {} of the {} sent \
                         (the rest were in the ring when it left)",
                        messages(sent.saturating_sub(left)),
                        messages(sent)
                    ),
                    None => format!(
                        "the receiver left after {} were sent (how many it \
                         read is not known over this kind of link)",
                        messages(sent)
                    ),
                };
                return Err(Failure::Hint {
                    error: Error::Disconnected,
                    hint,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    channel.flush()?;
    Ok(())
}

/// "1 message", "2 messages".
fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

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

/// A region's name from `NAME`.
fn region_name(endpoint: &str) -> Result<String, Failure> {
    match Endpoint::parse(endpoint) {
        Ok(Endpoint::Shm(_) | Endpoint::Mpsc(_)) => Err(Failure::Usage(format!(
            "{endpoint} keeps its rings in anonymous memory handed to each client over a \
             socket, not in a named region; `shmsg inspect NAME` shows a region made with \
             the Region API (a file {SHM_DIR}/{PREFIX}NAME)"
        ))),
        Ok(_) => Err(Failure::Usage(format!(
            "{endpoint:?} is not a region; `shmsg inspect NAME` shows the named region \
             {SHM_DIR}/{PREFIX}NAME"
        ))),
        Err(_) if !endpoint.contains(':') => {
            let name = endpoint.strip_prefix(PREFIX).unwrap_or(endpoint);
            shmsg::shm::region::validate_name(name)?;
            Ok(name.to_string())
        }
        Err(e) => Err(e.into()),
    }
}

/// `shmsg inspect NAME`: the named region `NAME`.
pub fn inspect(args: InspectArgs) -> Result<(), Failure> {
    let name = region_name(&args.endpoint)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(SHM_DIR));
    let infos = Region::list_in(&dir)?;
    let found: Vec<&RegionInfo> = infos.iter().filter(|i| i.name == name).collect();
    if found.is_empty() {
        return Err(Failure::Hint {
            error: Error::Io {
                context: format!(
                    "no region {name:?} in {} (no file {PREFIX}{name})",
                    dir.display()
                ),
                source: std::io::ErrorKind::NotFound.into(),
            },
            hint: "check the name; `shmsg clean` lists the regions there".into(),
        });
    }
    let mut out = String::new();
    for info in found {
        let path = dir.join(format!("{PREFIX}{}", info.name));
        if args.json {
            out.push_str(&super::inspect::to_json(&path, info));
        } else {
            super::inspect::describe(&path, info, &mut out);
        }
    }
    print!("{out}");
    Ok(())
}

/// `shmsg clean`: lists every region and removes (with `--yes`) those no
/// live process uses.
pub fn clean(args: CleanArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(SHM_DIR));
    let infos = Region::list_in(&dir).map_err(|e| Failure::Hint {
        error: e,
        hint: format!("{} must be a readable directory", dir.display()),
    })?;
    if infos.is_empty() {
        println!("no shmsg regions in {}", dir.display());
        return Ok(());
    }
    for info in &infos {
        let state = if !info.accessible {
            format!(
                "cannot inspect: {}",
                info.validation.as_ref().err().cloned().unwrap_or_default()
            )
        } else if info.is_stale() {
            "stale (creator dead, nobody attached)".into()
        } else {
            let mut users = Vec::new();
            if info.creator_locked {
                users.push("creator alive");
            }
            if info.producer_locked {
                users.push("producer attached");
            }
            if info.consumer_locked {
                users.push("consumer attached");
            }
            format!("in use ({})", users.join(", "))
        };
        println!("{:<40} {:>12} bytes  {state}", info.name, info.size);
    }
    let stale = Region::remove_stale_in(&dir, !args.yes)?;
    if stale.is_empty() {
        println!("nothing to clean: every region is in use");
    } else if args.yes {
        for name in &stale {
            println!("removed {name}");
        }
    } else {
        for name in &stale {
            println!("would remove {name}");
        }
        println!("dry run: run `shmsg clean --yes` to remove them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_maximum_is_not_read_to_its_end() {
        let mut input = &b"abc\nabcdefgh\n"[..];
        let mut buf = Vec::new();
        assert!(matches!(
            next_message(&mut input, false, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abc");
        match next_message(&mut input, false, 3, &mut buf) {
            Err(Failure::Shmsg(Error::MessageTooLarge { len: 8, max: 3 })) => {}
            _ => panic!("an 8-byte line passed a 3-byte maximum"),
        }
        // Only the maximum and one byte were kept; the rest was counted.
        assert!(buf.len() <= 4, "{buf:?}");
        assert!(input.is_empty());
        // A line of exactly the maximum, without a newline at the end, passes.
        let mut input = &b"xyz"[..];
        assert!(matches!(
            next_message(&mut input, false, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"xyz");
    }

    #[test]
    fn messages_from_lines_and_frames() {
        let mut lines = &b"one\n\ntwo\nthree"[..];
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while next_message(&mut lines, false, usize::MAX, &mut buf)
            .ok()
            .flatten()
            .is_some()
        {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, ["one", "", "two", "three"]);
        let mut frames = Vec::new();
        for m in [&b"ab"[..], b"", b"\n\0x"] {
            frames.extend_from_slice(&(m.len() as u32).to_le_bytes());
            frames.extend_from_slice(m);
        }
        let mut input = &frames[..];
        let mut got = Vec::new();
        while next_message(&mut input, true, usize::MAX, &mut buf)
            .ok()
            .flatten()
            .is_some()
        {
            got.push(buf.clone());
        }
        assert_eq!(got, [b"ab".to_vec(), vec![], b"\n\0x".to_vec()]);
        let mut cut = &frames[..frames.len() - 1];
        let mut results = Vec::new();
        loop {
            match next_message(&mut cut, true, usize::MAX, &mut buf) {
                Ok(Some(())) => results.push(true),
                Ok(None) => break,
                Err(_) => {
                    results.push(false);
                    break;
                }
            }
        }
        assert_eq!(results, [true, true, false]);
    }

    /// A frame over the maximum is refused from its length alone: its
    /// bytes stay unread.
    #[test]
    fn a_frame_over_the_maximum_is_refused_before_it_is_read() {
        let mut input = &[&0xFFFF_FFF0u32.to_le_bytes()[..], b"rest"].concat()[..];
        let mut buf = Vec::new();
        match next_message(&mut input, true, 1024, &mut buf) {
            Err(Failure::Shmsg(Error::MessageTooLarge { len, max })) => {
                assert_eq!((len, max), (0xFFFF_FFF0, 1024));
            }
            _ => panic!("a 4 GiB frame was not refused"),
        }
        assert_eq!(input, b"rest");
        assert!(buf.is_empty());
        let mut at_max = &[&4u32.to_le_bytes()[..], b"abcd"].concat()[..];
        assert!(matches!(
            next_message(&mut at_max, true, 4, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abcd");
    }

    #[test]
    fn too_large_hints_name_a_size_recv_takes() {
        let hint = too_large_hint(3, 70_000, "unix:@x");
        assert!(hint.contains("message 3") && hint.contains("--max-message 69K unix:@x"));
        assert!(parse_size("69K").unwrap() >= 70_000);
        let hint = too_large_hint(1, 5_000_000, "shm:x");
        assert!(hint.contains("--max-message 5M"), "{hint}");
        // 17 MiB is past the largest size recv accepts: no flag can help.
        let hint = too_large_hint(1, 17 << 20, "shm:x");
        assert!(
            hint.contains("split") && !hint.contains("--max-message"),
            "{hint}"
        );
    }

    #[test]
    fn region_names() {
        assert!(region_name("shm:abc").is_err());
        assert_eq!(region_name("abc").ok(), Some("abc".into()));
        assert_eq!(region_name("abc").ok(), Some("abc".into()));
        assert_eq!(region_name("shmsg.abc").ok(), Some("abc".into()));
        assert!(region_name("unix:/tmp/x").is_err());
        assert!(region_name("../etc").is_err());
    }
}
