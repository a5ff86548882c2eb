//! A tiny transformer trained briefly on dense linear regression learns in context (issue 3):
//! after k >= 2d examples its error is far below 1 (predicting 0) and below least squares' error
//! with k = d/2 examples, which is exactly 1 - k/d = 0.5 in closed form (SPEC.md, "Baselines":
//! the minimum-norm solution's expected error on dense noiseless prompts).

mod common;

use common::fresh_dir;
use iclab_core::rng::Purpose;
use iclab_core::{ClassSpec, Curriculum, PromptBatch, PromptSampler, PromptStrategy};
use iclab_model::adam::{LrSchedule, OptimizerConfig};
use iclab_model::gpt::ModelConfig;
use iclab_model::train::{load, read_metrics, train, Record, TrainConfig, TrainOptions};

const D: usize = 4;
const N: usize = 2 * D + 3;

#[test]
fn tiny_model_learns_linear_regression_in_context() {
    let cfg = TrainConfig {
        name: "learns".into(),
        seed: 3,
        steps: STEPS,
        batch_size: 64,
        checkpoint_every: STEPS,
        log_every: 50,
        eval_every: STEPS,
        eval_prompts: 64,
        model: ModelConfig {
            d: D,
            n_points: N,
            n_layer: LAYERS,
            n_head: 2,
            n_embd: WIDTH,
        },
        task: ClassSpec::Dense { normalize: false },
        inputs: PromptStrategy::Isotropic,
        curriculum: Curriculum::fixed(D, N),
        optimizer: OptimizerConfig {
            lr: LR,
            warmup_steps: 50,
            schedule: LrSchedule::Cosine,
            grad_clip: Some(1.0),
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let dir = fresh_dir("learns-in-context");
    let t0 = std::time::Instant::now();
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let seconds = t0.elapsed().as_secs_f64();

    // Fresh prompts (another seed than training's) scored with SPEC.md's metric.
    let (_, mut gpt) = load(&dir).unwrap();
    let sampler = PromptSampler::new(cfg.task.clone(), PromptStrategy::Isotropic, D, 1).unwrap();
    let prompts = sampler.prompts(1234, Purpose::Eval, 1024, N, D);
    let pred = gpt.predict(&PromptBatch::from_prompts(&prompts));
    let ey2 = sampler.expected_y2(D); // = d
    let mut err = vec![0f64; N];
    for (i, p) in prompts.iter().enumerate() {
        for (k, e) in err.iter_mut().enumerate() {
            *e += ((pred[i * N + k] - p.ys[k]) as f64).powi(2) / ey2 / prompts.len() as f64;
        }
    }
    let losses: Vec<f32> = read_metrics(&dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            Record::Train { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect();
    eprintln!("{STEPS} steps in {seconds:.2} s; error by k: {err:.3?}; train losses {losses:?}");

    // With no example nothing beats predicting 0 (error 1): the model must not be far off it.
    assert!((0.8..1.3).contains(&err[0]), "k = 0: {}", err[0]);
    let least_squares_at_half_d = 1.0 - (D / 2) as f64 / D as f64; // 0.5
    for (k, &e) in err.iter().enumerate().skip(2 * D) {
        assert!(e < 0.2, "k = {k}: error {e:.3} is not far below 1");
        assert!(
            e < least_squares_at_half_d,
            "k = {k}: error {e:.3} >= least squares at k = d/2"
        );
    }
    // And it learned from the context, not a fixed guess: the error falls with k.
    assert!(err[2 * D] < 0.5 * err[1], "{err:?}");
}

const STEPS: u64 = 1500;
const LAYERS: usize = 2;
const WIDTH: usize = 32;
const LR: f64 = 3e-3;
