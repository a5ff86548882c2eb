//! `iclab train`: pretrain an in-context learner on a configured mixture of function classes.
//!
//! ```text
//! iclab train experiment.toml [--set key=value ...] [--out runs] [--name X] [--fresh] [--quiet]
//! iclab train --preset tiny|small|standard [--set key=value ...] [...]
//! ```
//! Config layers: TrainConfig defaults (or the preset) -> the TOML file -> `--set` overrides.
//! Writes `<out>/<name>/` (config.toml, metrics.jsonl, checkpoints/). Running the same command
//! again resumes from the last checkpoint; Ctrl-C writes a checkpoint and exits with status 130.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use iclab_model::train::{self, preset_names, TrainConfig, TrainOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Experiment TOML (any TrainConfig fields; the rest take their defaults or the preset's).
    config: Option<PathBuf>,
    /// Built-in preset to start from: tiny, small or standard.
    #[arg(long)]
    preset: Option<String>,
    /// Override one field, e.g. `--set steps=2000 --set optimizer.lr=3e-4 --set model.d=8`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Parent directory of run directories.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Run name (the run directory is <out>/<name>); default: the config's `name`.
    #[arg(long)]
    name: Option<String>,
    /// If <out>/<name> already holds a run, start a new one in <out>/<name>-2 (-3, ...) instead of
    /// resuming it.
    #[arg(long)]
    fresh: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Train one model of a Slurm manifest (`<out>/slurm/manifest-*.txt`, written by `--slurm`) into
    /// `<out>/models/<key>`, skipping it when finished and resuming it when interrupted: what each
    /// array task runs (docs/cluster.md).
    #[arg(long, requires = "index", conflicts_with_all = ["config", "preset", "sets", "name", "fresh"])]
    manifest: Option<PathBuf>,
    /// The manifest line to train (0-based; the array task's $SLURM_ARRAY_TASK_ID).
    #[arg(long, requires = "manifest")]
    index: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    if let (Some(manifest), Some(index)) = (&args.manifest, args.index) {
        return manifest_task(manifest, index, args.quiet);
    }
    if args.config.is_none() && args.preset.is_none() {
        bail!(
            "give an experiment TOML (`iclab train experiment.toml`) or a preset (`iclab train --preset NAME`, \
             NAME one of: {})",
            preset_names()
        );
    }
    let file = crate::read_config(args.config.as_deref())?;
    let mut sets = args.sets.clone();
    if let Some(name) = &args.name {
        sets.push(format!("name={}", toml::Value::String(name.clone())));
    }
    let cfg = TrainConfig::resolve(
        args.preset.as_deref(),
        file.as_ref().map(|(source, text)| (source.as_str(), text.as_str())),
        &sets,
    )?;
    let (cfg, run_dir) = pick_run_dir(cfg, &args.out, args.fresh)?;

    let stop = stop_on_signal()?;

    eprintln!(
        "training {} ({} parameters: d {} n {} layers {} heads {} width {}) on {} for {} steps, batch {}, into {}",
        cfg.name,
        cfg.model.num_params(),
        cfg.model.d,
        cfg.model.n_points,
        cfg.model.n_layer,
        cfg.model.n_head,
        cfg.model.n_embd,
        cfg.task.name(),
        cfg.steps,
        cfg.batch_size,
        run_dir.display()
    );
    let opts = TrainOptions {
        progress: !args.quiet,
        stop: Some(stop.clone()),
        stop_after: None,
        steps_done: None,
    };
    let s = train::train(&cfg, &run_dir, &opts)?;
    let trained = s.steps_done - s.resumed_from.unwrap_or(0);
    let resumed = s
        .resumed_from
        .map(|r| format!(" (resumed at step {r})"))
        .unwrap_or_default();
    eprintln!(
        "{} {} / {} steps{resumed}: {trained} in {:.1} s ({:.1} steps/s), last loss {:.4}",
        if s.stopped_early { "stopped at" } else { "done:" },
        s.steps_done,
        cfg.steps,
        s.seconds,
        trained as f64 / s.seconds.max(1e-9),
        s.final_loss
    );
    if let Some(c) = &s.last_checkpoint {
        eprintln!("checkpoint: {}", c.display());
    }
    if s.stopped_early {
        eprintln!("run the same command again to resume");
    }
    if stop.load(Ordering::SeqCst) {
        // Interrupted (the checkpoint is written): the shell's convention for SIGINT, 128 + 2.
        std::process::exit(130);
    }
    Ok(())
}

/// Ctrl-C (or SIGTERM, as Slurm sends at a time limit or scancel): the first asks the loop to stop
/// after the current step (with a checkpoint); a second one exits at once (the last checkpoint on
/// disk is still valid: writes are atomic).
fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without a final checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after this step, with a checkpoint (interrupt again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// `--manifest M --index I`: one array task of a Slurm submission.
fn manifest_task(manifest: &Path, index: usize, quiet: bool) -> Result<()> {
    let stop = stop_on_signal()?;
    let opts = TrainOptions {
        progress: !quiet,
        stop: Some(stop.clone()),
        stop_after: None,
        steps_done: None,
    };
    match iclab_experiments::slurm::train_task(manifest, index, &opts)? {
        Some(t) if !t.skipped => eprintln!(
            "done: {} ({} steps{}) in {:.1} s, final loss {:.4}",
            t.key,
            t.done.steps,
            t.done
                .resumed_from
                .map(|s| format!(", resumed from step {s}"))
                .unwrap_or_default(),
            t.seconds_now,
            t.done.final_loss
        ),
        Some(_) => {}
        None => {
            eprintln!("stopped with a checkpoint: submit again to resume");
            std::process::exit(130);
        }
    }
    Ok(())
}

/// `<out>/<name>`, or with `--fresh` the first of `<out>/<name>-2`, `-3`, ... that holds no run.
fn pick_run_dir(mut cfg: TrainConfig, out: &Path, fresh: bool) -> Result<(TrainConfig, PathBuf)> {
    let dir = out.join(&cfg.name);
    let used = |d: &Path| d.join("config.toml").exists() || d.join("checkpoints").exists();
    if !fresh || !used(&dir) {
        return Ok((cfg, dir));
    }
    for i in 2.. {
        let name = format!("{}-{i}", cfg.name);
        let d = out.join(&name);
        if !used(&d) {
            eprintln!("{} holds a run; starting a fresh one in {}", dir.display(), d.display());
            cfg.name = name;
            return Ok((cfg, d));
        }
    }
    unreachable!("an unused name exists")
}
