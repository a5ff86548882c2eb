//! The training configuration: [`TrainConfig`] (what `iclab train` reads and every run saves), its
//! defaults and built-in presets, and which of its fields a resumed run must share with the run it
//! continues. train.rs runs it; checkpoint.rs stores it.

use serde::{Deserialize, Serialize};

use iclab_core::error::{check_at_least, ConfigError, Valid};
use iclab_core::{ClassSpec, Curriculum, PromptStrategy};

use crate::adam::{LrSchedule, OptimizerConfig};
use crate::gpt::ModelConfig;
use crate::hash::fnv1a;

/// Built-in presets of `iclab train --preset NAME` (TOML layered over [`TrainConfig::default`]).
pub const PRESETS: &[(&str, &str)] = &[
    ("tiny", include_str!("../presets/tiny.toml")),
    ("small", include_str!("../presets/small.toml")),
    ("standard", include_str!("../presets/standard.toml")),
];

/// The TOML of `iclab train` (saved as run_dir/config.toml). Every field has a default, so a file
/// states only what differs; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Run name: the run directory is `<out>/<name>`.
    pub name: String,
    /// Seeds the initialisation (Init stream), the training prompts (Train), the eval batch (Eval)
    /// and the input geometry.
    pub seed: u64,
    /// Optimizer steps (each on a fresh batch).
    pub steps: u64,
    pub batch_size: usize,
    /// Write a checkpoint every this many steps (and at the end, and on Ctrl-C).
    pub checkpoint_every: u64,
    /// Keep the checkpoints whose step is a multiple of this (0: keep only the latest).
    pub keep_every: u64,
    /// Record the training loss every this many steps.
    pub log_every: u64,
    /// Record the per-position loss on the fixed eval batch every this many steps (0: never).
    pub eval_every: u64,
    /// Prompts in the fixed eval batch.
    pub eval_prompts: usize,
    pub model: ModelConfig,
    /// The pretraining distribution, e.g. a mixture (sampled per prompt).
    pub task: ClassSpec,
    /// Input distribution of the training prompts (default isotropic N(0, I)).
    pub inputs: PromptStrategy,
    /// Active dimension and points per step; unless a config states it, it is fitted to end at the
    /// model's d and n_points.
    pub curriculum: Curriculum,
    pub optimizer: OptimizerConfig,
}

impl Default for TrainConfig {
    /// The tiny model on dense linear regression with the study's optimizer (Adam, constant 1e-4).
    fn default() -> Self {
        let model = ModelConfig {
            d: 5,
            n_points: 11,
            n_layer: 2,
            n_head: 2,
            n_embd: 64,
            tokens: Default::default(),
        };
        TrainConfig {
            name: "run".into(),
            seed: 0,
            steps: 10_000,
            batch_size: 64,
            checkpoint_every: 1000,
            keep_every: 0,
            log_every: 10,
            eval_every: 1000,
            eval_prompts: 256,
            curriculum: Curriculum::spec(model.d, model.n_points, 2000),
            model,
            task: ClassSpec::Dense { normalize: false },
            inputs: PromptStrategy::Isotropic,
            optimizer: OptimizerConfig::default(),
        }
    }
}

impl TrainConfig {
    /// A built-in preset: "tiny", "small" or "standard" (crates/iclab-model/presets/*.toml).
    pub fn preset(name: &str) -> Result<TrainConfig, ConfigError> {
        let text = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| ConfigError::new("preset", name, preset_names()))?;
        let cfg = iclab_core::config::resolve(&TrainConfig::default(), Some((name, text)), &[])?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// defaults (or a preset) -> TOML file -> `--set key=value` overrides -> validated config.
    /// `file` is (source name for errors, text). Unless the file or an override mentions
    /// `curriculum`, the curriculum is fitted to end at the model's d and n_points (so
    /// `--set model.d=8` alone does what it says).
    pub fn resolve(
        preset: Option<&str>,
        file: Option<(&str, &str)>,
        overrides: &[String],
    ) -> Result<TrainConfig, ConfigError> {
        let base = match preset {
            Some(p) => TrainConfig::preset(p)?,
            None => TrainConfig::default(),
        };
        TrainConfig::layer(&base, file, overrides)
    }

