//! Shared helpers of the training tests: a small config that exercises every part of the loop
//! (curriculum growth, warm-up + cosine, clipping, weight decay) and fresh run directories.
#![allow(dead_code)]

use std::path::PathBuf;

use iclab_core::curriculum::Schedule;
use iclab_core::{ClassSpec, Curriculum, PromptStrategy};
use iclab_model::adam::{LrSchedule, OptimizerConfig};
use iclab_model::gpt::ModelConfig;
use iclab_model::train::TrainConfig;

/// d 3, n 7, 1 layer x 2 heads x 16; the curriculum grows d 2 -> 3 and n 5 -> 7 at step 10.
pub fn small_config(steps: u64) -> TrainConfig {
    TrainConfig {
        name: "t".into(),
        seed: 11,
        steps,
        batch_size: 8,
        checkpoint_every: 5,
        keep_every: 0,
        log_every: 1,
        eval_every: 10,
        eval_prompts: 16,
        model: ModelConfig {
            d: 3,
            n_points: 7,
            n_layer: 1,
            n_head: 2,
            n_embd: 16,
            tokens: Default::default(),
        },
        task: ClassSpec::Mixture {
            weights: vec![0.5, 0.5],
            classes: vec![
                ClassSpec::Dense { normalize: false },
                ClassSpec::Sparse {
                    nnz: 1,
                    normalize: false,
                },
            ],
        },
        inputs: PromptStrategy::Isotropic,
        curriculum: Curriculum {
            dims: Schedule {
                start: 2,
                end: 3,
                inc: 1,
                interval: 10,
            },
            points: Schedule {
                start: 5,
                end: 7,
                inc: 2,
                interval: 10,
            },
        },
        optimizer: OptimizerConfig {
            lr: 3e-3,
            weight_decay: 0.01,
            warmup_steps: 4,
            schedule: LrSchedule::Cosine,
            grad_clip: Some(0.5),
            ..Default::default()
        },
    }
}

/// An empty directory for one test under the target's temporary directory.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("iclab-model-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bit patterns of a float buffer (exact comparison, NaN-safe).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
