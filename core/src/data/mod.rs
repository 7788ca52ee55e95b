//! Raw shop logs in, a clean catalog and event log out; then splits.
//!
//! Every input format ends in the same three files (`catalog.csv`,
//! `events.csv`, `report.json`). Each reader counts every dropped row under
//! the first rule it breaks, so a report always adds up:
//! `rows_in = rows_kept + Σ dropped`.
//!
//! | format | reader |
//! |---|---|
//! | `online-retail` | [`retail::prepare_online_retail`] |
//! | `csv`, `jsonl` with a mapping file | [`mapped::prepare_mapped`] |
//! | `amazon-jsonl` (reviews + `meta_*.json.gz`) | [`mapped::prepare_amazon`] |
//! | `recbole` (`.inter` + `.text`, already split) | [`recbole::prepare_recbole`] |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub mod mapped;
pub mod recbole;
pub mod retail;
pub mod split;

pub use retail::{NON_PRODUCT_CODES, parse_retail_time, prepare_online_retail};

/// File names inside a prepared data directory.
pub const CATALOG_FILE: &str = "catalog.csv";
/// The cleaned event log.
pub const EVENTS_FILE: &str = "events.csv";
/// Counts of rows in, kept and dropped per rule.
pub const REPORT_FILE: &str = "report.json";

/// Why a raw row was dropped. A reader applies the rules in this order and
/// counts a row under the first it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropRule {
    /// Wrong number of fields, unparsable number or JSON, or not UTF-8.
    Malformed,
    /// The time field is missing or not a date.
    BadTime,
    /// Invoice number starts with `C` (Online Retail).
    Cancellation,
    /// No user id (e.g. guest checkout).
    MissingUser,
    /// No item id.
    MissingItem,
    /// An event type the mapping does not keep.
    FilteredEventType,
    /// Postage, fees, manual adjustments, vouchers (Online Retail).
    NonProductCode,
    /// Quantity ≤ 0.
    NonPositiveQuantity,
    /// Unit price ≤ 0 (Online Retail).
    NonPositivePrice,
    /// An item index with no entry in the item map (RecBole).
    UnknownItem,
}

impl DropRule {
    /// The key used in `report.json`.
    pub fn key(self) -> &'static str {
        match self {
            DropRule::Malformed => "malformed",
            DropRule::BadTime => "bad_time",
            DropRule::Cancellation => "cancellation",
            DropRule::MissingUser => "missing_user",
            DropRule::MissingItem => "missing_item",
            DropRule::FilteredEventType => "filtered_event_type",
            DropRule::NonProductCode => "non_product_code",
            DropRule::NonPositiveQuantity => "non_positive_quantity",
            DropRule::NonPositivePrice => "non_positive_price",
            DropRule::UnknownItem => "unknown_item",
        }
    }
}

/// Dropped-row counts for the rules one reader applies (all of them listed,
/// zeros included, so a report shows what was checked).
#[derive(Debug, Clone)]
pub struct DropCounts {
    counts: Vec<(DropRule, u64)>,
}

impl DropCounts {
    /// Counters for `rules`, all zero.
    pub fn new(rules: &[DropRule]) -> Self {
        Self { counts: rules.iter().map(|&r| (r, 0)).collect() }
    }

    /// Counts one row under `rule`.
    pub fn add(&mut self, rule: DropRule) {
        match self.counts.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((rule, 1)),
        }
    }

    /// The counts keyed for `report.json`.
    pub fn into_map(self) -> BTreeMap<String, u64> {
        self.counts.into_iter().map(|(r, n)| (r.key().to_string(), n)).collect()
    }
}

/// One catalog item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItem {
    /// The shop's item id.
    pub item_id: String,
    /// Display title.
    pub title: String,
    /// What the text encoder reads (title plus any mapped text fields).
    pub text: String,
    /// Time of the first kept event, when the source has times.
    pub first_seen: Option<DateTime<Utc>>,
}

