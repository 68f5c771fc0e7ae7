//! Unix domain socket addresses, connecting, and a listener that accepts
//! many clients, for stream and seqpacket sockets alike.
//!
//! An address is a filesystem path or, on Linux, an abstract name (written
//! `@name`), which lives in the network namespace instead of the filesystem
//! and vanishes with the last socket bound to it.
//! The kernel looks abstract names up per socket type: a stream client
//! connecting to a name that only a seqpacket listener holds is refused.
//!
//! Every descriptor made here is close-on-exec. Connected descriptors are in
//! blocking mode; the listener's own descriptor is non-blocking, and
//! [`UnixListener::accept`] waits in `poll`, so that several threads may
//! accept on one listener and [`UnixListener::accept_timeout`] never blocks
//! past its deadline.
//!
//! ## Stale socket files
//!
//! A process that dies without unlinking its socket file leaves the file
//! behind, and a new `bind` on that path fails with `EADDRINUSE`.
//! [`UnixListener::bind`] tells a leftover from a live listener by
//! connecting to it: `ECONNREFUSED` means no one listens, so the file is
//! removed and the bind retried once; a live listener (which sees one
//! connection open and close) or a file that is not a socket is left alone
//! and reported as an [`Error::Io`] of kind `AddrInUse`. A listener removes
//! the socket file it created when dropped, if the path still names that
//! same file (same device and inode).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::sockopt::Timeout;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, Result};
use crate::options::Deadline;

/// Bytes of `sun_path` in `struct sockaddr_un` on Linux.
const SUN_PATH_LEN: usize = 108;
/// Connections a listener's kernel queue holds before `connect` waits (the
/// kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

/// Where a Unix domain socket lives: a filesystem path or an abstract name.
///
/// ```
/// use shmsg::msg::unix::UnixAddr;
///
/// let path = UnixAddr::parse("unix:/run/app.sock", "/run/app.sock")?;
/// assert_eq!(path, UnixAddr::Path("/run/app.sock".into()));
/// let name = UnixAddr::parse("unix:@app", "@app")?;
/// assert_eq!(name.to_string(), "@app");
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file at this path.
    Path(PathBuf),
    /// A Linux abstract name (without the leading NUL the kernel uses).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// Parses the address part of an endpoint: `@name` is a Linux abstract
    /// name, anything else a filesystem path. An empty address, one that
    /// contains a NUL byte, or one too long for `sun_path` (107 bytes for a
    /// path, which needs its terminating NUL, and 107 for an abstract name,
    /// after the leading NUL) is an [`Error::InvalidEndpoint`] naming the
    /// part "path" or "abstract name"; `endpoint_for_errors` is the endpoint
    /// string the error quotes.
    ///
    /// ```
    /// use shmsg::Error;
    /// use shmsg::msg::unix::UnixAddr;
    ///
    /// assert!(matches!(UnixAddr::parse("unix:@x", "@x")?, UnixAddr::Abstract(_)));
    /// let long = "p".repeat(200);
    /// match UnixAddr::parse("unix:...", &long) {
    ///     Err(Error::InvalidEndpoint { part, .. }) => assert_eq!(part, "path"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn parse(endpoint_for_errors: &str, s: &str) -> Result<Self> {
        let (part, bytes) = match s.strip_prefix('@') {
            Some(name) => ("abstract name", name),
            None => ("path", s),
        };
        if bytes.is_empty() {
            return Err(Error::endpoint(endpoint_for_errors, part, "is empty"));
        }
        if bytes.contains('\0') {
            return Err(Error::endpoint(
                endpoint_for_errors,
                part,
                "contains a NUL byte",
            ));
        }
        let max = SUN_PATH_LEN - 1;
        if bytes.len() > max {
            return Err(Error::endpoint(
                endpoint_for_errors,
                part,
                format!(
                    "is {} bytes long; a Unix socket address holds at most {max}",
                    bytes.len()
                ),
            ));
        }
        Ok(match part {
            "path" => UnixAddr::Path(PathBuf::from(bytes)),
            _ => UnixAddr::Abstract(bytes.as_bytes().to_vec()),
        })
    }

    /// The kernel's form of this address.
    fn to_socket_addr(&self) -> Result<SocketAddrUnix> {
        let made = match self {
            UnixAddr::Path(path) => SocketAddrUnix::new(path.as_path()),
            UnixAddr::Abstract(name) => SocketAddrUnix::new_abstract_name(name),
        };
        made.map_err(|e| Error::io(format!("invalid Unix socket address {self}"), e))
    }
}

