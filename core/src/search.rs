//! `POST /api/search`: hybrid product search.
//!
//! Two retrievers look at every catalog item:
//!
//! - **lexical**: BM25 over the titles ([`Bm25`], built offline into the
//!   bundle as `bm25.bin`), which nails exact model numbers, brands and
//!   sizes;
//! - **semantic**: the cosine between the query's text embedding and the
//!   item vectors, which understands "sofa" for "couch".
//!
//! Their rankings are fused ([`Fusion`]); when the shopper's history is
//! known, a third ranking (similarity to the user vector of the user tower)
//! joins the fusion with a smaller weight, so a query for "mug" shows the
//! mugs that fit what this shopper buys first.

#[cfg(feature = "data")]
pub mod relevance;
pub mod rerank;

use rerank::Candidate;
pub use rerank::{RANKER_FILE, RERANK_DEPTH, Ranker};

use crate::Result;
use crate::api::{ApiError, ScoredItem, validate_k};
use crate::codec::{self, Reader, Writer};
use crate::index::ItemIndex;
use crate::score::{QueryVector, top_k};

/// File name of the BM25 index inside a bundle.
pub const BM25_FILE: &str = codec::BM25.file;

/// Query text beyond this many bytes is cut before tokenizing: far more than
/// any encoder window (128 word pieces) holds, and it keeps a 1 MiB body
/// from costing a 1 MiB tokenization.
pub const MAX_QUERY_BYTES: usize = 2048;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalization.
const B: f32 = 0.75;

/// The search terms of a text: lowercase alphanumeric runs, with a plural
/// `s` dropped from words longer than three letters (`"Mugs"` → `mug`,
/// but `"gas"` and `"glass"` stay).
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut w = w.to_lowercase();
            if w.len() > 3
                && w.ends_with('s')
                && !w.ends_with("ss")
                && !w.chars().all(|c| c.is_ascii_digit() || c == 's')
            {
                w.pop();
            }
            w
        })
        .collect()
}

/// An inverted index over item titles with Okapi BM25 scoring
/// (k1 = 1.2, b = 0.75, idf = ln(1 + (N − df + ½)/(df + ½))).
///
/// Documents are numbered like the bundle's `items.bin`, so a BM25 score
/// and an item vector with the same number belong to the same item.
#[derive(Debug, Clone, PartialEq)]
pub struct Bm25 {
    doc_len: Vec<u32>,
    avg_len: f32,
    /// Sorted, distinct terms.
    vocab: Vec<String>,
    /// Postings of term `t`: `post_doc[post_start[t]..post_start[t + 1]]`.
    post_start: Vec<u32>,
    post_doc: Vec<u32>,
    post_tf: Vec<u32>,
}

