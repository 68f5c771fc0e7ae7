//! The shuttle instances of the model backend's parts.

use super::{ModelBackend, ModelFutex, Scheduler, Tracker};

crate::model_atomic!(ShuttleAtomic, shuttle::sync::atomic::AtomicU64);

/// Shuttle has no tracked cells; torn and stale bytes are caught by the
/// content check instead.
pub struct Untracked;
impl Tracker for Untracked {
    fn new() -> Self {
        Untracked
    }
    fn read(&self) {}
    fn write(&self) {}
}

/// A futex made of a shuttle mutex and condition variable; shuttle reports
/// a deadlock when every thread is blocked.
pub struct ShuttleFutex {
    lock: shuttle::sync::Mutex<()>,
    sleepers: shuttle::sync::Condvar,
}

impl ModelFutex for ShuttleFutex {
    fn new() -> Self {
        ShuttleFutex {
            lock: shuttle::sync::Mutex::new(()),
            sleepers: shuttle::sync::Condvar::new(),
        }
    }
    fn wait(&self, still: impl FnOnce() -> bool) {
        let guard = self.lock.lock().unwrap();
        if still() {
            drop(self.sleepers.wait(guard).unwrap());
        }
    }
    fn wake(&self) {
        let _guard = self.lock.lock().unwrap();
        self.sleepers.notify_all();
    }
}

/// Shuttle's scheduling hooks. Its atomics are sequentially consistent, so
/// its fence adds nothing but a scheduling point.
pub struct Shuttle;
impl Scheduler for Shuttle {
    type Futex = ShuttleFutex;
    fn yield_now() {
        shuttle::thread::yield_now()
    }
    fn fence() {
        shuttle::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The model backend under shuttle, with the seeded defects of `F`.
pub type ShuttleBackend<F> = ModelBackend<ShuttleAtomic, Untracked, Shuttle, F>;
