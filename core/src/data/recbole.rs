//! RecBole / UniSRec atomic files that come split already:
//! `X.train.inter`, `X.valid.inter`, `X.test.inter` (`user_id:token`,
//! `item_id_list:token_seq` — the chronological history — and the target
//! `item_id:token`), `X.text` (item id, text), and optionally
//! `X.item2index` / `X.user2index` when the `.inter` files use indices.
//!
//! The split is used as it is: a user's training sequence is their longest
//! `train.inter` history plus its target; validation and test cases are the
//! `valid.inter` and `test.inter` rows. Events carry no times.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::split::{Case, Sequence, Split, Step, distinct_history};
use super::{
    DropCounts, DropRule, Event, PrepareReport, Prepared, build_catalog, clean_text, input_files, open_maybe_gz,
};
use crate::{Error, Result};

/// The rules this reader applies, in order.
pub const RULES: [DropRule; 3] = [DropRule::Malformed, DropRule::MissingUser, DropRule::UnknownItem];

const SUFFIXES: [&str; 6] = [".train.inter", ".valid.inter", ".test.inter", ".text", ".item2index", ".user2index"];

/// Prepares a RecBole data set from its directory (or its files).
pub fn prepare_recbole(inputs: &[PathBuf]) -> Result<Prepared> {
    let files = input_files(inputs, &SUFFIXES)?;
    let find = |suffix: &str| files.iter().find(|f| f.to_string_lossy().ends_with(suffix)).cloned();
    let need = |suffix: &str| {
        find(suffix).ok_or_else(|| Error::Data(format!("--input: no `*{suffix}` file among the RecBole inputs")))
    };
    let (train_path, valid_path, test_path, text_path) =
        (need(".train.inter")?, need(".valid.inter")?, need(".test.inter")?, need(".text")?);
    let item_map = find(".item2index").map(|p| read_index(&p)).transpose()?;
    let user_map = find(".user2index").map(|p| read_index(&p)).transpose()?;

    let mut texts: HashMap<String, (String, String)> = HashMap::new();
    for (i, line) in lines(&text_path)?.into_iter().enumerate() {
        let mut parts = line.splitn(2, '\t');
        let (Some(id), Some(text)) = (parts.next(), parts.next()) else { continue };
        if i == 0 && id.contains(':') {
            continue; // header
        }
        let text = clean_text(text);
        // The UniSRec text is "title. category path. brand.": the title is
        // the first sentence.
        let title = text.split(". ").next().unwrap_or(&text).trim_end_matches('.').to_string();
        texts.insert(id.to_string(), (title, text));
    }

    let mut dropped = DropCounts::new(&RULES);
    let mut rows_in = 0u64;
    let mut read_rows = |path: &Path| -> Result<Vec<(String, Vec<String>, String)>> {
        let mut rows = Vec::new();
        for (i, line) in lines(path)?.into_iter().enumerate() {
            if i == 0 && line.contains(":token") {
                continue;
            }
            rows_in += 1;
            match inter_row(&line, item_map.as_ref(), user_map.as_ref()) {
                Ok(row) => rows.push(row),
                Err(rule) => dropped.add(rule),
            }
        }
        Ok(rows)
    };
    let train_rows = read_rows(&train_path)?;
    let valid_rows = read_rows(&valid_path)?;
    let test_rows = read_rows(&test_path)?;

    let mut split = Split::empty("leave-one-out", "recbole");
    let mut longest: HashMap<&str, (usize, Vec<String>)> = HashMap::new();
    let mut users: Vec<&str> = Vec::new();
    for (user, history, target) in &train_rows {
        let entry = longest.entry(user.as_str()).or_insert_with(|| {
            users.push(user.as_str());
            (0, vec![])
        });
        if history.len() + 1 > entry.0 {
            let mut seq = history.clone();
            seq.push(target.clone());
            *entry = (seq.len(), seq);
        }
    }
    for user in &users {
        let seq = &longest[user].1;
        let steps = seq.iter().map(|i| Step { ts: None, items: vec![i.clone()] }).collect();
        split.train.push(Sequence { user: user.to_string(), steps });
    }
    for (rows, test) in [(&valid_rows, false), (&test_rows, true)] {
        for (user, history, target) in rows {
            let history = distinct_history(history);
            let case = (!history.contains(target)).then(|| Case {
                user: user.clone(),
                history,
                targets: vec![target.clone()],
            });
            split.push_case(test, case);
            if !test {
                split
                    .window()
                    .push(Sequence { user: user.clone(), steps: vec![Step { ts: None, items: vec![target.clone()] }] });
            }
        }
    }
    split.finish();

    // The event log: each user's full sequence (test history + target).
    let mut events = Vec::new();
    for (user, history, target) in &test_rows {
        for item in history.iter().chain([target]) {
            events.push(Event {
                user_id: user.clone(),
                item_id: item.clone(),
                ts: None,
                event: "interaction".into(),
                quantity: 1.0,
                price: None,
            });
        }
    }
    let catalog = build_catalog(&events, &texts, &HashMap::new());
    let mut inputs = vec![train_path, valid_path, test_path, text_path];
    inputs.extend(find(".item2index"));
    inputs.extend(find(".user2index"));
    let report = PrepareReport::new("recbole", &inputs, rows_in, dropped, &catalog, &events);
    Ok(Prepared { catalog, events, report, split: Some(split) })
}

