//! Figure -> SVG text, written by hand. Layout in px: a figure is a grid of panel cells of
//! `panel_width` x `panel_height` (axes, ticks and labels inside the cell), an optional title row
//! above and an optional shared legend below or to the right.
//!
//! Robustness rules (never panic, always draw something readable):
//! - a point with a non-drawable x or y (NaN, inf, <= 0 on a log axis) is skipped and breaks the line;
//! - a point whose y lies outside the axis range (or is +-inf) gets a small triangle at the panel
//!   edge in the series colour, pointing to where the value is; lines leave the panel through a clip;
//! - an isolated point of a line (its neighbours skipped) is drawn as a dot, so it is not lost.

use std::collections::HashMap;
use std::fmt::Write;

use crate::figure::{Color, Dash, Figure, Legend, Marker, Panel, Scale, SeriesKind, DASHES, PALETTE};
use crate::html_escape as esc;
use crate::png::text_width;
use crate::ticks;

pub const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

const FS_TICK: f64 = 11.0;
const FS_LABEL: f64 = 12.5;
const FS_TITLE: f64 = 13.5;
const FS_FIG_TITLE: f64 = 16.0;
const FS_LEGEND: f64 = 11.5;
const LEGEND_ROW: f64 = 17.0;
const LEGEND_SAMPLE: f64 = 24.0;
const BAND_OPACITY: f64 = 0.18;
const TEXT: &str = "#222222";

/// A rendered figure.
pub struct Rendered {
    pub svg: String,
    pub width: f64,
    pub height: f64,
}

/// Renders with ids derived from the figure's name.
pub fn render(fig: &Figure) -> Rendered {
    render_with_id(fig, &fig.name)
}

/// Renders with element ids prefixed by `id` (unique ids when several SVGs are inlined in one page).
pub fn render_with_id(fig: &Figure, id: &str) -> Rendered {
    let id: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let empty = [Panel::default()];
    let panels: &[Panel] = if fig.panels.is_empty() { &empty } else { &fig.panels };
    let n = panels.len();
    let cols = if fig.columns > 0 { fig.columns.min(n) } else { n.min(3) };
    let rows = n.div_ceil(cols);
    let (cw, ch) = (
        finite_or(fig.panel_width, 420.0).max(120.0),
        finite_or(fig.panel_height, 300.0).max(100.0),
    );
    let styles = resolve_styles(panels);
    let items = legend_items(panels, &styles);

    let title_h = if fig.title.is_empty() { 0.0 } else { FS_FIG_TITLE + 16.0 };
    let grid_w = cols as f64 * cw;
    let geoms: Vec<Geometry> = panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (r, c) = (i / cols, i % cols);
            Geometry::new(p, c as f64 * cw, title_h + r as f64 * ch, cw, ch)
        })
        .collect();

    // Where the legend goes. Inside placements are decided against the drawn data of the panel.
    let mut legend = if items.is_empty() { Legend::Hidden } else { fig.legend };
    let (box_w, box_h) = legend_box_size(&items);
    if legend == Legend::Auto {
        legend = if n > 1 {
            Legend::Below
        } else {
            best_corner(&panels[0], &styles[0], &geoms[0], box_w, box_h).unwrap_or(Legend::Right)
        };
    }
    let right_w = if legend == Legend::Right { box_w + 16.0 } else { 0.0 };
    let below_rows = if legend == Legend::Below {
        flow_rows(&items, grid_w - 24.0)
    } else {
        Vec::new()
    };
    let below_h = if below_rows.is_empty() {
        0.0
    } else {
        below_rows.len() as f64 * LEGEND_ROW + 14.0
    };
    let width = grid_w + right_w;
    let height = title_h + rows as f64 * ch + below_h;

    let mut s = String::new();
    let _ = write!(
        s,
        "{XML_DECL}\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans, Verdana, sans-serif\">\n",
        w = f(width),
        h = f(height)
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
        f(width),
        f(height)
    );
    if !fig.title.is_empty() {
        text(
            &mut s,
            width / 2.0,
            8.0 + FS_FIG_TITLE,
            FS_FIG_TITLE,
            "middle",
            TEXT,
            &fig.title,
        );
    }
    for (i, (p, g)) in panels.iter().zip(&geoms).enumerate() {
        draw_panel(&mut s, p, &styles[i], g, &format!("{id}-clip{i}"));
    }
    match legend {
        Legend::TopRight | Legend::TopLeft | Legend::BottomRight | Legend::BottomLeft => {
            let (x, y) = corner_origin(&geoms[0], legend, box_w, box_h);
            draw_legend_box(&mut s, &items, x, y, box_w, box_h);
        }
        Legend::Right => {
            let g = &geoms[0];
            let y = ((g.py0 + g.py1) / 2.0 - box_h / 2.0).max(title_h + 4.0);
            draw_legend_box(&mut s, &items, grid_w + 6.0, y, box_w, box_h);
        }
        Legend::Below => {
            let y0 = title_h + rows as f64 * ch + 6.0;
            for (r, row) in below_rows.iter().enumerate() {
                let row_w: f64 = row.iter().map(|&i| item_width(&items[i])).sum();
                let mut x = (grid_w - row_w) / 2.0;
                for &i in row {
                    draw_legend_item(&mut s, &items[i], x, y0 + r as f64 * LEGEND_ROW + LEGEND_ROW / 2.0);
                    x += item_width(&items[i]);
                }
            }
        }
        Legend::Auto | Legend::Hidden => {}
    }
    s.push_str("</svg>\n");
    Rendered { svg: s, width, height }
}

