//! `shmsg send ENDPOINT`: each line or frame of stdin as one message.

use std::io::{BufRead, Read};
use std::time::Duration;

use shmsg::channel::Sender;
use shmsg::{Endpoint, Error, Options};

use super::{SendArgs, hint, refuse_stdio_pipe};
use crate::failure::Failure;
use crate::units::{MAX_SIZE, parse_size};

/// What to do about a message of `len` bytes that the receiver at
/// `endpoint` does not take: a `--max-message` it accepts (rounded up to
/// whole KiB or MiB), or, beyond the largest, splitting the message.
fn max_message_advice(len: usize, endpoint: &str) -> String {
    let size = if len <= 1 << 20 {
        format!("{}K", len.div_ceil(1 << 10))
    } else {
        format!("{}M", len.div_ceil(1 << 20))
    };
    match parse_size(&size) {
        Ok(_) => format!("start the receiver with `shmsg recv --max-message {size} {endpoint}`"),
        Err(_) => "no receiver takes more than 16M: split it into smaller messages".into(),
    }
}

/// The hint for message `number` of `len` bytes, too large for the
/// receiver at `endpoint`.
fn too_large_hint(number: u64, len: usize, endpoint: &str) -> String {
    format!(
        "message {number} ({len} bytes) is too large for the receiver; {}",
        max_message_advice(len, endpoint)
    )
}

/// Reads and drops the rest of a line (up to `limit` bytes, its newline
/// not counted); returns how many bytes it had.
fn skip_line(input: &mut impl BufRead, limit: u64) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    while skipped < limit {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let (used, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        skipped += (used - usize::from(end)) as u64;
        input.consume(used);
        if end {
            break;
        }
    }
    Ok(skipped.min(limit))
}

/// Reads the next message from `input`: a line without its newline, or a
/// length-prefixed frame. `None` at the end of the input.
///
/// A frame whose length is over `max` (what the receiver accepts) is
/// [`Error::MessageTooLarge`] as soon as its 4-byte length is read: its
/// bytes are neither read nor stored, so a wrong or hostile length cannot
/// make this process read gigabytes into memory. Input that ends inside a
/// frame is [`Failure::Input`].
fn next_message(
    input: &mut impl BufRead,
    length_prefixed: bool,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, Failure> {
    buf.clear();
    let stdin_error = |e| Error::Io {
        context: "cannot read stdin".into(),
        source: e,
    };
    if !length_prefixed {
        // At most the longest message and its newline: a longer line is
        // refused without reading (or holding) the rest of it.
        let limit = max.saturating_add(1) as u64;
        let n = input
            .by_ref()
            .take(limit)
            .read_until(b'\n', buf)
            .map_err(stdin_error)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if n as u64 == limit {
            // Measure the line without holding it, up to just past what
            // any receiver takes, for a hint that names a size that works.
            let rest = skip_line(input, (MAX_SIZE + 1) as u64).map_err(stdin_error)?;
            let len = n.saturating_add(rest as usize);
            return Err(Error::MessageTooLarge { len, max }.into());
        }
        return Ok(Some(()));
    }
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(Failure::Input(format!(
                    "stdin ended inside a frame's 4-byte length ({got} bytes of it); \
                     --length-prefixed input is a little-endian u32 length, then the message"
                )));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stdin_error(e).into()),
        }
    }
    let len = u32::from_le_bytes(header) as u64;
    if len > max as u64 {
        return Err(Error::MessageTooLarge {
            len: len as usize,
            max,
        }
        .into());
    }
    let read = input.take(len).read_to_end(buf).map_err(stdin_error)?;
    if read as u64 != len {
        return Err(Failure::Input(format!(
            "stdin ended inside a frame: its length says {len} bytes, only {read} followed"
        )));
    }
    Ok(Some(()))
}

/// Whether `error` says that nobody listens at the endpoint yet (no socket
/// file, or no listener on the socket or port): a receiver started a
/// moment later fixes it.
fn nobody_listens(error: &Error) -> bool {
    matches!(
        error,
        Error::Io { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        )
    )
}

