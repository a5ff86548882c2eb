//! Prompts: n points (x_i, f(x_i)) of one function, and the input distributions and Garg et al.'s
//! out-of-distribution prompt strategies that produce them (docs/study.md, "Prompts" and "Input
//! distributions").

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::classes::{ClassSpec, Function};
use crate::error::{check_positive, check_range, ConfigError, Valid};
use crate::rng::{self, Purpose, Rng, Sub};

fn one() -> f64 {
    1.0
}

/// How the x's (and, for the y-strategies, the y's) of a prompt are drawn. Queries are the points
/// whose y is predicted: by default query k is x_{k+1} itself; the query strategies replace it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PromptStrategy {
    /// x ~ N(0, I_d).
    #[default]
    Isotropic,
    /// x ~ N(0, S), S = Q diag(lambda) Q^T with lambda_i proportional to 1/i, trace d, Q a random
    /// rotation fixed by the geometry seed (Garg et al., "skewed covariance").
    Skewed,
    /// x ~ N(0, scale^2 I).
    ScaledX {
        #[serde(default = "one")]
        scale: f64,
    },
    /// y multiplied by `scale` (the function is unchanged).
    ScaledY {
        #[serde(default = "one")]
        scale: f64,
    },
    /// N(0, std^2) noise added to every y, context and query alike.
    NoisyY {
        #[serde(default = "one")]
        std: f64,
    },
    /// x in a random d/2-dimensional subspace (fixed by the geometry seed), variance 2 along it so
    /// that the trace is d (Garg et al., "half subspace").
    HalfSubspace,
    /// Context points all in one random orthant (|x| times a per-prompt sign pattern); queries are
    /// ordinary N(0, I) points (Garg et al., "random quadrants").
    RandomQuadrants,
    /// Query k is x_{k+1} projected orthogonally to x_1..x_k and rescaled to its original norm
    /// (Garg et al.); for k >= d no such direction exists and the query is x_{k+1}.
    OrthogonalQuery,
    /// Query k is one of x_1..x_k chosen uniformly (Garg et al.); query 0 is x_1.
    OverlappingQuery,
}

impl PromptStrategy {
    pub fn name(&self) -> String {
        match self {
            PromptStrategy::Isotropic => "isotropic".into(),
            PromptStrategy::Skewed => "skewed".into(),
            PromptStrategy::ScaledX { scale } => format!("scaled_x({scale})"),
            PromptStrategy::ScaledY { scale } => format!("scaled_y({scale})"),
            PromptStrategy::NoisyY { std } => format!("noisy_y({std})"),
            PromptStrategy::HalfSubspace => "half_subspace".into(),
            PromptStrategy::RandomQuadrants => "random_quadrants".into(),
            PromptStrategy::OrthogonalQuery => "orthogonal_query".into(),
            PromptStrategy::OverlappingQuery => "overlapping_query".into(),
        }
    }

    pub fn validate(&self) -> Valid {
        match *self {
            PromptStrategy::ScaledX { scale } | PromptStrategy::ScaledY { scale } => check_positive("scale", scale),
            PromptStrategy::NoisyY { std } => check_range("std", std, 0.0, f64::MAX),
            _ => Ok(()),
        }
    }

    /// Every strategy with its default parameters (for `iclab classes`).
    pub fn catalogue() -> Vec<PromptStrategy> {
        vec![
            PromptStrategy::Isotropic,
            PromptStrategy::Skewed,
            PromptStrategy::ScaledX { scale: 2.0 },
            PromptStrategy::ScaledY { scale: 2.0 },
            PromptStrategy::NoisyY { std: 1.0 },
            PromptStrategy::HalfSubspace,
            PromptStrategy::RandomQuadrants,
            PromptStrategy::OrthogonalQuery,
            PromptStrategy::OverlappingQuery,
        ]
    }
}

/// Per-k replacement queries: query k is (xs[k], ys[k]) in place of (x_{k+1}, y_{k+1}).
#[derive(Clone, Debug, PartialEq)]
pub struct Queries {
    /// [n, d]
    pub xs: Vec<f32>,
    /// [n]
    pub ys: Vec<f32>,
}

