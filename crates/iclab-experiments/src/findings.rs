//! Findings: each experiment's claim checked by the numeric criteria of its preset. A criterion
//! compares two measured quantities (`left op right`); the finding holds when every criterion holds
//! on the seed-averaged curves. With several training seeds, each criterion also reports on how
//! many seeds it holds alone.

use crate::eval::{EvalData, Evaluated};
use crate::preset::{Agg, Criterion, CriterionKind, KSpec, Plan, Quantity};

/// One evaluated criterion.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub criterion: Criterion,
    pub left: f64,
    pub right: f64,
    /// How each side was measured, in words.
    pub left_desc: String,
    pub right_desc: String,
    pub passed: bool,
    /// Seeds on which the criterion holds with that seed's models alone.
    pub seeds_passed: usize,
    pub seeds: usize,
    /// (left, right) measured on each seed's models alone (empty with one seed).
    pub per_seed: Vec<(f64, f64)>,
}

/// An experiment's finding with its checks.
#[derive(Clone, Debug)]
pub struct FindingResult {
    pub id: String,
    pub claim: String,
    pub checks: Vec<CheckResult>,
    /// false: reported either way (E7).
    pub required: bool,
}

impl FindingResult {
    /// The finding holds: every finding criterion on the seed-averaged curves and on at least
    /// two thirds of the seeds alone, and every power check (see [`iclab_report::Finding::passed`]).
    pub fn passed(&self) -> bool {
        self.to_report().passed()
    }

    pub fn verdict(&self) -> iclab_report::Verdict {
        self.to_report().verdict()
    }

    /// The finding in the report's terms.
    pub fn to_report(&self) -> iclab_report::Finding {
        let mut f = iclab_report::Finding::new(&self.id, &self.claim);
        for c in &self.checks {
            let seeds = if c.seeds > 1 {
                format!(" [holds on {}/{} seeds alone]", c.seeds_passed, c.seeds)
            } else {
                String::new()
            };
            let what = format!(
                "{}: {} {} {}{}",
                c.criterion.text,
                c.left_desc,
                c.criterion.op.symbol(),
                c.right_desc,
                seeds
            );
            let cmp = match c.criterion.op {
                crate::preset::Op::Lt => iclab_report::Cmp::Lt,
                crate::preset::Op::Le => iclab_report::Cmp::Le,
                crate::preset::Op::Gt => iclab_report::Cmp::Gt,
                crate::preset::Op::Ge => iclab_report::Cmp::Ge,
            };
            let mut check = iclab_report::Check::new(what, c.left, cmp, c.right).seeds(c.per_seed.clone());
            if c.criterion.kind == CriterionKind::Power {
                check = check.power();
            }
            f = f.check(check);
        }
        if !self.required {
            f = f.informational();
        }
        f
    }
}

impl EvalData {
    /// Mean normalised squared error per k of predictor `p`; seed None: averaged over its seeds.
    pub fn mean_errors(&self, p: &str, seed: Option<usize>) -> anyhow::Result<Vec<f64>> {
        let seeds: Vec<usize> = match seed {
            Some(s) => vec![s.min(self.seeds_of(p).saturating_sub(1))],
            None => (0..self.seeds_of(p)).collect(),
        };
        anyhow::ensure!(
            self.seeds_of(p) > 0,
            "predictor {p} is not evaluated on {}",
            self.plan.name
        );
        let n = self.plan.n;
        let mut out = vec![0.0; n];
        for &s in &seeds {
            for row in self.errors(p, s)? {
                for (o, e) in out.iter_mut().zip(row) {
                    *o += e;
                }
            }
        }
        let m = (self.prompts.len() * seeds.len()) as f64;
        Ok(out.into_iter().map(|v| v / m).collect())
    }

    /// Mean of (prediction a - prediction b)^2 / E[y^2] per k; seed None: averaged over seeds.
    pub fn mean_distances(&self, a: &str, b: &str, seed: Option<usize>) -> anyhow::Result<Vec<f64>> {
        let seeds = self.seeds_of(a).max(self.seeds_of(b));
        anyhow::ensure!(
            self.seeds_of(a) > 0 && self.seeds_of(b) > 0,
            "{a} and {b} must both be evaluated on {}",
            self.plan.name
        );
        let list: Vec<usize> = match seed {
            Some(s) => vec![s.min(seeds - 1)],
            None => (0..seeds).collect(),
        };
        let (pa, pb) = (&self.preds[a], &self.preds[b]);
        let n = self.plan.n;
        let mut out = vec![0.0; n];
        for &s in &list {
            let (xa, xb) = (&pa[s.min(pa.len() - 1)], &pb[s.min(pb.len() - 1)]);
            for (ra, rb) in xa.iter().zip(xb) {
                for k in 0..n {
                    out[k] += (ra[k] - rb[k]).powi(2);
                }
            }
        }
        let m = (self.prompts.len() * list.len()) as f64 * self.ey2;
        Ok(out.into_iter().map(|v| v / m).collect())
    }
}

