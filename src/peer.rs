//! Who is at the other end of a Unix-socket connection, and who may be.
//!
//! Every endpoint that meets its peer over a Unix socket (`unix:`,
//! `seqpacket:`, `shm:`, `mpsc:`) reads the peer's [`Credentials`] from the
//! kernel (`SO_PEERCRED`: the pid, user id and group id of the process that
//! connected, or of the one that called `listen`). A listener checks them
//! against its [`Allow`] policy before the hello: by default only processes
//! of the listener's own user id get in, as only they could open a region
//! file of mode 0600. A refused client's `connect` fails with
//! [`crate::Error::PeerRefused`], and so does the
//! listener's `accept` that met it (the listener stays usable).
//!
//! A client checks the listener the same way, with its own options' policy,
//! before it sends anything: an abstract socket name belongs to whoever
//! binds it first, so without the check any local user could pose as the
//! listener. A listener its policy does not accept is
//! [`crate::Error::ListenerNotAllowed`].
//!
//! The kernel records the credentials of the process that made the
//! connection (`connect` or `listen`); a connected socket passed to another
//! process keeps them. Groups are matched on the effective group id only,
//! not the supplementary groups.
//!
//! TCP carries no credentials: anyone who can reach the port can connect.
//! Bind TCP listeners to loopback (`tcp:127.0.0.1:PORT`) unless the network
//! is trusted, and authenticate in the application.

use std::os::fd::{AsFd, AsRawFd};

pub use crate::credentials::Credentials;
use crate::error::{Error, Result};

impl Credentials {
    /// The credentials of the peer of the connected Unix socket `socket`.
    ///
    /// ```
    /// use shmsg::{Receiver, Sender};
    ///
    /// // A channel over a Unix socket tells who is at the other end.
    /// let endpoint = format!("unix:@shmsg-doc-peer-{}", std::process::id());
    /// let mut listener = shmsg::listen(&endpoint)?;
    /// let client = std::thread::spawn(move || shmsg::connect(&endpoint));
    /// let server = listener.accept()?;
    /// let peer = server.peer().expect("a Unix socket carries credentials");
    /// assert_eq!(peer.pid, Some(std::process::id()));
    /// # drop(client.join().unwrap()?);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn of_peer(socket: impl AsFd) -> Result<Credentials> {
        // Not rustix's `socket_peercred`: its pid type cannot hold the 0
        // the kernel reports for a peer in another PID namespace.
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` is a valid, writable `ucred` of `len` bytes, the
        // size SO_PEERCRED writes; the descriptor is borrowed for the call.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(Error::io(
                "cannot read the peer's credentials (SO_PEERCRED)",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Credentials {
            pid: u32::try_from(cred.pid).ok().filter(|pid| *pid != 0),
            uid: cred.uid,
            gid: cred.gid,
        })
    }
}

/// Which peers a listener accepts on a Unix socket: the `allow` field of
/// [`Options`](crate::Options).
///
/// ```
/// use shmsg::{Allow, Options};
///
/// // Let in this user's processes and those of group 100.
/// let options = Options {
///     allow: Allow::Listed { uids: vec![], gids: vec![100] },
///     ..Options::default()
/// };
/// let listener = shmsg::listen_with(
///     &format!("unix:@shmsg-doc-allow-{}", std::process::id()),
///     &options,
/// )?;
/// # drop(listener);
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Allow {
    /// Only processes whose effective user id is this process's (the
    /// default).
    #[default]
    SameUser,
    /// Processes of this user, and those whose effective user id is in
    /// `uids` or whose effective group id is in `gids`.
    Listed {
        /// User ids let in besides our own.
        uids: Vec<u32>,
        /// Group ids let in.
        gids: Vec<u32>,
    },
    /// Any local process.
    Anyone,
}

impl Allow {
    /// Whether a peer with credentials `peer` may connect.
    ///
    /// ```
    /// use shmsg::{Allow, Credentials};
    ///
    /// let me = Credentials::own();
    /// let stranger = Credentials {
    ///     pid: Some(1),
    ///     uid: me.uid.wrapping_add(1),
    ///     gid: me.gid.wrapping_add(1),
    /// };
    /// assert!(Allow::SameUser.permits(&me));
    /// assert!(!Allow::SameUser.permits(&stranger));
    /// assert!(Allow::Anyone.permits(&stranger));
    /// let group = Allow::Listed { uids: vec![], gids: vec![stranger.gid] };
    /// assert!(group.permits(&stranger));
    /// ```
    pub fn permits(&self, peer: &Credentials) -> bool {
        let same_user = peer.uid == rustix::process::geteuid().as_raw();
        match self {
            Allow::SameUser => same_user,
            Allow::Listed { uids, gids } => {
                same_user || uids.contains(&peer.uid) || gids.contains(&peer.gid)
            }
            Allow::Anyone => true,
        }
    }

    /// `Ok` with the peer's credentials if they pass, else
    /// [`Error::PeerRefused`]: a listener's check of a client.
    pub(crate) fn check(&self, socket: impl AsFd) -> Result<Credentials> {
        let peer = Credentials::of_peer(socket)?;
        if self.permits(&peer) {
            Ok(peer)
        } else {
            Err(Error::PeerRefused(peer))
        }
    }

    /// `Ok` with the listener's credentials if they pass, else
    /// [`Error::ListenerNotAllowed`]: a client's check of the listener it
    /// reached, before it sends anything.
    pub(crate) fn check_listener(&self, socket: impl AsFd) -> Result<Credentials> {
        let listener = Credentials::of_peer(socket)?;
        if self.permits(&listener) {
            Ok(listener)
        } else {
            Err(Error::ListenerNotAllowed(listener))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let me = Credentials::own();
        let other = Credentials {
            pid: Some(1),
            uid: me.uid.wrapping_add(1),
            gid: me.gid.wrapping_add(1),
        };
        assert!(Allow::SameUser.permits(&me));
        assert!(!Allow::SameUser.permits(&other));
        assert!(Allow::Anyone.permits(&other));
        let by_uid = Allow::Listed {
            uids: vec![other.uid],
            gids: vec![],
        };
        let by_gid = Allow::Listed {
            uids: vec![],
            gids: vec![other.gid],
        };
        let nobody = Allow::Listed {
            uids: vec![],
            gids: vec![],
        };
        assert!(by_uid.permits(&other) && by_gid.permits(&other));
        assert!(!nobody.permits(&other) && nobody.permits(&me));
    }

    #[test]
    fn a_socket_pair_shows_this_process() {
        let (a, _b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert_eq!(Credentials::of_peer(&a).unwrap(), Credentials::own());
    }
}
