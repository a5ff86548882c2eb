//! `iclab reproduce`: every selected experiment at one scale, end to end. Trains each distinct model
//! once (shared between experiments, resumable), evaluates the experiments (predictions cached),
//! checks their findings, and writes `report.html`, `report.md`, figures (SVG + PNG), every number
//! as CSV (`tables/`), `findings.csv` and `summary.json` into the output folder.
//!
//! Output layout:
//! ```text
//! <out>/report.html, report.md, findings.csv, summary.json, log.txt
//! <out>/figures/<name>.svg|png      <out>/tables/<name>.csv
//! <out>/models/<task>-s<seed>-<hash>/   (training runs: config.toml, metrics.jsonl, checkpoints/)
//! <out>/cache/<hash>.f32|json          (predictions of every predictor on every prompt set)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use iclab_model::lock::DirLock;
use iclab_model::train::{TrainConfig, TrainOptions};
use iclab_report::{Cell, Report, Section, Table};

use crate::findings::{self, FindingResult};
use crate::outputs;
use crate::preset::{self, Plan, Preset};
use crate::runs::{self, LoadedModels, TrainEvent};
use crate::slurm;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// "smoke", "laptop" or "paper" (or any scale the presets define).
    pub scale: String,
    /// Experiment ids (empty: all).
    pub only: Vec<String>,
    /// Training seeds per model.
    pub seeds: usize,
    pub out: PathBuf,
    /// Folder of preset files (`*.toml`) instead of the built-in ones.
    pub presets: Option<PathBuf>,
    /// Progress bars while training.
    pub progress: bool,
    /// Set by Ctrl-C: training checkpoints and the run stops (rerun to resume).
    pub stop: Option<Arc<AtomicBool>>,
    /// Models trained side by side (None: one per worker thread, each on its own thread).
    pub train_jobs: Option<usize>,
    /// Replace a report of more experiments than this run selects.
    pub force: bool,
    /// Train nothing: report on the folder's models, or fail naming those that are not finished
    /// (`iclab reproduce --collect`, the collect job of `--slurm`).
    pub collect: bool,
}

/// The result of a run.
pub struct Summary {
    pub findings: Vec<FindingResult>,
    pub wall_seconds: f64,
    pub report_html: PathBuf,
    pub report_md: PathBuf,
    /// False when Ctrl-C stopped training (no report written).
    pub complete: bool,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    scale: &'a str,
    seeds: usize,
    experiments: Vec<String>,
    wall_seconds: f64,
    train_seconds: f64,
    eval_seconds: f64,
    models_trained: usize,
    models_reused: usize,
    findings: Vec<FindingJson>,
}

#[derive(Serialize)]
struct FindingJson {
    id: String,
    verdict: &'static str,
    passed: bool,
    required: bool,
    checks: Vec<CheckJson>,
}

#[derive(Serialize)]
struct CheckJson {
    text: String,
    left: f64,
    op: &'static str,
    right: f64,
    kind: &'static str,
    passed: bool,
    seeds_passed: usize,
    /// (left, right) on each seed's models alone (empty with one seed).
    per_seed: Vec<(f64, f64)>,
}

/// Loads the presets: the built-in ones, or every `*.toml` of a folder (sorted by id).
pub fn load_presets(dir: Option<&Path>) -> anyhow::Result<Vec<Preset>> {
    match dir {
        None => Ok(Preset::builtins()?),
        Some(dir) => {
            let mut out = Vec::new();
            let entries =
                std::fs::read_dir(dir).with_context(|| format!("reading presets folder {}", dir.display()))?;
            for e in entries {
                let path = e?.path();
                if path.extension().is_some_and(|x| x == "toml") {
                    out.push(Preset::load(&path)?);
                }
            }
            anyhow::ensure!(!out.is_empty(), "{} holds no preset (*.toml)", dir.display());
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(out)
        }
    }
}

/// A log that prints to stderr with the elapsed time and keeps a copy in `<out>/log.txt`.
struct Log {
    t0: Instant,
    file: Option<std::fs::File>,
}

