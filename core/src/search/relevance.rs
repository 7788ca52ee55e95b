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
    let mut queries: HashMap<String, usize> = HashMap::new();
    let mut all: Vec<JudgedQuery> = Vec::new();
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
        let next = all.len();
        let q = *queries.entry(field(term).to_string()).or_insert(next);
        if q == all.len() {
            all.push(JudgedQuery { text: field(term).to_string(), judged: Vec::new() });
        }
        all[q].judged.push((product, relevance));
    }
    for q in all {
        let first = q.judged[0].1;
        if q.judged.iter().any(|&(_, r)| r != first) {
            judgments.queries.push(q);
        } else {
            judgments.uninformative += 1;
        }
    }
    Ok(judgments)
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
    /// The lowest grade on the file's scale, mapped to gain 0.
    pub min_relevance: f32,
}

/// Ranks every judged query's products by each method. `title_vectors` and
/// `query_vectors` are row-major, L2-normalized, `dims` wide, in the order
/// of `judgments.titles` and `judgments.queries`.
pub fn evaluate(
    judgments: &Judgments,
    bm25: &Bm25,
    title_vectors: &[f32],
    query_vectors: &[f32],
    dims: usize,
) -> SearchReport {
    let min_relevance =
        judgments.queries.iter().flat_map(|q| q.judged.iter().map(|&(_, r)| r)).fold(f32::INFINITY, f32::min);
    let title = |i: usize| &title_vectors[i * dims..(i + 1) * dims];
    // Per query: candidates, gains, lexical and semantic scores (dense over
    // all products for the lexical side, as the fusion expects).
    struct Prepared {
        candidates: Vec<usize>,
        gains: Vec<f32>,
        lexical: Vec<f32>,
        semantic: Vec<f32>,
        held_out: bool,
    }
    let prepared: Vec<Prepared> = judgments
        .queries
        .iter()
        .enumerate()
        .map(|(q, query)| {
            let candidates: Vec<usize> = query.judged.iter().map(|&(p, _)| p).collect();
            let gains = query.judged.iter().map(|&(_, r)| r - min_relevance).collect();
            let lexical = bm25.scores(&terms(&query.text));
            let qv = &query_vectors[q * dims..(q + 1) * dims];
            let mut semantic = vec![0f32; judgments.titles.len()];
            for &p in &candidates {
                semantic[p] = dot(qv, title(p));
            }
            Prepared { candidates, gains, lexical, semantic, held_out: held_out(&query.text) }
        })
        .collect();
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
    let bm25_only = |p: &Prepared| p.candidates.iter().map(|&i| p.lexical[i]).collect::<Vec<f32>>();
    let semantic_only = |p: &Prepared| p.candidates.iter().map(|&i| p.semantic[i]).collect::<Vec<f32>>();
    let fused = |fusion: Fusion| move |p: &Prepared| fuse(&p.candidates, &p.lexical, &p.semantic, None, fusion);
    let mut best = (f64::MIN, 0.0f32);
    for step in 0..=20 {
        let w = step as f32 / 20.0;
        let score = mean(false, &fused(Fusion::Linear { semantic_weight: w }));
        if score > best.0 {
            best = (score, w);
        }
    }
    SearchReport {
        fit_queries: prepared.iter().filter(|p| !p.held_out).count(),
        test_queries: prepared.iter().filter(|p| p.held_out).count(),
        uninformative_queries: judgments.uninformative,
        bm25: mean(true, &bm25_only),
        semantic: mean(true, &semantic_only),
        hybrid_rrf: mean(true, &fused(Fusion::Rrf { k: 60.0 })),
        hybrid_linear: mean(true, &fused(Fusion::Linear { semantic_weight: best.1 })),
        linear_semantic_weight: best.1,
        min_relevance,
    }
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
    fn each_method_ranks_by_its_own_signal() {
        // Product 0 matches the words, product 1 the meaning; graded 3 and 1.
        let titles = vec!["steel hammer".to_string(), "nail driver".to_string()];
        let mut queries = Vec::new();
        for i in 0..40 {
            queries.push(JudgedQuery { text: format!("hammer {i}"), judged: vec![(0, 3.0), (1, 1.0)] });
        }
        let j = Judgments { titles: titles.clone(), queries, uninformative: 0 };
        let bm25 = Bm25::build(&titles);
        let title_vectors = [1.0, 0.0, 0.0, 1.0];
        // Query vectors point at product 1: semantic gets it wrong.
        let query_vectors: Vec<f32> = (0..40).flat_map(|_| [0.0, 1.0]).collect();
        let r = evaluate(&j, &bm25, &title_vectors, &query_vectors, 2);
        assert_eq!(r.fit_queries + r.test_queries, 40);
        assert!(r.test_queries > 5 && r.fit_queries > 5);
        assert_eq!(r.bm25, 1.0);
        assert!(r.semantic < 0.7, "{}", r.semantic);
        // The fitted weight learns to trust BM25 here.
        assert_eq!(r.hybrid_linear, 1.0);
        assert!(r.linear_semantic_weight < 0.5);
    }
}
