//! A client process sends data to a server process, which modifies it and
//! sends it back: request and response over one duplex channel, in either
//! model, chosen by the endpoint string alone.
//!
//! ```text
//! cargo run --example request_response -- server shm:upper      # terminal 1
//! cargo run --example request_response -- client shm:upper      # terminal 2
//! ```
//!
//! Any endpoint works the same way: `unix:@upper`, `unix:/tmp/upper.sock`,
//! `seqpacket:@upper`, `tcp:127.0.0.1:7000`. With no arguments the example
//! runs both sides itself (the server in a child process) over every
//! endpoint kind and checks the answers.

use std::process::Command;
use std::time::{Duration, Instant};

use shmsg::{Receiver, Sender};

mod common;

/// Serves one client: uppercases each request and sends it back, until the
/// client leaves.
fn server(endpoint: &str) -> shmsg::Result<()> {
    let mut listener = shmsg::listen(endpoint)?;
    eprintln!("server: listening on {}", listener.endpoint());
    let mut channel = listener.accept()?;
    let mut request = Vec::new();
    let mut served = 0;
    loop {
        match channel.recv(&mut request) {
            Ok(_) => {
                request.make_ascii_uppercase();
                channel.send(&request)?;
                served += 1;
            }
            Err(shmsg::Error::Disconnected) => break,
            Err(other) => return Err(other),
        }
    }
    eprintln!("server: served {served} requests");
    Ok(())
}

/// Sends requests and checks each response.
fn client(endpoint: &str) -> shmsg::Result<()> {
    // The server may still be starting.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut channel = loop {
        match shmsg::connect(endpoint) {
            Ok(channel) => break channel,
            // Nothing listens there yet; other errors do not pass by waiting.
            Err(shmsg::Error::Io { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(error) => return Err(error),
        }
    };
    let mut response = Vec::new();
    let start = Instant::now();
    for i in 0..10_000 {
        let request = format!("request number {i}");
        channel.send(request.as_bytes())?;
        channel.recv(&mut response)?;
        assert_eq!(response, request.to_ascii_uppercase().as_bytes());
    }
    eprintln!(
        "client: 10000 round trips over {endpoint} in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

const USAGE: &str = "usage: request_response [server ENDPOINT | client ENDPOINT]\n(no arguments: a server and a client over shm:, unix:@, seqpacket:@ and tcp:)";

fn main() -> std::process::ExitCode {
    common::main("request_response", USAGE, run)
}

fn run(args: &[String]) -> common::Outcome {
    match args {
        [role, endpoint] if role == "server" => server(endpoint)?,
        [role, endpoint] if role == "client" => client(endpoint)?,
        [] => {
            let id = std::process::id();
            for endpoint in [
                format!("shm:example-upper-{id}"),
                format!("unix:@example-upper-{id}"),
                format!("seqpacket:@example-upper-{id}"),
                "tcp:127.0.0.1:47311".to_owned(),
            ] {
                let mut child = Command::new(std::env::current_exe()?)
                    .args(["server", &endpoint])
                    .spawn()?;
                client(&endpoint)?;
                if !child.wait()?.success() {
                    return Err(format!("the server on {endpoint} failed").into());
                }
            }
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
