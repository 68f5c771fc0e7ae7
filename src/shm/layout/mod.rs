//! The `#[repr(C)]` header at the start of every region, the geometry of its
//! ring, and the pure validation an opener applies to both.
//!
//! ```text
//! offset   0  Identity (128 bytes): magic, ABI version (written last), and the
//!             layout fingerprint; written once by the creator
//! offset 128  Attachments (128 bytes): each side's epoch and pid; written only
//!             when a side attaches or detaches, so it stays cached on both
//!             cores and either side may read it on every operation
//! offset 256  Waiting (128 bytes): the two eventcount words a sleeping side
//!             waits on (see [`crate::shm::wait`]); written only by a side
//!             that goes to sleep or wakes a sleeper, read by each side after
//!             every publish or release, so in a busy stream it stays
//!             cached, unmodified, on both cores and costs no coherence traffic
//! offset 384  producer line (128 bytes): tail; written by the producer
//! offset 512  consumer line (128 bytes): head; written by the consumer
//! offset 640  readers line (128 bytes): the shared read cursor of a
//!             multi-consumer ring ([`RingKind::Mpmc`]); unused otherwise
//! offset 768  producer slots ([`MAX_PRODUCERS`] lines of 128 bytes): each
//!             attached producer of a multi-producer ring owns one (epoch,
//!             pid, and the claim it is making); unused by `Spsc`
//! offset 2816 consumer slots ([`MAX_CONSUMERS`] lines of 128 bytes): each
//!             attached consumer of a multi-producer ring owns one (epoch,
//!             pid, and, for [`RingKind::Mpmc`], the record it holds)
//! offset 3840 data area: `capacity` bytes of records
//! ```
//!
//! Every word is a little `u64` accessed atomically through a raw pointer,
//! never through a Rust reference to the struct: another process may write
//! any of them at any time. The structs below only fix the layout
//! (`offset_of!`) and document it.
//!
//! The version word is stored last with `Release`; an opener that finds it
//! zero reports [`Error::NotInitialized`]. The fingerprint fields let an
//! opener built differently (other ABI, pointer width, endianness, cache-line
//! padding or ring kind) refuse the region with [`Error::LayoutMismatch`]
//! naming the field, instead of misreading it.

use std::mem::{offset_of, size_of};

#[cfg(doc)]
use crate::error::Error;

