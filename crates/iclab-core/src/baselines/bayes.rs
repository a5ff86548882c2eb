//! Exact Bayes-optimal prediction for mixtures of linear-Gaussian classes (dense, sparse, noisy
//! linear), and the oracle that knows each prompt's class (docs/study.md, "Baselines"; Yadlowsky et
//! al.'s selection cost = mixture-Bayes error - oracle error).
//!
//! A component is w ~ N(0, tau^2 I) on a support S (all d coordinates for dense; each of the
//! C(d, nnz) supports equally likely for sparse), y = X w + N(0, sigma^2). For a support of size
//! s, with M = X_S^T X_S + (sigma^2/tau^2) I:
//!   posterior mean      m_S = M^{-1} X_S^T y
//!   log p(y | S) = -1/2 [ (y^T y - b_S^T m_S)/sigma^2 + k log sigma^2 + s log(tau^2/sigma^2)
//!                          + log det M ] + const,
//! and the Bayes prediction is sum_S p(S | y) <x_S, m_S>. Noiseless classes use
//! sigma^2 = [`NOISELESS_VAR`]: the limit sigma -> 0 concentrates the posterior on the supports
//! that interpolate the data, which this floor reproduces while staying far above the f32 rounding
//! of the targets (relative ~6e-8, so variance ~1e-14 y^2).

use super::linalg;
use super::linear::{per_prefix, Prefix};
use super::{Baseline, Role};
use crate::classes::ClassSpec;
use crate::error::ConfigError;
use crate::prompt::{Prompt, PromptStrategy};

/// Observation variance assumed for noiseless classes.
pub const NOISELESS_VAR: f64 = 1e-12;
/// Largest number of supports the exact sparse posterior enumerates.
pub const MAX_SUPPORTS: f64 = 1e6;

/// One linear-Gaussian component of a task mixture.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearPrior {
    /// Mixture weight pi.
    pub weight: f64,
    /// Number of non-zero coordinates (None: dense, all d).
    pub nnz: Option<usize>,
    /// Prior variance tau^2 of each non-zero weight.
    pub tau2: f64,
    /// Observation noise variance sigma^2 (already floored at [`NOISELESS_VAR`]).
    pub sigma2: f64,
}

impl LinearPrior {
    /// The prior of one class as prompts of `strategy` present it, if it is linear-Gaussian:
    /// scaled_y multiplies the weights (tau^2 * scale^2), noisy_y adds std^2 of noise.
    pub fn of_class(weight: f64, class: &ClassSpec, d: usize, strategy: &PromptStrategy) -> Option<Self> {
        let (nnz, tau2, class_noise) = match *class {
            ClassSpec::Dense { normalize } => (None, if normalize { 1.0 / d as f64 } else { 1.0 }, 0.0),
            ClassSpec::Sparse { nnz, normalize } => (Some(nnz), if normalize { 1.0 / nnz as f64 } else { 1.0 }, 0.0),
            ClassSpec::NoisyLinear { noise_std } => (None, 1.0, noise_std * noise_std),
            _ => return None,
        };
        let (y_scale, y_noise) = match *strategy {
            PromptStrategy::ScaledY { scale } => (scale, 0.0),
            PromptStrategy::NoisyY { std } => (1.0, std),
            _ => (1.0, 0.0),
        };
        Some(LinearPrior {
            weight,
            nnz,
            tau2: tau2 * y_scale * y_scale,
            sigma2: (class_noise + y_noise * y_noise).max(NOISELESS_VAR),
        })
    }

    /// Priors of every component of `class` (a single class is one component), if all of them are
    /// linear-Gaussian.
    pub fn of_mixture(class: &ClassSpec, d: usize, strategy: &PromptStrategy) -> Option<Vec<Self>> {
        class
            .components()
            .into_iter()
            .map(|(w, c)| LinearPrior::of_class(w, c, d, strategy))
            .collect()
    }
}

/// C(n, r) as f64 (exact for the sizes that pass [`MAX_SUPPORTS`]).
pub fn binomial(n: usize, r: usize) -> f64 {
    if r > n {
        return 0.0;
    }
    let r = r.min(n - r);
    (0..r).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// All r-subsets of 0..n in lexicographic order, flattened ([C(n, r), r]).
fn subsets(n: usize, r: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut s: Vec<usize> = (0..r).collect();
    if r > n {
        return out;
    }
    loop {
        out.extend_from_slice(&s);
        // Advance the rightmost index that can move.
        let mut i = r;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            if s[i] < n - r + i {
                break;
            }
            if i == 0 {
                return out;
            }
        }
        s[i] += 1;
        for j in i + 1..r {
            s[j] = s[j - 1] + 1;
        }
    }
}

/// Reusable buffers of [`support_posterior`].
#[derive(Default)]
struct Scratch {
    m: Vec<f64>,
    a: Vec<f64>,
}

