//! One measurement of `shmsg compare`: a pair of `shmsg peer bench`
//! processes spawned over one transport (for `pipe`, joined by two pipes;
//! otherwise the listening side prints its endpoint and the other connects),
//! waited for with a deadline, and their reports read back.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::bench::{BenchRole, PeerReport};
use super::types::{RunFigures, Settings, Transport, Workload};

/// State shared by the measurements of one comparison.
pub(crate) struct Context {
    pub(crate) settings: Settings,
    pub(crate) exe: PathBuf,
    pub(crate) scratch: PathBuf,
    pub(crate) next: AtomicU64,
    /// Removes the scratch directory when the comparison ends, also by
    /// Ctrl-C, SIGTERM or SIGHUP.
    _remove_scratch: crate::signals::RemoveGuard,
}

impl Context {
    /// The context of a comparison with `settings`, spawning `exe`, its
    /// files in `scratch` (removed when the context is dropped, also by
    /// Ctrl-C, SIGTERM or SIGHUP).
    pub(crate) fn new(settings: Settings, exe: PathBuf, scratch: PathBuf) -> Context {
        Context {
            settings,
            exe,
            _remove_scratch: crate::signals::remove_on_signal(scratch.clone()),
            scratch,
            next: AtomicU64::new(0),
        }
    }
}

/// Per-message kernel figures of a pair: each side's count over its own
/// messages, added; and the pair's CPU time (kernel, total).
fn per_message(a: &PeerReport, b: &PeerReport) -> (Option<Result<f64, String>>, f64, (u64, u64)) {
    let per = |n: u64, m: u64| n as f64 / m.max(1) as f64;
    let syscalls = match (&a.syscalls, &b.syscalls) {
        (Some(Ok(x)), Some(Ok(y))) => Some(Ok(per(*x, a.messages) + per(*y, b.messages))),
        (Some(Err(why)), _) | (_, Some(Err(why))) => Some(Err(why.clone())),
        _ => None,
    };
    let voluntary = per(a.usage.voluntary, a.messages) + per(b.usage.voluntary, b.messages);
    let system = a.usage.system_ns + b.usage.system_ns;
    let total = system + a.usage.user_ns + b.usage.user_ns;
    (syscalls, voluntary, (system, total))
}

