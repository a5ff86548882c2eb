//! Rendering a [`Figure`]: SVG (svg.rs), PNG (png.rs) and the files. Kept apart from figure.rs so
//! that the figure's data types depend on nothing that draws them.

use std::path::{Path, PathBuf};

use crate::figure::Figure;

impl Figure {
    /// Self-contained SVG document (no external references). Never panics on NaN/inf/empty data.
    pub fn to_svg(&self) -> String {
        crate::svg::render(self).svg
    }

    /// (width, height) of the SVG in px.
    pub fn size(&self) -> (f64, f64) {
        let r = crate::svg::render(self);
        (r.width, r.height)
    }

    /// The same SVG rasterised by resvg with the bundled DejaVu Sans; `scale` 2.0 = 2x pixels.
    pub fn to_png(&self, scale: f32) -> crate::Result<Vec<u8>> {
        crate::png::svg_to_png(&self.to_svg(), scale)
    }

    /// Writes dir/name.svg and dir/name.png (2x); creates dir. Returns (svg_path, png_path).
    pub fn write(&self, dir: &Path) -> crate::Result<(PathBuf, PathBuf)> {
        let stem = crate::file_stem(&self.name);
        let svg = self.to_svg();
        let png = crate::png::svg_to_png(&svg, 2.0)?;
        crate::create_dir(dir)?;
        let svg_path = dir.join(format!("{stem}.svg"));
        let png_path = dir.join(format!("{stem}.png"));
        crate::write_file(&svg_path, svg.as_bytes())?;
        crate::write_file(&png_path, &png)?;
        Ok((svg_path, png_path))
    }
}
