//! Tables of numbers and text, written as CSV (full precision), Markdown and HTML (4 significant digits).

use std::path::{Path, PathBuf};

use iclab_core::metrics::Curve;

/// One table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Num(f64),
    Int(i64),
    Empty,
}

impl Cell {
    /// The cell as shown in Markdown / HTML.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v) => fmt_num(*v),
            Cell::Int(i) => i.to_string(),
            Cell::Empty => String::new(),
        }
    }

    /// The cell as written to CSV: numbers in full (shortest round-trip) precision.
    pub fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v) if v.is_nan() => "NaN".into(),
            Cell::Num(v) if v.is_infinite() => if *v > 0.0 { "inf" } else { "-inf" }.into(),
            Cell::Num(v) => format!("{v:?}"),
            Cell::Int(i) => i.to_string(),
            Cell::Empty => String::new(),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Num(_) | Cell::Int(_))
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<&String> for Cell {
    fn from(s: &String) -> Cell {
        Cell::Text(s.clone())
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Cell::Num(v)
    }
}
impl From<f32> for Cell {
    fn from(v: f32) -> Cell {
        Cell::Num(v as f64)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Cell {
        Cell::Int(v)
    }
}
impl From<i32> for Cell {
    fn from(v: i32) -> Cell {
        Cell::Int(v as i64)
    }
}
impl From<usize> for Cell {
    fn from(v: usize) -> Cell {
        Cell::Int(v as i64)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(v as i64)
    }
}
impl From<u32> for Cell {
    fn from(v: u32) -> Cell {
        Cell::Int(v as i64)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Cell {
        Cell::Text(if v { "yes" } else { "no" }.into())
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// Display formatting of a number: 4 significant digits, trailing zeros dropped, scientific
/// notation for |v| < 1e-3 or >= 1e5, NaN / inf spelled out.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        // 1.234e-5: mantissa with 4 significant digits, trailing zeros dropped.
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{}", trim_zeros(m), e);
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    trim_zeros(&s).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A table: header and rows. Rows shorter than the header are padded with empty cells.
#[derive(Clone, Debug)]
pub struct Table {
    /// File stem of the CSV.
    pub name: String,
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(name: impl Into<String>, header: &[&str]) -> Table {
        Table {
            name: name.into(),
            caption: String::new(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn caption(mut self, s: impl Into<String>) -> Table {
        self.caption = s.into();
        self
    }

    pub fn row(mut self, cells: Vec<Cell>) -> Table {
        self.push(cells);
        self
    }

    pub fn push(&mut self, mut cells: Vec<Cell>) {
        while cells.len() < self.header.len() {
            cells.push(Cell::Empty);
        }
        self.rows.push(cells);
    }

    /// One row per k, and for each curve the columns "<name> mean", "<name> lo", "<name> hi"
    /// (the bootstrap 5-95% band). Curves of different lengths leave empty cells.
    pub fn from_curves(name: impl Into<String>, curves: &[Curve]) -> Table {
        let mut header = vec!["k".to_string()];
        for c in curves {
            for part in ["mean", "lo", "hi"] {
                header.push(format!("{} {part}", c.name));
            }
        }
        let mut ks: Vec<usize> = curves.iter().flat_map(|c| c.points.iter().map(|p| p.k)).collect();
        ks.sort_unstable();
        ks.dedup();
        let mut t = Table {
            name: name.into(),
            caption: String::new(),
            header,
            rows: Vec::new(),
        };
        for k in ks {
            let mut row = vec![Cell::from(k)];
            for c in curves {
                match c.points.iter().find(|p| p.k == k) {
                    Some(p) => row.extend([Cell::Num(p.mean), Cell::Num(p.lo), Cell::Num(p.hi)]),
                    None => row.extend([Cell::Empty, Cell::Empty, Cell::Empty]),
                }
            }
            t.rows.push(row);
        }
        t
    }

    fn width(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0).max(self.header.len())
    }

    fn padded_header(&self) -> Vec<String> {
        let mut h = self.header.clone();
        h.resize(self.width(), String::new());
        h
    }

    fn cell(row: &[Cell], j: usize) -> &Cell {
        row.get(j).unwrap_or(&Cell::Empty)
    }

    /// RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled.
    pub fn to_csv(&self) -> String {
        let w = self.width();
        let mut out = String::new();
        let line = |fields: Vec<String>| fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n";
        out.push_str(&line(self.padded_header()));
        for r in &self.rows {
            out.push_str(&line((0..w).map(|j| Table::cell(r, j).csv()).collect()));
        }
        out
    }

    /// GitHub-flavoured Markdown table; numeric columns right-aligned, '|' escaped.
    pub fn to_markdown(&self) -> String {
        let w = self.width();
        if w == 0 {
            return String::new();
        }
        let md = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
        let numeric: Vec<bool> = (0..w)
            .map(|j| {
                let mut cells = self
                    .rows
                    .iter()
                    .map(|r| Table::cell(r, j))
                    .filter(|c| **c != Cell::Empty);
                let first = cells.next();
                first.is_some_and(|c| c.is_numeric()) && cells.all(Cell::is_numeric)
            })
            .collect();
        let mut out = String::new();
        out.push_str(&format!(
            "| {} |\n",
            self.padded_header()
                .iter()
                .map(|h| md(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        let rule: Vec<&str> = numeric.iter().map(|&n| if n { "---:" } else { "---" }).collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            let cells: Vec<String> = (0..w).map(|j| md(&Table::cell(r, j).display())).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }

    /// An HTML table (escaped); numeric cells get class "num" (right-aligned by the report's CSS).
    pub fn to_html(&self) -> String {
        let w = self.width();
        let mut out = String::from("<table>\n<thead><tr>");
        for h in self.padded_header() {
            out.push_str(&format!("<th>{}</th>", crate::html_escape(&h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            out.push_str("<tr>");
            for j in 0..w {
                let c = Table::cell(r, j);
                let class = if c.is_numeric() { " class=\"num\"" } else { "" };
                out.push_str(&format!("<td{class}>{}</td>", crate::html_escape(&c.display())));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    /// Writes dir/name.csv; creates dir.
    pub fn write_csv(&self, dir: &Path) -> crate::Result<PathBuf> {
        crate::create_dir(dir)?;
        let path = dir.join(format!("{}.csv", crate::file_stem(&self.name)));
        crate::write_file(&path, self.to_csv().as_bytes())?;
        Ok(path)
    }
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_with_four_significant_digits() {
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(1234.56), "1235");
        assert_eq!(fmt_num(-0.5), "-0.5");
        assert_eq!(fmt_num(0.00012346), "1.235e-4");
        assert_eq!(fmt_num(123456.0), "1.235e5");
        assert_eq!(fmt_num(1e6), "1e6");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_num(0.0), "0");
    }

    #[test]
    fn csv_quotes_and_keeps_full_precision() {
        let t = Table::new("t", &["name", "v"])
            .row(vec!["a,b".into(), 0.1f64.into()])
            .row(vec!["say \"hi\"".into(), (1.0f64 / 3.0).into()])
            .row(vec!["short".into()]);
        assert_eq!(
            t.to_csv(),
            "name,v\n\"a,b\",0.1\n\"say \"\"hi\"\"\",0.3333333333333333\nshort,\n"
        );
    }
}
