//! What shmsg's measurements share: the `shmsg` command (`cli/`), the
//! benchmarks (`benches/`) and the peer comparison (`bench/peers`).
//!
//! * [`stats`]: median, spread and quantiles of repeated measurements;
//! * [`cpu`]: the CPUs this process may run on, and pinning to one;
//! * [`reference`](mod@reference): one cache line bouncing between two cores, the physical
//!   floor under any shared-memory round trip;
//! * [`ring`]: the reference ring, the simplest correct ring (fixed slots,
//!   spinning, one copy in and one out), the yardstick of a ring's speed;
//! * [`message`]: writing every byte of a message and reading every byte
//!   back, so that no measurement skips producing or consuming the data.
//!
//! It works on plain bytes and numbers, and does not depend on `shmsg`.

pub mod cpu;
pub mod message;
pub mod reference;
pub mod ring;
pub mod stats;
