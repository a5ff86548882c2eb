//! iclab-core: everything of the in-context learning study that needs no neural network.
//!
//! Data flows one way: [`classes`] (function classes, docs/study.md) -> [`prompt`] (input
//! distributions, prompt strategies, samplers) -> [`baselines`] (statistical learners fitted on
//! each prefix) -> [`metrics`] (normalised per-k error curves with bootstrap bands). [`rng`] keys
//! every random draw by (seed, purpose, index); [`config`] merges defaults, TOML and overrides into
//! typed plans.

pub mod baselines;
pub mod classes;
pub mod config;
pub mod curriculum;
pub mod error;
pub mod metrics;
pub mod prompt;
pub mod rng;

pub use classes::{ClassSpec, FrequencyDist, Function, CLASS_NAMES};
pub use curriculum::{Curriculum, Schedule};
pub use error::ConfigError;
pub use prompt::{Prompt, PromptBatch, PromptSampler, PromptStrategy};
