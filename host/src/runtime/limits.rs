//! Resource limits of one plugin instance: a memory cap and a CPU deadline. Hitting either
//! traps the instance with an error that says which limit it was, so the job fails with a
//! readable reason and nothing else is affected.

use std::time::Duration;

/// Configurable limits applied to every plugin call.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of one call into a plugin (a whole sync run attempt), in seconds.
    pub call_deadline_secs: u64,
    /// Largest linear memory a plugin may grow to, in MiB.
    pub memory_mib: usize,
    /// Plugin instances alive at once (pooling allocator slots).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_deadline_secs: 600,
            memory_mib: 256,
            max_instances: 64,
        }
    }
}

impl Limits {
    pub fn call_deadline(&self) -> Duration {
        Duration::from_secs(self.call_deadline_secs)
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

/// Raised (as a trap) when a plugin call runs past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("plugin exceeded its CPU deadline of {seconds:.1} s")]
pub struct DeadlineExceeded {
    pub seconds: f64,
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
