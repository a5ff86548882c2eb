//! Handing training to Slurm (`iclab sweep --slurm`, `iclab reproduce --slurm`; docs/cluster.md).
//!
//! iclab does not schedule: it writes what Slurm needs and lets `sbatch` run it.
//! - A manifest of the models still to train, one run key per line (`runs::run_key`, the content
//!   key of the local cache), beside each model's full training config, `configs/<key>.toml`.
//! - An sbatch job-array script: array task i runs `iclab train --manifest M --index i`, which
//!   trains line i's model into `<out>/models/<key>` exactly as a local run does (skipped when
//!   finished, resumed from its last checkpoint when interrupted, bit-exact either way).
//! - A collect script, submitted with `--dependency=afterok:<array>`: `iclab sweep --collect` or
//!   `iclab reproduce --collect`, which evaluates and writes the results of what the folder holds,
//!   or names what is missing and why.
//!
//! Layout under the output folder:
//! ```text
//! <out>/slurm/configs/<key>.toml         one per model ever submitted (content-keyed)
//! <out>/slurm/manifest-<hash>.txt        one per distinct set of models to train
//! <out>/slurm/train.sbatch, collect.sbatch   the last submission's scripts
//! <out>/slurm/jobs.jsonl                 every submission: job ids, manifest, keys
//! <out>/slurm/logs/train-<job>_<task>.out, collect-<job>.out
//! <out>/slurm/failed/<key>.txt           why a task failed (removed when the model finishes)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use iclab_model::checkpoint::{self, write_atomic};
use iclab_model::train::{TrainConfig, TrainOptions};

use crate::hash;
use crate::runs::{self, Trained};

/// Folder of the Slurm files inside an output folder.
pub const SLURM_DIR: &str = "slurm";

/// What each job asks Slurm for (`sbatch` options; None: the cluster's default).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` per array task, in Slurm's syntax (`MM`, `HH:MM:SS`, `D-HH`).
    pub time: Option<String>,
    /// `--cpus-per-task`; iclab trains with that many threads.
    pub cpus_per_task: usize,
    /// `--mem` per task, in Slurm's syntax (`4G`).
    pub mem: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%M`).
    pub max_running: Option<usize>,
}

/// A submission, ready to write and submit.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The output folder (absolute).
    pub out: PathBuf,
    /// Short name for job names (the sweep's or "reproduce").
    pub name: String,
    /// Models not yet finished, in manifest order, with their configs.
    pub pending: Vec<(String, TrainConfig)>,
    /// Models already finished (not submitted).
    pub finished: usize,
    /// The manifest path (`None` when nothing is left to train).
    pub manifest: Option<PathBuf>,
    /// The array script (`None` when nothing is left to train).
    pub train_script: Option<String>,
    pub collect_script: String,
}

/// Ids `sbatch` gave a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// The array job (None when every model was finished already).
    pub train_job: Option<String>,
    pub collect_job: String,
    /// The manifest file name under `slurm/`.
    pub manifest: Option<String>,
    /// The manifest's run keys, array task i training `keys[i]`.
    pub keys: Vec<String>,
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,%@+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn sbatch_lines(res: &Resources) -> Vec<String> {
    let mut lines = vec![format!("#SBATCH --cpus-per-task={}", res.cpus_per_task)];
    for (flag, v) in [
        ("partition", &res.partition),
        ("time", &res.time),
        ("mem", &res.mem),
        ("gres", &res.gres),
        ("account", &res.account),
    ] {
        if let Some(v) = v {
            lines.push(format!("#SBATCH --{flag}={v}"));
        }
    }
    lines
}

/// Checks the resource values before anything is written: an sbatch option that Slurm would
/// reject, or that would split the script's `#SBATCH` line, is refused here with the flag's name.
pub fn check_resources(res: &Resources) -> anyhow::Result<()> {
    if res.cpus_per_task == 0 {
        bail!("--cpus-per-task 0: allowed: an integer >= 1");
    }
    if res.max_running == Some(0) {
        bail!("--max-running 0: allowed: an integer >= 1 (array tasks at once)");
    }
    for (flag, v) in [
        ("--partition", &res.partition),
        ("--time", &res.time),
        ("--mem", &res.mem),
        ("--gres", &res.gres),
        ("--account", &res.account),
    ] {
        if let Some(v) = v {
            if v.is_empty()
                || v.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '\'' || c == '"')
            {
                bail!("{flag} {v:?}: allowed: a non-empty Slurm value without spaces or quotes");
            }
        }
    }
    if let Some(t) = &res.time {
        // Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
        let (days, rest) = match t.split_once('-') {
            Some((d, r)) => (Some(d), r),
            None => (None, t.as_str()),
        };
        let ok = days.is_none_or(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            && !rest.is_empty()
            && rest.split(':').count() <= 3
            && rest
                .split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            bail!("--time {t:?}: allowed: Slurm's time syntax, MINUTES, HH:MM:SS or DAYS-HH[:MM[:SS]]");
        }
    }
    Ok(())
}

