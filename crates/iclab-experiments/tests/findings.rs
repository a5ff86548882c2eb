//! The findings' criteria can fail and can pass:
//! - fed untrained models (GPT-2 initialisation) through the same evaluation and check code, every
//!   experiment's finding fails at the laptop scale;
//! - fed the exact Bayes-optimal predictor of each model's pretraining distribution in place of the
//!   model (the ideal learner of that distribution), E1 and E2 hold.

use iclab_core::classes::Function;
use iclab_core::{Prompt, PromptBatch};
use iclab_experiments::eval::{evaluate, ModelSource};
use iclab_experiments::findings;
use iclab_experiments::preset::{Plan, Preset};
use iclab_experiments::runs::LoadedModels;

/// The laptop plan with fewer evaluation prompts (the criteria do not depend on the count).
fn plan(id: &str) -> Plan {
    let mut plan = Preset::builtin(id).unwrap().plan("laptop", 1).unwrap();
    plan.scale.eval_prompts = 200;
    for e in &mut plan.evals {
        e.prompts = 200;
    }
    plan
}

#[test]
fn every_finding_fails_on_untrained_models() {
    for id in ["E1", "E2", "E3", "E4", "E5", "E6", "E7"] {
        let plan = plan(id);
        let mut models = LoadedModels::untrained(&plan).unwrap();
        let data = evaluate(&plan, &mut models, None, &mut |_| {}).unwrap();
        let f = findings::check(&plan, &data).unwrap();
        let failing: Vec<&str> = f
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.criterion.text.as_str())
            .collect();
        assert!(!f.passed(), "{id} holds for untrained models: {:#?}", f.checks);
        assert!(!failing.is_empty());
    }
}

/// Each model replaced by the Bayes-optimal predictor of its pretraining distribution.
struct BayesModels<'a> {
    plan: &'a Plan,
}

impl ModelSource for BayesModels<'_> {
    fn predict(&mut self, name: &str, _seed: usize, batch: &PromptBatch) -> anyhow::Result<Vec<f32>> {
        let e = &self.plan.evals[0];
        let b = self.plan.baseline(&format!("bayes:{name}"), e)?;
        let mut out = Vec::with_capacity(batch.b * batch.n);
        for i in 0..batch.b {
            let p = Prompt {
                d: batch.d,
                n: batch.n,
                xs: batch.xs[i * batch.n * batch.d..(i + 1) * batch.n * batch.d].to_vec(),
                ys: batch.ys[i * batch.n..(i + 1) * batch.n].to_vec(),
                queries: None,
                component: 0,
                function: Function::Linear { w: vec![0.0; batch.d] },
            };
            out.extend(b.baseline.predict(&p).into_iter().map(|v| v as f32));
        }
        Ok(out)
    }
    fn cache_id(&self, _: &str, _: usize) -> Option<String> {
        None
    }
}

#[test]
fn e1_and_e2_hold_for_the_bayes_optimal_learners() {
    for id in ["E1", "E2"] {
        let plan = plan(id);
        let mut models = BayesModels { plan: &plan };
        let data = evaluate(&plan, &mut models, None, &mut |_| {}).unwrap();
        let f = findings::check(&plan, &data).unwrap();
        assert!(f.passed(), "{id} fails for the Bayes-optimal learners: {:#?}", f.checks);
    }
}
