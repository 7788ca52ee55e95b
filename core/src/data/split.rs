//! Train / validation / test splits, in one shape for every protocol.
//!
//! * **train**: one [`Sequence`] per user: the user's training events as
//!   steps (a step is one basket: the items of one time stamp).
//! * **valid**, **test**: [`Case`]s: a user's history before the window
//!   (oldest first, each item once at its most recent position) and the
//!   items they took in the window that are *not* in that history (what a
//!   recommender that hides the history could get right).
//!
//! Temporal ([`temporal`]): train before `valid_start`, validation until
//! `test_start`, test after; the test history includes the validation
//! window. Leave-one-out ([`leave_one_out`]): each user's last step is the
//! test, the one before it validation. RecBole sources come split already
//! and are read as they are ([`super::recbole`]).
//!
//! The validation window's own steps are kept too (**valid_window**): once
//! validation has chosen the settings, training again on the training and
//! validation windows together ([`Split::train_and_validation`]) learns
//! from the newest events before the test window, as a shop's model must.
//!
//! On disk: `split/meta.json`, `split/train.jsonl`, `split/valid.jsonl`,
//! `split/test.jsonl` and `split/valid_window.jsonl` inside the prepared
//! data directory.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Event;
use crate::{Error, Result};

/// The split's directory inside a prepared data directory.
pub const SPLIT_DIR: &str = "split";
/// The validation window's steps inside [`SPLIT_DIR`].
const VALID_WINDOW_FILE: &str = "valid_window.jsonl";

/// A group of items taken at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unix seconds, when the source has times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Distinct item ids.
    pub items: Vec<String>,
}

/// One user's training events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// User id.
    pub user: String,
    /// Steps, oldest first.
    pub steps: Vec<Step>,
}

/// One evaluation case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// User id.
    pub user: String,
    /// Distinct items before the window, oldest first.
    pub history: Vec<String>,
    /// Distinct items in the window that are not in `history`.
    pub targets: Vec<String>,
}

/// `split/meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMeta {
    /// `time` or `leave-one-out`.
    pub by: String,
    /// `edgerec split` or the source that came split (`recbole`).
    pub source: String,
    /// Start of the validation window (temporal).
    pub valid_start: Option<DateTime<Utc>>,
    /// Start of the test window (temporal).
    pub test_start: Option<DateTime<Utc>>,
    /// Users with training events.
    pub train_users: usize,
    /// Item occurrences in the training sequences.
    pub train_interactions: usize,
    /// Distinct items with training events.
    pub train_items: usize,
    /// Validation cases.
    pub valid_cases: usize,
    /// Test cases.
    pub test_cases: usize,
    /// Users first seen in the test window (no history, so not evaluated).
    pub new_test_users: usize,
    /// Distinct test target items with no event before the test window
    /// (the cold slice).
    pub new_test_items: usize,
    /// Windows whose items were all in the user's history (no case made).
    pub repeat_only_cases: usize,
}

/// A split data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Counts and cut-offs.
    pub meta: SplitMeta,
    /// Training sequences, one per user.
    pub train: Vec<Sequence>,
    /// Validation cases.
    pub valid: Vec<Case>,
    /// Test cases.
    pub test: Vec<Case>,
    /// Each user's steps in the validation window, oldest first (users
    /// whose validation window is empty are left out). `None` for a split
    /// written before edgerec kept it: split again to train on it.
    pub valid_window: Option<Vec<Sequence>>,
}

/// How `edgerec split` cuts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// By time: the last `test_days` are the test, the `valid_days` before
    /// them validation. `None` cuts at the 80% / 90% quantiles of event times.
    Time {
        /// Length of the validation window.
        valid_days: Option<f64>,
        /// Length of the test window.
        test_days: Option<f64>,
    },
    /// Each user's last step is the test, the one before validation.
    LeaveOneOut,
}

/// Splits an event log (sorted by [`super::sort_events`]).
pub fn split_events(events: &[Event], protocol: Protocol) -> Result<Split> {
    match protocol {
        Protocol::Time { valid_days, test_days } => {
            let (valid_start, test_start) = time_cutoffs(events, valid_days, test_days)?;
            Ok(temporal(events, valid_start, test_start))
        }
        Protocol::LeaveOneOut => Ok(leave_one_out(events)),
    }
}

