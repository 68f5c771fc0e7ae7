//! What an event loop waits on for a sender or a receiver: [`Readiness`].

/// What readiness of [`Readiness::fd`] means "attempt again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Wait until the descriptor is readable (a ring's eventfd, a socket
    /// to receive from).
    Readable,
    /// Wait until the descriptor is writable (a socket or pipe to send to).
    Writable,
}

/// What an event loop (tokio, mio, `poll(2)`) waits on for a [`Sender`](super::Sender) or
/// a [`Receiver`](super::Receiver): [`Sender::readiness`](super::Sender::readiness), [`Receiver::readiness`](super::Receiver::readiness).
///
/// Readiness is a hint: the non-blocking attempt (`try_send`, `try_recv`)
/// decides. The one rule, for every transport:
///
/// ```text
/// loop {
///     match end.try_recv(..) { Err(Empty) => {}, done => return done }
///     end.arm();                      // a ring: the peer signals from now on
///     match end.try_recv(..) { Err(Empty) => {}, done => { end.disarm(); return done } }
///     wait for `interest` on `fd`, at most one slice (shm::wait::SLICE);
///     if it came and `signalled`: consume one signal (Signals::consume)
///     if it did not come: end.idle()?  (a ring's dead peer; see Receiver::idle)
///     end.disarm();
/// }
/// ```
///
/// The re-check after `arm` is what makes the wait safe: a message
/// published before the peer saw the announcement is found by it, and one
/// published after is signalled. `examples/poll.rs` runs this loop with
/// `poll(2)`; `shmsg::tokio` (feature `tokio`) with tokio's `AsyncFd`.
#[derive(Clone, Copy, Debug)]
pub struct Readiness<'a> {
    /// The descriptor to wait on: a ring's eventfd, or the socket or pipe.
    pub fd: std::os::fd::BorrowedFd<'a>,
    /// What to wait for.
    pub interest: Interest,
    /// Whether `fd` is a ring's eventfd, whose signal the waiter consumes
    /// ([`crate::shm::signal::Signals::consume`]) once it is readable.
    pub signalled: bool,
}

impl<'a> Readiness<'a> {
    /// A ring's eventfd.
    pub(crate) fn signalled(fd: std::os::fd::BorrowedFd<'a>) -> Readiness<'a> {
        Readiness {
            fd,
            interest: Interest::Readable,
            signalled: true,
        }
    }

    /// A kernel link's descriptor, waited on for `interest`.
    pub(crate) fn link(fd: std::os::fd::BorrowedFd<'a>, interest: Interest) -> Readiness<'a> {
        Readiness {
            fd,
            interest,
            signalled: false,
        }
    }
}
