//! Findings: an experiment's claim with explicit numeric checks, shown in the report as measured
//! value vs threshold with a PASS / FAIL (or INFO) badge.

use crate::table::{fmt_num, Cell, Table};

/// Comparison of a measured value against its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn symbol(&self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    /// `a <cmp> b`; false whenever either side is NaN.
    pub fn holds(&self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// What a check is for: part of the finding, or a power check that shows the comparison can come
/// out either way at this scale (a finding whose power check fails is untestable, not held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckKind {
    #[default]
    Finding,
    Power,
}

impl CheckKind {
    pub fn label(&self) -> &'static str {
        match self {
            CheckKind::Finding => "finding",
            CheckKind::Power => "power",
        }
    }
}

/// One numeric criterion: passes iff `measured <cmp> threshold` (NaN never passes), measured on
/// the seed-averaged curves; `per_seed` holds (measured, threshold) on each training seed's
/// models alone when there are several.
#[derive(Clone, Debug)]
pub struct Check {
    pub what: String,
    pub measured: f64,
    pub cmp: Cmp,
    pub threshold: f64,
    pub kind: CheckKind,
    pub per_seed: Vec<(f64, f64)>,
}

impl Check {
    pub fn new(what: impl Into<String>, measured: f64, cmp: Cmp, threshold: f64) -> Check {
        Check {
            what: what.into(),
            measured,
            cmp,
            threshold,
            kind: CheckKind::Finding,
            per_seed: Vec::new(),
        }
    }

    /// Marks the check as a power check.
    pub fn power(mut self) -> Check {
        self.kind = CheckKind::Power;
        self
    }

    /// (measured, threshold) on each training seed alone.
    pub fn seeds(mut self, per_seed: Vec<(f64, f64)>) -> Check {
        self.per_seed = per_seed;
        self
    }

    pub fn passed(&self) -> bool {
        self.cmp.holds(self.measured, self.threshold)
    }

    /// Whether the check holds on training seed `s` alone (the mean's result with one seed).
    pub fn passed_on_seed(&self, s: usize) -> bool {
        match self.per_seed.get(s) {
            Some(&(m, t)) => self.cmp.holds(m, t),
            None => self.passed(),
        }
    }

    /// "0.01234 < 0.05".
    pub fn criterion(&self) -> String {
        format!(
            "{} {} {}",
            fmt_num(self.measured),
            self.cmp.symbol(),
            fmt_num(self.threshold)
        )
    }

    /// Each seed's measured value and result, "0.012 pass / 0.3 fail" (empty with one seed).
    pub fn per_seed_text(&self) -> String {
        (0..self.per_seed.len())
            .map(|s| {
                let mark = if self.passed_on_seed(s) { "pass" } else { "fail" };
                format!("{} {mark}", fmt_num(self.per_seed[s].0))
            })
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Seeds out of `seeds` on which a finding must hold alone, besides holding on their mean: at
/// least two thirds (1 of 1, 2 of 2, 2 of 3, 4 of 5).
pub fn seeds_needed(seeds: usize) -> usize {
    (2 * seeds).div_ceil(3)
}

/// An experiment's finding: a claim and the checks that support it. `required = false` (E7: reported
/// either way) shows an INFO badge instead of counting as a failure.
#[derive(Clone, Debug)]
pub struct Finding {
    pub id: String,
    pub claim: String,
    pub checks: Vec<Check>,
    pub required: bool,
}

/// The badge of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// A power check failed: at this scale the comparison could not have come out either way.
    Untestable,
    /// Not required: shown, not counted.
    Info,
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Untestable => "UNTESTABLE",
            Verdict::Info => "INFO",
        }
    }
}

impl Finding {
    /// A required finding with no checks yet.
    pub fn new(id: impl Into<String>, claim: impl Into<String>) -> Finding {
        Finding {
            id: id.into(),
            claim: claim.into(),
            checks: Vec::new(),
            required: true,
        }
    }

    pub fn check(mut self, c: Check) -> Finding {
        self.checks.push(c);
        self
    }

    /// Reported either way (not counted as a failure).
    pub fn informational(mut self) -> Finding {
        self.required = false;
        self
    }

    fn finding_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.kind == CheckKind::Finding)
    }

    /// Training seeds the checks were measured on (1 unless they carry per-seed values).
    pub fn seeds(&self) -> usize {
        self.checks.iter().map(|c| c.per_seed.len()).max().unwrap_or(0).max(1)
    }

    /// Seeds on which every finding check holds with that seed's models alone.
    pub fn seeds_holding(&self) -> usize {
        (0..self.seeds())
            .filter(|&s| self.finding_checks().all(|c| c.passed_on_seed(s)))
            .count()
    }

    /// Every power check passes.
    pub fn powered(&self) -> bool {
        self.checks
            .iter()
            .filter(|c| c.kind == CheckKind::Power)
            .all(Check::passed)
    }

    /// The finding holds: it has finding checks, all of them pass on the seed-averaged curves and
    /// on at least [`seeds_needed`] seeds alone, and every power check passes.
    pub fn passed(&self) -> bool {
        self.finding_checks().next().is_some()
            && self.finding_checks().all(Check::passed)
            && self.seeds_holding() >= seeds_needed(self.seeds())
            && self.powered()
    }

    pub fn verdict(&self) -> Verdict {
        match (self.required, self.powered(), self.passed()) {
            (false, _, _) => Verdict::Info,
            (true, false, _) => Verdict::Untestable,
            (true, true, true) => Verdict::Pass,
            (true, true, false) => Verdict::Fail,
        }
    }

    /// One line: verdict, the deciding numbers (the failing power checks when untestable, else
    /// the failing finding checks, else every finding check) and the seeds that hold.
    /// The deciding numbers (failing power checks, else failing criteria, else all) and how
    /// many seeds hold.
    pub fn deciding(&self) -> String {
        let failing_power: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.kind == CheckKind::Power && !c.passed())
            .collect();
        let failing: Vec<&Check> = self.finding_checks().filter(|c| !c.passed()).collect();
        let deciding = if !failing_power.is_empty() {
            failing_power
        } else if !failing.is_empty() {
            failing
        } else {
            self.finding_checks().collect()
        };
        let numbers = deciding.iter().map(|c| c.criterion()).collect::<Vec<_>>().join("; ");
        let seeds = self.seeds();
        format!(
            "{numbers} (holds on {} of {seeds} seed{}, {} needed)",
            self.seeds_holding(),
            if seeds == 1 { "" } else { "s" },
            seeds_needed(seeds)
        )
    }

    /// One line: id, verdict and [`Finding::deciding`].
    pub fn headline(&self) -> String {
        format!("{} {}: {}", self.id, self.verdict().label(), self.deciding())
    }
}

