//! Recovery of what gone peers leave behind in a multi-producer ring (the
//! protocol: [`super::super`], "Dead peers"): the claim of a producer that
//! died before committing, padded over by the next consumer to reach it,
//! and (`Mpmc`) an entry held by consumers that are all gone, handed back
//! for them.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{Consumer, zero};
use crate::error::{Error, Result, Role};
use crate::shm::layout::{MAX_CONSUMERS, MAX_PRODUCERS};
use crate::shm::mpmc::{LEN_MASK, MARK_EPOCH, NO_CLAIM, decode, encode_pad, recovery_mark, slot};
use crate::shm::record::{COMMITTED, word_at};
use crate::shm::wait;
use crate::sync::{Backend, Control, SlotWord, Word};

/// Commits padding `pad` in a dead producer's claim at `word`, unless the
/// producer committed there after all: between a recoverer's look at the
/// empty header and this store, the producer may have committed its record
/// and only then died (`shuttle_faults` found a store overwriting such a
/// record). A compare-and-swap from empty never overwrites a commit.
fn pad_if_empty<W: Word>(word: &W, pad: u64) {
    let _ = word.compare_exchange(0, pad, Release, Relaxed);
}

impl<B: Backend> Consumer<B> {
    /// `Mpmc`: if the entry at the head is held by consumers that are all
    /// gone (dead, or detached without handing it back), hands it back for
    /// them: zeroes it and moves the head past it. The entry is not
    /// delivered again (module docs). Returns whether it recovered one.
    ///
    /// Who recovers is decided on the entry's own header word, the one
    /// word of the region that only this entry owns while the head has not
    /// passed it: a consumer swaps the header for its recovery mark
    /// ([`recovery_mark`](crate::shm::mpmc::recovery_mark)), zeroes the
    /// payload, stores the zero header, and moves the head with a
    /// compare-and-swap from the position it read.
    /// Several slots may claim the entry (a consumer that lost the race for
    /// it and died before clearing its claim leaves one) and the head a
    /// recoverer read may be stale, so an election on a claim word would
    /// let two consumers recover the same entry, the second zeroing what a
    /// producer has since written there and moving the head back
    /// (`shuttle_faults` `mpmc_two_recoverers_hand_a_message_back_once`).
    /// What the header can say:
    ///
    /// * the entry itself (a header of this position, of the claimed
    ///   length): nobody has zeroed it; the swap elects one recoverer;
    /// * zero: it is zeroed already, by its holder's hand-back (which
    ///   zeroes the header last; it died before moving the head) or by a
    ///   recoverer (which stores the zero header after the payload); only
    ///   the head is left to move, and the head's compare-and-swap lets it
    ///   move once. A stale head finds zero too (the entry was handed back
    ///   and nothing written there since): its swap fails;
    /// * a recovery mark of this position: another consumer is recovering
    ///   it; left to it while that consumer is attached (same slot epoch)
    ///   and alive, else taken over (swapped for our mark, zeroed again);
    /// * anything else: a later record there, so the head read was stale.
    ///
    /// Orderings: what must come before the zeroing is everything the gone
    /// holder did to the entry (its read of it, its claim words). A
    /// detached holder's is ordered by the `Acquire` of its slot's epoch
    /// load, which reads its detach (or the watchdog's on its behalf, after
    /// the death), `loom_faults`
    /// `a_consumer_recovers_a_message_held_by_a_detached_dead_one`; an
    /// attached one's by the liveness test that finds it dead (the kernel's
    /// unlock at its death). A zero header stored by another recoverer is
    /// read with `Acquire` (paired with that store's `Release`), so its
    /// zeroing comes before our head move, whose `Release` publishes it to
    /// the producers that find room there (`loom_faults`
    /// `two_consumers_hand_a_dead_ones_message_back_once`). The other loads
    /// are `Relaxed`: values that come after one of those edges in program
    /// order (the claim words, the cursor bound), that only name the entry
    /// (the head; a stale one is caught at the header or at the head's
    /// compare-and-swap). A mark owner's epoch is read with `Acquire`
    /// ([`Consumer::may_recover_over`]). The header's compare-and-swap
    /// elects by its atomicity; it acquires nothing more.
    pub(super) fn recover_abandoned(&mut self) -> Result<bool> {
        let head = self.backend.control(Control::Head).load(Relaxed);
        let mut holder: Option<(usize, u64)> = None;
        for index in 0..MAX_CONSUMERS {
            let word = |word| slot(&self.backend, Role::Consumer, index, word);
            let epoch = word(SlotWord::Epoch).load(Acquire);
            // A slot never attached (epoch 0) has made no claim.
            if index == self.index || epoch == 0 || word(SlotWord::Claim).load(Relaxed) != head {
                continue;
            }
            let attached = epoch % 2 == 1;
            // Seeded defect `recover_live_consumer`: no liveness test.
            if attached
                && !B::FAULTS.recover_live_consumer
                && self.backend.slot_alive(Role::Consumer, index)
            {
                return Ok(false);
            }
            let len = word(SlotWord::ClaimLen).load(Relaxed);
            if len == 0 {
                // Never claimed anything (it died before its first claim).
                continue;
            }
            match holder {
                // A claim that lost its compare-and-swap and was not cleared
                // (its consumer died in between) may disagree: leave it.
                Some((_, other)) if other != len => return Ok(false),
                _ => holder = Some((index, len)),
            }
        }
        let Some((index, len)) = holder else {
            return Ok(false);
        };
        let cursor = self.backend.control(Control::ReadCursor).load(Relaxed);
        let offset = head & self.mask;
        if len < 8
            || !len.is_multiple_of(8)
            || !head.is_multiple_of(8)
            || len > cursor.wrapping_sub(head)
            || offset + len > self.geometry.capacity() as u64
        {
            return Err(Error::corrupt("a gone consumer's claim length", len));
        }
        if B::FAULTS.recover_by_claim {
            return Ok(self.seeded_recover_by_claim(index, head, len));
        }
        let header = word_at(&self.backend, self.mask, head);
        let found = header.load(Acquire);
        if found != 0 {
            if !self.may_recover_over(found, head, len) {
                return Ok(false);
            }
            let mark = recovery_mark(head, self.index, self.epoch);
            if header
                .compare_exchange(found, mark, Relaxed, Relaxed)
                .is_err()
            {
                return Ok(false);
            }
            // SAFETY: the entry lies inside the data area (checked above) and
            // is ours now: its holder is gone, our mark on its header makes
            // us its only recoverer, and nobody writes it until the head
            // moves past it.
            unsafe { zero(&self.backend, offset as usize + 8, len as usize - 8) };
            // `Release`: a recoverer that finds this zero header and moves
            // the head carries the zeroing to the producers.
            header.store(0, Release);
        }
        // `Release`: publishes the zeroing to the producers that find room
        // here (`loom_faults`
        // `a_consumer_recovers_a_message_held_by_a_detached_dead_one`).
        if self
            .backend
            .control(Control::Head)
            .compare_exchange(head, head.wrapping_add(len), Release, Relaxed)
            .is_err()
        {
            return Ok(false);
        }
        // Tidy: a claim behind the head never matches it again anyway.
        let claim = slot(&self.backend, Role::Consumer, index, SlotWord::Claim);
        let _ = claim.compare_exchange(head, NO_CLAIM, Relaxed, Relaxed);
        // A hand-back like any other: the next consumer's turn may be here.
        wait::notify_hand_back(&self.backend);
        Ok(true)
    }

