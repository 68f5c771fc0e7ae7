//! What `shmsg compare` measures with, besides the channels themselves: the
//! clock's own cost, the kernel's counters (system calls through a perf
//! tracepoint counter, context switches and CPU time through `getrusage`),
//! the physical references (one cache line bouncing between two cores, a
//! single-core `memcpy`), and the machine's description. CPU pinning,
//! statistics and the cache line itself come from `shmsg-bench-support`,
//! shared with the benchmarks.
//!
//! Nothing here guesses: a counter the kernel does not give is reported as
//! not measured, with the reason.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use shmsg_bench_support::cpu::pin;
use shmsg_bench_support::reference;
use shmsg_bench_support::stats::median;

/// CPU time and context switches of this process so far (`getrusage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Time spent running in user space, in nanoseconds.
    pub user_ns: u64,
    /// Time spent in the kernel on this process's behalf, in nanoseconds.
    pub system_ns: u64,
    /// Voluntary context switches: the process blocked (waited in the kernel).
    pub voluntary: u64,
    /// Involuntary context switches: the scheduler took the CPU away.
    pub involuntary: u64,
}

impl Usage {
    /// This process's usage now.
    pub fn now() -> Usage {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` points to writable memory of the size and alignment
        // of `rusage`, which is all `getrusage` writes to.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        if rc != 0 {
            // RUSAGE_SELF with a valid pointer cannot fail; report zeros if it does.
            return Usage::default();
        }
        // SAFETY: all-zero bytes are a valid `rusage` (plain integers), and
        // `getrusage` succeeded, so it is fully written anyway.
        let usage = unsafe { usage.assume_init() };
        let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
        Usage {
            user_ns: ns(usage.ru_utime),
            system_ns: ns(usage.ru_stime),
            voluntary: usage.ru_nvcsw as u64,
            involuntary: usage.ru_nivcsw as u64,
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user_ns: self.user_ns.saturating_sub(earlier.user_ns),
            system_ns: self.system_ns.saturating_sub(earlier.system_ns),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}

/// Where tracefs keeps the id of the `raw_syscalls:sys_enter` tracepoint.
const SYS_ENTER_ID: [&str; 2] = [
    "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
    "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
];

/// The environment variable through which `compare` hands the tracepoint id
/// it found to the peers it spawns, so that they need not look again.
pub const SYS_ENTER_ID_ENV: &str = "SHMSG_SYS_ENTER_ID";

/// The id of the tracepoint `raw_syscalls:sys_enter`, found once per
/// process: from [`SYS_ENTER_ID_ENV`], else from tracefs where it is
/// mounted, else (as root, where tracefs is not mounted: a fresh machine)
/// from a forked child that mounts tracefs in a mount namespace of its own
/// ([`read_sys_enter_id_privately`]): nothing is mounted outside that
/// child, which exits at once. Otherwise the reason, with the command that
/// makes it work.
pub fn sys_enter_id() -> Result<u64, String> {
    static ID: std::sync::OnceLock<Result<u64, String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        if let Ok(id) = std::env::var(SYS_ENTER_ID_ENV) {
            return parse_id(&id);
        }
        if let Some(id) = read_sys_enter_id() {
            return parse_id(&id);
        }
        if !rustix::process::geteuid().is_root() {
            return Err(
                "tracefs is not mounted, and only root can mount it: run compare as \
                 root, or mount it once with `sudo mount -t tracefs nodev /sys/kernel/tracing` \
                 and lower /proc/sys/kernel/perf_event_paranoid to -1"
                    .into(),
            );
        }
        read_sys_enter_id_privately()
    })
    .clone()
}

/// The tracepoint id as tracefs shows it to this process, if it does.
fn read_sys_enter_id() -> Option<String> {
    SYS_ENTER_ID
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
}

fn parse_id(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("tracepoint id {:?} is not a number", text.trim()))
}

/// Reads the tracepoint id in a child process with a mount namespace of its
/// own, where tracefs is mounted on `/sys/kernel/tracing` (mounts made
/// private first, so that nothing propagates back). The child makes raw
/// system calls only and writes the id, or `!` and the errno of the step
/// that failed, into a pipe.
fn read_sys_enter_id_privately() -> Result<u64, String> {
    const STEPS: [&str; 5] = [
        "unshare(CLONE_NEWNS)",
        "making the mounts private",
        "mounting tracefs",
        "opening the tracepoint id",
        "reading the tracepoint id",
    ];
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("cannot make a pipe to read the tracepoint id: {e}"))?;
    // SAFETY: between `fork` and `_exit` the child makes only raw system
    // calls (async-signal-safe) on constant C strings, a stack buffer and a
    // descriptor it owns: nothing that the fork of a multi-threaded process
    // makes unsafe. The parent only waits for it.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!(
            "cannot fork to mount tracefs privately: {}",
            std::io::Error::last_os_error()
        ));
    }
    if pid == 0 {
        // SAFETY: see above; every call's pointers are valid for the call.
        unsafe { sys_enter_id_child(std::os::fd::AsRawFd::as_raw_fd(&writer)) }
    }
    drop(writer);
    let mut text = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::fs::File::from(reader), &mut text);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid `int`.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    read.map_err(|e| format!("cannot read the tracepoint id from the child: {e}"))?;
    match text.as_slice() {
        [b'!', step, errno @ ..] if errno.len() == 4 => {
            let errno = i32::from_ne_bytes(errno.try_into().expect("four bytes"));
            let step = STEPS.get(usize::from(*step)).unwrap_or(&"a step");
            Err(format!(
                "cannot mount tracefs in a private mount namespace (as root): {step}: {}",
                std::io::Error::from_raw_os_error(errno)
            ))
        }
        _ => parse_id(&String::from_utf8_lossy(&text)),
    }
}

/// The child of [`read_sys_enter_id_privately`]: never returns.
///
/// # Safety
///
/// Called only in a freshly forked child, with `out` the pipe's write end.
unsafe fn sys_enter_id_child(out: libc::c_int) -> ! {
    let fail = |step: u8| -> ! {
        let mut message = [0u8; 6];
        message[0] = b'!';
        message[1] = step;
        // SAFETY: `__errno_location` is this thread's errno.
        message[2..].copy_from_slice(&unsafe { *libc::__errno_location() }.to_ne_bytes());
        // SAFETY: a valid buffer of its length, a descriptor we own.
        unsafe {
            libc::write(out, message.as_ptr().cast(), message.len());
            libc::_exit(1)
        }
    };
    let null = std::ptr::null();
    // SAFETY: constant NUL-terminated strings and null pointers where
    // `mount` takes none; `buf` is a valid stack buffer of its length.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            fail(0);
        }
        if libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            null.cast(),
        ) != 0
        {
            fail(1);
        }
        let tracefs = c"tracefs".as_ptr();
        if libc::mount(
            tracefs,
            c"/sys/kernel/tracing".as_ptr(),
            tracefs,
            0,
            null.cast(),
        ) != 0
        {
            fail(2);
        }
        let path = c"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id";
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            fail(3);
        }
        let mut buf = [0u8; 32];
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        if n <= 0 {
            fail(4);
        }
        libc::write(out, buf.as_ptr().cast(), n as usize);
        libc::_exit(0)
    }
}

/// `struct perf_event_attr` as of `PERF_ATTR_SIZE_VER0` (64 bytes); the
/// kernel treats the fields it added later as zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// The bit field: `disabled`, `inherit`, `pinned`, ... all zero here,
    /// so the counter counts from the moment it is opened.
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}
const _: () = assert!(size_of::<PerfEventAttr>() == 64);

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// Counts the system calls the calling thread makes: a perf counter on the
/// tracepoint `raw_syscalls:sys_enter`, read before and after a window.
#[derive(Debug)]
pub struct SyscallCounter {
    fd: OwnedFd,
}

impl SyscallCounter {
    /// Opens the counter for the calling thread, or says why it cannot.
    pub fn open() -> Result<SyscallCounter, String> {
        let id = sys_enter_id()?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: size_of::<PerfEventAttr>() as u32,
            config: id,
            ..PerfEventAttr::default()
        };
        // SAFETY: perf_event_open reads `attr.size` bytes from a valid,
        // initialized `perf_event_attr`; pid 0 and cpu -1 mean this thread on
        // any CPU; group -1 means no group. It returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            return Err(format!(
                "perf_event_open on raw_syscalls:sys_enter failed: {error} \
                 (perf_event_paranoid is {paranoid}; run as root or lower it)"
            ));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        Ok(SyscallCounter { fd })
    }

    /// System calls counted since the counter was opened. The `read` itself
    /// is counted too: a window's difference includes exactly one.
    pub fn read(&self) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        match rustix::io::read(&self.fd, &mut bytes) {
            Ok(8) => Ok(u64::from_ne_bytes(bytes)),
            Ok(n) => Err(format!("the perf counter gave {n} bytes instead of 8")),
            Err(e) => Err(format!("cannot read the perf counter: {e}")),
        }
    }
}

/// Nanoseconds one `Instant::now()` costs, the median of a few batches.
pub fn timer_cost_ns() -> f64 {
    const CALLS: u32 = 20_000;
    let costs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..CALLS {
                std::hint::black_box(Instant::now());
            }
            start.elapsed().as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    median(&costs)
}

/// Two cores bouncing one cache line (see [`reference`](mod@reference)): a thread pinned
/// to `cpus.0` against one pinned to `cpus.1`. Returns nanoseconds per round
/// trip, timed over `duration` after a warm-up of a tenth of it.
pub fn cacheline_round_trip(cpus: (Option<usize>, Option<usize>), duration: Duration) -> f64 {
    std::thread::spawn(move || {
        pin(cpus.0);
        reference::cacheline_round_trip_for(cpus.1, duration)
    })
    .join()
    .unwrap_or(f64::NAN)
}

/// A single core copying `size`-byte blocks from one buffer to another
/// (`memcpy`), over a working set of at least 1 MiB so that large blocks do
/// not stay in the first-level cache: bytes per second over `duration`.
///
/// The best of three relative alignments of source and destination (0, 64
/// and 2048 bytes apart modulo 4 KiB): on some CPUs `memcpy` (`rep movsb`)
/// slows down tenfold when the two are nearly 4 KiB-aliased, and the
/// reference is the limit of a copy, not of an unlucky one.
pub fn memcpy_rate(cpu: Option<usize>, size: usize, duration: Duration) -> f64 {
    let size = size.max(1);
    std::thread::spawn(move || {
        pin(cpu);
        let blocks = ((1 << 20) / size).clamp(1, 64);
        let len = size * blocks;
        let source: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut buffer = vec![0u8; len + 4096];
        [0, 64, 2048]
            .into_iter()
            .map(|offset| {
                let target = &mut buffer[offset..offset + len];
                // `count` passes over the blocks, each block copied once per pass.
                let mut copy = |count: u64| {
                    let start = Instant::now();
                    for _ in 0..count {
                        for (to, from) in
                            target.chunks_exact_mut(size).zip(source.chunks_exact(size))
                        {
                            to.copy_from_slice(std::hint::black_box(from));
                            std::hint::black_box(to);
                        }
                    }
                    start.elapsed()
                };
                let share = duration / 3;
                let mut count = 1;
                let mut took = copy(count);
                while took < share / 10 {
                    count *= 2;
                    took = copy(count);
                }
                let timed =
                    ((count as f64) * share.as_secs_f64() / took.as_secs_f64()).max(1.0) as u64;
                let elapsed = copy(timed);
                (timed as f64 * len as f64) / elapsed.as_secs_f64()
            })
            .fold(f64::NAN, f64::max)
    })
    .join()
    .unwrap_or(f64::NAN)
}

/// The machine a comparison ran on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The CPU's model name, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs online.
    pub cores: usize,
    /// The kernel's release, from `/proc/sys/kernel/osrelease`.
    pub kernel: String,
}

impl Machine {
    /// Describes this machine; fields the system does not tell are "unknown".
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "cpu model")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cores = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count()
            .max(cores);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| "unknown kernel".into());
        Machine { cpu, cores, kernel }
    }

    /// One line: "AMD EPYC, 2 CPUs, Linux 6.18".
    pub fn line(&self) -> String {
        format!("{}, {} CPUs, {}", self.cpu, self.cores, self.kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_counter_move_forward() {
        let before = Usage::now();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let after = Usage::now();
        assert!(after.user_ns + after.system_ns >= before.user_ns + before.system_ns);
        // Counting may be refused on this machine; if it works, it counts.
        if let Ok(counter) = SyscallCounter::open() {
            let a = counter.read().unwrap();
            for _ in 0..10 {
                let _ = rustix::process::getpid();
                let _ = std::fs::metadata("/");
            }
            let b = counter.read().unwrap();
            assert!(b - a >= 10, "{a} -> {b}");
        }
    }
}