impl Bm25 {
    /// Indexes `docs` (document `i` is `docs[i]`).
    pub fn build<S: AsRef<str>>(docs: &[S]) -> Self {
        let mut pairs: Vec<(String, u32, u32)> = Vec::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        for (d, text) in docs.iter().enumerate() {
            let mut t = terms(text.as_ref());
            doc_len.push(t.len() as u32);
            t.sort_unstable();
            let mut i = 0;
            while i < t.len() {
                let j = t[i..].iter().position(|x| *x != t[i]).map_or(t.len(), |p| i + p);
                pairs.push((std::mem::take(&mut t[i]), d as u32, (j - i) as u32));
                i = j;
            }
        }
        pairs.sort_unstable();
        let (mut vocab, mut post_start, mut post_doc, mut post_tf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (term, doc, tf) in pairs {
            if vocab.last() != Some(&term) {
                post_start.push(post_doc.len() as u32);
                vocab.push(term);
            }
            post_doc.push(doc);
            post_tf.push(tf);
        }
        post_start.push(post_doc.len() as u32);
        let total: u64 = doc_len.iter().map(|&l| u64::from(l)).sum();
        let avg_len = if docs.is_empty() { 0.0 } else { total as f32 / docs.len() as f32 };
        Self { doc_len, avg_len, vocab, post_start, post_doc, post_tf }
    }

    /// Number of indexed documents.
    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    /// The inverse document frequency of `term` (that of a term no title
    /// has, the highest, if unknown).
    pub fn idf(&self, term: &str) -> f32 {
        let df = match self.vocab.binary_search_by(|t| t.as_str().cmp(term)) {
            Ok(t) => (self.post_start[t + 1] - self.post_start[t]) as usize,
            Err(_) => 0,
        };
        self.idf_of_df(df)
    }

    fn idf_of_df(&self, df: usize) -> f32 {
        let (n, df) = (self.len() as f32, df as f32);
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// BM25 score of every document for the query terms (0 where no term
    /// matches). A term repeated in the query counts once.
    pub fn scores(&self, query_terms: &[String]) -> Vec<f32> {
        let mut out = vec![0f32; self.len()];
        let mut seen: Vec<&str> = Vec::new();
        for term in query_terms {
            if seen.contains(&term.as_str()) {
                continue;
            }
            seen.push(term);
            let Ok(t) = self.vocab.binary_search(term) else { continue };
            let (start, end) = (self.post_start[t] as usize, self.post_start[t + 1] as usize);
            let idf = self.idf_of_df(end - start);
            for p in start..end {
                let (doc, tf) = (self.post_doc[p] as usize, self.post_tf[p] as f32);
                let norm = 1.0 - B + B * self.doc_len[doc] as f32 / self.avg_len.max(f32::MIN_POSITIVE);
                out[doc] += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
        }
        out
    }

    /// Serializes to the `bm25.bin` layout: magic `ERBM`, then little-endian
    /// `u32` words: version, documents, terms, postings, `avg_len` (f32
    /// bits), then `doc_len[documents]`, `post_start[terms + 1]`,
    /// `post_doc[postings]`, `post_tf[postings]`, `term_end[terms]` (byte
    /// offsets into the UTF-8 terms that follow).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::BM25);
        w.u32(self.doc_len.len() as u32).u32(self.vocab.len() as u32).u32(self.post_doc.len() as u32);
        w.u32(self.avg_len.to_bits());
        w.u32s(&self.doc_len).u32s(&self.post_start).u32s(&self.post_doc).u32s(&self.post_tf);
        let mut text = String::new();
        for term in &self.vocab {
            text.push_str(term);
            w.u32(text.len() as u32);
        }
        w.bytes(text.as_bytes());
        w.finish()
    }

    /// Parses `bm25.bin`, checking every length and offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::BM25, bytes)?;
        let (docs, n_terms, postings) = (r.count("documents")?, r.count("terms")?, r.count("postings")?);
        let avg_len = r.f32("avg_len")?;
        let doc_len = r.u32s(docs, "doc_len")?;
        let post_start = r.u32s(r.sum(n_terms, 1, "post_start")?, "post_start")?;
        let post_doc = r.u32s(postings, "post_doc")?;
        let post_tf = r.u32s(postings, "post_tf")?;
        let term_end = r.u32s(n_terms, "term_end")?;
        let text = r.bytes(r.remaining(), "terms")?;
        let text = std::str::from_utf8(text).map_err(|_| r.error("terms are not UTF-8"))?;
        let mut vocab = Vec::with_capacity(n_terms);
        let mut start = 0usize;
        for &end in &term_end {
            let term = text.get(start..end as usize).ok_or_else(|| r.error("term offsets out of range"))?;
            vocab.push(term.to_string());
            start = end as usize;
        }
        let sorted = vocab.windows(2).all(|w| w[0] < w[1]);
        let starts_ok = post_start.windows(2).all(|w| w[0] <= w[1]) && post_start.last() == Some(&(postings as u32));
        if !sorted || !starts_ok || post_doc.iter().any(|&d| d as usize >= docs) || start != text.len() {
            return Err(r.error("inconsistent postings"));
        }
        r.finish()?;
        Ok(Self { doc_len, avg_len, vocab, post_start, post_doc, post_tf })
    }
}

/// How rankings are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ weight / (k + rank)` over the rankings an
    /// item appears in. Scale-free, so it needs no tuning per catalog.
    Rrf {
        /// Rank offset; 60 in the original paper (Cormack et al., 2009).
        k: f32,
    },
    /// `(1 − w)·bm25 / max(bm25) + w·cosine`, with `w` fitted on training
    /// queries.
    Linear {
        /// Weight of the semantic score.
        semantic_weight: f32,
    },
}

