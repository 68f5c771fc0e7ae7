//! Length-prefixed framing over a byte stream, and the connect-time hello.
//!
//! A frame is the payload's length as a 4-byte little-endian integer,
//! followed by the payload. Each channel has a maximum message size
//! (default [`DEFAULT_MAX_MESSAGE`]); a sender refuses a longer message with
//! [`Error::MessageTooLarge`], and a receiver refuses a header announcing one
//! *before* it reserves any memory for it.
//!
//! Memory follows the bytes that arrive, never what a header announces. The
//! buffer a frame is assembled in grows geometrically, by as many bytes as
//! it holds (at least [`READ_CHUNK`], at most the rest of the frame; see
//! [`Decoder::read_space`] and [`payload_read_space`]). So a peer that has
//! sent `n` bytes of a frame costs the receiver at most
//! `2 * n + 2 * READ_CHUNK` bytes, whatever length its header announced,
//! while a frame that arrives whole takes O(log) reallocations; and nothing
//! a peer sends can make a [`Decoder`] hold more than
//! `max_message + HEADER_LEN + READ_CHUNK` bytes.
//!
//! [`Decoder`] works on whatever chunks the kernel returns: a frame split
//! over many reads, many frames in one read, a header split in two. The
//! caller reads into [`Decoder::read_space`], reports the count with
//! [`Decoder::commit`], and takes frames with [`Decoder::next_frame`] until
//! it returns `None`. At end of stream, [`Decoder::finish`] reports a frame
//! cut short as [`Error::TruncatedFrame`].
//!
//! Before the first frame each side sends a [`Hello`]: a magic, the protocol
//! version and its own maximum message size. A peer speaking something else
//! is refused with [`Error::Handshake`] naming the field.

use crate::error::{Error, Result};

mod hello;

pub use hello::{HELLO_LEN, HELLO_MAGIC, Hello, PROTOCOL_VERSION, REFUSED_MAGIC};
pub(crate) use hello::{check_magic_and_version, check_refusal};

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = 4;
/// The maximum message size when a channel does not set one: 16 MiB.
pub use crate::options::DEFAULT_MAX_MESSAGE;
/// The largest maximum message size a frame header can express.
pub const MAX_MESSAGE_LIMIT: usize = u32::MAX as usize;
/// How much a [`Decoder`] reads ahead of the frame it is assembling.
pub const READ_CHUNK: usize = 64 << 10;

/// The length prefix of a `len`-byte message, or [`Error::MessageTooLarge`]
/// if it exceeds `max_message`.
///
/// ```
/// use shmsg::msg::frame::header;
///
/// assert_eq!(header(5, 1024)?, [5, 0, 0, 0]);
/// assert!(matches!(header(2000, 1024), Err(shmsg::Error::MessageTooLarge { len: 2000, max: 1024 })));
/// # Ok::<(), shmsg::Error>(())
/// ```
#[inline]
pub fn header(len: usize, max_message: usize) -> Result<[u8; HEADER_LEN]> {
    if len > max_message.min(MAX_MESSAGE_LIMIT) {
        return Err(Error::MessageTooLarge {
            len,
            max: max_message,
        });
    }
    Ok((len as u32).to_le_bytes())
}

/// Appends the frame of `payload` to `out`.
///
/// ```
/// use shmsg::msg::frame::encode;
///
/// let mut wire = Vec::new();
/// encode(b"hi", 1024, &mut wire)?;
/// encode(b"", 1024, &mut wire)?;
/// assert_eq!(wire, [2, 0, 0, 0, b'h', b'i', 0, 0, 0, 0]);
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn encode(payload: &[u8], max_message: usize, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&header(payload.len(), max_message)?);
    out.extend_from_slice(payload);
    Ok(())
}

