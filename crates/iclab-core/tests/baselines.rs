//! The baselines against closed forms, optimality conditions and scikit-learn fixtures.

use iclab_core::baselines::{
    self, lasso_fit, Averaging, Baseline, BaselineOptions, ClassOracle, LeastSquares, LinearPrior, MixtureBayes, Role,
};
use iclab_core::metrics::{self, Curve};
use iclab_core::rng::Purpose;
use iclab_core::{ClassSpec, Prompt, PromptSampler, PromptStrategy};

fn dense() -> ClassSpec {
    ClassSpec::Dense { normalize: false }
}

fn sparse(nnz: usize) -> ClassSpec {
    ClassSpec::Sparse { nnz, normalize: false }
}

fn prompts(class: ClassSpec, strategy: PromptStrategy, d: usize, n: usize, count: usize, seed: u64) -> Vec<Prompt> {
    PromptSampler::new(class, strategy, d, seed)
        .unwrap()
        .prompts(seed, Purpose::Eval, count, n, d)
}

fn curve_of(b: &dyn Baseline, ps: &[Prompt], ey2: f64) -> Curve {
    metrics::curve(b.name(), &baselines::errors(ps, b, ey2), 0)
}

/// |mean - expected| within `z` standard errors (std over prompts / sqrt(m)).
fn assert_within(c: &Curve, k: usize, expected: f64, m: usize, z: f64) {
    let p = c.points[k];
    let se = p.std / (m as f64).sqrt();
    assert!(
        (p.mean - expected).abs() <= z * se + 1e-12,
        "{} at k={k}: mean {} vs expected {expected} (se {se})",
        c.name,
        p.mean
    );
}

#[test]
fn least_squares_error_is_one_minus_k_over_d_then_zero_on_dense_prompts() {
    let (d, n, m) = (10, 16, 4000);
    let ps = prompts(dense(), PromptStrategy::Isotropic, d, n, m, 1);
    let c = curve_of(&LeastSquares, &ps, d as f64);
    for k in 0..d {
        assert_within(&c, k, 1.0 - k as f64 / d as f64, m, 4.0);
    }
    for k in d..n {
        assert!(c.points[k].mean < 1e-9, "k={k}: {:?}", c.points[k]);
    }
}

#[test]
fn least_squares_is_exact_from_half_dimension_on_half_subspace_inputs() {
    // Rank-deficient designs: X spans a d/2-dimensional subspace, so X^T X is singular for every
    // k; the minimum-norm solution still predicts every query in that subspace exactly once k >= d/2.
    let (d, n, m) = (10, 16, 300);
    let ps = prompts(dense(), PromptStrategy::HalfSubspace, d, n, m, 2);
    let c = curve_of(&LeastSquares, &ps, d as f64);
    for k in d / 2..n {
        assert!(c.points[k].mean < 1e-8, "k={k}: {:?}", c.points[k]);
    }
    assert!(c.points[2].mean > 0.1);
}

#[test]
fn averaging_error_is_d_plus_one_over_k_on_dense_prompts() {
    let (d, n, m) = (8, 20, 4000);
    let ps = prompts(dense(), PromptStrategy::Isotropic, d, n, m, 3);
    let c = curve_of(&Averaging, &ps, d as f64);
    assert_within(&c, 0, 1.0, m, 4.0);
    for k in 1..n {
        // E ||w_hat - w||^2 / d + 1 = (d + 1)/k + 1 ... the normalised error of the query is
        // E(<w_hat - w, x>^2)/d = E||w_hat - w||^2 / d = (d + 1)/k.
        assert_within(&c, k, (d + 1) as f64 / k as f64, m, 4.0);
    }
}

fn all_classes() -> Vec<ClassSpec> {
    let mut out: Vec<ClassSpec> = ClassSpec::catalogue().into_iter().map(|(c, _)| c).collect();
    out.push(ClassSpec::NoisyLinear { noise_std: 0.5 });
    out.push(ClassSpec::Sparse {
        nnz: 3,
        normalize: true,
    });
    out.push(ClassSpec::Convex {
        alpha: 0.3,
        first: Box::new(sparse(2)),
        second: Box::new(ClassSpec::ReluNet { hidden: 20 }),
    });
    out
}

