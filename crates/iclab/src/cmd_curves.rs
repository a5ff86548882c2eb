//! `iclab curves`: per-k normalised error curves of every applicable statistical baseline on
//! prompts of one test class (docs/study.md, "Metric" and "Baselines"), printed as a table and written
//! as CSV and JSON.
//!
//! The task is resolved in layers: defaults -> `--config FILE` -> `--set key=value` -> flags.
//! Flags: `--class NAME` with its parameters, or `--mixture name=w,...`, or `--task '<TOML inline
//! table>'` (a typed ClassSpec, as `iclab classes` prints).

use std::path::PathBuf;

use anyhow::Context;
use iclab_core::baselines::{self, BaselineOptions};
use iclab_core::error::ConfigError;
use iclab_core::metrics::{self, Curve};
use iclab_core::rng::Purpose;
use iclab_core::{config, ClassSpec, FrequencyDist, PromptSampler, PromptStrategy, CLASS_NAMES};
use serde::{Deserialize, Serialize};

const INPUT_NAMES: &str = "isotropic, skewed, scaled_x, scaled_y, noisy_y, half_subspace, random_quadrants, \
                           orthogonal_query, overlapping_query";

/// Error curves of the statistical baselines (least squares, ridge, LASSO, 3-NN, averaging, Bayes,
/// ...) on prompts of one class.
///
/// Examples:
///   iclab curves --class sparse --nnz 2 --d 20 --n 41 --prompts 1280 --seed 0
///   iclab curves --class convex --alpha 0.3 --d 1
///   iclab curves --mixture dense=0.5,sparse=0.5 --inputs skewed
///   iclab curves --class sparse --nnz 4 --prior dense=0.5,sparse=0.5   (Bayes of the mixture)
///   iclab curves --task '{ class = "sparse", nnz = 3, normalize = true }' --noise 0.1
///   iclab curves --config curves.toml --set d=10
///
/// A config file holds any of: d, n, prompts, seed, task (a ClassSpec table), inputs (a prompt
/// strategy table), prior (a ClassSpec table); unknown keys are errors. Writes curves.csv
/// (curve,k,mean,std,lo,hi) and curves.json to --out (default runs/curves/<name>/).
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Test class: dense, sparse, noisy_linear, quadratic, relu_net, decision_tree, sinusoid,
    /// linear_classification, convex.
    #[arg(long)]
    class: Option<String>,
    /// sparse: number of non-zero weights (also applies to sparse components of --mixture/--prior).
    #[arg(long)]
    nnz: Option<usize>,
    /// dense/sparse: scale w so that E[y^2] = 1.
    #[arg(long)]
    normalize: bool,
    /// noisy_linear: standard deviation of the label noise.
    #[arg(long)]
    noise_std: Option<f64>,
    /// relu_net: hidden width.
    #[arg(long)]
    hidden: Option<usize>,
    /// decision_tree: depth.
    #[arg(long)]
    depth: Option<usize>,
    /// sinusoid: a fixed angular frequency omega (default: log-normal around 1).
    #[arg(long)]
    omega: Option<f64>,
    /// convex: f = alpha f_first + (1 - alpha) f_second, alpha in [0, 1].
    #[arg(long)]
    alpha: Option<f64>,
    /// convex: the first class (default dense with normalize, unit variance).
    #[arg(long)]
    first: Option<String>,
    /// convex: the second class (default sinusoid).
    #[arg(long)]
    second: Option<String>,
    /// A mixture sampled per prompt: name=weight pairs, e.g. dense=0.5,sparse=0.5.
    #[arg(long, conflicts_with_all = ["class", "task"])]
    mixture: Option<String>,
    /// The task as a TOML inline table, e.g. '{ class = "sparse", nnz = 3 }'.
    #[arg(long, conflicts_with = "class")]
    task: Option<String>,
    /// The mixture the Bayes predictor assumes (name=weight pairs; default: the test class), e.g.
    /// the pretraining mixture when testing on one of its classes.
    #[arg(long)]
    prior: Option<String>,
    /// Input distribution / prompt strategy: isotropic, skewed, scaled_x, scaled_y, noisy_y,
    /// half_subspace, random_quadrants, orthogonal_query, overlapping_query.
    #[arg(long)]
    inputs: Option<String>,
    /// scaled_x / scaled_y: the scale.
    #[arg(long)]
    scale: Option<f64>,
    /// Standard deviation of N(0, noise^2) noise added to every y (the noisy_y strategy).
    #[arg(long)]
    noise: Option<f64>,
    /// Input dimension.
    #[arg(long)]
    d: Option<usize>,
    /// Points per prompt (k = 0..n-1 examples before the query).
    #[arg(long)]
    n: Option<usize>,
    /// Number of prompts.
    #[arg(long)]
    prompts: Option<usize>,
    /// Seed of prompts, bootstrap and randomised baselines.
    #[arg(long)]
    seed: Option<u64>,
    /// TOML file with d, n, prompts, seed, task, inputs, prior.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config key, e.g. --set d=10 or --set 'task={ class = "dense" }'.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output directory (default runs/curves/<name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run name (default derived from the task).
    #[arg(long)]
    name: Option<String>,
    /// Overwrite curves.csv / curves.json of an earlier run in the output directory.
    #[arg(long)]
    force: bool,
}

