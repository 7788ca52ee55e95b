//! Offline search evaluation on graded relevance judgments (Home Depot
//! Product Search Relevance): rank each query's judged products by each
//! retriever and by their fusion, and compare nDCG@10.
//!
//! Queries are split by a hash of their text into halves: the linear
//! fusion weight is fitted on the first, every number is reported on the
//! second. A query whose judged products all share one grade carries no
//! ranking signal and is left out (counted).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::rerank::{self, Candidate, Ranker};
use super::{Bm25, Fusion, fuse, ndcg_at, terms};
use crate::score::dot;
use crate::{Error, Result};

/// A query and the products people graded for it.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedQuery {
    /// The query text.
    pub text: String,
    /// (product number, relevance on the file's scale).
    pub judged: Vec<(usize, f32)>,
}

/// Products and judged queries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Judgments {
    /// Product titles; a product's number is its position.
    pub titles: Vec<String>,
    /// Queries with at least two different grades.
    pub queries: Vec<JudgedQuery>,
    /// Queries left out because all their grades are equal.
    pub uninformative: usize,
}

/// Reads the Home Depot file (`product_uid, product_title, search_term,
/// relevance`, optionally gzipped).
pub fn read_home_depot(path: &Path) -> Result<Judgments> {
    let (mut csv, [uid, title, term, rel]) =
        crate::data::csv_columns(path, ["product_uid", "product_title", "search_term", "relevance"])?;
    let mut products: HashMap<String, usize> = HashMap::new();
    let mut judgments = Judgments::default();
    let mut queries = QueryGroups::default();
    for (line, record) in csv.records().enumerate() {
        let r = record.map_err(|e| Error::Data(format!("{} row {}: {e}", path.display(), line + 2)))?;
        let field = |i: usize| r.get(i).unwrap_or("").trim();
        let relevance: f32 = field(rel).parse().map_err(|_| {
            Error::Data(format!("{} row {}: relevance `{}` is not a number", path.display(), line + 2, field(rel)))
        })?;
        let next = products.len();
        let product = *products.entry(field(uid).to_string()).or_insert(next);
        if product == judgments.titles.len() {
            judgments.titles.push(field(title).to_string());
        }
        queries.add(field(term), product, relevance);
    }
    (judgments.queries, judgments.uninformative) = queries.informative();
    Ok(judgments)
}

/// Judgments grouped by query text, in the order queries first appear.
#[derive(Default)]
struct QueryGroups {
    position: HashMap<String, usize>,
    all: Vec<JudgedQuery>,
}

impl QueryGroups {
    fn add(&mut self, text: &str, product: usize, relevance: f32) {
        let next = self.all.len();
        let q = *self.position.entry(text.to_string()).or_insert(next);
        if q == next {
            self.all.push(JudgedQuery { text: text.to_string(), judged: Vec::new() });
        }
        self.all[q].judged.push((product, relevance));
    }

    /// The queries with at least two different grades, and how many had not.
    fn informative(self) -> (Vec<JudgedQuery>, usize) {
        let (kept, dropped): (Vec<_>, Vec<_>) =
            self.all.into_iter().partition(|q| q.judged.iter().any(|&(_, r)| r != q.judged[0].1));
        (kept, dropped.len())
    }
}

/// Reads a shop's own judgments (`query, item_id, relevance`: any numeric
/// scale, higher is better; optionally gzipped) against its catalog, where
/// `titles[i]` is the title of the item `ids[i]`. Also returns how many
/// rows named an item the catalog does not have (they are skipped).
pub fn read_judgments(path: &Path, ids: &[&str], titles: Vec<String>) -> Result<(Judgments, usize)> {
    let (mut csv, [query, item, rel]) = crate::data::csv_columns(path, ["query", "item_id", "relevance"])?;
    let number: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let (mut queries, mut unknown) = (QueryGroups::default(), 0);
    for (line, record) in csv.records().enumerate() {
        let r = record.map_err(|e| Error::Data(format!("{} row {}: {e}", path.display(), line + 2)))?;
        let field = |i: usize| r.get(i).unwrap_or("").trim();
        let relevance: f32 = field(rel).parse().ok().filter(|r: &f32| r.is_finite()).ok_or_else(|| {
            Error::Data(format!("{} row {}: relevance `{}` is not a number", path.display(), line + 2, field(rel)))
        })?;
        if field(query).is_empty() {
            return Err(Error::Data(format!("{} row {}: query is empty", path.display(), line + 2)));
        }
        let Some(&product) = number.get(field(item)) else {
            unknown += 1;
            continue;
        };
        queries.add(field(query), product, relevance);
    }
    let (queries, uninformative) = queries.informative();
    Ok((Judgments { titles, queries, uninformative }, unknown))
}

/// Whether a query is in the held-out half (by the hash of its text).
pub fn held_out(query: &str) -> bool {
    Sha256::digest(query.as_bytes())[0] >= 128
}

