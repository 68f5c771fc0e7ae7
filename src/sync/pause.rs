//! The production wait policy: spin, then yield, then short sleeps with a
//! bounded back-off.
//!
//! A busy stream never gets past the spin phase, so it makes no system call.
//! An idle waiter sleeps at most [`Pause::MAX_SLEEP`] at a time, which bounds
//! both the latency of noticing new work and the time to notice a dead peer
//! (its liveness is checked on every round of the sleep phase). A futex-based
//! eventcount will replace the sleep phase.

use std::time::Duration;

/// The spin / yield / sleep schedule, as a function of the round number.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pause;

impl Pause {
    /// Rounds of busy polling, one spin hint each, so a waiter notices new
    /// work within one poll (tens of nanoseconds) for the first tens of
    /// microseconds of a wait.
    pub const SPIN_ROUNDS: u32 = 2048;
    /// Rounds of `sched_yield` after the spin phase.
    pub const YIELD_ROUNDS: u32 = 16;
    /// The first sleep.
    pub const MIN_SLEEP: Duration = Duration::from_micros(20);
    /// The longest sleep.
    pub const MAX_SLEEP: Duration = Duration::from_millis(1);

    /// Waits a little; `round` counts the fruitless polls so far.
    #[inline]
    pub fn pause(round: u32) {
        if round < Self::SPIN_ROUNDS {
            std::hint::spin_loop();
        } else if round < Self::SPIN_ROUNDS + Self::YIELD_ROUNDS {
            std::thread::yield_now();
        } else {
            let k = (round - Self::SPIN_ROUNDS - Self::YIELD_ROUNDS).min(16);
            let sleep = Self::MIN_SLEEP.saturating_mul(1 << k).min(Self::MAX_SLEEP);
            std::thread::sleep(sleep);
        }
    }

    /// Whether this round is in the sleep phase, where a liveness check (a
    /// system call) costs nothing that matters.
    #[inline]
    pub fn sleeping(round: u32) -> bool {
        round >= Self::SPIN_ROUNDS + Self::YIELD_ROUNDS
    }
}
