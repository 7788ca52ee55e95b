//! The Spin application manifest (`spin.toml`, `spin_manifest_version = 2`),
//! read raw first and then validated into what the host serves.
//!
//! The schema follows Spin's v2 manifest: unknown keys are an error, keys
//! Spin knows but this host cannot honour are refused by name (so an app
//! that runs here runs unchanged under `spin up`, and nothing silently
//! behaves differently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

/// `spin.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Must be 2.
    pub spin_manifest_version: u32,
    /// `[application]`.
    pub application: RawApplication,
    /// `[variables]`: application variables with defaults.
    #[serde(default)]
    pub variables: BTreeMap<String, RawVariable>,
    /// `[[trigger.http]]` and friends.
    #[serde(default)]
    pub trigger: BTreeMap<String, Vec<RawHttpTrigger>>,
    /// `[component.<id>]`.
    #[serde(default)]
    pub component: BTreeMap<String, RawComponent>,
}

/// `[application]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    /// Application name.
    pub name: String,
    /// Application version.
    pub version: Option<String>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Trigger-wide settings, e.g. `[application.trigger.http] base = "/"`.
    #[serde(default)]
    pub trigger: BTreeMap<String, toml::Table>,
}

/// One application variable: `encoder = { default = "llm" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    /// Its value unless the environment sets one.
    pub default: Option<String>,
    /// Whether a value must be given (then there is no default).
    #[serde(default)]
    pub required: bool,
    /// Whether the value is a secret (never logged).
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpTrigger {
    /// `"/api/recommend"`, `"/static/..."`, or `{ private = true }`.
    pub route: toml::Value,
    /// The component id it runs.
    pub component: String,
    /// Optional trigger id.
    pub id: Option<String>,
    /// `executor = { type = "spin" }` (the default) or `wagi`.
    pub executor: Option<toml::Table>,
}

/// A `files` entry: a glob string, or a directory mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawFileMount {
    /// `"static/**"`: copied at the same relative path.
    Pattern(String),
    /// `{ source = "dir", destination = "/dir" }`.
    Mapping {
        /// Directory in the app, relative to `spin.toml`.
        source: String,
        /// Absolute path inside the component.
        destination: String,
    },
}

/// `[component.<id>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    /// Path of the `.wasm` (or `{ url, digest }`).
    pub source: toml::Value,
    /// Description.
    pub description: Option<String>,
    /// Files mounted read-only into the component.
    #[serde(default)]
    pub files: Vec<RawFileMount>,
    /// Globs excluded from `files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Hosts the component may call; edgerec functions call none.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value stores the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite databases the component may open.
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// LLM models the component may use.
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// Environment variables of the component.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Component variables (templates over application variables).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// `[component.<id>.build]`, used by `spin build`.
    pub build: Option<RawBuild>,
    /// Tool-specific settings, ignored by runtimes.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Value>,
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    /// Shell command that builds the component.
    pub command: String,
    /// Working directory, relative to `spin.toml`.
    pub workdir: Option<String>,
    /// Globs that trigger a rebuild under `spin watch`.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A validated application: routes to components, paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Application name.
    pub name: String,
    /// Routes, in manifest order.
    pub routes: Vec<Route>,
    /// Components by id.
    pub components: BTreeMap<String, Component>,
}

/// How a route matches request paths (Spin's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePattern {
    /// Matches this path only.
    Exact(String),
    /// `/prefix/...`: matches `/prefix` and everything below it.
    Wildcard(String),
}

/// One HTTP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What paths it matches.
    pub pattern: RoutePattern,
    /// The component that serves it.
    pub component: String,
}

impl Route {
    /// The route as `spin.toml` writes it (`/api/recommend`, `/static/...`):
    /// what logs and metrics call it.
    pub fn label(&self) -> String {
        match &self.pattern {
            RoutePattern::Exact(p) => p.clone(),
            RoutePattern::Wildcard(p) => format!("{p}/..."),
        }
    }
}

