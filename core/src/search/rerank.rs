//! A search re-ranker learned from relevance judgments (`ranker.bin`).
//!
//! Hybrid fusion ([`super::fuse`]) needs no training, so every shop gets it.
//! A shop that has graded (query, product) judgments gets more: a linear
//! model over a few dozen query–title features, fitted by ridge regression
//! to the grades, that re-orders the top of the fused list. The features
//! are what the fusion cannot weigh by itself: how much of the query the
//! title covers (in words, in rare words, in characters, by prefix, and
//! allowing one typo per word), whether the query's last word (usually the
//! product type) and its numbers (sizes, model numbers, however they are
//! written) are there, the phrase, the lengths, and BM25 and cosine both
//! as they are and relative to the best candidate of the list.
//!
//! `ranker.bin` (little-endian): magic `ERRK`, `u32` version 1, `u32`
//! feature count `f`, `f32 bias`, then `mean[f]`, `scale[f]`, `weight[f]`,
//! then the feature names, newline-separated UTF-8. A build refuses a file
//! whose names differ from the features it computes.

use std::collections::HashSet;

use super::{Bm25, terms};
use crate::codec::{self, Reader, Writer};
use crate::{Error, Result};

/// File name of the re-ranker inside a bundle.
pub const RANKER_FILE: &str = codec::RANKER.file;

/// How many of the fused list's best candidates the re-ranker re-orders
/// (or the number asked for, if more).
pub const RERANK_DEPTH: usize = 50;

/// The features, in the order [`features`] writes them.
pub const FEATURES: [&str; 22] = [
    "bm25",
    "cosine",
    "coverage",
    "idf_coverage",
    "char_coverage",
    "prefix_coverage",
    "typo_coverage",
    "last_term",
    "first_term",
    "phrase",
    "joined",
    "numbers",
    "brand",
    "title_terms",
    "query_terms",
    "bm25_vs_best",
    "cosine_vs_best",
    "coverage_vs_best",
    "idf_coverage_vs_best",
    "char_coverage_vs_best",
    "prefix_coverage_vs_best",
    "typo_coverage_vs_best",
];
const N: usize = FEATURES.len();
/// The first `RELATIVE` features also enter relative to the list's best.
const RELATIVE: usize = 7;

/// One candidate of a list: its title and the two retrievers' scores.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The item's title.
    pub title: &'a str,
    /// Its BM25 score for the query.
    pub lexical: f32,
    /// The cosine of the query's and the item's vectors.
    pub semantic: f32,
}

/// What the features need from the query, computed once per query.
struct QueryText {
    terms: Vec<String>,
    idf: Vec<f32>,
    grams: HashSet<[char; 3]>,
    numbers: Vec<String>,
    joined: String,
}

impl QueryText {
    fn new(bm25: &Bm25, text: &str) -> Self {
        let mut distinct: Vec<String> = Vec::new();
        for t in terms(text) {
            if !distinct.contains(&t) {
                distinct.push(t);
            }
        }
        let idf = distinct.iter().map(|t| bm25.idf(t)).collect();
        let joined = distinct.concat();
        Self { grams: char_grams(&joined), idf, numbers: numbers(text), joined, terms: distinct }
    }
}

/// The distinct runs of digits in a text. Sizes and model numbers are
/// written in many ways ("32x80" in a query, "32 in. x 80 in." in the
/// title; "2-1/2", "12ft"), and the digits are what they share.
fn numbers(text: &str) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for run in text.split(|c: char| !c.is_ascii_digit()).filter(|r| !r.is_empty()) {
        if !runs.iter().any(|r| r == run) {
            runs.push(run.to_string());
        }
    }
    runs
}

