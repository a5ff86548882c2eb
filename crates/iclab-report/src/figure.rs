//! Plain data describing a figure: panels of series, axes, reference lines and a legend. Rendering
//! lives in svg.rs (SVG text) and png.rs (the same SVG rasterised), so PNG == SVG by construction.

use iclab_core::metrics::Curve;

/// Axis scale. On a log axis values <= 0 are skipped like NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scale {
    #[default]
    Linear,
    Log,
}

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    pub const BLACK: Color = Color(0, 0, 0);
    pub const GREY: Color = Color(110, 110, 110);
    pub const RED: Color = Color(213, 94, 0);

    /// "#rrggbb".
    pub fn hex(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Okabe & Ito's colour-blind-safe palette (black moved last, yellow dropped for contrast on white,
/// a dark grey-purple added), cycled by series index.
pub const PALETTE: [Color; 8] = [
    Color(0, 114, 178),   // blue
    Color(213, 94, 0),    // vermillion
    Color(0, 158, 115),   // bluish green
    Color(204, 121, 167), // reddish purple
    Color(230, 159, 0),   // orange
    Color(86, 180, 233),  // sky blue
    Color(110, 80, 140),  // purple
    Color(0, 0, 0),       // black
];

/// Stroke pattern; the default cycle (solid, dashed, dotted, dash-dot) keeps series apart in grey print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
    DashDot,
}

/// Dash cycle used when a series leaves `dash` unset.
pub const DASHES: [Dash; 4] = [Dash::Solid, Dash::Dashed, Dash::Dotted, Dash::DashDot];

/// Point marker shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Square,
    Triangle,
    Diamond,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesKind {
    Line,
    Points,
    LinePoints,
}

/// One series. Points with a non-finite x or y (or <= 0 on a log axis) are skipped and break the line.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label; "" keeps the series out of the legend.
    pub name: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// (lo, hi) per x, shaded in the series colour.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    pub kind: SeriesKind,
    /// None: chosen by name, consistent across the panels of a figure.
    pub color: Option<Color>,
    /// None: cycled with the colour (solid, dashed, dotted, dash-dot).
    pub dash: Option<Dash>,
    /// None: Circle for Points, no marker for Line.
    pub marker: Option<Marker>,
    /// Stroke width in px.
    pub width: f64,
}

impl Series {
    fn new(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>, kind: SeriesKind) -> Series {
        Series {
            name: name.into(),
            x,
            y,
            band: None,
            kind,
            color: None,
            dash: None,
            marker: None,
            width: 1.8,
        }
    }

    /// A polyline through (x, y).
    pub fn line(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series::new(name, x, y, SeriesKind::Line)
    }

    /// Scattered points (e.g. the in-context examples of a 1-D sinusoid prompt).
    pub fn points(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series::new(name, x, y, SeriesKind::Points)
    }

    /// An ICL curve: x = k, y = mean normalised error, band = the bootstrap 5-95% band
    /// (docs/study.md, "Metric").
    pub fn from_curve(curve: &Curve) -> Series {
        let x = curve.points.iter().map(|p| p.k as f64).collect();
        let y = curve.points.iter().map(|p| p.mean).collect();
        let lo = curve.points.iter().map(|p| p.lo).collect();
        let hi = curve.points.iter().map(|p| p.hi).collect();
        Series::line(curve.name.clone(), x, y).with_band(lo, hi)
    }

    pub fn with_band(mut self, lo: Vec<f64>, hi: Vec<f64>) -> Series {
        self.band = Some((lo, hi));
        self
    }

    pub fn without_band(mut self) -> Series {
        self.band = None;
        self
    }

    pub fn named(mut self, name: impl Into<String>) -> Series {
        self.name = name.into();
        self
    }

    pub fn color(mut self, c: Color) -> Series {
        self.color = Some(c);
        self
    }

    pub fn dash(mut self, d: Dash) -> Series {
        self.dash = Some(d);
        self
    }

    pub fn marker(mut self, m: Marker) -> Series {
        self.marker = Some(m);
        self
    }

    pub fn kind(mut self, k: SeriesKind) -> Series {
        self.kind = k;
        self
    }

    pub fn width(mut self, w: f64) -> Series {
        self.width = w;
        self
    }
}

/// One axis. `min`/`max` None: chosen from the data robustly (absurd outliers do not squash the
/// plot; values outside the range are drawn as a small arrow at the panel edge).
#[derive(Clone, Debug, Default)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A horizontal or vertical reference line (e.g. the dashed "predict 0" line at y = 1).
#[derive(Clone, Debug)]
pub struct RefLine {
    pub value: f64,
    pub label: String,
    pub color: Color,
    pub dash: Dash,
}

/// Where the legend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Legend {
    /// One panel: the inside corner covering least data (outside right if every corner is busy).
    /// Several panels: one shared legend below all panels.
    #[default]
    Auto,
    TopRight,
    TopLeft,
    BottomRight,
    BottomLeft,
    Right,
    Below,
    Hidden,
}

