//! Raw shop logs in, a clean catalog and event log out.
//!
//! `prepare_online_retail` applies the cleaning rules of the Online Retail
//! data set (UCI #352) and counts every dropped row under the first rule it
//! breaks, so `report.json` always adds up: `rows_in = rows_kept + Σ dropped`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// File names inside a prepared data directory.
pub const CATALOG_FILE: &str = "catalog.csv";
/// The cleaned event log.
pub const EVENTS_FILE: &str = "events.csv";
/// Counts of rows in, kept and dropped per rule.
pub const REPORT_FILE: &str = "report.json";

/// Stock codes that are fees, postage or adjustments rather than products
/// (compared case-insensitively). Gift vouchers (`gift_*`) are also dropped.
pub const NON_PRODUCT_CODES: &[&str] =
    &["POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"];

/// Why a raw row was dropped, in the order the rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropRule {
    /// Wrong number of fields, bad number or date, or not UTF-8.
    Malformed,
    /// Invoice number starts with `C`.
    Cancellation,
    /// No customer id (guest checkout).
    NoCustomer,
    /// Postage, fees, manual adjustments, vouchers.
    NonProductCode,
    /// Quantity ≤ 0.
    NonPositiveQuantity,
    /// Unit price ≤ 0.
    NonPositivePrice,
}

impl DropRule {
    /// Every rule, in the order they are applied.
    pub const ALL: [DropRule; 6] = [
        DropRule::Malformed,
        DropRule::Cancellation,
        DropRule::NoCustomer,
        DropRule::NonProductCode,
        DropRule::NonPositiveQuantity,
        DropRule::NonPositivePrice,
    ];

    /// The key used in `report.json`.
    pub fn key(self) -> &'static str {
        match self {
            DropRule::Malformed => "malformed",
            DropRule::Cancellation => "cancellation",
            DropRule::NoCustomer => "no_customer",
            DropRule::NonProductCode => "non_product_code",
            DropRule::NonPositiveQuantity => "non_positive_quantity",
            DropRule::NonPositivePrice => "non_positive_price",
        }
    }
}

/// One catalog item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItem {
    /// Stock code (upper-cased).
    pub item_id: String,
    /// The most frequent description of the code.
    pub title: String,
    /// Time of the first kept purchase.
    pub first_seen: DateTime<Utc>,
}

/// One interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Customer id.
    pub user_id: String,
    /// Stock code.
    pub item_id: String,
    /// When it happened (UTC).
    pub ts: DateTime<Utc>,
    /// `purchase` for Online Retail.
    pub event: String,
    /// Units bought.
    pub quantity: f64,
    /// Unit price.
    pub price: f64,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareReport {
    /// Input format name.
    pub format: String,
    /// Input files read.
    pub inputs: Vec<String>,
    /// Data rows read (header excluded).
    pub rows_in: u64,
    /// Rows that became events.
    pub rows_kept: u64,
    /// Dropped rows per rule.
    pub dropped: BTreeMap<String, u64>,
    /// Distinct users in the event log.
    pub users: usize,
    /// Items in the catalog.
    pub items: usize,
    /// First event time.
    pub first_event: Option<DateTime<Utc>>,
    /// Last event time.
    pub last_event: Option<DateTime<Utc>>,
}

impl PrepareReport {
    /// The report as an aligned plain-text table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![("rows in".into(), self.rows_in.to_string())];
        for rule in DropRule::ALL {
            let n = self.dropped.get(rule.key()).copied().unwrap_or(0);
            rows.push((format!("  dropped: {}", rule.key()), n.to_string()));
        }
        rows.push(("rows kept".into(), self.rows_kept.to_string()));
        rows.push(("users".into(), self.users.to_string()));
        rows.push(("items".into(), self.items.to_string()));
        let span = match (self.first_event, self.last_event) {
            (Some(a), Some(b)) => format!("{} .. {}", a.format("%Y-%m-%d"), b.format("%Y-%m-%d")),
            _ => "-".into(),
        };
        rows.push(("events span".into(), span));
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let v = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let line = format!("+{}+{}+\n", "-".repeat(w + 2), "-".repeat(v + 2));
        let mut out = line.clone();
        for (name, value) in rows {
            out += &format!("| {name:<w$} | {value:>v$} |\n");
        }
        out + &line
    }
}

/// A prepared data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Items, sorted by id.
    pub catalog: Vec<CatalogItem>,
    /// Events, sorted by time, then user, then item.
    pub events: Vec<Event>,
    /// What happened to every input row.
    pub report: PrepareReport,
}

