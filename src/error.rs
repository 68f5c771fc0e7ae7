//! The one error type of the crate.
//!
//! Every fallible operation returns [`Error`]. The variants are grouped by what
//! the caller can do about them:
//!
//! * flow control, expected in normal operation and cheap to return:
//!   [`Error::Full`], [`Error::Empty`], [`Error::Timeout`];
//! * the peer is gone: [`Error::Disconnected`];
//! * the caller's input is wrong: [`Error::MessageTooLarge`],
//!   [`Error::InvalidName`], [`Error::InvalidEndpoint`], [`Error::InvalidConfig`];
//! * the region is not what the caller expected, or is damaged:
//!   [`Error::LayoutMismatch`], [`Error::NotInitialized`], [`Error::Corrupt`],
//!   [`Error::RoleTaken`];
//! * the listener does not let this peer in, or the client does not trust
//!   the listener: [`Error::PeerRefused`], [`Error::ListenerNotAllowed`];
//! * the peer's byte stream breaks the framing protocol:
//!   [`Error::TruncatedFrame`], [`Error::Handshake`], and
//!   [`Error::MessageTooLarge`] for a frame longer than the maximum;
//! * the operating system said no: [`Error::Io`].

use std::fmt;
use std::io;

/// One side of a ring: the process that writes messages or the one that reads them.
///
/// ```
/// use shmsg::Role;
///
/// assert_eq!(Role::Producer.peer(), Role::Consumer);
/// assert_eq!(Role::Consumer.to_string(), "consumer");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The writing side.
    Producer,
    /// The reading side.
    Consumer,
}

impl Role {
    /// The other side.
    ///
    /// ```
    /// use shmsg::Role;
    ///
    /// assert_eq!(Role::Consumer.peer(), Role::Producer);
    /// ```
    pub fn peer(self) -> Role {
        match self {
            Role::Producer => Role::Consumer,
            Role::Consumer => Role::Producer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        })
    }
}

