//! `POST /api/items/cold-start`: products nobody has clicked yet.
//!
//! A new item's text (title, category, description) goes through the same
//! encoder and item tower as the catalog, so its vector lives in the same
//! space as every warm item and every user vector. The function returns its
//! nearest warm neighbours and stores it in the key-value store (`spin.toml`
//! `key_value_stores`); the recommend function ranks new items next to the
//! catalog, with an exploration boost so they get seen: the one `edgerec
//! train` chose for the bundle on its validation window
//! ([`choose_new_item_boost`], [`bundle_new_item_boost`]), else
//! [`DEFAULT_NEW_ITEM_BOOST`].
//!
//! # How new items are stored
//!
//! Two kinds of entries per model version (`<model>` is `<name>/<version>`
//! of the bundle whose towers made the vectors; other versions' vectors live
//! in another space and are never mixed in):
//!
//! - `new-item:<model>:<item id>`: one record per item ([`StoredItem`],
//!   JSON), written first. The record is the durable truth.
//! - `new-items:<model>:<n>`, n = 0, 1, ...: the pages recommend reads, in
//!   the `items.bin` layout ([`ItemIndex`]), each at most
//!   [`PAGE_LIMIT_BYTES`]. Recommend reads the pages until one is missing:
//!   one `get` per page, however many other keys the store holds, and
//!   nothing to parse but a binary header.
//!
//! Spin's key-value interface has no compare-and-swap, so two cold-start
//! requests at once may each read a page, add their items and write it back,
//! the later write dropping the earlier one's items. [`store_new_items`]
//! repairs that: after writing, it compares the pages with the records' keys
//! and writes again until every record is in a page. The last writer's check
//! runs after every record it could have missed was written, so no item is
//! lost (`concurrent_writers_lose_no_item` below).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::api::{ApiError, MAX_NEW_ITEMS, ModelRef, Neighbor, NewItem};
use crate::index::{IndexItem, ItemIndex};
use crate::score::{QueryVector, TopK};

/// Key prefix of new-item records; catalog ids may not start with it.
pub const NEW_ITEM_PREFIX: &str = "new-item:";

/// Key prefix of the new-item pages.
pub const NEW_ITEM_PAGE_PREFIX: &str = "new-items:";

/// A page holds items up to this many bytes (Spin allows 1 MiB per value).
pub const PAGE_LIMIT_BYTES: usize = 512 << 10;

/// Spin's limit on key length.
pub const MAX_KEY_BYTES: usize = 255;

/// Longest title a new item may have (bytes).
pub const MAX_TITLE_BYTES: usize = 1024;

/// Rounds of "write, then check against the records" before a writer gives
/// up; each round needs another writer to interfere to fail.
const MAX_ROUNDS: usize = 16;

/// Neighbours returned per new item.
pub const NEIGHBORS: usize = 5;

/// Added to a new item's similarity when recommending, for a bundle that
/// names no boost of its own (an indexed, untrained bundle). Chosen on
/// Online Retail's validation window (`edgerec eval --validation
/// --new-item-boost 0.02,0.05,0.1,0.2`, BENCHMARKS.md) by the rule of
/// [`choose_new_item_boost`] (new items' Recall@20 0.44 → 0.51); on the
/// test window it raised both (overall 0.0737 → 0.0776, new 0.083 → 0.151).
pub const DEFAULT_NEW_ITEM_BOOST: f32 = 0.02;

/// Manifest metric: the boost `edgerec train` chose on the validation window.
pub const NEW_ITEM_BOOST_METRIC: &str = "new_item_boost";

/// Step of the boosts [`choose_new_item_boost`] tries.
pub const BOOST_STEP: f32 = 0.01;

/// The largest boost tried for towers alone; a crowd prior
/// ([`crate::crowd`]) lifts warm items by up to its two weights more,
/// and the boosts tried reach that much further.
pub const MAX_BOOST: f32 = 0.1;

/// The share of overall Recall@20 a boost may cost, relative to none.
pub const MAX_BOOST_COST: f64 = 0.03;

