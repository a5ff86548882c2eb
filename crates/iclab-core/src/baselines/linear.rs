//! Linear baselines fitted on every prefix of a prompt from incrementally grown normal equations
//! G_k = X_k^T X_k, b_k = X_k^T y_k (docs/study.md, "Baselines"): minimum-norm least squares, ridge,
//! averaging, LASSO (coordinate descent, warm-started along k) and k-nearest neighbours.

use std::sync::atomic::{AtomicU64, Ordering};

use super::linalg::{self, MinNormScratch};
use super::Baseline;
use crate::prompt::Prompt;

/// The first k examples of a prompt as normal equations, grown one example at a time.
pub struct Prefix {
    pub d: usize,
    /// Number of examples in the prefix.
    pub k: usize,
    /// X^T X, [d, d].
    pub g: Vec<f64>,
    /// X^T y, [d].
    pub b: Vec<f64>,
    /// y^T y.
    pub yy: f64,
    /// All context inputs of the prompt in f64, [n, d].
    pub xs: Vec<f64>,
    /// All context targets in f64, [n].
    pub ys: Vec<f64>,
}

impl Prefix {
    pub fn new(prompt: &Prompt) -> Self {
        let d = prompt.d;
        Prefix {
            d,
            k: 0,
            g: vec![0.0; d * d],
            b: vec![0.0; d],
            yy: 0.0,
            xs: prompt.xs.iter().map(|&v| v as f64).collect(),
            ys: prompt.ys.iter().map(|&v| v as f64).collect(),
        }
    }

    /// x_i (0-based), [d].
    #[inline]
    pub fn x(&self, i: usize) -> &[f64] {
        &self.xs[i * self.d..(i + 1) * self.d]
    }

    /// Adds example k (0-based) to the prefix.
    pub fn push(&mut self) {
        let (k, d) = (self.k, self.d);
        let y = self.ys[k];
        linalg::accumulate(&mut self.g, &mut self.b, &self.xs[k * d..(k + 1) * d], y);
        self.yy += y * y;
        self.k += 1;
    }
}

/// Predictions for k = 0..n-1: `fit` sees the prefix of k >= 1 examples and the query x (f64);
/// k = 0 predicts 0 (docs/study.md, "Baselines").
pub fn per_prefix(prompt: &Prompt, mut fit: impl FnMut(&Prefix, &[f64]) -> f64) -> Vec<f64> {
    let mut prefix = Prefix::new(prompt);
    let mut out = Vec::with_capacity(prompt.n);
    let mut q = vec![0.0; prompt.d];
    for k in 0..prompt.n {
        if k == 0 {
            out.push(0.0);
        } else {
            prefix.push();
            let (x, _) = prompt.query(k);
            q.iter_mut().zip(x).for_each(|(a, &b)| *a = b as f64);
            out.push(fit(&prefix, &q));
        }
    }
    out
}

/// Minimum-norm least squares: w = pinv(X^T X) X^T y. On dense noiseless N(0, I) prompts its
/// normalised error is exactly 1 - k/d for k < d (the projection of w on a random k-dimensional
/// subspace) and 0 for k >= d.
pub struct LeastSquares;

impl Baseline for LeastSquares {
    fn name(&self) -> String {
        "least_squares".into()
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let mut s = MinNormScratch::default();
        let mut w = vec![0.0; prompt.d];
        let d = prompt.d;
        let mut l = vec![0.0; d * d];
        per_prefix(prompt, |p, q| {
            // Full column rank (k >= d, well conditioned): the unique solution by plain Cholesky;
            // otherwise the rank-revealing minimum-norm solve.
            if p.k >= d {
                l.copy_from_slice(&p.g);
                let max_diag = (0..d).map(|i| p.g[i * d + i]).fold(0.0, f64::max);
                if linalg::cholesky(&mut l, d) && (0..d).all(|i| l[i * d + i].powi(2) > linalg::RANK_TOL * max_diag) {
                    w.copy_from_slice(&p.b);
                    linalg::cholesky_solve(&l, d, &mut w);
                    return linalg::dot(&w, q);
                }
            }
            linalg::min_norm_solve(&p.g, &p.b, p.d, &mut w, &mut s);
            linalg::dot(&w, q)
        })
    }
}

/// Ridge regression, scikit-learn's objective ||y - X w||^2 + lambda ||w||^2 (no intercept):
/// w = (X^T X + lambda I)^{-1} X^T y. With lambda = noise variance it is the posterior mean of the
/// dense class (w ~ N(0, I)).
pub struct Ridge {
    pub lambda: f64,
}

