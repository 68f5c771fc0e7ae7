//! iceoryx2 (`iceoryx2`): zero-copy publish-subscribe over shared memory,
//! one service each way.

use std::hint::spin_loop;
use std::time::{Duration, Instant};

#[cfg(test)]
use shmsg_bench_support::message::fill_words;
use shmsg_bench_support::message::sum_words;

use crate::link::{Job, LARGE, Link, PING, Peer, Res, TIMEOUT, check_len, spawn, unique_name};

/// [`fill_words`] for memory that may be uninitialised (an iceoryx2 loan).
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
                return Ok(sum_words(payload));
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

/// The driver's side: creates the services, then starts the child.
pub fn open(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let base = format!("shmsg-peers/{}", unique_name());
    let link = IceLink::open(&base, job, true)?;
    let child = spawn(key, &base, job)?;
    Ok((Box::new(link), Peer::Process(child)))
}

/// The child's side of the services named `conn`.
pub fn child(conn: &str, job: &Job) -> Res<Box<dyn Link>> {
    Ok(Box::new(IceLink::open(conn, job, false)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_uninit_writes_what_fill_words_writes() {
        for len in [8, 64, 4096] {
            let mut buf = vec![0u8; len];
            fill_words(&mut buf, 12345);
            let mut uninit = vec![std::mem::MaybeUninit::new(0u8); len];
            fill_uninit(&mut uninit, 12345);
            // SAFETY: every byte was written.
            let bytes: Vec<u8> = uninit.iter().map(|b| unsafe { b.assume_init() }).collect();
            assert_eq!(bytes, buf);
        }
    }
}
