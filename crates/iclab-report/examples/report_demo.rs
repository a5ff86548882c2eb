//! Writes a demo report with synthetic curves (closed-form shapes, no model) to look at the figure
//! styles: `cargo run -p iclab-report --example report_demo -- /tmp/report_demo`.

use std::path::PathBuf;

use iclab_core::metrics::{Curve, CurvePoint};
use iclab_report::{Check, Cmp, Figure, Finding, Panel, Report, Section, Series, Table};

/// A synthetic ICL curve: error(k) with a band of relative half-width `rel`.
fn curve(name: &str, n: usize, rel: f64, err: impl Fn(f64) -> f64) -> Curve {
    let points = (0..n)
        .map(|k| {
            let mean = err(k as f64);
            CurvePoint {
                k,
                mean,
                std: rel * mean,
                lo: mean * (1.0 - rel),
                hi: mean * (1.0 + rel),
            }
        })
        .collect();
    Curve {
        name: name.into(),
        points,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "runs/report_demo".into()));
    let (n, d) = (21, 10.0);
    // Least squares on dense prompts: 1 - k/d for k < d (docs/study.md, "Baselines"), then ~0.
    let ls = |k: f64| if k < d { 1.0 - k / d } else { 0.002 };
    let dense = [
        curve("mixture model", n, 0.08, |k| ls(k) * 1.05 + 0.01),
        curve("dense specialist", n, 0.08, |k| ls(k) + 0.01),
        curve("sparse specialist", n, 0.08, |k| 1.0 - 0.5 * (1.0 - (-k / 3.0).exp())),
        curve("least squares", n, 0.0, ls),
    ];
    let sparse = [
        curve("mixture model", n, 0.1, |k| {
            if k <= 2.0 {
                1.0 - 0.3 * k
            } else {
                0.4 * (-(k - 2.0)).exp()
            }
        }),
        curve("dense specialist", n, 0.1, |k| ls(k) * 0.9),
        curve("sparse specialist", n, 0.1, |k| {
            if k <= 2.0 {
                1.0 - 0.3 * k
            } else {
                0.35 * (-(k - 2.0)).exp()
            }
        }),
        curve("least squares", n, 0.0, ls),
    ];
    let e1 = Figure::new("e1_selection", "E1: model selection")
        .caption("Normalised squared error against the number of in-context examples; bands: bootstrap 5-95%.")
        .panel(Panel::icl("on dense prompts", &dense))
        .panel(Panel::icl("on sparse prompts", &sparse));
    let single = Figure::new("e2_single", "").panel(Panel::icl("mixture vs specialists (dense prompts)", &dense));

    // Frequency sweep with a diverging point and a NaN.
    let freqs: Vec<f64> = (0..13).map(|i| 0.1 * 2f64.powf(i as f64 * 0.5)).collect();
    let err = |k: f64| -> Vec<f64> {
        freqs
            .iter()
            .map(|w| 0.02 / k + 0.5 * (w.ln() / 1.2).powi(2).min(3.0) / k.sqrt())
            .collect()
    };
    let mut bad = err(5.0);
    bad[12] = 1e9;
    bad[3] = f64::NAN;
    let e6 = Figure::new("e6_frequency", "E6: frequency extrapolation").panel(
        Panel::new("error against frequency")
            .x_label("frequency ω")
            .y_label("normalised squared error")
            .x_log()
            .y_log()
            .series(Series::line("k = 5", freqs.clone(), bad).marker(iclab_report::Marker::Circle))
            .series(Series::line("k = 10", freqs.clone(), err(10.0)).marker(iclab_report::Marker::Square))
            .series(Series::line("k = 20", freqs.clone(), err(20.0)).marker(iclab_report::Marker::Triangle))
            .hline(1.0, "predict 0")
            .vline(1.0, "pretraining median"),
    );
    // A 1-D sinusoid picture.
    let f = |x: f64| 2f64.sqrt() * (1.3 * x + 0.4).sin();
    let cx: Vec<f64> = (0..8).map(|i| -2.5 + 0.7 * i as f64 + 0.1 * (i as f64).sin()).collect();
    let cy: Vec<f64> = cx.iter().map(|&x| f(x)).collect();
    let grid: Vec<f64> = (0..=200).map(|i| -3.0 + 6.0 * i as f64 / 200.0).collect();
    let truth: Vec<f64> = grid.iter().map(|&x| f(x)).collect();
    let pred: Vec<f64> = grid.iter().map(|&x| f(x) * 0.9 + 0.1 * (3.0 * x).cos()).collect();
    let mix: Vec<f64> = grid.iter().map(|&x| 0.5 * f(x) + 0.3 * x).collect();
    let e4 = Figure::new("e4_picture", "E4: a sinusoid prompt").panel(Panel::function_1d(
        "k = 8 in-context examples",
        (&cx, &cy),
        &grid,
        &truth,
        &[("linear+sinusoid model", pred), ("linear specialist", mix)],
    ));
    // Small multiples: the same prompt after 2, 5 and 8 examples.
    let mut e4k = Figure::new("e4_pictures_by_k", "E4: predictions as examples accumulate");
    for k in [2, 5, 8] {
        let pred: Vec<f64> = grid.iter().map(|&x| f(x) * k as f64 / 8.0).collect();
        e4k = e4k.panel(Panel::function_1d(
            format!("k = {k}"),
            (&cx[..k], &cy[..k]),
            &grid,
            &truth,
            &[("model", pred)],
        ));
    }
    let nan = Figure::new("nan_only", "degenerate data").panel(Panel::new("NaN only").series(Series::line(
        "nan",
        vec![0.0, 1.0],
        vec![f64::NAN, f64::NAN],
    )));

    let report = Report::new("iclab report demo (synthetic curves)")
        .intro("Synthetic curves with closed-form shapes, to check the figure and report styles.")
        .section(
            Section::new("E1 model selection")
                .paragraph("The mixture model tracks each specialist on its own class.")
                .figure(e1)
                .figure(single)
                .table(Table::from_curves("e1_dense", &dense))
                .findings(vec![
                    Finding::new(
                        "E1",
                        "mixture within 0.05 of the sparse specialist on sparse prompts at k = 4",
                    )
                    .check(Check::new("mixture - sparse specialist, k = 4", 0.0185, Cmp::Lt, 0.05))
                    .check(Check::new("mixture / dense specialist, k = 4", 0.08, Cmp::Lt, 0.5)),
                    Finding::new("E1b", "a failing one").check(Check::new("x", f64::NAN, Cmp::Lt, 1.0)),
                ]),
        )
        .section(
            Section::new("E4 / E6")
                .figure(e4)
                .figure(e4k)
                .figure(e6)
                .figure(nan)
                .findings(vec![Finding::new("E7", "informational")
                    .check(Check::new("y", 3.0, Cmp::Gt, 1.0))
                    .informational()]),
        );
    let files = report.write(&dir)?;
    println!("{}", files.html.display());
    Ok(())
}
