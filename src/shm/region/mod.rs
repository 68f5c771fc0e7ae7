//! Regions: shared mappings that hold a ring.
//!
//! A [`Region`] is a file mapped shared into every process that takes part: a
//! [`layout::Header`] followed by `capacity` bytes of data, in total
//! [`Geometry::region_size`] bytes. Its creator sizes the file, writes the
//! header's identity words and publishes them by storing the ABI version last
//! (`Release`); an opener reads every identity word once (`Acquire`) and
//! checks them with [`Identity::validate`] before it maps the whole file.
//! The mapping is only ever touched through [`AtomicU64::from_ptr`] and raw
//! pointers, never through Rust references to the header or the data: another
//! process may write any byte at any time.
//!
//! # Named and anonymous regions
//!
//! * A **named** region ([`Region::create`], [`Region::open`]) is the file
//!   `/dev/shm/shmsg.NAME`. Its creator unlinks it when dropped, unless
//!   [`Region::keep`] was called; processes that already mapped it keep
//!   working, only new openers stop finding it. [`Region::list`] and
//!   [`Region::remove_stale`] find and clean up regions left behind.
//! * An **anonymous** region ([`Region::anonymous`]) is a memfd, handed to a
//!   child process as a file descriptor ([`Region::as_fd`], then
//!   [`Region::from_fd`] in the child). It disappears with its last user.
//!
//! # Building a region
//!
//! [`Region::options`] returns a [`RegionOptions`], a builder in the style of
//! [`std::fs::OpenOptions`] and the one place where regions are made: set the
//! ring's geometry and kind (what a creator builds, what an opener requires)
//! and the directory of named regions, then create, open, or attach. The
//! other constructors ([`Region::create`], [`Region::open_expect`],
//! [`Region::anonymous_kind`], ...) are shortcuts for it.
//!
//! ```
//! use std::sync::Arc;
//!
//! use shmsg::shm::layout::Geometry;
//! use shmsg::shm::{Region, spsc};
//!
//! let name = format!("doc-region-{}", std::process::id());
//! let g = Geometry::new(1 << 16, 1024)?;
//! // The creating process.
//! let region = Arc::new(Region::options().geometry(g).create(&name)?);
//! let mut producer = spsc::Producer::attach(&region)?;
//! // Another process (here the same one) opens the region by name.
//! let opened = Arc::new(Region::options().geometry(g).open(&name)?);
//! let mut consumer = spsc::Consumer::attach(&opened)?;
//! producer.send(b"hello")?;
//! let mut buf = Vec::new();
//! consumer.recv(&mut buf)?;
//! assert_eq!(buf, b"hello");
//! // Dropping the creator unlinks /dev/shm/shmsg.NAME.
//! # Ok::<(), shmsg::Error>(())
//! ```
//!
//! # Liveness locks
//!
//! Whether a process is attached is decided by Linux open-file-description
//! (OFD) byte-range locks on the region file, not by the pids in the header:
//! byte [`CREATOR_LOCK_BYTE`] is held by the creator for the region's
//! lifetime, [`PRODUCER_LOCK_BYTE`] and [`CONSUMER_LOCK_BYTE`] by the attached
//! sides. The kernel drops a process's locks when it dies, SIGKILL included,
//! and a lock cannot be confused with a recycled pid. OFD locks (unlike classic
//! POSIX record locks) belong to one open file description, so closing some
//! other descriptor of the same file does not release them, and two `Region`s
//! of one file in one process conflict with each other like two processes do.
//! Consequences: every `Region` opens its own description ([`Region::from_fd`]
//! re-opens the descriptor it is given); a descriptor passed to a child
//! shares the parent's description and keeps the parent's locks alive, so the
//! child should close it once it has called `from_fd` (a child forked without
//! `exec` holds them through its copy of the mapping too, until it exits); and
//! a lock held through this `Region`'s own description never counts as "held
//! elsewhere".
//!
//! # Security
//!
//! * Named regions are built as unnamed files (`O_TMPFILE`, mode 0600),
//!   fully set up, and then linked under their name with `linkat`, which
//!   fails if anything (a file or a symlink) exists there, as `O_EXCL` would:
//!   nothing planted under the name is reused, other users cannot open the
//!   region, and no process ever opens a half-made one. Where the filesystem
//!   lacks `O_TMPFILE`, the file is created `O_CREAT | O_EXCL | O_NOFOLLOW`
//!   under its name instead; an opener that comes too early then gets a typed
//!   error (`LayoutMismatch` on the size, or `NotInitialized`).
//! * The size is allocated (`fallocate`, or zeros written where that is
//!   unsupported) before the header is published, so a peer never faults on
//!   a hole. Openers check this: a file with fewer allocated bytes than its
//!   size (a sparse file: `st_blocks` against `st_size`) is refused with
//!   [`Error::Corrupt`] before more than the header is mapped. A crafted
//!   sparse file would otherwise be accepted, and the first write into a hole
//!   on a full tmpfs, which needs a page tmpfs cannot give, would kill the
//!   writer with SIGBUS. The check covers the file as it is at open time,
//!   and no more: it cannot see a later truncation (last point), and blocks
//!   allocated past the end of the file count towards the total, so it stops
//!   accidents and planted sparse files, not a process that can write the
//!   file and means harm. Filesystems that report fewer blocks than a file
//!   holds (compressing or copy-on-write ones may) get their regions refused.
//! * Anonymous regions are sealed with `F_SEAL_SHRINK | F_SEAL_GROW |
//!   F_SEAL_SEAL`; [`Region::from_fd`] refuses a memfd without the first two,
//!   so no process, the peer included, can shrink or grow the file under our
//!   mapping, and the seals cannot be changed any more.
//! * **Named regions can be truncated.** A named file cannot be sealed (only
//!   memfds can): any process that can write it (every process of the
//!   creator's user, the file being mode 0600) can `ftruncate` it at any time,
//!   and every process that has it mapped, creator, producer and consumer
//!   alike, then dies of SIGBUS at its next access past the new end. No check
//!   at open time can prevent that. Use anonymous regions where a process of
//!   the same user is not trusted. Openers do not check the file's owner: the
//!   contents are untrusted input either way, but a file planted by another
//!   user can be truncated by that user too.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::FileType;

