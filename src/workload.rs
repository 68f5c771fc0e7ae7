//! Deterministic message streams, for tests, demos and benchmarks that run
//! the two ends in different processes.
//!
//! Both ends derive message `seq` from the same seed, so the receiver can
//! check every message without any state shared with the sender but the
//! seed: its length, its sequence number and checksum (when it is long
//! enough to carry them), and every byte.
//!
//! A message of `len >= 16` bytes starts with its sequence number and a
//! checksum (FNV-1a of the rest), both little-endian `u64`; the rest, and
//! all of a shorter message, is a pattern derived from `(seed, seq)`.

/// SplitMix64: a fast, well-mixed 64-bit hash of `x`.
///
/// ```
/// use shmsg::workload::splitmix64;
///
/// assert_eq!(splitmix64(1), splitmix64(1));
/// assert_ne!(splitmix64(1), splitmix64(2));
/// ```
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over `bytes`.
///
/// ```
/// use shmsg::workload::fnv1a;
///
/// assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
/// ```
#[inline]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stream of messages of pseudo-random lengths from 0 to `max_len` bytes.
///
/// The sender and the receiver agree on nothing but the workload:
///
/// ```
/// use shmsg::shm::{Geometry, spsc};
/// use shmsg::workload::Workload;
///
/// let workload = Workload { seed: 42, max_len: 1000 };
/// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
/// for seq in 0..100 {
///     tx.send(&workload.message(seq))?;
/// }
/// let mut buf = Vec::new();
/// for seq in 0..100 {
///     rx.recv(&mut buf)?;
///     workload.verify(seq, &buf).expect("message as sent");
/// }
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Seeds every length and byte.
    pub seed: u64,
    /// Longest message.
    pub max_len: usize,
}

/// Why a received message is not the one expected.
///
/// ```
/// use shmsg::workload::{Mismatch, Workload};
///
/// let workload = Workload { seed: 1, max_len: 100 };
/// let seq = (0..).find(|&s| workload.len(s) >= 32).unwrap();
/// let mut message = workload.message(seq);
/// assert!(matches!(workload.verify(seq + 1, &message), Err(_)));
/// message[20] ^= 1;
/// assert_eq!(workload.verify(seq, &message), Err(Mismatch::Content { offset: 16 }));
/// message.pop();
/// assert!(matches!(workload.verify(seq, &message), Err(Mismatch::Length { .. })));
/// println!("{}", Mismatch::Sequence { expected: 1, found: 2 });
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Wrong length.
    Length {
        /// Expected length.
        expected: usize,
        /// Received length.
        found: usize,
    },
    /// The embedded sequence number differs (a lost, duplicated or reordered message).
    Sequence {
        /// Expected sequence number.
        expected: u64,
        /// Received sequence number.
        found: u64,
    },
    /// The checksum or a pattern byte differs (a torn or corrupted message).
    Content {
        /// Offset of the first wrong byte.
        offset: usize,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Length { expected, found } => {
                write!(f, "length {found}, expected {expected}")
            }
            Mismatch::Sequence { expected, found } => {
                write!(f, "sequence number {found}, expected {expected}")
            }
            Mismatch::Content { offset } => write!(f, "wrong content from byte {offset}"),
        }
    }
}

impl Workload {
    /// Length of message `seq`.
    ///
    /// ```
    /// use shmsg::workload::Workload;
    ///
    /// let workload = Workload { seed: 3, max_len: 50 };
    /// assert!((0..1000).all(|seq| workload.len(seq) <= 50));
    /// assert_eq!(workload.len(7), workload.message(7).len());
    /// ```
    #[inline]
    pub fn len(&self, seq: u64) -> usize {
        (splitmix64(self.seed ^ seq.wrapping_mul(0x2545_f491_4f6c_dd1d))
            % (self.max_len as u64 + 1)) as usize
    }

    #[inline]
    fn pattern(&self, seq: u64, i: usize) -> u8 {
        let word = splitmix64(self.seed.wrapping_add(seq));
        (word >> ((i % 8) * 8)) as u8 ^ (i / 8) as u8
    }

    /// Writes message `seq` into `buf`, which must be `self.len(seq)` bytes.
    ///
    /// ```
    /// use shmsg::workload::Workload;
    ///
    /// let workload = Workload { seed: 3, max_len: 50 };
    /// // Written in place, as into a ring slot.
    /// let mut slot = vec![0; workload.len(9)];
    /// workload.fill(9, &mut slot);
    /// assert_eq!(slot, workload.message(9));
    /// ```
    pub fn fill(&self, seq: u64, buf: &mut [u8]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = self.pattern(seq, i);
        }
        if buf.len() >= 16 {
            buf[..8].copy_from_slice(&seq.to_le_bytes());
            let sum = fnv1a(&buf[16..]);
            buf[8..16].copy_from_slice(&sum.to_le_bytes());
        }
    }

    /// Message `seq` as a new vector.
    ///
    /// ```
    /// use shmsg::workload::Workload;
    ///
    /// let workload = Workload { seed: 3, max_len: 50 };
    /// assert_eq!(workload.message(5), workload.message(5));
    /// assert_eq!(workload.verify(5, &workload.message(5)), Ok(()));
    /// ```
    pub fn message(&self, seq: u64) -> Vec<u8> {
        let mut buf = vec![0; self.len(seq)];
        self.fill(seq, &mut buf);
        buf
    }

    /// Checks that `message` is message `seq`.
    ///
    /// ```
    /// use shmsg::workload::{Mismatch, Workload};
    ///
    /// let workload = Workload { seed: 3, max_len: 50 };
    /// let message = workload.message(0);
    /// assert_eq!(workload.verify(0, &message), Ok(()));
    /// let found = message.len() + 1;
    /// assert_eq!(
    ///     workload.verify(0, &vec![0; found]),
    ///     Err(Mismatch::Length { expected: message.len(), found })
    /// );
    /// ```
    pub fn verify(&self, seq: u64, message: &[u8]) -> Result<(), Mismatch> {
        let expected = self.len(seq);
        if message.len() != expected {
            return Err(Mismatch::Length {
                expected,
                found: message.len(),
            });
        }
        let body = if message.len() >= 16 {
            let found = u64::from_le_bytes(message[..8].try_into().expect("8 bytes"));
            if found != seq {
                return Err(Mismatch::Sequence {
                    expected: seq,
                    found,
                });
            }
            let sum = u64::from_le_bytes(message[8..16].try_into().expect("8 bytes"));
            if sum != fnv1a(&message[16..]) {
                return Err(Mismatch::Content { offset: 16 });
            }
            16
        } else {
            0
        };
        match (body..message.len()).find(|&i| message[i] != self.pattern(seq, i)) {
            Some(offset) => Err(Mismatch::Content { offset }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_verify_and_differ() {
        let w = Workload {
            seed: 7,
            max_len: 300,
        };
        for seq in 0..200 {
            let m = w.message(seq);
            assert_eq!(w.verify(seq, &m), Ok(()));
            if m.len() >= 16 {
                assert!(w.verify(seq + 1, &m).is_err());
                let mut torn = m.clone();
                torn[m.len() - 1] ^= 1;
                assert_eq!(w.verify(seq, &torn), Err(Mismatch::Content { offset: 16 }));
            }
        }
        let lens: std::collections::HashSet<usize> = (0..1000).map(|s| w.len(s)).collect();
        assert!(lens.contains(&0) && lens.len() > 200);
    }
}
