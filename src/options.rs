//! Settings shared by every endpoint ([`Options`] and its defaults), and
//! the one deadline type of every blocking call ([`Deadline`]).

use std::time::{Duration, Instant};

use crate::peer::Allow;

/// The default maximum message size of message-passing endpoints (16 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;
/// The default ring capacity of a shared-memory endpoint, per direction.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The default maximum message size of a shared-memory endpoint (64 KiB).
pub const DEFAULT_SHM_MAX_MESSAGE: usize = 64 << 10;

/// Settings for [`connect_with`](crate::connect_with) and [`listen_with`](crate::listen_with).
///
/// ```
/// use std::time::Duration;
/// use shmsg::{Allow, Options};
///
/// let options = Options {
///     // Messages of up to 1 MiB, in rings of 8 MiB per direction.
///     max_message: Some(1 << 20),
///     capacity: Some(8 << 20),
///     // A peer that has not said hello within a second is dropped.
///     timeout: Duration::from_secs(1),
///     // Processes of group 100 may connect too.
///     allow: Allow::Listed { uids: vec![], gids: vec![100] },
/// };
/// let defaults = Options::default();
/// assert_eq!(defaults.max_message, None);
/// assert_eq!(defaults.timeout, Duration::from_secs(10));
/// assert_eq!(defaults.allow, Allow::SameUser);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The largest message this side accepts (`None`: 16 MiB for message
    /// passing, 64 KiB for shared memory, or what the capacity allows).
    /// The sender's limit is the peer's setting.
    pub max_message: Option<usize>,
    /// The ring capacity per direction of a shared-memory endpoint created
    /// by [`listen_with`](crate::listen_with) (`None`: 1 MiB, or enough for `max_message`).
    pub capacity: Option<usize>,
    /// How long connecting and the hello may take; a listener drops a
    /// connection whose hello has not arrived by then.
    pub timeout: Duration,
    /// Which local processes a listener on a Unix socket (`unix:`,
    /// `seqpacket:`, `shm:`, `mpsc:`) lets in, and which listeners a client
    /// talks to: by default those of its own user. Not used by TCP, which
    /// carries no credentials. See [`crate::peer`].
    pub allow: Allow,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_message: None,
            capacity: None,
            timeout: Duration::from_secs(10),
            allow: Allow::SameUser,
        }
    }
}

impl Options {
    /// The largest message a message-passing side accepts: `max_message`,
    /// or [`DEFAULT_MAX_MESSAGE`].
    pub(crate) fn message_passing_max(&self) -> usize {
        self.max_message.unwrap_or(DEFAULT_MAX_MESSAGE)
    }
}

/// When a blocking call gives up: the one deadline of every wait in the
/// crate (the rings' wait loop, the stream and seqpacket transports, the
/// listeners).
///
/// `try_*` calls wait with [`Deadline::Now`], `*_timeout` calls with
/// [`Deadline::after`] the timeout, blocking calls with [`Deadline::Never`].
/// A call given a deadline returns by it (plus, for a ring, at most one
/// sleep slice, [`crate::shm::wait::SLICE`]), whatever its peers do.
///
/// ```
/// use std::time::Duration;
/// use shmsg::Deadline;
///
/// // A minute: far more than a loaded machine can take between two lines.
/// let later = Deadline::after(Duration::from_secs(60));
/// assert!(!later.passed());
/// assert!(later.remaining().unwrap() <= Duration::from_secs(60));
/// assert!(Deadline::Now.passed());
/// assert_eq!(Deadline::Never.remaining(), None);
/// // A timeout too large to represent waits forever.
/// assert_eq!(Deadline::after(Duration::MAX), Deadline::Never);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// Do not wait: one attempt.
    Now,
    /// Wait until this instant.
    At(Instant),
    /// Wait as long as it takes.
    Never,
}

impl Deadline {
    /// `timeout` from now; [`Deadline::Never`] if that instant cannot be
    /// represented.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::Deadline;
    ///
    /// assert!(matches!(Deadline::after(Duration::from_secs(1)), Deadline::At(_)));
    /// assert_eq!(Deadline::after(Duration::MAX), Deadline::Never);
    /// ```
    pub fn after(timeout: Duration) -> Deadline {
        Instant::now()
            .checked_add(timeout)
            .map_or(Deadline::Never, Deadline::At)
    }

    /// Whether the deadline has passed (always for [`Deadline::Now`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::Deadline;
    ///
    /// assert!(Deadline::Now.passed());
    /// assert!(!Deadline::Never.passed());
    /// assert!(Deadline::after(Duration::ZERO).passed());
    /// ```
    pub fn passed(&self) -> bool {
        match self {
            Deadline::Now => true,
            Deadline::At(at) => Instant::now() >= *at,
            Deadline::Never => false,
        }
    }

    /// The time left: `Some(ZERO)` once passed, `None` for
    /// [`Deadline::Never`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::Deadline;
    ///
    /// assert_eq!(Deadline::Now.remaining(), Some(Duration::ZERO));
    /// assert_eq!(Deadline::Never.remaining(), None);
    /// let left = Deadline::after(Duration::from_secs(60)).remaining().unwrap();
    /// assert!(left <= Duration::from_secs(60));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
            Deadline::Never => None,
        }
    }

    /// The time left, but at most `slice`: how long one bounded sleep of a
    /// wait loop may last.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsg::Deadline;
    ///
    /// let slice = Duration::from_millis(20);
    /// assert_eq!(Deadline::Never.slice(slice), slice);
    /// assert_eq!(Deadline::Now.slice(slice), Duration::ZERO);
    /// // A minute away: a whole slice.
    /// assert_eq!(Deadline::after(Duration::from_secs(60)).slice(slice), slice);
    /// ```
    pub fn slice(&self, slice: Duration) -> Duration {
        self.remaining().map_or(slice, |left| left.min(slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let past = Deadline::At(Instant::now() - Duration::from_millis(1));
        assert!(past.passed());
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        assert_eq!(past.slice(Duration::from_millis(20)), Duration::ZERO);
        let later = Deadline::after(Duration::from_secs(60));
        assert!(!later.passed());
        assert_eq!(
            later.slice(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        assert_eq!(
            Deadline::Never.slice(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        assert_eq!(
            Deadline::Now.slice(Duration::from_millis(20)),
            Duration::ZERO
        );
    }
}
