//! The WebAssembly runtime: one `Engine` for the whole process, components
//! compiled once (and cached on disk as precompiled `.cwasm`),
//! pre-instantiated, and a fresh `Store` per request with a memory limit and
//! a deadline.
//!
//! Isolation is what makes a fresh instance per request safe to offer: a
//! component that traps, loops or runs out of memory loses its own request
//! and nothing else.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::kv::KvAccess;
use crate::manifest;

/// How often the engine's epoch advances; deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one request's wasm execution.
    pub deadline: Duration,
    /// Instances that may run at once (sizes the pooling allocator).
    pub max_instances: u32,
}

impl Default for Limits {
    /// 256 MiB: the functions that encode text at request time start from
    /// a pre-initialized memory of about 206 MiB (tract's parse of the
    /// 69 MB ONNX model peaks there; linear memory never shrinks), and
    /// `recommend` needs under 16 MiB. `memory_limit_mib` in the host
    /// config lowers it.
    ///
    /// 30 s: the largest legal cold-start request (1,000 new items) encodes
    /// for about 5 s on a 2-core machine; the deadline stops runaway code,
    /// not honest work.
    fn default() -> Self {
        Self { memory_bytes: 256 << 20, deadline: Duration::from_secs(30), max_instances: 128 }
    }
}

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: PathBuf,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Where a component came from when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Precompiled code found in the cache.
    Cache,
    /// Compiled now (and written to the cache).
    Compiled,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption) and links
    /// the `wasi:http/proxy` world.
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        let instances = limits.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;

        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker)?;

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
        Ok(Self { engine, linker, limits, cache_dir, ticker_stop })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The limits every request runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles (or loads from the cache) and pre-instantiates a component;
    /// `wasm` names it in errors.
    pub fn prepare(&self, wasm: &Path, bytes: &[u8]) -> Result<(ProxyPre<HostState>, LoadedFrom)> {
        let (component, from) = self.compile_cached(wasm, bytes)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("linking {}: it imports something outside wasi:http/proxy", wasm.display()))?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not export wasi:http/incoming-handler@0.2", wasm.display()))?;
        Ok((pre, from))
    }

    fn cache_path(&self, wasm_bytes: &[u8]) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = edgerec_core::bundle::sha256_hex(wasm_bytes);
        self.cache_dir.join(format!("{}-{:016x}.cwasm", &digest[..32], hasher.finish()))
    }

    /// Where compiled code and snapshots are cached.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn compile_cached(&self, wasm: &Path, bytes: &[u8]) -> Result<(Component, LoadedFrom)> {
        let cached = self.cache_path(bytes);
        if cached.exists() {
            match load_precompiled(&self.engine, &cached) {
                Ok(component) => {
                    mark_used(&cached);
                    return Ok((component, LoadedFrom::Cache));
                }
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", cached.display()),
            }
        }
        let started = Instant::now();
        let component = Component::new(&self.engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        tracing::info!("compiled {} in {:.1?}", wasm.display(), started.elapsed());
        if let Err(e) = write_cache(&cached, &component) {
            tracing::warn!("could not cache the compiled component at {}: {e:#}", cached.display());
        }
        prune_cache(&self.cache_dir, CACHE_LIMIT_BYTES);
        Ok((component, LoadedFrom::Compiled))
    }
}

/// The compile cache is pruned to this size, least recently used first:
/// a pre-initialized component compiles to ~240 MB.
pub const CACHE_LIMIT_BYTES: u64 = 4 << 30;

/// Marks a cache entry as used now (its modification time orders pruning).
pub fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Deletes the least recently used cache entries (`.cwasm`, `.preinit.wasm`)
/// until the directory holds at most `limit` bytes of them.
pub fn prune_cache(dir: &Path, limit: u64) {
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".cwasm") || name.ends_with(".preinit.wasm")
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!("cache over {} GiB: removed {}", limit >> 30, path.display());
            total -= len;
        }
    }
}

#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code that
    // wasmtime itself produced. Cache entries are written only by
    // `write_cache` below, under a name that contains the sha256 of the
    // source component and the engine's compatibility hash, and wasmtime
    // re-checks its version and configuration header on load.
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

fn write_cache(path: &Path, component: &Component) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    // Unique per process and call: two hosts in one process (as in the
    // tests) may cache the same component at the same moment.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Links what our components may import: `wasi:cli` & co., `wasi:http` and
/// Spin's key-value store.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::kv::add_to_linker(linker)?;
    Ok(())
}

/// Per-request host state: WASI context, HTTP context, resource table and
/// the memory limiter.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: DenyOutbound,
    /// The key-value stores this request may open.
    pub(crate) kv: KvAccess,
    /// The memory limiter of this store.
    pub limiter: MemoryLimiter,
}

impl HostState {
    /// State for one request to `component`: its environment (plus
    /// `extra_env`), its `files` mounted read-only and the key-value
    /// stores it is granted.
    pub fn new(
        component: &manifest::Component,
        extra_env: &[(String, String)],
        limits: Limits,
        kv: KvAccess,
    ) -> Result<Self> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr().inherit_stdout();
        // Mounted files are small, local and read-only (model bundles): read
        // them on the request's own thread. Handing each 64 KiB read to
        // tokio's blocking pool cost ~9 ms per 5.5 MB bundle (BENCHMARKS.md).
        wasi.allow_blocking_current_thread(true);
        for (k, v) in component.environment.iter().chain(extra_env.iter().map(|(k, v)| (k, v))) {
            wasi.env(k, v);
        }
        for (host, guest) in &component.files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("mounting {} at {guest}", host.display()))?;
        }
        Ok(Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: DenyOutbound,
            kv,
            limiter: MemoryLimiter { limit: limits.memory_bytes, hit: Arc::new(AtomicBool::new(false)), peak: 0 },
        })
    }
}

impl HostState {
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Refuses outbound HTTP: edgerec functions declare no
/// `allowed_outbound_hosts`, so any attempt is denied, as under Spin.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Caps linear memory and remembers whether the cap was hit, so a failed
/// request can be reported as "out of memory" rather than a bare trap.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_the_least_recently_used_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, age_s: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(std::time::SystemTime::now() - Duration::from_secs(age_s)).unwrap();
            path
        };
        let (old, mid, new) = (write("a.cwasm", 300), write("b.preinit.wasm", 200), write("c.cwasm", 100));
        let other = write("notes.txt", 1000);
        mark_used(&old); // used just now: the newest
        prune_cache(dir.path(), 250);
        assert!(old.exists() && new.exists() && other.exists());
        assert!(!mid.exists(), "the least recently used entry goes first");
        prune_cache(dir.path(), 1000);
        assert!(old.exists() && new.exists());
    }
}
