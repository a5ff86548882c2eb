//! Baselines for the non-linear classes: Garg et al.'s gradient-descent 2-layer ReLU network and a
//! sinusoid fit (frequency grid + least squares on sin/cos features), docs/study.md, "Baselines".

use super::linalg;
use super::Baseline;
use crate::error::ConfigError;
use crate::prompt::Prompt;
use crate::rng::{self, Purpose};

/// A stable 64-bit fingerprint of a prompt's data (FNV-1a over the bits of xs and ys): the stream
/// index of randomised baselines, so that their draws depend on the prompt alone, not on the order
/// or thread in which prompts are evaluated.
pub fn prompt_fingerprint(prompt: &Prompt) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in prompt.xs.iter().chain(&prompt.ys) {
        for byte in v.to_bits().to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Garg et al.'s "2-layer NN, GD" baseline: for every k, a fresh network
/// x -> w2 . relu(W1 x + b1) + b2 (PyTorch's default uniform(+-1/sqrt(fan_in)) initialisation) is
/// trained by full-batch Adam on the mean squared error of the k examples (Garg's batch size 100
/// exceeds every k), then predicts the query. Initialisations come from stream
/// (seed ^ fingerprint of the prompt, Baseline, k).
pub struct GdNet {
    pub hidden: usize,
    pub steps: usize,
    pub lr: f64,
    pub seed: u64,
}

impl GdNet {
    /// Garg et al.'s settings: hidden 100, 100 Adam steps, learning rate 5e-3.
    pub fn garg(seed: u64) -> Self {
        GdNet {
            hidden: 100,
            steps: 100,
            lr: 5e-3,
            seed,
        }
    }

    /// Trains on x [k, d], y [k] and returns the prediction at q.
    fn fit_predict(&self, x: &[f64], y: &[f64], d: usize, q: &[f64], rng: &mut rng::Rng) -> f64 {
        let (h, k) = (self.hidden, y.len());
        // Parameters, flattened: W1 [h, d], b1 [h], w2 [h], b2 [1].
        let n_params = h * d + 2 * h + 1;
        let (o_b1, o_w2, o_b2) = (h * d, h * d + h, h * d + 2 * h);
        let mut theta = vec![0.0; n_params];
        let s1 = 1.0 / (d as f64).sqrt();
        let s2 = 1.0 / (h as f64).sqrt();
        for (i, t) in theta.iter_mut().enumerate() {
            let s = if i < o_w2 { s1 } else { s2 };
            *t = s * (2.0 * rng::uniform(rng) - 1.0);
        }
        let (mut m, mut v, mut grad) = (vec![0.0; n_params], vec![0.0; n_params], vec![0.0; n_params]);
        let mut z = vec![0.0; h];
        let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8);
        for step in 1..=self.steps {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..k {
                let xi = &x[i * d..(i + 1) * d];
                let mut out = theta[o_b2];
                for j in 0..h {
                    z[j] = theta[o_b1 + j] + linalg::dot(&theta[j * d..(j + 1) * d], xi);
                    out += theta[o_w2 + j] * z[j].max(0.0);
                }
                // d/d out of mean squared error.
                let dout = 2.0 * (out - y[i]) / k as f64;
                grad[o_b2] += dout;
                for j in 0..h {
                    if z[j] > 0.0 {
                        grad[o_w2 + j] += dout * z[j];
                        let dz = dout * theta[o_w2 + j];
                        grad[o_b1 + j] += dz;
                        for (g, xv) in grad[j * d..(j + 1) * d].iter_mut().zip(xi) {
                            *g += dz * xv;
                        }
                    }
                }
            }
            let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
            for p in 0..n_params {
                m[p] = beta1 * m[p] + (1.0 - beta1) * grad[p];
                v[p] = beta2 * v[p] + (1.0 - beta2) * grad[p] * grad[p];
                theta[p] -= self.lr * (m[p] / c1) / ((v[p] / c2).sqrt() + eps);
            }
        }
        let mut out = theta[o_b2];
        for j in 0..h {
            let zj = theta[o_b1 + j] + linalg::dot(&theta[j * d..(j + 1) * d], q);
            out += theta[o_w2 + j] * zj.max(0.0);
        }
        out
    }
}

impl Baseline for GdNet {
    fn name(&self) -> String {
        format!("gd_net(hidden={},steps={})", self.hidden, self.steps)
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        let d = prompt.d;
        let xs: Vec<f64> = prompt.xs.iter().map(|&v| v as f64).collect();
        let ys: Vec<f64> = prompt.ys.iter().map(|&v| v as f64).collect();
        let index = prompt_fingerprint(prompt);
        (0..prompt.n)
            .map(|k| {
                if k == 0 {
                    return 0.0;
                }
                let q: Vec<f64> = prompt.query(k).0.iter().map(|&v| v as f64).collect();
                // Stream (seed ^ fingerprint, Baseline, k): a fresh, reproducible initialisation
                // per prompt and k (the key is mixed, so xor-ing the fingerprint in is enough).
                let mut rng = rng::stream(self.seed ^ index, Purpose::Baseline, k as u64);
                self.fit_predict(&xs[..k * d], &ys[..k], d, &q, &mut rng)
            })
            .collect()
    }
}

