//! Axis ranges and ticks: robust automatic ranges (outliers do not squash the plot), "nice" linear
//! ticks (1, 2, 2.5, 5 x 10^k steps) and log ticks (decades, or 1-2-5 inside a single decade).

use crate::figure::Scale;

/// Quantile of sorted data by linear interpolation (q in [0, 1]).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - f) + sorted[i + 1] * f
    } else {
        sorted[i]
    }
}

/// The value as plotted: log10 on a log axis; None when it cannot be drawn (NaN, inf, <= 0 on log).
pub fn transform(v: f64, scale: Scale) -> Option<f64> {
    match scale {
        Scale::Linear if v.is_finite() => Some(v),
        Scale::Log if v.is_finite() && v > 0.0 => Some(v.log10()),
        _ => None,
    }
}

/// Inverse of `transform`.
pub fn untransform(t: f64, scale: Scale) -> f64 {
    match scale {
        Scale::Linear => t,
        Scale::Log => 10f64.powf(t),
    }
}

/// The axis range [lo, hi] in data units for `values` (any values: non-drawable ones are ignored).
///
/// Fixed bounds are kept as given (if drawable). Otherwise the range is the data range with two
/// guards: values beyond the 5-95% quantiles by more than their spread are left outside
/// (drawn as edge markers), so one diverged point does not flatten every curve; and 4% padding on
/// each automatic side. An empty or constant range is widened so it always has positive width.
pub fn robust_range(values: &[f64], min: Option<f64>, max: Option<f64>, scale: Scale) -> (f64, f64) {
    let fixed_lo = min.and_then(|v| transform(v, scale));
    let fixed_hi = max.and_then(|v| transform(v, scale));
    let mut t: Vec<f64> = values
        .iter()
        .filter_map(|&v| transform(v, scale))
        // Keep differences finite (1e308 - -1e308 overflows).
        .map(|v| v.clamp(-1e300, 1e300))
        // Only values inside the fixed bounds shape the automatic side.
        .filter(|&v| !fixed_lo.is_some_and(|lo| v < lo) && !fixed_hi.is_some_and(|hi| v > hi))
        .collect();
    t.sort_by(f64::total_cmp);
    let (mut lo, mut hi) = if t.is_empty() {
        match scale {
            Scale::Linear => (0.0, 1.0),
            Scale::Log => (0.0, 1.0), // 1 .. 10
        }
    } else {
        let (q_lo, q_hi) = (quantile(&t, 0.05), quantile(&t, 0.95));
        let spread = q_hi - q_lo;
        let (cap_lo, cap_hi) = (q_lo - spread, q_hi + spread);
        (t[0].max(cap_lo), t[t.len() - 1].min(cap_hi))
    };
    if let Some(f) = fixed_lo {
        lo = f;
    }
    if let Some(f) = fixed_hi {
        hi = f;
    }
    if hi < lo {
        // A fixed bound beyond all the data: keep the fixed one, give the other side room.
        if fixed_lo.is_some() {
            hi = lo;
        } else {
            lo = hi;
        }
    }
    if hi - lo <= 1e-12 * (lo.abs() + hi.abs()).max(1e-300) {
        let half = match scale {
            Scale::Linear if lo != 0.0 => 0.5 * lo.abs(),
            _ => 0.5,
        };
        match (fixed_lo.is_some(), fixed_hi.is_some()) {
            (false, true) => lo = hi - 2.0 * half,
            (true, _) => hi = lo + 2.0 * half,
            (false, false) => (lo, hi) = (lo - half, hi + half),
        }
    }
    let pad = 0.04 * (hi - lo);
    if fixed_lo.is_none() {
        lo -= pad;
    }
    if fixed_hi.is_none() {
        hi += pad;
    }
    let (lo, hi) = (untransform(lo, scale), untransform(hi, scale));
    if lo.is_finite() && hi.is_finite() && hi > lo && transform(lo, scale).is_some() {
        (lo, hi)
    } else {
        match scale {
            Scale::Linear => (0.0, 1.0),
            Scale::Log => (1.0, 10.0),
        }
    }
}

