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

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{FallocateFlags, FileType, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, Role};
use crate::shm::layout::{self, DATA_OFFSET, Geometry, Identity, RingKind, offsets};
use crate::sync::SlotWord;

/// Directory that holds named regions.
pub const SHM_DIR: &str = "/dev/shm";
/// Prefix of a named region's file name: region `NAME` is `SHM_DIR/shmsg.NAME`.
pub const PREFIX: &str = "shmsg.";
/// Longest region name, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Byte of the region file locked by the creator.
pub const CREATOR_LOCK_BYTE: u64 = 0;
/// Byte of the region file locked by the attached producer.
pub const PRODUCER_LOCK_BYTE: u64 = 1;
/// Byte of the region file locked by the attached consumer.
pub const CONSUMER_LOCK_BYTE: u64 = 2;
/// First byte of the slot locks of a multi-producer ring
/// ([`crate::shm::mpmc`]): producer slot `i` locks byte
/// `SLOT_LOCK_BASE + i`, consumer slot `j` byte
/// `SLOT_LOCK_BASE + MAX_PRODUCERS + j`.
pub const SLOT_LOCK_BASE: u64 = 8;
/// One past the last lock byte of any kind of ring.
const LOCK_BYTES_END: u64 = SLOT_LOCK_BASE + (layout::MAX_PRODUCERS + layout::MAX_CONSUMERS) as u64;

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

/// The lock byte of slot `index` of `role`.
fn slot_byte(role: Role, index: usize) -> u64 {
    match role {
        Role::Producer => SLOT_LOCK_BASE + index as u64,
        Role::Consumer => SLOT_LOCK_BASE + (layout::MAX_PRODUCERS + index) as u64,
    }
}

/// Checks a region name: 1 to 200 bytes of ASCII letters, digits, `.`, `_`
/// and `-`, not starting with `.` and without `..`.
pub fn validate_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_NAME_LEN {
        "is longer than 200 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        "may contain only ASCII letters, digits, '.', '_' and '-'"
    } else if name.starts_with('.') {
        "starts with '.'"
    } else if name.contains("..") {
        "contains \"..\""
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        why,
    })
}

fn region_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{name}"))
}

