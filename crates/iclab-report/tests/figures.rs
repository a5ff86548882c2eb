//! Figures: the SVG parses back (usvg), the PNG decodes at the right size and shows what was drawn,
//! axes behave on log scales and degenerate data.

use iclab_core::metrics::{Curve, CurvePoint};
use iclab_report::png::{parse_svg, text_width, FONT};
use iclab_report::{Color, Figure, Legend, Panel, Series};
use resvg::tiny_skia::Pixmap;

fn curve(name: &str, means: &[f64]) -> Curve {
    Curve {
        name: name.into(),
        points: means
            .iter()
            .enumerate()
            .map(|(k, &m)| CurvePoint {
                k,
                mean: m,
                std: 0.1,
                lo: m - 0.05,
                hi: m + 0.05,
            })
            .collect(),
    }
}

fn decode(png: &[u8]) -> Pixmap {
    Pixmap::decode_png(png).expect("PNG decodes")
}

/// Number of pixels within `tol` of colour c (premultiplied = straight on an opaque background).
fn count_color(p: &Pixmap, c: Color, tol: i32) -> usize {
    p.pixels()
        .iter()
        .filter(|px| {
            (px.red() as i32 - c.0 as i32).abs() <= tol
                && (px.green() as i32 - c.1 as i32).abs() <= tol
                && (px.blue() as i32 - c.2 as i32).abs() <= tol
        })
        .count()
}

/// Texts of the SVG's <text> elements (including tspans), unescaped enough for tick labels.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            let mut out = String::new();
            let mut in_tag = false;
            for ch in body.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    _ if !in_tag => out.push(ch),
                    _ => {}
                }
            }
            out
        })
        .collect()
}

#[test]
fn svg_parses_and_png_has_the_right_size_and_colours() {
    let red = Color(220, 20, 20);
    let x: Vec<f64> = (0..50).map(|i| i as f64 / 10.0).collect();
    let y: Vec<f64> = x.iter().map(|v| v.sin()).collect();
    let fig = Figure::new("t", "a title").panel(
        Panel::new("p")
            .x_label("x")
            .y_label("y")
            .series(Series::line("red sine", x.clone(), y).color(red).width(3.0)),
    );
    let svg = fig.to_svg();
    let tree = parse_svg(&svg).expect("well-formed SVG");
    let (w, h) = fig.size();
    assert_eq!((tree.size().width() as f64, tree.size().height() as f64), (w, h));

    let png = decode(&fig.to_png(2.0).unwrap());
    assert_eq!(
        (png.width(), png.height()),
        ((w * 2.0).ceil() as u32, (h * 2.0).ceil() as u32)
    );
    // Not blank: grey-level variance, and the red series is drawn (a 3 px line over ~300 px is
    // thousands of pixels at 2x) while the palette's colours do not appear (none was used).
    let lum: Vec<f64> = png
        .pixels()
        .iter()
        .map(|p| p.red() as f64 + p.green() as f64 + p.blue() as f64)
        .collect();
    let mean = lum.iter().sum::<f64>() / lum.len() as f64;
    let var = lum.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lum.len() as f64;
    assert!(var > 100.0, "variance {var}");
    let reds = count_color(&png, red, 30);
    assert!(reds > 1500, "red pixels {reds}");
    assert_eq!(count_color(&png, iclab_report::PALETTE[2], 10), 0);
}

#[test]
fn text_renders_with_the_bundled_font() {
    // Only a title, no data: dark pixels in the title row come from glyphs of the bundled font.
    let fig = Figure::new("t", "WWWWWWWWWW").panel(Panel::new(""));
    let png = decode(&fig.to_png(1.0).unwrap());
    let dark_in_title = (0..png.width())
        .flat_map(|x| (0..30).map(move |y| (x, y)))
        .filter(|&(x, y)| png.pixel(x, y).is_some_and(|p| p.red() < 100))
        .count();
    assert!(dark_in_title > 200, "{dark_in_title}");
    // Text measurement uses the same font: "W" is wider than "i" (DejaVu Sans: 2025 vs 569 units of 2048).
    assert!(
        (text_width("W", 2048.0) - 2025.0).abs() < 1.0,
        "{}",
        text_width("W", 2048.0)
    );
    assert!((text_width("i", 2048.0) - 569.0).abs() < 1.0);
    assert!(FONT.len() > 100_000);
}

