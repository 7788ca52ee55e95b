//! `edgerec publish --edge --out DIR`: the Spin app for `spin deploy`, with
//! public artifacts only.
//!
//! DIR gets `spin.toml` (each model mount pointing at the version that
//! serves now, from the model's version log), the components, and the
//! bundles they mount, at the same relative paths. Nothing is written
//! unless every check passes:
//!
//! - **No private data** in any bundle file or the manifest: no string that
//!   looks like an e-mail address and, given the private host's `--config`,
//!   no user id of its store and no pseudonym (hex or raw) as a whole token.
//!   A user id that is also a catalog item id is public by definition and
//!   is not counted. Components are code built from this repository, not
//!   data, and are not scanned.
//! - **What Spin serves**: Spin's `fermyon:spin/llm` embeddings know one
//!   model, `all-minilm-l6-v2`; a component whose `ai_models` lists another
//!   (an encoder from `edgerec tune-encoder`, which our host serves by
//!   name) is refused, with the way that works on Spin: the encoder inside
//!   the component (`encoder = "tract"`, mounted at `/encoder`).
//! - **The edge's limits**: the whole app under `--max-app-mib`, and each
//!   component's memory after loading its bundle (measured by
//!   pre-initializing it in our host) under `--max-memory-mib`.
//!
//! Every refusal names the file (or component) and the limit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::ITEMS_FILE;
use edgerec_core::index::ItemIndex;
use edgerec_host::config::{HostConfig, Settings};
use edgerec_host::manifest;

/// `edgerec publish` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Publish the public edge app (the only kind there is: the private zone is never published).
    #[arg(long, required = true)]
    edge: bool,
    /// The Spin manifest to publish.
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Where to write the app (must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
    /// The private host's config: its user store's ids are searched for in every file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Largest app, MiB (Fermyon Cloud takes 50 MiB per app).
    #[arg(long, default_value_t = 50)]
    max_app_mib: u64,
    /// Largest memory of one component after loading its bundle, MiB (Spin's default instance limit is 128).
    #[arg(long, default_value_t = 128)]
    max_memory_mib: u64,
}

/// The one embeddings model Spin's `fermyon:spin/llm` serves (any other
/// name is `model-not-supported` there).
const SPIN_EMBEDDINGS_MODEL: &str = "all-minilm-l6-v2";

/// A file of the published app: where it comes from, where it goes.
struct Entry {
    from: PathBuf,
    to: PathBuf,
    scan: bool,
}

