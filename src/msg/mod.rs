//! The message passing model: messages over a kernel byte stream (a pipe, a
//! Unix stream socket, TCP), where the kernel copies and synchronizes.
//!
//! [`frame`] is the pure codec every stream transport shares: a length
//! prefix, a maximum message size checked before anything is allocated, and
//! the connect-time hello. The transports and the interface they share with
//! the shared-memory ring are still to come.

pub mod frame;