impl Log {
    fn line(&mut self, s: &str) {
        let line = format!("[{:7.1}s] {s}", self.t0.elapsed().as_secs_f64());
        eprintln!("{line}");
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Refuses to write a report of `ids` over the report of `out` when that one covers experiments
/// that `ids` lacks (a partial `--only` run would replace a fuller report); `force` overrides.
fn check_not_partial(out: &Path, ids: &[String]) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Held {
        experiments: Vec<String>,
    }
    let path = out.join("summary.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Ok(held) = serde_json::from_str::<Held>(&text) else {
        return Ok(());
    };
    let missing: Vec<&String> = held.experiments.iter().filter(|e| !ids.contains(e)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{} holds a report of {}; this run ({}) would replace it with a report without {}. Run them too \
         (`--only {}`), choose another `--out`, or pass `--force` to replace it",
        out.display(),
        held.experiments.join(", "),
        ids.join(", "),
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        held.experiments
            .iter()
            .chain(ids.iter().filter(|i| !held.experiments.contains(i)))
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The selected presets, each resolved at the run's scale and seeds.
pub fn plans(opts: &Options) -> anyhow::Result<Vec<Plan>> {
    let presets = load_presets(opts.presets.as_deref())?;
    let selected = preset::select(&presets, &opts.only)?;
    Ok(selected
        .iter()
        .map(|p| p.plan(&opts.scale, opts.seeds))
        .collect::<Result<_, _>>()?)
}

/// Every distinct model of `plans` once, in order of first use: (run key, training config, the
/// `experiment:model` names that use it).
pub fn distinct_models(plans: &[Plan]) -> anyhow::Result<Vec<(String, TrainConfig, Vec<String>)>> {
    let mut distinct: Vec<(String, TrainConfig, Vec<String>)> = Vec::new();
    for plan in plans {
        for m in &plan.models {
            let cfg = m.config.clone();
            let key = runs::run_key(&cfg);
            let user = format!("{}:{}", plan.preset.id, m.name);
            match distinct.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, users)) => users.push(user),
                None => distinct.push((key, cfg, vec![user])),
            }
        }
    }
    Ok(distinct)
}

/// Runs the experiments (see the module docs): plan, train, evaluate, write.
pub fn run(opts: &Options) -> anyhow::Result<Summary> {
    let t0 = Instant::now();
    // One writer per output folder (the models under it are locked one by one as they train).
    let _lock = DirLock::acquire(&opts.out)?;
    let plans = plans(opts)?;
    if !opts.force {
        let ids: Vec<String> = plans.iter().map(|p| p.preset.id.clone()).collect();
        check_not_partial(&opts.out, &ids)?;
    }
    let mut log = Log {
        t0,
        file: std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.out.join("log.txt"))
            .ok(),
    };
    log.line(&format!(
        "iclab reproduce: {} at scale {} with {} training seed(s) into {}",
        plans
            .iter()
            .map(|p| p.preset.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        opts.scale,
        opts.seeds,
        opts.out.display()
    ));

    // ---- train every distinct model once ----
    let models_dir = opts.out.join("models");
    let distinct = distinct_models(&plans)?;
    if opts.collect {
        let cfgs: Vec<&TrainConfig> = distinct.iter().map(|(_, cfg, _)| cfg).collect();
        let missing = slurm::missing(&opts.out, &cfgs);
        if !missing.is_empty() {
            anyhow::bail!(
                "{} of {} models are not trained in {}; no report written:\n  {}",
                missing.len(),
                cfgs.len(),
                models_dir.display(),
                missing.join("\n  ")
            );
        }
    }
    let Some(training) = train_phase(opts, &distinct, &models_dir, &mut log)? else {
        log.line("stopped: rerun the same command to resume from the last checkpoint");
        return Ok(Summary {
            findings: Vec::new(),
            wall_seconds: t0.elapsed().as_secs_f64(),
            report_html: opts.out.join("report.html"),
            report_md: opts.out.join("report.md"),
            complete: false,
        });
    };

    // ---- evaluate, check, draw ----
    let evaluated = evaluate_phase(opts, &plans, &models_dir, &mut log)?;
    let wall = t0.elapsed().as_secs_f64();

    // ---- write: report, tables, findings.csv, summary.json ----
    let findings_all = &evaluated.findings;
    let passed_required = findings_all.iter().filter(|f| f.required && f.passed()).count();
    let required = findings_all.iter().filter(|f| f.required).count();
    let mut report = Report::new(format!("iclab reproduce ({} scale)", opts.scale))
        .intro(format!(
            "Reproduction of Yadlowsky, Doshi & Tripuraneni (2023), \"Pretraining Data Mixtures Enable Narrow \
             Model Selection Capabilities in Transformer Models\" (built on Garg et al. 2022), at the {} scale \
             with {} training seed(s): {} of {} required findings hold.",
            opts.scale, opts.seeds, passed_required, required
        ))
        .intro(format!(
            "Wall time {:.1} min ({:.1} min training {} models, {} reused from earlier runs; {:.1} min evaluation \
             and figures) on {} worker thread(s). Errors are squared errors of the prediction after k in-context \
             examples divided by E[y^2] of the test class (predicting 0 scores 1).",
            wall / 60.0,
            training.seconds / 60.0,
            training.trained,
            training.reused,
            evaluated.seconds / 60.0,
            rayon::current_num_threads()
        ));
    let summary = summary_json(opts, &plans, wall, &training, &evaluated);
    let models_t = models_table(training.rows);
    report.push(Section::new("Models").table(models_t.clone()));
    for s in evaluated.sections {
        report.push(s);
    }
    let mut tables_all = evaluated.tables;
    tables_all.push(models_t);
    iclab_report::write_tables(&tables_all, &opts.out.join("tables"))?;
    let files = report.write(&opts.out)?;
    std::fs::write(
        opts.out.join("findings.csv"),
        findings_table(&evaluated.findings).to_csv(),
    )
    .context("writing findings.csv")?;
    std::fs::write(opts.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)
        .context("writing summary.json")?;
    log.line(&format!(
        "done in {:.1} min: {passed_required}/{required} required findings hold; report: {}",
        wall / 60.0,
        files.html.display()
    ));
    for f in &evaluated.findings {
        log.line(&format!("  {}", f.to_report().headline()));
    }
    Ok(Summary {
        findings: evaluated.findings,
        wall_seconds: wall,
        report_html: files.html,
        report_md: files.markdown,
        complete: true,
    })
}

