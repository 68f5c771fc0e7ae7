//! [`RegionOptions`]: the one place where a [`Region`] is built, whichever
//! way (named or anonymous, created or attached), and the constructors of
//! [`Region`] that are shortcuts for it.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::shm::layout::{Geometry, Identity, RingKind};

use super::named::SHM_DIR;
use super::{Region, anon, named};

/// How to create or attach a [`Region`], in the style of
/// [`std::fs::OpenOptions`]: set what matters on a value from
/// [`Region::options`], then call one of [`create`](RegionOptions::create),
/// [`open`](RegionOptions::open) (named regions),
/// [`anonymous`](RegionOptions::anonymous) or
/// [`from_fd`](RegionOptions::from_fd) (anonymous regions), or
/// [`receive_from`](RegionOptions::receive_from) (a region sent over a Unix
/// socket). The other constructors of [`Region`] are shortcuts for these.
///
/// The same settings serve both ends. A creator builds the ring the options
/// describe: [`geometry`](RegionOptions::geometry) (default
/// [`Geometry::default`]) and [`kind`](RegionOptions::kind) (default
/// [`RingKind::Spsc`]). An opener accepts any valid region unless one of them
/// is set; a set one is then required, and a region that differs is
/// [`Error::LayoutMismatch`] naming the field (`"ring_kind"`, `"capacity"`
/// or `"max_message"`). [`dir`](RegionOptions::dir) moves named regions out
/// of `/dev/shm`. Every check of the untrusted file is made whatever the
/// options say (see the [module documentation](super#security)).
///
/// ```
/// use shmsg::Error;
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::{Geometry, RingKind};
///
/// let name = format!("doc-options-{}", std::process::id());
/// let g = Geometry::new(1 << 16, 1024)?;
/// let creator = Region::options().geometry(g).kind(RingKind::Mpmc).create(&name)?;
///
/// // Any valid region, or exactly the ring this process expects.
/// let any = Region::options().open(&name)?;
/// assert_eq!((any.kind(), any.geometry()), (RingKind::Mpmc, g));
/// let exact = Region::options().geometry(g).kind(RingKind::Mpmc).open(&name)?;
/// let wrong = Region::options().kind(RingKind::Spsc).open(&name);
/// assert!(matches!(wrong, Err(Error::LayoutMismatch { field: "ring_kind", .. })));
/// # drop((creator, any, exact));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionOptions {
    geometry: Option<Geometry>,
    kind: Option<RingKind>,
    dir: Option<PathBuf>,
}

