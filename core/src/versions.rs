//! Which version of a model serves, and why: the version log
//! `models/<name>/versions.jsonl`.
//!
//! One JSON object per line, appended and fsynced, never rewritten: every
//! candidate an update wrote, every gate decision, every promote and
//! rollback, with who or what made it. The serving version is not stored
//! anywhere else; it is what replaying the log gives:
//!
//! - `promote` puts its version on top of the serving stack,
//! - `rollback` takes the top off (back to the version served before),
//! - `candidate` and `reject` record, and change nothing.
//!
//! A model directory without a log serves what `spin.toml` mounts.
//!
//! ```text
//! {"ts":"2026-12-04T09:00:00Z","action":"candidate","version":"3","by":"update (incremental)","parent":"2",...}
//! {"ts":"2026-12-04T09:00:00Z","action":"promote","version":"3","by":"gate","reason":"recall@20 0.0841 >= 0.0822 × (1 - 0.01)"}
//! {"ts":"2026-12-04T10:12:30Z","action":"rollback","version":"2","by":"admin"}
//! ```

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// File name of the version log inside `models/<name>/`.
pub const LOG_FILE: &str = "versions.jsonl";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// An update wrote this version (not serving yet).
    Candidate,
    /// This version serves from now on.
    Promote,
    /// The gate refused this version; it stays on disk, unserved.
    Reject,
    /// Back to the version served before; `version` names it.
    Rollback,
}

impl Action {
    /// The action as written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Candidate => "candidate",
            Action::Promote => "promote",
            Action::Reject => "reject",
            Action::Rollback => "rollback",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// What happened.
    pub action: Action,
    /// The version it concerns (for a rollback: the version now serving).
    pub version: String,
    /// Who or what did it: `gate`, `admin`, `cli`, `update (incremental)`, ...
    pub by: String,
    /// Why, in words (the gate's comparison, an operator's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Scores behind a gate decision or a candidate, by metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// The log of one model directory.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionLog {
    path: PathBuf,
    entries: Vec<Entry>,
    /// Bytes of whole lines; a torn tail after them is cut before the next append.
    complete_len: u64,
}

impl VersionLog {
    /// Reads `dir/versions.jsonl` (an absent file is an empty log). A line
    /// that does not parse is an error naming it: the log decides what
    /// serves, so it is never guessed around.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(LOG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        // A crash mid-append leaves a last line without its newline: that
        // entry was never acknowledged, so it is left out.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        let mut entries = Vec::new();
        for (n, line) in complete.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str::<Entry>(line).map_err(|e| Error::InvalidBundle {
                bundle: path.clone(),
                reason: format!("line {} is not a version-log entry: {e}", n + 1),
            })?;
            entries.push(entry);
        }
        Ok(Self { path, entries, complete_len: complete.len() as u64 })
    }

    /// Whether the model directory has a log at all.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The serving stack after replaying the log, oldest first.
    fn stack(&self) -> Vec<&str> {
        let mut stack: Vec<&str> = Vec::new();
        for e in &self.entries {
            match e.action {
                Action::Promote => stack.push(&e.version),
                Action::Rollback => {
                    stack.pop();
                    // A log started by a rollback names where it went back to.
                    if stack.last() != Some(&e.version.as_str()) {
                        stack.push(&e.version);
                    }
                }
                Action::Candidate | Action::Reject => {}
            }
        }
        stack
    }

    /// The version serving now (`None`: no promote yet; serve what the app mounts).
    pub fn serving(&self) -> Option<&str> {
        self.stack().last().copied()
    }

    /// The version a rollback returns to.
    pub fn previous(&self) -> Option<&str> {
        let stack = self.stack();
        stack.len().checked_sub(2).map(|i| stack[i])
    }

    /// Appends `entry` and syncs it to disk before returning.
    pub fn append(&mut self, entry: Entry) -> Result<()> {
        let mut line = serde_json::to_string(&entry)
            .map_err(|e| Error::InvalidBundle { bundle: self.path.clone(), reason: e.to_string() })?;
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.set_len(self.complete_len)
            .and_then(|()| file.seek(std::io::SeekFrom::End(0)))
            .and_then(|_| file.write_all(line.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        self.complete_len += line.len() as u64;
        self.entries.push(entry);
        Ok(())
    }
}

/// The current time as the log writes it (RFC 3339 UTC, seconds).
pub fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Makes `version` of the model in `dir` the serving one: it must be a
/// bundle there whose files match their checksums. Returns the entry written.
///
/// `serving_now` is the version serving before the log says anything (what
/// the app mounts), when the caller knows it: on a log with no promote yet
/// it is recorded first, so a rollback can return to it.
pub fn promote(
    dir: &Path,
    version: &str,
    by: &str,
    reason: Option<String>,
    serving_now: Option<&str>,
) -> Result<Entry> {
    let bundle = dir.join(version);
    if version.is_empty() || version.contains(['/', '\\']) || version.starts_with('.') || !bundle.is_dir() {
        let have = versions(dir)?.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        return Err(Error::InvalidBundle {
            bundle: bundle.clone(),
            reason: format!("there is no version `{version}` of this model (versions: {have})"),
        });
    }
    crate::bundle::Manifest::verify(&bundle)?;
    let mut log = VersionLog::read(dir)?;
    record_baseline(&mut log, serving_now)?;
    let entry = Entry {
        ts: now(),
        action: Action::Promote,
        version: version.into(),
        by: by.into(),
        reason,
        metrics: BTreeMap::new(),
    };
    log.append(entry.clone())?;
    Ok(entry)
}

/// On a log with no promote yet, records `serving_now` as promoted (the
/// version the app mounted before the log began).
pub fn record_baseline(log: &mut VersionLog, serving_now: Option<&str>) -> Result<()> {
    match serving_now {
        Some(version) if log.serving().is_none() => log.append(Entry {
            ts: now(),
            action: Action::Promote,
            version: version.into(),
            by: "baseline".into(),
            reason: Some("the version the app served before this log began".into()),
            metrics: BTreeMap::new(),
        }),
        _ => Ok(()),
    }
}

/// Goes back to the version served before the current one. Returns the entry written.
pub fn rollback(dir: &Path, by: &str, reason: Option<String>) -> Result<Entry> {
    let mut log = VersionLog::read(dir)?;
    let Some(previous) = log.previous().map(str::to_string) else {
        return Err(Error::InvalidBundle {
            bundle: dir.to_path_buf(),
            reason: match log.serving() {
                Some(v) => format!("version {v} is the first promoted version; there is nothing to roll back to"),
                None => "no version was promoted yet; there is nothing to roll back".into(),
            },
        });
    };
    crate::bundle::Manifest::verify(&dir.join(&previous))?;
    let entry = Entry {
        ts: now(),
        action: Action::Rollback,
        version: previous,
        by: by.into(),
        reason,
        metrics: BTreeMap::new(),
    };
    log.append(entry.clone())?;
    Ok(entry)
}

/// The numbered versions present in a model directory (`1`, `2`, ...), in
/// numeric order; staging directories and other names are left out.
pub fn versions(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse::<u64>().ok())
            && entry.path().join(crate::bundle::MANIFEST_FILE).is_file()
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Removes what a crashed bundle write left behind (`.N.partial-PID`
/// directories); returns their names.
pub fn remove_partials(dir: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else { return Ok(removed) };
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".partial-") && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// A mount source read as `<model dir>/<version>`, the model named after
/// its directory (`models/online-retail/2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelMount<'a> {
    /// The model's name: its directory's name.
    pub name: &'a str,
    /// `models/<name>`.
    pub dir: &'a Path,
    /// The mounted version.
    pub version: &'a str,
}

/// `source` as a model mount; `None` when it has no parent directory or a
/// name is not UTF-8.
pub fn model_mount(source: &Path) -> Option<ModelMount<'_>> {
    let dir = source.parent()?;
    Some(ModelMount { name: dir.file_name()?.to_str()?, dir, version: source.file_name()?.to_str()? })
}

