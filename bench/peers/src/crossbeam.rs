//! crossbeam-channel (`crossbeam`): a channel between two threads, the
//! in-process reference.

use shmsg_bench_support::cpu::pin;
use shmsg_bench_support::message::{fill_words, sum_words};

use crate::link::{Job, LARGE, Link, Peer, Res, SMALL, check_len};
use crate::workload::serve;

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
            fill_words(&mut bytes[..len], seed);
            CbMessage::Inline(bytes)
        } else {
            let mut buf = self.reuse.try_recv().unwrap_or_default();
            buf.resize(len, 0);
            fill_words(&mut buf, seed);
            CbMessage::Heap(buf)
        };
        self.tx
            .send(message)
            .map_err(|_| "crossbeam-channel: the receiver is gone")?;
        Ok(())
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        match self.rx.recv()? {
            CbMessage::Inline(bytes) => Ok(sum_words(&bytes[..len])),
            CbMessage::Heap(buf) => {
                check_len(buf.len(), len)?;
                let total = sum_words(&buf);
                let _ = self.give_back.try_send(buf);
                Ok(total)
            }
        }
    }
}

/// Both sides: the peer is a thread, pinned to `peer_cpu`.
pub fn open(job: &Job, peer_cpu: Option<usize>) -> Res<(Box<dyn Link>, Peer)> {
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
        pin(peer_cpu);
        serve(&mut theirs, &job)
    });
    Ok((Box::new(ours), Peer::Thread(thread)))
}
