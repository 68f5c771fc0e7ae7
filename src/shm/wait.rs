//! Waiting: spin for a bounded, adaptive time, then sleep on a futex
//! eventcount in the region.
//!
//! A blocking operation (a send on a full ring, a receive on an empty one)
//! first *spins*: it polls the ring up to its handle's spin budget, with a
//! spin hint between polls, and makes no system call. A busy stream never
//! gets past this phase. Then it *sleeps* in the kernel on a futex in the
//! region, using an eventcount, so that an idle side uses no CPU and the
//! other side makes a wake-up system call only when someone sleeps.
//!
//! Every blocking call of every ring (sends on a full ring, receives on an
//! empty one, an `Mpmc` consumer's wait for its hand-back turn) runs in one
//! loop, `block`, with one [`Deadline`]: attempt; spin; announce, re-check,
//! sleep one slice; let the caller's hook say what the sleep means (the
//! peer is dead, a dead producer's claim to repair); again. It returns by
//! its deadline plus at most one slice, whatever the peers do.
//!
//! # The eventcount
//!
//! Each direction has one 64-bit event word in the region's `Waiting` line
//! ([`crate::shm::layout::Waiting`]): [`Event::Data`], on which the consumer
//! sleeps and the producer notifies, and [`Event::Space`], the reverse.
//!
//! ```text
//! bit 63..32  epoch: the futex word; a notifier that finds a sleeper bumps it
//! bit 31..16  announced descriptor sleepers (event loops, see below)
//! bit 15..0   announced futex sleepers (blocked threads)
//! ```
//!
//! A waiter, after its spin budget:
//!
//! 1. *announces* itself: adds one sleeper (an atomic add, which also returns
//!    the current epoch `e`);
//! 2. issues a sequentially consistent fence;
//! 3. *re-checks* the ring (the same attempt it made while spinning); if it
//!    succeeds, it retracts its announcement and is done;
//! 4. sleeps with `FUTEX_WAIT(epoch, e)` for at most one slice
//!    ([`SLICE`]), retracts, and goes back to 1.
//!
//! A notifier, after it publishes a record or releases space (or detaches):
//!
//! 1. issues a sequentially consistent fence;
//! 2. loads the event word; if no sleeper is announced, it is done: no
//!    write, no system call. In a busy stream this is all it ever does, and
//!    since nobody writes the `Waiting` line then, the load hits a line both
//!    cores keep cached;
//! 3. otherwise bumps the epoch, and calls `FUTEX_WAKE` if a futex
//!    sleeper is announced, and signals the ring's descriptor (see below)
//!    if a descriptor sleeper is.
//!
//! Why no wake-up is lost: the waiter stores (its announcement) then loads
//! (the ring); the notifier stores (the record) then loads (the
//! announcement); with a `SeqCst` fence between each store and load, at
//! least one of them sees the other's store. Either the re-check sees the
//! record, or the notifier sees the sleeper and bumps the epoch, and then
//! `FUTEX_WAIT(e)` either finds the epoch changed and returns at once, or is
//! already asleep (the kernel checks the value and queues the sleeper
//! atomically with respect to `FUTEX_WAKE`) and is woken. This is the
//! classic eventcount (Dmitry Vyukov's, folly's `EventCount`, the Linux
//! `io_uring` `NEED_WAKEUP` flag with `smp_mb` on both sides). Removing
//! either fence, or loading the announcement before the store, loses
//! wake-ups; the loom model `models/loom_wait.rs` shows both as deadlocks.
//!
//! The price is one `SeqCst` fence per publish and per release on the
//! notifying side (an `mfence` or locked instruction on x86-64); a batch
//! send pays it once per batch.
//!
//! # Descriptor sleepers: waiting in an event loop
//!
//! A futex cannot be registered with `epoll`, so a task of an event loop
//! (tokio, mio, a `poll(2)` loop) waits on a descriptor instead: the ring's
//! eventfd for the event ([`crate::shm::signal::Signals`]), which the
//! notifier signals when it finds a *descriptor sleeper* announced. The
//! protocol is the same eventcount with a different sleep:
//!
//! 1. *arm*: announce a descriptor sleeper (bits 31..16), then the same
//!    `SeqCst` fence;
//! 2. re-check the ring; if the attempt succeeds, *disarm* (retract);
//! 3. otherwise wait until the descriptor is readable (at most one slice),
//!    consume one signal, disarm, and go back to the attempt.
//!
//! The argument that no wake-up is lost is the futex one: either the
//! re-check sees the record, or the notifier sees the announcement and
//! signals the descriptor, which then stays readable until a waiter
//! consumes the signal, so a wait that starts after the signal returns at
//! once. A notifier writes as many signals as it found descriptor sleepers
//! (the eventfd is a semaphore: each waiter consumes one), so every waiter
//! of a shared ring wakes. A signal nobody consumes (its waiter found a
//! record on the re-check) costs one spurious wake-up later: readiness is a
//! hint, the attempt decides. A busy stream still makes no system call:
//! the notifier's load finds no sleeper of either kind. The loom model
//! `models/loom_wait.rs` runs a futex sleeper and a descriptor sleeper on
//! one ring, in both directions.
//!
//! # Slices, timeouts and dead peers
//!
//! A sleeper wakes at least every [`SLICE`] even when nobody notifies, to
//! check its deadline and, from the second slice on, whether the peer
//! process is still alive: a peer killed by SIGKILL sends no wake-up. A
//! detaching peer does notify, so a clean detach is seen at once.
//!
//! # The adaptive spin budget
//!
//! Each handle keeps a spin budget in *time*, between [`MIN_SPIN_TIME`] and
//! [`MAX_SPIN_TIME`], starting at the most (a count of polls would be
//! worth a different time for every message size: a peer copying 1 MiB
//! keeps a waiter busy for tens of microseconds, and a budget of polls
//! that covers an 8-byte stream's gaps sent such a waiter to sleep on
//! every message, two context switches per round trip). The first
//! [`CLOCK_AFTER`] polls of a wait read no clock; after that, one reading
//! per [`CLOCK_EVERY`] polls ends the spin once the budget is spent:
//!
//! * a wait that succeeds while spinning, after `t`, raises the budget to
//!   at least `2t` (the gaps this stream has are covered twice over);
//! * a wait that had to sleep and was over within [`MAX_SPIN_TIME`] in all
//!   raises it to twice that (spinning that long would have avoided two
//!   context switches), up to [`MAX_SPIN_TIME`];
//! * a wait that lasted longer halves it (the spin was wasted CPU).
//!
//! So a stream with gaps shorter than [`MAX_SPIN_TIME`] keeps spinning and
//! makes no system calls, whatever the message size, while a side that is
//! idle for long stretches spins a few microseconds each time before it
//! sleeps, once a few long waits have halved its budget. The backend's
//! poll limit ([`Backend::spin_limit`], [`MAX_SPIN`] in production) caps
//! the polls of one spin whatever the clock says; the models set it to 0
//! (sleep at once) or `u32::MAX` (never sleep), and their budgets do not
//! adapt.
//!
//! # Untrusted peers
//!
//! Another process may write anything into the event words. The worst it can
//! do is cost wake-up system calls (a made-up sleeper count, of either kind:
//! a descriptor count makes the notifier write the eventfd, up to 65535
//! signals at a time, never blocking) or latency (a cleared count makes a
//! notifier skip a wake-up; the sleeper then notices at the end of its
//! slice): never a hang, a crash or a wrong message. A peer that writes the
//! eventfds itself makes an event-loop waiter wake for nothing, as many
//! times as it wrote signals: CPU time, as sending messages would cost.
//!
//! The same code runs in production ([`crate::shm::Mapped`], a real futex)
//! and in the models (a model futex: a model checker's mutex and condition
//! variable), through the [`Backend`] seam.

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::sync::{Backend, Control, Event, Word};