fn finite_or(v: f64, default: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        default
    }
}

/// Pixel number for SVG attributes.
fn f(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn text(s: &mut String, x: f64, y: f64, size: f64, anchor: &str, fill: &str, t: &str) {
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>",
        f(x),
        f(y),
        f(size),
        esc(t)
    );
}

fn dasharray(d: Dash, width: f64) -> String {
    let w = width.max(1.0);
    match d {
        Dash::Solid => String::new(),
        Dash::Dashed => format!(" stroke-dasharray=\"{} {}\"", f(3.5 * w), f(2.0 * w)),
        Dash::Dotted => format!(" stroke-dasharray=\"{} {}\"", f(0.6 * w), f(1.7 * w)),
        Dash::DashDot => format!(
            " stroke-dasharray=\"{} {} {} {}\"",
            f(3.8 * w),
            f(1.5 * w),
            f(0.6 * w),
            f(1.5 * w)
        ),
    }
}

/// The resolved drawing style of one series.
#[derive(Clone, Debug)]
struct Style {
    color: Color,
    dash: Dash,
    marker: Marker,
    kind: SeriesKind,
    width: f64,
}

/// Styles per panel per series. A name keeps one colour (and dash) across the panels of a figure;
/// unset dashes cycle with the colour so series stay apart in grey print.
fn resolve_styles(panels: &[Panel]) -> Vec<Vec<Style>> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    panels
        .iter()
        .map(|p| {
            p.series
                .iter()
                .map(|se| {
                    let idx = if se.name.is_empty() {
                        next += 1;
                        next - 1
                    } else {
                        *by_name.entry(se.name.as_str()).or_insert_with(|| {
                            next += 1;
                            next - 1
                        })
                    };
                    let default_marker = match se.kind {
                        SeriesKind::Line => Marker::None,
                        SeriesKind::Points | SeriesKind::LinePoints => Marker::Circle,
                    };
                    Style {
                        color: se.color.unwrap_or(PALETTE[idx % PALETTE.len()]),
                        // Past the palette's length colours repeat; shifting the dash cycle by
                        // one per round keeps every (colour, dash) pair distinct.
                        dash: se.dash.unwrap_or(DASHES[(idx + idx / PALETTE.len()) % DASHES.len()]),
                        marker: se.marker.unwrap_or(default_marker),
                        kind: se.kind,
                        width: if se.width.is_finite() && se.width > 0.0 {
                            se.width.min(20.0)
                        } else {
                            1.8
                        },
                    }
                })
                .collect()
        })
        .collect()
}

struct LegendItem {
    name: String,
    style: Style,
    band: bool,
}

/// One legend entry per distinct series name, in order of first appearance.
fn legend_items(panels: &[Panel], styles: &[Vec<Style>]) -> Vec<LegendItem> {
    let mut items: Vec<LegendItem> = Vec::new();
    for (p, st) in panels.iter().zip(styles) {
        for (se, style) in p.series.iter().zip(st) {
            if se.name.is_empty() || items.iter().any(|it| it.name == se.name) {
                continue;
            }
            items.push(LegendItem {
                name: se.name.clone(),
                style: style.clone(),
                band: se.band.is_some(),
            });
        }
    }
    items
}

fn item_width(it: &LegendItem) -> f64 {
    LEGEND_SAMPLE + 6.0 + text_width(&it.name, FS_LEGEND) + 18.0
}

