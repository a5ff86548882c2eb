//! What one experiment writes: the figures its preset declares (mirroring the study's: ICL curves
//! with bands and the dashed line at 1, selection cost, E3 distances, E5/E6 sweeps, 1-D pictures),
//! every number as CSV tables, and its report section with the finding's checks.

use iclab_core::metrics::Curve;
use iclab_core::{Prompt, PromptBatch};
use iclab_report::{Cell, Figure, Panel, Section, Series, Table};

use crate::eval::{EvalData, Evaluated, ModelSource, SeedCurves};
use crate::findings::FindingResult;
use crate::preset::{FigureDecl, Plan};

/// An experiment's figures, CSV tables and report section.
pub struct ExperimentOutput {
    pub figures: Vec<Figure>,
    /// Every number (CSV); not shown in the report.
    pub tables: Vec<Table>,
    pub section: Section,
}

/// Title of an eval's panel: its name and test class.
fn eval_title(e: &EvalData) -> String {
    format!("{} prompts: {}", e.plan.name, e.plan.task.name())
}

/// Combined (seed-averaged) error curves of the given predictors on one eval.
fn error_curves(
    plan: &Plan,
    e: &EvalData,
    predictors: &[String],
    bootstrap_seed: u64,
) -> anyhow::Result<Vec<SeedCurves>> {
    predictors
        .iter()
        .filter(|p| e.preds.contains_key(*p))
        .map(|p| e.error_curves(p, &plan.label(p), bootstrap_seed))
        .collect()
}

fn curve_rows(t: &mut Table, eval: &EvalData, what: &str, c: &Curve, seeds: usize) {
    for p in &c.points {
        t.push(vec![
            Cell::from(eval.plan.name.as_str()),
            Cell::from(eval.plan.sweep_value),
            Cell::from(what),
            Cell::from(p.k),
            Cell::from(p.mean),
            Cell::from(p.std),
            Cell::from(p.lo),
            Cell::from(p.hi),
            Cell::from(seeds),
        ]);
    }
}

const CURVE_HEADER: [&str; 9] = [
    "eval",
    "sweep_value",
    "predictor",
    "k",
    "mean",
    "std",
    "lo",
    "hi",
    "seeds",
];