use crate::error::{Error, Result};
use crate::shm::layout::{self, DATA_OFFSET, Geometry, Identity, RingKind, offsets};
use crate::shm::signal::Signals;

mod anon;
mod backing;
mod lock;
mod named;
mod options;
mod scan;
#[cfg(test)]
mod tests;

pub use lock::{
    CONSUMER_LOCK_BYTE, CREATOR_LOCK_BYTE, PRODUCER_LOCK_BYTE, RoleLock, SLOT_LOCK_BASE,
};
pub use named::{MAX_NAME_LEN, PREFIX, SHM_DIR, validate_name};
pub use options::RegionOptions;
pub use scan::{HeaderInfo, RegionInfo, SlotInfo};

use backing::check_backing;
use lock::LockFile;
use named::same_file;

/// A shared mapping holding a ring header and its data area. See the
/// [module documentation](self).
///
/// ```
/// use std::sync::Arc;
///
/// use shmsg::shm::layout::{Geometry, RingKind};
/// use shmsg::shm::{Region, spsc};
///
/// let region = Arc::new(Region::anonymous(Geometry::default())?);
/// assert_eq!(region.kind(), RingKind::Spsc);
/// let mut producer = spsc::Producer::attach(&region)?;
/// let mut consumer = spsc::Consumer::attach(&region)?;
/// producer.send(b"ping")?;
/// let mut buf = Vec::new();
/// consumer.recv(&mut buf)?;
/// assert_eq!(buf, b"ping");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct Region {
    // Declared before `file`: unmapped before the descriptor is closed.
    map: MmapRaw,
    file: Arc<LockFile>,
    geometry: Geometry,
    kind: RingKind,
    name: Option<String>,
    path: Option<PathBuf>,
    /// Set for the creator of a named region until [`Region::keep`].
    unlink_on_drop: bool,
    /// The ring's eventfds, for event loops: made with an anonymous region,
    /// or given with [`Region::with_signals`] (see [`crate::shm::signal`]).
    signals: Option<Arc<Signals>>,
}

// `Region` is `Send + Sync` without an `unsafe impl`: `MmapRaw`, `OwnedFd` and
// the atomics are. That is sound for the mapping because all access to it
// goes through atomics and raw-pointer copies whose safety arguments already
// assume concurrent writers in other processes; a thread is no different.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Region>();
    assert_send_sync::<RoleLock>();
};

