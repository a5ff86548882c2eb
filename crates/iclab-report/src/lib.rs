//! Figures and reports for iclab: hand-written SVG line/scatter charts
//! (bands, log axes, reference lines, legends, small multiples), the same SVG rasterised to PNG by
//! resvg with a bundled font, tables (CSV / Markdown / HTML) and findings with pass/fail badges,
//! assembled into a self-contained report.html and a report.md.
//!
//! Data flows experiments -> report: this crate knows nothing of models or experiments; it takes
//! plain series, `iclab_core::metrics::Curve`s, tables and findings.

use std::path::{Path, PathBuf};

pub mod figure;
pub mod findings;
pub mod png;
mod render;
pub mod report;
pub mod svg;
pub mod table;
pub mod ticks;

pub use figure::{
    Axis, Color, Dash, Figure, Legend, Marker, Panel, RefLine, Scale, Series, SeriesKind, DASHES, PALETTE,
};
pub use findings::{findings_table, seeds_needed, Check, CheckKind, Cmp, Finding, Verdict};
pub use report::{Block, Report, ReportFiles, Section};
pub use table::{fmt_num, Cell, Table};

/// Errors of writing figures and reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SVG -> PNG failed (not expected: the SVG is generated here).
    #[error("rendering PNG: {0}")]
    Render(String),
}

pub type Result<T> = std::result::Result<T, ReportError>;

/// Writes every figure as dir/<name>.svg and dir/<name>.png; returns the paths written.
pub fn write_figures(figures: &[Figure], dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in figures {
        let (svg, png) = f.write(dir)?;
        out.extend([svg, png]);
    }
    Ok(out)
}

/// Writes every table as dir/<name>.csv; returns the paths written.
pub fn write_tables(tables: &[Table], dir: &Path) -> Result<Vec<PathBuf>> {
    tables.iter().map(|t| t.write_csv(dir)).collect()
}

/// A file-safe stem: characters outside [A-Za-z0-9_-.] become '_'; empty becomes "unnamed".
pub(crate) fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

/// Escapes text for HTML and XML content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