/// An error of a system call on the file of region `name`.
fn file_error(doing: &str, name: &str, path: &Path, e: Errno) -> Error {
    let what = match e {
        Errno::EXIST => ": it already exists",
        Errno::NOENT => ": it does not exist",
        _ => "",
    };
    Error::io(
        format!("cannot {doing} region {name:?} at {}{what}", path.display()),
        e,
    )
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
struct LockFile {
    fd: OwnedFd,
    /// Bit `1 << byte` is set while a [`RoleLock`] of this description holds
    /// `byte`: the kernel lets one description re-lock its own byte, so two
    /// `lock_role` calls through one `Region` are told apart here.
    held: AtomicU64,
}

/// A shared mapping holding a ring header and its data area. See the
/// [module documentation](self).
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
    /// Creates the named region `/dev/shm/shmsg.NAME` holding an empty ring of
    /// `geometry`. Fails with [`Error::Io`] (source kind `AlreadyExists`) if
    /// the file exists. The region is unlinked when the returned value is
    /// dropped, unless [`Region::keep`] is called.
    ///
    /// The file cannot be sealed: any process of the same user can truncate
    /// it, and then every process that has it mapped, this one included, dies
    /// of SIGBUS at its next access past the new end. An anonymous region
    /// ([`Region::anonymous`]) is sealed against that. See the
    /// [module documentation](self#security).
    pub fn create(name: &str, geometry: Geometry) -> Result<Region> {
        Region::create_in(Path::new(SHM_DIR), name, geometry)
    }

    /// [`Region::create`] in directory `dir` instead of `/dev/shm`.
    ///
    /// The file is built unnamed (`O_TMPFILE`): locked, sized, mapped and its
    /// header published, and only then linked under its name, which fails if
    /// the name exists (as `O_EXCL` would). So no other process can ever open
    /// a half-made region. Where the filesystem has no `O_TMPFILE`, the file
    /// is created `O_EXCL` under its name and set up in place.
    pub fn create_in(dir: &Path, name: &str, geometry: Geometry) -> Result<Region> {
        Region::create_kind_in(dir, name, geometry, RingKind::Spsc)
    }

    /// [`Region::create`] for a ring of `kind` (a multi-producer ring,
    /// [`crate::shm::mpmc`], for [`RingKind::Mpsc`] and [`RingKind::Mpmc`]).
    pub fn create_kind(name: &str, geometry: Geometry, kind: RingKind) -> Result<Region> {
        Region::create_kind_in(Path::new(SHM_DIR), name, geometry, kind)
    }

    /// [`Region::create_kind`] in directory `dir`.
    pub fn create_kind_in(
        dir: &Path,
        name: &str,
        geometry: Geometry,
        kind: RingKind,
    ) -> Result<Region> {
        validate_name(name)?;
        let path = region_path(dir, name);
        let mode = Mode::from_raw_mode(0o600);
        let unnamed = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::open(dir, unnamed, mode) {
            Ok(fd) => {
                let mut region = Region::set_up(fd, geometry, kind, name, &path)?;
                // Through /proc: `AT_EMPTY_PATH` would need a capability.
                let proc_path = format!("/proc/self/fd/{}", region.as_fd().as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    &proc_path,
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(|e| file_error("create", name, &path, e))?;
                region.unlink_on_drop = true;
                Ok(region)
            }
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                let named = OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::RDWR
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::open(&path, named, mode)
                    .map_err(|e| file_error("create", name, &path, e))?;
                match Region::set_up(fd, geometry, kind, name, &path) {
                    Ok(mut region) => {
                        region.unlink_on_drop = true;
                        Ok(region)
                    }
                    Err(e) => {
                        let _ = rustix::fs::unlink(&path);
                        Err(e)
                    }
                }
            }
            Err(e) => Err(file_error("create", name, &path, e)),
        }
    }

    /// Locks, sizes, maps and publishes a new region file.
    fn set_up(
        fd: OwnedFd,
        geometry: Geometry,
        kind: RingKind,
        name: &str,
        path: &Path,
    ) -> Result<Region> {
        // First, so that `remove_stale` never takes the new file for a dead one.
        take_creator_lock(fd.as_fd())?;
        // The umask may have taken bits away; peers need read and write.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(|e| Error::io("cannot set the region file's mode", e))?;
        allocate(fd.as_fd(), geometry.region_size() as u64)?;
        Region::publish(
            fd,
            geometry,
            kind,
            Some(name.to_owned()),
            Some(path.to_owned()),
        )
    }

    /// Opens the named region `/dev/shm/shmsg.NAME` and validates its header,
    /// accepting any geometry.
    ///
    /// The file is untrusted input. Before it is mapped beyond its header, its
    /// type, size and header are checked, and so is its allocation: a file
    /// with holes (a sparse file, whose first write into a hole kills the
    /// writer with SIGBUS when tmpfs is full) is [`Error::Corrupt`]. What no
    /// check can cover is a truncation later on: any process of the same user
    /// can shrink the file at any time, and this process then dies of SIGBUS
    /// at its next access past the new end. A sealed anonymous region
    /// ([`Region::from_fd`]) cannot be resized. See the
    /// [module documentation](self#security).
    pub fn open(name: &str) -> Result<Region> {
        Region::open_in(Path::new(SHM_DIR), name)
    }

    /// [`Region::open`], additionally requiring the ring to have `geometry`;
    /// a difference is [`Error::LayoutMismatch`] naming the field.
    pub fn open_expect(name: &str, geometry: Geometry) -> Result<Region> {
        let region = Region::open(name)?;
        Identity::expect(region.geometry, geometry)?;
        Ok(region)
    }

    /// [`Region::open`] in directory `dir` instead of `/dev/shm`.
    pub fn open_in(dir: &Path, name: &str) -> Result<Region> {
        validate_name(name)?;
        let path = region_path(dir, name);
        let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&path, flags, Mode::empty())
            .map_err(|e| file_error("open", name, &path, e))?;
        Region::attach(fd, Some(name.to_owned()), Some(path))
    }

    /// Creates an anonymous region (a sealed memfd) holding an empty ring of
    /// `geometry`. Hand it to another process with [`Region::as_fd`].
    pub fn anonymous(geometry: Geometry) -> Result<Region> {
        Region::anonymous_kind(geometry, RingKind::Spsc)
    }

    /// [`Region::anonymous`] for a ring of `kind`.
    pub fn anonymous_kind(geometry: Geometry, kind: RingKind) -> Result<Region> {
        let fd = rustix::fs::memfd_create("shmsg", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| Error::io("cannot create a memfd for an anonymous region", e))?;
        take_creator_lock(fd.as_fd())?;
        allocate(fd.as_fd(), geometry.region_size() as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|e| Error::io("cannot seal the anonymous region's memfd", e))?;
        Region::publish(fd, geometry, kind, None, None)
    }

    /// Attaches the anonymous region whose memfd is `fd` (typically inherited
    /// from the creator). The file is re-opened through `/proc/self/fd`, so
    /// this `Region` has its own open file description and its own locks; the
    /// caller should close `fd` afterwards if it was inherited, or it keeps
    /// the creator's locks alive. Fails unless the memfd is sealed against
    /// shrinking and growing, and, like [`Region::open`], if the file has
    /// holes.
    pub fn from_fd(fd: impl AsFd) -> Result<Region> {
        // What the descriptor is, before anything opens it: re-opening a
        // device or a FIFO a peer handed over could block, or more.
        sealed_memfd(fd.as_fd())?;
        let proc = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
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
            file: Arc::new(LockFile {
                fd,
                held: AtomicU64::new(0),
            }),
            geometry,
            kind,
            name,
            path,
            unlink_on_drop: false,
        }
    }

    /// The ring's validated capacity and maximum message size.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The kind of ring the region holds.
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The region's name; `None` for an anonymous region.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The region file's path; `None` for an anonymous region.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The region's file descriptor, to pass an anonymous region to a child
    /// process: the caller clears `FD_CLOEXEC` on a duplicate it hands over.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.fd.as_fd()
    }

    /// Leaves the file of a named region in place when this creator is
    /// dropped. Peers that mapped it are unaffected either way.
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
    pub fn header_word(&self, offset: usize) -> u64 {
        self.header_atomic(offset).load(Ordering::Acquire)
    }

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
    /// `index` of `role`; `true` if the kernel cannot answer.
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
    pub fn role_held_elsewhere(&self, role: Role) -> bool {
        held_elsewhere(self.file.fd.as_fd(), role_byte(role)).unwrap_or(true)
    }

    /// Whether the creator's lock is held through another open file
    /// description, i.e. the creating `Region` still exists somewhere. Always
    /// `false` when called on the creating `Region` itself. If the kernel
    /// cannot answer, reports `true`.
    pub fn creator_alive(&self) -> bool {
        held_elsewhere(self.file.fd.as_fd(), CREATOR_LOCK_BYTE).unwrap_or(true)
    }

    /// Unlinks the named region `NAME`. Processes that mapped it keep working.
    pub fn remove(name: &str) -> Result<()> {
        Region::remove_in(Path::new(SHM_DIR), name)
    }

    /// [`Region::remove`] in directory `dir`.
    pub fn remove_in(dir: &Path, name: &str) -> Result<()> {
        validate_name(name)?;
        let path = region_path(dir, name);
        rustix::fs::unlink(&path).map_err(|e| file_error("remove", name, &path, e))
    }

    /// Describes every named region in `/dev/shm`, sorted by name.
    pub fn list() -> Result<Vec<RegionInfo>> {
        Region::list_in(Path::new(SHM_DIR))
    }

    /// [`Region::list`] in directory `dir`.
    pub fn list_in(dir: &Path) -> Result<Vec<RegionInfo>> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let mut infos = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                continue;
            };
            // `file_type` does not follow symlinks: only plain files count.
            if validate_name(name).is_err() || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            infos.push(inspect(dir, name));
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    /// Removes (unless `dry_run`) every named region in `/dev/shm` that no
    /// live process uses: neither the creator's nor a side's lock is held.
    /// Returns the names of the regions removed (or that would be).
    pub fn remove_stale(dry_run: bool) -> Result<Vec<String>> {
        Region::remove_stale_in(Path::new(SHM_DIR), dry_run)
    }

    /// [`Region::remove_stale`] in directory `dir`.
    pub fn remove_stale_in(dir: &Path, dry_run: bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for info in Region::list_in(dir)?
            .into_iter()
            .filter(RegionInfo::is_stale)
        {
            if dry_run || remove_if_unlocked(&region_path(dir, &info.name)) {
                removed.push(info.name);
            }
        }
        Ok(removed)
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

/// What [`Region::list`] found out about one named region.
#[derive(Debug, Clone)]
pub struct RegionInfo {
    /// The region's name (without the `shmsg.` prefix).
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Whether the file could be opened and inspected; if not, the lock flags
    /// are `false` and `validation` says why.
    pub accessible: bool,
    /// Whether the creator's lock is held (the creating process is alive and
    /// has not dropped the region).
    pub creator_locked: bool,
    /// Whether a producer is attached (its lock is held).
    pub producer_locked: bool,
    /// Whether a consumer is attached (its lock is held).
    pub consumer_locked: bool,
    /// Whether each producer slot's lock is held, for a multi-producer ring
    /// (whatever the header says, the locks are read: all `false` for a
    /// single-producer ring).
    pub producer_slot_locks: [bool; layout::MAX_PRODUCERS],
    /// Whether each consumer slot's lock is held, as `producer_slot_locks`.
    pub consumer_slot_locks: [bool; layout::MAX_CONSUMERS],
    /// The header's words, if its identity is valid (even when the file is
    /// refused for another reason: see `validation`).
    pub header: Option<HeaderInfo>,
    /// The ring's geometry, or why an opener would refuse the region: its
    /// header, or a file with unallocated blocks.
    pub validation: Result<Geometry, String>,
}

impl RegionInfo {
    /// Whether no live process uses the region: it was inspected and none of
    /// the creator's, producer's or consumer's locks is held.
    pub fn is_stale(&self) -> bool {
        self.accessible && !self.creator_locked && !self.producer_locked && !self.consumer_locked
    }
}

/// The header words of a region whose identity is valid, as last written by
/// their owners (pids are not proof of life: see the lock flags of
/// [`RegionInfo`]). Apart from the identity, nothing here is checked: the
/// positions and slot words are whatever the region holds, garbage included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The kind of ring the region holds.
    pub kind: RingKind,
    /// The ring's capacity and maximum message size (validated).
    pub geometry: Geometry,
    /// The producers' position ([`offsets::TAIL`]).
    pub tail: u64,
    /// The consumers' position ([`offsets::HEAD`]).
    pub head: u64,
    /// The shared read cursor of an [`RingKind::Mpmc`] ring
    /// ([`offsets::READ_CURSOR`]).
    pub read_cursor: u64,
    /// Pid of the creator.
    pub creator_pid: u64,
    /// Pid of the last producer to attach to a single-producer ring (a
    /// multi-producer ring keeps its pids in `producer_slots`).
    pub producer_pid: u64,
    /// The producer's attachment epoch (odd: attached); in a multi-producer
    /// ring, `2n - 1` while `n >= 1` producers are attached.
    pub producer_epoch: u64,
    /// Pid of the last consumer to attach to a single-producer ring.
    pub consumer_pid: u64,
    /// The consumer's attachment epoch, as `producer_epoch`.
    pub consumer_epoch: u64,
    /// The producer slots of a multi-producer ring.
    pub producer_slots: [SlotInfo; layout::MAX_PRODUCERS],
    /// The consumer slots of a multi-producer ring.
    pub consumer_slots: [SlotInfo; layout::MAX_CONSUMERS],
}