impl Baseline for Ridge {
    fn name(&self) -> String {
        format!("ridge(lambda={})", self.lambda)
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let d = prompt.d;
        let mut a = vec![0.0; d * d];
        let mut w = vec![0.0; d];
        per_prefix(prompt, |p, q| {
            a.copy_from_slice(&p.g);
            (0..d).for_each(|i| a[i * d + i] += self.lambda);
            if !linalg::cholesky(&mut a, d) {
                return 0.0;
            }
            w.copy_from_slice(&p.b);
            linalg::cholesky_solve(&a, d, &mut w);
            linalg::dot(&w, q)
        })
    }
}

/// Averaging (Garg et al.): w = (1/k) sum_i y_i x_i, an unbiased estimate of w for N(0, I) inputs;
/// normalised error (d + 1)/k on dense prompts.
pub struct Averaging;

impl Baseline for Averaging {
    fn name(&self) -> String {
        "averaging".into()
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        per_prefix(prompt, |p, q| linalg::dot(&p.b, q) / p.k as f64)
    }
}

/// k-nearest neighbours (Garg et al.: 3, uniform weights): the mean target of the `neighbours`
/// closest context inputs in Euclidean distance (ties: the earlier example); with fewer examples
/// than neighbours, the mean of all.
pub struct Knn {
    pub neighbours: usize,
}

