//! Bad and inconsistent input, end to end: each case runs the binary and checks the exit status
//! and the words of the message (the field, the value, what is allowed), and that nothing panics.
//! Also: a second writer on a locked folder, partial reports, overwrites, and Ctrl-C's status.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use iclab_model::lock::{DirLock, LOCK_FILE};

fn iclab(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run iclab");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("iclab-bad-input")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny `iclab train` run: `--preset tiny` cut to a few steps.
const TINY: [&str; 8] = [
    "train",
    "--preset",
    "tiny",
    "--quiet",
    "--set",
    "steps=3",
    "--set",
    "optimizer.warmup_steps=0",
];

#[test]
fn bad_input_is_refused_with_the_rule() {
    let dir = scratch("table");
    let pid = std::process::id().to_string();

    // Setup for the stateful cases.
    // A finished run whose keep policy is 2.
    let mut keep = TINY.to_vec();
    keep.extend(["--set", "keep_every=2", "--name", "keep"]);
    assert_eq!(iclab(&dir, &keep).0, 0);
    // A run that died before its first checkpoint, under another configuration.
    std::fs::create_dir_all(dir.join("runs/died")).unwrap();
    std::fs::write(dir.join("runs/died/config.toml"), "name = \"died\"\nseed = 99\n").unwrap();
    // An empty config.toml.
    std::fs::create_dir_all(dir.join("runs/empty")).unwrap();
    std::fs::write(dir.join("runs/empty/config.toml"), "").unwrap();
    // Results of an earlier `iclab curves`.
    let curves = ["curves", "--d", "2", "--n", "3", "--prompts", "4", "--out", "curves"];
    assert_eq!(iclab(&dir, &curves).0, 0);
    // A folder holding a report of E1 and E2.
    std::fs::create_dir_all(dir.join("report")).unwrap();
    std::fs::write(dir.join("report/summary.json"), r#"{"experiments": ["E1", "E2"]}"#).unwrap();
    // Folders held by this process (another writer).
    let _run_lock = DirLock::acquire(&dir.join("runs/busy")).unwrap();
    let _out_lock = DirLock::acquire(&dir.join("busy-out")).unwrap();
    let _sweep_lock = DirLock::acquire(&dir.join("busy-sweep")).unwrap();
    std::fs::write(
        dir.join("grid.toml"),
        "name = \"g\"\n[base]\nconfig = \"train.toml\"\n[vary]\nseed = [0, 1]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("train.toml"),
        "steps = 3\nbatch_size = 4\n[model]\nd = 2\nn_points = 6\nn_layer = 1\nn_head = 1\nn_embd = 16\n",
    )
    .unwrap();

    let with = |extra: &[&str]| -> Vec<String> { TINY.iter().chain(extra).map(|s| s.to_string()).collect() };
    let args = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<(Vec<String>, i32, Vec<String>)> = vec![
        (
            args(&["--threads", "0", "classes"]),
            2,
            args(&["--threads", "'0'", ">= 1"]),
        ),
        (args(&["classes", "--d", "0"]), 2, args(&["--d", "'0'", ">= 1"])),
        (
            args(&["reproduce", "--train-jobs", "0"]),
            2,
            args(&["--train-jobs", "'0'", ">= 1"]),
        ),
        (
            args(&["sweep", "none.toml", "--jobs", "0"]),
            2,
            args(&["--jobs", "'0'", ">= 1"]),
        ),
        (
            args(&["train", "--preset", "tiny", "--set", "optimizer.warmup_steps=6000"]),
            1,
            args(&["optimizer.warmup_steps", "6000", "<= steps (5000)"]),
        ),
        // The hint's example is valid: `batch_size=64` is accepted (the next error is about steps).
        (
            args(&["train", "--preset", "tiny", "--set", "steps"]),
            1,
            args(&["`--set`", "steps", "e.g. batch_size=64"]),
        ),
        (
            args(&[
                "train",
                "--preset",
                "tiny",
                "--set",
                "batch_size=64",
                "--set",
                "steps=0",
            ]),
            1,
            args(&["`steps` = 0", ">= 1"]),
        ),
        (args(&["curves", "--set", "d"]), 1, args(&["`--set`", "e.g. d=20"])),
        // Absurd sizes are refused before anything is allocated, naming the field.
        (
            args(&[
                "train",
                "--preset",
                "tiny",
                "--set",
                "model.n_embd=1000000",
                "--set",
                "model.n_head=1",
            ]),
            1,
            args(&[
                "`model.n_embd` = 1000000",
                "fits in this machine's",
                "GiB for parameters",
            ]),
        ),
        (
            args(&["train", "--preset", "tiny", "--set", "model.n_layer=100000000"]),
            1,
            args(&["`model.n_layer` = 100000000", "fits in this machine's"]),
        ),
        (
            args(&["train", "--preset", "tiny", "--set", "batch_size=1000000000000"]),
            1,
            args(&["`batch_size` = 1000000000000", "GiB for activations"]),
        ),
        (
            with(&["--name", "busy"]),
            1,
            vec![format!("runs/busy is in use by PID {pid}")],
        ),
        (
            args(&["reproduce", "--scale", "smoke", "--only", "E1", "--out", "busy-out"]),
            1,
            vec![format!("busy-out is in use by PID {pid}")],
        ),
        (
            args(&["sweep", "grid.toml", "--out", "busy-sweep"]),
            1,
            vec![format!("busy-sweep is in use by PID {pid}")],
        ),
        (
            with(&["--set", "keep_every=0", "--name", "keep"]),
            1,
            args(&["`keep_every` = 0", "allowed: 2", "--set keep_every=2"]),
        ),
        (
            with(&["--name", "died"]),
            0,
            args(&["stopped before its first checkpoint", "done: 3 / 3"]),
        ),
        (
            with(&["--name", "empty"]),
            0,
            args(&["stopped before its first checkpoint", "done: 3 / 3"]),
        ),
        (
            curves.iter().map(|s| s.to_string()).collect(),
            1,
            args(&["already holds results", "curves.csv", "--force"]),
        ),
        (
            args(&["reproduce", "--scale", "smoke", "--only", "E1", "--out", "report"]),
            1,
            args(&["holds a report of E1, E2", "without E2", "--only E1,E2", "--force"]),
        ),
    ];
    let mut failures = Vec::new();
    for (args, code, words) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, text) = iclab(&dir, &a);
        let missing: Vec<&String> = words.iter().filter(|w| !text.contains(w.as_str())).collect();
        if got != *code || !missing.is_empty() || text.contains("panicked") {
            failures.push(format!(
                "iclab {}: exit {got} (want {code}), lacks {missing:?}:\n{text}",
                args.join(" ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // --force overwrites the curves.
    let mut forced = curves.to_vec();
    forced.push("--force");
    assert_eq!(iclab(&dir, &forced).0, 0);
}

/// Ctrl-C during `iclab train`: a checkpoint is written, and the exit status is 130.
#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_130() {
    let dir = scratch("ctrl-c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args([
            "train",
            "--preset",
            "tiny",
            "--quiet",
            "--name",
            "c",
            "--set",
            "steps=1000000",
            "--set",
            "model.n_layer=1",
            "--set",
            "batch_size=4",
        ])
        .current_dir(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The lock holds the PID once training starts (the handler is installed before).
    let lock = dir.join("runs/c").join(LOCK_FILE);
    let t0 = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim() != child.id().to_string()) {
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("training did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let checkpoints = std::fs::read_dir(dir.join("runs/c/checkpoints")).unwrap().count();
    assert_eq!(checkpoints, 1);
}
