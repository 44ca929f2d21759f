//! Resource limits of one plugin call: a memory cap, a CPU-time budget and wall-clock
//! deadlines. Hitting any of them ends the call with an error that says which limit it was,
//! so the job fails with a readable reason and nothing else is affected.
//!
//! Two clocks, because they catch different plugins: the CPU budget counts only time the
//! plugin's own code runs (a busy loop), the wall-clock deadline counts everything,
//! including time spent waiting in host calls (an HTTP server that answers after 400 s, a
//! WASI sleep) — which the CPU budget never sees.

use std::time::Duration;

/// `[limits]` in `hub.toml`: applied to every plugin call.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one call into a plugin (one attempt of a sync, one webhook,
    /// one batch of messages), in seconds, including time spent in host calls.
    pub call_deadline_secs: u64,
    /// Wall-clock deadline of a whole sync run, every attempt and retry backoff included, in
    /// seconds from its first attempt: a run that keeps failing slowly still ends.
    pub run_deadline_secs: u64,
    /// Time the plugin's own code may run in one call, in seconds (host calls not counted).
    pub cpu_secs: u64,
    /// Largest linear memory a plugin may grow to, in MiB.
    pub memory_mib: usize,
    /// Plugin instances alive at once (pooling allocator slots).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_deadline_secs: 600,
            run_deadline_secs: 3_600,
            cpu_secs: 300,
            memory_mib: 256,
            max_instances: 64,
        }
    }
}

impl Limits {
    pub fn call_deadline(&self) -> Duration {
        Duration::from_secs(self.call_deadline_secs)
    }

    pub fn run_deadline(&self) -> Duration {
        Duration::from_secs(self.run_deadline_secs)
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory_mib * 1024 * 1024
    }
}

/// Raised (as a trap) when a plugin grows its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("plugin exceeded its memory limit of {limit_mib} MiB")]
pub struct MemoryLimitExceeded {
    pub limit_mib: usize,
}

/// Which clock ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The plugin's own code ran too long (`cpu_secs`).
    Cpu,
    /// The call as a whole took too long, host calls included (`call_deadline_secs`).
    Call,
    /// The sync run as a whole took too long, all attempts included (`run_deadline_secs`).
    Run,
}

/// Raised when a plugin call runs past one of its deadlines.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(*clock, *seconds))]
pub struct DeadlineExceeded {
    pub clock: Clock,
    pub seconds: f64,
}

fn describe(clock: Clock, seconds: f64) -> String {
    match clock {
        Clock::Cpu => {
            format!("plugin exceeded its CPU time limit of {seconds:.1} s (limits.cpu_secs); it may be looping")
        }
        Clock::Call => format!(
            "plugin call exceeded its wall-clock deadline of {seconds:.1} s (limits.call_deadline_secs), \
             time waiting on host calls such as HTTP included; it was stopped and its worker freed"
        ),
        Clock::Run => format!(
            "sync run exceeded its wall-clock deadline of {seconds:.1} s over all its attempts \
             (limits.run_deadline_secs); it was stopped and its worker freed"
        ),
    }
}

pub struct MemoryLimiter {
    max_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(MemoryLimitExceeded {
                limit_mib: self.max_bytes / (1024 * 1024),
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
