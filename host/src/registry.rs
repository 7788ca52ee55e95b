//! The served functions: the app's routes and a loaded [`Function`] per
//! component, behind one atomic pointer ([`arc_swap::ArcSwap`]).
//!
//! A request takes the current [`App`] (an `Arc`) and keeps its function
//! until it is answered, so a request in flight finishes on the version it
//! started with. [`Registry::reload`] re-reads the manifest and loads, in
//! the caller's thread, every component whose [`function::fingerprint`]
//! changed, then swaps the whole app in at once. A component that fails to
//! load is refused and logged, and its previous version keeps serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use crate::function::{self, Function};
use crate::manifest::{self, Route};
use crate::runtime::Runtime;

/// An application as served: routes and their functions.
pub struct App {
    /// The validated manifest.
    pub manifest: manifest::App,
    /// A function per component id.
    pub functions: BTreeMap<String, Arc<Function>>,
    /// Per component id, the challenger of an A/B test (`[models.<name>]
    /// challenger`): the same component with the challenger version mounted.
    pub challengers: BTreeMap<String, Challenger>,
}

/// A challenger version served to a share of shoppers.
#[derive(Clone)]
pub struct Challenger {
    /// The component with the challenger's bundle mounted.
    pub function: Arc<Function>,
    /// The experiment's name (`<model>/<challenger version>`), which keys the buckets.
    pub experiment: String,
    /// The share of shoppers it serves.
    pub share: f64,
}

impl Challenger {
    /// Whether the shopper `id` is in the challenger's bucket.
    pub fn serves(&self, id: &str) -> bool {
        edgerec_core::ab::bucket(&self.experiment, id) < self.share
    }
}

/// The components that mount a model with a challenger, each rewritten to
/// mount the challenger version, with the experiment and share.
fn challenger_components(
    app: &manifest::App,
    models: &BTreeMap<String, crate::config::ModelSettings>,
) -> Vec<(manifest::Component, String, f64)> {
    let mut out = Vec::new();
    for component in app.components.values() {
        for (name, settings) in models {
            let (Some(version), Some(share)) = (&settings.challenger, settings.challenger_share) else { continue };
            let mut rewritten = component.clone();
            let mut mounts_it = false;
            for (source, _) in &mut rewritten.files {
                let model_dir = edgerec_core::versions::model_mount(source)
                    .filter(|m| m.name == name.as_str())
                    .map(|m| m.dir.join(version));
                if let Some(challenger) = model_dir {
                    *source = challenger;
                    mounts_it = true;
                }
            }
            if mounts_it {
                out.push((rewritten, format!("{name}/{version}"), share));
                break;
            }
        }
    }
    out
}

/// Loads the challengers of `app`, keeping those of `old` whose component is unchanged.
fn load_challengers(runtime: &Runtime, app: &manifest::App, old: Option<&App>) -> Result<BTreeMap<String, Challenger>> {
    let mut out = BTreeMap::new();
    for (component, experiment, share) in challenger_components(app, &runtime.config().models) {
        let previous = old.and_then(|o| o.challengers.get(&component.id));
        let function = match previous
            .filter(|c| function::fingerprint(runtime, &component).is_ok_and(|print| print == c.function.fingerprint))
        {
            Some(c) => c.function.clone(),
            None => {
                Arc::new(function::load(runtime, &component).with_context(|| format!("the challenger {experiment}"))?)
            }
        };
        tracing::info!("A/B: `{}` serves {experiment} to {:.0}% of shoppers", component.id, share * 100.0);
        out.insert(component.id.clone(), Challenger { function, experiment, share });
    }
    Ok(out)
}

impl App {
    /// The route serving `path` and its function (`None` while the
    /// component has never loaded).
    pub fn route(&self, path: &str) -> Option<(&Route, Option<&Arc<Function>>)> {
        let route = self.manifest.route(path)?;
        Some((route, self.functions.get(&route.component)))
    }
}

/// What a reload did, per component.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reload {
    /// Loaded anew and swapped in.
    pub swapped: Vec<String>,
    /// Unchanged, kept as they were.
    pub unchanged: Vec<String>,
    /// Failed to load, with the reason; the previous version (if any) serves on.
    pub refused: Vec<(String, String)>,
}

/// The registry.
pub struct Registry {
    runtime: Arc<Runtime>,
    manifest: PathBuf,
    current: ArcSwap<App>,
    reloading: Mutex<()>,
}

impl Registry {
    /// Loads every component of `manifest`; any failure is an error (a host
    /// does not start half-broken).
    pub fn load(runtime: Arc<Runtime>, manifest: &Path) -> Result<Self> {
        let app = manifest::App::load(manifest)?;
        let mut functions = BTreeMap::new();
        for (id, component) in &app.components {
            functions.insert(id.clone(), Arc::new(function::load(&runtime, component)?));
        }
        let challengers = load_challengers(&runtime, &app, None)?;
        let current = ArcSwap::from_pointee(App { manifest: app, functions, challengers });
        Ok(Self { runtime, manifest: manifest.to_path_buf(), current, reloading: Mutex::new(()) })
    }

    /// The app as it is now.
    pub fn current(&self) -> Arc<App> {
        self.current.load_full()
    }

    /// The runtime the functions run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Re-reads the manifest and swaps in what changed (see the module
    /// docs). An unreadable manifest changes nothing and is an error.
    /// Reloads run one at a time.
    pub fn reload(&self) -> Result<Reload> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let app = manifest::App::load(&self.manifest).context("reload refused; the app serves on unchanged")?;
        let old = self.current();
        let mut report = Reload::default();
        let mut functions = BTreeMap::new();
        for (id, component) in &app.components {
            let previous = old.functions.get(id);
            let unchanged = previous
                .filter(|f| function::fingerprint(&self.runtime, component).is_ok_and(|print| print == f.fingerprint));
            if let Some(f) = unchanged {
                functions.insert(id.clone(), f.clone());
                report.unchanged.push(id.clone());
                continue;
            }
            match function::load(&self.runtime, component) {
                Ok(f) => {
                    functions.insert(id.clone(), Arc::new(f));
                    report.swapped.push(id.clone());
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    match previous {
                        Some(f) => {
                            tracing::error!("reload: {reason}; the previous version serves on");
                            functions.insert(id.clone(), f.clone());
                        }
                        None => tracing::error!("reload: {reason}; its routes answer 503 until it loads"),
                    }
                    report.refused.push((id.clone(), reason));
                }
            }
        }
        let challengers = match load_challengers(&self.runtime, &app, Some(&old)) {
            Ok(challengers) => challengers,
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!("reload: {reason}; no challenger is served");
                report.refused.push(("challenger".into(), reason));
                BTreeMap::new()
            }
        };
        self.current.store(Arc::new(App { manifest: app, functions, challengers }));
        tracing::info!(
            "reloaded {}: swapped {:?}, unchanged {:?}, refused {:?}",
            self.manifest.display(),
            report.swapped,
            report.unchanged,
            report.refused.iter().map(|(id, _)| id).collect::<Vec<_>>()
        );
        Ok(report)
    }
}
