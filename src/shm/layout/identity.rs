//! What a creator writes into a header's identity, and what an opener
//! checks there.

use std::mem::size_of;

use super::{
    ABI_VERSION, CACHE_LINE, DATA_OFFSET, ENDIAN_PROBE, Geometry, Identity, MAGIC, RingKind,
    offsets,
};
use crate::error::{Error, Result};

impl Identity {
    /// The words a creator writes for `geometry`.
    ///
    /// ```
    /// use shmsg::shm::layout::{DATA_OFFSET, Geometry, Identity, MAGIC, RingKind};
    ///
    /// let words = Identity::for_geometry(RingKind::Mpsc, Geometry::new(4096, 100)?);
    /// assert_eq!((words.magic, words.ring_kind), (MAGIC, RingKind::Mpsc as u64));
    /// assert_eq!((words.capacity, words.max_message), (4096, 100));
    /// assert_eq!(words.data_offset, DATA_OFFSET as u64);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn for_geometry(kind: RingKind, geometry: Geometry) -> Identity {
        Identity {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            ring_kind: kind as u64,
            capacity: geometry.capacity as u64,
            max_message: geometry.max_message as u64,
            pointer_width: size_of::<usize>() as u64,
            endian: ENDIAN_PROBE,
            cache_line: CACHE_LINE as u64,
            data_offset: DATA_OFFSET as u64,
            creator_pid: u64::from(std::process::id()),
        }
    }

    /// Checks the words against this build and against the region's size in
    /// bytes, and returns the ring's geometry (`creator_pid` is informational
    /// and not checked). Pure: a property test feeds it arbitrary words.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::layout::{Geometry, Identity, RingKind};
    ///
    /// let g = Geometry::new(4096, 100)?;
    /// let len = g.region_size() as u64;
    /// let words = Identity::for_geometry(RingKind::Spsc, g);
    /// assert_eq!(words.validate(RingKind::Spsc, len)?, g);
    /// // Another build's words, or another size, name the field that differs.
    /// let other = Identity { pointer_width: 4, ..words };
    /// let e = other.validate(RingKind::Spsc, len).unwrap_err();
    /// assert!(matches!(e, Error::LayoutMismatch { field: "pointer_width", .. }));
    /// let e = words.validate(RingKind::Spsc, len - 8).unwrap_err();
    /// assert!(matches!(e, Error::LayoutMismatch { field: "region size", .. }));
    /// // Not yet published by its creator.
    /// let unpublished = Identity { abi_version: 0, ..words };
    /// let e = unpublished.validate(RingKind::Spsc, len).unwrap_err();
    /// assert!(matches!(e, Error::NotInitialized));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn validate(&self, kind: RingKind, region_len: u64) -> Result<Geometry> {
        let mismatch = |field, expected, found| Error::LayoutMismatch {
            field,
            expected,
            found,
        };
        if self.magic != MAGIC {
            return Err(mismatch("magic", MAGIC, self.magic));
        }
        if self.abi_version == 0 {
            return Err(Error::NotInitialized);
        }
        let own = Identity::for_geometry(kind, Geometry::default());
        let checks = [
            ("abi_version", own.abi_version, self.abi_version),
            ("ring_kind", own.ring_kind, self.ring_kind),
            ("pointer_width", own.pointer_width, self.pointer_width),
            ("endian", own.endian, self.endian),
            ("cache_line", own.cache_line, self.cache_line),
            ("data_offset", own.data_offset, self.data_offset),
        ];
        for (field, expected, found) in checks {
            if expected != found {
                return Err(mismatch(field, expected, found));
            }
        }
        let capacity = usize::try_from(self.capacity)
            .map_err(|_| Error::corrupt("capacity", self.capacity))?;
        let max_message = usize::try_from(self.max_message)
            .map_err(|_| Error::corrupt("max_message", self.max_message))?;
        let geometry = Geometry::new(capacity, max_message)
            .map_err(|_| Error::corrupt("capacity or max_message", self.capacity))?;
        let expected_len = geometry.region_size() as u64;
        if region_len != expected_len {
            return Err(mismatch("region size", expected_len, region_len));
        }
        Ok(geometry)
    }

    /// [`Identity::validate`] for a region of any known [`RingKind`]: returns
    /// the kind the region says it holds, and its geometry.
    ///
    /// ```
    /// use shmsg::shm::layout::{Geometry, Identity, RingKind};
    ///
    /// let g = Geometry::default();
    /// let words = Identity::for_geometry(RingKind::Mpmc, g);
    /// assert_eq!(words.validate_any(g.region_size() as u64)?, (RingKind::Mpmc, g));
    /// let unknown = Identity { ring_kind: 9, ..words };
    /// assert!(unknown.validate_any(g.region_size() as u64).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn validate_any(&self, region_len: u64) -> Result<(RingKind, Geometry)> {
        // The kind word is checked only after the magic and version.
        let kind = RingKind::from_word(self.ring_kind).unwrap_or(RingKind::Spsc);
        let geometry = self.validate(kind, region_len)?;
        Ok((kind, geometry))
    }

    /// Writes a fresh header for a ring of `kind` and `geometry` whose head
    /// and tail start at `initial_position`, through `store(offset, value,
    /// ordering)`: identity words, positions and attachments, then the ABI
    /// version last with `Release`, so that an opener that sees the version
    /// sees every other word.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use std::sync::Mutex;
    /// use std::sync::atomic::Ordering;
    ///
    /// use shmsg::shm::layout::{ABI_VERSION, Geometry, Identity, RingKind, offsets};
    ///
    /// let stores = Mutex::new(Vec::new());
    /// Identity::publish(RingKind::Spsc, Geometry::default(), 0, |offset, value, order| {
    ///     stores.lock().unwrap().push((offset, value, order));
    /// });
    /// let stores = stores.into_inner().unwrap();
    /// // The version last, with `Release`.
    /// assert_eq!(stores.last(), Some(&(offsets::ABI_VERSION, ABI_VERSION, Ordering::Release)));
    /// let words: BTreeMap<_, _> = stores.iter().map(|&(o, v, _)| (o, v)).collect();
    /// assert_eq!(words[&offsets::CAPACITY], 1 << 20);
    /// ```
    pub fn publish(
        kind: RingKind,
        geometry: Geometry,
        initial_position: u64,
        store: impl Fn(usize, u64, std::sync::atomic::Ordering),
    ) {
        use std::sync::atomic::Ordering::{Relaxed, Release};
        let id = Identity::for_geometry(kind, geometry);
        let words = [
            (offsets::MAGIC, id.magic),
            (offsets::RING_KIND, id.ring_kind),
            (offsets::CAPACITY, id.capacity),
            (offsets::MAX_MESSAGE, id.max_message),
            (offsets::POINTER_WIDTH, id.pointer_width),
            (offsets::ENDIAN, id.endian),
            (offsets::CACHE_LINE, id.cache_line),
            (offsets::DATA_OFFSET, id.data_offset),
            (offsets::CREATOR_PID, id.creator_pid),
            (offsets::TAIL, initial_position),
            (offsets::HEAD, initial_position),
            (offsets::READ_CURSOR, initial_position),
            (offsets::PRODUCER_EPOCH, 0),
            (offsets::PRODUCER_PID, 0),
            (offsets::CONSUMER_EPOCH, 0),
            (offsets::CONSUMER_PID, 0),
            (offsets::DATA_EVENT, 0),
            (offsets::SPACE_EVENT, 0),
        ];
        for (offset, value) in words {
            store(offset, value, Relaxed);
        }
        store(offsets::ABI_VERSION, id.abi_version, Release);
    }

    /// Checks that a validated region has the geometry the opener asked for.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::layout::{Geometry, Identity};
    ///
    /// let g = Geometry::new(4096, 100)?;
    /// Identity::expect(g, g)?;
    /// let e = Identity::expect(g, Geometry::new(8192, 100)?).unwrap_err();
    /// assert!(matches!(e, Error::LayoutMismatch { field: "capacity", expected: 8192, found: 4096 }));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn expect(geometry: Geometry, wanted: Geometry) -> Result<()> {
        if geometry.capacity != wanted.capacity {
            return Err(Error::LayoutMismatch {
                field: "capacity",
                expected: wanted.capacity as u64,
                found: geometry.capacity as u64,
            });
        }
        if geometry.max_message != wanted.max_message {
            return Err(Error::LayoutMismatch {
                field: "max_message",
                expected: wanted.max_message as u64,
                found: geometry.max_message as u64,
            });
        }
        Ok(())
    }
}
