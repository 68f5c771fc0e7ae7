//! Clean exits on SIGINT, SIGTERM and SIGHUP.
//!
//! [`install`] starts a thread that waits for those signals (signal-hook
//! turns each into a byte on a pipe, so the handler itself only writes a
//! byte, which is async-signal-safe). When one arrives, the thread removes
//! the paths registered with [`remove_on_signal`] and
//! [`create_removed_on_signal`] and exits with 128 + the signal's number
//! (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as shells expect of a
//! process a signal ended.
//!
//! `std::process::exit` runs no destructors, so whatever a command made
//! that its values would remove when dropped (a listener's socket file) it
//! registers here too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What to remove on a signal, with the number of the guard that owns
/// each.
static PATHS: Mutex<Vec<(u64, Target)>> = Mutex::new(Vec::new());
/// The number of the next guard.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Something to remove on a signal.
#[derive(Clone, Debug)]
enum Target {
    /// A directory with its contents, or a file, whatever is there.
    Any(PathBuf),
    /// A file this process made: removed only while the path still names
    /// it (the same device and inode), never a file another process put
    /// there since.
    Made {
        /// Absolute, so that a change of working directory cannot make it
        /// name another file.
        path: PathBuf,
        dev: u64,
        ino: u64,
    },
}

impl Target {
    fn remove(&self) {
        match self {
            Target::Any(path) => remove(path),
            Target::Made { path, dev, ino } => remove_if_same(path, *dev, *ino),
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Target)>> {
    PATHS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the signal thread. Without it (it could not be started), the
/// signals keep their default action: the process ends, without cleanup.
pub fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Waits for a `create_removed_on_signal` under way to
                // register what it made.
                let targets = std::mem::take(&mut *lock());
                for (_, target) in targets {
                    target.remove();
                }
                std::process::exit(128 + signal);
            }
        });
    drop(spawned);
}

/// Removes `path` (a directory with its contents, or a file) if a signal
/// ends the process while the returned guard lives. Dropping the guard
/// removes `path` too.
pub fn remove_on_signal(path: PathBuf) -> RemoveGuard {
    register(&mut lock(), Target::Any(path))
}

/// Runs `create`, which makes a file at the path `made` finds in its result
/// (a listener's socket file), and removes that file if a signal ends the
/// process while the returned guard lives, as [`remove_on_signal`] does,
/// but only while the path still names the file made now: not one that
/// another process put there later. Dropping the guard removes it too.
///
/// A signal that arrives while `create` runs waits until the file is
/// registered, so that it cannot be left behind.
pub fn create_removed_on_signal<T, E>(
    create: impl FnOnce() -> Result<T, E>,
    made: impl FnOnce(&T) -> Option<PathBuf>,
) -> Result<(T, Option<RemoveGuard>), E> {
    let mut targets = lock();
    let created = create()?;
    let guard = made(&created).and_then(|path| {
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let path = std::path::absolute(&path).unwrap_or(path);
        Some(register(
            &mut targets,
            Target::Made {
                path,
                dev: meta.dev(),
                ino: meta.ino(),
            },
        ))
    });
    Ok((created, guard))
}

fn register(targets: &mut Vec<(u64, Target)>, target: Target) -> RemoveGuard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    targets.push((id, target.clone()));
    RemoveGuard { id, target }
}

/// Removes its path when dropped (see [`remove_on_signal`] and
/// [`create_removed_on_signal`]).
pub struct RemoveGuard {
    id: u64,
    target: Target,
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.id);
        self.target.remove();
    }
}

/// Removes `path` if it is still the file `(dev, ino)`.
fn remove_if_same(path: &Path, dev: u64, ino: u64) {
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.dev() == dev && meta.ino() == ino) {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes `path`. Another thread may be creating a file in the directory
/// while it is removed (a signal arrives mid-measurement), which makes
/// one removal fail with "directory not empty"; once the directory is gone
/// nothing can be created in it, so a few tries always end it.
fn remove(path: &Path) {
    for _ in 0..100 {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        if removed.is_ok() || !path.exists() {
            return;
        }
    }
}
