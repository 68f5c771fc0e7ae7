//! `shmsg-peers`: shmsg's two workloads over shmsg and its peers, measured
//! in one run and printed as one table.
//!
//! Workloads (the same code drives every row through [`Link`]):
//!
//! * **ping-pong**: the driver sends an 8-byte message, the peer echoes it;
//!   every round trip is timed on its own, and each sample reports its
//!   median and 99th percentile;
//! * **stream**: the driver sends 64-byte messages (then, separately, 1 MiB
//!   messages) one way as fast as the link takes them; the peer reads them
//!   and answers with one 8-byte acknowledgement carrying the sum of all it
//!   read, which the driver checks. Time runs from the first send to the
//!   acknowledgement.
//!
//! Every payload byte is written by the sender (word `j` of a message is
//! `seed + j`) and read by the receiver (it sums the 64-bit words), so no
//! row skips the work of producing or consuming the data. Warm-up messages
//! (a tenth of each sample) run first and are not timed.
//!
//! Each row runs its two sides in two processes (this binary re-executed
//! with `--child`), except crossbeam-channel, which is a channel between
//! threads and runs in two threads. Samples are interleaved: each round
//! measures every row once, so all rows see the same machine.
//!
//! Run `cargo run --release -p shmsg-peers -- --help`.

use std::error::Error;
use std::fs::File;
use std::hint::spin_loop;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};
use shmsg::{Channel, Listener, Options, Receiver as _, Sender as _};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Ping-pong message size.
const PING: usize = 8;
/// Small streaming message size.
const SMALL: usize = 64;
/// Large streaming message size.
const LARGE: usize = 1 << 20;
/// Ring capacity per direction of the shmsg shared-memory rows: room for
/// about as many messages as the other rows' queues hold (iceoryx2's
/// subscriber buffer, crossbeam-channel's capacity).
fn ring_capacity(job: &Job) -> usize {
    if job.len >= LARGE { 8 << 20 } else { 128 << 10 }
}
/// Largest message of the shmsg message-passing rows.
const MAX_MESSAGE: usize = 2 << 20;
/// How long set-up, or a peer that stopped answering, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable that tells a child which CPU to pin itself to.
const PIN_ENV: &str = "SHMSG_PEERS_CPU";

// ---------------------------------------------------------------------------
// Payloads

/// Writes `buf` (a multiple of 8 bytes): word `j` is `seed + j`.
fn fill(buf: &mut [u8], seed: u64) {
    for (j, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&seed.wrapping_add(j as u64).to_le_bytes());
    }
}

/// [`fill`] for memory that may be uninitialised (an iceoryx2 loan).
fn fill_uninit(buf: &mut [std::mem::MaybeUninit<u8>], seed: u64) {
    let words = buf.len() / 8;
    let base = buf.as_mut_ptr().cast::<u8>();
    for j in 0..words {
        // SAFETY: `j * 8 + 8 <= buf.len()`; an unaligned write through a raw
        // pointer into `MaybeUninit` memory needs no initialised contents.
        unsafe {
            base.add(j * 8)
                .cast::<u64>()
                .write_unaligned(seed.wrapping_add(j as u64).to_le())
        };
    }
}

/// Reads every byte of `buf`: the wrapping sum of its 64-bit words.
fn sum(buf: &[u8]) -> u64 {
    buf.chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .fold(0, u64::wrapping_add)
}

/// What [`sum`] returns for a message that [`fill`] wrote.
fn expected_sum(len: usize, seed: u64) -> u64 {
    let n = (len / 8) as u64;
    seed.wrapping_mul(n)
        .wrapping_add(n.wrapping_mul(n.wrapping_sub(1)) / 2)
}

fn check_len(got: usize, want: usize) -> Res<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("received a message of {got} bytes, expected {want}").into())
    }
}

// ---------------------------------------------------------------------------
// The one interface every row implements

/// One side of a duplex link between the driver and its peer.
trait Link {
    /// Sends one message of `len` bytes (a multiple of 8), every byte
    /// written here by [`fill`] with `seed`.
    fn send(&mut self, len: usize, seed: u64) -> Res<()>;
    /// Receives one message of `len` bytes, reads every byte, and returns
    /// their [`sum`].
    fn recv(&mut self, len: usize) -> Res<u64>;
}

/// A shmsg [`Channel`] (any endpoint): `send` / `recv`, copying.
struct ChannelLink {
    channel: Channel,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Keeps a listener's endpoint (a shared-memory region) alive.
    _listener: Option<Listener>,
}

