//! Any shop's CSV or JSON-lines log, read through a mapping file that says
//! which column is what; `amazon-jsonl` is this reader with a built-in
//! mapping.
//!
//! ```toml
//! # mapping.toml: the only thing a new shop writes
//! user = "customer_id"          # required
//! item = "sku"                  # required
//! time = "ordered_at"           # optional: unix seconds/ms, RFC 3339, `%Y-%m-%d[ %H:%M[:%S]]`
//! time_format = "%d/%m/%Y %H:%M" # optional: a chrono format for `time`
//! event = "action"              # optional, with keep_events
//! keep_events = ["purchase", "add_to_cart"]
//! quantity = "qty"              # optional; rows with quantity ≤ 0 are dropped
//! price = "unit_price"          # optional
//! title = "product_name"        # optional: item text taken from the event rows
//! text = ["product_name", "category"]
//!
//! [catalog]                     # optional: item text from a separate file
//! path = "products.csv"         # relative to the mapping file
//! item = "sku"
//! title = "name"
//! text = ["name", "brand", "category", "description"]
//! ```
//!
//! Files ending in `.jsonl`, `.json` or `.ndjson` (optionally `.gz`) are
//! read as one JSON object per line; field names are top-level keys, and
//! arrays of strings are joined with spaces. Everything else is CSV with a
//! header row. A mapping that names a CSV column the header lacks is an
//! error naming both; a JSON key no row has is an error too.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::{
    DropCounts, DropRule, Event, PrepareReport, Prepared, build_catalog, clean_text, input_files, open_maybe_gz,
    sort_events,
};
use crate::{Error, Result};

/// The rules the mapped reader applies, in order.
pub const RULES: [DropRule; 6] = [
    DropRule::Malformed,
    DropRule::MissingUser,
    DropRule::MissingItem,
    DropRule::BadTime,
    DropRule::FilteredEventType,
    DropRule::NonPositiveQuantity,
];

/// A mapping file (`--mapping FILE`, TOML).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Column or key of the user id.
    pub user: String,
    /// Column or key of the item id.
    pub item: String,
    /// Column or key of the event time.
    pub time: Option<String>,
    /// chrono format of `time`, when it is not one of the recognised ones.
    pub time_format: Option<String>,
    /// Column or key of the event type.
    pub event: Option<String>,
    /// Event types to keep (all when absent).
    pub keep_events: Option<Vec<String>>,
    /// Column or key of the quantity.
    pub quantity: Option<String>,
    /// Column or key of the unit price.
    pub price: Option<String>,
    /// Column or key of the item title in the event rows.
    pub title: Option<String>,
    /// Columns or keys whose values make the item text (joined with ". ").
    #[serde(default)]
    pub text: Vec<String>,
    /// CSV delimiter (default `,`).
    pub delimiter: Option<char>,
    /// Item texts from a separate file.
    pub catalog: Option<CatalogMapping>,
}

/// The `[catalog]` table of a mapping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMapping {
    /// The catalog file, relative to the mapping file (or absolute).
    /// `amazon-jsonl` takes it from the `meta_*` input instead.
    pub path: Option<PathBuf>,
    /// Column or key of the item id.
    pub item: String,
    /// Column or key of the title.
    pub title: Option<String>,
    /// Columns or keys whose values make the item text.
    #[serde(default)]
    pub text: Vec<String>,
}

impl Mapping {
    /// Reads a TOML mapping file; a relative `catalog.path` is resolved
    /// against the mapping file's directory.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut mapping: Mapping =
            toml::from_str(&text).map_err(|e| Error::Data(format!("--mapping {}: {e}", path.display())))?;
        if let Some(catalog) = &mut mapping.catalog
            && let Some(p) = &catalog.path
            && p.is_relative()
        {
            catalog.path = Some(path.parent().unwrap_or(Path::new(".")).join(p));
        }
        Ok(mapping)
    }

    /// The built-in mapping of Amazon Review Data (2018) reviews and metadata.
    pub fn amazon() -> Self {
        Self {
            user: "reviewerID".into(),
            item: "asin".into(),
            time: Some("unixReviewTime".into()),
            time_format: None,
            event: None,
            keep_events: None,
            quantity: None,
            price: None,
            title: None,
            text: vec![],
            delimiter: None,
            catalog: Some(CatalogMapping {
                path: None,
                item: "asin".into(),
                title: Some("title".into()),
                text: vec!["title".into(), "brand".into(), "category".into(), "description".into()],
            }),
        }
    }
}

