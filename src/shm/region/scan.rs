//! Finding named regions and cleaning up those no live process uses, without
//! mapping them: [`Region::list`], [`Region::remove_stale`].

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::{Error, Result, Role};
use crate::shm::layout::{self, DATA_OFFSET, Geometry, RingKind, offsets};
use crate::sync::SlotWord;

use super::backing::check_backing;
use super::lock::{
    CONSUMER_LOCK_BYTE, CREATOR_LOCK_BYTE, LOCK_BYTES_END, PRODUCER_LOCK_BYTE, held_elsewhere,
    slot_byte, try_lock_range,
};
use super::named::{PREFIX, SHM_DIR, region_path, same_file, validate_name};
use super::{Region, check_identity, identity};

impl Region {
    /// Describes every named region in `/dev/shm`, sorted by name.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-list-{}", std::process::id());
    /// let region = Region::create(&name, Geometry::default())?;
    /// let infos = Region::list()?;
    /// let info = infos.iter().find(|info| info.name == name).unwrap();
    /// assert!(info.creator_locked && !info.is_stale());
    /// assert_eq!(info.validation, Ok(Geometry::default()));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn list() -> Result<Vec<RegionInfo>> {
        Region::list_in(Path::new(SHM_DIR))
    }

    /// [`Region::list`] in directory `dir`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-list-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let b = Region::options().dir(&dir).kind(RingKind::Mpmc).create("b")?;
    /// let a = Region::options().dir(&dir).create("a")?;
    /// let infos = Region::list_in(&dir)?;
    /// let names: Vec<_> = infos.iter().map(|info| info.name.as_str()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// assert_eq!(infos[1].header.unwrap().kind, RingKind::Mpmc);
    /// # drop((a, b));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-remove-stale-{}", std::process::id());
    /// let mut region = Region::create(&name, Geometry::default())?;
    /// region.keep();
    /// // Alive while its creator is.
    /// assert!(!Region::remove_stale(true)?.contains(&name));
    /// drop(region);
    /// // Left behind: stale. A dry run only names it.
    /// assert!(Region::remove_stale(true)?.contains(&name));
    /// # let _ = Region::remove(&name);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn remove_stale(dry_run: bool) -> Result<Vec<String>> {
        Region::remove_stale_in(Path::new(SHM_DIR), dry_run)
    }

    /// [`Region::remove_stale`] in directory `dir`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-stale-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let live = Region::options().dir(&dir).create("live")?;
    /// let mut left = Region::options().dir(&dir).create("left")?;
    /// left.keep();
    /// drop(left);
    /// assert_eq!(Region::remove_stale_in(&dir, false)?, ["left"]);
    /// assert_eq!(Region::list_in(&dir)?.len(), 1);
    /// # drop(live);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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

/// What [`Region::list`] found out about one named region.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::Geometry;
///
/// let dir = std::env::temp_dir().join(format!("shmsg-doc-info-{}", std::process::id()));
/// std::fs::create_dir(&dir).unwrap();
/// let g = Geometry::new(4096, 100)?;
/// let region = Region::create_in(&dir, "orders", g)?;
/// let info = &Region::list_in(&dir)?[0];
/// assert_eq!(info.name, "orders");
/// assert_eq!(info.size, g.region_size() as u64);
/// assert!(info.accessible && info.creator_locked);
/// assert!(!info.producer_locked && !info.consumer_locked);
/// assert_eq!(info.validation, Ok(g));
/// # drop(region);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), shmsg::Error>(())
/// ```
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
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-is-stale-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let mut region = Region::options().dir(&dir).create("orders")?;
    /// assert!(!Region::list_in(&dir)?[0].is_stale());
    /// region.keep();
    /// drop(region);
    /// assert!(Region::list_in(&dir)?[0].is_stale());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn is_stale(&self) -> bool {
        self.accessible && !self.creator_locked && !self.producer_locked && !self.consumer_locked
    }
}

/// The header words of a region whose identity is valid, as last written by
/// their owners (pids are not proof of life: see the lock flags of
/// [`RegionInfo`]). Apart from the identity, nothing here is checked: the
/// positions and slot words are whatever the region holds, garbage included.
///
/// ```
/// use std::sync::Arc;
///
/// use shmsg::shm::layout::{Geometry, RingKind};
/// use shmsg::shm::{Region, spsc};
///
/// let dir = std::env::temp_dir().join(format!("shmsg-doc-header-{}", std::process::id()));
/// std::fs::create_dir(&dir).unwrap();
/// let region = Arc::new(Region::create_in(&dir, "orders", Geometry::default())?);
/// let mut producer = spsc::Producer::attach(&region)?;
/// producer.send(b"hello")?;
/// let header = Region::list_in(&dir)?[0].header.unwrap();
/// assert_eq!(header.kind, RingKind::Spsc);
/// assert_eq!(header.creator_pid, u64::from(std::process::id()));
/// assert_eq!(header.producer_pid, u64::from(std::process::id()));
/// assert_eq!(header.producer_epoch % 2, 1); // attached
/// assert!(header.tail > header.head); // one record not yet read
/// # drop((producer, region));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), shmsg::Error>(())
/// ```
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
///
/// ```
/// use std::sync::Arc;
///
/// use shmsg::shm::layout::{Geometry, RingKind};
/// use shmsg::shm::region::SlotInfo;
/// use shmsg::shm::{Region, mpmc};
///
/// let dir = std::env::temp_dir().join(format!("shmsg-doc-slot-{}", std::process::id()));
/// std::fs::create_dir(&dir).unwrap();
/// let region = Region::options().dir(&dir).kind(RingKind::Mpsc).create("orders")?;
/// let region = Arc::new(region);
/// let producer = mpmc::Producer::attach(&region)?;
/// let info = &Region::list_in(&dir)?[0];
/// let slot = info.header.unwrap().producer_slots[0];
/// assert_eq!(slot.pid, u64::from(std::process::id()));
/// assert_eq!(slot.epoch % 2, 1); // attached
/// assert!(info.producer_slot_locks[0]);
/// assert_eq!(info.header.unwrap().producer_slots[1], SlotInfo::default());
/// # drop((producer, region));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), shmsg::Error>(())
/// ```
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
