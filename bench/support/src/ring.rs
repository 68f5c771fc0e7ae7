//! The reference ring: the simplest correct single-producer,
//! single-consumer ring, as a yardstick for shmsg's own rings.
//!
//! `shmsg compare` runs it between the same two pinned processes as the
//! real rings, at every message size, so that each ring figure can be read
//! as a ratio to what a ring can do on this machine. It has none of what
//! makes shmsg's rings usable between untrusting processes: no variable-size
//! records (every slot holds the largest message), no header to validate,
//! no attach or takeover, no deadline, no futex: a side that waits spins
//! (with `spin_loop`, and `yield_now` after [`SPINS_BEFORE_YIELD`] polls, so
//! that a run whose two sides share one CPU still moves; it never sleeps).
//! A message is copied in once by the sender and out once by the receiver.
//!
//! # Layout
//!
//! In the memory the caller gives it (zeroed before first use, 128-byte
//! aligned; typically a shared mapping, a memfd both processes map):
//!
//! ```text
//! offset 0      head: u64, messages the receiver has released (its own 128-byte line)
//! offset 128    slot 0: word: u64, then up to max_message payload bytes
//! 128 + stride  slot 1 ...            (stride: 8 + max_message, rounded up to 64)
//! ```
//!
//! Message `seq` goes into slot `seq % slots`. Its word is written last
//! (release): the low 32 bits are the length, the high 32 bits `seq + 1`
//! modulo 2^32, so a zeroed slot is empty and a slot still holding message
//! `seq - slots` is not mistaken for message `seq`. The sender writes slot
//! `seq % slots` only once `head > seq - slots` (the receiver released the
//! message that was there: acquire); the receiver reads a slot only once
//! its word names the message it expects (acquire), and publishes `head`
//! after copying out (release). So no slot is ever read and written at
//! once. The receiver checks the length it reads against the maximum
//! before copying: a word overwritten by a third party gives
//! [`Corrupt`], never an access out of bounds.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};

/// Failed polls after which a waiting side yields its CPU once (it never
/// sleeps): only a side whose peer is not running waits this long.
pub const SPINS_BEFORE_YIELD: u32 = 1 << 16;

/// Alignment the ring's memory must have (two 64-byte lines: adjacent-line
/// prefetchers pair them).
pub const ALIGN: usize = 128;

/// Offset of slot 0 from the ring's base: `head` has the first line alone.
const SLOTS_AT: usize = ALIGN;

/// A received word's length was larger than the ring's maximum message:
/// something other than the sender wrote the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt {
    /// The length the word gave.
    pub len: u64,
}

/// The shape of a ring: slot count and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// Number of slots (at least 2).
    pub slots: usize,
    /// Bytes from one slot to the next: the word and the payload, rounded
    /// up to 64.
    pub stride: usize,
    /// The largest message a slot holds.
    pub max_message: usize,
}

impl RingLayout {
    /// A ring for messages of up to `max_message` bytes in about
    /// `capacity` bytes of slots: as many slots as fit, at least 2, at most
    /// 65536.
    pub fn new(max_message: usize, capacity: usize) -> RingLayout {
        let stride = (8 + max_message).div_ceil(64) * 64;
        RingLayout {
            slots: (capacity / stride).clamp(2, 1 << 16),
            stride,
            max_message,
        }
    }

    /// Bytes of memory the ring needs, a multiple of 4096 (so that rings
    /// laid one after another each start on a page).
    pub fn bytes(&self) -> usize {
        (SLOTS_AT + self.slots * self.stride).div_ceil(4096) * 4096
    }
}

/// Where a ring lies: its base and shape. Both handles use one.
#[derive(Clone, Copy, Debug)]
struct Raw {
    base: *mut u8,
    layout: RingLayout,
}

impl Raw {
    fn head(&self) -> &AtomicU64 {
        // SAFETY: the constructors' contract: `base` is 128-byte aligned and
        // valid for the ring's bytes while a handle lives, and its first
        // word is only accessed atomically (through this function).
        unsafe { AtomicU64::from_ptr(self.base.cast::<u64>()) }
    }

    /// Slot `index`'s word and payload pointer (`index < slots`).
    fn slot(&self, index: usize) -> (&AtomicU64, *mut u8) {
        debug_assert!(index < self.layout.slots);
        // SAFETY: `SLOTS_AT + index * stride + 8 + max_message` is within
        // `layout.bytes()` for `index < slots`, so both pointers stay inside
        // the ring's memory; the offset is a multiple of 64, so the word is
        // aligned, and it is only accessed atomically.
        unsafe {
            let at = self.base.add(SLOTS_AT + index * self.layout.stride);
            (AtomicU64::from_ptr(at.cast::<u64>()), at.add(8))
        }
    }
}

