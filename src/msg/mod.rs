//! The message passing model: messages over a kernel byte stream (a Unix
//! stream socket, TCP), where the kernel copies and synchronizes.
//!
//! * [`frame`]: the pure codec every stream transport shares: a length
//!   prefix, a maximum message size checked before anything is allocated,
//!   and the connect-time hello;
//! * [`stream`]: a channel over any bidirectional stream descriptor, one
//!   `writev` per send or per batch, many frames per `read`.
//!
//! Still to come: seqpacket sockets, pipes, endpoint strings and the
//! interface shared with the shared-memory ring.

pub mod frame;
pub mod stream;
