//! Liveness locks: Linux open-file-description (OFD) byte-range locks on the
//! region file, one byte per role or slot (module documentation of
//! [`crate::shm::region`], `# Liveness locks`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, Role};
use crate::shm::layout;

use super::Region;

/// Byte of the region file locked by the creator.
///
/// ```
/// use shmsg::shm::region::{CONSUMER_LOCK_BYTE, CREATOR_LOCK_BYTE, PRODUCER_LOCK_BYTE};
///
/// assert_eq!((CREATOR_LOCK_BYTE, PRODUCER_LOCK_BYTE, CONSUMER_LOCK_BYTE), (0, 1, 2));
/// ```
pub const CREATOR_LOCK_BYTE: u64 = 0;
/// Byte of the region file locked by the attached producer.
///
/// ```
/// assert_eq!(shmsg::shm::region::PRODUCER_LOCK_BYTE, 1);
/// ```
pub const PRODUCER_LOCK_BYTE: u64 = 1;
/// Byte of the region file locked by the attached consumer.
///
/// ```
/// assert_eq!(shmsg::shm::region::CONSUMER_LOCK_BYTE, 2);
/// ```
pub const CONSUMER_LOCK_BYTE: u64 = 2;
/// First byte of the slot locks of a multi-producer ring
/// ([`crate::shm::mpmc`]): producer slot `i` locks byte
/// `SLOT_LOCK_BASE + i`, consumer slot `j` byte
/// `SLOT_LOCK_BASE + MAX_PRODUCERS + j`.
///
/// ```
/// use shmsg::shm::layout::MAX_PRODUCERS;
/// use shmsg::shm::region::{CONSUMER_LOCK_BYTE, SLOT_LOCK_BASE};
///
/// // Past the role bytes; consumer slot 0 locks byte 24.
/// assert!(SLOT_LOCK_BASE > CONSUMER_LOCK_BYTE);
/// assert_eq!(SLOT_LOCK_BASE + MAX_PRODUCERS as u64, 24);
/// ```
pub const SLOT_LOCK_BASE: u64 = 8;
/// One past the last lock byte of any kind of ring.
pub(super) const LOCK_BYTES_END: u64 =
    SLOT_LOCK_BASE + (layout::MAX_PRODUCERS + layout::MAX_CONSUMERS) as u64;

/// The lock byte of slot `index` of `role`.
pub(super) fn slot_byte(role: Role, index: usize) -> u64 {
    match role {
        Role::Producer => SLOT_LOCK_BASE + index as u64,
        Role::Consumer => SLOT_LOCK_BASE + (layout::MAX_PRODUCERS + index) as u64,
    }
}

fn role_byte(role: Role) -> u64 {
    match role {
        Role::Producer => PRODUCER_LOCK_BYTE,
        Role::Consumer => CONSUMER_LOCK_BYTE,
    }
}

/// The region's file descriptor: its own open file description, which owns
/// the liveness locks. Shared with the [`RoleLock`]s taken through it.
#[derive(Debug)]
pub(super) struct LockFile {
    pub(super) fd: OwnedFd,
    /// Bit `1 << byte` is set while a [`RoleLock`] of this description holds
    /// `byte`: the kernel lets one description re-lock its own byte, so two
    /// `lock_role` calls through one `Region` are told apart here.
    pub(super) held: AtomicU64,
}

impl LockFile {
    pub(super) fn new(fd: OwnedFd) -> LockFile {
        LockFile {
            fd,
            held: AtomicU64::new(0),
        }
    }
}

impl Region {
    /// Takes the liveness lock of `role` without blocking.
    /// [`Error::RoleTaken`] if another open file description (another
    /// process, or another `Region` of this file in this process) holds it,
    /// or a [`RoleLock`] of this `Region` already does. The lock is released
    /// when the returned guard is dropped, or when the process dies.
    #[doc(hidden)]
    pub fn lock_role(&self, role: Role) -> Result<RoleLock> {
        self.lock_byte(role, role_byte(role))
    }

    /// [`Region::lock_role`] for slot `index` of `role` of a multi-producer
    /// ring (index below [`layout::MAX_PRODUCERS`] or
    /// [`layout::MAX_CONSUMERS`]).
    #[doc(hidden)]
    pub fn lock_slot(&self, role: Role, index: usize) -> Result<RoleLock> {
        self.lock_byte(role, slot_byte(role, index))
    }