/// Spawns and runs one pair for one workload and returns what it measured.
pub(crate) fn measure_pair(
    context: &Context,
    transport: Transport,
    workload: Workload,
    size: usize,
    count_syscalls: bool,
) -> Result<RunFigures, String> {
    let n = context.next.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let (server_role, client_role) = match workload {
        Workload::PingPong => (BenchRole::Echo, BenchRole::Ping),
        Workload::Stream => (BenchRole::Recv, BenchRole::Send),
        Workload::Rate => (BenchRole::RateRecv, BenchRole::RateSend),
    };
    let s = &context.settings;
    let duration = if count_syscalls {
        (s.duration / 2).max(Duration::from_millis(20))
    } else if workload == Workload::Rate {
        s.duration * s.runs as u32
    } else {
        s.duration
    };
    let interval_ns = s.rate.map_or(0, |r| (1e9 / r).round().max(1.0) as u64);
    let file = |side: &str, ext: &str| context.scratch.join(format!("{n}.{side}.{ext}"));
    let command =
        |role: BenchRole, endpoint: &str, listen: bool, cpu: Option<usize>, side: &str| {
            let mut command = Command::new(&context.exe);
            // A peer never outlives this process: killed with SIGKILL when
            // it exits, also by a signal between spawning one peer and the
            // other (a peer of the reference ring or the in-place rings
            // would otherwise wait for its partner forever).
            let parent = std::process::id();
            // SAFETY: the closure runs in the forked child before exec and
            // makes only async-signal-safe system calls (prctl, getppid,
            // _exit), touching no memory but its own stack.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent died before the prctl: no signal will come.
                    if libc::getppid() as u32 != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
            if s.count_syscalls
                && let Ok(id) = crate::measure::sys_enter_id()
            {
                command.env(crate::measure::SYS_ENTER_ID_ENV, id.to_string());
            }
            command
                .args(["peer", "bench", "--role"])
                .arg(match role {
                    BenchRole::Ping => "ping",
                    BenchRole::Echo => "echo",
                    BenchRole::Send => "send",
                    BenchRole::Recv => "recv",
                    BenchRole::RateSend => "rate-send",
                    BenchRole::RateRecv => "rate-recv",
                })
                .args(["--link", transport.link_name()])
                .args(["--interval-ns", &interval_ns.to_string()])
                .args(["--endpoint", endpoint])
                .args(["--size", &size.to_string()])
                .args(["--duration-ms", &duration.as_millis().to_string()])
                .args(["--warmup-ms", &s.warmup.as_millis().to_string()])
                .arg("--report")
                .arg(file(side, "report"));
            if listen {
                command.arg("--listen");
            }
            if let Some(cpu) = cpu {
                command.args(["--cpu", &cpu.to_string()]);
            }
            if count_syscalls {
                command.arg("--count-syscalls");
            }
            // Only the streaming sender batches: ping-pong and the rate
            // roles have one message in flight.
            let batch = transport.batch(size);
            if role == BenchRole::Send && batch > 1 {
                command.args(["--batch", &batch.to_string()]);
            }
            command
        };
    let stderr = |side: &str| -> Result<Stdio, String> {
        std::fs::File::create(file(side, "err"))
            .map(Stdio::from)
            .map_err(|e| format!("cannot create a scratch file: {e}"))
    };
    let cpus = (s.pinned.map(|p| p.0), s.pinned.map(|p| p.1));
    let spawn = |command: &mut Command| {
        command
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", context.exe.display()))
    };
    let (server, client) = if transport == Transport::RefRing {
        // Both processes map the memfd of the two rings, their stdin.
        let memfd = crate::links::ref_ring_memfd(size)?;
        let copy = memfd
            .try_clone()
            .map_err(|e| format!("cannot duplicate the memfd: {e}"))?;
        let server = spawn(
            command(server_role, "-", true, cpus.1, "server")
                .stdin(copy)
                .stdout(Stdio::null())
                .stderr(stderr("server")?),
        )?;
        with_client(server, || {
            spawn(
                command(client_role, "-", false, cpus.0, "client")
                    .stdin(memfd)
                    .stdout(Stdio::null())
                    .stderr(stderr("client")?),
            )
        })?
    } else if transport == Transport::Pipe {
        let (to_server_r, to_server_w) =
            std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let (to_client_r, to_client_w) =
            std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let server = spawn(
            command(server_role, "pipe", false, cpus.1, "server")
                .stdin(to_server_r)
                .stdout(to_client_w)
                .stderr(stderr("server")?),
        )?;
        with_client(server, || {
            spawn(
                command(client_role, "pipe", false, cpus.0, "client")
                    .stdin(to_client_r)
                    .stdout(to_server_w)
                    .stderr(stderr("client")?),
            )
        })?
    } else {
        let endpoint = match transport {
            Transport::Shm | Transport::ShmBatch => format!("shm:compare-{pid}-{n}"),
            Transport::Mpsc => format!("mpsc:compare-{pid}-{n}"),
            Transport::Unix => format!("unix:@shmsg-compare-{pid}-{n}"),
            Transport::Seqpacket => format!("seqpacket:@shmsg-compare-{pid}-{n}"),
            // The rings used in place are handed over a socket file.
            Transport::ShmInPlace | Transport::MpscInPlace => {
                file("server", "sock").display().to_string()
            }
            Transport::Tcp | Transport::Pipe | Transport::RefRing => "tcp:127.0.0.1:0".into(),
        };
        let mut server = spawn(
            command(server_role, &endpoint, true, cpus.1, "server")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(stderr("server")?),
        )?;
        let ready = server.stdout.take().and_then(|out| {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).ok()?;
            line.strip_prefix("ready ").map(|e| e.trim().to_string())
        });
        let Some(actual) = ready else {
            reap(server);
            return Err(format!(
                "the listening peer did not start: {}",
                error_text(&file("server", "err"))
            ));
        };
        with_client(server, || {
            spawn(
                command(client_role, &actual, false, cpus.0, "client")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr("client")?),
            )
        })?
    };
    let deadline = Instant::now() + s.warmup + duration * 4 + Duration::from_secs(30);
    let statuses = wait_both(server, client, deadline)?;
    // A side that failed by itself explains more than one killed after it.
    let mut sides: Vec<_> = ["server", "client"].into_iter().zip(statuses).collect();
    sides.sort_by_key(|(_, status)| status.code().is_none());
    for (side, status) in sides {
        if !status.success() {
            return Err(format!(
                "the {side} peer failed ({status}): {}",
                error_text(&file(side, "err"))
            ));
        }
    }
    let read = |side: &str| -> Result<PeerReport, String> {
        let text = std::fs::read_to_string(file(side, "report"))
            .map_err(|e| format!("the {side} peer wrote no report: {e}"))?;
        PeerReport::parse(&text)
    };
    let (server, client) = (read("server")?, read("client")?);
    for side in ["server", "client"] {
        for ext in ["report", "err", "sock"] {
            let _ = std::fs::remove_file(file(side, ext));
        }
    }
    let (syscalls, voluntary, cpu_ns) = per_message(&client, &server);
    let short = "the window was too short to measure anything (raise --duration)";
    match workload {
        Workload::PingPong => {
            let (p50, p99, p999) = client.quantiles.ok_or(short)?;
            if client.messages == 0 || server.messages == 0 {
                return Err(short.into());
            }
            Ok(RunFigures {
                main: p50 as f64,
                tail: Some((p99 as f64, p999 as f64, client.batch, client.messages)),
                messages: client.messages,
                syscalls,
                voluntary,
                cpu_ns,
                rate: None,
            })
        }
        Workload::Stream => {
            if server.messages == 0 || server.elapsed_ns == 0 || client.messages == 0 {
                return Err(short.into());
            }
            Ok(RunFigures {
                main: server.messages as f64 * 1e9 / server.elapsed_ns as f64,
                tail: None,
                messages: server.messages,
                syscalls,
                voluntary,
                cpu_ns,
                rate: None,
            })
        }
        Workload::Rate => {
            let (Some(rate), true) = (server.rate, server.elapsed_ns > 0) else {
                return Err(short.into());
            };
            Ok(RunFigures {
                main: server.messages as f64 * 1e9 / server.elapsed_ns as f64,
                tail: None,
                messages: server.messages,
                syscalls: None,
                voluntary,
                cpu_ns,
                rate: Some(rate),
            })
        }
    }
}