/// The array script: task i trains manifest line i.
fn train_script(p: &Prepared, manifest: &Path, iclab: &Path, res: &Resources) -> String {
    let n = p.pending.len();
    let slurm = p.out.join(SLURM_DIR);
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Written by iclab: trains {n} model(s) of {}, one array task each, into {}/models.\n\
         # Resubmit the same iclab command to resume: finished models are skipped, interrupted ones\n\
         # resume from their last checkpoint (docs/cluster.md).\n",
        p.name,
        p.out.display()
    ));
    s.push_str(&format!("#SBATCH --job-name=iclab-train-{}\n", p.name));
    s.push_str(&format!(
        "#SBATCH --array=0-{}{}\n",
        n - 1,
        res.max_running.map(|m| format!("%{m}")).unwrap_or_default()
    ));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        slurm.join("logs").join("train-%A_%a.out").display()
    ));
    s.push_str("#SBATCH --open-mode=append\n");
    // A preempted task goes back to the queue and resumes from its last checkpoint.
    s.push_str("#SBATCH --requeue\n");
    // A time limit sends SIGTERM (then SIGKILL after KillWait); iclab checkpoints on SIGTERM.
    for l in sbatch_lines(res) {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str("set -eu\n");
    s.push_str(&format!(
        "exec {} --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" train --manifest {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
        shell_quote(&iclab.display().to_string()),
        shell_quote(&manifest.display().to_string())
    ));
    s
}

/// The collect script: `iclab <collect...>` once the array is done.
fn collect_script(p: &Prepared, collect: &[String], iclab: &Path, res: &Resources) -> String {
    let slurm = p.out.join(SLURM_DIR);
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Written by iclab: evaluates and reports {} once its models are trained (submitted with\n\
         # --dependency=afterok on the training array). By hand: iclab {}\n",
        p.name,
        collect.join(" ")
    ));
    s.push_str(&format!("#SBATCH --job-name=iclab-collect-{}\n", p.name));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        slurm.join("logs").join("collect-%j.out").display()
    ));
    for l in sbatch_lines(&Resources {
        max_running: None,
        ..res.clone()
    }) {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str("set -eu\n");
    let args: Vec<String> = collect.iter().map(|a| shell_quote(a)).collect();
    s.push_str(&format!(
        "exec {} --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" {}\n",
        shell_quote(&iclab.display().to_string()),
        args.join(" ")
    ));
    s
}

/// Plans a submission: which of `cfgs` still need training under `<out>/models`, the manifest and
/// both scripts. `collect` is the iclab command line (after `iclab`) of the collect job. Nothing is
/// written.
pub fn prepare(
    out: &Path,
    name: &str,
    cfgs: &[&TrainConfig],
    collect: &[String],
    iclab: &Path,
    res: &Resources,
) -> anyhow::Result<Prepared> {
    check_resources(res)?;
    anyhow::ensure!(
        out.is_absolute(),
        "the output folder {} must be an absolute path",
        out.display()
    );
    let models_dir = out.join("models");
    let mut pending: Vec<(String, TrainConfig)> = Vec::new();
    let mut finished = 0;
    for cfg in cfgs {
        let key = runs::run_key(cfg);
        if runs::is_finished(cfg, &models_dir) {
            finished += 1;
        } else if !pending.iter().any(|(k, _)| *k == key) {
            pending.push((key, (*cfg).clone()));
        }
    }
    let name = hash::slug(name);
    let mut p = Prepared {
        out: out.to_path_buf(),
        name,
        pending,
        finished,
        manifest: None,
        train_script: None,
        collect_script: String::new(),
    };
    if !p.pending.is_empty() {
        let text = manifest_text(&p.pending);
        let manifest = out
            .join(SLURM_DIR)
            .join(format!("manifest-{}.txt", &hash::hex(&text)[..12]));
        p.train_script = Some(train_script(&p, &manifest, iclab, res));
        p.manifest = Some(manifest);
    }
    p.collect_script = collect_script(&p, collect, iclab, res);
    Ok(p)
}

