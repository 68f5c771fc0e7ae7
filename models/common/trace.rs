//! The protocol events of one model execution, printed when it fails.
//!
//! Off unless `SHMSG_MODEL_TRACE` is set (to anything but `0`): then every
//! operation the production code does through the model backend (each
//! load, store, compare-and-swap and fetch-add of a word, each fence,
//! payload copy, futex wait and wake) is appended to the execution's log,
//! with the thread that did it, the handle it did it through and the word
//! it touched by name (`tail`, `head`, `header@64`, `data_event`, ...).
//! When a thread of the execution panics (an assertion, or loom reporting
//! a data race or a deadlock), a panic hook prints the log as numbered
//! lines, between `== failing interleaving` and `== end of interleaving`
//! (`ci/explore.sh` reads them). Loom stops at the first failing
//! execution, so that log is the failing interleaving.
//!
//! The log of an execution lives as long as a ring of that execution: the
//! rings one execution creates share it, and the hook finds it through a
//! weak reference in a thread-local. Loom and shuttle run the threads of
//! an execution as coroutines on the test's own thread, so the hook, which
//! runs where the panic happens, sees that thread-local.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use shmsg::Role;
use shmsg::shm::layout::WRAP_LEN;

/// Whether tracing is on (`SHMSG_MODEL_TRACE`, read once).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SHMSG_MODEL_TRACE").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// A word of model memory, by name.
#[derive(Clone, Copy, Debug)]
pub enum Name {
    Tail,
    ProducerEpoch,
    Head,
    ConsumerEpoch,
    ReadCursor,
    /// Word `word` (epoch, pid, claim, claim length) of an attachment slot.
    Slot(Role, usize, usize),
    /// `Data` (0) or `Space` (1).
    Event(usize),
    /// The data word at this byte offset of the data area.
    Data(usize),
    /// A liveness word of the model (see `Peer`).
    Alive(usize),
    /// The model descriptor (eventfd) of `Data` (0) or `Space` (1).
    Signals(usize),
}

impl Name {
    fn show(self, ring: Option<usize>) -> String {
        let name = match self {
            Name::Tail => "tail".to_string(),
            Name::ProducerEpoch => "producer_epoch".to_string(),
            Name::Head => "head".to_string(),
            Name::ConsumerEpoch => "consumer_epoch".to_string(),
            Name::ReadCursor => "read_cursor".to_string(),
            Name::Slot(role, index, word) => {
                let word = ["epoch", "pid", "claim", "claim_len"][word];
                let role = match role {
                    Role::Producer => "producer",
                    Role::Consumer => "consumer",
                };
                format!("{role}_slot[{index}].{word}")
            }
            Name::Event(0) => "data_event".to_string(),
            Name::Event(_) => "space_event".to_string(),
            Name::Data(offset) => format!("header@{offset}"),
            Name::Alive(index) => format!("liveness[{index}]"),
            Name::Signals(0) => "data_eventfd".to_string(),
            Name::Signals(_) => "space_eventfd".to_string(),
        };
        match ring {
            Some(ring) => format!("ring{ring}.{name}"),
            None => name,
        }
    }

    /// What `value` means in this word.
    fn meaning(self, value: u64) -> String {
        match self {
            Name::Data(_) => header_meaning(value),
            Name::ProducerEpoch | Name::ConsumerEpoch | Name::Slot(_, _, 0) => {
                if value % 2 == 1 {
                    " (attached)".to_string()
                } else {
                    " (detached)".to_string()
                }
            }
            _ => String::new(),
        }
    }
}

/// A record header word as the rings encode it (see `spsc::encode_header`,
/// `mpmc::encode_record`): position tag, committed bit, padding bit, length.
fn header_meaning(value: u64) -> String {
    const COMMITTED: u64 = 1 << 31;
    const PAD: u64 = 1 << 30;
    if value == 0 {
        return " (empty)".to_string();
    }
    if value & COMMITTED == 0 {
        return " (not a header: payload bytes)".to_string();
    }
    let lap = (value >> 32) << 3;
    let len = value & (COMMITTED - 1);
    if len == u64::from(WRAP_LEN) {
        format!(" (wrap marker, tag {lap:#x})")
    } else if len & PAD != 0 {
        format!(" (padding {} bytes, tag {lap:#x})", len & (PAD - 1))
    } else {
        format!(" (record len={len}, tag {lap:#x})")
    }
}

