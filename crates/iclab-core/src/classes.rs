//! Function classes (docs/study.md, "Function classes").
//!
//! A [`ClassSpec`] is the typed, serialisable description of a task distribution D(F) (what a TOML
//! file holds); [`ClassSpec::sample`] draws one function f from it, once per prompt.

use serde::{Deserialize, Serialize};

use crate::error::{check_at_least, check_positive, check_range, ConfigError, Valid};
use crate::rng::{self, Rng};

/// Distribution of the sinusoid's angular frequency omega: configurable, with rare extremes
/// (default: log-normal around 1; docs/study.md, "Function classes").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrequencyDist {
    /// omega = median * exp(sigma * z), z ~ N(0, 1).
    LogNormal { median: f64, sigma: f64 },
    /// omega uniform in [lo, hi].
    Uniform { lo: f64, hi: f64 },
    /// A single frequency (evaluation sweeps, E6).
    Fixed { omega: f64 },
}

impl Default for FrequencyDist {
    fn default() -> Self {
        FrequencyDist::LogNormal {
            median: 1.0,
            sigma: 0.5,
        }
    }
}

impl FrequencyDist {
    fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            FrequencyDist::LogNormal { median, sigma } => median * (sigma * rng::normal(rng)).exp(),
            FrequencyDist::Uniform { lo, hi } => lo + (hi - lo) * rng::uniform(rng),
            FrequencyDist::Fixed { omega } => omega,
        }
    }

    fn validate(&self) -> Valid {
        match *self {
            FrequencyDist::LogNormal { median, sigma } => {
                check_positive("median", median)?;
                check_range("sigma", sigma, 0.0, 10.0)
            }
            FrequencyDist::Uniform { lo, hi } => {
                check_range("lo", lo, 0.0, f64::MAX)?;
                if !(hi.is_finite() && hi >= lo) {
                    return Err(ConfigError::new("hi", hi, format!("a finite number >= lo ({lo})")));
                }
                Ok(())
            }
            FrequencyDist::Fixed { omega } => check_range("omega", omega, 0.0, f64::MAX),
        }
    }
}

fn default_nnz() -> usize {
    2
}
fn default_noise() -> f64 {
    1.0
}
fn default_hidden() -> usize {
    100
}
fn default_depth() -> usize {
    4
}
fn default_amplitude() -> f64 {
    std::f64::consts::SQRT_2
}
/// The convex class's default first component: unit-variance dense, so neither component
/// dominates E[y^2] at d = 1 (docs/study.md, "Function classes").
fn default_first() -> Box<ClassSpec> {
    Box::new(ClassSpec::Dense { normalize: true })
}
fn default_second() -> Box<ClassSpec> {
    Box::new(ClassSpec::Sinusoid {
        frequency: FrequencyDist::default(),
        amplitude: default_amplitude(),
    })
}
fn default_alpha() -> f64 {
    0.5
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// Every class name, in the order `iclab classes` lists them. A new class is a variant of
/// [`ClassSpec`] (its parameters and their serde defaults), its sampler and E[y^2] below, its
/// [`ClassSpec::description`], and its name here; docs/architecture.md walks through one.
pub const CLASS_NAMES: [&str; 10] = [
    "dense",
    "sparse",
    "noisy_linear",
    "quadratic",
    "relu_net",
    "decision_tree",
    "sinusoid",
    "linear_classification",
    "convex",
    "mixture",
];

/// A task distribution: one named, parameterised function class, a convex combination of two, or a
/// weighted mixture sampled per prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClassSpec {
    /// f(x) = <w, x>, w ~ N(0, I) on the active coordinates. E[y^2] = d (1 if `normalize`).
    Dense {
        #[serde(default, skip_serializing_if = "is_false")]
        normalize: bool,
    },
    /// Dense with all but `nnz` coordinates (uniform support inside the active dimension) zero.
    /// E[y^2] = nnz (1 if `normalize`).
    Sparse {
        #[serde(default = "default_nnz")]
        nnz: usize,
        #[serde(default, skip_serializing_if = "is_false")]
        normalize: bool,
    },
    /// Dense plus N(0, noise_std^2) noise on every y. E[y^2] = d + noise_std^2.
    NoisyLinear {
        #[serde(default = "default_noise")]
        noise_std: f64,
    },
    /// Garg et al.: f(x) = <w, x * x> / sqrt(3), w ~ N(0, I). E[y^2] = d.
    Quadratic,
    /// Garg et al.: f(x) = sqrt(2/h) * sum_j a_j relu(<W_j, x>), W, a ~ N(0, 1). E[y^2] = d.
    ReluNet {
        #[serde(default = "default_hidden")]
        hidden: usize,
    },
    /// Garg et al.: a full binary tree of depth `depth`; each internal node tests x[c] > 0 for a
    /// uniform active coordinate c, leaves hold N(0, 1) values. E[y^2] = 1.
    DecisionTree {
        #[serde(default = "default_depth")]
        depth: usize,
    },
    /// f(x) = A sin(omega <u, x> + phi), u uniform on the unit sphere of the active coordinates,
    /// phi ~ U[0, 2 pi), omega ~ `frequency`. E[y^2] = A^2 / 2 (1 for the default A = sqrt 2).
    Sinusoid {
        #[serde(default)]
        frequency: FrequencyDist,
        #[serde(default = "default_amplitude")]
        amplitude: f64,
    },
    /// y = sign(<w, x>), w ~ N(0, I). E[y^2] = 1.
    LinearClassification,
    /// f = alpha f_1 + (1 - alpha) f_2, f_1 and f_2 drawn independently.
    /// E[y^2] = alpha^2 E_1 + (1 - alpha)^2 E_2 (both classes are zero-mean).
    Convex {
        #[serde(default = "default_alpha")]
        alpha: f64,
        #[serde(default = "default_first")]
        first: Box<ClassSpec>,
        #[serde(default = "default_second")]
        second: Box<ClassSpec>,
    },
    /// D(F) = sum_k weights[k] D(classes[k]); the class is drawn per prompt.
    Mixture { weights: Vec<f64>, classes: Vec<ClassSpec> },
}

