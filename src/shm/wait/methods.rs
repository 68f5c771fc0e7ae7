//! The methods written once for both rings, as macros expanded inside each
//! ring's handles: the [`Waiter`] impl, and the blocking send and receive
//! methods around each handle's one-attempt steps. Each method's example
//! body is in the `.md` file of its name beside this one, run against both
//! rings.
//!
//! [`Waiter`]: super::Waiter

/// Implements [`Waiter`](super::Waiter) for a ring handle generic over
/// `B: Backend` whose fields `backend` and `spin` are the memory and the
/// spin budget, which waits for `$event` (notified by `$peer`), and whose
/// method `on_wake` is its `woke` hook.
macro_rules! waiter {
    ($handle:ident, $event:expr, $peer:expr) => {
        impl<B: $crate::sync::Backend> $crate::shm::wait::Waiter for $handle<B> {
            type Backend = B;
            const EVENT: $crate::sync::Event = $event;
            const PEER: $crate::error::Role = $peer;
            fn backend(&self) -> &B {
                &self.backend
            }
            fn spin_budget(&mut self) -> &mut $crate::shm::wait::Spin {
                &mut self.spin
            }
            fn woke(
                &mut self,
                slept: $crate::shm::wait::Slept,
            ) -> $crate::error::Result<$crate::shm::wait::Woke> {
                self.on_wake(slept)
            }
        }
    };
}
pub(crate) use waiter;

/// The methods of a ring handle for event loops, written once for every
/// handle: expanded inside `impl<B: Backend> Producer<B>` and
/// `impl<B: Backend> Consumer<B>` of both rings. `$op` names the operation
/// whose would-block the readiness is for (`try_recv` or `try_send`) in the
/// docs. The protocol is in [`crate::shm::wait`] ("Descriptor sleepers").
macro_rules! event_loop_methods {
    ($op:literal) => {
        #[doc = concat!("The descriptor an event loop waits on when `", $op, "` would block: an")]
        /// eventfd that becomes readable once the peer signals it, if the
        /// ring has one (a listener's rings and rings between threads do;
        /// a region opened by name does not). Readiness is a hint: the
        /// attempt decides. The rule (`wait until` is the event loop's own
        /// wait):
        ///
        /// ```text
        #[doc = concat!("loop {
    match handle.", $op, "(..) { would block => {}, done => return done }
    handle.arm();                 // announce: the peer signals from now on
    match handle.", $op, "(..) { would block => {}, done => { handle.disarm(); return done } }")]
        ///     wait until readiness() is readable, at most wait::SLICE;
        ///     if readable { Signals::consume(fd) } else { handle.idle()? }
        ///     handle.disarm();
        /// }
        /// ```
        ///
        /// `idle` after a slice without a signal does what a blocked
        /// thread does then: it finds a dead peer (and repairs what it
        /// left). `examples/poll.rs` is this loop with `poll(2)`; the
        /// `tokio` feature's `shmsg::tokio` is it with `AsyncFd`.
        pub fn readiness(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            $crate::sync::Backend::descriptor(
                &self.backend,
                <Self as $crate::shm::wait::Waiter>::EVENT,
            )
        }

        /// Announces this handle as a descriptor sleeper (once, however
        /// often it is called) and fences: until [`Self::disarm`], the
        /// peer signals [`Self::readiness`] whenever it publishes or frees
        /// space. Re-check the ring after this, before waiting (see
        /// [`Self::readiness`]). A handle dropped while armed disarms.
        pub fn arm(&mut self) {
            $crate::shm::wait::arm(self)
        }

        /// Withdraws the announcement of [`Self::arm`], if any.
        pub fn disarm(&mut self) {
            $crate::shm::wait::disarm(self)
        }

        /// Call after waiting on [`Self::readiness`] for a slice
        /// ([`crate::shm::wait::SLICE`]) without a signal: finds a dead peer,
        /// which nobody would signal about, and repairs what it left (a
        /// multi-producer ring's abandoned claim). `Ok`: attempt again;
        /// [`Error::Disconnected`]: attempt once more, and if it would
        /// block, the peer is gone; another error ends the call.
        pub fn idle(&mut self) -> Result<()> {
            $crate::shm::wait::idle(self)
        }
    };
}
pub(crate) use event_loop_methods;