fn legend_box_size(items: &[LegendItem]) -> (f64, f64) {
    let text_w = items
        .iter()
        .map(|it| text_width(&it.name, FS_LEGEND))
        .fold(0.0, f64::max);
    (
        LEGEND_SAMPLE + 6.0 + text_w + 16.0,
        items.len() as f64 * LEGEND_ROW + 8.0,
    )
}

/// Greedy rows of item indices fitting `width`.
fn flow_rows(items: &[LegendItem], width: f64) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = f64::INFINITY;
    for (i, it) in items.iter().enumerate() {
        let w = item_width(it);
        if used + w > width && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            used = 0.0;
        }
        if let Some(r) = rows.last_mut() {
            r.push(i);
        }
        used += w;
    }
    rows
}

/// The legend sample (line, band swatch, marker) with its label; `cy` is the row's centre line.
fn draw_legend_item(s: &mut String, it: &LegendItem, x: f64, cy: f64) {
    let st = &it.style;
    let c = st.color.hex();
    if it.band {
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"10\" fill=\"{c}\" fill-opacity=\"{BAND_OPACITY}\"/>",
            f(x),
            f(cy - 5.0),
            f(LEGEND_SAMPLE)
        );
    }
    if st.kind != SeriesKind::Points {
        let _ = writeln!(
            s,
            "<path d=\"M{} {}H{}\" stroke=\"{c}\" stroke-width=\"{}\" fill=\"none\" stroke-linecap=\"butt\"{}/>",
            f(x),
            f(cy),
            f(x + LEGEND_SAMPLE),
            f(st.width),
            dasharray(st.dash, st.width)
        );
    }
    if st.kind != SeriesKind::Line || st.marker != Marker::None {
        marker(s, st.marker, st.color, x + LEGEND_SAMPLE / 2.0, cy);
    }
    text(
        s,
        x + LEGEND_SAMPLE + 6.0,
        cy + FS_LEGEND * 0.36,
        FS_LEGEND,
        "start",
        TEXT,
        &it.name,
    );
}

fn draw_legend_box(s: &mut String, items: &[LegendItem], x: f64, y: f64, w: f64, h: f64) {
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" fill-opacity=\"0.88\" stroke=\"#cccccc\" \
         stroke-width=\"0.8\" rx=\"3\"/>",
        f(x),
        f(y),
        f(w),
        f(h)
    );
    for (i, it) in items.iter().enumerate() {
        draw_legend_item(s, it, x + 8.0, y + 4.0 + (i as f64 + 0.5) * LEGEND_ROW);
    }
}

fn marker(s: &mut String, m: Marker, c: Color, x: f64, y: f64) {
    let c = c.hex();
    let edge = "stroke=\"#ffffff\" stroke-width=\"0.7\"";
    let _ = match m {
        Marker::None => Ok(()),
        Marker::Circle => writeln!(
            s,
            "<circle cx=\"{}\" cy=\"{}\" r=\"3.3\" fill=\"{c}\" {edge}/>",
            f(x),
            f(y)
        ),
        Marker::Square => writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"6.2\" height=\"6.2\" fill=\"{c}\" {edge}/>",
            f(x - 3.1),
            f(y - 3.1)
        ),
        Marker::Triangle => writeln!(
            s,
            "<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{c}\" {edge}/>",
            f(x),
            f(y - 4.0),
            f(x + 3.8),
            f(y + 2.8),
            f(x - 3.8),
            f(y + 2.8)
        ),
        Marker::Diamond => writeln!(
            s,
            "<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{c}\" {edge}/>",
            f(x),
            f(y - 4.2),
            f(x + 3.6),
            f(y),
            f(x),
            f(y + 4.2),
            f(x - 3.6),
            f(y)
        ),
    };
}

/// Where a panel's plot area sits and how data map to it.
struct Geometry {
    /// Plot area in px: x from px0 to px1, y from py0 (top) to py1 (bottom).
    px0: f64,
    px1: f64,
    py0: f64,
    py1: f64,
    /// Cell origin and size.
    ox: f64,
    oy: f64,
    /// Axis ranges in data units and scales.
    x: (f64, f64, Scale),
    y: (f64, f64, Scale),
    x_ticks: (Vec<f64>, Vec<f64>),
    y_ticks: (Vec<f64>, Vec<f64>),
    y_labels: Vec<TickLabel>,
    x_labels: Vec<TickLabel>,
}

/// A tick label: text and an optional superscript exponent (10^e).
struct TickLabel {
    text: String,
    exp: Option<String>,
}

impl TickLabel {
    fn width(&self, size: f64) -> f64 {
        text_width(&self.text, size) + self.exp.as_ref().map_or(0.0, |e| text_width(e, size * 0.75))
    }
}

