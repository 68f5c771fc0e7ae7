//! Helpers shared by the integration tests (each test file that needs them
//! declares `mod common;`).

#![allow(dead_code)]

pub mod linearizable;
pub mod raw;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use shmsg::shm::region::{PREFIX, SHM_DIR};

/// A name no other call of this process and no other test process uses:
/// `PREFIX-PID-N-TAG`, `N` counting the calls. For region names, endpoint
/// names and socket paths alike: it holds only what all of them accept
/// when `prefix` and `tag` do.
pub fn unique(prefix: &str, tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{tag}", std::process::id())
}

/// A fresh socket path in the temporary directory ([`unique`], with a
/// stale file of that name removed).
pub fn temp_socket(prefix: &str, tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("shmsg-{}.sock", unique(prefix, tag)));
    let _ = std::fs::remove_file(&path);
    path
}

/// The bytes of message number `seq`, `len` of them: every byte depends on
/// both, so that a lost, repeated, reordered or torn message shows.
pub fn pattern(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

/// Message `seq` of sender `id`, into `out`: the id, the sequence number
/// (`u64` LE), then a pattern of both, `min_len` to `min_len + 83` bytes in
/// all (at least 9), varying with `seq`. A receiver regenerates it from its
/// first nine bytes to check the rest.
pub fn tagged_message(id: u8, seq: u64, min_len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.push(id);
    out.extend_from_slice(&seq.to_le_bytes());
    let len = min_len.max(9) + (seq.wrapping_mul(2_654_435_761) % 84) as usize;
    out.extend((9..len).map(|i| (seq as usize ^ (i * 131) ^ (id as usize * 29)) as u8));
}

/// The number in the environment variable `name` (a test's message count,
/// say), or `default` if it is unset or not a number.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The environment variable `name`, which the parent test process set for
/// this child; panics naming it if it is not set.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The plain words of the test executable's arguments: the case names to
/// run (none: all). `cargo test` also passes flags such as `--quiet`.
pub fn case_filter() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

/// Whether case `name` is to run under `filter` ([`case_filter`]).
pub fn selected(name: &str, filter: &[String]) -> bool {
    filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

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
    let filter = case_filter();
    let (mut ran, mut failed) = (0, 0);
    for (name, case) in cases {
        if !selected(name, &filter) {
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