/// ks shown in the compact table of the report: 1, 3, d/2, d, n/2, n - 1 (those inside 0..n-1).
fn summary_ks(d: usize, n: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = [1, 3, d / 2, d, n / 2, n - 1]
        .into_iter()
        .filter(|&k| k >= 1 && k < n)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Builds the experiment's outputs. `models` draws the 1-D pictures' prediction curves.
pub fn build(
    plan: &Plan,
    data: &Evaluated,
    finding: &FindingResult,
    models: &mut dyn ModelSource,
) -> anyhow::Result<ExperimentOutput> {
    let mut tables = number_tables(plan, data)?;
    let figures = figures(plan, data, models, &mut tables)?;
    let summary = summary_table(plan, data)?;
    let section = section(plan, data, finding, &figures, &tables, &summary);
    tables.push(summary);
    Ok(ExperimentOutput {
        figures,
        tables,
        section,
    })
}

/// Every number behind the figures: curves (combined and per seed), selection costs, distances.
fn number_tables(plan: &Plan, data: &Evaluated) -> anyhow::Result<Vec<Table>> {
    let id = &plan.preset.id;
    let bs = data.bootstrap_seed;
    let mut tables = Vec::new();
    let mut curves_t = Table::new(format!("{id}_curves"), &CURVE_HEADER).caption(
        "Normalised squared error per k (mean over prompts, averaged over training seeds); lo/hi: bootstrap 5-95% band \
         over prompts with one seed, min/max over seeds with several; std: over prompts (one seed) or seeds",
    );
    let mut by_seed_t = Table::new(
        format!("{id}_curves_by_seed"),
        &["eval", "predictor", "seed", "k", "mean", "lo", "hi"],
    );
    let mut costs_t = Table::new(format!("{id}_selection_costs"), &CURVE_HEADER)
        .caption("error(model) - error(specialist) per prompt, summarised per k");
    let mut dist_t = Table::new(format!("{id}_distances"), &CURVE_HEADER)
        .caption("mean over prompts of (prediction a - prediction b)^2 / E[y^2] per k");
    for e in &data.evals {
        for p in &e.plan.predictors {
            let sc = e.error_curves(p, &plan.label(p), bs)?;
            curve_rows(&mut curves_t, e, p, &sc.combined(), sc.per_seed.len());
            if data.seeds > 1 && plan.is_model(p) {
                for (s, c) in sc.per_seed.iter().enumerate() {
                    for pt in &c.points {
                        by_seed_t.push(vec![
                            Cell::from(e.plan.name.as_str()),
                            Cell::from(p.as_str()),
                            Cell::from(s),
                            Cell::from(pt.k),
                            Cell::from(pt.mean),
                            Cell::from(pt.lo),
                            Cell::from(pt.hi),
                        ]);
                    }
                }
            }
        }
        for [a, b] in &e.plan.costs {
            let sc = e.cost_curves(a, b, "", bs)?;
            curve_rows(
                &mut costs_t,
                e,
                &format!("{a} - {b}"),
                &sc.combined(),
                sc.per_seed.len(),
            );
        }
        for [a, b] in &e.plan.distances {
            let sc = e.distance_curves(a, b, "", bs)?;
            curve_rows(&mut dist_t, e, &format!("{a} ~ {b}"), &sc.combined(), sc.per_seed.len());
        }
    }
    tables.push(curves_t);
    if data.seeds > 1 {
        tables.push(by_seed_t);
    }
    if !costs_t.rows.is_empty() {
        tables.push(costs_t);
    }
    if !dist_t.rows.is_empty() {
        tables.push(dist_t);
    }
    Ok(tables)
}

/// The preset's figures; figures drawn from numbers not in `tables` (sweeps, pictures) add theirs.
fn figures(
    plan: &Plan,
    data: &Evaluated,
    models: &mut dyn ModelSource,
    tables: &mut Vec<Table>,
) -> anyhow::Result<Vec<Figure>> {
    let id = &plan.preset.id;
    let bs = data.bootstrap_seed;
    let (d, n) = (plan.d(), plan.n());
    let mut figures = Vec::new();
    for f in &plan.preset.figures {
        match f {
            FigureDecl::Curves {
                name,
                title,
                evals,
                predictors,
            } => {
                let mut fig = Figure::new(name, title).caption(format!(
                    "Normalised squared error of the prediction after k in-context examples ({} prompts{}); \
                     shaded: {}; dashed line at 1: predicting 0.",
                    plan.scale.eval_prompts,
                    if data.seeds > 1 {
                        format!(", {} training seeds", data.seeds)
                    } else {
                        String::new()
                    },
                    if data.seeds > 1 {
                        "models: range over training seeds; baselines: bootstrap 5-95% band"
                    } else {
                        "bootstrap 5-95% band over prompts"
                    }
                ));
                for ev in evals {
                    let Ok(e) = data.get(ev) else { continue };
                    let preds = predictors.clone().unwrap_or_else(|| e.plan.predictors.clone());
                    let curves: Vec<Curve> = error_curves(plan, e, &preds, bs)?
                        .iter()
                        .map(SeedCurves::combined)
                        .collect();
                    fig = fig.panel(Panel::icl(eval_title(e), &curves));
                }
                figures.push(fig);
            }
            FigureDecl::Cost { name, title, evals } => {
                let mut fig = Figure::new(name, title).caption(
                    "Selection cost: per-prompt error of the model minus that of the specialist (or Bayes minus \
                     the class oracle), per k; shaded: bootstrap 5-95% band (range over seeds with several).",
                );
                for ev in evals {
                    let Ok(e) = data.get(ev) else { continue };
                    let mut panel = Panel::new(eval_title(e))
                        .x_label("in-context examples k")
                        .y_label("error difference")
                        .hline(0.0, "");
                    for [a, b] in &e.plan.costs {
                        let c = e.cost_curves(a, b, &format!("{} - {}", plan.label(a), plan.label(b)), bs)?;
                        panel.push(Series::from_curve(&c.combined()));
                    }
                    fig = fig.panel(panel);
                }
                figures.push(fig);
            }
            FigureDecl::Distances { name, title, eval } => {
                let group = plan.group(eval);
                let mut fig = Figure::new(name, title)
                    .caption(
                        "Mean over prompts of the squared difference between two predictors' predictions, \
                         normalised by E[y^2], per k; shaded: bootstrap 5-95% band.",
                    )
                    .columns(group.len().clamp(1, 3));
                for ep in group {
                    let e = data.get(&ep.name)?;
                    let mut panel = Panel::new(eval_title(e))
                        .x_label("in-context examples k")
                        .y_label("normalised squared difference")
                        .y_range(Some(0.0), None);
                    for [a, b] in &e.plan.distances {
                        let c = e.distance_curves(a, b, &format!("{} ~ {}", plan.label(a), plan.label(b)), bs)?;
                        panel.push(Series::from_curve(&c.combined()));
                    }
                    fig = fig.panel(panel);
                }
                figures.push(fig);
            }
            FigureDecl::Sweep {
                name,
                title,
                eval,
                x_label,
                predictors,
                ks,
                log_x,
            } => {
                let group = plan.group(eval);
                let ks: Vec<usize> = ks
                    .iter()
                    .map(|k| k.eval(d, n).map(|v| v.clamp(0, n as i64 - 1) as usize))
                    .collect::<Result<_, _>>()?;
                let mut fig = Figure::new(name, title).caption(format!(
                    "Error after k examples against {eval}; shaded: bootstrap 5-95% band (range over seeds with \
                     several); dashed line at 1: predicting 0."
                ));
                let mut sweep_t = Table::new(
                    format!("{id}_sweep_{eval}"),
                    &[eval.as_str(), "predictor", "k", "mean", "lo", "hi"],
                );
                for p in predictors {
                    let mut panel = Panel::new(plan.label(p))
                        .x_label(x_label)
                        .y_label("normalised squared error")
                        .hline(1.0, "");
                    if *log_x {
                        panel = panel.x_log();
                    }
                    panel = panel.y_range(Some(0.0), None);
                    // [value][k] curves of this predictor.
                    let mut per_value = Vec::new();
                    for ep in &group {
                        let e = data.get(&ep.name)?;
                        if e.preds.contains_key(p) {
                            per_value.push((
                                ep.sweep_value.unwrap_or(f64::NAN),
                                e.error_curves(p, "", bs)?.combined(),
                            ));
                        }
                    }
                    for &k in &ks {
                        let (mut x, mut y, mut lo, mut hi) = (vec![], vec![], vec![], vec![]);
                        for (v, c) in &per_value {
                            let pt = c.points[k];
                            x.push(*v);
                            y.push(pt.mean);
                            lo.push(pt.lo);
                            hi.push(pt.hi);
                            sweep_t.push(vec![
                                Cell::from(*v),
                                Cell::from(p.as_str()),
                                Cell::from(k),
                                Cell::from(pt.mean),
                                Cell::from(pt.lo),
                                Cell::from(pt.hi),
                            ]);
                        }
                        panel.push(
                            Series::line(format!("k = {k}"), x, y)
                                .with_band(lo, hi)
                                .kind(iclab_report::SeriesKind::LinePoints),
                        );
                    }
                    fig = fig.panel(panel);
                }
                tables.push(sweep_t);
                figures.push(fig);
            }
            FigureDecl::Picture {
                name,
                title,
                evals,
                predictors,
                ks,
                prompt,
            } => {
                if d != 1 {
                    continue;
                }
                let ks: Vec<usize> = ks
                    .iter()
                    .map(|k| k.eval(d, n).map(|v| v.clamp(1, n as i64 - 1) as usize))
                    .collect::<Result<_, _>>()?;
                let mut fig = Figure::new(name, title)
                    .caption(format!(
                        "Prompt {prompt} of each prompt set: the first k examples (dots), the true function (grey) \
                         and each predictor's prediction at every x given those k examples (seed 0 for models)."
                    ))
                    .columns(ks.len().max(1));
                let mut pic_t = Table::new(format!("{id}_picture"), &["eval", "k", "series", "x", "y"]);
                for ev in evals {
                    let Ok(e) = data.get(ev) else { continue };
                    let Some(pr) = e.prompts.get(*prompt) else { continue };
                    for &k in &ks {
                        let (panel, rows) = picture(plan, e, pr, k, predictors, models)?;
                        for (series, x, y) in rows {
                            pic_t.push(vec![
                                Cell::from(e.plan.name.as_str()),
                                Cell::from(k),
                                Cell::from(series),
                                Cell::from(x),
                                Cell::from(y),
                            ]);
                        }
                        fig = fig.panel(panel);
                    }
                }
                tables.push(pic_t);
                figures.push(fig);
            }
        }
    }
    Ok(figures)
}

/// The report's compact table: each predictor's error at a few k.
fn summary_table(plan: &Plan, data: &Evaluated) -> anyhow::Result<Table> {
    let id = &plan.preset.id;
    let (d, n) = (plan.d(), plan.n());
    let ks = summary_ks(d, n);
    let mut header: Vec<String> = vec!["prompts".into(), "predictor".into()];
    header.extend(ks.iter().map(|k| format!("k={k}")));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut summary = Table::new(format!("{id}_summary"), &header_refs).caption(
        "Normalised squared error at selected k (mean over prompts and training seeds); every k is in the CSV.",
    );
    for e in &data.evals {
        for p in &e.plan.predictors {
            let m = e.mean_errors(p, None)?;
            let mut row = vec![Cell::from(e.plan.name.as_str()), Cell::from(plan.label(p))];
            row.extend(ks.iter().map(|&k| Cell::from(m[k])));
            summary.push(row);
        }
    }
    Ok(summary)
}

/// The experiment's report section: question, claim, setup, figures, the checked finding and the
/// compact table, then where every number is.
fn section(
    plan: &Plan,
    data: &Evaluated,
    finding: &FindingResult,
    figures: &[Figure],
    tables: &[Table],
    summary: &Table,
) -> Section {
    let id = &plan.preset.id;
    let (d, n) = (plan.d(), plan.n());
    let s = &plan.scale;
    let models: Vec<String> = plan
        .preset
        .models
        .iter()
        .map(|m| {
            format!(
                "{} ({})",
                m.label.clone().unwrap_or_else(|| m.name.clone()),
                m.task.name()
            )
        })
        .collect();
    let setup = format!(
        "Setup ({} scale): d = {d}, n = {n} points; models {} layers x {} heads x {} wide, {} steps of batch {}, \
         Adam lr {}{}{}; trained: {}. Evaluation: {} prompts per set{}.",
        plan.scale_name,
        s.n_layer,
        s.n_head,
        s.n_embd,
        s.steps,
        s.batch_size,
        s.lr,
        if s.warmup_steps > 0 {
            format!(" ({} warm-up steps)", s.warmup_steps)
        } else {
            String::new()
        },
        if s.curriculum_interval > 0 {
            format!(", curriculum every {} steps", s.curriculum_interval)
        } else {
            String::new()
        },
        models.join("; "),
        s.eval_prompts,
        if data.seeds > 1 {
            format!(", {} training seeds", data.seeds)
        } else {
            String::new()
        },
    );
    let mut section = Section::new(format!("{}: {}", id, plan.preset.title))
        .paragraph(plan.preset.question.clone())
        .paragraph(format!("Claim: {}", plan.preset.finding))
        .paragraph(setup);
    for f in figures {
        section = section.figure(f.clone());
    }
    section = section.findings(vec![finding.to_report()]).table(summary.clone());
    section = section.paragraph(format!(
        "Every number: {}.",
        tables
            .iter()
            .map(|t| format!("tables/{}.csv", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    section
}

/// Grid of the 1-D pictures: x in [-3, 3] (inputs are N(0, 1)).
const PICTURE_GRID: usize = 121;

/// One picture panel: context points, truth and predictions over x after k examples of `pr`.
#[allow(clippy::type_complexity)]
fn picture(
    plan: &Plan,
    e: &EvalData,
    pr: &Prompt,
    k: usize,
    predictors: &[String],
    models: &mut dyn ModelSource,
) -> anyhow::Result<(Panel, Vec<(String, f64, f64)>)> {
    let grid: Vec<f64> = (0..PICTURE_GRID)
        .map(|i| -3.0 + 6.0 * i as f64 / (PICTURE_GRID - 1) as f64)
        .collect();
    let truth: Vec<f64> = grid.iter().map(|&x| pr.function.eval(&[x as f32])).collect();
    // One prompt per grid point: the k context examples, then the grid point as the query.
    let prompts: Vec<Prompt> = grid
        .iter()
        .zip(&truth)
        .map(|(&x, &y)| {
            let mut xs = pr.xs[..k].to_vec();
            let mut ys = pr.ys[..k].to_vec();
            xs.push(x as f32);
            ys.push(y as f32);
            Prompt {
                d: 1,
                n: k + 1,
                xs,
                ys,
                queries: None,
                component: pr.component,
                function: pr.function.clone(),
            }
        })
        .collect();
    let mut preds: Vec<(String, Vec<f64>)> = Vec::new();
    for p in predictors {
        if !e.preds.contains_key(p) {
            continue;
        }
        let v: Vec<f64> = if plan.is_model(p) {
            let batch = PromptBatch::from_prompts(&prompts);
            let out = models.predict(p, 0, &batch)?;
            out.chunks_exact(k + 1).map(|r| r[k] as f64).collect()
        } else {
            let b = plan.baseline(p, &e.plan)?;
            prompts.iter().map(|q| b.baseline.predict(q)[k]).collect()
        };
        preds.push((plan.label(p), v));
    }
    let cx: Vec<f64> = pr.xs[..k].iter().map(|&v| v as f64).collect();
    let cy: Vec<f64> = pr.ys[..k].iter().map(|&v| v as f64).collect();
    let pred_refs: Vec<(&str, Vec<f64>)> = preds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let panel = Panel::function_1d(
        format!("{}, k = {k}", e.plan.name),
        (&cx, &cy),
        &grid,
        &truth,
        &pred_refs,
    );
    let mut rows = Vec::new();
    for (x, y) in cx.iter().zip(&cy) {
        rows.push(("context".to_string(), *x, *y));
    }
    for (x, y) in grid.iter().zip(&truth) {
        rows.push(("true function".to_string(), *x, *y));
    }
    for (name, v) in &preds {
        for (x, y) in grid.iter().zip(v) {
            rows.push((name.clone(), *x, *y));
        }
    }
    Ok((panel, rows))
}
