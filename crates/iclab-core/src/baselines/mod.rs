//! Statistical baselines (docs/study.md, "Baselines"). Each fits only the k examples before the query
//! and predicts its target; k = 0 predicts 0.
//!
//! - [`linear`]: minimum-norm least squares, ridge, averaging, LASSO, k-nearest neighbours, all
//!   from normal equations grown one example at a time along the prompt.
//! - [`bayes`]: the exact Bayes-optimal predictor of a mixture of linear-Gaussian classes (dense +
//!   sparse: a posterior over "dense" and every support) and the oracle that knows the class.
//! - [`nonlinear`]: gradient-descent 2-layer ReLU network, sinusoid fit.
//!
//! [`baselines_for`] picks the baselines that apply to a test class; [`evaluate`] turns them into
//! normalised error curves ([`crate::metrics`]), in parallel over prompts, with results that do
//! not depend on the thread count (each prompt's predictions depend on the prompt alone).

pub mod bayes;
pub mod linalg;
pub mod linear;
pub mod nonlinear;

use rayon::prelude::*;

use crate::classes::ClassSpec;
use crate::metrics::{self, Curve};
use crate::prompt::{Prompt, PromptStrategy};

pub use bayes::{ClassOracle, LinearPrior, MixtureBayes};
pub use linear::{lasso_fit, Averaging, Knn, Lasso, LassoFit, LeastSquares, Ridge, LASSO_ALPHAS};
pub use nonlinear::{GdNet, SinusoidFit};

/// What a baseline is to the selection-cost column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// The Bayes-optimal predictor of the (pretraining) mixture.
    Bayes,
    /// The oracle that knows each prompt's class.
    Oracle,
}

/// A learner evaluated on prompts.
pub trait Baseline: Send + Sync {
    /// Display name, e.g. `least_squares`, `lasso(alpha=0.01)`.
    fn name(&self) -> String;
    /// Predictions of the query after k = 0..n-1 examples.
    fn predict(&self, prompt: &Prompt) -> Vec<f64>;
    /// Problems met so far (e.g. unconverged LASSO fits), one line each; empty when none.
    fn diagnostics(&self) -> Vec<String> {
        Vec::new()
    }
    /// Bayes / oracle / plain (for the selection-cost column).
    fn role(&self) -> Role {
        Role::Plain
    }
}

/// Default ridge penalty when the prompts are noiseless (with noise, lambda = noise variance, the
/// dense class's posterior mean).
pub const DEFAULT_RIDGE_LAMBDA: f64 = 0.1;

/// Options of [`baselines_for`].
#[derive(Clone, Debug, Default)]
pub struct BaselineOptions {
    /// The mixture the Bayes predictor assumes (e.g. the pretraining mixture dense + sparse when
    /// testing on sparse prompts); None: the test class itself.
    pub bayes_prior: Option<ClassSpec>,
    /// Ridge lambda; None: the noise variance of the prompts, or [`DEFAULT_RIDGE_LAMBDA`].
    pub ridge_lambda: Option<f64>,
    /// Seed of randomised baselines (the gradient-descent network).
    pub seed: u64,
}

/// The baselines that apply to a test class, and lines explaining the ones left out.
pub struct Selection {
    pub baselines: Vec<Box<dyn Baseline>>,
    pub skipped: Vec<String>,
}

fn any_component(class: &ClassSpec, pred: &dyn Fn(&ClassSpec) -> bool) -> bool {
    class.components().iter().any(|(w, c)| {
        *w > 0.0
            && match c {
                ClassSpec::Convex { first, second, .. } => pred(first) || pred(second),
                other => pred(other),
            }
    })
}

