//! The connect-time hello both sides of a byte stream or seqpacket channel
//! send before their first message, and the checks every handshake message
//! of the crate shares.

use super::MAX_MESSAGE_LIMIT;
use crate::error::{Error, Result};

/// `b"shmsg\0mp"`: the first bytes a shmsg stream peer sends.
pub const HELLO_MAGIC: [u8; 8] = *b"shmsg\0mp";
/// `b"shmsg\0no"`: the first bytes of a listener's answer to a peer it
/// refuses ([`Hello::refusal`]), in place of its hello.
pub const REFUSED_MAGIC: [u8; 8] = *b"shmsg\0no";
/// Version of the framing protocol; bump on any change.
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes of an encoded [`Hello`].
pub const HELLO_LEN: usize = 20;

/// The connect-time hello: who we are and the largest message we accept.
///
/// ```
/// use shmsg::msg::frame::Hello;
///
/// let ours = Hello::new(1 << 20);
/// let wire = ours.encode();
/// assert_eq!(Hello::decode(&wire)?, ours);
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's protocol version.
    pub version: u32,
    /// The largest message the sender accepts; the other side must not send more.
    pub max_message: u64,
}

impl Hello {
    /// Our hello, for a channel that accepts messages of up to `max_message` bytes.
    ///
    /// ```
    /// use shmsg::msg::frame::{Hello, PROTOCOL_VERSION};
    ///
    /// let hello = Hello::new(4096);
    /// assert_eq!((hello.version, hello.max_message), (PROTOCOL_VERSION, 4096));
    ///
    /// ```
    pub fn new(max_message: usize) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            max_message: max_message as u64,
        }
    }

    /// The 20 bytes on the wire: magic, version (`u32` LE), maximum (`u64` LE).
    ///
    /// ```
    /// use shmsg::msg::frame::{HELLO_MAGIC, Hello};
    ///
    /// let wire = Hello::new(4096).encode();
    /// assert_eq!(wire[..8], HELLO_MAGIC);
    /// assert_eq!(wire[12..], 4096u64.to_le_bytes());
    ///
    /// ```
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut bytes = [0u8; HELLO_LEN];
        bytes[..8].copy_from_slice(&HELLO_MAGIC);
        bytes[8..12].copy_from_slice(&self.version.to_le_bytes());
        bytes[12..].copy_from_slice(&self.max_message.to_le_bytes());
        bytes
    }

    /// What a listener sends instead of its hello to a peer whose
    /// credentials it refuses: [`Hello::decode`] on the peer's side makes it
    /// [`Error::PeerRefused`].
    ///
    /// ```
    /// use shmsg::msg::frame::Hello;
    ///
    /// assert!(matches!(Hello::decode(&Hello::refusal()), Err(shmsg::Error::PeerRefused(_))));
    ///
    /// ```
    pub fn refusal() -> [u8; HELLO_LEN] {
        let mut bytes = [0u8; HELLO_LEN];
        bytes[..8].copy_from_slice(&REFUSED_MAGIC);
        bytes[8..12].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        bytes
    }

    /// Reads a peer's hello; [`Error::Handshake`] names the field that is
    /// not ours (the magic, or the protocol version), and a listener's
    /// [`Hello::refusal`] is [`Error::PeerRefused`] with this process's
    /// credentials.
    ///
    /// ```
    /// use shmsg::msg::frame::Hello;
    ///
    /// let mut wire = Hello::new(64).encode();
    /// assert_eq!(Hello::decode(&wire)?.max_message, 64);
    /// wire[0] = b'X'; // not a shmsg peer
    /// assert!(matches!(Hello::decode(&wire), Err(shmsg::Error::Handshake { field: "magic", .. })));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello> {
        check_refusal(bytes)?;
        let version =
            check_magic_and_version(bytes, HELLO_MAGIC, PROTOCOL_VERSION, ["magic", "version"])?;
        Ok(Hello {
            version,
            max_message: u64::from_le_bytes(bytes[12..].try_into().expect("8 bytes")),
        })
    }

    /// The largest message we may send to a peer that said `peer`: its
    /// maximum, capped by what a frame header can express.
    ///
    /// ```
    /// use shmsg::msg::frame::{Hello, MAX_MESSAGE_LIMIT};
    ///
    /// assert_eq!(Hello::send_limit(&Hello::new(64)), 64);
    /// // A peer that accepts anything still gets frames a header can express.
    /// let greedy = Hello { version: 1, max_message: u64::MAX };
    /// assert_eq!(Hello::send_limit(&greedy), MAX_MESSAGE_LIMIT);
    ///
    /// ```
    pub fn send_limit(peer: &Hello) -> usize {
        usize::try_from(peer.max_message)
            .unwrap_or(usize::MAX)
            .min(MAX_MESSAGE_LIMIT)
    }
}

/// [`Error::PeerRefused`] (with this process's credentials) if `bytes`, a
/// handshake message at least 8 bytes long, starts with
/// [`REFUSED_MAGIC`]: the listener refused us.
pub(crate) fn check_refusal(bytes: &[u8]) -> Result<()> {
    if bytes[..8] == REFUSED_MAGIC {
        return Err(Error::PeerRefused(crate::peer::Credentials::own()));
    }
    Ok(())
}

/// Checks the magic (bytes 0..8) and the version (bytes 8..12, `u32` LE)
/// that every handshake message of the crate starts with, and returns the
/// version; another magic or version is [`Error::Handshake`] naming
/// `fields[0]` or `fields[1]`.
pub(crate) fn check_magic_and_version(
    bytes: &[u8],
    magic: [u8; 8],
    version: u32,
    fields: [&'static str; 2],
) -> Result<u32> {
    let found: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
    if found != magic {
        return Err(Error::Handshake {
            field: fields[0],
            expected: u64::from_le_bytes(magic),
            found: u64::from_le_bytes(found),
        });
    }
    let found = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if found != version {
        return Err(Error::Handshake {
            field: fields[1],
            expected: u64::from(version),
            found: u64::from(found),
        });
    }
    Ok(found)
}