/// One function drawn from a class. Linear maps hold their weights so that oracles (a least-squares
/// fit on the true support, the Bayes predictor) can be checked against the truth.
#[derive(Clone, Debug, PartialEq)]
pub enum Function {
    Linear {
        w: Vec<f64>,
    },
    NoisyLinear {
        w: Vec<f64>,
        noise_std: f64,
    },
    Quadratic {
        w: Vec<f64>,
    },
    /// w1: [hidden, d] row-major, a: [hidden], scale sqrt(2/h).
    ReluNet {
        w1: Vec<f64>,
        a: Vec<f64>,
        scale: f64,
    },
    /// coords: [2^depth - 1] internal nodes in heap order, leaves: [2^depth].
    DecisionTree {
        depth: usize,
        coords: Vec<usize>,
        leaves: Vec<f64>,
    },
    Sinusoid {
        amplitude: f64,
        omega: f64,
        u: Vec<f64>,
        phi: f64,
    },
    LinearClassification {
        w: Vec<f64>,
    },
    Convex {
        alpha: f64,
        first: Box<Function>,
        second: Box<Function>,
    },
}

impl Function {
    /// The noiseless value f(x).
    pub fn eval(&self, x: &[f32]) -> f64 {
        let dot = |w: &[f64]| -> f64 { w.iter().zip(x).map(|(w, &x)| w * x as f64).sum() };
        match self {
            Function::Linear { w } | Function::NoisyLinear { w, .. } => dot(w),
            Function::Quadratic { w } => {
                w.iter().zip(x).map(|(w, &x)| w * (x as f64) * (x as f64)).sum::<f64>() / 3f64.sqrt()
            }
            Function::ReluNet { w1, a, scale } => {
                let d = x.len();
                let mut s = 0.0;
                for (row, aj) in w1.chunks_exact(d).zip(a) {
                    let z: f64 = row.iter().zip(x).map(|(w, &x)| w * x as f64).sum();
                    s += aj * z.max(0.0);
                }
                scale * s
            }
            Function::DecisionTree { depth, coords, leaves } => {
                let mut node = 0usize;
                for _ in 0..*depth {
                    node = 2 * node + 1 + usize::from(x[coords[node]] > 0.0);
                }
                leaves[node - coords.len()]
            }
            Function::Sinusoid {
                amplitude,
                omega,
                u,
                phi,
            } => amplitude * (omega * dot(u) + phi).sin(),
            Function::LinearClassification { w } => {
                if dot(w) >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
            Function::Convex { alpha, first, second } => alpha * first.eval(x) + (1.0 - alpha) * second.eval(x),
        }
    }

    /// Standard deviation of the additive observation noise on y (0 for noiseless classes).
    pub fn noise_std(&self) -> f64 {
        match self {
            Function::NoisyLinear { noise_std, .. } => *noise_std,
            Function::Convex { alpha, first, second } => {
                let (a, b) = (alpha * first.noise_std(), (1.0 - alpha) * second.noise_std());
                (a * a + b * b).sqrt()
            }
            _ => 0.0,
        }
    }

    /// The weight vector of a linear function (dense, sparse or noisy), if it is one.
    pub fn linear_weights(&self) -> Option<&[f64]> {
        match self {
            Function::Linear { w } | Function::NoisyLinear { w, .. } => Some(w),
            _ => None,
        }
    }
}

/// A standard normal vector of length `d` whose coordinates past `active` are zero.
fn gaussian(rng: &mut Rng, d: usize, active: usize) -> Vec<f64> {
    (0..d)
        .map(|i| if i < active { rng::normal(rng) } else { 0.0 })
        .collect()
}

impl ClassSpec {
    /// Short display name, e.g. `sparse(nnz=2)` or `mixture(0.5 dense, 0.5 sparse(nnz=2))`.
    pub fn name(&self) -> String {
        match self {
            ClassSpec::Dense { normalize: false } => "dense".into(),
            ClassSpec::Dense { normalize: true } => "dense(unit)".into(),
            ClassSpec::Sparse { nnz, normalize } => {
                format!("sparse(nnz={nnz}{})", if *normalize { ",unit" } else { "" })
            }
            ClassSpec::NoisyLinear { noise_std } => format!("noisy_linear(noise_std={noise_std})"),
            ClassSpec::Quadratic => "quadratic".into(),
            ClassSpec::ReluNet { hidden } => format!("relu_net(hidden={hidden})"),
            ClassSpec::DecisionTree { depth } => format!("decision_tree(depth={depth})"),
            ClassSpec::Sinusoid { frequency, amplitude } => {
                let f = match frequency {
                    FrequencyDist::LogNormal { median, sigma } => {
                        format!("lognormal({median},{sigma})")
                    }
                    FrequencyDist::Uniform { lo, hi } => format!("uniform({lo},{hi})"),
                    FrequencyDist::Fixed { omega } => format!("{omega}"),
                };
                if (*amplitude - std::f64::consts::SQRT_2).abs() < 1e-12 {
                    format!("sinusoid(omega={f})")
                } else {
                    format!("sinusoid(omega={f},A={amplitude})")
                }
            }
            ClassSpec::LinearClassification => "linear_classification".into(),
            ClassSpec::Convex { alpha, first, second } => {
                format!("convex({alpha} {}, {} {})", first.name(), 1.0 - alpha, second.name())
            }
            ClassSpec::Mixture { weights, classes } => {
                let parts: Vec<String> = weights
                    .iter()
                    .zip(classes)
                    .map(|(w, c)| format!("{w} {}", c.name()))
                    .collect();
                format!("mixture({})", parts.join(", "))
            }
        }
    }