/// Runs `edgerec publish`.
pub fn run(args: Args) -> Result<()> {
    let _ = args.edge;
    if args.out.exists() && std::fs::read_dir(&args.out)?.next().is_some() {
        bail!("--out {}: exists and is not empty; publish into a new directory", args.out.display());
    }
    let app_dir = args.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let app = manifest::App::load(&args.manifest)?;
    let relative = |p: &Path| -> Result<PathBuf> {
        let abs = std::path::absolute(p)?;
        let base = std::path::absolute(&app_dir)?;
        abs.strip_prefix(&base)
            .map(Path::to_path_buf)
            .with_context(|| format!("{} is outside the app's directory {}", p.display(), app_dir.display()))
    };

    // The manifest with each mount at its serving version.
    let text = std::fs::read_to_string(&args.manifest).with_context(|| args.manifest.display().to_string())?;
    let mut raw: toml::Table = toml::from_str(&text).with_context(|| args.manifest.display().to_string())?;
    let mut entries: Vec<Entry> = Vec::new();
    let components = raw.get_mut("component").and_then(|c| c.as_table_mut()).context("spin.toml has no components")?;
    for (id, component) in app.components.iter() {
        if let Some(model) = component.ai_models.iter().find(|m| *m != SPIN_EMBEDDINGS_MODEL) {
            bail!(
                "refusing to publish: component `{id}` lists ai_models `{model}`, and Spin's llm embeddings serve only \
                 {SPIN_EMBEDDINGS_MODEL}; run that encoder inside the component (variable encoder = \"tract\", its \
                 directory mounted at /encoder after scripts/export-onnx)"
            );
        }
        let table = components.get_mut(id).and_then(|c| c.as_table_mut()).context("component vanished")?;
        let mounts = table.get_mut("files").and_then(|f| f.as_array_mut());
        for (mount, (source, _)) in mounts.into_iter().flatten().zip(&component.files) {
            let rel = relative(source)?;
            if let Some(m) = mount.as_table_mut() {
                m.insert("source".into(), toml::Value::String(rel.to_string_lossy().into_owned()));
            }
            for file in walk(source)? {
                let to = rel.join(file.strip_prefix(source)?);
                entries.push(Entry { from: file, to, scan: true });
            }
        }
        entries.push(Entry { from: component.source.clone(), to: relative(&component.source)?, scan: false });
    }
    let manifest_text = toml::to_string_pretty(&raw)?;
    entries.sort_by(|a, b| a.to.cmp(&b.to));
    entries.dedup_by(|a, b| a.to == b.to);

    // Private data.
    let finder = private_finder(args.config.as_deref(), &app)?;
    let email =
        regex::bytes::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").expect("valid");
    let check = |name: &str, bytes: &[u8]| -> Result<()> {
        if let Some(m) = email.find(bytes) {
            bail!(
                "refusing to publish: {name} holds an e-mail-like string at byte {} (private data never goes to the edge)",
                m.start()
            );
        }
        if let Some((found, at)) = finder.as_ref().and_then(|f| f.find(bytes)) {
            bail!("refusing to publish: {name} holds {found} at byte {at} (private data never goes to the edge)");
        }
        Ok(())
    };
    check("spin.toml", manifest_text.as_bytes())?;
    let mut total = manifest_text.len() as u64;
    for e in &entries {
        let bytes = std::fs::read(&e.from).with_context(|| e.from.display().to_string())?;
        total += bytes.len() as u64;
        if e.scan {
            check(&e.to.display().to_string(), &bytes)?;
        }
    }
    if total > args.max_app_mib << 20 {
        let largest = entries.iter().max_by_key(|e| std::fs::metadata(&e.from).map_or(0, |m| m.len()));
        bail!(
            "refusing to publish: the app is {:.1} MiB, over --max-app-mib {} (largest file: {})",
            total as f64 / (1 << 20) as f64,
            args.max_app_mib,
            largest.map_or(String::new(), |e| e.to.display().to_string())
        );
    }

    // Memory per component, measured in our host, with a key-value
    // directory of its own (a running host may hold the app's).
    let scratch = std::env::temp_dir().join(format!("edgerec-publish-{}", std::process::id()));
    let memory = component_memory(&args.manifest, &app, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let memory = memory?;
    if let Some((id, mib)) = memory.iter().find(|(_, mib)| *mib > args.max_memory_mib as f64) {
        bail!(
            "refusing to publish: component `{id}` needs {mib:.1} MiB of memory after loading its bundle, over \
             --max-memory-mib {}",
            args.max_memory_mib
        );
    }

    // Write: files first, the manifest last.
    for e in &entries {
        let to = args.out.join(&e.to);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        std::fs::copy(&e.from, &to).with_context(|| format!("copying {} to {}", e.from.display(), to.display()))?;
    }
    std::fs::write(args.out.join("spin.toml"), &manifest_text)?;
    println!(
        "published {} ({} files, {:.1} MiB; limit {} MiB) to {}",
        app.name,
        entries.len() + 1,
        total as f64 / (1 << 20) as f64,
        args.max_app_mib,
        args.out.display()
    );
    for (id, mib) in memory {
        println!("  {id}: {mib:.1} MiB of memory after loading (limit {} MiB)", args.max_memory_mib);
    }
    if args.config.is_none() {
        println!("  (no --config: checked for e-mail-like strings only, not for the private store's user ids)");
    }
    println!("deploy it: cd {} && spin deploy", args.out.display());
    Ok(())
}

/// Each component's memory after loading its bundle (pre-initialized in our host), MiB.
fn component_memory(manifest: &Path, app: &manifest::App, kv_dir: &Path) -> Result<Vec<(String, f64)>> {
    let settings = Settings { kv_dir: Some(kv_dir.to_path_buf()), ..Settings::default() };
    let runtime = edgerec_host::runtime::Runtime::new(HostConfig::new(settings, manifest)?)?;
    let mut memory = Vec::new();
    for (id, component) in &app.components {
        let function = edgerec_host::function::load(&runtime, component)?;
        memory.push((id.clone(), function.memory_bytes as f64 / (1 << 20) as f64));
    }
    Ok(memory)
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    Ok(out)
}

/// Finds the private store's user ids and pseudonyms in bytes.
struct PrivateFinder {
    matcher: aho_corasick::AhoCorasick,
    labels: Vec<String>,
}

impl PrivateFinder {
    /// The first needle found as a whole token, described, and where.
    fn find(&self, bytes: &[u8]) -> Option<(String, usize)> {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        for m in self.matcher.find_overlapping_iter(bytes) {
            let before = m.start().checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(m.end()).copied();
            let raw = self.labels[m.pattern().as_usize()].starts_with("a raw");
            if raw || (!before.is_some_and(word) && !after.is_some_and(word)) {
                return Some((self.labels[m.pattern().as_usize()].clone(), m.start()));
            }
        }
        None
    }
}

fn private_finder(config: Option<&Path>, app: &manifest::App) -> Result<Option<PrivateFinder>> {
    let Some(config) = config else { return Ok(None) };
    let (_, users) = crate::tokens::private_host(config)?;
    // Ids that are also catalog item ids are public already.
    let mut public: HashSet<String> = HashSet::new();
    for component in app.components.values() {
        for (source, _) in &component.files {
            if let Ok(index) = ItemIndex::read(&source.join(ITEMS_FILE)) {
                public.extend((0..index.len()).map(|i| index.id(i).to_string()));
            }
        }
    }
    let mut needles: Vec<Vec<u8>> = Vec::new();
    let mut labels = Vec::new();
    let mut seen = HashSet::new();
    for (pseudonym, event) in users.all_events()? {
        if !seen.insert(pseudonym.clone()) {
            continue;
        }
        // Short ids would match by chance in any binary file.
        if event.user_id.len() >= 4 && !public.contains(&event.user_id) {
            needles.push(event.user_id.as_bytes().to_vec());
            labels.push("a user id from the private store".to_string());
        }
        needles.push(pseudonym.as_bytes().to_vec());
        labels.push("a user pseudonym from the private store".to_string());
        needles.push(hex::decode(&pseudonym)?);
        labels.push("a raw user pseudonym from the private store".to_string());
    }
    if needles.is_empty() {
        return Ok(None);
    }
    let matcher = aho_corasick::AhoCorasick::new(&needles)?;
    Ok(Some(PrivateFinder { matcher, labels }))
}
