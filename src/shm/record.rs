//! What the records of both rings share: the tag and commit bit of a
//! header word, and the data word at a position.
//!
//! Every record, in every ring, starts with an 8-byte header word at a
//! position that is a multiple of 8:
//!
//! ```text
//! bit 63..32  tag = (position >> 3) as u32
//! bit 31      1: committed (a committed header is never zero)
//! bit 30..0   the ring's own: a length and its flags
//!             (crate::shm::spsc, crate::shm::mpmc)
//! ```
//!
//! The tag ties a header to its position: a stale header from an earlier
//! lap, or bytes of a payload that a reader mistakes for a header, carry
//! another tag (the capacity is at most [`crate::shm::layout::MAX_CAPACITY`],
//! so headers one lap apart differ), and the reader reports
//! [`Error::Corrupt`] instead of following them.

use crate::error::{Error, Result};
use crate::sync::Backend;

/// Bit 31 of a header word: the record is committed.
pub(crate) const COMMITTED: u64 = 1 << 31;

/// The tag and commit bit of a header word at `position`; a ring adds its
/// own low bits.
#[inline(always)]
pub(crate) const fn committed_at(position: u64) -> u64 {
    ((position >> 3) << 32) | COMMITTED
}

/// Whether the header word `word` carries the tag of `position`, committed
/// or not.
#[inline(always)]
pub(crate) const fn tagged(word: u64, position: u64) -> bool {
    word >> 32 == (position >> 3) & 0xFFFF_FFFF
}

/// Checks that the non-zero header word `word`, read at `position`, is
/// committed and carries that position's tag.
#[inline(always)]
pub(crate) fn check_tag(word: u64, position: u64) -> Result<()> {
    if !tagged(word, position) || word & COMMITTED == 0 {
        return Err(Error::corrupt("record header tag", word));
    }
    Ok(())
}

/// The data word at `position` of a ring whose capacity is `mask + 1`.
#[inline(always)]
pub(crate) fn word_at<B: Backend>(backend: &B, mask: u64, position: u64) -> &B::Word {
    backend.data_word(((position & mask) / 8) as usize)
}