/// One prompt: n points of one function f.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    pub d: usize,
    pub n: usize,
    /// Context inputs x_1..x_n, [n, d] row-major.
    pub xs: Vec<f32>,
    /// Context targets y_1..y_n, [n].
    pub ys: Vec<f32>,
    /// Query replacements of the out-of-distribution query strategies (None: query k = x_{k+1}).
    pub queries: Option<Queries>,
    /// Index of the mixture component f was drawn from (0 for a single class).
    pub component: usize,
    /// The function itself (for oracles and plots).
    pub function: Function,
}

impl Prompt {
    /// x_{i+1} (0-based i).
    #[inline]
    pub fn x(&self, i: usize) -> &[f32] {
        &self.xs[i * self.d..(i + 1) * self.d]
    }

    /// The first k examples: ([k, d] inputs, [k] targets).
    #[inline]
    pub fn context(&self, k: usize) -> (&[f32], &[f32]) {
        (&self.xs[..k * self.d], &self.ys[..k])
    }

    /// The query after k examples and its target: x_{k+1}, y_{k+1} unless a strategy replaced it.
    #[inline]
    pub fn query(&self, k: usize) -> (&[f32], f32) {
        match &self.queries {
            Some(q) => (&q.xs[k * self.d..(k + 1) * self.d], q.ys[k]),
            None => (self.x(k), self.ys[k]),
        }
    }
}

/// Prompts of one task distribution and one prompt strategy in dimension d. Holds the fixed
/// geometry (rotations, subspaces) so that it is drawn once, from the geometry seed.
#[derive(Clone, Debug)]
pub struct PromptSampler {
    pub class: ClassSpec,
    pub strategy: PromptStrategy,
    pub d: usize,
    /// x = transform * z for z ~ N(0, I) ([d, d] row-major), for skewed and half-subspace inputs.
    transform: Option<Vec<f64>>,
}

