//! Named regions: files under `/dev/shm` (or another directory), created
//! unnamed and linked under their name once set up, opened by name, removed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::shm::layout::{Geometry, RingKind};

use super::Region;
use super::backing::allocate;
use super::lock::take_creator_lock;

/// Directory that holds named regions.
///
/// ```
/// use shmsg::shm::region::{PREFIX, SHM_DIR};
///
/// // Region "orders" is the file /dev/shm/shmsg.orders.
/// assert_eq!(format!("{SHM_DIR}/{PREFIX}orders"), "/dev/shm/shmsg.orders");
/// ```
pub const SHM_DIR: &str = "/dev/shm";
/// Prefix of a named region's file name: region `NAME` is `SHM_DIR/shmsg.NAME`.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::Geometry;
/// use shmsg::shm::region::PREFIX;
///
/// let name = format!("doc-prefix-{}", std::process::id());
/// let region = Region::create(&name, Geometry::default())?;
/// let file_name = region.path().unwrap().file_name().unwrap();
/// assert_eq!(file_name.to_str(), Some(format!("{PREFIX}{name}").as_str()));
/// # Ok::<(), shmsg::Error>(())
/// ```
pub const PREFIX: &str = "shmsg.";
/// Longest region name, in bytes.
///
/// ```
/// use shmsg::shm::region::{MAX_NAME_LEN, validate_name};
///
/// assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
/// assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
/// ```
pub const MAX_NAME_LEN: usize = 200;

/// Checks a region name: 1 to 200 bytes of ASCII letters, digits, `.`, `_`
/// and `-`, not starting with `.` and without `..`. Every function that
/// takes a name checks it first, and fails with [`Error::InvalidName`].
///
/// ```
/// use shmsg::Error;
/// use shmsg::shm::region::validate_name;
///
/// assert!(validate_name("orders.v2_eu-west").is_ok());
/// for bad in ["", ".hidden", "a..b", "a/b", "é"] {
///     assert!(matches!(validate_name(bad), Err(Error::InvalidName { .. })));
/// }
/// ```
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

pub(super) fn region_path(dir: &Path, name: &str) -> PathBuf {
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

/// Creates the named region `dir/shmsg.NAME` holding an empty ring of `kind`
/// and `geometry`: built unnamed (`O_TMPFILE`) and linked under its name
/// once published, or, where the filesystem has no `O_TMPFILE`, created
/// `O_EXCL` under its name and set up in place.
pub(super) fn create(dir: &Path, name: &str, geometry: Geometry, kind: RingKind) -> Result<Region> {
    validate_name(name)?;
    let path = region_path(dir, name);
    let mode = Mode::from_raw_mode(0o600);
    let unnamed = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::open(dir, unnamed, mode) {
        Ok(fd) => {
            let mut region = set_up(fd, geometry, kind, name, &path)?;
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
            let named =
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&path, named, mode)
                .map_err(|e| file_error("create", name, &path, e))?;
            match set_up(fd, geometry, kind, name, &path) {
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

/// Opens the named region `dir/shmsg.NAME` (not following a symlink) and
/// validates it ([`Region::attach`]).
pub(super) fn open(dir: &Path, name: &str) -> Result<Region> {
    validate_name(name)?;
    let path = region_path(dir, name);
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(&path, flags, Mode::empty())
        .map_err(|e| file_error("open", name, &path, e))?;
    Region::attach(fd, Some(name.to_owned()), Some(path))
}

/// Whether `path` (not followed if a symlink) is the file open as `fd`.
pub(super) fn same_file(fd: BorrowedFd<'_>, path: &Path) -> bool {
    match (rustix::fs::fstat(fd), rustix::fs::lstat(path)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

impl Region {
    /// Unlinks the named region `NAME`. Processes that mapped it keep working.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-remove-{}", std::process::id());
    /// let mut creator = Region::create(&name, Geometry::default())?;
    /// creator.keep();
    /// drop(creator);
    /// Region::remove(&name)?;
    /// assert!(Region::open(&name).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn remove(name: &str) -> Result<()> {
        Region::remove_in(Path::new(SHM_DIR), name)
    }

    /// [`Region::remove`] in directory `dir`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-remove-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let region = Region::options().dir(&dir).create("orders")?;
    /// Region::remove_in(&dir, "orders")?;
    /// // Mapped regions keep working; the name is free again.
    /// assert_eq!(region.geometry(), Geometry::default());
    /// let again = Region::create_in(&dir, "orders", Geometry::default())?;
    /// # drop((region, again));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn remove_in(dir: &Path, name: &str) -> Result<()> {
        validate_name(name)?;
        let path = region_path(dir, name);
        rustix::fs::unlink(&path).map_err(|e| file_error("remove", name, &path, e))
    }
}
