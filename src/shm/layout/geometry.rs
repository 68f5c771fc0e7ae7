//! Round-ups and the validated geometry of a ring.

use super::{DATA_OFFSET, MAX_CAPACITY, MIN_CAPACITY, RECORD_HEADER, WRAP_LEN};
use crate::error::{Error, Result};
use crate::sync::Backend;

/// Round `n` up to a multiple of 8.
///
/// ```
/// use shmsg::shm::layout::round8;
///
/// assert_eq!([round8(0), round8(1), round8(8), round8(13)], [0, 8, 8, 16]);
/// ```
#[inline(always)]
pub const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes a record of `len` payload bytes occupies in the data area.
///
/// ```
/// use shmsg::shm::layout::record_size;
///
/// // An 8-byte header, and the payload padded to 8 bytes.
/// assert_eq!(record_size(5), 16);
/// assert_eq!(record_size(16), 24);
/// ```
#[inline(always)]
pub const fn record_size(len: usize) -> usize {
    RECORD_HEADER + round8(len)
}

/// The capacity and maximum message size of a ring, validated.
///
/// A record (an 8-byte header and the payload padded to 8 bytes) never
/// straddles the end of the data area; a producer that reaches the end
/// leaves a wrap marker and starts over at offset 0. For that to always make
/// progress, a maximum-size record plus the next record's header word must fit
/// in half the capacity: `record_size(max_message) + 8 <= capacity / 2`.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::Geometry;
///
/// // 64 KiB of records, messages up to 1 KiB.
/// let g = Geometry::new(1 << 16, 1024)?;
/// let region = Region::anonymous(g)?;
/// assert_eq!(region.geometry().max_message(), 1024);
/// // A record and the next header must fit in half the ring.
/// assert!(Geometry::new(1 << 16, 1 << 15).is_err());
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub(super) capacity: usize,
    pub(super) max_message: usize,
}

impl Geometry {
    /// A ring of `capacity` bytes (a power of two, 64 bytes to 16 GiB) taking
    /// messages of up to `max_message` bytes.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let g = Geometry::new(4096, 100)?;
    /// assert_eq!((g.capacity(), g.max_message()), (4096, 100));
    /// assert!(matches!(Geometry::new(4000, 100), Err(Error::InvalidConfig(_))));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new(capacity: usize, max_message: usize) -> Result<Geometry> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(Error::InvalidConfig(format!(
                "capacity {capacity} must be a power of two between {MIN_CAPACITY} and {MAX_CAPACITY} bytes"
            )));
        }
        let limit = Self::max_message_for(capacity);
        if max_message > limit {
            return Err(Error::InvalidConfig(format!(
                "maximum message size {max_message} is too large for a capacity of {capacity} bytes \
                 (at most {limit}; a record and the next header must fit in half the ring)"
            )));
        }
        Ok(Geometry {
            capacity,
            max_message,
        })
    }

    /// The smallest ring that takes messages of up to `max_message` bytes,
    /// with room for at least `min_capacity` bytes of records.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let g = Geometry::for_max_message(1000, 0)?;
    /// assert_eq!(g.capacity(), 2048);
    /// assert!(g.max_message() >= 1000);
    /// // At least `min_capacity` bytes of records.
    /// assert_eq!(Geometry::for_max_message(1000, 1 << 20)?.capacity(), 1 << 20);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn for_max_message(max_message: usize, min_capacity: usize) -> Result<Geometry> {
        let need = (2 * (record_size(max_message.min(WRAP_LEN as usize)) + RECORD_HEADER))
            .max(min_capacity)
            .max(MIN_CAPACITY);
        let capacity = need.checked_next_power_of_two().ok_or_else(|| {
            Error::InvalidConfig(format!("capacity for {max_message} bytes overflows"))
        })?;
        Geometry::new(capacity, max_message)
    }

    /// The largest message a ring of `capacity` bytes can take.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    ///
    /// assert_eq!(Geometry::max_message_for(4096), 2032);
    /// assert!(Geometry::new(4096, Geometry::max_message_for(4096)).is_ok());
    /// ```
    pub const fn max_message_for(capacity: usize) -> usize {
        let half = capacity / 2;
        let limit = half.saturating_sub(2 * RECORD_HEADER);
        if limit < WRAP_LEN as usize {
            limit
        } else {
            WRAP_LEN as usize - 1
        }
    }

    /// The geometry of the ring in `backend`, which the [`Backend`]
    /// contract says is validated.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, Mapped};
    ///
    /// let geometry = Geometry::new(1 << 12, 256)?;
    /// let backend = Mapped::heap(geometry, 0)?;
    /// assert_eq!(Geometry::of(&backend), geometry);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline(always)]
    pub fn of<B: Backend>(backend: &B) -> Geometry {
        let geometry = Geometry {
            capacity: backend.capacity(),
            max_message: backend.max_message(),
        };
        debug_assert!(Geometry::new(geometry.capacity, geometry.max_message).is_ok());
        geometry
    }

    /// Data area size in bytes.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    ///
    /// assert_eq!(Geometry::new(4096, 100)?.capacity(), 4096);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Largest message in bytes.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    ///
    /// assert_eq!(Geometry::new(4096, 100)?.max_message(), 100);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Total size of a region holding this ring.
    ///
    /// ```
    /// use shmsg::shm::Region;
    /// use shmsg::shm::layout::{DATA_OFFSET, Geometry};
    ///
    /// let g = Geometry::new(4096, 100)?;
    /// assert_eq!(g.region_size(), DATA_OFFSET + 4096);
    /// let region = Region::anonymous(g)?;
    /// let file_len = rustix::fs::fstat(region.as_fd()).unwrap().st_size;
    /// assert_eq!(file_len as usize, g.region_size());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn region_size(&self) -> usize {
        DATA_OFFSET + self.capacity
    }
}

impl Default for Geometry {
    /// 1 MiB of records, messages up to 64 KiB.
    ///
    /// ```
    /// use shmsg::shm::layout::Geometry;
    ///
    /// let g = Geometry::default();
    /// assert_eq!((g.capacity(), g.max_message()), (1 << 20, 64 << 10));
    /// ```
    fn default() -> Geometry {
        Geometry {
            capacity: 1 << 20,
            max_message: 64 << 10,
        }
    }
}