impl ChannelLink {
    fn new(channel: Channel, listener: Option<Listener>) -> ChannelLink {
        ChannelLink {
            channel,
            out: Vec::new(),
            buf: Vec::new(),
            _listener: listener,
        }
    }
}

impl Link for ChannelLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        self.out.resize(len, 0);
        fill(&mut self.out, seed);
        Ok(self.channel.send(&self.out)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let n = self.channel.recv(&mut self.buf)?;
        check_len(n, len)?;
        Ok(sum(&self.buf))
    }
}

/// A pair of shmsg rings used in place: `send_with` writes the message
/// inside the ring, `recv_with` reads it there.
struct SpscLink {
    tx: Producer,
    rx: Consumer,
    _regions: [Arc<Region>; 2],
}

impl Link for SpscLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        self.tx.send_with(len, |buf| {
            fill(&mut buf[..len], seed);
            len
        })?;
        Ok(())
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let (n, total) = self.rx.recv_with(|payload| (payload.len(), sum(payload)))?;
        check_len(n, len)?;
        Ok(total)
    }
}

/// Raw descriptors (a socketpair, or two pipes): `write` / `read` of the
/// message's bytes, no framing (both sides know the length).
struct FdLink {
    read: File,
    write: File,
    buf: Vec<u8>,
}

impl FdLink {
    fn new(read: OwnedFd, write: OwnedFd) -> FdLink {
        FdLink {
            read: File::from(read),
            write: File::from(write),
            buf: Vec::new(),
        }
    }
}

impl Link for FdLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        self.buf.resize(len, 0);
        fill(&mut self.buf, seed);
        Ok(self.write.write_all(&self.buf)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        self.buf.resize(len, 0);
        self.read.read_exact(&mut self.buf)?;
        Ok(sum(&self.buf))
    }
}

/// A crossbeam-channel message: small ones by value, large ones as a heap
/// buffer whose ownership moves (and comes back for reuse).
enum CbMessage {
    Inline([u8; SMALL]),
    Heap(Vec<u8>),
}

/// crossbeam-channel between two threads: a bounded channel each way, and
/// a return channel each way that recycles the large buffers.
struct CrossbeamLink {
    tx: crossbeam_channel::Sender<CbMessage>,
    rx: crossbeam_channel::Receiver<CbMessage>,
    /// Buffers this side received, handed back to the peer.
    give_back: crossbeam_channel::Sender<Vec<u8>>,
    /// Buffers the peer handed back, reused for sending.
    reuse: crossbeam_channel::Receiver<Vec<u8>>,
}

impl CrossbeamLink {
    fn pair(capacity: usize) -> (CrossbeamLink, CrossbeamLink) {
        let (a_tx, b_rx) = crossbeam_channel::bounded(capacity);
        let (b_tx, a_rx) = crossbeam_channel::bounded(capacity);
        let (a_give, b_reuse) = crossbeam_channel::bounded(capacity + 2);
        let (b_give, a_reuse) = crossbeam_channel::bounded(capacity + 2);
        (
            CrossbeamLink {
                tx: a_tx,
                rx: a_rx,
                give_back: a_give,
                reuse: a_reuse,
            },
            CrossbeamLink {
                tx: b_tx,
                rx: b_rx,
                give_back: b_give,
                reuse: b_reuse,
            },
        )
    }
}

impl Link for CrossbeamLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        let message = if len <= SMALL {
            let mut bytes = [0u8; SMALL];
            fill(&mut bytes[..len], seed);
            CbMessage::Inline(bytes)
        } else {
            let mut buf = self.reuse.try_recv().unwrap_or_default();
            buf.resize(len, 0);
            fill(&mut buf, seed);
            CbMessage::Heap(buf)
        };
        self.tx
            .send(message)
            .map_err(|_| "crossbeam-channel: the receiver is gone")?;
        Ok(())
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        match self.rx.recv()? {
            CbMessage::Inline(bytes) => Ok(sum(&bytes[..len])),
            CbMessage::Heap(buf) => {
                check_len(buf.len(), len)?;
                let total = sum(&buf);
                let _ = self.give_back.try_send(buf);
                Ok(total)
            }
        }
    }
}

/// ipc-channel's byte channels (`IpcBytesSender` / `IpcBytesReceiver`),
/// one each way, between two processes.
struct IpcLink {
    tx: ipc_channel::ipc::IpcBytesSender,
    rx: ipc_channel::ipc::IpcBytesReceiver,
    out: Vec<u8>,
}

/// What the ipc-channel child sends back through the one-shot server: the
/// sender the driver sends on and the receiver the driver receives on.
type IpcBoot = (
    ipc_channel::ipc::IpcBytesSender,
    ipc_channel::ipc::IpcBytesReceiver,
);