    /// Whether another open file description holds the lock of slot
    /// `index` of `role` of a multi-producer ring; `true` if the kernel
    /// cannot answer.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use shmsg::Role;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    /// use shmsg::shm::{Region, mpmc};
    ///
    /// let region = Region::anonymous_kind(Geometry::default(), RingKind::Mpsc)?;
    /// let elsewhere = Arc::new(Region::from_fd(region.as_fd())?);
    /// let producer = mpmc::Producer::attach(&elsewhere)?;
    /// assert!(region.slot_held_elsewhere(Role::Producer, 0));
    /// assert!(!region.slot_held_elsewhere(Role::Producer, 1));
    /// drop(producer);
    /// assert!(!region.slot_held_elsewhere(Role::Producer, 0));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn slot_held_elsewhere(&self, role: Role, index: usize) -> bool {
        held_elsewhere(self.file.fd.as_fd(), slot_byte(role, index)).unwrap_or(true)
    }

    fn lock_byte(&self, role: Role, byte: u64) -> Result<RoleLock> {
        let bit = 1u64 << byte;
        if self.file.held.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(Error::RoleTaken(role));
        }
        match try_lock(self.file.fd.as_fd(), byte) {
            Ok(true) => Ok(RoleLock {
                file: Arc::clone(&self.file),
                role,
                byte,
            }),
            Ok(false) => {
                self.file.held.fetch_and(!bit, Ordering::Release);
                Err(Error::RoleTaken(role))
            }
            Err(e) => {
                self.file.held.fetch_and(!bit, Ordering::Release);
                Err(Error::io(format!("cannot lock the {role} role"), e))
            }
        }
    }

    /// Whether another open file description holds `role`'s liveness lock,
    /// i.e. a live process (or another `Region` in this one) is attached as
    /// `role`. A lock held through this `Region` itself does not count. If
    /// the kernel cannot answer, reports `true` (alive).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use shmsg::Role;
    /// use shmsg::shm::layout::Geometry;
    /// use shmsg::shm::{Region, spsc};
    ///
    /// let region = Region::anonymous(Geometry::default())?;
    /// // Another description of the same file, as another process would have.
    /// let elsewhere = Arc::new(Region::from_fd(region.as_fd())?);
    /// let consumer = spsc::Consumer::attach(&elsewhere)?;
    /// assert!(region.role_held_elsewhere(Role::Consumer));
    /// assert!(!region.role_held_elsewhere(Role::Producer));
    /// // Its own lock does not count for the `Region` that holds it.
    /// assert!(!elsewhere.role_held_elsewhere(Role::Consumer));
    /// drop(consumer);
    /// assert!(!region.role_held_elsewhere(Role::Consumer));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn role_held_elsewhere(&self, role: Role) -> bool {
        held_elsewhere(self.file.fd.as_fd(), role_byte(role)).unwrap_or(true)
    }

    /// Whether the creator's lock is held through another open file
    /// description, i.e. the creating `Region` still exists somewhere. Always
    /// `false` when called on the creating `Region` itself. If the kernel
    /// cannot answer, reports `true`.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    /// use shmsg::shm::Region;
    ///
    /// let creator = Region::anonymous(Geometry::default())?;
    /// let opener = Region::from_fd(creator.as_fd())?;
    /// assert!(opener.creator_alive());
    /// assert!(!creator.creator_alive());
    /// drop(creator);
    /// // The descriptor, and with it the creator's lock, went with it.
    /// assert!(!opener.creator_alive());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn creator_alive(&self) -> bool {
        held_elsewhere(self.file.fd.as_fd(), CREATOR_LOCK_BYTE).unwrap_or(true)
    }
}

/// A held liveness lock of one side; released on drop.
///
/// It shares the region's open file description (not the mapping) through an
/// `Arc`, so it may outlive the `Region` it came from; the description, and
/// with it the creator's lock, then lives until the guard is dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct RoleLock {
    file: Arc<LockFile>,
    role: Role,
    byte: u64,
}

impl RoleLock {
    /// The side whose lock this is.
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Drop for RoleLock {
    fn drop(&mut self) {
        let byte = self.byte;
        let _ = ofd_fcntl(
            self.file.fd.as_fd(),
            libc::F_OFD_SETLK,
            &mut flock(libc::F_UNLCK, byte, 1),
        );
        // After the unlock, so a new `lock_role` cannot be undone by it.
        self.file.held.fetch_and(!(1u64 << byte), Ordering::Release);
    }
}

pub(super) fn take_creator_lock(fd: BorrowedFd<'_>) -> Result<()> {
    match try_lock(fd, CREATOR_LOCK_BYTE) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::io(
            "cannot take the region's creator lock",
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "held by another open file description",
            ),
        )),
        Err(e) => Err(Error::io("cannot take the region's creator lock", e)),
    }
}

/// A `struct flock` for an OFD lock command on `len` bytes from `start`.
fn flock(l_type: libc::c_int, start: u64, len: u64) -> libc::flock {
    // SAFETY: `flock` is a C struct of integers (plus padding on some
    // targets), for which all-zero bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    fl.l_pid = 0; // required by the F_OFD_* commands
    fl
}

fn ofd_fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor for the duration of the borrow, and
    // F_OFD_SETLK / F_OFD_GETLK read (GETLK also writes) exactly one
    // `struct flock`, which `fl` points to and exclusively borrows.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Tries to write-lock `byte` for `fd`'s open file description: `Ok(false)`
/// if another description holds a conflicting lock.
fn try_lock(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    try_lock_range(fd, byte, 1)
}

pub(super) fn try_lock_range(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    match ofd_fcntl(fd, libc::F_OFD_SETLK, &mut flock(libc::F_WRLCK, start, len)) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another open file description holds a lock on `byte`.
pub(super) fn held_elsewhere(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK, byte, 1);
    ofd_fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
