//! `POST /api/recommend`: rank the catalog for a shopper.
//!
//! The user tower ([`UserTower`]) pools the history's item vectors with
//! recency weights (learned by `edgerec train`; for an untrained bundle the
//! weight halves every [`crate::tower::HISTORY_HALF_LIFE`] items) into a
//! user vector, and items are ranked by cosine similarity to it. A history
//! with no known item falls back to the most popular items. A bundle whose
//! training found that the crowd helps adds its popularity and item-kNN
//! prior ([`crate::crowd`]) to the towers' scores.

use crate::api::{ApiError, RecommendRequest, ScoredItem, validate_k};
use crate::coldstart::NewItems;
use crate::crowd::Crowd;
use crate::index::ItemIndex;
use crate::score::{QueryVector, TopK, top_k};
use crate::tower::UserTower;

/// How many of the newest distinct history items are considered when
/// explaining a recommendation.
const REASON_CANDIDATES: usize = 20;

/// A validated recommendation query.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendQuery {
    /// Item ids, oldest first.
    pub history: Vec<String>,
    /// Number of items wanted.
    pub k: usize,
    /// Ids never to return.
    pub exclude: Vec<String>,
    /// Whether history items are left out.
    pub exclude_history: bool,
}

impl TryFrom<RecommendRequest> for RecommendQuery {
    type Error = ApiError;

    fn try_from(req: RecommendRequest) -> Result<Self, ApiError> {
        Ok(Self {
            k: validate_k(req.k)?,
            history: req.history.unwrap_or_default(),
            exclude: req.exclude.unwrap_or_default(),
            exclude_history: req.exclude_history.unwrap_or(true),
        })
    }
}

/// Ranked items and the ids the catalog did not know.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    /// Best first.
    pub items: Vec<ScoredItem>,
    /// Unknown ids from `history` and `exclude`, in order of first appearance.
    pub unknown: Vec<String>,
}

/// The catalog positions of `history` and the ids the catalog does not know
/// (each once, in order of first appearance).
pub fn resolve(index: &ItemIndex, ids: &[String]) -> (Vec<usize>, Vec<String>) {
    let mut unknown: Vec<String> = Vec::new();
    let mut known = Vec::new();
    for id in ids {
        match index.find(id) {
            Some(i) => known.push(i),
            None if !unknown.contains(id) => unknown.push(id.clone()),
            None => {}
        }
    }
    (known, unknown)
}

/// The user vector of a resolved history (`None` when it is empty).
pub fn user_vector(index: &ItemIndex, tower: &UserTower, history: &[usize]) -> Option<Vec<f32>> {
    tower.user_vector(history, |i, row| row.copy_from_slice(&index.embedding(i)))
}

/// What a bundle ranks with: its item index, its user tower and, when its
/// training chose one, the crowd prior added to the towers' scores.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    /// Item vectors, ids, titles and popularity.
    pub index: &'a ItemIndex,
    /// The user tower.
    pub tower: &'a UserTower,
    /// Popularity and item-kNN added to the scores (`crowd.bin`).
    pub crowd: Option<&'a Crowd>,
}

/// Ranks the catalog for `query` with the bundle's user tower.
pub fn recommend(index: &ItemIndex, tower: &UserTower, query: &RecommendQuery) -> Recommendations {
    recommend_with_new(&Model { index, tower, crowd: None }, query, &NewItems::default(), 0.0)
}

/// Like [`recommend`], with new items (from `/api/items/cold-start`) ranked
/// next to the catalog: by the same similarity to the user vector, plus
/// `boost` so that items without any history get shown. New items need a
/// user vector; the popularity fallback has no signal about them.
pub fn recommend_with_new(
    model: &Model<'_>,
    query: &RecommendQuery,
    new_items: &NewItems,
    boost: f32,
) -> Recommendations {
    let Model { index, tower, crowd } = *model;
    let mut unknown: Vec<String> = Vec::new();
    let mut resolve = |id: &String| {
        let found = index.find(id);
        if found.is_none() && !unknown.contains(id) {
            unknown.push(id.clone());
        }
        found
    };
    let history: Vec<usize> = query.history.iter().filter_map(&mut resolve).collect();
    let excluded: Vec<usize> = query.exclude.iter().filter_map(&mut resolve).collect();

    let mut allowed = vec![true; index.len()];
    for &i in &excluded {
        allowed[i] = false;
    }
    if query.exclude_history {
        for &i in &history {
            allowed[i] = false;
        }
    }

    let user = tower.user_vector(&history, |i, row| row.copy_from_slice(&index.embedding(i)));
    let items = match user {
        Some(user) => {
            let user = QueryVector::new(&user);
            let mut items = by_similarity(index, crowd, &user, &history, &allowed, query.k);
            let blocked = |id: &str| {
                query.exclude.iter().any(|e| e == id)
                    || (query.exclude_history && query.history.iter().any(|h| h == id))
                    || index.find(id).is_some()
            };
            // New items get the boost, and what the crowd prior gives an item it does not know.
            let lift = boost + crowd.map_or(0.0, Crowd::new_item_prior);
            for page in new_items.pages().iter().filter(|p| p.dims() == user.len()) {
                let mut top = TopK::new(query.k);
                for (i, score) in page.scores(&user).into_iter().enumerate() {
                    let score = score + lift;
                    if top.accepts(i, score) && !blocked(page.id(i)) {
                        top.push(i, score);
                    }
                }
                items.extend(top.into_sorted().into_iter().map(|(i, score)| ScoredItem {
                    item_id: page.id(i).to_string(),
                    title: page.title(i).to_string(),
                    score,
                    reason: Some("new item".into()),
                }));
            }
            // Stable: among equal scores catalog items (ranked first) stay first.
            items.sort_by(|a, b| b.score.total_cmp(&a.score));
            items.truncate(query.k);
            items
        }
        None => by_popularity(index, &allowed, query.k),
    };
    // History ids that name a new item are not unknown.
    unknown.retain(|id| !new_items.contains(id));
    Recommendations { items, unknown }
}

