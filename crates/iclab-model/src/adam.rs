//! Adam(W), written out as llm.c writes it, with an optional linear warm-up + cosine decay and
//! gradient clipping by global norm.
//!
//! The update is elementwise, so splitting it over threads cannot change a bit; the one reduction
//! (the gradient norm) sums fixed-size chunks in f64 and then adds the partial sums in order, so it
//! does not depend on the thread count either.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use iclab_core::error::{check_positive, check_range, ConfigError, Valid};

use crate::gpt::TensorInfo;

/// Learning-rate schedule after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// lr throughout (docs/study.md, "Model": the paper's Adam at a constant 1e-4).
    #[default]
    Constant,
    /// Cosine decay from lr to lr * min_lr_ratio over the steps after the warm-up.
    Cosine,
}

/// The optimizer section of a training config (`[optimizer]`); every field has a default, so a
/// TOML file states only what differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// Peak learning rate. The study's: Adam, 1e-4 (docs/study.md, "Paper scale").
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay (AdamW, Loshchilov & Hutter): p -= lr * weight_decay * p, applied to
    /// weight matrices only (tensors of rank >= 2, nanoGPT's choice), not to biases or LayerNorm
    /// gains. 0 = plain Adam.
    pub weight_decay: f64,
    /// Linear warm-up from lr / warmup_steps to lr over the first warmup_steps steps (0 = none).
    pub warmup_steps: u64,
    pub schedule: LrSchedule,
    /// Final lr of the cosine schedule as a fraction of lr.
    pub min_lr_ratio: f64,
    /// Rescale the gradient to this global L2 norm when it is larger (absent = no clipping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            schedule: LrSchedule::Constant,
            min_lr_ratio: 0.1,
            grad_clip: None,
        }
    }
}

impl OptimizerConfig {
    pub fn validate(&self) -> Valid {
        check_positive("lr", self.lr)?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return Err(ConfigError::new(name, b, "a number in [0, 1)"));
            }
        }
        check_positive("eps", self.eps)?;
        check_range("weight_decay", self.weight_decay, 0.0, f64::MAX)?;
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)?;
        if let Some(c) = self.grad_clip {
            check_positive("grad_clip", c)?;
        }
        Ok(())
    }

    /// Learning rate of step `step` (0-based) of a run of `total` steps.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let min = self.lr * self.min_lr_ratio;
                min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// Chunk of the fixed partition used by the parallel loops (elements).
const CHUNK: usize = 1 << 14;

/// Global L2 norm of `g`: f64 partial sums over fixed chunks, added in chunk order, so the result
/// is the same for any number of threads.
pub fn global_norm(g: &[f32]) -> f64 {
    let partial: Vec<f64> = g
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&x| x as f64 * x as f64).sum::<f64>())
        .collect();
    partial.iter().sum::<f64>().sqrt()
}

/// The factor that brings a gradient of norm `norm` down to `clip` (1 when it is already smaller).
pub fn clip_scale(norm: f64, clip: Option<f64>) -> f64 {
    match clip {
        Some(c) if norm > c => c / norm,
        _ => 1.0,
    }
}

/// Adam(W) state: first and second moments and the number of updates done.
#[derive(Clone, Debug)]
pub struct Adam {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Updates done (the bias corrections use t + 1 for the next one).
    pub t: u64,
    /// Parameter ranges with their weight decay switch (rank >= 2 tensors decay).
    groups: Vec<(std::ops::Range<usize>, bool)>,
}