/// A "nice" step (1, 2, 2.5 or 5 x 10^k) giving about `target` intervals over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Linear ticks inside [lo, hi], multiples of a nice step, about `target` intervals.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let step = nice_step(hi - lo, target);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            // Snap to the step's decimal grid so labels do not read 0.30000000000000004.
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// Log ticks inside [lo, hi] (both > 0): (major, minor). Majors are powers of ten (every m-th decade
/// when there are many); a range spanning less than two decades gets 1-2-5 majors, and a range
/// inside one 1-2-5 step falls back to linear ticks. Minors are 2..9 x 10^k when majors are decades.
pub fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades: Vec<i32> = (d0..=d1).filter(|&e| inside(10f64.powi(e))).collect();
    if decades.len() >= 3 {
        let every = decades.len().div_ceil(7).max(1);
        let major: Vec<f64> = decades
            .iter()
            .filter(|&&e| e.rem_euclid(every as i32) == 0)
            .map(|&e| 10f64.powi(e))
            .collect();
        let minor = if every == 1 {
            (d0..=d1)
                .flat_map(|e| (2..10).map(move |m| m as f64 * 10f64.powi(e)))
                .filter(|&v| inside(v))
                .collect()
        } else {
            decades
                .iter()
                .map(|&e| 10f64.powi(e))
                .filter(|v| !major.contains(v))
                .collect()
        };
        return (major, minor);
    }
    let one_two_five: Vec<f64> = (d0..=d1)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|&v| inside(v))
        .collect();
    if one_two_five.len() >= 2 {
        let minor = (d0..=d1)
            .flat_map(|e| [3.0, 4.0, 6.0, 7.0, 8.0, 9.0].map(|m| m * 10f64.powi(e)))
            .filter(|&v| inside(v))
            .collect();
        return (one_two_five, minor);
    }
    (
        linear_ticks(lo, hi, 5).into_iter().filter(|&v| v > 0.0).collect(),
        Vec::new(),
    )
}

/// Ticks of an axis range: (major, minor).
pub fn ticks(lo: f64, hi: f64, scale: Scale, target: usize) -> (Vec<f64>, Vec<f64>) {
    match scale {
        Scale::Linear => (linear_ticks(lo, hi, target), Vec::new()),
        Scale::Log => log_ticks(lo, hi),
    }
}

/// Label of a linear tick given the tick step: enough decimals for the step, scientific notation
/// for very large or small magnitudes, a real minus sign.
pub fn linear_label(v: f64, step: f64) -> String {
    let mag = v.abs().max(step.abs());
    let scientific = !(1e-3..1e5).contains(&mag);
    let s = if v == 0.0 && scientific {
        "0".to_string()
    } else if scientific {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{e}")
    } else {
        // Decimals needed by the step (2.5 x 10^k needs one more than 10^k).
        let mut decimals = (-step.log10().floor()).max(0.0) as usize;
        let lead = step / 10f64.powf(step.log10().floor());
        if (lead - 2.5).abs() < 1e-6 {
            decimals += 1;
        }
        // Exact zero keeps the decimals of its neighbours ("0.0", "0.5", "1.0").
        format!("{:.decimals$}", if v == 0.0 { 0.0 } else { v })
    };
    s.replace('-', "\u{2212}")
}