    /// Seeded defect `recover_by_claim`: the hand-back elected on the
    /// holder's claim word, the head stored.
    fn seeded_recover_by_claim(&self, index: usize, head: u64, len: u64) -> bool {
        let claim = slot(&self.backend, Role::Consumer, index, SlotWord::Claim);
        if claim
            .compare_exchange(head, NO_CLAIM, Relaxed, Relaxed)
            .is_err()
        {
            return false;
        }
        let offset = (head & self.mask) as usize;
        // SAFETY: as in `recover_abandoned` (the entry is inside the data
        // area), except that the claim election does not make it ours:
        // the defect this seeds.
        unsafe { zero(&self.backend, offset + 8, len as usize - 8) };
        word_at(&self.backend, self.mask, head).store(0, Relaxed);
        self.backend
            .control(Control::Head)
            .store(head.wrapping_add(len), Release);
        wait::notify_hand_back(&self.backend);
        true
    }

    /// Whether a recovery may swap `found`, the non-zero header word at
    /// `head`, for its mark: the entry's own header (of the claimed length
    /// `len`), or the mark of a recoverer that is gone (detached, dead, or
    /// this slot's earlier holder). A live recoverer's mark, or a header
    /// of a later record (the head was stale), is left alone.
    fn may_recover_over(&self, found: u64, head: u64, len: u64) -> bool {
        if found & COMMITTED != 0 {
            return decode(found, head, self.geometry).is_ok_and(|entry| entry.extent() == len);
        }
        if found >> 32 != (head >> 3) & 0xFFFF_FFFF {
            return false;
        }
        let owner = ((found >> 28) & 7) as usize;
        if owner == self.index {
            // Ours from an earlier holder of this slot (we recover within
            // one call, never two at once).
            return true;
        }
        // `Acquire`: a mark outlives its owner's call only if the owner died
        // in it; taking it over zeroes the entry again, after the dead
        // owner's writes. A changed epoch reads the watchdog's detach (or a
        // later attach in its release sequence), which came after the
        // death; an unchanged one is followed by the liveness test.
        let epoch = slot(&self.backend, Role::Consumer, owner, SlotWord::Epoch).load(Acquire);
        // A mark's epoch is odd (attached): a detached slot's never matches.
        epoch & MARK_EPOCH != found & MARK_EPOCH || !self.backend.slot_alive(Role::Consumer, owner)
    }

