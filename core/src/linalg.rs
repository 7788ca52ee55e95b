//! The little dense linear algebra the library fits closed-form models
//! with (ridge regressions: the new-item tower, the search re-ranker).

/// Solves `a x = b` for a symmetric positive definite `a` (`n × n`) and
/// `b` with `m` columns (row-major), by Cholesky; `None` if `a` is not
/// positive definite.
pub(crate) fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize, m: usize) -> Option<Vec<f64>> {
    // a = L Lᵀ, L stored in the lower triangle of `a`.
    for j in 0..n {
        let diagonal = a[j * n + j] - (0..j).map(|k| a[j * n + k] * a[j * n + k]).sum::<f64>();
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let l_jj = diagonal.sqrt();
        a[j * n + j] = l_jj;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
            a[i * n + j] = s / l_jj;
        }
    }
    // L y = b, then Lᵀ x = y, all columns at once.
    for i in 0..n {
        for k in 0..i {
            let l = a[i * n + k];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * n + i];
        b[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= l);
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            let l = a[k * n + i];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * n + i];
        b[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= l);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cholesky_solver_solves_and_refuses_what_is_not_positive_definite() {
        // [[4, 2], [2, 3]] x = [[2, 8], [1, 7]]: x = [[0.5, 1.25], [0, 1.5]].
        let x = solve_spd(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 8.0, 1.0, 7.0], 2, 2).unwrap();
        for (got, want) in x.iter().zip([0.5, 1.25, 0.0, 1.5]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
        assert_eq!(solve_spd(vec![1.0, 2.0, 2.0, 1.0], vec![1.0, 1.0], 2, 1), None);
    }
}