/// Character trigrams of a string (letters and digits only).
fn char_grams(joined: &str) -> HashSet<[char; 3]> {
    let chars: Vec<char> = joined.chars().collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// Whether two words share a prefix of at least four letters and one
/// starts the other ("drawer" / "drawers", "galv" / "galvanized").
fn prefix_match(a: &str, b: &str) -> bool {
    a.len() >= 4 && b.len() >= 4 && (a.starts_with(b) || b.starts_with(a))
}

/// Whether two words of four letters or more differ by at most one edit:
/// a letter changed, added or dropped, or two neighbours swapped
/// ("toliet" / "toilet", "cleamer" / "cleaner", "nobs" / "knobs"). Shorter
/// words are left out: one edit turns most of them into other words.
fn one_typo_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() < 4 || b.len() < 4 || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) else {
        // Equal, or one is the other with a letter added at the end.
        return true;
    };
    if a.len() == b.len() {
        let changed = a[i + 1..] == b[i + 1..];
        let swapped = i + 1 < a.len() && a[i] == b[i + 1] && a[i + 1] == b[i] && a[i + 2..] == b[i + 2..];
        changed || swapped
    } else {
        let (short, long) = if a.len() < b.len() { (&a, &b) } else { (&b, &a) };
        short[i..] == long[i + 1..]
    }
}

/// The feature rows of a query's candidates, in [`FEATURES`] order.
pub fn features(bm25: &Bm25, query: &str, candidates: &[Candidate]) -> Vec<[f32; N]> {
    let q = QueryText::new(bm25, query);
    let n_terms = q.terms.len().max(1) as f32;
    let idf_total: f32 = q.idf.iter().sum::<f32>().max(f32::MIN_POSITIVE);
    let mut rows: Vec<[f32; N]> = candidates
        .iter()
        .map(|c| {
            let title = terms(c.title);
            let has = |t: &String| title.contains(t);
            let matched: Vec<bool> = q.terms.iter().map(has).collect();
            let count = |flags: &[bool]| flags.iter().filter(|&&m| m).count() as f32;
            let idf_matched: f32 = q.idf.iter().zip(&matched).filter(|(_, m)| **m).map(|(w, _)| w).sum();
            let title_joined = title.concat();
            let title_grams = char_grams(&title_joined);
            let char_coverage = if q.grams.is_empty() {
                0.0
            } else {
                q.grams.iter().filter(|g| title_grams.contains(*g)).count() as f32 / q.grams.len() as f32
            };
            let prefix: Vec<bool> =
                q.terms.iter().zip(&matched).map(|(t, &m)| m || title.iter().any(|w| prefix_match(t, w))).collect();
            let typo: Vec<bool> =
                q.terms.iter().zip(&prefix).map(|(t, &p)| p || title.iter().any(|w| one_typo_apart(t, w))).collect();
            let phrase = !q.terms.is_empty() && title.windows(q.terms.len()).any(|w| w == q.terms.as_slice());
            let numbers = if q.numbers.is_empty() {
                0.5
            } else {
                let in_title = numbers(c.title);
                q.numbers.iter().filter(|n| in_title.contains(n)).count() as f32 / q.numbers.len() as f32
            };
            let mut row = [0f32; N];
            row[..15].copy_from_slice(&[
                c.lexical,
                c.semantic,
                count(&matched) / n_terms,
                idf_matched / idf_total,
                char_coverage,
                count(&prefix) / n_terms,
                count(&typo) / n_terms,
                f32::from(matched.last().copied().unwrap_or(false)),
                f32::from(matched.first().copied().unwrap_or(false)),
                f32::from(phrase),
                f32::from(!q.joined.is_empty() && title_joined.contains(&q.joined)),
                numbers,
                f32::from(title.first().is_some_and(|brand| q.terms.contains(brand))),
                (1.0 + title.len() as f32).ln(),
                (1.0 + q.terms.len() as f32).ln(),
            ]);
            row
        })
        .collect();
    for f in 0..RELATIVE {
        let best = rows.iter().map(|r| r[f]).fold(f32::NEG_INFINITY, f32::max);
        rows.iter_mut().for_each(|r| r[N - RELATIVE + f] = r[f] - best);
    }
    rows
}