fn tick_labels(major: &[f64], scale: Scale) -> Vec<TickLabel> {
    let step = if major.len() >= 2 {
        (major[1] - major[0]).abs()
    } else {
        major.first().map_or(1.0, |v| v.abs())
    };
    // One style per axis: if any decade needs 10^e, all decades use it.
    let pow = scale == Scale::Log && major.iter().any(|&v| ticks::log_label(v, false).1.is_some());
    major
        .iter()
        .map(|&v| match scale {
            Scale::Linear => TickLabel {
                text: ticks::linear_label(v, step),
                exp: None,
            },
            Scale::Log => {
                let (text, e) = ticks::log_label(v, pow);
                TickLabel {
                    text,
                    exp: e.map(|e| e.to_string().replace('-', "\u{2212}")),
                }
            }
        })
        .collect()
}

impl Geometry {
    fn new(p: &Panel, ox: f64, oy: f64, cw: f64, ch: f64) -> Geometry {
        // x range: the data as given (no outlier cut: x values are design points).
        let mut xs: Vec<f64> = p.series.iter().flat_map(|se| se.x.iter().copied()).collect();
        xs.extend(p.vlines.iter().map(|l| l.value));
        let (x0, x1) = x_range(&xs, p.x.min, p.x.max, p.x.scale);
        // y range: every y, band edge and reference line, with the robust outlier cut.
        let mut ys: Vec<f64> = Vec::new();
        for se in &p.series {
            ys.extend(&se.y);
            if let Some((lo, hi)) = &se.band {
                ys.extend(lo);
                ys.extend(hi);
            }
        }
        ys.extend(p.hlines.iter().map(|l| l.value));
        let (y0, y1) = ticks::robust_range(&ys, p.y.min, p.y.max, p.y.scale);

        let top = if p.title.is_empty() { 10.0 } else { FS_TITLE + 14.0 };
        let bottom = 4.0 + 5.0 + FS_TICK + 4.0 + if p.x.label.is_empty() { 0.0 } else { FS_LABEL + 6.0 } + 4.0;
        let plot_h = (ch - top - bottom).max(20.0);
        let y_ticks = ticks::ticks(y0, y1, p.y.scale, ((plot_h / 40.0) as usize).clamp(2, 8));
        let y_labels = tick_labels(&y_ticks.0, p.y.scale);
        let label_w = y_labels.iter().map(|l| l.width(FS_TICK)).fold(0.0, f64::max);
        let left = 8.0 + if p.y.label.is_empty() { 0.0 } else { FS_LABEL + 8.0 } + label_w + 4.0 + 5.0;
        let approx_plot_w = (cw - left - 14.0).max(20.0);
        let x_ticks = ticks::ticks(x0, x1, p.x.scale, ((approx_plot_w / 55.0) as usize).clamp(2, 10));
        let x_labels = tick_labels(&x_ticks.0, p.x.scale);
        // Room on the right for half of the last x label when it sits at the edge.
        let last_half = x_labels.last().map_or(0.0, |l| l.width(FS_TICK) / 2.0);
        let right = 14f64.max(last_half + 4.0);
        Geometry {
            px0: ox + left,
            px1: ox + (cw - right).max(left + 20.0),
            py0: oy + top,
            py1: oy + top + plot_h,
            ox,
            oy,
            x: (x0, x1, p.x.scale),
            y: (y0, y1, p.y.scale),
            x_ticks,
            y_ticks,
            y_labels,
            x_labels,
        }
    }

    /// Fraction of the way along an axis; None if the value is not drawable on it.
    fn frac(v: f64, (lo, hi, scale): (f64, f64, Scale)) -> Option<f64> {
        let t = ticks::transform(v, scale)?.clamp(-1e300, 1e300);
        let (a, b) = (ticks::transform(lo, scale)?, ticks::transform(hi, scale)?);
        let r = (t - a) / (b - a);
        // Past +-1e6 panel widths nothing is visible; keep the number finite either way.
        r.is_finite()
            .then_some(r)
            .or(if t > a { Some(1e6) } else { Some(-1e6) })
    }

    /// Pixel x (clamped far outside the panel so paths stay finite; the clip hides the rest).
    fn sx(&self, v: f64) -> Option<f64> {
        Geometry::frac(v, self.x).map(|t| self.px0 + t.clamp(-10.0, 11.0) * (self.px1 - self.px0))
    }

    fn sy(&self, v: f64) -> Option<f64> {
        Geometry::frac(v, self.y).map(|t| self.py1 - t.clamp(-10.0, 11.0) * (self.py1 - self.py0))
    }

