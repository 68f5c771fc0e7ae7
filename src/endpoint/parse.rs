//! Endpoint strings: parsing `shm:NAME`, `unix:PATH`, `tcp:HOST:PORT`, ...
//! into an [`Endpoint`], and printing one back.

use std::fmt;
use std::os::fd::RawFd;

use crate::error::{Error, Result};
use crate::msg::unix::UnixAddr;

/// Prefix of the abstract socket name of `shm:NAME` and `mpsc:NAME`: they
/// meet at `@shmsg.NAME`.
pub const SOCKET_PREFIX: &str = "shmsg.";
/// The longest `NAME` of `shm:NAME`: what an abstract socket name holds
/// (107 bytes) after [`SOCKET_PREFIX`].
pub const MAX_SOCKET_NAME: usize = 107 - SOCKET_PREFIX.len();

/// A parsed endpoint string.
///
/// ```
/// use shmsg::Endpoint;
///
/// let endpoint: Endpoint = "tcp:[::1]:7000".parse()?;
/// assert_eq!(endpoint, Endpoint::Tcp { host: "::1".into(), port: 7000 });
/// // Printed back as it is written.
/// assert_eq!(endpoint.to_string(), "tcp:[::1]:7000");
/// assert_eq!(Endpoint::parse("pipe")?, Endpoint::Pipe { read: 0, write: 1 });
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `shm:NAME` or `shm:/PATH`: a pair of shared-memory rings per
    /// connection. Holds `NAME` or the absolute `/PATH`.
    Shm(String),
    /// `mpsc:NAME` or `mpsc:/PATH`: the listener's multi-producer ring and a
    /// reply ring per connection.
    Mpsc(String),
    /// `unix:PATH` or `unix:@NAME`: a Unix stream socket.
    Unix(UnixAddr),
    /// `seqpacket:PATH` or `seqpacket:@NAME`: a Unix seqpacket socket.
    Seqpacket(UnixAddr),
    /// `tcp:HOST:PORT`.
    Tcp {
        /// Host name or address (without brackets for IPv6).
        host: String,
        /// Port; 0 lets [`listen`](crate::listen) pick one.
        port: u16,
    },
    /// `pipe` (stdin and stdout) or `pipe:RFD,WFD`.
    Pipe {
        /// The descriptor to read from.
        read: RawFd,
        /// The descriptor to write to.
        write: RawFd,
    },
}

impl Endpoint {
    /// Parses an endpoint string; a malformed one is
    /// [`Error::InvalidEndpoint`] naming the part that is wrong.
    ///
    /// ```
    /// use shmsg::{Endpoint, Error};
    ///
    /// assert_eq!(Endpoint::parse("shm:orders")?, Endpoint::Shm("orders".into()));
    /// match Endpoint::parse("tcp:localhost:http") {
    ///     Err(Error::InvalidEndpoint { part, .. }) => assert_eq!(part, "port"),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(Endpoint::parse("carrier-pigeon:home").is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn parse(endpoint: &str) -> Result<Endpoint> {
        let (scheme, rest) = match endpoint.split_once(':') {
            Some((scheme, rest)) => (scheme, Some(rest)),
            None => (endpoint, None),
        };
        let need = |part: &'static str, example: &str| {
            rest.ok_or_else(|| {
                Error::endpoint(
                    endpoint,
                    part,
                    format!("is missing (write {scheme}:{example})"),
                )
            })
        };
        match scheme {
            "shm" | "mpsc" => {
                let name = need("name", "NAME")?;
                if name.starts_with('/') {
                    // Checked as a socket path (length, NUL bytes).
                    UnixAddr::parse(endpoint, name)?;
                } else {
                    // The socket's abstract name must fit too.
                    UnixAddr::parse(endpoint, &format!("@{SOCKET_PREFIX}{name}")).map_err(
                        |_| {
                            Error::endpoint(
                                endpoint,
                                "name",
                                format!(
                                    "is {} bytes long; at most {} fit in the socket name",
                                    name.len(),
                                    MAX_SOCKET_NAME
                                ),
                            )
                        },
                    )?;
                    crate::shm::region::validate_name(name).map_err(|e| match e {
                        Error::InvalidName { why, .. } => Error::endpoint(
                            endpoint,
                            "name",
                            format!("{why} (or give an absolute socket path: {scheme}:/PATH)"),
                        ),
                        other => other,
                    })?;
                }
                Ok(if scheme == "shm" {
                    Endpoint::Shm(name.to_owned())
                } else {
                    Endpoint::Mpsc(name.to_owned())
                })
            }
            "unix" => Ok(Endpoint::Unix(UnixAddr::parse(
                endpoint,
                need("path", "PATH")?,
            )?)),
            "seqpacket" => Ok(Endpoint::Seqpacket(UnixAddr::parse(
                endpoint,
                need("path", "PATH")?,
            )?)),
            "tcp" => parse_tcp(endpoint, need("host", "HOST:PORT")?),
            "pipe" => match rest {
                None => Ok(Endpoint::Pipe { read: 0, write: 1 }),
                Some(fds) => parse_fds(endpoint, fds),
            },
            "" => Err(Error::endpoint(
                endpoint,
                "scheme",
                "is missing (shm:, mpsc:, unix:, seqpacket:, tcp: or pipe)",
            )),
            other => Err(Error::endpoint(
                endpoint,
                "scheme",
                format!("{other:?} is unknown (use shm, mpsc, unix, seqpacket, tcp or pipe)"),
            )),
        }
    }

    /// Whether the endpoint uses the shared memory model.
    ///
    /// ```
    /// use shmsg::Endpoint;
    ///
    /// assert!(Endpoint::parse("mpsc:jobs")?.is_shared_memory());
    /// assert!(!Endpoint::parse("unix:@jobs")?.is_shared_memory());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn is_shared_memory(&self) -> bool {
        matches!(self, Endpoint::Shm(_) | Endpoint::Mpsc(_))
    }

    /// The Unix socket a shared-memory endpoint meets at: `@shmsg.NAME`,
    /// or the path; `None` for the other endpoints.
    ///
    /// ```
    /// use shmsg::Endpoint;
    /// use shmsg::msg::unix::UnixAddr;
    ///
    /// let endpoint = Endpoint::parse("shm:orders")?;
    /// assert_eq!(endpoint.rendezvous(), Some(UnixAddr::Abstract(b"shmsg.orders".to_vec())));
    /// let endpoint = Endpoint::parse("shm:/run/app/orders")?;
    /// assert_eq!(endpoint.rendezvous(), Some(UnixAddr::Path("/run/app/orders".into())));
    /// assert_eq!(Endpoint::parse("tcp:127.0.0.1:1")?.rendezvous(), None);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn rendezvous(&self) -> Option<UnixAddr> {
        match self {
            Endpoint::Shm(name) | Endpoint::Mpsc(name) => Some(rendezvous_addr(name)),
            _ => None,
        }
    }
}