impl RegionOptions {
    /// Options with nothing set: a creator builds a [`RingKind::Spsc`] ring
    /// of [`Geometry::default`] in `/dev/shm`, an opener accepts any valid
    /// region there. The same as [`Region::options`].
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    /// use shmsg::shm::region::RegionOptions;
    ///
    /// assert_eq!(RegionOptions::new(), Region::options());
    /// let region = RegionOptions::new().anonymous()?;
    /// assert_eq!((region.kind(), region.geometry()), (RingKind::Spsc, Geometry::default()));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new() -> RegionOptions {
        RegionOptions::default()
    }

    /// The ring's capacity and maximum message size: what a creator builds,
    /// and what an opener requires ([`Error::LayoutMismatch`] on
    /// `"capacity"` or `"max_message"` otherwise).
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let small = Geometry::new(4096, 100)?;
    /// let region = Region::options().geometry(small).anonymous()?;
    /// assert_eq!(region.geometry(), small);
    ///
    /// let opened = Region::options().geometry(small).from_fd(region.as_fd())?;
    /// let other = Geometry::new(8192, 100)?;
    /// let refused = Region::options().geometry(other).from_fd(region.as_fd());
    /// assert!(matches!(refused, Err(Error::LayoutMismatch { field: "capacity", .. })));
    /// # drop(opened);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&mut self, geometry: Geometry) -> &mut RegionOptions {
        self.geometry = Some(geometry);
        self
    }

    /// The kind of ring: what a creator builds (a multi-producer ring,
    /// [`crate::shm::mpmc`], for [`RingKind::Mpsc`] and [`RingKind::Mpmc`]),
    /// and what an opener requires ([`Error::LayoutMismatch`] on
    /// `"ring_kind"` otherwise).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use shmsg::shm::layout::RingKind;
    /// use shmsg::shm::{Region, mpmc};
    ///
    /// let region = Arc::new(Region::options().kind(RingKind::Mpsc).anonymous()?);
    /// let mut first = mpmc::Producer::attach(&region)?;
    /// let mut second = mpmc::Producer::attach(&region)?;
    /// let mut consumer = mpmc::Consumer::attach(&region)?;
    /// first.send(b"one")?;
    /// second.send(b"two")?;
    /// let mut buf = Vec::new();
    /// consumer.recv(&mut buf)?;
    /// assert_eq!(buf, b"one");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn kind(&mut self, kind: RingKind) -> &mut RegionOptions {
        self.kind = Some(kind);
        self
    }

    /// The directory of named regions, instead of `/dev/shm`
    /// ([`crate::shm::region::SHM_DIR`]). Anonymous regions have no
    /// directory and ignore it.
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-dir-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let region = Region::options().dir(&dir).create("orders")?;
    /// assert_eq!(region.path(), Some(dir.join("shmsg.orders").as_path()));
    /// let opened = Region::options().dir(&dir).open("orders")?;
    /// # drop((region, opened));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn dir(&mut self, dir: impl AsRef<Path>) -> &mut RegionOptions {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Creates the named region `shmsg.NAME` in the directory (`/dev/shm`
    /// unless set) holding an empty ring. Fails with [`Error::Io`] (source
    /// kind `AlreadyExists`) if the file exists, and with
    /// [`Error::InvalidName`] for a name [`validate_name`](super::validate_name)
    /// refuses. The region is unlinked when the returned value is dropped,
    /// unless [`Region::keep`] is called.
    ///
    /// The file is built unnamed (`O_TMPFILE`): locked, sized, mapped and its
    /// header published, and only then linked under its name, which fails if
    /// the name exists (as `O_EXCL` would). So no other process can ever open
    /// a half-made region. Where the filesystem has no `O_TMPFILE`, the file
    /// is created `O_EXCL` under its name and set up in place.
    ///
    /// The file cannot be sealed: any process of the same user can truncate
    /// it, and then every process that has it mapped, this one included, dies
    /// of SIGBUS at its next access past the new end. An anonymous region
    /// ([`RegionOptions::anonymous`]) is sealed against that. See the
    /// [module documentation](super#security).
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// use shmsg::Error;
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-options-create-{}", std::process::id());
    /// let region = Region::options().geometry(Geometry::new(4096, 100)?).create(&name)?;
    /// assert_eq!(region.name(), Some(name.as_str()));
    /// match Region::options().create(&name) {
    ///     Err(Error::Io { source, .. }) => assert_eq!(source.kind(), ErrorKind::AlreadyExists),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn create(&self, name: &str) -> Result<Region> {
        let geometry = self.geometry.unwrap_or_default();
        let kind = self.kind.unwrap_or(RingKind::Spsc);
        named::create(self.dir_path(), name, geometry, kind)
    }

    /// Opens the named region `shmsg.NAME` in the directory (`/dev/shm`
    /// unless set), validates it, and checks it against the geometry and
    /// kind if set. A missing file is [`Error::Io`] (source kind
    /// `NotFound`); a symlink under the name is not followed.
    ///
    /// The file is untrusted input. Before it is mapped beyond its header, its
    /// type, size and header are checked, and so is its allocation: a file
    /// with holes (a sparse file, whose first write into a hole kills the
    /// writer with SIGBUS when tmpfs is full) is [`Error::Corrupt`]. What no
    /// check can cover is a truncation later on: any process of the same user
    /// can shrink the file at any time, and this process then dies of SIGBUS
    /// at its next access past the new end. A sealed anonymous region
    /// ([`RegionOptions::from_fd`]) cannot be resized. See the
    /// [module documentation](super#security).
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let name = format!("doc-options-open-{}", std::process::id());
    /// let creator = Region::options().kind(RingKind::Mpsc).create(&name)?;
    /// let opened = Region::options().kind(RingKind::Mpsc).open(&name)?;
    /// assert_eq!(opened.geometry(), Geometry::default());
    /// assert!(opened.creator_alive());
    /// # drop((creator, opened));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn open(&self, name: &str) -> Result<Region> {
        self.check(named::open(self.dir_path(), name)?)
    }

    /// Creates an anonymous region (a memfd, sealed against shrinking,
    /// growing and further sealing) holding an empty ring. Hand it to another
    /// process with [`Region::as_fd`] or [`Region::send_over`].
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let g = Geometry::for_max_message(4096, 0)?;
    /// let region = Region::options().geometry(g).kind(RingKind::Mpmc).anonymous()?;
    /// assert_eq!((region.name(), region.kind()), (None, RingKind::Mpmc));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn anonymous(&self) -> Result<Region> {
        let geometry = self.geometry.unwrap_or_default();
        anon::create(geometry, self.kind.unwrap_or(RingKind::Spsc))
    }

    /// Attaches the anonymous region whose memfd is `fd` (typically inherited
    /// from the creator), validates it, and checks it against the geometry
    /// and kind if set. The file is re-opened through `/proc/self/fd`, so
    /// this `Region` has its own open file description and its own locks; the
    /// caller should close `fd` afterwards if it was inherited, or it keeps
    /// the creator's locks alive. Fails unless the memfd is sealed against
    /// shrinking and growing, and, like [`RegionOptions::open`], if the file
    /// has holes.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::Region;
    ///
    /// let region = Region::options().anonymous()?;
    /// let attached = Region::options().from_fd(region.as_fd())?;
    /// assert!(attached.creator_alive());
    ///
    /// // An unsealed file is refused.
    /// let file = std::fs::File::open("/proc/self/exe").unwrap();
    /// assert!(Region::options().from_fd(&file).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn from_fd(&self, fd: impl AsFd) -> Result<Region> {
        self.check(anon::from_fd(fd.as_fd())?)
    }

    fn dir_path(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(SHM_DIR))
    }

    /// Checks an attached region against the kind and geometry, where set.
    fn check(&self, region: Region) -> Result<Region> {
        if let Some(kind) = self.kind
            && kind != region.kind()
        {
            return Err(Error::LayoutMismatch {
                field: "ring_kind",
                expected: kind as u64,
                found: region.kind() as u64,
            });
        }
        if let Some(geometry) = self.geometry {
            Identity::expect(region.geometry(), geometry)?;
        }
        Ok(region)
    }
}

