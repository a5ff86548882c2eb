//! `iclab sweep GRID.toml`: train a grid of training configs and tabulate their in-context errors.
//!
//! A grid file (schema in presets/README.md, "Sweeps") names a base training config (a model of a
//! preset at a scale, or a `TrainConfig` TOML file), `--set`-style overrides of it, and `[vary]`:
//! lists of values of TrainConfig keys whose Cartesian product is the grid. Every grid point is
//! resolved and validated before anything trains, trained (or reused) under
//! `<out>/models/<run key>` exactly as `iclab reproduce` does (`runs.rs`: resumable, shared by
//! content), then evaluated beside the chosen baselines on one set of fresh prompts.
//!
//! Output layout:
//! ```text
//! <out>/grid.toml                  the input grid, then the resolved plan as comments
//! <out>/sweep.csv                  one row per grid point (columns: see `SweepRow` / README)
//! <out>/baselines.csv              one row per baseline
//! <out>/timings.csv                steps/s and seconds of each grid point's training
//! <out>/sweep.svg, sweep.png       error at the chosen ks against each varied key
//! <out>/models/<run key>/          training runs        <out>/cache/   cached predictions
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use iclab_core::metrics;
use iclab_core::{ClassSpec, ConfigError, PromptStrategy};
use iclab_model::checkpoint::write_atomic;
use iclab_model::lock::DirLock;
use iclab_model::train::{fmt_duration, read_metrics, Record, TrainConfig, TrainOptions};
use iclab_report::{Cell, Color, Figure, Marker, Panel, Series, Table, DASHES, PALETTE};

use crate::baselines;
use crate::eval::{self, baseline_predictions_cached, model_predictions_cached};
use crate::preset::{EvalPlan, ModelDecl, Preset};
use crate::runs::{self, LoadedModels, TrainEvent};
use crate::slurm;

/// Scale of a preset base when the grid names none.
pub const DEFAULT_SCALE: &str = "laptop";
/// Evaluation prompts when the grid names no number.
pub const DEFAULT_EVAL_PROMPTS: usize = 512;
/// Seed of the evaluation prompts when the grid names none: the presets' own.
pub use crate::preset::DEFAULT_EVAL_SEED;
/// `final_loss` is the mean logged training loss over the last this many steps.
pub const FINAL_LOSS_WINDOW: u64 = 100;

fn default_scale() -> String {
    DEFAULT_SCALE.to_string()
}
fn default_eval_prompts() -> usize {
    DEFAULT_EVAL_PROMPTS
}
fn default_eval_seed() -> u64 {
    DEFAULT_EVAL_SEED
}

/// A grid file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Names the default output folder, `sweeps/<name>`.
    pub name: String,
    pub base: Base,
    /// TrainConfig override key -> its values; the grid is their Cartesian product (keys in sorted
    /// order, the last key varying fastest).
    pub vary: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub eval: GridEval,
}

/// The training config every grid point starts from: exactly one of `preset` (+ `model`,
/// `scale`) or `config`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// A built-in preset id (E1..E7) or a preset TOML path (relative to the grid file).
    #[serde(default)]
    pub preset: Option<String>,
    /// The `[[models]]` name in that preset.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default = "default_scale")]
    pub scale: String,
    /// A TrainConfig TOML path (relative to the grid file), as `iclab train FILE` reads it.
    #[serde(default)]
    pub config: Option<String>,
    /// `iclab train --set` overrides applied before the varied values.
    #[serde(default)]
    pub set: Vec<String>,
}

/// How every grid point is evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridEval {
    /// The test class (default: the grid points' training task, which must then be shared).
    #[serde(default)]
    pub task: Option<ClassSpec>,
    #[serde(default)]
    pub inputs: PromptStrategy,
    #[serde(default = "default_eval_prompts")]
    pub prompts: usize,
    #[serde(default = "default_eval_seed")]
    pub seed: u64,
    /// Baseline names as presets write them (`baselines.rs`).
    #[serde(default)]
    pub baselines: Vec<String>,
    /// The k columns of the figure and the stdout table (default n/2 and n - 1).
    #[serde(default)]
    pub ks: Vec<usize>,
}

impl Default for GridEval {
    fn default() -> Self {
        GridEval {
            task: None,
            inputs: PromptStrategy::default(),
            prompts: DEFAULT_EVAL_PROMPTS,
            seed: DEFAULT_EVAL_SEED,
            baselines: Vec::new(),
            ks: Vec::new(),
        }
    }
}