/// Prepares `amazon-jsonl` inputs: review files plus `meta_*` metadata files
/// (directories are searched for `*.json`/`*.json.gz`/`*.jsonl`).
pub fn prepare_amazon(inputs: &[PathBuf]) -> Result<Prepared> {
    let files = input_files(inputs, &[".json", ".json.gz", ".jsonl", ".jsonl.gz"])?;
    let is_meta = |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("meta_"));
    let (meta, reviews): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(is_meta);
    if reviews.is_empty() {
        return Err(Error::Data("--input: no review file (a .json[.gz] whose name does not start with meta_)".into()));
    }
    let mapping = Mapping { catalog: None, ..Mapping::amazon() };
    let mut prepared = prepare_with(&mapping, &reviews, "amazon-jsonl")?;
    let catalog_mapping = Mapping::amazon().catalog.expect("the amazon mapping has a catalog");
    let mut texts = HashMap::new();
    // One metadata file per category; the first record of an item wins.
    for m in &meta {
        for (id, text) in read_catalog_texts(&CatalogMapping { path: Some(m.clone()), ..catalog_mapping.clone() })? {
            texts.entry(id).or_insert(text);
        }
    }
    prepared.catalog = build_catalog(&prepared.events, &texts, &HashMap::new());
    let report = &mut prepared.report;
    report.inputs.extend(meta.iter().map(|m| m.display().to_string()));
    report.items = prepared.catalog.len();
    report.items_without_text = prepared.catalog.iter().filter(|c| c.text == c.item_id).count();
    Ok(prepared)
}

/// Prepares `csv` (or JSON-lines) inputs with a mapping.
pub fn prepare_mapped(mapping: &Mapping, inputs: &[PathBuf]) -> Result<Prepared> {
    let files = input_files(inputs, &[".csv", ".csv.gz", ".tsv", ".jsonl", ".jsonl.gz", ".json", ".json.gz"])?;
    let format = if files.iter().all(|f| is_jsonl(f)) { "jsonl" } else { "csv" };
    prepare_with(mapping, &files, format)
}

fn prepare_with(mapping: &Mapping, files: &[PathBuf], format: &str) -> Result<Prepared> {
    // Field slots: 0 user, 1 item, 2 time, 3 event, 4 quantity, 5 price, 6 title, 7.. text.
    let mut fields: Vec<(&str, Option<&str>)> = vec![
        ("user", Some(mapping.user.as_str())),
        ("item", Some(mapping.item.as_str())),
        ("time", mapping.time.as_deref()),
        ("event", mapping.event.as_deref()),
        ("quantity", mapping.quantity.as_deref()),
        ("price", mapping.price.as_deref()),
        ("title", mapping.title.as_deref()),
    ];
    fields.extend(mapping.text.iter().map(|t| ("text", Some(t.as_str()))));
    if mapping.keep_events.is_some() && mapping.event.is_none() {
        return Err(Error::Data("--mapping: `keep_events` needs `event` (the column holding the event type)".into()));
    }
    let catalog_texts = match &mapping.catalog {
        Some(c) if c.path.is_some() => read_catalog_texts(c)?,
        _ => HashMap::new(),
    };

    let mut dropped = DropCounts::new(&RULES);
    let mut rows_in = 0u64;
    let mut events = Vec::new();
    let mut titles: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut row_texts: HashMap<String, (String, String)> = HashMap::new();
    for path in files {
        for_each_row(path, &fields, mapping.delimiter, true, |row| {
            rows_in += 1;
            match row.and_then(|values| mapped_event(mapping, &values)) {
                Err(rule) => dropped.add(rule),
                Ok((event, title, text)) => {
                    if let Some(title) = title {
                        *titles.entry(event.item_id.clone()).or_default().entry(title.clone()).or_default() += 1;
                        if let Some(text) = text {
                            row_texts.entry(event.item_id.clone()).or_insert((title, text));
                        }
                    } else if let Some(text) = text {
                        row_texts.entry(event.item_id.clone()).or_insert((text.clone(), text));
                    }
                    events.push(event);
                }
            }
        })?;
    }
    sort_events(&mut events);
    let mut texts = row_texts;
    texts.extend(catalog_texts);
    let catalog = build_catalog(&events, &texts, &titles);
    let report = PrepareReport::new(format, files, rows_in, dropped, &catalog, &events);
    Ok(Prepared { catalog, events, report, split: None })
}

