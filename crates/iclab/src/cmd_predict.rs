//! `iclab predict`: a trained model's predictions at every x position of fresh prompts, as CSV.
//!
//! ```text
//! iclab predict --run runs/tiny [--class dense | --class '{ class = "sparse", nnz = 2 }']
//!               [--prompts 8] [--n N] [--seed S] [--out predictions.csv]
//! ```
//! One row per (prompt, k): k examples seen, the query x_{k+1}, its target and the model's
//! prediction. The per-k normalised error (docs/study.md, "Metric") goes to stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use iclab_core::rng::Purpose;
use iclab_core::{ClassSpec, PromptBatch, PromptSampler};

#[derive(clap::Args)]
pub struct Args {
    /// Run directory (its latest checkpoint) or a checkpoint file.
    #[arg(long)]
    run: PathBuf,
    /// Class of the prompts: a name with default parameters (`dense`, `sparse`, `sinusoid`, ...) or
    /// an inline TOML table (`{ class = "sparse", nnz = 3 }`); default: the run's training task.
    #[arg(long)]
    class: Option<String>,
    /// Number of prompts.
    #[arg(long, default_value_t = 8)]
    prompts: usize,
    /// Points per prompt (default: the model's n_points, the most it can take).
    #[arg(long)]
    n: Option<usize>,
    /// Seed of the prompts (stream (seed, Eval)); default: 1 + the run's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the CSV here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `dense` -> the class with its defaults; `{ ... }` -> that table.
pub fn parse_class(s: &str) -> Result<ClassSpec> {
    let text = s.trim();
    let table = if text.starts_with('{') {
        format!("v = {text}")
    } else {
        format!("v = {{ class = {} }}", toml::Value::String(text.to_string()))
    };
    let mut t: toml::Table = table
        .parse()
        .with_context(|| format!("--class {s:?} is neither a class name nor an inline TOML table"))?;
    let v = t.remove("v").expect("parsed key");
    v.try_into()
        .map_err(|e| anyhow::anyhow!("--class {s:?}: {e} (see `iclab classes` for names and parameters)"))
}

pub fn run(args: Args) -> Result<()> {
    let (cfg, mut gpt) = iclab_model::train::load(&args.run)?;
    let d = cfg.model.d;
    let n = args.n.unwrap_or(cfg.model.n_points);
    if n < 1 || n > cfg.model.n_points {
        bail!(
            "invalid `--n` = {n}: allowed: 1..={} (the model's n_points, its context length)",
            cfg.model.n_points
        );
    }
    if args.prompts < 1 {
        bail!("invalid `--prompts` = {}: allowed: an integer >= 1", args.prompts);
    }
    let class = match &args.class {
        Some(c) => parse_class(c)?,
        None => cfg.task.clone(),
    };
    let seed = args.seed.unwrap_or(cfg.seed.wrapping_add(1));
    let sampler = PromptSampler::new(class.clone(), cfg.inputs.clone(), d, seed)?;
    let prompts = sampler.prompts(seed, Purpose::Eval, args.prompts, n, d);
    let batch = PromptBatch::from_prompts(&prompts);
    let pred = gpt.predict(&batch); // [b, n]

    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let xcols: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    writeln!(out, "prompt,component,k,{},y,prediction", xcols.join(","))?;
    let ey2 = sampler.expected_y2(d);
    let mut err = vec![0f64; n];
    for (i, p) in prompts.iter().enumerate() {
        for (k, e) in err.iter_mut().enumerate() {
            let x: Vec<String> = p.x(k).iter().map(|v| v.to_string()).collect();
            let (y, yhat) = (p.ys[k], pred[i * n + k]);
            writeln!(out, "{i},{},{k},{},{y},{yhat}", p.component, x.join(","))?;
            *e += ((yhat - y) as f64).powi(2) / ey2 / prompts.len() as f64;
        }
    }
    out.flush()?;
    eprintln!(
        "{} prompts of {} (d {d}, n {n}); normalised squared error by k (0 = predicting 0 scores 1):",
        args.prompts,
        class.name()
    );
    let cells: Vec<String> = err.iter().enumerate().map(|(k, e)| format!("k={k}: {e:.3}")).collect();
    eprintln!("  {}", cells.join("  "));
    Ok(())
}