impl Link for IpcLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        self.out.resize(len, 0);
        fill(&mut self.out, seed);
        Ok(self.tx.send(&self.out)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let message = self.rx.recv()?;
        check_len(message.len(), len)?;
        Ok(sum(&message))
    }
}

/// iceoryx2 publish-subscribe over shared memory, one service each way; the
/// sender loans a sample and writes it in place, the receiver reads it in
/// place. The subscriber has no blocking receive, so it polls.
struct IceLink {
    tx: iceoryx2::port::publisher::Publisher<iceoryx2::prelude::ipc::Service, [u8], ()>,
    rx: iceoryx2::port::subscriber::Subscriber<iceoryx2::prelude::ipc::Service, [u8], ()>,
    /// Whether a sample has reached the peer's subscriber yet.
    connected: bool,
    _services: [iceoryx2::service::port_factory::publish_subscribe::PortFactory<
        iceoryx2::prelude::ipc::Service,
        [u8],
        (),
    >; 2],
    _node: iceoryx2::prelude::Node<iceoryx2::prelude::ipc::Service>,
}

impl IceLink {
    /// The driver's side (`driver`) or the peer's side of the services
    /// named after `base`.
    fn open(base: &str, job: &Job, driver: bool) -> Res<IceLink> {
        use iceoryx2::prelude::*;
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let buffer = if job.pingpong {
            2
        } else if job.len >= LARGE {
            8
        } else {
            1024
        };
        let service = |name: String| -> Res<_> {
            let name: ServiceName = name.as_str().try_into()?;
            Ok(node
                .service_builder(&name)
                .publish_subscribe::<[u8]>()
                .enable_safe_overflow(false)
                .subscriber_max_buffer_size(buffer)
                .history_size(0)
                .max_publishers(1)
                .max_subscribers(1)
                .open_or_create()?)
        };
        let forward = service(format!("{base}/forward"))?;
        let backward = service(format!("{base}/backward"))?;
        let (out, out_len, inp) = if driver {
            (&forward, job.len, &backward)
        } else {
            (&backward, PING, &forward)
        };
        let tx = out
            .publisher_builder()
            .initial_max_slice_len(out_len)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let rx = inp.subscriber_builder().buffer_size(buffer).create()?;
        Ok(IceLink {
            tx,
            rx,
            connected: false,
            _services: [forward, backward],
            _node: node,
        })
    }
}

impl Link for IceLink {
    fn send(&mut self, len: usize, seed: u64) -> Res<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut sample = self.tx.loan_slice_uninit(len)?;
            fill_uninit(sample.payload_mut(), seed);
            // SAFETY: `fill_uninit` wrote all `len` bytes.
            let sample = unsafe { sample.assume_init() };
            if sample.send()? > 0 {
                self.connected = true;
                return Ok(());
            }
            // Before the first delivery the peer's subscriber may not be
            // connected yet: nobody got the sample, so sending it again
            // duplicates nothing. After it, a lost sample is an error.
            if self.connected {
                return Err("iceoryx2 delivered a sample to no subscriber".into());
            }
            if Instant::now() > deadline {
                return Err("iceoryx2: no subscriber connected in time".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let mut spins = 0u32;
        let mut deadline = None;
        loop {
            if let Some(sample) = self.rx.receive()? {
                let payload = sample.payload();
                check_len(payload.len(), len)?;
                return Ok(sum(payload));
            }
            spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1 << 16) {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + TIMEOUT);
                if Instant::now() > deadline {
                    return Err("iceoryx2: nothing received in time".into());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Rows

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    ShmInPlace,
    ShmEndpoint,
    Unix,
    Seqpacket,
    Pipe,
    RawSocketpair,
    RawPipe,
    Crossbeam,
    IpcChannel,
    Iceoryx2,
}

const ROWS: [Row; 10] = [
    Row::ShmInPlace,
    Row::ShmEndpoint,
    Row::Unix,
    Row::Seqpacket,
    Row::Pipe,
    Row::RawSocketpair,
    Row::RawPipe,
    Row::Crossbeam,
    Row::IpcChannel,
    Row::Iceoryx2,
];

impl Row {
    fn key(self) -> &'static str {
        match self {
            Row::ShmInPlace => "shm-inplace",
            Row::ShmEndpoint => "shm",
            Row::Unix => "unix",
            Row::Seqpacket => "seqpacket",
            Row::Pipe => "pipe",
            Row::RawSocketpair => "raw-socketpair",
            Row::RawPipe => "raw-pipe",
            Row::Crossbeam => "crossbeam",
            Row::IpcChannel => "ipc-channel",
            Row::Iceoryx2 => "iceoryx2",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Row::ShmInPlace => "shmsg shm ring, send_with/recv_with",
            Row::ShmEndpoint => "shmsg shm: endpoint, send/recv",
            Row::Unix => "shmsg unix: stream socket",
            Row::Seqpacket => "shmsg seqpacket: socket",
            Row::Pipe => "shmsg pipe (msg::pipe::spawn)",
            Row::RawSocketpair => "raw Unix socketpair, write/read",
            Row::RawPipe => "raw pipes, write/read",
            Row::Crossbeam => "crossbeam-channel 0.5, bounded",
            Row::IpcChannel => "ipc-channel 0.23, bytes_channel",
            Row::Iceoryx2 => "iceoryx2 0.10, publish-subscribe",
        }
    }

    fn sides(self) -> &'static str {
        match self {
            Row::Crossbeam => "2 threads",
            _ => "2 processes",
        }
    }

    fn from_key(key: &str) -> Option<Row> {
        ROWS.into_iter().find(|row| row.key() == key)
    }
}

/// One measurement: a workload and its counts.
#[derive(Clone, Copy, Debug)]
struct Job {
    pingpong: bool,
    len: usize,
    warm: u64,
    count: u64,
}

impl Job {
    fn args(&self) -> [String; 4] {
        [
            if self.pingpong { "pingpong" } else { "stream" }.to_owned(),
            self.len.to_string(),
            self.warm.to_string(),
            self.count.to_string(),
        ]
    }