/// The `k` of the default fusion: reciprocal rank fusion's usual constant.
pub const RRF_K: f32 = 60.0;

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: RRF_K }
    }
}

/// Weight of the personal ranking relative to the query's two rankings.
pub const PERSONAL_WEIGHT: f32 = 0.5;

/// Ranks (0 = best) of `scores` over `candidates`; items that `counts`
/// rejects (no lexical match) get no rank.
fn ranks(candidates: &[usize], scores: &[f32], counts: impl Fn(f32) -> bool) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&c| counts(scores[candidates[c]])).collect();
    order.sort_by(|&a, &b| scores[candidates[b]].total_cmp(&scores[candidates[a]]).then(a.cmp(&b)));
    let mut out = vec![None; candidates.len()];
    for (rank, c) in order.into_iter().enumerate() {
        out[c] = Some(rank);
    }
    out
}

/// Fuses per-item scores (indexed by item number) of the lexical and
/// semantic retrievers, and optionally a personal score, into one score per
/// candidate (same order as `candidates`).
pub fn fuse(
    candidates: &[usize],
    lexical: &[f32],
    semantic: &[f32],
    personal: Option<&[f32]>,
    fusion: Fusion,
) -> Vec<f32> {
    match fusion {
        Fusion::Rrf { k } => {
            let lex = ranks(candidates, lexical, |s| s > 0.0);
            let sem = ranks(candidates, semantic, |_| true);
            let per = personal.map(|p| ranks(candidates, p, |_| true));
            (0..candidates.len())
                .map(|c| {
                    let term = |rank: Option<usize>, weight: f32| rank.map_or(0.0, |r| weight / (k + r as f32 + 1.0));
                    term(lex[c], 1.0) + term(sem[c], 1.0) + per.as_ref().map_or(0.0, |p| term(p[c], PERSONAL_WEIGHT))
                })
                .collect()
        }
        Fusion::Linear { semantic_weight: w } => {
            let max = candidates.iter().map(|&i| lexical[i]).fold(0f32, f32::max);
            candidates
                .iter()
                .map(|&i| {
                    let lex = if max > 0.0 { lexical[i] / max } else { 0.0 };
                    let base = (1.0 - w) * lex + w * semantic[i];
                    base + personal.map_or(0.0, |p| PERSONAL_WEIGHT * w * p[i])
                })
                .collect()
        }
    }
}

/// A validated search query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query text, trimmed and cut to [`MAX_QUERY_BYTES`].
    pub text: String,
    /// Whether the text was cut here (the encoder may cut it further).
    pub truncated: bool,
    /// Item ids of the shopper's history, oldest first.
    pub history: Vec<String>,
    /// Number of items wanted.
    pub k: usize,
}

impl TryFrom<crate::api::SearchRequest> for SearchQuery {
    type Error = ApiError;

    fn try_from(req: crate::api::SearchRequest) -> Result<Self, ApiError> {
        let (text, truncated) = clean_query(&req.query, "query")?;
        Ok(Self { text, truncated, history: req.history.unwrap_or_default(), k: validate_k(req.k)? })
    }
}

/// Trims `text` and cuts it to [`MAX_QUERY_BYTES`] at a character boundary;
/// an empty or all-whitespace text is a 400 that names `field`.
pub fn clean_query(text: &str, field: &str) -> Result<(String, bool), ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(format!("field `{field}` is empty; send the words to search for")));
    }
    if trimmed.len() <= MAX_QUERY_BYTES {
        return Ok((trimmed.to_string(), false));
    }
    let mut end = MAX_QUERY_BYTES;
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    Ok((trimmed[..end].to_string(), true))
}

/// How a search orders what its retrievers found.
#[derive(Debug, Clone, Copy)]
pub enum Ranking<'a> {
    /// Fuse the retrievers' rankings: needs no judgments.
    Fused(Fusion),
    /// Fuse them (RRF), then re-order the best [`RERANK_DEPTH`] (or `k`,
    /// if more) by a re-ranker fitted to the shop's judgments.
    Learned(&'a Ranker),
}

