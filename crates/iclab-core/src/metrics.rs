//! The ICL metric (docs/study.md, "Metric"): for each number of in-context examples k, the squared
//! error of the prediction of the (k+1)-th target, divided by E[y^2] of the test class so that
//! predicting 0 scores 1; mean over prompts, standard deviation, and a bootstrap 5-95% band over
//! prompts.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::prompt::Prompt;
use crate::rng::{self, Purpose};

/// Number of bootstrap resamples behind every band.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// One k of a curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Number of in-context examples before the query.
    pub k: usize,
    /// Mean normalised squared error over prompts.
    pub mean: f64,
    /// Standard deviation over prompts.
    pub std: f64,
    /// Bootstrap 5% quantile of the mean.
    pub lo: f64,
    /// Bootstrap 95% quantile of the mean.
    pub hi: f64,
}

/// An error curve of one predictor: one point per k = 0..n-1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub name: String,
    pub points: Vec<CurvePoint>,
}

impl Curve {
    /// The mean at k, if the curve reaches it.
    pub fn at(&self, k: usize) -> Option<f64> {
        self.points.iter().find(|p| p.k == k).map(|p| p.mean)
    }
}

/// Normalised squared errors [prompt][k] of per-prompt predictions [prompt][k].
pub fn squared_errors(prompts: &[Prompt], predictions: &[Vec<f64>], expected_y2: f64) -> Vec<Vec<f64>> {
    assert_eq!(prompts.len(), predictions.len(), "one prediction row per prompt");
    prompts
        .iter()
        .zip(predictions)
        .map(|(p, pred)| {
            (0..p.n)
                .map(|k| {
                    let (_, y) = p.query(k);
                    let e = pred[k] - y as f64;
                    e * e / expected_y2
                })
                .collect()
        })
        .collect()
}

/// Mean, std and bootstrap band of errors [prompt][k], per k. The bootstrap for k draws from stream
/// (seed, Bootstrap, k): deterministic and independent of the thread count.
pub fn curve(name: impl Into<String>, errors: &[Vec<f64>], seed: u64) -> Curve {
    let n = errors.first().map_or(0, Vec::len);
    let points = (0..n)
        .into_par_iter()
        .map(|k| {
            let col: Vec<f64> = errors.iter().map(|r| r[k]).collect();
            point(k, &col, seed)
        })
        .collect();
    Curve {
        name: name.into(),
        points,
    }
}

/// Summary of one column of per-prompt errors.
pub fn point(k: usize, col: &[f64], seed: u64) -> CurvePoint {
    let m = col.len();
    if m == 0 {
        return CurvePoint {
            k,
            mean: f64::NAN,
            std: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let mean = col.iter().sum::<f64>() / m as f64;
    let var = if m > 1 {
        col.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (m - 1) as f64
    } else {
        0.0
    };
    let mut rng = rng::stream(seed, Purpose::Bootstrap, k as u64);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..m).map(|_| col[rng::index(&mut rng, m)]).sum::<f64>() / m as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (BOOTSTRAP_RESAMPLES - 1) as f64).round() as usize).min(BOOTSTRAP_RESAMPLES - 1)];
    CurvePoint {
        k,
        mean,
        std: var.sqrt(),
        lo: q(0.05),
        hi: q(0.95),
    }
}

/// Curves as long-format CSV, one row per (curve, k): `curve,k,mean,std,lo,hi`. Numbers use Rust's
/// shortest round-trip formatting, so equal curves give byte-identical files.
pub fn curves_csv(curves: &[Curve]) -> String {
    let mut out = String::from("curve,k,mean,std,lo,hi\n");
    for c in curves {
        // Quote names: they contain commas, e.g. `bayes[mixture(0.5 dense, 0.5 sparse(nnz=2))]`.
        let name = format!("\"{}\"", c.name.replace('"', "\"\""));
        for p in &c.points {
            out.push_str(&format!("{name},{},{},{},{},{}\n", p.k, p.mean, p.std, p.lo, p.hi));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_band_brackets_the_mean_and_shrinks_with_prompts() {
        let mut rng = rng::stream(0, Purpose::Test, 0);
        let small: Vec<f64> = (0..100).map(|_| rng::normal(&mut rng).powi(2)).collect();
        let large: Vec<f64> = (0..10_000).map(|_| rng::normal(&mut rng).powi(2)).collect();
        let (a, b) = (point(0, &small, 1), point(0, &large, 1));
        assert!(a.lo <= a.mean && a.mean <= a.hi);
        assert!(b.lo <= b.mean && b.mean <= b.hi);
        assert!((b.hi - b.lo) < (a.hi - a.lo) / 5.0);
        // chi^2_1 has mean 1, std sqrt(2): the 90% band of the mean is about +-1.645 sqrt(2/m).
        let half = 1.645 * (2.0f64 / 10_000.0).sqrt();
        assert!(((b.hi - b.lo) / 2.0 - half).abs() < 0.3 * half, "{b:?}");
        assert!((b.mean - 1.0).abs() < 4.0 * (2.0f64 / 10_000.0).sqrt());
    }
}