/// A random rotation: Gram-Schmidt on a Gaussian matrix ([d, d] row-major, orthonormal rows).
fn random_rotation(rng: &mut Rng, d: usize) -> Vec<f64> {
    let mut q = vec![0.0; d * d];
    for i in 0..d {
        loop {
            let mut v: Vec<f64> = (0..d).map(|_| rng::normal(rng)).collect();
            for j in 0..i {
                let row = &q[j * d..(j + 1) * d];
                let p: f64 = v.iter().zip(row).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(row).for_each(|(a, b)| *a -= p * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-6 {
                q[i * d..(i + 1) * d]
                    .iter_mut()
                    .zip(&v)
                    .for_each(|(a, b)| *a = b / norm);
                break;
            }
        }
    }
    q
}

/// Q^T diag(sqrt(lambda)) with lambda scaled to trace d: x = T z has covariance Q^T diag(lambda) Q.
fn covariance_transform(rng: &mut Rng, d: usize, eigenvalues: &[f64]) -> Vec<f64> {
    let q = random_rotation(rng, d);
    let total: f64 = eigenvalues.iter().sum();
    let scale = d as f64 / total;
    let mut t = vec![0.0; d * d];
    for r in 0..d {
        for c in 0..d {
            // T[r][c] = Q[c][r] * sqrt(lambda_c)
            t[r * d + c] = q[c * d + r] * (eigenvalues[c] * scale).sqrt();
        }
    }
    t
}

impl PromptSampler {
    /// Validates the class and strategy against `d` and draws the fixed geometry from
    /// `geometry_seed`.
    pub fn new(class: ClassSpec, strategy: PromptStrategy, d: usize, geometry_seed: u64) -> Result<Self, ConfigError> {
        if d < 1 {
            return Err(ConfigError::new("d", d, "an integer >= 1"));
        }
        class.validate(d).map_err(|e| e.within("class"))?;
        strategy.validate().map_err(|e| e.within("inputs"))?;
        let mut rng = rng::stream(geometry_seed, Purpose::Geometry, 0);
        let transform = match strategy {
            PromptStrategy::Skewed => {
                let lambda: Vec<f64> = (1..=d).map(|i| 1.0 / i as f64).collect();
                Some(covariance_transform(&mut rng, d, &lambda))
            }
            PromptStrategy::HalfSubspace => {
                let lambda: Vec<f64> = (0..d).map(|i| if i < d.div_ceil(2) { 1.0 } else { 0.0 }).collect();
                Some(covariance_transform(&mut rng, d, &lambda))
            }
            _ => None,
        };
        Ok(PromptSampler {
            class,
            strategy,
            d,
            transform,
        })
    }

    /// Draws x (length d, zero past `active`) into `out`.
    fn draw_x(&self, rng: &mut Rng, active: usize, out: &mut [f32]) {
        let d = self.d;
        let mut z: Vec<f64> = (0..d)
            .map(|i| if i < active { rng::normal(rng) } else { 0.0 })
            .collect();
        match (&self.strategy, &self.transform) {
            (_, Some(t)) => {
                let x: Vec<f64> = (0..d).map(|r| (0..d).map(|c| t[r * d + c] * z[c]).sum()).collect();
                z = x;
                // Keep the curriculum's promise: coordinates beyond the active dimension are zero.
                z[active..].iter_mut().for_each(|v| *v = 0.0);
            }
            (PromptStrategy::ScaledX { scale }, None) => z.iter_mut().for_each(|v| *v *= scale),
            _ => {}
        }
        out.iter_mut().zip(&z).for_each(|(o, v)| *o = *v as f32);
    }

    /// Prompt `index` of stream (seed, purpose): n points, `active` non-zero coordinates.
    /// Deterministic in its arguments alone; prompts with larger n extend those with smaller n.
    pub fn prompt(&self, seed: u64, purpose: Purpose, index: u64, n: usize, active: usize) -> Prompt {
        let d = self.d;
        let active = active.clamp(1, d);
        let component = self
            .class
            .sample_component(&mut rng::substream(seed, purpose, index, Sub::Component));
        let class = match &self.class {
            ClassSpec::Mixture { classes, .. } => &classes[component],
            c => c,
        };
        let function = class.sample(&mut rng::substream(seed, purpose, index, Sub::Function), d, active);
        let mut xs = vec![0f32; n * d];
        let mut rx = rng::substream(seed, purpose, index, Sub::Inputs);
        for row in xs.chunks_exact_mut(d) {
            self.draw_x(&mut rx, active, row);
        }
        let mut rq = rng::substream(seed, purpose, index, Sub::Queries);
        let mut query_xs: Option<Vec<f32>> = None;
        match self.strategy {
            PromptStrategy::RandomQuadrants => {
                let pattern: Vec<f32> = (0..d)
                    .map(|_| if rng::uniform(&mut rq) < 0.5 { -1.0 } else { 1.0 })
                    .collect();
                // Queries: the ordinary points; context: the same points folded into one orthant.
                query_xs = Some(xs.clone());
                for row in xs.chunks_exact_mut(d) {
                    row.iter_mut().zip(&pattern).for_each(|(v, s)| *v = v.abs() * s);
                }
            }
            PromptStrategy::OrthogonalQuery => {
                let mut q = xs.clone();
                // Orthonormal basis of span(x_1..x_k), grown one point at a time.
                let mut basis: Vec<Vec<f64>> = Vec::new();
                for k in 0..n.min(d) {
                    if k > 0 {
                        let mut v: Vec<f64> = xs[(k - 1) * d..k * d].iter().map(|&v| v as f64).collect();
                        for b in &basis {
                            let p: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                            v.iter_mut().zip(b).for_each(|(a, b)| *a -= p * b);
                        }
                        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                        if norm > 1e-9 {
                            basis.push(v.iter().map(|a| a / norm).collect());
                        }
                    }
                    let x: Vec<f64> = xs[k * d..(k + 1) * d].iter().map(|&v| v as f64).collect();
                    let mut v = x.clone();
                    for b in &basis {
                        let p: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                        v.iter_mut().zip(b).for_each(|(a, b)| *a -= p * b);
                    }
                    let (n0, n1) = (
                        x.iter().map(|a| a * a).sum::<f64>().sqrt(),
                        v.iter().map(|a| a * a).sum::<f64>().sqrt(),
                    );
                    if n1 > 1e-9 {
                        for (o, a) in q[k * d..(k + 1) * d].iter_mut().zip(&v) {
                            *o = (a * n0 / n1) as f32;
                        }
                    }
                }
                query_xs = Some(q);
            }
            PromptStrategy::OverlappingQuery => {
                let mut q = xs.clone();
                for k in 1..n {
                    let j = rng::index(&mut rq, k);
                    q.copy_within(j * d..(j + 1) * d, k * d);
                }
                query_xs = Some(q);
            }
            _ => {}
        }
        let (y_scale, y_noise) = match self.strategy {
            PromptStrategy::ScaledY { scale } => (scale, 0.0),
            PromptStrategy::NoisyY { std } => (1.0, std),
            _ => (1.0, 0.0),
        };
        let noise_std = (function.noise_std().powi(2) + y_noise * y_noise).sqrt();
        let mut rn = rng::substream(seed, purpose, index, Sub::Noise);
        let mut label = |x: &[f32]| -> f32 {
            let mut y = function.eval(x) * y_scale;
            if noise_std > 0.0 {
                y += noise_std * rng::normal(&mut rn);
            }
            y as f32
        };
        let ys: Vec<f32> = xs.chunks_exact(d).map(&mut label).collect();
        let queries = query_xs.map(|qx| {
            // Queries equal to a context point reuse its label (noise included) so that an
            // overlapping query really is a repeated example.
            let qy = qx
                .chunks_exact(d)
                .enumerate()
                .map(|(k, x)| match xs.chunks_exact(d).position(|c| c == x) {
                    Some(j) if j <= k => ys[j],
                    _ => label(x),
                })
                .collect();
            Queries { xs: qx, ys: qy }
        });
        Prompt {
            d,
            n,
            xs,
            ys,
            queries,
            component,
            function,
        }
    }

    /// `count` prompts of stream (seed, purpose), indices 0..count, in parallel (the result does
    /// not depend on the thread count: prompt i depends on i alone).
    pub fn prompts(&self, seed: u64, purpose: Purpose, count: usize, n: usize, active: usize) -> Vec<Prompt> {
        (0..count as u64)
            .into_par_iter()
            .map(|i| self.prompt(seed, purpose, i, n, active))
            .collect()
    }

    /// A training batch: prompts first..first+b of stream (seed, purpose).
    pub fn batch(&self, seed: u64, purpose: Purpose, first: u64, b: usize, n: usize, active: usize) -> PromptBatch {
        let prompts: Vec<Prompt> = (first..first + b as u64)
            .map(|i| self.prompt(seed, purpose, i, n, active))
            .collect();
        PromptBatch::from_prompts(&prompts)
    }

    /// E[y^2] of the targets (queries included) under this strategy with `active` coordinates:
    /// the closed form of the class where the strategy keeps the isotropic marginals, otherwise a
    /// fixed-seed Monte Carlo estimate over 20,000 functions (deterministic).
    pub fn expected_y2(&self, active: usize) -> f64 {
        let base = self.class.expected_y2(active.clamp(1, self.d));
        match self.strategy {
            PromptStrategy::Isotropic
            | PromptStrategy::RandomQuadrants
            | PromptStrategy::OrthogonalQuery
            | PromptStrategy::OverlappingQuery => base,
            PromptStrategy::ScaledY { scale } => base * scale * scale,
            PromptStrategy::NoisyY { std } => base + std * std,
            PromptStrategy::ScaledX { .. } | PromptStrategy::Skewed | PromptStrategy::HalfSubspace => {
                let draws = 20_000u64;
                let total: f64 = (0..draws)
                    .into_par_iter()
                    .map(|i| {
                        let p = self.prompt(0x5eed, Purpose::Test, i, 1, active);
                        (p.ys[0] as f64).powi(2)
                    })
                    .sum();
                total / draws as f64
            }
        }
    }
}

/// A batch of b prompts of n points, flattened for the model.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptBatch {
    pub b: usize,
    pub n: usize,
    pub d: usize,
    /// [b, n, d]
    pub xs: Vec<f32>,
    /// [b, n]
    pub ys: Vec<f32>,
}

impl PromptBatch {
    pub fn from_prompts(prompts: &[Prompt]) -> Self {
        let (n, d) = prompts.first().map(|p| (p.n, p.d)).unwrap_or((0, 0));
        let mut xs = Vec::with_capacity(prompts.len() * n * d);
        let mut ys = Vec::with_capacity(prompts.len() * n);
        for p in prompts {
            assert_eq!((p.n, p.d), (n, d), "prompts of one batch share n and d");
            xs.extend_from_slice(&p.xs);
            ys.extend_from_slice(&p.ys);
        }
        PromptBatch {
            b: prompts.len(),
            n,
            d,
            xs,
            ys,
        }
    }
}