impl Default for Ranking<'_> {
    fn default() -> Self {
        Ranking::Fused(Fusion::default())
    }
}

/// Ranks the whole catalog for a query whose embedding is already in the
/// item space (`query_vector`), fusing BM25, semantic and, when `user` is
/// given, personal similarity; a learned `ranking` then re-orders the top,
/// the personal ranking joining its order as it joins the fusion.
pub fn search(
    index: &ItemIndex,
    bm25: &Bm25,
    query: &SearchQuery,
    query_vector: &[f32],
    user: Option<&[f32]>,
    ranking: Ranking,
) -> Vec<ScoredItem> {
    let candidates: Vec<usize> = (0..index.len()).collect();
    let lexical = bm25.scores(&terms(&query.text));
    let semantic = index.scores(&QueryVector::new(query_vector));
    let personal = user.map(|u| index.scores(&QueryVector::new(u)));
    let fusion = match ranking {
        Ranking::Fused(fusion) => fusion,
        Ranking::Learned(_) => Fusion::default(),
    };
    let fused = fuse(&candidates, &lexical, &semantic, personal.as_deref(), fusion);
    let mut scores: Vec<Option<f32>> = fused.into_iter().map(Some).collect();
    if let Ranking::Learned(ranker) = ranking {
        let top: Vec<usize> = top_k(&scores, query.k.max(RERANK_DEPTH)).into_iter().map(|(i, _)| i).collect();
        let listed: Vec<Candidate> = top
            .iter()
            .map(|&i| Candidate { title: index.title(i), lexical: lexical[i], semantic: semantic[i] })
            .collect();
        let learned = ranker.score(&rerank::features(bm25, &query.text, &listed));
        let reordered = match &personal {
            None => learned,
            Some(personal) => {
                let mut dense = vec![f32::NEG_INFINITY; index.len()];
                top.iter().zip(&learned).for_each(|(&i, &s)| dense[i] = s);
                let (by_learned, by_personal) = (ranks(&top, &dense, |_| true), ranks(&top, personal, |_| true));
                let rrf = |rank: Option<usize>, weight: f32| rank.map_or(0.0, |r| weight / (RRF_K + r as f32 + 1.0));
                (0..top.len()).map(|c| rrf(by_learned[c], 1.0) + rrf(by_personal[c], PERSONAL_WEIGHT)).collect()
            }
        };
        scores = vec![None; index.len()];
        top.iter().zip(reordered).for_each(|(&i, s)| scores[i] = Some(s));
    }
    top_k(&scores, query.k)
        .into_iter()
        .map(|(i, score)| ScoredItem {
            item_id: index.id(i).to_string(),
            title: index.title(i).to_string(),
            score,
            reason: None,
        })
        .collect()
}