/// Picks the baselines for test prompts of `class` under `strategy` in dimension d:
/// - always: least squares, ridge, averaging, 3-NN;
/// - a sparse component: LASSO at Garg et al.'s 5 alphas;
/// - a 2-layer ReLU network component: the gradient-descent network (slow: ~0.1 s per prompt);
/// - a sinusoid component (d = 1): the sinusoid fit, and with a linear part (convex
///   combination or mixture) the linear + sinusoid fit;
/// - every component of the Bayes prior (default: the test class) linear-Gaussian: the exact
///   Bayes predictor; every test component linear-Gaussian: the class oracle.
pub fn baselines_for(class: &ClassSpec, strategy: &PromptStrategy, d: usize, opts: &BaselineOptions) -> Selection {
    let mut out: Vec<Box<dyn Baseline>> = Vec::new();
    let mut skipped = Vec::new();
    let noise_var = {
        let p = LinearPrior::of_class(1.0, &ClassSpec::Dense { normalize: false }, d, strategy).expect("dense");
        let class_noise: f64 = class
            .components()
            .iter()
            .map(|(w, c)| match c {
                ClassSpec::NoisyLinear { noise_std } => w * noise_std * noise_std,
                _ => 0.0,
            })
            .sum();
        let v = p.sigma2 + class_noise;
        if v > 2.0 * bayes::NOISELESS_VAR {
            v
        } else {
            0.0
        }
    };
    let lambda = opts.ridge_lambda.unwrap_or(if noise_var > 0.0 {
        noise_var
    } else {
        DEFAULT_RIDGE_LAMBDA
    });
    out.push(Box::new(LeastSquares));
    out.push(Box::new(Ridge { lambda }));
    out.push(Box::new(Averaging));
    out.push(Box::new(Knn { neighbours: 3 }));
    if any_component(class, &|c| matches!(c, ClassSpec::Sparse { .. })) {
        for alpha in LASSO_ALPHAS {
            out.push(Box::new(Lasso::new(alpha)));
        }
    }
    if any_component(class, &|c| matches!(c, ClassSpec::ReluNet { .. })) {
        out.push(Box::new(GdNet::garg(opts.seed)));
    }
    if any_component(class, &|c| matches!(c, ClassSpec::Sinusoid { .. })) {
        let linear = |c: &ClassSpec| matches!(c, ClassSpec::Dense { .. } | ClassSpec::NoisyLinear { .. });
        let with_linear = any_component(class, &linear);
        for wl in [false, true] {
            if wl && !with_linear {
                continue;
            }
            match SinusoidFit::default_grid(d, wl) {
                Ok(f) => out.push(Box::new(f)),
                Err(e) => skipped.push(format!("sinusoid fit: {e}")),
            }
        }
    }
    let prior = opts.bayes_prior.as_ref().unwrap_or(class);
    match LinearPrior::of_mixture(prior, d, strategy) {
        Some(components) => match MixtureBayes::new(format!("bayes[{}]", prior.name()), components, d) {
            Ok(b) => out.push(Box::new(b)),
            Err(e) => skipped.push(format!("bayes[{}]: {e}", prior.name())),
        },
        None => skipped.push(format!(
            "bayes[{}]: exact only for mixtures of dense, sparse and noisy linear classes",
            prior.name()
        )),
    }
    if let Some(components) = LinearPrior::of_mixture(class, d, strategy) {
        out.push(Box::new(ClassOracle::new(components, d)));
    }
    Selection {
        baselines: out,
        skipped,
    }
}

/// Normalised squared errors [prompt][k] of one baseline, in parallel over prompts.
pub fn errors(prompts: &[Prompt], baseline: &dyn Baseline, expected_y2: f64) -> Vec<Vec<f64>> {
    let predictions: Vec<Vec<f64>> = prompts.par_iter().map(|p| baseline.predict(p)).collect();
    metrics::squared_errors(prompts, &predictions, expected_y2)
}

/// One curve per baseline (names as [`Baseline::name`]), normalised by `expected_y2`; bootstrap
/// bands from `seed`.
pub fn evaluate(prompts: &[Prompt], baselines: &[Box<dyn Baseline>], expected_y2: f64, seed: u64) -> Vec<Curve> {
    evaluate_with_cost(prompts, baselines, expected_y2, seed).0
}

/// [`evaluate`] plus, when both a Bayes predictor and a class oracle are among the baselines, the
/// selection cost: the per-prompt difference Bayes error - oracle error, summarised per k (its band
/// is a paired bootstrap).
pub fn evaluate_with_cost(
    prompts: &[Prompt],
    baselines: &[Box<dyn Baseline>],
    expected_y2: f64,
    seed: u64,
) -> (Vec<Curve>, Option<Curve>) {
    let mut curves = Vec::new();
    let (mut bayes, mut oracle) = (None, None);
    for b in baselines {
        let e = errors(prompts, b.as_ref(), expected_y2);
        curves.push(metrics::curve(b.name(), &e, seed));
        match b.role() {
            Role::Bayes => bayes = Some(e),
            Role::Oracle => oracle = Some(e),
            Role::Plain => {}
        }
    }
    let cost = match (bayes, oracle) {
        (Some(b), Some(o)) => {
            let diff: Vec<Vec<f64>> = b
                .iter()
                .zip(&o)
                .map(|(rb, ro)| rb.iter().zip(ro).map(|(x, y)| x - y).collect())
                .collect();
            Some(metrics::curve("selection_cost", &diff, seed))
        }
        _ => None,
    };
    (curves, cost)
}