/// A component ready to load.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Component id.
    pub id: String,
    /// Absolute path of the `.wasm`.
    pub source: PathBuf,
    /// (host directory, guest path) pairs, mounted read-only.
    pub files: Vec<(PathBuf, String)>,
    /// Environment variables.
    pub environment: BTreeMap<String, String>,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// Models it may use through `fermyon:spin/llm` (Spin's `ai_models`).
    pub ai_models: Vec<String>,
    /// Its variables, templates resolved (`fermyon:spin/variables`).
    pub variables: BTreeMap<String, String>,
}

impl RoutePattern {
    fn parse(route: &str) -> Result<Self> {
        ensure!(route.starts_with('/'), "route `{route}` must start with `/`");
        if let Some(prefix) = route.strip_suffix("/...") {
            ensure!(!prefix.contains("..."), "route `{route}`: `...` may only end a route");
            return Ok(RoutePattern::Wildcard(prefix.to_string()));
        }
        ensure!(!route.contains("..."), "route `{route}`: `...` may only end a route, as `/...`");
        let trimmed = route.trim_end_matches('/');
        Ok(RoutePattern::Exact(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() }))
    }

    /// Whether the pattern matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        match self {
            RoutePattern::Exact(p) => p == path,
            RoutePattern::Wildcard(prefix) => {
                prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
            }
        }
    }

    /// Ordering key: exact routes beat wildcards, longer prefixes beat shorter.
    fn specificity(&self) -> (bool, usize) {
        match self {
            RoutePattern::Exact(p) => (true, p.len()),
            RoutePattern::Wildcard(p) => (false, p.len()),
        }
    }
}

