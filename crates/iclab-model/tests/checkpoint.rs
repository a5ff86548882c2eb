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

#[test]
fn a_flipped_bit_anywhere_truncation_empty_and_junk_are_refused_naming_the_file() {
    let dir = fresh_dir("ckpt-every-bit");
    let cfg = small_config(5);
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let (_, path) = checkpoint::latest(&dir).unwrap().unwrap();
    let good = std::fs::read(&path).unwrap();
    Checkpoint::from_bytes(&good).unwrap();
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    // Every byte of the length prefix and of the header (metadata included), and a sample of the
    // tensor data: one flipped bit is never a silent load.
    let positions = (0..header_end).chain((header_end..good.len()).step_by(61));
    for i in positions {
        let mut bad = good.clone();
        bad[i] ^= 1 << (i % 8);
        assert!(
            Checkpoint::from_bytes(&bad).is_err(),
            "a bit flipped at byte {i} of {} (header ends at {header_end}) was loaded",
            good.len()
        );
    }

    // Through the file: the error names it. A changed metadata value keeps the header readable,
    // so the checksum is what catches it.
    let shown = path.display().to_string();
    let step_value = good.windows(10).position(|w| w == b"\"step\":\"5\"").unwrap() + 8;
    let mut meta_flip = good.clone();
    meta_flip[step_value] ^= 0x01; // "5" -> "4"
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("metadata bit", meta_flip, "checksum mismatch"),
        ("truncated", good[..good.len() - 100].to_vec(), "truncated or corrupt"),
        ("empty", Vec::new(), "empty"),
        (
            "junk",
            b"junk junk junk junk junk junk".to_vec(),
            "truncated or corrupt",
        ),
    ];
    for (what, bytes, needle) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let e = err_text(Checkpoint::load(&path));
        assert!(e.contains(&shown) && e.contains(needle), "{what}: {e}");
        let e = err_text(load(&dir));
        assert!(e.contains(&shown) && e.contains(needle), "{what} (load): {e}");
    }
}

#[test]
fn equal_states_give_byte_equal_files() {
    let (a, b) = (fresh_dir("ckpt-equal-a"), fresh_dir("ckpt-equal-b"));
    let cfg = small_config(5);
    train(&cfg, &a, &TrainOptions::default()).unwrap();
    train(&cfg, &b, &TrainOptions::default()).unwrap();
    let fa = std::fs::read(checkpoint::latest(&a).unwrap().unwrap().1).unwrap();
    let fb = std::fs::read(checkpoint::latest(&b).unwrap().unwrap().1).unwrap();
    assert!(fa == fb, "two runs of one config wrote different checkpoint bytes");
    let ck = Checkpoint::from_bytes(&fa).unwrap();
    let gpt = Gpt::from_params(ck.config.model.clone(), ck.params.clone()).unwrap();
    assert!(
        ck.to_bytes(&gpt).unwrap() == fa,
        "serialising the loaded state changed bytes"
    );
    // The metadata keys are in sorted order in the file.
    let header_end = 8 + u64::from_le_bytes(fa[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&fa[8..header_end]).to_string();
    let keys = [
        "checksum",
        "config",
        "config_hash",
        "curriculum_d",
        "curriculum_n",
        "format",
        "step",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| header.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
}

#[test]
fn resuming_with_another_keep_policy_is_refused() {
    let dir = fresh_dir("ckpt-keep-policy");
    let mut cfg = small_config(11);
    cfg.checkpoint_every = 2;
    cfg.keep_every = 4;
    let killed = TrainOptions {
        stop_after: Some(7),
        ..TrainOptions::default()
    };
    train(&cfg, &dir, &killed).unwrap();
    let before: Vec<u64> = checkpoint::list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(before, vec![4, 6]);
    let mut other = cfg.clone();
    other.keep_every = 0;
    let e = err_text(train(&other, &dir, &TrainOptions::default()));
    assert!(
        e.contains("keep_every") && e.contains("= 0") && e.contains("--set keep_every=4"),
        "{e}"
    );
    // Nothing was pruned by the refused call; the first policy resumes and finishes.
    let after: Vec<u64> = checkpoint::list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(after, before);
    train(&cfg, &dir, &TrainOptions::default()).unwrap();
    let steps: Vec<u64> = checkpoint::list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(steps, vec![4, 8, 11]);
}

#[test]
fn a_run_that_died_before_its_first_checkpoint_is_replaced() {
    let cfg = small_config(5);
    let mut other = cfg.clone();
    other.optimizer.lr = 0.5;
    for (name, text) in [
        ("ckpt-died-other", toml::to_string(&other).unwrap()),
        ("ckpt-died-empty", String::new()),
        ("ckpt-died-torn", "name = \"t\"\nsteps = ".to_string()),
    ] {
        let dir = fresh_dir(name);
        std::fs::write(dir.join("config.toml"), text).unwrap();
        std::fs::write(dir.join("metrics.jsonl"), "{\"kind\":\"train\",\"step\":0,").unwrap();
        let s = train(&cfg, &dir, &TrainOptions::default()).unwrap();
        assert_eq!((s.steps_done, s.resumed_from), (5, None), "{name}");
        let saved: iclab_model::train::TrainConfig =
            toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
        assert_eq!(saved, cfg, "{name}");
    }
}
