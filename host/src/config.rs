//! The host's configuration: which zone it is and how it runs the
//! functions, from three places, highest first:
//!
//! 1. the command line (`edgerec serve --memory-limit-mib 128`),
//! 2. the environment (`EDGEREC_MEMORY_LIMIT_MIB=128`),
//! 3. the `--config` file (TOML, `memory_limit_mib = 128`),
//!
//! then the defaults. [`Settings`] is the raw shape shared by all three
//! (every key is a flag with an environment fallback, so `edgerec serve
//! --help` documents each one); [`HostConfig`] is what the host runs with,
//! validated once: ranges checked, paths resolved, unknown file keys refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Which side of the hybrid deployment this host is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// Public edge: stateless, public artifacts only.
    #[default]
    Edge,
    /// Private on-prem zone.
    Private,
}

impl Zone {
    /// `edge` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Edge => "edge",
            Zone::Private => "private",
        }
    }
}

/// Every host setting, as the command line, the environment or the
/// `--config` file gives it (each optional; [`HostConfig::new`] fills in the
/// defaults).
///
/// ```toml
/// zone = "edge"                         # or "private"
/// cors_origin = "https://shop.example"  # overrides EDGEREC_CORS_ORIGIN of every component
/// memory_limit_mib = 256
/// deadline_ms = 30000
/// max_instances = 128
/// cache_dir = "/var/cache/edgerec"
/// preinit = true
/// kv_dir = "/var/lib/edgerec/kv"
/// ai_models_dir = "/var/lib/edgerec/ai-models"  # <dir>/<model>/, as Spin's .spin/ai-models
/// onnxruntime = "/opt/onnxruntime/lib/libonnxruntime.so"  # for ONNX models (else tract)
///
/// # The private zone (see `examples/private.toml`)
/// store = "sqlite:state/users.sqlite"   # or postgres://user@host/db
/// key_file = "state/data.key"           # or EDGEREC_DATA_KEY
/// tokens_file = "state/tokens.json"
/// rate_limit_per_second = 50
/// rate_limit_burst = 100
/// history_limit = 50
///
/// [placement."/api/search"]             # run this route on the edge, locally if it is late
/// edge = "http://edge.shop.example:3000"
/// deadline_ms = 250
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Which zone this host is: `edge` (stateless, public artifacts) or `private` (default: edge).
    #[arg(long, value_enum, env = "EDGEREC_ZONE")]
    pub zone: Option<Zone>,
    /// `access-control-allow-origin` for every function, overriding `EDGEREC_CORS_ORIGIN` in spin.toml.
    #[arg(long, env = "EDGEREC_CORS_ORIGIN", value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
    /// Linear-memory limit per instance, MiB (16 to 4096; default 256: the encoder functions start at about 206).
    #[arg(long, env = "EDGEREC_MEMORY_LIMIT_MIB", value_name = "MIB")]
    pub memory_limit_mib: Option<usize>,
    /// Deadline per request, milliseconds (10 to 600000; default 30000).
    #[arg(long, env = "EDGEREC_DEADLINE_MS", value_name = "MS")]
    pub deadline_ms: Option<u64>,
    /// Instances that may run at once (1 to 1000; default 128).
    #[arg(long, env = "EDGEREC_MAX_INSTANCES", value_name = "N")]
    pub max_instances: Option<u32>,
    /// Where compiled components and snapshots are cached (default $EDGEREC_CACHE_DIR/components, else ~/.cache/edgerec/components).
    #[arg(long, env = "EDGEREC_HOST_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Pre-initialize components that export `preinit` (true or false; default true).
    #[arg(long, env = "EDGEREC_PREINIT", value_name = "BOOL")]
    pub preinit: Option<bool>,
    /// Where key-value stores live (default .edgerec/kv beside the manifest).
    #[arg(long, env = "EDGEREC_KV_DIR", value_name = "DIR")]
    pub kv_dir: Option<PathBuf>,
    /// Where the models of `ai_models` live, one directory per model name (default .spin/ai-models beside the manifest, where `spin up` reads them).
    #[arg(long, env = "EDGEREC_AI_MODELS_DIR", value_name = "DIR")]
    pub ai_models_dir: Option<PathBuf>,
    /// ONNX Runtime's library, for ONNX models (default .edgerec/lib/libonnxruntime.so beside the manifest, where scripts/setup puts it; without it ONNX models run on tract).
    #[arg(long, env = "EDGEREC_ONNXRUNTIME", value_name = "FILE")]
    pub onnxruntime: Option<PathBuf>,
    /// Private zone: the user store, sqlite:PATH or postgres://... (default sqlite:.edgerec/users.sqlite beside the config file, else the manifest).
    #[arg(long, env = "EDGEREC_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Private zone: file holding the data key (base64 of 32 bytes); EDGEREC_DATA_KEY wins.
    #[arg(long, env = "EDGEREC_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Private zone: the tokens file (hashes and scopes; default .edgerec/tokens.json beside the config file, else the manifest).
    #[arg(long, env = "EDGEREC_TOKENS_FILE", value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Private zone: requests per second each token may make, on average (1 to 1000000; default 100).
    #[arg(long, env = "EDGEREC_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub rate_limit_per_second: Option<u32>,
    /// Private zone: requests a token may make at once above its rate (1 to 1000000; default 200).
    #[arg(long, env = "EDGEREC_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Private zone: a user's most recent events that make their history (1 to 1000; default 50).
    #[arg(long, env = "EDGEREC_HISTORY_LIMIT", value_name = "N")]
    pub history_limit: Option<usize>,
    /// Private zone: per route, an edge that serves it (file only).
    #[arg(skip)]
    #[serde(default)]
    pub placement: std::collections::BTreeMap<String, Placement>,
    /// Per model (by name, the directory `models/<name>` its functions
    /// mount): updates and A/B tests (file only).
    #[arg(skip)]
    #[serde(default)]
    pub models: std::collections::BTreeMap<String, ModelSettings>,
    /// The directory of the `--config` file (set by [`Settings::read`]).
    #[arg(skip)]
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
}