/// Expands directories into the `.csv` / `.csv.gz` files they hold.
pub fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
                    name.ends_with(".csv") || name.ends_with(".csv.gz")
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::Data(format!(
                    "--input {}: no .csv or .csv.gz file in this directory",
                    input.display()
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

const RETAIL_COLUMNS: [&str; 7] =
    ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"];

/// Parses `2010-12-01 08:26:00` (CSV export) or `12/1/2010 8:26` (the UCI
/// spreadsheet's format).
pub fn parse_retail_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

fn is_non_product(code: &str) -> bool {
    NON_PRODUCT_CODES.iter().any(|c| c.eq_ignore_ascii_case(code)) || code.to_ascii_lowercase().starts_with("gift_")
}

/// Cleans Online Retail invoice lines (`InvoiceNo,StockCode,Description,
/// Quantity,InvoiceDate,UnitPrice,CustomerID,Country`).
pub fn prepare_online_retail(inputs: &[PathBuf]) -> Result<Prepared> {
    let files = input_files(inputs)?;
    let mut dropped: BTreeMap<DropRule, u64> = BTreeMap::new();
    let mut rows_in = 0u64;
    let mut events = Vec::new();
    // code -> description -> count, for the most frequent title.
    let mut titles: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for path in &files {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(open_maybe_gz(path)?);
        let header = reader.byte_headers().map_err(|e| Error::Data(format!("{}: {e}", path.display())))?.clone();
        let mut col = [0usize; 7];
        for (slot, name) in col.iter_mut().zip(RETAIL_COLUMNS) {
            *slot = header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
                Error::Data(format!("{}: missing column `{name}` (expected the Online Retail header)", path.display()))
            })?;
        }
        let width = header.len();
        for record in reader.byte_records() {
            rows_in += 1;
            let rule = match record {
                Err(_) => Err(DropRule::Malformed),
                Ok(r) => retail_row(&r, &col, width).and_then(|row| {
                    if row.invoice.starts_with(['C', 'c']) {
                        Err(DropRule::Cancellation)
                    } else if row.customer.is_empty() {
                        Err(DropRule::NoCustomer)
                    } else if is_non_product(&row.code) {
                        Err(DropRule::NonProductCode)
                    } else if row.quantity <= 0.0 {
                        Err(DropRule::NonPositiveQuantity)
                    } else if row.price <= 0.0 {
                        Err(DropRule::NonPositivePrice)
                    } else {
                        Ok(row)
                    }
                }),
            };
            match rule {
                Err(rule) => *dropped.entry(rule).or_default() += 1,
                Ok(row) => {
                    if !row.description.is_empty() {
                        *titles.entry(row.code.clone()).or_default().entry(row.description).or_default() += 1;
                    }
                    events.push(Event {
                        user_id: row.customer,
                        item_id: row.code,
                        ts: row.ts,
                        event: "purchase".into(),
                        quantity: row.quantity,
                        price: row.price,
                    });
                }
            }
        }
    }
    events.sort_by(|a, b| {
        a.ts.cmp(&b.ts).then_with(|| a.user_id.cmp(&b.user_id)).then_with(|| a.item_id.cmp(&b.item_id))
    });

    let mut first_seen: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for e in &events {
        first_seen.entry(e.item_id.as_str()).or_insert(e.ts);
    }
    let catalog: Vec<CatalogItem> = first_seen
        .iter()
        .map(|(code, &first)| {
            let title = titles
                .get(*code)
                .and_then(|counts| counts.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))))
                .map(|(t, _)| t.clone())
                .unwrap_or_else(|| (*code).to_string());
            CatalogItem { item_id: (*code).to_string(), title, first_seen: first }
        })
        .collect();
    let users: HashSet<&str> = events.iter().map(|e| e.user_id.as_str()).collect();
    let report = PrepareReport {
        format: "online-retail".into(),
        inputs: files.iter().map(|p| p.display().to_string()).collect(),
        rows_in,
        rows_kept: events.len() as u64,
        dropped: DropRule::ALL.iter().map(|r| (r.key().to_string(), dropped.get(r).copied().unwrap_or(0))).collect(),
        users: users.len(),
        items: catalog.len(),
        first_event: events.first().map(|e| e.ts),
        last_event: events.last().map(|e| e.ts),
    };
    Ok(Prepared { catalog, events, report })
}

struct RetailRow {
    invoice: String,
    code: String,
    description: String,
    quantity: f64,
    ts: DateTime<Utc>,
    price: f64,
    customer: String,
}

fn retail_row(r: &csv::ByteRecord, col: &[usize; 7], width: usize) -> Result<RetailRow, DropRule> {
    if r.len() != width {
        return Err(DropRule::Malformed);
    }
    let field = |i: usize| std::str::from_utf8(&r[col[i]]).map(str::trim).map_err(|_| DropRule::Malformed);
    let number = |i: usize| field(i)?.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or(DropRule::Malformed);
    let customer = field(6)?;
    // Some exports write customer ids as floats ("17850.0").
    let customer = customer.strip_suffix(".0").unwrap_or(customer);
    Ok(RetailRow {
        invoice: field(0)?.to_string(),
        code: field(1)?.to_ascii_uppercase(),
        description: field(2)?.split_whitespace().collect::<Vec<_>>().join(" "),
        quantity: number(3)?,
        ts: parse_retail_time(field(4)?).ok_or(DropRule::Malformed)?,
        price: number(5)?,
        customer: customer.to_string(),
    })
}

