//! Errors for bad input: every one names the field, the value and what is allowed.

use std::fmt;

/// A rejected configuration value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `train.task.classes[1].nnz`.
    pub field: String,
    /// The value that was given, as the user wrote it (or as parsed).
    pub value: String,
    /// What would have been accepted.
    pub allowed: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The same error, one level deeper: `prefix.field`.
    pub fn within(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = if self.field.starts_with('[') {
                format!("{prefix}{}", self.field)
            } else {
                format!("{prefix}.{}", self.field)
            };
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid `{}` = {}: allowed: {}",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

/// Shorthand for validation code.
pub type Valid<T = ()> = Result<T, ConfigError>;

/// Checks `lo <= v <= hi` for a float field.
pub fn check_range(field: &str, v: f64, lo: f64, hi: f64) -> Valid {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(ConfigError::new(field, v, format!("a number in [{lo}, {hi}]")))
    }
}

/// Checks `v > 0` and finite.
pub fn check_positive(field: &str, v: f64) -> Valid {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, v, "a finite number > 0"))
    }
}

/// Checks `v >= lo` for an integer field.
pub fn check_at_least(field: &str, v: usize, lo: usize) -> Valid {
    if v >= lo {
        Ok(())
    } else {
        Err(ConfigError::new(field, v, format!("an integer >= {lo}")))
    }
}
