//! A report: sections of paragraphs, figures, tables and findings, written as a self-contained
//! report.html (inline SVG and CSS, no script, no network) and report.md (figures as relative
//! PNG/SVG paths), with every figure as SVG + PNG and every table as CSV beside them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::figure::Figure;
use crate::findings::{findings_table, Finding, Verdict};
use crate::table::Table;
use crate::{file_stem, html_escape};

/// One piece of a section.
#[derive(Clone, Debug)]
pub enum Block {
    /// Plain text (escaped in HTML; blank lines start new paragraphs).
    Paragraph(String),
    Figure(Figure),
    Table(Table),
    Findings(Vec<Finding>),
    /// Preformatted text (a command line, a config).
    Code(String),
}

/// A headed section.
#[derive(Clone, Debug)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

impl Section {
    pub fn new(heading: impl Into<String>) -> Section {
        Section {
            heading: heading.into(),
            blocks: Vec::new(),
        }
    }

    pub fn paragraph(mut self, s: impl Into<String>) -> Section {
        self.blocks.push(Block::Paragraph(s.into()));
        self
    }

    pub fn figure(mut self, f: Figure) -> Section {
        self.blocks.push(Block::Figure(f));
        self
    }

    pub fn table(mut self, t: Table) -> Section {
        self.blocks.push(Block::Table(t));
        self
    }

    pub fn findings(mut self, f: Vec<Finding>) -> Section {
        self.blocks.push(Block::Findings(f));
        self
    }

    pub fn code(mut self, s: impl Into<String>) -> Section {
        self.blocks.push(Block::Code(s.into()));
        self
    }

    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }
}

/// The whole report.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    pub intro: Vec<String>,
    pub sections: Vec<Section>,
}

/// What `Report::write` wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub markdown: PathBuf,
    /// SVG and PNG of every figure.
    pub figures: Vec<PathBuf>,
    /// CSV of every table, plus findings.csv.
    pub tables: Vec<PathBuf>,
}