/// One interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// User id.
    pub user_id: String,
    /// Item id.
    pub item_id: String,
    /// When it happened (UTC); empty for sources without times (RecBole),
    /// whose events are in each user's chronological order instead.
    pub ts: Option<DateTime<Utc>>,
    /// Event type (`purchase`, `review`, `click`, ...).
    pub event: String,
    /// Units (1 where the source has no quantity).
    pub quantity: f64,
    /// Unit price, where the source has one.
    pub price: Option<f64>,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareReport {
    /// Input format name.
    pub format: String,
    /// Input files read.
    pub inputs: Vec<String>,
    /// Data rows read (headers excluded).
    pub rows_in: u64,
    /// Rows that became events.
    pub rows_kept: u64,
    /// Dropped rows per rule.
    pub dropped: BTreeMap<String, u64>,
    /// Distinct users in the event log.
    pub users: usize,
    /// Items in the catalog.
    pub items: usize,
    /// Catalog items with no text of their own (their id is their title).
    #[serde(default)]
    pub items_without_text: usize,
    /// First event time.
    pub first_event: Option<DateTime<Utc>>,
    /// Last event time.
    pub last_event: Option<DateTime<Utc>>,
}

impl PrepareReport {
    /// Builds the report of a finished reader.
    pub fn new(
        format: &str,
        files: &[PathBuf],
        rows_in: u64,
        dropped: DropCounts,
        catalog: &[CatalogItem],
        events: &[Event],
    ) -> Self {
        let users: HashSet<&str> = events.iter().map(|e| e.user_id.as_str()).collect();
        let dropped = dropped.into_map();
        Self {
            format: format.into(),
            inputs: files.iter().map(|p| p.display().to_string()).collect(),
            rows_in,
            // What was not dropped was kept, whether a row became one event
            // (logs) or a whole history (RecBole).
            rows_kept: rows_in - dropped.values().sum::<u64>(),
            dropped,
            users: users.len(),
            items: catalog.len(),
            items_without_text: catalog.iter().filter(|c| c.text == c.item_id).count(),
            first_event: events.iter().filter_map(|e| e.ts).min(),
            last_event: events.iter().filter_map(|e| e.ts).max(),
        }
    }

    /// The report as an aligned plain-text table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![("rows in".into(), self.rows_in.to_string())];
        for (rule, n) in &self.dropped {
            rows.push((format!("  dropped: {rule}"), n.to_string()));
        }
        rows.push(("rows kept".into(), self.rows_kept.to_string()));
        rows.push(("users".into(), self.users.to_string()));
        rows.push(("items".into(), self.items.to_string()));
        if self.items_without_text > 0 {
            rows.push(("  items without text".into(), self.items_without_text.to_string()));
        }
        let span = match (self.first_event, self.last_event) {
            (Some(a), Some(b)) => format!("{} .. {}", a.format("%Y-%m-%d"), b.format("%Y-%m-%d")),
            _ => "no times".into(),
        };
        rows.push(("events span".into(), span));
        table(&rows)
    }
}

/// Two aligned columns in a box.
pub fn table(rows: &[(String, String)]) -> String {
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let v = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let line = format!("+{}+{}+\n", "-".repeat(w + 2), "-".repeat(v + 2));
    let mut out = line.clone();
    for (name, value) in rows {
        out += &format!("| {name:<w$} | {value:>v$} |\n");
    }
    out + &line
}

/// A prepared data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Items, sorted by id.
    pub catalog: Vec<CatalogItem>,
    /// Events, sorted by time then user (stable: same-time events keep
    /// their input order).
    pub events: Vec<Event>,
    /// What happened to every input row.
    pub report: PrepareReport,
    /// The split that came with the source (RecBole), if any.
    pub split: Option<split::Split>,
}

/// Expands directories into the files they hold whose names end with one of
/// `extensions` (lower-case, e.g. `.csv.gz`).
pub fn input_files(inputs: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
                    extensions.iter().any(|ext| name.ends_with(ext))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::Data(format!(
                    "--input {}: no {} file in this directory",
                    input.display(),
                    extensions.join(" or ")
                )));
            }
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(Error::Data(format!("--input {}: no such file or directory", input.display())));
        }
    }
    Ok(files)
}

