//! shmsg itself: its shared-memory ring used in place (`shm-inplace`), and
//! its endpoints through [`Channel`] (`shm`, `unix`, `seqpacket`, `pipe`).

use std::sync::Arc;

use shmsg::shm::spsc::{Consumer, Producer};
use shmsg::shm::{Geometry, Region};
use shmsg::{Channel, Listener, Options, Receiver as _, Sender as _};
use shmsg_bench_support::message::{fill_words, sum_words};

use crate::link::{
    Job, LARGE, Link, Peer, Res, TIMEOUT, check_len, child_command, spawn, unique_name,
};

/// Ring capacity per direction of the shmsg shared-memory rows: room for
/// about as many messages as the other rows' queues hold (iceoryx2's
/// subscriber buffer, crossbeam-channel's capacity).
fn ring_capacity(job: &Job) -> usize {
    if job.len >= LARGE { 8 << 20 } else { 128 << 10 }
}
/// Largest message of the shmsg message-passing rows.
const MAX_MESSAGE: usize = 2 << 20;

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
        fill_words(&mut self.out, seed);
        Ok(self.channel.send(&self.out)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let n = self.channel.recv(&mut self.buf)?;
        check_len(n, len)?;
        Ok(sum_words(&self.buf))
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
            fill_words(&mut buf[..len], seed);
            len
        })?;
        Ok(())
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let (n, total) = self
            .rx
            .recv_with(|payload| (payload.len(), sum_words(payload)))?;
        check_len(n, len)?;
        Ok(total)
    }
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

/// The driver's side of `shm-inplace`: two rings, created here.
pub fn open_ring(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let name = unique_name();
    let capacity = ring_capacity(job);
    let geometry = Geometry::new(capacity, Geometry::max_message_for(capacity).min(LARGE))?;
    let forward = Arc::new(Region::create(&format!("{name}-f"), geometry)?);
    let backward = Arc::new(Region::create(&format!("{name}-b"), geometry)?);
    let tx = Producer::attach(&forward)?;
    let rx = Consumer::attach(&backward)?;
    let child = spawn(key, &name, job)?;
    let link = SpscLink {
        tx,
        rx,
        _regions: [forward, backward],
    };
    Ok((Box::new(link), Peer::Process(child)))
}

/// The child's side of `shm-inplace`: the driver's two rings, opened by name.
pub fn child_ring(conn: &str) -> Res<Box<dyn Link>> {
    let forward = Arc::new(Region::open(&format!("{conn}-f"))?);
    let backward = Arc::new(Region::open(&format!("{conn}-b"))?);
    let rx = Consumer::attach(&forward)?;
    let tx = Producer::attach(&backward)?;
    Ok(Box::new(SpscLink {
        tx,
        rx,
        _regions: [forward, backward],
    }))
}

/// An endpoint of the driver's listener: `scheme` is `shm`, `unix` or
/// `seqpacket`.
pub fn open_endpoint(key: &str, scheme: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let name = unique_name();
    let (endpoint, options) = match scheme {
        "shm" => (format!("shm:{name}"), shm_options(job)),
        "unix" => (format!("unix:@{name}"), message_options()),
        _ => (format!("seqpacket:@{name}"), message_options()),
    };
    let mut listener = shmsg::listen_with(&endpoint, &options)?;
    let mut child = spawn(key, &endpoint, job)?;
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

/// The child's side of an endpoint row: connects to `endpoint`.
pub fn child_endpoint(endpoint: &str, shm: bool, job: &Job) -> Res<Box<dyn Link>> {
    let options = if shm {
        shm_options(job)
    } else {
        message_options()
    };
    Ok(Box::new(ChannelLink::new(
        shmsg::connect_with(endpoint, &options)?,
        None,
    )))
}

/// `pipe`: the child spawned with a pipe each way (`msg::pipe::spawn`).
pub fn open_pipe(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let mut command = child_command(key, "pipe", job)?;
    let (channel, child) = shmsg::msg::pipe::spawn(&mut command, &message_options())?;
    Ok((
        Box::new(ChannelLink::new(channel, None)),
        Peer::Process(child),
    ))
}