impl fmt::Display for UnixAddr {
    /// `@name` for an abstract name (bytes that are not UTF-8 shown as
    /// U+FFFD), the path otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(path) => write!(f, "{}", path.display()),
            UnixAddr::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

/// The type of a Unix domain socket.
///
/// ```
/// use shmsg::msg::unix::SocketKind;
///
/// assert_eq!(SocketKind::Seqpacket.to_string(), "seqpacket");
/// assert_eq!(SocketKind::Stream.scheme(), "unix:");
///
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// `SOCK_STREAM`: a byte stream, with no message boundaries.
    Stream,
    /// `SOCK_SEQPACKET`: connected, reliable, ordered datagrams.
    Seqpacket,
}

impl SocketKind {
    fn socket_type(self) -> SocketType {
        match self {
            SocketKind::Stream => SocketType::STREAM,
            SocketKind::Seqpacket => SocketType::SEQPACKET,
        }
    }
}

impl SocketKind {
    /// The endpoint scheme of this kind of socket, with its colon.
    ///
    /// ```
    /// use shmsg::msg::unix::SocketKind;
    ///
    /// assert_eq!(SocketKind::Seqpacket.scheme(), "seqpacket:");
    ///
    /// ```
    pub fn scheme(self) -> &'static str {
        match self {
            SocketKind::Stream => "unix:",
            SocketKind::Seqpacket => "seqpacket:",
        }
    }
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketKind::Stream => "stream",
            SocketKind::Seqpacket => "seqpacket",
        })
    }
}

/// A new close-on-exec Unix socket of `kind`.
fn new_socket(kind: SocketKind, flags: SocketFlags) -> Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        kind.socket_type(),
        SocketFlags::CLOEXEC | flags,
        None,
    )
    .map_err(|e| Error::io(format!("cannot create a Unix {kind} socket"), e))
}

/// Connects a close-on-exec, blocking socket of `kind` to `addr`, waiting at
/// most `timeout` while the listener's queue is full.
///
/// No socket at a path is an [`Error::Io`] of kind `NotFound`; a socket that
/// no one listens on (a stale file, or a closed abstract name) one of kind
/// `ConnectionRefused`; a full queue that stays full past `timeout` is
/// [`Error::Timeout`]. Both error contexts name the address.
///
/// ```
/// use std::time::Duration;
/// use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
///
/// let addr = UnixAddr::Abstract(format!("shmsg-doc-unix-{}", std::process::id()).into_bytes());
/// let listener = UnixListener::bind(&addr, SocketKind::Stream)?;
/// let _client = unix::connect(&addr, SocketKind::Stream, Duration::from_secs(1))?;
/// let _server = listener.accept()?;
/// drop(listener);
/// // No one listens any more: refused, at once.
/// let refused = unix::connect(&addr, SocketKind::Stream, Duration::from_secs(1));
/// assert!(matches!(refused, Err(shmsg::Error::Io { .. })));
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn connect(addr: &UnixAddr, kind: SocketKind, timeout: Duration) -> Result<OwnedFd> {
    connect_until(addr, kind, Deadline::after(timeout))
}

/// As [`connect`], waiting until `deadline` while the listener's queue is
/// full.
pub(crate) fn connect_until(
    addr: &UnixAddr,
    kind: SocketKind,
    deadline: Deadline,
) -> Result<OwnedFd> {
    let socket_addr = addr.to_socket_addr()?;
    let fd = new_socket(kind, SocketFlags::empty())?;
    // A blocking `connect` to a listener whose queue is full waits for room
    // on the listener's wait queue, for at most the send timeout, then fails
    // with EAGAIN: the kernel wakes us when room frees, no polling loop.
    loop {
        let left = deadline.remaining();
        // A zero timeout still makes one attempt (the kernel reads 1 µs).
        let wait = left.map(|left| left.max(Duration::from_micros(1)));
        rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Send, wait)
            .map_err(|e| Error::io("cannot set the connect timeout", e))?;
        match rustix::net::connect(&fd, &socket_addr) {
            Ok(()) => break,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Err(Error::Timeout),
            Err(e) => {
                let why = match e {
                    Errno::NOENT => ": no socket exists at this path".to_owned(),
                    Errno::CONNREFUSED => ": no one listens there".to_owned(),
                    Errno::PROTOTYPE => format!(": the socket there is not a {kind} socket"),
                    _ => String::new(),
                };
                return Err(Error::io(
                    format!("cannot connect to {}{addr}{why}", kind.scheme()),
                    e,
                ));
            }
        }
    }
    rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Send, None)
        .map_err(|e| Error::io("cannot clear the connect timeout", e))?;
    Ok(fd)
}

