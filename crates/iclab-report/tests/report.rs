//! Reports: self-contained HTML with every figure inline, Markdown with the right tables, files on disk.

use std::path::PathBuf;

use iclab_core::metrics::{Curve, CurvePoint};
use iclab_report::png::parse_svg;
use iclab_report::{Cell, Check, Cmp, Figure, Finding, Panel, Report, Section, Series, Table};

fn curve(name: &str, n: usize) -> Curve {
    Curve {
        name: name.into(),
        points: (0..n)
            .map(|k| {
                let m = 1.0 / (1.0 + k as f64);
                CurvePoint {
                    k,
                    mean: m,
                    std: 0.1,
                    lo: 0.9 * m,
                    hi: 1.1 * m,
                }
            })
            .collect(),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iclab-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A report with 3 figures (two share a name), 2 tables, and findings: 1 pass, 1 fail, 1 info.
fn sample() -> Report {
    let curves = [curve("mixture model", 6), curve("least squares", 6)];
    Report::new("iclab <test> report")
        .intro("Intro with <html> & \"quotes\".")
        .section(
            Section::new("E1 model selection")
                .paragraph("First paragraph.\n\nSecond paragraph.")
                .figure(
                    Figure::new("e1", "E1")
                        .caption("a caption")
                        .panel(Panel::icl("on dense prompts", &curves))
                        .panel(Panel::icl("on sparse prompts", &curves)),
                )
                .table(Table::from_curves("e1_curves", &curves).caption("curves"))
                .findings(vec![
                    Finding::new("E1", "mixture matches the specialist")
                        .check(Check::new("gap at k = 4", 0.01, Cmp::Lt, 0.05))
                        .check(Check::new("ratio at k = 4", 0.2, Cmp::Le, 0.5)),
                    Finding::new("E2", "a | claim that fails").check(Check::new("gap", 0.3, Cmp::Lt, 0.05)),
                ]),
        )
        .section(
            Section::new("E6 frequencies")
                .figure(
                    Figure::new("e1", "same name").panel(Panel::new("p").x_log().series(Series::line(
                        "s",
                        vec![0.1, 1.0, 10.0],
                        vec![1.0, 0.1, 1.0],
                    ))),
                )
                .figure(Figure::new("findings", "reserved name?").panel(Panel::new("q")))
                .table(
                    Table::new("findings", &["a", "b"])
                        .row(vec!["x|y".into(), 1.5.into()])
                        .row(vec![Cell::Empty, 2usize.into()]),
                )
                .code("iclab reproduce --only E6")
                .findings(vec![Finding::new("E7", "reported either way")
                    .check(Check::new("m", 2.0, Cmp::Gt, 3.0))
                    .informational()]),
        )
}

#[test]
fn html_is_self_contained_with_every_figure_inline() {
    let html = sample().to_html();
    assert_eq!(html.matches("<svg ").count(), 3);
    assert_eq!(html.matches("</svg>").count(), 3);
    // Every inline SVG is well-formed on its own.
    for part in html.split("<svg ").skip(1) {
        let svg = format!("<svg {}</svg>", &part[..part.find("</svg>").unwrap()]);
        parse_svg(&svg).unwrap();
    }
    // No external resource (the SVG namespace URI is a name, not a fetch) and no script.
    let lower = html.to_lowercase();
    for bad in ["src=", "href=\"http", "url(http", "@import", "<script", "<link", "<img"] {
        assert!(!lower.contains(bad), "found {bad}");
    }
    // Element ids are unique even though two figures share a name.
    let ids: Vec<&str> = html
        .split(" id=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    // Text is escaped; findings show badges.
    assert!(html.contains("iclab &lt;test&gt; report") && !html.contains("<test>"));
    // Each finding's badge three times: in the headlines, in the summary at the top and in its
    // section; the headlines come first.
    assert_eq!(html.matches("<span class=\"badge PASS\">").count(), 3);
    assert_eq!(html.matches("<span class=\"badge FAIL\">").count(), 3);
    assert_eq!(html.matches("<span class=\"badge INFO\">").count(), 3);
    assert!(html.contains("1 passed, 1 failed, 0 untestable"));
    let headlines = html.find("<ul class=\"headlines\">").expect("headlines");
    assert!(headlines < html.find("id=\"findings\"").unwrap());
}

#[test]
fn markdown_tables_have_the_right_columns() {
    let md = sample().to_markdown();
    // Every Markdown table row has as many cells as its header (escaped pipes do not count).
    let mut tables = 0;
    let lines: Vec<&str> = md.lines().collect();
    let cells = |l: &str| l.replace("\\|", "").matches('|').count() - 1;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') {
            let n = cells(lines[i]);
            assert!(lines[i + 1].contains("---"), "rule under the header");
            while i < lines.len() && lines[i].starts_with('|') {
                assert_eq!(cells(lines[i]), n, "{}", lines[i]);
                i += 1;
            }
            tables += 1;
        }
        i += 1;
    }
    // Summary findings, E1 curves, section findings x2, the 'findings' table.
    assert_eq!(tables, 5);
    assert!(md.contains("| k | mixture model mean | mixture model lo | mixture model hi | least squares mean |"));
    assert!(md.contains("| x\\|y | 1.5 |"));
    // Figures by relative path, PNG shown and SVG linked, duplicate names made unique.
    for stem in ["e1", "e1_2", "findings"] {
        assert!(md.contains(&format!("(figures/{stem}.png)")), "{stem}");
        assert!(md.contains(&format!("(figures/{stem}.svg)")), "{stem}");
    }
    assert!(md.contains("(tables/e1_curves.csv)") && md.contains("(tables/findings_2.csv)"));
    assert!(md.contains("**PASS**") && md.contains("**FAIL**") && md.contains("**INFO**"));
}

#[test]
fn write_puts_every_file_on_disk() {
    let dir = temp_dir("write");
    let files = sample().write(&dir).unwrap();
    assert!(files.html.exists() && files.markdown.exists());
    let names: Vec<String> = files
        .figures
        .iter()
        .chain(&files.tables)
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "figures/e1.svg",
            "figures/e1.png",
            "figures/e1_2.svg",
            "figures/e1_2.png",
            "figures/findings.svg",
            "figures/findings.png",
            "tables/e1_curves.csv",
            "tables/findings_2.csv",
            "tables/findings.csv",
        ]
    );
    for p in files.figures.iter().chain(&files.tables) {
        assert!(std::fs::metadata(p).unwrap().len() > 10, "{}", p.display());
    }
    // The findings CSV has one row per check (2 + 1 + 1) and full-precision numbers.
    let csv = std::fs::read_to_string(dir.join("tables/findings.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("finding,verdict,kind,check,measured,criterion,threshold,check result,per seed\n"));
    assert!(csv.contains("E2,FAIL,finding,gap,0.3,<,0.05,fail,"));
    let curves = std::fs::read_to_string(dir.join("tables/e1_curves.csv")).unwrap();
    assert_eq!(curves.lines().nth(2).unwrap(), "1,0.5,0.45,0.55,0.5,0.45,0.55");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_sections_findings_sit_beside_its_first_figure() {
    let html = sample().to_html();
    // Both sections have a figure and findings: each opens one side-by-side block whose figure
    // comes first and whose findings table follows inside it, once.
    assert_eq!(html.matches("<div class=\"beside\">").count(), 2);
    for block in html.split("<div class=\"beside\">").skip(1) {
        let fig = block.find("<figure").unwrap();
        let table = block.find("<div class=\"finding\">").unwrap();
        assert!(fig < table);
    }
    let e1 = &html[html.find("E1 model selection</h2>").unwrap()..html.find("E6 frequencies</h2>").unwrap()];
    assert_eq!(e1.matches("<div class=\"finding\">").count(), 1);
    assert_eq!(
        e1.matches("gap at k = 4").count(),
        1,
        "the findings table is drawn once per section"
    );
}
