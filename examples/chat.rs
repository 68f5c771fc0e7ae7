//! A chat between several processes over shared memory, Unix sockets or
//! TCP: a server relays every line a client sends to all the other clients.
//!
//! ```text
//! cargo run --example chat -- server shm:chat            # terminal 1
//! cargo run --example chat -- client shm:chat alice      # terminal 2: type lines
//! cargo run --example chat -- client shm:chat bob        # terminal 3
//! ```
//!
//! `unix:@chat` works the same through the kernel; `tcp:0.0.0.0:7000` on
//! the server and `tcp:HOST:7000` on the clients chat between machines (TCP
//! checks no credentials: anyone who reaches the port can join). With no
//! arguments the example runs a server and three scripted clients as
//! separate processes, over `shm:` and then over `unix:@`, and checks that
//! each client heard the other two.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use shmsg::{Receiver, Sender};

mod common;

type Clients = Arc<Mutex<Vec<(usize, Box<dyn Sender + Send>)>>>;

/// Accepts clients (the first `wait_for` before relaying anything) and
/// relays each message to every other client.
fn server(endpoint: &str, wait_for: usize) -> shmsg::Result<()> {
    let mut listener = shmsg::listen(endpoint)?;
    eprintln!("chat server on {}", listener.endpoint());
    let clients: Clients = Arc::default();
    let mut pending = Vec::new();
    let mut id = 0;
    loop {
        let (tx, rx) = listener.accept()?.split();
        clients.lock().unwrap().push((id, tx));
        pending.push((id, rx));
        id += 1;
        if id >= wait_for {
            // Start relaying for everyone accepted so far, then for each new
            // client as it comes.
            let relays: Vec<_> = pending
                .drain(..)
                .map(|(id, rx)| {
                    let clients = Arc::clone(&clients);
                    std::thread::spawn(move || relay(id, rx, &clients))
                })
                .collect();
            if wait_for > 0 {
                // Scripted run: serve these clients, then stop.
                for relay in relays {
                    let _ = relay.join();
                }
                return Ok(());
            }
        }
    }
}

fn relay(id: usize, mut rx: Box<dyn Receiver + Send>, clients: &Clients) {
    let mut line = Vec::new();
    while rx.recv(&mut line).is_ok() {
        let mut clients = clients.lock().unwrap();
        // A client that left is dropped from the list.
        clients.retain_mut(|(other, tx)| *other == id || tx.send(&line).is_ok());
    }
    clients.lock().unwrap().retain(|(other, _)| *other != id);
}

/// Sends stdin's lines as `NAME: line` and prints what the others say.
fn client(endpoint: &str, name: &str) -> shmsg::Result<()> {
    let (mut tx, mut rx) = shmsg::connect(endpoint)?.split();
    std::thread::spawn(move || {
        let mut message = Vec::new();
        while rx.recv(&mut message).is_ok() {
            println!("{}", String::from_utf8_lossy(&message));
        }
    });
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| shmsg::Error::Io {
            context: "cannot read stdin".into(),
            source: e,
        })?;
        tx.send(format!("{name}: {line}").as_bytes())?;
    }
    Ok(())
}

/// A scripted client: says hello, then waits to hear `others` hellos.
fn scripted(endpoint: &str, name: &str, others: usize) -> shmsg::Result<()> {
    // The server may still be starting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut channel = loop {
        match shmsg::connect(endpoint) {
            Ok(channel) => break channel,
            // Nothing listens there yet; other errors do not pass by waiting.
            Err(shmsg::Error::Io { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(error) => return Err(error),
        }
    };
    channel.send(format!("{name}: hello").as_bytes())?;
    let mut heard = Vec::new();
    let mut message = Vec::new();
    while heard.len() < others {
        channel.recv_timeout(&mut message, std::time::Duration::from_secs(10))?;
        heard.push(String::from_utf8_lossy(&message).into_owned());
    }
    eprintln!("{name} heard {heard:?}");
    Ok(())
}

const USAGE: &str = "usage: chat [server ENDPOINT | client ENDPOINT NAME]\n(no arguments: a server and three scripted clients over shm: and unix:@)";

fn main() -> std::process::ExitCode {
    common::main("chat", USAGE, run)
}

fn run(args: &[String]) -> common::Outcome {
    match args {
        [role, endpoint] if role == "server" => server(endpoint, 0)?,
        [role, endpoint, name] if role == "client" => client(endpoint, name)?,
        [role, endpoint, name] if role == "scripted" => scripted(endpoint, name, 2)?,
        [role, endpoint, n] if role == "scripted-server" => server(endpoint, n.parse()?)?,
        [] => {
            for scheme in ["shm:", "unix:@"] {
                scripted_chat(&format!("{scheme}example-chat-{}", std::process::id()))?;
            }
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

/// A server and three scripted clients, each its own process.
fn scripted_chat(endpoint: &str) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .args(["scripted-server", endpoint, "3"])
        .spawn()?;
    let clients: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| {
            Command::new(&exe)
                .args(["scripted", endpoint, name])
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut client in clients {
        if !client.wait()?.success() {
            return Err(format!("a chat client over {endpoint} failed").into());
        }
    }
    if !server.wait()?.success() {
        return Err(format!("the chat server over {endpoint} failed").into());
    }
    eprintln!("chat over {endpoint}: every client heard the others");
    Ok(())
}
