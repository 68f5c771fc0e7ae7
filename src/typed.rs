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
///
/// ```
/// # use shmsg::shm::{Geometry, spsc};
/// # use shmsg::typed::{TypedReceiver, TypedSender};
/// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
/// # #[repr(C)]
/// # struct Tick { instrument: u32, size: u32 }
/// # let (tx, rx) = spsc::channel(Geometry::default())?;
/// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
/// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
/// tx.send(&Tick { instrument: 1, size: 10 })?;
/// assert_eq!(rx.recv()?, Tick { instrument: 1, size: 10 });
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedSender<T, S> {
    inner: S,
    _t: PhantomData<fn(&T)>,
}

impl<T: IntoBytes + Immutable, S: Sender> TypedSender<T, S> {
    /// Wraps `inner`. Fails with [`Error::MessageTooLarge`] if a `T` is
    /// larger than `inner` can carry.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// // A ring whose messages are at most 4 bytes cannot carry an 8-byte Tick.
    /// let (small, _rx) = spsc::channel(Geometry::new(4096, 4)?)?;
    /// assert!(matches!(
    ///     TypedSender::<Tick, _>::new(small),
    ///     Err(shmsg::Error::MessageTooLarge { len: 8, max: 4 })
    /// ));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// tx.send(&Tick { instrument: 2, size: 20 })?;
    /// assert_eq!(rx.recv()?.size, 20);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// See [`Sender::try_send`].
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// tx.try_send(&Tick { instrument: 3, size: 30 })?;
    /// assert_eq!(rx.try_recv()?.instrument, 3);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_send(&mut self, value: &T) -> Result<()> {
        self.inner.try_send(value.as_bytes())
    }

    /// See [`Sender::send_timeout`].
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// use std::time::Duration;
    /// tx.send_timeout(&Tick { instrument: 4, size: 40 }, Duration::from_secs(1))?;
    /// assert_eq!(rx.recv()?.size, 40);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends every value of `values`, as [`Sender::send_batch`].
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// let ticks = [Tick { instrument: 5, size: 1 }, Tick { instrument: 5, size: 2 }];
    /// tx.send_batch(&ticks)?;
    /// assert_eq!([rx.recv()?, rx.recv()?], ticks);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn send_batch(&mut self, values: &[T]) -> Result<()> {
        let slices: Vec<&[u8]> = values.iter().map(IntoBytes::as_bytes).collect();
        self.inner.send_batch(&slices)
    }

    /// The byte sender.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// use shmsg::Sender;
    /// // Back to bytes: a message that is not a Tick.
    /// let mut bytes = tx.into_inner();
    /// bytes.send(b"odd")?;
    /// assert!(matches!(rx.recv(), Err(shmsg::Error::WrongSize { expected: 8, found: 3 })));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Receives values of `T` from a byte [`Receiver`].
///
/// ```
/// # use shmsg::shm::{Geometry, spsc};
/// # use shmsg::typed::{TypedReceiver, TypedSender};
/// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
/// # #[repr(C)]
/// # struct Tick { instrument: u32, size: u32 }
/// # let (tx, rx) = spsc::channel(Geometry::default())?;
/// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
/// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
/// tx.send(&Tick { instrument: 6, size: 60 })?;
/// assert_eq!(rx.recv()?, Tick { instrument: 6, size: 60 });
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedReceiver<T, R> {
    inner: R,
    buf: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: FromBytes, R: Receiver> TypedReceiver<T, R> {
    /// Wraps `inner`. Fails with [`Error::MessageTooLarge`] if a `T` is
    /// larger than `inner` accepts.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// let (_tx, small) = spsc::channel(Geometry::new(4096, 4)?)?;
    /// assert!(TypedReceiver::<Tick, _>::new(small).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// use shmsg::Sender;
    /// let mut bytes = tx.into_inner();
    /// bytes.send(&[0; 3])?; // not a Tick: reported, and consumed
    /// bytes.send(Tick { instrument: 7, size: 70 }.as_bytes())?;
    /// assert!(matches!(rx.recv(), Err(shmsg::Error::WrongSize { .. })));
    /// assert_eq!(rx.recv()?.instrument, 7);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv(&mut self) -> Result<T> {
        let len = self.inner.recv(&mut self.buf)?;
        self.decode(len)
    }

    /// See [`Receiver::try_recv`].
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// assert!(matches!(rx.try_recv(), Err(shmsg::Error::Empty)));
    /// tx.send(&Tick { instrument: 8, size: 80 })?;
    /// assert_eq!(rx.try_recv()?.size, 80);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<T> {
        let len = self.inner.try_recv(&mut self.buf)?;
        self.decode(len)
    }

    /// See [`Receiver::recv_timeout`].
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// use std::time::Duration;
    /// let nothing = rx.recv_timeout(Duration::from_millis(1));
    /// assert!(matches!(nothing, Err(shmsg::Error::Timeout)));
    /// # let _ = tx;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
        let len = self.inner.recv_timeout(&mut self.buf, timeout)?;
        self.decode(len)
    }

    /// The byte receiver.
    ///
    /// ```
    /// # use shmsg::shm::{Geometry, spsc};
    /// # use shmsg::typed::{TypedReceiver, TypedSender};
    /// # use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    /// # #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// # #[repr(C)]
    /// # struct Tick { instrument: u32, size: u32 }
    /// # let (tx, rx) = spsc::channel(Geometry::default())?;
    /// # let mut tx = TypedSender::<Tick, _>::new(tx)?;
    /// # let mut rx = TypedReceiver::<Tick, _>::new(rx)?;
    /// use shmsg::Receiver;
    /// tx.send(&Tick { instrument: 9, size: 90 })?;
    /// let mut bytes = rx.into_inner();
    /// let mut buf = Vec::new();
    /// assert_eq!(bytes.recv(&mut buf)?, 8);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }
}
