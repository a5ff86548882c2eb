//! Baselines by name, as the presets write them (docs/study.md, "Baselines"; implementations in
//! `iclab_core::baselines`):
//!
//! | name | learner |
//! |---|---|
//! | `least_squares` | minimum-norm least squares |
//! | `ridge` / `ridge(lambda=X)` | ridge, lambda 0.1 by default |
//! | `lasso` / `lasso(alpha=X)` | LASSO (coordinate descent), alpha 0.001 by default |
//! | `averaging` | w = mean of y_i x_i |
//! | `knn` | 3-nearest neighbours |
//! | `oracle` | knows each prompt's class (and sparse support): posterior mean of that class |
//! | `bayes:<model>` | exact Bayes-optimal predictor for `<model>`'s pretraining mixture |
//! | `sinusoid_fit` | frequency grid + least squares on sin/cos (d = 1) |
//! | `linear_sinusoid_fit` | the same with a linear feature: knows the convex linear + sinusoid class |

use iclab_core::baselines::{
    Averaging, Baseline, ClassOracle, Knn, Lasso, LeastSquares, LinearPrior, MixtureBayes, Ridge, SinusoidFit,
};

use iclab_core::{ClassSpec, PromptStrategy};

/// The baseline names (for error messages); `lasso(alpha=X)`, `ridge(lambda=X)` and
/// `bayes:<model>` take parameters.
pub const NAMES: [&str; 10] = [
    "least_squares",
    "ridge",
    "lasso",
    "averaging",
    "knn",
    "oracle",
    "bayes:<model>",
    "sinusoid_fit",
    "linear_sinusoid_fit",
    "lasso(alpha=X)",
];

/// Default LASSO penalty: small enough that noiseless sparse weights are barely shrunk.
pub const LASSO_ALPHA: f64 = 0.001;
/// Default ridge penalty.
pub const RIDGE_LAMBDA: f64 = 0.1;

/// `name(key=value)` -> value.
fn param(name: &str, prefix: &str) -> Option<Option<f64>> {
    if name == prefix {
        return Some(None);
    }
    let inner = name.strip_prefix(prefix)?.strip_prefix('(')?.strip_suffix(')')?;
    let (_, v) = inner.split_once('=')?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(Some)
}

/// Whether `name` is a baseline name (see the table above).
pub fn is_baseline(name: &str) -> bool {
    matches!(
        name,
        "least_squares" | "averaging" | "knn" | "oracle" | "sinusoid_fit" | "linear_sinusoid_fit"
    ) || param(name, "lasso").is_some()
        || param(name, "ridge").is_some()
        || name.strip_prefix("bayes:").is_some_and(|m| !m.is_empty())
}

/// Legend label of a baseline.
pub fn label(name: &str) -> String {
    match name {
        "least_squares" => "least squares".into(),
        "averaging" => "averaging".into(),
        "knn" => "3-NN".into(),
        "oracle" => "oracle (class known)".into(),
        "sinusoid_fit" => "sinusoid fit".into(),
        "linear_sinusoid_fit" => "linear+sinusoid fit".into(),
        _ => {
            if let Some(a) = param(name, "lasso") {
                format!("LASSO (alpha={})", a.unwrap_or(LASSO_ALPHA))
            } else if let Some(l) = param(name, "ridge") {
                format!("ridge (lambda={})", l.unwrap_or(RIDGE_LAMBDA))
            } else if let Some(m) = name.strip_prefix("bayes:") {
                format!("Bayes ({m} prior)")
            } else {
                name.to_string()
            }
        }
    }
}

/// A baseline and the identity its cached predictions are stored under.
pub struct Made {
    pub baseline: Box<dyn Baseline>,
    pub identity: String,
}

/// The prompt set a baseline is built for.
pub struct Target<'a> {
    /// The prompt set's name (for errors).
    pub name: &'a str,
    pub task: &'a ClassSpec,
    pub d: usize,
    pub inputs: &'a PromptStrategy,
}

/// Builds baseline `name` for prompt set `e`; `bayes:<model>` takes the pretraining task that
/// `model_task` gives for that model name.
pub fn make_with<'m>(
    name: &str,
    model_task: impl Fn(&str) -> Option<&'m ClassSpec>,
    e: &Target,
) -> anyhow::Result<Made> {
    let d = e.d;
    let err = |why: String| anyhow::anyhow!("baseline {name} on {}: {why}", e.name);
    let baseline: Box<dyn Baseline> = match name {
        "least_squares" => Box::new(LeastSquares),
        "averaging" => Box::new(Averaging),
        "knn" => Box::new(Knn { neighbours: 3 }),
        "oracle" => {
            let c = LinearPrior::of_mixture(e.task, d, e.inputs)
                .ok_or_else(|| err("the oracle needs a dense, sparse or noisy linear test class".into()))?;
            Box::new(ClassOracle::new(c, d))
        }
        "sinusoid_fit" | "linear_sinusoid_fit" => {
            Box::new(SinusoidFit::default_grid(d, name == "linear_sinusoid_fit").map_err(|x| err(x.to_string()))?)
        }
        _ => {
            if let Some(a) = param(name, "lasso") {
                Box::new(Lasso::new(a.unwrap_or(LASSO_ALPHA)))
            } else if let Some(l) = param(name, "ridge") {
                Box::new(Ridge {
                    lambda: l.unwrap_or(RIDGE_LAMBDA),
                })
            } else if let Some(m) = name.strip_prefix("bayes:") {
                let task = model_task(m).ok_or_else(|| err(format!("no model named {m} in this preset")))?;
                let c = LinearPrior::of_mixture(task, d, e.inputs)
                    .ok_or_else(|| err("the exact Bayes predictor needs dense/sparse/noisy linear classes".into()))?;
                let identity = format!("bayes {}", serde_json::to_string(task)?);
                return Ok(Made {
                    baseline: Box::new(MixtureBayes::new(label(name), c, d).map_err(|x| err(x.to_string()))?),
                    identity,
                });
            } else {
                return Err(err(format!("unknown baseline; known: {}", NAMES.join(", "))));
            }
        }
    };
    Ok(Made {
        identity: format!("{name} {}", baseline.name()),
        baseline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for ok in [
            "least_squares",
            "lasso",
            "lasso(alpha=0.01)",
            "ridge(lambda=1)",
            "bayes:mixture",
            "oracle",
        ] {
            assert!(is_baseline(ok), "{ok}");
        }
        for bad in ["lasso(alpha=-1)", "lasso(0.1", "bayes:", "mixture", "lass"] {
            assert!(!is_baseline(bad), "{bad}");
        }
        assert_eq!(label("lasso"), format!("LASSO (alpha={LASSO_ALPHA})"));
    }
}