/// The inclusive k range of a quantity (default: every k), checked against 0..n-1.
fn k_range(q: &Quantity, d: usize, n: usize) -> anyhow::Result<(usize, usize)> {
    let (lo, hi) = match &q.k {
        None => (0, n as i64 - 1),
        Some(KSpec::One(e)) => {
            let v = e.eval(d, n)?;
            (v, v)
        }
        Some(KSpec::Range(r)) => (r[0].eval(d, n)?, r[1].eval(d, n)?),
    };
    anyhow::ensure!(
        0 <= lo && lo <= hi && hi < n as i64,
        "k range {lo}..={hi} is not inside 0..={} (d = {d}, n = {n})",
        n - 1
    );
    Ok((lo as usize, hi as usize))
}

/// Measures one side of a criterion: (value, description).
pub fn measure(q: &Quantity, plan: &Plan, data: &Evaluated, seed: Option<usize>) -> anyhow::Result<(f64, String)> {
    let (d, n) = (plan.d(), plan.n());
    let label = |p: &str| plan.label(p);
    let (raw, what) = if let Some(v) = q.value {
        (v, format!("{v}"))
    } else {
        let ev = q.eval.as_deref().expect("validated: eval is set");
        let e = data.get(ev)?;
        let (lo, hi) = k_range(q, d, n)?;
        let ks = if lo == hi {
            format!("k = {lo}")
        } else {
            format!("k = {lo}..{hi}")
        };
        let (series, name) = if let Some(p) = &q.error {
            (e.mean_errors(p, seed)?, format!("error of {}", label(p)))
        } else if let Some([a, b]) = &q.cost {
            let (ea, eb) = (e.mean_errors(a, seed)?, e.mean_errors(b, seed)?);
            (
                ea.iter().zip(&eb).map(|(x, y)| x - y).collect(),
                format!("error of {} minus {}", label(a), label(b)),
            )
        } else if let Some([a, b]) = &q.distance {
            (
                e.mean_distances(a, b, seed)?,
                format!("distance {} to {}", label(a), label(b)),
            )
        } else if let Some(p) = &q.first_k_below {
            let t = q.threshold.expect("validated: threshold is set");
            let s = e.mean_errors(p, seed)?;
            let first = (lo..=hi).find(|&k| s[k] < t).unwrap_or(n);
            return Ok(finish(
                q,
                first as f64,
                format!(
                    "first k in {lo}..{hi} where error of {} < {t} on {ev} ({n} = never)",
                    label(p)
                ),
            ));
        } else {
            unreachable!("validated: one kind is set")
        };
        let window = &series[lo..=hi];
        let v = match q.agg {
            Agg::Mean => window.iter().sum::<f64>() / window.len() as f64,
            Agg::Max => window.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Agg::Min => window.iter().copied().fold(f64::INFINITY, f64::min),
        };
        let agg = match (q.agg, lo == hi) {
            (_, true) => "",
            (Agg::Mean, false) => "mean ",
            (Agg::Max, false) => "max ",
            (Agg::Min, false) => "min ",
        };
        (v, format!("{agg}{name} on {ev} at {ks}"))
    };
    Ok(finish(q, raw, what))
}

fn finish(q: &Quantity, raw: f64, what: String) -> (f64, String) {
    let times = q.times.unwrap_or(1.0);
    let plus = q.plus.unwrap_or(0.0);
    let v = times * raw + plus;
    let mut desc = what;
    if times != 1.0 {
        desc = format!("{times} x [{desc} = {}]", iclab_report::fmt_num(raw));
    } else if plus != 0.0 {
        desc = format!("[{desc} = {}]", iclab_report::fmt_num(raw));
    }
    if plus != 0.0 {
        desc = format!("{desc} + {plus}");
    }
    (v, desc)
}

/// Checks every criterion of the plan's preset.
pub fn check(plan: &Plan, data: &Evaluated) -> anyhow::Result<FindingResult> {
    let mut checks = Vec::new();
    for c in &plan.preset.criteria {
        let (left, left_desc) = measure(&c.left, plan, data, None)?;
        let (right, right_desc) = measure(&c.right, plan, data, None)?;
        let mut seeds_passed = 0;
        let mut per_seed = Vec::new();
        for s in 0..data.seeds {
            let (l, _) = measure(&c.left, plan, data, Some(s))?;
            let (r, _) = measure(&c.right, plan, data, Some(s))?;
            seeds_passed += usize::from(c.op.holds(l, r));
            per_seed.push((l, r));
        }
        if data.seeds < 2 {
            per_seed.clear();
        }
        checks.push(CheckResult {
            criterion: c.clone(),
            left,
            right,
            left_desc,
            right_desc,
            passed: c.op.holds(left, right),
            seeds_passed,
            seeds: data.seeds,
            per_seed,
        });
    }
    Ok(FindingResult {
        id: plan.preset.id.clone(),
        claim: plan.preset.finding.clone(),
        checks,
        required: !plan.preset.report_only,
    })
}
