//! How the two processes of a `shmsg peer bench` pair are joined, behind one
//! small interface ([`Link`]) that the roles in `bench.rs` are written
//! against once:
//!
//! * [`LinkKind::Channel`]: `shmsg::listen` / `shmsg::connect` and the
//!   common `Sender` / `Receiver` traits, every transport (the copying
//!   API: the sender fills its own buffer and `send` copies it in; `recv`
//!   copies out into the receiver's buffer, which is then checked);
//! * [`LinkKind::InPlace`] / [`LinkKind::InPlaceMpsc`]: the shared-memory
//!   rings used in place: `send_with` fills the message inside the ring,
//!   `recv_with` checks it there. The rings are the ones a `shm:` (or
//!   `mpsc:`) endpoint makes, with the same geometry, handed over a Unix
//!   socket as sealed memfds; only the API differs;
//! * [`LinkKind::RefRing`]: the reference ring
//!   (`shmsg_bench_support::ring`), two of them in one memfd that `compare`
//!   makes and hands both processes as their standard input.
//!
//! Every link writes every byte of each message and reads every byte back
//! with the same `fill` / `check` helpers, so the work per message is the
//! same; only where the bytes lie differs.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shmsg::channel::{Receiver, Sender};
use shmsg::shm::layout::RingKind;
use shmsg::shm::{Geometry, Region, mpmc, spsc};
use shmsg::{Channel, Error, Options};
use shmsg_bench_support::ring::{RingLayout, RingReceiver, RingSender};

use crate::failure::Failure;
use crate::types::STREAM_BATCH_BYTES;

/// How a pair is joined (`shmsg peer bench --link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkKind {
    /// `shmsg::listen` / `shmsg::connect` on `--endpoint`, copying API.
    Channel,
    /// Two single-producer rings, used in place; `--endpoint` is the path
    /// of the Unix socket that hands them over.
    InPlace,
    /// A multi-producer ring towards the listener (one producer) and a
    /// single-producer ring back, as `mpsc:` makes them, used in place.
    InPlaceMpsc,
    /// Two reference rings in the memfd on standard input.
    RefRing,
}

/// The geometry of the rings a `shm:` or `mpsc:` endpoint makes for
/// messages of up to `max_message` bytes with the default capacity (the
/// endpoint's own rule: the smallest power of two that holds two of the
/// largest records, at least 1 MiB).
pub fn ring_geometry(max_message: usize) -> Result<Geometry, Error> {
    Geometry::for_max_message(max_message, shmsg::options::DEFAULT_CAPACITY)
}

/// The layout of each of the two reference rings for messages of up to
/// `max_message` bytes: as many bytes of slots as the shm ring has.
pub fn ref_ring_layout(max_message: usize) -> Result<RingLayout, Error> {
    Ok(RingLayout::new(
        max_message,
        ring_geometry(max_message)?.capacity(),
    ))
}

/// The most messages one `send_batch` of a link sends
/// (`shmsg peer bench --batch`).
pub const MAX_BATCH: usize = 64;

