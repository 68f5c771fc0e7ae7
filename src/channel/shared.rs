//! A sender shared by several threads: [`SharedSender`] and its [`Lock`].

use std::time::Duration;

use super::Sender;
use crate::error::Result;

/// Mutual exclusion for [`SharedSender`]: the seam through which the models
/// run it with a model checker's mutex.
///
/// ```
/// use std::sync::Mutex;
/// use shmsg::channel::Lock;
///
/// let counter: Mutex<u32> = Lock::new(0);
/// counter.with(|n| *n += 1);
/// assert_eq!(counter.with(|n| *n), 1);
/// ```
pub trait Lock<T> {
    /// A lock around `value`.
    fn new(value: T) -> Self;
    /// Runs `f` with the value, excluding every other holder meanwhile.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

impl<T> Lock<T> for std::sync::Mutex<T> {
    fn new(value: T) -> Self {
        std::sync::Mutex::new(value)
    }
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A holder that panicked cannot have left half a frame behind: a
        // frame the kernel took in part is kept by the sender and finished
        // by the next send.
        let mut guard = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// A sender many threads can share (clone it): each message goes out whole,
/// never interleaved with another thread's, and each thread's messages keep
/// their order.
///
/// Over a byte stream this is the rule that matters: the kernel may take a
/// frame in several writes, and another writer must not start a frame in
/// between. The lock covers the whole send, including the rest of a frame a
/// previous send left (see [`Sender::flush`]). `models/frames.rs` checks
/// this with loom and shuttle.
///
/// ```
/// use shmsg::channel::{Receiver, Sender, SharedSender};
/// use shmsg::shm::{Geometry, spsc};
///
/// let (tx, mut rx) = spsc::channel(Geometry::new(1024, 64)?)?;
/// let shared: SharedSender<_> = SharedSender::new(tx);
/// let threads: Vec<_> = (0..2u8)
///     .map(|id| {
///         let mut tx = shared.clone();
///         std::thread::spawn(move || tx.send(&[id]))
///     })
///     .collect();
/// for thread in threads {
///     thread.join().unwrap()?;
/// }
/// let mut got = Vec::new();
/// for _ in 0..2 {
///     let mut buf = Vec::new();
///     rx.recv(&mut buf)?;
///     got.push(buf[0]);
/// }
/// got.sort();
/// assert_eq!(got, [0, 1]);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub struct SharedSender<S, L = std::sync::Mutex<S>> {
    inner: std::sync::Arc<L>,
    _sender: std::marker::PhantomData<fn() -> S>,
}

impl<S: Sender, L: Lock<S>> SharedSender<S, L> {
    /// Shares `sender`.
    ///
    /// ```
    /// use shmsg::channel::{Sender, SharedSender};
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (tx, mut rx) = spsc::channel(Geometry::default())?;
    /// let shared: SharedSender<_> = SharedSender::new(tx);
    /// shared.clone().send(b"through the lock")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"through the lock");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new(sender: S) -> Self {
        SharedSender {
            inner: std::sync::Arc::new(L::new(sender)),
            _sender: std::marker::PhantomData,
        }
    }
}

impl<S, L> Clone for SharedSender<S, L> {
    fn clone(&self) -> Self {
        SharedSender {
            inner: std::sync::Arc::clone(&self.inner),
            _sender: std::marker::PhantomData,
        }
    }
}

impl<S, L> std::fmt::Debug for SharedSender<S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSender").finish_non_exhaustive()
    }
}

impl<S: Sender, L: Lock<S>> Sender for SharedSender<S, L> {
    fn max_message(&self) -> usize {
        self.inner.with(|s| s.max_message())
    }
    fn try_send(&mut self, message: &[u8]) -> Result<()> {
        self.inner.with(|s| s.try_send(message))
    }
    fn send(&mut self, message: &[u8]) -> Result<()> {
        self.inner.with(|s| s.send(message))
    }
    fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.inner.with(|s| s.send_timeout(message, timeout))
    }
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        self.inner.with(|s| s.send_batch(messages))
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.with(|s| s.flush())
    }
    fn try_flush(&mut self) -> Result<()> {
        self.inner.with(|s| s.try_flush())
    }
    // No `readiness`: the sender's descriptor is behind the lock. Give
    // each task its own sender to wait in an event loop.
}