impl App {
    /// Reads and validates `spin.toml`; relative paths resolve against its
    /// directory, and application variables take their values from the
    /// environment (`SPIN_VARIABLE_<NAME>`, as Spin's environment provider).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let raw: RawManifest = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = base.canonicalize().with_context(|| format!("resolving {}", base.display()))?;
        let env = |name: &str| std::env::var(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())).ok();
        Self::from_raw(raw, &base, &env).with_context(|| format!("{} is not a valid Spin manifest", path.display()))
    }

    /// Validates a parsed manifest against Spin's v2 rules; `provided`
    /// gives an application variable's value when something sets it.
    pub fn from_raw(raw: RawManifest, base: &Path, provided: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        ensure!(
            raw.spin_manifest_version == 2,
            "spin_manifest_version is {}, only 2 is supported",
            raw.spin_manifest_version
        );
        ensure!(!raw.application.name.trim().is_empty(), "application.name must not be empty");
        let mut values = BTreeMap::new();
        for (name, variable) in &raw.variables {
            ensure!(is_snake_id(name), "variable `{name}` must be lower_snake_case");
            ensure!(
                !(variable.required && variable.default.is_some()),
                "variable `{name}`: a required variable has no default; remove one of the two"
            );
            match provided(name).or_else(|| variable.default.clone()) {
                Some(value) => {
                    values.insert(name.as_str(), value);
                }
                None if variable.required => bail!(
                    "variable `{name}` is required and has no value; set SPIN_VARIABLE_{}",
                    name.to_ascii_uppercase()
                ),
                None => bail!("variable `{name}` needs `default = \"...\"` or `required = true`"),
            }
        }
        let mut components = BTreeMap::new();
        for (id, c) in &raw.component {
            components.insert(id.clone(), Self::component(id, c, base, &values)?);
        }
        let mut routes: Vec<Route> = Vec::new();
        for (kind, triggers) in &raw.trigger {
            ensure!(kind == "http", "trigger type `{kind}` is not supported by this host (only `http`)");
            for t in triggers {
                ensure!(
                    components.contains_key(&t.component),
                    "trigger for route {} names component `{}`, which is not defined under [component]",
                    t.route,
                    t.component
                );
                if let Some(exec) = &t.executor {
                    let ty = exec.get("type").and_then(|v| v.as_str()).unwrap_or("");
                    ensure!(ty == "spin", "route {}: executor `{ty}` is not supported (only `spin`)", t.route);
                }
                let route = match &t.route {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Table(tab) if tab.get("private").and_then(|v| v.as_bool()) == Some(true) => {
                        continue; // private endpoints are reachable only through service chaining
                    }
                    other => bail!("route must be a string or `{{ private = true }}`, got {other}"),
                };
                let pattern = RoutePattern::parse(&route)?;
                ensure!(!routes.iter().any(|r| r.pattern == pattern), "route `{route}` is defined twice");
                routes.push(Route { pattern, component: t.component.clone() });
            }
        }
        ensure!(!routes.is_empty(), "the manifest defines no [[trigger.http]] route");
        Ok(App { name: raw.application.name, routes, components })
    }

    fn component(id: &str, c: &RawComponent, base: &Path, app_variables: &BTreeMap<&str, String>) -> Result<Component> {
        ensure!(is_kebab_id(id), "component id `{id}` must be kebab-case (a-z, 0-9, `-`, starting with a letter)");
        let source = match &c.source {
            toml::Value::String(s) => base.join(s),
            _ => bail!("component `{id}`: only a local `source` path is supported by this host, not a URL"),
        };
        let mut files = Vec::new();
        for f in &c.files {
            match f {
                RawFileMount::Mapping { source, destination } => {
                    ensure!(
                        destination.starts_with('/'),
                        "component `{id}`: files destination `{destination}` must be an absolute path"
                    );
                    ensure!(
                        !Path::new(source).is_absolute(),
                        "component `{id}`: files source `{source}` must be relative to spin.toml"
                    );
                    // A mount of models/<name>/<version> serves the version
                    // the model's version log promoted, where it has one.
                    let source = edgerec_core::versions::resolve_mount(&base.join(source))
                        .with_context(|| format!("component `{id}`: files source `{source}`"))?;
                    files.push((source, destination.clone()));
                }
                RawFileMount::Pattern(p) => bail!(
                    "component `{id}`: files pattern `{p}` is not supported by this host; \
                     use {{ source = \"dir\", destination = \"/dir\" }}"
                ),
            }
        }
        ensure!(c.exclude_files.is_empty(), "component `{id}`: exclude_files is not supported by this host");
        for host in &c.allowed_outbound_hosts {
            ensure!(
                host.contains("://") || host.starts_with("{{"),
                "component `{id}`: allowed_outbound_hosts entry `{host}` needs a scheme, e.g. `https://{host}`"
            );
        }
        ensure!(
            c.allowed_outbound_hosts.is_empty(),
            "component `{id}`: outbound HTTP is not provided by this host; remove allowed_outbound_hosts"
        );
        for label in &c.key_value_stores {
            ensure!(
                !label.is_empty() && label.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
                "component `{id}`: key_value_stores label `{label}` must be letters, digits, `_` or `-`"
            );
        }
        ensure!(c.sqlite_databases.is_empty(), "component `{id}`: sqlite_databases is not provided by this host");
        for model in &c.ai_models {
            ensure!(
                !model.is_empty()
                    && model.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.'),
                "component `{id}`: ai_models entry `{model}` must be a model name such as `all-minilm-l6-v2`"
            );
        }
        let mut variables = BTreeMap::new();
        for (name, template) in &c.variables {
            ensure!(is_snake_id(name), "component `{id}`: variable `{name}` must be lower_snake_case");
            let value =
                expand(template, app_variables).with_context(|| format!("component `{id}`: variable `{name}`"))?;
            variables.insert(name.clone(), value);
        }
        Ok(Component {
            id: id.to_string(),
            source,
            files,
            environment: c.environment.clone(),
            key_value_stores: c.key_value_stores.clone(),
            ai_models: c.ai_models.clone(),
            variables,
        })
    }

    /// The component serving `path`: exact routes first, then the longest wildcard.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().filter(|r| r.pattern.matches(path)).max_by_key(|r| r.pattern.specificity())
    }
}

