//! The reading end of a single-producer ring (the protocol: [`super`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{Slot, attach_epoch, decode_header};
use crate::error::{Error, Result, Role};
use crate::options::Deadline;
use crate::shm::Mapped;
use crate::shm::attach::{self, detached};
use crate::shm::layout::{Geometry, record_size};
use crate::shm::record::word_at;
use crate::shm::region::Region;
use crate::shm::wait::{self, Slept, Spin, Woke};
use crate::sync::{Backend, Control, Event, Word, order};

/// The reading end of a single-producer ring.
///
/// At most one `Consumer` is attached to a ring at a time, across all
/// processes.
///
/// ```
/// use shmsg::shm::{Geometry, spsc};
///
/// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
/// let mut buf = Vec::new();
/// assert!(matches!(rx.try_recv(&mut buf), Err(shmsg::Error::Empty)));
/// tx.send(b"hello")?;
/// assert_eq!(rx.recv(&mut buf)?, 5);
/// assert_eq!(buf, b"hello");
/// # Ok::<(), shmsg::Error>(())
/// ```
pub struct Consumer<B: Backend = Mapped> {
    backend: B,
    /// Position of the next record (private cursor).
    head: u64,
    mask: u64,
    geometry: Geometry,
    epoch: u64,
    spin: Spin,
}

impl<B: Backend> Consumer<B> {
    /// Attaches as the consumer of the ring in `backend`.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::shm::{Geometry, Mapped, spsc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let mut rx = spsc::Consumer::with_backend(memory.clone())?;
    /// assert!(matches!(spsc::Consumer::with_backend(memory.clone()), Err(Error::RoleTaken(_))));
    /// let mut tx = spsc::Producer::with_backend(memory)?;
    /// tx.send(b"pong")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"pong");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn with_backend(backend: B) -> Result<Self> {
        Self::attach_inner(backend, false)
    }

    /// As [`Producer::with_backend_taking_over`].
    ///
    /// ```
    /// use shmsg::shm::{Geometry, Mapped, spsc};
    ///
    /// let memory = Mapped::heap(Geometry::default(), 0)?;
    /// let mut tx = spsc::Producer::with_backend(memory.clone())?;
    /// std::mem::forget(spsc::Consumer::with_backend(memory.clone())?); // "dies"
    /// tx.send(b"kept")?;
    /// let mut rx = spsc::Consumer::with_backend_taking_over(memory)?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"kept");
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[doc(hidden)]
    pub fn with_backend_taking_over(backend: B) -> Result<Self> {
        Self::attach_inner(backend, true)
    }

    fn attach_inner(backend: B, take_over: bool) -> Result<Self> {
        let geometry = Geometry::of(&backend);
        // Own the role first, then read the head: the compare-and-swap
        // acquires the previous consumer's detach (its `Release` store comes
        // after its last head store), so this load sees where it stopped. A
        // head read before the attach could be older, and the messages in
        // between would be delivered twice (found by the ordering sweep).
        //
        // The load is `Relaxed` (no model tells it from `Acquire`,
        // `ci/mutate-orderings.sh`): only consumers write the head, and the
        // edge that makes this load see the previous consumer's last head
        // store is the attach's, not the load's: the compare-and-swap
        // acquires its detach (`Drop`'s `Release`, `loom_spsc`
        // `consumer_dropped_by_another_thread`; a refused attach's undo,
        // `consumer_refused_for_a_corrupt_head`), or after a takeover from a
        // dead consumer the role lock orders it (see `Region::lock_role`).
        // An `Acquire` here would only order the previous consumer's
        // payload reads before ours, which need no order: the records we
        // read are acquired through their headers in `poll`.
        let epoch = attach_epoch(&backend, Role::Consumer, take_over)?;
        let head = backend.control(Control::Head).load(Relaxed);
        if !head.is_multiple_of(8) {
            // `Release`: a consumer that attaches next acquires the
            // detach before us (and the head we found corrupt) through
            // this store (`loom_spsc` `consumer_refused_for_a_corrupt_head`).
            backend
                .control(Control::ConsumerEpoch)
                .store(epoch.wrapping_add(1), Release);
            return Err(Error::corrupt("head", head));
        }
        let spin = Spin::new(backend.spin_limit());
        Ok(Consumer {
            spin,
            backend,
            head,
            mask: geometry.capacity() as u64 - 1,
            geometry,
            epoch,
        })
    }

    /// The ring's capacity and maximum message size.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (_tx, rx) = spsc::channel(Geometry::new(2048, 512)?)?;
    /// assert_eq!(rx.geometry().capacity(), 2048);
    /// assert_eq!(rx.geometry().max_message(), 512);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    wait::receive_methods!("spsc::channel(Geometry::new(1024, 64)?)");
    wait::event_loop_methods!("try_recv");

    /// Reads the next message in place: `read` gets the payload bytes inside
    /// the ring, and the record is released when it returns.
    ///
    /// ```
    /// use shmsg::shm::{Geometry, spsc};
    ///
    /// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
    /// tx.send(b"3 words here")?;
    /// // Parse without copying the payload out of the ring.
    /// let words = rx.try_recv_with(|payload| payload.split(|&b| b == b' ').count())?;
    /// assert_eq!(words, 3);
    /// assert!(matches!(rx.try_recv_with(|p| p.len()), Err(shmsg::Error::Empty)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    #[inline]
    pub fn try_recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.recv_with_once(&mut Some(read))
    }

    /// One attempt of an in-place receive; `read` is taken only once a record
    /// is there, so a blocking caller can retry with it.
    #[inline(always)]
    fn recv_with_once<R>(&mut self, read: &mut Option<impl FnOnce(&[u8]) -> R>) -> Result<R> {
        let (start, len) = match self.poll()? {
            Some(found) => found,
            None => return Err(self.empty_or_disconnected()),
        };
        let read = read.take().expect("an in-place receive reads once");
        let offset = (start & self.mask) as usize + 8;
        // SAFETY: `poll` validated that the committed record lies inside the
        // data area; it stays ours until the head store below.
        let result = unsafe { self.backend.read_in_place(offset, len, read) };
        self.release(start, len);
        Ok(result)
    }

    /// Runs `attempt` in the one wait loop ([`wait::block`]) until it stops
    /// reporting [`Error::Empty`], waiting on [`Event::Data`].
    fn blocking<T>(
        &mut self,
        deadline: Deadline,
        attempt: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        wait::block(
            self,
            Event::Data,
            Role::Producer,
            deadline,
            wait::empty,
            attempt,
            Self::on_wake,
        )
    }

    /// The `woke` hook of every wait of this consumer.
    fn on_wake(&mut self, slept: Slept) -> Result<Woke> {
        Ok(match slept {
            Slept::Again => Woke::Again,
            // Everything the dead producer committed is visible now: one
            // more attempt delivers it, then the stream is over.
            Slept::PeerDead => Woke::LastTry(Error::Disconnected),
        })
    }

    /// The position and length of the next committed record, stepping over
    /// a wrap marker; `None` if nothing is committed.
    #[inline(always)]
    fn poll(&mut self) -> Result<Option<(u64, usize)>> {
        let poll = order(B::FAULTS.relaxed_poll, Acquire);
        let mut position = self.head;
        let mut slot = decode_header(
            word_at(&self.backend, self.mask, position).load(poll),
            position,
            self.geometry,
        )?;
        if slot == Slot::Wrap {
            position = position.wrapping_add(self.mask + 1 - (position & self.mask));
            // `Relaxed` (no model tells it from `Acquire`): the marker
            // load above acquired the marker, which the producer
            // stores with `Release` after this record's payload and header
            // (`Producer::publish`), so both happen-before this load: it
            // reads this header (or a later value), and the payload copy
            // is ordered after the writes.
            let word = word_at(&self.backend, self.mask, position).load(Relaxed);
            slot = decode_header(word, position, self.geometry)?;
            // Only the producer's own wrap is followed; a second one is corrupt.
            if slot == Slot::Wrap {
                return Err(Error::corrupt("wrap marker after wrap marker", word));
            }
            // Skip the marker for good even if the record is not visible yet.
            self.head = position;
        }
        match slot {
            Slot::Record(len) => Ok(Some((position, len))),
            _ => Ok(None),
        }
    }

    /// Empty, or disconnected if the producer has detached and a last poll
    /// still finds nothing.
    #[cold]
    fn empty_or_disconnected(&mut self) -> Error {
        if !detached(&self.backend, Role::Producer) {
            return Error::Empty;
        }
        // Seeded defect `no_drain_on_disconnect`: left out.
        if !B::FAULTS.no_drain_on_disconnect {
            match self.poll() {
                Ok(None) => {}
                // A message arrived before the detach; the caller polls again.
                Ok(Some(_)) => return Error::Empty,
                Err(error) => return error,
            }
        }
        Error::Disconnected
    }

    /// Hands the record at `start` back to the producer.
    #[inline(always)]
    fn release(&mut self, start: u64, len: usize) {
        self.head = start.wrapping_add(record_size(len) as u64);
        let release = order(B::FAULTS.relaxed_release, Release);
        self.backend
            .control(Control::Head)
            .store(self.head, release);
        // A producer asleep on a full ring may go on now.
        wait::notify(&self.backend, Event::Space);
    }
}