type Row = Vec<Option<String>>;

fn mapped_event(mapping: &Mapping, v: &Row) -> Result<(Event, Option<String>, Option<String>), DropRule> {
    let user = v[0].clone().ok_or(DropRule::MissingUser)?;
    let item = v[1].clone().ok_or(DropRule::MissingItem)?;
    let ts = match &mapping.time {
        None => None,
        Some(_) => {
            Some(v[2].as_deref().and_then(|t| parse_time(t, mapping.time_format.as_deref())).ok_or(DropRule::BadTime)?)
        }
    };
    let event = v[3].clone().unwrap_or_else(|| if mapping.time.is_some() { "interaction" } else { "event" }.into());
    if let Some(keep) = &mapping.keep_events
        && !keep.iter().any(|k| k.eq_ignore_ascii_case(&event))
    {
        return Err(DropRule::FilteredEventType);
    }
    let quantity = match &v[4] {
        None if mapping.quantity.is_some() => return Err(DropRule::Malformed),
        None => 1.0,
        Some(q) => q.parse::<f64>().ok().filter(|q| q.is_finite()).ok_or(DropRule::Malformed)?,
    };
    if quantity <= 0.0 {
        return Err(DropRule::NonPositiveQuantity);
    }
    let price = match &v[5] {
        None => None,
        Some(p) => Some(p.parse::<f64>().ok().filter(|p| p.is_finite()).ok_or(DropRule::Malformed)?),
    };
    let title = v[6].clone();
    let parts: Vec<&str> = v[7..].iter().flatten().map(String::as_str).collect();
    let text = (!parts.is_empty()).then(|| parts.join(". "));
    Ok((Event { user_id: user, item_id: item, ts, event, quantity, price }, title, text))
}

fn read_catalog_texts(c: &CatalogMapping) -> Result<HashMap<String, (String, String)>> {
    let path = c.path.as_ref().ok_or_else(|| Error::Data("--mapping: [catalog] needs `path`".into()))?;
    let mut fields: Vec<(&str, Option<&str>)> =
        vec![("catalog.item", Some(&c.item)), ("catalog.title", c.title.as_deref())];
    fields.extend(c.text.iter().map(|t| ("catalog.text", Some(t.as_str()))));
    let mut texts = HashMap::new();
    for_each_row(path, &fields, None, false, |row| {
        let Ok(v) = row else { return };
        let Some(id) = v[0].clone() else { return };
        let parts: Vec<&str> = v[2..].iter().flatten().map(String::as_str).collect();
        let title = v[1].clone().or_else(|| parts.first().map(|s| s.to_string()));
        let Some(title) = title else { return };
        let text = if parts.is_empty() { title.clone() } else { parts.join(". ") };
        texts.entry(id).or_insert((title, text));
    })?;
    Ok(texts)
}

fn is_jsonl(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".jsonl", ".json", ".ndjson"].iter().any(|e| name.ends_with(e))
}