impl Adam {
    /// Fresh state for a model with these tensors (in buffer order, covering every parameter).
    pub fn new(tensors: &[TensorInfo]) -> Adam {
        let n: usize = tensors.iter().map(|t| t.offset + t.len).max().unwrap_or(0);
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            groups: tensors
                .iter()
                .map(|t| (t.offset..t.offset + t.len, t.shape.len() >= 2))
                .collect(),
        }
    }

    /// State restored from a checkpoint.
    pub fn restore(tensors: &[TensorInfo], m: Vec<f32>, v: Vec<f32>, t: u64) -> Adam {
        let mut a = Adam::new(tensors);
        assert_eq!((m.len(), v.len()), (a.m.len(), a.m.len()), "moments match the model");
        a.m = m;
        a.v = v;
        a.t = t;
        a
    }

    /// One update with learning rate `lr` and gradient `grad_scale * grads` (the clipping factor).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f64, grad_scale: f64, cfg: &OptimizerConfig) {
        assert_eq!(params.len(), self.m.len(), "params match the optimizer state");
        assert_eq!(grads.len(), self.m.len(), "grads match the optimizer state");
        self.t += 1;
        let t = self.t as i32;
        let (b1, b2) = (cfg.beta1 as f32, cfg.beta2 as f32);
        // Bias corrections of the zero-initialised moments (Kingma & Ba, Algorithm 1).
        let bc1 = (1.0 - cfg.beta1.powi(t)) as f32;
        let bc2 = (1.0 - cfg.beta2.powi(t)) as f32;
        let (lr, eps, scale) = (lr as f32, cfg.eps as f32, grad_scale as f32);
        for (range, decays) in &self.groups {
            let wd = if *decays { cfg.weight_decay as f32 } else { 0.0 };
            let r = range.clone();
            params[r.clone()]
                .par_chunks_mut(CHUNK)
                .zip(grads[r.clone()].par_chunks(CHUNK))
                .zip(self.m[r.clone()].par_chunks_mut(CHUNK))
                .zip(self.v[r].par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| {
                    // Subnormal moments would cost ~100 cycles per operation (simd::FlushSubnormals).
                    let _ftz = crate::simd::FlushSubnormals::new();
                    for i in 0..p.len() {
                        let gi = g[i] * scale;
                        m[i] = b1 * m[i] + (1.0 - b1) * gi;
                        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                        let m_hat = m[i] / bc1;
                        let v_hat = v[i] / bc2;
                        p[i] -= lr * (m_hat / (v_hat.sqrt() + eps) + wd * p[i]);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors() -> Vec<TensorInfo> {
        vec![
            TensorInfo {
                name: "w".into(),
                shape: vec![2, 2],
                offset: 0,
                len: 4,
            },
            TensorInfo {
                name: "b".into(),
                shape: vec![2],
                offset: 4,
                len: 2,
            },
        ]
    }

    #[test]
    fn first_steps_match_the_closed_form() {
        // Step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) (+ decay).
        let cfg = OptimizerConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        };
        let mut adam = Adam::new(&tensors());
        let mut p = vec![1.0f32, -2.0, 3.0, 0.5, 1.0, -1.0];
        let g = vec![0.4f32, -0.1, 2.0, 1e-3, -3.0, 0.25];
        let p0 = p.clone();
        adam.step(&mut p, &g, 0.1, 1.0, &cfg);
        for i in 0..6 {
            let wd = if i < 4 { 0.5 } else { 0.0 };
            let want = p0[i] as f64 - 0.1 * (g[i] as f64 / (g[i].abs() as f64 + 1e-8) + wd * p0[i] as f64);
            assert!((p[i] as f64 - want).abs() < 1e-6, "{i}: {} vs {want}", p[i]);
        }
        // Step 2 with the same gradient: m_hat = g, v_hat = g^2 again (bias-corrected averages of
        // equal values), so the same sign step; a halved clip scale halves g but not the step.
        let p1 = p.clone();
        adam.step(&mut p, &g, 0.1, 0.5, &cfg);
        for i in 0..6 {
            let wd = if i < 4 { 0.5 } else { 0.0 };
            let (b1, b2) = (0.9f64, 0.999f64);
            let g0 = g[i] as f64;
            let g1 = 0.5 * g0;
            let m = ((1.0 - b1) * b1 * g0 + (1.0 - b1) * g1) / (1.0 - b1 * b1);
            let v = ((1.0 - b2) * b2 * g0 * g0 + (1.0 - b2) * g1 * g1) / (1.0 - b2 * b2);
            let want = p1[i] as f64 - 0.1 * (m / (v.sqrt() + 1e-8) + wd * p1[i] as f64);
            assert!((p[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", p[i]);
        }
        assert_eq!(adam.t, 2);
    }

    #[test]
    fn clipping_and_norm() {
        let g = vec![3.0f32, 4.0];
        assert_eq!(global_norm(&g), 5.0);
        assert_eq!(clip_scale(5.0, Some(1.0)), 0.2);
        assert_eq!(clip_scale(5.0, Some(10.0)), 1.0);
        assert_eq!(clip_scale(5.0, None), 1.0);
        // The chunked sum equals a plain sum over a long vector.
        let long: Vec<f32> = (0..100_000).map(|i| ((i % 7) as f32 - 3.0) * 0.5).collect();
        let plain = long.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        assert!((global_norm(&long) - plain).abs() < 1e-9 * plain);
    }

    #[test]
    fn warmup_and_cosine() {
        let cfg = OptimizerConfig {
            lr: 1.0,
            warmup_steps: 10,
            schedule: LrSchedule::Cosine,
            min_lr_ratio: 0.1,
            ..Default::default()
        };
        assert!((cfg.lr_at(0, 110) - 0.1).abs() < 1e-12);
        assert!((cfg.lr_at(9, 110) - 1.0).abs() < 1e-12);
        assert!((cfg.lr_at(10, 110) - 1.0).abs() < 1e-12);
        // Half-way through the decay: min + (max - min) / 2.
        assert!((cfg.lr_at(60, 110) - 0.55).abs() < 1e-12);
        assert!((cfg.lr_at(110, 110) - 0.1).abs() < 1e-12);
        let constant = OptimizerConfig::default();
        assert_eq!(constant.lr_at(12345, 10), 1e-4);
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = OptimizerConfig {
            beta2: 1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "beta2");
        let e = OptimizerConfig {
            lr: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "lr");
    }
}