/// The words of one attachment slot of a multi-producer ring
/// ([`layout::ProducerSlot`], [`layout::ConsumerSlot`]), as read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotInfo {
    /// 0 never attached, odd attached, even detached.
    pub epoch: u64,
    /// Pid of the last process to attach in this slot.
    pub pid: u64,
    /// Start of the slot's latest claim (`u64::MAX`: none).
    pub claim: u64,
    /// Bytes of that claim.
    pub claim_len: u64,
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

/// Gives the new, empty file `len` allocated bytes, so that no access to the
/// mapping can fault on a hole; writes `len` zero bytes where `fallocate` is
/// unsupported (a file only sized with `ftruncate` would be sparse, and
/// openers refuse those: [`check_backing`]).
fn allocate(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
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
fn write_zeros(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
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
const SPARSE: &str =
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
fn check_backing(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
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

fn take_creator_lock(fd: BorrowedFd<'_>) -> Result<()> {
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

fn try_lock_range(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    match ofd_fcntl(fd, libc::F_OFD_SETLK, &mut flock(libc::F_WRLCK, start, len)) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another open file description holds a lock on `byte`.
fn held_elsewhere(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK, byte, 1);
    ofd_fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Whether `path` (not followed if a symlink) is the file open as `fd`.
fn same_file(fd: BorrowedFd<'_>, path: &Path) -> bool {
    match (rustix::fs::fstat(fd), rustix::fs::lstat(path)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

fn open_for_inspection(path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    // NONBLOCK: a FIFO planted under the name must not hang the scan.
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    rustix::fs::open(path, flags, Mode::empty())
}

/// Reads a region's locks and header without mapping it (`pread` copies, so
/// a file truncated meanwhile cannot fault the scan).
fn inspect(dir: &Path, name: &str) -> RegionInfo {
    let mut info = RegionInfo {
        name: name.to_owned(),
        size: 0,
        accessible: false,
        creator_locked: false,
        producer_locked: false,
        consumer_locked: false,
        producer_slot_locks: [false; layout::MAX_PRODUCERS],
        consumer_slot_locks: [false; layout::MAX_CONSUMERS],
        header: None,
        validation: Err(String::new()),
    };
    let fd = match open_for_inspection(&region_path(dir, name), OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(e) => {
            info.validation = Err(format!("cannot open: {}", io::Error::from(e)));
            return info;
        }
    };
    info.size = match rustix::fs::fstat(&fd) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => {
            stat.st_size as u64
        }
        Ok(_) => {
            info.validation = Err("not a regular file".into());
            return info;
        }
        Err(e) => {
            info.validation = Err(format!("cannot stat: {}", io::Error::from(e)));
            return info;
        }
    };
    // A lock whose state cannot be read counts as held: never remove then.
    let locked = |byte| held_elsewhere(fd.as_fd(), byte).unwrap_or(true);
    info.accessible = true;
    info.creator_locked = locked(CREATOR_LOCK_BYTE);
    // A multi-producer ring's sides hold slot locks instead.
    info.producer_slot_locks = std::array::from_fn(|i| locked(slot_byte(Role::Producer, i)));
    info.consumer_slot_locks = std::array::from_fn(|i| locked(slot_byte(Role::Consumer, i)));
    info.producer_locked = locked(PRODUCER_LOCK_BYTE) || info.producer_slot_locks.contains(&true);
    info.consumer_locked = locked(CONSUMER_LOCK_BYTE) || info.consumer_slot_locks.contains(&true);
    if info.size < DATA_OFFSET as u64 {
        let e = Error::LayoutMismatch {
            field: "region size",
            expected: DATA_OFFSET as u64,
            found: info.size,
        };
        info.validation = Err(e.to_string());
        return info;
    }
    let file = File::from(fd);
    let mut bytes = [0u8; DATA_OFFSET];
    if let Err(e) = file.read_exact_at(&mut bytes, 0) {
        info.validation = Err(format!("cannot read the header: {e}"));
        return info;
    }
    let word = |offset: usize| u64::from_ne_bytes(bytes[offset..offset + 8].try_into().unwrap());
    let (kind, geometry) = match check_identity(&identity(word), info.size) {
        Ok(valid) => valid,
        Err(e) => {
            info.validation = Err(e.to_string());
            return info;
        }
    };
    // What an opener checks next: a sparse file is refused.
    info.validation = check_backing(file.as_fd(), geometry.region_size() as u64)
        .map(|()| geometry)
        .map_err(|e| e.to_string());
    let slot = |role, index| SlotInfo {
        epoch: word(offsets::slot(role, index, SlotWord::Epoch)),
        pid: word(offsets::slot(role, index, SlotWord::Pid)),
        claim: word(offsets::slot(role, index, SlotWord::Claim)),
        claim_len: word(offsets::slot(role, index, SlotWord::ClaimLen)),
    };
    info.header = Some(HeaderInfo {
        kind,
        geometry,
        tail: word(offsets::TAIL),
        head: word(offsets::HEAD),
        read_cursor: word(offsets::READ_CURSOR),
        creator_pid: word(offsets::CREATOR_PID),
        producer_pid: word(offsets::PRODUCER_PID),
        producer_epoch: word(offsets::PRODUCER_EPOCH),
        consumer_pid: word(offsets::CONSUMER_PID),
        consumer_epoch: word(offsets::CONSUMER_EPOCH),
        producer_slots: std::array::from_fn(|i| slot(Role::Producer, i)),
        consumer_slots: std::array::from_fn(|i| slot(Role::Consumer, i)),
    });
    info
}

/// Unlinks `path` if, holding all three liveness locks ourselves, it is still
/// the file we locked. Returns whether it was removed.
fn remove_if_unlocked(path: &Path) -> bool {
    let Ok(fd) = open_for_inspection(path, OFlags::RDWR) else {
        return false;
    };
    // Holding the locks makes an attach racing with the removal fail with
    // `RoleTaken` instead of attaching to a file about to be unlinked.
    let locked = try_lock_range(fd.as_fd(), CREATOR_LOCK_BYTE, LOCK_BYTES_END).unwrap_or(false);
    locked && same_file(fd.as_fd(), path) && rustix::fs::unlink(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd() -> OwnedFd {
        rustix::fs::memfd_create("shmsg-test", MemfdFlags::CLOEXEC).unwrap()
    }

    #[test]
    fn write_zeros_leaves_no_hole() {
        // Neither a multiple of the chunk nor of a page.
        let len = 3 * 64 * 1024 + 1000;
        let fd = memfd();
        write_zeros(fd.as_fd(), len).unwrap();
        check_backing(fd.as_fd(), len).unwrap();
    }

    #[test]
    fn check_backing_refuses_holes_and_resizes() {
        let len = 64 * 1024;
        let fd = memfd();
        rustix::fs::ftruncate(&fd, len).unwrap();
        assert!(matches!(
            check_backing(fd.as_fd(), len),
            Err(Error::Corrupt {
                what: SPARSE,
                value: 0
            })
        ));
        allocate(fd.as_fd(), len).unwrap();
        check_backing(fd.as_fd(), len).unwrap();
        assert!(matches!(
            check_backing(fd.as_fd(), len + 1),
            Err(Error::LayoutMismatch {
                field: "region size",
                ..
            })
        ));
    }
}