/// The training phase's record: one `models` table row per distinct model, and counts.
struct Training {
    rows: Vec<Vec<Cell>>,
    trained: usize,
    reused: usize,
    seconds: f64,
}

/// Trains (or reuses) every distinct model into `models_dir`; None when Ctrl-C stopped it.
fn train_phase(
    opts: &Options,
    distinct: &[(String, TrainConfig, Vec<String>)],
    models_dir: &Path,
    log: &mut Log,
) -> anyhow::Result<Option<Training>> {
    let (jobs, threads_per_job) = runs::split_threads(opts.train_jobs, distinct.len());
    log.line(&format!(
        "{} distinct models to train or reuse ({jobs} at a time, {threads_per_job} thread(s) each)",
        distinct.len()
    ));
    let t_train = Instant::now();
    let log_m = std::sync::Mutex::new(&mut *log);
    let say = |s: String| log_m.lock().expect("log lock").line(&s);
    let cfgs: Vec<&TrainConfig> = distinct.iter().map(|(_, cfg, _)| cfg).collect();
    let train_opts = TrainOptions {
        progress: opts.progress && jobs == 1,
        stop: opts.stop.clone(),
        ..TrainOptions::default()
    };
    let results = runs::train_many(
        &cfgs,
        models_dir,
        (jobs, threads_per_job),
        &train_opts,
        &|event| match event {
            TrainEvent::Start(i) => {
                let (key, cfg, users) = &distinct[i];
                say(format!(
                    "model {}/{}: {key} ({} params, {} steps) for {}",
                    i + 1,
                    distinct.len(),
                    cfg.model.num_params(),
                    cfg.steps,
                    users.join(", ")
                ))
            }
            TrainEvent::Finished(i, r) => {
                let key = &distinct[i].0;
                match r {
                    Ok(Some(t)) if t.skipped => say(format!(
                        "  {key}: already trained (final loss {:.4})",
                        t.done.final_loss
                    )),
                    Ok(Some(t)) => say(format!(
                        "  {key}: trained in {:.1}s{} (final loss {:.4})",
                        t.seconds_now,
                        t.done
                            .resumed_from
                            .map(|s| format!(", resumed from step {s}"))
                            .unwrap_or_default(),
                        t.done.final_loss
                    )),
                    Ok(None) => say(format!("  {key}: stopped")),
                    Err(e) => say(format!("  {key}: {e:#}")),
                }
            }
        },
    );
    let mut trained_rows = Vec::new();
    let (mut n_trained, mut n_reused) = (0, 0);
    for ((key, cfg, users), r) in distinct.iter().zip(results) {
        let Some(t) = r? else {
            log.line("stopped: rerun the same command to resume from the last checkpoint");
            return Ok(None);
        };
        if t.skipped {
            n_reused += 1;
        } else {
            n_trained += 1;
        }
        trained_rows.push(vec![
            Cell::from(key.as_str()),
            Cell::from(cfg.task.name()),
            Cell::from(cfg.seed),
            Cell::from(cfg.model.num_params()),
            Cell::from(cfg.steps),
            Cell::from(t.done.final_loss),
            Cell::from(t.done.seconds),
            Cell::from(users.join(", ")),
        ]);
    }
    Ok(Some(Training {
        rows: trained_rows,
        trained: n_trained,
        reused: n_reused,
        seconds: t_train.elapsed().as_secs_f64(),
    }))
}

/// What the evaluation phase produced for the report.
struct Evaluated {
    findings: Vec<FindingResult>,
    tables: Vec<Table>,
    sections: Vec<Section>,
    seconds: f64,
}

