//! iclab-experiments: the study's experiments (docs/study.md, "Experiments") as presets that train
//! what they need, evaluate it beside baselines and specialists, draw the figures and check the
//! findings.
//!
//! Data flow: [`preset`] (TOML: models, prompt sets, figures, criteria, scales) -> [`Plan`] at one
//! scale -> `runs` (training, keyed by the resolved config's hash, resumable) -> [`eval`]
//! (predictions of models and [`baselines`] on the same prompts, cached) -> [`findings`] (criteria
//! -> pass/fail) and [`outputs`] (curves, CSV, figures) -> [`reproduce`] (the report).

pub mod baselines;
pub mod eval;
pub mod expr;
pub mod findings;
pub mod hash;
pub mod outputs;
pub mod preset;
pub mod reproduce;
pub mod runs;
pub mod slurm;
pub mod sweep;

pub use preset::{Plan, Preset};