/// The validation and test window starts: `days` before the last event, or
/// the 80% / 90% quantiles of event times.
pub fn time_cutoffs(
    events: &[Event],
    valid_days: Option<f64>,
    test_days: Option<f64>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let mut times: Vec<DateTime<Utc>> = events.iter().filter_map(|e| e.ts).collect();
    if times.len() < events.len() || times.is_empty() {
        return Err(Error::Data(
            "--by time: these events have no times; use --by leave-one-out (or a source that comes split)".into(),
        ));
    }
    times.sort();
    let last = *times.last().expect("not empty");
    let days = |d: f64, name: &str| {
        if d.is_finite() && d > 0.0 {
            Ok(Duration::seconds((d * 86_400.0) as i64))
        } else {
            Err(Error::Data(format!("--{name}: expected a positive number of days, got {d}")))
        }
    };
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let test_start = match test_days {
        Some(d) => last - days(d, "test-days")?,
        None => quantile(0.9),
    };
    let valid_start = match valid_days {
        Some(d) => test_start - days(d, "valid-days")?,
        None => quantile(0.8).min(test_start),
    };
    if valid_start <= times[0] {
        return Err(Error::Data(format!(
            "--valid-days/--test-days: the windows start at {valid_start}, before the first event ({}); nothing is left to train on",
            times[0]
        )));
    }
    Ok((valid_start, test_start))
}

/// Events grouped per user into steps (one step per distinct time; without
/// times, one step per event), users in first-seen order.
fn user_steps(events: &[Event]) -> Vec<(String, Vec<Step>)> {
    let mut order: Vec<String> = Vec::new();
    let mut steps: HashMap<&str, Vec<Step>> = HashMap::new();
    for e in events {
        let ts = e.ts.map(|t| t.timestamp());
        let user = steps.entry(e.user_id.as_str()).or_insert_with(|| {
            order.push(e.user_id.clone());
            Vec::new()
        });
        match user.last_mut() {
            Some(last) if ts.is_some() && last.ts == ts => {
                if !last.items.contains(&e.item_id) {
                    last.items.push(e.item_id.clone());
                }
            }
            _ => user.push(Step { ts, items: vec![e.item_id.clone()] }),
        }
    }
    order
        .into_iter()
        .map(|u| {
            let s = steps.remove(u.as_str()).unwrap_or_default();
            (u, s)
        })
        .collect()
}

/// Distinct items of `steps`, oldest first, each at its most recent position.
pub fn distinct_history<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let all: Vec<&String> = items.into_iter().collect();
    let mut seen = HashSet::new();
    let mut newest_first: Vec<String> = all.iter().rev().filter(|i| seen.insert(**i)).map(|i| (*i).clone()).collect();
    newest_first.reverse();
    newest_first
}

/// A case from a (non-empty) history and the window's items; `None` when
/// every window item is already in the history.
fn case(user: &str, history: Vec<String>, window: &[&Step]) -> Option<Case> {
    let known: HashSet<&String> = history.iter().collect();
    let mut targets: Vec<String> = Vec::new();
    for item in window.iter().flat_map(|s| &s.items) {
        if !known.contains(item) && !targets.contains(item) {
            targets.push(item.clone());
        }
    }
    (!targets.is_empty()).then(|| Case { user: user.into(), history, targets })
}

/// The temporal split with the given window starts.
pub fn temporal(events: &[Event], valid_start: DateTime<Utc>, test_start: DateTime<Utc>) -> Split {
    let (v, t) = (valid_start.timestamp(), test_start.timestamp());
    let mut split = Split::empty("time", "edgerec split");
    split.meta.valid_start = Some(valid_start);
    split.meta.test_start = Some(test_start);
    for (user, steps) in user_steps(events) {
        let at = |s: &&Step| s.ts.unwrap_or(i64::MIN);
        let train: Vec<&Step> = steps.iter().filter(|s| at(s) < v).collect();
        let valid: Vec<&Step> = steps.iter().filter(|s| (v..t).contains(&at(s))).collect();
        let test: Vec<&Step> = steps.iter().filter(|s| at(s) >= t).collect();
        let train_history = distinct_history(train.iter().flat_map(|s| &s.items));
        if !valid.is_empty() && !train_history.is_empty() {
            split.push_case(false, case(&user, train_history.clone(), &valid));
        }
        if !test.is_empty() {
            let history = distinct_history(train.iter().chain(&valid).flat_map(|s| &s.items));
            if history.is_empty() {
                split.meta.new_test_users += 1;
            } else {
                split.push_case(true, case(&user, history, &test));
            }
        }
        if !valid.is_empty() {
            split.window().push(Sequence { user: user.clone(), steps: valid.into_iter().cloned().collect() });
        }
        if !train.is_empty() {
            split.train.push(Sequence { user, steps: train.into_iter().cloned().collect() });
        }
    }
    split.finish();
    split
}

