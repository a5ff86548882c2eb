//! The training curriculum (docs/study.md, "Curriculum"): the active input dimension and the number of
//! points grow in steps, e.g. dimension 5 -> 20 (+1 every 2,000 steps) and points 11 -> 41 (+2).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Valid};

/// One quantity that grows from `start` to `end` by `inc` every `interval` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub start: usize,
    pub end: usize,
    pub inc: usize,
    pub interval: usize,
}

impl Schedule {
    /// A constant schedule (no curriculum).
    pub fn fixed(v: usize) -> Self {
        Schedule {
            start: v,
            end: v,
            inc: 0,
            interval: 1,
        }
    }

    /// The value at training step `step` (0-based).
    pub fn at(&self, step: u64) -> usize {
        let grown = self.start as u64 + self.inc as u64 * (step / self.interval.max(1) as u64);
        grown.min(self.end as u64) as usize
    }

    fn validate(&self, field: &str, max: usize) -> Valid {
        if self.start < 1 || self.start > self.end {
            return Err(ConfigError::new(
                format!("{field}.start"),
                self.start,
                format!("an integer in 1..={} (end)", self.end),
            ));
        }
        if self.end > max {
            return Err(ConfigError::new(
                format!("{field}.end"),
                self.end,
                format!("an integer <= {max}"),
            ));
        }
        if self.interval < 1 {
            return Err(ConfigError::new(
                format!("{field}.interval"),
                self.interval,
                "an integer >= 1",
            ));
        }
        Ok(())
    }
}

/// Active dimension and number of points per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    pub dims: Schedule,
    pub points: Schedule,
}

impl Curriculum {
    /// No curriculum: always `d` dimensions and `n` points.
    pub fn fixed(d: usize, n: usize) -> Self {
        Curriculum {
            dims: Schedule::fixed(d),
            points: Schedule::fixed(n),
        }
    }

    /// The study's (docs/study.md, "Curriculum"): dimension 5 -> d (+1 / interval), points 11 -> n
    /// (+2 / interval), clamped.
    pub fn spec(d: usize, n: usize, interval: usize) -> Self {
        Curriculum {
            dims: Schedule {
                start: 5.min(d),
                end: d,
                inc: 1,
                interval,
            },
            points: Schedule {
                start: 11.min(n),
                end: n,
                inc: 2,
                interval,
            },
        }
    }

    /// (active dimension, number of points) at `step`.
    pub fn at(&self, step: u64) -> (usize, usize) {
        (self.dims.at(step), self.points.at(step))
    }

    /// The curriculum must end at the model's d and n.
    pub fn validate(&self, d: usize, n: usize) -> Valid {
        self.dims.validate("dims", d)?;
        self.points.validate("points", n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_curriculum_matches_the_paper() {
        let c = Curriculum::spec(20, 41, 2000);
        assert_eq!(c.at(0), (5, 11));
        assert_eq!(c.at(1999), (5, 11));
        assert_eq!(c.at(2000), (6, 13));
        assert_eq!(c.at(30_000), (20, 41));
        assert_eq!(c.at(500_000), (20, 41));
    }
}