#[test]
fn every_class_has_its_formula_expected_y2_on_isotropic_inputs() {
    let (d, m) = (6, 20_000);
    for class in all_classes() {
        let ps = prompts(class.clone(), PromptStrategy::Isotropic, d, 2, m, 4);
        let y2: Vec<f64> = ps.iter().map(|p| (p.ys[0] as f64).powi(2)).collect();
        let mean = y2.iter().sum::<f64>() / m as f64;
        let sd = (y2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64).sqrt();
        let expected = class.expected_y2(d);
        assert!(
            (mean - expected).abs() <= 4.5 * sd / (m as f64).sqrt() + 1e-12,
            "{}: empirical {mean} vs formula {expected}",
            class.name()
        );
    }
}

#[test]
fn every_prompt_strategy_has_its_sampler_expected_y2() {
    let (d, m) = (6, 20_000);
    let class = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(2)],
    };
    for strategy in PromptStrategy::catalogue() {
        // Seed 11, not the sampler's own Monte-Carlo seed: an independent check.
        let sampler = PromptSampler::new(class.clone(), strategy.clone(), d, 11).unwrap();
        let ps = sampler.prompts(11, Purpose::Eval, m, 3, d);
        // Every target the metric scores: query k = 2 (x_3 or its replacement).
        let y2: Vec<f64> = ps.iter().map(|p| (p.query(2).1 as f64).powi(2)).collect();
        let mean = y2.iter().sum::<f64>() / m as f64;
        let sd = (y2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64).sqrt();
        let expected = sampler.expected_y2(d);
        // The sampler's own Monte-Carlo estimate (20,000 draws) carries error too: allow both.
        assert!(
            (mean - expected).abs() < 4.5 * std::f64::consts::SQRT_2 * sd / (m as f64).sqrt(),
            "{}: empirical {mean} vs sampler {expected}",
            strategy.name()
        );
    }
}

fn dense_sparse_bayes(d: usize, nnz: usize) -> MixtureBayes {
    let prior = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(nnz)],
    };
    let comps = LinearPrior::of_mixture(&prior, d, &PromptStrategy::Isotropic).unwrap();
    MixtureBayes::new("bayes", comps, d).unwrap()
}

#[test]
fn bayes_dense_sparse_reaches_zero_from_nnz_plus_one_on_sparse_prompts() {
    let (d, n, nnz, m) = (10, 14, 2, 300);
    let ps = prompts(sparse(nnz), PromptStrategy::Isotropic, d, n, m, 5);
    let bayes = dense_sparse_bayes(d, nnz);
    let c = curve_of(&bayes, &ps, nnz as f64);
    for k in nnz + 1..n {
        assert!(c.points[k].mean < 1e-6, "k={k}: {:?}", c.points[k]);
    }
    // Before that it cannot be exact, and it beats least squares (which needs k = d).
    assert!(c.points[nnz].mean > 1e-3);
    let ls = curve_of(&LeastSquares, &ps, nnz as f64);
    assert!(c.points[nnz].mean < ls.points[nnz].mean);
}

#[test]
fn bayes_dense_sparse_equals_least_squares_on_dense_prompts_from_k_equals_d() {
    let (d, n, m) = (8, 14, 200);
    let ps = prompts(dense(), PromptStrategy::Isotropic, d, n, m, 6);
    let bayes = dense_sparse_bayes(d, 2);
    for p in &ps {
        let (b, l) = (bayes.predict(p), LeastSquares.predict(p));
        for k in d..n {
            assert!(
                (b[k] - l[k]).abs() < 1e-5 * (1.0 + l[k].abs()),
                "k={k}: bayes {} vs least squares {}",
                b[k],
                l[k]
            );
        }
    }
}

