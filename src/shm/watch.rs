//! The watchdog: a dead receiver's death pushed to this process's senders.
//!
//! A sender on a ring with space never waits, so it never reaches the wait
//! loop's liveness check ([`crate::shm::wait`]): without help, a producer
//! whose consumer was killed would go on "sending" into a ring nobody will
//! read until it filled. Checking the consumer's liveness on the send path
//! costs a system call (or at least a clock read to ration them), a large
//! share of a 60 ns send; instead, the death is pushed to the producer.
//!
//! Each process that has a sender attached to a region runs one watchdog
//! thread. Every [`PERIOD`] it looks at the receivers of the rings its
//! senders write to; a receiver whose epoch says attached but whose
//! process is dead (its liveness lock is free, [`crate::shm::region`]) is
//! detached on its behalf, with a compare-and-swap on its epoch word from
//! the value read to the next one: exactly the store its `Drop` would have
//! made, so everything downstream is the protocol's clean-detach path (the
//! producer's next reservation, which loads that word anyway, returns
//! [`crate::Error::Disconnected`]). The per-message cost is unchanged; a
//! dead receiver is noticed within a period or two of its death. The
//! compare-and-swap fails, harmlessly, if the receiver detached, or was
//! taken over, in the meantime.
//!
//! Only receivers are detached so: a dead producer's claim must stay
//! recoverable by the consumers through its slot ([`crate::shm::mpmc`]),
//! and a consumer notices a dead producer itself, in its wait loop.
//!
//! The thread starts with the first watched sender and ends a period after
//! the last one is dropped. If it cannot be started, senders notice a dead
//! receiver only once the ring fills, as before.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often the watchdog looks.
///
/// ```
/// use std::time::Duration;
///
/// // A sender learns of a dead receiver within a period or two.
/// assert_eq!(shmsg::shm::watch::PERIOD, Duration::from_millis(25));
/// ```
pub const PERIOD: Duration = Duration::from_millis(25);

/// Something the watchdog looks at every [`PERIOD`].
pub(crate) trait Watched: Send + Sync {
    /// One look: detaches dead receivers on their behalf.
    fn check(&self);
}

struct Registry {
    watched: Vec<Weak<dyn Watched>>,
    running: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    watched: Vec::new(),
    running: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Looks once now (a receiver that died before this sender attached is
/// detached before the first send), then watches `watched` for as long as
/// it lives (the watchdog keeps only a weak reference).
pub(crate) fn watch(watched: &Arc<dyn Watched>) {
    watched.check();
    let mut registry = registry();
    registry.watched.push(Arc::downgrade(watched));
    if !registry.running {
        let spawned = std::thread::Builder::new()
            .name("shmsg-watchdog".into())
            .spawn(run);
        registry.running = spawned.is_ok();
    }
}

fn run() {
    loop {
        std::thread::sleep(PERIOD);
        let live: Vec<Arc<dyn Watched>> = {
            let mut registry = registry();
            registry.watched.retain(|w| w.strong_count() > 0);
            if registry.watched.is_empty() {
                registry.running = false;
                return;
            }
            registry.watched.iter().filter_map(Weak::upgrade).collect()
        };
        for watched in live {
            watched.check();
        }
    }
}
