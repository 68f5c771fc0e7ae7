//! Shared-memory endpoints as connections, between real processes: one
//! `shm:` listener serving 8 client processes at once, a listener killed
//! mid-stream, and peer credentials checked against another user.
//!
//! This file has its own `main` (`harness = false`): the children are this
//! executable with `SHMSG_RDV_ROLE` set. `SHMSG_RDV_MESSAGES` sets the
//! messages per client and direction (default 100 000); an argument runs
//! only the cases whose names contain it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use shmsg::channel::{Receiver, Sender};
use shmsg::{Allow, Error, Options};

mod common;
use common::Case;

/// How long any one wait may take before the case fails: far beyond what
/// a loaded machine needs, only there so that a bug cannot hang the run.
const PATIENCE: Duration = Duration::from_secs(120);
/// The user the credential cases run a peer as.
const NOBODY: u32 = 65534;

fn count() -> u64 {
    common::env_u64("SHMSG_RDV_MESSAGES", 100_000)
}

fn unique(tag: &str) -> String {
    common::unique("rdv", tag)
}

/// Message `seq` of client `id`: the id, the sequence number, then 0 to 83
/// bytes of a pattern of both. A reply is the message with every byte
/// after the first nine inverted.
fn message(id: u8, seq: u64, out: &mut Vec<u8>) {
    common::tagged_message(id, seq, 9, out);
}

fn reply_to(message: &mut [u8]) {
    for byte in &mut message[9..] {
        *byte = !*byte;
    }
}

// ---------------------------------------------------------------- children

/// A client: sends its messages from one thread and checks the replies in
/// another, so that both directions are busy at once.
fn client(endpoint: &str, id: u8) -> Result<String, String> {
    let channel = shmsg::connect(endpoint).map_err(|e| format!("connect: {e}"))?;
    let peer = channel.peer().ok_or("a shm: channel knows its peer")?;
    let (mut tx, mut rx) = channel.split();
    let n = count();
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let mut m = Vec::new();
        for seq in 0..n {
            message(id, seq, &mut m);
            tx.send_timeout(&m, PATIENCE)
                .map_err(|e| format!("send {seq}: {e}"))?;
        }
        Ok(())
    });
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for seq in 0..n {
        rx.recv_timeout(&mut got, PATIENCE)
            .map_err(|e| format!("reply {seq}: {e}"))?;
        message(id, seq, &mut want);
        reply_to(&mut want);
        if got != want {
            return Err(format!("reply {seq} is wrong: {got:?}"));
        }
    }
    sender.join().map_err(|_| "the sender panicked")??;
    Ok(format!("listener {peer}"))
}

/// A listener that says `ready` on stdout, then echoes one client forever.
fn echo_listener(endpoint: &str) -> Result<String, String> {
    let mut listener = shmsg::listen(endpoint).map_err(|e| format!("listen: {e}"))?;
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut channel = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = Vec::new();
    loop {
        channel.recv(&mut buf).map_err(|e| format!("recv: {e}"))?;
        channel.send(&buf).map_err(|e| format!("send: {e}"))?;
    }
}

/// A peer (run as another user): connects, and says on stdout what came
/// of it: `refused`, or `ok` and the reply to one message.
fn probe(endpoint: &str, trust: Option<u32>) -> Result<String, String> {
    let options = Options {
        timeout: PATIENCE,
        allow: match trust {
            Some(uid) => Allow::Listed {
                uids: vec![uid],
                gids: vec![],
            },
            None => Allow::SameUser,
        },
        ..Options::default()
    };
    match shmsg::connect_with(endpoint, &options) {
        Err(Error::PeerRefused(who)) if who.uid == rustix::process::geteuid().as_raw() => {
            Ok("refused".into())
        }
        Err(Error::ListenerNotAllowed(listener)) => Ok(format!("distrusts uid {}", listener.uid)),
        Err(e) => Err(format!("connect: {e}")),
        Ok(mut channel) => {
            channel
                .send_timeout(b"from another user", PATIENCE)
                .map_err(|e| format!("send: {e}"))?;
            let mut buf = Vec::new();
            channel
                .recv_timeout(&mut buf, PATIENCE)
                .map_err(|e| format!("recv: {e}"))?;
            Ok(format!("ok {}", String::from_utf8_lossy(&buf)))
        }
    }
}

