//! `iclab curves` end to end: bad input is a clear error (field, value, what is allowed) with a
//! non-zero exit and no panic; good input writes CSV and JSON.

use std::process::Command;

fn iclab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(args)
        .output()
        .expect("run iclab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `iclab curves` with `args` and checks it fails cleanly naming every `needles`.
fn assert_bad(args: &[&str], needles: &[&str]) {
    let mut all = vec!["curves", "--out", "/nonexistent/never"];
    for (flag, value) in [("--prompts", "4"), ("--n", "3"), ("--d", "4")] {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    all.extend_from_slice(args);
    let (code, _, err) = iclab(&all);
    assert_ne!(code, 0, "{args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}: {err}");
    }
}

#[test]
fn curves_rejects_bad_input_naming_field_value_and_allowed() {
    assert_bad(&["--class", "spars"], &["--class", "spars", "sparse"]);
    assert_bad(&["--class", "sparse", "--nnz", "9"], &["nnz", "9", "1..=4"]);
    assert_bad(&["--mixture", "dense=-0.5,sparse=1.5"], &["weights[0]", "-0.5", ">= 0"]);
    assert_bad(&["--mixture", "dense=0.5,sparse=0.6"], &["weights", "sum to 1"]);
    assert_bad(&["--mixture", "dense=half"], &["--mixture", "half", "number"]);
    assert_bad(&["--class", "convex", "--alpha", "1.5"], &["alpha", "1.5", "[0, 1]"]);
    assert_bad(&["--class", "dense", "--alpha", "0.5"], &["--alpha", "convex"]);
    assert_bad(&["--class", "dense", "--n", "0"], &["`n`", "0", ">= 1"]);
    assert_bad(&["--inputs", "tilted"], &["--inputs", "tilted", "skewed"]);
    assert_bad(&["--task", "{ class = \"sparse\", nz = 2 }"], &["--task", "nz"]);
    assert_bad(&["--task", "{ class = "], &["--task", "TOML"]);
    assert_bad(&["--set", "dd=3"], &["dd"]);
}

#[test]
fn curves_rejects_a_malformed_config_file() {
    let dir = std::env::temp_dir().join(format!("iclab-curves-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "d = 4\n[task]\nclass = \"sparse\"\nnnz = \"two\"\n").unwrap();
    assert_bad(&["--config", path.to_str().unwrap()], &["bad.toml", "task", "two"]);
    std::fs::write(&path, "d = 4\nprompt = 3\n").unwrap();
    assert_bad(&["--config", path.to_str().unwrap()], &["prompt"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn curves_writes_csv_and_json_with_selection_cost_for_a_mixture() {
    let dir = std::env::temp_dir().join(format!("iclab-curves-ok-{}", std::process::id()));
    let (code, out, err) = iclab(&[
        "curves",
        "--mixture",
        "dense=0.5,sparse=0.5",
        "--d",
        "5",
        "--n",
        "8",
        "--prompts",
        "32",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("selection_cost"), "{out}");
    let csv = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    assert!(csv.starts_with("curve,k,mean,std,lo,hi\n"));
    assert!(csv.contains("\"least_squares\",7,"));
    // k = 0 predicts 0 for every baseline: identical rows.
    let row0 = |name: &str| -> String {
        let prefix = format!("\"{name}\",0,");
        csv.lines().find(|l| l.starts_with(&prefix)).unwrap()[prefix.len()..].to_string()
    };
    assert_eq!(row0("least_squares"), row0("lasso(alpha=0.1)"));
    assert_eq!(row0("least_squares"), row0("3-nn"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("curves.json")).unwrap()).unwrap();
    assert_eq!(json["config"]["d"], 5);
    assert!(json["selection_cost"]["points"].as_array().unwrap().len() == 8);
    std::fs::remove_dir_all(&dir).ok();
}