/// One side of a pair, whatever joins it.
pub(crate) trait Link {
    /// Sends one message of `size` bytes, written by `fill`.
    fn send(&mut self, size: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), Failure>;
    /// Sends `count` (1 ..= [`MAX_BATCH`]) messages of `size` bytes in one
    /// `send_batch` call, message `i` written by `fill(i, ..)` first. Only
    /// the copying API has `send_batch`; the other links refuse.
    fn send_batch(
        &mut self,
        size: usize,
        count: usize,
        fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<(), Failure> {
        let _ = (size, count, fill);
        Err(Failure::Usage(
            "this link has no send_batch (--batch is for --link channel)".into(),
        ))
    }
    /// Receives the next message and hands it to `read`.
    fn recv<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, Failure>;
    /// Receives the next message, and unless it is empty (the end: `None`),
    /// checks it with `check` and sends it back. `Some(Err(len))` if the
    /// check failed (nothing sent).
    fn echo(
        &mut self,
        check: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Result<(), usize>>, Failure>;
    /// Sends the empty message that ends a run, and flushes.
    fn finish(&mut self) -> Result<(), Failure>;
}

/// The copying API over any transport.
pub(crate) struct ChannelLink {
    channel: Channel,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl ChannelLink {
    pub(crate) fn open(endpoint: &str, listen: bool, size: usize) -> Result<Self, Failure> {
        let options = Options {
            max_message: Some(size.max(8)),
            capacity: None,
            timeout: Duration::from_secs(30),
            ..Options::default()
        };
        let channel = if listen {
            let mut listener = shmsg::listen_with(endpoint, &options)?;
            println!("ready {}", listener.endpoint());
            listener.accept_timeout(Duration::from_secs(30))?
        } else {
            shmsg::connect_with(endpoint, &options)?
        };
        Ok(ChannelLink {
            channel,
            out: vec![0; size],
            buf: Vec::with_capacity(size),
        })
    }
}

impl Link for ChannelLink {
    fn send(&mut self, size: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), Failure> {
        if self.out.len() < size {
            self.out.resize(size, 0);
        }
        let message = &mut self.out[..size];
        fill(message);
        Ok(self.channel.send(message)?)
    }

    fn send_batch(
        &mut self,
        size: usize,
        count: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<(), Failure> {
        if !(1..=MAX_BATCH).contains(&count)
            || size == 0
            || size.saturating_mul(count) > STREAM_BATCH_BYTES
        {
            return Err(Failure::Usage(format!(
                "a batch of {count} messages of {size} bytes (1 to {MAX_BATCH} messages of at \
                 least 1 byte, {STREAM_BATCH_BYTES} bytes in all at most)"
            )));
        }
        let bytes = size * count;
        if self.out.len() < bytes {
            self.out.resize(bytes, 0);
        }
        // Every message written whole into its own part of `out`, then the
        // lot handed to one call, no allocation per batch.
        let mut messages: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        for (i, (message, slot)) in self.out[..bytes]
            .chunks_exact_mut(size)
            .zip(&mut messages)
            .enumerate()
        {
            fill(i, message);
            *slot = message;
        }
        Ok(self.channel.send_batch(&messages[..count])?)
    }

    fn recv<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, Failure> {
        self.channel.recv(&mut self.buf)?;
        Ok(read(&self.buf))
    }

    fn echo(
        &mut self,
        check: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Result<(), usize>>, Failure> {
        let len = self.channel.recv(&mut self.buf)?;
        if len == 0 {
            return Ok(None);
        }
        if !check(&self.buf) {
            return Ok(Some(Err(len)));
        }
        self.channel.send(&self.buf)?;
        Ok(Some(Ok(())))
    }

    fn finish(&mut self) -> Result<(), Failure> {
        self.channel.send(&[])?;
        Ok(self.channel.flush()?)
    }
}

/// The sending ring of an in-place link.
enum RingTx {
    Spsc(spsc::Producer),
    Mpsc(mpmc::Producer),
}

/// The receiving ring of an in-place link.
enum RingRx {
    Spsc(spsc::Consumer),
    Mpsc(mpmc::Consumer),
}

impl RingTx {
    #[inline]
    fn send_with(
        &mut self,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        match self {
            RingTx::Spsc(p) => p.send_with(max_len, fill),
            RingTx::Mpsc(p) => p.send_with(max_len, fill),
        }
    }
}

impl RingRx {
    #[inline]
    fn recv_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, Error> {
        match self {
            RingRx::Spsc(c) => c.recv_with(read),
            RingRx::Mpsc(c) => c.recv_with(read),
        }
    }
}

/// The rings used in place: `send_with` / `recv_with`.
pub(crate) struct InPlaceLink {
    tx: RingTx,
    rx: RingRx,
    /// The regions, kept mapped while the handles live.
    _regions: [Arc<Region>; 2],
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

impl InPlaceLink {
    /// The listening side makes the two rings (towards it: single- or
    /// multi-producer; back: single-producer), listens on the Unix socket
    /// `path`, prints `ready PATH`, and hands the rings to the one peer that
    /// connects; the other side connects and receives them.
    pub(crate) fn open(
        path: &Path,
        listen: bool,
        size: usize,
        mpsc: bool,
    ) -> Result<Self, Failure> {
        let geometry = ring_geometry(size.max(8))?;
        let kind = if mpsc { RingKind::Mpsc } else { RingKind::Spsc };
        if listen {
            let inbound = Arc::new(Region::anonymous_kind(geometry, kind)?);
            let outbound = Arc::new(Region::anonymous(geometry)?);
            let listener = UnixListener::bind(path)
                .map_err(io(format!("cannot listen on {}", path.display())))?;
            println!("ready {}", path.display());
            let (socket, _) = listener
                .accept()
                .map_err(io(format!("cannot accept on {}", path.display())))?;
            let _ = std::fs::remove_file(path);
            inbound.send_over(&socket)?;
            outbound.send_over(&socket)?;
            let rx = if mpsc {
                RingRx::Mpsc(mpmc::Consumer::attach(&inbound)?)
            } else {
                RingRx::Spsc(spsc::Consumer::attach(&inbound)?)
            };
            let tx = RingTx::Spsc(spsc::Producer::attach(&outbound)?);
            Ok(InPlaceLink {
                tx,
                rx,
                _regions: [inbound, outbound],
            })
        } else {
            let socket = UnixStream::connect(path)
                .map_err(io(format!("cannot connect to {}", path.display())))?;
            let expect = |kind| {
                Region::options()
                    .geometry(geometry)
                    .kind(kind)
                    .receive_from(&socket)
            };
            let outbound = Arc::new(expect(kind)?);
            let inbound = Arc::new(expect(RingKind::Spsc)?);
            let tx = if mpsc {
                RingTx::Mpsc(mpmc::Producer::attach(&outbound)?)
            } else {
                RingTx::Spsc(spsc::Producer::attach(&outbound)?)
            };
            let rx = RingRx::Spsc(spsc::Consumer::attach(&inbound)?);
            Ok(InPlaceLink {
                tx,
                rx,
                _regions: [outbound, inbound],
            })
        }
    }
}

impl Link for InPlaceLink {
    fn send(&mut self, size: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), Failure> {
        self.tx.send_with(size, |buf| {
            fill(&mut buf[..size]);
            size
        })?;
        Ok(())
    }

    fn recv<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, Failure> {
        Ok(self.rx.recv_with(read)?)
    }

    fn echo(
        &mut self,
        check: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Result<(), usize>>, Failure> {
        let tx = &mut self.tx;
        // Checked where it lies, then copied from ring to ring: the one
        // copy an echo needs.
        let echoed = self.rx.recv_with(|message| {
            if message.is_empty() {
                return Ok(None);
            }
            if !check(message) {
                return Ok(Some(Err(message.len())));
            }
            tx.send_with(message.len(), |out| {
                out[..message.len()].copy_from_slice(message);
                message.len()
            })
            .map(|_| Some(Ok(())))
        })?;
        Ok(echoed?)
    }

    fn finish(&mut self) -> Result<(), Failure> {
        self.tx.send_with(0, |_| 0)?;
        Ok(())
    }
}

/// A shared mapping of a whole file (the memfd of the reference rings),
/// unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    fn of(fd: BorrowedFd<'_>) -> Result<Mapping, Failure> {
        let len = rustix::fs::fstat(fd)
            .map_err(|e| Failure::Usage(format!("--link ref-ring: stdin is not a memfd: {e}")))?
            .st_size as usize;
        if len == 0 {
            return Err(Failure::Usage(
                "--link ref-ring: the memfd on stdin is empty".into(),
            ));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of a file that is
        // `len` bytes long; no existing memory is affected, and the result
        // is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Failure::Shmsg(Error::Io {
                context: "cannot map the reference rings".into(),
                source: std::io::Error::last_os_error(),
            }));
        }
        Ok(Mapping {
            base: base.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are the mapping made in `Mapping::of`,
        // and the ring handles that point into it are dropped before it
        // (fields of `RefRingLink` drop in declaration order).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// The reference rings: one towards the listening side at offset 0, one
/// back right after it.
pub(crate) struct RefRingLink {
    tx: RingSender,
    rx: RingReceiver,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Dropped last: the handles point into it.
    _mapping: Mapping,
}

impl RefRingLink {
    /// Maps the memfd `fd` (two rings for `size`-byte messages, zeroed by
    /// its creator) and takes the listening side's ends or the other's.
    pub(crate) fn open(fd: impl AsFd, listen: bool, size: usize) -> Result<Self, Failure> {
        let layout = ref_ring_layout(size)?;
        let mapping = Mapping::of(fd.as_fd())?;
        if mapping.len < 2 * layout.bytes() {
            return Err(Failure::Usage(format!(
                "--link ref-ring: the memfd holds {} bytes, two rings need {}",
                mapping.len,
                2 * layout.bytes()
            )));
        }
        let towards = mapping.base;
        // SAFETY: `layout.bytes() <= mapping.len / 2`, so the second ring
        // starts inside the mapping.
        let back = unsafe { mapping.base.add(layout.bytes()) };
        let (tx_at, rx_at) = if listen {
            (back, towards)
        } else {
            (towards, back)
        };
        // SAFETY: both rings lie inside the mapping (checked above), which
        // is page-aligned (mmap) at page-multiple offsets (`bytes()` is a
        // multiple of 4096), zeroed by its creator, and outlives the
        // handles; of each ring, this process is the only sender or the
        // only receiver, and the peer the other.
        let (tx, rx) = unsafe {
            (
                RingSender::new(tx_at, layout),
                RingReceiver::new(rx_at, layout),
            )
        };
        let mut link = RefRingLink {
            tx,
            rx,
            out: vec![0; size],
            buf: vec![0; size.max(1)],
            _mapping: mapping,
        };
        // A hello each way before anything is timed, as a connection has:
        // a side that started first would otherwise time its wait for the
        // other's start.
        if listen {
            link.rx.recv(&mut link.buf).map_err(|c| corrupt(c.len))?;
            link.tx.send(b"!");
        } else {
            link.tx.send(b"!");
            link.rx.recv(&mut link.buf).map_err(|c| corrupt(c.len))?;
        }
        Ok(link)
    }
}

fn corrupt(len: u64) -> Failure {
    Failure::Verify(format!(
        "the reference ring gave a message of {len} bytes, over its maximum"
    ))
}

impl Link for RefRingLink {
    fn send(&mut self, size: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), Failure> {
        let message = &mut self.out[..size];
        fill(message);
        self.tx.send(message);
        Ok(())
    }

    fn recv<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, Failure> {
        let len = self.rx.recv(&mut self.buf).map_err(|c| corrupt(c.len))?;
        Ok(read(&self.buf[..len]))
    }

    fn echo(
        &mut self,
        check: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Result<(), usize>>, Failure> {
        let len = self.rx.recv(&mut self.buf).map_err(|c| corrupt(c.len))?;
        if len == 0 {
            return Ok(None);
        }
        if !check(&self.buf[..len]) {
            return Ok(Some(Err(len)));
        }
        self.tx.send(&self.buf[..len]);
        Ok(Some(Ok(())))
    }

    fn finish(&mut self) -> Result<(), Failure> {
        self.tx.send(&[]);
        Ok(())
    }
}

/// Makes the memfd of a pair's two reference rings for `size`-byte
/// messages (zero-filled, as the rings start), for `compare` to hand both
/// processes as their standard input.
pub fn ref_ring_memfd(size: usize) -> Result<std::os::fd::OwnedFd, String> {
    let layout = ref_ring_layout(size).map_err(|e| e.to_string())?;
    let fd = rustix::fs::memfd_create("shmsg-ref-ring", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("cannot make the reference rings' memfd: {e}"))?;
    rustix::fs::ftruncate(&fd, 2 * layout.bytes() as u64)
        .map_err(|e| format!("cannot size the reference rings' memfd: {e}"))?;
    Ok(fd)
}