/// One grid point.
#[derive(Clone, Debug)]
pub struct Point {
    /// (varied key, value), in the order of `Grid::vary`.
    pub values: Vec<(String, toml::Value)>,
    pub config: TrainConfig,
    /// The run directory name under `<out>/models/` (`runs::run_key`).
    pub key: String,
}

impl Point {
    /// "optimizer.lr=0.001 seed=1".
    pub fn describe(&self) -> String {
        describe(&self.values)
    }
}

fn describe(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A grid resolved into configs, the evaluation prompt set and the k columns.
#[derive(Clone, Debug)]
pub struct SweepPlan {
    pub grid: Grid,
    /// The grid file's text (copied into `<out>/grid.toml`).
    pub text: String,
    pub points: Vec<Point>,
    pub eval: EvalPlan,
    pub ks: Vec<usize>,
    /// The base preset's models (what `bayes:<model>` refers to; empty for a config base).
    pub models: Vec<ModelDecl>,
    /// The folder the grid's relative paths are taken from.
    pub dir: PathBuf,
}

fn invalid(field: impl Into<String>, value: impl std::fmt::Display, allowed: impl Into<String>) -> anyhow::Error {
    ConfigError::new(field, value, allowed).into()
}

impl Grid {
    /// Parses a grid; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Grid, ConfigError> {
        toml::from_str(text).map_err(|e| {
            ConfigError::new(
                source,
                e.to_string().trim(),
                "a sweep grid as documented in presets/README.md (keys name, base, vary, eval)",
            )
        })
    }
}

/// Reads and resolves the grid file at `path` (see the module docs); nothing is trained.
pub fn plan(path: &Path) -> anyhow::Result<SweepPlan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading grid file {}", path.display()))?;
    let grid = Grid::parse(&path.display().to_string(), &text)?;
    // `grid.toml` has the parent "", which names no folder.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    resolve(grid, text, dir).with_context(|| format!("in grid file {}", path.display()))
}

/// Saves what `--collect` needs to plan the sweep again, from any machine that sees `out`: the
/// grid's text (`slurm/grid.toml`) and the folder its relative paths are taken from
/// (`slurm/grid_dir`).
pub fn write_collect_files(plan: &SweepPlan, out: &Path) -> anyhow::Result<()> {
    let dir = out.join(slurm::SLURM_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = std::path::absolute(&plan.dir).with_context(|| format!("resolving {}", plan.dir.display()))?;
    write_atomic(&dir.join("grid.toml"), plan.text.as_bytes())?;
    write_atomic(&dir.join("grid_dir"), base.display().to_string().as_bytes())?;
    Ok(())
}

/// The plan of the sweep whose output folder is `out` (`iclab sweep --collect`): from the files of
/// [`write_collect_files`], else from `out/grid.toml` with relative paths taken from `out`.
pub fn plan_collect(out: &Path) -> anyhow::Result<SweepPlan> {
    let saved = out.join(slurm::SLURM_DIR).join("grid.toml");
    let (path, dir) = if saved.is_file() {
        let at = out.join(slurm::SLURM_DIR).join("grid_dir");
        let dir = std::fs::read_to_string(&at).with_context(|| format!("reading {}", at.display()))?;
        (saved, PathBuf::from(dir.trim()))
    } else {
        (out.join("grid.toml"), out.to_path_buf())
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: --collect takes the output folder of a sweep (it holds grid.toml)",
            path.display()
        )
    })?;
    let grid = Grid::parse(&path.display().to_string(), &text)?;
    resolve(grid, text, &dir).with_context(|| format!("in grid file {}", path.display()))
}