/// Expands `{{ name }}` references to application variables in `template`.
fn expand(template: &str, app_variables: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| format!("`{template}`: `{{{{` without `}}}}`"))?;
        let name = after[..end].trim();
        let value = app_variables
            .get(name)
            .with_context(|| format!("`{template}` refers to `{name}`, which is not under [variables]"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_kebab_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_snake_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(toml_text: &str) -> Result<App> {
        App::from_raw(toml::from_str(toml_text)?, Path::new("/app"), &|name| {
            (name == "region").then(|| "eu".to_string())
        })
    }

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "shop"
[[trigger.http]]
route = "/api/recommend"
component = "recommend"
[[trigger.http]]
route = "/api/..."
component = "fallback"
[component.recommend]
source = "target/recommend.wasm"
files = [{ source = "models/shop/1", destination = "/bundle" }]
environment = { EDGEREC_CORS_ORIGIN = "*" }
[component.recommend.build]
command = "cargo build"
[component.fallback]
source = "fallback.wasm"
"#;

    #[test]
    fn valid_manifest_resolves_paths_and_routes() {
        let app = app(GOOD).unwrap();
        let c = &app.components["recommend"];
        assert_eq!(c.source, Path::new("/app/target/recommend.wasm"));
        assert_eq!(c.files, vec![(PathBuf::from("/app/models/shop/1"), "/bundle".to_string())]);
        assert_eq!(app.route("/api/recommend").unwrap().component, "recommend");
        assert_eq!(app.route("/api/recommend/").unwrap().component, "recommend");
        assert_eq!(app.route("/api/health").unwrap().component, "fallback");
        assert_eq!(app.route("/api").unwrap().component, "fallback");
        assert!(app.route("/apix").is_none());
        assert!(app.route("/").is_none());
    }

    #[test]
    fn ai_models_and_variables_resolve_with_spin_rules() {
        let text = GOOD.replace(
            "[application]",
            "[variables]\nencoder = { default = \"llm\" }\nregion = { required = true }\n[application]",
        ) + "ai_models = [\"all-minilm-l6-v2\"]\nvariables = { encoder = \"{{ encoder }}\", url = \"https://{{region}}.example/{{ encoder }}\" }\n";
        let c = &app(&text).unwrap().components["fallback"];
        assert_eq!(c.ai_models, ["all-minilm-l6-v2"]);
        assert_eq!(c.variables["encoder"], "llm", "the default");
        assert_eq!(c.variables["url"], "https://eu.example/llm", "the provided value, and several references");
    }

    #[test]
    fn spin_rules_are_enforced_with_the_offending_value() {
        let cases = [
            (GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"), "only 2"),
            (GOOD.replace("component = \"fallback\"", "component = \"missing\""), "`missing`"),
            (GOOD.replace("[component.fallback]", "[component.Fallback]"), "kebab-case"),
            (GOOD.replace("route = \"/api/...\"", "route = \"api/...\""), "must start with"),
            (GOOD.replace("route = \"/api/...\"", "route = \"/api/recommend\""), "defined twice"),
            (GOOD.replace("destination = \"/bundle\"", "destination = \"bundle\""), "absolute"),
            (GOOD.replace("name = \"shop\"", "name = \"shop\"\ncolour = 1"), "colour"),
            (
                GOOD.replace(
                    "source = \"fallback.wasm\"",
                    "source = \"fallback.wasm\"\nallowed_outbound_hosts = [\"example.com\"]",
                ),
                "needs a scheme",
            ),
            (
                GOOD.replace("source = \"fallback.wasm\"", "source = \"fallback.wasm\"\nfiles = [\"static/**\"]"),
                "static/**",
            ),
            (
                GOOD.replace("source = \"fallback.wasm\"", "source = \"fallback.wasm\"\nai_models = [\"All MiniLM\"]"),
                "`All MiniLM` must be a model name",
            ),
            (
                GOOD.replace(
                    "source = \"fallback.wasm\"",
                    "source = \"fallback.wasm\"\nvariables = { x = \"{{ nope }}\" }",
                ),
                "refers to `nope`, which is not under [variables]",
            ),
            (
                GOOD.replace("[application]", "[variables]\nkey = { required = true }\n[application]"),
                "`key` is required and has no value; set SPIN_VARIABLE_KEY",
            ),
            (
                GOOD.replace("[application]", "[variables]\nkey = { defualt = \"x\" }\n[application]"),
                "unknown field `defualt`",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", app(&text).unwrap_err());
            assert!(err.contains(expected), "expected `{expected}` in: {err}");
        }
    }
}
