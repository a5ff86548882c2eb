//! SVG -> PNG with resvg, using only the bundled DejaVu Sans (no system fonts), so a figure's PNG
//! renders the same text on every machine and matches its SVG.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use crate::ReportError;

/// DejaVu Sans (Bitstream Vera license, see assets/DejaVuSans-LICENSE.txt), from Debian's
/// fonts-dejavu-core.
pub static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name figures use in `font-family`.
pub const FONT_FAMILY: &str = "DejaVu Sans";

fn fontdb() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(FONT)));
        // Generic families resolve to the bundled font too.
        db.set_sans_serif_family(FONT_FAMILY);
        db.set_serif_family(FONT_FAMILY);
        db.set_monospace_family(FONT_FAMILY);
        Arc::new(db)
    })
    .clone()
}

/// usvg options with the bundled font as the only font.
pub fn options() -> usvg::Options<'static> {
    usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        fontdb: fontdb(),
        ..usvg::Options::default()
    }
}

/// Parses an SVG document with the bundled font (also how tests check that SVG is well-formed).
pub fn parse_svg(svg: &str) -> crate::Result<usvg::Tree> {
    usvg::Tree::from_str(svg, &options()).map_err(|e| ReportError::Render(format!("parsing SVG: {e}")))
}

/// Rasterises an SVG document at `scale` (2.0 = twice the SVG's px size) on its own background.
pub fn svg_to_png(svg: &str, scale: f32) -> crate::Result<Vec<u8>> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(ReportError::Render(format!(
            "scale must be a positive number, got {scale}"
        )));
    }
    let tree = parse_svg(svg)?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| ReportError::Render(format!("cannot allocate a {w}x{h} image")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| ReportError::Render(format!("encoding PNG: {e}")))
}

/// Advance width of `text` in px at font size `size`, measured on the bundled font (layout of
/// labels and legends; characters missing from the font count as 0.6 em).
pub fn text_width(text: &str, size: f64) -> f64 {
    static FACE: OnceLock<Option<ttf_parser::Face<'static>>> = OnceLock::new();
    let face = FACE.get_or_init(|| ttf_parser::Face::parse(FONT, 0).ok());
    let Some(face) = face else {
        return 0.6 * size * text.chars().count() as f64;
    };
    let em = face.units_per_em() as f64;
    text.chars()
        .map(|c| {
            face.glyph_index(c)
                .and_then(|g| face.glyph_hor_advance(g))
                .map_or(0.6, |a| a as f64 / em)
        })
        .sum::<f64>()
        * size
}