#[test]
fn oracle_is_exact_once_the_true_support_is_covered_and_selection_cost_is_nonnegative_on_average() {
    let (d, n, m) = (8, 12, 400);
    let mixture = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(2)],
    };
    let ps = prompts(mixture.clone(), PromptStrategy::Isotropic, d, n, m, 7);
    let sel = baselines::baselines_for(&mixture, &PromptStrategy::Isotropic, d, &BaselineOptions::default());
    assert!(sel.baselines.iter().any(|b| b.role() == Role::Bayes));
    let oracle = ClassOracle::new(
        LinearPrior::of_mixture(&mixture, d, &PromptStrategy::Isotropic).unwrap(),
        d,
    );
    for p in ps.iter().filter(|p| p.component == 1) {
        let pred = oracle.predict(p);
        for (k, pk) in pred.iter().enumerate().skip(2) {
            let y = p.query(k).1 as f64;
            assert!((pk - y).abs() < 1e-4 * (1.0 + y.abs()), "k={k}: {pk} vs {y}");
        }
    }
    let (_, cost) = baselines::evaluate_with_cost(&ps, &sel.baselines, mixture.expected_y2(d), 0);
    let cost = cost.expect("bayes and oracle present");
    for pt in &cost.points {
        // The Bayes predictor is optimal on average, the oracle knows more: cost >= 0 up to noise.
        assert!(pt.hi >= -1e-9, "{pt:?}");
    }
    assert!(cost.points[3].mean > 0.0);
}

#[test]
fn bayes_beats_least_squares_at_every_k_on_prompts_of_its_own_mixture() {
    // Bayes-optimal under its prior: on prompts drawn from that prior no predictor does better on
    // average; in particular not least squares (this caught an ill-conditioned k = 1 evidence).
    let (d, n, m) = (10, 14, 600);
    let mixture = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(2)],
    };
    let ps = prompts(mixture.clone(), PromptStrategy::Isotropic, d, n, m, 8);
    let ey2 = mixture.expected_y2(d);
    let bayes = baselines::errors(&ps, &dense_sparse_bayes(d, 2), ey2);
    let ls = baselines::errors(&ps, &LeastSquares, ey2);
    let diff: Vec<Vec<f64>> = bayes
        .iter()
        .zip(&ls)
        .map(|(b, l)| b.iter().zip(l).map(|(x, y)| x - y).collect())
        .collect();
    let c = metrics::curve("bayes - least squares", &diff, 0);
    for p in &c.points[1..] {
        assert!(p.lo <= 1e-9, "bayes worse than least squares: {p:?}");
    }
}

#[test]
fn bayes_refuses_supports_it_cannot_enumerate() {
    let prior = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(15)],
    };
    let comps = LinearPrior::of_mixture(&prior, 40, &PromptStrategy::Isotropic).unwrap();
    let err = MixtureBayes::new("bayes", comps, 40)
        .err()
        .expect("C(40, 15) = 4e10 supports");
    assert_eq!(err.field, "classes[1].nnz");
    assert_eq!(err.value, "15");
}

/// Optimality of 1/(2k)||y - Xw||^2 + alpha ||w||_1: with c = X^T (y - X w) / k, c_j = alpha sign(w_j)
/// where w_j != 0 and |c_j| <= alpha where w_j = 0.
fn assert_kkt(x: &[f64], y: &[f64], d: usize, alpha: f64, w: &[f64], tol: f64) {
    let k = y.len();
    let r: Vec<f64> = (0..k)
        .map(|i| y[i] - (0..d).map(|j| x[i * d + j] * w[j]).sum::<f64>())
        .collect();
    for j in 0..d {
        let c = (0..k).map(|i| x[i * d + j] * r[i]).sum::<f64>() / k as f64;
        if w[j] != 0.0 {
            assert!(
                (c - alpha * w[j].signum()).abs() < tol,
                "coordinate {j}: c {c}, w {}",
                w[j]
            );
        } else {
            assert!(
                c.abs() <= alpha + tol,
                "coordinate {j}: |c| {} > alpha {alpha}",
                c.abs()
            );
        }
    }
}