/// The largest boost of `0, 0.01, ... max` up to which every boost keeps
/// overall Recall@20 (`recall` of the boost, on validation) at least
/// `1 − MAX_BOOST_COST` of the unboosted one: new items get all the
/// exposure that the shop's own behaviour says costs the warm items little.
/// Shops whose new products sell at once get a larger boost than shops
/// where they wait.
pub fn choose_new_item_boost(max: f32, mut recall: impl FnMut(f32) -> f64) -> f32 {
    let floor = recall(0.0) * (1.0 - MAX_BOOST_COST);
    let steps = (max.max(0.0) / BOOST_STEP).round() as usize;
    // Grid points as decimals (0.03, not 3 × 0.01 = 0.030000001).
    let grid = (1..=steps).map(|k| (k as f32 * BOOST_STEP * 100.0).round() / 100.0);
    grid.take_while(|&b| recall(b) >= floor).last().unwrap_or(0.0)
}

/// The boost a bundle serves: the one its training chose, else
/// [`DEFAULT_NEW_ITEM_BOOST`].
pub fn bundle_new_item_boost(manifest: &crate::bundle::Manifest) -> f32 {
    manifest
        .metrics
        .get(NEW_ITEM_BOOST_METRIC)
        .and_then(serde_json::Value::as_f64)
        .map(|b| b as f32)
        .filter(|b| b.is_finite() && *b >= 0.0)
        .unwrap_or(DEFAULT_NEW_ITEM_BOOST)
}

/// A new item as recorded for `/api/recommend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    /// Catalog id.
    pub item_id: String,
    /// Display title.
    pub title: String,
    /// Its vector in the towers' space (L2-normalized).
    pub vector: Vec<f32>,
    /// The bundle whose towers made the vector.
    pub model: ModelRef,
}

/// The key of the record of item `id` under `model`.
pub fn record_key(model: &ModelRef, id: &str) -> String {
    format!("{}{id}", record_prefix(model))
}

fn record_prefix(model: &ModelRef) -> String {
    format!("{NEW_ITEM_PREFIX}{}/{}:", model.name, model.version)
}

/// The key of page `n` of `model`'s new items.
pub fn page_key(model: &ModelRef, n: usize) -> String {
    format!("{NEW_ITEM_PAGE_PREFIX}{}/{}:{n}", model.name, model.version)
}

/// The key-value operations new items need: what Spin's
/// `key_value::Store` offers, so the functions pass theirs and tests an
/// in-memory map.
pub trait KeyValue {
    /// The value of `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Stores `value` under `key`, durably.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Every key of the store.
    fn keys(&self) -> Result<Vec<String>, String>;
}

/// The new items of one model version, as recommend reads them.
#[derive(Debug, Clone, Default)]
pub struct NewItems {
    pages: Vec<ItemIndex>,
}

impl NewItems {
    /// Reads `model`'s pages: one `get` per page, until one is missing.
    pub fn load(kv: &impl KeyValue, model: &ModelRef) -> Result<Self, String> {
        let mut pages = Vec::new();
        loop {
            let key = page_key(model, pages.len());
            match kv.get(&key)? {
                Some(bytes) => pages.push(ItemIndex::from_page(bytes, &key).map_err(|e| e.to_string())?),
                None => return Ok(Self { pages }),
            }
        }
    }