fn manifest_text(pending: &[(String, TrainConfig)]) -> String {
    let mut text = String::from(
        "# iclab Slurm manifest: array task i trains the model of line i (0-based, comments skipped);\n\
         # its config is configs/<key>.toml beside this file, its run ../models/<key>.\n",
    );
    for (key, _) in pending {
        text.push_str(key);
        text.push('\n');
    }
    text
}

/// Writes the configs, the manifest and both scripts under `<out>/slurm/`.
pub fn write(p: &Prepared) -> anyhow::Result<()> {
    let dir = p.out.join(SLURM_DIR);
    for sub in ["configs", "logs", "failed"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    for (key, cfg) in &p.pending {
        let path = dir.join("configs").join(format!("{key}.toml"));
        write_atomic(&path, toml::to_string(cfg)?.as_bytes())?;
    }
    if let (Some(m), Some(script)) = (&p.manifest, &p.train_script) {
        write_atomic(m, manifest_text(&p.pending).as_bytes())?;
        write_atomic(&dir.join("train.sbatch"), script.as_bytes())?;
    }
    write_atomic(&dir.join("collect.sbatch"), p.collect_script.as_bytes())?;
    Ok(())
}

/// The submission as text: both scripts and the sbatch commands that would submit them.
pub fn describe(p: &Prepared) -> String {
    let dir = p.out.join(SLURM_DIR);
    let mut s = format!(
        "{} model(s) to train, {} finished already; output folder {}\n",
        p.pending.len(),
        p.finished,
        p.out.display()
    );
    if let Some(script) = &p.train_script {
        s.push_str(&format!("\n==> {} <==\n{script}", dir.join("train.sbatch").display()));
    }
    s.push_str(&format!(
        "\n==> {} <==\n{}",
        dir.join("collect.sbatch").display(),
        p.collect_script
    ));
    s.push_str("\nsubmitted with:\n");
    if p.train_script.is_some() {
        s.push_str(&format!("  sbatch --parsable {}\n", dir.join("train.sbatch").display()));
        s.push_str(&format!(
            "  sbatch --parsable --dependency=afterok:<array job id> --kill-on-invalid-dep=yes {}\n",
            dir.join("collect.sbatch").display()
        ));
    } else {
        s.push_str(&format!(
            "  sbatch --parsable {}\n",
            dir.join("collect.sbatch").display()
        ));
    }
    s
}

/// Runs `sbatch --parsable ARGS SCRIPT` and returns the job id.
fn sbatch(args: &[String], script: &Path) -> anyhow::Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "sbatch not found on PATH: --slurm submits with Slurm's sbatch; run this on a machine \
                     that can submit to your cluster (a login node), or add --dry-run to write the scripts only"
                )
            } else {
                anyhow::anyhow!("running sbatch: {e}")
            }
        })?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `--parsable` prints `<job id>` or `<job id>;<cluster>`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed {:?}, not a job id", script.display(), text.trim());
    }
    Ok(id)
}

