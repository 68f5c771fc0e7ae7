//! The rows of the table, one per peer and way of using it, and where each
//! row's two sides are set up (in the module of its peer).

use crate::link::{Job, Link, Peer, Res};
use crate::workload::{Outcome, drive};
use crate::{crossbeam, iceoryx, ipc, ours, raw};

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
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

pub const ROWS: [Row; 10] = [
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
    pub fn key(self) -> &'static str {
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

    pub fn label(self) -> &'static str {
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

    pub fn sides(self) -> &'static str {
        match self {
            Row::Crossbeam => "2 threads",
            _ => "2 processes",
        }
    }

    pub fn from_key(key: &str) -> Option<Row> {
        ROWS.into_iter().find(|row| row.key() == key)
    }
}

/// Sets up the driver's side of `row` for `job`, and starts the peer (a
/// thread pinned to `peer_cpu`, or a child that pins itself).
pub fn open(row: Row, job: &Job, peer_cpu: Option<usize>) -> Res<(Box<dyn Link>, Peer)> {
    let key = row.key();
    match row {
        Row::ShmInPlace => ours::open_ring(key, job),
        Row::ShmEndpoint => ours::open_endpoint(key, "shm", job),
        Row::Unix => ours::open_endpoint(key, "unix", job),
        Row::Seqpacket => ours::open_endpoint(key, "seqpacket", job),
        Row::Pipe => ours::open_pipe(key, job),
        Row::RawSocketpair => raw::open_socketpair(key, job),
        Row::RawPipe => raw::open_pipes(key, job),
        Row::Crossbeam => crossbeam::open(job, peer_cpu),
        Row::IpcChannel => ipc::open(key, job),
        Row::Iceoryx2 => iceoryx::open(key, job),
    }
}

/// The peer's side of `row`, in a child process; `conn` is what the driver
/// named on its command line.
pub fn open_child(row: Row, conn: &str, job: &Job) -> Res<Box<dyn Link>> {
    match row {
        Row::ShmInPlace => ours::child_ring(conn),
        Row::ShmEndpoint => ours::child_endpoint(conn, true, job),
        Row::Unix | Row::Seqpacket | Row::Pipe => ours::child_endpoint(conn, false, job),
        Row::RawSocketpair | Row::RawPipe => raw::child(conn),
        Row::Crossbeam => Err("crossbeam-channel runs between threads".into()),
        Row::IpcChannel => ipc::child(conn),
        Row::Iceoryx2 => iceoryx::child(conn, job),
    }
}

/// One sample of `row` for `job`, peer started and finished.
pub fn measure(row: Row, job: &Job, peer_cpu: Option<usize>) -> Res<Outcome> {
    let (mut link, peer) = open(row, job, peer_cpu)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_distinct_key() {
        for row in ROWS {
            assert_eq!(Row::from_key(row.key()), Some(row));
        }
    }
}