/// The socket file a listener created, to remove on drop.
#[derive(Debug)]
struct OwnedPath {
    /// Absolute, so that a later change of working directory does not
    /// make the drop remove something else.
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A listening Unix socket that accepts many clients.
///
/// ```
/// use std::time::Duration;
/// use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
///
/// // A socket file, removed again when the listener is dropped.
/// let path = std::env::temp_dir().join(format!("shmsg-doc-{}.sock", std::process::id()));
/// let addr = UnixAddr::Path(path.clone());
/// let listener = UnixListener::bind(&addr, SocketKind::Stream)?;
/// let clients: Vec<_> = (0..3)
///     .map(|_| unix::connect(&addr, SocketKind::Stream, Duration::from_secs(1)))
///     .collect::<shmsg::Result<_>>()?;
/// for _ in &clients {
///     listener.accept_timeout(Duration::from_secs(1))?;
/// }
/// drop(listener);
/// assert!(!path.exists());
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
    addr: UnixAddr,
    kind: SocketKind,
    /// The socket file we created, if the address is a path.
    owned_path: Option<OwnedPath>,
}

/// What a failed `bind` on a path found there.
enum Occupant {
    /// A socket file that no one listens on.
    Stale { dev: u64, ino: u64 },
    /// The file disappeared in the meantime.
    Gone,
}

