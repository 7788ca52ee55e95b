//! The item index: ids, titles, popularity and embeddings of every catalog
//! item in one compact little-endian file (`items.bin`).
//!
//! A function reads it once per instance (once per host start where the
//! host pre-initializes it, once per request under plain Spin), so the
//! layout makes "reading" one `read` into an aligned buffer and a few bounds
//! checks ([`crate::codec`]): no parsing, no per-item allocation, no hash map
//! to build (items are sorted by id and found by binary search). The same
//! layout holds the new items that `/api/items/cold-start` adds
//! ([`crate::coldstart`]). Embeddings are stored as int8 with one f32 scale
//! per item (symmetric quantization): a quarter of the bytes to copy into a
//! fresh instance, for a cosine error below 0.001.
//!
//! ```text
//! offset  size                 field
//! 0       4                    magic "ERIX"
//! 4       4                    format (u32, = 2)
//! 8       4                    count  (u32, items)
//! 12      4                    dims   (u32, embedding width)
//! 16      4                    strings_len (u32, bytes)
//! 20      12                   reserved, zero
//! 32      4*count              scales (f32): embedding_i = scale_i * q_i
//! ..      4*count              popularity (f32, distinct buyers)
//! ..      4*(2*count+1)        string offsets (u32): id_i = [o[2i], o[2i+1]),
//!                              title_i = [o[2i+1], o[2i+2])
//! ..      count*dims           q (i8, row-major; embeddings were L2-normalized)
//! ..      strings_len          UTF-8 strings
//! ```

use std::io::Read;
use std::path::Path;

use crate::codec::{self, Reader, Writer};
use crate::score::{MAX_DIMS, QueryVector};
use crate::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!("items.bin is little-endian and read in place; big-endian targets are not supported");

/// Header words: magic, format, count, dims, strings_len, 3 reserved.
const HEADER_WORDS: usize = 8;

/// One catalog item on its way into an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexItem {
    /// Catalog id (unique).
    pub id: String,
    /// Display title.
    pub title: String,
    /// Popularity (e.g. number of distinct buyers); used for the cold fallback.
    pub popularity: f32,
    /// Text embedding; every item must have the same width.
    pub embedding: Vec<f32>,
}

/// A read-only item index held in one aligned buffer.
#[derive(Debug, Clone)]
pub struct ItemIndex {
    storage: Storage,
    count: usize,
    dims: usize,
    // Positions in `words` (u32 units) and, for the byte sections, in bytes.
    popularity_at: usize,
    offsets_at: usize,
    quantized_byte: usize,
    strings_byte: usize,
}

/// The index's bytes, 4-byte aligned so the word sections read in place.
#[derive(Debug, Clone)]
enum Storage {
    /// An aligned buffer the bytes were read or copied into.
    Words(Vec<u32>),
    /// Bytes that arrived aligned (a key-value value), kept as they are.
    Bytes(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Words(w) => bytemuck::cast_slice(w),
            Storage::Bytes(b) => b,
        }
    }

    fn words(&self) -> &[u32] {
        match self {
            Storage::Words(w) => w,
            // Checked aligned when it was made (`ItemIndex::from_vec_named`).
            Storage::Bytes(b) => bytemuck::cast_slice(&b[..b.len() / 4 * 4]),
        }
    }
}

/// How much of an index is checked when it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Layout (lengths, offsets), UTF-8 and id order: bundle files.
    Full,
    /// Layout only: what makes every access safe. For the new-item pages
    /// that cold-start writes through this module and recommend reads on
    /// every request; their text is checked when it is read
    /// ([`ItemIndex::title`] of a damaged string is empty).
    Layout,
}