/// The production poll limit: the most polls one spin makes, whatever its
/// time budget (a cap well above what [`MAX_SPIN_TIME`] takes).
///
/// ```
/// use shmsg::shm::wait::{CLOCK_AFTER, MAX_SPIN, MAX_SPIN_TIME, MIN_SPIN_TIME, SLICE};
/// // A handle's spin budget adapts between these two times.
/// assert!(MIN_SPIN_TIME < MAX_SPIN_TIME);
/// // A sleeper checks its deadline and its peer at least every slice.
/// assert!(MAX_SPIN_TIME < SLICE);
/// assert!(CLOCK_AFTER < MAX_SPIN);
/// ```
pub const MAX_SPIN: u32 = 1 << 17;
/// The longest a production wait spins before it sleeps: about the time a
/// peer takes to copy and check a 1 MiB message, so that a large-message
/// stream does not sleep on every message.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(shmsg::shm::wait::MAX_SPIN_TIME, Duration::from_micros(200));
/// ```
pub const MAX_SPIN_TIME: Duration = Duration::from_micros(200);
/// The shortest spin budget a production handle adapts down to (about what
/// a futex sleep and wake-up cost the waker).
///
/// ```
/// assert!(shmsg::shm::wait::MIN_SPIN_TIME.as_nanos() >= 1000);
/// ```
pub const MIN_SPIN_TIME: Duration = Duration::from_micros(2);
/// Polls a wait makes before it first reads the clock: short waits (a
/// busy stream's) never read it.
pub const CLOCK_AFTER: u32 = 64;
/// Polls between two clock readings of a spin, after [`CLOCK_AFTER`].
pub const CLOCK_EVERY: u32 = 16;
/// The longest a sleeper sleeps before it checks its deadline and the peer's
/// liveness again.
///
/// ```
/// // A timed wait returns by its deadline plus at most one slice.
/// assert_eq!(shmsg::shm::wait::SLICE, std::time::Duration::from_millis(20));
/// ```
pub const SLICE: Duration = Duration::from_millis(20);

