//! Models that change while the host serves: the admin routes (promote,
//! rollback, update), the watcher that reloads when a version log changes
//! (`edgerec models promote` from a shell, another host), and the
//! scheduled update of the private host (`update_every`).
//!
//! The version log (`edgerec_core::versions`) is the one record of what
//! serves; everything here writes it and then asks the registry to reload,
//! which swaps the new bundle in atomically (requests in flight finish on
//! the version they started with).
//!
//! | route (private host, scope `admin`) | body | answer |
//! |---|---|---|
//! | `GET /api/admin/models/{name}` (also `metrics:read`: the dashboard) | | `{"name", "serving", "versions", "bundles": [{"version", "metrics", "epochs", ...}], "log": [...]}` |
//! | `POST /api/admin/models/{name}/promote` | `{"version", "reason"?}` | the log entry |
//! | `POST /api/admin/models/{name}/rollback` | `{"reason"?}` | the log entry |
//! | `POST /api/admin/models/{name}/update` | `{"full"?, "promote"?, "compare"?}` | the update's summary |

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use edgerec_core::api::ApiError;
use edgerec_core::versions::{self, VersionLog};

use crate::config::ModelSettings;
use crate::registry::App;
use crate::server::Server;
use crate::users::Users;

/// What an update is handed (the host does not train: `edgerec serve`
/// installs the trainer with [`Server::set_updater`]).
pub struct UpdateJob {
    /// Model name.
    pub model: String,
    /// Its directory (`models/<name>`).
    pub model_dir: PathBuf,
    /// Its `[models.<name>]` settings.
    pub settings: ModelSettings,
    /// The admin request's body (`{}` for a scheduled update).
    pub request: serde_json::Value,
    /// The user store (the feedback).
    pub users: Arc<Users>,
    /// The items added through /api/items/cold-start for this model (JSON records).
    pub new_items: Vec<Vec<u8>>,
    /// `admin` or `schedule`.
    pub by: &'static str,
}

/// Runs an update; answers its summary as JSON, with `"promoted": bool`.
pub type Updater = dyn Fn(UpdateJob) -> Result<serde_json::Value> + Send + Sync;

/// What the dashboard shows of one version: its manifest's offline
/// metrics and lineage and, for a trained bundle, the training curve
/// (`metrics.json`: validation metrics per epoch). Unreadable parts are
/// left out, never an error: the log must stay readable.
fn bundle_summary(dir: &std::path::Path) -> serde_json::Value {
    let mut summary = serde_json::Map::new();
    summary.insert("version".into(), dir.file_name().map(|n| n.to_string_lossy().into_owned()).into());
    if let Ok(manifest) = edgerec_core::bundle::Manifest::read(dir) {
        summary.insert("created".into(), manifest.created.into());
        summary.insert("items".into(), manifest.items.into());
        summary.insert("encoder".into(), manifest.encoder.name.into());
        summary.insert("metrics".into(), serde_json::to_value(&manifest.metrics).unwrap_or_default());
        summary.insert("lineage".into(), serde_json::to_value(&manifest.lineage).unwrap_or_default());
    }
    let training = std::fs::read(dir.join("metrics.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    if let Some(training) = training {
        summary.insert("epochs".into(), training["epochs"].clone());
        summary.insert("validation".into(), training["validation"].clone());
    }
    summary.into()
}

/// An admin route: `/api/admin/models/{name}[/{action}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoute {
    /// The model's name.
    pub model: String,
    /// `None` (GET: the log), `promote`, `rollback` or `update`.
    pub action: Option<String>,
}

impl AdminRoute {
    /// Matches `path`, with the label the metrics count it under.
    pub fn at(path: &str) -> Option<(Self, &'static str)> {
        let rest = path.strip_prefix("/api/admin/models/")?;
        let mut parts = rest.split('/');
        let model = parts.next().filter(|m| !m.is_empty())?.to_string();
        match (parts.next(), parts.next()) {
            (None, _) => Some((Self { model, action: None }, "/api/admin/models/{name}")),
            (Some(action @ ("promote" | "rollback" | "update")), None) => {
                let label = match action {
                    "promote" => "/api/admin/models/{name}/promote",
                    "rollback" => "/api/admin/models/{name}/rollback",
                    _ => "/api/admin/models/{name}/update",
                };
                Some((Self { model, action: Some(action.to_string()) }, label))
            }
            _ => None,
        }
    }
}

