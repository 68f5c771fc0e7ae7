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
    fn thread() -> String {
        super::trace::short_thread(shuttle::thread::current().id())
    }
}

/// The model backend under shuttle, with the seeded defects of `F`.
pub type ShuttleBackend<F> = ModelBackend<ShuttleAtomic, Untracked, Shuttle, F>;

/// The directory where this test process's failing shuttle schedules go,
/// held open by the tests that may write into it.
///
/// Shuttle installs its panic hook (which persists a failing schedule) once
/// per process, with the configuration of the first run, so every run of a
/// process persists into one directory. Each test holds a [`FailureDir`]
/// while it explores; the last one to finish removes the directory if it
/// is empty. A failing schedule is never removed: the directory stays, and
/// its path is printed with the command that replays it.
pub struct FailureDir {
    path: std::path::PathBuf,
}

/// How many [`FailureDir`]s are held in this process.
static HOLDERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

impl FailureDir {
    /// Holds `$TMPDIR/PREFIX-PID`, creating it if this is the first holder.
    pub fn hold(prefix: &str) -> FailureDir {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let mut holders = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&path).unwrap();
        *holders += 1;
        FailureDir { path }
    }

    /// The directory.
    pub fn path(&self) -> std::path::PathBuf {
        self.path.clone()
    }

    /// The schedule files in it.
    pub fn schedules(&self) -> std::collections::BTreeSet<std::path::PathBuf> {
        std::fs::read_dir(&self.path)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "txt"))
            .collect()
    }
}

impl Drop for FailureDir {
    fn drop(&mut self) {
        let mut holders = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        *holders -= 1;
        if *holders == 0 {
            // Fails, and keeps the directory, if a failing schedule is in it.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}
