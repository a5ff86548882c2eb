//! Pretraining the in-context learner (docs/study.md, "Prompts" and "Curriculum"): fresh prompts
//! every step from the deterministic streams, the curriculum, Adam(W), metrics, checkpoints and
//! exact resume.
//!
//! A run directory holds:
//! - `config.toml`: the resolved [`TrainConfig`] (every field, so the run can be repeated);
//! - `metrics.jsonl`: one JSON object per line, `{"kind":"train","step":s,"loss":..,"lr":..,
//!   "grad_norm":..,"d":..,"n":..}` every `log_every` steps (s = 0-based index of the batch; `d`
//!   and `n` are the curriculum's active dimension and points), and `{"kind":"eval","step":t,
//!   "loss":..,"err_per_k":[..]}` every `eval_every` steps (t = steps done; the fixed eval batch is
//!   prompts 0..eval_prompts of stream (seed, Eval) at the model's full d and n; `err_per_k[k]` is the
//!   squared error after k examples divided by E[y^2], docs/study.md's "Metric"). No wall-clock
//!   values, so the file of a resumed run is byte-identical to an uninterrupted one.
//! - `checkpoints/step_NNNNNNNN.safetensors` (see [`crate::checkpoint`]).
//!
//! Exact resume: batch `s` is prompts s*batch_size .. (s+1)*batch_size of stream (seed, Train), the
//! curriculum is a function of s, and the checkpoint restores parameters and Adam moments bit for
//! bit, so the step number is the whole position of the run.

use std::fs;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use iclab_core::rng::Purpose;
use iclab_core::{PromptBatch, PromptSampler};

use crate::adam::{clip_scale, global_norm, Adam};
use crate::checkpoint::{self, write_atomic, Checkpoint};
pub use crate::config::{config_differences, preset_names, TrainConfig, PRESETS};
use crate::gpt::Gpt;
use crate::lock::DirLock;

/// How `train` runs (not part of the config: none of it changes the result).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Progress bar on stderr.
    pub progress: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current step with a checkpoint.
    pub stop: Option<Arc<AtomicBool>>,
    /// Tests: return after this many steps done without a final checkpoint, as if killed.
    pub stop_after: Option<u64>,
    /// Counts steps done (those before a resume on entry, then one per step), for a progress
    /// display over several runs trained side by side.
    pub steps_done: Option<Arc<AtomicU64>>,
}

/// What a call of [`train`] did.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps done in total (including those before a resume).
    pub steps_done: u64,
    /// Loss of the last batch trained in this call (NaN if none was).
    pub final_loss: f32,
    /// The checkpoint step this call resumed from.
    pub resumed_from: Option<u64>,
    /// Wall-clock seconds of this call.
    pub seconds: f64,
    /// True when the run stopped before `steps` (stop flag or stop_after).
    pub stopped_early: bool,
    /// The latest checkpoint on disk.
    pub last_checkpoint: Option<PathBuf>,
}

/// One line of metrics.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Train {
        step: u64,
        loss: f32,
        lr: f64,
        grad_norm: f64,
        d: usize,
        n: usize,
    },
    Eval {
        step: u64,
        loss: f64,
        err_per_k: Vec<f64>,
    },
}

/// Reads metrics.jsonl, skipping a torn last line (a run killed mid-write).
pub fn read_metrics(path: &Path) -> Result<Vec<Record>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// What [`check_run_config`] found in a run directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDirState {
    /// No config.toml: a new run.
    New,
    /// A run with the same trajectory config: resume it (or reuse it).
    Same,
    /// A run that stopped before its first checkpoint (a config.toml, empty, unreadable or of
    /// another configuration, and no checkpoint): nothing to lose, it is replaced.
    Replaced,
}

