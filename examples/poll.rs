//! One thread serves several clients with plain `poll(2)`, no async
//! runtime: the loop a user of mio, `polling` or their own event loop
//! writes, with the rule of `shmsg::channel::Readiness`.
//!
//! ```text
//! cargo run --example poll -- server shm:tickets         # terminal 1
//! cargo run --example poll -- client shm:tickets 1       # terminal 2, 3, ...
//! ```
//!
//! With no arguments it runs both sides itself over `shm:` and `unix:`:
//! three client processes send numbered requests, the server answers each
//! with the request's number doubled, and the clients check every answer.
//!
//! The server waits for everything at once, the listener and every
//! channel, in one `poll`:
//!
//! 1. it receives what each channel has (`try_recv` until `Empty`);
//! 2. it arms each channel (a ring announces an event-loop waiter, so that
//!    the client signals its eventfd) and receives once more: whatever
//!    arrived before the arming is found now, and whatever arrives after
//!    it is signalled;
//! 3. it polls the descriptors `readiness` names, at most one slice, and
//!    consumes the signal of each ring's eventfd that woke it;
//! 4. after a slice without any readiness it calls `idle` on each channel
//!    (a killed client sends no signal: `idle` finds it dead), then disarms
//!    them all and starts again.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use shmsg::channel::{Interest, Readiness};
use shmsg::shm::signal::Signals;
use shmsg::shm::wait::SLICE;
use shmsg::{Channel, Error, Receiver, Sender};

mod common;

/// Requests each client sends.
const REQUESTS: u64 = 1000;
/// Clients in the self-run.
const CLIENTS: usize = 3;

/// The answer to request `n`.
fn answer(n: u64) -> u64 {
    n * 2
}