/// One row per check: finding, verdict, kind, check, measured, criterion, threshold, check result,
/// and each seed's measured value and result.
pub fn findings_table(name: &str, findings: &[&Finding]) -> Table {
    let mut t = Table::new(
        name,
        &[
            "finding",
            "verdict",
            "kind",
            "check",
            "measured",
            "criterion",
            "threshold",
            "check result",
            "per seed",
        ],
    );
    for f in findings {
        if f.checks.is_empty() {
            t.push(vec![
                f.id.clone().into(),
                f.verdict().label().into(),
                "".into(),
                "(no checks)".into(),
            ]);
        }
        for c in &f.checks {
            t.push(vec![
                f.id.clone().into(),
                f.verdict().label().into(),
                c.kind.label().into(),
                c.what.clone().into(),
                Cell::Num(c.measured),
                c.cmp.symbol().into(),
                Cell::Num(c.threshold),
                if c.passed() { "pass" } else { "fail" }.into(),
                c.per_seed_text().into(),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_compare_and_nan_never_passes() {
        assert!(Check::new("a", 0.01, Cmp::Lt, 0.05).passed());
        assert!(!Check::new("a", 0.05, Cmp::Lt, 0.05).passed());
        assert!(Check::new("a", 0.05, Cmp::Le, 0.05).passed());
        assert!(Check::new("a", 2.0, Cmp::Gt, 1.0).passed());
        for cmp in [Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge] {
            assert!(!Check::new("nan", f64::NAN, cmp, 1.0).passed());
        }
        assert_eq!(Check::new("a", 0.01234, Cmp::Lt, 0.05).criterion(), "0.01234 < 0.05");
    }

    #[test]
    fn verdicts() {
        let ok = Check::new("ok", 0.0, Cmp::Lt, 1.0);
        let bad = Check::new("bad", 2.0, Cmp::Lt, 1.0);
        assert_eq!(Finding::new("E1", "c").verdict(), Verdict::Fail);
        assert_eq!(Finding::new("E1", "c").check(ok.clone()).verdict(), Verdict::Pass);
        assert_eq!(
            Finding::new("E1", "c").check(ok.clone()).check(bad.clone()).verdict(),
            Verdict::Fail
        );
        assert_eq!(
            Finding::new("E7", "c").check(bad.clone()).informational().verdict(),
            Verdict::Info
        );
        assert_eq!(
            Finding::new("E1", "c")
                .check(ok.clone())
                .check(bad.clone().power())
                .verdict(),
            Verdict::Untestable
        );
        assert_eq!(
            Finding::new("E1", "c").check(ok.clone().power()).verdict(),
            Verdict::Fail,
            "power checks alone are no finding"
        );
    }

    #[test]
    fn a_finding_holds_on_the_mean_and_on_two_thirds_of_the_seeds() {
        assert_eq!((1..=5).map(seeds_needed).collect::<Vec<_>>(), [1, 2, 2, 3, 4]);
        let mean_ok = |per_seed: Vec<(f64, f64)>| Check::new("c", 0.1, Cmp::Lt, 0.2).seeds(per_seed);
        let two_of_three = mean_ok(vec![(0.1, 0.2), (0.3, 0.2), (0.15, 0.2)]);
        assert_eq!(two_of_three.per_seed_text(), "0.1 pass / 0.3 fail / 0.15 pass");
        let f = Finding::new("E1", "c").check(two_of_three);
        assert_eq!((f.seeds(), f.seeds_holding()), (3, 2));
        assert_eq!(f.verdict(), Verdict::Pass);
        let one_of_three = mean_ok(vec![(0.1, 0.2), (0.3, 0.2), (0.25, 0.2)]);
        assert_eq!(Finding::new("E1", "c").check(one_of_three).verdict(), Verdict::Fail);
        // Seeds count as holding only when every finding check holds on them together.
        let a = mean_ok(vec![(0.1, 0.2), (0.3, 0.2), (0.1, 0.2)]);
        let b = mean_ok(vec![(0.1, 0.2), (0.1, 0.2), (0.3, 0.2)]);
        let f = Finding::new("E1", "c").check(a).check(b);
        assert_eq!(f.seeds_holding(), 1);
        assert_eq!(f.verdict(), Verdict::Fail);
        assert!(f
            .headline()
            .starts_with("E1 FAIL: 0.1 < 0.2; 0.1 < 0.2 (holds on 1 of 3 seeds, 2 needed)"));
    }
}