    /// Checks every parameter against the input dimension `d`.
    pub fn validate(&self, d: usize) -> Valid {
        match self {
            ClassSpec::Dense { .. } | ClassSpec::Quadratic | ClassSpec::LinearClassification => Ok(()),
            ClassSpec::Sparse { nnz, .. } => {
                if *nnz < 1 || *nnz > d {
                    Err(ConfigError::new(
                        "nnz",
                        nnz,
                        format!("an integer in 1..={d} (the dimension d)"),
                    ))
                } else {
                    Ok(())
                }
            }
            ClassSpec::NoisyLinear { noise_std } => check_range("noise_std", *noise_std, 0.0, f64::MAX),
            ClassSpec::ReluNet { hidden } => check_at_least("hidden", *hidden, 1),
            ClassSpec::DecisionTree { depth } => {
                if (1..=16).contains(depth) {
                    Ok(())
                } else {
                    Err(ConfigError::new("depth", depth, "an integer in 1..=16"))
                }
            }
            ClassSpec::Sinusoid { frequency, amplitude } => {
                frequency.validate().map_err(|e| e.within("frequency"))?;
                check_positive("amplitude", *amplitude)
            }
            ClassSpec::Convex { alpha, first, second } => {
                check_range("alpha", *alpha, 0.0, 1.0)?;
                if matches!(**first, ClassSpec::Mixture { .. }) {
                    return Err(ConfigError::new(
                        "first",
                        first.name(),
                        "a single class (not a mixture)",
                    ));
                }
                if matches!(**second, ClassSpec::Mixture { .. }) {
                    return Err(ConfigError::new(
                        "second",
                        second.name(),
                        "a single class (not a mixture)",
                    ));
                }
                first.validate(d).map_err(|e| e.within("first"))?;
                second.validate(d).map_err(|e| e.within("second"))
            }
            ClassSpec::Mixture { weights, classes } => {
                if classes.is_empty() {
                    return Err(ConfigError::new("classes", "[]", "at least one class"));
                }
                if weights.len() != classes.len() {
                    return Err(ConfigError::new(
                        "weights",
                        format!("{weights:?}"),
                        format!("one weight per class ({} classes)", classes.len()),
                    ));
                }
                for (i, w) in weights.iter().enumerate() {
                    if !(w.is_finite() && *w >= 0.0) {
                        return Err(ConfigError::new(format!("weights[{i}]"), w, "a number >= 0"));
                    }
                }
                let total: f64 = weights.iter().sum();
                if (total - 1.0).abs() > 1e-6 {
                    return Err(ConfigError::new(
                        "weights",
                        format!("{weights:?} (sum {total})"),
                        "non-negative weights that sum to 1",
                    ));
                }
                for (i, c) in classes.iter().enumerate() {
                    if matches!(c, ClassSpec::Mixture { .. }) {
                        return Err(ConfigError::new(
                            format!("classes[{i}]"),
                            c.name(),
                            "a single class (mixtures do not nest)",
                        ));
                    }
                    c.validate(d).map_err(|e| e.within(&format!("classes[{i}]")))?;
                }
                Ok(())
            }
        }
    }