/// One plot area with its axes.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub hlines: Vec<RefLine>,
    pub vlines: Vec<RefLine>,
}

impl Panel {
    pub fn new(title: impl Into<String>) -> Panel {
        Panel {
            title: title.into(),
            ..Panel::default()
        }
    }

    pub fn x_label(mut self, s: impl Into<String>) -> Panel {
        self.x.label = s.into();
        self
    }

    pub fn y_label(mut self, s: impl Into<String>) -> Panel {
        self.y.label = s.into();
        self
    }

    pub fn x_log(mut self) -> Panel {
        self.x.scale = Scale::Log;
        self
    }

    pub fn y_log(mut self) -> Panel {
        self.y.scale = Scale::Log;
        self
    }

    pub fn x_range(mut self, min: Option<f64>, max: Option<f64>) -> Panel {
        self.x.min = min;
        self.x.max = max;
        self
    }

    pub fn y_range(mut self, min: Option<f64>, max: Option<f64>) -> Panel {
        self.y.min = min;
        self.y.max = max;
        self
    }

    /// A dashed grey horizontal line.
    pub fn hline(mut self, y: f64, label: impl Into<String>) -> Panel {
        self.hlines.push(RefLine {
            value: y,
            label: label.into(),
            color: Color::GREY,
            dash: Dash::Dashed,
        });
        self
    }

    /// A dotted grey vertical line.
    pub fn vline(mut self, x: f64, label: impl Into<String>) -> Panel {
        self.vlines.push(RefLine {
            value: x,
            label: label.into(),
            color: Color::GREY,
            dash: Dash::Dotted,
        });
        self
    }

    pub fn series(mut self, s: Series) -> Panel {
        self.series.push(s);
        self
    }

    pub fn push(&mut self, s: Series) {
        self.series.push(s);
    }

    /// The study's ICL panel (docs/study.md, "Metric"): error vs number of in-context examples,
    /// each curve with its 5-95% band, a dashed line at 1 (what predicting 0 scores), y from 0.
    pub fn icl(title: impl Into<String>, curves: &[Curve]) -> Panel {
        let mut p = Panel::new(title)
            .x_label("in-context examples k")
            .y_label("normalised squared error")
            .y_range(Some(0.0), None)
            .hline(1.0, "");
        for c in curves {
            p.push(Series::from_curve(c));
        }
        p
    }

    /// A 1-D function picture (e.g. a sinusoid prompt of E4 or E6, docs/study.md, "Experiments"):
    /// the context points as black dots, the true function as a solid grey curve over `grid`, and
    /// each prediction (name, values over `grid`) as a coloured curve.
    pub fn function_1d(
        title: impl Into<String>,
        context: (&[f64], &[f64]),
        grid: &[f64],
        truth: &[f64],
        predictions: &[(&str, Vec<f64>)],
    ) -> Panel {
        let mut p = Panel::new(title).x_label("x").y_label("y");
        p.push(
            Series::line("true function", grid.to_vec(), truth.to_vec())
                .color(Color(120, 120, 120))
                .dash(Dash::Solid)
                .width(2.4),
        );
        for (i, (name, values)) in predictions.iter().enumerate() {
            p.push(
                Series::line(*name, grid.to_vec(), values.clone())
                    .color(PALETTE[i % PALETTE.len()])
                    .dash(DASHES[(i + 1) % DASHES.len()]),
            );
        }
        p.push(
            Series::points("in-context examples", context.0.to_vec(), context.1.to_vec())
                .color(Color::BLACK)
                .marker(Marker::Circle),
        );
        p
    }
}

/// A figure: one or more panels in a grid, a title, a legend.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem (name.svg / name.png) and HTML anchor.
    pub name: String,
    /// Drawn above the panels ("" = none).
    pub title: String,
    /// Shown under the figure in the report, not drawn in the image.
    pub caption: String,
    pub panels: Vec<Panel>,
    /// Panels per row; 0 = all in one row up to 3.
    pub columns: usize,
    /// Size of one panel in px, axes and labels included.
    pub panel_width: f64,
    pub panel_height: f64,
    pub legend: Legend,
}

impl Figure {
    pub fn new(name: impl Into<String>, title: impl Into<String>) -> Figure {
        Figure {
            name: name.into(),
            title: title.into(),
            caption: String::new(),
            panels: Vec::new(),
            columns: 0,
            panel_width: 420.0,
            panel_height: 300.0,
            legend: Legend::Auto,
        }
    }

    pub fn panel(mut self, p: Panel) -> Figure {
        self.panels.push(p);
        self
    }

    pub fn caption(mut self, s: impl Into<String>) -> Figure {
        self.caption = s.into();
        self
    }

    pub fn columns(mut self, c: usize) -> Figure {
        self.columns = c;
        self
    }

    pub fn panel_size(mut self, w: f64, h: f64) -> Figure {
        self.panel_width = w;
        self.panel_height = h;
        self
    }

    pub fn legend(mut self, l: Legend) -> Figure {
        self.legend = l;
        self
    }
}