/// Opens a file, transparently un-gzipping it when it starts with the gzip magic.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// A CSV reader over a (possibly gunzipped) file.
pub type CsvReader = csv::Reader<Box<dyn Read>>;

/// A CSV reader over `path` (gzipped or not) and the positions of the
/// `names` columns; a missing column is an error that names it and lists
/// the columns there are.
pub fn csv_columns<const N: usize>(path: &Path, names: [&str; N]) -> Result<(CsvReader, [usize; N])> {
    let mut reader = csv::Reader::from_reader(open_maybe_gz(path)?);
    let headers = reader.headers().map_err(|e| Error::Data(format!("{}: {e}", path.display())))?.clone();
    let mut positions = [0usize; N];
    for (slot, name) in positions.iter_mut().zip(names) {
        *slot = headers.iter().position(|h| h == name).ok_or_else(|| {
            let present: Vec<&str> = headers.iter().collect();
            Error::Data(format!("{}: no `{name}` column (columns: {})", path.display(), present.join(", ")))
        })?;
    }
    Ok((reader, positions))
}

/// Collapses runs of whitespace into one space and trims.
pub fn clean_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sorts events by time, then user; stable, so events with equal keys (one
/// basket, or a source without times) keep their input order.
pub fn sort_events(events: &mut [Event]) {
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.user_id.cmp(&b.user_id)));
}

/// Builds the catalog of every item that has an event: its text from
/// `texts` (id → (title, text)) when present, else its most frequent event
/// title (`titles`: id → title → count), else its id.
pub fn build_catalog(
    events: &[Event],
    texts: &HashMap<String, (String, String)>,
    titles: &HashMap<String, HashMap<String, u64>>,
) -> Vec<CatalogItem> {
    let mut first_seen: BTreeMap<&str, Option<DateTime<Utc>>> = BTreeMap::new();
    for e in events {
        let slot = first_seen.entry(e.item_id.as_str()).or_insert(e.ts);
        if let (Some(t), Some(s)) = (e.ts, *slot)
            && t < s
        {
            *slot = Some(t);
        }
    }
    first_seen
        .into_iter()
        .map(|(id, first)| {
            let (title, text) = texts.get(id).cloned().unwrap_or_else(|| {
                let title = titles
                    .get(id)
                    .and_then(|counts| counts.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))))
                    .map(|(t, _)| t.clone())
                    .unwrap_or_else(|| id.to_string());
                (title.clone(), title)
            });
            CatalogItem { item_id: id.to_string(), title, text, first_seen: first }
        })
        .collect()
}

/// Writes `catalog.csv`, `events.csv`, `report.json` (and the source's own
/// split, if any) into `dir`.
pub fn write_prepared(dir: &Path, prepared: &Prepared) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_csv(&dir.join(CATALOG_FILE), &prepared.catalog)?;
    write_csv(&dir.join(EVENTS_FILE), &prepared.events)?;
    let path = dir.join(REPORT_FILE);
    let text = serde_json::to_string_pretty(&prepared.report).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))?;
    match &prepared.split {
        Some(split) => split.write(dir),
        None => Ok(()),
    }
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    for row in rows {
        w.serialize(row).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| Error::Data(format!("{}: {e}; run `edgerec prepare` first", path.display())))?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| Error::Data(format!("{} row {}: {e}", path.display(), i + 2))))
        .collect()
}

/// Reads `dir/catalog.csv`.
pub fn read_catalog(dir: &Path) -> Result<Vec<CatalogItem>> {
    read_csv(&dir.join(CATALOG_FILE))
}

/// Reads `dir/events.csv`.
pub fn read_events(dir: &Path) -> Result<Vec<Event>> {
    read_csv(&dir.join(EVENTS_FILE))
}

/// Distinct users per item: the popularity used for the cold fallback.
pub fn distinct_buyers(events: &[Event]) -> HashMap<&str, f32> {
    let mut pairs: HashSet<(&str, &str)> = HashSet::new();
    let mut counts: HashMap<&str, f32> = HashMap::new();
    for e in events {
        if pairs.insert((e.item_id.as_str(), e.user_id.as_str())) {
            *counts.entry(e.item_id.as_str()).or_default() += 1.0;
        }
    }
    counts
}
