//! Properties of the framing codec (`shmsg::msg::frame`): whatever chunks
//! the kernel hands over, the decoder returns exactly the frames sent, in
//! order; nothing a peer sends makes it panic or hold more than the maximum
//! message size plus a constant; a stream cut inside a frame is reported.

use proptest::prelude::*;
use shmsg::Error;
use shmsg::msg::frame::{Decoder, HEADER_LEN, READ_CHUNK, encode};

/// The most a decoder may hold for a channel of `max` bytes.
fn bound(max: usize) -> usize {
    max + HEADER_LEN + READ_CHUNK
}

/// Feeds `wire` in chunks of the given sizes (cycled), taking every frame as
/// soon as it is complete, as a transport does after each read.
fn decode(
    max: usize,
    wire: &[u8],
    chunks: &[usize],
) -> Result<(Vec<Vec<u8>>, Decoder), TestCaseError> {
    let mut decoder = Decoder::new(max).unwrap();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < wire.len() {
        let space = decoder.read_space();
        prop_assert!(!space.is_empty());
        let n = (*sizes.next().unwrap())
            .min(space.len())
            .min(wire.len() - at);
        space[..n].copy_from_slice(&wire[at..at + n]);
        decoder.commit(n);
        at += n;
        prop_assert!(
            decoder.capacity() <= bound(max),
            "holds {} bytes",
            decoder.capacity()
        );
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    prop_assert!(frame.len() <= max);
                    frames.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(error) => return Err(TestCaseError::fail(format!("{error}"))),
            }
        }
    }
    Ok((frames, decoder))
}

/// A maximum size and a sequence of at least `min_count` messages within it.
fn messages_at_least(min_count: usize) -> impl Strategy<Value = (usize, Vec<Vec<u8>>)> {
    (0usize..3000).prop_flat_map(move |max| {
        (
            Just(max),
            proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..=max.min(3000)),
                min_count..40,
            ),
        )
    })
}

fn messages() -> impl Strategy<Value = (usize, Vec<Vec<u8>>)> {
    messages_at_least(0)
}

proptest! {
    #[test]
    fn any_chunking_decodes_the_sent_sequence(
        (max, messages) in messages(),
        chunks in proptest::collection::vec(1usize..5000, 1..20),
    ) {
        let mut wire = Vec::new();
        for m in &messages {
            encode(m, max, &mut wire).unwrap();
        }
        let (frames, decoder) = decode(max, &wire, &chunks)?;
        prop_assert_eq!(frames, messages);
        prop_assert!(decoder.finish().is_ok());
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_reported(
        // Generated non-empty rather than filtered: no rejects at any count.
        (max, messages) in messages_at_least(1),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        let mut boundaries = vec![0];
        for m in &messages {
            encode(m, max, &mut wire).unwrap();
            boundaries.push(wire.len());
        }
        let cut = cut.index(wire.len() + 1);
        let (frames, decoder) = decode(max, &wire[..cut], &[READ_CHUNK])?;
        let complete = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        prop_assert_eq!(&frames[..], &messages[..complete]);
        if boundaries.contains(&cut) {
            prop_assert!(decoder.finish().is_ok());
        } else {
            prop_assert!(matches!(decoder.finish(), Err(Error::TruncatedFrame { .. })), "cut at {}", cut);
        }
    }

    #[test]
    fn garbage_never_panics_or_grows_without_bound(
        max in 0usize..100_000,
        bytes in proptest::collection::vec(any::<u8>(), 0..20_000),
        chunks in proptest::collection::vec(1usize..3000, 1..10),
    ) {
        let mut decoder = Decoder::new(max).unwrap();
        let mut at = 0;
        let mut sizes = chunks.iter().cycle();
        'feed: while at < bytes.len() {
            let space = decoder.read_space();
            let n = (*sizes.next().unwrap()).min(space.len()).min(bytes.len() - at);
            space[..n].copy_from_slice(&bytes[at..at + n]);
            decoder.commit(n);
            at += n;
            prop_assert!(decoder.capacity() <= bound(max));
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => prop_assert!(frame.len() <= max),
                    Ok(None) => break,
                    Err(Error::MessageTooLarge { len, max: m }) => {
                        prop_assert!(len > max && m == max);
                        break 'feed;
                    }
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
        }
        let _ = decoder.finish();
    }
}