#[test]
fn log_axes_get_decade_ticks() {
    let x: Vec<f64> = vec![0.05, 0.5, 5.0, 50.0];
    let y: Vec<f64> = vec![1e-2, 1e-1, 1e1, 1e3];
    let fig = Figure::new("log", "").panel(Panel::new("").x_log().y_log().series(Series::line("s", x, y)));
    let svg = fig.to_svg();
    parse_svg(&svg).unwrap();
    let t = texts(&svg);
    for label in ["0.1", "1", "10", "0.01", "100", "1000"] {
        assert!(t.iter().any(|s| s == label), "missing tick label {label} in {t:?}");
    }
    // A wide range switches every decade to 10^e (superscript tspan), never mixing styles.
    let fig = Figure::new("wide", "").panel(Panel::new("").y_log().series(Series::line(
        "s",
        vec![0.0, 1.0, 2.0],
        vec![1e-6, 1.0, 1e6],
    )));
    let svg = fig.to_svg();
    parse_svg(&svg).unwrap();
    let t = texts(&svg);
    assert!(t.iter().any(|s| s == "10\u{2212}6"), "{t:?}");
    assert!(t.iter().any(|s| s == "106"), "{t:?}");
    assert!(
        t.iter().any(|s| s == "100"),
        "10^0 written as 10 with exponent 0: {t:?}"
    );
    assert!(!t.iter().any(|s| s == "1"), "{t:?}");
}

#[test]
fn degenerate_data_never_panics_and_still_renders() {
    let nan = f64::NAN;
    let figs = [
        Figure::new("empty", ""),
        Figure::new("no series", "t").panel(Panel::new("p")),
        Figure::new("nan", "t").panel(Panel::new("p").series(Series::line("nan", vec![0.0, 1.0], vec![nan, nan]))),
        Figure::new("nan log", "t").panel(
            Panel::new("p")
                .x_log()
                .y_log()
                .series(Series::line("neg", vec![-1.0, 0.0], vec![-1.0, 0.0]).with_band(vec![nan; 2], vec![nan; 2])),
        ),
        Figure::new("inf", "t").panel(Panel::new("p").series(Series::points(
            "inf",
            vec![0.0, f64::INFINITY, 2.0],
            vec![f64::INFINITY, 1.0, f64::NEG_INFINITY],
        ))),
        Figure::new("single", "t").panel(Panel::new("p").series(Series::line("one", vec![3.0], vec![7.0]))),
        Figure::new("mismatched", "t").panel(
            Panel::new("p").series(Series::line("m", vec![0.0, 1.0, 2.0], vec![1.0]).with_band(vec![0.5], vec![])),
        ),
        Figure::new("huge", "t").panel(Panel::new("p").series(Series::line("h", vec![0.0, 1.0], vec![-1e308, 1e308]))),
        Figure::new("bad size", "t")
            .panel_size(f64::NAN, -5.0)
            .columns(7)
            .legend(Legend::Right)
            .panel(Panel::new("p")),
    ];
    for fig in &figs {
        let svg = fig.to_svg();
        assert!(
            !svg.contains("NaN") && !svg.contains("inf\""),
            "{}: non-finite number in SVG",
            fig.name
        );
        parse_svg(&svg).unwrap_or_else(|e| panic!("{}: {e}", fig.name));
        let png = decode(&fig.to_png(1.0).unwrap());
        assert!(png.width() > 100 && png.height() > 100);
    }
    // A panel whose data are all non-finite says so instead of drawing an empty box silently.
    assert!(texts(&figs[2].to_svg()).iter().any(|t| t == "no finite data"));
    // A single point is drawn as a dot.
    assert!(figs[5].to_svg().contains("<circle"));
}

