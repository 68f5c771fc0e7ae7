//! The descriptors event loops wait on: one eventfd per ring direction.
//!
//! A futex cannot be registered with `epoll`, so a ring that an event loop
//! (tokio, mio, a `poll(2)` loop) waits on carries two eventfds beside its
//! memory, one per [`Event`]: a waiter announces itself as a *descriptor
//! sleeper* and waits for the eventfd to become readable, and a notifier
//! that finds one announced writes to it (see [`crate::shm::wait`]). A busy
//! stream never touches them.
//!
//! The eventfds are in semaphore mode (`EFD_SEMAPHORE`): a notifier adds one
//! signal per descriptor sleeper it found, and each waiter consumes one
//! ([`Signals::consume`]), so every waiter of a shared ring wakes even when
//! its event loop polls level-triggered. They are non-blocking, so neither
//! side ever blocks on them.
//!
//! Whoever makes a ring makes its signals: [`crate::shm::Mapped::heap`] for
//! rings between threads, [`crate::shm::Region::anonymous`] for a listener's
//! rings, whose eventfds travel with the memfd over the rendezvous socket.
//! A descriptor received from a peer is checked ([`Signals::from_fds`]):
//! writing to a socket or a pipe a peer passed off as an eventfd could
//! block or raise `SIGPIPE`.
//!
//! ```
//! use shmsg::shm::signal::Signals;
//! use shmsg::sync::Event;
//!
//! let signals = Signals::new()?;
//! let fd = signals.fd(Event::Data);
//! assert!(!Signals::consume(fd)); // nothing signalled
//! # Ok::<(), shmsg::Error>(())
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};
use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::sync::Event;

/// The two eventfds of a ring: [`Event::Data`] (the consumer waits, the
/// producer signals) and [`Event::Space`] (the reverse).
#[derive(Debug)]
pub struct Signals {
    data: OwnedFd,
    space: OwnedFd,
}

impl Signals {
    /// Two fresh eventfds (semaphore mode, non-blocking, close-on-exec).
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use shmsg::shm::signal::Signals;
    /// use shmsg::sync::Event;
    ///
    /// let signals = Signals::new()?;
    /// assert_ne!(signals.fd(Event::Data).as_raw_fd(), signals.fd(Event::Space).as_raw_fd());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new() -> Result<Signals> {
        let make = || {
            eventfd(
                0,
                EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK | EventfdFlags::SEMAPHORE,
            )
            .map_err(|e| Error::io("cannot create an eventfd for a ring's signals", e))
        };
        Ok(Signals {
            data: make()?,
            space: make()?,
        })
    }

    /// Signals made of two descriptors a peer sent: each must be an
    /// eventfd (anything else is refused with a typed error, before
    /// anything is written to it); both are made non-blocking.
    ///
    /// ```
    /// use shmsg::shm::signal::Signals;
    ///
    /// // A pipe is not an eventfd: refused.
    /// let (r, w) = rustix::pipe::pipe().unwrap();
    /// assert!(Signals::from_fds(r, w).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn from_fds(data: OwnedFd, space: OwnedFd) -> Result<Signals> {
        for fd in [&data, &space] {
            check_eventfd(fd.as_fd())?;
        }
        Ok(Signals { data, space })
    }

    /// The eventfd of `which`: readable while a signal is pending.
    pub fn fd(&self, which: Event) -> BorrowedFd<'_> {
        match which {
            Event::Data => self.data.as_fd(),
            Event::Space => self.space.as_fd(),
        }
    }

    /// Adds `count` signals to `which` (a failure is ignored: the waiters
    /// notice at the end of their slice, as after any lost signal).
    pub(crate) fn signal(&self, which: Event, count: u32) {
        let bytes = u64::from(count).to_ne_bytes();
        // A full counter (2^64 - 2 unconsumed signals) or a peer's odd
        // descriptor: nothing to do but carry on.
        let _ = rustix::io::write(self.fd(which), &bytes);
    }

    /// Consumes one signal of the eventfd `fd`, if one is pending; never
    /// waits. Returns whether one was.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    /// use shmsg::shm::signal::Signals;
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
    /// rx.arm(); // a descriptor sleeper: the next send signals
    /// tx.send(b"x")?;
    /// let fd = rx.readiness().expect("rings between threads have signals");
    /// assert!(Signals::consume(fd));
    /// assert!(!Signals::consume(fd)); // one signal for one sleeper
    /// rx.disarm();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn consume(fd: BorrowedFd<'_>) -> bool {
        let mut bytes = [0u8; 8];
        loop {
            match rustix::io::read(fd, &mut bytes) {
                Ok(8) => return true,
                Err(Errno::INTR) => {}
                _ => return false,
            }
        }
    }

    /// Duplicates both descriptors (to hand them to another process).
    pub fn try_clone(&self) -> Result<Signals> {
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| Error::io("cannot duplicate a ring's eventfd", e))
        };
        Ok(Signals {
            data: dup(&self.data)?,
            space: dup(&self.space)?,
        })
    }
}

