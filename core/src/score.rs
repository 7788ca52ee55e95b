//! Vector arithmetic for ranking: dot products, normalization and a
//! deterministic top-k.

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

/// Dot product of f32 `a` with int8 `q` (an unscaled quantized row), with
/// the same eight-lane layout as [`dot`].
pub fn dot_i8(a: &[f32], q: &[i8]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, q8) = (a.chunks_exact(8), q.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(q8.remainder()).map(|(x, &y)| x * f32::from(y)).sum();
    for (x, y) in a8.zip(q8) {
        for lane in 0..8 {
            acc[lane] += x[lane] * f32::from(y[lane]);
        }
    }
    acc.iter().sum::<f32>() + tail
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
    let mut candidates: Vec<(usize, f32)> = scores.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))).collect();
    let better = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, better);
    }
    candidates.truncate(k);
    candidates.sort_unstable_by(better);
    candidates
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
    fn dot_i8_matches_naive() {
        for n in [0, 5, 8, 17, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let q: Vec<i8> = (0..n).map(|i| ((i * 37) % 255) as i8).collect();
            let naive: f32 = a.iter().zip(&q).map(|(x, &y)| x * f32::from(y)).sum();
            assert!((dot_i8(&a, &q) - naive).abs() < 1e-2, "n={n}");
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
    fn top_k_orders_by_score_then_index_and_skips_excluded() {
        let scores = [Some(0.5), None, Some(0.9), Some(0.5), Some(0.1)];
        assert_eq!(top_k(&scores, 3), vec![(2, 0.9), (0, 0.5), (3, 0.5)]);
        assert_eq!(top_k(&scores, 10).len(), 4);
        assert!(top_k(&scores, 0).is_empty());
    }
}