/// Every earlier submission recorded in `<out>/slurm/jobs.jsonl` (unreadable lines skipped).
pub fn submissions(out: &Path) -> Vec<Submitted> {
    std::fs::read_to_string(out.join(SLURM_DIR).join("jobs.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The job ids of `ids` that Slurm still has queued or running (array jobs by their array id).
fn active(ids: &[String]) -> anyhow::Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("squeue")
        .args(["-h", "-o", "%F %A"])
        .output()
        .context("running squeue (to check for earlier submissions still running)")?;
    if !out.status.success() {
        bail!(
            "squeue failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut live = Vec::new();
    for id in ids {
        if text.split_whitespace().any(|w| w == id) && !live.contains(id) {
            live.push(id.clone());
        }
    }
    Ok(live)
}

/// Writes `p` and submits it: the array (if anything is left to train), then the collect job
/// after it. Refuses while an earlier submission into the same folder is still queued or running.
pub fn submit(p: &Prepared) -> anyhow::Result<Submitted> {
    let earlier: Vec<String> = submissions(&p.out)
        .into_iter()
        .flat_map(|s| s.train_job.into_iter().chain(std::iter::once(s.collect_job)))
        .collect();
    let live = active(&earlier)?;
    if !live.is_empty() {
        bail!(
            "job(s) {} of an earlier submission into {} are still queued or running: wait for them (squeue) \
             or cancel them (scancel {}), then submit again",
            live.join(", "),
            p.out.display(),
            live.join(" ")
        );
    }
    write(p)?;
    let dir = p.out.join(SLURM_DIR);
    let train_job = match &p.train_script {
        Some(_) => Some(sbatch(&[], &dir.join("train.sbatch"))?),
        None => None,
    };
    let deps = match &train_job {
        Some(id) => vec![
            format!("--dependency=afterok:{id}"),
            "--kill-on-invalid-dep=yes".to_string(),
        ],
        None => Vec::new(),
    };
    let collect_job = sbatch(&deps, &dir.join("collect.sbatch"))?;
    let s = Submitted {
        train_job,
        collect_job,
        manifest: p
            .manifest
            .as_ref()
            .and_then(|m| m.file_name())
            .map(|f| f.to_string_lossy().to_string()),
        keys: p.pending.iter().map(|(k, _)| k.clone()).collect(),
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("jobs.jsonl"))
        .context("opening slurm/jobs.jsonl")?;
    writeln!(f, "{}", serde_json::to_string(&s)?).context("writing slurm/jobs.jsonl")?;
    Ok(s)
}

/// One line of a submission report: what was submitted and where its logs go.
pub fn submitted_text(p: &Prepared, s: &Submitted) -> String {
    let logs = p.out.join(SLURM_DIR).join("logs");
    match &s.train_job {
        Some(id) => format!(
            "submitted array job {id} ({} task(s), logs {}/train-{id}_<task>.out) and collect job {} after it \
             (log {}/collect-{}.out); {} model(s) finished already",
            s.keys.len(),
            logs.display(),
            s.collect_job,
            logs.display(),
            s.collect_job,
            p.finished
        ),
        None => format!(
            "every model is trained: submitted collect job {} only (log {}/collect-{}.out)",
            s.collect_job,
            logs.display(),
            s.collect_job
        ),
    }
}

/// The host name, for messages from a compute node.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "this node".to_string())
}

/// Array task `index` of `manifest`: trains its model into `<out>/models/<key>` as
/// `runs::ensure_trained` does (Ok(None): stopped by a signal, with a checkpoint). A failure is
/// also recorded in `slurm/failed/<key>.txt` with the task and its log, for `--collect` to report.
pub fn train_task(manifest: &Path, index: usize, opts: &TrainOptions) -> anyhow::Result<Option<Trained>> {
    let text = std::fs::read_to_string(manifest).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the manifest {} on {}: {e}. The output folder must be on a filesystem that every node \
             shares with the machine that submitted the job (docs/cluster.md)",
            manifest.display(),
            host()
        )
    })?;
    let keys: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let Some(&key) = keys.get(index) else {
        bail!(
            "--index {index}: allowed: 0..{} (the manifest {} lists {} model(s))",
            keys.len().saturating_sub(1),
            manifest.display(),
            keys.len()
        );
    };
    let slurm = manifest.parent().unwrap_or(Path::new("."));
    let out = slurm.parent().unwrap_or(Path::new("."));
    let failed = slurm.join("failed").join(format!("{key}.txt"));
    let result = (|| {
        let path = slurm.join("configs").join(format!("{key}.toml"));
        let cfg_text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (manifest line {index})", path.display()))?;
        let cfg = TrainConfig::resolve(None, Some((&path.display().to_string(), &cfg_text)), &[])?;
        if runs::run_key(&cfg) != key {
            bail!(
                "{} trains as {}, not as the manifest's {key}: the file was edited; submit again to rewrite it",
                path.display(),
                runs::run_key(&cfg)
            );
        }
        eprintln!("array task {index} on {}: {key} ({} steps)", host(), cfg.steps);
        runs::ensure_trained(&cfg, &out.join("models"), opts)
    })();
    match &result {
        Ok(Some(t)) => {
            let _ = std::fs::remove_file(&failed);
            if t.skipped {
                eprintln!("{key}: already trained; nothing to do");
            }
        }
        Ok(None) => {}
        Err(e) => {
            let job = std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or_else(|_| "?".into());
            let log = slurm.join("logs").join(format!("train-{job}_{index}.out"));
            let note = format!(
                "array task {index} of job {job} on {} failed: {e:#}\nlog: {}\n",
                host(),
                log.display()
            );
            let _ = std::fs::create_dir_all(slurm.join("failed"));
            let _ = write_atomic(&failed, note.as_bytes());
        }
    }
    result
}

