//! Helpers shared by the integration tests (each test file that needs them
//! declares `mod common;`).

#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom, Write};

use shmsg::shm::region::{PREFIX, SHM_DIR};

/// Writes `value` at byte `offset` of the region file `name`, as another
/// process scribbling on the region would (through its own mapping of the
/// same pages), and reads it back.
pub fn patch(name: &str, offset: usize, value: u64) {
    let path = std::path::Path::new(SHM_DIR).join(format!("{PREFIX}{name}"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    file.seek(SeekFrom::Start(offset as u64)).unwrap();
    file.write_all(&value.to_ne_bytes()).unwrap();
    let mut check = [0u8; 8];
    file.seek(SeekFrom::Start(offset as u64)).unwrap();
    file.read_exact(&mut check).unwrap();
    assert_eq!(u64::from_ne_bytes(check), value);
}