/// The blocking receive methods of a ring consumer, written once for both
/// rings: expanded inside `impl<B: Backend> Consumer<B>`, over the
/// consumer's own `try_recv_with` (one attempt now), `recv_with_once` (one
/// attempt of a blocking call) and `blocking` (the wait loop around it).
/// `$channel` makes the ring of each method's example (1024 bytes, messages
/// up to 64), whose ends it names `tx` and `rx`; the rest of each example is
/// in `src/shm/wait/<method>.md`.
macro_rules! receive_methods {
    ($channel:literal) => {
        /// Receives the next message into `buf` (replacing its contents) if
        /// one is waiting, and returns its length. [`Error::Empty`] if none
        /// is; [`Error::Disconnected`] if none is and the producers (every
        /// one of them) have detached.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/try_recv.md")), "```")]
        #[inline]
        pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
            self.try_recv_with($crate::shm::wait::copy_into(buf))
        }

        /// Receives the next message, waiting while the ring is empty.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/recv.md")), "```")]
        pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
            self.recv_with($crate::shm::wait::copy_into(buf))
        }

        /// Receives the next message, waiting at most `timeout` (plus at
        /// most one sleep slice), whatever the other processes do.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/recv_timeout.md")), "```")]
        pub fn recv_timeout(
            &mut self,
            buf: &mut Vec<u8>,
            timeout: std::time::Duration,
        ) -> Result<usize> {
            self.recv_with_timeout(timeout, $crate::shm::wait::copy_into(buf))
        }

        /// [`Consumer::try_recv_with`], waiting while the ring is empty.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/recv_with.md")), "```")]
        pub fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
            let mut read = Some(read);
            self.blocking($crate::options::Deadline::Never, |c| {
                c.recv_with_once(&mut read)
            })
        }

        /// [`Consumer::recv_with`] with a timeout.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/recv_with_timeout.md")), "```")]
        pub fn recv_with_timeout<R>(
            &mut self,
            timeout: std::time::Duration,
            read: impl FnOnce(&[u8]) -> R,
        ) -> Result<R> {
            let mut read = Some(read);
            self.blocking($crate::options::Deadline::after(timeout), |c| {
                c.recv_with_once(&mut read)
            })
        }
    };
}
pub(crate) use receive_methods;

/// The blocking send methods of a ring producer, written once for both
/// rings: expanded inside `impl<B: Backend> Producer<B>`, over the
/// producer's own `try_send`, `send_with_once` (one attempt of an in-place
/// send) and `blocking` (the wait loop). `$channel` as for
/// `receive_methods`.
macro_rules! send_methods {
    ($channel:literal) => {
        /// Sends `message`, waiting while the ring is full.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/send.md")), "```")]
        pub fn send(&mut self, message: &[u8]) -> Result<()> {
            self.blocking($crate::options::Deadline::Never, |p| p.try_send(message))
        }

        /// Sends `message`, waiting at most `timeout` while the ring is full.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/send_timeout.md")), "```")]
        pub fn send_timeout(&mut self, message: &[u8], timeout: std::time::Duration) -> Result<()> {
            self.blocking($crate::options::Deadline::after(timeout), |p| {
                p.try_send(message)
            })
        }

        /// [`Producer::try_send_with`], waiting while the ring is full.
        ///
        #[doc = concat!("```\n# use shmsg::shm::{Geometry, layout::RingKind, mpmc, spsc};\nlet (mut tx, mut rx) = ", $channel, "?;\n", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/shm/wait/send_with.md")), "```")]
        pub fn send_with(
            &mut self,
            max_len: usize,
            fill: impl FnOnce(&mut [u8]) -> usize,
        ) -> Result<usize> {
            let mut fill = Some(fill);
            self.blocking($crate::options::Deadline::Never, |p| {
                p.send_with_once(max_len, &mut fill)
            })
        }
    };
}
pub(crate) use send_methods;