impl UnixListener {
    /// Binds a socket of `kind` to `addr` and listens.
    ///
    /// For a path: if a socket file exists there and no one listens on it
    /// (a connection attempt is refused), it is a stale leftover, removed
    /// before binding again. If someone listens there, or the file is not a
    /// socket, the bind fails with an [`Error::Io`] of kind `AddrInUse`
    /// whose context names the path. An abstract name in use fails the same
    /// way. The listener removes the socket file it created on drop.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    /// # let addr = UnixAddr::Abstract(format!("shmsg-doc-ul-{}-{}", std::process::id(), line!()).into_bytes());
    /// # let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// // The name is taken while the listener lives.
    /// assert!(matches!(UnixListener::bind(&addr, SocketKind::Seqpacket), Err(shmsg::Error::Io { .. })));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn bind(addr: &UnixAddr, kind: SocketKind) -> Result<Self> {
        let scheme = kind.scheme();
        let socket_addr = addr.to_socket_addr()?;
        let fd = new_socket(kind, SocketFlags::NONBLOCK)?;
        let mut retried = false;
        loop {
            match rustix::net::bind(&fd, &socket_addr) {
                Ok(()) => break,
                Err(Errno::ADDRINUSE) => {}
                Err(e) => return Err(Error::io(format!("cannot bind {scheme}{addr}"), e)),
            }
            let UnixAddr::Path(path) = addr else {
                return Err(Error::io(
                    format!("cannot bind {scheme}{addr}: the abstract name is in use"),
                    Errno::ADDRINUSE,
                ));
            };
            if retried {
                return Err(Error::io(
                    format!("cannot bind {scheme}{addr}: another process took the path"),
                    Errno::ADDRINUSE,
                ));
            }
            retried = true;
            match Self::occupant(addr, path, &socket_addr, kind)? {
                Occupant::Gone => {}
                Occupant::Stale { dev, ino } => remove_if_same(path, dev, ino).map_err(|e| {
                    Error::io(
                        format!("cannot remove the stale socket file {scheme}{addr}"),
                        e,
                    )
                })?,
            }
        }
        rustix::net::listen(&fd, BACKLOG)
            .map_err(|e| Error::io(format!("cannot listen on {scheme}{addr}"), e))?;
        let owned_path = match addr {
            UnixAddr::Abstract(_) => None,
            UnixAddr::Path(path) => {
                let meta = std::fs::symlink_metadata(path).map_err(|e| {
                    Error::io(
                        format!("cannot inspect the new socket file {scheme}{addr}"),
                        e,
                    )
                })?;
                Some(OwnedPath {
                    path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                    dev: meta.dev(),
                    ino: meta.ino(),
                })
            }
        };
        Ok(UnixListener {
            fd,
            addr: addr.clone(),
            kind,
            owned_path,
        })
    }

    /// Tells a stale socket file at `path` from a live listener or a file
    /// that is not a socket (both errors).
    fn occupant(
        addr: &UnixAddr,
        path: &Path,
        socket_addr: &SocketAddrUnix,
        kind: SocketKind,
    ) -> Result<Occupant> {
        let scheme = kind.scheme();
        let in_use = |why: &str| {
            Error::io(
                format!("cannot bind {scheme}{addr}: {why}"),
                io::Error::from(io::ErrorKind::AddrInUse),
            )
        };
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Occupant::Gone),
            Err(e) => return Err(Error::io(format!("cannot inspect {scheme}{addr}"), e)),
        };
        if !meta.file_type().is_socket() {
            return Err(in_use("a file that is not a socket exists at this path"));
        }
        let probe = new_socket(kind, SocketFlags::NONBLOCK)?;
        loop {
            return match rustix::net::connect(&probe, socket_addr) {
                Err(Errno::INTR) => continue,
                Err(Errno::CONNREFUSED) => Ok(Occupant::Stale {
                    dev: meta.dev(),
                    ino: meta.ino(),
                }),
                Err(Errno::NOENT) => Ok(Occupant::Gone),
                // Connected, or a full queue, or a listener of the other
                // socket type: someone is there.
                Ok(()) | Err(Errno::AGAIN) | Err(Errno::PROTOTYPE) => {
                    Err(in_use("another process listens on this path"))
                }
                Err(e) => Err(Error::io(
                    format!("cannot bind {scheme}{addr}: cannot probe the socket file there"),
                    e,
                )),
            };
        }
    }

    /// Accepts the next connection, blocking until one arrives; the new
    /// descriptor is close-on-exec and in blocking mode.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    /// # let addr = UnixAddr::Abstract(format!("shmsg-doc-ul-{}-{}", std::process::id(), line!()).into_bytes());
    /// # let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// let _client = unix::connect(&addr, SocketKind::Seqpacket, Duration::from_secs(1))?;
    /// let _server = listener.accept()?;
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn accept(&self) -> Result<OwnedFd> {
        self.accept_until(Deadline::Never)
    }

    /// As [`UnixListener::accept`], waiting at most `timeout`;
    /// [`Error::Timeout`] if no client connects in time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    /// # let addr = UnixAddr::Abstract(format!("shmsg-doc-ul-{}-{}", std::process::id(), line!()).into_bytes());
    /// # let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// assert!(matches!(listener.accept_timeout(Duration::from_millis(1)), Err(shmsg::Error::Timeout)));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<OwnedFd> {
        self.accept_until(Deadline::after(timeout))
    }

    /// As [`UnixListener::accept`], waiting until `deadline`;
    /// [`Error::Timeout`] if no client connects by then.
    pub(crate) fn accept_until(&self, deadline: Deadline) -> Result<OwnedFd> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => return Ok(fd),
                // A client that gave up before we accepted it: wait for the next.
                Err(Errno::INTR) | Err(Errno::CONNABORTED) => continue,
                Err(Errno::AGAIN) => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot accept on {}{}", self.kind.scheme(), self.addr),
                        e,
                    ));
                }
            }
            let left = match deadline.remaining() {
                Some(Duration::ZERO) => return Err(Error::Timeout),
                left => left,
            };
            poll_in(self.fd.as_fd(), left)
                .map_err(|e| Error::io(format!("cannot wait on unix:{}", self.addr), e))?;
        }
    }

    /// The address this listener is bound to.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    /// # let addr = UnixAddr::Abstract(format!("shmsg-doc-ul-{}-{}", std::process::id(), line!()).into_bytes());
    /// # let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// assert_eq!(listener.addr(), &addr);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }

    /// The type of the sockets this listener accepts.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shmsg::msg::unix::{self, SocketKind, UnixAddr, UnixListener};
    /// # let addr = UnixAddr::Abstract(format!("shmsg-doc-ul-{}-{}", std::process::id(), line!()).into_bytes());
    /// # let listener = UnixListener::bind(&addr, SocketKind::Seqpacket)?;
    /// assert_eq!(listener.kind(), SocketKind::Seqpacket);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn kind(&self) -> SocketKind {
        self.kind
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        if let Some(owned) = &self.owned_path {
            // Another listener may have replaced the file since: leave it.
            let _ = remove_if_same(&owned.path, owned.dev, owned.ino);
        }
    }
}

/// Removes `path` if it is still the file `(dev, ino)`.
fn remove_if_same(path: &Path, dev: u64, ino: u64) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.dev() != dev || meta.ino() != ino {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Waits until `fd` is readable (or closed, or failed), at most `timeout`
/// (`None`: forever); returns whether it is. Retries `EINTR`.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> rustix::io::Result<bool> {
    poll(fd, PollFlags::IN, timeout)
}

/// Waits until `fd` is writable (or closed, or failed), at most `timeout`
/// (`None`: forever); returns whether it is. Retries `EINTR`.
pub(crate) fn poll_out(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> rustix::io::Result<bool> {
    poll(fd, PollFlags::OUT, timeout)
}

fn poll(
    fd: BorrowedFd<'_>,
    flags: PollFlags,
    timeout: Option<Duration>,
) -> rustix::io::Result<bool> {
    let timespec = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    loop {
        let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
        match rustix::event::poll(&mut fds, timespec.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}