/// One announced futex sleeper, in bits 15..0 of an event word.
const SLEEPER: u64 = 1;
const SLEEPER_MASK: u64 = 0xFFFF;
/// One announced descriptor sleeper, in bits 31..16 of an event word.
const DESCRIPTOR_SLEEPER: u64 = 1 << 16;
const DESCRIPTOR_SHIFT: u32 = 16;
/// Both kinds of sleepers.
const SLEEPERS_MASK: u64 = 0xFFFF_FFFF;
/// One epoch step, in bits 63..32 of an event word.
const EPOCH: u64 = 1 << 32;

/// The epoch (the futex half) of an event word.
///
/// ```
/// use shmsg::shm::wait::{epoch, sleepers};
///
/// let word = (7u64 << 32) | 2; // epoch 7, two sleepers announced
/// assert_eq!(epoch(word), 7);
/// assert_eq!(sleepers(word), 2);
/// // A wake-up bumps the epoch and leaves the sleepers' count alone.
/// assert_eq!(epoch(word + (1 << 32)), 8);
/// ```
#[inline(always)]
pub fn epoch(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The number of announced futex sleepers (blocked threads) in an event
/// word.
///
/// ```
/// use shmsg::shm::wait::sleepers;
///
/// assert_eq!(sleepers(0), 0); // nobody sleeps: a notifier makes no system call
/// assert_eq!(sleepers((3u64 << 32) | 1), 1);
/// ```
#[inline(always)]
pub fn sleepers(word: u64) -> u32 {
    (word & SLEEPER_MASK) as u32
}

/// The number of announced descriptor sleepers (event-loop waiters) in an
/// event word.
///
/// ```
/// use shmsg::shm::wait::{descriptor_sleepers, sleepers};
///
/// let word = (3u64 << 32) | (2 << 16) | 1; // epoch 3, two armed, one asleep
/// assert_eq!(descriptor_sleepers(word), 2);
/// assert_eq!(sleepers(word), 1);
/// ```
#[inline(always)]
pub fn descriptor_sleepers(word: u64) -> u32 {
    ((word & SLEEPERS_MASK) >> DESCRIPTOR_SHIFT) as u32
}

/// A handle's adaptive spin budget (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spin {
    /// The poll cap of a spin (the backend's limit).
    budget: u32,
    /// The time budget of a spin, if the budget adapts.
    time: Duration,
    adaptive: bool,
    /// Whether the handle has announced a descriptor sleeper ([`arm`]).
    armed: bool,
}

