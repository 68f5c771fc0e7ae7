//! Attaching a ring handle, for both rings: the test of the epoch word
//! that says a side has gone, and the attachment of a handle to the ring
//! of a [`Region`].
//!
//! A handle attached to a region's ring holds a [`Mapped`] backend whose
//! owner, an [`Attached`], keeps the region mapped and holds the lock that
//! the kernel drops when the process dies: the role's lock for a
//! single-producer ring, a slot's lock for a multi-producer one. A
//! producer's also keeps the watchdog ([`crate::shm::watch`]) looking at
//! the consumers, so that a dead consumer is detached for it.

use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::error::{Error, Result, Role};
use crate::shm::layout::{RingKind, offsets};
use crate::shm::region::{Region, RoleLock};
use crate::shm::watch::{self, Watched};
use crate::shm::{Mapped, Owner};
use crate::sync::{Backend, Control, SlotWord, Word};

/// Whether the epoch word of `role` says it has detached: its one holder
/// in a single-producer ring; every holder in a multi-producer ring, where
/// the word counts them ([`crate::shm::mpmc`]). Zero, never attached, is
/// not detached.
#[inline(always)]
pub(crate) fn detached<B: Backend>(backend: &B, role: Role) -> bool {
    let epoch = backend.control(Control::epoch(role)).load(Acquire);
    epoch != 0 && epoch.is_multiple_of(2)
}

/// How the watchdog detaches the dead consumers of a ring of a kind
/// (`spsc::detach_dead_consumer`, `mpmc::detach_dead_consumers`).
pub(crate) type DetachDead = fn(&Mapped, RingKind);

/// Keeps a region mapped and a role or slot locked for as long as a
/// handle lives; a producer's also keeps the watchdog looking at the
/// consumers.
struct Attached {
    region: Arc<Region>,
    kind: RingKind,
    _lock: Option<RoleLock>,
    _watch: Option<Arc<dyn Watched>>,
}

impl Attached {
    /// The watchdog's view of a ring: the region, no role of its own.
    fn observer(region: &Arc<Region>, kind: RingKind) -> Attached {
        Attached {
            region: Arc::clone(region),
            kind,
            _lock: None,
            _watch: None,
        }
    }

    /// Whether the pid word of `role` (slot `index` of a multi-producer
    /// ring) is this process's.
    fn pid_is_ours(&self, role: Role, index: usize) -> bool {
        let offset = match (self.kind, role) {
            (RingKind::Spsc, Role::Producer) => offsets::PRODUCER_PID,
            (RingKind::Spsc, Role::Consumer) => offsets::CONSUMER_PID,
            _ => offsets::slot(role, index, SlotWord::Pid),
        };
        self.region.header_word(offset) == u64::from(std::process::id())
    }
}

/// A peer process is alive while it holds its role's (or slot's) lock. A
/// peer attached through this same `Region` (another thread of this
/// process) holds it through our own open file description, which the
/// lock test does not see; its pid word, written at attach, is then our
/// pid, and a peer in this process is alive as long as we are (it
/// detaches in `Drop`).
impl Owner for Attached {
    fn peer_alive(&self, role: Role) -> bool {
        if self.kind == RingKind::Spsc {
            return self.region.role_held_elsewhere(role) || self.pid_is_ours(role, 0);
        }
        // A multi-producer ring: any attached slot of `role` with a live holder.
        let (producers, consumers) = self.kind.limits();
        let slots = match role {
            Role::Producer => producers,
            Role::Consumer => consumers,
        };
        (0..slots).any(|index| {
            let epoch = offsets::slot(role, index, SlotWord::Epoch);
            self.region.header_word(epoch) % 2 == 1 && self.slot_alive(role, index)
        })
    }

    fn slot_alive(&self, role: Role, index: usize) -> bool {
        if self.kind == RingKind::Spsc {
            return self.peer_alive(role);
        }
        self.region.slot_held_elsewhere(role, index) || self.pid_is_ours(role, index)
    }
}

/// What the watchdog looks at for a producer: the ring's consumers.
struct ConsumerWatch {
    memory: Mapped,
    kind: RingKind,
    detach_dead: DetachDead,
}

impl Watched for ConsumerWatch {
    fn check(&self) {
        (self.detach_dead)(&self.memory, self.kind)
    }
}