/// `b"shmsg\0rg"` read as a little-endian `u64`.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::{MAGIC, offsets};
///
/// assert_eq!(&MAGIC.to_le_bytes(), b"shmsg\0rg");
/// let region = Region::options().anonymous()?;
/// assert_eq!(region.header_word(offsets::MAGIC), MAGIC);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub const MAGIC: u64 = u64::from_le_bytes(*b"shmsg\0rg");
/// Version of the region layout and ring protocol; bump on any change.
///
/// 2: the `Waiting` line (futex eventcounts) at offset 256; the data area
/// moved from 512 to 640.
///
/// 3: the readers line and the producer and consumer slots of the
/// multi-producer rings ([`crate::shm::mpmc`]); the data area moved from 640
/// to 2944.
///
/// 4: each consumer slot on a line of its own, with the record its
/// consumer holds (`claim`, `claim_len`), so that a dead consumer's record
/// can be recovered; the data area moved from 2944 to 3840.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::{ABI_VERSION, offsets};
///
/// let region = Region::options().anonymous()?;
/// assert_eq!(region.header_word(offsets::ABI_VERSION), ABI_VERSION);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub const ABI_VERSION: u64 = 4;
/// The most producers a multi-producer ring takes at once: one slot each.
///
/// ```
/// use shmsg::shm::layout::{MAX_PRODUCERS, RingKind};
///
/// assert_eq!(RingKind::Mpsc.limits(), (MAX_PRODUCERS, 1));
/// ```
pub const MAX_PRODUCERS: usize = 16;
/// The most consumers a [`RingKind::Mpmc`] ring takes at once.
///
/// ```
/// use shmsg::shm::layout::{MAX_CONSUMERS, MAX_PRODUCERS, RingKind};
///
/// assert_eq!(RingKind::Mpmc.limits(), (MAX_PRODUCERS, MAX_CONSUMERS));
/// ```
pub const MAX_CONSUMERS: usize = 8;
/// The padding unit between words written by different sides: two 64-byte
/// lines, so that adjacent-line prefetch does not couple them.
///
/// ```
/// use shmsg::shm::layout::{CACHE_LINE, DATA_OFFSET, offsets};
///
/// // Words written by different sides are a padding unit apart.
/// assert_eq!(offsets::HEAD - offsets::TAIL, CACHE_LINE);
/// assert_eq!(DATA_OFFSET % CACHE_LINE, 0);
/// ```
pub const CACHE_LINE: usize = 128;
/// A fixed pattern stored in native byte order; it reads differently on a
/// machine of the other endianness.
///
/// ```
/// use shmsg::shm::layout::{ENDIAN_PROBE, Geometry, Identity, RingKind};
///
/// let words = Identity::for_geometry(RingKind::Spsc, Geometry::default());
/// assert_eq!(words.endian, ENDIAN_PROBE);
/// // As a machine of the other byte order would read it.
/// assert_ne!(ENDIAN_PROBE.swap_bytes(), ENDIAN_PROBE);
/// ```
pub const ENDIAN_PROBE: u64 = 0x0102_0304_0506_0708;
/// The smallest ring capacity, in bytes.
///
/// ```
/// use shmsg::shm::layout::{Geometry, MIN_CAPACITY};
///
/// assert!(Geometry::new(MIN_CAPACITY, 8).is_ok());
/// assert!(Geometry::new(MIN_CAPACITY / 2, 8).is_err());
/// ```
pub const MIN_CAPACITY: usize = 64;
/// The largest ring capacity, in bytes (16 GiB): record-header tags are 32
/// bits of `position / 8`, so headers one lap apart still carry different
/// tags.
///
/// ```
/// use shmsg::shm::layout::{Geometry, MAX_CAPACITY};
///
/// assert!(Geometry::new(MAX_CAPACITY, 1024).is_ok());
/// assert!(Geometry::new(MAX_CAPACITY * 2, 1024).is_err());
/// ```
pub const MAX_CAPACITY: usize = 1 << 34;
/// Size of a record header in the data area.
///
/// ```
/// use shmsg::shm::layout::{RECORD_HEADER, record_size};
///
/// assert_eq!(record_size(0), RECORD_HEADER);
/// ```
pub const RECORD_HEADER: usize = 8;
/// Record lengths are stored in 31 bits; this value is reserved for the
/// wrap marker, so messages are shorter.
///
/// ```
/// use shmsg::shm::layout::{Geometry, WRAP_LEN};
///
/// // No ring takes a message of the marker's length.
/// assert!(Geometry::max_message_for(1 << 34) < WRAP_LEN as usize);
/// ```
pub const WRAP_LEN: u32 = 0x7FFF_FFFF;

/// What kind of ring a region holds.
///
/// ```
/// use shmsg::shm::Region;
/// use shmsg::shm::layout::RingKind;
///
/// let region = Region::options().kind(RingKind::Mpmc).anonymous()?;
/// assert_eq!(region.kind(), RingKind::Mpmc);
/// assert_eq!(RingKind::Mpmc as u64, 3); // the header's `ring_kind` word
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum RingKind {
    /// Single producer, single consumer, variable-size records ([`crate::shm::spsc`]).
    Spsc = 1,
    /// Up to [`MAX_PRODUCERS`] producers, one consumer ([`crate::shm::mpmc`]).
    Mpsc = 2,
    /// Up to [`MAX_PRODUCERS`] producers and [`MAX_CONSUMERS`] consumers,
    /// each message to exactly one of them ([`crate::shm::mpmc`]).
    Mpmc = 3,
}

impl RingKind {
    /// The kind whose number is `word`, if any.
    ///
    /// ```
    /// use shmsg::shm::layout::RingKind;
    ///
    /// assert_eq!(RingKind::from_word(2), Some(RingKind::Mpsc));
    /// assert_eq!(RingKind::from_word(0), None);
    /// ```
    pub fn from_word(word: u64) -> Option<RingKind> {
        match word {
            1 => Some(RingKind::Spsc),
            2 => Some(RingKind::Mpsc),
            3 => Some(RingKind::Mpmc),
            _ => None,
        }
    }