/// Log evidence log p(y | S) (up to the constant -k/2 log 2 pi) and prediction <x_S, m_S> of the
/// posterior on support `s` (indices into 0..d) given the first k examples of `p`.
///
/// Two algebraically equal forms, each used where it is well conditioned with sigma^2 -> 0:
/// - k > s (weight space): M = G_SS + (sigma^2/tau^2) I, m = M^{-1} b_S,
///   log p = -1/2 [(yy - b_S^T m)/sigma^2 + k log sigma^2 + s log(tau^2/sigma^2) + log det M];
///   closed form for s = 1, 2 (the bulk of the dense + sparse(2) work).
/// - k <= s (function space): K = tau^2 X_S X_S^T + sigma^2 I [k, k], a = K^{-1} y,
///   log p = -1/2 [y^T a + log det K], prediction tau^2 <x_S, X_S^T a>. Here M is singular up to
///   sigma^2 and yy - b^T m would cancel catastrophically.
fn support_posterior(p: &Prefix, s: &[usize], tau2: f64, sigma2: f64, q: &[f64], sc: &mut Scratch) -> (f64, f64) {
    let (d, r, k) = (p.d, s.len(), p.k);
    let (g, b, yy) = (&p.g, &p.b, p.yy);
    if k <= r {
        sc.a.clear();
        for i in 0..k {
            let xi = p.x(i);
            for j in 0..k {
                let xj = p.x(j);
                let dot: f64 = s.iter().map(|&c| xi[c] * xj[c]).sum();
                sc.a.push(tau2 * dot + if i == j { sigma2 } else { 0.0 });
            }
        }
        if !linalg::cholesky(&mut sc.a, k) {
            return (f64::NEG_INFINITY, 0.0);
        }
        sc.m.clear();
        sc.m.extend_from_slice(&p.ys[..k]);
        linalg::cholesky_solve(&sc.a, k, &mut sc.m);
        let quad = linalg::dot(&p.ys[..k], &sc.m);
        let logdet = 2.0 * (0..k).map(|i| sc.a[i * k + i].ln()).sum::<f64>();
        let pred: f64 = (0..k)
            .map(|i| sc.m[i] * s.iter().map(|&c| p.x(i)[c] * q[c]).sum::<f64>())
            .sum::<f64>()
            * tau2;
        return (-0.5 * (quad + logdet), pred);
    }
    let ratio = sigma2 / tau2;
    let shared = k as f64 * sigma2.ln() + r as f64 * (tau2 / sigma2).ln();
    if r == 1 {
        let i = s[0];
        let m00 = g[i * d + i] + ratio;
        let m = b[i] / m00;
        return (-0.5 * ((yy - b[i] * m).max(0.0) / sigma2 + shared + m00.ln()), q[i] * m);
    }
    if r == 2 {
        let (i, j) = (s[0], s[1]);
        let (m00, m01, m11) = (g[i * d + i] + ratio, g[i * d + j], g[j * d + j] + ratio);
        let det = m00 * m11 - m01 * m01;
        if det > 0.0 {
            let (mi, mj) = ((m11 * b[i] - m01 * b[j]) / det, (m00 * b[j] - m01 * b[i]) / det);
            let quad = (yy - b[i] * mi - b[j] * mj).max(0.0) / sigma2;
            return (-0.5 * (quad + shared + det.ln()), q[i] * mi + q[j] * mj);
        }
    }
    sc.a.clear();
    for &i in s {
        sc.a.extend(s.iter().map(|&j| g[i * d + j]));
    }
    (0..r).for_each(|i| sc.a[i * r + i] += ratio);
    if !linalg::cholesky(&mut sc.a, r) {
        return (f64::NEG_INFINITY, 0.0);
    }
    sc.m.clear();
    sc.m.extend(s.iter().map(|&i| b[i]));
    linalg::cholesky_solve(&sc.a, r, &mut sc.m);
    let b_m: f64 = s.iter().zip(&sc.m).map(|(&i, m)| b[i] * m).sum();
    let quad = (yy - b_m).max(0.0) / sigma2;
    // log det M = 2 log prod L_ii (one logarithm instead of r).
    let logdet = 2.0 * (0..r).map(|i| sc.a[i * r + i]).product::<f64>().ln();
    let pred = s.iter().zip(&sc.m).map(|(&i, m)| q[i] * m).sum();
    (-0.5 * (quad + shared + logdet), pred)
}

/// The exact Bayes-optimal predictor (posterior mean of y at the query) for a mixture of
/// linear-Gaussian classes: dense components integrate over w, sparse components additionally over
/// every support of size nnz.
pub struct MixtureBayes {
    pub name: String,
    d: usize,
    /// (log prior weight of one support, component) per component.
    components: Vec<LinearPrior>,
    /// Supports of each component, flattened [count, nnz] (dense: the single support 0..d).
    supports: Vec<Vec<usize>>,
}