/// Resolves a parsed grid; relative paths in it are taken from `dir`.
pub fn resolve(grid: Grid, text: String, dir: &Path) -> anyhow::Result<SweepPlan> {
    if grid.name.is_empty() || grid.name.contains(['/', '\\']) || grid.name == "." || grid.name == ".." {
        return Err(invalid(
            "name",
            format!("{:?}", grid.name),
            "a non-empty folder name without / or \\",
        ));
    }
    if grid.vary.is_empty() {
        return Err(invalid(
            "vary",
            "{}",
            "at least one TrainConfig key with a list of values, e.g. \"optimizer.lr\" = [1e-3, 3e-3]",
        ));
    }
    for (key, values) in &grid.vary {
        if values.is_empty() {
            return Err(invalid(format!("vary.{key:?}"), "[]", "a non-empty list of values"));
        }
        if key == "name" {
            return Err(invalid(
                "vary",
                key,
                "TrainConfig keys other than name (run names are <task>-s<seed>)",
            ));
        }
    }

    // The base: a (start config, TOML file layered over it) pair, and the preset's models.
    let b = &grid.base;
    let (start, file, models) = match (&b.preset, &b.config) {
        (Some(id), None) => {
            let preset = if id.ends_with(".toml") || id.contains(['/', '\\']) {
                Preset::load(&dir.join(id))?
            } else {
                Preset::builtin(id).map_err(|e| e.within("base"))?
            };
            // The plan's preset, not the file's: a scale's vars may rename and restate models.
            let p = preset.plan(&b.scale, 1).map_err(|e| e.within("base"))?;
            let names: Vec<&str> = p.preset.models.iter().map(|m| m.name.as_str()).collect();
            let allowed = || {
                format!(
                    "a model of preset {} at scale {}: {}",
                    preset.id,
                    b.scale,
                    names.join(", ")
                )
            };
            let model = b
                .model
                .as_deref()
                .ok_or_else(|| invalid("base.model", "(missing)", allowed()))?;
            let m = p
                .models
                .iter()
                .find(|m| m.name == model)
                .ok_or_else(|| invalid("base.model", model, allowed()))?;
            (m.config.clone(), None, p.preset.models.clone())
        }
        (None, Some(config)) => {
            if b.model.is_some() {
                return Err(invalid(
                    "base.model",
                    b.model.as_deref().unwrap_or(""),
                    "only with base.preset",
                ));
            }
            let path = dir.join(config);
            let body =
                std::fs::read_to_string(&path).with_context(|| format!("base.config: reading {}", path.display()))?;
            (
                TrainConfig::default(),
                Some((path.display().to_string(), body)),
                Vec::new(),
            )
        }
        _ => {
            return Err(invalid(
                "base",
                format!("preset = {:?}, config = {:?}", b.preset, b.config),
                "exactly one of preset (with model, scale) or config",
            ))
        }
    };

    // Every grid point, resolved and validated before anything trains.
    let axes: Vec<(&String, &Vec<toml::Value>)> = grid.vary.iter().collect();
    let total: usize = axes.iter().map(|(_, v)| v.len()).product();
    let mut points = Vec::with_capacity(total);
    for i in 0..total {
        // Mixed radix over the axes, the last key fastest.
        let mut rest = i;
        let mut values = vec![(String::new(), toml::Value::Integer(0)); axes.len()];
        for (a, (key, vs)) in axes.iter().enumerate().rev() {
            values[a] = ((*key).clone(), vs[rest % vs.len()].clone());
            rest /= vs.len();
        }
        let sets: Vec<String> = b
            .set
            .iter()
            .cloned()
            .chain(values.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let at = |e: ConfigError| anyhow::anyhow!("grid point {} ({}): {e}", i + 1, describe(&values));
        let mut config =
            TrainConfig::layer(&start, file.as_ref().map(|(s, t)| (s.as_str(), t.as_str())), &sets).map_err(at)?;
        config.name = runs::run_name(&config.task, config.seed);
        points.push(Point {
            key: runs::run_key(&config),
            values,
            config,
        });
    }

    // One prompt set for every point: they must agree on what it depends on.
    let first = &points[0].config;
    for (what, same) in [
        ("model.d", points.iter().all(|p| p.config.model.d == first.model.d)),
        (
            "model.n_points",
            points.iter().all(|p| p.config.model.n_points == first.model.n_points),
        ),
    ] {
        if !same {
            return Err(invalid(
                what,
                "different between grid points",
                "one value for the whole grid (every point is evaluated on the same prompts)",
            ));
        }
    }
    let (d, n) = (first.model.d, first.model.n_points);
    let task = match &grid.eval.task {
        Some(t) => t.clone(),
        None if points.iter().all(|p| p.config.task == first.task) => first.task.clone(),
        None => {
            return Err(invalid(
                "eval.task",
                "(missing)",
                "a test class: the grid points train on different tasks",
            ))
        }
    };
    task.validate(d).map_err(|e| e.within("eval.task"))?;
    grid.eval.inputs.validate().map_err(|e| e.within("eval.inputs"))?;
    if grid.eval.prompts < 2 {
        return Err(invalid("eval.prompts", grid.eval.prompts, "an integer >= 2"));
    }
    let eval = EvalPlan {
        name: format!("sweep {}", grid.name),
        group: grid.name.clone(),
        sweep_value: None,
        task,
        inputs: grid.eval.inputs.clone(),
        d,
        n,
        prompts: grid.eval.prompts,
        seed: grid.eval.seed,
        predictors: grid.eval.baselines.clone(),
        costs: Vec::new(),
        distances: Vec::new(),
    };
    let model_names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    for name in &grid.eval.baselines {
        if !baselines::is_baseline(name) {
            return Err(invalid(
                "eval.baselines",
                name,
                format!("a baseline: {}", baselines::NAMES.join(", ")),
            ));
        }
        if let Some(m) = name.strip_prefix("bayes:") {
            if !model_names.contains(&m) {
                let allowed = if models.is_empty() {
                    "bayes:<model> names a model of the base preset; a base.config has none".to_string()
                } else {
                    format!(
                        "bayes:<model> with a model of the base preset: {}",
                        model_names.join(", ")
                    )
                };
                return Err(invalid("eval.baselines", name, allowed));
            }
        }
        // Building it checks that it applies to the test class.
        baselines::make_with(name, |m| crate::preset::models_task(&models, m), &eval.target())
            .context("eval.baselines")?;
    }
    let ks = if grid.eval.ks.is_empty() {
        let mut ks = vec![(n / 2).max(1), n - 1];
        ks.dedup();
        ks
    } else {
        grid.eval.ks.clone()
    };
    if let Some(k) = ks.iter().find(|&&k| k < 1 || k >= n) {
        return Err(invalid("eval.ks", k, format!("integers in 1..={} (n - 1)", n - 1)));
    }
    Ok(SweepPlan {
        grid,
        text,
        points,
        eval,
        ks,
        models,
        dir: dir.to_path_buf(),
    })
}

/// How a sweep runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Output folder (default `sweeps/<name>`).
    pub out: Option<PathBuf>,
    /// Models trained side by side (None: one per worker thread); the results do not depend on it.
    pub jobs: Option<usize>,
    /// Print the plan only.
    pub dry_run: bool,
    /// One progress line over the whole grid on stderr.
    pub progress: bool,
    /// Set by Ctrl-C: training checkpoints and the sweep stops (rerun to resume).
    pub stop: Option<Arc<AtomicBool>>,
    /// Train nothing: evaluate the folder's models, or fail naming those that are not finished
    /// (`iclab sweep --collect`, the collect job of `--slurm`).
    pub collect: bool,
}