#[test]
fn lasso_satisfies_kkt_conditions() {
    let mut rng = iclab_core::rng::stream(0, Purpose::Test, 40);
    for (d, k) in [(10, 4), (20, 20), (20, 41), (6, 30)] {
        for alpha in baselines::LASSO_ALPHAS {
            let x: Vec<f64> = (0..k * d).map(|_| iclab_core::rng::normal(&mut rng)).collect();
            let y: Vec<f64> = (0..k)
                .map(|i| x[i * d] - 0.5 * x[i * d + 1] + 0.1 * iclab_core::rng::normal(&mut rng))
                .collect();
            let fit = lasso_fit(&x, &y, d, alpha, 1e-12, 1_000_000);
            assert!(fit.converged, "d={d} k={k} alpha={alpha}: gap {}", fit.gap);
            assert_kkt(&x, &y, d, alpha, &fit.w, 1e-6 * (1.0 + alpha));
            // The default tolerance converges too (and reports so).
            assert!(lasso_fit(&x, &y, d, alpha, 1e-4, 10_000).converged);
        }
    }
}

#[test]
fn lasso_reports_unconverged_fits() {
    // Two sweeps cannot reach tol 1e-12 on a correlated design: the fit must say so.
    let mut rng = iclab_core::rng::stream(0, Purpose::Test, 41);
    let (d, k) = (10, 30);
    let z: Vec<f64> = (0..k).map(|_| iclab_core::rng::normal(&mut rng)).collect();
    let x: Vec<f64> = (0..k * d)
        .map(|i| z[i / d] + 0.05 * iclab_core::rng::normal(&mut rng))
        .collect();
    let y: Vec<f64> = (0..k).map(|i| x[i * d] + 2.0 * x[i * d + 3]).collect();
    let fit = lasso_fit(&x, &y, d, 0.001, 1e-12, 2);
    assert!(!fit.converged);
    assert!(fit.gap > 0.0 && fit.gap.is_finite());
    let lasso = baselines::Lasso::with_tolerance(0.001, 1e-12, 2);
    let ps = prompts(dense(), PromptStrategy::Isotropic, 10, 30, 4, 9);
    ps.iter().for_each(|p| {
        lasso.predict(p);
    });
    let (fits, bad) = lasso.counts();
    assert_eq!(fits, 4 * 29);
    assert!(bad > 0);
    assert!(
        lasso.diagnostics()[0].contains("did not reach duality gap"),
        "{:?}",
        lasso.diagnostics()
    );
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<FixtureCase>,
}

#[derive(serde::Deserialize)]
struct FixtureCase {
    d: usize,
    k: usize,
    alpha: f64,
    x: Vec<f64>,
    y: Vec<f64>,
    w: Vec<f64>,
}

#[test]
fn lasso_matches_scikit_learn_fixtures() {
    // Generated by `python3 scripts/baselines_reference.py` (scikit-learn Lasso, tol 1e-12).
    let text = include_str!("fixtures/lasso_sklearn.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    assert!(fixture.cases.len() >= 20);
    for (i, c) in fixture.cases.iter().enumerate() {
        assert_eq!((c.x.len(), c.y.len()), (c.k * c.d, c.k));
        let fit = lasso_fit(&c.x, &c.y, c.d, c.alpha, 1e-12, 1_000_000);
        assert!(fit.converged, "case {i}");
        for (j, (a, b)) in fit.w.iter().zip(&c.w).enumerate() {
            assert!(
                (a - b).abs() < 1e-6 * (1.0 + b.abs()),
                "case {i} (d={}, k={}, alpha={}) coordinate {j}: iclab {a} vs sklearn {b}",
                c.d,
                c.k,
                c.alpha
            );
        }
    }
}

#[test]
fn curves_are_byte_identical_on_one_and_two_threads() {
    let class = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![dense(), sparse(2)],
    };
    let (d, n, m) = (8, 12, 64);
    let run = |threads: usize| -> String {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let ps = prompts(class.clone(), PromptStrategy::Skewed, d, n, m, 13);
            let sel = baselines::baselines_for(&class, &PromptStrategy::Skewed, d, &BaselineOptions::default());
            let (mut curves, cost) = baselines::evaluate_with_cost(&ps, &sel.baselines, class.expected_y2(d), 13);
            curves.extend(cost);
            metrics::curves_csv(&curves)
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(one.lines().count() > 10 * n);
    assert_eq!(one, two);
}