/// A backend over `region`'s mapping, kept alive by `owner`.
fn mapped(region: &Region, owner: Arc<dyn Owner>) -> Mapped {
    let base = std::ptr::NonNull::new(region.base()).expect("a mapping is never at address 0");
    // SAFETY: the region's mapping is `region_size()` bytes, page-aligned,
    // and `owner` keeps the region (and so the mapping) alive; its header
    // was validated when the region was created or opened.
    unsafe { Mapped::new(owner, base, region.geometry(), region.shared_signals()) }
}

/// A backend over `region`'s mapping whose owner holds `lock`; for a
/// producer, the watchdog looks at the consumers with `detach_dead` for
/// as long as it lives.
fn attach_locked(
    region: &Arc<Region>,
    kind: RingKind,
    role: Role,
    lock: RoleLock,
    detach_dead: DetachDead,
) -> Mapped {
    let watch = (role == Role::Producer).then(|| {
        let observer = Arc::new(Attached::observer(region, kind));
        let watched: Arc<dyn Watched> = Arc::new(ConsumerWatch {
            memory: mapped(region, observer),
            kind,
            detach_dead,
        });
        watch::watch(&watched);
        watched
    });
    let owner = Arc::new(Attached {
        region: Arc::clone(region),
        kind,
        _lock: Some(lock),
        _watch: watch,
    });
    mapped(region, owner)
}

/// The kind of `region`'s ring, if it is a multi-producer ring (`multi`)
/// or a single-producer one (not `multi`): a region of another kind has
/// another protocol in it (and opens fine).
pub(crate) fn ring_kind(region: &Region, multi: bool) -> Result<RingKind> {
    let kind = region.kind();
    if (kind == RingKind::Spsc) == multi {
        return Err(Error::LayoutMismatch {
            field: "ring_kind",
            expected: if multi {
                RingKind::Mpsc
            } else {
                RingKind::Spsc
            } as u64,
            found: kind as u64,
        });
    }
    Ok(kind)
}

/// Attaches as `role` of a single-producer region's ring: locks the role
/// and writes this process's pid. The caller then takes the role over in
/// the ring (its lock says any previous holder is dead).
pub(crate) fn to_role(region: &Arc<Region>, role: Role, detach_dead: DetachDead) -> Result<Mapped> {
    let kind = ring_kind(region, false)?;
    let lock = region.lock_role(role)?;
    let memory = attach_locked(region, kind, role, lock, detach_dead);
    let pid = match role {
        Role::Producer => offsets::PRODUCER_PID,
        Role::Consumer => offsets::CONSUMER_PID,
    };
    memory
        .header_word(pid)
        .store(u64::from(std::process::id()), Relaxed);
    Ok(memory)
}

/// Attaches as `role` of a multi-producer region's ring: tries each slot
/// whose lock is free, and `attach` gets a backend whose owner holds that
/// slot's lock, and the slot's index.
pub(crate) fn to_slot<T>(
    region: &Arc<Region>,
    role: Role,
    detach_dead: DetachDead,
    mut attach: impl FnMut(Mapped, usize) -> Result<T>,
) -> Result<T> {
    let kind = ring_kind(region, true)?;
    let (producers, consumers) = kind.limits();
    let slots = match role {
        Role::Producer => producers,
        Role::Consumer => consumers,
    };
    for index in 0..slots {
        let lock = match region.lock_slot(role, index) {
            Ok(lock) => lock,
            Err(Error::RoleTaken(_)) => continue,
            Err(error) => return Err(error),
        };
        let memory = attach_locked(region, kind, role, lock, detach_dead);
        // Our pid before the slot's epoch says attached: the lock is ours,
        // so the slot is free or its holder dead, and a liveness test (the
        // watchdog's among them) that sees the epoch sees a live holder.
        // If the slot is not taken after all (a dead holder's claim is still
        // pending), its pid goes back: a consumer of this process must not
        // take the dead holder for alive.
        let pid = region.header_atomic(offsets::slot(role, index, SlotWord::Pid));
        let previous = pid.swap(u64::from(std::process::id()), AcqRel);
        match attach(memory, index) {
            Ok(handle) => return Ok(handle),
            Err(error) => {
                pid.store(previous, Release);
                match error {
                    Error::RoleTaken(_) => continue,
                    error => return Err(error),
                }
            }
        }
    }
    Err(Error::RoleTaken(role))
}