/// Refuses `run_dir` when its saved `config.toml` would not train as `cfg` does (naming the
/// fields) and the run has checkpoints; Ok when they agree, when the directory holds no config
/// yet, or when the run it holds never wrote a checkpoint (then it is replaced).
pub fn check_run_config(run_dir: &Path, cfg: &TrainConfig) -> Result<RunDirState> {
    let config_path = run_dir.join("config.toml");
    let text = match fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunDirState::New),
        Err(e) => return Err(e).with_context(|| format!("reading {}", config_path.display())),
    };
    let no_checkpoint = checkpoint::list(run_dir)?.is_empty();
    if no_checkpoint && text.trim().is_empty() {
        return Ok(RunDirState::Replaced);
    }
    let saved: TrainConfig = match toml::from_str(&text) {
        Ok(c) => c,
        Err(_) if no_checkpoint => return Ok(RunDirState::Replaced),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "{} is not a valid training config (the run has checkpoints; move it away to start a fresh                      run)",
                    config_path.display()
                )
            })
        }
    };
    let diffs = config_differences(&saved, cfg);
    if !diffs.is_empty() && no_checkpoint {
        return Ok(RunDirState::Replaced);
    }
    if !diffs.is_empty() {
        bail!(
            "{} holds a run with a different configuration: {} (saved vs requested); choose another \
             name, or start a fresh run next to it (`iclab train --fresh`)",
            run_dir.display(),
            diffs.join("; ")
        );
    }
    Ok(RunDirState::Same)
}

/// Refuses to resume a run under another keep policy than the one it was started with (saved in
/// its checkpoints): pruning would delete what the first run kept, or keep what it pruned.
fn check_keep_policy(run_dir: &Path, saved: &TrainConfig, cfg: &TrainConfig) -> Result<()> {
    if saved.keep_every == cfg.keep_every {
        return Ok(());
    }
    let policy = |k: u64| match k {
        0 => "only the latest checkpoint is kept".to_string(),
        k => format!("the latest and every checkpoint at a multiple of {k} steps are kept"),
    };
    bail!(
        "invalid `keep_every` = {}: allowed: {}, the keep policy {} was started with ({}); resume with \
         `--set keep_every={}`, or start a fresh run (`iclab train --fresh`)",
        cfg.keep_every,
        saved.keep_every,
        run_dir.display(),
        policy(saved.keep_every),
        saved.keep_every
    )
}

/// Trains into `run_dir` (config.toml, metrics.jsonl, checkpoints/). Resumes from the latest
/// checkpoint when `run_dir` holds one made with the same trajectory config; refuses a run_dir
/// whose config differs, naming the fields. Holds the folder's lock ([`DirLock`]) throughout: a
/// second writer is refused at once.
pub fn train(cfg: &TrainConfig, run_dir: &Path, opts: &TrainOptions) -> Result<TrainSummary> {
    cfg.validate()?;
    let lock = DirLock::acquire(run_dir)?;
    train_locked(cfg, &lock, opts)
}

