//! `POST /api/items/cold-start`: products nobody has clicked yet.
//!
//! A new item's text (title, category, description) goes through the same
//! encoder and item tower as the catalog, so its vector lives in the same
//! space as every warm item and every user vector. The function returns its
//! nearest warm neighbours and stores the vector in the key-value store
//! (`spin.toml` `key_value_stores`) under [`NEW_ITEM_PREFIX`]; the recommend
//! function reads those entries and ranks new items next to the catalog,
//! with an exploration boost ([`DEFAULT_NEW_ITEM_BOOST`]) so they get seen.

use serde::{Deserialize, Serialize};

use crate::api::{ApiError, MAX_NEW_ITEMS, ModelRef, Neighbor, NewItem};
use crate::index::ItemIndex;
use crate::score::top_k;

/// Key prefix of new items in the key-value store.
pub const NEW_ITEM_PREFIX: &str = "new-item:";

/// Neighbours returned per new item.
pub const NEIGHBORS: usize = 5;

/// Added to a new item's similarity when recommending. Chosen on Online
/// Retail's validation window (`edgerec eval --validation --new-item-boost
/// 0.02,0.05,0.1,0.2`, BENCHMARKS.md): the largest boost that costs overall
/// Recall@20 under 3% there (new items' Recall@20 0.44 → 0.51); on the test
/// window it raises both (overall 0.0737 → 0.0776, new 0.083 → 0.151).
pub const DEFAULT_NEW_ITEM_BOOST: f32 = 0.02;

/// A new item as stored for `/api/recommend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    /// Catalog id.
    pub item_id: String,
    /// Display title.
    pub title: String,
    /// Its vector in the towers' space (L2-normalized).
    pub vector: Vec<f32>,
    /// The bundle whose towers made the vector; entries of other bundles
    /// are ignored, since their vectors live in another space.
    pub model: ModelRef,
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

/// Validates a cold-start request: 1..=[`MAX_NEW_ITEMS`] items with
/// non-empty, distinct ids, non-blank titles and non-negative prices.
pub fn validate(items: &[NewItem]) -> Result<(), ApiError> {
    if items.is_empty() || items.len() > MAX_NEW_ITEMS {
        return Err(ApiError::bad_request(format!(
            "field `items` must hold 1 to {MAX_NEW_ITEMS} items, got {}",
            items.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if item.item_id.trim().is_empty() {
            return Err(ApiError::bad_request(format!("field `items[{i}].item_id` is empty")));
        }
        if item.item_id.starts_with(NEW_ITEM_PREFIX) || item.item_id.len() > 256 {
            return Err(ApiError::bad_request(format!(
                "field `items[{i}].item_id` must be at most 256 bytes and not start with `{NEW_ITEM_PREFIX}`"
            )));
        }
        if !seen.insert(item.item_id.as_str()) {
            return Err(ApiError::bad_request(format!("field `items[{i}].item_id`: `{}` appears twice", item.item_id)));
        }
        if item.title.trim().is_empty() {
            return Err(ApiError::bad_request(format!("field `items[{i}].title` is empty")));
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
    let scores: Vec<Option<f32>> = (0..index.len()).map(|i| Some(index.dot(vector, i))).collect();
    top_k(&scores, k).into_iter().map(|(i, score)| Neighbor { item_id: index.id(i).to_string(), score }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (items, field) in cases {
            let err = validate(&items).unwrap_err();
            assert!(err.status == 400 && err.message.contains(field), "{field}: {}", err.message);
        }
        let many: Vec<NewItem> = (0..=MAX_NEW_ITEMS).map(|i| item(&i.to_string(), "x")).collect();
        assert!(validate(&many).unwrap_err().message.contains("1001"));
        assert!(validate(&many[..MAX_NEW_ITEMS]).is_ok());
    }
}
