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

/// One numeric criterion: passes iff `measured <cmp> threshold` (NaN never passes).
#[derive(Clone, Debug)]
pub struct Check {
    pub what: String,
    pub measured: f64,
    pub cmp: Cmp,
    pub threshold: f64,
}

impl Check {
    pub fn new(what: impl Into<String>, measured: f64, cmp: Cmp, threshold: f64) -> Check {
        Check {
            what: what.into(),
            measured,
            cmp,
            threshold,
        }
    }

    pub fn passed(&self) -> bool {
        self.cmp.holds(self.measured, self.threshold)
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
    /// Not required: shown, not counted.
    Info,
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
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

    /// All checks pass, and there is at least one check (a claim nothing measures does not pass).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(Check::passed)
    }

    pub fn verdict(&self) -> Verdict {
        match (self.required, self.passed()) {
            (false, _) => Verdict::Info,
            (true, true) => Verdict::Pass,
            (true, false) => Verdict::Fail,
        }
    }
}

/// One row per check: finding, verdict, check, measured, criterion, threshold, check result.
pub fn findings_table(name: &str, findings: &[&Finding]) -> Table {
    let mut t = Table::new(
        name,
        &[
            "finding",
            "verdict",
            "check",
            "measured",
            "criterion",
            "threshold",
            "check result",
        ],
    );
    for f in findings {
        if f.checks.is_empty() {
            t.push(vec![
                f.id.clone().into(),
                f.verdict().label().into(),
                "(no checks)".into(),
            ]);
        }
        for c in &f.checks {
            t.push(vec![
                f.id.clone().into(),
                f.verdict().label().into(),
                c.what.clone().into(),
                Cell::Num(c.measured),
                c.cmp.symbol().into(),
                Cell::Num(c.threshold),
                if c.passed() { "pass" } else { "fail" }.into(),
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
            Finding::new("E1", "c").check(ok).check(bad.clone()).verdict(),
            Verdict::Fail
        );
        assert_eq!(
            Finding::new("E7", "c").check(bad).informational().verdict(),
            Verdict::Info
        );
    }
}
