//! `iclab reproduce`: the study's experiments E1-E7 end to end: trains what they need
//! (models shared between experiments, resumable), evaluates beside baselines and specialists,
//! draws the figures and checks each finding's numeric criteria. See iclab_experiments::reproduce.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use iclab_experiments::reproduce::{self, Options};
use iclab_experiments::slurm;

use crate::slurm_args::{self, SlurmArgs};

#[derive(clap::Args)]
pub struct Args {
    /// smoke (about a minute: checks the pipeline), laptop (all experiments in under an hour on 2
    /// cores; findings must hold) or paper (the study's sizes, docs/study.md, for a GPU-class
    /// machine).
    #[arg(long, default_value = "laptop")]
    scale: String,
    /// Comma-separated experiments to run, e.g. E1,E4 (default: all of E1-E7).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Training seeds per model; the report shows the spread across seeds.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Output folder (report.html, report.md, figures/, tables/, models/, cache/).
    #[arg(long, default_value = "runs/reproduce")]
    out: PathBuf,
    /// A folder of edited preset files (*.toml, as in presets/) to use instead of the built-in ones.
    #[arg(long)]
    presets: Option<PathBuf>,
    /// Models trained side by side (default: one per worker thread, see --threads); the results do
    /// not depend on it.
    #[arg(long, value_parser = crate::at_least_one)]
    train_jobs: Option<usize>,
    /// Replace a report in --out that covers more experiments than this run (a partial `--only`).
    #[arg(long)]
    force: bool,
    /// Exit with status 3 when a required finding does not hold.
    #[arg(long)]
    strict: bool,
    /// Train nothing: report on the models in --out (a --slurm submission's collect job runs this),
    /// or name each model that is missing, and why.
    #[arg(long, conflicts_with = "slurm")]
    collect: bool,
    /// With --slurm: write and print the job scripts under <out>/slurm/, submit nothing.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
    #[command(flatten)]
    cluster: SlurmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.cluster.slurm {
        return submit(&args);
    }
    // First Ctrl-C: the model in training checkpoints and the command returns (rerun to resume).
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting (rerun to resume from the last checkpoint)");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (writing a checkpoint; Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    let opts = Options {
        scale: args.scale,
        only: args.only,
        seeds: args.seeds,
        out: args.out,
        presets: args.presets,
        // On a terminal a live bar; otherwise (logs) a progress line every 10 s.
        progress: true,
        stop: Some(stop),
        train_jobs: args.train_jobs,
        force: args.force,
        collect: args.collect,
    };
    let summary = reproduce::run(&opts)?;
    if !summary.complete {
        std::process::exit(130);
    }
    println!("report: {}", summary.report_html.display());
    println!("        {}", summary.report_md.display());
    for f in &summary.findings {
        println!("{}", f.to_report().headline());
    }
    if args.strict && summary.findings.iter().any(|f| f.required && !f.passed()) {
        std::process::exit(3);
    }
    Ok(())
}

/// `--slurm`: every distinct model as a job array, then `iclab reproduce --collect` (with this
/// run's scale, seeds, experiments and presets) after it.
fn submit(args: &Args) -> anyhow::Result<()> {
    let out = std::path::absolute(&args.out).with_context(|| format!("resolving {}", args.out.display()))?;
    let presets = args
        .presets
        .as_ref()
        .map(|p| std::path::absolute(p).with_context(|| format!("resolving {}", p.display())))
        .transpose()?;
    let opts = Options {
        scale: args.scale.clone(),
        only: args.only.clone(),
        seeds: args.seeds,
        out: out.clone(),
        presets: presets.clone(),
        progress: false,
        stop: None,
        train_jobs: None,
        force: args.force,
        collect: true,
    };
    let plans = reproduce::plans(&opts)?;
    let distinct = reproduce::distinct_models(&plans)?;
    let cfgs: Vec<_> = distinct.iter().map(|(_, cfg, _)| cfg).collect();
    let mut collect: Vec<String> = ["reproduce", "--collect", "--scale", &args.scale, "--seeds"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    collect.push(args.seeds.to_string());
    collect.extend(["--out".to_string(), out.display().to_string()]);
    if !args.only.is_empty() {
        collect.extend(["--only".to_string(), args.only.join(",")]);
    }
    if let Some(p) = &presets {
        collect.extend(["--presets".to_string(), p.display().to_string()]);
    }
    if args.force {
        collect.push("--force".to_string());
    }
    if args.strict {
        collect.push("--strict".to_string());
    }
    let prepared = slurm::prepare(
        &out,
        &format!("reproduce-{}", args.scale),
        &cfgs,
        &collect,
        &args.cluster.iclab()?,
        &args.cluster.resources(),
    )?;
    // One writer per output folder while the submission's files are written.
    let _lock = iclab_model::lock::DirLock::acquire(&out)?;
    slurm_args::submit(&prepared, args.dry_run)
}
