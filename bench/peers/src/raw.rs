//! Raw descriptors, the floor under shmsg's socket and pipe rows: a Unix
//! socketpair (`raw-socketpair`) or two pipes (`raw-pipe`), `write` /
//! `read` of the message bytes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use shmsg_bench_support::message::{fill_words, sum_words};

use crate::link::{Job, Link, Peer, Res, inheritable, spawn};

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
        fill_words(&mut self.buf, seed);
        Ok(self.write.write_all(&self.buf)?)
    }
    fn recv(&mut self, len: usize) -> Res<u64> {
        self.buf.resize(len, 0);
        self.read.read_exact(&mut self.buf)?;
        Ok(sum_words(&self.buf))
    }
}

/// `raw-socketpair`: one end here, the other inherited by the child.
pub fn open_socketpair(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let (ours, theirs) = UnixStream::pair()?;
    let (ours, theirs) = (OwnedFd::from(ours), OwnedFd::from(theirs));
    inheritable(&theirs)?;
    let fd = theirs.as_raw_fd();
    let child = spawn(key, &format!("{fd},{fd}"), job)?;
    drop(theirs);
    let link = FdLink::new(ours.try_clone()?, ours);
    Ok((Box::new(link), Peer::Process(child)))
}

/// `raw-pipe`: a pipe each way, the child's ends inherited.
pub fn open_pipes(key: &str, job: &Job) -> Res<(Box<dyn Link>, Peer)> {
    let (their_read, our_write) = std::io::pipe()?;
    let (our_read, their_write) = std::io::pipe()?;
    let (their_read, their_write) = (OwnedFd::from(their_read), OwnedFd::from(their_write));
    inheritable(&their_read)?;
    inheritable(&their_write)?;
    let conn = format!("{},{}", their_read.as_raw_fd(), their_write.as_raw_fd());
    let child = spawn(key, &conn, job)?;
    drop((their_read, their_write));
    let link = FdLink::new(our_read.into(), our_write.into());
    Ok((Box::new(link), Peer::Process(child)))
}

/// The child's side of both rows: the descriptors `RFD,WFD` it inherited.
pub fn child(conn: &str) -> Res<Box<dyn Link>> {
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
    Ok(Box::new(FdLink::new(read, write)))
}
