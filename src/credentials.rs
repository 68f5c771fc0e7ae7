//! [`Credentials`]: who a process is, as the kernel records it for a Unix
//! socket. A plain value at the bottom of the crate, so that [`Error`]
//! can carry one; [`crate::peer`] reads them from a socket and decides who
//! may connect.
//!
//! [`Error`]: crate::Error

use std::fmt;

/// The process at the other end of a Unix-socket connection, as the kernel
/// recorded it when the connection was made.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use shmsg::Credentials;
///
/// let (a, _b) = UnixStream::pair().unwrap();
/// // The other end is this very process.
/// let peer = Credentials::of_peer(&a)?;
/// assert_eq!(peer, Credentials::own());
/// println!("connected to {peer}");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Its process id at connect time (the process may have exited since),
    /// as seen from this process's PID namespace; `None` when the peer's
    /// process is not visible from it (a container with its own PID
    /// namespace, say), where the kernel reports pid 0.
    pub pid: Option<u32>,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

impl Credentials {
    /// This process's own credentials, as a peer would see them.
    ///
    /// ```
    /// use shmsg::Credentials;
    ///
    /// let me = Credentials::own();
    /// assert_eq!(me.pid, Some(std::process::id()));
    /// ```
    pub fn own() -> Credentials {
        Credentials {
            pid: Some(rustix::process::getpid().as_raw_nonzero().get() as u32),
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid} (uid {}, gid {})", self.uid, self.gid),
            None => write!(
                f,
                "a process in another PID namespace (uid {}, gid {})",
                self.uid, self.gid
            ),
        }
    }
}