impl Baseline for Knn {
    fn name(&self) -> String {
        format!("{}-nn", self.neighbours)
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let mut dist: Vec<(f64, usize)> = Vec::with_capacity(prompt.n);
        per_prefix(prompt, |p, q| {
            dist.clear();
            dist.extend((0..p.k).map(|i| {
                let d2: f64 = p.x(i).iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                (d2, i)
            }));
            let m = self.neighbours.min(p.k);
            if m < p.k {
                dist.select_nth_unstable_by(m - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            }
            dist[..m].iter().map(|&(_, i)| p.ys[i]).sum::<f64>() / m as f64
        })
    }
}

/// scikit-learn's default tolerance of `Lasso` (`tol`).
pub const LASSO_TOL: f64 = 1e-4;
/// Coordinate-descent sweeps before a fit is reported as unconverged.
pub const LASSO_MAX_ITER: usize = 10_000;
/// Garg et al.'s LASSO grid for sparse linear regression.
pub const LASSO_ALPHAS: [f64; 5] = [1.0, 0.1, 0.01, 0.001, 0.0001];

/// Outcome of one LASSO fit.
#[derive(Clone, Debug, PartialEq)]
pub struct LassoFit {
    pub w: Vec<f64>,
    /// Coordinate-descent sweeps used.
    pub iterations: usize,
    /// The duality gap fell below tol * ||y||^2 (scikit-learn's criterion).
    pub converged: bool,
    /// Final duality gap of the k-scaled objective (1/2)||y - Xw||^2 + k alpha ||w||_1.
    pub gap: f64,
}

/// Coordinate descent on scikit-learn's LASSO objective (1/(2k))||y - X w||^2 + alpha ||w||_1 (no
/// intercept), written on the normal equations as scikit-learn's `enet_coordinate_descent_gram`
/// (cyclic order; multiplied by k the objective is (1/2)||y - Xw||^2 + k alpha ||w||_1), plus an
/// exact active-set refinement every few sweeps (see `lasso_polish`). `w` is the warm start and is updated in place; `h`
/// ([d]) is scratch for G w. Stopping rule as scikit-learn: when the largest coordinate change
/// relative to the largest coefficient is below `tol` (or at the last sweep), compute the duality
/// gap and stop if it is below tol * ||y||^2.
#[allow(clippy::too_many_arguments)]
pub fn lasso_cd(
    g: &[f64],
    b: &[f64],
    yy: f64,
    k: usize,
    alpha: f64,
    tol: f64,
    max_iter: usize,
    w: &mut [f64],
    h: &mut [f64],
) -> (usize, bool, f64) {
    let d = b.len();
    let a = alpha * k as f64;
    let tol_gap = tol * yy;
    // h = G w
    for i in 0..d {
        h[i] = linalg::dot(&g[i * d..(i + 1) * d], w);
    }
    let mut gap = f64::INFINITY;
    for iter in 0..max_iter {
        let (mut w_max, mut dw_max) = (0.0f64, 0.0f64);
        for j in 0..d {
            let gjj = g[j * d + j];
            if gjj == 0.0 {
                continue;
            }
            let old = w[j];
            let tmp = b[j] - h[j] + gjj * old;
            let new = tmp.signum() * (tmp.abs() - a).max(0.0) / gjj;
            let delta = new - old;
            if delta != 0.0 {
                w[j] = new;
                // G is symmetric: column j = row j.
                for (hi, gij) in h.iter_mut().zip(&g[j * d..(j + 1) * d]) {
                    *hi += delta * gij;
                }
            }
            dw_max = dw_max.max(delta.abs());
            w_max = w_max.max(new.abs());
        }
        if w_max == 0.0 || dw_max / w_max < tol || iter == max_iter - 1 {
            gap = lasso_gap(b, yy, a, w, h);
            if gap < tol_gap {
                return (iter + 1, true, gap);
            }
        }
        // Active-set refinement (as glmnet / skglm do): coordinate descent identifies the support
        // and signs long before the magnitudes converge (at small alpha and k < d, thousands of
        // sweeps). Every POLISH_EVERY sweeps, solve the KKT system on the current support exactly;
        // keep the result only if it is optimal (duality gap below the same tolerance), otherwise
        // carry on from the unpolished iterate.
        if (iter + 1) % POLISH_EVERY == 0 {
            let polished = lasso_try_supports(g, b, yy, k, a, w, h, tol_gap)
                .or_else(|| lasso_polish(g, b, yy, k, a, w, h, tol_gap));
            if let Some(g_polished) = polished {
                return (iter + 1, true, g_polished);
            }
        }
    }
    (max_iter, false, gap)
}

/// Sweeps between active-set refinements of [`lasso_cd`].
const POLISH_EVERY: usize = 10;

/// Tries exact solutions of the KKT system G_SS w_S = b_S - a s_S on candidate supports S with
/// signs s: the current non-zeros (signs of w), the same cut to the k largest |w_j|, and the
/// near-equicorrelation set {j : |b_j - (G w)_j| >= a (1 - 1e-3)} (signs of the correlations).
/// Accepted, updating w and h = G w, only if the signs hold and the duality gap is below `tol_gap`.
#[allow(clippy::too_many_arguments)]
fn lasso_try_supports(
    g: &[f64],
    b: &[f64],
    yy: f64,
    k: usize,
    a: f64,
    w: &mut [f64],
    h: &mut [f64],
    tol_gap: f64,
) -> Option<f64> {
    let d = b.len();
    let mut nonzero: Vec<usize> = (0..d).filter(|&j| w[j] != 0.0).collect();
    let with_w_signs = |s: &[usize]| -> Vec<(usize, f64)> { s.iter().map(|&j| (j, w[j].signum())).collect() };
    let mut candidates = vec![with_w_signs(&nonzero)];
    if nonzero.len() > k {
        nonzero.sort_by(|&i, &j| w[j].abs().total_cmp(&w[i].abs()).then(i.cmp(&j)));
        nonzero.truncate(k);
        nonzero.sort_unstable();
        candidates.push(with_w_signs(&nonzero));
    }
    candidates.push(
        (0..d)
            .filter(|&j| (b[j] - h[j]).abs() >= a * (1.0 - 1e-3))
            .map(|j| (j, (b[j] - h[j]).signum()))
            .collect(),
    );
    for cand in candidates {
        let r = cand.len();
        if r == 0 {
            continue;
        }
        let mut m = vec![0.0; r * r];
        for (p, &(i, _)) in cand.iter().enumerate() {
            for (q, &(j, _)) in cand.iter().enumerate() {
                m[p * r + q] = g[i * d + j];
            }
        }
        if !linalg::cholesky(&mut m, r) {
            continue;
        }
        let mut ws: Vec<f64> = cand.iter().map(|&(j, s)| b[j] - a * s).collect();
        linalg::cholesky_solve(&m, r, &mut ws);
        if cand.iter().zip(&ws).any(|(&(_, s), v)| v.signum() != s || *v == 0.0) {
            continue;
        }
        let mut w_new = vec![0.0; d];
        cand.iter().zip(&ws).for_each(|(&(j, _), v)| w_new[j] = *v);
        let h_new: Vec<f64> = (0..d).map(|i| linalg::dot(&g[i * d..(i + 1) * d], &w_new)).collect();
        let gap = lasso_gap(b, yy, a, &w_new, &h_new);
        if gap < tol_gap {
            w.copy_from_slice(&w_new);
            h.copy_from_slice(&h_new);
            return Some(gap);
        }
    }
    None
}

/// Active-set refinement (Osborne, Presnell & Turlach 2000, the primal active-set method for the
/// LASSO), started from the coordinate-descent iterate: keep a support S with signs s; solve the
/// KKT system G_SS z_S = b_S - a s_S; if z keeps the signs, move to it and add the coordinate whose
/// correlation |b_j - (G w)_j| most exceeds a (done when none does); otherwise step from w towards
/// z until the first coordinate reaches 0 and drop it. Finite and exact in general position; here
/// bounded to 4d steps. The result is accepted, updating w and h = G w, only if its duality gap is
/// below `tol_gap` (the same criterion as coordinate descent), so a failure costs time, never
/// accuracy. Returns the gap if accepted.
#[allow(clippy::too_many_arguments)]
fn lasso_polish(
    g: &[f64],
    b: &[f64],
    yy: f64,
    k: usize,
    a: f64,
    w: &mut [f64],
    h: &mut [f64],
    tol_gap: f64,
) -> Option<f64> {
    let d = b.len();
    // Start: the current non-zeros, at most k of them (the largest |w_j|): an underdetermined fit
    // has at most k non-zeros at the optimum, and G_SS is singular beyond k.
    let mut support: Vec<usize> = (0..d).filter(|&j| w[j] != 0.0).collect();
    support.sort_by(|&i, &j| w[j].abs().total_cmp(&w[i].abs()).then(i.cmp(&j)));
    support.truncate(k.min(d));
    let mut sign = vec![0.0; d];
    let mut x = vec![0.0; d];
    for &j in &support {
        sign[j] = w[j].signum();
        x[j] = w[j];
    }
    let mut m = Vec::new();
    for _ in 0..4 * d {
        let r = support.len();
        if r > 0 {
            m.clear();
            for &i in &support {
                m.extend(support.iter().map(|&j| g[i * d + j]));
            }
            if !linalg::cholesky(&mut m, r) {
                return None;
            }
            let mut z: Vec<f64> = support.iter().map(|&j| b[j] - a * sign[j]).collect();
            linalg::cholesky_solve(&m, r, &mut z);
            // First coordinate to cross zero on the segment x -> z.
            let mut step = (1.0, usize::MAX);
            for (p, &j) in support.iter().enumerate() {
                if z[p] * sign[j] <= 0.0 {
                    let t = x[j] / (x[j] - z[p]);
                    if t < step.0 {
                        step = (t.max(0.0), p);
                    }
                }
            }
            for (p, &j) in support.iter().enumerate() {
                x[j] += step.0 * (z[p] - x[j]);
            }
            if step.1 != usize::MAX {
                let j = support.remove(step.1);
                x[j] = 0.0;
                sign[j] = 0.0;
                continue;
            }
        }
        // x is optimal on its support: add the worst violator of |c_j| <= a, if any.
        let mut worst = (a * (1.0 + 1e-12), usize::MAX);
        for j in 0..d {
            if sign[j] == 0.0 {
                let c = b[j] - linalg::dot(&g[j * d..(j + 1) * d], &x);
                if c.abs() > worst.0 {
                    worst = (c.abs(), j);
                }
            }
        }
        if worst.1 == usize::MAX {
            let h_new: Vec<f64> = (0..d).map(|i| linalg::dot(&g[i * d..(i + 1) * d], &x)).collect();
            let gap = lasso_gap(b, yy, a, &x, &h_new);
            if gap < tol_gap {
                w.copy_from_slice(&x);
                h.copy_from_slice(&h_new);
                return Some(gap);
            }
            return None;
        }
        let j = worst.1;
        let sj = (b[j] - linalg::dot(&g[j * d..(j + 1) * d], &x)).signum();
        if support.len() < k.min(d) {
            sign[j] = sj;
            support.push(j);
            continue;
        }
        // |S| = k = rank X: x_j is in the span of X_S, so X_{S+j} has a null vector n with n_j = 1,
        // n_S = -G_SS^{-1} G_Sj. Moving x_j = t s_j, x_S += t s_j n_S keeps the residual and, j
        // being a violator, lowers the l1 norm; go until the first coordinate of S reaches 0 and
        // swap it for j (a simplex step of basis pursuit).
        let r = support.len();
        let mut n: Vec<f64> = support.iter().map(|&i| -g[i * d + j]).collect();
        m.clear();
        for &i in &support {
            m.extend(support.iter().map(|&l| g[i * d + l]));
        }
        if !linalg::cholesky(&mut m, r) {
            return None;
        }
        linalg::cholesky_solve(&m, r, &mut n);
        let mut step = (f64::INFINITY, usize::MAX);
        for (p, &i) in support.iter().enumerate() {
            let rate = sj * n[p];
            if rate * sign[i] < 0.0 {
                let t = -x[i] / rate;
                if t < step.0 {
                    step = (t.max(0.0), p);
                }
            }
        }
        if step.1 == usize::MAX {
            return None;
        }
        for (p, &i) in support.iter().enumerate() {
            x[i] += step.0 * sj * n[p];
        }
        let out = support[step.1];
        x[out] = 0.0;
        sign[out] = 0.0;
        support[step.1] = j;
        x[j] = step.0 * sj;
        sign[j] = sj;
    }
    None
}

/// Duality gap of (1/2)||y - Xw||^2 + a ||w||_1 from the normal equations (h = G w), as
/// scikit-learn computes it.
fn lasso_gap(b: &[f64], yy: f64, a: f64, w: &[f64], h: &[f64]) -> f64 {
    // X^T (y - X w) = b - h
    let dual_norm = b.iter().zip(h).map(|(b, h)| (b - h).abs()).fold(0.0, f64::max);
    let bw = linalg::dot(b, w);
    let r_norm2 = (yy + linalg::dot(w, h) - 2.0 * bw).max(0.0);
    let (constant, mut gap) = if dual_norm > a {
        let c = a / dual_norm;
        (c, 0.5 * (r_norm2 + r_norm2 * c * c))
    } else {
        (1.0, r_norm2)
    };
    let l1: f64 = w.iter().map(|v| v.abs()).sum();
    gap += a * l1 - constant * yy + constant * bw;
    gap
}

/// A LASSO fit of k examples x [k, d], y [k] from a cold start (for tests and fixtures).
pub fn lasso_fit(x: &[f64], y: &[f64], d: usize, alpha: f64, tol: f64, max_iter: usize) -> LassoFit {
    let k = y.len();
    let (mut g, mut b) = (vec![0.0; d * d], vec![0.0; d]);
    for i in 0..k {
        linalg::accumulate(&mut g, &mut b, &x[i * d..(i + 1) * d], y[i]);
    }
    let yy = linalg::dot(y, y);
    let (mut w, mut h) = (vec![0.0; d], vec![0.0; d]);
    let (iterations, converged, gap) = lasso_cd(&g, &b, yy, k, alpha, tol, max_iter, &mut w, &mut h);
    LassoFit {
        w,
        iterations,
        converged,
        gap,
    }
}

/// LASSO at one alpha, warm-started along k (the fit after k examples starts from the fit after
/// k - 1). Unconverged fits are counted and reported by [`Baseline::diagnostics`].
pub struct Lasso {
    pub alpha: f64,
    pub tol: f64,
    pub max_iter: usize,
    fits: AtomicU64,
    unconverged: AtomicU64,
}

impl Lasso {
    /// scikit-learn's tolerance ([`LASSO_TOL`]), up to [`LASSO_MAX_ITER`] sweeps.
    pub fn new(alpha: f64) -> Self {
        Lasso::with_tolerance(alpha, LASSO_TOL, LASSO_MAX_ITER)
    }

