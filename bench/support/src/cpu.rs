//! The CPUs this process may run on, and pinning a thread to one.

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// Pins the calling thread to `cpu`, if given; best effort (pinning steadies
/// a measurement, running unpinned is still correct).
pub fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        set.set(cpu);
        let _ = sched_setaffinity(None, &set);
    }
}

/// The CPUs this process may run on (empty if the kernel does not say).
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The first two CPUs this process may run on, if it may run on two.
pub fn cpu_pair() -> Option<[usize; 2]> {
    match allowed_cpus()[..] {
        [a, b, ..] => Some([a, b]),
        _ => None,
    }
}