/// One protocol event.
pub enum Op {
    Load(Name, Ordering, u64),
    Store(Name, Ordering, u64),
    Cas(Name, u64, u64, Ordering, Result<u64, u64>),
    FetchAdd(Name, Ordering, u64, u64),
    Fence,
    /// A payload copy into `[offset, offset + len)`; `true` for the line
    /// that ends a copy another thread's events interrupted.
    Write(usize, usize, bool),
    Read(usize, usize, bool),
    FutexWait(Name, u32),
    FutexWoken(Name),
    FutexWake(Name),
    /// A notifier adds signals to a model descriptor.
    Signal(Name, u32),
    /// An event-loop waiter waits for its descriptor to be readable.
    DescriptorWait(Name),
    /// ... and consumes one signal (`true`), or its slice ended (`false`).
    DescriptorWoken(Name, bool),
    /// The handle's process is killed here (`ModelBackend::crashing_after`).
    Crash,
}

struct Line {
    thread: String,
    actor: String,
    ring: usize,
    op: Op,
}

#[derive(Default)]
struct State {
    lines: Vec<Line>,
    /// The handle each thread last acted through.
    actors: HashMap<String, (usize, String)>,
    rings: usize,
    printed: bool,
}

/// The log of one execution.
pub struct Log {
    /// The model checker's name for the running thread.
    thread: fn() -> String,
    state: Mutex<State>,
}

thread_local! {
    static CURRENT: RefCell<Weak<Log>> = const { RefCell::new(Weak::new()) };
}

