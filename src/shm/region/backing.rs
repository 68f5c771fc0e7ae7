//! The storage behind a region file: allocated before a creator publishes
//! the header, and checked before an opener maps more than the header
//! (module documentation of [`crate::shm::region`], `# Security`).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::FallocateFlags;
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Gives the new, empty file `len` allocated bytes, so that no access to the
/// mapping can fault on a hole; writes `len` zero bytes where `fallocate` is
/// unsupported (a file only sized with `ftruncate` would be sparse, and
/// openers refuse those: [`check_backing`]).
pub(super) fn allocate(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOSYS => write_zeros(fd, len)
            .map_err(|e| Error::io(format!("cannot write {len} bytes for the region"), e)),
        Err(e) => Err(Error::io(
            format!("cannot allocate {len} bytes for the region"),
            e,
        )),
    }
}

/// Writes `len` zero bytes from offset 0.
pub(super) fn write_zeros(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; 64 * 1024];
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(zeros.len() as u64) as usize;
        match rustix::io::pwrite(fd, &zeros[..n], offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => offset += written as u64,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What [`check_backing`] reports, with the number of bytes allocated.
pub(super) const SPARSE: &str =
    "region file has unallocated blocks (a sparse file); the value is the bytes allocated";

/// Checks, before the whole file is mapped, that it still holds the `len`
/// bytes of the validated region and that all of them have storage behind
/// them: a file with holes ("sparse") is [`Error::Corrupt`]. A hole gets its
/// page only when first written; on a full tmpfs (or disk) that write cannot
/// get one and the writing process dies of SIGBUS instead of seeing an error.
///
/// The allocation is read from `st_blocks` (in 512-byte units), not found with
/// `lseek(SEEK_HOLE)`: tmpfs reports pages that `fallocate` reserved but
/// nobody has written yet as holes, and ext4 and XFS do the same for
/// preallocated extents, so `SEEK_HOLE` would refuse the regions creators
/// make. `st_blocks` counts those pages. It is a total, though: blocks
/// allocated past the end of the file (`fallocate` with
/// `FALLOC_FL_KEEP_SIZE`) make up for a hole of the same size. This check
/// catches sparse files, not a process that can write the file on purpose;
/// that one can truncate it later anyway (module documentation, `# Security`).
pub(super) fn check_backing(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Error::io("cannot stat the region file", e))?;
    let size = stat.st_size as u64;
    if size != len {
        // Resized since the header was checked against the size.
        return Err(Error::LayoutMismatch {
            field: "region size",
            expected: len,
            found: size,
        });
    }
    let allocated = (stat.st_blocks as u64).saturating_mul(512);
    if allocated < len {
        return Err(Error::corrupt(SPARSE, allocated));
    }
    Ok(())
}
