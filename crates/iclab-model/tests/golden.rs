//! iclab's f32 model against PyTorch (float64) on the same weights and prompts: predictions, loss
//! and every parameter gradient. Fixtures made by `python3 scripts/model_reference.py`.

use std::path::{Path, PathBuf};

use iclab_model::{Gpt, ModelConfig};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_tiny")
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn read_f64(name: &str) -> Vec<f64> {
    let bytes = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap()
}

fn model() -> Gpt {
    let m = manifest();
    let config: ModelConfig = serde_json::from_value(m["config"].clone()).unwrap();
    Gpt::from_params(config, read_f32("params.f32")).unwrap()
}

#[test]
fn tensor_names_and_shapes_match_pytorch_state_dict() {
    let m = manifest();
    let gpt = model();
    let ours: Vec<(String, Vec<usize>)> = gpt.tensors().into_iter().map(|t| (t.name, t.shape)).collect();
    let theirs: Vec<(String, Vec<usize>)> = m["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize);
            (t["name"].as_str().unwrap().to_string(), shape.collect())
        })
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn predictions_loss_and_gradients_match_pytorch() {
    let m = manifest();
    let mut gpt = model();
    let d = gpt.config.d;
    for (i, case) in m["cases"].as_array().unwrap().iter().enumerate() {
        let (b, n) = (
            case["b"].as_u64().unwrap() as usize,
            case["n"].as_u64().unwrap() as usize,
        );
        let xs = read_f32(&format!("case{i}_xs.f32"));
        let ys = read_f32(&format!("case{i}_ys.f32"));
        assert_eq!(xs.len(), b * n * d);
        let want_preds = read_f64(&format!("case{i}_preds.f64"));
        let want_grads = read_f64(&format!("case{i}_grads.f64"));

        let preds = gpt.forward(&xs, &ys, b, n).to_vec();
        let err = preds
            .iter()
            .zip(&want_preds)
            .map(|(&a, &w)| (a as f64 - w).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-5, "case {i}: predictions differ from PyTorch by {err:.2e}");
        eprintln!("case {i}: predictions within {err:.2e} of PyTorch");

        let loss = gpt.forward_loss(&xs, &ys, b, n) as f64;
        let want_loss = case["loss"].as_f64().unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5 * want_loss.max(1.0),
            "case {i}: loss {loss} vs {want_loss}"
        );

        gpt.backward();
        let mut worst = 0.0f64;
        for t in gpt.tensors() {
            let ours = &gpt.grads[t.offset..][..t.len];
            let theirs = &want_grads[t.offset..][..t.len];
            let (mut err, mut scale) = (0.0f64, 0.0f64);
            for (&a, &w) in ours.iter().zip(theirs) {
                err = err.max((a as f64 - w).abs());
                scale = scale.max(w.abs());
            }
            assert!(
                err <= 1e-5 * scale.max(1.0),
                "case {i}: gradient of {} differs from PyTorch by {err:.2e} (largest entry {scale:.2e})",
                t.name
            );
            worst = worst.max(err / scale.max(1.0));
        }
        eprintln!("case {i}: gradients within {worst:.2e} (relative to max(1, largest entry))");
    }
}
