//! What every row shares: the [`Link`] the workloads drive, the [`Job`] a
//! sample runs, the [`Peer`] on the other side, and starting that peer as
//! this binary re-executed with `--child`.

use std::error::Error;
use std::os::fd::OwnedFd;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Ping-pong message size.
pub const PING: usize = 8;
/// Small streaming message size.
pub const SMALL: usize = 64;
/// Large streaming message size.
pub const LARGE: usize = 1 << 20;
/// How long set-up, or a peer that stopped answering, may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable that tells a child which CPU to pin itself to.
pub const PIN_ENV: &str = "SHMSG_PEERS_CPU";

/// One side of a duplex link between the driver and its peer.
pub trait Link {
    /// Sends one message of `len` bytes (a multiple of 8), every byte
    /// written here by [`fill_words`](shmsg_bench_support::message::fill_words)
    /// with `seed`.
    fn send(&mut self, len: usize, seed: u64) -> Res<()>;
    /// Receives one message of `len` bytes, reads every byte, and returns
    /// their [`sum_words`](shmsg_bench_support::message::sum_words).
    fn recv(&mut self, len: usize) -> Res<u64>;
}

/// An error unless a received message of `got` bytes has the `want` bytes
/// sent.
pub fn check_len(got: usize, want: usize) -> Res<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("received a message of {got} bytes, expected {want}").into())
    }
}

/// One measurement: a workload and its counts.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub pingpong: bool,
    pub len: usize,
    pub warm: u64,
    pub count: u64,
}

impl Job {
    pub fn args(&self) -> [String; 4] {
        [
            if self.pingpong { "pingpong" } else { "stream" }.to_owned(),
            self.len.to_string(),
            self.warm.to_string(),
            self.count.to_string(),
        ]
    }

    pub fn parse(args: &[String]) -> Res<Job> {
        let [kind, len, warm, count] = args else {
            return Err("a child needs: pingpong|stream LEN WARM COUNT".into());
        };
        Ok(Job {
            pingpong: kind == "pingpong",
            len: len.parse()?,
            warm: warm.parse()?,
            count: count.parse()?,
        })
    }
}

/// The other side of a measurement: a child process or a thread.
pub enum Peer {
    Process(Child),
    Thread(JoinHandle<Res<()>>),
}

impl Peer {
    pub fn finish(self) -> Res<()> {
        match self {
            Peer::Process(mut child) => {
                let status = child.wait()?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("the peer process failed: {status}").into())
                }
            }
            Peer::Thread(thread) => thread.join().map_err(|_| "the peer thread panicked")?,
        }
    }

    pub fn abandon(self) {
        match self {
            Peer::Process(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            // A thread's link is gone with ours: its next call fails.
            Peer::Thread(thread) => drop(thread.join()),
        }
    }
}

/// A name no other run or measurement uses.
pub fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "shmsg-peers-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// This binary as the child of row `key`, connecting through `conn`.
pub fn child_command(key: &str, conn: &str, job: &Job) -> Res<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--child").arg(key).arg(conn).args(job.args());
    Ok(command)
}

/// Starts the child of row `key`.
pub fn spawn(key: &str, conn: &str, job: &Job) -> Res<Child> {
    Ok(child_command(key, conn, job)?.spawn()?)
}

/// Lets a child inherit `fd` across `exec`.
pub fn inheritable(fd: &OwnedFd) -> Res<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    Ok(())
}