/// The resolved plan of one `iclab curves` run (also what a --config file holds).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvesConfig {
    pub d: usize,
    pub n: usize,
    pub prompts: usize,
    pub seed: u64,
    pub task: ClassSpec,
    pub inputs: PromptStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<ClassSpec>,
}

impl Default for CurvesConfig {
    fn default() -> Self {
        CurvesConfig {
            d: 20,
            n: 41,
            prompts: 1280,
            seed: 0,
            task: ClassSpec::Dense { normalize: false },
            inputs: PromptStrategy::Isotropic,
            prior: None,
        }
    }
}

/// Class parameters given as flags.
struct ClassParams<'a> {
    nnz: Option<usize>,
    normalize: bool,
    noise_std: Option<f64>,
    hidden: Option<usize>,
    depth: Option<usize>,
    omega: Option<f64>,
    alpha: Option<f64>,
    first: Option<&'a str>,
    second: Option<&'a str>,
}

/// A class from its name and the flags: the class's defaults (`ClassSpec::default_of`, the one
/// place they are written), then each flag that the class has.
fn class_from_name(field: &str, name: &str, p: &ClassParams) -> Result<ClassSpec, ConfigError> {
    let name = match name.trim() {
        "linear" => "dense",
        n => n,
    };
    let names = || {
        CLASS_NAMES
            .iter()
            .filter(|n| **n != "mixture")
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    if name == "mixture" {
        return Err(ConfigError::new(
            field,
            name,
            format!("one of {} (a mixture is --mixture)", names()),
        ));
    }
    let mut c =
        ClassSpec::default_of(name).ok_or_else(|| ConfigError::new(field, name, format!("one of {}", names())))?;
    match &mut c {
        ClassSpec::Dense { normalize } => *normalize |= p.normalize,
        ClassSpec::Sparse { nnz, normalize } => {
            *nnz = p.nnz.unwrap_or(*nnz);
            *normalize |= p.normalize;
        }
        ClassSpec::NoisyLinear { noise_std } => *noise_std = p.noise_std.unwrap_or(*noise_std),
        ClassSpec::ReluNet { hidden } => *hidden = p.hidden.unwrap_or(*hidden),
        ClassSpec::DecisionTree { depth } => *depth = p.depth.unwrap_or(*depth),
        ClassSpec::Sinusoid { frequency, .. } => {
            if let Some(omega) = p.omega {
                *frequency = FrequencyDist::Fixed { omega };
            }
        }
        ClassSpec::Convex { alpha, first, second } => {
            *alpha = p.alpha.unwrap_or(*alpha);
            for (f, v, component) in [("--first", p.first, first), ("--second", p.second, second)] {
                match v {
                    None => {}
                    Some("convex") => {
                        return Err(ConfigError::new(f, "convex", "a single class (convex does not nest)"))
                    }
                    Some(n) => **component = class_from_name(f, n, p)?,
                }
            }
        }
        // Classes without flags take their defaults; a new class needs no arm here.
        _ => {}
    }
    Ok(c)
}

/// `name=weight,name=weight` into a mixture.
fn parse_mixture(field: &str, s: &str, p: &ClassParams) -> Result<ClassSpec, ConfigError> {
    let mut weights = Vec::new();
    let mut classes = Vec::new();
    for part in s.split(',').filter(|x| !x.trim().is_empty()) {
        let (name, w) = part.split_once('=').ok_or_else(|| {
            ConfigError::new(
                field,
                part,
                "name=weight pairs separated by commas, e.g. dense=0.5,sparse=0.5",
            )
        })?;
        let w: f64 = w
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(format!("{field} weight of {}", name.trim()), w, "a number in [0, 1]"))?;
        classes.push(class_from_name(field, name, p)?);
        weights.push(w);
    }
    if classes.is_empty() {
        return Err(ConfigError::new(field, s, "at least one name=weight pair"));
    }
    Ok(ClassSpec::Mixture { weights, classes })
}