/// Where a route runs: on an edge host, and here when the edge is late.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The edge's base URL (`http://host:port`); the route's path is appended.
    pub edge: String,
    /// How long to wait for the edge before answering locally (10 to 60000 ms).
    pub deadline_ms: u64,
}

/// `[models.<name>]`: how a model keeps learning and what it A/B tests.
///
/// ```toml
/// [models.online-retail]
/// data = "../data/online-retail/prepared"  # the log it was first trained on (private)
/// update_every = "1d"                       # scheduled update: 30m, 6h, 1d (private)
/// gate_metric = "recall@20"                 # or ndcg@10
/// gate_margin = 0.01                        # promote unless 1% worse than serving
/// gate_days = 7                             # newest days held out for the gate
/// challenger = "4"                          # serve version 4 ...
/// challenger_share = 0.1                    # ... to 10% of shoppers
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The prepared base log updates read (relative to the config file).
    pub data: Option<PathBuf>,
    /// How often the private host updates the model (`30m`, `6h`, `1d`).
    pub update_every: Option<String>,
    /// The gate's metric.
    pub gate_metric: Option<String>,
    /// The gate's margin (share of the serving version's metric).
    pub gate_margin: Option<f64>,
    /// Days held out for the gate.
    pub gate_days: Option<f64>,
    /// Older examples replayed per new one.
    pub replay: Option<f64>,
    /// Training epochs of an update.
    pub epochs: Option<usize>,
    /// A version served to a share of shoppers beside the serving one.
    pub challenger: Option<String>,
    /// That share, in (0, 1).
    pub challenger_share: Option<f64>,
}

impl ModelSettings {
    /// `update_every` as a duration; names the setting when it is malformed.
    pub fn update_interval(&self, name: &str) -> Result<Option<Duration>> {
        let Some(text) = self.update_every.as_deref() else { return Ok(None) };
        let (number, unit) =
            text.trim().split_at(text.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let seconds = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => 0,
        };
        match number.parse::<u64>() {
            Ok(n) if n > 0 && seconds > 0 && n * seconds >= 10 => Ok(Some(Duration::from_secs(n * seconds))),
            _ => bail!(
                "models.\"{name}\".update_every `{text}`: expected a number and s, m, h or d, at least 10s, e.g. \"6h\""
            ),
        }
    }

    fn validate(&self, name: &str) -> Result<()> {
        if self.update_interval(name)?.is_some() && self.data.is_none() {
            bail!(
                "models.\"{name}\".update_every needs data = \"<the prepared log the model was trained on>\" (updates \
                 learn from it and the feedback)"
            );
        }
        match (&self.challenger, self.challenger_share) {
            (Some(_), Some(share)) if share > 0.0 && share < 1.0 => {}
            (Some(_), _) => {
                bail!("models.\"{name}\".challenger needs challenger_share, a share between 0 and 1 (e.g. 0.1)")
            }
            (None, Some(_)) => bail!("models.\"{name}\".challenger_share is set without a challenger version"),
            (None, None) => {}
        }
        Ok(())
    }
}

