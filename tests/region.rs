//! Regions: creation, opening, validation of untrusted headers, liveness locks
//! and cleanup.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmsg::shm::Region;
use shmsg::shm::RegionOptions;
use shmsg::shm::layout::{self, DATA_OFFSET, Geometry, Identity, RingKind, offsets};
use shmsg::shm::region::{self, PREFIX, SHM_DIR};
use shmsg::{Error, Role};

mod common;

/// A name no other test (or test process) uses.
fn unique(test: &str) -> String {
    common::unique("test", test)
}

fn shm_path(name: &str) -> PathBuf {
    Path::new(SHM_DIR).join(format!("{PREFIX}{name}"))
}

/// Removes a file under `/dev/shm` when dropped, whatever the test did.
struct FileGuard(PathBuf);

impl Drop for FileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A private directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("shmsg-{}", unique(test)));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` as the region file of a fresh name; returns the name.
fn hand_written(test: &str, bytes: &[u8]) -> (String, FileGuard) {
    let name = unique(test);
    let path = shm_path(&name);
    std::fs::write(&path, bytes).unwrap();
    (name, FileGuard(path))
}

fn geometry() -> Geometry {
    Geometry::new(4096, 100).unwrap()
}

/// The header a creator of `geometry` writes, as bytes, followed by the data area.
fn valid_image(geometry: Geometry) -> Vec<u8> {
    let w = Identity::for_geometry(RingKind::Spsc, geometry);
    let mut bytes = vec![0u8; geometry.region_size()];
    put(&mut bytes, offsets::MAGIC, w.magic);
    put(&mut bytes, offsets::ABI_VERSION, w.abi_version);
    put(&mut bytes, offsets::RING_KIND, w.ring_kind);
    put(&mut bytes, offsets::CAPACITY, w.capacity);
    put(&mut bytes, offsets::MAX_MESSAGE, w.max_message);
    put(&mut bytes, offsets::POINTER_WIDTH, w.pointer_width);
    put(&mut bytes, offsets::ENDIAN, w.endian);
    put(&mut bytes, offsets::CACHE_LINE, w.cache_line);
    put(&mut bytes, offsets::DATA_OFFSET, w.data_offset);
    bytes
}

fn put(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
}

/// xorshift64*: deterministic garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn io_kind(result: Result<Region, Error>) -> (io::ErrorKind, String) {
    match result {
        Err(Error::Io { context, source }) => (source.kind(), context),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn create_open_round_trip() {
    let name = unique("round-trip");
    let g = geometry();
    let created = Region::create(&name, g).unwrap();
    assert_eq!(created.geometry(), g);
    assert_eq!(created.name(), Some(name.as_str()));
    assert_eq!(created.path(), Some(shm_path(&name).as_path()));
    assert_eq!(created.header_word(offsets::MAGIC), layout::MAGIC);
    assert_eq!(
        created.header_word(offsets::ABI_VERSION),
        layout::ABI_VERSION
    );
    assert_eq!(
        created.header_word(offsets::CREATOR_PID),
        u64::from(std::process::id())
    );
    for offset in [
        offsets::TAIL,
        offsets::HEAD,
        offsets::PRODUCER_EPOCH,
        offsets::CONSUMER_PID,
    ] {
        assert_eq!(created.header_word(offset), 0);
    }
    let meta = std::fs::metadata(shm_path(&name)).unwrap();
    assert_eq!(meta.len(), g.region_size() as u64);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    let opened = Region::open(&name).unwrap();
    assert_eq!(opened.geometry(), g);
    assert_eq!(opened.name(), Some(name.as_str()));
    assert!(Region::open_expect(&name, g).is_ok());
    // The opener is not the creator: dropping it leaves the file.
    drop(opened);
    assert!(shm_path(&name).exists());
}

#[test]
fn open_expect_names_the_mismatched_field() {
    let name = unique("expect");
    let _region = Region::create(&name, geometry()).unwrap();
    let field = |wanted| match Region::open_expect(&name, wanted) {
        Err(Error::LayoutMismatch { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(Geometry::new(4096, 200).unwrap()), "max_message");
    assert_eq!(field(Geometry::new(8192, 100).unwrap()), "capacity");
}

#[test]
fn create_twice_is_already_exists() {
    let name = unique("twice");
    let _first = Region::create(&name, geometry()).unwrap();
    let (kind, context) = io_kind(Region::create(&name, geometry()));
    assert_eq!(kind, io::ErrorKind::AlreadyExists);
    assert!(context.contains("already exists"), "{context}");
    // The failed attempt did not unlink the first creator's file.
    assert!(Region::open(&name).is_ok());
}

#[test]
fn invalid_names_are_refused() {
    let long = "a".repeat(201);
    for name in [
        "a/b",
        "..",
        ".x",
        "",
        long.as_str(),
        "a..b",
        "a b",
        "x\0",
        "é",
    ] {
        for result in [Region::create(name, geometry()), Region::open(name)] {
            match result {
                Err(Error::InvalidName { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name:?}: {other:?}"),
            }
        }
        assert!(matches!(
            Region::remove(name),
            Err(Error::InvalidName { .. })
        ));
    }
    assert!(region::validate_name(&"a".repeat(200)).is_ok());
    assert!(region::validate_name("a.b_c-D9").is_ok());
}

#[test]
fn open_missing_is_not_found() {
    let name = unique("missing");
    let (kind, context) = io_kind(Region::open(&name));
    assert_eq!(kind, io::ErrorKind::NotFound);
    assert!(
        context.contains(&shm_path(&name).display().to_string()),
        "{context}"
    );
    match Region::remove(&name) {
        Err(Error::Io { source, context }) => {
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
            assert!(context.contains("does not exist"), "{context}");
        }
        other => panic!("{other:?}"),
    }
}

/// Every hand-written file is refused with a typed error, and opening never panics.
#[test]
fn garbage_files_are_typed_errors() {
    let g = geometry();
    let size_mismatch = |r: Result<Region, Error>| {
        matches!(
            r,
            Err(Error::LayoutMismatch {
                field: "region size",
                ..
            })
        )
    };

    for len in [0, 1, 8, DATA_OFFSET - 1] {
        let (name, _guard) = hand_written("short", &vec![0xAB; len]);
        assert!(size_mismatch(Region::open(&name)), "len {len}");
    }

    // Right size, nothing written: a creator that has not published yet.
    let (name, _guard) = hand_written("zeros", &vec![0; g.region_size()]);
    assert!(matches!(Region::open(&name), Err(Error::NotInitialized)));

    // A valid image of the wrong length.
    let mut image = valid_image(g);
    image.truncate(DATA_OFFSET + 1024);
    let (name, _guard) = hand_written("truncated", &image);
    assert!(size_mismatch(Region::open(&name)));
    let mut image = valid_image(g);
    image.extend_from_slice(&[0; 8]);
    let (name, _guard) = hand_written("grown", &image);
    assert!(size_mismatch(Region::open(&name)));

    // Bad magic.
    let mut image = valid_image(g);
    put(&mut image, offsets::MAGIC, 0x1234);
    let (name, _guard) = hand_written("magic", &image);
    assert!(matches!(
        Region::open(&name),
        Err(Error::LayoutMismatch { field: "magic", .. })
    ));

    // Capacity not a power of two, and a max_message too large for it.
    for (capacity, max_message) in [(4095, 100), (4096, 4096), (u64::MAX, 1), (0, 0)] {
        let mut image = valid_image(g);
        put(&mut image, offsets::CAPACITY, capacity);
        put(&mut image, offsets::MAX_MESSAGE, max_message);
        let (name, _guard) = hand_written("capacity", &image);
        assert!(
            matches!(Region::open(&name), Err(Error::Corrupt { .. })),
            "{capacity} {max_message}"
        );
    }

    // Fields of another build.
    for (offset, field) in [
        (offsets::POINTER_WIDTH, "pointer_width"),
        (offsets::ENDIAN, "endian"),
        (offsets::RING_KIND, "ring_kind"),
        (offsets::ABI_VERSION, "abi_version"),
    ] {
        let mut image = valid_image(g);
        put(&mut image, offset, 0xDEAD);
        let (name, _guard) = hand_written("field", &image);
        match Region::open(&name) {
            Err(Error::LayoutMismatch {
                field: f, found, ..
            }) => assert_eq!((f, found), (field, 0xDEAD)),
            other => panic!("{field}: {other:?}"),
        }
    }

    // Random bytes, with and without a valid magic, at a few lengths.
    for seed in 1..40u64 {
        let len = [
            DATA_OFFSET,
            DATA_OFFSET + 64,
            g.region_size(),
            2 * DATA_OFFSET + 8,
        ][seed as usize % 4];
        let mut image = garbage(seed, len);
        if seed % 2 == 0 {
            put(&mut image, offsets::MAGIC, layout::MAGIC);
        }
        let (name, _guard) = hand_written("random", &image);
        match Region::open(&name) {
            Err(Error::LayoutMismatch { .. } | Error::Corrupt { .. } | Error::NotInitialized) => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }

    // And a hand-written valid image opens: the checks above are not vacuous.
    let (name, _guard) = hand_written("valid", &valid_image(g));
    assert_eq!(Region::open_expect(&name, g).unwrap().geometry(), g);
}

#[test]
fn unpublished_header_is_not_initialized() {
    let mut image = valid_image(geometry());
    put(&mut image, offsets::ABI_VERSION, 0);
    let (name, _guard) = hand_written("unpublished", &image);
    assert!(matches!(Region::open(&name), Err(Error::NotInitialized)));
}

/// Whether `result` is the refusal of a region file with holes, reporting
/// fewer allocated bytes than the file's `size`.
fn is_sparse_refusal(result: &Result<Region, Error>, size: u64) -> bool {
    matches!(result, Err(Error::Corrupt { what, value }) if what.contains("sparse") && *value < size)
}

/// A file of the right size with a valid header but holes in it is refused:
/// on a full tmpfs the first write into a hole gets no page and the writer
/// dies of SIGBUS. Checked in a directory on the root filesystem and in
/// `/dev/shm` (tmpfs), whose notions of "allocated" differ.
#[test]
fn sparse_region_files_are_refused() {
    use std::os::unix::fs::{FileExt, MetadataExt};

    let temp = TempDir::new("sparse");
    // A data area large enough for a hole aligned to any page size up to 64 KiB.
    let g = Geometry::new(1 << 18, 100).unwrap();
    let size = g.region_size() as u64;
    let hole_at = (DATA_OFFSET as u64).next_multiple_of(1 << 16);
    let hole_len = 1 << 16;
    assert!(hole_at + hole_len <= size);
    for dir in [temp.0.as_path(), Path::new(SHM_DIR)] {
        let original = unique("sparse-original");
        let region = Region::create_in(dir, &original, g).unwrap();
        // What a creator makes is fully allocated, and opens.
        drop(Region::open_in(dir, &original).unwrap());
        let header = std::fs::read(region.path().unwrap()).unwrap()[..DATA_OFFSET].to_vec();

        // Its header, and a hole for the rest.
        let name = unique("sparse");
        let path = dir.join(format!("{PREFIX}{name}"));
        let _guard = FileGuard(path.clone());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.write_all_at(&header, 0).unwrap();
        file.set_len(size).unwrap();
        assert!(file.metadata().unwrap().blocks() * 512 < size, "{dir:?}");
        let opened = Region::open_in(dir, &name);
        assert!(is_sparse_refusal(&opened, size), "{dir:?}: {opened:?}");

        // The same file written in full opens.
        let rest = vec![0u8; (size - DATA_OFFSET as u64) as usize];
        file.write_all_at(&rest, DATA_OFFSET as u64).unwrap();
        assert_eq!(Region::open_in(dir, &name).unwrap().geometry(), g);

        // One hole in the middle of the data area is enough to be refused.
        rustix::fs::fallocate(
            &file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            hole_at,
            hole_len,
        )
        .unwrap();
        assert!(file.metadata().unwrap().blocks() * 512 < size, "{dir:?}");
        let opened = Region::open_in(dir, &name);
        assert!(is_sparse_refusal(&opened, size), "{dir:?}: {opened:?}");

        // Allocated again (not written: `fallocate`, as creators do), it opens.
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size).unwrap();
        assert_eq!(Region::open_in(dir, &name).unwrap().geometry(), g);
    }
}

#[test]
fn symlinks_are_not_followed() {
    let target = unique("target");
    let _region = Region::create(&target, geometry()).unwrap();
    let name = unique("link");
    std::os::unix::fs::symlink(shm_path(&target), shm_path(&name)).unwrap();
    let _guard = FileGuard(shm_path(&name));
    assert!(matches!(Region::open(&name), Err(Error::Io { .. })));
    let (kind, _) = io_kind(Region::create(&name, geometry()));
    assert_eq!(kind, io::ErrorKind::AlreadyExists);
    // Neither touched the target.
    assert!(Region::open(&target).is_ok());
}

#[test]
fn anonymous_region_from_fd_has_its_own_locks() {
    let g = geometry();
    let a = Region::anonymous(g).unwrap();
    assert_eq!((a.name(), a.path()), (None, None));
    let b = Region::from_fd(a.as_fd()).unwrap();
    assert_eq!(b.geometry(), g);
    assert_eq!(b.header_word(offsets::MAGIC), layout::MAGIC);

    // Same memory: a word stored through a third mapping of `a`'s file is
    // seen through `b`.
    let map = memmap2::MmapOptions::new()
        .map_raw(a.as_fd().as_raw_fd())
        .unwrap();
    // SAFETY: the mapping is page-aligned and larger than the header,
    // and the word is only accessed atomically.
    let tail = unsafe { AtomicU64::from_ptr(map.as_mut_ptr().add(offsets::TAIL).cast()) };
    tail.store(0x5A5A_0102_0304_0506, Ordering::Release);
    assert_eq!(b.header_word(offsets::TAIL), 0x5A5A_0102_0304_0506);
    assert_eq!(a.header_word(offsets::TAIL), 0x5A5A_0102_0304_0506);

    let lock = a.lock_role(Role::Producer).unwrap();
    assert_eq!(lock.role(), Role::Producer);
    assert!(matches!(
        b.lock_role(Role::Producer),
        Err(Error::RoleTaken(Role::Producer))
    ));
    // Through the same Region, too.
    assert!(matches!(
        a.lock_role(Role::Producer),
        Err(Error::RoleTaken(Role::Producer))
    ));
    // The other role is independent.
    let consumer = b.lock_role(Role::Consumer).unwrap();
    drop(lock);
    let lock = b.lock_role(Role::Producer).unwrap();
    assert!(matches!(
        a.lock_role(Role::Producer),
        Err(Error::RoleTaken(Role::Producer))
    ));
    drop((lock, consumer));
    drop(a.lock_role(Role::Producer).unwrap());
}

#[test]
fn from_fd_refuses_unsealed_files() {
    let memfd = rustix::fs::memfd_create("plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&memfd, geometry().region_size() as u64).unwrap();
    assert!(matches!(
        Region::from_fd(&memfd),
        Err(Error::Corrupt { .. })
    ));

    let name = unique("named-fd");
    let named = Region::create(&name, geometry()).unwrap();
    assert!(Region::from_fd(named.as_fd()).is_err());
}

/// The seals of an anonymous region hold for every descriptor of its memfd:
/// the creator's and the one [`Region::from_fd`] re-opened through
/// `/proc/self/fd` (another open file description of the same file). Nobody
/// can shrink the file under a peer's mapping (SIGBUS), grow it, or change
/// the seals.
#[test]
fn anonymous_regions_cannot_be_resized_or_unsealed() {
    use rustix::fs::{FallocateFlags, SealFlags};
    use rustix::io::Errno;

    let g = geometry();
    let size = g.region_size() as u64;
    let created = Region::anonymous(g).unwrap();
    let received = Region::from_fd(created.as_fd()).unwrap();
    let sealed = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    for (who, region) in [("created", &created), ("received", &received)] {
        let fd = region.as_fd();
        for len in [0, size / 2, size - 1, size + 1, 2 * size] {
            assert_eq!(
                rustix::fs::ftruncate(fd, len),
                Err(Errno::PERM),
                "{who}: ftruncate to {len}"
            );
        }
        for (offset, len) in [(size, 4096), (0, 2 * size), (size - 1, 2)] {
            assert_eq!(
                rustix::fs::fallocate(fd, FallocateFlags::empty(), offset, len),
                Err(Errno::PERM),
                "{who}: fallocate {len} at {offset}"
            );
        }
        // F_SEAL_SEAL: the set of seals is final; seals are never removable.
        for more in [
            SealFlags::WRITE,
            SealFlags::FUTURE_WRITE,
            SealFlags::empty(),
        ] {
            assert_eq!(
                rustix::fs::fcntl_add_seals(fd, more),
                Err(Errno::PERM),
                "{who}: add {more:?}"
            );
        }
        assert_eq!(rustix::fs::fcntl_get_seals(fd), Ok(sealed), "{who}");
        assert_eq!(rustix::fs::fstat(fd).unwrap().st_size as u64, size, "{who}");
    }
    // Both still map a valid region.
    assert_eq!(created.header_word(offsets::MAGIC), layout::MAGIC);
    assert_eq!(received.header_word(offsets::MAGIC), layout::MAGIC);
    assert_eq!(Region::from_fd(received.as_fd()).unwrap().geometry(), g);
}

#[test]
fn role_held_elsewhere_semantics() {
    let name = unique("held");
    let creator = Region::create(&name, geometry()).unwrap();
    let peer = Region::open(&name).unwrap();
    // A lock held through the Region itself does not count.
    assert!(!creator.creator_alive());
    assert!(peer.creator_alive());
    assert!(!peer.role_held_elsewhere(Role::Producer));

    let lock = creator.lock_role(Role::Producer).unwrap();
    assert!(!creator.role_held_elsewhere(Role::Producer));
    assert!(peer.role_held_elsewhere(Role::Producer));
    assert!(!peer.role_held_elsewhere(Role::Consumer));

    // The lock outlives the Region it was taken through.
    drop(creator);
    assert!(peer.role_held_elsewhere(Role::Producer));
    assert!(
        peer.creator_alive(),
        "the lock keeps the creator's description open"
    );
    drop(lock);
    assert!(!peer.role_held_elsewhere(Role::Producer));
    assert!(!peer.creator_alive());
}

#[test]
#[should_panic(expected = "not a multiple of 8")]
fn header_word_panics_on_a_bad_offset() {
    let region = Region::anonymous(geometry()).unwrap();
    region.header_word(DATA_OFFSET);
}

#[test]
fn creator_drop_unlinks_unless_kept() {
    let name = unique("unlink");
    let region = Region::create(&name, geometry()).unwrap();
    let peer = Region::open(&name).unwrap();
    drop(region);
    assert!(!shm_path(&name).exists());
    // A peer that mapped it keeps working.
    assert_eq!(peer.header_word(offsets::MAGIC), layout::MAGIC);

    let name = unique("keep");
    let mut region = Region::create(&name, geometry()).unwrap();
    region.keep();
    drop(region);
    assert!(shm_path(&name).exists());
    assert_eq!(Region::open(&name).unwrap().geometry(), geometry());
    Region::remove(&name).unwrap();
    assert!(!shm_path(&name).exists());
    assert!(Region::remove(&name).is_err());
}

#[test]
fn list_and_remove_stale() {
    let dir = TempDir::new("list");
    let g = geometry();
    let live = Region::create_in(&dir.0, "live", g).unwrap();

    let mut stale = Region::create_in(&dir.0, "stale", g).unwrap();
    stale.keep();
    drop(stale);

    let mut attached = Region::create_in(&dir.0, "attached", g).unwrap();
    attached.keep();
    drop(attached);
    let attacher = Region::open_in(&dir.0, "attached").unwrap();
    let consumer = attacher.lock_role(Role::Consumer).unwrap();

    std::fs::write(dir.0.join(format!("{PREFIX}garbage")), b"junk").unwrap();
    std::fs::write(dir.0.join("not-a-region"), b"junk").unwrap();
    std::fs::write(dir.0.join(format!("{PREFIX}.hidden")), b"junk").unwrap();

    let infos = Region::list_in(&dir.0).unwrap();
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["attached", "garbage", "live", "stale"]);
    let info = |name| infos.iter().find(|i| i.name == name).unwrap();

    let l = info("live");
    assert!(l.accessible && l.creator_locked && !l.producer_locked && !l.consumer_locked);
    assert_eq!(l.validation.as_ref().unwrap(), &g);
    assert_eq!(l.size, g.region_size() as u64);
    assert_eq!(l.header.unwrap().creator_pid, u64::from(std::process::id()));
    assert!(!l.is_stale());

    let a = info("attached");
    assert!(!a.creator_locked && a.consumer_locked && !a.is_stale());

    let s = info("stale");
    assert!(s.is_stale() && s.validation.is_ok());

    let j = info("garbage");
    assert!(j.is_stale() && j.header.is_none());
    assert!(
        j.validation.as_ref().unwrap_err().contains("region size"),
        "{:?}",
        j.validation
    );

    let mut dry = Region::remove_stale_in(&dir.0, true).unwrap();
    dry.sort();
    assert_eq!(dry, ["garbage", "stale"]);
    assert!(dir.0.join(format!("{PREFIX}stale")).exists());
    let mut removed = Region::remove_stale_in(&dir.0, false).unwrap();
    removed.sort();
    assert_eq!(removed, ["garbage", "stale"]);
    let names: Vec<String> = Region::list_in(&dir.0)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["attached", "live"]);

    // Once the consumer detaches, "attached" is stale as well.
    drop(consumer);
    drop(attacher);
    assert_eq!(
        Region::remove_stale_in(&dir.0, false).unwrap(),
        ["attached"]
    );
    drop(live);
    assert!(Region::list_in(&dir.0).unwrap().is_empty());
}

#[test]
fn list_finds_live_regions_in_dev_shm() {
    let name = unique("listed");
    let _region = Region::create(&name, geometry()).unwrap();
    let infos = Region::list().unwrap();
    let info = infos.iter().find(|i| i.name == name).expect("listed");
    assert!(info.creator_locked && !info.is_stale());
    assert!(!Region::remove_stale(true).unwrap().contains(&name));
}

const CHILD_ENV: &str = "SHMSG_REGION_TEST_CHILD";

/// Not a test of its own: the body of the child processes below, which
/// attach to a region, take the producer role and wait to be killed.
#[test]
fn child_helper() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let region = if let Some(fd) = task.strip_prefix("anon:") {
        // SAFETY: the parent passed this descriptor, open and owned by
        // nobody else in this process.
        let inherited = unsafe { OwnedFd::from_raw_fd(fd.parse().unwrap()) };
        Region::from_fd(inherited).unwrap() // `inherited` is closed here
    } else {
        let (dir, name) = task
            .strip_prefix("named:")
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        let mut region = Region::create_in(Path::new(dir), name, geometry()).unwrap();
        region.keep();
        region
    };
    let _lock = region.lock_role(Role::Producer).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    panic!("the parent should have killed this child");
}

fn spawn_child(task: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_helper", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, task)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn killed_creator_leaves_a_stale_region() {
    let dir = TempDir::new("killed");
    let mut child = spawn_child(&format!("named:{}:victim", dir.0.display()));
    let mut region = None;
    wait_until("the child's region", || {
        region = Region::open_in(&dir.0, "victim").ok();
        region
            .as_ref()
            .is_some_and(|r| r.role_held_elsewhere(Role::Producer))
    });
    let region = region.unwrap();
    assert!(region.creator_alive());
    assert_eq!(
        Region::remove_stale_in(&dir.0, false).unwrap(),
        Vec::<String>::new()
    );

    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(!region.creator_alive());
    assert!(!region.role_held_elsewhere(Role::Producer));
    drop(region);
    let info = &Region::list_in(&dir.0).unwrap()[0];
    assert!(info.is_stale());
    assert_eq!(info.header.unwrap().creator_pid, u64::from(child.id()));
    assert_eq!(Region::remove_stale_in(&dir.0, true).unwrap(), ["victim"]);
    assert_eq!(Region::remove_stale_in(&dir.0, false).unwrap(), ["victim"]);
    assert!(Region::list_in(&dir.0).unwrap().is_empty());
}

#[test]
fn anonymous_region_passed_to_a_child() {
    let region = Region::anonymous(geometry()).unwrap();
    let inheritable = rustix::io::dup(region.as_fd()).unwrap(); // without CLOEXEC
    let mut child = spawn_child(&format!("anon:{}", inheritable.as_raw_fd()));
    drop(inheritable);
    wait_until("the child's producer lock", || {
        region.role_held_elsewhere(Role::Producer)
    });
    assert!(matches!(
        region.lock_role(Role::Producer),
        Err(Error::RoleTaken(Role::Producer))
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!region.role_held_elsewhere(Role::Producer));
    drop(region.lock_role(Role::Producer).unwrap());
}

/// Waits on a region's futexes, between threads of this process: timeouts
/// end a sleeping wait, and a detach wakes a sleeping peer.
mod waits {
    use super::*;
    use shmsg::shm::spsc::{Consumer, Producer};
    use shmsg::shm::wait::{SLICE, sleepers};
    use std::sync::Arc;

    fn ring() -> Arc<Region> {
        Arc::new(Region::anonymous(Geometry::new(64, 16).unwrap()).unwrap())
    }

    #[test]
    fn timeouts_end_sleeping_waits() {
        let region = ring();
        let mut tx = Producer::attach(&region).unwrap();
        let mut rx = Consumer::attach(&region).unwrap();
        let timeout = Duration::from_millis(30);
        let started = Instant::now();
        assert!(matches!(
            rx.recv_timeout(&mut Vec::new(), timeout),
            Err(Error::Timeout)
        ));
        let took = started.elapsed();
        // Never early; late by at most a sleep slice (20 ms) on an idle
        // machine: the 1 s allowance is 50 times that, for a loaded one.
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "{took:?}"
        );
        // Fill the ring, then time out waiting for space.
        while tx.try_send(&[7; 16]).is_ok() {}
        let started = Instant::now();
        assert!(matches!(
            tx.send_timeout(&[7; 16], timeout),
            Err(Error::Timeout)
        ));
        let took = started.elapsed();
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "{took:?}"
        );
        // Nobody is left announced as a sleeper.
        assert_eq!(sleepers(region.header_word(offsets::DATA_EVENT)), 0);
        assert_eq!(sleepers(region.header_word(offsets::SPACE_EVENT)), 0);
    }

    /// Waits until the other thread sleeps on `event` (its sleeper count is
    /// set), plus a moment to enter the kernel.
    fn until_asleep(region: &Region, event: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sleepers(region.header_word(event)) == 0 {
            assert!(Instant::now() < deadline, "the other thread never slept");
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    #[test]
    fn detach_wakes_a_sleeping_consumer() {
        let region = ring();
        let tx = Producer::attach(&region).unwrap();
        let mut rx = Consumer::attach(&region).unwrap();
        let sleeper = std::thread::spawn(move || {
            let result = rx.recv(&mut Vec::new());
            (result, Instant::now())
        });
        until_asleep(&region, offsets::DATA_EVENT);
        let dropped = Instant::now();
        drop(tx);
        let (result, woke) = sleeper.join().unwrap();
        assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
        eprintln!(
            "consumer saw the detach after {:?} (slice {SLICE:?})",
            woke - dropped
        );
        // Woken by the detach (microseconds), at worst by the end of its
        // slice (20 ms): 1 s is 50 times the worst, for a loaded machine.
        assert!(woke - dropped < Duration::from_secs(1));
    }

    #[test]
    fn detach_wakes_a_sleeping_producer() {
        let region = ring();
        let mut tx = Producer::attach(&region).unwrap();
        let rx = Consumer::attach(&region).unwrap();
        while tx.try_send(&[7; 16]).is_ok() {}
        let sleeper = std::thread::spawn(move || {
            let result = tx.send(&[7; 16]);
            (result, Instant::now())
        });
        until_asleep(&region, offsets::SPACE_EVENT);
        let dropped = Instant::now();
        drop(rx);
        let (result, woke) = sleeper.join().unwrap();
        assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
        eprintln!(
            "producer saw the detach after {:?} (slice {SLICE:?})",
            woke - dropped
        );
        // As for the consumer: 1 s is 50 times the slice.
        assert!(woke - dropped < Duration::from_secs(1));
    }
}

/// A ring of one kind refuses handles of another: each protocol attaches
/// only to regions laid out for it.
#[test]
fn handles_of_another_ring_kind_are_refused() {
    let geometry = Geometry::new(1 << 16, 1024).unwrap();
    let mpsc = std::sync::Arc::new(Region::anonymous_kind(geometry, RingKind::Mpsc).unwrap());
    for result in [
        shmsg::shm::spsc::Producer::attach(&mpsc).map(drop),
        shmsg::shm::spsc::Consumer::attach(&mpsc).map(drop),
    ] {
        assert!(
            matches!(
                result,
                Err(Error::LayoutMismatch {
                    field: "ring_kind",
                    ..
                })
            ),
            "{result:?}"
        );
    }
    let spsc = std::sync::Arc::new(Region::anonymous(geometry).unwrap());
    assert!(matches!(
        shmsg::shm::mpmc::Producer::attach(&spsc).map(drop),
        Err(Error::LayoutMismatch {
            field: "ring_kind",
            ..
        })
    ));
}

/// The field of a [`Error::LayoutMismatch`], with what was expected and found.
fn mismatch(result: Result<Region, Error>) -> (&'static str, u64, u64) {
    match result {
        Err(Error::LayoutMismatch {
            field,
            expected,
            found,
        }) => (field, expected, found),
        other => panic!("expected a layout mismatch, got {other:?}"),
    }
}

#[test]
fn options_create_what_they_describe() {
    let g = geometry();
    let name = unique("options-create");
    let created = Region::options()
        .geometry(g)
        .kind(RingKind::Mpmc)
        .create(&name)
        .unwrap();
    assert_eq!((created.geometry(), created.kind()), (g, RingKind::Mpmc));
    assert_eq!(created.name(), Some(name.as_str()));
    assert_eq!(created.path(), Some(shm_path(&name).as_path()));
    assert_eq!(
        created.header_word(offsets::RING_KIND),
        RingKind::Mpmc as u64
    );
    // Nothing set: a single-producer ring of the default geometry.
    let defaults = RegionOptions::new().anonymous().unwrap();
    assert_eq!(
        (defaults.geometry(), defaults.kind()),
        (Geometry::default(), RingKind::Spsc)
    );
    assert_eq!(RegionOptions::default(), Region::options());
    // The creator unlinks the file, as `Region::create`'s does.
    drop(created);
    assert!(!shm_path(&name).exists());
}

#[test]
fn options_open_requires_what_is_set() {
    let g = geometry();
    let name = unique("options-open");
    let _creator = Region::create_kind(&name, g, RingKind::Mpsc).unwrap();
    // Nothing set: any valid region.
    let any = Region::options().open(&name).unwrap();
    assert_eq!((any.geometry(), any.kind()), (g, RingKind::Mpsc));
    // Set and matching.
    let exact = Region::options()
        .geometry(g)
        .kind(RingKind::Mpsc)
        .open(&name)
        .unwrap();
    assert_eq!(exact.geometry(), g);
    // Set and different: the field, what was wanted and what was found.
    let spsc = RingKind::Spsc as u64;
    let mpsc = RingKind::Mpsc as u64;
    let open = |options: &RegionOptions| options.open(&name);
    assert_eq!(
        mismatch(open(Region::options().kind(RingKind::Spsc))),
        ("ring_kind", spsc, mpsc)
    );
    assert_eq!(
        mismatch(open(
            Region::options().geometry(Geometry::new(8192, 100).unwrap())
        )),
        ("capacity", 8192, 4096)
    );
    assert_eq!(
        mismatch(open(
            Region::options().geometry(Geometry::new(4096, 50).unwrap())
        )),
        ("max_message", 50, 100)
    );
    // The kind is checked first, as a header's kind word is.
    let both = Region::options()
        .kind(RingKind::Mpmc)
        .geometry(Geometry::new(8192, 100).unwrap())
        .open(&name);
    assert_eq!(mismatch(both).0, "ring_kind");
    // `open_expect` is the geometry requirement alone.
    assert!(Region::open_expect(&name, g).is_ok());
}

#[test]
fn options_dir_moves_named_regions() {
    let temp = TempDir::new("options-dir");
    let name = unique("options-dir");
    let mut options = Region::options();
    options.dir(&temp.0).geometry(geometry());
    let created = options.create(&name).unwrap();
    let path = temp.0.join(format!("{PREFIX}{name}"));
    assert_eq!(created.path(), Some(path.as_path()));
    assert!(!shm_path(&name).exists());
    // The same options value opens it (the geometry now a requirement), and
    // so do the shortcut and a clone.
    assert_eq!(options.open(&name).unwrap().path(), Some(path.as_path()));
    assert!(Region::open_in(&temp.0, &name).is_ok());
    assert!(options.clone().open(&name).is_ok());
    // Not in /dev/shm.
    let (kind, _) = io_kind(Region::options().open(&name));
    assert_eq!(kind, io::ErrorKind::NotFound);
    // Creating it twice is refused, as `create_in` refuses it.
    let (kind, _) = io_kind(options.create(&name));
    assert_eq!(kind, io::ErrorKind::AlreadyExists);
    // Anonymous regions have no directory.
    let anonymous = options.anonymous().unwrap();
    assert_eq!((anonymous.path(), anonymous.geometry()), (None, geometry()));
}

#[test]
fn options_keep_every_check_of_the_untrusted_file() {
    let g = geometry();
    // Names are checked whatever is set.
    for result in [
        Region::options().geometry(g).create("a/b"),
        Region::options().kind(RingKind::Mpmc).open(".x"),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidName { .. })),
            "{result:?}"
        );
    }
    // A header that does not validate is refused before any requirement is
    // looked at.
    let mut image = valid_image(g);
    put(&mut image, offsets::POINTER_WIDTH, 4);
    let (name, _guard) = hand_written("options-garbage", &image);
    let refused = Region::options()
        .geometry(g)
        .kind(RingKind::Spsc)
        .open(&name);
    assert_eq!(mismatch(refused).0, "pointer_width");
    // An unsealed memfd is refused whatever is set.
    let memfd = rustix::fs::memfd_create("plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&memfd, g.region_size() as u64).unwrap();
    let refused = Region::options().geometry(g).from_fd(&memfd);
    assert!(matches!(refused, Err(Error::Corrupt { .. })), "{refused:?}");
}

#[test]
fn options_attach_anonymous_regions_with_requirements() {
    let g = geometry();
    let region = Region::options()
        .geometry(g)
        .kind(RingKind::Mpsc)
        .anonymous()
        .unwrap();
    let attached = Region::options()
        .geometry(g)
        .kind(RingKind::Mpsc)
        .from_fd(region.as_fd())
        .unwrap();
    assert!(attached.creator_alive());
    assert_eq!(
        mismatch(
            Region::options()
                .kind(RingKind::Mpmc)
                .from_fd(region.as_fd())
        ),
        ("ring_kind", RingKind::Mpmc as u64, RingKind::Mpsc as u64)
    );

    // Over a socket, the same requirements.
    let (here, there) = std::os::unix::net::UnixStream::pair().unwrap();
    region.send_over(&here).unwrap();
    let wanted = Geometry::new(8192, 100).unwrap();
    let refused = Region::options().geometry(wanted).receive_from(&there);
    assert_eq!(mismatch(refused), ("capacity", 8192, 4096));
    region.send_over(&here).unwrap();
    let received = Region::options()
        .kind(RingKind::Mpsc)
        .receive_from(&there)
        .unwrap();
    assert_eq!(received.geometry(), g);
}

/// A peer attached through the same `Region` in this process holds its
/// lock through our own open file description, which the kernel's lock
/// test does not report as another's: its pid word says it is ours, and it
/// is alive. A receiver that waits through several sleep slices (each one
/// asks whether the producers are alive) times out; it does not report its
/// idle producer dead. Then the producer detaches: `Disconnected`. Every
/// ring kind.
#[test]
fn a_peer_attached_in_this_process_is_alive() {
    use shmsg::shm::wait::SLICE;
    use std::sync::Arc;
    let geometry = Geometry::new(1 << 12, 64).unwrap();
    let mut buf = Vec::new();

    let region = Arc::new(Region::anonymous(geometry).unwrap());
    let mut rx = shmsg::shm::spsc::Consumer::attach(&region).unwrap();
    let tx = shmsg::shm::spsc::Producer::attach(&region).unwrap();
    let waited = rx.recv_timeout(&mut buf, SLICE * 4);
    assert!(matches!(waited, Err(Error::Timeout)), "spsc: {waited:?}");
    drop(tx);
    let last = rx.recv_timeout(&mut buf, SLICE * 4);
    assert!(matches!(last, Err(Error::Disconnected)), "spsc: {last:?}");

    for kind in [RingKind::Mpsc, RingKind::Mpmc] {
        let region = Arc::new(Region::anonymous_kind(geometry, kind).unwrap());
        let mut rx = shmsg::shm::mpmc::Consumer::attach(&region).unwrap();
        let tx = shmsg::shm::mpmc::Producer::attach(&region).unwrap();
        let waited = rx.recv_timeout(&mut buf, SLICE * 4);
        assert!(
            matches!(waited, Err(Error::Timeout)),
            "{kind:?}: {waited:?}"
        );
        drop(tx);
        let last = rx.recv_timeout(&mut buf, SLICE * 4);
        assert!(
            matches!(last, Err(Error::Disconnected)),
            "{kind:?}: {last:?}"
        );
    }
}
