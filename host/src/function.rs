//! Loading one component into a function the host can serve: verify the
//! bundles it mounts, configure every capability for it, compile it (or
//! take the compiled code from the cache), pre-initialize it when it
//! exports `preinit`, pre-instantiate it. [`load`] does all of it, on any
//! thread, while the host goes on serving the functions it has; the
//! registry ([`crate::registry`]) swaps the result in.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::api::ModelRef;
use edgerec_core::bundle::{MANIFEST_FILE, Manifest};
use sha2::{Digest, Sha256};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::cache::LoadedFrom;
use crate::capability::{Capability, ComponentStates, InstanceState};
use crate::manifest;
use crate::preinit;
use crate::runtime::Runtime;

/// A component ready to serve.
pub struct Function {
    /// Component id in `spin.toml`.
    pub id: String,
    /// What it was loaded from (see [`fingerprint`]); a reload with the same
    /// fingerprint keeps this function as it is.
    pub fingerprint: String,
    /// The model bundles it mounts, verified.
    pub models: Vec<ModelRef>,
    /// Whether it serves from a pre-initialized snapshot.
    pub preinitialized: bool,
    /// Linear memory an instance starts with, bytes: after `preinit`, what
    /// loading its bundle took (the edge's memory limit applies to it).
    pub memory_bytes: u64,
    /// Whether its compiled code came from the cache.
    pub compiled_from: LoadedFrom,
    /// What each capability keeps for it.
    pub states: ComponentStates,
    /// Linked and ready to instantiate.
    pub pre: ProxyPre<InstanceState>,
}

/// A sha256 over everything a loaded function depends on: the component's
/// bytes, every file it mounts (by path and digest), its environment as the
/// host will set it, its variables, its key-value and model grants and
/// whether it is pre-initialized.
/// File digests come from the cache's memory of them, so this costs a few
/// `stat`s when nothing changed.
pub fn fingerprint(runtime: &Runtime, component: &manifest::Component) -> Result<String> {
    let cache = runtime.cache();
    let mut hasher = Sha256::new();
    hasher.update(preinit::SNAPSHOT_VERSION);
    hasher.update([u8::from(runtime.config().preinit)]);
    let wasm = cache.file_digest(&component.source).with_context(|| source_hint(component))?;
    hasher.update(wasm.as_bytes());
    for (host, guest) in &component.files {
        hasher.update(guest.as_bytes());
        hasher.update([0]);
        cache.hash_tree(host, &mut hasher).with_context(|| format!("mount {guest}"))?;
    }
    for (k, v) in &runtime.capabilities().files.configure(component)?.env {
        hasher.update(format!("{k}={v}\0").as_bytes());
    }
    for label in &component.key_value_stores {
        hasher.update(format!("kv:{label}\0").as_bytes());
    }
    // `preinit` may read variables (the functions' `encoder`), so the
    // snapshot depends on their values; a model's name stands for its
    // weights, which the host checks by sha256 when it loads them.
    for (name, value) in &component.variables {
        hasher.update(format!("var:{name}={value}\0").as_bytes());
    }
    for model in &component.ai_models {
        hasher.update(format!("ai:{model}\0").as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn source_hint(component: &manifest::Component) -> String {
    format!("reading {}; build it with scripts/build-components", component.source.display())
}

/// Loads `component` (see the module docs). Errors name the component and
/// what to do.
pub fn load(runtime: &Runtime, component: &manifest::Component) -> Result<Function> {
    load_inner(runtime, component).with_context(|| format!("component `{}`", component.id))
}

fn load_inner(runtime: &Runtime, component: &manifest::Component) -> Result<Function> {
    let started = Instant::now();
    let id = &component.id;
    let mut models = Vec::new();
    for (dir, _) in &component.files {
        if dir.join(MANIFEST_FILE).exists() {
            let m = Manifest::verify(dir)?;
            tracing::info!("bundle {} {} verified ({} items)", m.name, m.version, m.items);
            models.push(m.model_ref());
        }
    }
    let states = runtime.capabilities().configure(component)?;
    let fingerprint = fingerprint(runtime, component)?;
    let wasm = std::fs::read(&component.source).with_context(|| source_hint(component))?;
    let preinitialized = runtime.config().preinit && preinit::exports_preinit(&wasm)?;
    let engine = runtime.engine();
    let (compiled, from) = if preinitialized {
        // The compiled snapshot is keyed by the fingerprint: with it cached,
        // neither the snapshot nor the model is read again.
        runtime.cache().component(engine, &fingerprint, &format!("the snapshot of `{id}`"), || {
            let snapshot = match runtime.cache().snapshot(id, &fingerprint) {
                Some(snapshot) => snapshot,
                None => {
                    let snapshot = preinit::snapshot(runtime.capabilities(), &states, &wasm)?;
                    tracing::info!("component `{id}`: pre-initialized; memory {} MiB", snapshot.memory >> 20);
                    runtime.cache().put_snapshot(id, &fingerprint, &snapshot.wasm)?;
                    snapshot.wasm
                }
            };
            // The snapshot starts with the memory `preinit` grew to: an
            // instance could never be made if that exceeds the limit.
            let initial = preinit::initial_memory(&snapshot)?;
            let limit = runtime.config().limits.memory_bytes as u64;
            if initial > limit {
                bail!(
                    "after `preinit` its memory is {} MiB, over the {} MiB per-instance limit; raise memory_limit_mib",
                    initial >> 20,
                    limit >> 20
                );
            }
            Ok(snapshot)
        })?
    } else {
        let key = edgerec_core::bundle::sha256_hex(&wasm);
        runtime.cache().component(engine, &key, &format!("`{id}`"), || Ok(wasm))?
    };
    // In 64 KiB pages: the largest memory any of its core modules starts with.
    let memory_bytes = compiled.resources_required().and_then(|r| r.max_initial_memory_size).unwrap_or_default() << 16;
    let pre = runtime
        .linker()
        .instantiate_pre(&compiled)
        .map_err(anyhow::Error::from)
        .context("linking: it imports something this host does not provide")?;
    let pre =
        ProxyPre::new(pre).map_err(anyhow::Error::from).context("it does not export wasi:http/incoming-handler@0.2")?;
    let how = if from == LoadedFrom::Cache { "loaded from cache" } else { "compiled" };
    let snapshot = if preinitialized { ", pre-initialized" } else { "" };
    tracing::info!("component `{id}` {how}{snapshot} in {:.1?}", started.elapsed());
    Ok(Function { id: id.clone(), fingerprint, models, preinitialized, memory_bytes, compiled_from: from, states, pre })
}