fn lines(path: &Path) -> Result<Vec<String>> {
    let reader = BufReader::new(open_maybe_gz(path)?);
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| Error::io(path, e))?;
        // Invalid UTF-8 stays visible as U+FFFD and fails the id lookups.
        let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

/// `token TAB index` → index → token.
fn read_index(path: &Path) -> Result<HashMap<String, String>> {
    Ok(lines(path)?
        .into_iter()
        .filter_map(|l| {
            let mut p = l.split('\t');
            Some((p.next()?.trim().to_string(), p.next()?.trim().to_string()))
        })
        .map(|(token, index)| (index, token))
        .collect())
}

fn inter_row(
    line: &str,
    items: Option<&HashMap<String, String>>,
    users: Option<&HashMap<String, String>>,
) -> Result<(String, Vec<String>, String), DropRule> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [user, history, target] = fields[..] else { return Err(DropRule::Malformed) };
    let user = user.trim();
    if user.is_empty() {
        return Err(DropRule::MissingUser);
    }
    let item = |raw: &str| match items {
        Some(map) => map.get(raw).cloned().ok_or(DropRule::UnknownItem),
        None => Ok(raw.to_string()),
    };
    let history: Vec<String> = history.split_whitespace().map(item).collect::<Result<_, _>>()?;
    let target = item(target.trim())?;
    let user = users.and_then(|m| m.get(user).cloned()).unwrap_or_else(|| user.to_string());
    Ok((user, history, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_own_split_is_kept_and_indices_become_ids() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let header = "user_id:token\titem_id_list:token_seq\titem_id:token\n";
        w("S.train.inter", &format!("{header}0\t0 1\t2\n0\t0\t1\n1\t3\t0\n1\t3 0\t9\nbroken line\n"));
        w("S.valid.inter", &format!("{header}0\t0 1 2\t3\n"));
        w("S.test.inter", &format!("{header}0\t0 1 2 3\t1\n1\t3 0\t2\n"));
        w(
            "S.text",
            "item_id:token\ttext:token_seq\nA\tGlue, 8 oz. Adhesives. Gorilla.\nB\tTape. Tapes. 3M.\nC\tCaulk. Sealants. DAP.\n",
        );
        w("S.item2index", "A\t0\nB\t1\nC\t2\nD\t3\n");
        w("S.user2index", "alice\t0\nbob\t1\n");
        let p = prepare_recbole(&[dir.path().to_path_buf()]).unwrap();
        let r = &p.report;
        assert_eq!((r.rows_in, r.rows_kept, r.dropped["malformed"], r.dropped["unknown_item"]), (8, 6, 1, 1));
        let split = p.split.unwrap();
        let alice: Vec<&str> = split.train[0].steps.iter().map(|s| s.items[0].as_str()).collect();
        assert_eq!((split.train[0].user.as_str(), alice), ("alice", vec!["A", "B", "C"]));
        assert_eq!(split.valid[0].targets, ["D"]);
        let window = split.valid_window.as_ref().unwrap();
        assert_eq!((window[0].user.as_str(), window[0].steps[0].items.as_slice()), ("alice", &["D".to_string()][..]));
        assert_eq!(split.test.len(), 1, "alice's test target B is in her history: a repeat, no case");
        assert_eq!(split.test[0].history, ["D", "A"]);
        assert_eq!(split.meta.repeat_only_cases, 1);
        assert_eq!(p.catalog.iter().find(|c| c.item_id == "A").unwrap().title, "Glue, 8 oz");
        assert_eq!(p.report.items_without_text, 1, "D has no text");
    }
}
