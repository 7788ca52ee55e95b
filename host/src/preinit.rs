//! Component pre-initialization: load the model once, at start-up, and
//! serve every request from a snapshot in which it is already loaded.
//!
//! Spin (and this host) give each request a fresh instance. A function that
//! encodes text at request time would parse and optimize a 70 MB ONNX model
//! in every instance. Instead, a component that exports `preinit: func()`
//! is instantiated once with its files mounted; `preinit` loads the model
//! into linear memory; wasmtime-wizer then snapshots the instance's memory
//! and globals into a new component whose data segments *are* the loaded
//! model. Wasmtime maps those segments copy-on-write, so instantiating the
//! snapshot costs about what instantiating the original did.
//!
//! The snapshot depends on the component and on every mounted file, so it is
//! cached under a key of both. What `preinit` may do is limited: the
//! snapshot keeps memory, not host resources, so it must not leave open
//! files or streams that later requests would use (our functions read all
//! files during `preinit` and never touch the filesystem afterwards).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{Instance, Lift, WasmList};
use wasmtime::{Config, Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::manifest;
use crate::runtime::{HostState, Limits, add_to_linker};

/// The export a pre-initializable component provides.
pub const PREINIT_EXPORT: &str = "preinit";

/// Memory `preinit` may use: loading a model briefly holds the file, the
/// parsed graph and the optimized plan at once.
const PREINIT_MEMORY: usize = 1 << 30;

/// Bumped when the snapshot procedure changes, so old snapshots are not reused.
const SNAPSHOT_VERSION: &str = "edgerec-preinit-1";

/// The pre-initialized component for `wasm` with `component`'s files, from
/// the cache or made now. `Ok(None)` when the component has no `preinit`
/// export.
pub fn preinitialize(
    component: &manifest::Component,
    wasm: &[u8],
    cache_dir: &Path,
    memory_limit: usize,
) -> Result<Option<Vec<u8>>> {
    if !exports_preinit(wasm)? {
        return Ok(None);
    }
    // `<component id>-<key>.preinit.wasm`: the id lets a new snapshot
    // replace the component's old ones (each is the size of its memory).
    let prefix = format!("{}-", component.id);
    let cached = cache_dir.join(format!("{prefix}{}.preinit.wasm", snapshot_key(component, wasm)?));
    if let Ok(bytes) = std::fs::read(&cached) {
        crate::runtime::mark_used(&cached);
        return Ok(Some(bytes));
    }
    // Its own thread: wizer is async and the caller may already be inside
    // a tokio runtime.
    let snapshot = std::thread::scope(|s| {
        s.spawn(|| snapshot(component, wasm)).join().unwrap_or_else(|_| Err(anyhow!("pre-initialization panicked")))
    })?;
    // The snapshot starts with the memory `preinit` grew to.
    let (snapshot, memory) = snapshot;
    tracing::info!("component `{}`: pre-initialized; its memory starts at {} MiB", component.id, memory >> 20);
    if memory > memory_limit {
        bail!(
            "after `preinit` the memory is {} MiB, over the {} MiB per-instance limit; raise memory_limit_mib",
            memory >> 20,
            memory_limit >> 20
        );
    }
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    let tmp = cached.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, &snapshot).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &cached).with_context(|| format!("writing {}", cached.display()))?;
    crate::runtime::prune_cache(cache_dir, crate::runtime::CACHE_LIMIT_BYTES);
    for entry in std::fs::read_dir(cache_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with(&prefix) && name.ends_with(".preinit.wasm") && entry.path() != cached;
        // The rest of the name is a 64-hex key: `search-` never matches `search-v2-`.
        if stale && name.len() == prefix.len() + 64 + ".preinit.wasm".len() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(Some(snapshot))
}

/// Whether the component exports `preinit` at its top level.
fn exports_preinit(wasm: &[u8]) -> Result<bool> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("reading the component")? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    if export?.name.name == PREINIT_EXPORT {
                        return Ok(true);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// sha256 over the component, the snapshot procedure and every mounted file
/// (path inside the component and contents).
fn snapshot_key(component: &manifest::Component, wasm: &[u8]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(SNAPSHOT_VERSION);
    hasher.update(wasm);
    for (host, guest) in &component.files {
        let mut files = Vec::new();
        collect_files(host, &mut files)?;
        files.sort();
        for file in files {
            let rel = file.strip_prefix(host).unwrap_or(&file);
            hasher.update(guest.as_bytes());
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Instruments the component, runs `preinit` with the component's files
/// mounted, and snapshots the result; also returns the linear memory size
/// `preinit` left behind.
fn snapshot(component: &manifest::Component, wasm: &[u8]) -> Result<(Vec<u8>, usize)> {
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer.instrument_component(wasm).map_err(|e| anyhow!("{e:?}"))?;
    // An engine of its own: no pooling (the snapshot is taken once) and room
    // for the loading peak.
    let engine = Engine::new(&Config::new()).map_err(anyhow::Error::from)?;
    let instrumented = wasmtime::component::Component::new(&engine, &instrumented)
        .map_err(anyhow::Error::from)
        .context("compiling the instrumented component")?;
    let mut linker = wasmtime::component::Linker::new(&engine);
    add_to_linker(&mut linker)?;
    let limits = Limits { memory_bytes: PREINIT_MEMORY, ..Limits::default() };
    let mut store = Store::new(&engine, HostState::new(component, &[], limits, Default::default())?);
    store.limiter(|s| &mut s.limiter);
    // The snapshot reads each memory in one call; allow a whole memory.
    store.set_hostcall_fuel(PREINIT_MEMORY + (1 << 20));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let instance = linker.instantiate_async(&mut store, &instrumented).await.map_err(anyhow::Error::from)?;
        let init = instance
            .get_typed_func::<(), ()>(&mut store, PREINIT_EXPORT)
            .map_err(anyhow::Error::from)
            .context("`preinit` must be `func()`")?;
        init.call_async(&mut store, ()).await.map_err(anyhow::Error::from).context("`preinit` failed")?;
        let peak = store.data().limiter.peak;
        let mut state = Snapshotting { store: &mut store, instance };
        let snapshot = wizer.snapshot_component(&cx, &mut state).await.map_err(|e| anyhow!("snapshot: {e:?}"))?;
        Ok((snapshot, peak))
    })
}

/// Lets wizer read the instance's memories and globals through the
/// accessor functions its instrumentation exported.
struct Snapshotting<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
}

impl Snapshotting<'_> {
    async fn call<R: Lift + Send + Sync + 'static, O>(
        &mut self,
        instance: &str,
        func: &str,
        out: impl FnOnce(&Store<HostState>, R) -> O,
    ) -> O {
        let result: Result<O> = async {
            let (_, exported) = self
                .instance
                .get_export(&mut *self.store, None, instance)
                .ok_or_else(|| anyhow!("no export `{instance}`"))?;
            let (_, func_index) = self
                .instance
                .get_export(&mut *self.store, Some(&exported), func)
                .ok_or_else(|| anyhow!("no export `{instance}#{func}`"))?;
            let f = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, func_index)?;
            let (r,) = f.call_async(&mut *self.store, ()).await?;
            Ok(out(self.store, r))
        }
        .await;
        // The trait has no error channel; the accessors are generated by
        // wizer itself, so a failure here is a bug in the instrumentation.
        result.unwrap_or_else(|e| panic!("reading the instance for the snapshot: {e:#}"))
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        self.call(instance, func, |store, list: WasmList<u8>| contents(list.as_le_slice(store))).await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}