/// Waits, spinning, until `ready` holds.
#[inline]
fn spin_until(mut ready: impl FnMut() -> bool) {
    let mut polls = 0u32;
    while !ready() {
        spin_loop();
        polls += 1;
        if polls == SPINS_BEFORE_YIELD {
            polls = 0;
            std::thread::yield_now();
        }
    }
}

/// The word of message `seq` of `len` bytes.
fn word(seq: u64, len: usize) -> u64 {
    (u64::from((seq.wrapping_add(1)) as u32) << 32) | len as u64
}

/// The sending side of a reference ring.
#[derive(Debug)]
pub struct RingSender {
    raw: Raw,
    /// The next message's sequence number.
    next: u64,
    /// The receiver's `head` as last read: messages released.
    released: u64,
}

/// The receiving side of a reference ring.
#[derive(Debug)]
pub struct RingReceiver {
    raw: Raw,
    /// The next message's sequence number.
    next: u64,
}

// SAFETY: a handle is the only user of its side of the ring (the
// constructors' contract), and the memory it points to stays valid while it
// lives wherever it is moved; every access to shared words is atomic.
unsafe impl Send for RingSender {}
// SAFETY: as for `RingSender`.
unsafe impl Send for RingReceiver {}

impl RingSender {
    /// The sender of the ring at `base`.
    ///
    /// # Safety
    ///
    /// `base` is aligned to [`ALIGN`] and valid for reads and writes of
    /// `layout.bytes()` bytes for as long as the returned handle lives; the
    /// memory was zeroed before the first handle of the ring was made (or
    /// has been used only by handles of this `layout`, starting from zero);
    /// no other sender of the ring exists at the same time, and nothing but
    /// this ring's handles accesses the memory.
    pub unsafe fn new(base: *mut u8, layout: RingLayout) -> RingSender {
        debug_assert!((base as usize).is_multiple_of(ALIGN));
        RingSender {
            raw: Raw { base, layout },
            next: 0,
            released: 0,
        }
    }

    /// The largest message this ring takes.
    pub fn max_message(&self) -> usize {
        self.raw.layout.max_message
    }

    /// Copies `message` into the next slot, spinning while the ring is full.
    ///
    /// # Panics
    ///
    /// If `message` is longer than [`RingSender::max_message`] (the
    /// caller's mistake, not the peer's).
    pub fn send(&mut self, message: &[u8]) {
        let layout = self.raw.layout;
        assert!(
            message.len() <= layout.max_message,
            "a {}-byte message in a ring of {}-byte slots",
            message.len(),
            layout.max_message
        );
        let seq = self.next;
        let slots = layout.slots as u64;
        if seq.wrapping_sub(self.released) >= slots {
            let head = self.raw.head();
            spin_until(|| {
                // Acquire: the receiver's copy out of the slot happened
                // before we overwrite it.
                self.released = head.load(Ordering::Acquire);
                seq.wrapping_sub(self.released) < slots
            });
        }
        let (word_of, payload) = self.raw.slot((seq % slots) as usize);
        // SAFETY: `payload` is valid for `max_message >= message.len()`
        // bytes (`Raw::slot`); the receiver released this slot's previous
        // message (the wait above) and reads it again only after the word
        // below names `seq`, so nobody else accesses these bytes now;
        // `message` is private memory, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), payload, message.len()) };
        // Release: the payload is written before the word says so.
        word_of.store(word(seq, message.len()), Ordering::Release);
        self.next = seq.wrapping_add(1);
    }
}

impl RingReceiver {
    /// The receiver of the ring at `base`.
    ///
    /// # Safety
    ///
    /// As for [`RingSender::new`], with "receiver" for "sender".
    pub unsafe fn new(base: *mut u8, layout: RingLayout) -> RingReceiver {
        debug_assert!((base as usize).is_multiple_of(ALIGN));
        RingReceiver {
            raw: Raw { base, layout },
            next: 0,
        }
    }

    /// The largest message this ring takes.
    pub fn max_message(&self) -> usize {
        self.raw.layout.max_message
    }