/// The first lines of a peer's stderr, for an error message.
fn error_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text: String = text.lines().take(3).collect::<Vec<_>>().join(" / ");
    if text.is_empty() {
        "(it printed nothing)".into()
    } else {
        text
    }
}

/// The pair of `server`, started, and the client `start` starts; if the
/// client cannot be started (its error file included), the server is
/// killed, not left waiting for it.
fn with_client(
    server: Child,
    start: impl FnOnce() -> Result<Child, String>,
) -> Result<(Child, Child), String> {
    match start() {
        Ok(client) => Ok((server, client)),
        Err(why) => {
            reap(server);
            Err(why)
        }
    }
}

fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for both peers until `deadline`, and kills both if it passes. If
/// one fails, the other (which may wait for it forever) gets two seconds.
fn wait_both(
    mut a: Child,
    mut b: Child,
    deadline: Instant,
) -> Result<[std::process::ExitStatus; 2], String> {
    let mut done = [None, None];
    let mut failed_at: Option<Instant> = None;
    loop {
        for (slot, child) in done.iter_mut().zip([&mut a, &mut b]) {
            if slot.is_none() {
                *slot = child
                    .try_wait()
                    .map_err(|e| format!("cannot wait for a peer: {e}"))?;
            }
        }
        if let [Some(x), Some(y)] = done {
            return Ok([x, y]);
        }
        if failed_at.is_none() && done.iter().flatten().any(|s| !s.success()) {
            failed_at = Some(Instant::now());
        }
        let grace_over = failed_at.is_some_and(|at| at.elapsed() > Duration::from_secs(2));
        if grace_over || Instant::now() >= deadline {
            for child in [&mut a, &mut b] {
                let _ = child.kill();
            }
            return match [a.wait(), b.wait()] {
                [Ok(x), Ok(y)] if grace_over => Ok([x, y]),
                _ => Err("the peers did not finish in time and were killed".into()),
            };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