/// Leave-one-out: each user's last step is the test, the one before it
/// validation; users with fewer than three steps only train.
pub fn leave_one_out(events: &[Event]) -> Split {
    let mut split = Split::empty("leave-one-out", "edgerec split");
    for (user, mut steps) in user_steps(events) {
        if steps.len() >= 3 {
            let test = steps.pop().expect("3 steps");
            let valid = steps.pop().expect("2 steps");
            let train_history = distinct_history(steps.iter().flat_map(|s| &s.items));
            split.push_case(false, case(&user, train_history.clone(), &[&valid]));
            let history = distinct_history(steps.iter().chain([&valid]).flat_map(|s| &s.items));
            split.push_case(true, case(&user, history, &[&test]));
            split.window().push(Sequence { user: user.clone(), steps: vec![valid] });
        }
        split.train.push(Sequence { user, steps });
    }
    split.finish();
    split
}

impl Split {
    /// A split with no data yet.
    pub fn empty(by: &str, source: &str) -> Self {
        Split {
            meta: SplitMeta {
                by: by.into(),
                source: source.into(),
                valid_start: None,
                test_start: None,
                train_users: 0,
                train_interactions: 0,
                train_items: 0,
                valid_cases: 0,
                test_cases: 0,
                new_test_users: 0,
                new_test_items: 0,
                repeat_only_cases: 0,
            },
            train: vec![],
            valid: vec![],
            test: vec![],
            valid_window: Some(vec![]),
        }
    }

    /// The validation window's sequences, to add to.
    pub fn window(&mut self) -> &mut Vec<Sequence> {
        self.valid_window.get_or_insert_with(Vec::new)
    }

    /// The training sequences with each user's validation-window steps
    /// appended (users seen only there added at the end): what a model may
    /// learn from before the test window. `None` when the split did not
    /// keep the validation window.
    pub fn train_and_validation(&self) -> Option<Vec<Sequence>> {
        let window = self.valid_window.as_ref()?;
        let mut merged = self.train.clone();
        let at: HashMap<&str, usize> = self.train.iter().enumerate().map(|(i, s)| (s.user.as_str(), i)).collect();
        for seq in window {
            match at.get(seq.user.as_str()) {
                Some(&i) => merged[i].steps.extend(seq.steps.iter().cloned()),
                None => merged.push(seq.clone()),
            }
        }
        Some(merged)
    }

    /// Adds a case (or counts a window with only repeats).
    pub fn push_case(&mut self, test: bool, case: Option<Case>) {
        match case {
            Some(c) if test => self.test.push(c),
            Some(c) => self.valid.push(c),
            None => self.meta.repeat_only_cases += 1,
        }
    }

    /// Fills the counts in `meta`.
    pub fn finish(&mut self) {
        let train_items: HashSet<&String> = self.train.iter().flat_map(|s| &s.steps).flat_map(|s| &s.items).collect();
        let known: HashSet<&String> = self
            .valid_window
            .iter()
            .flatten()
            .flat_map(|s| &s.steps)
            .flat_map(|s| &s.items)
            .chain(train_items.iter().copied())
            .collect();
        let m = &mut self.meta;
        m.train_users = self.train.len();
        m.train_interactions = self.train.iter().flat_map(|s| &s.steps).map(|s| s.items.len()).sum();
        m.train_items = train_items.len();
        m.valid_cases = self.valid.len();
        m.test_cases = self.test.len();
        let cold: HashSet<&String> = self.test.iter().flat_map(|c| &c.targets).filter(|i| !known.contains(i)).collect();
        m.new_test_items = cold.len();
    }

    /// Items with at least one training event.
    pub fn train_items(&self) -> HashSet<&str> {
        self.train.iter().flat_map(|s| &s.steps).flat_map(|s| &s.items).map(String::as_str).collect()
    }