/// The directories of the models the app's functions mount
/// (`models/<name>/<version>` → `models/<name>`), by name.
pub fn model_dirs(app: &App) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for component in app.manifest.components.values() {
        for (source, _) in &component.files {
            if !source.join(edgerec_core::bundle::MANIFEST_FILE).exists() {
                continue;
            }
            if let Some(mount) = versions::model_mount(source)
                && !out.iter().any(|(n, _)| n == mount.name)
            {
                out.push((mount.name.to_string(), mount.dir.to_path_buf()));
            }
        }
    }
    out
}

fn reason(body: &serde_json::Value) -> Option<String> {
    body.get("reason").and_then(|r| r.as_str()).map(str::to_string)
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message)
}

impl Server {
    /// Installs what runs updates (admin route and schedule).
    pub fn set_updater(&self, updater: Arc<Updater>) {
        let _ = self.updater.set(updater);
    }

    /// The version of model `name` the functions mount now.
    fn mounted_version(&self, name: &str) -> Option<String> {
        let app = self.registry().current();
        app.manifest.components.values().flat_map(|c| &c.files).find_map(|(source, _)| {
            versions::model_mount(source).filter(|m| m.name == name).map(|m| m.version.to_string())
        })
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf, ApiError> {
        model_dirs(&self.registry().current()).into_iter().find(|(n, _)| n == name).map(|(_, dir)| dir).ok_or_else(
            || ApiError {
                status: 404,
                code: "not_found",
                message: format!("no function mounts a model named `{name}`"),
            },
        )
    }

    /// Answers an admin route (the token was checked by the caller).
    pub fn admin(&self, route: &AdminRoute, method: &http::Method, body: &[u8]) -> Result<serde_json::Value, ApiError> {
        let allowed = if route.action.is_none() { "GET" } else { "POST" };
        if method.as_str() != allowed {
            return Err(ApiError::method_not_allowed(method.as_str(), "/api/admin/models/{name}", allowed));
        }
        let dir = self.model_dir(&route.model)?;
        let body: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?
        };
        if !body.is_object() {
            return Err(bad("the body must be a JSON object".into()));
        }
        let failed = |e: edgerec_core::Error| ApiError { status: 409, code: "conflict", message: e.to_string() };
        let entry = match route.action.as_deref() {
            None => {
                let log = VersionLog::read(&dir).map_err(failed)?;
                let numbers = versions::versions(&dir).map_err(failed)?;
                return Ok(serde_json::json!({
                    "name": route.model,
                    "serving": log.serving(),
                    "versions": numbers,
                    "bundles": numbers.iter().map(|n| bundle_summary(&dir.join(n.to_string()))).collect::<Vec<_>>(),
                    "log": log.entries(),
                }));
            }
            Some("promote") => {
                let version = body
                    .get("version")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| bad("field `version` (a string, e.g. \"3\") is required".into()))?;
                let mounted = self.mounted_version(&route.model);
                versions::promote(&dir, version, "admin", reason(&body), mounted.as_deref()).map_err(failed)?
            }
            Some("rollback") => versions::rollback(&dir, "admin", reason(&body)).map_err(failed)?,
            Some(_) => return self.update(&route.model, dir, body, "admin"),
        };
        self.reload_models();
        Ok(serde_json::to_value(entry).expect("log entries serialize"))
    }

    /// Reloads after a version-log change, logging what it did.
    fn reload_models(&self) {
        match self.reload() {
            Ok(reload) if !reload.refused.is_empty() => {
                tracing::error!("model change: refused {:?}; the previous versions serve on", reload.refused)
            }
            Ok(_) => {}
            Err(e) => tracing::error!("model change: {e:#}"),
        }
    }

    /// Runs one update of `model` now (one at a time per host) and swaps a
    /// promoted version in.
    pub fn update(
        &self,
        model: &str,
        model_dir: PathBuf,
        request: serde_json::Value,
        by: &'static str,
    ) -> Result<serde_json::Value, ApiError> {
        let unavailable = |message: String| ApiError { status: 503, code: "unavailable", message };
        let updater = self.updater.get().ok_or_else(|| unavailable("this host runs no updates".into()))?;
        let private = self.private().ok_or_else(|| unavailable("updates run on the private host".into()))?;
        let _one_at_a_time = self.updating.try_lock().map_err(|_| ApiError {
            status: 409,
            code: "conflict",
            message: "an update is running; retry later".into(),
        })?;
        let prefix = format!("{}{model}/", edgerec_core::coldstart::NEW_ITEM_PREFIX);
        let new_items = self
            .registry()
            .runtime()
            .capabilities()
            .key_value
            .entries("default", &prefix)
            .map_err(|e| unavailable(format!("reading new items: {e:#}")))?
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        let settings = self.registry().runtime().config().models.get(model).cloned().unwrap_or_default();
        let job =
            UpdateJob { model: model.to_string(), model_dir, settings, request, users: private.users(), new_items, by };
        let summary = updater(job).map_err(|e| {
            tracing::error!("update of {model}: {e:#}");
            ApiError { status: 409, code: "update_failed", message: format!("{e:#}") }
        })?;
        self.metrics().update(model, summary.get("promoted").and_then(|p| p.as_bool()).unwrap_or(false));
        if summary.get("promoted").and_then(|p| p.as_bool()) == Some(true) {
            self.reload_models();
        }
        Ok(summary)
    }

    /// Starts the watcher of the version logs and, on a private host, the
    /// scheduled updates. Runs on threads of their own: training never
    /// holds up a request.
    pub(crate) fn start_lifecycle(self: &Arc<Self>) {
        let server = self.clone();
        std::thread::Builder::new()
            .name("version-logs".into())
            .spawn(move || {
                let mut seen = server.log_signature();
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let now = server.log_signature();
                    if now != seen {
                        tracing::info!("a version log changed: reloading");
                        server.reload_models();
                        seen = now;
                    }
                }
            })
            .expect("spawning a thread");
        if self.private().is_none() {
            return;
        }
        for (name, settings) in &self.registry().runtime().config().models {
            let Ok(Some(every)) = settings.update_interval(name) else { continue };
            let (server, name) = (self.clone(), name.clone());
            std::thread::Builder::new()
                .name(format!("update-{name}"))
                .spawn(move || {
                    loop {
                        std::thread::sleep(every);
                        let dir = match server.model_dir(&name) {
                            Ok(dir) => dir,
                            Err(e) => {
                                tracing::error!("scheduled update of {name}: {}", e.message);
                                continue;
                            }
                        };
                        match server.update(&name, dir, serde_json::json!({}), "schedule") {
                            Ok(summary) => tracing::info!("scheduled update of {name}: {summary}"),
                            Err(e) => tracing::warn!("scheduled update of {name}: {}", e.message),
                        }
                    }
                })
                .expect("spawning a thread");
        }
    }

    /// Length and modification time of every version log the app's models have.
    fn log_signature(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        model_dirs(&self.registry().current())
            .into_iter()
            .map(|(_, dir)| {
                let path = dir.join(versions::LOG_FILE);
                let meta = std::fs::metadata(&path).ok();
                (path, meta.as_ref().map_or(0, |m| m.len()), meta.and_then(|m| m.modified().ok()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_routes_are_matched_with_their_labels() {
        let (route, label) = AdminRoute::at("/api/admin/models/online-retail/promote").unwrap();
        assert_eq!(
            (route.model.as_str(), route.action.as_deref(), label),
            ("online-retail", Some("promote"), "/api/admin/models/{name}/promote")
        );
        assert_eq!(AdminRoute::at("/api/admin/models/shop").unwrap().0.action, None);
        assert_eq!(AdminRoute::at("/api/admin/models/shop/delete"), None);
        assert_eq!(AdminRoute::at("/api/admin/models//promote"), None);
        assert_eq!(AdminRoute::at("/api/recommend"), None);
    }
}