fn parse_inputs(name: &str, scale: Option<f64>, noise: Option<f64>) -> Result<PromptStrategy, ConfigError> {
    Ok(match name.trim() {
        "isotropic" => PromptStrategy::Isotropic,
        "skewed" => PromptStrategy::Skewed,
        "scaled_x" => PromptStrategy::ScaledX {
            scale: scale.unwrap_or(2.0),
        },
        "scaled_y" => PromptStrategy::ScaledY {
            scale: scale.unwrap_or(2.0),
        },
        "noisy_y" => PromptStrategy::NoisyY {
            std: noise.unwrap_or(1.0),
        },
        "half_subspace" => PromptStrategy::HalfSubspace,
        "random_quadrants" => PromptStrategy::RandomQuadrants,
        "orthogonal_query" => PromptStrategy::OrthogonalQuery,
        "overlapping_query" => PromptStrategy::OverlappingQuery,
        other => return Err(ConfigError::new("--inputs", other, format!("one of {INPUT_NAMES}"))),
    })
}

/// Resolves the flags (and config file text, if any) into a validated plan.
pub fn resolve(args: &Args, config_text: Option<(&str, &str)>) -> Result<CurvesConfig, ConfigError> {
    let mut cfg: CurvesConfig = config::resolve(&CurvesConfig::default(), config_text, &args.overrides)?;
    let p = ClassParams {
        nnz: args.nnz,
        normalize: args.normalize,
        noise_std: args.noise_std,
        hidden: args.hidden,
        depth: args.depth,
        omega: args.omega,
        alpha: args.alpha,
        first: args.first.as_deref(),
        second: args.second.as_deref(),
    };
    if let Some(name) = &args.class {
        cfg.task = class_from_name("--class", name, &p)?;
    } else if let Some(m) = &args.mixture {
        cfg.task = parse_mixture("--mixture", m, &p)?;
    } else if let Some(t) = &args.task {
        let v: toml::Value = format!("task = {t}")
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::new("--task", t, format!("a TOML inline table ({})", e.message())))?
            .remove("task")
            .expect("parsed key");
        cfg.task = ClassSpec::deserialize(v)
            .map_err(|e| ConfigError::new("--task", t, format!("a class table as `iclab classes` prints ({e})")))?;
    }
    // Flags that only make sense for some classes must not be silently ignored.
    let uses = |pred: &dyn Fn(&ClassSpec) -> bool| -> bool {
        let check = |c: &ClassSpec| match c {
            ClassSpec::Convex { first, second, .. } => pred(c) || pred(first) || pred(second),
            other => pred(other),
        };
        cfg.task.components().iter().any(|(_, c)| check(c))
    };
    let unused = |flag: &str, value: String, class: &str| ConfigError::new(flag, value, format!("only with {class}"));
    if let Some(alpha) = args.alpha {
        if !uses(&|c| matches!(c, ClassSpec::Convex { .. })) {
            return Err(unused("--alpha", format!("{alpha:?}"), "--class convex"));
        }
    }
    if let Some(nnz) = args.nnz {
        if !uses(&|c| matches!(c, ClassSpec::Sparse { .. })) && args.prior.is_none() {
            return Err(unused("--nnz", nnz.to_string(), "a sparse class"));
        }
    }
    if let Some(prior) = &args.prior {
        cfg.prior = Some(parse_mixture("--prior", prior, &p)?);
    }
    if let Some(name) = &args.inputs {
        cfg.inputs = parse_inputs(name, args.scale, args.noise)?;
    } else if let Some(scale) = args.scale {
        return Err(unused("--scale", format!("{scale:?}"), "--inputs scaled_x or scaled_y"));
    }
    if let Some(noise) = args.noise {
        match cfg.inputs {
            PromptStrategy::Isotropic | PromptStrategy::NoisyY { .. } => {
                cfg.inputs = PromptStrategy::NoisyY { std: noise }
            }
            ref other => {
                return Err(ConfigError::new(
                    "--noise",
                    noise,
                    format!(
                        "only with isotropic inputs (noisy_y is itself a strategy; got {})",
                        other.name()
                    ),
                ))
            }
        }
    }
    if let Some(d) = args.d {
        cfg.d = d;
    }
    if let Some(n) = args.n {
        cfg.n = n;
    }
    if let Some(m) = args.prompts {
        cfg.prompts = m;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if cfg.n < 1 {
        return Err(ConfigError::new("n", cfg.n, "an integer >= 1 (points per prompt)"));
    }
    if cfg.prompts < 1 {
        return Err(ConfigError::new("prompts", cfg.prompts, "an integer >= 1"));
    }
    if cfg.d < 1 {
        return Err(ConfigError::new("d", cfg.d, "an integer >= 1"));
    }
    cfg.task.validate(cfg.d).map_err(|e| e.within("task"))?;
    cfg.inputs.validate().map_err(|e| e.within("inputs"))?;
    if let Some(prior) = &cfg.prior {
        prior.validate(cfg.d).map_err(|e| e.within("prior"))?;
    }
    Ok(cfg)
}

