//! Clean exits on SIGINT, SIGTERM and SIGHUP.
//!
//! [`install`] starts a thread that waits for those signals (signal-hook
//! turns each into a byte on a pipe, so the handler itself only writes a
//! byte, which is async-signal-safe). When one arrives, the thread removes
//! the paths registered with [`remove_on_signal`] and exits with 128 + the
//! signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as
//! shells expect of a process a signal ended.

use std::path::PathBuf;
use std::sync::Mutex;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Paths to remove on a signal, with the number of the guard that owns
/// each.
static PATHS: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(0);

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
                let paths = std::mem::take(&mut *PATHS.lock().unwrap_or_else(|p| p.into_inner()));
                for (_, path) in paths {
                    remove(&path);
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
    let id = {
        let mut next = NEXT.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        *next
    };
    PATHS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, path.clone()));
    RemoveGuard { id, path }
}

/// Removes its path when dropped (see [`remove_on_signal`]).
pub struct RemoveGuard {
    id: u64,
    path: PathBuf,
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        PATHS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
        remove(&self.path);
    }
}

/// Removes `path`. Another thread may be creating a file in the directory
/// while it is removed (a signal arrives mid-measurement), which makes
/// one removal fail with "directory not empty"; once the directory is gone
/// nothing can be created in it, so a few tries always end it.
fn remove(path: &std::path::Path) {
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