pub(super) fn rendezvous_addr(name: &str) -> UnixAddr {
    if name.starts_with('/') {
        UnixAddr::Path(name.into())
    } else {
        UnixAddr::Abstract(format!("{SOCKET_PREFIX}{name}").into_bytes())
    }
}

fn parse_tcp(endpoint: &str, rest: &str) -> Result<Endpoint> {
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| Error::endpoint(endpoint, "port", "is missing (write tcp:HOST:PORT)"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(Error::endpoint(endpoint, "host", "is empty"));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(Error::endpoint(endpoint, "host", "contains a space or '/'"));
    }
    let port = port.parse::<u16>().map_err(|_| {
        Error::endpoint(
            endpoint,
            "port",
            format!("{port:?} is not a number from 0 to 65535"),
        )
    })?;
    Ok(Endpoint::Tcp {
        host: host.to_owned(),
        port,
    })
}

fn parse_fds(endpoint: &str, fds: &str) -> Result<Endpoint> {
    let parse = |part: &'static str, s: &str| {
        s.parse::<RawFd>()
            .ok()
            .filter(|fd| *fd >= 0)
            .ok_or_else(|| Error::endpoint(endpoint, part, format!("{s:?} is not a descriptor")))
    };
    let (read, write) = fds.split_once(',').ok_or_else(|| {
        Error::endpoint(endpoint, "descriptors", "must be two numbers: pipe:RFD,WFD")
    })?;
    let (read, write) = (
        parse("read descriptor", read)?,
        parse("write descriptor", write)?,
    );
    if read == write {
        return Err(Error::endpoint(endpoint, "descriptors", "must differ"));
    }
    Ok(Endpoint::Pipe { read, write })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Shm(name) => write!(f, "shm:{name}"),
            Endpoint::Mpsc(name) => write!(f, "mpsc:{name}"),
            Endpoint::Unix(addr) => write!(f, "unix:{addr}"),
            Endpoint::Seqpacket(addr) => write!(f, "seqpacket:{addr}"),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Endpoint::Pipe { read: 0, write: 1 } => f.write_str("pipe"),
            Endpoint::Pipe { read, write } => write!(f, "pipe:{read},{write}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_endpoints_name_their_socket() {
        for scheme in ["shm", "mpsc"] {
            let named = Endpoint::parse(&format!("{scheme}:orders")).unwrap();
            assert_eq!(
                named.rendezvous(),
                Some(UnixAddr::Abstract(b"shmsg.orders".to_vec()))
            );
            assert_eq!(named.to_string(), format!("{scheme}:orders"));
            let path = Endpoint::parse(&format!("{scheme}:/run/app/orders")).unwrap();
            assert_eq!(
                path.rendezvous(),
                Some(UnixAddr::Path("/run/app/orders".into()))
            );
            assert_eq!(path.to_string(), format!("{scheme}:/run/app/orders"));
            // The longest name whose socket name fits, and one byte more.
            let longest = "n".repeat(MAX_SOCKET_NAME);
            assert!(Endpoint::parse(&format!("{scheme}:{longest}")).is_ok());
            for bad in [
                format!("{longest}n"),
                "../x".into(),
                "a/b".into(),
                String::new(),
            ] {
                assert!(
                    matches!(
                        Endpoint::parse(&format!("{scheme}:{bad}")),
                        Err(Error::InvalidEndpoint { part: "name", .. })
                    ),
                    "{scheme}:{bad}"
                );
            }
            let too_long = format!("{scheme}:/{}", "p".repeat(107));
            assert!(Endpoint::parse(&too_long).is_err());
        }
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:1").unwrap().rendezvous(),
            None
        );
    }
}
