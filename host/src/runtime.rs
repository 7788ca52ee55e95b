//! The wasmtime runtime of the host: one `Engine` for the whole process
//! (pooling allocator, copy-on-write memory images, epoch interruption),
//! the linker every capability registered in, the capabilities themselves,
//! the cache, and the config they were all built from.
//!
//! Instances are cheap because of how the pool treats memory: a component's
//! initial memory (for a pre-initialized function, its loaded model) is
//! mapped copy-on-write from the compiled file, and when an instance ends,
//! only the pages it wrote are copied back from that image (Linux's
//! `PAGEMAP_SCAN`, up to [`KEEP_RESIDENT`]); the pages it only read stay
//! mapped, so the next instance does not fault them in again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::Cache;
use crate::capability::limits::EPOCH_TICK;
use crate::capability::{Capabilities, InstanceState};
use crate::config::HostConfig;

/// Dirty memory per instance slot that is reset by copying rather than
/// released to the kernel (see the module docs).
pub const KEEP_RESIDENT: usize = 16 << 20;

/// The process-wide runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    capabilities: Capabilities,
    cache: Cache,
    config: HostConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine, the capabilities and the linker for `config`.
    pub fn new(config: HostConfig) -> Result<Self> {
        let limits = config.limits;
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        let instances = limits.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size(limits.memory_bytes)
            .linear_memory_keep_resident(KEEP_RESIDENT.min(limits.memory_bytes))
            .pagemap_scan(Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;

        let capabilities = Capabilities::new(&config)?;
        let mut linker = Linker::new(&engine);
        Capabilities::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), ticker_stop.clone());
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        let cache = Cache::new(&config.cache_dir);
        Ok(Self { engine, linker, capabilities, cache, config, ticker_stop })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with every capability's interfaces.
    pub fn linker(&self) -> &Linker<InstanceState> {
        &self.linker
    }

    /// The capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The config everything was built from.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }
}