/// Calls `each` with the mapped values of every data row of `path` (in
/// `fields` order; `None` for an absent field or an empty value), or
/// `Err(Malformed)` for a row that cannot be read. A JSON key that no row
/// has is an error when `every_key_must_exist`.
fn for_each_row(
    path: &Path,
    fields: &[(&str, Option<&str>)],
    delimiter: Option<char>,
    every_key_must_exist: bool,
    mut each: impl FnMut(std::result::Result<Row, DropRule>),
) -> Result<()> {
    let reader = open_maybe_gz(path)?;
    if is_jsonl(path) {
        let mut seen = vec![false; fields.len()];
        let mut rows = 0u64;
        for line in BufReader::new(reader).split(b'\n') {
            let line = line.map_err(|e| Error::io(path, e))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            rows += 1;
            let object = std::str::from_utf8(&line)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|v| match v {
                    serde_json::Value::Object(m) => Some(m),
                    _ => None,
                });
            each(match object {
                None => Err(DropRule::Malformed),
                Some(m) => Ok(fields
                    .iter()
                    .zip(seen.iter_mut())
                    .map(|((_, key), seen)| {
                        let value = m.get((*key)?)?;
                        *seen = true;
                        json_text(value)
                    })
                    .collect()),
            });
        }
        if rows > 0
            && every_key_must_exist
            && let Some(((name, key), _)) = fields.iter().zip(&seen).find(|((_, key), seen)| key.is_some() && !**seen)
        {
            return Err(Error::Data(format!(
                "--mapping: `{name}` names key `{}`, which no row of {} has",
                key.unwrap_or_default(),
                path.display()
            )));
        }
        return Ok(());
    }

    let tab = path.to_string_lossy().to_lowercase().contains(".tsv");
    let delimiter = delimiter.unwrap_or(if tab { '\t' } else { ',' });
    let mut csv = csv::ReaderBuilder::new().flexible(true).delimiter(delimiter as u8).from_reader(reader);
    let header = csv.byte_headers().map_err(|e| Error::Data(format!("{}: {e}", path.display())))?.clone();
    let names: Vec<String> = header.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let mut columns = Vec::with_capacity(fields.len());
    for (name, key) in fields {
        columns.push(match key {
            None => None,
            Some(key) => Some(names.iter().position(|n| n == key).ok_or_else(|| {
                Error::Data(format!(
                    "--mapping: `{name}` names column `{key}`, which {} does not have (columns: {})",
                    path.display(),
                    names.join(", ")
                ))
            })?),
        });
    }
    for record in csv.byte_records() {
        each(match record {
            Err(_) => Err(DropRule::Malformed),
            Ok(r) if r.len() != names.len() => Err(DropRule::Malformed),
            Ok(r) => columns
                .iter()
                .map(|c| match c {
                    None => Ok(None),
                    Some(i) => std::str::from_utf8(&r[*i])
                        .map(|s| Some(clean_text(s)).filter(|s| !s.is_empty()))
                        .map_err(|_| DropRule::Malformed),
                })
                .collect(),
        });
    }
    Ok(())
}

fn json_text(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        serde_json::Value::String(s) => clean_text(s),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().filter_map(json_text).collect();
            parts.dedup();
            parts.join(" ")
        }
        _ => String::new(),
    };
    (!text.is_empty()).then_some(text)
}

