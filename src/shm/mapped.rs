//! The production backend: a ring laid over raw memory with the header layout
//! of [`crate::shm::layout`], either a shared mapping or a heap allocation.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::error::{Result, Role};
use crate::shm::layout::{self, DATA_OFFSET, Geometry, Identity, RingKind, offsets};
use crate::shm::signal::Signals;
use crate::sync::{Backend, Control, Event, futex};

/// What keeps a [`Mapped`] ring's memory alive, and knows whether the process
/// attached as a role is alive.
pub(crate) trait Owner: Send + Sync + 'static {
    /// Whether the process attached as `role` is alive.
    fn peer_alive(&self, role: Role) -> bool;

    /// Whether the process attached in slot `index` of `role` of a
    /// multi-producer ring is alive; by default, [`Owner::peer_alive`].
    fn slot_alive(&self, role: Role, index: usize) -> bool {
        let _ = index;
        self.peer_alive(role)
    }
}

/// Messages of up to this many bytes are copied into the ring by
/// [`copy_words`], one aligned 8-byte store at a time, rather than by
/// `memcpy`.
///
/// Measured on the development machine (two threads streaming one message
/// size through one ring, alternating builds): word stores raised the
/// copying stream 1.22x at 8 and 64 bytes, 1.28x at 256, 1.24x at 512 and
/// 1.08x at 1 KiB; at 4 KiB `memcpy` was 3% faster, so larger messages
/// keep it.
const WORD_COPY_MAX: usize = 1024;

/// Copies `src` to `dst` as whole 8-byte words, the last one zero-filled
/// past `src`'s end (the record's padding).
///
/// Why not `memcpy`: in a busy stream the consumer polls the header of the
/// next record, in the cache line the producer is writing, so a store of
/// the producer's to that line waits for the line to come back. An
/// aligned word never straddles two lines; glibc's `memcpy` copies small
/// sizes with wide unaligned (and overlapping) vector stores that do. That
/// is the likely reason, and what was measured fits it: at 64 bytes the
/// stream ran at 14.2 to 14.7 M msg/s with glibc's AVX-512 `memcpy`
/// (64-byte vector stores) and 17.6 to 18.3 M with its AVX2 one (32-byte
/// stores, chosen with `GLIBC_TUNABLES`, same session); word stores,
/// measured minutes later against the same `memcpy` build (14.6 to
/// 15.1 M), ran at 17.9 to 19.0 M. The stores are `Relaxed` atomics, so
/// the compiler keeps them as single word stores (it turns a plain copying
/// loop back into a `memcpy` call); on x86-64 and AArch64 each is an
/// ordinary store. What orders them before the consumer's reads is the
/// header's `Release` store, as for `memcpy`.
///
/// # Safety
///
/// `dst` is aligned to 8 and valid for writes of `round8(src.len())`
/// bytes, and the protocol gives the caller exclusive access to them.
#[inline(always)]
unsafe fn copy_words(dst: *mut u8, src: &[u8]) {
    let (words, rest) = src.as_chunks::<8>();
    let mut at = dst.cast::<u64>();
    for word in words {
        // SAFETY: `at` is 8-aligned (`dst` is, and it moves by whole
        // words) and stays within the `round8(src.len())` bytes the caller
        // gave: one word per whole word of `src`.
        unsafe { AtomicU64::from_ptr(at) }.store(u64::from_ne_bytes(*word), Relaxed);
        // SAFETY: at most one past the last whole word, still within (or
        // one past the end of) the caller's range.
        at = unsafe { at.add(1) };
    }
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        // SAFETY: the word holding the rest of `src` and its padding is
        // the last of the `round8(src.len())` bytes; `at` is aligned.
        unsafe { AtomicU64::from_ptr(at) }.store(u64::from_ne_bytes(last), Relaxed);
    }
}