impl Spin {
    /// Feeds a wait that lasted `waited` from its first clock reading, and
    /// `slept` or not, into the time budget (see the module docs).
    fn adapt(&mut self, waited: Duration, slept: bool) {
        self.time = if !slept || waited <= MAX_SPIN_TIME {
            // Spinning twice as long as this wait would have caught it.
            self.time.max(waited.saturating_mul(2)).min(MAX_SPIN_TIME)
        } else {
            (self.time / 2).max(MIN_SPIN_TIME)
        };
    }

    /// A budget of at most `limit` polls, whose time adapts between
    /// [`MIN_SPIN_TIME`] and [`MAX_SPIN_TIME`] (starting at the most);
    /// limits of 0 (sleep at once) and `u32::MAX` (spin forever), the
    /// models', are fixed.
    pub(crate) fn new(limit: u32) -> Spin {
        Spin {
            budget: limit,
            time: MAX_SPIN_TIME,
            adaptive: limit != 0 && limit != u32::MAX,
            armed: false,
        }
    }
}

/// A waiter's announcement: the epoch it read, which its futex sleep
/// compares. Consumed by [`Wait::sleep`] or [`Wait::cancel`], which retract it.
#[must_use = "an announcement must be retracted (sleep or cancel)"]
pub(crate) struct Ticket {
    epoch: u32,
}

/// What [`Wait::next`] asks the caller to do.
pub(crate) enum Step {
    /// Still spinning: attempt the operation again.
    Poll,
    /// Announced: re-check with one more attempt, then [`Wait::sleep`] (or
    /// [`Wait::cancel`] if the attempt succeeded or failed for good).
    Recheck(Ticket),
}

/// What a sleep learnt.
pub(crate) enum Slept {
    /// Attempt again.
    Again,
    /// The peer process is dead: nobody will ever notify.
    PeerDead,
}

/// The state of one blocking operation's wait.
pub(crate) struct Wait {
    event: Event,
    peer: Role,
    deadline: Deadline,
    budget: u32,
    /// The time budget of the spin, if it adapts.
    time: Option<Duration>,
    /// When the spin's clock started ([`CLOCK_AFTER`] polls in).
    spinning_since: Option<Instant>,
    polls: u32,
    sleeps: u32,
    /// Whether the wait reached the sleep phase.
    announced: bool,
    /// When it did, if the budget adapts.
    asleep_since: Option<Instant>,
}

impl Wait {
    /// A wait for `event`, from a handle whose budget is `spin`; `peer` is
    /// the role that notifies it.
    #[inline]
    pub(crate) fn new(spin: &Spin, event: Event, peer: Role, deadline: Deadline) -> Wait {
        Wait {
            event,
            peer,
            deadline,
            budget: spin.budget,
            time: spin.adaptive.then_some(spin.time),
            spinning_since: None,
            polls: 0,
            sleeps: 0,
            announced: false,
            asleep_since: None,
        }
    }

    /// After an attempt that found nothing to do: spin once more, or, once
    /// the budget is spent, announce a sleeper. [`Error::Timeout`] if the
    /// deadline has passed (checked only in the sleep phase: the spin phase
    /// is bounded by its budget and makes no system call).
    #[inline]
    pub(crate) fn next<B: Backend>(&mut self, backend: &B) -> Result<Step> {
        if self.polls < self.budget && self.spin_left() {
            self.polls += 1;
            backend.spin();
            return Ok(Step::Poll);
        }
        self.check_deadline()?;
        if !self.announced {
            self.announced = true;
            if self.time.is_some() {
                self.asleep_since = Some(Instant::now());
            }
        }
        Ok(Step::Recheck(announce(backend, self.event)))
    }

