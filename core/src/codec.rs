//! One codec for the bundle's binary files (`items.bin`, `user_tower.bin`,
//! `item_tower.bin`, `bm25.bin`, `ad_model.bin`, `ranker.bin`, `crowd.bin`) and the new-item pages the
//! functions keep in the key-value store.
//!
//! Every such file starts with the same eight bytes: a four-byte magic that
//! says what the file is, then its format version as a little-endian `u32`.
//! The rest is little-endian `u32` words, `f32` values and raw bytes, laid out
//! as each file's module documents. [`Writer`] writes them; [`Reader`] reads
//! them back and checks, in one place, what every reader must check: the
//! magic, the version, that every length fits in the bytes that are there
//! (with overflow-checked arithmetic, so a damaged header cannot ask for
//! more than the file holds), and that nothing is left over. Its errors name
//! the file, so a damaged bundle is refused with the name of what is broken.

use crate::{Error, Result};

/// What a binary file is: its name in a bundle, its magic and the format
/// version this build reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// File name inside a bundle, e.g. `items.bin`; errors name it.
    pub file: &'static str,
    /// The first four bytes.
    pub magic: [u8; 4],
    /// Format version written after the magic.
    pub version: u32,
}

/// The item index ([`crate::index`]).
pub const ITEMS: Kind = Kind { file: "items.bin", magic: *b"ERIX", version: 2 };
/// The user tower ([`crate::tower::UserTower`]).
pub const USER_TOWER: Kind = Kind { file: "user_tower.bin", magic: *b"ERUT", version: 1 };
/// The item tower ([`crate::tower::ItemTower`]).
pub const ITEM_TOWER: Kind = Kind { file: "item_tower.bin", magic: *b"ERIT", version: 1 };
/// The BM25 title index ([`crate::search::Bm25`]).
pub const BM25: Kind = Kind { file: "bm25.bin", magic: *b"ERBM", version: 1 };
/// The ad-click model ([`crate::ads::AdModel`]).
pub const AD_MODEL: Kind = Kind { file: "ad_model.bin", magic: *b"ERAD", version: 2 };
/// The search re-ranker ([`crate::search::rerank::Ranker`]).
pub const RANKER: Kind = Kind { file: "ranker.bin", magic: *b"ERRK", version: 1 };

/// The crowd prior ([`crate::crowd::Crowd`]).
pub const CROWD: Kind = Kind { file: "crowd.bin", magic: *b"ERCW", version: 1 };

/// Bytes every file starts with: magic and version.
pub const HEADER_BYTES: usize = 8;

