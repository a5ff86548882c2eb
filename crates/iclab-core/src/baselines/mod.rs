//! Statistical baselines (SPEC.md, "Baselines"). Each fits only the k examples before the query
//! and predicts its target; k = 0 predicts 0.

use crate::prompt::Prompt;

/// A learner evaluated on prompts.
pub trait Baseline: Send + Sync {
    /// Display name, e.g. `least_squares`, `lasso(alpha=0.01)`.
    fn name(&self) -> String;
    /// Predictions of the query after k = 0..n-1 examples.
    fn predict(&self, prompt: &Prompt) -> Vec<f64>;
}