/// One row of sweep.csv.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub point: Point,
    pub steps: u64,
    /// Mean logged training loss over the last [`FINAL_LOSS_WINDOW`] steps.
    pub final_loss: f64,
    /// From the run's done.json: the steps and seconds of the call that finished the run.
    pub steps_per_s: f64,
    pub wall_s: f64,
    /// Mean normalised squared error after k examples, k = 0..n-1.
    pub err: Vec<f64>,
}

/// What a sweep did.
pub struct Summary {
    pub out: PathBuf,
    pub rows: Vec<SweepRow>,
    /// (baseline name, error per k).
    pub baselines: Vec<(String, Vec<f64>)>,
    /// Models trained now (the rest were finished already).
    pub trained: usize,
    /// False when Ctrl-C stopped training (or with `dry_run`): no results written.
    pub complete: bool,
}

impl SweepPlan {
    /// The output folder for `opts`.
    pub fn out_dir(&self, opts: &Options) -> PathBuf {
        opts.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("sweeps").join(&self.grid.name))
    }

    /// The plan as lines: one per grid point with its run key and whether it is trained already.
    pub fn describe(&self, models_dir: &Path) -> Vec<String> {
        let cached = self
            .points
            .iter()
            .filter(|p| runs::is_finished(&p.config, models_dir))
            .count();
        let mut out = vec![format!(
            "sweep {}: {} configs ({cached} trained already), evaluated on {} prompts of {} (d {}, n {}, seed {}) \
             beside {}",
            self.grid.name,
            self.points.len(),
            self.eval.prompts,
            self.eval.task.name(),
            self.eval.d,
            self.eval.n,
            self.eval.seed,
            if self.grid.eval.baselines.is_empty() {
                "no baselines".to_string()
            } else {
                self.grid.eval.baselines.join(", ")
            }
        )];
        for (i, p) in self.points.iter().enumerate() {
            out.push(format!(
                "  {:>3}. {}  {} ({} params, {} steps){}",
                i + 1,
                p.describe(),
                p.key,
                p.config.model.num_params(),
                p.config.steps,
                if runs::is_finished(&p.config, models_dir) {
                    "  [trained]"
                } else {
                    ""
                }
            ));
        }
        out
    }
}