fn by_similarity(
    index: &ItemIndex,
    crowd: Option<&Crowd>,
    user: &QueryVector,
    history: &[usize],
    allowed: &[bool],
    k: usize,
) -> Vec<ScoredItem> {
    let mut top = TopK::new(k);
    let mut scores = index.scores(user);
    if let Some(crowd) = crowd {
        crowd.add(history, &mut scores);
    }
    for (i, score) in scores.into_iter().enumerate() {
        if allowed[i] {
            top.push(i, score);
        }
    }
    // The newest distinct history items explain each pick.
    let mut recent: Vec<(usize, QueryVector)> = Vec::new();
    for &h in history.iter().rev() {
        if !recent.iter().any(|(r, _)| *r == h) {
            recent.push((h, QueryVector::new(&index.embedding(h))));
        }
        if recent.len() == REASON_CANDIDATES {
            break;
        }
    }
    top.into_sorted()
        .into_iter()
        .map(|(i, score)| {
            let closest = recent
                .iter()
                .map(|(h, e)| (*h, index.dot(e, i)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(h, _)| h);
            // Where the crowd prior's neighbours voted for the item, that is
            // the better reason: shoppers took the two together.
            let together = crowd.and_then(|c| c.strongest_neighbor(history, i));
            let reason = match (together, closest) {
                (Some(h), _) => Some(format!("often bought with \"{}\"", index.title(h))),
                (None, Some(h)) => Some(format!("similar to \"{}\"", index.title(h))),
                (None, None) => None,
            };
            ScoredItem { item_id: index.id(i).to_string(), title: index.title(i).to_string(), score, reason }
        })
        .collect()
}

fn by_popularity(index: &ItemIndex, allowed: &[bool], k: usize) -> Vec<ScoredItem> {
    let popularity = index.popularity();
    let max = popularity.iter().copied().fold(0f32, f32::max).max(f32::MIN_POSITIVE);
    let scores: Vec<Option<f32>> = popularity.iter().zip(allowed).map(|(&p, &ok)| ok.then_some(p / max)).collect();
    top_k(&scores, k)
        .into_iter()
        .map(|(i, score)| ScoredItem {
            item_id: index.id(i).to_string(),
            title: index.title(i).to_string(),
            score,
            reason: Some("popular".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexItem;

    /// Four items on a circle: a and b close, c and d close, the groups apart.
    fn index() -> ItemIndex {
        let item = |id: &str, pop: f32, angle: f32| IndexItem {
            id: id.into(),
            title: format!("title {id}"),
            popularity: pop,
            embedding: vec![angle.cos(), angle.sin()],
        };
        let items = [item("a", 10.0, 0.0), item("b", 1.0, 0.2), item("c", 30.0, 1.5), item("d", 20.0, 1.6)];
        ItemIndex::from_bytes(&ItemIndex::encode(&items).unwrap()).unwrap()
    }

    fn query(history: &[&str], k: usize) -> RecommendQuery {
        RecommendQuery {
            history: history.iter().map(|s| s.to_string()).collect(),
            k,
            exclude: vec![],
            exclude_history: true,
        }
    }

    fn ids(r: &Recommendations) -> Vec<&str> {
        r.items.iter().map(|i| i.item_id.as_str()).collect()
    }

    #[test]
    fn history_ranks_nearest_items_first_and_excludes_itself() {
        let r = recommend(&index(), &UserTower::recency(2, 50), &query(&["a"], 3));
        assert_eq!(ids(&r), ["b", "c", "d"]);
        assert_eq!(r.items[0].reason.as_deref(), Some("similar to \"title a\""));
        assert!(r.items[0].score > r.items[1].score);
    }

    #[test]
    fn newest_history_item_weighs_most() {
        let r = recommend(&index(), &UserTower::recency(2, 50), &query(&["a", "d"], 1));
        assert_eq!(ids(&r), ["c"]);
        let r = recommend(&index(), &UserTower::recency(2, 50), &query(&["d", "a"], 1));
        assert_eq!(ids(&r), ["b"]);
    }

    #[test]
    fn empty_or_unknown_history_falls_back_to_popularity() {
        let r = recommend(&index(), &UserTower::recency(2, 50), &query(&[], 2));
        assert_eq!(ids(&r), ["c", "d"]);
        assert_eq!(r.items[0].score, 1.0);
        assert_eq!(r.items[0].reason.as_deref(), Some("popular"));
        let r = recommend(&index(), &UserTower::recency(2, 50), &query(&["nope", "nope", "zz"], 2));
        assert_eq!(ids(&r), ["c", "d"]);
        assert_eq!(r.unknown, ["nope", "zz"]);
    }

    #[test]
    fn exclusions_apply_and_history_can_be_kept() {
        let mut q = query(&["a"], 4);
        q.exclude = vec!["b".into(), "x".into()];
        let r = recommend(&index(), &UserTower::recency(2, 50), &q);
        assert_eq!(ids(&r), ["c", "d"]);
        assert_eq!(r.unknown, ["x"]);
        q.exclude_history = false;
        assert_eq!(ids(&recommend(&index(), &UserTower::recency(2, 50), &q)), ["a", "c", "d"]);
    }

    #[test]
    fn new_items_rank_by_similarity_plus_boost() {
        use crate::coldstart::{KeyValue, StoredItem, store_new_items};
        struct Memory(std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>);
        impl KeyValue for Memory {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
                Ok(self.0.lock().unwrap().get(key).cloned())
            }
            fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
                self.0.lock().unwrap().insert(key.into(), value.into());
                Ok(())
            }
            fn keys(&self) -> Result<Vec<String>, String> {
                Ok(self.0.lock().unwrap().keys().cloned().collect())
            }
        }
        let model = crate::api::ModelRef { name: "t".into(), version: "1".into() };
        let new = |id: &str, angle: f32| StoredItem {
            item_id: id.into(),
            title: format!("new {id}"),
            vector: vec![angle.cos(), angle.sin()],
            model: model.clone(),
        };
        let kv = Memory(Default::default());
        store_new_items(&kv, &model, &[new("n-near-a", 0.05), new("n-near-c", 1.55)]).unwrap();
        let fresh = NewItems::load(&kv, &model).unwrap();
        let tower = UserTower::recency(2, 50);
        let index = index();
        let m = Model { index: &index, tower: &tower, crowd: None };
        // History "a": n-near-a is closer than b (angle 0.2) even without a boost.
        let r = recommend_with_new(&m, &query(&["a"], 3), &fresh, 0.0);
        assert_eq!(ids(&r), ["n-near-a", "b", "c"]);
        assert_eq!(r.items[0].reason.as_deref(), Some("new item"));
        // A boost lifts the far new item above warm ones.
        let r = recommend_with_new(&m, &query(&["a"], 3), &fresh, 1.0);
        assert_eq!(ids(&r), ["n-near-a", "n-near-c", "b"]);
        // Excluded new items stay out; no history, no new items.
        let mut q = query(&["a"], 3);
        q.exclude = vec!["n-near-a".into()];
        assert!(!ids(&recommend_with_new(&m, &q, &fresh, 0.0)).contains(&"n-near-a"));
        assert_eq!(ids(&recommend_with_new(&m, &query(&[], 2), &fresh, 1.0)), ["c", "d"]);
        // A new item in the history is known, not reported as unknown.
        let r = recommend_with_new(&m, &query(&["a", "n-near-c"], 3), &fresh, 0.0);
        assert!(r.unknown.is_empty(), "{:?}", r.unknown);
    }

    #[test]
    fn a_crowd_prior_reorders_what_the_towers_ranked() {
        use crate::crowd::{Blend, Crowd};
        let (index, tower) = (index(), UserTower::recency(2, 50));
        let towers_only = recommend(&index, &tower, &query(&["a"], 3));
        // Shoppers of `a` took `d` (index order: a, b, c, d), and `d` sells best.
        let crowd = Crowd::new(
            Blend { popularity: 0.5, recent: false, neighbors: 1.0 },
            &[1.0, 1.0, 1.0, 9.0],
            &[vec![(3, 0.9)], vec![], vec![], vec![(0, 0.9)]],
        );
        let with_crowd = recommend_with_new(
            &Model { index: &index, tower: &tower, crowd: Some(&crowd) },
            &query(&["a"], 3),
            &NewItems::default(),
            0.0,
        );
        assert_ne!(ids(&towers_only)[0], "d");
        assert_eq!(ids(&with_crowd)[0], "d", "{:?}", ids(&with_crowd));
        assert_eq!(with_crowd.items[0].reason.as_deref(), Some("often bought with \"title a\""));
        assert_eq!(with_crowd.items[1].reason.as_deref(), Some("similar to \"title a\""), "no vote, no such reason");
    }

    #[test]
    fn k_larger_than_catalog_returns_what_is_left() {
        assert_eq!(recommend(&index(), &UserTower::recency(2, 50), &query(&["a"], 200)).items.len(), 3);
    }
}