/// Everything that can go wrong in shmsg.
///
/// A receive loop that tells flow control, the end of the stream and real
/// failures apart:
///
/// ```
/// use std::time::Duration;
/// use shmsg::{Error, Receiver, Sender};
/// use shmsg::shm::{Geometry, spsc};
///
/// let (mut tx, mut rx) = spsc::channel(Geometry::default())?;
/// tx.send(b"one")?;
/// drop(tx);
/// let mut buf = Vec::new();
/// let mut received = 0;
/// loop {
///     match rx.recv_timeout(&mut buf, Duration::from_secs(1)) {
///         Ok(_) => received += 1,
///         // Nothing yet: try again (or give up, as the application likes).
///         Err(Error::Timeout) => continue,
///         // The sender is gone and everything it sent has arrived.
///         Err(Error::Disconnected) => break,
///         // Anything else is a failure worth reporting, with its message.
///         Err(other) => return Err(other),
///     }
/// }
/// assert_eq!(received, 1);
/// // Every error says what happened, in words.
/// let error = Error::MessageTooLarge { len: 10, max: 5 };
/// assert_eq!(error.to_string(), "message of 10 bytes exceeds the maximum message size of 5 bytes");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ring has no room for the message now; nothing was written.
    #[error("the ring is full")]
    Full,
    /// No message is waiting now.
    #[error("no message is waiting")]
    Empty,
    /// The deadline passed before the operation could complete; nothing was
    /// sent or received.
    #[error("timed out")]
    Timeout,
    /// The peer detached or its process died; for a receiver, every message the
    /// peer committed has already been delivered.
    #[error("the peer is gone (detached or its process died)")]
    Disconnected,
    /// The message is larger than the channel's maximum message size.
    #[error("message of {len} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge {
        /// The size of the rejected message.
        len: usize,
        /// The channel's maximum.
        max: usize,
    },
    /// A region name that could be misread as a path, or is too long.
    #[error("invalid region name {name:?}: it {why}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it, completing "the name ...".
        why: &'static str,
    },
    /// An endpoint string (`shm:NAME`, `unix:PATH`, `tcp:HOST:PORT`, ...) that
    /// cannot be parsed or used.
    #[error("invalid endpoint {endpoint:?}: the {part} {why}")]
    InvalidEndpoint {
        /// The endpoint string as given.
        endpoint: String,
        /// The part that is wrong: "scheme", "name", "path", "host", "port", ...
        part: &'static str,
        /// What is wrong with it, completing "the PART ...".
        why: String,
    },
    /// A message of another length than the fixed-size type it should hold
    /// ([`crate::typed`]); it was consumed.
    #[error("a message of {found} bytes cannot be a value of {expected} bytes")]
    WrongSize {
        /// The size of the expected type.
        expected: usize,
        /// The length of the message received.
        found: usize,
    },
    /// A capacity or maximum message size that the ring cannot work with.
    #[error("invalid ring configuration: {0}")]
    InvalidConfig(String),
    /// The region was laid out by a different build or with different
    /// parameters than the opener expects.
    #[error("region layout mismatch in {field}: expected {expected:#x}, found {found:#x}")]
    LayoutMismatch {
        /// The header field that differs.
        field: &'static str,
        /// The value this process expects.
        expected: u64,
        /// The value in the region.
        found: u64,
    },
    /// The region exists but its creator has not finished publishing the header.
    #[error("the region's header is not published yet (its creator is still setting it up)")]
    NotInitialized,
    /// A value read from shared memory is impossible: another process wrote
    /// garbage, or the region is damaged. Nothing out of bounds was touched.
    #[error("corrupt region: {what} (value {value:#x})")]
    Corrupt {
        /// Which value is wrong.
        what: &'static str,
        /// The value that was read.
        value: u64,
    },
    /// The byte stream ended in the middle of a frame.
    #[error("the stream ended inside a frame ({missing} more bytes were expected)")]
    TruncatedFrame {
        /// Bytes still missing from the frame's header or payload.
        missing: usize,
    },
    /// The peer's connect-time hello does not match ours.
    #[error("handshake mismatch in {field}: expected {expected:#x}, found {found:#x}")]
    Handshake {
        /// The hello field that differs.
        field: &'static str,
        /// Our value.
        expected: u64,
        /// The peer's value.
        found: u64,
    },
    /// Another live process already holds this side of the ring.
    #[error("the {0} side of this ring is already attached by a live process")]
    RoleTaken(Role),
    /// A Unix-socket listener refused a peer's credentials (see
    /// [`crate::peer::Allow`]). A listener's `accept` reports the peer it
    /// refused and stays usable; a client's `connect` reports itself.
    #[error("the listener refused {0}: only the users it allows may connect (Options::allow)")]
    PeerRefused(crate::credentials::Credentials),
    /// A client found the Unix socket it connected to held by a process
    /// that its [`crate::peer::Allow`] policy does not accept (an abstract
    /// name belongs to whoever binds it first): nothing was sent.
    #[error(
        "the listener there is {0}, which this client does not accept (Options::allow): \
         nothing was sent"
    )]
    ListenerNotAllowed(crate::credentials::Credentials),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What shmsg was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an operating-system error with what shmsg was doing when it happened.
    pub(crate) fn io(context: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    /// An endpoint-string error naming the part that is wrong.
    pub(crate) fn endpoint(endpoint: &str, part: &'static str, why: impl Into<String>) -> Error {
        Error::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            part,
            why: why.into(),
        }
    }

    /// A corrupt-value error.
    pub(crate) fn corrupt(what: &'static str, value: u64) -> Error {
        Error::Corrupt { what, value }
    }
}

/// `Result` with [`Error`].
///
/// ```
/// fn first(channel: &mut shmsg::Channel) -> shmsg::Result<Vec<u8>> {
///     let mut buf = Vec::new();
///     shmsg::Receiver::recv(channel, &mut buf)?;
///     Ok(buf)
/// }
/// # let _ = first;
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