    /// If the next entry is a claim of a dead producer, commits padding over
    /// it (module docs). Returns whether it did.
    ///
    /// Orderings: what must come before the padding is the dead producer's
    /// claim words and whatever it wrote of the claim, ordered by the
    /// liveness test that finds it dead (the kernel's unlock at its
    /// death). The loads before that test are `Relaxed`: values that only
    /// decide whether to look further (a stale one shows nothing to recover
    /// yet, and the next look after a sleep slice sees more); the length,
    /// after the test, is ordered by it. The compare-and-swap on the claim
    /// elects one recoverer (its atomicity); the padding's `Release`
    /// publishes the recovery to the consumers that skip and zero it.
    pub(super) fn recover_dead_claim(&mut self) -> Result<bool> {
        let at = if self.shared {
            self.backend.control(Control::ReadCursor).load(Relaxed)
        } else {
            self.head
        };
        let tail = self.backend.control(Control::Tail).load(Relaxed);
        if tail == at
            || !at.is_multiple_of(8)
            || word_at(&self.backend, self.mask, at).load(Relaxed) != 0
        {
            return Ok(false);
        }
        let mut owner: Option<(usize, u64)> = None;
        for index in 0..MAX_PRODUCERS {
            let word = |word| slot(&self.backend, Role::Producer, index, word);
            if word(SlotWord::Epoch).load(Relaxed) % 2 == 0
                || word(SlotWord::Claim).load(Relaxed) != at
            {
                continue;
            }
            if self.backend.slot_alive(Role::Producer, index) {
                return Ok(false);
            }
            let len = word(SlotWord::ClaimLen).load(Relaxed);
            if len == 0 {
                // Never claimed anything: it died between taking the slot
                // and its first claim (a fresh region's words are zero).
                continue;
            }
            match owner {
                Some((_, other)) if other != len => {
                    return Err(Error::corrupt("dead claims disagree on their length", len));
                }
                _ => owner = Some((index, len)),
            }
        }
        let Some((index, len)) = owner else {
            return Ok(false);
        };
        let capacity = self.geometry.capacity() as u64;
        if len == 0 || !len.is_multiple_of(8) || len > tail.wrapping_sub(at) || len > capacity {
            return Err(Error::corrupt("dead claim length", len));
        }
        // Only the consumer that clears the claim recovers it.
        let claim = slot(&self.backend, Role::Producer, index, SlotWord::Claim);
        if claim
            .compare_exchange(at, NO_CLAIM, Relaxed, Relaxed)
            .is_err()
        {
            return Ok(false);
        }
        let to_end = capacity - (at & self.mask);
        if len > to_end {
            let start = at.wrapping_add(to_end);
            let rest = len - to_end;
            if rest > LEN_MASK || rest > capacity / 2 {
                return Err(Error::corrupt("dead claim length", len));
            }
            // The record after the wrap may have been committed before the
            // producer died; then only the padding before it is missing.
            pad_if_empty(
                word_at(&self.backend, self.mask, start),
                encode_pad(start, rest),
            );
            pad_if_empty(
                word_at(&self.backend, self.mask, at),
                encode_pad(at, to_end),
            );
        } else {
            if len > LEN_MASK {
                return Err(Error::corrupt("dead claim length", len));
            }
            pad_if_empty(word_at(&self.backend, self.mask, at), encode_pad(at, len));
        }
        Ok(true)
    }
}