/// Runs a sweep (see the module docs).
pub fn run(plan: &SweepPlan, opts: &Options) -> anyhow::Result<Summary> {
    let out = plan.out_dir(opts);
    let models_dir = out.join("models");
    for line in plan.describe(&models_dir) {
        eprintln!("{line}");
    }
    let mut summary = Summary {
        out: out.clone(),
        rows: Vec::new(),
        baselines: Vec::new(),
        trained: 0,
        complete: false,
    };
    if opts.dry_run {
        return Ok(summary);
    }
    // One writer per sweep folder (the models under it are locked one by one as they train).
    let _lock = DirLock::acquire(&out)?;
    let cfgs: Vec<&TrainConfig> = plan.points.iter().map(|p| &p.config).collect();
    if opts.collect {
        let missing = slurm::missing(&out, &cfgs);
        if !missing.is_empty() {
            anyhow::bail!(
                "{} of {} models of sweep {} are not trained in {}; nothing written:\n  {}",
                missing.len(),
                cfgs.len(),
                plan.grid.name,
                out.join("models").display(),
                missing.join("\n  ")
            );
        }
    }
    write_grid(plan, &out.join("grid.toml"))?;

    // ---- train ----
    let split = runs::split_threads(opts.jobs, cfgs.len());
    eprintln!(
        "training into {} ({} at a time, {} thread(s) each)",
        models_dir.display(),
        split.0,
        split.1
    );
    let steps_done = Arc::new(AtomicU64::new(0));
    let train_opts = TrainOptions {
        stop: opts.stop.clone(),
        steps_done: Some(steps_done.clone()),
        ..TrainOptions::default()
    };
    let total_steps: u64 = cfgs.iter().map(|c| c.steps).sum();
    let models_done = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        if opts.progress {
            scope.spawn(|| grid_progress(&steps_done, total_steps, &models_done, cfgs.len(), &finished));
        }
        let r = runs::train_many(&cfgs, &models_dir, split, &train_opts, &|event| {
            // Models that failed, or were skipped after Ctrl-C, are not done.
            if let TrainEvent::Finished(_, Ok(Some(_))) = event {
                models_done.fetch_add(1, Ordering::Relaxed);
            }
        });
        finished.store(true, Ordering::Relaxed);
        r
    });
    // Every failure is reported (the others' runs are finished and kept for the rerun).
    let mut dones = Vec::new();
    let mut failures = Vec::new();
    let mut stopped = false;
    for (i, (p, r)) in plan.points.iter().zip(results).enumerate() {
        match r {
            Ok(Some(t)) => {
                summary.trained += usize::from(!t.skipped);
                dones.push(t);
            }
            Ok(None) => stopped = true,
            Err(e) => failures.push(format!("grid point {} ({}): {e:#}", i + 1, p.describe())),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "training failed for {} of {} grid points:\n  {}",
            failures.len(),
            plan.points.len(),
            failures.join("\n  ")
        );
    }
    if stopped {
        eprintln!("stopped: rerun the same command to resume from the last checkpoints");
        return Ok(summary);
    }

    // ---- evaluate ----
    let cache = out.join("cache");
    let prompts = eval::prompts(&plan.eval)?;
    let ey2 = eval::expected_y2(&plan.eval)?;
    let mean_errors = |preds: &[Vec<f64>]| -> Vec<f64> {
        let errors = metrics::squared_errors(&prompts, preds, ey2);
        metrics::curve("", &errors, plan.eval.seed)
            .points
            .iter()
            .map(|p| p.mean)
            .collect()
    };
    let mut log = |s: &str| eprintln!("{s}");
    for name in &plan.grid.eval.baselines {
        let b = baselines::make_with(
            name,
            |m| crate::preset::models_task(&plan.models, m),
            &plan.eval.target(),
        )?;
        let (preds, _) = baseline_predictions_cached(&b, &plan.eval, &prompts, Some(&cache), &mut log)?;
        summary.baselines.push((name.clone(), mean_errors(&preds)));
    }
    for (i, (p, t)) in plan.points.iter().zip(&dones).enumerate() {
        let name = format!("grid point {}", i + 1);
        let mut models = LoadedModels::default();
        models.add_run(&name, 0, &p.config, &t.dir)?;
        let (preds, _) = model_predictions_cached(&mut models, &name, 0, &plan.eval, &prompts, Some(&cache), &mut log)?;
        let trained_now = t.done.steps - t.done.resumed_from.unwrap_or(0);
        summary.rows.push(SweepRow {
            point: p.clone(),
            steps: t.done.steps,
            final_loss: final_loss(&t.dir, t.done.steps)?,
            steps_per_s: trained_now as f64 / t.done.seconds.max(1e-9),
            wall_s: t.done.seconds,
            err: mean_errors(&preds),
        });
    }

    // ---- write ----
    let (sweep_t, baselines_t) = tables(plan, &summary);
    std::fs::write(out.join("sweep.csv"), sweep_t.to_csv()).context("writing sweep.csv")?;
    std::fs::write(out.join("baselines.csv"), baselines_t.to_csv()).context("writing baselines.csv")?;
    std::fs::write(out.join("timings.csv"), timings(plan, &summary).to_csv()).context("writing timings.csv")?;
    figure(plan, &summary)
        .write(&out)
        .context("writing sweep.svg / sweep.png")?;
    summary.complete = true;
    Ok(summary)
}

