//! Checkpoint failures: corrupt, truncated and mismatched checkpoints are refused
//! with a message saying what is wrong; a run directory made with another configuration is refused
//! naming the fields; a diverging run stops with a clear error and keeps its last good checkpoint;
//! old checkpoints are pruned to the last one plus every keep_every-th.

mod common;

use common::{bits, fresh_dir, small_config};
use iclab_model::checkpoint::{self, Checkpoint};
use iclab_model::gpt::{Gpt, ModelConfig};
use iclab_model::train::{load, train, TrainOptions};

fn err_text<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn round_trip_and_gpt2_names() {
    let dir = fresh_dir("ckpt-roundtrip");
    let cfg = small_config(5);
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let (step, path) = checkpoint::latest(&dir).unwrap().unwrap();
    assert_eq!(step, 5);
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.config, cfg);
    let (loaded_cfg, gpt) = load(&dir).unwrap();
    assert_eq!(loaded_cfg, cfg);
    assert_eq!(bits(&gpt.params), bits(&ck.params));
    // The file is plain safetensors under the names of Gpt::tensors (GPT-2's), plus the moments.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().iter().map(|s| s.to_string()).collect();
    names.sort();
    let mut want: Vec<String> = gpt.tensors().into_iter().map(|t| t.name).collect();
    want.extend(["optim.m".to_string(), "optim.v".to_string()]);
    want.sort();
    assert_eq!(names, want);
    for t in gpt.tensors() {
        let view = st.tensor(&t.name).unwrap();
        assert_eq!(view.shape(), &t.shape[..], "{}", t.name);
        let first = f32::from_le_bytes(view.data()[..4].try_into().unwrap());
        assert_eq!(first.to_bits(), gpt.params[t.offset].to_bits(), "{}", t.name);
    }
}

#[test]
fn corrupt_truncated_and_foreign_files_are_refused() {
    let dir = fresh_dir("ckpt-corrupt");
    let cfg = small_config(5);
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let (_, path) = checkpoint::latest(&dir).unwrap().unwrap();
    let good = std::fs::read(&path).unwrap();

    // One flipped bit in the tensor data: the structure is intact, the checksum is not.
    let mut flipped = good.clone();
    let at = flipped.len() - 3; // inside the last tensor (data follows the header)
    flipped[at] ^= 0x10;
    let e = err_text(Checkpoint::from_bytes(&flipped));
    assert!(e.contains("checksum mismatch"), "{e}");

    // Truncated (a copy cut short, a full disk).
    let e = err_text(Checkpoint::from_bytes(&good[..good.len() / 2]));
    assert!(e.contains("truncated or corrupt"), "{e}");
    let e = err_text(Checkpoint::from_bytes(&good[..4]));
    assert!(e.contains("truncated or corrupt"), "{e}");

    // Not a checkpoint at all.
    let e = err_text(Checkpoint::from_bytes(b"hello, world, this is not a checkpoint"));
    assert!(e.contains("truncated or corrupt"), "{e}");

    // A run whose latest checkpoint is corrupt is not resumed from it (nor silently restarted).
    std::fs::write(&path, &flipped).unwrap();
    let e = err_text(train(&cfg, &dir, &TrainOptions::default()));
    assert!(e.contains("cannot resume") && e.contains("checksum mismatch"), "{e}");
    let e = err_text(load(&dir));
    assert!(e.contains("checksum mismatch"), "{e}");
}

#[test]
fn mismatched_checkpoints_and_run_dirs_are_refused_saying_what_differs() {
    let dir = fresh_dir("ckpt-mismatch");
    let cfg = small_config(5);
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let (_, path) = checkpoint::latest(&dir).unwrap().unwrap();

    // Another d and another width requested for this checkpoint.
    let mut other = cfg.clone();
    other.model.d = 4;
    other.curriculum.dims.end = 4;
    other.model.n_embd = 32;
    let e = err_text(Checkpoint::load_for(&path, &other));
    assert!(
        e.contains("model.d: 3 vs 4") && e.contains("model.n_embd: 16 vs 32"),
        "{e}"
    );

    // The same run directory asked to train another configuration.
    let mut lr = cfg.clone();
    lr.optimizer.lr = 0.1;
    let e = err_text(train(&lr, &dir, &TrainOptions::default()));
    assert!(e.contains("optimizer.lr: 0.003 vs 0.1") && e.contains("--fresh"), "{e}");
    // Bookkeeping fields may change (they do not change the trajectory).
    let mut more_logs = cfg.clone();
    more_logs.checkpoint_every = 2;
    more_logs.eval_every = 3;
    train(&more_logs, &dir, &TrainOptions::default()).unwrap();

    // A file whose tensors do not fit the model its own metadata describes (hand-made mismatch:
    // tensors of a d = 3 model under a config that says d = 4).
    let small = Gpt::new(cfg.model.clone(), 0);
    let ck = Checkpoint {
        config: other.clone(),
        step: 5,
        params: small.params.clone(),
        m: vec![0.0; small.params.len()],
        v: vec![0.0; small.params.len()],
    };
    let bytes = ck.to_bytes(&small).unwrap();
    let e = err_text(Checkpoint::from_bytes(&bytes));
    assert!(e.contains("shape") && e.contains("read_in.weight"), "{e}");
    let _: ModelConfig = other.model;
}

#[test]
fn divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint() {
    let dir = fresh_dir("ckpt-nan");
    let mut cfg = small_config(20);
    cfg.optimizer.lr = 1e30;
    cfg.optimizer.warmup_steps = 0;
    cfg.optimizer.grad_clip = None;
    cfg.checkpoint_every = 1;
    let e = err_text(train(&cfg, &dir, &TrainOptions::default()));
    assert!(e.contains("training diverged at step"), "{e}");
    assert!(e.contains("optimizer.lr"), "{e}");
    // Every checkpoint left is loadable and finite; the error names the last one when there is one.
    for (step, path) in checkpoint::list(&dir).unwrap() {
        assert!(e.contains(&path.display().to_string()) || step < checkpoint::latest(&dir).unwrap().unwrap().0);
        let ck = Checkpoint::load(&path).unwrap();
        assert!(ck.params.iter().all(|p| p.is_finite()));
    }
}

#[test]
fn pruning_keeps_the_last_and_every_keep_every_th() {
    let dir = fresh_dir("ckpt-prune");
    let mut cfg = small_config(11);
    cfg.checkpoint_every = 2;
    cfg.keep_every = 4;
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let steps: Vec<u64> = checkpoint::list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(steps, vec![4, 8, 11]);
    // No temporary files are left behind by the atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}
