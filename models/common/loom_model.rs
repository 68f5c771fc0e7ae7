//! The loom instances of the model backend's parts.

use super::{ModelBackend, ModelFutex, Scheduler, Tracker};

crate::model_atomic!(LoomAtomic, loom::sync::atomic::AtomicU64);

/// Tracks a word's non-atomic accesses as a `loom::cell::UnsafeCell`.
pub struct LoomCell(loom::cell::UnsafeCell<()>);
// SAFETY: the cell holds `()` and is never dereferenced; it only records
// accesses, which loom checks for races across threads.
unsafe impl Sync for LoomCell {}
impl Tracker for LoomCell {
    fn new() -> Self {
        LoomCell(loom::cell::UnsafeCell::new(()))
    }
    fn read(&self) {
        self.0.with(|_| ())
    }
    fn write(&self) {
        self.0.with_mut(|_| ())
    }
}

/// A futex made of a loom mutex and condition variable. Loom reports a
/// deadlock when every thread is blocked, so a lost wake-up fails the model.
pub struct LoomFutex {
    lock: loom::sync::Mutex<()>,
    sleepers: loom::sync::Condvar,
}

impl ModelFutex for LoomFutex {
    fn new() -> Self {
        LoomFutex {
            lock: loom::sync::Mutex::new(()),
            sleepers: loom::sync::Condvar::new(),
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

/// Loom's scheduling hooks.
pub struct Loom;
impl Scheduler for Loom {
    type Futex = LoomFutex;
    fn yield_now() {
        loom::thread::yield_now()
    }
    fn fence() {
        loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst)
    }
    fn thread() -> String {
        super::trace::short_thread(loom::thread::current().id())
    }
}

/// The model backend under loom, with the seeded defects of `F`.
pub type LoomBackend<F> = ModelBackend<LoomAtomic, LoomCell, Loom, F>;