    fn parse(args: &[String]) -> Res<Job> {
        let [kind, len, warm, count] = args else {
            return Err("a child needs: pingpong|stream LEN WARM COUNT".into());
        };
        Ok(Job {
            pingpong: kind == "pingpong",
            len: len.parse()?,
            warm: warm.parse()?,
            count: count.parse()?,
        })
    }
}

/// The other side of a measurement: a child process or a thread.
enum Peer {
    Process(Child),
    Thread(JoinHandle<Res<()>>),
}

impl Peer {
    fn finish(self) -> Res<()> {
        match self {
            Peer::Process(mut child) => {
                let status = child.wait()?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("the peer process failed: {status}").into())
                }
            }
            Peer::Thread(thread) => thread.join().map_err(|_| "the peer thread panicked")?,
        }
    }

    fn abandon(self) {
        match self {
            Peer::Process(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            // A thread's link is gone with ours: its next call fails.
            Peer::Thread(thread) => drop(thread.join()),
        }
    }
}

/// A name no other run or measurement uses.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "shmsg-peers-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn child_command(row: Row, conn: &str, job: &Job) -> Res<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--child")
        .arg(row.key())
        .arg(conn)
        .args(job.args());
    Ok(command)
}

fn spawn(row: Row, conn: &str, job: &Job) -> Res<Child> {
    Ok(child_command(row, conn, job)?.spawn()?)
}

fn shm_options(job: &Job) -> Options {
    let capacity = ring_capacity(job);
    Options {
        max_message: Some(Geometry::max_message_for(capacity).min(LARGE)),
        capacity: Some(capacity),
        timeout: TIMEOUT,
        ..Options::default()
    }
}

fn message_options() -> Options {
    Options {
        max_message: Some(MAX_MESSAGE),
        capacity: None,
        timeout: TIMEOUT,
        ..Options::default()
    }
}

/// Lets a child inherit `fd` across `exec`.
fn inheritable(fd: &OwnedFd) -> Res<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    Ok(())
}