/// Ridge added to the sin/cos normal equations: makes k <= features well posed (the
/// minimum-norm interpolant) without biasing larger k.
const SINUSOID_RIDGE: f64 = 1e-6;

/// Sinusoid fit for d = 1 (docs/study.md, "Baselines": a frequency grid + least squares on sin/cos
/// features): for
/// every omega on a log-spaced grid, least squares of y on [sin(omega x), cos(omega x)] (plus x
/// when `with_linear`, the learner that knows the convex linear + sinusoid class of E4), and the
/// omega with the smallest penalised residual predicts. d > 1 is refused: the direction u would
/// have to be searched too.
pub struct SinusoidFit {
    pub omegas: Vec<f64>,
    pub with_linear: bool,
}

impl SinusoidFit {
    /// `count` frequencies log-spaced in [lo, hi].
    pub fn new(d: usize, lo: f64, hi: f64, count: usize, with_linear: bool) -> Result<Self, ConfigError> {
        if d != 1 {
            return Err(ConfigError::new(
                "d",
                d,
                "1 (the sinusoid fit searches a frequency grid along the single input; for d > 1 the \
                 direction u is unknown)",
            ));
        }
        let omegas = (0..count)
            .map(|i| lo * (hi / lo).powf(i as f64 / (count.max(2) - 1) as f64))
            .collect();
        Ok(SinusoidFit { omegas, with_linear })
    }

    /// The default grid: 400 frequencies in [0.02, 20], covering the log-normal(1, 0.5) bulk, its
    /// tails and the extrapolation range of E6.
    pub fn default_grid(d: usize, with_linear: bool) -> Result<Self, ConfigError> {
        SinusoidFit::new(d, 0.02, 20.0, 400, with_linear)
    }

    fn features(&self, omega: f64, x: f64, out: &mut [f64]) {
        out[0] = (omega * x).sin();
        out[1] = (omega * x).cos();
        if self.with_linear {
            out[2] = x;
        }
    }
}

impl Baseline for SinusoidFit {
    fn name(&self) -> String {
        if self.with_linear {
            "linear+sinusoid_fit".into()
        } else {
            "sinusoid_fit".into()
        }
    }

    fn predict(&self, prompt: &Prompt) -> Vec<f64> {
        assert_eq!(prompt.d, 1, "sinusoid fit is for d = 1");
        let p = if self.with_linear { 3 } else { 2 };
        let g_count = self.omegas.len();
        // Normal equations per frequency: g [grid, p, p], b [grid, p].
        let mut g = vec![0.0; g_count * p * p];
        let mut b = vec![0.0; g_count * p];
        let mut yy = 0.0;
        let (mut f, mut a, mut c) = (vec![0.0; p], vec![0.0; p * p], vec![0.0; p]);
        let mut out = Vec::with_capacity(prompt.n);
        for k in 0..prompt.n {
            if k > 0 {
                let (x, y) = (prompt.xs[k - 1] as f64, prompt.ys[k - 1] as f64);
                yy += y * y;
                for (o, &omega) in self.omegas.iter().enumerate() {
                    self.features(omega, x, &mut f);
                    linalg::accumulate(&mut g[o * p * p..(o + 1) * p * p], &mut b[o * p..(o + 1) * p], &f, y);
                }
            }
            if k == 0 {
                out.push(0.0);
                continue;
            }
            let (mut best, mut best_omega, mut best_c) = (f64::INFINITY, 0usize, vec![0.0; p]);
            for o in 0..g_count {
                let (go, bo) = (&g[o * p * p..(o + 1) * p * p], &b[o * p..(o + 1) * p]);
                a.copy_from_slice(go);
                (0..p).for_each(|i| a[i * p + i] += SINUSOID_RIDGE);
                if !linalg::cholesky(&mut a, p) {
                    continue;
                }
                c.copy_from_slice(bo);
                linalg::cholesky_solve(&a, p, &mut c);
                // ||y - F c||^2 + ridge ||c||^2 = yy - 2 c^T b + c^T (G + ridge I) c = yy - c^T b.
                let score = yy - linalg::dot(&c, bo);
                if score < best {
                    best = score;
                    best_omega = o;
                    best_c.copy_from_slice(&c);
                }
            }
            let (qx, _) = prompt.query(k);
            self.features(self.omegas[best_omega], qx[0] as f64, &mut f);
            out.push(linalg::dot(&f, &best_c));
        }
        out
    }
}