/// nDCG@10 of each way of ranking, on the held-out queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// Queries the linear weight was fitted on.
    pub fit_queries: usize,
    /// Queries the numbers are measured on.
    pub test_queries: usize,
    /// Queries left out (all grades equal).
    pub uninformative_queries: usize,
    /// BM25 alone.
    pub bm25: f64,
    /// Cosine of query and title embeddings alone.
    pub semantic: f64,
    /// Reciprocal rank fusion (k = 60) of the two.
    pub hybrid_rrf: f64,
    /// Linear fusion with the fitted weight.
    pub hybrid_linear: f64,
    /// The fitted semantic weight of the linear fusion.
    pub linear_semantic_weight: f32,
    /// The re-ranker ([`super::rerank`]) fitted on the other half.
    pub learned: f64,
    /// Its weight per feature (per standard deviation of the feature).
    pub learned_weights: Vec<(String, f32)>,
    /// The lowest grade on the file's scale, mapped to gain 0.
    pub min_relevance: f32,
}

/// A judged query made ready to rank: its candidates numbered `0..n`,
/// their gains, both retrievers' scores and the re-ranker's features.
struct Prepared {
    candidates: Vec<usize>,
    gains: Vec<f32>,
    lexical: Vec<f32>,
    semantic: Vec<f32>,
    held_out: bool,
    features: Vec<[f32; rerank::FEATURES.len()]>,
}

/// Scores every judged query's candidates; the gain of a grade is its
/// distance from the lowest grade of the file. `title_vectors` and
/// `query_vectors` are row-major, L2-normalized, `dims` wide, in the order
/// of `judgments.titles` and `judgments.queries`.
fn prepare(
    judgments: &Judgments,
    bm25: &Bm25,
    title_vectors: &[f32],
    query_vectors: &[f32],
    dims: usize,
) -> (Vec<Prepared>, f32) {
    let min_relevance =
        judgments.queries.iter().flat_map(|q| q.judged.iter().map(|&(_, r)| r)).fold(f32::INFINITY, f32::min);
    let title = |i: usize| &title_vectors[i * dims..(i + 1) * dims];
    let prepared = judgments
        .queries
        .iter()
        .enumerate()
        .map(|(q, query)| {
            let all_lexical = bm25.scores(&terms(&query.text));
            let qv = &query_vectors[q * dims..(q + 1) * dims];
            let lexical: Vec<f32> = query.judged.iter().map(|&(p, _)| all_lexical[p]).collect();
            let semantic: Vec<f32> = query.judged.iter().map(|&(p, _)| dot(qv, title(p))).collect();
            let listed: Vec<Candidate> = query
                .judged
                .iter()
                .enumerate()
                .map(|(c, &(p, _))| Candidate {
                    title: &judgments.titles[p],
                    lexical: lexical[c],
                    semantic: semantic[c],
                })
                .collect();
            Prepared {
                candidates: (0..query.judged.len()).collect(),
                gains: query.judged.iter().map(|&(_, r)| r - min_relevance).collect(),
                features: rerank::features(bm25, &query.text, &listed),
                lexical,
                semantic,
                held_out: held_out(&query.text),
            }
        })
        .collect();
    (prepared, min_relevance)
}

/// Ranks every judged query's products by each method: the linear fusion's
/// weight and the re-ranker are fitted on one half of the queries, every
/// number is measured on the other (see [`prepare`] for the vectors). Also
/// returns the re-ranker refitted on every query: what a bundle serves once
/// the report shows it beats fusion. Fails if the fitting half has too few
/// judgments for the re-ranker.
pub fn evaluate(
    judgments: &Judgments,
    bm25: &Bm25,
    title_vectors: &[f32],
    query_vectors: &[f32],
    dims: usize,
) -> Result<(SearchReport, Ranker)> {
    let (prepared, min_relevance) = prepare(judgments, bm25, title_vectors, query_vectors, dims);
    let ndcg = |p: &Prepared, scores: &[f32]| -> f64 {
        let mut order: Vec<usize> = (0..p.candidates.len()).collect();
        // Ties keep the file's order, the same for every method.
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let ranked: Vec<f32> = order.iter().map(|&i| p.gains[i]).collect();
        f64::from(ndcg_at(&ranked, 10).unwrap_or(0.0))
    };
    let mean = |held: bool, method: &dyn Fn(&Prepared) -> Vec<f32>| -> f64 {
        let chosen: Vec<&Prepared> = prepared.iter().filter(|p| p.held_out == held).collect();
        chosen.iter().map(|p| ndcg(p, &method(p))).sum::<f64>() / chosen.len().max(1) as f64
    };
    let fused = |fusion: Fusion| move |p: &Prepared| fuse(&p.candidates, &p.lexical, &p.semantic, None, fusion);
    let mut best = (f64::MIN, 0.0f32);
    for step in 0..=20 {
        let w = step as f32 / 20.0;
        let score = mean(false, &fused(Fusion::Linear { semantic_weight: w }));
        if score > best.0 {
            best = (score, w);
        }
    }
    let ranker = fit(prepared.iter().filter(|p| !p.held_out))?;
    let report = SearchReport {
        fit_queries: prepared.iter().filter(|p| !p.held_out).count(),
        test_queries: prepared.iter().filter(|p| p.held_out).count(),
        uninformative_queries: judgments.uninformative,
        bm25: mean(true, &|p: &Prepared| p.lexical.clone()),
        semantic: mean(true, &|p: &Prepared| p.semantic.clone()),
        hybrid_rrf: mean(true, &fused(Fusion::default())),
        hybrid_linear: mean(true, &fused(Fusion::Linear { semantic_weight: best.1 })),
        linear_semantic_weight: best.1,
        learned: mean(true, &|p: &Prepared| ranker.score(&p.features)),
        learned_weights: ranker.weights().map(|(name, w)| (name.to_string(), w)).collect(),
        min_relevance,
    };
    Ok((report, fit(prepared.iter())?))
}

