//! `iclab`: the command line. Each subcommand lives in its own module (`cmd_*.rs`) with its clap
//! `Args` and a `run` function; this file only dispatches.

use std::path::Path;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod cmd_bench;
mod cmd_classes;
mod cmd_curves;
mod cmd_predict;
mod cmd_reproduce;
mod cmd_sweep;
mod cmd_train;
mod slurm_args;

/// In-context learning lab: function classes, exact baselines, GPT-2-style in-context learners and
/// the experiments of Yadlowsky, Doshi & Tripuraneni (2023).
#[derive(Parser)]
#[command(name = "iclab", version, about, long_about = None)]
struct Cli {
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true, value_parser = at_least_one)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the function classes and prompt strategies with their parameters, defaults and E[y^2].
    Classes(cmd_classes::Args),
    /// Error curves of the statistical baselines on prompts of a class, as a table, CSV and JSON.
    Curves(Box<cmd_curves::Args>),
    /// Timing workloads (`iclab bench baselines`).
    Bench(cmd_bench::Args),
    /// Pretrain an in-context learner (TOML or --preset, --set overrides); resumes where it stopped.
    Train(cmd_train::Args),
    /// A trained model's predictions at every x position of fresh prompts, as CSV.
    Predict(cmd_predict::Args),
    /// The study's experiments E1-E7 end to end: train, evaluate, plot, report and check findings.
    Reproduce(cmd_reproduce::Args),
    /// Train a grid of configs (base + lists of varied keys) and tabulate their ICL errors.
    Sweep(cmd_sweep::Args),
}

/// Parses a count that must be >= 1 (threads, jobs, a dimension): 0 is refused with the rule,
/// never silently raised to 1.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("allowed: an integer >= 1 (0 would do no work)".to_string()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("allowed: an integer >= 1 (`{s}` is not one)")),
    }
}

/// Reads an optional `--config` / experiment file: (its name for error messages, its text).
fn read_config(path: Option<&Path>) -> anyhow::Result<Option<(String, String)>> {
    path.map(|p| {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        Ok((p.display().to_string(), text))
    })
    .transpose()
}

/// Restores the default SIGPIPE action so that `iclab ... | head` ends quietly instead of panicking
/// on a closed pipe (Rust ignores SIGPIPE by default).
#[cfg(unix)]
fn reset_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: installing the default disposition for SIGPIPE has no preconditions.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn main() {
    #[cfg(unix)]
    reset_sigpipe();
    let cli = Cli::parse();
    if let Some(t) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(t).build_global() {
            eprintln!("error: could not start {t} threads: {e}");
            std::process::exit(2);
        }
    }
    let result = match cli.command {
        Command::Classes(a) => cmd_classes::run(a),
        Command::Curves(a) => cmd_curves::run(*a),
        Command::Bench(a) => cmd_bench::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Predict(a) => cmd_predict::run(a),
        Command::Reproduce(a) => cmd_reproduce::run(a),
        Command::Sweep(a) => cmd_sweep::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