/// A linear model over standardized features.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranker {
    bias: f32,
    mean: Vec<f32>,
    scale: Vec<f32>,
    weight: Vec<f32>,
}

/// Ridge strength of [`Ranker::fit`] on standardized features; the fit
/// hardly moves between 1 and 100 on Home Depot, so it is not a knob.
const RIDGE: f64 = 10.0;

impl Ranker {
    /// Fits the grades of every judged list: `lists` holds each query's
    /// feature rows and the grades of the same candidates.
    pub fn fit(lists: &[(Vec<[f32; N]>, Vec<f32>)]) -> Result<Self> {
        let rows: Vec<(&[f32; N], f32)> = lists.iter().flat_map(|(x, y)| x.iter().zip(y.iter().copied())).collect();
        if rows.len() < 2 * N {
            return Err(Error::Data(format!(
                "{} judged products are too few to fit a re-ranker of {N} features (it needs {}); judge more queries",
                rows.len(),
                2 * N
            )));
        }
        let n = rows.len() as f64;
        let mut mean = [0f64; N];
        rows.iter().for_each(|(x, _)| x.iter().zip(&mut mean).for_each(|(&v, m)| *m += f64::from(v) / n));
        let mut var = [0f64; N];
        rows.iter().for_each(|(x, _)| {
            x.iter().zip(&mean).zip(&mut var).for_each(|((&v, m), s)| *s += (f64::from(v) - m).powi(2) / n)
        });
        // A feature that never varies (no numbers in any query) gets scale
        // 1 and, with the ridge, weight 0.
        let scale: Vec<f64> = var.iter().map(|&v| if v > 1e-12 { v.sqrt() } else { 1.0 }).collect();
        let y_mean = rows.iter().map(|&(_, y)| f64::from(y)).sum::<f64>() / n;
        let mut gram = vec![0f64; N * N];
        let mut cross = vec![0f64; N];
        for (x, y) in &rows {
            let z: Vec<f64> = (0..N).map(|f| (f64::from(x[f]) - mean[f]) / scale[f]).collect();
            for r in 0..N {
                cross[r] += z[r] * (f64::from(*y) - y_mean);
                for c in 0..N {
                    gram[r * N + c] += z[r] * z[c];
                }
            }
        }
        (0..N).for_each(|r| gram[r * N + r] += RIDGE);
        let weight = crate::linalg::solve_spd(gram, cross, N, 1)
            .ok_or_else(|| Error::Data("the re-ranker's regression is singular".into()))?;
        Ok(Self {
            bias: y_mean as f32,
            mean: mean.iter().map(|&m| m as f32).collect(),
            scale: scale.iter().map(|&s| s as f32).collect(),
            weight: weight.iter().map(|&w| w as f32).collect(),
        })
    }

    /// The predicted grade of each row.
    pub fn score(&self, rows: &[[f32; N]]) -> Vec<f32> {
        rows.iter()
            .map(|x| self.bias + (0..N).map(|f| self.weight[f] * (x[f] - self.mean[f]) / self.scale[f]).sum::<f32>())
            .collect()
    }

    /// The weight of each feature (per standard deviation), by name.
    pub fn weights(&self) -> impl Iterator<Item = (&'static str, f32)> + '_ {
        FEATURES.iter().copied().zip(self.weight.iter().copied())
    }

    /// Serializes to the `ranker.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::RANKER);
        w.u32(N as u32).f32s([self.bias].iter()).f32s(&self.mean).f32s(&self.scale).f32s(&self.weight);
        w.bytes(FEATURES.join("\n").as_bytes());
        w.finish()
    }