/// [`train`] into the folder of a lock the caller holds (for callers that read or write the run
/// folder around the training, as `iclab reproduce` does with `done.json`).
pub fn train_locked(cfg: &TrainConfig, lock: &DirLock, opts: &TrainOptions) -> Result<TrainSummary> {
    let t0 = Instant::now();
    let run_dir = lock.dir();
    cfg.validate()?;
    fs::create_dir_all(run_dir.join("checkpoints"))
        .with_context(|| format!("creating run directory {}", run_dir.display()))?;
    let config_path = run_dir.join("config.toml");
    if check_run_config(run_dir, cfg)? == RunDirState::Replaced {
        eprintln!(
            "{} holds a run that stopped before its first checkpoint (config.toml, no checkpoint): starting it \
             afresh",
            run_dir.display()
        );
    }
    write_atomic(&config_path, toml::to_string(cfg)?.as_bytes())?;

    // Resume from the latest checkpoint, or start from the GPT-2 initialisation.
    let mut gpt;
    let mut adam;
    let mut resumed_from = None;
    let mut last_checkpoint = None;
    match checkpoint::latest(run_dir)? {
        Some((_, path)) => {
            let ck = Checkpoint::load_for(&path, cfg).with_context(|| {
                format!(
                    "cannot resume {}: move the checkpoint away to resume from an earlier one, or start a \
                     fresh run",
                    run_dir.display()
                )
            })?;
            check_keep_policy(run_dir, &ck.config, cfg)?;
            gpt = Gpt::from_params(cfg.model.clone(), ck.params).map_err(|e| anyhow::anyhow!("{e}"))?;
            adam = Adam::restore(&gpt.tensors(), ck.m, ck.v, ck.step);
            resumed_from = Some(ck.step);
            last_checkpoint = Some(path);
        }
        None => {
            gpt = Gpt::new(cfg.model.clone(), cfg.seed);
            adam = Adam::new(&gpt.tensors());
        }
    }
    let start = resumed_from.unwrap_or(0);
    let count_steps = |k: u64| {
        if let Some(c) = &opts.steps_done {
            c.fetch_add(k, Ordering::Relaxed);
        }
    };
    count_steps(start);

    // Metrics: keep what the checkpoint covers (train records before `start`, eval records up to
    // it) and drop what a killed run wrote after its last checkpoint; it will be written again.
    let metrics_path = run_dir.join("metrics.jsonl");
    // Lines are kept verbatim (a parse-and-print round trip could change the last digit of a float).
    let old = match fs::read_to_string(&metrics_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", metrics_path.display())),
    };
    let mut text = String::new();
    for line in old.lines() {
        let keep = match serde_json::from_str::<Record>(line) {
            Ok(Record::Train { step, .. }) => step < start,
            Ok(Record::Eval { step, .. }) => step <= start && resumed_from.is_some(),
            Err(_) => false, // torn last line of a killed run
        };
        if keep {
            text.push_str(line);
            text.push('\n');
        }
    }
    write_atomic(&metrics_path, text.as_bytes())?;
    let mut metrics = BufWriter::new(
        fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .with_context(|| format!("opening {}", metrics_path.display()))?,
    );
    let mut log = |r: &Record| -> Result<()> {
        writeln!(metrics, "{}", serde_json::to_string(r)?)?;
        metrics.flush()?;
        Ok(())
    };

    let (d, n_max) = (cfg.model.d, cfg.model.n_points);
    let sampler = PromptSampler::new(cfg.task.clone(), cfg.inputs.clone(), d, cfg.seed)?;
    let eval_batch = PromptBatch::from_prompts(&sampler.prompts(cfg.seed, Purpose::Eval, cfg.eval_prompts, n_max, d));
    let ey2 = sampler.expected_y2(d);
    if resumed_from.is_none() && cfg.eval_every > 0 {
        log(&evaluate(&mut gpt, &eval_batch, ey2, 0))?;
    }

    let mut progress = opts.progress.then(|| Progress::new(start, cfg.steps));
    let mut final_loss = f32::NAN;
    let summary = |steps_done, final_loss, stopped_early, last_checkpoint| TrainSummary {
        steps_done,
        final_loss,
        resumed_from,
        seconds: t0.elapsed().as_secs_f64(),
        stopped_early,
        last_checkpoint,
    };
    let good_checkpoint = |last: &Option<PathBuf>| match last {
        Some(p) => format!("the last good checkpoint, {}, is kept", p.display()),
        None => "no checkpoint had been written yet".to_string(),
    };
    for step in start..cfg.steps {
        let (d_active, n) = cfg.curriculum.at(step);
        // Batch `step`: prompts step*b .. (step+1)*b of stream (seed, Train) (docs/study.md,
        // "Prompts": fresh data every step; keyed by step so that a resumed run draws the same
        // batches).
        let b = cfg.batch_size;
        let batch = sampler.batch(cfg.seed, Purpose::Train, step * b as u64, b, n, d_active);
        let lr = cfg.optimizer.lr_at(step, cfg.steps);
        let loss = gpt.forward_loss(&batch.xs, &batch.ys, b, n);
        if !loss.is_finite() {
            if let Some(p) = progress.as_mut() {
                p.finish();
            }
            bail!(
                "training diverged at step {step}: the loss is {loss} (lr {lr:.3e}); stopped, {}. Try a lower \
                 optimizer.lr, optimizer.warmup_steps or optimizer.grad_clip",
                good_checkpoint(&last_checkpoint)
            );
        }
        gpt.backward();
        let grad_norm = global_norm(&gpt.grads);
        if !grad_norm.is_finite() {
            if let Some(p) = progress.as_mut() {
                p.finish();
            }
            bail!(
                "training diverged at step {step}: the gradient norm is {grad_norm} (loss {loss}, lr {lr:.3e}); \
                 stopped, {}. Try a lower optimizer.lr or optimizer.grad_clip",
                good_checkpoint(&last_checkpoint)
            );
        }
        let scale = clip_scale(grad_norm, cfg.optimizer.grad_clip);
        adam.step(&mut gpt.params, &gpt.grads, lr, scale, &cfg.optimizer);
        final_loss = loss;
        let done = step + 1;
        count_steps(1);
        if step % cfg.log_every == 0 || done == cfg.steps {
            log(&Record::Train {
                step,
                loss,
                lr,
                grad_norm,
                d: d_active,
                n,
            })?;
        }
        if cfg.eval_every > 0 && (done % cfg.eval_every == 0 || done == cfg.steps) {
            log(&evaluate(&mut gpt, &eval_batch, ey2, done))?;
        }
        let stop = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        if done % cfg.checkpoint_every == 0 || done == cfg.steps || stop {
            if gpt.params.iter().any(|p| !p.is_finite()) {
                bail!(
                    "training diverged at step {step}: a parameter is not finite after the update (lr {lr:.3e}); \
                     stopped, {}. Try a lower optimizer.lr or optimizer.grad_clip",
                    good_checkpoint(&last_checkpoint)
                );
            }
            let path = run_dir.join("checkpoints").join(checkpoint::file_name(done));
            let ck = Checkpoint {
                config: cfg.clone(),
                step: done,
                params: gpt.params.clone(),
                m: adam.m.clone(),
                v: adam.v.clone(),
            };
            ck.save(&gpt, &path)?;
            checkpoint::prune(run_dir, cfg.keep_every)?;
            last_checkpoint = Some(path);
        }
        if let Some(p) = progress.as_mut() {
            p.update(done, loss, d_active, n);
        }
        if stop || opts.stop_after == Some(done) {
            if let Some(p) = progress.as_mut() {
                p.finish();
            }
            return Ok(summary(done, final_loss, done < cfg.steps, last_checkpoint));
        }
    }
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    Ok(summary(cfg.steps.max(start), final_loss, false, last_checkpoint))
}

