//! The shared-memory rings as [`Sender`] and [`Receiver`]: the adapters of
//! both rings, the single-producer one ([`crate::shm::spsc`]) and the
//! multi-producer ones ([`crate::shm::mpmc`]), in one place.
//!
//! Each trait method forwards to the ring handle's method of the same name;
//! a ring's maximum message is the one its geometry allows.

use std::time::Duration;

use super::{Readiness, Receiver, Sender, check_batch};
use crate::error::Result;
use crate::shm::{mpmc, spsc};
use crate::sync::Backend;

/// Implements [`Sender`] for a ring producer by forwarding the four
/// required methods; `$extra` holds the provided methods it overrides.
macro_rules! ring_sender {
    ($producer:ident { $($extra:item)* }) => {
        impl<B: Backend> Sender for $producer::Producer<B> {
            fn max_message(&self) -> usize {
                self.geometry().max_message()
            }
            fn try_send(&mut self, message: &[u8]) -> Result<()> {
                $producer::Producer::try_send(self, message)
            }
            fn send(&mut self, message: &[u8]) -> Result<()> {
                $producer::Producer::send(self, message)
            }
            fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
                $producer::Producer::send_timeout(self, message, timeout)
            }
            fn readiness(&self) -> Option<Readiness<'_>> {
                $producer::Producer::readiness(self).map(Readiness::signalled)
            }
            fn arm(&mut self) {
                $producer::Producer::arm(self)
            }
            fn disarm(&mut self) {
                $producer::Producer::disarm(self)
            }
            fn idle(&mut self) -> Result<()> {
                $producer::Producer::idle(self)
            }
            $($extra)*
        }
    };
}

/// Implements [`Receiver`] for a ring consumer by forwarding every method.
macro_rules! ring_receiver {
    ($consumer:ident) => {
        impl<B: Backend> Receiver for $consumer::Consumer<B> {
            fn max_message(&self) -> usize {
                self.geometry().max_message()
            }
            fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
                $consumer::Consumer::try_recv(self, buf)
            }
            fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
                $consumer::Consumer::recv(self, buf)
            }
            fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
                $consumer::Consumer::recv_timeout(self, buf, timeout)
            }
            fn try_recv_lend(&mut self, read: &mut dyn FnMut(&[u8])) -> Result<usize> {
                $consumer::Consumer::try_recv_with(self, |message| {
                    read(message);
                    message.len()
                })
            }
            fn readiness(&self) -> Option<Readiness<'_>> {
                $consumer::Consumer::readiness(self).map(Readiness::signalled)
            }
            fn arm(&mut self) {
                $consumer::Consumer::arm(self)
            }
            fn disarm(&mut self) {
                $consumer::Consumer::disarm(self)
            }
            fn idle(&mut self) -> Result<()> {
                $consumer::Consumer::idle(self)
            }
        }
    };
}

ring_sender!(spsc {
    /// One batch store of the ring ([`spsc::Producer::send_batch`]), after
    /// the whole batch is checked against the maximum message.
    fn send_batch(&mut self, messages: &[&[u8]]) -> Result<()> {
        check_batch(messages, self.geometry().max_message())?;
        spsc::Producer::send_batch(self, messages)
    }
    /// The records between the consumer's head and this producer's tail
    /// ([`spsc::Producer::unreleased`]).
    fn unreleased(&self) -> Option<u64> {
        spsc::Producer::unreleased(self).ok()
    }
});
ring_sender!(mpmc {});
ring_receiver!(spsc);
ring_receiver!(mpmc);
