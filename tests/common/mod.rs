//! Helpers shared by the integration tests (each test file that needs them
//! declares `mod common;`).

#![allow(dead_code)]

pub mod linearizable;
pub mod raw;

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

/// A case of a test file with its own `main` (`harness = false`): its name,
/// and a function that says what it checked or why it failed.
pub type Case = (&'static str, fn() -> Result<String, String>);

/// Runs `cases` (those whose names contain a plain word of the arguments,
/// or all: `cargo test` also passes flags such as `--quiet`), printing each
/// as `test NAME ... ok: DESCRIPTION, in T s` with what `describe` makes of
/// what it checked, and a summary line; fails if any failed.
pub fn run_cases(cases: &[Case], describe: impl Fn(String) -> String) -> std::process::ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut ran, mut failed) = (0, 0);
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let start = std::time::Instant::now();
        match case() {
            Ok(what) => println!(
                "test {name} ... ok: {}, in {:.1} s",
                describe(what),
                start.elapsed().as_secs_f64()
            ),
            Err(error) => {
                failed += 1;
                println!("test {name} ... FAILED: {error}");
            }
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    println!("\ntest result: {} passed; {failed} failed", ran - failed);
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