/// Label parts of a log tick: Some(exponent) for a power of ten drawn as 10^e (always when `pow`,
/// else only outside 0.01..10^4), else a plain label.
pub fn log_label(v: f64, pow: bool) -> (String, Option<i32>) {
    let e = v.log10().round() as i32;
    let is_decade = (v / 10f64.powi(e) - 1.0).abs() < 1e-9;
    if is_decade && (pow || !(-2..=4).contains(&e)) {
        ("10".into(), Some(e))
    } else if is_decade && e < 0 {
        (format!("{:.*}", (-e) as usize, v), None)
    } else {
        let step = 10f64.powi(v.log10().floor() as i32);
        (linear_label(v, step), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_linear_ticks() {
        assert_eq!(
            linear_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(linear_ticks(0.0, 40.0, 5), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!(linear_ticks(-3.3, 3.3, 7), vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        // The step is the smallest nice one giving at most `target` intervals.
        assert_eq!(linear_ticks(-3.3, 3.3, 5), vec![-2.0, 0.0, 2.0]);
        assert_eq!(nice_step(10.0, 4), 2.5);
        assert!(linear_ticks(1.0, 1.0, 5).is_empty());
        assert!(linear_ticks(f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn linear_labels() {
        assert_eq!(linear_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(linear_label(0.25, 0.25), "0.25");
        assert_eq!(linear_label(-2.0, 1.0), "\u{2212}2");
        assert_eq!(linear_label(200000.0, 100000.0), "2e5");
        assert_eq!(linear_label(0.0, 0.5), "0.0");
        assert_eq!(linear_label(0.0, 10.0), "0");
        assert_eq!(linear_label(-0.0, 0.25), "0.00");
    }

    #[test]
    fn log_ticks_are_decades_with_minors() {
        let (major, minor) = log_ticks(0.05, 200.0);
        assert_eq!(major, vec![0.1, 1.0, 10.0, 100.0]);
        assert!(minor.contains(&0.05) && minor.contains(&200.0) && minor.contains(&3.0));
        assert!(!minor.contains(&300.0));
        // Many decades: every other decade labelled, the rest minor.
        let (major, minor) = log_ticks(1e-6, 1e6);
        assert_eq!(major, vec![1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6]);
        assert_eq!(minor.len(), 6);
        // Less than two decades: 1-2-5.
        let (major, _) = log_ticks(0.3, 7.0);
        assert_eq!(major, vec![0.5, 1.0, 2.0, 5.0]);
        // Inside one 1-2-5 step: linear fallback.
        let (major, _) = log_ticks(2.1, 4.5);
        assert_eq!(major, vec![2.5, 3.0, 3.5, 4.0, 4.5]);
        assert_eq!(log_ticks(-1.0, 10.0), (vec![], vec![]));
    }

    #[test]
    fn log_labels() {
        assert_eq!(log_label(100.0, false), ("100".to_string(), None));
        assert_eq!(log_label(100.0, true), ("10".to_string(), Some(2)));
        assert_eq!(log_label(0.01, false), ("0.01".to_string(), None));
        assert_eq!(log_label(1e-5, false), ("10".to_string(), Some(-5)));
        assert_eq!(log_label(1e6, false), ("10".to_string(), Some(6)));
        assert_eq!(log_label(5.0, false), ("5".to_string(), None));
        assert_eq!(log_label(0.2, false), ("0.2".to_string(), None));
    }

    #[test]
    fn robust_range_ignores_one_absurd_point_and_non_finite_values() {
        let mut v: Vec<f64> = (0..40).map(|i| 1.0 - i as f64 / 40.0).collect();
        v.extend([1e9, f64::NAN, f64::INFINITY]);
        let (lo, hi) = robust_range(&v, Some(0.0), None, Scale::Linear);
        assert_eq!(lo, 0.0);
        assert!(hi > 1.0 && hi < 5.0, "{hi}");
        // Empty, NaN-only and constant data still give a positive-width range.
        for data in [vec![], vec![f64::NAN], vec![2.0, 2.0]] {
            let (lo, hi) = robust_range(&data, None, None, Scale::Linear);
            assert!(lo.is_finite() && hi.is_finite() && hi > lo, "{data:?}: {lo} {hi}");
        }
        let (lo, hi) = robust_range(&[0.0, -1.0, 1e-3, 1e2], None, None, Scale::Log);
        assert!(lo < 1e-3 && lo > 5e-4 && hi > 1e2 && hi < 2e2, "{lo} {hi}");
        // Fixed bounds are kept exactly.
        assert_eq!(robust_range(&[5.0], Some(1.0), Some(2.0), Scale::Linear), (1.0, 2.0));
    }
}