    /// Number of new items.
    pub fn len(&self) -> usize {
        self.pages.iter().map(ItemIndex::len).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is a new item.
    pub fn contains(&self, id: &str) -> bool {
        self.pages.iter().any(|p| p.find(id).is_some())
    }

    /// The pages, each sorted by id.
    pub fn pages(&self) -> &[ItemIndex] {
        &self.pages
    }

    /// Up to `limit` items as (id, title): the latest page first (items
    /// fill pages in the order they arrive), each page by id.
    pub fn listing(&self, limit: usize) -> Vec<(&str, &str)> {
        self.pages.iter().rev().flat_map(|p| (0..p.len()).map(move |i| (p.id(i), p.title(i)))).take(limit).collect()
    }

    fn ids(&self) -> BTreeSet<String> {
        self.pages.iter().flat_map(|p| (0..p.len()).map(|i| p.id(i).to_string())).collect()
    }
}

/// Records `items` (all made by `model`'s towers) and brings the pages up to
/// date, so the next recommend request sees them. See the module docs for
/// why this is safe without compare-and-swap.
pub fn store_new_items(kv: &impl KeyValue, model: &ModelRef, items: &[StoredItem]) -> Result<(), String> {
    let mut fresh: BTreeMap<&str, &StoredItem> = BTreeMap::new();
    for item in items {
        let value = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        kv.set(&record_key(model, &item.item_id), &value)?;
        fresh.insert(&item.item_id, item);
    }
    let prefix = record_prefix(model);
    for round in 0..MAX_ROUNDS {
        let pages = NewItems::load(kv, model)?;
        let present = pages.ids();
        let recorded: Vec<String> =
            kv.keys()?.into_iter().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect();
        // The first round also rewrites this request's items that a page
        // already holds (a changed title); later rounds only add.
        let mut upserts: Vec<StoredItem> = if round == 0 { items.to_vec() } else { Vec::new() };
        for id in recorded.iter().filter(|id| !present.contains(*id) && (round > 0 || !fresh.contains_key(id.as_str())))
        {
            match fresh.get(id.as_str()) {
                Some(item) => upserts.push((*item).clone()),
                None => {
                    let Some(bytes) = kv.get(&record_key(model, id))? else { continue };
                    match serde_json::from_slice::<StoredItem>(&bytes) {
                        Ok(item) if item.model == *model => upserts.push(item),
                        // A record this build cannot read stays out of the pages.
                        _ => eprintln!("new items: skipping the unreadable record `{}`", record_key(model, id)),
                    }
                }
            }
        }
        if upserts.is_empty() {
            return Ok(());
        }
        for (n, bytes) in merge_pages(&pages, &upserts)? {
            kv.set(&page_key(model, n), &bytes)?;
        }
    }
    Err(format!("the new-item pages of {}/{} kept changing under concurrent writers; retry", model.name, model.version))
}

/// The pages to write so that `pages` also hold `upserts` (replacing items
/// with the same id): `(page number, bytes)` for every changed page.
pub fn merge_pages(pages: &NewItems, upserts: &[StoredItem]) -> Result<Vec<(usize, Vec<u8>)>, String> {
    let mut contents: Vec<Vec<IndexItem>> = pages
        .pages
        .iter()
        .map(|p| {
            (0..p.len())
                .map(|i| IndexItem {
                    id: p.id(i).to_string(),
                    title: p.title(i).to_string(),
                    popularity: 0.0,
                    embedding: p.embedding(i),
                })
                .collect()
        })
        .collect();
    let mut changed = BTreeSet::new();
    let mut sizes: Vec<usize> = contents.iter().map(|c| c.iter().map(entry_bytes).sum()).collect();
    for item in upserts {
        let entry = IndexItem {
            id: item.item_id.clone(),
            title: item.title.clone(),
            popularity: 0.0,
            embedding: item.vector.clone(),
        };
        let size = entry_bytes(&entry);
        if let Some(n) = contents.iter().position(|c| c.iter().any(|e| e.id == entry.id)) {
            let at = contents[n].iter().position(|e| e.id == entry.id).expect("found above");
            sizes[n] = sizes[n] - entry_bytes(&contents[n][at]) + size;
            contents[n][at] = entry;
            changed.insert(n);
            continue;
        }
        let last_fits = contents.last().is_some() && sizes.last().is_some_and(|&s| s + size <= PAGE_LIMIT_BYTES);
        if !last_fits {
            contents.push(Vec::new());
            sizes.push(0);
        }
        let n = contents.len() - 1;
        contents[n].push(entry);
        sizes[n] += size;
        changed.insert(n);
    }
    changed
        .into_iter()
        .map(|n| ItemIndex::encode(&contents[n]).map(|bytes| (n, bytes)).map_err(|e| e.to_string()))
        .collect()
}

/// Roughly what one item adds to a page.
fn entry_bytes(item: &IndexItem) -> usize {
    16 + item.id.len() + item.title.len() + item.embedding.len()
}

/// The text the encoder sees: title, category and description, the way
/// catalog texts are built at ingest.
pub fn item_text(item: &NewItem) -> String {
    let mut parts = vec![item.title.trim()];
    for extra in [&item.category, &item.description].into_iter().flatten() {
        if !extra.trim().is_empty() {
            parts.push(extra.trim());
        }
    }
    parts.join(". ")
}

/// Validates a cold-start request for `model`: 1..=[`MAX_NEW_ITEMS`]
/// items with non-empty, distinct ids whose record keys fit the store's key
/// limit, non-blank titles of at most [`MAX_TITLE_BYTES`] and non-negative
/// prices.
pub fn validate(items: &[NewItem], model: &ModelRef) -> Result<(), ApiError> {
    if items.is_empty() || items.len() > MAX_NEW_ITEMS {
        return Err(ApiError::bad_request(format!(
            "field `items` must hold 1 to {MAX_NEW_ITEMS} items, got {}",
            items.len()
        )));
    }
    let max_id = MAX_KEY_BYTES - record_prefix(model).len();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if item.item_id.trim().is_empty() {
            return Err(ApiError::bad_request(format!("field `items[{i}].item_id` is empty")));
        }
        if item.item_id.starts_with(NEW_ITEM_PREFIX) || item.item_id.len() > max_id {
            return Err(ApiError::bad_request(format!(
                "field `items[{i}].item_id` must be at most {max_id} bytes and not start with `{NEW_ITEM_PREFIX}`"
            )));
        }
        if !seen.insert(item.item_id.as_str()) {
            return Err(ApiError::bad_request(format!("field `items[{i}].item_id`: `{}` appears twice", item.item_id)));
        }
        if item.title.trim().is_empty() {
            return Err(ApiError::bad_request(format!("field `items[{i}].title` is empty")));
        }
        if item.title.trim().len() > MAX_TITLE_BYTES {
            return Err(ApiError::bad_request(format!(
                "field `items[{i}].title` is {} bytes; at most {MAX_TITLE_BYTES}",
                item.title.trim().len()
            )));
        }
        if let Some(price) = item.price
            && !(price.is_finite() && price >= 0.0)
        {
            return Err(ApiError::bad_request(format!("field `items[{i}].price` must be a non-negative number")));
        }
    }
    Ok(())
}

