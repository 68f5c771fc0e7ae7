use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::MemfdFlags;

use super::backing::{SPARSE, allocate, check_backing, write_zeros};
use crate::error::Error;

fn memfd() -> OwnedFd {
    rustix::fs::memfd_create("shmsg-test", MemfdFlags::CLOEXEC).unwrap()
}

#[test]
fn write_zeros_leaves_no_hole() {
    // Neither a multiple of the chunk nor of a page.
    let len = 3 * 64 * 1024 + 1000;
    let fd = memfd();
    write_zeros(fd.as_fd(), len).unwrap();
    check_backing(fd.as_fd(), len).unwrap();
}

#[test]
fn check_backing_refuses_holes_and_resizes() {
    let len = 64 * 1024;
    let fd = memfd();
    rustix::fs::ftruncate(&fd, len).unwrap();
    assert!(matches!(
        check_backing(fd.as_fd(), len),
        Err(Error::Corrupt {
            what: SPARSE,
            value: 0
        })
    ));
    allocate(fd.as_fd(), len).unwrap();
    check_backing(fd.as_fd(), len).unwrap();
    assert!(matches!(
        check_backing(fd.as_fd(), len + 1),
        Err(Error::LayoutMismatch {
            field: "region size",
            ..
        })
    ));
}
