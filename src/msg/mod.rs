//! The message passing model: messages over a kernel link (a Unix stream or
//! seqpacket socket, a pipe, TCP), where the kernel copies and synchronizes.
//!
//! * [`frame`]: the pure codec every byte-stream transport shares: a length
//!   prefix, a maximum message size checked before anything is allocated,
//!   and the connect-time hello;
//! * [`stream`]: a channel over any bidirectional byte stream (Unix stream
//!   sockets, TCP, a pair of pipes), one system call per send or per batch,
//!   many frames per `read`;
//! * [`seqpacket`]: a channel over `SOCK_SEQPACKET` sockets, where the kernel
//!   keeps message boundaries;
//! * [`pipe`]: a parent and the child it spawns, over the child's stdin and
//!   stdout;
//! * [`unix`]: Unix socket addresses (paths and abstract names), connecting,
//!   and a listener that accepts many clients.

pub mod frame;
pub mod pipe;
pub mod seqpacket;
pub mod stream;
pub mod unix;