    /// Writes `dir/split/`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let out = dir.join(SPLIT_DIR);
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        let meta = serde_json::to_string_pretty(&self.meta).map_err(|e| Error::Data(e.to_string()))?;
        std::fs::write(out.join("meta.json"), meta + "\n").map_err(|e| Error::io(&out, e))?;
        write_jsonl(&out.join("train.jsonl"), &self.train)?;
        write_jsonl(&out.join("valid.jsonl"), &self.valid)?;
        write_jsonl(&out.join("test.jsonl"), &self.test)?;
        match &self.valid_window {
            Some(window) => write_jsonl(&out.join(VALID_WINDOW_FILE), window),
            None => match std::fs::remove_file(out.join(VALID_WINDOW_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(out.join(VALID_WINDOW_FILE), e)),
                _ => Ok(()),
            },
        }
    }

    /// Reads `dir/split/`.
    pub fn read(dir: &Path) -> Result<Self> {
        let at = dir.join(SPLIT_DIR);
        let meta_path = at.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|_| {
            Error::Data(format!(
                "--data {}: no split yet; run `edgerec split --data {} --by time` (or --by leave-one-out)",
                dir.display(),
                dir.display()
            ))
        })?;
        let meta = serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", meta_path.display())))?;
        Ok(Split {
            meta,
            train: read_jsonl(&at.join("train.jsonl"))?,
            valid: read_jsonl(&at.join("valid.jsonl"))?,
            test: read_jsonl(&at.join("test.jsonl"))?,
            valid_window: match at.join(VALID_WINDOW_FILE) {
                path if path.exists() => Some(read_jsonl(&path)?),
                _ => None,
            },
        })
    }

    /// The split's counts as a table.
    pub fn table(&self) -> String {
        let m = &self.meta;
        let day = |t: Option<DateTime<Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or("-".into());
        super::table(&[
            ("protocol".into(), format!("{} ({})", m.by, m.source)),
            ("validation from".into(), day(m.valid_start)),
            ("test from".into(), day(m.test_start)),
            ("train users".into(), m.train_users.to_string()),
            ("train interactions".into(), m.train_interactions.to_string()),
            ("train items".into(), m.train_items.to_string()),
            ("validation cases".into(), m.valid_cases.to_string()),
            ("test cases".into(), m.test_cases.to_string()),
            ("new users in test (not evaluated)".into(), m.new_test_users.to_string()),
            ("cold items among test targets".into(), m.new_test_items.to_string()),
            ("windows with only repeats".into(), m.repeat_only_cases.to_string()),
        ])
    }
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    for row in rows {
        serde_json::to_writer(&mut w, row).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        w.write_all(b"\n").map_err(|e| Error::io(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let line = line.map_err(|e| Error::io(path, e))?;
            serde_json::from_str(&line).map_err(|e| Error::Data(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: &str, item: &str, day: i64) -> Event {
        Event {
            user_id: user.into(),
            item_id: item.into(),
            ts: DateTime::from_timestamp(day * 86_400, 0),
            event: "purchase".into(),
            quantity: 1.0,
            price: None,
        }
    }

    fn log() -> Vec<Event> {
        let mut events = vec![
            ev("u1", "a", 1),
            ev("u1", "b", 1),
            ev("u1", "c", 5),
            ev("u1", "a", 8), // valid window: a repeat only
            ev("u1", "d", 12),
            ev("u1", "a", 12),
            ev("u2", "b", 2),
            ev("u2", "c", 9), // valid
            ev("u2", "new", 11),
            ev("u3", "b", 11), // a new user in the test window
        ];
        crate::data::sort_events(&mut events);
        events
    }

    #[test]
    fn temporal_windows_hide_the_future_and_mark_new_users_and_items() {
        let day = |d: i64| DateTime::from_timestamp(d * 86_400, 0).unwrap();
        let s = temporal(&log(), day(7), day(10));
        assert_eq!(s.train.len(), 2);
        assert_eq!(s.train[0].steps.len(), 2, "u1: the day-1 basket, then day 5");
        assert_eq!(s.train[0].steps[0].items, ["a", "b"]);
        let u2_valid = &s.valid[0];
        assert_eq!(
            (u2_valid.user.as_str(), &u2_valid.history, &u2_valid.targets),
            ("u2", &vec!["b".to_string()], &vec!["c".to_string()])
        );
        assert_eq!(s.valid.len(), 1, "u1's validation window only repeats `a`");
        let u1 = s.test.iter().find(|c| c.user == "u1").unwrap();
        assert_eq!(u1.history, ["b", "c", "a"], "distinct, oldest first, a at its newest position");
        assert_eq!(u1.targets, ["d"], "a is in the history, so only d is a target");
        let u2 = s.test.iter().find(|c| c.user == "u2").unwrap();
        assert_eq!(u2.history, ["b", "c"], "the test history includes the validation window");
        assert_eq!((s.meta.new_test_users, s.meta.new_test_items, s.meta.repeat_only_cases), (1, 2, 1));
    }

    #[test]
    fn the_validation_window_is_kept_to_train_on_before_the_test() {
        let day = |d: i64| DateTime::from_timestamp(d * 86_400, 0).unwrap();
        let s = temporal(&log(), day(7), day(10));
        let window = s.valid_window.as_ref().unwrap();
        let steps = |user: &str| -> Vec<Vec<String>> {
            let seq = window.iter().find(|q| q.user == user).unwrap();
            seq.steps.iter().map(|st| st.items.clone()).collect()
        };
        assert_eq!(steps("u1"), [["a"]], "the repeat a case leaves out is still an event to learn from");
        assert_eq!(steps("u2"), [["c"]]);
        assert_eq!(window.len(), 2, "u3 has nothing before the test window");
        let both = s.train_and_validation().unwrap();
        let u1 = both.iter().find(|q| q.user == "u1").unwrap();
        assert_eq!(
            u1.steps.iter().map(|st| st.ts.unwrap() / 86_400).collect::<Vec<_>>(),
            [1, 5, 8],
            "appended in time order"
        );
        assert!(both.iter().all(|q| q.steps.iter().all(|st| st.ts.unwrap() < day(10).timestamp())), "never the test");
        let loo = leave_one_out(&log());
        let u1 = loo.valid_window.as_ref().unwrap().iter().find(|q| q.user == "u1").unwrap();
        assert_eq!(u1.steps, [Step { ts: Some(8 * 86_400), items: vec!["a".into()] }], "the step before the last");
    }

    #[test]
    fn leave_one_out_holds_out_the_last_two_steps() {
        let s = leave_one_out(&log());
        let u1 = s.test.iter().find(|c| c.user == "u1").unwrap();
        assert_eq!(
            (u1.history.as_slice(), u1.targets.as_slice()),
            (&["b", "c", "a"].map(String::from)[..], &["d".to_string()][..])
        );
        assert_eq!(s.train.iter().find(|q| q.user == "u1").unwrap().steps.len(), 2);
        assert_eq!(s.train.iter().find(|q| q.user == "u3").unwrap().steps.len(), 1, "short users only train");
    }

    #[test]
    fn default_cut_offs_are_quantiles_and_bad_windows_are_refused() {
        let (v, t) = time_cutoffs(&log(), None, None).unwrap();
        assert!(v <= t);
        let err = time_cutoffs(&log(), Some(100.0), Some(1.0)).unwrap_err().to_string();
        assert!(err.contains("nothing is left to train on"), "{err}");
        assert!(time_cutoffs(&log(), None, Some(-1.0)).unwrap_err().to_string().contains("--test-days"));
        let mut untimed = log();
        untimed[0].ts = None;
        assert!(time_cutoffs(&untimed, None, None).unwrap_err().to_string().contains("leave-one-out"));
    }

    #[test]
    fn a_split_reads_back() {
        let s = temporal(
            &log(),
            DateTime::from_timestamp(7 * 86_400, 0).unwrap(),
            DateTime::from_timestamp(10 * 86_400, 0).unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        s.write(dir.path()).unwrap();
        assert_eq!(Split::read(dir.path()).unwrap(), s);
        assert!(Split::read(&dir.path().join("none")).unwrap_err().to_string().contains("edgerec split"));
        // A split written before the validation window was kept reads as such.
        std::fs::remove_file(dir.path().join(SPLIT_DIR).join(VALID_WINDOW_FILE)).unwrap();
        let old = Split::read(dir.path()).unwrap();
        assert_eq!((old.train_and_validation(), old.valid_window), (None, None));
    }
}
