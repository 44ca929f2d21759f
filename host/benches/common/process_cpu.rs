//! The CPU time this process has used, every thread: steadier than a rate on a machine
//! whose speed drifts by up to a quarter between runs (BENCHMARKS.md), though it counts
//! only the bench's own process (an in-process hub and its load generator, not PostgreSQL).

use std::time::Duration;

/// User and system time of this process, every thread, from `/proc/self/stat` (in clock
/// ticks of 1/100 s: USER_HZ is 100 on every Linux this runs on).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}
