//! `iclab sweep` end to end on a 2 x 2 grid of tiny models (a few dozen steps each): the files and
//! their columns, the cache (a rerun trains nothing and rewrites sweep.csv byte for byte), results
//! independent of --jobs, and bad grids refused with the field named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tiny training config: d = 2, n = 6, one layer of width 16, 30 steps.
const TRAIN: &str = r#"
steps = 30
batch_size = 16
log_every = 1
eval_every = 0
[model]
d = 2
n_points = 6
n_layer = 1
n_head = 1
n_embd = 16
"#;

const GRID: &str = r#"
name = "tiny"
[base]
config = "train.toml"
set = ["optimizer.warmup_steps=5"]
[vary]
"optimizer.lr" = [1e-3, 3e-3]
seed = [0, 1]
[eval]
prompts = 64
seed = 7
baselines = ["least_squares", "ridge"]
ks = [2, 4]
"#;

/// A fresh folder holding train.toml and grid.toml (with `grid` as its text).
fn setup(tag: &str, grid: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iclab-sweep-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train.toml"), TRAIN).unwrap();
    std::fs::write(dir.join("grid.toml"), grid).unwrap();
    dir
}

fn sweep(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(["--threads", "2", "sweep"])
        .arg(dir.join("grid.toml"))
        .args(extra)
        .output()
        .expect("running iclab")
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "iclab sweep failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn out_arg(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn sweep_writes_one_row_per_grid_point() {
    let dir = setup("rows", GRID);
    let out = out_arg(&dir, "out");
    ok(sweep(&dir, &["--out", &out]));
    let out = PathBuf::from(out);
    for f in [
        "grid.toml",
        "sweep.csv",
        "baselines.csv",
        "timings.csv",
        "sweep.svg",
        "sweep.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let rows = csv(&out.join("sweep.csv"));
    let errs: Vec<String> = (1..6).map(|k| format!("err_k{k}")).collect();
    let mut header = vec!["optimizer.lr", "seed", "run_key", "steps", "final_loss"];
    header.extend(errs.iter().map(String::as_str));
    assert_eq!(rows[0], header);
    assert_eq!(rows.len(), 5, "a header and 4 grid points");
    for r in &rows[1..] {
        assert_eq!(r[3], "30");
        for v in &r[4..] {
            let v: f64 = v.parse().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{r:?}");
        }
    }
    let base = csv(&out.join("baselines.csv"));
    assert_eq!(base.len(), 3);
    assert_eq!(base[0][0], "baseline");
    assert_eq!(base[1][0], "least_squares");
    // Least squares is exact from k = d = 2 on noiseless dense prompts.
    assert!(base[1][2].parse::<f64>().unwrap() < 1e-6, "{:?}", base[1]);
    let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert!(svg.contains("optimizer.lr") && svg.contains("seed"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rerun_trains_nothing_and_writes_identical_csv() {
    let dir = setup("cache", GRID);
    let out = out_arg(&dir, "out");
    ok(sweep(&dir, &["--out", &out]));
    let first = std::fs::read(Path::new(&out).join("sweep.csv")).unwrap();
    let dry = ok(sweep(&dir, &["--out", &out, "--dry-run"]));
    assert!(String::from_utf8_lossy(&dry.stderr).contains("4 configs (4 trained already)"));
    let again = ok(sweep(&dir, &["--out", &out]));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("4 configs (0 trained now)"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(first, std::fs::read(Path::new(&out).join("sweep.csv")).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jobs_do_not_change_the_results() {
    let dir = setup("jobs", GRID);
    let (one, two) = (out_arg(&dir, "one"), out_arg(&dir, "two"));
    ok(sweep(&dir, &["--out", &one, "--jobs", "1"]));
    ok(sweep(&dir, &["--out", &two, "--jobs", "2"]));
    // sweep.csv holds no timings (those are in timings.csv): the same bytes.
    let bytes = |o: &str| std::fs::read(Path::new(o).join("sweep.csv")).unwrap();
    assert_eq!(bytes(&one), bytes(&two));
    let timings = csv(&Path::new(&one).join("timings.csv"));
    assert_eq!(timings[0], ["optimizer.lr", "seed", "run_key", "steps_per_s", "wall_s"]);
    assert_eq!(timings.len(), 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_grids_fail_with_the_field_named() {
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "unknown",
            GRID.replace("[eval]", "[eval]\nprompt = 3"),
            &["unknown field `prompt`", "prompts"],
        ),
        ("empty", GRID.replace("[0, 1]", "[]"), &["vary.\"seed\"", "non-empty"]),
        (
            "baseline",
            GRID.replace("\"ridge\"", "\"rigde\""),
            &["rigde", "least_squares"],
        ),
        (
            "key",
            GRID.replace("seed = [0, 1]", "sed = [0, 1]"),
            &["grid point 1", "sed"],
        ),
        (
            "bayes",
            GRID.replace("\"ridge\"", "\"bayes:dense\""),
            &["bayes:dense", "base.config"],
        ),
    ];
    for (tag, grid, words) in cases {
        let dir = setup(tag, &grid);
        let o = sweep(&dir, &["--out", &out_arg(&dir, "out")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{tag}: {err}");
        for w in words {
            assert!(err.contains(w), "{tag}: {w:?} not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!dir.join("out").exists(), "{tag}: nothing is written for a bad grid");
        let _ = std::fs::remove_dir_all(&dir);
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(["sweep", "/nonexistent/grid.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading grid file /nonexistent/grid.toml"));
}
