//! `iclab sweep GRID.toml`: train a grid of training configs (a base config, `--set` overrides and
//! lists of varied values) and tabulate their in-context errors beside baselines. See
//! iclab_experiments::sweep and presets/README.md ("Sweeps").

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use iclab_experiments::sweep::{self, Options};

#[derive(clap::Args)]
pub struct Args {
    /// The grid file (TOML: name, [base], [vary], [eval]; presets/README.md, "Sweeps").
    grid: PathBuf,
    /// Output folder (sweep.csv, baselines.csv, sweep.svg|png, grid.toml, models/, cache/);
    /// default sweeps/<name>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Models trained side by side (default: one per worker thread, see --threads); the results do
    /// not depend on it.
    #[arg(long, value_parser = crate::at_least_one)]
    jobs: Option<usize>,
    /// Print the grid points, their run keys and which are trained already; train nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = sweep::plan(&args.grid)?;
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
        out: args.out,
        jobs: args.jobs,
        dry_run: args.dry_run,
        progress: true,
        stop: Some(stop),
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