    /// Retracts an announcement after a re-check that ended the wait.
    #[inline]
    pub(crate) fn cancel<B: Backend>(&self, backend: &B, ticket: Ticket) {
        let Ticket { .. } = ticket;
        retract(backend, self.event, SLEEPER);
    }

    /// Sleeps after a re-check that found nothing, for at most one slice (or
    /// until the deadline), then retracts the announcement.
    pub(crate) fn sleep<B: Backend>(&mut self, backend: &B, ticket: Ticket) -> Result<Slept> {
        // A dead peer sends no wake-up; a slice without one is the time to
        // ask (a system call, so not before the first sleep).
        if self.sleeps > 0 && peer_gone(backend, self.peer) {
            self.cancel(backend, ticket);
            return Ok(Slept::PeerDead);
        }
        let timeout = self.deadline.slice(SLICE);
        if timeout.is_zero() {
            self.cancel(backend, ticket);
            return Err(Error::Timeout);
        }
        backend.futex_wait(self.event, ticket.epoch, timeout);
        retract(backend, self.event, SLEEPER);
        self.sleeps = self.sleeps.saturating_add(1);
        Ok(Slept::Again)
    }

    /// Whether the spin's time budget is left: no clock before
    /// [`CLOCK_AFTER`] polls, then one reading per [`CLOCK_EVERY`].
    #[inline(always)]
    fn spin_left(&mut self) -> bool {
        let Some(time) = self.time else {
            return true;
        };
        if self.polls < CLOCK_AFTER || !self.polls.is_multiple_of(CLOCK_EVERY) {
            return true;
        }
        match self.spinning_since {
            None => {
                self.spinning_since = Some(Instant::now());
                true
            }
            Some(since) => since.elapsed() < time,
        }
    }

    /// Feeds how this wait went into the handle's budget.
    #[inline]
    pub(crate) fn finish(self, spin: &mut Spin) {
        if !spin.adaptive {
            return;
        }
        // Waits shorter than `CLOCK_AFTER` polls read no clock and change
        // nothing: the budget is at least that long.
        let Some(since) = self.spinning_since else {
            return;
        };
        spin.adapt(since.elapsed(), self.asleep_since.is_some());
    }

    fn check_deadline(&self) -> Result<()> {
        if self.deadline.passed() {
            Err(Error::Timeout)
        } else {
            Ok(())
        }
    }
}

/// Whether the process attached as `peer` is gone: its epoch says attached
/// but it is dead (a system call: only from the sleep phase).
fn peer_gone<B: Backend>(backend: &B, peer: Role) -> bool {
    let epoch = backend.control(Control::epoch(peer)).load(Acquire);
    // `Acquire`: a peer is alive (holds its role lock) before its attach's
    // compare-and-swap makes the epoch odd, so the liveness test after an
    // odd epoch must see that (`loom_spsc`
    // `a_sleeping_producer_finds_a_consumer_that_attached_alive`).
    epoch % 2 == 1 && !backend.peer_alive(peer)
}

/// A ring handle that blocks: what [`block`] needs of it.
pub(crate) trait Waiter {
    /// The handle's memory and wait primitives.
    type Backend: Backend;
    /// The event the handle's operations wait for.
    const EVENT: Event;
    /// The role that notifies [`Waiter::EVENT`].
    const PEER: Role;
    /// The handle's backend.
    fn backend(&self) -> &Self::Backend;
    /// The handle's adaptive spin budget.
    fn spin_budget(&mut self) -> &mut Spin;
    /// What a sleep on [`Waiter::EVENT`] means for the handle's operations
    /// (the `woke` hook of [`block`]): the same after a futex sleep and
    /// after an event loop's idle slice ([`idle`]).
    fn woke(&mut self, slept: Slept) -> Result<Woke>;
}