/// A ring over raw memory that other threads or processes share.
///
/// Header words are accessed as [`AtomicU64`] through
/// [`AtomicU64::from_ptr`]; payload bytes are copied through raw pointers.
/// No Rust reference to a byte slice of the shared memory is ever created,
/// except the ones lent to the closures of the in-place operations (see
/// [`Backend::write_in_place`] for the safety argument).
///
/// Rings take it as their [`Backend`]; the seam's words can be read through
/// it too:
///
/// ```
/// use std::sync::atomic::Ordering::Acquire;
/// use shmsg::shm::{Geometry, Mapped, spsc};
/// use shmsg::sync::{Backend, Control, Word};
///
/// let memory = Mapped::heap(Geometry::default(), 0)?;
/// let mut tx = spsc::Producer::with_backend(memory.clone())?;
/// tx.send(b"hello")?;
/// // One record: an 8-byte header and 5 bytes padded to 8.
/// assert_eq!(memory.control(Control::Tail).load(Acquire), 16);
/// assert_eq!(memory.capacity(), Geometry::default().capacity());
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone)]
pub struct Mapped {
    owner: Arc<dyn Owner>,
    base: NonNull<u8>,
    geometry: Geometry,
    /// The ring's eventfds, if it has them (see [`crate::shm::signal`]).
    signals: Option<Arc<Signals>>,
}

// SAFETY: `Mapped` only holds a pointer into memory kept alive by `owner`
// (itself `Send + Sync`), and every access through it is either atomic or
// ordered by the ring protocol.
unsafe impl Send for Mapped {}
// SAFETY: as for `Send`; `&Mapped` exposes only atomic words and protocol-guarded copies.
unsafe impl Sync for Mapped {}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("base", &self.base)
            .field("geometry", &self.geometry)
            .finish()
    }
}

/// A heap allocation standing in for a region, for rings between threads.
struct Heap {
    words: Box<[AtomicU64]>,
}

impl Owner for Heap {
    fn peer_alive(&self, _role: Role) -> bool {
        // Threads of one process: a peer that is gone has detached in `Drop`.
        true
    }
}

impl Mapped {
    /// Wraps memory laid out as [`crate::shm::layout::Header`] followed by the
    /// data area of `geometry`, whose header has been validated.
    ///
    /// # Safety
    ///
    /// `base` is aligned to 128 bytes and valid for reads and writes of
    /// `geometry.region_size()` bytes for as long as `owner` lives; every
    /// other user of the memory accesses header words only atomically.
    pub(crate) unsafe fn new(
        owner: Arc<dyn Owner>,
        base: NonNull<u8>,
        geometry: Geometry,
        signals: Option<Arc<Signals>>,
    ) -> Mapped {
        Mapped {
            owner,
            base,
            geometry,
            signals,
        }
    }

    /// A ring in this process's heap, with the same layout as a region, for
    /// threads, with two eventfds for event loops (none if the process is
    /// out of descriptors: then only blocked threads can wait on it).
    /// `initial_position` (a multiple of 8) is where the head and tail
    /// start: tests start near `u64::MAX` to cover counter wrap-around.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, Mapped, spsc};
    ///
    /// // Positions start 64 bytes short of wrapping around `u64::MAX`.
    /// let memory = Mapped::heap(Geometry::new(1024, 64)?, 0u64.wrapping_sub(64))?;
    /// let mut tx = spsc::Producer::with_backend(memory.clone())?;
    /// let mut rx = spsc::Consumer::with_backend(memory)?;
    /// let mut buf = Vec::new();
    /// for i in 0..100u8 {
    ///     tx.send(&[i; 9])?;
    ///     rx.recv(&mut buf)?;
    ///     assert_eq!(buf, [i; 9]);
    /// }
    /// // Positions are multiples of 8.
    /// assert!(Mapped::heap(Geometry::default(), 4).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn heap(geometry: Geometry, initial_position: u64) -> Result<Mapped> {
        if !initial_position.is_multiple_of(8) {
            return Err(crate::Error::InvalidConfig(format!(
                "initial position {initial_position} is not a multiple of 8"
            )));
        }
        // 15 spare words let the header start on a 128-byte boundary.
        let len = geometry.region_size() / 8 + 15;
        let words: Box<[AtomicU64]> = (0..len).map(|_| AtomicU64::new(0)).collect();
        let raw = words.as_ptr() as *mut u8;
        let base = raw.wrapping_add(raw.align_offset(layout::CACHE_LINE));
        let heap = Arc::new(Heap { words });
        debug_assert!(
            base as usize + geometry.region_size() <= heap.words.as_ptr() as usize + len * 8
        );
        let base = NonNull::new(base).expect("heap pointer is not null");
        // Two descriptors per ring, for event loops (see
        // `crate::shm::signal`). A process out of descriptors still gets
        // its ring, which only blocked threads can then wait on.
        let signals = Signals::new().ok().map(Arc::new);
        // SAFETY: `base` is 128-aligned inside the allocation, which holds
        // `region_size()` bytes past it and lives as long as `heap`.
        let mapped = unsafe { Mapped::new(heap, base, geometry, signals) };
        mapped.publish_header(geometry, initial_position);
        Ok(mapped)
    }

    /// Writes a fresh header (see [`Identity::publish`]).
    fn publish_header(&self, geometry: Geometry, initial_position: u64) {
        Identity::publish(
            RingKind::Spsc,
            geometry,
            initial_position,
            |offset, value, order| self.header_word(offset).store(value, order),
        );
    }

    /// The header word at byte `offset` (one of [`layout::offsets`]).
    pub(crate) fn header_word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset < DATA_OFFSET,
            "not a header word offset"
        );
        // SAFETY: `offset` is 8-aligned and inside the header, which `base`
        // keeps valid while `self` lives; all accesses to header words are atomic.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    #[inline(always)]
    fn data(&self) -> *mut u8 {
        // SAFETY: the data area starts `DATA_OFFSET` bytes into the region.
        unsafe { self.base.as_ptr().add(DATA_OFFSET) }
    }
}