/// Sets up the driver's side of `row` for `job`, and starts the peer.
fn open(row: Row, job: &Job, pin: Option<usize>) -> Res<(Box<dyn Link>, Peer)> {
    match row {
        Row::ShmInPlace => {
            let name = unique_name();
            let capacity = ring_capacity(job);
            let geometry = Geometry::new(capacity, Geometry::max_message_for(capacity).min(LARGE))?;
            let forward = Arc::new(Region::create(&format!("{name}-f"), geometry)?);
            let backward = Arc::new(Region::create(&format!("{name}-b"), geometry)?);
            let tx = Producer::attach(&forward)?;
            let rx = Consumer::attach(&backward)?;
            let child = spawn(row, &name, job)?;
            let link = SpscLink {
                tx,
                rx,
                _regions: [forward, backward],
            };
            Ok((Box::new(link), Peer::Process(child)))
        }
        Row::ShmEndpoint | Row::Unix | Row::Seqpacket => {
            let name = unique_name();
            let (endpoint, options) = match row {
                Row::ShmEndpoint => (format!("shm:{name}"), shm_options(job)),
                Row::Unix => (format!("unix:@{name}"), message_options()),
                _ => (format!("seqpacket:@{name}"), message_options()),
            };
            let mut listener = shmsg::listen_with(&endpoint, &options)?;
            let mut child = spawn(row, &endpoint, job)?;
            match listener.accept_timeout(TIMEOUT) {
                Ok(channel) => {
                    let link = ChannelLink::new(channel, Some(listener));
                    Ok((Box::new(link), Peer::Process(child)))
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(error.into())
                }
            }
        }
        Row::Pipe => {
            let mut command = child_command(row, "pipe", job)?;
            let (channel, child) = shmsg::msg::pipe::spawn(&mut command, &message_options())?;
            Ok((
                Box::new(ChannelLink::new(channel, None)),
                Peer::Process(child),
            ))
        }
        Row::RawSocketpair => {
            let (ours, theirs) = UnixStream::pair()?;
            let (ours, theirs) = (OwnedFd::from(ours), OwnedFd::from(theirs));
            inheritable(&theirs)?;
            let fd = theirs.as_raw_fd();
            let child = spawn(row, &format!("{fd},{fd}"), job)?;
            drop(theirs);
            let link = FdLink::new(ours.try_clone()?, ours);
            Ok((Box::new(link), Peer::Process(child)))
        }
        Row::RawPipe => {
            let (their_read, our_write) = std::io::pipe()?;
            let (our_read, their_write) = std::io::pipe()?;
            let (their_read, their_write) = (OwnedFd::from(their_read), OwnedFd::from(their_write));
            inheritable(&their_read)?;
            inheritable(&their_write)?;
            let conn = format!("{},{}", their_read.as_raw_fd(), their_write.as_raw_fd());
            let child = spawn(row, &conn, job)?;
            drop((their_read, their_write));
            let link = FdLink::new(our_read.into(), our_write.into());
            Ok((Box::new(link), Peer::Process(child)))
        }
        Row::Crossbeam => {
            let capacity = if job.pingpong {
                1
            } else if job.len >= LARGE {
                8
            } else {
                1024
            };
            let (ours, mut theirs) = CrossbeamLink::pair(capacity);
            let job = *job;
            let thread = std::thread::spawn(move || {
                if let Some(cpu) = pin {
                    pin_to(cpu);
                }
                serve(&mut theirs, &job)
            });
            Ok((Box::new(ours), Peer::Thread(thread)))
        }
        Row::IpcChannel => {
            let (server, name) = ipc_channel::ipc::IpcOneShotServer::<IpcBoot>::new()?;
            let child = spawn(row, &name, job)?;
            // The child connects at once; if it died first, this waits.
            let (_boot, (tx, rx)) = server.accept()?;
            let link = IpcLink {
                tx,
                rx,
                out: Vec::new(),
            };
            Ok((Box::new(link), Peer::Process(child)))
        }
        Row::Iceoryx2 => {
            let base = format!("shmsg-peers/{}", unique_name());
            let link = IceLink::open(&base, job, true)?;
            let child = spawn(row, &base, job)?;
            Ok((Box::new(link), Peer::Process(child)))
        }
    }
}

/// The peer's side of `row`, in a child process.
fn open_child(row: Row, conn: &str, job: &Job) -> Res<Box<dyn Link>> {
    Ok(match row {
        Row::ShmInPlace => {
            let forward = Arc::new(Region::open(&format!("{conn}-f"))?);
            let backward = Arc::new(Region::open(&format!("{conn}-b"))?);
            let rx = Consumer::attach(&forward)?;
            let tx = Producer::attach(&backward)?;
            Box::new(SpscLink {
                tx,
                rx,
                _regions: [forward, backward],
            })
        }
        Row::ShmEndpoint => Box::new(ChannelLink::new(
            shmsg::connect_with(conn, &shm_options(job))?,
            None,
        )),
        Row::Unix | Row::Seqpacket | Row::Pipe => Box::new(ChannelLink::new(
            shmsg::connect_with(conn, &message_options())?,
            None,
        )),
        Row::RawSocketpair | Row::RawPipe => {
            let (read, write) = conn.split_once(',').ok_or("expected RFD,WFD")?;
            let (read, write): (i32, i32) = (read.parse()?, write.parse()?);
            // SAFETY: the driver made these descriptors inheritable for this
            // process alone and named them on its command line; nothing
            // else here owns them.
            let read = unsafe { OwnedFd::from_raw_fd(read) };
            let write = if write == read.as_raw_fd() {
                read.try_clone()?
            } else {
                // SAFETY: as above.
                unsafe { OwnedFd::from_raw_fd(write) }
            };
            Box::new(FdLink::new(read, write))
        }
        Row::Crossbeam => return Err("crossbeam-channel runs between threads".into()),
        Row::IpcChannel => {
            let (to_child_tx, to_child_rx) = ipc_channel::ipc::bytes_channel()?;
            let (to_driver_tx, to_driver_rx) = ipc_channel::ipc::bytes_channel()?;
            let boot = ipc_channel::ipc::IpcSender::<IpcBoot>::connect(conn.to_owned())?;
            boot.send((to_child_tx, to_driver_rx))?;
            Box::new(IpcLink {
                tx: to_driver_tx,
                rx: to_child_rx,
                out: Vec::new(),
            })
        }
        Row::Iceoryx2 => Box::new(IceLink::open(conn, job, false)?),
    })
}