/// A file-system friendly run name from the plan.
fn default_name(cfg: &CurvesConfig) -> String {
    let raw = format!(
        "{}_{}_d{}_n{}_seed{}",
        cfg.task.name(),
        cfg.inputs.name(),
        cfg.d,
        cfg.n,
        cfg.seed
    );
    let mut out = String::new();
    for ch in raw.chars() {
        let c = if ch.is_ascii_alphanumeric() || ch == '.' {
            ch
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out.trim_matches('_').to_string()
}

#[derive(Serialize)]
struct CurvesJson<'a> {
    name: &'a str,
    config: &'a CurvesConfig,
    task: String,
    inputs: String,
    expected_y2: f64,
    curves: &'a [Curve],
    selection_cost: Option<&'a Curve>,
    diagnostics: &'a [String],
    skipped: &'a [String],
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let file = crate::read_config(args.config.as_deref())?;
    let cfg = resolve(
        &args,
        file.as_ref().map(|(source, text)| (source.as_str(), text.as_str())),
    )?;
    let sampler = PromptSampler::new(cfg.task.clone(), cfg.inputs.clone(), cfg.d, cfg.seed)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&cfg));
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/curves").join(&name));

    if !args.force {
        let held: Vec<&str> = ["curves.csv", "curves.json"]
            .into_iter()
            .filter(|f| out_dir.join(f).exists())
            .collect();
        if !held.is_empty() {
            anyhow::bail!(
                "{} already holds results ({}); pass --force to overwrite them, or choose another --out or --name",
                out_dir.display(),
                held.join(", ")
            );
        }
    }

    let t0 = std::time::Instant::now();
    let prompts = sampler.prompts(cfg.seed, Purpose::Eval, cfg.prompts, cfg.n, cfg.d);
    let ey2 = sampler.expected_y2(cfg.d);
    let opts = BaselineOptions {
        bayes_prior: cfg.prior.clone(),
        ridge_lambda: None,
        seed: cfg.seed,
    };
    let sel = baselines::baselines_for(&cfg.task, &cfg.inputs, cfg.d, &opts);
    let (curves, cost) = baselines::evaluate_with_cost(&prompts, &sel.baselines, ey2, cfg.seed);
    let diagnostics: Vec<String> = sel.baselines.iter().flat_map(|b| b.diagnostics()).collect();
    let elapsed = t0.elapsed().as_secs_f64();

    println!(
        "task {} | inputs {} | d = {} | n = {} | {} prompts | seed {} | E[y^2] = {:.4}",
        cfg.task.name(),
        cfg.inputs.name(),
        cfg.d,
        cfg.n,
        cfg.prompts,
        cfg.seed,
        ey2
    );
    println!("normalised squared error: mean [bootstrap 5%, 95%] over prompts\n");
    let mut columns: Vec<&Curve> = curves.iter().collect();
    columns.extend(cost.as_ref());
    for (i, c) in columns.iter().enumerate() {
        println!("  [{}] {}", i + 1, c.name);
    }
    print!("\n{:>3}", "k");
    for i in 0..columns.len() {
        print!(" {:>22}", format!("[{}]", i + 1));
    }
    println!();
    for k in 0..cfg.n {
        print!("{k:>3}");
        for c in &columns {
            let p = c.points[k];
            print!(" {:>22}", format!("{:.4} [{:.4},{:.4}]", p.mean, p.lo, p.hi));
        }
        println!();
    }
    for s in &sel.skipped {
        println!("not applicable: {s}");
    }
    for d in &diagnostics {
        println!("warning: {d}");
    }

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut all = curves.clone();
    all.extend(cost.clone());
    std::fs::write(out_dir.join("curves.csv"), metrics::curves_csv(&all))?;
    let json = CurvesJson {
        name: &name,
        config: &cfg,
        task: cfg.task.name(),
        inputs: cfg.inputs.name(),
        expected_y2: ey2,
        curves: &curves,
        selection_cost: cost.as_ref(),
        diagnostics: &diagnostics,
        skipped: &sel.skipped,
    };
    std::fs::write(out_dir.join("curves.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    println!(
        "\nwrote {}/curves.csv and curves.json ({elapsed:.2} s)",
        out_dir.display()
    );
    Ok(())
}