#[test]
fn an_absurd_value_is_marked_at_the_edge_and_does_not_squash_the_axis() {
    let mut y: Vec<f64> = (0..20).map(|k| 1.0 - k as f64 / 20.0).collect();
    y[10] = 1e12;
    let fig = Figure::new("o", "").panel(Panel::icl("", &[curve("diverged", &y)]));
    let svg = fig.to_svg();
    parse_svg(&svg).unwrap();
    assert_eq!(svg.matches("outside the axis range").count(), 1);
    // Ticks stay at the scale of the other values (y range about 0..2).
    let t = texts(&svg);
    let max_tick = t.iter().filter_map(|s| s.parse::<f64>().ok()).fold(0.0, f64::max);
    assert!(max_tick <= 20.0, "{t:?}"); // the x axis (k) goes to 19
    assert!(
        !t.iter().any(|s| s.parse::<f64>().is_ok() && s.contains('e')),
        "no scientific labels: {t:?}"
    );
}

#[test]
fn series_keep_their_colour_across_panels_and_the_legend_is_shared() {
    let a = curve("mixture model", &[1.0, 0.5, 0.2]);
    let b = curve("dense specialist", &[1.0, 0.6, 0.3]);
    let fig = Figure::new("two", "")
        .panel(Panel::icl("on dense prompts", &[a.clone(), b.clone()]))
        .panel(Panel::icl("on sparse prompts", &[b, a]));
    let svg = fig.to_svg();
    parse_svg(&svg).unwrap();
    // One shared legend: each name appears once as text.
    let t = texts(&svg);
    assert_eq!(t.iter().filter(|s| *s == "mixture model").count(), 1);
    assert_eq!(t.iter().filter(|s| *s == "dense specialist").count(), 1);
    // "mixture model" is the first name, so PALETTE[0] strokes its lines in both panels (+ legend).
    let c0 = format!("stroke=\"{}\"", iclab_report::PALETTE[0].hex());
    assert_eq!(svg.matches(&c0).count(), 3, "{svg}");
    // Both panels side by side: the figure is twice as wide as tall-ish.
    let (w, h) = fig.size();
    assert!(w > 1.8 * 420.0 - 1.0 && h < 420.0, "{w} x {h}");
}

#[test]
fn single_panel_legend_avoids_the_data() {
    // Curves falling from the top left to the bottom right leave the top right and bottom left empty.
    let x: Vec<f64> = (0..=20).map(|i| i as f64).collect();
    let y: Vec<f64> = x.iter().map(|k| 1.0 - k / 20.0).collect();
    let fig = Figure::new("l", "").panel(Panel::new("").series(Series::line("falling line", x, y)));
    let svg = fig.to_svg();
    // The legend box is the rect with fill-opacity 0.88; it sits right of the middle and at the top.
    let i = svg.find("fill-opacity=\"0.88\"").expect("legend drawn inside");
    let tag = &svg[svg[..i].rfind("<rect").unwrap()..i];
    let attr = |name: &str| -> f64 {
        let s = &tag[tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2..];
        s[..s.find('"').unwrap()].parse().unwrap()
    };
    let (w, _) = fig.size();
    assert!(attr("x") > w / 2.0 && attr("y") < 60.0, "{tag}");
}

#[test]
fn panel_titles_wider_than_their_panel_shrink_then_are_cut() {
    let long = "convex prompts: convex(0.5 dense, 0.5 sinusoid(omega=lognormal(2,0.5)))".repeat(2);
    let svg = Figure::new("t", "long titles")
        .panel(Panel::new(&long).series(Series::line("s", vec![0.0, 1.0], vec![1.0, 0.5])))
        .panel(Panel::new("short").series(Series::line("s", vec![0.0, 1.0], vec![1.0, 0.5])))
        .to_svg();
    parse_svg(&svg).unwrap();
    assert!(!svg.contains(&long), "the long title is drawn whole");
    assert!(svg.contains("convex prompts: convex(0.5") && svg.contains('…'));
    assert!(svg.contains(">short</text>"));
}
