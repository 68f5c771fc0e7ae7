//! Models of a stream sender shared by threads: frames from two writers
//! never interleave in the byte stream, and each writer's messages keep
//! their order.
//!
//! The code under test is the production code: `shmsg::channel::SharedSender`
//! around `shmsg::msg::stream::StreamSender`, whose writes go through the
//! `Link` seam into a model link, and `shmsg::msg::frame::Decoder` on the
//! reading side. The model link is a tiny byte queue (5 bytes, smaller than
//! one frame) behind the checker's mutex, so that every frame is written in
//! several partial writes, as a kernel may do with a full socket, and the
//! writers yield between them.
//!
//! Seeded bug: each writer with its own `StreamSender` on the shared link
//! (the lock around a whole frame removed, as two threads writing one socket
//! without one): the reader decodes a frame whose bytes come from two
//! messages, and the model fails.

use std::io::{self, IoSlice};
use std::time::Duration;

use shmsg::Deadline;
use shmsg::channel::{Lock, Sender, SharedSender};
use shmsg::msg::frame::Decoder;
use shmsg::msg::stream::{Link, StreamSender};

/// Bytes the model link holds: less than a frame (4-byte header + payload).
const LINK_CAPACITY: usize = 5;
const MAX: usize = 16;

/// Message `i` of writer `w`: 3 bytes that name both.
fn message(w: u8, i: u8) -> Vec<u8> {
    vec![b'a' + w, b'0' + i, b'a' + w]
}

macro_rules! model {
    ($name:ident, $sync:path, $thread:path) => {
        mod $name {
            use super::*;
            use $sync as sync;
            use $thread as thread;

            /// The shared byte queue between the writers and the reader.
            #[derive(Clone)]
            pub struct ModelLink(pub sync::Arc<sync::Mutex<Vec<u8>>>);

            impl Link for ModelLink {
                fn write_nonblocking(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
                    let mut queue = self.0.lock().unwrap();
                    let room = LINK_CAPACITY - queue.len();
                    if room == 0 {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    let mut taken = 0;
                    for byte in slices.iter().flat_map(|s| s.iter()).take(room) {
                        queue.push(*byte);
                        taken += 1;
                    }
                    Ok(taken)
                }

                fn wait_writable(&mut self, _deadline: Deadline) -> shmsg::Result<bool> {
                    thread::yield_now();
                    Ok(true)
                }
            }

            /// The checker's mutex as the shared sender's lock.
            pub struct ModelLock<T>(sync::Mutex<T>);

            impl<T> Lock<T> for ModelLock<T> {
                fn new(value: T) -> Self {
                    ModelLock(sync::Mutex::new(value))
                }
                fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
                    f(&mut self.0.lock().unwrap())
                }
            }

            pub fn sender(link: &ModelLink) -> StreamSender<ModelLink> {
                StreamSender::new(link.clone(), MAX, Duration::ZERO)
            }

            /// Reads frames until `count` messages have arrived.
            pub fn read(link: ModelLink, count: usize) -> Vec<Vec<u8>> {
                let mut decoder = Decoder::new(MAX).unwrap();
                let mut received = Vec::new();
                while received.len() < count {
                    let bytes: Vec<u8> = std::mem::take(&mut *link.0.lock().unwrap());
                    if bytes.is_empty() {
                        thread::yield_now();
                        continue;
                    }
                    decoder.push(&bytes);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => received.push(frame.to_vec()),
                            Ok(None) => break,
                            Err(e) => panic!("torn stream, frames interleaved: {e}"),
                        }
                    }
                }
                received
            }

            /// Two writers (two messages and one), each through its own
            /// handle: clones of one shared sender, or (`seeded`) separate
            /// senders on the shared link.
            pub fn two_writers(seeded: bool) {
                let link = ModelLink(sync::Arc::new(sync::Mutex::new(Vec::new())));
                let shared = SharedSender::<_, ModelLock<_>>::new(sender(&link));
                let mut handles: Vec<Box<dyn Sender + Send>> = Vec::new();
                for _ in 0..2 {
                    if seeded {
                        handles.push(Box::new(sender(&link)));
                    } else {
                        handles.push(Box::new(shared.clone()));
                    }
                }
                drop(shared);
                let writers: Vec<_> = handles
                    .into_iter()
                    .enumerate()
                    .map(|(w, mut tx)| {
                        thread::spawn(move || {
                            for i in 0..2 - w as u8 {
                                tx.send(&message(w as u8, i)).unwrap();
                            }
                        })
                    })
                    .collect();
                let received = read(link, 3);
                for writer in writers {
                    writer.join().unwrap();
                }
                // Writer 0 sends two messages, writer 1 one.
                check(&received);
            }

            pub fn check(received: &[Vec<u8>]) {
                let expected_a: Vec<Vec<u8>> = vec![message(0, 0), message(0, 1)];
                let a: Vec<Vec<u8>> = received.iter().filter(|m| m[0] == b'a').cloned().collect();
                let b: Vec<Vec<u8>> = received.iter().filter(|m| m[0] != b'a').cloned().collect();
                assert_eq!(
                    a, expected_a,
                    "torn or reordered: writer 0's messages must arrive whole and in order: {received:?}"
                );
                assert_eq!(
                    b,
                    vec![message(1, 0)],
                    "torn: writer 1's message must arrive whole: {received:?}"
                );
            }
        }
    };
}

model!(with_loom, loom::sync, loom::thread);
model!(with_shuttle, shuttle::sync, shuttle::thread);

/// Loom's preemption bound for this model: `SHMSG_LOOM_FRAMES_PREEMPTIONS`,
/// default 3 (the deep tier raises it; `LOOM_MAX_PREEMPTIONS` is left to the
/// ring models, whose state spaces are smaller per preemption).
fn loom_builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        std::env::var("SHMSG_LOOM_FRAMES_PREEMPTIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3),
    );
    builder
}

fn shuttle_iterations() -> usize {
    std::env::var("SHMSG_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn loom_frames_of_two_writers_never_interleave() {
    loom_builder().check(|| with_loom::two_writers(false));
}

#[test]
fn loom_seeded_separate_senders_interleave_frames() {
    expect_failure("torn", || {
        loom_builder().check(|| with_loom::two_writers(true))
    });
}

#[test]
fn shuttle_frames_of_two_writers_never_interleave() {
    shuttle::check_random(|| with_shuttle::two_writers(false), shuttle_iterations());
    shuttle::check_pct(|| with_shuttle::two_writers(false), shuttle_iterations(), 3);
}

#[test]
fn shuttle_seeded_separate_senders_interleave_frames() {
    expect_failure("torn", || {
        shuttle::check_random(|| with_shuttle::two_writers(true), shuttle_iterations())
    });
}

/// Runs `f`, which must panic with a message containing `expected`.
fn expect_failure(expected: &str, f: impl FnOnce() + std::panic::UnwindSafe) {
    let payload = std::panic::catch_unwind(f).expect_err("the seeded bug went unnoticed");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains(expected), "failed for another reason: {text}");
}

#[test]
fn check_rejects_torn_and_reordered_frames() {
    with_loom::check(&[message(0, 0), message(1, 0), message(0, 1)]);
    expect_failure("torn", || {
        with_loom::check(&[vec![b'a', b'0', b'b'], message(1, 0), message(0, 1)])
    });
    expect_failure("reordered", || {
        with_loom::check(&[message(0, 1), message(1, 0), message(0, 0)])
    });
}