    pub fn with_tolerance(alpha: f64, tol: f64, max_iter: usize) -> Self {
        Lasso {
            alpha,
            tol,
            max_iter,
            fits: AtomicU64::new(0),
            unconverged: AtomicU64::new(0),
        }
    }

    /// (fits, unconverged fits) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.fits.load(Ordering::Relaxed),
            self.unconverged.load(Ordering::Relaxed),
        )
    }
}

impl Baseline for Lasso {
    fn name(&self) -> String {
        format!("lasso(alpha={})", self.alpha)
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let d = prompt.d;
        let (mut w, mut h) = (vec![0.0; d], vec![0.0; d]);
        let (mut fits, mut bad) = (0, 0);
        let out = per_prefix(prompt, |p, q| {
            let (_, converged, _) = lasso_cd(
                &p.g,
                &p.b,
                p.yy,
                p.k,
                self.alpha,
                self.tol,
                self.max_iter,
                &mut w,
                &mut h,
            );
            fits += 1;
            bad += u64::from(!converged);
            linalg::dot(&w, q)
        });
        self.fits.fetch_add(fits, Ordering::Relaxed);
        self.unconverged.fetch_add(bad, Ordering::Relaxed);
        out
    }

    fn diagnostics(&self) -> Vec<String> {
        let (fits, bad) = self.counts();
        if bad == 0 {
            vec![]
        } else {
            vec![format!(
                "{}: {bad} of {fits} fits did not reach duality gap < {} * ||y||^2 in {} sweeps",
                self.name(),
                self.tol,
                self.max_iter
            )]
        }
    }
}