// ---------------------------------------------------------------------------
// The workloads

/// The peer: echoes ping-pongs, or receives a stream and acknowledges it
/// (once after the warm-up, once after the timed part) with the sum of
/// everything it read.
fn serve(link: &mut dyn Link, job: &Job) -> Res<()> {
    if job.pingpong {
        for _ in 0..job.warm + job.count {
            // An 8-byte message is one word, so its sum is its seed.
            let seed = link.recv(job.len)?;
            link.send(job.len, seed)?;
        }
    } else {
        for count in [job.warm, job.count] {
            let mut total = 0u64;
            for _ in 0..count {
                total = total.wrapping_add(link.recv(job.len)?);
            }
            link.send(PING, total)?;
        }
    }
    Ok(())
}

/// What one sample measured.
enum Outcome {
    /// Nanoseconds of each timed round trip.
    RoundTrips(Vec<u64>),
    /// Seconds to stream the timed messages.
    Stream(f64),
}

/// The driver: runs `job` over `link` and checks every answer.
fn drive(link: &mut dyn Link, job: &Job) -> Res<Outcome> {
    if job.pingpong {
        let mut times = Vec::with_capacity(job.count as usize);
        for seed in 0..job.warm + job.count {
            let start = Instant::now();
            link.send(PING, seed)?;
            let echo = link.recv(PING)?;
            let elapsed = start.elapsed();
            if echo != seed {
                return Err(format!("echo {echo} for {seed}").into());
            }
            if seed >= job.warm {
                times.push(elapsed.as_nanos() as u64);
            }
        }
        return Ok(Outcome::RoundTrips(times));
    }
    let mut seed = 0u64;
    let mut secs = 0.0;
    for (count, timed) in [(job.warm, false), (job.count, true)] {
        let mut expected = 0u64;
        let start = Instant::now();
        for _ in 0..count {
            link.send(job.len, seed)?;
            expected = expected.wrapping_add(expected_sum(job.len, seed));
            seed += 1;
        }
        let ack = link.recv(PING)?;
        if timed {
            secs = start.elapsed().as_secs_f64();
        }
        if ack != expected {
            return Err(format!("the peer read sum {ack:#x}, expected {expected:#x}").into());
        }
    }
    Ok(Outcome::Stream(secs))
}

/// One sample of `row` for `job`, peer started and finished.
fn measure(row: Row, job: &Job, pin: Option<usize>) -> Res<Outcome> {
    let (mut link, peer) = open(row, job, pin)?;
    match drive(&mut *link, job) {
        Ok(outcome) => {
            drop(link);
            peer.finish()?;
            Ok(outcome)
        }
        Err(error) => {
            drop(link);
            peer.abandon();
            Err(error)
        }
    }
}

// ---------------------------------------------------------------------------
// CPUs, statistics, the table

/// The first two CPUs this process may run on.
fn cpu_pair() -> Option<[usize; 2]> {
    use rustix::thread::{CpuSet, sched_getaffinity};
    let allowed = sched_getaffinity(None).ok()?;
    let mut cpus = (0..CpuSet::MAX_CPU).filter(|&cpu| allowed.is_set(cpu));
    Some([cpus.next()?, cpus.next()?])
}