// SAFETY: `new`'s contract gives `region_size()` valid bytes: the header,
// whose control words are at fixed offsets, then `capacity` data bytes,
// which `data_word` and the payload methods index below `capacity`.
unsafe impl Backend for Mapped {
    type Word = AtomicU64;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.geometry.capacity()
    }

    #[inline(always)]
    fn max_message(&self) -> usize {
        self.geometry.max_message()
    }

    #[inline(always)]
    fn control(&self, which: Control) -> &AtomicU64 {
        let offset = match which {
            Control::Tail => offsets::TAIL,
            Control::Head => offsets::HEAD,
            Control::ProducerEpoch => offsets::PRODUCER_EPOCH,
            Control::ConsumerEpoch => offsets::CONSUMER_EPOCH,
            Control::ReadCursor => offsets::READ_CURSOR,
            // Panics on an index out of the layout: ring code passes bounded
            // indices, never values read from the region.
            Control::Slot { role, index, word } => offsets::slot(role, index, word),
        };
        // SAFETY: a fixed, 8-aligned header offset; header words are only
        // accessed atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    #[inline(always)]
    fn data_word(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < self.geometry.capacity() / 8);
        // SAFETY: the ring passes `index < capacity / 8` (its offsets are
        // masked by `capacity - 1`); the data area is 128-aligned. Non-atomic
        // payload copies of the same word are ordered against atomic accesses
        // by the protocol's acquire/release pairs.
        unsafe { AtomicU64::from_ptr(self.data().add(index * 8).cast()) }
    }

    #[inline(always)]
    unsafe fn write(&self, offset: usize, src: &[u8]) {
        // SAFETY: the caller owns `offset .. round8(offset + len)` inside the
        // data area (trait contract), so the copy and the padding stay in
        // bounds. `copy_words` also needs `dst` aligned to 8: `offset` is a
        // multiple of 8 (trait contract), the base is aligned to the cache
        // line (`Mapped::new`'s contract) and so is `DATA_OFFSET`.
        unsafe {
            let dst = self.data().add(offset);
            if src.len() <= WORD_COPY_MAX {
                copy_words(dst, src);
                return;
            }
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
            let pad = layout::round8(src.len()) - src.len();
            std::ptr::write_bytes(dst.add(src.len()), 0, pad);
        }
    }

    #[inline(always)]
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: the caller holds `offset .. offset + len` of the data area
        // and `dst` is valid for `len` bytes. A misbehaving peer process could
        // write the same bytes meanwhile; the copy then yields garbage bytes
        // (any bit pattern is a valid `u8`) but touches nothing out of bounds.
        unsafe { std::ptr::copy_nonoverlapping(self.data().add(offset), dst, len) }
    }

    #[inline(always)]
    unsafe fn write_in_place<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        // SAFETY: the protocol gives the producer exclusive use of this range
        // until it commits the record, and the consumer does not read it
        // before then; the slice lives only for the closure call, which ends
        // before the commit. A peer process that ignores the protocol can
        // still write these bytes; the slice is of `u8`, for which every bit
        // pattern is valid, so the worst outcome is a garbled message.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.data().add(offset), len) };
        f(buf)
    }

    #[inline(always)]
    unsafe fn read_in_place<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: the record is committed and not yet released, so the
        // producer does not write these bytes until the consumer stores a head
        // past them, after the closure returns. The argument about peers that
        // ignore the protocol is the one in `write_in_place`.
        let buf = unsafe { std::slice::from_raw_parts(self.data().add(offset), len) };
        f(buf)
    }

    #[inline(always)]
    fn spin(&self) {
        std::hint::spin_loop()
    }

    #[inline(always)]
    fn spin_limit(&self) -> u32 {
        crate::shm::wait::MAX_SPIN
    }

    #[inline(always)]
    fn fence(&self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst)
    }

    #[inline(always)]
    fn event(&self, which: Event) -> &AtomicU64 {
        let offset = match which {
            Event::Data => offsets::DATA_EVENT,
            Event::Space => offsets::SPACE_EVENT,
        };
        // SAFETY: a fixed, 8-aligned header offset; header words are only
        // accessed atomically (the futex half only by the kernel).
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    fn futex_wait(&self, which: Event, expected: u32, timeout: Duration) {
        futex::wait(self.event(which), expected, timeout)
    }

    fn futex_wake(&self, which: Event) {
        futex::wake(self.event(which))
    }

    fn signal(&self, which: Event, count: u32) {
        if let Some(signals) = &self.signals {
            signals.signal(which, count);
        }
    }

    fn descriptor(&self, which: Event) -> Option<BorrowedFd<'_>> {
        self.signals.as_ref().map(|signals| signals.fd(which))
    }

    fn peer_alive(&self, role: Role) -> bool {
        self.owner.peer_alive(role)
    }

    fn slot_alive(&self, role: Role, index: usize) -> bool {
        self.owner.slot_alive(role, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `write` at `offset`, over bytes set to `0xEE`: reads back the
    /// message, zeros to the next multiple of 8, and the word after that
    /// untouched.
    fn check_write(ring: &Mapped, offset: usize, len: usize) {
        let span = layout::round8(len) + 8;
        let before = vec![0xEE; span];
        // SAFETY: single-threaded; `offset + span` is inside the data area
        // (the callers' offsets leave room for the largest `len`).
        unsafe { ring.write(offset, &before) };
        let message: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        // SAFETY: as above.
        unsafe { ring.write(offset, &message) };
        let mut after = vec![0; span];
        // SAFETY: as above; `after` holds `span` bytes.
        unsafe { ring.read(offset, after.as_mut_ptr(), span) };
        assert_eq!(&after[..len], &message[..], "payload of {len} at {offset}");
        assert!(
            after[len..span - 8].iter().all(|&b| b == 0),
            "padding of {len} at {offset}"
        );
        assert_eq!(
            &after[span - 8..],
            &[0xEE; 8],
            "past the record of {len} at {offset}"
        );
    }

    /// Both copies (word stores up to `WORD_COPY_MAX`, `memcpy` above),
    /// every length around the switch and every remainder mod 8, at the
    /// start of the data area, mid-line and at the end of a line.
    #[test]
    fn write_copies_the_message_and_zeros_its_padding() {
        let ring = Mapped::heap(Geometry::new(1 << 14, 4096).unwrap(), 0).unwrap();
        for offset in [0, 8, 56, 1024 + 40] {
            for len in (0..=72).chain(WORD_COPY_MAX - 16..=WORD_COPY_MAX + 16) {
                check_write(&ring, offset, len);
            }
        }
    }
}