    /// How many producers and consumers may be attached at once.
    ///
    /// ```
    /// use shmsg::shm::layout::RingKind;
    ///
    /// assert_eq!(RingKind::Spsc.limits(), (1, 1));
    /// assert_eq!(RingKind::Mpmc.limits(), (16, 8));
    /// ```
    pub fn limits(self) -> (usize, usize) {
        match self {
            RingKind::Spsc => (1, 1),
            RingKind::Mpsc => (MAX_PRODUCERS, 1),
            RingKind::Mpmc => (MAX_PRODUCERS, MAX_CONSUMERS),
        }
    }
}

/// Fields written once by the creator. As a value, the words as read (once
/// each) from a region, or as a creator writes them.
///
/// ```
/// use shmsg::shm::layout::{ABI_VERSION, Geometry, Identity, RingKind};
///
/// let words = Identity::for_geometry(RingKind::Spsc, Geometry::default());
/// assert_eq!(words.abi_version, ABI_VERSION);
/// assert_eq!(words.capacity, 1 << 20);
/// assert_eq!(words.creator_pid, u64::from(std::process::id()));
/// ```
#[repr(C, align(128))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`]; zero until the creator has written everything else.
    pub abi_version: u64,
    /// [`RingKind`] as a number.
    pub ring_kind: u64,
    /// Data area size in bytes, a power of two.
    pub capacity: u64,
    /// Largest message in bytes.
    pub max_message: u64,
    /// `size_of::<usize>()` of the creator.
    pub pointer_width: u64,
    /// [`ENDIAN_PROBE`] in the creator's byte order.
    pub endian: u64,
    /// [`CACHE_LINE`] of the creator.
    pub cache_line: u64,
    /// Offset of the data area from the start of the region.
    pub data_offset: u64,
    /// Process id of the creator (informational).
    pub creator_pid: u64,
}

/// Who is attached. Each side writes its own two words, and only when it
/// attaches or detaches.
///
/// ```
/// use std::mem::{offset_of, size_of};
///
/// use shmsg::shm::layout::{Attachments, CACHE_LINE, Header, offsets};
///
/// assert_eq!(size_of::<Attachments>(), CACHE_LINE);
/// assert_eq!(offset_of!(Header, attachments.producer_epoch), offsets::PRODUCER_EPOCH);
/// ```
#[repr(C, align(128))]
pub struct Attachments {
    /// The producer's attachment epoch: 0 never attached, odd attached, even detached.
    pub producer_epoch: u64,
    /// Process id of the attached producer (informational; liveness is decided
    /// by a lock, see [`crate::shm::region`]).
    pub producer_pid: u64,
    /// The consumer's attachment epoch, as `producer_epoch`.
    pub consumer_epoch: u64,
    /// Process id of the attached consumer (informational).
    pub consumer_pid: u64,
}

/// The eventcount words, one per direction. Each is a 64-bit word: bits
/// 31..0 count the announced sleepers, bits 63..32 are the epoch, the 32-bit
/// futex word that sleepers wait on and notifiers bump (see
/// [`crate::shm::wait`]). Neither side writes them while a stream is busy.
///
/// ```
/// use std::mem::offset_of;
///
/// use shmsg::shm::layout::{Header, Waiting, offsets};
///
/// assert_eq!(offset_of!(Header, waiting), 256);
/// assert_eq!(offset_of!(Waiting, space_event), offsets::SPACE_EVENT - offsets::DATA_EVENT);
/// ```
#[repr(C, align(128))]
pub struct Waiting {
    /// The consumer sleeps on it for records; the producer notifies.
    pub data_event: u64,
    /// The producer sleeps on it for space; the consumer notifies.
    pub space_event: u64,
}

/// A position written by one side on every operation, alone on its line.
///
/// ```
/// use std::mem::size_of;
///
/// use shmsg::shm::layout::{CACHE_LINE, Position, offsets};
///
/// // Each position alone on its line.
/// assert_eq!(size_of::<Position>(), CACHE_LINE);
/// assert_eq!(offsets::HEAD - offsets::TAIL, size_of::<Position>());
/// ```
#[repr(C, align(128))]
pub struct Position {
    /// `tail` for the producer, `head` for the consumer.
    pub position: u64,
}