/// Evaluates, checks and draws every experiment of `plans` from the models in `models_dir`.
fn evaluate_phase(opts: &Options, plans: &[Plan], models_dir: &Path, log: &mut Log) -> anyhow::Result<Evaluated> {
    let t_eval = Instant::now();
    let cache = opts.out.join("cache");
    let mut findings_all = Vec::new();
    let mut tables_all = Vec::new();
    let mut sections = Vec::new();
    for plan in plans {
        log.line(&format!("{}: {}", plan.preset.id, plan.preset.title));
        let mut models = LoadedModels::load(plan, models_dir)?;
        let data = crate::eval::evaluate(plan, &mut models, Some(&cache), &mut |s| log.line(s))?;
        let finding = findings::check(plan, &data)?;
        for c in &finding.checks {
            log.line(&format!(
                "  [{}] {}: {} {} {}",
                if c.passed { "pass" } else { "FAIL" },
                c.criterion.text,
                iclab_report::fmt_num(c.left),
                c.criterion.op.symbol(),
                iclab_report::fmt_num(c.right)
            ));
        }
        log.line(&format!("  {}", finding.to_report().headline()));
        let out = outputs::build(plan, &data, &finding, &mut models)?;
        tables_all.extend(out.tables);
        sections.push(out.section);
        findings_all.push(finding);
    }
    Ok(Evaluated {
        findings: findings_all,
        tables: tables_all,
        sections,
        seconds: t_eval.elapsed().as_secs_f64(),
    })
}

/// tables/models.csv: every pretrained model of the run.
fn models_table(rows: Vec<Vec<Cell>>) -> Table {
    let mut models_t = Table::new(
        "models",
        &[
            "run",
            "pretraining task",
            "seed",
            "parameters",
            "steps",
            "final loss",
            "train seconds",
            "used by",
        ],
    )
    .caption("Every pretrained model (runs under models/), shared between experiments by its config hash.");
    for r in rows {
        models_t.push(r);
    }
    models_t
}

/// findings.csv: one row per criterion of every finding.
fn findings_table(findings_all: &[FindingResult]) -> Table {
    let mut ft = Table::new(
        "findings",
        &[
            "experiment",
            "required",
            "criterion",
            "left",
            "measured",
            "op",
            "right",
            "threshold",
            "passed",
            "seeds_passed",
            "seeds",
            "verdict",
            "kind",
            "per_seed_left",
            "per_seed_right",
        ],
    );
    for f in findings_all {
        for c in &f.checks {
            let per_seed = |side: fn(&(f64, f64)) -> f64| {
                c.per_seed
                    .iter()
                    .map(|p| side(p).to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            };
            ft.push(vec![
                Cell::from(f.id.as_str()),
                Cell::from(if f.required { "yes" } else { "no" }),
                Cell::from(c.criterion.text.as_str()),
                Cell::from(c.left_desc.as_str()),
                Cell::from(c.left),
                Cell::from(c.criterion.op.symbol()),
                Cell::from(c.right_desc.as_str()),
                Cell::from(c.right),
                Cell::from(if c.passed { "yes" } else { "no" }),
                Cell::from(c.seeds_passed),
                Cell::from(c.seeds),
                Cell::from(f.verdict().label()),
                Cell::from(c.criterion.kind.label()),
                // Each seed's own measurement, `;`-separated (empty with one seed).
                Cell::from(per_seed(|p| p.0)),
                Cell::from(per_seed(|p| p.1)),
            ]);
        }
    }
    ft
}

/// summary.json.
fn summary_json<'a>(
    opts: &'a Options,
    plans: &[Plan],
    wall: f64,
    training: &Training,
    evaluated: &Evaluated,
) -> SummaryJson<'a> {
    SummaryJson {
        scale: &opts.scale,
        seeds: opts.seeds,
        experiments: plans.iter().map(|p| p.preset.id.clone()).collect(),
        wall_seconds: wall,
        train_seconds: training.seconds,
        eval_seconds: evaluated.seconds,
        models_trained: training.trained,
        models_reused: training.reused,
        findings: evaluated
            .findings
            .iter()
            .map(|f| FindingJson {
                id: f.id.clone(),
                verdict: f.verdict().label(),
                passed: f.passed(),
                required: f.required,
                checks: f
                    .checks
                    .iter()
                    .map(|c| CheckJson {
                        text: c.criterion.text.clone(),
                        left: c.left,
                        op: c.criterion.op.symbol(),
                        right: c.right,
                        kind: c.criterion.kind.label(),
                        passed: c.passed,
                        seeds_passed: c.seeds_passed,
                        per_seed: c.per_seed.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