/// The grid file as given, then the resolved plan as comments (so the copy still parses as a grid).
fn write_grid(plan: &SweepPlan, path: &Path) -> anyhow::Result<()> {
    let mut text = plan.text.clone();
    // A grid read back from an output folder (`--collect`) already carries its plan.
    if let Some(i) = text.find("\n# Resolved plan: ") {
        text.truncate(i);
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n# Resolved plan: {} grid points (run directories under models/), evaluated on {} prompts of {} \
         (d {}, n {}, seed {}), ks {:?}\n",
        plan.points.len(),
        plan.eval.prompts,
        plan.eval.task.name(),
        plan.eval.d,
        plan.eval.n,
        plan.eval.seed,
        plan.ks
    ));
    for (i, p) in plan.points.iter().enumerate() {
        text.push_str(&format!("# {:>3}. {} -> {}\n", i + 1, p.describe(), p.key));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Mean of the training losses logged in `dir/metrics.jsonl` over the last [`FINAL_LOSS_WINDOW`]
/// steps of `steps`.
fn final_loss(dir: &Path, steps: u64) -> anyhow::Result<f64> {
    let from = steps.saturating_sub(FINAL_LOSS_WINDOW);
    let losses: Vec<f64> = read_metrics(&dir.join("metrics.jsonl"))?
        .into_iter()
        .filter_map(|r| match r {
            Record::Train { step, loss, .. } if step >= from => Some(loss as f64),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!losses.is_empty(), "{} logs no training loss", dir.display());
    Ok(losses.iter().sum::<f64>() / losses.len() as f64)
}

/// A varied value as a table cell.
fn value_cell(v: &toml::Value) -> Cell {
    match v {
        toml::Value::Integer(i) => Cell::Int(*i),
        toml::Value::Float(f) => Cell::Num(*f),
        toml::Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

/// sweep.csv and baselines.csv (errors for k = 1..n-1): what the models and baselines compute,
/// the same bits wherever they were trained (timings are in [`timings`]).
pub fn tables(plan: &SweepPlan, s: &Summary) -> (Table, Table) {
    let n = plan.eval.n;
    let err_cols: Vec<String> = (1..n).map(|k| format!("err_k{k}")).collect();
    let mut header: Vec<String> = plan.grid.vary.keys().cloned().collect();
    header.extend(["run_key", "steps", "final_loss"].iter().map(|h| h.to_string()));
    header.extend(err_cols.iter().cloned());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut sweep = Table::new("sweep", &header);
    for r in &s.rows {
        let mut row: Vec<Cell> = r.point.values.iter().map(|(_, v)| value_cell(v)).collect();
        row.extend([
            Cell::from(r.point.key.as_str()),
            Cell::from(r.steps),
            Cell::from(r.final_loss),
        ]);
        row.extend(r.err[1..].iter().map(|&e| Cell::from(e)));
        sweep.push(row);
    }
    let mut header = vec!["baseline".to_string()];
    header.extend(err_cols);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut base = Table::new("baselines", &header);
    for (name, err) in &s.baselines {
        let mut row = vec![Cell::from(name.as_str())];
        row.extend(err[1..].iter().map(|&e| Cell::from(e)));
        base.push(row);
    }
    (sweep, base)
}

/// timings.csv: per grid point, the steps and seconds of the training call that finished its run
/// (from its done.json; machine-dependent, unlike sweep.csv).
pub fn timings(plan: &SweepPlan, s: &Summary) -> Table {
    let mut header: Vec<String> = plan.grid.vary.keys().cloned().collect();
    header.extend(["run_key", "steps_per_s", "wall_s"].iter().map(|h| h.to_string()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new("timings", &header);
    for r in &s.rows {
        let mut row: Vec<Cell> = r.point.values.iter().map(|(_, v)| value_cell(v)).collect();
        row.extend([
            Cell::from(r.point.key.as_str()),
            Cell::from(r.steps_per_s),
            Cell::from(r.wall_s),
        ]);
        t.push(row);
    }
    t
}

/// The compact table of stdout: the varied values, final loss and the errors at the chosen ks,
/// then the baselines.
pub fn compact_table(plan: &SweepPlan, s: &Summary) -> Table {
    let mut header: Vec<String> = plan.grid.vary.keys().cloned().collect();
    header.push("final_loss".into());
    header.extend(plan.ks.iter().map(|k| format!("err k={k}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new("sweep", &header);
    for r in &s.rows {
        let mut row: Vec<Cell> = r.point.values.iter().map(|(_, v)| value_cell(v)).collect();
        row.push(Cell::from(r.final_loss));
        row.extend(plan.ks.iter().map(|&k| Cell::from(r.err[k])));
        t.push(row);
    }
    for (name, err) in &s.baselines {
        let mut row = vec![Cell::from(baselines::label(name))];
        row.extend(plan.grid.vary.keys().skip(1).map(|_| Cell::Empty));
        row.push(Cell::Empty);
        row.extend(plan.ks.iter().map(|&k| Cell::from(err[k])));
        t.push(row);
    }
    t
}

/// sweep.svg: one panel per varied key, error at each chosen k against the key's value (points, one
/// colour per k), the baselines as level lines in a lighter shade of their k's colour.
/// Non-numeric values are placed at their index in the key's list.
pub fn figure(plan: &SweepPlan, s: &Summary) -> Figure {
    let mut fig = Figure::new("sweep", format!("sweep {}", plan.grid.name)).caption(format!(
        "Normalised squared error after k in-context examples on {} prompts of {}, per grid point, against \
         each varied key; level lines: baselines.",
        plan.eval.prompts,
        plan.eval.task.name()
    ));
    for (a, (key, values)) in plan.grid.vary.iter().enumerate() {
        let numeric: Option<Vec<f64>> = values
            .iter()
            .map(|v| match v {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) => Some(*f),
                _ => None,
            })
            .collect();
        let x_of = |v: &toml::Value| -> f64 {
            let i = values.iter().position(|x| x == v).unwrap_or(0);
            numeric.as_ref().map_or(i as f64, |xs| xs[i])
        };
        let x_label = match &numeric {
            Some(_) => key.clone(),
            None => format!(
                "{key} ({})",
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{i} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut panel = Panel::new(key.as_str())
            .x_label(x_label)
            .y_label("normalised squared error")
            .y_range(Some(0.0), None);
        // Values spanning a decade or more (learning rates) read best on a log axis.
        if let Some(xs) = &numeric {
            let (lo, hi) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
            if lo > 0.0 && hi / lo >= 10.0 {
                panel = panel.x_log();
            }
        }
        let xs: Vec<f64> = s.rows.iter().map(|r| x_of(&r.point.values[a].1)).collect();
        let span = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        for (ki, &k) in plan.ks.iter().enumerate() {
            let color = PALETTE[ki % PALETTE.len()];
            let y = s.rows.iter().map(|r| r.err[k]).collect();
            panel.push(
                Series::points(format!("k = {k}"), xs.clone(), y)
                    .color(color)
                    .marker(Marker::Circle),
            );
            // Baselines as level lines across the panel, named in the legend rather than labelled
            // on the plot (labels of nearby lines overlap).
            for (bi, (name, err)) in s.baselines.iter().enumerate() {
                panel.push(
                    Series::line(
                        format!("{}, k = {k}", baselines::label(name)),
                        vec![span.0, span.1],
                        vec![err[k]; 2],
                    )
                    .color(blend(color))
                    .dash(DASHES[(bi + 1) % DASHES.len()])
                    .width(1.4),
                );
            }
        }
        fig = fig.panel(panel);
    }
    fig
}

/// A lighter shade of a series colour, for reference lines that should not hide the points.
fn blend(c: Color) -> Color {
    let mix = |v: u8| ((v as u16 + 2 * 200) / 3) as u8;
    Color(mix(c.0), mix(c.1), mix(c.2))
}

/// One progress line over the whole grid on stderr until `finished`: steps done of all models,
/// models done, rate and ETA. Redrawn in place on a terminal; a line every 10 s otherwise.
fn grid_progress(steps: &AtomicU64, total: u64, models: &AtomicUsize, n_models: usize, finished: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_secs_f64(if tty { 0.2 } else { 10.0 });
    let t0 = Instant::now();
    let start = steps.load(Ordering::Relaxed);
    let mut last = Instant::now();
    let line = |done: u64| {
        let rate = done.saturating_sub(start) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
        let width = 24;
        let filled = ((width as f64 * done as f64 / total.max(1) as f64) as usize).min(width);
        format!(
            "sweep: step {done}/{total} [{}{}] | models {}/{n_models} | {rate:.1} steps/s | ETA {}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            models.load(Ordering::Relaxed),
            fmt_duration(eta)
        )
    };
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() >= every {
            last = Instant::now();
            let l = line(steps.load(Ordering::Relaxed));
            if tty {
                eprint!("\r{l}\x1b[K");
            } else {
                eprintln!("{l}");
            }
        }
    }
    let l = line(steps.load(Ordering::Relaxed));
    if tty {
        eprintln!("\r{l}\x1b[K");
    } else {
        eprintln!("{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: &str = r#"
name = "t"
[base]
preset = "E1"
model = "noisy"
scale = "smoke"
set = ["steps=5"]
[vary]
"optimizer.lr" = [1e-3, 3e-3]
"model.n_layer" = [1, 2]
[eval]
baselines = ["least_squares", "bayes:noisy"]
"#;

    #[test]
    fn grid_points_are_the_product_with_the_last_key_fastest() {
        let p = resolve(Grid::parse("g", GRID).unwrap(), GRID.into(), Path::new(".")).unwrap();
        let described: Vec<String> = p.points.iter().map(Point::describe).collect();
        assert_eq!(
            described,
            [
                "model.n_layer=1 optimizer.lr=0.001",
                "model.n_layer=1 optimizer.lr=0.003",
                "model.n_layer=2 optimizer.lr=0.001",
                "model.n_layer=2 optimizer.lr=0.003"
            ]
        );
        assert_eq!(p.points[3].config.model.n_layer, 2);
        assert_eq!(p.points[3].config.steps, 5);
        let keys: std::collections::BTreeSet<&str> = p.points.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn the_example_grid_resolves() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../presets/sweeps/example.toml");
        let p = plan(&path).unwrap();
        assert_eq!(p.points.len(), 4);
        assert_eq!((p.eval.d, p.eval.n, p.ks.clone()), (4, 12, vec![2, 4, 11]));
    }

    #[test]
    fn bad_grids_name_the_field() {
        let check = |text: &str, words: &[&str]| {
            let e = Grid::parse("g", text)
                .map_err(anyhow::Error::from)
                .and_then(|g| resolve(g, text.into(), Path::new(".")))
                .unwrap_err();
            let msg = format!("{e:#}");
            for w in words {
                assert!(msg.contains(w), "{w:?} not in {msg}");
            }
        };
        check(&GRID.replace("[eval]", "[eval]\nprompt = 3"), &["prompt", "prompts"]);
        check(&GRID.replace("[1, 2]", "[]"), &["model.n_layer", "non-empty"]);
        check(&GRID.replace("bayes:noisy", "lass"), &["lass", "least_squares"]);
        check(&GRID.replace("bayes:noisy", "bayes:nope"), &["bayes:nope", "mixture"]);
        check(&GRID.replace("\"noisy\"", "\"nois\""), &["base.model", "nois", "dense"]);
        check(&GRID.replace("\"E1\"", "\"E9\""), &["E9", "E1"]);
        check(
            &GRID.replace("\"model.n_layer\"", "\"model.n_layr\""),
            &["grid point 1", "n_layr"],
        );
        check(
            &GRID.replace("[1, 2]", "[0, 2]"),
            &["grid point 1", "model.n_layer=0", "n_layer"],
        );
    }
}