impl Settings {
    /// Reads a `--config` file; unknown keys are an error that names them.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading --config {}", path.display()))?;
        let mut settings: Self = toml::from_str(&text).with_context(|| format!("--config {}", path.display()))?;
        // Paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in [
            &mut settings.cache_dir,
            &mut settings.kv_dir,
            &mut settings.ai_models_dir,
            &mut settings.onnxruntime,
            &mut settings.key_file,
            &mut settings.tokens_file,
        ]
        .into_iter()
        .flatten()
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        for model in settings.models.values_mut() {
            if let Some(data) = &mut model.data
                && data.is_relative()
            {
                *data = base.join(&*data);
            }
        }
        settings.config_dir = Some(base.to_path_buf());
        Ok(settings)
    }

    /// `self`, with what it leaves unset taken from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            zone: self.zone.or(lower.zone),
            cors_origin: self.cors_origin.or(lower.cors_origin),
            memory_limit_mib: self.memory_limit_mib.or(lower.memory_limit_mib),
            deadline_ms: self.deadline_ms.or(lower.deadline_ms),
            max_instances: self.max_instances.or(lower.max_instances),
            cache_dir: self.cache_dir.or(lower.cache_dir),
            preinit: self.preinit.or(lower.preinit),
            kv_dir: self.kv_dir.or(lower.kv_dir),
            ai_models_dir: self.ai_models_dir.or(lower.ai_models_dir),
            onnxruntime: self.onnxruntime.or(lower.onnxruntime),
            store: self.store.or(lower.store),
            key_file: self.key_file.or(lower.key_file),
            tokens_file: self.tokens_file.or(lower.tokens_file),
            rate_limit_per_second: self.rate_limit_per_second.or(lower.rate_limit_per_second),
            rate_limit_burst: self.rate_limit_burst.or(lower.rate_limit_burst),
            history_limit: self.history_limit.or(lower.history_limit),
            placement: if self.placement.is_empty() { lower.placement } else { self.placement },
            models: if self.models.is_empty() { lower.models } else { self.models },
            config_dir: self.config_dir.or(lower.config_dir),
        }
    }
}

/// The private zone's settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateConfig {
    /// The user store.
    pub store: crate::users::StoreUrl,
    /// The key file, when the key does not come from `EDGEREC_DATA_KEY`.
    pub key_file: Option<PathBuf>,
    /// The tokens file.
    pub tokens_file: PathBuf,
    /// Requests per second per token.
    pub rate_per_second: u32,
    /// Burst per token.
    pub rate_burst: u32,
    /// Most recent events that make a user's history.
    pub history_limit: usize,
    /// Routes served by an edge, by route path.
    pub placement: std::collections::BTreeMap<String, Placement>,
}

impl PrivateConfig {
    /// Validates the private-zone part of `settings`; defaults live in
    /// `.edgerec/` beside the config file, or beside the manifest without one.
    pub fn new(settings: &Settings, manifest: &Path) -> Result<Self> {
        let app_dir = manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let state_dir = settings.config_dir.as_deref().unwrap_or(app_dir).join(".edgerec");
        let store = match &settings.store {
            Some(url) => crate::users::StoreUrl::parse(url, settings.config_dir.as_deref().unwrap_or(app_dir))
                .context("store")?,
            None => crate::users::StoreUrl::Sqlite(state_dir.join("users.sqlite")),
        };
        for (route, placement) in &settings.placement {
            if !route.starts_with("/api/") {
                bail!("placement.\"{route}\": only function routes (/api/...) can be placed on an edge");
            }
            let uri: http::Uri = placement
                .edge
                .parse()
                .with_context(|| format!("placement.\"{route}\".edge `{}` is not a URL", placement.edge))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                bail!("placement.\"{route}\".edge `{}` must be http://host:port", placement.edge);
            }
            in_range(&format!("placement.\"{route}\".deadline_ms"), Some(placement.deadline_ms), 10, 60_000, 0)?;
        }
        Ok(Self {
            store,
            key_file: settings.key_file.clone(),
            tokens_file: settings.tokens_file.clone().unwrap_or_else(|| state_dir.join("tokens.json")),
            rate_per_second: in_range("rate_limit_per_second", settings.rate_limit_per_second, 1, 1_000_000, 100)?,
            rate_burst: in_range("rate_limit_burst", settings.rate_limit_burst, 1, 1_000_000, 200)?,
            history_limit: in_range("history_limit", settings.history_limit, 1, 1000, 50)?,
            placement: settings.placement.clone(),
        })
    }
}

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
    /// `recommend` needs under 16 MiB.
    ///
    /// 30 s: the largest legal cold-start request (1,000 new items) encodes
    /// for about 5 s on a 2-core machine; the deadline stops runaway code,
    /// not honest work.
    fn default() -> Self {
        Self { memory_bytes: 256 << 20, deadline: Duration::from_secs(30), max_instances: 128 }
    }
}