const CSS: &str = "
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; max-width: 1320px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
figure { margin: 1.2em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.caption { font-size: .9em; color: #444; }
.badge { display: inline-block; padding: .05em .5em; border-radius: .3em; font-weight: bold;
         font-size: .85em; color: #fff; }
.badge.PASS { background: #1a7f37; } .badge.FAIL { background: #cf222e; } .badge.INFO { background: #6e7781; }
.badge.UNTESTABLE { background: #9a6700; } ul.headlines { list-style: none; padding-left: 0; }
tr.fail td { background: #fff0f0; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; }
.files { font-size: .85em; color: #555; }
.beside { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
.beside > figure { flex: 0 1 34em; margin: 0; position: sticky; top: 1em; } .beside > .finding { flex: 1 1 40em; }
";

impl Report {
    pub fn new(title: impl Into<String>) -> Report {
        Report {
            title: title.into(),
            intro: Vec::new(),
            sections: Vec::new(),
        }
    }

    pub fn intro(mut self, s: impl Into<String>) -> Report {
        self.intro.push(s.into());
        self
    }

    pub fn section(mut self, s: Section) -> Report {
        self.sections.push(s);
        self
    }

    pub fn push(&mut self, s: Section) {
        self.sections.push(s);
    }

    /// Every finding of every section, in document order.
    pub fn findings(&self) -> Vec<&Finding> {
        self.sections
            .iter()
            .flat_map(|s| &s.blocks)
            .filter_map(|b| match b {
                Block::Findings(f) => Some(f),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn figures(&self) -> Vec<&Figure> {
        self.blocks()
            .filter_map(|b| match b {
                Block::Figure(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn tables(&self) -> Vec<&Table> {
        self.blocks()
            .filter_map(|b| match b {
                Block::Table(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.sections.iter().flat_map(|s| &s.blocks)
    }

    /// File stems of the figures and tables in document order, made unique ("x", "x_2", ...) so
    /// two figures with one name do not overwrite each other. "findings" is reserved for the summary.
    fn stems(&self) -> (Vec<String>, Vec<String>) {
        let figs = unique_stems(self.figures().iter().map(|f| f.name.as_str()), &[]);
        let tabs = unique_stems(self.tables().iter().map(|t| t.name.as_str()), &["findings"]);
        (figs, tabs)
    }

    /// The summary of all findings (one row per check).
    pub fn findings_table(&self) -> Table {
        findings_table("findings", &self.findings())
    }

    /// Self-contained HTML: inline SVG figures and CSS, no script, no external resource.
    pub fn to_html(&self) -> String {
        let (fig_stems, tab_stems) = self.stems();
        let (mut fi, mut ti) = (0, 0);
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str(&format!(
            "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            html_escape(&self.title)
        ));
        h.push_str(&format!("<h1>{}</h1>\n", html_escape(&self.title)));
        let all = self.findings();
        h.push_str(&headlines_html(&all));
        for p in &self.intro {
            h.push_str(&paragraphs_html(p));
        }
        if !all.is_empty() {
            h.push_str("<h2 id=\"findings\">Findings</h2>\n");
            h.push_str(&summary_line(&all));
            h.push_str(&findings_html(&all));
        }
        if self.sections.len() > 1 {
            h.push_str("<nav><ul>\n");
            for (i, s) in self.sections.iter().enumerate() {
                h.push_str(&format!(
                    "<li><a href=\"#sec{i}\">{}</a></li>\n",
                    html_escape(&s.heading)
                ));
            }
            h.push_str("</ul></nav>\n");
        }
        for (i, s) in self.sections.iter().enumerate() {
            h.push_str(&format!("<h2 id=\"sec{i}\">{}</h2>\n", html_escape(&s.heading)));
            // The section's checked finding is drawn beside its first figure (side by side where
            // the page is wide enough), so the numbers and the picture they judge meet.
            let first_figure = s.blocks.iter().position(|b| matches!(b, Block::Figure(_)));
            let findings = s.blocks.iter().position(|b| matches!(b, Block::Findings(_)));
            for (j, b) in s.blocks.iter().enumerate() {
                let beside = first_figure == Some(j) && findings.is_some();
                if beside {
                    h.push_str("<div class=\"beside\">\n");
                }
                match b {
                    Block::Paragraph(p) => h.push_str(&paragraphs_html(p)),
                    Block::Code(c) => h.push_str(&format!("<pre>{}</pre>\n", html_escape(c))),
                    Block::Findings(_) if first_figure.is_some() => {}
                    Block::Figure(f) => {
                        let stem = &fig_stems[fi];
                        fi += 1;
                        // Ids inside the SVG are prefixed by the unique stem: no clashes in one page.
                        let svg = crate::svg::render_with_id(f, &format!("fig-{stem}")).svg;
                        let svg = svg.trim_start_matches(crate::svg::XML_DECL).trim_start();
                        h.push_str(&format!("<figure id=\"fig-{stem}\">\n{svg}\n"));
                        h.push_str("<figcaption>");
                        if !f.caption.is_empty() {
                            h.push_str(&html_escape(&f.caption));
                            h.push(' ');
                        }
                        h.push_str(&format!(
                            "<span class=\"files\">(figures/{stem}.svg, figures/{stem}.png)</span></figcaption>\n</figure>\n"
                        ));
                        if let (true, Some(Block::Findings(found))) = (beside, findings.map(|k| &s.blocks[k])) {
                            h.push_str("<div class=\"finding\">\n");
                            h.push_str(&findings_html(&found.iter().collect::<Vec<_>>()));
                            h.push_str("</div>\n</div>\n");
                        }
                    }
                    Block::Table(t) => {
                        let stem = &tab_stems[ti];
                        ti += 1;
                        if !t.caption.is_empty() {
                            h.push_str(&format!("<p class=\"caption\">{}</p>\n", html_escape(&t.caption)));
                        }
                        h.push_str(&t.to_html());
                        h.push_str(&format!("<p class=\"files\">tables/{stem}.csv</p>\n"));
                    }
                    Block::Findings(f) => h.push_str(&findings_html(&f.iter().collect::<Vec<_>>())),
                }
            }
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    /// Markdown: figures as ![caption](figures/<name>.png) with a link to the SVG, tables inline
    /// (and as tables/<name>.csv), findings as a table with PASS/FAIL.
    pub fn to_markdown(&self) -> String {
        let (fig_stems, tab_stems) = self.stems();
        let (mut fi, mut ti) = (0, 0);
        let mut m = format!("# {}\n\n", one_line(&self.title));
        let all = self.findings();
        for f in &all {
            m.push_str(&format!("- {}\n", f.headline()));
        }
        if !all.is_empty() {
            m.push('\n');
        }
        for p in &self.intro {
            m.push_str(p.trim());
            m.push_str("\n\n");
        }
        if !all.is_empty() {
            m.push_str("## Findings\n\n");
            m.push_str(&strip_tags(&summary_line(&all)));
            m.push_str("\n\n");
            m.push_str(&findings_markdown(&all));
            m.push('\n');
        }
        for s in &self.sections {
            m.push_str(&format!("## {}\n\n", one_line(&s.heading)));
            for b in &s.blocks {
                match b {
                    Block::Paragraph(p) => {
                        m.push_str(p.trim());
                        m.push_str("\n\n");
                    }
                    Block::Code(c) => m.push_str(&format!("```\n{}\n```\n\n", c.trim_end())),
                    Block::Figure(f) => {
                        let stem = &fig_stems[fi];
                        fi += 1;
                        let alt = if f.title.is_empty() {
                            stem.as_str()
                        } else {
                            f.title.as_str()
                        };
                        m.push_str(&format!(
                            "![{}](figures/{stem}.png)\n\n",
                            one_line(alt).replace(['[', ']'], "")
                        ));
                        if !f.caption.is_empty() {
                            m.push_str(&format!("*{}* ", one_line(&f.caption)));
                        }
                        m.push_str(&format!("([SVG](figures/{stem}.svg))\n\n"));
                    }
                    Block::Table(t) => {
                        let stem = &tab_stems[ti];
                        ti += 1;
                        if !t.caption.is_empty() {
                            m.push_str(&format!("{}\n\n", one_line(&t.caption)));
                        }
                        m.push_str(&t.to_markdown());
                        m.push_str(&format!("\n([CSV](tables/{stem}.csv))\n\n"));
                    }
                    Block::Findings(f) => {
                        m.push_str(&findings_markdown(&f.iter().collect::<Vec<_>>()));
                        m.push('\n');
                    }
                }
            }
        }
        m
    }

    /// Writes dir/report.html, dir/report.md, dir/figures/<name>.{svg,png},
    /// dir/tables/<name>.csv and dir/tables/findings.csv; creates the directories.
    pub fn write(&self, dir: &Path) -> crate::Result<ReportFiles> {
        let (fig_stems, tab_stems) = self.stems();
        let (fig_dir, tab_dir) = (dir.join("figures"), dir.join("tables"));
        let mut figures = Vec::new();
        for (f, stem) in self.figures().into_iter().zip(&fig_stems) {
            let mut f = f.clone();
            f.name = stem.clone();
            let (svg, png) = f.write(&fig_dir)?;
            figures.extend([svg, png]);
        }
        let mut tables = Vec::new();
        for (t, stem) in self.tables().into_iter().zip(&tab_stems) {
            let mut t = t.clone();
            t.name = stem.clone();
            tables.push(t.write_csv(&tab_dir)?);
        }
        if !self.findings().is_empty() {
            tables.push(self.findings_table().write_csv(&tab_dir)?);
        }
        crate::create_dir(dir)?;
        let html = dir.join("report.html");
        let markdown = dir.join("report.md");
        crate::write_file(&html, self.to_html().as_bytes())?;
        crate::write_file(&markdown, self.to_markdown().as_bytes())?;
        Ok(ReportFiles {
            html,
            markdown,
            figures,
            tables,
        })
    }
}

fn unique_stems<'a>(names: impl Iterator<Item = &'a str>, reserved: &[&str]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = reserved.iter().map(|r| (r.to_string(), 1)).collect();
    names
        .map(|n| {
            let base = file_stem(n);
            let mut stem = base.clone();
            while let Some(count) = seen.get_mut(&stem) {
                *count += 1;
                stem = format!("{base}_{count}");
            }
            seen.insert(stem.clone(), 1);
            stem
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn paragraphs_html(s: &str) -> String {
    s.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>\n", html_escape(p)))
        .collect()
}

fn summary_line(all: &[&Finding]) -> String {
    let count = |v: Verdict| all.iter().filter(|f| f.verdict() == v).count();
    let (pass, fail, untestable, info) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Untestable),
        count(Verdict::Info),
    );
    format!(
        "<p><b>{pass} passed, {fail} failed, {untestable} untestable</b> of {} required findings; {info} \
         informational.</p>\n",
        pass + fail + untestable
    )
}

/// The report's first lines: one per finding (verdict, deciding numbers, seeds holding).
fn headlines_html(all: &[&Finding]) -> String {
    if all.is_empty() {
        return String::new();
    }
    let mut h = String::from("<ul class=\"headlines\">\n");
    for f in all {
        let v = f.verdict().label();
        // The badge says the verdict; the text after it need not say it again.
        let text = format!("{}: {}", f.id, f.deciding());
        h.push_str(&format!(
            "<li><span class=\"badge {v}\">{v}</span> {}</li>\n",
            html_escape(&text)
        ));
    }
    h.push_str("</ul>\n");
    h
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn findings_html(findings: &[&Finding]) -> String {
    let mut h = String::from(
        "<table class=\"findings\">\n<thead><tr><th>finding</th><th>result</th><th>claim</th><th>kind</th>\
         <th>check</th><th>measured</th><th>criterion</th><th>per seed</th></tr></thead>\n<tbody>\n",
    );
    for f in findings {
        let v = f.verdict();
        let badge = format!("<span class=\"badge {0}\">{0}</span>", v.label());
        let rows = f.checks.len().max(1);
        let class = if v == Verdict::Fail { " class=\"fail\"" } else { "" };
        let head = format!(
            "<td rowspan=\"{rows}\">{}</td><td rowspan=\"{rows}\">{badge}</td><td rowspan=\"{rows}\">{}</td>",
            html_escape(&f.id),
            html_escape(&f.claim)
        );
        if f.checks.is_empty() {
            h.push_str(&format!(
                "<tr{class}>{head}<td></td><td>(no checks)</td><td></td><td></td><td></td></tr>\n"
            ));
        }
        for (i, c) in f.checks.iter().enumerate() {
            let mark = if c.passed() { "pass" } else { "fail" };
            h.push_str(&format!(
                "<tr{class}>{}<td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{} {} <b>{mark}</b></td>\
                 <td>{}</td></tr>\n",
                if i == 0 { head.as_str() } else { "" },
                c.kind.label(),
                html_escape(&c.what),
                crate::table::fmt_num(c.measured),
                html_escape(c.cmp.symbol()),
                crate::table::fmt_num(c.threshold),
                html_escape(&c.per_seed_text()),
            ));
        }
    }
    h.push_str("</tbody>\n</table>\n");
    h
}

fn findings_markdown(findings: &[&Finding]) -> String {
    let mut t = Table::new(
        "findings",
        &[
            "finding",
            "result",
            "claim",
            "kind",
            "check",
            "measured",
            "criterion",
            "per seed",
        ],
    );
    for f in findings {
        let badge = format!("**{}**", f.verdict().label());
        if f.checks.is_empty() {
            t.push(vec![
                f.id.clone().into(),
                badge.clone().into(),
                one_line(&f.claim).into(),
                "".into(),
                "(no checks)".into(),
            ]);
        }
        for (i, c) in f.checks.iter().enumerate() {
            let first = i == 0;
            t.push(vec![
                if first { f.id.clone() } else { String::new() }.into(),
                if first { badge.clone() } else { String::new() }.into(),
                if first { one_line(&f.claim) } else { String::new() }.into(),
                c.kind.label().into(),
                one_line(&c.what).into(),
                crate::table::Cell::Num(c.measured),
                format!(
                    "{} {} ({})",
                    c.cmp.symbol(),
                    crate::table::fmt_num(c.threshold),
                    if c.passed() { "pass" } else { "fail" }
                )
                .into(),
                c.per_seed_text().into(),
            ]);
        }
    }
    t.to_markdown()
}
