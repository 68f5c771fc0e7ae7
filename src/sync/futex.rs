//! The production futex: `FUTEX_WAIT` and `FUTEX_WAKE` on the high half of a
//! 64-bit event word in the region.
//!
//! The futex is *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel keys it by
//! the page's backing file and offset, so processes that map the region at
//! different addresses sleep and wake on the same futex. (For a ring in this
//! process's heap the kernel keys it by address space and address, which
//! works just as well.)
//!
//! Futex words are 32 bits; an event word is 64 (the crate's atomics seam is
//! 64-bit). Its bits 63..32 are the eventcount's epoch, the only half a
//! sleeper needs to compare; they are bytes 4..8 of the word on a
//! little-endian machine and bytes 0..4 on a big-endian one. The region's
//! fingerprint records the creator's endianness, so both sides agree.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// The 32-bit futex word holding bits 63..32 of `word`.
fn high_half(word: &AtomicU64) -> &AtomicU32 {
    let offset = if cfg!(target_endian = "little") { 4 } else { 0 };
    // SAFETY: `word` is an 8-aligned, live 8-byte atomic, so bytes
    // `offset .. offset + 4` are a 4-aligned, live 4-byte location for as
    // long as the borrow of `word`. The reference is only handed to the
    // kernel, which reads those bytes atomically under its futex lock; no
    // Rust code loads or stores through it, so there is no mixed-size atomic
    // access in Rust's memory model.
    unsafe { AtomicU32::from_ptr(word.as_ptr().cast::<u8>().add(offset).cast()) }
}

/// Sleeps while bits 63..32 of `word` equal `expected`, at most `timeout`.
pub(crate) fn wait(word: &AtomicU64, expected: u32, timeout: Duration) {
    let timespec = futex::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match futex::wait(
        high_half(word),
        futex::Flags::empty(),
        expected,
        Some(&timespec),
    ) {
        // Woken, or the value had changed, or the slice is over, or a signal:
        // the caller re-checks in every case.
        Ok(()) | Err(Errno::AGAIN | Errno::TIMEDOUT | Errno::INTR) => {}
        // A futex that does not work (seccomp, an odd kernel) degrades to
        // polling once per slice, never to a busy loop.
        Err(_) => std::thread::sleep(timeout),
    }
}

/// Wakes every sleeper on `word`.
pub(crate) fn wake(word: &AtomicU64) {
    // The count of woken sleepers is of no use: a sleeper re-checks anyway.
    let _ = futex::wake(high_half(word), futex::Flags::empty(), i32::MAX as u32);
}
