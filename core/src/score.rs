//! Vector arithmetic for ranking: dot products, normalization, the integer
//! scoring kernel and a deterministic top-k.
//!
//! Ranking a catalog is one dot product per item between the query (a user
//! vector, a query embedding) and the item's int8 row. [`QueryVector`]
//! quantizes the query once to i16 so that each product is integer
//! arithmetic: exact, so the same on every platform (the functions in wasm
//! and `edgerec eval` natively rank identically), and on wasm `simd128` one
//! `i32x4.dot_i16x8_s` per eight multiply-adds.

/// Dot product with eight independent accumulators, so the compiler can use
/// SIMD lanes (wasm `simd128`, x86 SSE/AVX) without reassociating floats.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for lane in 0..8 {
            acc[lane] += x[lane] * y[lane];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Widest vector the integer kernel accepts: with i16 query values up to
/// [`QUERY_MAX`] and int8 rows, no i32 lane can overflow below this.
pub const MAX_DIMS: usize = 4096;

/// Largest magnitude of a quantized query value (i16). 4096 dims / 4 lanes
/// × 16383 × 127 < 2³¹.
const QUERY_MAX: f32 = 16383.0;

/// A query vector quantized for scoring against int8 rows:
/// `dot(query, scale_i · q_i) ≈ scale · scale_i · Σ values · q_i`, with a
/// relative error under 1e-4.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVector {
    values: Vec<i16>,
    scale: f32,
}

impl QueryVector {
    /// Quantizes `v` (symmetric, per vector). Non-finite values count as 0.
    pub fn new(v: &[f32]) -> Self {
        let max = v.iter().filter(|x| x.is_finite()).fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / QUERY_MAX } else { 0.0 };
        let values = v
            .iter()
            .map(|&x| {
                if scale == 0.0 || !x.is_finite() { 0 } else { (x / scale).round().clamp(-QUERY_MAX, QUERY_MAX) as i16 }
            })
            .collect();
        Self { values, scale }
    }

    /// Width.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the vector has no dimension.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `dot(query, row_scale · row)` for an int8 row of the same width.
    pub fn dot(&self, row: &[i8], row_scale: f32) -> f32 {
        dot_i16_i8(&self.values, row) as f32 * self.scale * row_scale
    }

    /// [`QueryVector::dot`] with every row of `rows` (row-major, this
    /// vector's width), scaled by `scales`: the catalog scan. The common
    /// widths (128, 384) run a kernel that keeps the query in registers
    /// for the whole scan; the sums are exact either way.
    pub fn scan(&self, rows: &[i8], scales: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(scales.len());
        let dims = self.values.len();
        if dims == 0 {
            out.resize(scales.len(), 0.0);
            return out;
        }
        let rows = rows.chunks_exact(dims).zip(scales);
        match dims {
            128 => out.extend(rows.map(|(r, s)| kernel::dot_fixed::<8>(&self.values, r) as f32 * self.scale * s)),
            384 => out.extend(rows.map(|(r, s)| kernel::dot_fixed::<24>(&self.values, r) as f32 * self.scale * s)),
            _ => out.extend(rows.map(|(r, s)| self.dot(r, *s))),
        }
        out
    }
}

/// Exact integer dot product of an i16 vector with an int8 row (at most
/// [`MAX_DIMS`] wide): the scoring kernel.
pub fn dot_i16_i8(a: &[i16], q: &[i8]) -> i64 {
    debug_assert_eq!(a.len(), q.len());
    kernel::dot_i16_i8(a, q)
}