/// Announces a descriptor sleeper for `handle`'s event, once, then fences:
/// from now until [`disarm`], a notifier signals the ring's descriptor
/// ([`Backend::signal`]). The caller re-checks the ring after this, and
/// waits for the descriptor only if the re-check found nothing.
#[inline]
pub(crate) fn arm<W: Waiter>(handle: &mut W) {
    if !handle.spin_budget().armed {
        handle.spin_budget().armed = true;
        // Seeded defect `arm_without_announce`: left out.
        if !<W::Backend as Backend>::FAULTS.arm_without_announce {
            handle
                .backend()
                .event(W::EVENT)
                .fetch_add(DESCRIPTOR_SLEEPER, Relaxed);
        }
    }
    handle.backend().fence();
}

/// Retracts `handle`'s descriptor sleeper, if [`arm`] announced one.
#[inline]
pub(crate) fn disarm<W: Waiter>(handle: &mut W) {
    if std::mem::take(&mut handle.spin_budget().armed)
        && !<W::Backend as Backend>::FAULTS.arm_without_announce
    {
        retract(handle.backend(), W::EVENT, DESCRIPTOR_SLEEPER);
    }
}

/// An event loop's wait on `handle`'s descriptor lasted a slice without a
/// signal: what a futex sleep of a slice would have learnt (whether the
/// peer is gone), fed to the handle's [`Waiter::woke`] hook. `Ok` means
/// attempt again; an error other than [`Error::Disconnected`] ends the
/// call, and `Disconnected` means attempt once more and report it if the
/// attempt would still block.
pub(crate) fn idle<W: Waiter>(handle: &mut W) -> Result<()> {
    let slept = if peer_gone(handle.backend(), W::PEER) {
        Slept::PeerDead
    } else {
        Slept::Again
    };
    match handle.woke(slept)? {
        Woke::Again => Ok(()),
        Woke::LastTry(error) => Err(error),
    }
}

mod methods;
pub(crate) use methods::{event_loop_methods, receive_methods, send_methods, waiter};

/// A receive's closure that copies the payload into `buf` (replacing its
/// contents) and returns its length.
#[inline(always)]
pub(crate) fn copy_into(buf: &mut Vec<u8>) -> impl FnOnce(&[u8]) -> usize + '_ {
    move |payload| {
        buf.clear();
        buf.extend_from_slice(payload);
        payload.len()
    }
}

/// What a blocking call does after a sleep: its hook's answer.
pub(crate) enum Woke {
    /// Attempt again, and wait again if it would still block.
    Again,
    /// Attempt once more; if it would still block, fail with this error
    /// (the peer is dead: nobody will ever notify).
    LastTry(Error),
}

/// The one blocking loop of every ring call: attempt; spin; announce,
/// re-check, sleep one slice; ask `woke` what the sleep means; again.
///
/// `attempt` is the non-blocking operation; an error for which
/// `would_block` holds ([`Error::Full`], [`Error::Empty`]) means "wait";
/// anything else ends the call. `woke` runs after every sleep with what the
/// sleep learnt ([`Slept::PeerDead`] once the peer is found dead) and may
/// repair the ring (a dead producer's claim) or end the wait. The call
/// returns by `deadline` plus at most one sleep slice, whatever the peers
/// do: the deadline is checked before every announcement and bounds every
/// sleep, and the spin phase is bounded by the budget.
///
/// The first attempt is inlined into the caller, and the wait ([`waiting`])
/// is set up only if it would block. A busy stream's send then returns
/// without copying its result: out of line, the 64-byte `Result` came back
/// through the stack and was copied in 16-byte loads over the 8-byte stores
/// that wrote it, a stall that made the producer wait for its ring stores
/// on every message (a 64-byte stream between two pinned threads: a median
/// 0.63x the reference ring before, 0.74x after, 15 alternated runs each).
#[inline(always)]
pub(crate) fn block<W: Waiter, T>(
    handle: &mut W,
    event: Event,
    peer: Role,
    deadline: Deadline,
    would_block: fn(&Error) -> bool,
    mut attempt: impl FnMut(&mut W) -> Result<T>,
    woke: impl FnMut(&mut W, Slept) -> Result<Woke>,
) -> Result<T> {
    match attempt(handle) {
        Err(ref error) if would_block(error) => {}
        done => return done,
    }
    waiting(handle, event, peer, deadline, would_block, attempt, woke)
}

