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
//! The snapshot depends on the component, every mounted file and the
//! environment `preinit` saw (the same one requests see), so the loader
//! ([`crate::function`]) caches it under a key of all three. What `preinit`
//! may do is limited: the snapshot keeps memory, not host resources, so it
//! must not leave open files or streams that later requests would use (our
//! functions read all files during `preinit` and never touch the
//! filesystem afterwards).

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Instance, Lift, WasmList};
use wasmtime::{Config, Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::capability::limits::PREINIT_MEMORY;
use crate::capability::{Capabilities, ComponentStates, InstanceState, Purpose};

/// The export a pre-initializable component provides.
pub const PREINIT_EXPORT: &str = "preinit";

/// Bumped when the snapshot procedure changes, so old snapshots are not reused.
pub const SNAPSHOT_VERSION: &str = "edgerec-preinit-2";

/// A snapshot and the size of the linear memory it starts with.
pub struct Snapshot {
    /// The pre-initialized component.
    pub wasm: Vec<u8>,
    /// Bytes of linear memory `preinit` left behind.
    pub memory: usize,
}

/// Runs `preinit` in an instance of `wasm` with the component's mounts and
/// environment (`states`) and snapshots the result. Runs on a thread of its
/// own: wizer is async and the caller may be inside a tokio runtime.
pub fn snapshot(capabilities: &Capabilities, states: &ComponentStates, wasm: &[u8]) -> Result<Snapshot> {
    std::thread::scope(|s| {
        s.spawn(|| snapshot_here(capabilities, states, wasm))
            .join()
            .unwrap_or_else(|_| Err(anyhow!("pre-initialization panicked")))
    })
}

/// Whether the component exports `preinit` at its top level.
pub fn exports_preinit(wasm: &[u8]) -> Result<bool> {
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

/// The largest initial linear memory of the component's core modules, bytes.
pub fn initial_memory(wasm: &[u8]) -> Result<u64> {
    use wasmparser::{Parser, Payload};
    let mut largest = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::MemorySection(memories) = payload.context("reading the component")? {
            for memory in memories {
                largest = largest.max(memory?.initial << 16);
            }
        }
    }
    Ok(largest)
}

/// Instruments the component, runs `preinit`, and snapshots the result.
fn snapshot_here(capabilities: &Capabilities, states: &ComponentStates, wasm: &[u8]) -> Result<Snapshot> {
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer.instrument_component(wasm).map_err(|e| anyhow!("{e:?}"))?;
    // An engine of its own: no pooling (the snapshot is taken once), no
    // deadline, room for the loading peak.
    let engine = Engine::new(&Config::new()).map_err(anyhow::Error::from)?;
    let instrumented = wasmtime::component::Component::new(&engine, &instrumented)
        .map_err(anyhow::Error::from)
        .context("compiling the instrumented component")?;
    let mut linker = wasmtime::component::Linker::new(&engine);
    Capabilities::add_to_linker(&mut linker)?;
    let mut store = capabilities.store(&engine, states, Purpose::Preinit)?;
    // The snapshot reads each memory in one call; allow a whole memory.
    store.set_hostcall_fuel(PREINIT_MEMORY + (1 << 20));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let instance = linker.instantiate_async(&mut store, &instrumented).await.map_err(anyhow::Error::from)?;
        let init = instance
            .get_typed_func::<(), ()>(&mut store, PREINIT_EXPORT)
            .map_err(anyhow::Error::from)
            .context("`preinit` must be `func()`")?;
        if let Err(e) = init.call_async(&mut store, ()).await {
            // The component says why on stderr (a panic message); the trap
            // itself says only where.
            let said = store.data().files.preinit_stderr();
            return Err(anyhow::Error::from(e).context(format!("`preinit` failed: {said}")));
        }
        let memory = store.data().limits.peak;
        let mut state = Snapshotting { store: &mut store, instance };
        let wasm = wizer.snapshot_component(&cx, &mut state).await.map_err(|e| anyhow!("snapshot: {e:?}"))?;
        Ok(Snapshot { wasm, memory })
    })
}

/// Lets wizer read the instance's memories and globals through the
/// accessor functions its instrumentation exported.
struct Snapshotting<'a> {
    store: &'a mut Store<InstanceState>,
    instance: Instance,
}

impl Snapshotting<'_> {
    async fn call<R: Lift + Send + Sync + 'static, O>(
        &mut self,
        instance: &str,
        func: &str,
        out: impl FnOnce(&Store<InstanceState>, R) -> O,
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