/// One line per model of `cfgs` not finished under `<out>/models`: where it stands (failed and
/// why, interrupted at which step, never run) and the log to read. Empty when all are finished.
pub fn missing(out: &Path, cfgs: &[&TrainConfig]) -> Vec<String> {
    let models_dir = out.join("models");
    let slurm = out.join(SLURM_DIR);
    let subs = submissions(out);
    let mut lines: Vec<String> = Vec::new();
    for cfg in cfgs {
        if runs::is_finished(cfg, &models_dir) {
            continue;
        }
        let key = runs::run_key(cfg);
        if lines.iter().any(|l| l.starts_with(&format!("{key}:"))) {
            continue;
        }
        // The last submission that names it, and that task's log.
        let task = subs.iter().rev().find_map(|s| {
            let i = s.keys.iter().position(|k| *k == key)?;
            let job = s.train_job.clone()?;
            Some((job, i))
        });
        let log = task
            .as_ref()
            .map(|(job, i)| slurm.join("logs").join(format!("train-{job}_{i}.out")));
        let mut line = format!("{key}: ");
        if let Ok(note) = std::fs::read_to_string(slurm.join("failed").join(format!("{key}.txt"))) {
            line.push_str(note.trim().replace('\n', "; ").as_str());
        } else {
            let at = checkpoint::latest(&models_dir.join(&key)).ok().flatten();
            match (&at, &task) {
                (Some((step, _)), _) => line.push_str(&format!(
                    "interrupted at step {step} of {} (time limit, preemption or scancel): submit again to resume",
                    cfg.steps
                )),
                (None, Some(_)) => {
                    line.push_str("not trained yet (queued, running, or stopped before its first checkpoint)")
                }
                (None, None) => {
                    line.push_str("not trained and never submitted: run with --slurm (or without, locally)")
                }
            }
            match (&task, &log) {
                (Some((job, i)), Some(log)) if log.exists() => {
                    line.push_str(&format!("; array task {i} of job {job}, log {}", log.display()))
                }
                (Some((job, i)), Some(log)) => line.push_str(&format!(
                    "; array task {i} of job {job} left no log at {}: if it ran, {} is not shared with the compute \
                     nodes (docs/cluster.md)",
                    log.display(),
                    out.display()
                )),
                _ => {}
            }
        }
        lines.push(line);
    }
    lines
}

/// A warning when `out` is on a filesystem that is local to this machine (tmpfs, ramfs), which the
/// compute nodes cannot see.
pub fn local_filesystem_warning(out: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(point), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if out.starts_with(&point) && best.as_ref().is_none_or(|(len, _)| point.len() > *len) {
            best = Some((point.len(), fstype.to_string()));
        }
    }
    let (_, fstype) = best?;
    matches!(fstype.as_str(), "tmpfs" | "ramfs").then(|| {
        format!(
            "warning: {} is on a {fstype}, local to this machine: Slurm's compute nodes will not see it; use a \
             folder on a filesystem they share (docs/cluster.md)",
            out.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn time_syntax_is_checked() {
        let with = |t: &str| Resources {
            cpus_per_task: 1,
            time: Some(t.to_string()),
            ..Resources::default()
        };
        for ok in ["30", "1:00:00", "2-12", "2-12:30", "0:30"] {
            assert!(check_resources(&with(ok)).is_ok(), "{ok}");
        }
        for bad in ["1h", "", "1:2:3:4", "-1", "a-1", "1 h"] {
            let e = check_resources(&with(bad)).unwrap_err().to_string();
            assert!(e.contains("--time"), "{bad}: {e}");
        }
    }
}