fn fit<'a>(prepared: impl Iterator<Item = &'a Prepared>) -> Result<Ranker> {
    Ranker::fit(&prepared.map(|p| (p.features.clone(), p.gains.clone())).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_judgments_and_drops_queries_without_signal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hd.csv");
        std::fs::write(
            &path,
            "id,product_uid,product_title,search_term,relevance\n\
             1,10,Red Mug,mug,3\n2,11,Blue Lamp,mug,1\n3,10,Red Mug,red,2\n4,11,Blue Lamp,red,2\n",
        )
        .unwrap();
        let j = read_home_depot(&path).unwrap();
        assert_eq!(j.titles, ["Red Mug", "Blue Lamp"]);
        assert_eq!(j.queries.len(), 1);
        assert_eq!(j.queries[0].judged, [(0, 3.0), (1, 1.0)]);
        assert_eq!(j.uninformative, 1);
        std::fs::write(&path, "id,product_uid,product_title,search_term,relevance\n1,10,Mug,mug,high\n").unwrap();
        assert!(read_home_depot(&path).unwrap_err().to_string().contains("relevance `high`"));
    }

    #[test]
    fn reads_a_shops_judgments_against_its_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgments.csv");
        std::fs::write(&path, "query,item_id,relevance\nmug,A,3\nmug,B,0\nmug,GONE,2\nlamp,B,1\n").unwrap();
        let titles = vec!["Red Mug".to_string(), "Blue Lamp".to_string()];
        let (j, unknown) = read_judgments(&path, &["A", "B"], titles.clone()).unwrap();
        assert_eq!((j.queries.len(), j.uninformative, unknown), (1, 1, 1));
        assert_eq!(j.queries[0].judged, [(0, 3.0), (1, 0.0)]);
        assert_eq!(j.titles, titles);
        std::fs::write(&path, "query,item,relevance\nmug,A,3\n").unwrap();
        assert!(read_judgments(&path, &["A"], titles.clone()).unwrap_err().to_string().contains("item_id"));
        std::fs::write(&path, "query,item_id,relevance\nmug,A,NaN\n").unwrap();
        assert!(read_judgments(&path, &["A"], titles).unwrap_err().to_string().contains("row 2: relevance `NaN`"));
    }

    #[test]
    fn each_method_ranks_by_its_own_signal() {
        // Product 0 matches the words, product 1 the meaning; graded 3 and 1.
        let titles = vec!["steel hammer".to_string(), "nail driver".to_string()];
        let mut queries = Vec::new();
        // Enough queries for the re-ranker's fit (twice its features in rows).
        for i in 0..60 {
            queries.push(JudgedQuery { text: format!("hammer {i}"), judged: vec![(0, 3.0), (1, 1.0)] });
        }
        let j = Judgments { titles: titles.clone(), queries, uninformative: 0 };
        let bm25 = Bm25::build(&titles);
        let title_vectors = [1.0, 0.0, 0.0, 1.0];
        // Query vectors point at product 1: semantic gets it wrong.
        let query_vectors: Vec<f32> = (0..60).flat_map(|_| [0.0, 1.0]).collect();
        let (r, _) = evaluate(&j, &bm25, &title_vectors, &query_vectors, 2).unwrap();
        assert_eq!(r.fit_queries + r.test_queries, 60);
        assert!(r.test_queries > 5 && r.fit_queries > 5);
        assert_eq!(r.bm25, 1.0);
        assert!(r.semantic < 0.7, "{}", r.semantic);
        // The fitted weight learns to trust BM25 here.
        assert_eq!(r.hybrid_linear, 1.0);
        assert!(r.linear_semantic_weight < 0.5);
    }
}