    fn x_inside(&self, v: f64) -> bool {
        Geometry::frac(v, self.x).is_some_and(|t| (-1e-9..=1.0 + 1e-9).contains(&t))
    }

    /// -1 below the range (or -inf, or <= 0 on log), +1 above (or +inf), 0 inside, None for NaN.
    fn y_side(&self, v: f64) -> Option<i8> {
        if v.is_nan() {
            return None;
        }
        if v == f64::INFINITY {
            return Some(1);
        }
        match Geometry::frac(v, self.y) {
            None => Some(-1), // -inf, or <= 0 on a log axis
            Some(t) if t > 1.0 + 1e-9 => Some(1),
            Some(t) if t < -1e-9 => Some(-1),
            Some(_) => Some(0),
        }
    }
}

fn x_range(xs: &[f64], min: Option<f64>, max: Option<f64>, scale: Scale) -> (f64, f64) {
    // Take the full drawable extent (robust_range cuts only values 3 spreads beyond the 5-95%
    // quantiles; for x that would hide design points, so pass the extremes as fixed bounds).
    let t: Vec<f64> = xs
        .iter()
        .copied()
        .filter(|&v| ticks::transform(v, scale).is_some())
        .collect();
    let lo = min.or_else(|| t.iter().copied().reduce(f64::min));
    let hi = max.or_else(|| t.iter().copied().reduce(f64::max));
    if min.is_none() && max.is_none() && lo == hi {
        // One distinct x (or none): let robust_range centre a default-width range on it.
        return ticks::robust_range(&t, None, None, scale);
    }
    let (mut a, mut b) = ticks::robust_range(&t, lo, hi, scale);
    // Pad automatic sides by 3% of the span (in plotted units).
    let (ta, tb) = (ticks::transform(a, scale), ticks::transform(b, scale));
    if let (Some(ta), Some(tb)) = (ta, tb) {
        let pad = 0.03 * (tb - ta);
        if min.is_none() && !t.is_empty() {
            a = ticks::untransform(ta - pad, scale);
        }
        if max.is_none() && !t.is_empty() {
            b = ticks::untransform(tb + pad, scale);
        }
    }
    (a, b)
}