/// Normalized discounted cumulative gain at `k` of a ranking, with graded
/// gains `2^g − 1` (gains are `relevance − 1` on Home Depot's 1..3 scale).
/// `ranked` holds the gains in ranked order; the ideal order is computed.
pub fn ndcg_at(ranked: &[f32], k: usize) -> Option<f32> {
    let dcg = |gains: &[f32]| -> f32 {
        gains.iter().take(k).enumerate().map(|(r, &g)| (2f32.powf(g) - 1.0) / (r as f32 + 2.0).log2()).sum()
    };
    let mut ideal = ranked.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&ideal);
    (best > 0.0).then(|| dcg(ranked) / best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexItem;

    #[test]
    fn terms_are_lowercase_words_without_plural_s() {
        assert_eq!(terms("Mugs, 6-Pack (Glass)!"), ["mug", "6", "pack", "glass"]);
        assert_eq!(terms("gas GLASSES 100s"), ["gas", "glasse", "100s"]);
        assert!(terms("  -- ").is_empty());
    }

    #[test]
    fn bm25_matches_a_hand_computed_score() {
        let bm = Bm25::build(&["red mug", "blue mug mug", "red lamp shade"]);
        // "lamp": df 1 of 3, tf 1 in doc 2 (len 3, avg len 8/3).
        let s = bm.scores(&terms("lamp"));
        let idf = (1.0f32 + (3.0 - 1.0 + 0.5) / 1.5).ln();
        let norm = 1.0 - B + B * 3.0 / (8.0 / 3.0);
        let expected = idf * (K1 + 1.0) / (1.0 + K1 * norm);
        assert!((s[2] - expected).abs() < 1e-6, "{s:?} vs {expected}");
        assert_eq!((s[0], s[1]), (0.0, 0.0));
        // Higher tf wins among equal idf; a repeated query term counts once.
        let s = bm.scores(&terms("mug mugs"));
        assert!(s[1] > s[0] && s[2] == 0.0, "{s:?}");
        assert_eq!(s, bm.scores(&terms("mug")));
        assert!(bm.scores(&terms("unknown")).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn bm25_round_trips_and_refuses_damage() {
        let bm = Bm25::build(&["red mug", "blue mug mug", "", "ünïcode lamp"]);
        let bytes = bm.to_bytes();
        assert_eq!(Bm25::from_bytes(&bytes).unwrap(), bm);
        for cut in [3, 20, bytes.len() - 3] {
            assert!(Bm25::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut evil = bytes.clone();
        let doc_at = 24 + 4 * (4 + 6); // first post_doc word: 4 doc lengths, 5 terms + 1 starts
        evil[doc_at..doc_at + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(Bm25::from_bytes(&evil).unwrap_err().to_string().contains(BM25_FILE));
    }

    #[test]
    fn rrf_rewards_agreement_and_counts_lexical_matches_only() {
        let candidates = [0, 1, 2];
        let lexical = [0.0, 2.0, 1.0];
        let semantic = [0.9, 0.1, 0.8];
        let f = fuse(&candidates, &lexical, &semantic, None, Fusion::Rrf { k: 60.0 });
        // item 2: lexical rank 2, semantic rank 2 → both; item 0: semantic only.
        let expect = [1.0 / 61.0, 1.0 / 61.0 + 1.0 / 63.0, 1.0 / 62.0 + 1.0 / 62.0];
        for (a, b) in f.iter().zip(expect) {
            assert!((a - b).abs() < 1e-7, "{f:?}");
        }
        // Found by both retrievers beats found by one.
        assert!(f[1].min(f[2]) > f[0]);
        let personal = [1.0, 0.0, 0.5];
        let p = fuse(&candidates, &lexical, &semantic, Some(&personal), Fusion::Rrf { k: 60.0 });
        assert!((p[0] - f[0] - PERSONAL_WEIGHT / 61.0).abs() < 1e-7);
    }

    #[test]
    fn linear_fusion_scales_bm25_by_its_maximum() {
        let f = fuse(&[0, 1], &[4.0, 2.0], &[0.0, 0.8], None, Fusion::Linear { semantic_weight: 0.25 });
        assert!((f[0] - 0.75).abs() < 1e-6 && (f[1] - (0.375 + 0.2)).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn queries_are_trimmed_cut_and_must_not_be_blank() {
        assert_eq!(clean_query("  mug ", "query").unwrap(), ("mug".to_string(), false));
        for blank in ["", "   ", "\n\t"] {
            let err = clean_query(blank, "query").unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains("`query`"), "{}", err.message);
        }
        let long = "é".repeat(MAX_QUERY_BYTES);
        let (cut, truncated) = clean_query(&long, "query").unwrap();
        assert!(truncated && cut.len() <= MAX_QUERY_BYTES && cut.len() >= MAX_QUERY_BYTES - 1);
    }

    #[test]
    fn search_finds_the_exact_title_and_history_tilts_the_rest() {
        let item = |id: &str, title: &str, e: [f32; 2]| IndexItem {
            id: id.into(),
            title: title.into(),
            popularity: 1.0,
            embedding: e.to_vec(),
        };
        let items =
            [item("a", "red mug", [1.0, 0.0]), item("b", "blue mug", [0.0, 1.0]), item("c", "teapot", [0.7, 0.7])];
        let index = ItemIndex::from_bytes(&ItemIndex::encode(&items).unwrap()).unwrap();
        let bm = Bm25::build(&(0..index.len()).map(|i| index.title(i).to_string()).collect::<Vec<_>>());
        let q = SearchQuery { text: "blue mug".into(), truncated: false, history: vec![], k: 3 };
        let ids = |r: Vec<ScoredItem>| r.into_iter().map(|i| i.item_id).collect::<Vec<_>>();
        // "blue" only matches b; "mug" also matches a, whose vector is far off.
        assert_eq!(ids(search(&index, &bm, &q, &[0.0, 1.0], None, Ranking::default())), ["b", "a", "c"]);
        let q = SearchQuery { text: "mug".into(), ..q };
        // Both mugs match lexically and the query vector sits nearly between
        // them: the shopper's history decides which mug comes first.
        let r = search(&index, &bm, &q, &[0.55, 0.65], Some(&[1.0, 0.0]), Ranking::default());
        assert_eq!(ids(r)[0], "a");
        let r = search(&index, &bm, &q, &[0.55, 0.65], Some(&[0.0, 1.0]), Ranking::default());
        assert_eq!(ids(r)[0], "b");
    }

    #[test]
    fn a_learned_ranking_reorders_the_top_by_what_the_judgments_taught() {
        let item = |id: &str, title: &str, e: [f32; 2]| IndexItem {
            id: id.into(),
            title: title.into(),
            popularity: 1.0,
            embedding: e.to_vec(),
        };
        // The fusion trusts the vectors, which favour the short title; the
        // judgments taught that covering the whole query is what matters.
        let items = [
            item("short", "mug", [1.0, 0.0]),
            item("other", "lamp", [0.9, 0.44]),
            item("full", "large white mug with lid", [0.0, 1.0]),
        ];
        let index = ItemIndex::from_bytes(&ItemIndex::encode(&items).unwrap()).unwrap();
        let titles: Vec<String> = (0..index.len()).map(|i| index.title(i).to_string()).collect();
        let bm = Bm25::build(&titles);
        let list = |query: &str| {
            let lexical = bm.scores(&terms(query));
            let listed: Vec<Candidate> =
                (0..3).map(|i| Candidate { title: &titles[i], lexical: lexical[i], semantic: 1.0 }).collect();
            let rows = rerank::features(&bm, query, &listed);
            let grades = rows.iter().map(|r| 3.0 * r[2]).collect(); // grade = coverage
            (rows, grades)
        };
        let lists: Vec<_> = ["white mug", "mug lid", "large lamp", "mug", "white lamp"]
            .iter()
            .cycle()
            .take(40)
            .map(|q| list(q))
            .collect();
        let ranker = Ranker::fit(&lists).unwrap();
        let q = SearchQuery { text: "white mug".into(), truncated: false, history: vec![], k: 2 };
        let ids = |r: Vec<ScoredItem>| r.into_iter().map(|i| i.item_id).collect::<Vec<_>>();
        assert_eq!(ids(search(&index, &bm, &q, &[1.0, 0.0], None, Ranking::default())), ["short", "full"]);
        assert_eq!(ids(search(&index, &bm, &q, &[1.0, 0.0], None, Ranking::Learned(&ranker))), ["full", "short"]);
        // k beyond the depth still answers k items, each once.
        let q = SearchQuery { k: 3, ..q };
        let got = ids(search(&index, &bm, &q, &[1.0, 0.0], Some(&[1.0, 0.0]), Ranking::Learned(&ranker)));
        assert_eq!((got.len(), got[0].as_str()), (3, "full"));
    }

    #[test]
    fn ndcg_by_hand() {
        assert_eq!(ndcg_at(&[2.0, 1.0, 0.0], 10), Some(1.0));
        let worst = ndcg_at(&[0.0, 1.0, 2.0], 10).unwrap();
        let expected = (1.0 / 3f32.log2() + 3.0 / 4f32.log2()) / (3.0 + 1.0 / 3f32.log2());
        assert!((worst - expected).abs() < 1e-6);
        assert_eq!(ndcg_at(&[0.0, 0.0], 10), None);
    }
}
