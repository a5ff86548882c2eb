//! Small dense linear algebra for the baselines (d <= ~40): Gram accumulation, Cholesky, and a
//! rank-revealing minimum-norm solve. Hand-written because the matrices are tiny and the same few
//! operations run millions of times; all matrices are row-major `[n, n]` slices of f64.

/// Adds x x^T to `g` ([d, d]) and y x to `b` ([d]): one example into the normal equations.
#[inline]
pub fn accumulate(g: &mut [f64], b: &mut [f64], x: &[f64], y: f64) {
    let d = x.len();
    for (i, &xi) in x.iter().enumerate() {
        let row = &mut g[i * d..(i + 1) * d];
        for (gij, &xj) in row.iter_mut().zip(x) {
            *gij += xi * xj;
        }
        b[i] += y * xi;
    }
}

#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// In-place Cholesky of a symmetric positive-definite `a` ([n, n]): on success the lower triangle
/// holds L with a = L L^T (the upper triangle is left as it was). Returns false if a pivot is not
/// positive (the matrix is not numerically positive definite).
pub fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut s = a[j * n + j];
        for c in 0..j {
            s -= a[j * n + c] * a[j * n + c];
        }
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        let ljj = s.sqrt();
        a[j * n + j] = ljj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for c in 0..j {
                s -= a[i * n + c] * a[j * n + c];
            }
            a[i * n + j] = s / ljj;
        }
    }
    true
}

/// Solves L L^T x = b in place given the Cholesky factor in the lower triangle of `l` ([n, n]).
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    // Forward: L z = b.
    for i in 0..n {
        let mut s = b[i];
        for c in 0..i {
            s -= l[i * n + c] * b[c];
        }
        b[i] = s / l[i * n + i];
    }
    // Backward: L^T x = z.
    for i in (0..n).rev() {
        let mut s = b[i];
        for r in i + 1..n {
            s -= l[r * n + i] * b[r];
        }
        b[i] = s / l[i * n + i];
    }
}

/// log det of a from its Cholesky factor: 2 sum log L_ii.
pub fn cholesky_logdet(l: &[f64], n: usize) -> f64 {
    (0..n).map(|i| l[i * n + i].ln()).sum::<f64>() * 2.0
}

/// Relative pivot tolerance of [`min_norm_solve`]: directions whose Schur-complement pivot is below
/// `RANK_TOL * max diag(G)` are treated as null. The pivots are squared singular values of X, so
/// this cuts singular values below ~3e-6 of the largest, well above the ~6e-8 relative rounding of
/// f32 inputs (which otherwise turns an exact half-subspace design into a badly conditioned
/// full-rank one) and well below anything a well-posed prompt produces.
pub const RANK_TOL: f64 = 1e-11;

/// Scratch space of [`min_norm_solve`], reused across calls to avoid allocation.
#[derive(Clone, Debug, Default)]
pub struct MinNormScratch {
    a: Vec<f64>,
    perm: Vec<usize>,
    ltl: Vec<f64>,
    c: Vec<f64>,
}

