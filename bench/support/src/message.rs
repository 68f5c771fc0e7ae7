//! Writing every byte of a message and reading every byte back, so that no
//! measurement skips the work of producing or consuming the data.
//!
//! Two patterns:
//!
//! * [`fill`] / [`check`]: message `seq` is its sequence number
//!   (little-endian, as much of it as fits), then the low byte of `seq`
//!   repeated; the receiver checks every byte;
//! * [`fill_stamped`] / [`check_stamped`]: as [`fill`] / [`check`], with a
//!   timestamp in bytes 8..16 (messages of at least [`STAMPED_MIN`] bytes),
//!   for latencies measured across processes;
//! * [`fill_words`] / [`sum_words`]: word `j` of a message is `seed + j`;
//!   the receiver sums the words and the sender knows the sum to expect
//!   ([`expected_sum`]), so one acknowledgement checks a whole stream.

/// Writes every byte of message `seq`: the sequence number (as much of it as
/// fits), then the low byte of `seq` repeated.
#[inline]
pub fn fill(seq: u64, buf: &mut [u8]) {
    buf.fill(seq as u8);
    let head = buf.len().min(8);
    buf[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
}

/// Reads every byte of `buf` and checks that it is message `seq` of `size`
/// bytes, as [`fill`] writes it.
#[inline]
pub fn check(seq: u64, buf: &[u8], size: usize) -> bool {
    if buf.len() != size {
        return false;
    }
    let head = size.min(8);
    let pattern = seq as u8;
    let diff = buf[head..].iter().fold(0u8, |acc, &b| acc | (b ^ pattern));
    diff == 0 && buf[..head] == seq.to_le_bytes()[..head]
}

/// The smallest message [`fill_stamped`] writes: the sequence number and
/// the stamp.
pub const STAMPED_MIN: usize = 16;

/// Writes every byte of message `seq` as [`fill`] does, then `stamp`
/// (little-endian) over bytes 8..16.
///
/// # Panics
///
/// If `buf` is shorter than [`STAMPED_MIN`].
#[inline]
pub fn fill_stamped(seq: u64, stamp: u64, buf: &mut [u8]) {
    fill(seq, buf);
    buf[8..STAMPED_MIN].copy_from_slice(&stamp.to_le_bytes());
}

/// Reads every byte of `buf`; its stamp if it is message `seq` of `size`
/// bytes as [`fill_stamped`] writes it, else `None`.
#[inline]
pub fn check_stamped(seq: u64, buf: &[u8], size: usize) -> Option<u64> {
    if buf.len() != size || size < STAMPED_MIN {
        return None;
    }
    let pattern = seq as u8;
    let diff = buf[STAMPED_MIN..]
        .iter()
        .fold(0u8, |acc, &b| acc | (b ^ pattern));
    let stamp = u64::from_le_bytes(buf[8..STAMPED_MIN].try_into().expect("8 bytes"));
    (diff == 0 && buf[..8] == seq.to_le_bytes()).then_some(stamp)
}

/// Writes `buf` (its whole 64-bit words): word `j` is `seed + j`.
#[inline]
pub fn fill_words(buf: &mut [u8], seed: u64) {
    for (j, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&seed.wrapping_add(j as u64).to_le_bytes());
    }
}

/// Reads every byte of `buf`: the wrapping sum of its little-endian 64-bit
/// words, and of the bytes after the last whole word.
#[inline]
pub fn sum_words(buf: &[u8]) -> u64 {
    let mut words = buf.chunks_exact(8);
    let sum = words
        .by_ref()
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .fold(0, u64::wrapping_add);
    words
        .remainder()
        .iter()
        .fold(sum, |sum, &b| sum.wrapping_add(u64::from(b)))
}

/// What [`sum_words`] returns for a message of `len` bytes (a multiple of 8)
/// that [`fill_words`] wrote with `seed`.
pub fn expected_sum(len: usize, seed: u64) -> u64 {
    let n = (len / 8) as u64;
    seed.wrapping_mul(n)
        .wrapping_add(n.wrapping_mul(n.wrapping_sub(1)) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_check_every_byte() {
        for size in [1, 7, 8, 9, 100, 4096] {
            let mut buf = vec![0; size];
            fill(300, &mut buf);
            assert!(check(300, &buf, size));
            assert!(!check(301, &buf, size));
            assert!(!check(300, &buf[..size - 1], size));
            for i in 0..size {
                let mut torn = buf.clone();
                torn[i] ^= 0x40;
                assert!(!check(300, &torn, size), "byte {i} of {size}");
            }
        }
        assert!(check(300, &[], 0));
    }

    #[test]
    fn stamped_messages_carry_their_stamp() {
        for size in [16, 17, 100] {
            let mut buf = vec![0; size];
            fill_stamped(300, 0xdead_beef_0123, &mut buf);
            assert_eq!(check_stamped(300, &buf, size), Some(0xdead_beef_0123));
            assert_eq!(check_stamped(301, &buf, size), None);
            for i in (0..8).chain(16..size) {
                let mut torn = buf.clone();
                torn[i] ^= 0x40;
                assert_eq!(check_stamped(300, &torn, size), None, "byte {i} of {size}");
            }
        }
        assert_eq!(check_stamped(0, &[0; 8], 8), None);
    }

    #[test]
    fn word_sums_match_their_expectation() {
        for (len, seed) in [(0, 5), (8, 5), (64, u64::MAX - 3), (1 << 20, 12345)] {
            let mut buf = vec![0u8; len];
            fill_words(&mut buf, seed);
            assert_eq!(sum_words(&buf), expected_sum(len, seed), "len {len}");
        }
        assert_eq!(sum_words(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 3]), 6);
    }
}