/// What one producer of a multi-producer ring writes: alone on its line,
/// since `claim` and `claim_len` are written on every send.
///
/// ```
/// use std::mem::size_of;
///
/// use shmsg::shm::layout::{CACHE_LINE, MAX_PRODUCERS, ProducerSlot, offsets};
///
/// assert_eq!(size_of::<ProducerSlot>(), CACHE_LINE);
/// assert_eq!(
///     offsets::CONSUMER_SLOTS - offsets::PRODUCER_SLOTS,
///     MAX_PRODUCERS * size_of::<ProducerSlot>()
/// );
/// ```
#[repr(C, align(128))]
pub struct ProducerSlot {
    /// The slot's attachment epoch: 0 never attached, odd attached, even detached.
    pub epoch: u64,
    /// Process id of the producer attached here (informational).
    pub pid: u64,
    /// Position where the producer's latest claim starts (or was attempted).
    pub claim: u64,
    /// Bytes of that claim.
    pub claim_len: u64,
}

/// One consumer of a multi-producer ring: alone on its line, since an
/// [`RingKind::Mpmc`] consumer writes `claim` and `claim_len` on every
/// receive.
///
/// ```
/// use std::mem::size_of;
///
/// use shmsg::shm::layout::{CACHE_LINE, ConsumerSlot, DATA_OFFSET, MAX_CONSUMERS, offsets};
///
/// assert_eq!(size_of::<ConsumerSlot>(), CACHE_LINE);
/// assert_eq!(offsets::CONSUMER_SLOTS + MAX_CONSUMERS * size_of::<ConsumerSlot>(), DATA_OFFSET);
/// ```
#[repr(C, align(128))]
pub struct ConsumerSlot {
    /// As [`ProducerSlot::epoch`].
    pub epoch: u64,
    /// Process id of the consumer attached here (informational).
    pub pid: u64,
    /// `Mpmc`: position of the record this consumer holds (or is trying to
    /// claim), until it has handed it back.
    pub claim: u64,
    /// Bytes of that record.
    pub claim_len: u64,
}

/// The region header.
///
/// ```
/// use std::mem::size_of;
///
/// use shmsg::shm::layout::{DATA_OFFSET, Header};
///
/// assert_eq!(size_of::<Header>(), 3840);
/// assert_eq!(size_of::<Header>(), DATA_OFFSET);
/// ```
#[repr(C)]
pub struct Header {
    /// Written once by the creator.
    pub identity: Identity,
    /// Written on attach and detach.
    pub attachments: Attachments,
    /// Written when a side sleeps or wakes a sleeper.
    pub waiting: Waiting,
    /// Written by the producer.
    pub producer: Position,
    /// Written by the consumer.
    pub consumer: Position,
    /// The read cursor that the consumers of an [`RingKind::Mpmc`] ring share.
    pub readers: Position,
    /// The producers of a multi-producer ring.
    pub producers: [ProducerSlot; MAX_PRODUCERS],
    /// The consumers of a multi-producer ring.
    pub consumers: [ConsumerSlot; MAX_CONSUMERS],
}

/// Offset of the data area: the header, rounded to the padding unit.
///
/// ```
/// use shmsg::shm::layout::{DATA_OFFSET, Geometry};
///
/// let g = Geometry::new(4096, 100)?;
/// assert_eq!(g.region_size(), DATA_OFFSET + 4096);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub const DATA_OFFSET: usize = size_of::<Header>();
const _: () = assert!(DATA_OFFSET.is_multiple_of(CACHE_LINE));