/// Serves `clients` clients, then returns how many requests it answered.
fn server(endpoint: &str, clients: usize) -> shmsg::Result<u64> {
    let mut listener = shmsg::listen(endpoint)?;
    eprintln!("server: listening on {}", listener.endpoint());
    let mut channels: Vec<Channel> = Vec::new();
    let (mut accepted, mut answered) = (0, 0);
    let mut buf = Vec::new();
    while accepted < clients || !channels.is_empty() {
        // 1 and 2: receive, arm, receive again (the re-check).
        let mut gone = Vec::new();
        for (i, channel) in channels.iter_mut().enumerate() {
            match serve(channel, &mut buf, &mut answered) {
                Ok(()) => {}
                Err(Error::Disconnected) => gone.push(i),
                Err(e) => return Err(e),
            }
        }
        for i in gone.into_iter().rev() {
            channels.swap_remove(i);
        }
        if accepted < clients {
            match listener.accept_timeout(Duration::ZERO) {
                Ok(channel) => {
                    channels.push(channel);
                    accepted += 1;
                    continue;
                }
                Err(Error::Timeout) => {}
                Err(e) => return Err(e),
            }
        }
        // 3: one poll for the listener and every channel.
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        if accepted < clients
            && let Some(fd) = listener.readiness()?
        {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        let first_channel = fds.len();
        let readiness: Vec<Readiness<'_>> = channels
            .iter()
            .map(|c| Receiver::readiness(c).expect("every endpoint here has a descriptor"))
            .collect();
        for r in &readiness {
            let flags = match r.interest {
                Interest::Readable => PollFlags::IN,
                Interest::Writable => PollFlags::OUT,
            };
            fds.push(PollFd::from_borrowed_fd(r.fd, flags));
        }
        let ready = poll(&mut fds, SLICE)?;
        let woken: Vec<bool> = fds[first_channel..]
            .iter()
            .map(|fd| !fd.revents().is_empty())
            .collect();
        for (r, woken) in readiness.iter().zip(&woken) {
            if *woken && r.signalled {
                Signals::consume(r.fd);
            }
        }
        drop(fds);
        drop(readiness);
        // 4: a slice without readiness: look for dead clients; then disarm.
        for channel in &mut channels {
            if ready == 0 {
                // `Disconnected` here: the next `try_recv` says so, after
                // what the client sent.
                let _ = Receiver::idle(channel);
            }
            Receiver::disarm(channel);
        }
    }
    Ok(answered)
}

/// Answers every request waiting on `channel`, arms it, and answers what
/// the re-check finds, counting them in `answered`.
fn serve(channel: &mut Channel, buf: &mut Vec<u8>, answered: &mut u64) -> shmsg::Result<()> {
    for armed in [false, true] {
        if armed {
            Receiver::arm(channel);
        }
        loop {
            match channel.try_recv(buf) {
                Ok(_) => {
                    let n =
                        u64::from_le_bytes(buf[..8].try_into().map_err(|_| {
                            Error::InvalidConfig("a request is 8 bytes".to_string())
                        })?);
                    // A blocking send: the client's reply ring has room
                    // (it waits for each answer).
                    channel.send(&answer(n).to_le_bytes())?;
                    *answered += 1;
                }
                Err(Error::Empty) => break,
                Err(e) => {
                    Receiver::disarm(channel);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// `poll(2)` on `fds` for at most `timeout`; how many are ready.
fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> shmsg::Result<usize> {
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: timeout.as_nanos() as i64,
    };
    loop {
        match rustix::event::poll(fds, Some(&timeout)) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::Io {
                    context: "poll failed".to_string(),
                    source: e.into(),
                });
            }
        }
    }
}

/// Sends numbered requests and checks each answer.
fn client(endpoint: &str, id: u64) -> shmsg::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut channel = loop {
        match shmsg::connect(endpoint) {
            Ok(channel) => break channel,
            Err(Error::Io { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    };
    let mut buf = Vec::new();
    for i in 0..REQUESTS {
        let n = id * 1_000_000 + i;
        channel.send(&n.to_le_bytes())?;
        channel.recv(&mut buf)?;
        if buf != answer(n).to_le_bytes() {
            return Err(Error::InvalidConfig(format!(
                "client {id}: wrong answer to {n}"
            )));
        }
    }
    Ok(())
}

fn run(args: &[String]) -> common::Outcome {
    match args {
        [role, endpoint] if role == "server" => {
            let answered = server(endpoint, usize::MAX)?;
            println!("answered {answered} requests");
        }
        [role, endpoint, id] if role == "client" => client(endpoint, id.parse()?)?,
        [] => {
            for endpoint in [
                format!("shm:poll-example-{}", std::process::id()),
                format!("unix:@poll-example-{}", std::process::id()),
            ] {
                let start = Instant::now();
                let serving = {
                    let endpoint = endpoint.clone();
                    std::thread::spawn(move || server(&endpoint, CLIENTS))
                };
                let children: Vec<Child> = (0..CLIENTS)
                    .map(|id| {
                        Command::new(std::env::current_exe()?)
                            .args(["client", &endpoint, &id.to_string()])
                            .spawn()
                    })
                    .collect::<Result<_, _>>()?;
                let mut failed = 0;
                for mut child in children {
                    if !child.wait()?.success() {
                        failed += 1;
                    }
                }
                let answered = serving.join().expect("the server panicked")?;
                if failed > 0 || answered != CLIENTS as u64 * REQUESTS {
                    return Err(format!(
                        "{endpoint}: {failed} clients failed, {answered} requests answered"
                    )
                    .into());
                }
                println!(
                    "{endpoint}: one thread, one poll(2), {CLIENTS} client processes, \
                     {answered} requests answered and checked in {:.2} s",
                    start.elapsed().as_secs_f64()
                );
            }
        }
        _ => return Err("usage: poll [server ENDPOINT | client ENDPOINT ID]".into()),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::main(
        "poll",
        "usage: poll [server ENDPOINT | client ENDPOINT ID]\n\
         With no arguments: one thread and poll(2) serve three client processes over shm: and unix:.",
        run,
    )
}