/// Reassembles frames from the chunks of a byte stream.
///
/// ```
/// use shmsg::msg::frame::{Decoder, encode};
///
/// let mut wire = Vec::new();
/// for message in [&b"one"[..], b"two", b"three"] {
///     encode(message, 1024, &mut wire)?;
/// }
/// let mut decoder = Decoder::new(1024)?;
/// let mut got = Vec::new();
/// // The bytes arrive in chunks that ignore frame boundaries.
/// for chunk in wire.chunks(5) {
///     decoder.push(chunk);
///     while let Some(frame) = decoder.next_frame()? {
///         got.push(frame.to_vec());
///     }
/// }
/// assert_eq!(got, [&b"one"[..], b"two", b"three"]);
/// decoder.finish()?; // no frame left half done
/// # Ok::<(), shmsg::Error>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// Received bytes not yet returned: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Decoder {
    /// A decoder that accepts messages of up to `max_message` bytes.
    ///
    /// ```
    /// use shmsg::msg::frame::{Decoder, MAX_MESSAGE_LIMIT};
    ///
    /// assert_eq!(Decoder::new(1024)?.max_message(), 1024);
    /// assert!(Decoder::new(MAX_MESSAGE_LIMIT + 1).is_err());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn new(max_message: usize) -> Result<Decoder> {
        if max_message > MAX_MESSAGE_LIMIT {
            return Err(Error::InvalidConfig(format!(
                "maximum message size {max_message} exceeds the frame limit of {MAX_MESSAGE_LIMIT} bytes"
            )));
        }
        Ok(Decoder {
            max_message,
            buf: Vec::new(),
            start: 0,
            end: 0,
        })
    }

    /// The largest message this decoder accepts.
    ///
    /// ```
    /// use shmsg::msg::frame::Decoder;
    ///
    /// assert_eq!(Decoder::new(64)?.max_message(), 64);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Bytes received but not yet returned as frames.
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// decoder.push(&wire[..5]);
    /// assert_eq!(decoder.buffered(), 5);
    /// assert!(decoder.next_frame()?.is_none()); // 7 bytes make the first frame
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes the decoder holds allocated (for checking its memory bound).
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// use shmsg::msg::frame::READ_CHUNK;
    /// decoder.push(&wire);
    /// // A read's worth of room, not the frames' announced lengths.
    /// assert!(decoder.capacity() >= READ_CHUNK && decoder.capacity() < 2 * READ_CHUNK);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The announced payload length of the frame at the front, once its
    /// header is complete.
    fn front_len(&self) -> Option<usize> {
        if self.buffered() < HEADER_LEN {
            return None;
        }
        let header = &self.buf[self.start..self.start + HEADER_LEN];
        Some(u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize)
    }

    /// Space to read the next bytes of the stream into; never empty, and at
    /// least [`READ_CHUNK`] bytes. When less than that is left, the buffer
    /// is compacted and, for a frame being assembled (its header known and
    /// within the maximum), grown to leave as many bytes as are buffered,
    /// up to the rest of the frame: the buffer doubles as the frame's bytes
    /// arrive rather than growing to the announced length at once. Call
    /// [`Decoder::next_frame`] until it returns `None` before reading
    /// again, so that the buffer holds at most one partial frame.
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// use std::io::Read;
    /// let mut stream = &wire[..]; // stands for a socket
    /// let n = stream.read(decoder.read_space()).unwrap();
    /// decoder.commit(n);
    /// assert_eq!(decoder.next_frame()?, Some(&b"one"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < READ_CHUNK {
            let pending = self.buffered();
            let rest_of_frame = match self.front_len() {
                Some(len) if len <= self.max_message => (HEADER_LEN + len).saturating_sub(pending),
                _ => 0,
            };
            let want = rest_of_frame.min(pending).max(READ_CHUNK);
            // Move the partial frame to the front, then grow only as needed.
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
            if self.buf.len() < pending + want {
                self.buf.resize(pending + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that the last read put `n` bytes at the start of
    /// [`Decoder::read_space`]; `n` beyond that space is clamped.
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// let space = decoder.read_space();
    /// space[..wire.len()].copy_from_slice(&wire);
    /// decoder.commit(wire.len());
    /// assert_eq!(decoder.buffered(), wire.len());
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies `bytes` in, as a read of them would.
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// decoder.push(&wire);
    /// assert_eq!(decoder.next_frame()?, Some(&b"one"[..]));
    /// assert_eq!(decoder.next_frame()?, Some(&b"two"[..]));
    /// assert_eq!(decoder.next_frame()?, None);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let space = self.read_space();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            self.commit(n);
            bytes = &bytes[n..];
        }
    }

    /// The next complete frame's payload, if one is buffered; an error if its
    /// header announces more than the maximum message size (the error
    /// repeats on every later call: the stream cannot be resynchronized).
    ///
    /// ```
    /// use shmsg::msg::frame::Decoder;
    ///
    /// let mut decoder = Decoder::new(4)?;
    /// decoder.push(&[9, 0, 0, 0]); // announces 9 bytes: more than the maximum
    /// assert!(matches!(decoder.next_frame(), Err(shmsg::Error::MessageTooLarge { len: 9, max: 4 })));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>> {
        let Some(len) = self.front_len() else {
            return Ok(None);
        };
        if len > self.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        if self.buffered() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.start + HEADER_LEN..self.start + HEADER_LEN + len;
        self.start = payload.end;
        if self.start == self.end {
            // Empty: the next read starts at the front again.
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(&self.buf[payload]))
    }

    /// If the frame at the front is announced (header complete, within the
    /// maximum), is at least `min_len` bytes long and is not complete yet:
    /// moves its payload bytes received so far into `out` (replacing its
    /// contents), empties the decoder, and returns the payload length. The
    /// caller then reads the rest of the payload itself, straight into
    /// `out`, saving a copy of a large message, and grows `out` as the
    /// bytes arrive ([`payload_read_space`]): nothing is reserved here for
    /// the announced length.
    ///
    /// ```
    /// use shmsg::msg::frame::{Decoder, encode};
    ///
    /// let mut wire = Vec::new();
    /// encode(&[7; 1000], 1 << 20, &mut wire)?;
    /// let mut decoder = Decoder::new(1 << 20)?;
    /// decoder.push(&wire[..104]); // the header and 100 payload bytes
    /// let mut payload = Vec::new();
    /// assert_eq!(decoder.take_partial_frame(512, &mut payload), Some(1000));
    /// assert_eq!(payload.len(), 100); // the caller reads the other 900 itself
    /// assert_eq!(decoder.buffered(), 0);
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn take_partial_frame(&mut self, min_len: usize, out: &mut Vec<u8>) -> Option<usize> {
        let len = self.front_len()?;
        if len < min_len || len > self.max_message || self.buffered() >= HEADER_LEN + len {
            return None;
        }
        out.clear();
        out.extend_from_slice(&self.buf[self.start + HEADER_LEN..self.end]);
        // The buffer holds at most one partial frame: this one.
        self.start = 0;
        self.end = 0;
        Some(len)
    }

    /// At end of stream: `Ok` if every frame was complete, else
    /// [`Error::TruncatedFrame`] with the number of bytes missing (counting
    /// the payload once the header is complete).
    ///
    /// ```
    /// # use shmsg::msg::frame::{Decoder, encode};
    /// # let mut wire = Vec::new();
    /// # encode(b"one", 1024, &mut wire)?;
    /// # encode(b"two", 1024, &mut wire)?;
    /// # let mut decoder = Decoder::new(1024)?;
    /// decoder.push(&wire[..9]); // the first frame and 2 bytes of the next header
    /// assert!(decoder.next_frame()?.is_some());
    /// assert!(matches!(decoder.finish(), Err(shmsg::Error::TruncatedFrame { missing: 2 })));
    /// # Ok::<(), shmsg::Error>(())
    /// ```
    pub fn finish(&self) -> Result<()> {
        let pending = self.buffered();
        if pending == 0 {
            return Ok(());
        }
        let missing = match self.front_len() {
            Some(len) => (HEADER_LEN + len).saturating_sub(pending),
            None => HEADER_LEN - pending,
        };
        Err(Error::TruncatedFrame { missing })
    }
}