/// Word offsets (in bytes from the region start) of the fields the code touches.
///
/// The diagram at the top of this module, checked:
///
/// ```
/// use shmsg::shm::layout::{DATA_OFFSET, offsets};
///
/// let identity = [
///     offsets::MAGIC,
///     offsets::ABI_VERSION,
///     offsets::RING_KIND,
///     offsets::CAPACITY,
///     offsets::MAX_MESSAGE,
///     offsets::POINTER_WIDTH,
///     offsets::ENDIAN,
///     offsets::CACHE_LINE,
///     offsets::DATA_OFFSET,
///     offsets::CREATOR_PID,
/// ];
/// assert_eq!(identity, [0, 8, 16, 24, 32, 40, 48, 56, 64, 72]);
/// let attachments = [
///     offsets::PRODUCER_EPOCH,
///     offsets::PRODUCER_PID,
///     offsets::CONSUMER_EPOCH,
///     offsets::CONSUMER_PID,
/// ];
/// assert_eq!(attachments, [128, 136, 144, 152]);
/// assert_eq!([offsets::DATA_EVENT, offsets::SPACE_EVENT], [256, 264]);
/// assert_eq!([offsets::TAIL, offsets::HEAD, offsets::READ_CURSOR], [384, 512, 640]);
/// assert_eq!([offsets::PRODUCER_SLOTS, offsets::CONSUMER_SLOTS], [768, 2816]);
/// assert_eq!(DATA_OFFSET, 3840);
/// ```
pub mod offsets {
    use super::*;
    /// [`Identity::magic`].
    pub const MAGIC: usize = offset_of!(Header, identity.magic);
    /// [`Identity::abi_version`].
    pub const ABI_VERSION: usize = offset_of!(Header, identity.abi_version);
    /// [`Identity::ring_kind`].
    pub const RING_KIND: usize = offset_of!(Header, identity.ring_kind);
    /// [`Identity::capacity`].
    pub const CAPACITY: usize = offset_of!(Header, identity.capacity);
    /// [`Identity::max_message`].
    pub const MAX_MESSAGE: usize = offset_of!(Header, identity.max_message);
    /// [`Identity::pointer_width`].
    pub const POINTER_WIDTH: usize = offset_of!(Header, identity.pointer_width);
    /// [`Identity::endian`].
    pub const ENDIAN: usize = offset_of!(Header, identity.endian);
    /// [`Identity::cache_line`].
    pub const CACHE_LINE: usize = offset_of!(Header, identity.cache_line);
    /// [`Identity::data_offset`].
    pub const DATA_OFFSET: usize = offset_of!(Header, identity.data_offset);
    /// [`Identity::creator_pid`].
    pub const CREATOR_PID: usize = offset_of!(Header, identity.creator_pid);
    /// [`Attachments::producer_epoch`].
    pub const PRODUCER_EPOCH: usize = offset_of!(Header, attachments.producer_epoch);
    /// [`Attachments::producer_pid`].
    pub const PRODUCER_PID: usize = offset_of!(Header, attachments.producer_pid);
    /// [`Attachments::consumer_epoch`].
    pub const CONSUMER_EPOCH: usize = offset_of!(Header, attachments.consumer_epoch);
    /// [`Attachments::consumer_pid`].
    pub const CONSUMER_PID: usize = offset_of!(Header, attachments.consumer_pid);
    /// [`Waiting::data_event`].
    pub const DATA_EVENT: usize = offset_of!(Header, waiting.data_event);
    /// [`Waiting::space_event`].
    pub const SPACE_EVENT: usize = offset_of!(Header, waiting.space_event);
    /// The producer's position (the tail).
    pub const TAIL: usize = offset_of!(Header, producer.position);
    /// The consumer's position (the head).
    pub const HEAD: usize = offset_of!(Header, consumer.position);
    /// The consumers' shared read cursor ([`Header::readers`]).
    pub const READ_CURSOR: usize = offset_of!(Header, readers.position);
    /// Start of the producer slots.
    pub const PRODUCER_SLOTS: usize = offset_of!(Header, producers);
    /// Start of the consumer slots.
    pub const CONSUMER_SLOTS: usize = offset_of!(Header, consumers);