/// Pixel polylines of a series: maximal runs of consecutive drawable points.
fn runs(g: &Geometry, x: &[f64], y: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (&xv, &yv) in x.iter().zip(y) {
        match (g.sx(xv), g.sy(yv)) {
            (Some(px), Some(py)) => {
                if let Some(r) = out.last_mut() {
                    r.push((px, py));
                }
            }
            _ => {
                if !out.last().is_some_and(Vec::is_empty) {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn path_d(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, f(*x), f(*y));
    }
    d
}

/// One panel, in drawing order: grid, then (clipped to the plot area) bands, reference lines and
/// series, then what sits on top (off-range marks, labels, frame, ticks).
fn draw_panel(s: &mut String, p: &Panel, styles: &[Style], g: &Geometry, clip_id: &str) {
    let _ = writeln!(
        s,
        "<clipPath id=\"{clip_id}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
        f(g.px0),
        f(g.py0),
        f(g.px1 - g.px0),
        f(g.py1 - g.py0)
    );
    draw_grid(s, g);
    let _ = writeln!(s, "<g clip-path=\"url(#{clip_id})\">");
    draw_bands(s, p, styles, g);
    draw_reference_lines(s, p, g);
    draw_series(s, p, styles, g);
    s.push_str("</g>\n");
    draw_no_data(s, p, g);
    draw_off_range_marks(s, p, styles, g);
    draw_reference_labels(s, p, g);
    draw_frame_and_labels(s, p, g);
}

/// Grid lines at the major ticks.
fn draw_grid(s: &mut String, g: &Geometry) {
    s.push_str("<g stroke=\"#e6e6e6\" stroke-width=\"0.8\">\n");
    for &v in &g.x_ticks.0 {
        if let Some(px) = g.sx(v) {
            let _ = writeln!(s, "<path d=\"M{} {}V{}\"/>", f(px), f(g.py0), f(g.py1));
        }
    }
    for &v in &g.y_ticks.0 {
        if let Some(py) = g.sy(v) {
            let _ = writeln!(s, "<path d=\"M{} {}H{}\"/>", f(g.px0), f(py), f(g.px1));
        }
    }
    s.push_str("</g>\n");
}

/// Bootstrap bands, under every line; a band breaks where a value is not finite.
fn draw_bands(s: &mut String, p: &Panel, styles: &[Style], g: &Geometry) {
    for (se, st) in p.series.iter().zip(styles) {
        let Some((lo, hi)) = &se.band else { continue };
        let mut run: Vec<(f64, f64, f64)> = Vec::new();
        let flush = |s: &mut String, run: &mut Vec<(f64, f64, f64)>| {
            if run.len() >= 2 {
                let mut d = String::new();
                for (i, (x, _, yh)) in run.iter().enumerate() {
                    let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, f(*x), f(*yh));
                }
                for (x, yl, _) in run.iter().rev() {
                    let _ = write!(d, "L{} {}", f(*x), f(*yl));
                }
                let _ = writeln!(
                    s,
                    "<path d=\"{d}Z\" fill=\"{}\" fill-opacity=\"{BAND_OPACITY}\" stroke=\"none\"/>",
                    st.color.hex()
                );
            }
            run.clear();
        };
        for ((&xv, &l), &u) in se.x.iter().zip(lo).zip(hi) {
            match (g.sx(xv), g.sy(l), g.sy(u)) {
                (Some(px), Some(pl), Some(pu)) => run.push((px, pl, pu)),
                _ => flush(s, &mut run),
            }
        }
        flush(s, &mut run);
    }
}

/// Horizontal and vertical reference lines (e.g. the dashed line at 1: predicting 0).
fn draw_reference_lines(s: &mut String, p: &Panel, g: &Geometry) {
    for l in &p.hlines {
        if let Some(py) = g.sy(l.value) {
            let _ = writeln!(
                s,
                "<path d=\"M{} {}H{}\" stroke=\"{}\" stroke-width=\"1.1\" fill=\"none\"{}/>",
                f(g.px0),
                f(py),
                f(g.px1),
                l.color.hex(),
                dasharray(l.dash, 1.3)
            );
        }
    }
    for l in &p.vlines {
        if let Some(px) = g.sx(l.value) {
            let _ = writeln!(
                s,
                "<path d=\"M{} {}V{}\" stroke=\"{}\" stroke-width=\"1.1\" fill=\"none\"{}/>",
                f(px),
                f(g.py0),
                f(g.py1),
                l.color.hex(),
                dasharray(l.dash, 1.6)
            );
        }
    }
}

/// Lines, then markers on top of them.
fn draw_series(s: &mut String, p: &Panel, styles: &[Style], g: &Geometry) {
    for (se, st) in p.series.iter().zip(styles) {
        if st.kind == SeriesKind::Points {
            continue;
        }
        for run in runs(g, &se.x, &se.y) {
            if run.len() == 1 {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>",
                    f(run[0].0),
                    f(run[0].1),
                    f(st.width.max(1.5)),
                    st.color.hex()
                );
                continue;
            }
            let _ = writeln!(
                s,
                "<path d=\"{}\" stroke=\"{}\" stroke-width=\"{}\" fill=\"none\" stroke-linejoin=\"round\" \
                 stroke-linecap=\"{}\"{}/>",
                path_d(&run),
                st.color.hex(),
                f(st.width),
                if st.dash == Dash::Dotted { "round" } else { "butt" },
                dasharray(st.dash, st.width)
            );
        }
    }
    for (se, st) in p.series.iter().zip(styles) {
        if st.marker == Marker::None {
            continue;
        }
        for run in runs(g, &se.x, &se.y) {
            for (x, y) in run {
                marker(s, st.marker, st.color, x, y);
            }
        }
    }
}

/// "no data" in the middle of a panel with nothing finite to draw.
fn draw_no_data(s: &mut String, p: &Panel, g: &Geometry) {
    let drawable = p.series.iter().any(|se| !runs(g, &se.x, &se.y).is_empty());
    if !drawable {
        let msg = if p.series.is_empty() {
            "no data"
        } else {
            "no finite data"
        };
        text(
            s,
            (g.px0 + g.px1) / 2.0,
            (g.py0 + g.py1) / 2.0,
            FS_LABEL,
            "middle",
            "#999999",
            msg,
        );
    }
}

/// Values beyond the y range: a triangle at the edge pointing towards them.
fn draw_off_range_marks(s: &mut String, p: &Panel, styles: &[Style], g: &Geometry) {
    for (se, st) in p.series.iter().zip(styles) {
        for (&xv, &yv) in se.x.iter().zip(&se.y) {
            if !g.x_inside(xv) {
                continue;
            }
            let (Some(side), Some(px)) = (g.y_side(yv), g.sx(xv)) else {
                continue;
            };
            let (tip, base) = match side {
                1 => (g.py0 + 1.0, g.py0 + 7.0),
                -1 => (g.py1 - 1.0, g.py1 - 7.0),
                _ => continue,
            };
            let _ = writeln!(
                s,
                "<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"0.6\"><title>{}</title></path>",
                f(px),
                f(tip),
                f(px + 4.0),
                f(base),
                f(px - 4.0),
                f(base),
                st.color.hex(),
                esc(&format!("{}: y = {} (outside the axis range)", se.name, yv))
            );
        }
    }
}

/// Reference line labels, outside the clip so they are readable.
fn draw_reference_labels(s: &mut String, p: &Panel, g: &Geometry) {
    for l in p.hlines.iter().filter(|l| !l.label.is_empty()) {
        if let Some(py) = g.sy(l.value).filter(|py| (g.py0..=g.py1).contains(py)) {
            text(s, g.px1 - 4.0, py - 5.0, FS_TICK - 1.0, "end", &l.color.hex(), &l.label);
        }
    }
    for l in p.vlines.iter().filter(|l| !l.label.is_empty()) {
        if let Some(px) = g.sx(l.value).filter(|px| (g.px0..=g.px1).contains(px)) {
            text(
                s,
                px + 3.0,
                g.py0 + FS_TICK + 2.0,
                FS_TICK - 1.0,
                "start",
                &l.color.hex(),
                &l.label,
            );
        }
    }
}

/// Frame, ticks, tick labels, axis labels and the panel title.
fn draw_frame_and_labels(s: &mut String, p: &Panel, g: &Geometry) {
    let (w, h) = (g.px1 - g.px0, g.py1 - g.py0);
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>",
        f(g.px0),
        f(g.py0),
        f(w),
        f(h)
    );
    let mut tk = String::new();
    for &v in &g.x_ticks.0 {
        if let Some(px) = g.sx(v) {
            let _ = write!(tk, "M{} {}v5", f(px), f(g.py1));
        }
    }
    for &v in &g.x_ticks.1 {
        if let Some(px) = g.sx(v) {
            let _ = write!(tk, "M{} {}v3", f(px), f(g.py1));
        }
    }
    for &v in &g.y_ticks.0 {
        if let Some(py) = g.sy(v) {
            let _ = write!(tk, "M{} {}h-5", f(g.px0), f(py));
        }
    }
    for &v in &g.y_ticks.1 {
        if let Some(py) = g.sy(v) {
            let _ = write!(tk, "M{} {}h-3", f(g.px0), f(py));
        }
    }
    if !tk.is_empty() {
        let _ = writeln!(
            s,
            "<path d=\"{tk}\" stroke=\"#333333\" stroke-width=\"1\" fill=\"none\"/>"
        );
    }
    for (&v, l) in g.x_ticks.0.iter().zip(&g.x_labels) {
        if let Some(px) = g.sx(v) {
            tick_label(s, l, px, g.py1 + 5.0 + 4.0 + FS_TICK * 0.8, "middle");
        }
    }
    for (&v, l) in g.y_ticks.0.iter().zip(&g.y_labels) {
        if let Some(py) = g.sy(v) {
            tick_label(s, l, g.px0 - 5.0 - 4.0, py + FS_TICK * 0.36, "end");
        }
    }
    if !p.x.label.is_empty() {
        let y = g.py1 + 5.0 + 4.0 + FS_TICK + 6.0 + FS_LABEL * 0.8;
        text(s, (g.px0 + g.px1) / 2.0, y, FS_LABEL, "middle", TEXT, &p.x.label);
    }
    if !p.y.label.is_empty() {
        let x = g.ox + 8.0 + FS_LABEL * 0.8;
        let y = (g.py0 + g.py1) / 2.0;
        let _ = writeln!(
            s,
            "<text transform=\"translate({} {}) rotate(-90)\" font-size=\"{}\" text-anchor=\"middle\" fill=\"{TEXT}\">{}</text>",
            f(x),
            f(y),
            f(FS_LABEL),
            esc(&p.y.label)
        );
    }
    if !p.title.is_empty() {
        // A title wider than its panel would run into the next one's: it shrinks to fit (down to
        // the tick size), and beyond that is cut with an ellipsis.
        let room = g.px1 - g.px0 + 16.0;
        let size = (FS_TITLE * room / text_width(&p.title, FS_TITLE).max(1.0)).clamp(FS_TICK, FS_TITLE);
        let mut shown = p.title.clone();
        let mut keep = p.title.chars().count();
        while text_width(&shown, size) > room && keep > 1 {
            keep -= 1;
            shown = format!("{}…", p.title.chars().take(keep).collect::<String>().trim_end());
        }
        text(
            s,
            (g.px0 + g.px1) / 2.0,
            g.oy + 6.0 + FS_TITLE * 0.8,
            size,
            "middle",
            TEXT,
            &shown,
        );
    }
}

