//! The UCI Online Retail invoice lines (#352): cancellations, guest
//! checkouts and non-product codes are dropped, each under its own rule.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{
    DropCounts, DropRule, Event, PrepareReport, Prepared, build_catalog, input_files, open_maybe_gz, sort_events,
};
use crate::{Error, Result};

/// Stock codes that are fees, postage or adjustments rather than products
/// (compared case-insensitively). Gift vouchers (`gift_*`) are also dropped.
pub const NON_PRODUCT_CODES: &[&str] =
    &["POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"];

/// The rules this reader applies, in order.
pub const RULES: [DropRule; 6] = [
    DropRule::Malformed,
    DropRule::Cancellation,
    DropRule::MissingUser,
    DropRule::NonProductCode,
    DropRule::NonPositiveQuantity,
    DropRule::NonPositivePrice,
];

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
    let files = input_files(inputs, &[".csv", ".csv.gz"])?;
    let mut dropped = DropCounts::new(&RULES);
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
                        Err(DropRule::MissingUser)
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
                Err(rule) => dropped.add(rule),
                Ok(row) => {
                    if !row.description.is_empty() {
                        *titles.entry(row.code.clone()).or_default().entry(row.description).or_default() += 1;
                    }
                    events.push(Event {
                        user_id: row.customer,
                        item_id: row.code,
                        ts: Some(row.ts),
                        event: "purchase".into(),
                        quantity: row.quantity,
                        price: Some(row.price),
                    });
                }
            }
        }
    }
    // Same invoice time: keep item order stable across runs.
    events.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    sort_events(&mut events);
    let catalog = build_catalog(&events, &HashMap::new(), &titles);
    let report = PrepareReport::new("online-retail", &files, rows_in, dropped, &catalog, &events);
    Ok(Prepared { catalog, events, report, split: None })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{REPORT_FILE, distinct_buyers, read_catalog, read_events, write_prepared};

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
        assert_eq!(r.dropped["missing_user"], 1);
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
        assert_eq!(p.catalog[0].first_seen.unwrap().to_rfc3339(), "2010-12-03T08:34:00+00:00");
        assert_eq!(p.catalog[1].text, p.catalog[1].title);
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