/// Refuses `fd` unless it is an eventfd, and makes it non-blocking.
fn check_eventfd(fd: BorrowedFd<'_>) -> Result<()> {
    let refuse = |what: &str| {
        Error::io(
            "cannot use a ring's signal descriptor",
            io::Error::new(io::ErrorKind::InvalidInput, what.to_string()),
        )
    };
    let stat =
        rustix::fs::fstat(fd).map_err(|e| Error::io("cannot stat a signal descriptor", e))?;
    // An eventfd is an anonymous inode: no file type at all. Sockets,
    // pipes, devices and files all have one.
    if FileType::from_raw_mode(stat.st_mode) != FileType::Unknown {
        return Err(refuse("not an eventfd (it has a file type)"));
    }
    // Where /proc is mounted, it names the kind of anonymous inode.
    if let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        && target.as_os_str() != "anon_inode:[eventfd]"
    {
        return Err(refuse("not an eventfd"));
    }
    let flags = rustix::fs::fcntl_getfl(fd)
        .map_err(|e| Error::io("cannot read a signal descriptor's flags", e))?;
    if !flags.contains(OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK)
            .map_err(|e| Error::io("cannot make a signal descriptor non-blocking", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_per_sleeper_is_consumed_once() {
        let signals = Signals::new().unwrap();
        signals.signal(Event::Space, 2);
        let fd = signals.fd(Event::Space);
        assert!(Signals::consume(fd));
        assert!(Signals::consume(fd));
        assert!(!Signals::consume(fd));
        // The other direction saw nothing.
        assert!(!Signals::consume(signals.fd(Event::Data)));
    }

    /// A notifier signals the eventfd only for descriptor sleepers: a
    /// blocked thread's wake-up (a futex sleeper alone) leaves it quiet,
    /// so no event loop wakes for nothing and no write is made.
    #[test]
    fn a_futex_sleeper_alone_is_not_signalled() {
        use std::sync::atomic::Ordering::Relaxed;

        use crate::shm::{Geometry, Mapped, spsc};
        use crate::sync::Backend;
        let memory = Mapped::heap(Geometry::default(), 0).unwrap();
        let mut tx = spsc::Producer::with_backend(memory.clone()).unwrap();
        let mut rx = spsc::Consumer::with_backend(memory.clone()).unwrap();
        let fd = rx.readiness().unwrap().try_clone_to_owned().unwrap();
        let receiver = std::thread::spawn(move || {
            let mut buf = Vec::new();
            rx.recv(&mut buf).unwrap();
            buf
        });
        // Until the receiver is announced asleep on the futex.
        while crate::shm::wait::sleepers(memory.event(Event::Data).load(Relaxed)) == 0 {
            std::thread::yield_now();
        }
        tx.send(b"wake").unwrap();
        assert_eq!(receiver.join().unwrap(), b"wake");
        assert!(
            !Signals::consume(fd.as_fd()),
            "a futex wake-up signalled the eventfd"
        );
    }

    /// Arming announces one descriptor sleeper however often it is
    /// called; disarming (or dropping the handle) withdraws it, and
    /// disarming an unarmed handle changes nothing.
    #[test]
    fn arming_and_disarming_keep_the_count_exact() {
        use std::sync::atomic::Ordering::Relaxed;

        use crate::shm::wait::{descriptor_sleepers, sleepers};
        use crate::shm::{Geometry, Mapped, spsc};
        use crate::sync::Backend;
        let memory = Mapped::heap(Geometry::default(), 0).unwrap();
        let mut rx = spsc::Consumer::with_backend(memory.clone()).unwrap();
        let word = || memory.event(Event::Data).load(Relaxed);
        rx.disarm();
        assert_eq!(word(), 0, "disarming an unarmed handle");
        rx.arm();
        rx.arm();
        assert_eq!((descriptor_sleepers(word()), sleepers(word())), (1, 0));
        rx.disarm();
        assert_eq!(word(), 0, "disarming withdraws the announcement");
        rx.arm();
        drop(rx);
        assert_eq!(descriptor_sleepers(word()), 0, "a dropped handle disarms");
    }

    #[test]
    fn a_received_eventfd_is_accepted_and_made_non_blocking() {
        let blocking = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::SEMAPHORE).unwrap();
        let other = eventfd(0, EventfdFlags::CLOEXEC).unwrap();
        let signals = Signals::from_fds(blocking, other).unwrap();
        let flags = rustix::fs::fcntl_getfl(signals.fd(Event::Data)).unwrap();
        assert!(flags.contains(OFlags::NONBLOCK));
        // Consuming from an empty one returns at once.
        assert!(!Signals::consume(signals.fd(Event::Data)));
    }

    #[test]
    fn sockets_files_and_other_anonymous_inodes_are_refused() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert!(Signals::from_fds(a, b).is_err());
        let file: OwnedFd = std::fs::File::open("/proc/self/stat").unwrap().into();
        let good = Signals::new().unwrap();
        assert!(Signals::from_fds(file, good.data).is_err());
        let epoll =
            rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
        assert!(Signals::from_fds(epoll, good.space).is_err());
    }
}