impl ItemIndex {
    /// Serializes items into the `items.bin` layout, sorted by id.
    pub fn encode(items: &[IndexItem]) -> Result<Vec<u8>> {
        let bad = |reason: String| Error::Format { what: codec::ITEMS.file.into(), reason };
        let dims = items.first().map_or(0, |i| i.embedding.len());
        if dims > MAX_DIMS {
            return Err(bad(format!("embeddings of width {dims}; at most {MAX_DIMS} are supported")));
        }
        let mut order: Vec<&IndexItem> = items.iter().collect();
        order.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        for pair in order.windows(2) {
            if pair[0].id == pair[1].id {
                return Err(bad(format!("item id `{}` appears twice", pair[0].id)));
            }
        }
        let mut strings = Vec::new();
        let mut offsets = vec![0u32];
        for item in &order {
            if item.embedding.len() != dims {
                return Err(bad(format!(
                    "item `{}` has an embedding of width {}, expected {dims}",
                    item.id,
                    item.embedding.len()
                )));
            }
            for text in [&item.id, &item.title] {
                strings.extend_from_slice(text.as_bytes());
                offsets.push(u32::try_from(strings.len()).map_err(|_| bad("string table exceeds 4 GiB".into()))?);
            }
        }
        let count = order.len();
        let mut quantized = Vec::with_capacity(count * dims);
        let mut scales = Vec::with_capacity(count);
        for item in &order {
            let max = item.embedding.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 && max.is_finite() { max / 127.0 } else { 0.0 };
            scales.push(scale);
            quantized.extend(
                item.embedding
                    .iter()
                    .map(|x| if scale == 0.0 { 0u8 } else { (x / scale).round().clamp(-127.0, 127.0) as i8 as u8 }),
            );
        }
        let mut w = Writer::new(codec::ITEMS);
        w.count(codec::ITEMS, "count", count)?.u32(dims as u32).u32(strings.len() as u32).u32s(&[0, 0, 0]);
        w.f32s(&scales).f32s(order.iter().map(|item| &item.popularity)).u32s(&offsets);
        w.bytes(&quantized).bytes(&strings);
        Ok(w.finish())
    }