/// Per-position error of the model on the fixed eval batch after `step` steps.
fn evaluate(gpt: &mut Gpt, batch: &PromptBatch, ey2: f64, step: u64) -> Record {
    let pred = gpt.predict(batch);
    let (b, n) = (batch.b, batch.n);
    let mut per_k = vec![0f64; n];
    for i in 0..b {
        for (k, e) in per_k.iter_mut().enumerate() {
            let r = pred[i * n + k] as f64 - batch.ys[i * n + k] as f64;
            *e += r * r;
        }
    }
    let loss = per_k.iter().sum::<f64>() / (b * n) as f64;
    Record::Eval {
        step,
        loss,
        err_per_k: per_k.iter().map(|e| e / b as f64 / ey2).collect(),
    }
}

/// Loads a trained model: a run directory (its latest checkpoint) or a checkpoint file. The
/// checkpoint is verified (structure, checksum, names and shapes) before use.
pub fn load(path: &Path) -> Result<(TrainConfig, Gpt)> {
    let file = if path.is_dir() {
        checkpoint::latest(path)?
            .with_context(|| {
                format!(
                    "{} holds no checkpoint (checkpoints/step_*.safetensors)",
                    path.display()
                )
            })?
            .1
    } else {
        path.to_path_buf()
    };
    let ck = Checkpoint::load(&file)?;
    let gpt = Gpt::from_params(ck.config.model.clone(), ck.params).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((ck.config, gpt))
}

/// A one-line progress bar on stderr: step, loss, steps/s, ETA and the curriculum's d and n.
/// On a terminal it redraws in place (at most 10 times a second); otherwise it prints a line every
/// 10 seconds.
struct Progress {
    start_step: u64,
    total: u64,
    t0: Instant,
    last: Instant,
    tty: bool,
    loss_sum: f64,
    loss_count: u64,
}

impl Progress {
    fn new(start_step: u64, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            start_step,
            total,
            t0: now,
            last: now,
            tty: std::io::stderr().is_terminal(),
            loss_sum: 0.0,
            loss_count: 0,
        }
    }

    fn update(&mut self, done: u64, loss: f32, d: usize, n: usize) {
        self.loss_sum += loss as f64;
        self.loss_count += 1;
        let every = if self.tty { 0.1 } else { 10.0 };
        if self.last.elapsed().as_secs_f64() < every && done < self.total {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.t0.elapsed().as_secs_f64();
        let rate = (done - self.start_step) as f64 / elapsed.max(1e-9);
        let eta = (self.total - done) as f64 / rate.max(1e-9);
        let width = 24;
        let filled = (width as f64 * done as f64 / self.total as f64) as usize;
        let bar: String = "#".repeat(filled.min(width)) + &"-".repeat(width - filled.min(width));
        let line = format!(
            "step {done}/{} [{bar}] loss {:.4} | {rate:.1} steps/s | ETA {} | d {d} n {n}",
            self.total,
            self.loss_sum / self.loss_count as f64,
            fmt_duration(eta)
        );
        self.loss_sum = 0.0;
        self.loss_count = 0;
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// "42s", "3m05s", "1h02m".
pub fn fmt_duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
