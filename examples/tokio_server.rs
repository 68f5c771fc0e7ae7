//! One tokio runtime serves 100 client processes at once, over shared
//! memory (`shm:`) and over a Unix socket (`unix:`), with one task per
//! connection and no thread per connection (feature `tokio`).
//!
//! ```text
//! cargo run --features tokio --example tokio_server -- server shm:orders   # terminal 1
//! cargo run --features tokio --example tokio_server -- client shm:orders 7 # terminal 2
//! ```
//!
//! With no arguments it runs both sides itself over `shm:` and `unix:`: it
//! spawns 100 client processes, each sends 200 numbered messages and checks
//! every reply, then all 100 stay connected and idle while the server
//! measures the CPU time it uses (its tasks wait in `epoll_wait`), and
//! finally the server says goodbye to each.

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shmsg::Options;
use shmsg::tokio::AsyncChannel;
use tokio::sync::Notify;

mod common;

/// Clients in the self-run (`SHMSG_EXAMPLE_CLIENTS` overrides it).
fn clients() -> usize {
    std::env::var("SHMSG_EXAMPLE_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}
/// Messages each client sends.
const MESSAGES: u64 = 200;
/// The server's last message to each client.
const BYE: &[u8] = b"bye";

/// Message `seq` of client `id`: its number, then a body of varying length
/// that depends on both.
fn message(id: u64, seq: u64) -> Vec<u8> {
    let mut bytes = id.to_le_bytes().to_vec();
    bytes.extend_from_slice(&seq.to_le_bytes());
    let len = (id * 7 + seq * 13) % 300;
    bytes.extend((0..len).map(|i| (i ^ id ^ seq) as u8));
    bytes
}

/// The reply to a request: the request with its bytes reversed.
fn reply_to(request: &[u8]) -> Vec<u8> {
    request.iter().rev().copied().collect()
}

/// Small rings: 100 connections, two rings each.
fn options() -> Options {
    Options {
        capacity: Some(1 << 16),
        ..Options::default()
    }
}

/// Serves one connection: replies to each of its requests, counts itself
/// in `finished`, waits in `recv` until `bye`, then says goodbye.
async fn serve(mut channel: AsyncChannel, finished: Arc<AtomicUsize>, bye: Arc<Notify>) {
    let mut request = Vec::new();
    for _ in 0..MESSAGES {
        if let Err(error) = channel.recv(&mut request).await {
            eprintln!("server: a client failed: {error}");
            return;
        }
        if let Err(error) = channel.send(&reply_to(&request)).await {
            eprintln!("server: a client failed: {error}");
            return;
        }
    }
    // Idle until the goodbye: waiting in `recv`, as a server waits for a
    // client's next request (the cost of idle connections measured here).
    let notified = bye.notified();
    finished.fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        got = channel.recv(&mut request) => {
            eprintln!("server: a client sent more than its messages or left: {got:?}");
            return;
        }
        () = notified => {}
    }
    let _ = channel.send(BYE).await;
    // The client leaves after the goodbye.
    let _ = channel.recv(&mut request).await;
}

/// Accepts `clients` connections and serves each in its own task; once all
/// of them finished their messages, measures the process's CPU time over
/// one second of idle connections, then lets them go.
async fn server(endpoint: &str, clients: usize) -> shmsg::Result<String> {
    let mut listener = shmsg::tokio::listen_with(endpoint, &options())?;
    eprintln!("server: listening on {}", listener.endpoint());
    let finished = Arc::new(AtomicUsize::new(0));
    let bye = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let channel = listener.accept().await?;
        tasks.push(tokio::spawn(serve(
            channel,
            Arc::clone(&finished),
            Arc::clone(&bye),
        )));
    }
    while finished.load(Ordering::SeqCst) < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (cpu_before, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_cpu = cpu_time() - cpu_before;
    let idle = format!(
        "{clients} idle connections: {:.1} ms of CPU in {:.2} s",
        idle_cpu.as_secs_f64() * 1e3,
        wall.elapsed().as_secs_f64()
    );
    bye.notify_waiters();
    for task in tasks {
        task.await.expect("a serving task panicked");
    }
    Ok(idle)
}

/// This process's user and system CPU time.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed value we own;
    // all-zero bytes are a valid `rusage`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A client: sends its messages, checks every reply, then waits for the
/// server's goodbye.
async fn client(endpoint: &str, id: u64) -> shmsg::Result<()> {
    // The server may still be starting.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut channel = loop {
        match shmsg::tokio::connect_with(endpoint, &options()).await {
            Ok(channel) => break channel,
            Err(shmsg::Error::Io { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => return Err(error),
        }
    };
    let mut reply = Vec::new();
    for seq in 0..MESSAGES {
        let request = message(id, seq);
        channel.send(&request).await?;
        channel.recv(&mut reply).await?;
        if reply != reply_to(&request) {
            return Err(shmsg::Error::InvalidConfig(format!(
                "client {id}: wrong reply to message {seq}"
            )));
        }
    }
    channel.recv(&mut reply).await?;
    if reply != BYE {
        return Err(shmsg::Error::InvalidConfig(format!(
            "client {id}: expected the goodbye"
        )));
    }
    Ok(())
}

fn run(args: &[String]) -> common::Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args {
        [role, endpoint] if role == "server" => {
            let idle = runtime.block_on(server(endpoint, clients()))?;
            println!("{idle}");
        }
        [role, endpoint, id] if role == "client" => {
            runtime.block_on(client(endpoint, id.parse()?))?;
        }
        [] => {
            for endpoint in [
                format!("shm:tokio-example-{}", std::process::id()),
                format!("unix:@tokio-example-{}", std::process::id()),
            ] {
                let clients = clients();
                let start = Instant::now();
                let serving = {
                    let endpoint = endpoint.clone();
                    std::thread::spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())?
                            .block_on(server(&endpoint, clients))
                            .map_err(|e| e.to_string())
                    })
                };
                let children: Vec<Child> = (0..clients)
                    .map(|id| spawn_client(&endpoint, id))
                    .collect::<Result<_, _>>()?;
                let mut failed = 0;
                for mut child in children {
                    if !child.wait()?.success() {
                        failed += 1;
                    }
                }
                let idle = serving.join().expect("the server thread panicked")?;
                if failed > 0 {
                    return Err(format!("{endpoint}: {failed} clients failed").into());
                }
                println!(
                    "{endpoint}: {clients} client processes x {MESSAGES} messages, every reply \
                     checked, in {:.2} s; {idle}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
        _ => return Err("usage: tokio_server [server ENDPOINT | client ENDPOINT ID]".into()),
    }
    Ok(())
}

/// Starts client `id` as a child process (retrying its connect while the
/// server starts).
fn spawn_client(endpoint: &str, id: usize) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["client", endpoint, &id.to_string()])
        .spawn()
}

fn main() -> std::process::ExitCode {
    common::main(
        "tokio_server",
        "usage: tokio_server [server ENDPOINT | client ENDPOINT ID]\n\
         With no arguments: one runtime serves 100 client processes over shm: and unix:.",
        run,
    )
}
