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
//!
//! This module holds the flags and the hints the commands share; `send.rs`,
//! `recv.rs` and `regions.rs` (`inspect`, `clean`) the commands.

mod recv;
mod regions;
mod send;

pub use recv::recv;
pub use regions::{clean, inspect};
pub use send::send;

use std::path::PathBuf;
use std::time::Duration;

use shmsg::{Endpoint, Error};

use crate::failure::Failure;
use crate::units::parse_size;

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
    #[arg(long, default_value = "10s", value_parser = super::units::parse_duration)]
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
    #[arg(long, value_parser = super::units::parse_duration)]
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