/// Constructors: shortcuts for [`RegionOptions`].
impl Region {
    /// A builder for creating or attaching a region: [`RegionOptions::new`].
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let g = Geometry::new(1 << 16, 1024)?;
    /// let region = Region::options().geometry(g).kind(RingKind::Mpmc).anonymous()?;
    /// assert_eq!((region.geometry(), region.kind()), (g, RingKind::Mpmc));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn options() -> RegionOptions {
        RegionOptions::new()
    }

    /// Creates the named region `/dev/shm/shmsg.NAME` holding an empty ring of
    /// `geometry`: `Region::options().geometry(geometry).create(name)`
    /// ([`RegionOptions::create`], which says what can fail). The region is
    /// unlinked when the returned value is dropped, unless [`Region::keep`]
    /// is called.
    ///
    /// The file cannot be sealed: any process of the same user can truncate
    /// it, and then every process that has it mapped, this one included, dies
    /// of SIGBUS at its next access past the new end. An anonymous region
    /// ([`Region::anonymous`]) is sealed against that. See the
    /// [module documentation](super#security).
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-create-{}", std::process::id());
    /// let region = Region::create(&name, Geometry::default())?;
    /// assert!(region.path().unwrap().exists());
    /// let path = region.path().unwrap().to_owned();
    /// drop(region);
    /// assert!(!path.exists());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn create(name: &str, geometry: Geometry) -> Result<Region> {
        Region::options().geometry(geometry).create(name)
    }

    /// [`Region::create`] in directory `dir` instead of `/dev/shm`:
    /// `Region::options().dir(dir).geometry(geometry).create(name)`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-create-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let region = Region::create_in(&dir, "orders", Geometry::default())?;
    /// assert_eq!(region.path(), Some(dir.join("shmsg.orders").as_path()));
    /// # drop(region);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn create_in(dir: &Path, name: &str, geometry: Geometry) -> Result<Region> {
        Region::options().dir(dir).geometry(geometry).create(name)
    }

    /// [`Region::create`] for a ring of `kind` (a multi-producer ring,
    /// [`crate::shm::mpmc`], for [`RingKind::Mpsc`] and [`RingKind::Mpmc`]):
    /// `Region::options().geometry(geometry).kind(kind).create(name)`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let name = format!("doc-create-kind-{}", std::process::id());
    /// let region = Region::create_kind(&name, Geometry::default(), RingKind::Mpsc)?;
    /// assert_eq!(Region::open(&name)?.kind(), RingKind::Mpsc);
    /// # drop(region);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn create_kind(name: &str, geometry: Geometry, kind: RingKind) -> Result<Region> {
        Region::options().geometry(geometry).kind(kind).create(name)
    }

    /// [`Region::create_kind`] in directory `dir`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-kind-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let region = Region::create_kind_in(&dir, "jobs", Geometry::default(), RingKind::Mpmc)?;
    /// assert_eq!(Region::open_in(&dir, "jobs")?.kind(), RingKind::Mpmc);
    /// # drop(region);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn create_kind_in(
        dir: &Path,
        name: &str,
        geometry: Geometry,
        kind: RingKind,
    ) -> Result<Region> {
        let mut options = Region::options();
        options.dir(dir).geometry(geometry).kind(kind).create(name)
    }

    /// Opens the named region `/dev/shm/shmsg.NAME` and validates its header,
    /// accepting any geometry and kind: `Region::options().open(name)`
    /// ([`RegionOptions::open`], which says what is checked).
    ///
    /// The file is untrusted input: its type, size, header and allocation are
    /// checked before it is mapped beyond its header. What no check can cover
    /// is a truncation later on: any process of the same user can shrink the
    /// file at any time, and this process then dies of SIGBUS at its next
    /// access past the new end. A sealed anonymous region
    /// ([`Region::from_fd`]) cannot be resized. See the
    /// [module documentation](super#security).
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-open-{}", std::process::id());
    /// let g = Geometry::new(4096, 100)?;
    /// let creator = Region::create(&name, g)?;
    /// let opened = Region::open(&name)?;
    /// assert_eq!(opened.geometry(), g);
    /// # drop((creator, opened));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Region> {
        Region::options().open(name)
    }

    /// [`Region::open`], additionally requiring the ring to have `geometry`;
    /// a difference is [`Error::LayoutMismatch`] naming the field:
    /// `Region::options().geometry(geometry).open(name)`.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let name = format!("doc-open-expect-{}", std::process::id());
    /// let g = Geometry::new(4096, 100)?;
    /// let creator = Region::create(&name, g)?;
    /// let opened = Region::open_expect(&name, g)?;
    /// let bigger = Geometry::new(4096, 200)?;
    /// let refused = Region::open_expect(&name, bigger);
    /// assert!(matches!(refused, Err(Error::LayoutMismatch { field: "max_message", .. })));
    /// # drop((creator, opened));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn open_expect(name: &str, geometry: Geometry) -> Result<Region> {
        Region::options().geometry(geometry).open(name)
    }

    /// [`Region::open`] in directory `dir` instead of `/dev/shm`:
    /// `Region::options().dir(dir).open(name)`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    ///
    /// let dir = std::env::temp_dir().join(format!("shmsg-doc-open-in-{}", std::process::id()));
    /// std::fs::create_dir(&dir).unwrap();
    /// let creator = Region::options().dir(&dir).create("orders")?;
    /// let opened = Region::open_in(&dir, "orders")?;
    /// assert_eq!(opened.path(), creator.path());
    /// # drop((creator, opened));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn open_in(dir: &Path, name: &str) -> Result<Region> {
        Region::options().dir(dir).open(name)
    }

    /// Creates an anonymous region (a sealed memfd) holding an empty ring of
    /// `geometry`: `Region::options().geometry(geometry).anonymous()`. Hand
    /// it to another process with [`Region::as_fd`] or
    /// [`Region::send_over`].
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let region = Region::anonymous(Geometry::default())?;
    /// assert_eq!((region.name(), region.path()), (None, None));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn anonymous(geometry: Geometry) -> Result<Region> {
        Region::options().geometry(geometry).anonymous()
    }

    /// [`Region::anonymous`] for a ring of `kind`:
    /// `Region::options().geometry(geometry).kind(kind).anonymous()`.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{Geometry, RingKind};
    ///
    /// let region = Region::anonymous_kind(Geometry::default(), RingKind::Mpmc)?;
    /// assert_eq!(region.kind(), RingKind::Mpmc);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn anonymous_kind(geometry: Geometry, kind: RingKind) -> Result<Region> {
        Region::options().geometry(geometry).kind(kind).anonymous()
    }

    /// Attaches the anonymous region whose memfd is `fd` (typically inherited
    /// from the creator), accepting any geometry and kind:
    /// `Region::options().from_fd(fd)` ([`RegionOptions::from_fd`]). This
    /// `Region` has its own open file description and its own locks; the
    /// caller should close `fd` afterwards if it was inherited, or it keeps
    /// the creator's locks alive. Fails unless the memfd is sealed against
    /// shrinking and growing, and, like [`Region::open`], if the file has
    /// holes.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let creator = Region::anonymous(Geometry::default())?;
    /// // In a child process, `fd` would be the inherited descriptor.
    /// let fd = creator.as_fd().try_clone_to_owned().unwrap();
    /// let attached = Region::from_fd(&fd)?;
    /// drop(fd);
    /// assert_eq!(attached.geometry(), creator.geometry());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn from_fd(fd: impl AsFd) -> Result<Region> {
        Region::options().from_fd(fd)
    }
}