/// Pins the calling thread to `cpu`; best effort.
fn pin_to(cpu: usize) {
    use rustix::thread::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu);
    let _ = sched_setaffinity(None, &set);
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `q` quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Nanoseconds per round trip of one cache line between this thread and a
/// thread on `peer_cpu`: the physical floor under any shared-memory round
/// trip between the two CPUs, measured in each round beside the rows.
fn cache_line_round_trip(peer_cpu: Option<usize>, round_trips: u64) -> f64 {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let theirs = Arc::clone(&line);
    let peer = std::thread::spawn(move || {
        if let Some(cpu) = peer_cpu {
            pin_to(cpu);
        }
        for i in 0..round_trips {
            while theirs.0.load(Ordering::Acquire) != 2 * i + 1 {
                spin_loop();
            }
            theirs.0.store(2 * i + 2, Ordering::Release);
        }
    });
    // The first tenth warms up, untimed.
    let warm = round_trips / 10;
    let mut start = Instant::now();
    for i in 0..round_trips {
        if i == warm {
            start = Instant::now();
        }
        line.0.store(2 * i + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * i + 2 {
            spin_loop();
        }
    }
    let elapsed = start.elapsed();
    peer.join().expect("the cache-line thread");
    elapsed.as_nanos() as f64 / (round_trips - warm) as f64
}

/// The median cost of reading the clock twice, in nanoseconds.
fn timer_cost() -> f64 {
    let mut costs: Vec<f64> = (0..10_001)
        .map(|_| {
            let start = Instant::now();
            start.elapsed().as_nanos() as f64
        })
        .collect();
    median(&mut costs)
}

/// The samples of one cell, and whether one failed.
#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    /// Ping-pong only: the 99th percentile of each sample.
    p99: Vec<f64>,
    error: Option<String>,
}

impl Cell {
    /// `median (min..max)` with `digits` decimals.
    fn summary(&self, digits: usize) -> String {
        if let Some(error) = &self.error {
            return format!("failed: {}", error.chars().take(30).collect::<String>());
        }
        if self.values.is_empty() {
            return "not run".to_owned();
        }
        let mut values = self.values.clone();
        let med = median(&mut values);
        let (min, max) = (values[0], values[values.len() - 1]);
        format!("{med:.digits$} ({min:.digits$}..{max:.digits$})")
    }

    fn p99_summary(&self) -> String {
        if self.error.is_some() || self.p99.is_empty() {
            return "-".to_owned();
        }
        format!("{:.0}", median(&mut self.p99.clone()))
    }
}

struct Settings {
    samples: usize,
    round_trips: u64,
    small: u64,
    large: u64,
    rows: Vec<Row>,
    pin: bool,
}

impl Settings {
    fn jobs(&self) -> [Job; 3] {
        let job = |pingpong, len, count: u64| Job {
            pingpong,
            len,
            warm: (count / 10).max(1),
            count,
        };
        [
            job(true, PING, self.round_trips),
            job(false, SMALL, self.small),
            job(false, LARGE, self.large),
        ]
    }
}

const HELP: &str = "\
shmsg-peers: ping-pong and streaming over shmsg and its peers, one table from one run

usage: shmsg-peers [--quick] [--samples N] [--rows KEY,KEY,...] [--no-pin]

  --quick        a short run (3 samples, a tenth of the messages)
  --samples N    samples per cell (default 7); the table shows their median and min..max
  --rows KEYS    only these rows; keys: shm-inplace, shm, unix, seqpacket, pipe,
                 raw-socketpair, raw-pipe, crossbeam, ipc-channel, iceoryx2
  --no-pin       do not pin the two sides to two CPUs
";

fn parse_args(args: &[String]) -> Res<Settings> {
    let mut settings = Settings {
        samples: 7,
        round_trips: 20_000,
        small: 200_000,
        large: 300,
        rows: ROWS.to_vec(),
        pin: true,
    };
    let mut samples = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                settings.samples = 3;
                settings.round_trips = 2_000;
                settings.small = 20_000;
                settings.large = 40;
            }
            "--samples" => {
                i += 1;
                samples = Some(args.get(i).ok_or("--samples needs a number")?.parse()?);
            }
            "--rows" => {
                i += 1;
                let keys = args.get(i).ok_or("--rows needs a list")?;
                settings.rows = keys
                    .split(',')
                    .map(|key| Row::from_key(key).ok_or(format!("unknown row {key:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--no-pin" => settings.pin = false,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)").into()),
        }
        i += 1;
    }
    if let Some(samples) = samples {
        settings.samples = samples;
    }
    if settings.samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    Ok(settings)
}

fn machine() -> String {
    let cpus = rustix::thread::sched_getaffinity(None).map_or(0, |set| set.count());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}, Linux {kernel}")
}