    /// E[y^2] of a prompt's targets when `active` input coordinates are non-zero, for isotropic
    /// N(0, I) inputs (the normaliser of the metric: predicting 0 scores 1).
    pub fn expected_y2(&self, active: usize) -> f64 {
        let d = active as f64;
        match self {
            ClassSpec::Dense { normalize } => {
                if *normalize {
                    1.0
                } else {
                    d
                }
            }
            ClassSpec::Sparse { nnz, normalize } => {
                if *normalize {
                    1.0
                } else {
                    (*nnz).min(active) as f64
                }
            }
            ClassSpec::NoisyLinear { noise_std } => d + noise_std * noise_std,
            ClassSpec::Quadratic | ClassSpec::ReluNet { .. } => d,
            ClassSpec::DecisionTree { .. } | ClassSpec::LinearClassification => 1.0,
            ClassSpec::Sinusoid { amplitude, .. } => amplitude * amplitude / 2.0,
            ClassSpec::Convex { alpha, first, second } => {
                alpha * alpha * first.expected_y2(active) + (1.0 - alpha) * (1.0 - alpha) * second.expected_y2(active)
            }
            ClassSpec::Mixture { weights, classes } => weights
                .iter()
                .zip(classes)
                .map(|(w, c)| w * c.expected_y2(active))
                .sum(),
        }
    }

    /// The mixture's components (a single class is a one-component mixture).
    pub fn components(&self) -> Vec<(f64, &ClassSpec)> {
        match self {
            ClassSpec::Mixture { weights, classes } => weights.iter().copied().zip(classes).collect(),
            other => vec![(1.0, other)],
        }
    }