    /// Parses `ranker.bin`, refusing one made for other features.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::RANKER, bytes)?;
        let n = r.count("features")?;
        let bias = r.f32("bias")?;
        let mean = r.f32s(n, "mean")?;
        let scale = r.f32s(n, "scale")?;
        let weight = r.f32s(n, "weight")?;
        let names = r.bytes(r.remaining(), "names")?;
        let names = std::str::from_utf8(names).map_err(|_| r.error("feature names are not UTF-8"))?;
        if names != FEATURES.join("\n") {
            return Err(r.error(format!(
                "made for the features [{}], this build computes [{}]; refit it with `edgerec index --judgments` or `edgerec train --judgments`",
                names.replace('\n', ", "),
                FEATURES.join(", ")
            )));
        }
        if [bias].iter().chain(&mean).chain(&scale).chain(&weight).any(|v| !v.is_finite())
            || scale.iter().any(|&s| s <= 0.0)
        {
            return Err(r.error("a weight is not a finite number"));
        }
        r.finish()?;
        Ok(Self { bias, mean, scale, weight })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates<'a>(bm25: &Bm25, query: &str, titles: &'a [&'a str], cosines: &[f32]) -> Vec<Candidate<'a>> {
        let lexical = bm25.scores(&terms(query));
        titles
            .iter()
            .zip(cosines)
            .enumerate()
            .map(|(i, (t, &c))| Candidate { title: t, lexical: lexical[i], semantic: c })
            .collect()
    }

    #[test]
    fn features_measure_how_much_of_the_query_a_title_holds() {
        let titles = ["Everbilt 3 in. Zinc Corner Brace", "Brace Yourself: a novel", "DeckOver Wood Coating 1 gal."];
        let bm25 = Bm25::build(&titles);
        let rows = features(
            &bm25,
            "zinc corner braces 3",
            &candidates(&bm25, "zinc corner braces 3", &titles, &[0.7, 0.2, 0.1]),
        );
        let f = |name: &str| FEATURES.iter().position(|n| *n == name).unwrap();
        assert_eq!(rows[0][f("coverage")], 1.0);
        assert_eq!(rows[1][f("coverage")], 0.25);
        assert_eq!((rows[0][f("last_term")], rows[1][f("last_term")]), (1.0, 0.0), "the last query term is 3");
        assert_eq!(rows[0][f("numbers")], 1.0);
        assert_eq!(rows[1][f("numbers")], 0.0);
        assert!(rows[0][f("idf_coverage")] > rows[1][f("idf_coverage")]);
        assert_eq!(rows[0][f("bm25_vs_best")], 0.0);
        assert!(rows[1][f("bm25_vs_best")] < 0.0);
        assert_eq!(rows[1][f("cosine_vs_best")], 0.2 - 0.7);
        // Words written together or apart, and a prefix, still match.
        let rows = features(&bm25, "deck over coat", &candidates(&bm25, "deck over coat", &titles, &[0.0; 3]));
        assert_eq!(rows[2][f("coverage")], 0.0);
        assert_eq!(rows[2][f("prefix_coverage")], 2.0 / 3.0, "deck- and coat- start title words");
        assert!(rows[2][f("char_coverage")] > 0.5);
        assert_eq!(rows[2][f("joined")], 0.0);
        let rows = features(&bm25, "deck over", &candidates(&bm25, "deck over", &titles, &[0.0; 3]));
        assert_eq!(rows[2][f("joined")], 1.0);
        assert_eq!(rows[0][f("brand")], 0.0);
        // A typo still matches; the size matches however it is written.
        let titles = ["Toilet Seat Cover 32 in. x 80 in.", "Toilet Tank Lever 3 in."];
        let bm25 = Bm25::build(&titles);
        let query = "toliet seat 32x80";
        let rows = features(&bm25, query, &candidates(&bm25, query, &titles, &[0.0; 2]));
        assert_eq!(rows[0][f("prefix_coverage")], 1.0 / 3.0, "only seat is written the same");
        assert_eq!(rows[0][f("typo_coverage")], 2.0 / 3.0, "toliet is one swap from toilet");
        assert_eq!(rows[1][f("typo_coverage")], 1.0 / 3.0);
        assert_eq!(rows[1][f("typo_coverage_vs_best")], 1.0 / 3.0 - 2.0 / 3.0);
        assert_eq!((rows[0][f("numbers")], rows[1][f("numbers")]), (1.0, 0.0), "32 and 80 are both in the first");
        assert!(
            features(&bm25, "", &candidates(&bm25, "", &titles, &[0.0; 3])).iter().flatten().all(|v| v.is_finite())
        );
    }

    #[test]
    fn one_typo_is_one_edit_between_words_of_four_letters_or_more() {
        for (a, b) in
            [("toliet", "toilet"), ("cleamer", "cleaner"), ("nobs", "knobs"), ("shads", "shade"), ("hose", "hose")]
        {
            assert!(one_typo_apart(a, b) && one_typo_apart(b, a), "{a} / {b}");
        }
        for (a, b) in [("tpe", "tape"), ("cleamr", "cleaner"), ("vynal", "vinyl"), ("lamp", "lump0"), ("abcd", "badc")]
        {
            assert!(!one_typo_apart(a, b) && !one_typo_apart(b, a), "{a} / {b}");
        }
        assert_eq!(numbers("2-1/2 in. x 12 ft. 2x4"), ["2", "1", "12", "4"]);
    }

    #[test]
    fn a_fitted_ranker_learns_which_feature_carries_the_grade() {
        // Grades follow coverage; cosine is noise. The fit must rank by coverage.
        let titles = ["red mug", "red lamp", "blue mug", "green vase"];
        let bm25 = Bm25::build(&titles);
        let mut lists = Vec::new();
        for i in 0..30 {
            let query = ["red mug", "blue mug", "red lamp"][i % 3];
            let noise: Vec<f32> = (0..4).map(|j| ((i * 7 + j * 3) % 5) as f32 / 5.0).collect();
            let cands = candidates(&bm25, query, &titles, &noise);
            let rows = features(&bm25, query, &cands);
            let grades = rows.iter().map(|r| 3.0 * r[2]).collect();
            lists.push((rows, grades));
        }
        let ranker = Ranker::fit(&lists).unwrap();
        let cands = candidates(&bm25, "blue mug", &titles, &[0.9, 0.8, 0.1, 0.5]);
        let scores = ranker.score(&features(&bm25, "blue mug", &cands));
        let best = (0..4).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        assert_eq!(titles[best], "blue mug", "{scores:?}");
        let cosine = ranker.weights().find(|(name, _)| *name == "cosine").unwrap().1;
        let coverage = ranker.weights().find(|(name, _)| *name == "coverage").unwrap().1;
        assert!(coverage > cosine.abs(), "coverage {coverage}, cosine {cosine}");
        assert!(Ranker::fit(&lists[..1]).unwrap_err().to_string().contains("too few"));
    }

    #[test]
    fn the_file_round_trips_and_refuses_other_features() {
        let ranker = Ranker {
            bias: 1.5,
            mean: (0..N).map(|i| i as f32).collect(),
            scale: vec![2.0; N],
            weight: (0..N).map(|i| -(i as f32) / 10.0).collect(),
        };
        let bytes = ranker.to_bytes();
        assert_eq!(Ranker::from_bytes(&bytes).unwrap(), ranker);
        let mut renamed = bytes.clone();
        let at = renamed.len() - 1;
        renamed[at] = b'X';
        let err = Ranker::from_bytes(&renamed).unwrap_err().to_string();
        assert!(err.contains(RANKER_FILE) && err.contains("refit"), "{err}");
        assert!(Ranker::from_bytes(&bytes[..40]).is_err());
        let mut zero_scale = ranker.clone();
        zero_scale.scale[3] = 0.0;
        assert!(Ranker::from_bytes(&zero_scale.to_bytes()).is_err());
    }
}