/// The first pause between two connects of [`connect_waiting`]; each
/// next one is twice as long, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause between two connects: how late at most `send` sees a
/// receiver that started listening.
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Connects to `endpoint`, trying again while nobody listens there (a
/// receiver may be starting) until `options.timeout` has passed; other
/// errors (a bad endpoint, a receiver that refuses this user, a handshake
/// that fails) end it at once.
fn connect_waiting(endpoint: &str, options: &Options) -> Result<shmsg::Channel, Failure> {
    // A pipe's descriptors are taken by the first try: there is no second.
    let retry = !matches!(Endpoint::parse(endpoint), Ok(Endpoint::Pipe { .. }));
    let deadline = shmsg::Deadline::after(options.timeout);
    let left = || deadline.remaining().unwrap_or(options.timeout);
    let mut pause = FIRST_PAUSE;
    loop {
        // Each try may take what is left of the timeout, and at least a
        // moment, so that a receiver found at the last moment can answer.
        let attempt = Options {
            timeout: left().max(Duration::from_millis(100)),
            ..options.clone()
        };
        let error = match shmsg::connect_with(endpoint, &attempt) {
            Ok(channel) => return Ok(channel),
            Err(error) => error,
        };
        let timed_out = matches!(
            &error,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut
        );
        if !retry || !(nobody_listens(&error) || timed_out) {
            return Err(hint(error, "send", endpoint));
        }
        if timed_out || left().is_zero() {
            return Err(Failure::Hint {
                error: Error::Timeout,
                hint: format!(
                    "no receiver listened at {endpoint} within {:?} (last try: {error}); \
                     start `shmsg recv {endpoint}` first, or raise --timeout",
                    options.timeout
                ),
            });
        }
        std::thread::sleep(pause.min(left()));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// `shmsg send ENDPOINT`: connects and sends every message read from stdin.
pub fn send(args: SendArgs) -> Result<(), Failure> {
    refuse_stdio_pipe("send", &args.endpoint)?;
    let options = Options {
        timeout: args.timeout,
        allow: args.allow.policy(),
        ..Options::default()
    };
    let mut channel = connect_waiting(&args.endpoint, &options)?;
    let mut input = std::io::stdin().lock();
    let mut message = Vec::new();
    let mut sent = 0u64;
    // The receiver's limit (the sending half's maximum).
    let max = Sender::max_message(&channel);
    loop {
        match next_message(&mut input, args.length_prefixed, max, &mut message) {
            Ok(Some(())) => {}
            Ok(None) => break,
            Err(failure) => {
                // The messages before the bad one go out whole.
                channel.flush()?;
                return Err(match failure {
                    Failure::Shmsg(Error::MessageTooLarge { len, max }) if args.length_prefixed => {
                        Failure::Hint {
                            error: Error::MessageTooLarge { len, max },
                            hint: format!(
                                "frame {} of stdin says it is {len} bytes long, more than the \
                                 receiver accepts, so none of it was read or sent ({} before \
                                 it went out); if that length is right, {}; if not, stdin is \
                                 not --length-prefixed frames (a little-endian u32 length, \
                                 then the message)",
                                sent + 1,
                                messages(sent),
                                max_message_advice(len, &args.endpoint)
                            ),
                        }
                    }
                    Failure::Shmsg(Error::MessageTooLarge { len, max }) => Failure::Hint {
                        error: Error::MessageTooLarge { len, max },
                        hint: too_large_hint(sent + 1, len, &args.endpoint),
                    },
                    other => other,
                });
            }
        }
        match channel.send(&message) {
            Ok(()) => sent += 1,
            Err(Error::MessageTooLarge { len, max }) => {
                return Err(Failure::Hint {
                    error: Error::MessageTooLarge { len, max },
                    hint: too_large_hint(sent + 1, len, &args.endpoint),
                });
            }
            Err(Error::Disconnected) => {
                let hint = match channel.unreleased() {
                    Some(left) => format!(
                        "the receiver left; it received {} of the {} sent \
                         (the rest were in the ring when it left)",
                        messages(sent.saturating_sub(left)),
                        messages(sent)
                    ),
                    None => format!(
                        "the receiver left after {} were sent (how many it \
                         read is not known over this kind of link)",
                        messages(sent)
                    ),
                };
                return Err(Failure::Hint {
                    error: Error::Disconnected,
                    hint,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    channel.flush()?;
    Ok(())
}

/// "1 message", "2 messages".
fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_maximum_is_not_read_to_its_end() {
        let mut input = &b"abc\nabcdefgh\n"[..];
        let mut buf = Vec::new();
        assert!(matches!(
            next_message(&mut input, false, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abc");
        match next_message(&mut input, false, 3, &mut buf) {
            Err(Failure::Shmsg(Error::MessageTooLarge { len: 8, max: 3 })) => {}
            _ => panic!("an 8-byte line passed a 3-byte maximum"),
        }
        // Only the maximum and one byte were kept; the rest was counted.
        assert!(buf.len() <= 4, "{buf:?}");
        assert!(input.is_empty());
        // A line of exactly the maximum, without a newline at the end, passes.
        let mut input = &b"xyz"[..];
        assert!(matches!(
            next_message(&mut input, false, 3, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"xyz");
    }

    #[test]
    fn messages_from_lines_and_frames() {
        let mut lines = &b"one\n\ntwo\nthree"[..];
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while next_message(&mut lines, false, usize::MAX, &mut buf)
            .ok()
            .flatten()
            .is_some()
        {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, ["one", "", "two", "three"]);
        let mut frames = Vec::new();
        for m in [&b"ab"[..], b"", b"\n\0x"] {
            frames.extend_from_slice(&(m.len() as u32).to_le_bytes());
            frames.extend_from_slice(m);
        }
        let mut input = &frames[..];
        let mut got = Vec::new();
        while next_message(&mut input, true, usize::MAX, &mut buf)
            .ok()
            .flatten()
            .is_some()
        {
            got.push(buf.clone());
        }
        assert_eq!(got, [b"ab".to_vec(), vec![], b"\n\0x".to_vec()]);
        let mut cut = &frames[..frames.len() - 1];
        let mut results = Vec::new();
        loop {
            match next_message(&mut cut, true, usize::MAX, &mut buf) {
                Ok(Some(())) => results.push(true),
                Ok(None) => break,
                Err(_) => {
                    results.push(false);
                    break;
                }
            }
        }
        assert_eq!(results, [true, true, false]);
    }

    /// A frame over the maximum is refused from its length alone: its
    /// bytes stay unread.
    #[test]
    fn a_frame_over_the_maximum_is_refused_before_it_is_read() {
        let mut input = &[&0xFFFF_FFF0u32.to_le_bytes()[..], b"rest"].concat()[..];
        let mut buf = Vec::new();
        match next_message(&mut input, true, 1024, &mut buf) {
            Err(Failure::Shmsg(Error::MessageTooLarge { len, max })) => {
                assert_eq!((len, max), (0xFFFF_FFF0, 1024));
            }
            _ => panic!("a 4 GiB frame was not refused"),
        }
        assert_eq!(input, b"rest");
        assert!(buf.is_empty());
        let mut at_max = &[&4u32.to_le_bytes()[..], b"abcd"].concat()[..];
        assert!(matches!(
            next_message(&mut at_max, true, 4, &mut buf),
            Ok(Some(()))
        ));
        assert_eq!(buf, b"abcd");
    }

    #[test]
    fn too_large_hints_name_a_size_recv_takes() {
        let hint = too_large_hint(3, 70_000, "unix:@x");
        assert!(hint.contains("message 3") && hint.contains("--max-message 69K unix:@x"));
        assert!(parse_size("69K").unwrap() >= 70_000);
        let hint = too_large_hint(1, 5_000_000, "shm:x");
        assert!(hint.contains("--max-message 5M"), "{hint}");
        // 17 MiB is past the largest size recv accepts: no flag can help.
        let hint = too_large_hint(1, 17 << 20, "shm:x");
        assert!(
            hint.contains("split") && !hint.contains("--max-message"),
            "{hint}"
        );
    }
}
