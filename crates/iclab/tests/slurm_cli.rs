//! `--slurm` without a cluster: `sbatch` and `squeue` are stand-in scripts on PATH that record their
//! arguments and print job ids, and the array tasks are run here one by one as Slurm would run
//! them (`iclab train --manifest M --index i`). Checks the scripts, the submission (array, then the
//! collect job afterok), that tasks + `sweep --collect` give a local sweep's sweep.csv byte for
//! byte, and the errors: a missing model or a failed task named with its log, sbatch missing, an
//! earlier submission still queued, bad flags. scripts/slurm-test runs the same on a real Slurm.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
[vary]
seed = [0, 1, 2, 3]
[eval]
prompts = 64
baselines = ["least_squares"]
"#;

/// A fresh folder with train.toml, grid.toml and bin/ holding stand-in `sbatch` and `squeue`.
fn setup(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iclab-slurm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("train.toml"), TRAIN).unwrap();
    std::fs::write(dir.join("grid.toml"), GRID).unwrap();
    let sbatch = dir.join("bin/sbatch");
    // Job ids 101, 102, ... in call order; every call's arguments go to sbatch.log.
    std::fs::write(
        &sbatch,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\necho $((100 + $(wc -l < {log})))\n",
            log = dir.join("sbatch.log").display()
        ),
    )
    .unwrap();
    // Prints squeue.txt (the jobs "still queued"), if any.
    std::fs::write(
        dir.join("bin/squeue"),
        format!(
            "#!/bin/sh\ncat {} 2>/dev/null\nexit 0\n",
            dir.join("squeue.txt").display()
        ),
    )
    .unwrap();
    for f in ["sbatch", "squeue"] {
        Command::new("chmod")
            .arg("+x")
            .arg(dir.join("bin").join(f))
            .status()
            .unwrap();
    }
    dir
}

fn iclab(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(args)
        .env("PATH", path)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .expect("running iclab")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn fails(o: Output, words: &[&str]) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    for w in words {
        assert!(t.contains(w), "{w:?} not in {t}");
    }
    t
}

/// The manifest's run keys, in task order.
fn manifest_keys(out: &Path) -> (PathBuf, Vec<String>) {
    let m = std::fs::read_dir(out.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("manifest-"))
        .expect("a manifest");
    let keys = std::fs::read_to_string(&m)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (m, keys)
}

fn task(dir: &Path, manifest: &Path, i: usize) -> Output {
    iclab(
        dir,
        &[
            "--threads",
            "1",
            "train",
            "--quiet",
            "--manifest",
            &manifest.display().to_string(),
            "--index",
            &i.to_string(),
        ],
        &[("SLURM_ARRAY_JOB_ID", "101")],
    )
}