/// The bundle a mount of `source` should serve: when `source` is
/// `<model dir>/<version>` and the model's log names another serving
/// version, that version's directory; else `source` itself.
pub fn resolve_mount(source: &Path) -> Result<PathBuf> {
    let Some(ModelMount { dir: model_dir, .. }) = model_mount(source) else { return Ok(source.to_path_buf()) };
    let log = VersionLog::read(model_dir)?;
    Ok(match log.serving() {
        Some(version) => model_dir.join(version),
        None => source.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: Action, version: &str) -> Entry {
        Entry {
            ts: "2026-12-04T00:00:00Z".into(),
            action,
            version: version.into(),
            by: "test".into(),
            reason: None,
            metrics: BTreeMap::new(),
        }
    }

    #[test]
    fn the_log_replays_promotes_and_rollbacks_into_the_serving_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = VersionLog::read(dir.path()).unwrap();
        assert_eq!((log.serving(), log.exists()), (None, false));
        log.append(entry(Action::Promote, "2")).unwrap();
        log.append(entry(Action::Candidate, "3")).unwrap();
        log.append(entry(Action::Reject, "3")).unwrap();
        assert_eq!(log.serving(), Some("2"));
        log.append(entry(Action::Promote, "4")).unwrap();
        log.append(entry(Action::Promote, "5")).unwrap();
        assert_eq!((log.serving(), log.previous()), (Some("5"), Some("4")));
        log.append(entry(Action::Rollback, "4")).unwrap();
        let again = VersionLog::read(dir.path()).unwrap();
        assert_eq!(again, log, "what is appended is what is read back");
        assert_eq!((again.serving(), again.previous()), (Some("4"), Some("2")));
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_bad_line_elsewhere_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = VersionLog::read(dir.path()).unwrap();
        log.append(entry(Action::Promote, "2")).unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"ts\":\"2026");
        std::fs::write(&path, &text).unwrap();
        let mut torn = VersionLog::read(dir.path()).unwrap();
        assert_eq!(torn.serving(), Some("2"));
        torn.append(entry(Action::Promote, "3")).unwrap();
        assert_eq!(VersionLog::read(dir.path()).unwrap().serving(), Some("3"), "the torn tail is cut, not glued to");
        text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("not json\n{text}")).unwrap();
        let err = VersionLog::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn mounts_follow_the_log_and_partials_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["1", "2", ".3.partial-99"] {
            std::fs::create_dir_all(dir.path().join(v)).unwrap();
            std::fs::write(dir.path().join(v).join(crate::bundle::MANIFEST_FILE), "{}").unwrap();
        }
        assert_eq!(versions(dir.path()).unwrap(), vec![1, 2]);
        assert_eq!(resolve_mount(&dir.path().join("1")).unwrap(), dir.path().join("1"));
        VersionLog::read(dir.path()).unwrap().append(entry(Action::Promote, "2")).unwrap();
        assert_eq!(resolve_mount(&dir.path().join("1")).unwrap(), dir.path().join("2"));
        assert_eq!(remove_partials(dir.path()).unwrap(), vec![".3.partial-99".to_string()]);
        assert!(!dir.path().join(".3.partial-99").exists());
    }
}
