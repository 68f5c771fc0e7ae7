//! Anonymous regions: sealed memfds, handed to other processes as file
//! descriptors, and the checks an attacher applies to a descriptor it is
//! given.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{FileType, MemfdFlags, Mode, OFlags, SealFlags};

use crate::error::{Error, Result};
use crate::shm::layout::{Geometry, RingKind};
use crate::shm::signal::Signals;

use super::Region;
use super::backing::allocate;
use super::lock::take_creator_lock;

/// Creates a memfd holding an empty ring of `kind` and `geometry`, allocated
/// and sealed against shrinking, growing and further sealing before the
/// header is published.
pub(super) fn create(geometry: Geometry, kind: RingKind) -> Result<Region> {
    let fd = rustix::fs::memfd_create("shmsg", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::io("cannot create a memfd for an anonymous region", e))?;
    take_creator_lock(fd.as_fd())?;
    allocate(fd.as_fd(), geometry.region_size() as u64)?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| Error::io("cannot seal the anonymous region's memfd", e))?;
    let signals = Signals::new()?;
    Ok(Region::publish(fd, geometry, kind, None, None)?.with_signals(signals))
}

/// Attaches the anonymous region whose memfd is `fd`, through a description
/// of its own (re-opened through `/proc/self/fd`); refused unless the memfd
/// is sealed against shrinking and growing.
pub(super) fn from_fd(fd: BorrowedFd<'_>) -> Result<Region> {
    // What the descriptor is, before anything opens it: re-opening a
    // device or a FIFO a peer handed over could block, or more.
    sealed_memfd(fd)?;
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let own = rustix::fs::open(&proc, flags, Mode::empty()).map_err(|e| {
        Error::io(
            format!("cannot re-open the region's descriptor through {proc}"),
            e,
        )
    })?;
    // The same file, unless the descriptor changed under us.
    sealed_memfd(own.as_fd())?;
    Region::attach(own, None, None)
}

/// Checks that `fd` is a regular file (a memfd) sealed against shrinking
/// and growing.
fn sealed_memfd(fd: BorrowedFd<'_>) -> Result<()> {
    let stat =
        rustix::fs::fstat(fd).map_err(|e| Error::io("cannot stat the region's descriptor", e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Error::io(
            "cannot attach the region",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the descriptor is not a regular file",
            ),
        ));
    }
    let seals = rustix::fs::fcntl_get_seals(fd)
        .map_err(|e| Error::io("cannot read the seals of the region's memfd", e))?;
    if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
        return Err(Error::corrupt(
            "memfd is not sealed against shrinking/growing",
            u64::from(seals.bits()),
        ));
    }
    Ok(())
}