/// The portable kernel: eight i32 lanes, which compilers vectorize.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel {
    pub fn dot_i16_i8(a: &[i16], q: &[i8]) -> i64 {
        let mut acc = [0i32; 8];
        let (a8, q8) = (a.chunks_exact(8), q.chunks_exact(8));
        let tail: i64 = a8.remainder().iter().zip(q8.remainder()).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
        for (x, y) in a8.zip(q8) {
            for lane in 0..8 {
                acc[lane] += i32::from(x[lane]) * i32::from(y[lane]);
            }
        }
        acc.iter().map(|&l| i64::from(l)).sum::<i64>() + tail
    }

    /// `C` chunks of 16 dims, unrolled; no sum can overflow an i32 for
    /// `16 · C ≤ 512` (16383 · 127 · 512 < 2³¹).
    #[inline(always)]
    pub fn dot_fixed<const C: usize>(a: &[i16], q: &[i8]) -> i32 {
        let (a, q) = (&a[..16 * C], &q[..16 * C]);
        let mut acc = [0i32; 16];
        for c in 0..C {
            for lane in 0..16 {
                acc[lane] += i32::from(a[16 * c + lane]) * i32::from(q[16 * c + lane]);
            }
        }
        acc.iter().sum()
    }
}

/// The wasm `simd128` kernel: sixteen dims per step, two
/// `i32x4.dot_i16x8_s`. Integer sums are exact, so it returns what the
/// portable kernel returns.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(unsafe_code)]
mod kernel {
    use core::arch::wasm32::{
        i16x8_extend_high_i8x16, i16x8_extend_low_i8x16, i32x4_add, i32x4_dot_i16x8, i32x4_extract_lane, i32x4_splat,
        v128_load,
    };

    pub fn dot_i16_i8(a: &[i16], q: &[i8]) -> i64 {
        let mut acc = i32x4_splat(0);
        let (a16, q16) = (a.chunks_exact(16), q.chunks_exact(16));
        let tail: i64 = a16.remainder().iter().zip(q16.remainder()).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
        for (x, y) in a16.zip(q16) {
            // SAFETY: `chunks_exact(16)` yields 16 i8 (16 bytes) and 16 i16
            // (32 bytes); each `v128_load` reads 16 bytes inside them, and
            // wasm loads need no alignment.
            let (row, lo, hi) = unsafe {
                (v128_load(y.as_ptr().cast()), v128_load(x.as_ptr().cast()), v128_load(x.as_ptr().add(8).cast()))
            };
            let products = i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(row), lo),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(row), hi),
            );
            acc = i32x4_add(acc, products);
        }
        let lanes = [
            i32x4_extract_lane::<0>(acc),
            i32x4_extract_lane::<1>(acc),
            i32x4_extract_lane::<2>(acc),
            i32x4_extract_lane::<3>(acc),
        ];
        lanes.iter().map(|&l| i64::from(l)).sum::<i64>() + tail
    }

    /// `C` chunks of 16 dims, unrolled (the compiler keeps the query's
    /// chunks in registers across calls in a scan); no sum can overflow an
    /// i32 for `16 · C ≤ 512`.
    #[inline(always)]
    pub fn dot_fixed<const C: usize>(a: &[i16], q: &[i8]) -> i32 {
        let (a, q) = (&a[..16 * C], &q[..16 * C]);
        let mut acc = i32x4_splat(0);
        for c in 0..C {
            // SAFETY: the slices above hold 16·C values; chunk `c` reads
            // bytes [16c, 16c + 16) of `q` and values [16c, 16c + 16) of
            // `a` (two 16-byte loads); wasm loads need no alignment.
            let (row, lo, hi) = unsafe {
                (
                    v128_load(q.as_ptr().add(16 * c).cast()),
                    v128_load(a.as_ptr().add(16 * c).cast()),
                    v128_load(a.as_ptr().add(16 * c + 8).cast()),
                )
            };
            let products = i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(row), lo),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(row), hi),
            );
            acc = i32x4_add(acc, products);
        }
        i32x4_extract_lane::<0>(acc)
            + i32x4_extract_lane::<1>(acc)
            + i32x4_extract_lane::<2>(acc)
            + i32x4_extract_lane::<3>(acc)
    }
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Indices of the `k` highest scores, best first. Ties go to the lower
/// index, so equal input always gives the same order. `None` scores are
/// skipped (excluded items).
pub fn top_k(scores: &[Option<f32>], k: usize) -> Vec<(usize, f32)> {
    let mut top = TopK::new(k);
    for (i, s) in scores.iter().enumerate() {
        if let Some(s) = s {
            top.push(i, *s);
        }
    }
    top.into_sorted()
}

