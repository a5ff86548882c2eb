//! Small integer expressions in `d` and `n` for the presets: where a criterion measures ("k = d",
//! "k from 3 to d - 1", "2*d") must follow the scale's dimension, so a preset written once holds at
//! every scale.

use serde::{Deserialize, Serialize};

use iclab_core::ConfigError;

/// An integer, or an expression such as `"d"`, `"d - 1"`, `"2*d + 1"`, `"n - 1"`, `"d/2"`.
/// Grammar: sum of terms (`+`, `-`), each a product of factors (`*`, `/` with integer division),
/// each factor an unsigned integer, `d` or `n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntExpr {
    Int(i64),
    Expr(String),
}

impl IntExpr {
    /// The value at dimension `d` and `n` points.
    pub fn eval(&self, d: usize, n: usize) -> Result<i64, ConfigError> {
        match self {
            IntExpr::Int(v) => Ok(*v),
            IntExpr::Expr(s) => eval_str(s, d as i64, n as i64).ok_or_else(|| {
                ConfigError::new(
                    "k",
                    format!("{s:?}"),
                    "an integer or an expression in d and n such as \"d - 1\", \"2*d\", \"n/2\"",
                )
            }),
        }
    }
}

impl std::fmt::Display for IntExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntExpr::Int(v) => write!(f, "{v}"),
            IntExpr::Expr(s) => write!(f, "{s}"),
        }
    }
}

fn eval_str(s: &str, d: i64, n: i64) -> Option<i64> {
    let tokens: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if tokens.is_empty() {
        return None;
    }
    let mut pos = 0;
    let mut total = 0i64;
    let mut sign = 1i64;
    loop {
        let term = term(&tokens, &mut pos, d, n)?;
        total += sign * term;
        match tokens.get(pos) {
            None => return Some(total),
            Some('+') => sign = 1,
            Some('-') => sign = -1,
            Some(_) => return None,
        }
        pos += 1;
    }
}

fn term(t: &[char], pos: &mut usize, d: i64, n: i64) -> Option<i64> {
    let mut v = factor(t, pos, d, n)?;
    while let Some(&op) = t.get(*pos) {
        if op != '*' && op != '/' {
            break;
        }
        *pos += 1;
        let f = factor(t, pos, d, n)?;
        v = if op == '*' { v * f } else { v.checked_div(f)? };
    }
    Some(v)
}

fn factor(t: &[char], pos: &mut usize, d: i64, n: i64) -> Option<i64> {
    match t.get(*pos)? {
        'd' => {
            *pos += 1;
            Some(d)
        }
        'n' => {
            *pos += 1;
            Some(n)
        }
        c if c.is_ascii_digit() => {
            let start = *pos;
            while t.get(*pos).is_some_and(|c| c.is_ascii_digit()) {
                *pos += 1;
            }
            t[start..*pos].iter().collect::<String>().parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_follow_the_scale() {
        let e = |s: &str| IntExpr::Expr(s.into()).eval(8, 20);
        assert_eq!(e("d").unwrap(), 8);
        assert_eq!(e("d - 1").unwrap(), 7);
        assert_eq!(e("2*d+1").unwrap(), 17);
        assert_eq!(e("n/2 - 3").unwrap(), 7);
        assert_eq!(e("12").unwrap(), 12);
        assert_eq!(IntExpr::Int(3).eval(8, 20).unwrap(), 3);
        for bad in ["", "x", "d +", "d/0", "2**d", "(d)"] {
            assert!(e(bad).is_err(), "{bad}");
        }
    }
}