/// What the host runs with: [`Settings`] validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Which zone this host is.
    pub zone: Zone,
    /// `access-control-allow-origin` for every function, if overridden.
    pub cors_origin: Option<String>,
    /// Per-request limits.
    pub limits: Limits,
    /// Where compiled components and snapshots are cached.
    pub cache_dir: PathBuf,
    /// Whether components that export `preinit` are pre-initialized.
    pub preinit: bool,
    /// Where the key-value stores live.
    pub kv_dir: PathBuf,
    /// Where the models of `ai_models` live (`<dir>/<model>/encoder.json`).
    pub ai_models_dir: PathBuf,
    /// ONNX Runtime's library (used if it is there).
    pub onnxruntime: PathBuf,
    /// The private zone's settings (zone `private` only).
    pub private: Option<PrivateConfig>,
    /// `[models.<name>]`, validated.
    pub models: std::collections::BTreeMap<String, ModelSettings>,
}

impl HostConfig {
    /// Validates `settings` for the app at `manifest` (relative defaults
    /// resolve beside it). Every error names the setting and its range.
    pub fn new(settings: Settings, manifest: &Path) -> Result<Self> {
        let d = Limits::default();
        let memory_mib = in_range("memory_limit_mib", settings.memory_limit_mib, 16, 4096, d.memory_bytes >> 20)?;
        let deadline_ms = in_range("deadline_ms", settings.deadline_ms, 10, 600_000, d.deadline.as_millis() as u64)?;
        let max_instances = in_range("max_instances", settings.max_instances, 1, 1000, d.max_instances)?;
        if let Some(origin) = &settings.cors_origin
            && http::HeaderValue::from_str(origin).is_err()
        {
            bail!(
                "cors_origin `{origin}` is not a valid header value; use an origin such as https://shop.example or *"
            );
        }
        let app_dir = manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let zone = settings.zone.unwrap_or_default();
        for (name, model) in &settings.models {
            model.validate(name)?;
            if zone == Zone::Edge && (model.update_every.is_some() || model.data.is_some()) {
                bail!(
                    "models.\"{name}\": update_every and data are private-zone settings (updates read the users' \
                     feedback), and this host is an edge"
                );
            }
        }
        let private = match zone {
            Zone::Private => Some(PrivateConfig::new(&settings, manifest)?),
            Zone::Edge => {
                let private_only = [
                    ("store", settings.store.is_some()),
                    ("key_file", settings.key_file.is_some()),
                    ("tokens_file", settings.tokens_file.is_some()),
                    ("placement", !settings.placement.is_empty()),
                ];
                if let Some((key, _)) = private_only.iter().find(|(_, set)| *set) {
                    bail!(
                        "{key} is a private-zone setting, and this host is an edge; set zone = \"private\" or remove it"
                    );
                }
                None
            }
        };
        Ok(Self {
            zone,
            cors_origin: settings.cors_origin,
            limits: Limits {
                memory_bytes: memory_mib << 20,
                deadline: Duration::from_millis(deadline_ms),
                max_instances,
            },
            cache_dir: settings.cache_dir.unwrap_or_else(default_cache_dir),
            preinit: settings.preinit.unwrap_or(true),
            kv_dir: settings.kv_dir.unwrap_or_else(|| app_dir.join(".edgerec").join("kv")),
            ai_models_dir: settings.ai_models_dir.unwrap_or_else(|| app_dir.join(".spin").join("ai-models")),
            onnxruntime: settings
                .onnxruntime
                .unwrap_or_else(|| app_dir.join(edgerec_core::encoder::onnx_runtime::DEFAULT_LIBRARY)),
            private,
            models: settings.models,
        })
    }