wait::waiter!(Consumer, Event::Data, Role::Producer);

impl<B: Backend> Drop for Consumer<B> {
    fn drop(&mut self) {
        wait::disarm(self);
        // Every head store happens-before this store, which the next
        // consumer's attach acquires before it loads the head; a release
        // ran its fence after its head store, but that fence orders this
        // store only in the same thread (`loom_spsc`
        // `consumer_dropped_by_another_thread`: dropped in another thread).
        self.backend
            .control(Control::ConsumerEpoch)
            .store(self.epoch.wrapping_add(1), Release);
        // A producer asleep on a full ring learns of it now.
        wait::notify(&self.backend, Event::Space);
    }
}

impl Consumer<Mapped> {
    /// Attaches as the consumer of a region's ring; as [`Producer::attach`](super::Producer::attach).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use shmsg::shm::{Geometry, Region, spsc};
    ///
    /// let region = Arc::new(Region::anonymous(Geometry::default())?);
    /// let mut rx = spsc::Consumer::attach(&region)?;
    /// let mut tx = spsc::Producer::attach(&region)?;
    /// tx.send(b"42")?;
    /// drop(tx);
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"42");
    /// assert!(matches!(rx.recv(&mut buf), Err(shmsg::Error::Disconnected)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn attach(region: &Arc<Region>) -> Result<Self> {
        let memory = attach::to_role(region, Role::Consumer, super::watch_consumer)?;
        Consumer::with_backend_taking_over(memory)
    }
}

impl<B: Backend> std::fmt::Debug for Consumer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}
