//! Fixed-size plain-data messages on top of the byte interface.
//!
//! [`TypedSender<T>`] sends a `T` as its bytes and [`TypedReceiver<T>`]
//! turns a received message back into a `T`, over any [`Sender`] /
//! [`Receiver`] (the shared-memory ring or any transport). The conversions
//! are zerocopy's, checked at compile time: `T` must be
//! [`IntoBytes`] + [`Immutable`] to be sent and [`FromBytes`] to be received,
//! which rules out padding, pointers, references and types with invalid bit
//! patterns; there is no hand-written transmute. A received message of the
//! wrong length is [`Error::WrongSize`], never a panic or a partial value.
//!
//! ```
//! use shmsg::shm::{Geometry, spsc};
//! use shmsg::typed::{TypedReceiver, TypedSender};
//! use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
//! #[repr(C)]
//! struct Tick {
//!     instrument: u32,
//!     size: u32,
//!     price: f64,
//! }
//!
//! let (tx, rx) = spsc::channel(Geometry::default())?;
//! let mut tx = TypedSender::<Tick, _>::new(tx)?;
//! let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
//! let tick = Tick { instrument: 7, size: 100, price: 101.25 };
//! tx.send(&tick)?;
//! assert_eq!(rx.recv()?, tick);
//! # Ok::<(), shmsg::Error>(())
//! ```

pub use zerocopy;

use std::marker::PhantomData;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::channel::{Receiver, Sender};
use crate::error::{Error, Result};

/// Sends values of `T` over a byte [`Sender`].
#[derive(Debug)]
pub struct TypedSender<T, S> {
    inner: S,
    _t: PhantomData<fn(&T)>,
}

impl<T: IntoBytes + Immutable, S: Sender> TypedSender<T, S> {
    /// Wraps `inner`. Fails with [`Error::MessageTooLarge`] if a `T` is
    /// larger than `inner` can carry.
    pub fn new(inner: S) -> Result<Self> {
        let (len, max) = (size_of::<T>(), inner.max_message());
        if len > max {
            return Err(Error::MessageTooLarge { len, max });
        }
        Ok(TypedSender {
            inner,
            _t: PhantomData,
        })
    }

    /// See [`Sender::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// See [`Sender::try_send`].
    pub fn try_send(&mut self, value: &T) -> Result<()> {
        self.inner.try_send(value.as_bytes())
    }

    /// See [`Sender::send_timeout`].
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends every value of `values`, as [`Sender::send_batch`].
    pub fn send_batch(&mut self, values: &[T]) -> Result<()> {
        let slices: Vec<&[u8]> = values.iter().map(IntoBytes::as_bytes).collect();
        self.inner.send_batch(&slices)
    }

    /// The byte sender.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Receives values of `T` from a byte [`Receiver`].
#[derive(Debug)]
pub struct TypedReceiver<T, R> {
    inner: R,
    buf: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: FromBytes, R: Receiver> TypedReceiver<T, R> {
    /// Wraps `inner`. Fails with [`Error::MessageTooLarge`] if a `T` is
    /// larger than `inner` accepts.
    pub fn new(inner: R) -> Result<Self> {
        let (len, max) = (size_of::<T>(), inner.max_message());
        if len > max {
            return Err(Error::MessageTooLarge { len, max });
        }
        Ok(TypedReceiver {
            inner,
            buf: Vec::with_capacity(size_of::<T>()),
            _t: PhantomData,
        })
    }

    fn decode(&self, len: usize) -> Result<T> {
        T::read_from_bytes(&self.buf[..len]).map_err(|_| Error::WrongSize {
            expected: size_of::<T>(),
            found: len,
        })
    }

    /// See [`Receiver::recv`]; a message of another length than a `T` is
    /// [`Error::WrongSize`] (and is consumed).
    pub fn recv(&mut self) -> Result<T> {
        let len = self.inner.recv(&mut self.buf)?;
        self.decode(len)
    }

    /// See [`Receiver::try_recv`].
    pub fn try_recv(&mut self) -> Result<T> {
        let len = self.inner.try_recv(&mut self.buf)?;
        self.decode(len)
    }

    /// See [`Receiver::recv_timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
        let len = self.inner.recv_timeout(&mut self.buf, timeout)?;
        self.decode(len)
    }

    /// The byte receiver.
    pub fn into_inner(self) -> R {
        self.inner
    }
}