    /// Draws the mixture component of a prompt (always 0 for a single class).
    pub fn sample_component(&self, rng: &mut Rng) -> usize {
        match self {
            ClassSpec::Mixture { weights, .. } => {
                let u = rng::uniform(rng);
                let mut acc = 0.0;
                for (i, w) in weights.iter().enumerate() {
                    acc += w;
                    if u < acc {
                        return i;
                    }
                }
                // Rounding: fall back to the last class with positive weight.
                weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Draws one function of this (single, non-mixture) class in dimension `d` with `active`
    /// non-zero coordinates. For a mixture, draw the component first ([`Self::sample_component`]).
    pub fn sample(&self, rng: &mut Rng, d: usize, active: usize) -> Function {
        let active = active.clamp(1, d);
        match self {
            ClassSpec::Dense { normalize } => {
                let mut w = gaussian(rng, d, active);
                if *normalize {
                    let s = 1.0 / (active as f64).sqrt();
                    w.iter_mut().for_each(|v| *v *= s);
                }
                Function::Linear { w }
            }
            ClassSpec::Sparse { nnz, normalize } => {
                let nnz = (*nnz).min(active);
                let mut w = vec![0.0; d];
                let support = rng::choose(rng, active, nnz);
                let s = if *normalize { 1.0 / (nnz as f64).sqrt() } else { 1.0 };
                for i in support {
                    w[i] = s * rng::normal(rng);
                }
                Function::Linear { w }
            }
            ClassSpec::NoisyLinear { noise_std } => Function::NoisyLinear {
                w: gaussian(rng, d, active),
                noise_std: *noise_std,
            },
            ClassSpec::Quadratic => Function::Quadratic {
                w: gaussian(rng, d, active),
            },
            ClassSpec::ReluNet { hidden } => {
                let mut w1 = Vec::with_capacity(hidden * d);
                for _ in 0..*hidden {
                    w1.extend(gaussian(rng, d, active));
                }
                let a = (0..*hidden).map(|_| rng::normal(rng)).collect();
                Function::ReluNet {
                    w1,
                    a,
                    scale: (2.0 / *hidden as f64).sqrt(),
                }
            }
            ClassSpec::DecisionTree { depth } => {
                let internal = (1usize << depth) - 1;
                let coords = (0..internal).map(|_| rng::index(rng, active)).collect();
                let leaves = (0..(1usize << depth)).map(|_| rng::normal(rng)).collect();
                Function::DecisionTree {
                    depth: *depth,
                    coords,
                    leaves,
                }
            }
            ClassSpec::Sinusoid { frequency, amplitude } => {
                let omega = frequency.sample(rng);
                let phi = 2.0 * std::f64::consts::PI * rng::uniform(rng);
                let u = if active == 1 {
                    let mut u = vec![0.0; d];
                    u[0] = 1.0;
                    u
                } else {
                    let mut u = gaussian(rng, d, active);
                    let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                    u.iter_mut().for_each(|v| *v /= norm);
                    u
                };
                Function::Sinusoid {
                    amplitude: *amplitude,
                    omega,
                    u,
                    phi,
                }
            }
            ClassSpec::LinearClassification => Function::LinearClassification {
                w: gaussian(rng, d, active),
            },
            ClassSpec::Convex { alpha, first, second } => Function::Convex {
                alpha: *alpha,
                first: Box::new(first.sample(rng, d, active)),
                second: Box::new(second.sample(rng, d, active)),
            },
            ClassSpec::Mixture { classes, .. } => {
                let c = self.sample_component(rng);
                classes[c].sample(rng, d, active)
            }
        }
    }

    /// The class `name` (one of [`CLASS_NAMES`]) with its default parameters: the serde defaults
    /// above, so that `iclab classes`, `iclab curves` and TOML files agree; a mixture has none of
    /// its own and gets the study's 0.5 dense + 0.5 sparse.
    pub fn default_of(name: &str) -> Option<ClassSpec> {
        if name == "mixture" {
            return Some(ClassSpec::Mixture {
                weights: vec![0.5, 0.5],
                classes: vec![ClassSpec::default_of("dense")?, ClassSpec::default_of("sparse")?],
            });
        }
        ClassSpec::deserialize(serde_json::json!({ "class": name })).ok()
    }

    /// One line on what the class is (for `iclab classes`).
    pub fn description(&self) -> &'static str {
        match self {
            ClassSpec::Dense { .. } => "f(x) = <w,x>, w ~ N(0,I_d); normalize=true scales w by 1/sqrt(d)",
            ClassSpec::Sparse { .. } => "dense with all but nnz coordinates zero (uniform support)",
            ClassSpec::NoisyLinear { .. } => "dense plus N(0, noise_std^2) noise on y",
            ClassSpec::Quadratic => "f(x) = <w, x*x>/sqrt(3)",
            ClassSpec::ReluNet { .. } => "f(x) = sqrt(2/h) sum_j a_j relu(<W_j,x>)",
            ClassSpec::DecisionTree { .. } => "binary tree, nodes test x[c] > 0, N(0,1) leaves",
            ClassSpec::Sinusoid { .. } => "f(x) = A sin(omega <u,x> + phi), u on the sphere, phi ~ U[0,2pi)",
            ClassSpec::LinearClassification => "y = sign(<w,x>)",
            ClassSpec::Convex { .. } => "alpha f1 + (1-alpha) f2, f1 and f2 independent",
            ClassSpec::Mixture { .. } => "a class drawn per prompt with the given weights",
        }
    }

    /// Every built-in class with its default parameters and description (for `iclab classes`).
    pub fn catalogue() -> Vec<(ClassSpec, &'static str)> {
        CLASS_NAMES
            .iter()
            .map(|name| {
                let c = ClassSpec::default_of(name).unwrap_or_else(|| panic!("CLASS_NAMES lists {name}, no class"));
                let about = c.description();
                (c, about)
            })
            .collect()
    }
}