/// [`block`] after a first attempt that would block.
fn waiting<W: Waiter, T>(
    handle: &mut W,
    event: Event,
    peer: Role,
    deadline: Deadline,
    would_block: fn(&Error) -> bool,
    mut attempt: impl FnMut(&mut W) -> Result<T>,
    mut woke: impl FnMut(&mut W, Slept) -> Result<Woke>,
) -> Result<T> {
    let mut wait = Wait::new(handle.spin_budget(), event, peer, deadline);
    let result = loop {
        let ticket = match wait.next(handle.backend()) {
            Ok(Step::Poll) => match attempt(handle) {
                Err(ref error) if would_block(error) => continue,
                other => break other,
            },
            Ok(Step::Recheck(ticket)) => ticket,
            Err(error) => break Err(error),
        };
        // Announced: the re-check that makes the sleep safe.
        match attempt(handle) {
            Err(ref error) if would_block(error) => {}
            other => {
                wait.cancel(handle.backend(), ticket);
                break other;
            }
        }
        let slept = match wait.sleep(handle.backend(), ticket) {
            Ok(slept) => slept,
            Err(error) => break Err(error),
        };
        match woke(handle, slept) {
            // Attempt before the next step: a wake-up at the deadline
            // still delivers what woke it.
            Ok(Woke::Again) => match attempt(handle) {
                Err(ref error) if would_block(error) => {}
                other => break other,
            },
            Ok(Woke::LastTry(error)) => {
                break match attempt(handle) {
                    Err(ref e) if would_block(e) => Err(error),
                    other => other,
                };
            }
            Err(error) => break Err(error),
        }
    };
    wait.finish(handle.spin_budget());
    result
}

/// A sender's blocking call: [`block`] on [`Event::Space`] until `attempt`
/// stops reporting [`Error::Full`]; a dead consumer ends the wait with
/// [`Error::Disconnected`] (nobody will ever make room). The same for every
/// ring kind.
#[inline(always)]
pub(crate) fn block_for_space<W: Waiter, T>(
    handle: &mut W,
    deadline: Deadline,
    attempt: impl FnMut(&mut W) -> Result<T>,
) -> Result<T> {
    block(
        handle,
        Event::Space,
        Role::Consumer,
        deadline,
        full,
        attempt,
        W::woke,
    )
}

/// The `woke` hook of every sender: a dead consumer ends the wait with
/// [`Error::Disconnected`] (nobody will ever make room).
pub(crate) fn sender_woke(slept: Slept) -> Result<Woke> {
    match slept {
        Slept::Again => Ok(Woke::Again),
        Slept::PeerDead => Err(Error::Disconnected),
    }
}

/// `would_block` for senders: the ring is full.
pub(crate) fn full(error: &Error) -> bool {
    matches!(error, Error::Full)
}

/// `would_block` for receivers: the ring is empty.
pub(crate) fn empty(error: &Error) -> bool {
    matches!(error, Error::Empty)
}