impl MixtureBayes {
    /// Refuses (naming the component's nnz) when a sparse component has more than [`MAX_SUPPORTS`]
    /// supports to enumerate.
    pub fn new(name: impl Into<String>, components: Vec<LinearPrior>, d: usize) -> Result<Self, ConfigError> {
        let mut supports = Vec::new();
        for (i, c) in components.iter().enumerate() {
            match c.nnz {
                None => supports.push((0..d).collect()),
                Some(nnz) => {
                    if nnz == 0 || nnz > d {
                        return Err(ConfigError::new(
                            format!("classes[{i}].nnz"),
                            nnz,
                            format!("an integer in 1..={d}"),
                        ));
                    }
                    let count = binomial(d, nnz);
                    if count > MAX_SUPPORTS {
                        return Err(ConfigError::new(
                            format!("classes[{i}].nnz"),
                            nnz,
                            format!(
                                "a sparsity whose C(d={d}, nnz) supports the exact Bayes predictor can enumerate \
                                 (C = {count:.3e} > {MAX_SUPPORTS:e}); use a smaller d or nnz"
                            ),
                        ));
                    }
                    supports.push(subsets(d, nnz));
                }
            }
        }
        Ok(MixtureBayes {
            name: name.into(),
            d,
            components,
            supports,
        })
    }
}

impl Baseline for MixtureBayes {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn role(&self) -> Role {
        Role::Bayes
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        assert_eq!(prompt.d, self.d, "Bayes predictor built for d = {}", self.d);
        let mut sc = Scratch::default();
        // (log posterior weight, prediction) of every support of every component.
        let mut terms: Vec<(f64, f64)> = Vec::new();
        per_prefix(prompt, |p, q| {
            terms.clear();
            for (c, sup) in self.components.iter().zip(&self.supports) {
                if c.weight <= 0.0 {
                    continue;
                }
                let r = c.nnz.unwrap_or(self.d);
                let count = sup.len() / r;
                // Prior weight of one support.
                let log_prior = c.weight.ln() - (count as f64).ln();
                for s in sup.chunks_exact(r) {
                    let (log_ev, pred) = support_posterior(p, s, c.tau2, c.sigma2, q, &mut sc);
                    terms.push((log_prior + log_ev, pred));
                }
            }
            let max = terms.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
            if !max.is_finite() {
                return 0.0;
            }
            let (mut num, mut den) = (0.0, 0.0);
            for &(lw, pred) in &terms {
                let w = (lw - max).exp();
                num += w * pred;
                den += w;
            }
            num / den
        })
    }
}

/// The oracle that knows each prompt's class (its mixture component) and, for a sparse class, its
/// support: the posterior mean of that class alone (least squares on the true support for
/// noiseless sparse prompts, minimum-norm least squares for noiseless dense prompts).
pub struct ClassOracle {
    d: usize,
    components: Vec<LinearPrior>,
}

impl ClassOracle {
    pub fn new(components: Vec<LinearPrior>, d: usize) -> Self {
        ClassOracle { d, components }
    }
}

impl Baseline for ClassOracle {
    fn name(&self) -> String {
        "oracle(class known)".into()
    }

    fn role(&self) -> Role {
        Role::Oracle
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let c = &self.components[prompt.component];
        let support: Vec<usize> = match (c.nnz, prompt.function.linear_weights()) {
            (Some(_), Some(w)) => (0..self.d).filter(|&i| w[i] != 0.0).collect(),
            _ => (0..self.d).collect(),
        };
        let mut sc = Scratch::default();
        per_prefix(prompt, |p, q| {
            support_posterior(p, &support, c.tau2, c.sigma2, q, &mut sc).1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_enumerates_every_support_once_in_order() {
        let s = subsets(5, 2);
        assert_eq!(s.len() / 2, 10);
        assert_eq!(&s[..6], &[0, 1, 0, 2, 0, 3]);
        assert_eq!(&s[s.len() - 2..], &[3, 4]);
        assert_eq!(subsets(4, 4), vec![0, 1, 2, 3]);
        assert_eq!(subsets(3, 1), vec![0, 1, 2]);
        assert_eq!(binomial(20, 2), 190.0);
        assert_eq!(binomial(40, 20), 137846528820.0);
    }

    #[test]
    fn too_many_supports_is_a_clear_error() {
        let c = LinearPrior {
            weight: 1.0,
            nnz: Some(20),
            tau2: 1.0,
            sigma2: NOISELESS_VAR,
        };
        let e = MixtureBayes::new("b", vec![c], 40).err().expect("refused");
        assert_eq!(e.field, "classes[0].nnz");
        assert!(e.allowed.contains("1.378e11"), "{e}");
    }
}
