//! shmsg
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod shm;
pub mod sync;

pub use error::{Error, Result, Role};
pub mod workload;