/// Writes `catalog.csv`, `events.csv` and `report.json` into `dir`.
pub fn write_prepared(dir: &Path, prepared: &Prepared) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_csv(&dir.join(CATALOG_FILE), &prepared.catalog)?;
    write_csv(&dir.join(EVENTS_FILE), &prepared.events)?;
    let path = dir.join(REPORT_FILE);
    let text = serde_json::to_string_pretty(&prepared.report).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536366,85123a,WHITE  HANGING HEART T-LIGHT HOLDER ,6,2010-12-01 09:26:00,2.55,17851,United Kingdom
536367,85123A,CREAM HANGING HEART T-LIGHT HOLDER,6,2010-12-02 08:26:00,2.55,17852.0,United Kingdom
C536368,22423,REGENCY CAKESTAND 3 TIER,-1,2010-12-02 09:00:00,12.75,17850,United Kingdom
536369,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-02 09:00:00,12.75,,United Kingdom
536370,POST,POSTAGE,3,2010-12-02 10:00:00,18.00,12583,France
536371,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-02 10:00:00,17.02,12583,France
536372,22423,REGENCY CAKESTAND 3 TIER,0,2010-12-02 11:00:00,12.75,12583,France
536373,22423,\"REGENCY CAKESTAND, 3 TIER\",2,2010-12-02 11:00:00,0,12583,France
536374,22423,REGENCY CAKESTAND 3 TIER,two,2010-12-02 11:00:00,12.75,12583,France
536375,22423,REGENCY CAKESTAND 3 TIER,2,not a date,12.75,12583,France
536376,22423,short row
536377,22728,ALARM CLOCK BAKELIKE PINK,24,12/3/2010 8:34,3.75,12583,France
";

    fn prepared() -> Prepared {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retail.csv");
        std::fs::write(&path, RAW).unwrap();
        prepare_online_retail(&[path]).unwrap()
    }

    #[test]
    fn every_rule_counts_its_rows_and_the_report_adds_up() {
        let p = prepared();
        let r = &p.report;
        assert_eq!(r.rows_in, 13);
        assert_eq!(r.rows_kept, 4);
        assert_eq!(r.dropped["cancellation"], 1);
        assert_eq!(r.dropped["no_customer"], 1);
        assert_eq!(r.dropped["non_product_code"], 2);
        assert_eq!(r.dropped["non_positive_quantity"], 1);
        assert_eq!(r.dropped["non_positive_price"], 1);
        assert_eq!(r.dropped["malformed"], 3);
        assert_eq!(r.rows_in, r.rows_kept + r.dropped.values().sum::<u64>());
        assert_eq!((r.users, r.items), (4, 2));
        assert!(r.table().contains("| rows kept"));
    }

    #[test]
    fn one_title_per_code_the_most_frequent_description() {
        let p = prepared();
        let ids: Vec<&str> = p.catalog.iter().map(|c| c.item_id.as_str()).collect();
        assert_eq!(ids, ["22728", "85123A"]);
        assert_eq!(p.catalog[1].title, "WHITE HANGING HEART T-LIGHT HOLDER");
        assert_eq!(p.catalog[0].first_seen.to_rfc3339(), "2010-12-03T08:34:00+00:00");
        assert_eq!(p.events.iter().filter(|e| e.user_id == "17852").count(), 1, "17852.0 is 17852");
    }

    #[test]
    fn written_files_read_back() {
        let p = prepared();
        let dir = tempfile::tempdir().unwrap();
        write_prepared(dir.path(), &p).unwrap();
        assert_eq!(read_catalog(dir.path()).unwrap(), p.catalog);
        assert_eq!(read_events(dir.path()).unwrap(), p.events);
        let report: PrepareReport =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(REPORT_FILE)).unwrap()).unwrap();
        assert_eq!(report, p.report);
    }

    #[test]
    fn missing_column_and_missing_input_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "InvoiceNo,StockCode\n1,2\n").unwrap();
        assert!(prepare_online_retail(&[path]).unwrap_err().to_string().contains("`Description`"));
        let missing = dir.path().join("nope.csv");
        assert!(prepare_online_retail(&[missing]).unwrap_err().to_string().contains("nope.csv"));
    }

    #[test]
    fn popularity_counts_distinct_buyers() {
        let p = prepared();
        assert_eq!(distinct_buyers(&p.events)["85123A"], 3.0);
    }
}
