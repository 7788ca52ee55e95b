//! Reading what a function serves from: the model bundle mounted at
//! `/bundle` (or another directory) and its binary files.
//! Every error is a sentence for the log that names the file.

use std::path::Path;

use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::crowd::{CROWD_FILE, Crowd};
use edgerec_core::index::ItemIndex;
use edgerec_core::tower::{ITEM_TOWER_FILE, ItemTower, MAX_HISTORY, USER_TOWER_FILE, UserTower};

use crate::BUNDLE_DIR;

/// The manifest of the bundle mounted at `dir`.
pub fn manifest(dir: &str) -> Result<Manifest, String> {
    Manifest::read(dir.as_ref()).map_err(|e| e.to_string())
}

/// Reads `name` from the bundle at `dir`, if its manifest lists it.
pub fn optional_file(dir: &str, manifest: &Manifest, name: &str) -> Result<Option<Vec<u8>>, String> {
    if !manifest.files.contains_key(name) {
        return Ok(None);
    }
    let path = Path::new(dir).join(name);
    std::fs::read(&path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads `name` from the bundle at `dir`; it must be there.
pub fn file(dir: &str, manifest: &Manifest, name: &str) -> Result<Vec<u8>, String> {
    optional_file(dir, manifest, name)?
        .ok_or_else(|| format!("the bundle at {dir} has no {name}; build it with a current `edgerec`"))
}

/// The item index (`items.bin`) of the catalog bundle at `/bundle`.
pub fn item_index(manifest: &Manifest) -> Result<ItemIndex, String> {
    if !manifest.files.contains_key(ITEMS_FILE) {
        return Err(format!("the bundle at {BUNDLE_DIR} lists no {ITEMS_FILE}; mount a catalog bundle there"));
    }
    ItemIndex::read(&Path::new(BUNDLE_DIR).join(ITEMS_FILE)).map_err(|e| e.to_string())
}

/// The item tower of the catalog bundle at `/bundle`, if it was trained.
pub fn item_tower(manifest: &Manifest) -> Result<Option<ItemTower>, String> {
    optional_file(BUNDLE_DIR, manifest, ITEM_TOWER_FILE)?
        .map(|bytes| ItemTower::from_bytes(&bytes).map_err(|e| e.to_string()))
        .transpose()
}

/// The user tower of the catalog bundle at `/bundle`: the trained one when
/// the bundle has `user_tower.bin`, else recency pooling of the item
/// vectors (a zero-shot bundle from `edgerec index`). Its width must match
/// the items'.
pub fn user_tower(manifest: &Manifest, index: &ItemIndex) -> Result<UserTower, String> {
    let tower = match optional_file(BUNDLE_DIR, manifest, USER_TOWER_FILE)? {
        Some(bytes) => UserTower::from_bytes(&bytes).map_err(|e| e.to_string())?,
        None => UserTower::recency(index.dims(), MAX_HISTORY),
    };
    if tower.dims != index.dims() {
        return Err(format!("{USER_TOWER_FILE} has {} dims, {ITEMS_FILE} {}", tower.dims, index.dims()));
    }
    Ok(tower)
}

/// The crowd prior of the catalog bundle at `/bundle` (`crowd.bin`), if
/// its training chose one; it must cover the index's items.
pub fn crowd(manifest: &Manifest, index: &ItemIndex) -> Result<Option<Crowd>, String> {
    let Some(bytes) = optional_file(BUNDLE_DIR, manifest, CROWD_FILE)? else { return Ok(None) };
    let crowd = Crowd::from_bytes(&bytes).map_err(|e| e.to_string())?;
    if crowd.items() != index.len() {
        return Err(format!("{CROWD_FILE} covers {} items, {ITEMS_FILE} has {}", crowd.items(), index.len()));
    }
    Ok(Some(crowd))
}