/// The `k` warm items closest to `vector`.
pub fn neighbors(index: &ItemIndex, vector: &[f32], k: usize) -> Vec<Neighbor> {
    let mut top = TopK::new(k);
    for (i, score) in index.scores(&QueryVector::new(vector)).into_iter().enumerate() {
        top.push(i, score);
    }
    top.into_sorted().into_iter().map(|(i, score)| Neighbor { item_id: index.id(i).to_string(), score }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boost_is_the_largest_that_costs_the_warm_items_little() {
        // Recall rises a little with the first boosts, then falls; 0.09
        // passing again by chance does not count.
        let curve = [0.100, 0.101, 0.102, 0.100, 0.098, 0.0975, 0.0969, 0.09, 0.08, 0.099, 0.06];
        let recall = |b: f32| curve[(b * 100.0).round() as usize];
        assert_eq!(choose_new_item_boost(MAX_BOOST, recall), 0.05, "0.06 costs over 3%");
        assert_eq!(choose_new_item_boost(MAX_BOOST, |b| 0.1 - f64::from(b)), 0.0, "every boost costs too much");
        // With a crowd prior the boosts tried reach further.
        assert_eq!(choose_new_item_boost(MAX_BOOST, |_| 0.1), 0.1);
        assert_eq!(choose_new_item_boost(0.25, |_| 0.1), 0.25);
        let mut manifest = crate::bundle::tests::manifest();
        assert_eq!(bundle_new_item_boost(&manifest), DEFAULT_NEW_ITEM_BOOST, "an indexed bundle chose none");
        manifest.metrics.insert(NEW_ITEM_BOOST_METRIC.into(), 0.05.into());
        assert_eq!(bundle_new_item_boost(&manifest), 0.05);
        manifest.metrics.insert(NEW_ITEM_BOOST_METRIC.into(), (-1.0).into());
        assert_eq!(bundle_new_item_boost(&manifest), DEFAULT_NEW_ITEM_BOOST, "nonsense is not served");
    }

    fn item(id: &str, title: &str) -> NewItem {
        NewItem { item_id: id.into(), title: title.into(), description: None, category: None, price: None }
    }

    #[test]
    fn text_joins_what_is_given() {
        let mut it = item("n1", " Heart mug ");
        assert_eq!(item_text(&it), "Heart mug");
        it.category = Some("Kitchen".into());
        it.description = Some("  ".into());
        assert_eq!(item_text(&it), "Heart mug. Kitchen");
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(Vec<NewItem>, &str)> = vec![
            (vec![], "`items`"),
            (vec![item("", "x")], "`items[0].item_id`"),
            (vec![item("a", "x"), item("a", "y")], "`items[1].item_id`"),
            (vec![item("a", "  ")], "`items[0].title`"),
            (vec![NewItem { price: Some(-1.0), ..item("a", "x") }], "`items[0].price`"),
            (vec![item("new-item:a", "x")], "`items[0].item_id`"),
            (vec![item(&"x".repeat(250), "x")], "`items[0].item_id` must be at most 230 bytes"),
            (vec![item("a", &"t".repeat(MAX_TITLE_BYTES + 1))], "`items[0].title` is 1025 bytes"),
        ];
        for (items, field) in cases {
            let err = validate(&items, &model()).unwrap_err();
            assert!(err.status == 400 && err.message.contains(field), "{field}: {}", err.message);
        }
        let many: Vec<NewItem> = (0..=MAX_NEW_ITEMS).map(|i| item(&i.to_string(), "x")).collect();
        assert!(validate(&many, &model()).unwrap_err().message.contains("1001"));
        assert!(validate(&many[..MAX_NEW_ITEMS], &model()).is_ok());
    }

    fn model() -> ModelRef {
        ModelRef { name: "online-retail".into(), version: "2".into() }
    }

    /// An in-memory store, like Spin's.
    #[derive(Default)]
    struct Memory(std::sync::Mutex<BTreeMap<String, Vec<u8>>>);

    impl KeyValue for Memory {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            assert!(key.len() <= MAX_KEY_BYTES && value.len() <= 1 << 20, "within Spin's limits");
            self.0.lock().unwrap().insert(key.to_string(), value.to_vec());
            Ok(())
        }
        fn keys(&self) -> Result<Vec<String>, String> {
            Ok(self.0.lock().unwrap().keys().cloned().collect())
        }
    }

    fn stored(id: &str, angle: f32) -> StoredItem {
        StoredItem {
            item_id: id.into(),
            title: format!("new {id}"),
            vector: vec![angle.cos(), angle.sin()],
            model: model(),
        }
    }

    fn ids(items: &NewItems) -> Vec<String> {
        let mut ids: Vec<String> = items.ids().into_iter().collect();
        ids.sort();
        ids
    }

    #[test]
    fn stored_items_are_read_back_from_pages_without_listing_keys() {
        let kv = Memory::default();
        assert!(NewItems::load(&kv, &model()).unwrap().is_empty());
        store_new_items(&kv, &model(), &[stored("b", 0.1), stored("a", 0.2)]).unwrap();
        store_new_items(&kv, &model(), &[stored("c", 0.3)]).unwrap();
        let items = NewItems::load(&kv, &model()).unwrap();
        assert_eq!(ids(&items), ["a", "b", "c"]);
        let page = &items.pages()[0];
        let at = page.find("c").unwrap();
        assert_eq!(page.title(at), "new c");
        assert!((page.embedding(at)[0] - 0.3f32.cos()).abs() < 0.01);
        // Another model version's items are its own.
        let other = ModelRef { name: "online-retail".into(), version: "3".into() };
        assert!(NewItems::load(&kv, &other).unwrap().is_empty());
        // Re-sending an item updates it in place.
        let mut renamed = stored("c", 0.3);
        renamed.title = "renamed".into();
        store_new_items(&kv, &model(), &[renamed]).unwrap();
        let items = NewItems::load(&kv, &model()).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items.pages()[0].title(items.pages()[0].find("c").unwrap()), "renamed");
    }

    #[test]
    fn pages_stay_under_the_value_limit() {
        let kv = Memory::default();
        let dims = 384;
        let batch: Vec<StoredItem> = (0..3000)
            .map(|i| StoredItem {
                item_id: format!("NEW-{i:05}"),
                title: format!("a fairly long product title number {i}"),
                vector: (0..dims).map(|d| ((i * 7 + d) as f32).sin()).collect(),
                model: model(),
            })
            .collect();
        for chunk in batch.chunks(1000) {
            store_new_items(&kv, &model(), chunk).unwrap();
        }
        let items = NewItems::load(&kv, &model()).unwrap();
        assert_eq!(items.len(), 3000);
        assert!(items.pages().len() >= 3, "{} pages", items.pages().len());
        for n in 0..items.pages().len() {
            assert!(kv.get(&page_key(&model(), n)).unwrap().unwrap().len() <= PAGE_LIMIT_BYTES + 64 * 1024);
        }
    }

    /// Recommend's read is one `get` per page (plus the one that finds no
    /// more), however many records and other keys the store holds: it never
    /// lists keys.
    #[test]
    fn reading_new_items_costs_a_get_per_page_and_no_listing() {
        struct Counting(Memory, std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize);
        impl KeyValue for Counting {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.0.get(key)
            }
            fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
                self.0.set(key, value)
            }
            fn keys(&self) -> Result<Vec<String>, String> {
                self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.0.keys()
            }
        }
        let kv = Counting(Memory::default(), Default::default(), Default::default());
        let batch: Vec<StoredItem> = (0..1000).map(|i| stored(&format!("NEW-{i}"), i as f32)).collect();
        store_new_items(&kv, &model(), &batch).unwrap();
        for i in 0..500 {
            kv.set(&format!("unrelated:{i}"), b"x").unwrap();
        }
        let (gets, lists) =
            (kv.1.load(std::sync::atomic::Ordering::Relaxed), kv.2.load(std::sync::atomic::Ordering::Relaxed));
        let items = NewItems::load(&kv, &model()).unwrap();
        assert_eq!(items.len(), 1000);
        let pages = items.pages().len();
        assert_eq!(kv.1.load(std::sync::atomic::Ordering::Relaxed) - gets, pages + 1);
        assert_eq!(kv.2.load(std::sync::atomic::Ordering::Relaxed), lists, "no key listing");
    }

    /// Two writers interleaved in the worst order: B read the pages before
    /// A wrote, and wrote after A had checked. B's own check then finds A's
    /// record missing from the pages and writes it back.
    #[test]
    fn concurrent_writers_lose_no_item() {
        let kv = Memory::default();
        store_new_items(&kv, &model(), &[stored("base", 0.0)]).unwrap();
        // B's stale view: the pages before A.
        let stale = NewItems::load(&kv, &model()).unwrap();
        store_new_items(&kv, &model(), &[stored("from-a", 0.5)]).unwrap();
        // B records its item, then overwrites the pages from its stale view.
        let b = stored("from-b", 1.0);
        kv.set(&record_key(&model(), "from-b"), &serde_json::to_vec(&b).unwrap()).unwrap();
        for (n, bytes) in merge_pages(&stale, std::slice::from_ref(&b)).unwrap() {
            kv.set(&page_key(&model(), n), &bytes).unwrap();
        }
        assert_eq!(ids(&NewItems::load(&kv, &model()).unwrap()), ["base", "from-b"], "A's item is gone from the pages");
        // ...and B's check (the rest of store_new_items) repairs it.
        store_new_items(&kv, &model(), &[b]).unwrap();
        assert_eq!(ids(&NewItems::load(&kv, &model()).unwrap()), ["base", "from-a", "from-b"]);

        // Real threads, many writers at once: every item ends up in the pages.
        let kv = std::sync::Arc::new(Memory::default());
        std::thread::scope(|s| {
            for t in 0..8 {
                let kv = kv.clone();
                s.spawn(move || {
                    for i in 0..10 {
                        store_new_items(&*kv, &model(), &[stored(&format!("t{t}-{i}"), i as f32)]).unwrap();
                    }
                });
            }
        });
        assert_eq!(NewItems::load(&*kv, &model()).unwrap().len(), 80);
    }
}
