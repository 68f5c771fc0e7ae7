//! A message channel over a byte stream (a Unix stream socket, TCP, or any
//! other bidirectional stream descriptor), framed by [`super::frame`].
//!
//! Both sides send a [`Hello`] first. A send is one `writev` of the frame
//! header and the payload (retried only for a partial write); a batch is one
//! `writev` for many frames. Receives read into the decoder's buffer, which
//! takes as many small frames per `read` as the kernel has.
//!
//! Waiting is the kernel's: a blocking receive blocks in `read`, a receive
//! with a timeout in `poll`. A peer that closes the stream is
//! [`Error::Disconnected`] (after every complete frame it sent has been
//! received); one that closes in the middle of a frame is
//! [`Error::TruncatedFrame`].

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::frame::{self, Decoder, HELLO_LEN, Hello};
use crate::error::{Error, Result};

/// Frames per `writev` in a batch (two slices each, within `IOV_MAX`).
const BATCH_FRAMES: usize = 512;

/// A framed message channel over a byte stream.
#[derive(Debug)]
pub struct StreamChannel<S> {
    stream: S,
    decoder: Decoder,
    /// The peer's maximum message size, from its hello.
    send_limit: usize,
}

/// Maps the errors that mean "the peer is gone" to [`Error::Disconnected`].
fn stream_error(context: &str, error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => Error::Disconnected,
        _ => Error::io(context, error),
    }
}

impl<S: Read + Write + AsFd> StreamChannel<S> {
    /// Exchanges hellos over `stream` and returns the channel. We accept
    /// messages of up to `max_message` bytes and send at most what the peer
    /// accepts. Waits at most `timeout` for the peer's hello.
    pub fn handshake(stream: S, max_message: usize, timeout: Duration) -> Result<Self> {
        let decoder = Decoder::new(max_message)?;
        let mut channel = StreamChannel {
            stream,
            decoder,
            send_limit: 0,
        };
        channel
            .stream
            .write_all(&Hello::new(max_message).encode())
            .map_err(|e| stream_error("cannot send the hello", e))?;
        let deadline = Instant::now().checked_add(timeout);
        let mut hello = [0u8; HELLO_LEN];
        let mut got = 0;
        while got < HELLO_LEN {
            if !channel.wait_readable(deadline)? {
                return Err(Error::Timeout);
            }
            match channel.stream.read(&mut hello[got..]) {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stream_error("cannot receive the hello", e)),
            }
        }
        let peer = Hello::decode(&hello)?;
        channel.send_limit = Hello::send_limit(&peer);
        Ok(channel)
    }

    /// The largest message the peer accepts.
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Sends one message: one `writev` of header and payload.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        let header = frame::header(message.len(), self.send_limit)?;
        let mut slices = [IoSlice::new(&header), IoSlice::new(message)];
        self.write_all_vectored(&mut slices)
    }

    /// Sends `messages` in order, as few `writev` calls as the kernel allows
    /// (one per 512 messages). Nothing is sent if any message is too large.
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<()> {
        let mut headers = Vec::with_capacity(messages.len().min(BATCH_FRAMES));
        for chunk in messages.chunks(BATCH_FRAMES) {
            headers.clear();
            for message in chunk {
                headers.push(frame::header(message.as_ref().len(), self.send_limit)?);
            }
            let mut slices: Vec<IoSlice<'_>> = headers
                .iter()
                .zip(chunk)
                .flat_map(|(header, message)| {
                    [IoSlice::new(header), IoSlice::new(message.as_ref())]
                })
                .collect();
            self.write_all_vectored(&mut slices)?;
        }
        Ok(())
    }

    fn write_all_vectored(&mut self, mut slices: &mut [IoSlice<'_>]) -> Result<()> {
        while !slices.is_empty() {
            match self.stream.write_vectored(slices) {
                Ok(0) => return Err(Error::Disconnected),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stream_error("cannot send", e)),
            }
        }
        Ok(())
    }

    /// Receives the next message into `buf` (replacing its contents), blocking
    /// until one arrives; returns its length.
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, None, false)
    }

    /// As [`StreamChannel::recv`], waiting at most `timeout`.
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_until(buf, Instant::now().checked_add(timeout), false)
    }

    /// Receives the next message if one has arrived; [`Error::Empty`] if not.
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, None, true)
    }

    fn recv_until(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
        once: bool,
    ) -> Result<usize> {
        loop {
            if let Some(payload) = self.decoder.next_frame()? {
                buf.clear();
                buf.extend_from_slice(payload);
                return Ok(payload.len());
            }
            let ready = if once {
                self.poll_readable(Some(Duration::ZERO))?
            } else if deadline.is_some() {
                self.wait_readable(deadline)?
            } else {
                true
            };
            if !ready {
                return Err(if once { Error::Empty } else { Error::Timeout });
            }
            let space = self.decoder.read_space();
            match self.stream.read(space) {
                Ok(0) => {
                    self.decoder.finish()?;
                    return Err(Error::Disconnected);
                }
                Ok(n) => self.decoder.commit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(match stream_error("cannot receive", e) {
                        // A reset (a Unix peer that closed with our bytes
                        // unread, a TCP RST) inside a frame is a truncation.
                        Error::Disconnected => {
                            self.decoder.finish().err().unwrap_or(Error::Disconnected)
                        }
                        other => other,
                    });
                }
            }
        }
    }

    /// Waits until the stream is readable or `deadline` passes (`None`:
    /// forever); returns whether it is readable.
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool> {
        match deadline {
            None => self.poll_readable(None),
            Some(deadline) => {
                self.poll_readable(Some(deadline.saturating_duration_since(Instant::now())))
            }
        }
    }

    fn poll_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        let timespec = timeout.map(|t| Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        loop {
            let mut fds = [PollFd::new(&self.stream, PollFlags::IN)];
            match rustix::event::poll(&mut fds, timespec.as_ref()) {
                // Readable, or closed or failed: the read that follows says which.
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::io("cannot poll the stream", e)),
            }
        }
    }
}