    /// The offset of word `word` of slot `index` of `role`.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`MAX_PRODUCERS`] (producers) or
    /// [`MAX_CONSUMERS`] (consumers): the ring code passes constants and
    /// bounded indices, never values read from the region.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsg::Role;
    /// use shmsg::shm::layout::offsets;
    /// use shmsg::sync::SlotWord;
    ///
    /// // Slot 1 of the producers starts one line after slot 0.
    /// let epoch = offsets::slot(Role::Producer, 1, SlotWord::Epoch);
    /// assert_eq!(epoch, offsets::PRODUCER_SLOTS + 128);
    /// assert_eq!(offsets::slot(Role::Producer, 1, SlotWord::Claim), epoch + 16);
    /// assert_eq!(offsets::slot(Role::Consumer, 0, SlotWord::Pid), offsets::CONSUMER_SLOTS + 8);
    /// ```
    pub const fn slot(
        role: crate::error::Role,
        index: usize,
        word: crate::sync::SlotWord,
    ) -> usize {
        use crate::error::Role;
        use crate::sync::SlotWord;
        match role {
            Role::Producer => {
                assert!(index < MAX_PRODUCERS, "producer slot index");
                let field = match word {
                    SlotWord::Epoch => offset_of!(ProducerSlot, epoch),
                    SlotWord::Pid => offset_of!(ProducerSlot, pid),
                    SlotWord::Claim => offset_of!(ProducerSlot, claim),
                    SlotWord::ClaimLen => offset_of!(ProducerSlot, claim_len),
                };
                PRODUCER_SLOTS + index * size_of::<ProducerSlot>() + field
            }
            Role::Consumer => {
                assert!(index < MAX_CONSUMERS, "consumer slot index");
                let field = match word {
                    SlotWord::Epoch => offset_of!(ConsumerSlot, epoch),
                    SlotWord::Pid => offset_of!(ConsumerSlot, pid),
                    SlotWord::Claim => offset_of!(ConsumerSlot, claim),
                    SlotWord::ClaimLen => offset_of!(ConsumerSlot, claim_len),
                };
                CONSUMER_SLOTS + index * size_of::<ConsumerSlot>() + field
            }
        }
    }
}

mod geometry;
mod identity;

pub use geometry::{Geometry, record_size, round8};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn header_layout_is_stable() {
        use crate::error::Role;
        use crate::sync::SlotWord;
        assert_eq!(size_of::<Header>(), 3840);
        assert_eq!(offsets::PRODUCER_EPOCH, 128);
        assert_eq!(offsets::DATA_EVENT, 256);
        assert_eq!(offsets::SPACE_EVENT, 264);
        assert_eq!(offsets::TAIL, 384);
        assert_eq!(offsets::HEAD, 512);
        assert_eq!(offsets::READ_CURSOR, 640);
        assert_eq!(offsets::slot(Role::Producer, 0, SlotWord::Epoch), 768);
        assert_eq!(offsets::slot(Role::Producer, 1, SlotWord::Claim), 912);
        assert_eq!(offsets::slot(Role::Consumer, 0, SlotWord::Epoch), 2816);
        assert_eq!(offsets::slot(Role::Consumer, 7, SlotWord::Pid), 3720);
        assert_eq!(offsets::slot(Role::Consumer, 7, SlotWord::ClaimLen), 3736);
        assert_eq!(DATA_OFFSET, 3840);
        assert_eq!(offsets::ABI_VERSION, 8);
    }

    #[test]
    fn geometry_limits() {
        assert!(Geometry::new(64, 16).is_ok());
        assert!(Geometry::new(64, 17).is_err());
        assert!(Geometry::new(96, 8).is_err());
        assert!(Geometry::new(32, 0).is_err());
        let g = Geometry::for_max_message(1 << 20, 0).unwrap();
        assert_eq!(g.capacity(), 4 << 20);
        assert!(Geometry::for_max_message(usize::MAX, 0).is_err());
    }

    #[test]
    fn validate_round_trip_and_mismatch() {
        let g = Geometry::new(1 << 12, 100).unwrap();
        let w = Identity::for_geometry(RingKind::Spsc, g);
        assert_eq!(
            w.validate(RingKind::Spsc, g.region_size() as u64).unwrap(),
            g
        );
        let mut bad = w;
        bad.pointer_width = 4;
        match bad.validate(RingKind::Spsc, g.region_size() as u64) {
            Err(Error::LayoutMismatch { field, .. }) => assert_eq!(field, "pointer_width"),
            other => panic!("{other:?}"),
        }
        let mut unpublished = w;
        unpublished.abi_version = 0;
        assert!(matches!(
            unpublished.validate(RingKind::Spsc, g.region_size() as u64),
            Err(Error::NotInitialized)
        ));
        assert!(matches!(
            w.validate(RingKind::Spsc, 4096),
            Err(Error::LayoutMismatch {
                field: "region size",
                ..
            })
        ));
    }
}