    /// The defaults, for the app at `manifest`.
    pub fn defaults(manifest: &Path) -> Self {
        Self::new(Settings::default(), manifest).expect("the defaults are in range")
    }
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    min: T,
    max: T,
    default: T,
) -> Result<T> {
    match value {
        None => Ok(default),
        Some(v) if v >= min && v <= max => Ok(v),
        Some(v) => bail!("{key} is {v}; it must be between {min} and {max}"),
    }
}

/// The default directory for compiled components: `$EDGEREC_CACHE_DIR/components`,
/// else `$XDG_CACHE_HOME/edgerec/components`, else `~/.cache/edgerec/components`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEREC_CACHE_DIR") {
        return PathBuf::from(dir).join("components");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("edgerec").join("components")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_refuses_unknown_keys_and_resolves_paths_beside_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        std::fs::write(&path, "zone = \"private\"\nkv_dir = \"state/kv\"\nmemory_limit_mib = 128\n").unwrap();
        let s = Settings::read(&path).unwrap();
        assert_eq!(s.zone, Some(Zone::Private));
        assert_eq!(s.kv_dir, Some(dir.path().join("state/kv")));
        std::fs::write(&path, "memory_limit = 128\n").unwrap();
        let err = format!("{:#}", Settings::read(&path).unwrap_err());
        assert!(err.contains("unknown field `memory_limit`") && err.contains("host.toml"), "{err}");
        std::fs::write(&path, "zone = \"cloud\"\n").unwrap();
        assert!(format!("{:#}", Settings::read(&path).unwrap_err()).contains("cloud"));
    }

    #[test]
    fn model_settings_are_checked_naming_the_model_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        let manifest = dir.path().join("spin.toml");
        let config = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Settings::read(&path).and_then(|s| HostConfig::new(s, &manifest))
        };
        let ok = config(
            "zone = \"private\"\n[models.shop]\ndata = \"prepared\"\nupdate_every = \"6h\"\n\
             challenger = \"4\"\nchallenger_share = 0.1\n",
        )
        .unwrap();
        let shop = &ok.models["shop"];
        assert_eq!(shop.data.as_deref(), Some(dir.path().join("prepared").as_path()), "relative to the file");
        assert_eq!(shop.update_interval("shop").unwrap(), Some(Duration::from_secs(6 * 3600)));
        for (text, needle) in [
            ("[models.shop]\nupdate_every = \"soon\"\n", "models.\"shop\".update_every `soon`"),
            ("[models.shop]\nupdate_every = \"1d\"\n", "update_every needs data"),
            ("[models.shop]\ndata = \"d\"\nupdate_every = \"2s\"\n", "at least 10s"),
            ("[models.shop]\nchallenger = \"4\"\n", "needs challenger_share"),
            ("[models.shop]\nchallenger = \"4\"\nchallenger_share = 1.5\n", "between 0 and 1"),
            ("[models.shop]\nchallenger_share = 0.5\n", "without a challenger"),
            ("zone = \"edge\"\n[models.shop]\ndata = \"d\"\nupdate_every = \"1d\"\n", "this host is an edge"),
            ("[models.shop]\nshare = 0.5\n", "unknown field `share`"),
        ] {
            let text = if text.starts_with("zone") { text.to_string() } else { format!("zone = \"private\"\n{text}") };
            let err = format!("{:#}", config(&text).unwrap_err());
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn the_command_line_wins_over_the_file_and_ranges_are_checked() {
        let flags = Settings { memory_limit_mib: Some(64), ..Default::default() };
        let file = Settings { memory_limit_mib: Some(512), deadline_ms: Some(500), ..Default::default() };
        let config = HostConfig::new(flags.or(file), Path::new("/app/spin.toml")).unwrap();
        assert_eq!(config.limits.memory_bytes, 64 << 20);
        assert_eq!(config.limits.deadline, Duration::from_millis(500));
        assert_eq!(config.kv_dir, Path::new("/app/.edgerec/kv"));
        assert_eq!((config.zone, config.preinit), (Zone::Edge, true));
        for (settings, needle) in [
            (
                Settings { memory_limit_mib: Some(8), ..Default::default() },
                "memory_limit_mib is 8; it must be between 16 and 4096",
            ),
            (Settings { deadline_ms: Some(0), ..Default::default() }, "deadline_ms is 0"),
            (Settings { max_instances: Some(0), ..Default::default() }, "max_instances is 0"),
            (Settings { cors_origin: Some("a\nb".into()), ..Default::default() }, "cors_origin"),
        ] {
            let err = HostConfig::new(settings, Path::new("spin.toml")).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
