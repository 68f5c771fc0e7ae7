//! The consumer of an `mpsc:` listener's ring, shared by its channels.

use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use crate::channel::{Readiness, Receiver};
use crate::error::{Error, Result};
use crate::options::Deadline;
use crate::shm::mpmc;
use crate::shm::signal::Signals;

/// The consumer of an `mpsc:` listener's ring, shared by every channel the
/// listener returns: a receive on any of them takes the next message from
/// any producer. Receives from several threads at once take turns; a timed
/// one still returns by its deadline.
#[derive(Clone)]
pub(crate) struct SharedConsumer {
    consumer: Arc<Mutex<mpmc::Consumer>>,
    max_message: usize,
    /// The ring's eventfds, outside the lock, for event loops.
    signals: Option<Arc<Signals>>,
}

impl SharedConsumer {
    pub(super) fn new(
        consumer: mpmc::Consumer,
        max_message: usize,
        signals: Option<Arc<Signals>>,
    ) -> SharedConsumer {
        SharedConsumer {
            consumer: Arc::new(Mutex::new(consumer)),
            max_message,
            signals,
        }
    }

    /// Runs `f` on the consumer if it is free now; `None` if another
    /// thread holds it (a blocking `recv` holds it for its whole wait, and
    /// an event loop's thread must not wait for that).
    fn try_locked<T>(&self, f: impl FnOnce(&mut mpmc::Consumer) -> T) -> Option<T> {
        match self.consumer.try_lock() {
            Ok(mut guard) => Some(f(&mut guard)),
            Err(TryLockError::Poisoned(e)) => Some(f(&mut e.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Runs `f` on the consumer once it is free, or [`Error::Timeout`] (or
    /// [`Error::Empty`] for [`Deadline::Now`]) if another thread holds it
    /// until `deadline`.
    fn with<T>(
        &self,
        deadline: Deadline,
        f: impl FnOnce(&mut mpmc::Consumer, Deadline) -> Result<T>,
    ) -> Result<T> {
        if let Deadline::Never = deadline {
            let mut guard = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
            return f(&mut guard, deadline);
        }
        loop {
            match self.consumer.try_lock() {
                Ok(mut guard) => return f(&mut guard, deadline),
                Err(TryLockError::Poisoned(e)) => return f(&mut e.into_inner(), deadline),
                Err(TryLockError::WouldBlock) if deadline.passed() => {
                    return Err(match deadline {
                        Deadline::Now => Error::Empty,
                        _ => Error::Timeout,
                    });
                }
                Err(TryLockError::WouldBlock) => {
                    std::thread::sleep(deadline.slice(Duration::from_millis(1)));
                }
            }
        }
    }
}

impl Receiver for SharedConsumer {
    fn max_message(&self) -> usize {
        self.max_message
    }
    fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.with(Deadline::Now, |consumer, _| consumer.try_recv(buf))
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.with(Deadline::Never, |consumer, _| consumer.recv(buf))
    }
    fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.with(Deadline::after(timeout), |consumer, deadline| {
            consumer.recv_timeout(buf, deadline.remaining().unwrap_or(Duration::ZERO))
        })
    }
    fn try_recv_lend(&mut self, read: &mut dyn FnMut(&[u8])) -> Result<usize> {
        self.with(Deadline::Now, |consumer, _| {
            consumer.try_recv_with(|message| {
                read(message);
                message.len()
            })
        })
    }
    fn readiness(&self) -> Option<Readiness<'_>> {
        let signals = self.signals.as_deref()?;
        Some(Readiness::signalled(signals.fd(crate::sync::Event::Data)))
    }
    // One announcement for the shared consumer: two tasks that wait on
    // channels of one `mpsc:` listener at once share it, and the first to
    // disarm withdraws it; the other then wakes by its slice.
    //
    // While another thread holds the consumer (a blocking receive on
    // another channel of the listener), these do nothing rather than wait:
    // an unannounced wait then ends by its idle check, and an announcement
    // left in place only costs signals until the next `disarm`.
    fn arm(&mut self) {
        self.try_locked(|consumer| consumer.arm());
    }
    fn disarm(&mut self) {
        self.try_locked(|consumer| consumer.disarm());
    }
    fn idle(&mut self) -> Result<()> {
        self.try_locked(|consumer| consumer.idle())
            .unwrap_or(Ok(()))
    }
}