#[test]
fn dry_run_writes_the_scripts_and_submits_nothing() {
    let dir = setup("dry");
    let out = dir.join("out");
    let o = ok(iclab(
        &dir,
        &[
            "sweep",
            "grid.toml",
            "--out",
            "out",
            "--slurm",
            "--dry-run",
            "--max-running",
            "2",
            "--time",
            "0:30:00",
            "--partition",
            "gpu",
            "--gres",
            "gpu:1",
            "--cpus-per-task",
            "2",
        ],
        &[],
    ));
    let t = text(&o);
    for w in [
        "4 model(s) to train, 0 finished already",
        "#SBATCH --array=0-3%2",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=0:30:00",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --requeue",
        "train --manifest",
        "--index \"$SLURM_ARRAY_TASK_ID\"",
        &format!("sweep --collect {}", out.display()),
        "--dependency=afterok:<array job id>",
        "nothing submitted",
    ] {
        assert!(t.contains(w), "{w:?} not in {t}");
    }
    assert!(!dir.join("sbatch.log").exists(), "a dry run submits nothing");
    let (_, keys) = manifest_keys(&out);
    assert_eq!(keys.len(), 4);
    // The manifest holds the sweep's own run keys (as `sweep --dry-run` lists them).
    let plan = text(&ok(iclab(
        &dir,
        &["sweep", "grid.toml", "--out", "out", "--dry-run"],
        &[],
    )));
    for k in &keys {
        assert!(plan.contains(k.as_str()), "{k} not in {plan}");
        assert!(out.join("slurm/configs").join(format!("{k}.toml")).is_file());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn array_tasks_then_collect_equal_a_local_sweep() {
    let dir = setup("array");
    let out = dir.join("out");
    ok(iclab(
        &dir,
        &["--threads", "2", "sweep", "grid.toml", "--out", "local"],
        &[],
    ));
    let o = ok(iclab(&dir, &["sweep", "grid.toml", "--out", "out", "--slurm"], &[]));
    assert!(text(&o).contains("submitted array job 101 (4 task(s)"), "{}", text(&o));
    let calls = std::fs::read_to_string(dir.join("sbatch.log")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].ends_with("slurm/train.sbatch"), "{calls:?}");
    assert!(
        calls[1].contains("--dependency=afterok:101 --kill-on-invalid-dep=yes")
            && calls[1].ends_with("slurm/collect.sbatch"),
        "{calls:?}"
    );
    let jobs = std::fs::read_to_string(out.join("slurm/jobs.jsonl")).unwrap();
    assert!(
        jobs.contains("\"train_job\":\"101\"") && jobs.contains("\"collect_job\":\"102\""),
        "{jobs}"
    );

    let (manifest, keys) = manifest_keys(&out);
    for i in 0..3 {
        ok(task(&dir, &manifest, i));
    }
    // Task 3 has not run: collect writes nothing and names it, its task and the log it lacks.
    fails(
        iclab(&dir, &["sweep", "--collect", "out"], &[]),
        &[
            "1 of 4 models",
            &format!("{}: not trained yet", keys[3]),
            "array task 3 of job 101 left no log",
            "train-101_3.out",
        ],
    );
    assert!(!out.join("sweep.csv").exists());
    ok(task(&dir, &manifest, 3));
    // A task whose model is finished trains nothing.
    assert!(text(&ok(task(&dir, &manifest, 0))).contains("already trained"));
    ok(iclab(&dir, &["sweep", "--collect", "out"], &[]));
    for f in ["sweep.csv", "baselines.csv"] {
        assert_eq!(
            std::fs::read(dir.join("local").join(f)).unwrap(),
            std::fs::read(out.join(f)).unwrap(),
            "{f}"
        );
    }

    // An earlier submission still queued: refused, naming it.
    std::fs::write(dir.join("squeue.txt"), "101 101\n").unwrap();
    fails(
        iclab(&dir, &["sweep", "grid.toml", "--out", "out", "--slurm"], &[]),
        &["job(s) 101 of an earlier submission", "scancel 101"],
    );
    // Nothing left to train: the collect job alone, with no dependency.
    std::fs::remove_file(dir.join("squeue.txt")).unwrap();
    let o = ok(iclab(&dir, &["sweep", "grid.toml", "--out", "out", "--slurm"], &[]));
    assert!(
        text(&o).contains("every model is trained: submitted collect job 103 only"),
        "{}",
        text(&o)
    );
    let calls = std::fs::read_to_string(dir.join("sbatch.log")).unwrap();
    assert_eq!(
        calls.lines().last().unwrap(),
        format!("--parsable {}", out.join("slurm/collect.sbatch").display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_task_is_named_with_its_log() {
    let dir = setup("failed");
    let out = dir.join("out");
    ok(iclab(&dir, &["sweep", "grid.toml", "--out", "out", "--slurm"], &[]));
    let (manifest, keys) = manifest_keys(&out);
    let cfg = out.join("slurm/configs").join(format!("{}.toml", keys[1]));
    let edited = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("n_embd = 16", "n_embd = 32");
    std::fs::write(&cfg, edited).unwrap();
    fails(task(&dir, &manifest, 1), &["not as the manifest's", "was edited"]);
    fails(
        iclab(&dir, &["sweep", "--collect", "out"], &[]),
        &[
            &format!("{}: array task 1 of job 101", keys[1]),
            "failed",
            &format!("log: {}", out.join("slurm/logs/train-101_1.out").display()),
        ],
    );
    fails(task(&dir, &manifest, 9), &["--index 9: allowed: 0..3"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_sbatch_and_bad_flags_are_clear_errors() {
    let dir = setup("errors");
    std::fs::remove_file(dir.join("bin/sbatch")).unwrap();
    let bare = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(["sweep", "grid.toml", "--out", "out", "--slurm"])
        .env("PATH", dir.join("bin"))
        .current_dir(&dir)
        .output()
        .unwrap();
    fails(bare, &["sbatch not found on PATH", "--dry-run"]);
    fails(
        iclab(
            &dir,
            &["sweep", "grid.toml", "--slurm", "--dry-run", "--time", "1h"],
            &[],
        ),
        &["--time \"1h\"", "HH:MM:SS"],
    );
    // Slurm's options need --slurm; --collect takes no grid.
    for args in [
        &["sweep", "grid.toml", "--partition", "gpu"][..],
        &["sweep", "grid.toml", "--collect", "out"][..],
        &["reproduce", "--dry-run"][..],
    ] {
        let o = iclab(&dir, args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
    fails(
        iclab(&dir, &["sweep", "--collect", "nowhere"], &[]),
        &["nowhere/grid.toml", "--collect takes the output folder of a sweep"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reproduce_submits_its_models_and_collects_the_report() {
    let dir = setup("reproduce");
    let out = dir.join("rep");
    let o = ok(iclab(
        &dir,
        &[
            "reproduce",
            "--scale",
            "smoke",
            "--only",
            "E1",
            "--out",
            "rep",
            "--slurm",
            "--dry-run",
        ],
        &[],
    ));
    let t = text(&o);
    assert!(t.contains("3 model(s) to train"), "{t}");
    assert!(
        t.contains(&format!(
            "reproduce --collect --scale smoke --seeds 1 --out {} --only E1",
            out.display()
        )),
        "{t}"
    );
    let failed = fails(
        iclab(
            &dir,
            &[
                "reproduce",
                "--scale",
                "smoke",
                "--only",
                "E1",
                "--out",
                "rep",
                "--collect",
            ],
            &[],
        ),
        &["3 of 3 models are not trained", "no report written"],
    );
    assert!(!out.join("report.html").exists(), "{failed}");
    let (manifest, _) = manifest_keys(&out);
    for i in 0..3 {
        ok(task(&dir, &manifest, i));
    }
    ok(iclab(
        &dir,
        &[
            "reproduce",
            "--scale",
            "smoke",
            "--only",
            "E1",
            "--out",
            "rep",
            "--collect",
        ],
        &[],
    ));
    assert!(out.join("report.html").is_file() && out.join("findings.csv").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