/// The minimum-norm solution w = pinv(G) b of G w = b for a symmetric positive semi-definite G
/// ([d, d]) with b in its range (normal equations G = X^T X, b = X^T y: w is the minimum-norm
/// least-squares solution). Returns the numerical rank r.
///
/// Method: pivoted Cholesky P^T G P = L L^T with L [d, r] lower-trapezoidal (LAPACK dpstrf's
/// rule: stop when the largest remaining pivot is below the tolerance). With L's top block L1
/// [r, r] invertible, b' = P^T b = L c gives c = L1^{-1} b'[..r]; the minimum-norm w' with
/// L^T w' = c is w' = L (L^T L)^{-1} c; w = P w'.
pub fn min_norm_solve(g: &[f64], b: &[f64], d: usize, w: &mut [f64], s: &mut MinNormScratch) -> usize {
    s.a.clear();
    s.a.extend_from_slice(g);
    s.perm.clear();
    s.perm.extend(0..d);
    let a = &mut s.a;
    let max_diag = (0..d).map(|i| g[i * d + i]).fold(0.0, f64::max);
    w.iter_mut().for_each(|v| *v = 0.0);
    if max_diag <= 0.0 {
        return 0;
    }
    let tol = RANK_TOL * max_diag;
    let mut r = 0;
    for j in 0..d {
        // The remaining Schur complement lives in a[j.., j..] (full, both triangles).
        let (mut p, mut best) = (j, a[j * d + j]);
        for i in j + 1..d {
            if a[i * d + i] > best {
                best = a[i * d + i];
                p = i;
            }
        }
        if best <= tol {
            break;
        }
        if p != j {
            // Symmetric swap of rows and columns j and p.
            for c in 0..d {
                a.swap(j * d + c, p * d + c);
            }
            for rr in 0..d {
                a.swap(rr * d + j, rr * d + p);
            }
            s.perm.swap(j, p);
        }
        let ljj = a[j * d + j].sqrt();
        a[j * d + j] = ljj;
        for i in j + 1..d {
            a[i * d + j] /= ljj;
        }
        for i in j + 1..d {
            let lij = a[i * d + j];
            for c in j + 1..d {
                a[i * d + c] -= lij * a[c * d + j];
            }
        }
        r += 1;
    }
    // L[i][c] = a[i*d + c] for c < r, i >= c (rows in permuted order).
    // c = L1^{-1} b'[..r] (forward substitution).
    s.c.clear();
    for i in 0..r {
        let mut v = b[s.perm[i]];
        for c in 0..i {
            v -= a[i * d + c] * s.c[c];
        }
        s.c.push(v / a[i * d + i]);
    }
    // L^T L ([r, r]) and its Cholesky.
    s.ltl.clear();
    s.ltl.resize(r * r, 0.0);
    for p in 0..r {
        for q in 0..=p {
            let mut v = 0.0;
            for i in p.max(q)..d {
                v += a[i * d + p] * a[i * d + q];
            }
            s.ltl[p * r + q] = v;
            s.ltl[q * r + p] = v;
        }
    }
    if !cholesky(&mut s.ltl, r) {
        // Cannot happen for r >= 1 pivots above the tolerance unless G had NaNs.
        return 0;
    }
    cholesky_solve(&s.ltl, r, &mut s.c);
    // w' = L z; w[perm[i]] = w'[i].
    for i in 0..d {
        let mut v = 0.0;
        for c in 0..r.min(i + 1) {
            v += a[i * d + c] * s.c[c];
        }
        w[s.perm[i]] = v;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{self, Purpose};

    fn gram(x: &[f64], k: usize, d: usize, y: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (mut g, mut b) = (vec![0.0; d * d], vec![0.0; d]);
        for i in 0..k {
            accumulate(&mut g, &mut b, &x[i * d..(i + 1) * d], y[i]);
        }
        (g, b)
    }

    #[test]
    fn cholesky_solves_spd_systems() {
        let d = 6;
        let mut rng = rng::stream(0, Purpose::Test, 1);
        let x: Vec<f64> = (0..10 * d).map(|_| rng::normal(&mut rng)).collect();
        let y: Vec<f64> = (0..10).map(|_| rng::normal(&mut rng)).collect();
        let (g, b) = gram(&x, 10, d, &y);
        let mut l = g.clone();
        assert!(cholesky(&mut l, d));
        let mut w = b.clone();
        cholesky_solve(&l, d, &mut w);
        for i in 0..d {
            let gw = dot(&g[i * d..(i + 1) * d], &w);
            assert!((gw - b[i]).abs() < 1e-10, "row {i}: {gw} vs {}", b[i]);
        }
    }

    /// Minimum norm: the solution lies in the row space of X and solves X w = y exactly when k < d
    /// (underdetermined), and equals the ordinary solution when X has full column rank.
    #[test]
    fn min_norm_solve_interpolates_in_row_space_and_handles_rank_deficiency() {
        let d = 8;
        let mut rng = rng::stream(0, Purpose::Test, 2);
        let mut s = MinNormScratch::default();
        for k in [1, 3, 7] {
            let x: Vec<f64> = (0..k * d).map(|_| rng::normal(&mut rng)).collect();
            let y: Vec<f64> = (0..k).map(|_| rng::normal(&mut rng)).collect();
            let (g, b) = gram(&x, k, d, &y);
            let mut w = vec![0.0; d];
            assert_eq!(min_norm_solve(&g, &b, d, &mut w, &mut s), k);
            for i in 0..k {
                assert!((dot(&x[i * d..(i + 1) * d], &w) - y[i]).abs() < 1e-8);
            }
            // Minimum norm: adding any null-space vector v of X (X v = 0) keeps the fit and grows
            // the norm. v = u - pinv-projection of u onto the row space, for a random u.
            let u: Vec<f64> = (0..d).map(|_| rng::normal(&mut rng)).collect();
            let xu: Vec<f64> = (0..k).map(|i| dot(&x[i * d..(i + 1) * d], &u)).collect();
            let (gu, bu) = gram(&x, k, d, &xu);
            let mut pu = vec![0.0; d];
            min_norm_solve(&gu, &bu, d, &mut pu, &mut s);
            let v: Vec<f64> = u.iter().zip(&pu).map(|(a, b)| a - b).collect();
            for i in 0..k {
                assert!(dot(&x[i * d..(i + 1) * d], &v).abs() < 1e-8);
            }
            let norm: f64 = w.iter().map(|a| a * a).sum();
            let other: f64 = w.iter().zip(&v).map(|(a, b)| (a + b) * (a + b)).sum();
            assert!(other > norm + 0.5 * dot(&v, &v));
        }
        // Rank deficient and overdetermined: 20 points in a 3-dimensional subspace of R^8.
        let basis: Vec<f64> = (0..3 * d).map(|_| rng::normal(&mut rng)).collect();
        let k = 20;
        let mut x = vec![0.0; k * d];
        for i in 0..k {
            let z: Vec<f64> = (0..3).map(|_| rng::normal(&mut rng)).collect();
            for j in 0..d {
                x[i * d + j] = (0..3).map(|c| z[c] * basis[c * d + j]).sum();
            }
        }
        let w_true: Vec<f64> = (0..d).map(|_| rng::normal(&mut rng)).collect();
        let y: Vec<f64> = (0..k).map(|i| dot(&x[i * d..(i + 1) * d], &w_true)).collect();
        let (g, b) = gram(&x, k, d, &y);
        let mut w = vec![0.0; d];
        assert_eq!(min_norm_solve(&g, &b, d, &mut w, &mut s), 3);
        for i in 0..k {
            assert!((dot(&x[i * d..(i + 1) * d], &w) - y[i]).abs() < 1e-8);
        }
        // The solution lies in the span of the basis rows: its projection onto them is itself.
        let mut l = vec![0.0; 9];
        for p in 0..3 {
            for q in 0..3 {
                l[p * 3 + q] = dot(&basis[p * d..(p + 1) * d], &basis[q * d..(q + 1) * d]);
            }
        }
        let mut coef: Vec<f64> = (0..3).map(|p| dot(&basis[p * d..(p + 1) * d], &w)).collect();
        assert!(cholesky(&mut l, 3));
        cholesky_solve(&l, 3, &mut coef);
        for j in 0..d {
            let proj: f64 = (0..3).map(|c| coef[c] * basis[c * d + j]).sum();
            assert!((proj - w[j]).abs() < 1e-8);
        }
    }
}