/// Parses an event time: with `format` when given (a date-time or a date),
/// else unix seconds (milliseconds above 10^11), RFC 3339, or
/// `%Y-%m-%d[ %H:%M[:%S]]`, `%Y-%m-%dT%H:%M:%S`, `%m/%d/%Y %H:%M`.
pub fn parse_time(s: &str, format: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(f) = format {
        return NaiveDateTime::parse_from_str(s, f)
            .ok()
            .or_else(|| NaiveDate::parse_from_str(s, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|t| t.and_utc());
    }
    if let Ok(n) = s.parse::<i64>() {
        return if n.abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        };
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const MAPPING: &str = r#"
user = "customer"
item = "sku"
time = "when"
event = "action"
keep_events = ["purchase", "cart"]
quantity = "qty"

[catalog]
path = "products.csv"
item = "sku"
title = "name"
text = ["name", "category"]
"#;

    #[test]
    fn a_new_shop_csv_is_read_through_its_mapping_and_every_drop_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mapping = write(dir.path(), "mapping.toml", MAPPING.as_bytes());
        write(dir.path(), "products.csv", b"sku,name,category\nA1,Blue mug,Kitchen\nB2,Red kettle,Kitchen\n");
        let mut log = b"customer,sku,when,action,qty\n\
u1,A1,2024-03-01 10:00:00,purchase,1\n\
u1,B2,2024-03-02T11:00:00Z,cart,2\n\
u2,A1,1709290000,purchase,1\n\
u2,,2024-03-03,purchase,1\n\
,A1,2024-03-03,purchase,1\n\
u3,A1,yesterday,purchase,1\n\
u3,A1,2024-03-03,view,1\n\
u3,A1,2024-03-03,purchase,0\n\
u3,A1,2024-03-03,purchase,lots\n\
u3,A1,2024-03-03\n"
            .to_vec();
        log.extend_from_slice(b"u4,C\xff,2024-03-03,purchase,1\n");
        let log = write(dir.path(), "orders.csv", &log);
        let p = prepare_mapped(&Mapping::read(&mapping).unwrap(), &[log]).unwrap();
        let r = &p.report;
        assert_eq!((r.rows_in, r.rows_kept), (11, 3));
        for (rule, n) in [
            ("missing_item", 1),
            ("missing_user", 1),
            ("bad_time", 1),
            ("filtered_event_type", 1),
            ("non_positive_quantity", 1),
            ("malformed", 3),
        ] {
            assert_eq!(r.dropped[rule], n, "{rule}");
        }
        assert_eq!(r.rows_in, r.rows_kept + r.dropped.values().sum::<u64>());
        assert_eq!(p.catalog.len(), 2);
        assert_eq!(p.catalog[0].title, "Blue mug");
        assert_eq!(p.catalog[0].text, "Blue mug. Kitchen");
        let users: Vec<&str> = p.events.iter().map(|e| e.user_id.as_str()).collect();
        assert_eq!(users, ["u1", "u2", "u1"], "sorted by time: 1709290000 is 2024-03-01 10:46:40");
        assert_eq!(p.events[2].quantity, 2.0);
        assert_eq!(p.events[2].event, "cart");
    }

    #[test]
    fn a_mapping_that_names_a_missing_column_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "orders.csv", b"customer,sku\nu1,A1\n");
        let mapping = Mapping { time: Some("ordered_at".into()), ..Mapping::amazon() };
        let mapping = Mapping { user: "customer".into(), item: "sku".into(), catalog: None, ..mapping };
        let err = prepare_mapped(&mapping, &[log]).unwrap_err().to_string();
        assert!(err.contains("`time` names column `ordered_at`"), "{err}");
        assert!(err.contains("columns: customer, sku"), "{err}");
        assert!(toml::from_str::<Mapping>("user = \"u\"").unwrap_err().to_string().contains("item"));
    }

    #[test]
    fn json_lines_with_a_key_no_row_has_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), "log.jsonl", b"{\"reviewerID\": \"u\", \"asin\": \"a\"}\n");
        let err = prepare_mapped(&Mapping { catalog: None, ..Mapping::amazon() }, &[log]).unwrap_err().to_string();
        assert!(err.contains("key `unixReviewTime`"), "{err}");
    }

    #[test]
    fn amazon_reviews_take_their_text_from_metadata() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "Shop_5.json",
            b"{\"reviewerID\": \"u1\", \"asin\": \"A\", \"unixReviewTime\": 1529193600}\n\
not json\n\
{\"reviewerID\": \"u2\", \"asin\": \"B\", \"unixReviewTime\": 1529193700}\n",
        );
        write(
            dir.path(),
            "meta_Shop.json",
            b"{\"asin\": \"A\", \"title\": \"Gift card\", \"brand\": \"Acme\", \"category\": [\"Gift Cards\", \"Gift Cards\"]}\n",
        );
        let p = prepare_amazon(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!((p.report.rows_in, p.report.rows_kept, p.report.dropped["malformed"]), (3, 2, 1));
        assert_eq!(p.catalog[0].text, "Gift card. Acme. Gift Cards");
        assert_eq!(p.catalog[1].title, "B", "no metadata: the id stands in");
        assert_eq!(p.report.items_without_text, 1);
        assert_eq!(p.events[0].ts.unwrap().to_rfc3339(), "2018-06-17T00:00:00+00:00");
    }

    #[test]
    fn times_in_the_usual_shapes() {
        let t = |s| parse_time(s, None).map(|t| t.to_rfc3339());
        assert_eq!(t("1529193600").as_deref(), Some("2018-06-17T00:00:00+00:00"));
        assert_eq!(t("1529193600000").as_deref(), Some("2018-06-17T00:00:00+00:00"));
        assert_eq!(t("2018-06-17").as_deref(), Some("2018-06-17T00:00:00+00:00"));
        assert_eq!(t("2018-06-17T02:00:00+02:00").as_deref(), Some("2018-06-17T00:00:00+00:00"));
        assert_eq!(t("junk"), None);
        assert_eq!(
            parse_time("17/06/2018 08:30", Some("%d/%m/%Y %H:%M")).map(|t| t.to_rfc3339()).as_deref(),
            Some("2018-06-17T08:30:00+00:00")
        );
    }
}
