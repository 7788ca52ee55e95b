//! What one instance may use: its linear memory (a refused growth is
//! remembered, so the failure is answered as "out of memory" rather than a
//! bare trap) and its wall-clock time (epoch interruption: the engine's
//! epoch advances every [`EPOCH_TICK`], and a request's store traps once
//! its deadline's ticks have passed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime::{ResourceLimiter, Store};

use super::{Capability, InstanceState, Purpose};
use crate::config::{self, HostConfig};
use crate::manifest;

/// How often the engine's epoch advances; deadlines are counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Memory `preinit` may use: loading a model briefly holds the file, the
/// parsed graph and the optimized plan at once.
pub const PREINIT_MEMORY: usize = 1 << 30;

/// The capability.
pub struct Limits {
    limits: config::Limits,
}

impl Limits {
    /// The configured limits.
    pub fn get(&self) -> config::Limits {
        self.limits
    }
}

impl Capability for Limits {
    const NAME: &'static str = "limits";
    type ComponentState = ();
    type InstanceState = MemoryLimiter;

    fn new(config: &HostConfig) -> Result<Self> {
        Ok(Self { limits: config.limits })
    }

    fn add_to_linker(_: &mut Linker<InstanceState>) -> Result<()> {
        Ok(())
    }

    fn configure(&self, _: &manifest::Component) -> Result<()> {
        Ok(())
    }

    fn prepare(&self, _: &(), purpose: Purpose) -> Result<MemoryLimiter> {
        let limit = if purpose.is_request() { self.limits.memory_bytes } else { PREINIT_MEMORY };
        Ok(MemoryLimiter { limit, hit: Arc::new(AtomicBool::new(false)), peak: 0 })
    }

    fn prepare_store(&self, store: &mut Store<InstanceState>, purpose: Purpose) {
        store.limiter(|s| &mut s.limits);
        if purpose.is_request() {
            store.set_epoch_deadline(deadline_ticks(self.limits.deadline));
            store.epoch_deadline_trap();
        }
    }
}

/// Caps linear memory and remembers whether the cap was hit.
pub struct MemoryLimiter {
    limit: usize,
    /// Set once a growth request was refused.
    pub hit: Arc<AtomicBool>,
    /// The largest linear memory granted so far, bytes.
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired <= self.limit;
        if ok {
            self.peak = self.peak.max(desired);
        } else {
            self.hit.store(true, Ordering::Relaxed);
        }
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Epoch ticks that make up `deadline`.
pub fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}