    /// Copies the next message into the front of `buf`, spinning while the
    /// ring is empty, and returns its length. [`Corrupt`] (and nothing
    /// received) if its length is over the maximum or over `buf`'s length.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Corrupt> {
        let seq = self.next;
        let (word_of, payload) = self.raw.slot((seq % self.raw.layout.slots as u64) as usize);
        let expect = (seq.wrapping_add(1)) as u32;
        let mut w = 0;
        spin_until(|| {
            // Acquire: the sender's payload is visible once its word is.
            w = word_of.load(Ordering::Acquire);
            (w >> 32) as u32 == expect
        });
        let len = w & 0xffff_ffff;
        if len > self.raw.layout.max_message as u64 || len > buf.len() as u64 {
            return Err(Corrupt { len });
        }
        let len = len as usize;
        // SAFETY: `len` is at most the slot's payload size and `buf`'s
        // length (checked above); the sender wrote this slot before its
        // word (acquired above) and writes it again only after `head` below
        // moves past it, so nobody else accesses these bytes now; `buf` is
        // private memory.
        unsafe { std::ptr::copy_nonoverlapping(payload, buf.as_mut_ptr(), len) };
        self.next = seq.wrapping_add(1);
        // Release: our copy out is done before the sender may overwrite.
        self.raw.head().store(self.next, Ordering::Release);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{check, fill};

    /// Zeroed memory of `bytes` bytes, aligned to [`ALIGN`].
    #[derive(Clone, Copy)]
    #[repr(align(128))]
    struct Line(#[allow(dead_code)] [u8; ALIGN]);

    fn memory(bytes: usize) -> Vec<Line> {
        vec![Line([0; ALIGN]); bytes.div_ceil(ALIGN)]
    }

    #[test]
    fn layouts_hold_their_messages() {
        let l = RingLayout::new(8, 1 << 20);
        assert_eq!((l.stride, l.slots), (64, 16384));
        let l = RingLayout::new(1 << 20, 4 << 20);
        assert_eq!((l.stride, l.slots), ((1 << 20) + 64, 3));
        let l = RingLayout::new(100, 10);
        assert_eq!(l.slots, 2);
        assert!(l.bytes() >= SLOTS_AT + 2 * l.stride && l.bytes().is_multiple_of(4096));
    }

    /// Messages of every length up to the maximum, many laps around a small
    /// ring, arrive between two threads in order and intact.
    fn stream(max_message: usize, capacity: usize, count: u64) {
        let layout = RingLayout::new(max_message, capacity);
        let mut mem = memory(layout.bytes());
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: `mem` is aligned, zeroed, `layout.bytes()` long, and
        // outlives both handles (the scope joins the threads); one sender,
        // one receiver.
        let (mut tx, mut rx) = unsafe {
            (
                RingSender::new(base, layout),
                RingReceiver::new(base, layout),
            )
        };
        let len_of = |seq: u64| (seq as usize * 7919) % (max_message + 1);
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut message = vec![0u8; max_message];
                for seq in 0..count {
                    let len = len_of(seq);
                    fill(seq, &mut message[..len]);
                    tx.send(&message[..len]);
                }
            });
            let mut buf = vec![0u8; max_message];
            for seq in 0..count {
                let len = rx.recv(&mut buf).expect("a well-formed word");
                assert_eq!(len, len_of(seq), "message {seq}");
                assert!(check(seq, &buf[..len], len_of(seq)), "message {seq}");
            }
        });
    }

    #[test]
    fn messages_arrive_in_order_and_intact_between_threads() {
        stream(8, 1 << 10, 100_000);
        stream(200, 0, 20_000); // two slots: every message waits for a release
        stream(5000, 1 << 16, 2_000);
    }

    #[test]
    fn a_length_over_the_maximum_is_refused() {
        let layout = RingLayout::new(16, 0);
        let mut mem = memory(layout.bytes());
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: as in `stream`; this thread plays both sides in turn.
        let (mut tx, mut rx) = unsafe {
            (
                RingSender::new(base, layout),
                RingReceiver::new(base, layout),
            )
        };
        tx.send(b"fine");
        let mut buf = [0u8; 16];
        assert_eq!(rx.recv(&mut buf), Ok(4));
        assert_eq!(&buf[..4], b"fine");
        // A third party writes message 1's word with a length of 1000.
        let raw = Raw { base, layout };
        let (w, _) = raw.slot(1);
        w.store(word(1, 1000), Ordering::Release);
        assert_eq!(rx.recv(&mut buf), Err(Corrupt { len: 1000 }));
        // A buffer shorter than the message is refused the same way.
        tx.send(b"0123456789");
        let mut small = [0u8; 4];
        assert_eq!(rx.recv(&mut small), Err(Corrupt { len: 10 }));
        assert_eq!(rx.recv(&mut buf), Ok(10));
    }
}
