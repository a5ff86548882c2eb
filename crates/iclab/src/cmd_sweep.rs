//! `iclab sweep GRID.toml`: train a grid of training configs (a base config, `--set` overrides and
//! lists of varied values) and tabulate their in-context errors beside baselines. See
//! iclab_experiments::sweep and presets/README.md ("Sweeps").

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use iclab_experiments::slurm;
use iclab_experiments::sweep::{self, Options, SweepPlan};

use crate::slurm_args::{self, SlurmArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The grid file (TOML: name, [base], [vary], [eval]; presets/README.md, "Sweeps").
    #[arg(required_unless_present = "collect", conflicts_with = "collect")]
    grid: Option<PathBuf>,
    /// Output folder (sweep.csv, baselines.csv, sweep.svg|png, grid.toml, models/, cache/);
    /// default sweeps/<name>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Models trained side by side (default: one per worker thread, see --threads); the results do
    /// not depend on it.
    #[arg(long, value_parser = crate::at_least_one)]
    jobs: Option<usize>,
    /// Print the grid points, their run keys and which are trained already; train nothing (with
    /// --slurm: also write and print the job scripts, and submit nothing).
    #[arg(long)]
    dry_run: bool,
    /// Train nothing: evaluate and tabulate the models in the sweep output folder DIR (a --slurm
    /// submission's collect job runs this), or name each model that is missing, and why.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "slurm"])]
    collect: Option<PathBuf>,
    #[command(flatten)]
    cluster: SlurmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (plan, out) = match (&args.grid, &args.collect) {
        (_, Some(dir)) => (sweep::plan_collect(dir)?, Some(dir.clone())),
        (Some(grid), None) => (sweep::plan(grid)?, args.out.clone()),
        (None, None) => anyhow::bail!("give a grid file, or --collect DIR"),
    };
    if args.cluster.slurm {
        return submit(&plan, out, &args);
    }
    // First Ctrl-C: the models in training checkpoint and the command returns (rerun to resume).
    let stop = Arc::new(AtomicBool::new(false));
    if !args.dry_run {
        let flag = stop.clone();
        ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting (rerun to resume from the last checkpoints)");
                std::process::exit(130);
            }
            eprintln!("\nstopping after this step (writing checkpoints; Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let opts = Options {
        out,
        jobs: args.jobs,
        dry_run: args.dry_run,
        progress: true,
        stop: Some(stop),
        collect: args.collect.is_some(),
    };
    let summary = sweep::run(&plan, &opts)?;
    if args.dry_run {
        return Ok(());
    }
    if !summary.complete {
        std::process::exit(130);
    }
    print!("{}", sweep::compact_table(&plan, &summary).to_markdown());
    println!(
        "{} configs ({} trained now); results in {}: sweep.csv, baselines.csv, sweep.svg, sweep.png",
        summary.rows.len(),
        summary.trained,
        summary.out.display()
    );
    Ok(())
}

/// `--slurm`: the grid's models as a job array, then `iclab sweep --collect <out>` after it.
fn submit(plan: &SweepPlan, out: Option<PathBuf>, args: &Args) -> anyhow::Result<()> {
    let out = out.unwrap_or_else(|| plan.out_dir(&Options::default()));
    let out = std::path::absolute(&out).with_context(|| format!("resolving {}", out.display()))?;
    let cfgs: Vec<_> = plan.points.iter().map(|p| &p.config).collect();
    let collect = vec!["sweep".to_string(), "--collect".to_string(), out.display().to_string()];
    let prepared = slurm::prepare(
        &out,
        &plan.grid.name,
        &cfgs,
        &collect,
        &args.cluster.iclab()?,
        &args.cluster.resources(),
    )?;
    // One writer per sweep folder while the submission's files are written.
    let _lock = iclab_model::lock::DirLock::acquire(&out)?;
    sweep::write_collect_files(plan, &out)?;
    slurm_args::submit(&prepared, args.dry_run)
}
