//! ipc-channel (`ipc-channel`): its byte channels between two processes.

use shmsg_bench_support::message::{fill_words, sum_words};

use crate::link::{Job, Link, Peer, Res, check_len, spawn};

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
        fill_words(&mut self.out, seed);
        Ok(self.tx.send(&self.out)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        let message = self.rx.recv()?;
        check_len(message.len(), len)?;
        Ok(sum_words(&message))
    }
}

/// The driver's side: a one-shot server the child connects to and sends
/// its channel ends through.
pub fn open(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let (server, name) = ipc_channel::ipc::IpcOneShotServer::<IpcBoot>::new()?;
    let child = spawn(key, &name, job)?;
    // The child connects at once; if it died first, this waits.
    let (_boot, (tx, rx)) = server.accept()?;
    let link = IpcLink {
        tx,
        rx,
        out: Vec::new(),
    };
    Ok((Box::new(link), Peer::Process(child)))
}

/// The child's side: makes both channels and sends the driver its ends.
pub fn child(conn: &str) -> Res<Box<dyn Link>> {
    let (to_child_tx, to_child_rx) = ipc_channel::ipc::bytes_channel()?;
    let (to_driver_tx, to_driver_rx) = ipc_channel::ipc::bytes_channel()?;
    let boot = ipc_channel::ipc::IpcSender::<IpcBoot>::connect(conn.to_owned())?;
    boot.send((to_child_tx, to_driver_rx))?;
    Ok(Box::new(IpcLink {
        tx: to_driver_tx,
        rx: to_child_rx,
        out: Vec::new(),
    }))
}