fn tick_label(s: &mut String, l: &TickLabel, x: f64, y: f64, anchor: &str) {
    match &l.exp {
        None => text(s, x, y, FS_TICK, anchor, TEXT, &l.text),
        Some(e) => {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{TEXT}\">{}<tspan dy=\"-5\" \
                 font-size=\"{}\">{}</tspan></text>",
                f(x),
                f(y),
                f(FS_TICK),
                esc(&l.text),
                f(FS_TICK * 0.75),
                esc(e)
            );
        }
    }
}

/// Top-left of an inside legend box at a corner of the plot area.
fn corner_origin(g: &Geometry, corner: Legend, w: f64, h: f64) -> (f64, f64) {
    let inset = 7.0;
    let (left, right) = (g.px0 + inset, g.px1 - inset - w);
    let (top, bottom) = (g.py0 + inset, g.py1 - inset - h);
    match corner {
        Legend::TopLeft => (left, top),
        Legend::BottomRight => (right, bottom),
        Legend::BottomLeft => (left, bottom),
        _ => (right, top),
    }
}

/// The inside corner whose legend box covers no drawn data (lines sampled every few px, band
/// edges, markers, out-of-range arrows), in the order top right, top left, bottom right, bottom left;
/// None when every corner is busy (or the box does not fit).
fn best_corner(p: &Panel, styles: &[Style], g: &Geometry, w: f64, h: f64) -> Option<Legend> {
    if w > 0.7 * (g.px1 - g.px0) || h > 0.7 * (g.py1 - g.py0) {
        return None;
    }
    fn add_run(pts: &mut Vec<(f64, f64)>, run: &[(f64, f64)], dense: bool) {
        for (i, &(x, y)) in run.iter().enumerate() {
            pts.push((x, y));
            if let (true, Some(&(x2, y2))) = (dense, run.get(i + 1)) {
                let steps = (((x2 - x).hypot(y2 - y)) / 4.0).ceil().min(400.0) as usize;
                for j in 1..steps {
                    let t = j as f64 / steps as f64;
                    pts.push((x + t * (x2 - x), y + t * (y2 - y)));
                }
            }
        }
    }
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for (se, st) in p.series.iter().zip(styles) {
        for run in runs(g, &se.x, &se.y) {
            add_run(&mut pts, &run, st.kind != SeriesKind::Points);
        }
        if let Some((lo, hi)) = &se.band {
            for run in runs(g, &se.x, lo).into_iter().chain(runs(g, &se.x, hi)) {
                add_run(&mut pts, &run, true);
            }
        }
        for (&xv, &yv) in se.x.iter().zip(&se.y) {
            if let (Some(px), Some(side)) = (g.sx(xv), g.y_side(yv)) {
                if side != 0 && g.x_inside(xv) {
                    pts.push((px, if side > 0 { g.py0 + 4.0 } else { g.py1 - 4.0 }));
                }
            }
        }
    }
    [
        Legend::TopRight,
        Legend::TopLeft,
        Legend::BottomRight,
        Legend::BottomLeft,
    ]
    .into_iter()
    .find(|&corner| {
        let (x, y) = corner_origin(g, corner, w, h);
        !pts.iter()
            .any(|&(px, py)| px >= x - 3.0 && px <= x + w + 3.0 && py >= y - 3.0 && py <= y + h + 3.0)
    })
}

#[cfg(test)]
mod style_tests {
    use super::*;
    use crate::figure::Series;

    /// Bug: in E7's figure the ninth series (LASSO) was drawn exactly like the first (blue, solid):
    /// the palette has 8 colours and the dash cycle 4, so both repeated together.
    #[test]
    fn series_beyond_the_palette_are_told_apart_from_the_first() {
        let mut p = Panel::new("p");
        for i in 0..20 {
            p.push(Series::line(format!("s{i}"), vec![0.0, 1.0], vec![0.0, 1.0]));
        }
        let styles = &resolve_styles(&[p])[0];
        for i in 0..styles.len() {
            for j in 0..i {
                let (a, b) = (&styles[i], &styles[j]);
                assert!(
                    a.color != b.color || a.dash != b.dash,
                    "series {j} and {i} look the same"
                );
            }
        }
    }
}
