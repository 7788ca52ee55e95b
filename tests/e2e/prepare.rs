//! `edgerec prepare` and `edgerec index` from the command line: real data,
//! and errors that name what is wrong.

use std::process::Command;

use edgerec_core::data::{DropRule, prepare_online_retail};
use edgerec_tests::{available_or, edgerec_bin, repo, require, shared_data};

#[test]
fn full_online_retail_is_cleaned_and_every_row_accounted_for() {
    let input = shared_data().join("online_retail");
    if !available_or(&input, "the team's shared data folder belongs beside the repository (../shared/data)") {
        return;
    }
    let p = prepare_online_retail(&[input]).unwrap();
    let r = &p.report;
    assert_eq!(r.rows_in, 541_909, "the data set's README says 541,909 invoice lines");
    assert_eq!(r.rows_in, r.rows_kept + r.dropped.values().sum::<u64>());
    assert!(r.dropped[DropRule::Cancellation.key()] > 9_000);
    assert!(r.dropped[DropRule::MissingUser.key()] > 130_000, "a quarter of lines are guest checkouts");
    assert!(r.dropped[DropRule::NonProductCode.key()] > 1_000, "POST, DOT, M, ... are dropped");
    assert!((4_300..=4_372).contains(&r.users), "{} customers", r.users);
    assert!((3_500..=4_070).contains(&r.items), "{} products", r.items);
    assert!(p.catalog.iter().all(|c| !c.title.is_empty()));
    assert!(!p.catalog.iter().any(|c| c.item_id == "POST" || c.item_id.starts_with("GIFT_")));
    let heart = p.catalog.iter().find(|c| c.item_id == "85123A").unwrap();
    assert_eq!(heart.title, "WHITE HANGING HEART T-LIGHT HOLDER", "the most frequent description wins");
}

#[test]
fn cli_prepare_prints_the_report_and_index_refuses_a_bad_out_path() {
    require!(edgerec_bin());
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(edgerec_bin())
        .args(["prepare", "--format", "online-retail", "--input"])
        .arg(repo().join("data/online-retail"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("| rows in") && stdout.contains("cancellation"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["rows_in"], 265_895);

    let run = Command::new(edgerec_bin())
        .args(["index", "--data"])
        .arg(out.path())
        .args(["--out", "bundle-without-version"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--out") && stderr.contains("models/<name>/<version>"), "{stderr}");
}

#[test]
fn cli_errors_name_the_missing_input_and_the_bad_value() {
    require!(edgerec_bin());
    let run = Command::new(edgerec_bin())
        .args(["prepare", "--format", "online-retail", "--input", "no/such/file.csv", "--out", "x"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no/such/file.csv"));

    let run = Command::new(edgerec_bin())
        .args(["prepare", "--format", "parquet", "--input", "a", "--out", "b"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--format") && stderr.contains("online-retail"), "{stderr}");

    let run = Command::new(edgerec_bin()).args(["serve", "--manifest", "no-such-spin.toml"]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no-such-spin.toml"));
}