    /// `base` -> TOML file -> `--set key=value` overrides -> validated config, with the curriculum
    /// fitted as in [`TrainConfig::resolve`] (which is this over the defaults or a preset).
    pub fn layer(
        base: &TrainConfig,
        file: Option<(&str, &str)>,
        overrides: &[String],
    ) -> Result<TrainConfig, ConfigError> {
        let mut cfg = iclab_core::config::resolve(base, file, overrides)?;
        let file_sets_curriculum = match file {
            Some((_, text)) => text
                .parse::<toml::Table>()
                .map(|t| t.contains_key("curriculum"))
                .unwrap_or(false),
            None => false,
        };
        let override_sets_curriculum = overrides.iter().any(|o| o.trim_start().starts_with("curriculum"));
        if !file_sets_curriculum && !override_sets_curriculum {
            cfg.curriculum = fit_curriculum(cfg.curriculum, cfg.model.d, cfg.model.n_points);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every field checked; errors name the field, the value and what is allowed.
    pub fn validate(&self) -> Valid {
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name == "." || self.name == ".." {
            return Err(ConfigError::new(
                "name",
                format!("{:?}", self.name),
                "a non-empty directory name without / or \\",
            ));
        }
        self.model.validate().map_err(|e| e.within("model"))?;
        self.task.validate(self.model.d).map_err(|e| e.within("task"))?;
        self.inputs.validate().map_err(|e| e.within("inputs"))?;
        self.curriculum
            .validate(self.model.d, self.model.n_points)
            .map_err(|e| e.within("curriculum"))?;
        self.optimizer.validate().map_err(|e| e.within("optimizer"))?;
        if self.steps < 1 {
            return Err(ConfigError::new("steps", self.steps, "an integer >= 1"));
        }
        check_at_least("batch_size", self.batch_size, 1)?;
        check_at_least("eval_prompts", self.eval_prompts, 1)?;
        if self.optimizer.warmup_steps > self.steps {
            return Err(ConfigError::new(
                "optimizer.warmup_steps",
                self.optimizer.warmup_steps,
                format!(
                    "an integer <= steps ({}): the warm-up is part of the training",
                    self.steps
                ),
            ));
        }
        for (field, v) in [
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
        ] {
            if v < 1 {
                return Err(ConfigError::new(field, v, "an integer >= 1"));
            }
        }
        if let Some(total) = machine_memory() {
            self.check_memory(total)?;
        }
        Ok(())
    }

    /// Estimated bytes for (parameters, activations) of a training step: parameters, gradients
    /// and Adam's two moments (4 x 4 bytes each), and per token and layer about 16 E + 2 H T
    /// activations, kept for the backward pass and matched by its buffers (x 2). An upper
    /// estimate: it is only there to refuse absurd sizes before the allocator aborts.
    pub fn memory_estimate(&self) -> (f64, f64) {
        let m = &self.model;
        let (e, l, h) = (m.n_embd as f64, m.n_layer as f64, m.n_head as f64);
        let t = m.block_size() as f64;
        // Layout sizes grow as 12 L E^2: counted in floats, not usize, so no size overflows.
        let params = 12.0 * l * e * e + 13.0 * l * e + e * (t + 2.0 * m.d as f64 + 4.0);
        let acts = self.batch_size.max(self.eval_prompts) as f64 * t * l * (16.0 * e + 2.0 * h * t);
        (16.0 * params, 2.0 * 4.0 * acts)
    }

    /// Refuses a config whose training would not fit in `total` bytes, naming the field that
    /// dominates the estimate.
    pub fn check_memory(&self, total: u64) -> Valid {
        let (params, acts) = self.memory_estimate();
        if params + acts <= total as f64 {
            return Ok(());
        }
        let gib = |b: f64| format!("{:.3} GiB", b / (1u64 << 30) as f64);
        // The model is at fault when even one prompt per batch would not fit; then the batch.
        let one_prompt = acts / self.batch_size.max(self.eval_prompts) as f64;
        let (field, value) = if params + one_prompt > total as f64 && self.model.n_layer * 16 > self.model.n_embd {
            ("model.n_layer", self.model.n_layer)
        } else if params + one_prompt > total as f64 {
            ("model.n_embd", self.model.n_embd)
        } else if self.batch_size >= self.eval_prompts {
            ("batch_size", self.batch_size)
        } else {
            ("eval_prompts", self.eval_prompts)
        };
        Err(ConfigError::new(
            field,
            value,
            format!(
                "a size whose training fits in this machine's {} of memory (estimated: {} for \
                 parameters, gradients and Adam, {} for activations)",
                gib(total as f64),
                gib(params),
                gib(acts)
            ),
        ))
    }

    /// The config with the fields that do not change the trajectory (parameters and losses) reset:
    /// name, checkpoint/log/eval bookkeeping, and `steps` when the lr schedule does not depend on
    /// it. Two configs with equal trajectory views train identically step for step.
    pub fn trajectory_view(&self) -> TrainConfig {
        let d = TrainConfig::default();
        let mut t = self.clone();
        t.name = d.name;
        t.checkpoint_every = d.checkpoint_every;
        t.keep_every = d.keep_every;
        t.log_every = d.log_every;
        t.eval_every = d.eval_every;
        t.eval_prompts = d.eval_prompts;
        if self.optimizer.schedule == LrSchedule::Constant {
            t.steps = 0;
            t.optimizer.min_lr_ratio = d.optimizer.min_lr_ratio;
        }
        t
    }

    /// Hash of [`TrainConfig::trajectory_view`] (stored in checkpoints).
    pub fn trajectory_hash(&self) -> u64 {
        fnv1a(toml::to_string(&self.trajectory_view()).unwrap_or_default().as_bytes())
    }
}

/// Physical memory in bytes (Linux: MemTotal of /proc/meminfo); None where it cannot be read, and
/// then no size is refused.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The names of the built-in presets, for error messages.
pub fn preset_names() -> String {
    PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Moves the curriculum's ends to (d, n) and keeps its starts inside them.
fn fit_curriculum(mut c: Curriculum, d: usize, n: usize) -> Curriculum {
    c.dims.end = d;
    c.dims.start = c.dims.start.clamp(1, d.max(1));
    c.points.end = n;
    c.points.start = c.points.start.clamp(1, n.max(1));
    c
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(|x| x.is_table()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The trajectory fields in which `saved` and `requested` differ, as "field: saved vs requested"
/// (`(absent)` where one lacks it). Empty when a run with `saved` can be resumed as `requested`.
pub fn config_differences(saved: &TrainConfig, requested: &TrainConfig) -> Vec<String> {
    let as_pairs = |c: &TrainConfig| {
        let mut out = Vec::new();
        if let Ok(v) = toml::Value::try_from(c.trajectory_view()) {
            flatten("", &v, &mut out);
        }
        out
    };
    let (a, b) = (as_pairs(saved), as_pairs(requested));
    // Values are shown as given (the trajectory view zeroes `steps` under a constant schedule).
    let shown = |c: &TrainConfig, k: &str| {
        let mut all = Vec::new();
        if let Ok(v) = toml::Value::try_from(c) {
            flatten("", &v, &mut all);
        }
        all.into_iter().find(|(key, _)| key == k).map(|(_, v)| v)
    };
    let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let find = |list: &[(String, String)], k: &str| {
        list.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "(absent)".into())
    };
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (find(&a, k), find(&b, k));
            (x != y).then(|| {
                let x = shown(saved, k).unwrap_or(x);
                let y = shown(requested, k).unwrap_or(y);
                format!("{k}: {x} vs {y}")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_validate() {
        for (name, _) in PRESETS {
            let c = TrainConfig::preset(name).unwrap();
            assert_eq!(c.name, *name);
            assert_eq!(c.curriculum.at(u64::MAX / 2), (c.model.d, c.model.n_points));
        }
        let s = TrainConfig::preset("standard").unwrap();
        // The study's reference scale (docs/study.md, "Paper scale").
        assert_eq!(
            (
                s.model.d,
                s.model.n_points,
                s.model.n_layer,
                s.model.n_head,
                s.model.n_embd
            ),
            (20, 41, 12, 8, 256)
        );
        assert_eq!((s.optimizer.lr, s.batch_size, s.steps), (1e-4, 64, 500_000));
        assert_eq!(s.curriculum, Curriculum::spec(20, 41, 2000));
        let e = TrainConfig::preset("huge").unwrap_err();
        assert_eq!(e.field, "preset");
        assert!(e.allowed.contains("tiny"), "{e}");
    }

    #[test]
    fn resolution_layers_and_curriculum_fit() {
        let c = TrainConfig::resolve(Some("small"), None, &["model.d=8".into(), "optimizer.lr=0.01".into()]).unwrap();
        assert_eq!(c.model.d, 8);
        assert_eq!(c.optimizer.lr, 0.01);
        assert_eq!(c.curriculum.dims.end, 8);
        assert_eq!(c.curriculum.dims.start, 5);
        // An explicit curriculum is kept (and validated).
        let e = TrainConfig::resolve(
            Some("small"),
            None,
            &["model.d=8".into(), "curriculum.dims.end=10".into()],
        )
        .unwrap_err();
        assert_eq!(e.field, "curriculum.dims.end");
        let text = "name = \"x\"\nsteps = 7\n[task]\nclass = \"sparse\"\nnnz = 2\n";
        let c = TrainConfig::resolve(None, Some(("exp.toml", text)), &[]).unwrap();
        assert_eq!((c.name.as_str(), c.steps), ("x", 7));
        assert_eq!(
            c.task,
            ClassSpec::Sparse {
                nnz: 2,
                normalize: false
            }
        );
        // The saved form reads back to the same config.
        let back: TrainConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn bad_configs_name_field_value_and_allowed() {
        let cases: &[(&[&str], &str)] = &[
            (&["batch_size=0"], "batch_size"),
            (&["steps=0"], "steps"),
            (&["model.n_head=3"], "model"),
            (&["optimizer.beta1=1.5"], "optimizer.beta1"),
            (&["optimizer.grad_clip=-1"], "optimizer.grad_clip"),
            (&["task={ class = \"sparse\", nnz = 9 }"], "task"),
            (&["name=a/b"], "name"),
            (&["log_every=0"], "log_every"),
            (&["optimizer.warmup_steps=5001"], "optimizer.warmup_steps"),
        ];
        for (sets, field) in cases {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let e = TrainConfig::resolve(Some("tiny"), None, &sets).unwrap_err();
            assert!(e.field.starts_with(field), "{sets:?}: {e}");
            assert!(!e.allowed.is_empty());
        }
        let e = TrainConfig::resolve(Some("tiny"), None, &["optimizer.lrr=1".into()]).unwrap_err();
        assert!(e.to_string().contains("lrr"), "{e}");
    }

    #[test]
    fn differences_ignore_bookkeeping_but_not_the_trajectory() {
        let a = TrainConfig::preset("tiny").unwrap();
        let mut b = a.clone();
        b.log_every = 1;
        b.checkpoint_every = 3;
        b.name = "other".into();
        assert!(config_differences(&a, &b).is_empty());
        assert_eq!(a.trajectory_hash(), b.trajectory_hash());
        b.optimizer.lr = 0.5;
        b.model.n_embd = 32;
        let diffs = config_differences(&a, &b);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(
            diffs.iter().any(|d| d.starts_with("optimizer.lr: 0.001 vs 0.5")),
            "{diffs:?}"
        );
        assert!(
            diffs.iter().any(|d| d.starts_with("model.n_embd: 64 vs 32")),
            "{diffs:?}"
        );
        // Under a cosine schedule the number of steps shapes the lr: it is a trajectory field.
        let mut c = a.clone();
        c.steps += 1;
        assert_eq!(config_differences(&a, &c).len(), 1);
        let mut k = a.clone();
        k.optimizer.schedule = LrSchedule::Constant;
        let mut k2 = k.clone();
        k2.steps *= 2;
        assert!(config_differences(&k, &k2).is_empty());
    }

    #[test]
    fn sizes_that_cannot_fit_are_refused_naming_the_field() {
        let c = TrainConfig::preset("tiny").unwrap();
        let (params, _) = c.memory_estimate();
        // The estimate counts at least the real parameters (x 16 bytes: weights, grads, Adam).
        assert!(params >= 16.0 * c.model.num_params() as f64, "{params}");
        assert!(c.check_memory(1 << 40).is_ok());
        let e = c.check_memory(1024).unwrap_err();
        assert!(e.allowed.contains("fits in this machine's"), "{e}");
        let mut big = c.clone();
        big.batch_size = 1 << 40;
        assert_eq!(big.check_memory(1 << 40).unwrap_err().field, "batch_size");
    }
}