/// Announces a sleeper on `event`, then fences: what the caller re-checks
/// next is ordered after the announcement (see the module docs).
///
/// The event word's RMWs (here, in `retract` and in `wake`) are
/// `Relaxed` (no model tells them from `AcqRel`: `ci/mutate-orderings.sh`).
/// Nothing is published through the event word: what a woken side needs
/// it re-checks in the ring words, each with its own `Release`/`Acquire`
/// pair. No wake-up is lost because of the two `SeqCst` fences alone: if
/// the notifier's load of the event word (after its fence Y) missed this
/// announcement (before our fence X), then Y precedes X in the fences'
/// total order, so the re-check after X sees the notifier's store before
/// Y (C++20 atomics.order p4, which Rust follows; it holds for `Relaxed`
/// accesses). The RMWs keep the count and the epoch exact whatever their
/// ordering, and the kernel orders `FUTEX_WAIT`'s compare against
/// `FUTEX_WAKE` (futex(2)).
#[inline]
fn announce<B: Backend>(backend: &B, event: Event) -> Ticket {
    let seen = backend.event(event).fetch_add(SLEEPER, Relaxed);
    // Seeded defect `no_waiter_fence`: left out.
    if !B::FAULTS.no_waiter_fence {
        backend.fence();
    }
    Ticket { epoch: epoch(seen) }
}

/// Withdraws one announced sleeper of the kind `one` ([`SLEEPER`] or
/// [`DESCRIPTOR_SLEEPER`]) from `event` (`Relaxed`: see `announce`).
#[inline]
fn retract<B: Backend>(backend: &B, event: Event, one: u64) {
    backend.event(event).fetch_add(one.wrapping_neg(), Relaxed);
}

/// Whether a sleeper of either kind is announced on `event`: the notifier's
/// fence, then one load. Call after the store that the sleeper waits for.
#[inline(always)]
pub(crate) fn sleeper_announced<B: Backend>(backend: &B, event: Event) -> bool {
    backend.fence();
    backend.event(event).load(Relaxed) & SLEEPERS_MASK != 0
}

/// Wakes the sleepers on `event`: bumps the epoch (so a futex sleeper about
/// to call `FUTEX_WAIT` returns at once), then `FUTEX_WAKE` if a futex
/// sleeper is announced, and one descriptor signal per descriptor sleeper.
#[cold]
#[inline(never)]
pub(crate) fn wake<B: Backend>(backend: &B, event: Event) {
    // `Relaxed`: see `announce`. The bump reads the latest value, so it
    // follows every announcement the notifier saw: the sleepers it counts
    // include those, less any that retracted since (they are awake).
    let word = backend.event(event).fetch_add(EPOCH, Relaxed);
    if sleepers(word) != 0 {
        backend.futex_wake(event);
    }
    let armed = descriptor_sleepers(word);
    // Seeded defect `wake_futex_only`: the descriptor is not signalled.
    if armed != 0 && !B::FAULTS.wake_futex_only {
        backend.signal(event, armed);
    }
}

/// After an `Mpmc` consumer's hand-back (its store of the head): wakes the
/// producers waiting for space ([`notify`] on [`Event::Space`]), and
/// signals the event-loop consumers waiting on [`Event::Data`]. One of
/// them may have a hand-back pending behind this one: until its turn, its
/// `try_recv` finds nothing, so it waits on `Data` (a blocking consumer
/// waits for its turn on `Space` instead, so no futex wake is needed).
/// The eventcount argument is the one of [`notify`], with the head as the
/// store: the notifier's fence (in `notify`) comes after its head store and
/// before its load of the `Data` word; the waiter's comes after its
/// announcement and before its re-check loads the head.
#[inline(always)]
pub(crate) fn notify_hand_back<B: Backend>(backend: &B) {
    notify(backend, Event::Space);
    // Seeded defect `no_hand_back_signal`: left out.
    if B::FAULTS.no_hand_back_signal {
        return;
    }
    let armed = descriptor_sleepers(backend.event(Event::Data).load(Relaxed));
    // Seeded defect `wake_futex_only`: the descriptor is not signalled.
    if armed != 0 && !B::FAULTS.wake_futex_only {
        backend.signal(Event::Data, armed);
    }
}

/// Wakes the sleepers on `event`, if any: call after the store (a published
/// record, a released head, a detach) that they wait for.
#[inline(always)]
pub(crate) fn notify<B: Backend>(backend: &B, event: Event) {
    if sleeper_announced(backend, event) {
        wake(backend, event);
    }
}

#[cfg(test)]
mod tests;
