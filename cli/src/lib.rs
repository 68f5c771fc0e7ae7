//! The `shmsg` command.
//!
//! * `shmsg compare`: measures the two models side by side on this machine
//!   (shared-memory ring, Unix stream and seqpacket sockets, pipes, TCP
//!   loopback; 8 B to 1 MiB), prints the classic comparison table with the
//!   measured figures, and writes JSON, CSV and an SVG plot (see
//!   `compare.rs`);
//! * `shmsg send ENDPOINT` / `shmsg recv ENDPOINT`: messages from stdin to
//!   stdout between two terminals, over any endpoint string (`recv
//!   mpsc:NAME` takes any number of senders);
//! * `shmsg inspect [--json] NAME`: a named region's ring kind, fill level
//!   and attached processes, slot by slot for the multi-producer rings (a
//!   file `/dev/shm/shmsg.NAME` made with the `Region` API;
//!   `shm:` and `mpsc:` endpoints have none); `shmsg clean`: named regions
//!   no live process uses;
//! * `shmsg demo`: the shared-memory ring alone, streaming and ping-pong;
//! * `shmsg completions SHELL`: a completion script (`clap_complete`);
//! * `shmsg peer …` (hidden): the worker processes of `compare`, `demo` and
//!   the cross-process tests.
//!
//! The binary (`src/main.rs`) calls [`main`]; the commands live in this
//! library so that `cargo doc` documents them (the binary is named `shmsg`,
//! like the library it drives).
//!
//! # Exit codes
//!
//! [`EXIT_CODES`] is the one list: `shmsg --help` prints it, the README
//! quotes it (`tests/cli.rs` checks that they agree), `failure::exit_code` and
//! `main` follow it, and `tests/cli.rs` makes every code happen.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failure::{Failure, exit_code};

mod bench;
mod compare;
mod completions;
mod demo;
mod everyday;
mod export;
mod failure;
mod inspect;
mod links;
mod measure;
mod pair;
mod plot;
mod report;
mod signals;
mod types;
mod units;

/// The exit codes, as `--help` prints them (see the module docs).
pub const EXIT_CODES: &str = "\
Exit codes:
  0      success
  1      any other error (I/O, a corrupt region, a peer refused, ...)
  2      bad command line: unknown flag, bad endpoint string, bad value
  3      the peer disconnected
  4      taken by a live process: another listener holds the endpoint, or
         every sender slot of an mpsc endpoint is in use
  5      a ring's layout does not match this build, or is not published yet
  6      a received message failed verification
  7      timed out: no receiver listened in time, or no sender connected
  8      the input on stdin is malformed (a truncated length-prefixed frame)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after
         removing what it created

Endpoints: shm:NAME, shm:/PATH, mpsc:NAME, mpsc:/PATH, unix:PATH, unix:@NAME, seqpacket:PATH,
seqpacket:@NAME, tcp:HOST:PORT, pipe (stdin/stdout of a spawned child), pipe:RFD,WFD.";

#[derive(Parser)]
#[command(
    name = "shmsg",
    version,
    about = "Inter-process communication: shared memory rings and message passing",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure shared memory against message passing on this machine: round
    /// trip, throughput and kernel work per transport and message size,
    /// beside the machine's physical limits. Writes JSON, CSV and an SVG plot.
    #[command(after_help = EXIT_CODES)]
    Compare(compare::CompareArgs),
    /// Connect to ENDPOINT and send each line (or length-prefixed frame) of
    /// stdin as one message.
    #[command(after_help = EXIT_CODES)]
    Send(everyday::SendArgs),
    /// Listen on ENDPOINT, accept one sender (on mpsc: any number, as they
    /// come), and print each message as a line (or length-prefixed frame)
    /// until the sender is gone.
    ///
    /// Senders of other users are refused and logged on stderr, and recv
    /// goes on waiting, unless --allow-uid, --allow-gid or --allow-anyone
    /// let them in.
    #[command(after_help = EXIT_CODES)]
    Recv(everyday::RecvArgs),
    /// Show a named region (/dev/shm/shmsg.NAME, made with the Region API):
    /// the kind of ring (spsc, mpsc or mpmc), capacity, fill level, each
    /// attached producer and consumer and whether it is alive; with --json,
    /// as one JSON object.
    ///
    /// shm: and mpsc: endpoints have no named region: their rings are memfds
    /// handed to each client over the endpoint's socket.
    #[command(after_help = EXIT_CODES)]
    Inspect(everyday::InspectArgs),
    /// List named regions under /dev/shm and remove (with --yes) those whose
    /// creator is dead and that nobody is attached to.
    ///
    /// shm: and mpsc: endpoints leave nothing there.
    #[command(after_help = EXIT_CODES)]
    Clean(everyday::CleanArgs),
    /// Print a completion script for a shell: `source <(shmsg completions
    /// bash)`, or write it where the shell looks for completions.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: completions::Shell,
    },
    /// Stream and ping-pong between two processes through the shared-memory
    /// ring alone, beside one cache line bouncing between two cores.
    Demo {
        /// Messages to stream.
        #[arg(long, default_value_t = 4_000_000)]
        messages: u64,
        /// Bytes per streamed message.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Round trips to time.
        #[arg(long, default_value_t = 200_000)]
        round_trips: u64,
        /// Repetitions of each measurement; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Worker roles for compare, the demo and the tests.
    #[command(hide = true)]
    Peer {
        #[command(subcommand)]
        role: PeerCmd,
    },
}

#[derive(Subcommand)]
enum PeerCmd {
    #[command(flatten)]
    Ring(demo::PeerRole),
    /// One side of a `shmsg compare` measurement.
    Bench(bench::BenchArgs),
}

/// Runs the `shmsg` command on this process's arguments: what the binary's
/// `main` does.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    let result = match cli.command {
        Cmd::Compare(args) => compare::run(args),
        Cmd::Send(args) => everyday::send(args),
        Cmd::Recv(args) => everyday::recv(args),
        Cmd::Inspect(args) => everyday::inspect(args),
        Cmd::Clean(args) => everyday::clean(args),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            completions::print(Cli::command(), shell);
            Ok(())
        }
        Cmd::Demo {
            messages,
            size,
            round_trips,
            runs,
        } => demo::demo(messages, size, round_trips, runs.max(1)),
        Cmd::Peer {
            role: PeerCmd::Ring(role),
        } => demo::peer(role),
        Cmd::Peer {
            role: PeerCmd::Bench(args),
        } => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Shmsg(error)) => {
            eprintln!("shmsg: {error}");
            ExitCode::from(exit_code(&error))
        }
        Err(Failure::Hint { error, hint }) => {
            eprintln!("shmsg: {error}\nshmsg: {hint}");
            ExitCode::from(exit_code(&error))
        }
        Err(Failure::Verify(message)) => {
            eprintln!("shmsg: {message}");
            ExitCode::from(6)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("shmsg: {message}\nshmsg: see `shmsg help` for the commands and flags");
            ExitCode::from(2)
        }
        Err(Failure::Input(message)) => {
            eprintln!("shmsg: {message}");
            ExitCode::from(8)
        }
    }
}