/// The `k` best `(index, score)` pairs seen so far, best first; ties go to
/// the lower index. Keeping only k and comparing each new score with the
/// worst kept one makes a catalog scan one comparison per item.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    best: Vec<(usize, f32)>,
}

impl TopK {
    /// An empty selection of at most `k`.
    pub fn new(k: usize) -> Self {
        Self { k, best: Vec::with_capacity(k + 1) }
    }

    fn better(a: (usize, f32), b: (usize, f32)) -> bool {
        b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)).is_lt()
    }

    /// Whether [`TopK::push`] would keep item `index` with `score` now:
    /// one comparison, to skip costlier checks for items that cannot make it.
    pub fn accepts(&self, index: usize, score: f32) -> bool {
        self.best.len() < self.k || self.best.last().is_some_and(|&worst| Self::better((index, score), worst))
    }

    /// Offers item `index` with `score`.
    pub fn push(&mut self, index: usize, score: f32) {
        let entry = (index, score);
        if !self.accepts(index, score) {
            return;
        }
        let at = self.best.partition_point(|&kept| Self::better(kept, entry));
        self.best.insert(at, entry);
        self.best.truncate(self.k);
    }

    /// The selection, best first.
    pub fn into_sorted(self) -> Vec<(usize, f32)> {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_for_odd_lengths() {
        for n in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
    }

    #[test]
    fn the_integer_kernel_is_exact_and_the_quantized_query_close() {
        for n in [0, 5, 8, 16, 17, 128, 384, 385] {
            let a: Vec<i16> = (0..n).map(|i| ((i * 7919) % 32001) as i16 - 16000).collect();
            let q: Vec<i8> = (0..n).map(|i| ((i * 37) % 255) as i8).collect();
            let naive: i64 = a.iter().zip(&q).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
            assert_eq!(dot_i16_i8(&a, &q), naive, "n={n}");
        }
        // The widest rows at the extremes do not overflow.
        let a = vec![16383i16; MAX_DIMS];
        let q = vec![-127i8; MAX_DIMS];
        assert_eq!(dot_i16_i8(&a, &q), -16383 * 127 * MAX_DIMS as i64);
        let v: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        let row: Vec<i8> = (0..384).map(|i| ((i * 37) % 255) as i8).collect();
        let exact: f32 = v.iter().zip(&row).map(|(x, &y)| x * f32::from(y) * 0.01).sum();
        let approx = QueryVector::new(&v).dot(&row, 0.01);
        assert!((exact - approx).abs() < 1e-3 * exact.abs().max(1.0), "{exact} vs {approx}");
        assert_eq!(QueryVector::new(&[0.0, f32::NAN]).dot(&[1, 1], 1.0), 0.0);
        // The scan's fixed-width kernels give the row-by-row results exactly.
        for dims in [128usize, 384, 100] {
            let v: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
            let rows: Vec<i8> = (0..dims * 7).map(|i| ((i * 37) % 255) as i8).collect();
            let scales: Vec<f32> = (0..7).map(|i| 0.01 * (i + 1) as f32).collect();
            let q = QueryVector::new(&v);
            let by_row: Vec<f32> = rows.chunks_exact(dims).zip(&scales).map(|(r, s)| q.dot(r, *s)).collect();
            assert_eq!(q.scan(&rows, &scales), by_row, "dims {dims}");
        }
    }

    #[test]
    fn top_k_orders_by_score_then_index_and_skips_excluded() {
        let scores = [Some(0.5), None, Some(0.9), Some(0.5), Some(0.1)];
        assert_eq!(top_k(&scores, 3), vec![(2, 0.9), (0, 0.5), (3, 0.5)]);
        assert_eq!(top_k(&scores, 10).len(), 4);
        assert!(top_k(&scores, 0).is_empty());
        // The same as sorting everything, for any k.
        let many: Vec<Option<f32>> = (0..500).map(|i| (i % 7 != 0).then(|| ((i * 37) % 101) as f32)).collect();
        let mut sorted: Vec<(usize, f32)> = many.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))).collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 10, 200, 600] {
            assert_eq!(top_k(&many, k), sorted[..k.min(sorted.len())], "k={k}");
        }
    }
}