impl Region {
    /// The region with `signals` as its ring's eventfds: the ring handles
    /// attached to it afterwards signal them and offer them to event loops
    /// (their `readiness`). An anonymous region has its own; a process that
    /// receives a region's memfd receives its eventfds beside it.
    ///
    /// ```
    /// use shmsg::shm::signal::Signals;
    /// use shmsg::shm::{Geometry, Region};
    ///
    /// let region = Region::anonymous(Geometry::default())?;
    /// assert!(region.signals().is_some());
    /// // Another process gets the memfd and the eventfds.
    /// let theirs = Region::from_fd(region.as_fd())?;
    /// assert!(theirs.signals().is_none());
    /// let theirs = theirs.with_signals(region.signals().unwrap().try_clone()?);
    /// assert!(theirs.signals().is_some());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn with_signals(mut self, signals: Signals) -> Region {
        self.signals = Some(Arc::new(signals));
        self
    }

    /// The ring's eventfds, if it has them.
    pub fn signals(&self) -> Option<&Signals> {
        self.signals.as_deref()
    }

    /// The ring's eventfds, shared with the backends attached to it.
    pub(crate) fn shared_signals(&self) -> Option<Arc<Signals>> {
        self.signals.clone()
    }

    /// The ring's validated capacity and maximum message size.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let g = Geometry::new(4096, 100)?;
    /// let region = Region::anonymous(g)?;
    /// assert_eq!(Region::from_fd(region.as_fd())?.geometry(), g);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The kind of ring the region holds.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::RingKind;
    ///
    /// let region = Region::options().kind(RingKind::Mpsc).anonymous()?;
    /// assert_eq!(Region::from_fd(region.as_fd())?.kind(), RingKind::Mpsc);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The region's name; `None` for an anonymous region.
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let name = format!("doc-name-{}", std::process::id());
    /// assert_eq!(Region::options().create(&name)?.name(), Some(name.as_str()));
    /// assert_eq!(Region::options().anonymous()?.name(), None);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The region file's path; `None` for an anonymous region.
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// use shmsg::shm::Region;
    ///
    /// let name = format!("doc-path-{}", std::process::id());
    /// let region = Region::options().create(&name)?;
    /// let expected = Path::new("/dev/shm").join(format!("shmsg.{name}"));
    /// assert_eq!(region.path(), Some(expected.as_path()));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The region's file descriptor, to pass an anonymous region to a child
    /// process: the caller clears `FD_CLOEXEC` on a duplicate it hands over.
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let region = Region::options().anonymous()?;
    /// // A duplicate without close-on-exec, for a child to inherit.
    /// let inherited = rustix::io::dup(region.as_fd()).unwrap();
    /// assert!(rustix::io::fcntl_getfd(&inherited).unwrap().is_empty());
    /// let attached = Region::from_fd(&inherited)?;
    /// # drop((attached, inherited));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.fd.as_fd()
    }

    /// Leaves the file of a named region in place when this creator is
    /// dropped. Peers that mapped it are unaffected either way.
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let name = format!("doc-keep-{}", std::process::id());
    /// let mut region = Region::options().create(&name)?;
    /// region.keep();
    /// drop(region);
    /// let reopened = Region::open(&name)?; // still there
    /// assert!(!reopened.creator_alive());
    /// Region::remove(&name)?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn keep(&mut self) {
        self.unlink_on_drop = false;
    }

    /// Start of the mapping (the header); valid for [`Region::len`] bytes as
    /// long as `self` lives.
    pub(crate) fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Length of the mapping: `geometry().region_size()`.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The header word at byte `offset`, one of [`layout::offsets`].
    ///
    /// # Panics
    ///
    /// If `offset` is not a multiple of 8 below [`DATA_OFFSET`]. The offsets
    /// are constants, so that is a bug in the caller, never bad shared data.
    pub(crate) fn header_atomic(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset < DATA_OFFSET,
            "header word offset {offset} is not a multiple of 8 below {DATA_OFFSET}"
        );
        debug_assert!(offset + 8 <= self.len());
        atomic_at(&self.map, offset)
    }

    /// Loads (`Acquire`) the header word at byte `offset`, one of
    /// [`layout::offsets`]. The value is whatever a peer last wrote.
    ///
    /// # Panics
    ///
    /// If `offset` is not a multiple of 8 below [`DATA_OFFSET`]: a programming
    /// error, as the offsets are constants.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{self, offsets};
    ///
    /// let region = Region::options().anonymous()?;
    /// assert_eq!(region.header_word(offsets::MAGIC), layout::MAGIC);
    /// assert_eq!(region.header_word(offsets::CREATOR_PID), u64::from(std::process::id()));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn header_word(&self, offset: usize) -> u64 {
        self.header_atomic(offset).load(Ordering::Acquire)
    }

    /// Maps a freshly allocated (all-zero) file and publishes its header.
    fn publish(
        fd: OwnedFd,
        geometry: Geometry,
        kind: RingKind,
        name: Option<String>,
        path: Option<PathBuf>,
    ) -> Result<Region> {
        let map = MmapOptions::new()
            .len(geometry.region_size())
            .map_raw(&fd)
            .map_err(|e| Error::io("cannot map the region", e))?;
        Identity::publish(kind, geometry, 0, |offset, value, order| {
            atomic_at(&map, offset).store(value, order)
        });
        Ok(Region::assemble(map, fd, geometry, kind, name, path))
    }

    /// Validates the file behind `fd` and maps it.
    fn attach(fd: OwnedFd, name: Option<String>, path: Option<PathBuf>) -> Result<Region> {
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| Error::io("cannot stat the region file", e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(Error::io(
                "cannot attach the region",
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let file_len = stat.st_size as u64;
        if file_len < DATA_OFFSET as u64 {
            return Err(Error::LayoutMismatch {
                field: "region size",
                expected: DATA_OFFSET as u64,
                found: file_len,
            });
        }
        // Map only the header until it has been checked against the file size.
        let header = MmapOptions::new()
            .len(DATA_OFFSET)
            .map_raw(&fd)
            .map_err(|e| Error::io("cannot map the region header", e))?;
        let words = identity(|offset| atomic_at(&header, offset).load(Ordering::Acquire));
        drop(header);
        let (kind, geometry) = check_identity(&words, file_len)?;
        check_backing(fd.as_fd(), geometry.region_size() as u64)?;
        let map = MmapOptions::new()
            .len(geometry.region_size())
            .map_raw(&fd)
            .map_err(|e| Error::io("cannot map the region", e))?;
        Ok(Region::assemble(map, fd, geometry, kind, name, path))
    }

    fn assemble(
        map: MmapRaw,
        fd: OwnedFd,
        geometry: Geometry,
        kind: RingKind,
        name: Option<String>,
        path: Option<PathBuf>,
    ) -> Region {
        Region {
            map,
            file: Arc::new(LockFile::new(fd)),
            geometry,
            kind,
            name,
            path,
            unlink_on_drop: false,
            signals: None,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if !self.unlink_on_drop {
            return;
        }
        if let Some(path) = &self.path {
            // Only if the name still refers to our file: it may have been
            // removed and created anew by someone else.
            if same_file(self.file.fd.as_fd(), path) {
                let _ = rustix::fs::unlink(path);
            }
        }
    }
}

/// The atomic word at `offset` of `map`.
fn atomic_at(map: &MmapRaw, offset: usize) -> &AtomicU64 {
    assert!(
        offset.is_multiple_of(8) && offset + 8 <= map.len(),
        "word offset {offset} out of the mapping"
    );
    // SAFETY: the mapping is page-aligned and `offset` a multiple of 8, so the
    // pointer is aligned for `AtomicU64`; the 8 bytes lie inside the mapping
    // (checked above), which stays mapped for the lifetime of `map`, to which
    // the result is tied. Every access to header words, in this and in other
    // processes, is an 8-byte atomic one, and no Rust reference to the bytes
    // other than `&AtomicU64` is ever formed.
    unsafe { AtomicU64::from_ptr(map.as_mut_ptr().add(offset).cast::<u64>()) }
}

/// Reads each identity word once through `word`, the ABI version first: with
/// `Acquire` loads, seeing it published makes the other words visible.
fn identity(word: impl Fn(usize) -> u64) -> Identity {
    let abi_version = word(offsets::ABI_VERSION);
    Identity {
        magic: word(offsets::MAGIC),
        abi_version,
        ring_kind: word(offsets::RING_KIND),
        capacity: word(offsets::CAPACITY),
        max_message: word(offsets::MAX_MESSAGE),
        pointer_width: word(offsets::POINTER_WIDTH),
        endian: word(offsets::ENDIAN),
        cache_line: word(offsets::CACHE_LINE),
        data_offset: word(offsets::DATA_OFFSET),
        creator_pid: word(offsets::CREATOR_PID),
    }
}

/// [`Identity::validate_any`], except that an all-zero start (a creator that
/// has not written anything yet) is also [`Error::NotInitialized`].
fn check_identity(words: &Identity, file_len: u64) -> Result<(RingKind, Geometry)> {
    if words.abi_version == 0 && (words.magic == 0 || words.magic == layout::MAGIC) {
        return Err(Error::NotInitialized);
    }
    words.validate_any(file_len)
}