/// Writes a binary file: the header first, then whatever the caller adds.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// A file of `kind`, its header written.
    pub fn new(kind: Kind) -> Self {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(&kind.magic);
        out.extend_from_slice(&kind.version.to_le_bytes());
        Self { out }
    }

    /// Appends one little-endian `u32`.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.out.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a length or count as a `u32`; counts beyond 4 G are refused.
    pub fn count(&mut self, kind: Kind, what: &str, value: usize) -> Result<&mut Self> {
        let value = u32::try_from(value)
            .map_err(|_| format_error(kind.file, format!("{what} is {value}, more than a u32 holds")))?;
        Ok(self.u32(value))
    }

    /// Appends little-endian `u32`s.
    pub fn u32s(&mut self, values: &[u32]) -> &mut Self {
        self.out.reserve(4 * values.len());
        for v in values {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// Appends little-endian `f32`s.
    pub fn f32s<'a>(&mut self, values: impl IntoIterator<Item = &'a f32>) -> &mut Self {
        for v in values {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Reads a binary file front to back, checking every length against what
/// is left; every error names the file.
#[derive(Debug)]
pub struct Reader<'a> {
    name: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the header of a `kind` file and positions after it.
    pub fn open(kind: Kind, bytes: &'a [u8]) -> Result<Self> {
        Self::open_named(kind, kind.file, bytes)
    }

    /// Like [`Reader::open`] for a file stored under another name (a
    /// key-value entry in the `items.bin` layout, for example).
    pub fn open_named(kind: Kind, name: &'a str, bytes: &'a [u8]) -> Result<Self> {
        let mut reader = Self { name, bytes, pos: 0 };
        if bytes.len() < HEADER_BYTES || bytes[..4] != kind.magic {
            let magic = String::from_utf8_lossy(&kind.magic).into_owned();
            return Err(reader.error(format!("not a {} file (it does not start with `{magic}`)", kind.file)));
        }
        reader.pos = 4;
        let version = reader.u32("format version")?;
        if version != kind.version {
            return Err(reader.error(format!(
                "format version {version} is not supported (this build reads {}); rebuild it with a current `edgerec`",
                kind.version
            )));
        }
        Ok(reader)
    }

    /// An error about this file.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        format_error(self.name, reason.into())
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Where the next read starts, in bytes from the start of the file.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `len` bytes; `field` names them in the error when the file
    /// is shorter.
    pub fn bytes(&mut self, len: usize, field: &str) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(self.error(format!(
                "truncated: {field} needs {len} bytes at offset {}, the file has {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// One little-endian `u32`.
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// One `u32` used as a count or length.
    pub fn count(&mut self, field: &str) -> Result<usize> {
        Ok(self.u32(field)? as usize)
    }

    /// One little-endian `f32`.
    pub fn f32(&mut self, field: &str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(field)?))
    }

    /// `n` little-endian `u32`s.
    pub fn u32s(&mut self, n: usize, field: &str) -> Result<Vec<u32>> {
        let len = self.product(n, 4, field)?;
        let b = self.bytes(len, field)?;
        Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// `n` little-endian `f32`s.
    pub fn f32s(&mut self, n: usize, field: &str) -> Result<Vec<f32>> {
        let len = self.product(n, 4, field)?;
        let b = self.bytes(len, field)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// `a × b`, refused (naming `field`) when it overflows: a damaged
    /// header must not turn into a huge allocation or a wrapped length.
    pub fn product(&self, a: usize, b: usize, field: &str) -> Result<usize> {
        a.checked_mul(b).ok_or_else(|| self.error(format!("{field}: {a} × {b} overflows")))
    }

    /// `a + b`, refused when it overflows.
    pub fn sum(&self, a: usize, b: usize, field: &str) -> Result<usize> {
        a.checked_add(b).ok_or_else(|| self.error(format!("{field}: {a} + {b} overflows")))
    }

    /// Ends the read: every byte must have been used.
    pub fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(format!("{n} unexpected bytes after the end of the data"))),
        }
    }
}

fn format_error(file: &str, reason: String) -> Error {
    Error::Format { what: file.to_string(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Kind = Kind { file: "test.bin", magic: *b"TEST", version: 3 };

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(TEST);
        w.u32(2).f32s(&[1.5, -2.0]).bytes(b"ok");
        w.finish()
    }

    #[test]
    fn what_is_written_reads_back() {
        let bytes = sample();
        let mut r = Reader::open(TEST, &bytes).unwrap();
        let n = r.count("n").unwrap();
        assert_eq!(r.f32s(n, "values").unwrap(), [1.5, -2.0]);
        assert_eq!(r.bytes(2, "tail").unwrap(), b"ok");
        r.finish().unwrap();
    }

    #[test]
    fn damage_is_refused_with_the_file_name_and_what_is_wrong() {
        let bytes = sample();
        let err = |bytes: &[u8]| -> String {
            let read = || -> Result<()> {
                let mut r = Reader::open(TEST, bytes)?;
                let n = r.count("n")?;
                r.f32s(n, "values")?;
                r.bytes(2, "tail")?;
                r.finish()
            };
            read().unwrap_err().to_string()
        };
        assert!(err(&bytes[..3]).contains("test.bin: not a test.bin file"));
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(err(&wrong).contains("does not start with `TEST`"));
        let mut old = bytes.clone();
        old[4] = 2;
        assert!(err(&old).contains("format version 2 is not supported (this build reads 3)"));
        assert!(err(&bytes[..bytes.len() - 1]).contains("truncated: tail needs 2 bytes"));
        let mut long = bytes.clone();
        long.push(0);
        assert!(err(&long).contains("1 unexpected bytes"));
        // A count that would overflow a length is refused, not allocated.
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&huge).contains("truncated: values"));
        let r = Reader::open(TEST, &bytes).unwrap();
        assert!(r.product(usize::MAX, 2, "weights").unwrap_err().to_string().contains("weights"));
    }
}