fn child_main(role: &str) -> ExitCode {
    let endpoint = std::env::var("SHMSG_ENDPOINT").expect("SHMSG_ENDPOINT");
    let result = match role {
        "client" => client(
            &endpoint,
            std::env::var("SHMSG_ID").unwrap().parse().unwrap(),
        ),
        "listener" => echo_listener(&endpoint),
        "probe" => probe(
            &endpoint,
            std::env::var("SHMSG_TRUST_UID")
                .ok()
                .map(|uid| uid.parse().unwrap()),
        ),
        other => Err(format!("unknown role {other}")),
    };
    match result {
        Ok(what) => {
            println!("{what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{role}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A child process that is killed and reaped if a case returns early.
struct Kid(Option<Child>);

impl Kid {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not finished")
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(exe: &std::path::Path, role: &str, endpoint: &str, id: u8) -> Kid {
    Kid(Some(
        Command::new(exe)
            .env("SHMSG_RDV_ROLE", role)
            .env("SHMSG_ENDPOINT", endpoint)
            .env("SHMSG_ID", id.to_string())
            .env("SHMSG_RDV_MESSAGES", count().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child"),
    ))
}

fn finish(mut kid: Kid, what: &str) -> Result<String, String> {
    let child = kid.0.take().expect("not finished");
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{what} failed ({}): {stdout}", output.status))
    }
}

fn this_exe() -> PathBuf {
    std::env::current_exe().expect("the test executable")
}

// ------------------------------------------------------------------- cases

/// One listener, 8 client processes at once, each with its own pair of
/// rings: every message checked whole and in order, both directions.
fn eight_clients() -> Result<String, String> {
    let endpoint = format!("shm:{}", unique("eight"));
    let mut listener = shmsg::listen(&endpoint).map_err(|e| e.to_string())?;
    let clients: Vec<Kid> = (0..8)
        .map(|id| spawn(&this_exe(), "client", &endpoint, id))
        .collect();
    let mut servers = Vec::new();
    let mut pids = Vec::new();
    for _ in 0..8 {
        let channel = listener
            .accept_timeout(PATIENCE)
            .map_err(|e| format!("accept: {e}"))?;
        pids.push(
            channel
                .peer()
                .and_then(|peer| peer.pid)
                .ok_or("no peer pid")?,
        );
        servers.push(std::thread::spawn(move || -> Result<u8, String> {
            let mut channel = channel;
            let mut buf = Vec::new();
            let mut id = None;
            for seq in 0..count() {
                channel
                    .recv_timeout(&mut buf, PATIENCE)
                    .map_err(|e| format!("recv {seq}: {e}"))?;
                let from = buf[0];
                let got_seq = u64::from_le_bytes(buf[1..9].try_into().unwrap());
                if *id.get_or_insert(from) != from || got_seq != seq {
                    return Err(format!("message {seq} is from {from}, seq {got_seq}"));
                }
                reply_to(&mut buf);
                channel
                    .send_timeout(&buf, PATIENCE)
                    .map_err(|e| format!("reply {seq}: {e}"))?;
            }
            Ok(id.unwrap_or(u8::MAX))
        }));
    }
    let mut ids = Vec::new();
    for server in servers {
        ids.push(server.join().map_err(|_| "a server thread panicked")??);
    }
    for (i, client) in clients.into_iter().enumerate() {
        finish(client, &format!("client {i}"))?;
    }
    ids.sort_unstable();
    if ids != (0..8).collect::<Vec<u8>>() {
        return Err(format!("the channels served clients {ids:?}"));
    }
    pids.sort_unstable();
    pids.dedup();
    if pids.len() != 8 {
        return Err(format!("peer pids {pids:?} are not 8 processes"));
    }
    Ok(format!("8 clients x {} messages each way", count()))
}

/// Files under /dev/shm whose name contains `tag`.
fn shm_files(tag: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(tag))
                .collect()
        })
        .unwrap_or_default()
}

/// A listener killed with SIGKILL in the middle of a stream: its client
/// gets `Disconnected` both ways, nothing is left in /dev/shm, and the
/// name can be listened on again at once.
fn killed_listener() -> Result<String, String> {
    let name = unique("killed");
    let endpoint = format!("shm:{name}");
    let mut listener = spawn(&this_exe(), "listener", &endpoint, 0);
    let mut ready = String::new();
    BufReader::new(listener.child().stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .map_err(|e| e.to_string())?;
    if ready.trim() != "ready" {
        return Err(format!("the listener said {ready:?}"));
    }
    let mut channel = shmsg::connect(&endpoint).map_err(|e| format!("connect: {e}"))?;
    let mut buf = Vec::new();
    for i in 0..1000u32 {
        channel
            .send_timeout(&i.to_le_bytes(), PATIENCE)
            .map_err(|e| format!("send {i}: {e}"))?;
        channel
            .recv_timeout(&mut buf, PATIENCE)
            .map_err(|e| format!("echo {i}: {e}"))?;
    }
    listener.child().kill().map_err(|e| e.to_string())?;
    listener.child().wait().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let sent = loop {
        match channel.send_timeout(b"after the kill", PATIENCE) {
            Ok(()) if started.elapsed() < PATIENCE => {}
            Ok(()) => return Err("sends still succeed long after the kill".into()),
            Err(Error::Disconnected) => break "send: Disconnected",
            Err(e) => return Err(format!("send after the kill: {e}")),
        }
    };
    match channel.recv_timeout(&mut buf, PATIENCE) {
        Err(Error::Disconnected) => {}
        other => return Err(format!("recv after the kill: {other:?}")),
    }
    let left = shm_files(&name);
    if !left.is_empty() {
        return Err(format!("left in /dev/shm: {left:?}"));
    }
    shmsg::listen(&endpoint).map_err(|e| format!("listen again: {e}"))?;
    Ok(format!("{sent}, recv: Disconnected, nothing in /dev/shm"))
}

/// This test executable, where another user can run it.
struct Copy(PathBuf);

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

fn copy_for_others() -> Result<Copy, String> {
    let dir = std::env::temp_dir().join(unique("exe"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let exe = dir.join("rendezvous");
    std::fs::copy(this_exe(), &exe).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(Copy(exe))
}

/// Runs a probe as user and group `NOBODY` against `endpoint`, trusting a
/// listener of this process's user if `trust`.
fn probe_as_nobody(exe: &std::path::Path, endpoint: &str, trust: bool) -> Kid {
    let mut command = Command::new("setpriv");
    if trust {
        command.env(
            "SHMSG_TRUST_UID",
            rustix::process::geteuid().as_raw().to_string(),
        );
    }
    command
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(exe)
        .env("SHMSG_RDV_ROLE", "probe")
        .env("SHMSG_ENDPOINT", endpoint)
        .stdout(Stdio::piped());
    Kid(Some(command.spawn().expect("spawn setpriv")))
}

/// A peer of another user is refused by default on every Unix-socket
/// endpoint, on both sides, and let in when the listener allows its uid;
/// `Channel::peer` names it. A client distrusts a listener of another user
/// unless it allows that uid.
fn other_user() -> Result<String, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok("skipped: needs root to run a peer as another user".into());
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return Ok("skipped: setpriv is not installed".into());
    }
    let exe = copy_for_others()?;
    let mut seen = Vec::new();
    for scheme in ["unix:@", "seqpacket:@", "shm:", "mpsc:"] {
        let endpoint = format!("{scheme}{}", unique("cred"));
        {
            let mut listener = shmsg::listen(&endpoint).map_err(|e| e.to_string())?;
            // A probe that does not trust this user leaves before its hello.
            let said = finish(
                probe_as_nobody(&exe.0, &endpoint, false),
                &format!("the distrusting probe of {endpoint}"),
            )?;
            let me = rustix::process::geteuid().as_raw();
            if said != format!("distrusts uid {me}") {
                return Err(format!("{endpoint}: the distrusting probe said {said:?}"));
            }
            match listener.accept_timeout(PATIENCE) {
                Err(Error::PeerRefused(who)) if who.uid == NOBODY => {}
                other => return Err(format!("{endpoint}: the listener got {other:?}")),
            }
            let probe = probe_as_nobody(&exe.0, &endpoint, true);
            match listener.accept_timeout(PATIENCE) {
                Err(Error::PeerRefused(who)) if who.uid == NOBODY => {}
                other => return Err(format!("{endpoint}: the listener got {other:?}")),
            }
            let said = finish(probe, &format!("the probe of {endpoint}"))?;
            if said != "refused" {
                return Err(format!("{endpoint}: the refused probe said {said:?}"));
            }
        }
        let options = Options {
            allow: Allow::Listed {
                uids: vec![NOBODY],
                gids: vec![],
            },
            ..Options::default()
        };
        let mut listener = shmsg::listen_with(&endpoint, &options).map_err(|e| e.to_string())?;
        let probe = probe_as_nobody(&exe.0, &endpoint, true);
        let mut channel = listener
            .accept_timeout(PATIENCE)
            .map_err(|e| format!("{endpoint}: accept: {e}"))?;
        match channel.peer() {
            Some(who) if who.uid == NOBODY && who.gid == NOBODY => {}
            other => return Err(format!("{endpoint}: peer() is {other:?}")),
        }
        let mut buf = Vec::new();
        channel
            .recv_timeout(&mut buf, PATIENCE)
            .map_err(|e| format!("{endpoint}: recv: {e}"))?;
        channel
            .send_timeout(b"welcome", PATIENCE)
            .map_err(|e| format!("{endpoint}: send: {e}"))?;
        let said = finish(probe, &format!("the allowed probe of {endpoint}"))?;
        if said != "ok welcome" || buf != b"from another user" {
            return Err(format!("{endpoint}: the allowed probe said {said:?}"));
        }
        seen.push(scheme.trim_end_matches([':', '@']));
    }
    Ok(format!(
        "distrusted, refused, then allowed: {}",
        seen.join(", ")
    ))
}

const CASES: &[Case] = &[
    ("eight_clients", eight_clients),
    ("killed_listener", killed_listener),
    ("other_user", other_user),
];

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("SHMSG_RDV_ROLE") {
        return child_main(&role);
    }
    common::run_cases(CASES, |what| what)
}