fn run(settings: &Settings) -> Res<()> {
    // Before pinning, which narrows what this process may run on.
    let machine = machine();
    let pair = if settings.pin { cpu_pair() } else { None };
    if let Some([driver, peer]) = pair {
        pin_to(driver);
        // SAFETY: set before any other thread of this process exists.
        unsafe { std::env::set_var(PIN_ENV, peer.to_string()) };
    }
    let jobs = settings.jobs();
    let timer = timer_cost();
    let mut cells: Vec<[Cell; 3]> = settings.rows.iter().map(|_| Default::default()).collect();
    let mut reference = Cell::default();
    let started = Instant::now();
    for sample in 0..settings.samples {
        eprintln!(
            "sample {}/{} ({:.0} s so far)",
            sample + 1,
            settings.samples,
            started.elapsed().as_secs_f64()
        );
        reference.values.push(cache_line_round_trip(
            pair.map(|p| p[1]),
            5 * settings.round_trips,
        ));
        for (j, job) in jobs.iter().enumerate() {
            for (r, &row) in settings.rows.iter().enumerate() {
                let cell = &mut cells[r][j];
                if cell.error.is_some() {
                    continue;
                }
                match measure(row, job, pair.map(|p| p[1])) {
                    Ok(Outcome::RoundTrips(mut times)) => {
                        times.sort_unstable();
                        cell.values.push(quantile(&times, 0.5) as f64);
                        cell.p99.push(quantile(&times, 0.99) as f64);
                    }
                    Ok(Outcome::Stream(secs)) => {
                        let messages = job.count as f64 / secs;
                        cell.values.push(if job.len >= LARGE {
                            messages * job.len as f64 / 1e9
                        } else {
                            messages / 1e6
                        });
                    }
                    Err(error) => {
                        eprintln!("{} ({} B): {error}", row.key(), job.len);
                        cell.error = Some(error.to_string());
                    }
                }
            }
        }
    }

    println!(
        "shmsg-peers: {}; sides pinned to CPUs {}; {} samples per cell, interleaved; \
         timer read costs {timer:.0} ns; {:.0} s",
        machine,
        pair.map_or("(not pinned)".to_owned(), |[a, b]| format!(
            "{a} (driver) and {b} (peer)"
        )),
        settings.samples,
        started.elapsed().as_secs_f64(),
    );
    println!(
        "per sample: {} round trips, {} messages of 64 B, {} of 1 MiB (plus a tenth as untimed warm-up)",
        jobs[0].count, jobs[1].count, jobs[2].count
    );
    println!(
        "reference: one cache line bounced between the two CPUs (two threads), round trip {} ns",
        reference.summary(0)
    );
    println!("cells: median of the samples (min..max of the samples)");
    println!();
    println!(
        "| {:<36} | {:<11} | {:<22} | {:>7} | {:<22} | {:<22} |",
        "peer",
        "sides",
        "round trip 8 B, ns",
        "p99 ns",
        "64 B stream, M msg/s",
        "1 MiB stream, GB/s"
    );
    println!(
        "|{:-<38}|{:-<13}|{:-<24}|{:->9}|{:-<24}|{:-<24}|",
        "", "", "", ":", "", ""
    );
    for (r, &row) in settings.rows.iter().enumerate() {
        let [rt, small, large] = &cells[r];
        println!(
            "| {:<36} | {:<11} | {:<22} | {:>7} | {:<22} | {:<22} |",
            row.label(),
            row.sides(),
            rt.summary(0),
            rt.p99_summary(),
            small.summary(2),
            large.summary(2),
        );
    }
    Ok(())
}

fn child_main(args: &[String]) -> Res<()> {
    let [row, conn, rest @ ..] = args else {
        return Err("usage: --child ROW CONN JOB...".into());
    };
    let row = Row::from_key(row).ok_or("unknown row")?;
    let job = Job::parse(rest)?;
    if let Some(cpu) = std::env::var(PIN_ENV).ok().and_then(|c| c.parse().ok()) {
        pin_to(cpu);
    }
    let mut link = open_child(row, conn, &job)?;
    serve(&mut *link, &job)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--child") => child_main(&args[1..]).map_err(|e| format!("shmsg-peers child: {e}")),
        _ => parse_args(&args)
            .and_then(|settings| run(&settings))
            .map_err(|e| format!("shmsg-peers: {e}")),
    };
    if let Err(error) = result {
        eprintln!("{error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_fills() {
        for len in [8, 64, 4096] {
            let mut buf = vec![0u8; len];
            fill(&mut buf, 12345);
            assert_eq!(sum(&buf), expected_sum(len, 12345));
            let mut uninit = vec![std::mem::MaybeUninit::new(0u8); len];
            fill_uninit(&mut uninit, 12345);
            // SAFETY: every byte was written.
            let bytes: Vec<u8> = uninit.iter().map(|b| unsafe { b.assume_init() }).collect();
            assert_eq!(bytes, buf);
        }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), 50);
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile(&[7], 0.99), 7);
    }

    #[test]
    fn every_row_has_a_distinct_key() {
        for row in ROWS {
            assert_eq!(Row::from_key(row.key()), Some(row));
        }
    }
}
