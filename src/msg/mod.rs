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

/// Implements [`Sender`](crate::Sender) for a type by its inherent methods
/// of the same names (`try_send`, `send`, `send_timeout`, `send_batch`),
/// the trait's `max_message` by the inherent method named, and its
/// `readiness` by the type's descriptor (`AsFd`), writable.
macro_rules! sender_by_inherent_methods {
    ($ty:ty, max_message: $max:ident) => {
        impl $crate::channel::Sender for $ty {
            fn max_message(&self) -> usize {
                <$ty>::$max(self)
            }
            fn try_send(&mut self, message: &[u8]) -> $crate::error::Result<()> {
                <$ty>::try_send(self, message)
            }
            fn send(&mut self, message: &[u8]) -> $crate::error::Result<()> {
                <$ty>::send(self, message)
            }
            fn send_timeout(
                &mut self,
                message: &[u8],
                timeout: std::time::Duration,
            ) -> $crate::error::Result<()> {
                <$ty>::send_timeout(self, message, timeout)
            }
            fn send_batch(&mut self, messages: &[&[u8]]) -> $crate::error::Result<()> {
                <$ty>::send_batch(self, messages)
            }
            fn readiness(&self) -> Option<$crate::channel::Readiness<'_>> {
                Some($crate::channel::Readiness::link(
                    std::os::fd::AsFd::as_fd(self),
                    $crate::channel::Interest::Writable,
                ))
            }
        }
    };
}

/// Implements [`Receiver`](crate::Receiver) for a type by its inherent
/// methods of the same names (`max_message`, `try_recv`, `recv`,
/// `recv_timeout`), and its `readiness` by the type's descriptor
/// (`AsFd`), readable.
macro_rules! receiver_by_inherent_methods {
    ($ty:ty) => {
        impl $crate::channel::Receiver for $ty {
            fn max_message(&self) -> usize {
                <$ty>::max_message(self)
            }
            fn try_recv(&mut self, buf: &mut Vec<u8>) -> $crate::error::Result<usize> {
                <$ty>::try_recv(self, buf)
            }
            fn recv(&mut self, buf: &mut Vec<u8>) -> $crate::error::Result<usize> {
                <$ty>::recv(self, buf)
            }
            fn recv_timeout(
                &mut self,
                buf: &mut Vec<u8>,
                timeout: std::time::Duration,
            ) -> $crate::error::Result<usize> {
                <$ty>::recv_timeout(self, buf, timeout)
            }
            fn readiness(&self) -> Option<$crate::channel::Readiness<'_>> {
                Some($crate::channel::Readiness::link(
                    std::os::fd::AsFd::as_fd(self),
                    $crate::channel::Interest::Readable,
                ))
            }
        }
    };
}

pub mod frame;
pub mod pipe;
pub mod seqpacket;
pub mod stream;
pub mod unix;