/// Makes room in `payload`, which holds the first bytes of a `len`-byte
/// payload, for the next read into its spare capacity. When less than
/// [`READ_CHUNK`] (or the rest of the payload, if smaller) is spare, it
/// grows by as many bytes as it holds, at least [`READ_CHUNK`] and at most
/// the rest of the payload: the allocation doubles with the bytes that
/// arrive (O(log) reallocations for a whole frame), and a growth leaves it
/// at most `min(len, 2 * payload.len() + READ_CHUNK)` bytes.
///
/// ```
/// use shmsg::msg::frame::{READ_CHUNK, payload_read_space};
///
/// let mut payload = Vec::new();
/// payload_read_space(&mut payload, 10 << 20);
/// // Room for the next read, not for the whole 10 MiB announced.
/// assert!(payload.capacity() >= READ_CHUNK && payload.capacity() < 10 << 20);
///
/// ```
pub fn payload_read_space(payload: &mut Vec<u8>, len: usize) {
    let have = payload.len();
    let rest = len.saturating_sub(have);
    if payload.capacity() - have < rest.min(READ_CHUNK) {
        payload.reserve_exact(rest.min(have.max(READ_CHUNK)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_header_and_many_frames_per_read() {
        let mut wire = Vec::new();
        for m in [&b""[..], b"a", b"hello", &[7u8; 300]] {
            encode(m, 1024, &mut wire).unwrap();
        }
        let mut d = Decoder::new(1024).unwrap();
        // The first header split in two, then everything else at once.
        d.push(&wire[..2]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&wire[2..]);
        assert_eq!(d.next_frame().unwrap(), Some(&b""[..]));
        assert_eq!(d.next_frame().unwrap(), Some(&b"a"[..]));
        assert_eq!(d.next_frame().unwrap(), Some(&b"hello"[..]));
        assert_eq!(d.next_frame().unwrap(), Some(&[7u8; 300][..]));
        assert_eq!(d.next_frame().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let mut d = Decoder::new(1000).unwrap();
        d.push(&u32::MAX.to_le_bytes());
        let _ = d.read_space();
        assert!(d.capacity() <= 1000 + HEADER_LEN + READ_CHUNK);
        assert!(matches!(
            d.next_frame(),
            Err(Error::MessageTooLarge { len, max: 1000 }) if len == u32::MAX as usize
        ));
        assert!(matches!(
            header(1001, 1000),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    /// A header announcing a large frame costs the decoder nothing until
    /// the bytes come; then its buffer stays within twice what it holds
    /// plus a chunk, and doubles (O(log) reallocations to the whole frame).
    #[test]
    fn the_decoder_grows_with_the_bytes_not_the_header() {
        const LEN: usize = 16 << 20;
        let mut d = Decoder::new(LEN).unwrap();
        let mut wire = Vec::with_capacity(HEADER_LEN + LEN);
        encode(&vec![0x5a; LEN], LEN, &mut wire).unwrap();
        d.push(&wire[..HEADER_LEN + 1]);
        let _ = d.read_space();
        assert!(d.capacity() <= 2 * READ_CHUNK, "holds {}", d.capacity());
        let mut at = HEADER_LEN + 1;
        let mut sizes = [1000, 70_000, 3, READ_CHUNK, 1 << 20].iter().cycle();
        let mut growths = 0;
        while at < wire.len() {
            let before = d.capacity();
            let space = d.read_space();
            let n = (*sizes.next().unwrap())
                .min(space.len())
                .min(wire.len() - at);
            space[..n].copy_from_slice(&wire[at..at + n]);
            d.commit(n);
            at += n;
            growths += usize::from(d.capacity() > before);
            assert!(
                d.capacity() <= 2 * at + READ_CHUNK,
                "holds {} of {at}",
                d.capacity()
            );
            assert!(d.capacity() <= LEN + HEADER_LEN + READ_CHUNK);
            if at < wire.len() {
                assert_eq!(d.next_frame().unwrap(), None);
            }
        }
        assert!(growths <= 12, "{growths} reallocations");
        assert_eq!(d.next_frame().unwrap().map(<[u8]>::len), Some(LEN));
    }

    /// `take_partial_frame` takes only an announced, incomplete frame of at
    /// least `min_len` bytes within the maximum; anything else stays in the
    /// decoder for `next_frame` to return or refuse.
    #[test]
    fn a_partial_frame_is_taken_only_when_long_incomplete_and_allowed() {
        let mut out = vec![9];
        // Shorter than `min_len`: left for the decoder.
        let mut d = Decoder::new(1024).unwrap();
        d.push(&100u32.to_le_bytes());
        d.push(&[1, 2]);
        assert_eq!(d.take_partial_frame(101, &mut out), None);
        assert_eq!((d.buffered(), &out[..]), (HEADER_LEN + 2, &[9][..]));
        assert_eq!(d.take_partial_frame(100, &mut out), Some(100));
        assert_eq!((d.buffered(), &out[..]), (0, &[1, 2][..]));
        // Over the maximum: refused by `next_frame`, never taken.
        let mut d = Decoder::new(64).unwrap();
        d.push(&65u32.to_le_bytes());
        d.push(&[1]);
        assert_eq!(d.take_partial_frame(0, &mut out), None);
        assert!(matches!(
            d.next_frame(),
            Err(Error::MessageTooLarge { len: 65, max: 64 })
        ));
        // Complete: `next_frame` returns it in place.
        let mut d = Decoder::new(64).unwrap();
        d.push(&2u32.to_le_bytes());
        d.push(&[5, 6]);
        assert_eq!(d.take_partial_frame(0, &mut out), None);
        assert_eq!(d.next_frame().unwrap(), Some(&[5, 6][..]));
        // Header incomplete: nothing announced yet.
        let mut d = Decoder::new(64).unwrap();
        d.push(&[2, 0]);
        assert_eq!(d.take_partial_frame(0, &mut out), None);
    }

    /// `take_partial_frame` reserves nothing for the announced length, and
    /// `payload_read_space` grows the payload by doubling, never past it.
    #[test]
    fn a_direct_payload_grows_with_the_bytes_not_the_header() {
        const LEN: usize = 16 << 20;
        let mut d = Decoder::new(LEN).unwrap();
        d.push(&(LEN as u32).to_le_bytes());
        d.push(&[1, 2, 3]);
        let mut out = Vec::new();
        assert_eq!(d.take_partial_frame(1000, &mut out), Some(LEN));
        assert_eq!(out, [1, 2, 3]);
        assert!(out.capacity() < READ_CHUNK);
        assert_eq!(d.buffered(), 0);
        let mut growths = 0;
        while out.len() < LEN {
            let before = out.capacity();
            payload_read_space(&mut out, LEN);
            growths += usize::from(out.capacity() > before);
            assert!(out.capacity() > out.len());
            assert!(out.capacity() <= LEN.min(2 * out.len() + READ_CHUNK));
            // A read that fills part of the space.
            let n = (out.capacity() - out.len()).min(200_000);
            out.resize(out.len() + n, 7);
        }
        assert_eq!(out.len(), LEN);
        assert!(
            out.capacity() == LEN && growths <= 12,
            "{growths} reallocations"
        );
        // A buffer with room enough is left alone.
        let mut roomy = Vec::with_capacity(LEN);
        payload_read_space(&mut roomy, LEN);
        assert_eq!(roomy.capacity(), LEN);
    }

    #[test]
    fn truncation_and_hello_mismatches() {
        let mut d = Decoder::new(100).unwrap();
        d.push(&[10, 0, 0, 0, 1, 2]);
        assert!(matches!(
            d.finish(),
            Err(Error::TruncatedFrame { missing: 8 })
        ));
        let mut d = Decoder::new(100).unwrap();
        d.push(&[10]);
        assert!(matches!(
            d.finish(),
            Err(Error::TruncatedFrame { missing: 3 })
        ));

        let ours = Hello::new(4096);
        assert_eq!(Hello::decode(&ours.encode()).unwrap(), ours);
        let mut bad = ours.encode();
        bad[0] = b'X';
        assert!(matches!(
            Hello::decode(&bad),
            Err(Error::Handshake { field: "magic", .. })
        ));
        let mut bad = ours.encode();
        bad[8] = 9;
        assert!(matches!(
            Hello::decode(&bad),
            Err(Error::Handshake {
                field: "version",
                found: 9,
                ..
            })
        ));
        assert_eq!(Hello::send_limit(&Hello::new(77)), 77);
        assert!(matches!(
            Hello::decode(&Hello::refusal()),
            Err(Error::PeerRefused(who)) if who == crate::peer::Credentials::own()
        ));
        assert!(Decoder::new(MAX_MESSAGE_LIMIT + 1).is_err());
    }
}