    /// Reads an index file with a single `read` into an aligned buffer.
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
        let mut words = vec![0u32; len.div_ceil(4)];
        file.read_exact(&mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..len]).map_err(|e| Error::io(path, e))?;
        Self::parse(Storage::Words(words), len, codec::ITEMS.file, Checks::Full)
    }

    /// Builds an index from bytes already in memory (copies them once).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_named(bytes, codec::ITEMS.file)
    }

    /// [`ItemIndex::from_bytes`] for bytes stored under another name (a
    /// key-value entry), which errors then name.
    pub fn from_bytes_named(bytes: &[u8], name: &str) -> Result<Self> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::parse(Storage::Words(words), bytes.len(), name, Checks::Full)
    }

    /// A new-item page read from the key-value store, on every request: the
    /// bytes are kept without a copy when they are aligned, and only the
    /// layout is checked (see `Checks::Layout`).
    pub fn from_page(bytes: Vec<u8>, name: &str) -> Result<Self> {
        let len = bytes.len();
        let aligned = bytemuck::try_cast_slice::<u8, u32>(&bytes[..len / 4 * 4]).is_ok();
        let storage = if aligned {
            Storage::Bytes(bytes)
        } else {
            let mut words = vec![0u32; len.div_ceil(4)];
            bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..len].copy_from_slice(&bytes);
            Storage::Words(words)
        };
        Self::parse(storage, len, name, Checks::Layout)
    }

    fn parse(storage: Storage, len: usize, name: &str, checks: Checks) -> Result<Self> {
        let bytes = &storage.bytes()[..len];
        let mut r = Reader::open_named(codec::ITEMS, name, bytes)?;
        let count = r.count("count")?;
        let dims = r.count("dims")?;
        let strings_len = r.count("strings_len")?;
        r.bytes(12, "reserved")?;
        if dims > MAX_DIMS {
            return Err(r.error(format!("embeddings of width {dims}; at most {MAX_DIMS} are supported")));
        }
        r.bytes(r.product(count, 4, "scales")?, "scales")?;
        let popularity_at = r.position() / 4;
        r.bytes(r.product(count, 4, "popularity")?, "popularity")?;
        let offsets_at = r.position() / 4;
        let offsets_len = r.sum(r.product(count, 2, "string offsets")?, 1, "string offsets")?;
        r.bytes(r.product(offsets_len, 4, "string offsets")?, "string offsets")?;
        let quantized_byte = r.position();
        r.bytes(r.product(count, dims, "embeddings")?, "embeddings")?;
        let strings_byte = r.position();
        r.bytes(strings_len, "strings")?;
        r.finish()?;
        let bad = |reason: String| Error::Format { what: name.to_string(), reason };
        let index = Self { storage, count, dims, popularity_at, offsets_at, quantized_byte, strings_byte };
        let offsets = index.offsets();
        if offsets[0] != 0 || offsets.windows(2).any(|w| w[0] > w[1]) || offsets[2 * count] as usize != strings_len {
            return Err(bad("string offsets are not increasing within the string table".into()));
        }
        if checks == Checks::Layout {
            return Ok(index);
        }
        // One pass over the whole table, then every string must start on a
        // character boundary: the same guarantee as checking each string,
        // for a fraction of the calls (new-item pages are read per request).
        let all = &index.storage.bytes()[index.strings_byte..index.strings_byte + strings_len];
        let table = std::str::from_utf8(all)
            .map_err(|e| bad(format!("string table is not valid UTF-8 at byte {}", e.valid_up_to())))?;
        if let Some(i) = offsets.iter().position(|&o| !table.is_char_boundary(o as usize)) {
            return Err(bad(format!("string {i} does not start on a UTF-8 character boundary")));
        }
        for i in 1..count {
            if index.string_bytes(2 * (i - 1)) >= index.string_bytes(2 * i) {
                return Err(bad(format!("item ids are not strictly sorted at position {i}")));
            }
        }
        Ok(index)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index holds no item.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Embedding width.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The quantized embedding of item `i` and its scale: `embedding = scale * q`.
    pub fn quantized(&self, i: usize) -> (&[i8], f32) {
        let bytes: &[i8] = bytemuck::cast_slice(self.storage.bytes());
        let start = self.quantized_byte + i * self.dims;
        (&bytes[start..start + self.dims], f32::from_bits(self.storage.words()[HEADER_WORDS + i]))
    }

    /// The embedding of item `i`, dequantized.
    pub fn embedding(&self, i: usize) -> Vec<f32> {
        let (q, scale) = self.quantized(i);
        q.iter().map(|&x| f32::from(x) * scale).collect()
    }

    /// `dot(query, embedding(i))` without dequantizing the row.
    pub fn dot(&self, query: &QueryVector, i: usize) -> f32 {
        let (q, scale) = self.quantized(i);
        query.dot(q, scale)
    }

    /// `dot(query, embedding(i))` for every item, in index order: the
    /// catalog scan behind every ranking.
    pub fn scores(&self, query: &QueryVector) -> Vec<f32> {
        let bytes: &[i8] = bytemuck::cast_slice(self.storage.bytes());
        let rows = &bytes[self.quantized_byte..self.quantized_byte + self.count * self.dims];
        let scales: &[f32] = bytemuck::cast_slice(&self.storage.words()[HEADER_WORDS..HEADER_WORDS + self.count]);
        query.scan(rows, scales)
    }

    /// Popularity of every item.
    pub fn popularity(&self) -> &[f32] {
        bytemuck::cast_slice(&self.storage.words()[self.popularity_at..self.offsets_at])
    }

    fn offsets(&self) -> &[u32] {
        &self.storage.words()[self.offsets_at..self.offsets_at + 2 * self.count + 1]
    }

    fn string_bytes(&self, n: usize) -> &[u8] {
        let offsets = self.offsets();
        let all = &self.storage.bytes()[self.strings_byte..];
        &all[offsets[n] as usize..offsets[n + 1] as usize]
    }

    fn string(&self, n: usize) -> &str {
        // Validated as UTF-8 when the index was read.
        std::str::from_utf8(self.string_bytes(n)).unwrap_or_default()
    }

    /// The id of item `i`.
    pub fn id(&self, i: usize) -> &str {
        self.string(2 * i)
    }

    /// The title of item `i`.
    pub fn title(&self, i: usize) -> &str {
        self.string(2 * i + 1)
    }

    /// The position of the item with this id, by binary search.
    pub fn find(&self, id: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.string_bytes(2 * mid).cmp(id.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, title: &str, popularity: f32, embedding: &[f32]) -> IndexItem {
        IndexItem { id: id.into(), title: title.into(), popularity, embedding: embedding.to_vec() }
    }

    fn sample() -> Vec<IndexItem> {
        vec![
            item("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 50.0, &[1.0, 0.0, 0.0]),
            item("22423", "REGENCY CAKESTAND 3 TIER", 40.0, &[0.0, 1.0, 0.0]),
            item("POST-é", "naïve ünïcode title ✓", 1.0, &[0.0, 0.0, 1.0]),
        ]
    }

    #[test]
    fn round_trip_sorted_by_id() {
        let bytes = ItemIndex::encode(&sample()).unwrap();
        let index = ItemIndex::from_bytes(&bytes).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.dims(), 3);
        assert_eq!(index.id(0), "22423");
        assert_eq!(index.title(0), "REGENCY CAKESTAND 3 TIER");
        assert_eq!(index.embedding(0), vec![0.0, 1.0, 0.0]);
        assert_eq!(index.popularity(), &[40.0, 50.0, 1.0]);
        let at = index.find("POST-é").unwrap();
        assert_eq!(index.title(at), "naïve ünïcode title ✓");
        assert_eq!(index.find("nope"), None);
        assert_eq!(index.find(""), None);
    }

    #[test]
    fn read_from_file_matches_from_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.bin");
        std::fs::write(&path, ItemIndex::encode(&sample()).unwrap()).unwrap();
        let index = ItemIndex::read(&path).unwrap();
        assert_eq!(index.find("85123A"), Some(1));
        assert_eq!(index.embedding(2), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn int8_storage_keeps_cosine_within_a_thousandth() {
        let dims = 384;
        let items: Vec<IndexItem> = (0..50)
            .map(|n| {
                let mut e: Vec<f32> = (0..dims).map(|d| ((n * 31 + d * 7) as f32 * 0.173).sin()).collect();
                crate::score::normalize(&mut e);
                item(&format!("item-{n:02}"), "t", 1.0, &e)
            })
            .collect();
        let index = ItemIndex::from_bytes(&ItemIndex::encode(&items).unwrap()).unwrap();
        for (i, original) in items.iter().enumerate() {
            let stored = index.embedding(i);
            let cosine = crate::score::dot(&original.embedding, &stored) / crate::score::dot(&stored, &stored).sqrt();
            assert!(cosine > 0.999, "item {i}: cosine {cosine}");
            let direct = index.dot(&QueryVector::new(&original.embedding), i);
            assert!((direct - crate::score::dot(&original.embedding, &stored)).abs() < 1e-3);
            assert_eq!(index.scores(&QueryVector::new(&original.embedding))[i], direct);
        }
    }

    #[test]
    fn a_page_reads_like_a_file_and_its_layout_is_checked() {
        let bytes = ItemIndex::encode(&sample()).unwrap();
        let page = ItemIndex::from_page(bytes.clone(), "new-items:shop/1:0").unwrap();
        let file = ItemIndex::from_bytes(&bytes).unwrap();
        for i in 0..3 {
            assert_eq!((page.id(i), page.title(i), page.embedding(i)), (file.id(i), file.title(i), file.embedding(i)));
        }
        // Unaligned bytes are copied into place.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        let unaligned: Vec<u8> = shifted[1..].to_vec();
        assert_eq!(ItemIndex::from_page(unaligned, "p").unwrap().find("85123A"), Some(1));
        let err = ItemIndex::from_page(bytes[..bytes.len() - 1].to_vec(), "new-items:shop/1:0").unwrap_err();
        assert!(err.to_string().starts_with("new-items:shop/1:0: truncated"), "{err}");
    }

    #[test]
    fn empty_index_is_valid() {
        let index = ItemIndex::from_bytes(&ItemIndex::encode(&[]).unwrap()).unwrap();
        assert!(index.is_empty());
        assert_eq!(index.find("x"), None);
    }

    #[test]
    fn refuses_duplicates_and_ragged_embeddings() {
        let mut items = sample();
        items.push(item("22423", "dup", 1.0, &[0.0, 0.0, 1.0]));
        assert!(ItemIndex::encode(&items).unwrap_err().to_string().contains("22423"));
        let mut items = sample();
        items[1].embedding.push(1.0);
        assert!(ItemIndex::encode(&items).unwrap_err().to_string().contains("width 4"));
    }

    #[test]
    fn refuses_corrupt_files() {
        let bytes = ItemIndex::encode(&sample()).unwrap();
        let err = |bytes: &[u8]| ItemIndex::from_bytes(bytes).unwrap_err().to_string();
        assert!(err(&bytes[..10]).starts_with("items.bin: truncated"), "{}", err(&bytes[..10]));
        assert!(err(&bytes[..bytes.len() - 1]).contains("truncated: strings"));
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = b'X';
        assert!(err(&wrong_magic).contains("does not start with `ERIX`"));
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&huge).contains("truncated"), "a damaged count is refused: {}", err(&huge));
        assert!(
            ItemIndex::from_bytes_named(&bytes[..20], "new-items:shop/1:0")
                .unwrap_err()
                .to_string()
                .starts_with("new-items:shop/1:0:")
        );
        let mut bad_utf8 = bytes.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(err(&bad_utf8).contains("UTF-8"));
    }
}