impl Log {
    /// The log of the running execution (a new one if no ring of it is
    /// alive) and the number of a new ring in it; `None` if tracing is off.
    pub fn for_new_ring(thread: fn() -> String) -> Option<(Arc<Log>, usize)> {
        if !enabled() {
            return None;
        }
        install_hook();
        let log = CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            current.upgrade().unwrap_or_else(|| {
                let log = Arc::new(Log {
                    thread,
                    state: Mutex::new(State::default()),
                });
                *current = Arc::downgrade(&log);
                log
            })
        });
        let ring = {
            let mut state = log.lock();
            state.rings += 1;
            state.rings - 1
        };
        Some((log, ring))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running thread acts through a handle called `actor` on `ring`.
    pub fn act(&self, ring: usize, actor: &str) {
        // While a failure unwinds, the checker may have no execution left
        // to ask for the running thread (see `unwinding` in `common`).
        if std::thread::panicking() {
            return;
        }
        let thread = (self.thread)();
        let mut state = self.lock();
        match state.actors.get_mut(&thread) {
            Some(known) if known.0 == ring && known.1 == actor => {}
            _ => {
                state.actors.insert(thread, (ring, actor.to_string()));
            }
        }
    }

    /// Appends `op` on `ring`, done by the running thread; returns its
    /// number.
    pub fn record(&self, ring: usize, op: Op) -> usize {
        if std::thread::panicking() {
            return usize::MAX;
        }
        let thread = (self.thread)();
        let mut state = self.lock();
        let actor = match state.actors.get(&thread) {
            Some((r, actor)) if *r == ring => actor.clone(),
            _ => String::new(),
        };
        state.lines.push(Line {
            thread,
            actor,
            ring,
            op,
        });
        state.lines.len() - 1
    }

    /// Moves event `line` to the end, where the operation it records took
    /// effect; returns its new number.
    pub fn move_to_end(&self, line: usize) -> usize {
        let mut state = self.lock();
        if line < state.lines.len().saturating_sub(1) {
            let moved = state.lines.remove(line);
            state.lines.push(moved);
            return state.lines.len() - 1;
        }
        line
    }

    /// A payload copy that began as event `start` is over: if other
    /// events came in between (its word stores and loads are scheduling
    /// points), `done` is appended to show where it ended.
    pub fn finish(&self, ring: usize, start: usize, done: Op) {
        if start == usize::MAX || self.lock().lines.len() == start + 1 {
            return;
        }
        self.record(ring, done);
    }

    /// The log as numbered lines; runs of one thread repeating one event
    /// (a spin loop) are folded into one line.
    fn render(state: &State, ending: &str) -> String {
        let rings = state.rings > 1;
        let ring_of = |ring: usize| rings.then_some(ring);
        let mut shown: Vec<(String, usize)> = Vec::new();
        for line in &state.lines {
            let name = |n: Name| n.show(ring_of(line.ring));
            let op = match line.op {
                Op::Load(n, order, v) => {
                    format!("load  {} {order:?} = {v:#x}{}", name(n), n.meaning(v))
                }
                Op::Store(n, order, v) => {
                    format!("store {} {order:?} := {v:#x}{}", name(n), n.meaning(v))
                }
                Op::Cas(n, current, new, order, result) => match result {
                    Ok(_) => format!(
                        "cas   {} {order:?} {current:#x} -> {new:#x}{} (won)",
                        name(n),
                        n.meaning(new)
                    ),
                    Err(seen) => format!(
                        "cas   {} {current:#x} -> {new:#x} failed: it holds {seen:#x}{}",
                        name(n),
                        n.meaning(seen)
                    ),
                },
                Op::FetchAdd(n, order, add, old) => {
                    format!("fetch_add {} {order:?} +{add:#x} (was {old:#x})", name(n))
                }
                Op::Fence => "fence SeqCst".to_string(),
                Op::Write(offset, len, done) => format!(
                    "write payload [{offset},{}) ({len} bytes){}",
                    offset + len,
                    if done { ": done" } else { "" }
                ),
                Op::Read(offset, len, done) => format!(
                    "read  payload [{offset},{}) ({len} bytes){}",
                    offset + len,
                    if done { ": done" } else { "" }
                ),
                Op::FutexWait(n, expected) => {
                    format!(
                        "futex_wait {} (sleeps if its epoch is still {expected})",
                        name(n)
                    )
                }
                Op::FutexWoken(n) => {
                    format!("futex_wait {} returns (woken, or did not sleep)", name(n))
                }
                Op::FutexWake(n) => format!("futex_wake {}", name(n)),
                Op::Signal(n, count) => format!("signal {} (+{count})", name(n)),
                Op::DescriptorWait(n) => format!("wait for {} to be readable", name(n)),
                Op::DescriptorWoken(n, true) => format!("{} readable: consume one signal", name(n)),
                Op::DescriptorWoken(n, false) => {
                    format!("wait for {} ends without a signal (slice over)", name(n))
                }
                Op::Crash => "is killed here (modelled crash)".to_string(),
            };
            let who = if line.actor.is_empty() {
                format!("{:<4}", line.thread)
            } else {
                format!("{:<4} {}:", line.thread, line.actor)
            };
            let text = format!("{who:<16} {op}");
            match shown.last_mut() {
                Some((last, times)) if *last == text => *times += 1,
                _ => shown.push((text, 1)),
            }
        }
        let mut out = format!(
            "== failing interleaving ({} protocol events) ==\n",
            state.lines.len()
        );
        for (i, (text, times)) in shown.iter().enumerate() {
            let _ = write!(out, "{:>4}  {text}", i + 1);
            if *times > 1 {
                let _ = write!(out, "   (x{times})");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "  !!  {ending}");
        out.push_str("== end of interleaving ==\n");
        out
    }
}

/// Prints the running execution's log, once, when one of its threads
/// panics; a modelled crash (`Crashed`) is not a failure.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if info.payload().is::<super::Crashed>() {
                return;
            }
            let Some(log) = CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.upgrade())) else {
                return;
            };
            let mut state = log.lock();
            if state.printed {
                return;
            }
            state.printed = true;
            let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic".to_string()
            };
            // Not the checker's name for the thread: the hook may run
            // inside the checker's scheduler, which must not be re-entered.
            // A panic inside the checker (a data race, a deadlock) is
            // located in its own source: not worth printing.
            let at = info
                .location()
                .filter(|l| !l.file().contains("/registry/"))
                .map(|l| format!(" ({}:{})", l.file(), l.line()))
                .unwrap_or_default();
            let ending = format!("panic: {}{at}", message.lines().next().unwrap_or(""));
            eprint!("{}", Log::render(&state, &ending));
        }));
    });
}

/// A model checker's thread id (`ThreadId(3)`) as `t3`.
pub fn short_thread(id: impl std::fmt::Debug) -> String {
    let digits: String = format!("{id:?}")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("t{digits}")
}
