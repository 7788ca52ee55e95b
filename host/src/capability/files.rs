//! The WASI 0.2 base every component links (`wasi:cli`, `wasi:filesystem`,
//! `wasi:clocks`, `wasi:random`, `wasi:io`): the component's `files`
//! mounted read-only at their destinations, its `environment` plus the
//! host's own settings (`EDGEREC_ZONE`, and `EDGEREC_CORS_ORIGIN` when the
//! host overrides it), stdout and stderr into the host's.
//!
//! It owns the instance's resource table, which `wasi:http` shares
//! ([`super::outbound_http`]).

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

/// The capability.
pub struct Files {
    host_env: Vec<(String, String)>,
}

/// What one component mounts and sees in its environment.
pub struct Mounts {
    /// (host directory, path inside the component).
    pub files: Vec<(PathBuf, String)>,
    /// Environment variables, the component's first, then the host's.
    pub env: Vec<(String, String)>,
}

/// One instance's WASI context and resource table.
pub struct FilesState {
    ctx: WasiCtx,
    table: ResourceTable,
    /// `preinit` only: what the component wrote to stderr, which says why
    /// pre-initialization failed when it does.
    preinit_stderr: Option<MemoryOutputPipe>,
}

/// How much of `preinit`'s stderr is kept.
const PREINIT_STDERR_BYTES: usize = 64 << 10;

impl FilesState {
    /// What `preinit` wrote to stderr (empty for other instances).
    pub fn preinit_stderr(&self) -> String {
        self.preinit_stderr
            .as_ref()
            .map(|p| String::from_utf8_lossy(&p.contents()).trim().to_string())
            .unwrap_or_default()
    }

    /// The instance's resource table (shared with `wasi:http`).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl Capability for Files {
    const NAME: &'static str = "files";
    type ComponentState = Mounts;
    type InstanceState = FilesState;

    fn new(config: &HostConfig) -> Result<Self> {
        let mut host_env = vec![("EDGEREC_ZONE".to_string(), config.zone.as_str().to_string())];
        if let Some(origin) = &config.cors_origin {
            host_env.push(("EDGEREC_CORS_ORIGIN".into(), origin.clone()));
        }
        Ok(Self { host_env })
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        Ok(())
    }

    fn configure(&self, component: &manifest::Component) -> Result<Mounts> {
        for (host, guest) in &component.files {
            ensure!(host.is_dir(), "files: {} (mounted at {guest}) is not a directory", host.display());
        }
        let mut env: Vec<(String, String)> =
            component.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, value) in &self.host_env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        Ok(Mounts { files: component.files.clone(), env })
    }

    fn prepare(&self, mounts: &Mounts, purpose: Purpose) -> Result<FilesState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr().inherit_stdout();
        let preinit_stderr = (purpose == Purpose::Preinit).then(|| MemoryOutputPipe::new(PREINIT_STDERR_BYTES));
        if let Some(pipe) = &preinit_stderr {
            wasi.stderr(pipe.clone());
        }
        // Mounted files are small, local and read-only (model bundles): read
        // them on the request's own thread. Handing each 64 KiB read to
        // tokio's blocking pool cost ~9 ms per 5.5 MB bundle (BENCHMARKS.md).
        wasi.allow_blocking_current_thread(true);
        for (k, v) in &mounts.env {
            wasi.env(k, v);
        }
        let files = if purpose == Purpose::RequestFromSnapshot { &[][..] } else { &mounts.files[..] };
        for (host, guest) in files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("mounting {} at {guest}", host.display()))?;
        }
        Ok(FilesState { ctx: wasi.build(), table: ResourceTable::new(), preinit_stderr })
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.files.ctx, table: &mut self.files.table }
    }
}
