//! `iclab reproduce --scale smoke` runs end to end and writes every file; a rerun reuses the
//! trained models and cached evaluations; and its bits are pinned: findings.csv, the tables, every
//! model's metrics.jsonl and final checkpoint equal the goldens under tests/fixtures/ (so a
//! refactor that changes a number fails here). Regenerate them, after a change that is meant to
//! change numbers, with `ICLAB_BLESS=1 cargo test -p iclab --test reproduce_smoke`.

use std::path::Path;
use std::process::Command;

fn run(out: &Path) -> std::process::Output {
    run_with(out, &[])
}

fn run_with(out: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(["--threads", "2", "reproduce", "--scale", "smoke", "--out"])
        .arg(out)
        .envs(envs.iter().copied())
        .output()
        .expect("running iclab");
    assert!(
        o.status.success(),
        "iclab reproduce failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn smoke_reproduce_writes_every_file_and_reuses_work() {
    let out = std::env::temp_dir().join(format!("iclab-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    run(&out);
    for f in [
        "report.html",
        "report.md",
        "findings.csv",
        "summary.json",
        "log.txt",
        "tables/models.csv",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(html.contains("<svg"), "report.html has inline SVG figures");
    assert!(!html.contains("http://") || !html.contains("<script"), "no scripts");
    // Every declared figure (SVG + PNG) and every experiment's tables exist and are linked.
    for p in iclab_experiments::Preset::builtins().unwrap() {
        for f in &p.figures {
            let name = match f {
                iclab_experiments::preset::FigureDecl::Curves { name, .. }
                | iclab_experiments::preset::FigureDecl::Cost { name, .. }
                | iclab_experiments::preset::FigureDecl::Distances { name, .. }
                | iclab_experiments::preset::FigureDecl::Sweep { name, .. }
                | iclab_experiments::preset::FigureDecl::Picture { name, .. } => name,
            };
            for ext in ["svg", "png"] {
                let path = out.join("figures").join(format!("{name}.{ext}"));
                assert!(
                    path.is_file() && path.metadata().unwrap().len() > 100,
                    "missing {}",
                    path.display()
                );
            }
            assert!(md.contains(&format!("figures/{name}.png")), "report.md links {name}");
        }
        for t in ["curves", "summary"] {
            let path = out.join("tables").join(format!("{}_{t}.csv", p.id));
            assert!(path.is_file(), "missing {}", path.display());
        }
        // The title as resolved at the scale (presets write `${var}`s in it).
        let title = p.plan("smoke", 1).unwrap().preset.title;
        assert!(html.contains(&title), "report.html has a section for {}: {title}", p.id);
    }
    for t in [
        "E1_selection_costs",
        "E3_distances",
        "E5_sweep_alpha",
        "E6_sweep_omega",
        "E4_picture",
    ] {
        assert!(out.join("tables").join(format!("{t}.csv")).is_file(), "missing {t}.csv");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["findings"].as_array().unwrap().len(), 7);
    // Experiments share models: one run per distinct training config (at smoke scale the preset
    // vars give E1-E7 11 distinct ones).
    let mut keys = std::collections::BTreeSet::new();
    for p in iclab_experiments::Preset::builtins().unwrap() {
        for m in &p.plan("smoke", 1).unwrap().models {
            keys.insert(iclab_experiments::runs::run_key(&m.config));
        }
    }
    assert_eq!(keys.len(), 11, "E1-E7 share 11 distinct models at smoke scale");
    assert_eq!(
        summary["models_trained"].as_u64().unwrap(),
        keys.len() as u64,
        "each distinct model is trained once"
    );

    check_goldens(&out);

    // The rerun trains nothing and computes no prediction again.
    let before = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    run(&out);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["models_trained"].as_u64().unwrap(), 0);
    assert_eq!(
        std::fs::read_to_string(out.join("findings.csv")).unwrap(),
        before,
        "same numbers on rerun"
    );
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(log.contains("0 computed"), "cached predictions are reused");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn smoke_bits_do_not_depend_on_the_simd_level() {
    if std::env::var_os("ICLAB_BLESS").is_some() {
        return;
    }
    let out = std::env::temp_dir().join(format!("iclab-smoke-baseline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    run_with(&out, &[("ICLAB_SIMD", "baseline")]);
    check_goldens(&out);
    let _ = std::fs::remove_dir_all(&out);
}

/// 64-bit FNV-1a, as 16 hex digits.
fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Every file of a smoke run whose bytes depend only on the computation (not timings), as
/// "<path> <digest>" lines, sorted.
fn digests(out: &Path) -> String {
    let mut files: Vec<std::path::PathBuf> = vec![out.join("findings.csv")];
    for e in std::fs::read_dir(out.join("tables")).unwrap() {
        let p = e.unwrap().path();
        // models.csv holds training seconds.
        if p.extension().is_some_and(|x| x == "csv") && !p.ends_with("models.csv") {
            files.push(p);
        }
    }
    for e in std::fs::read_dir(out.join("models")).unwrap() {
        let run = e.unwrap().path();
        files.push(run.join("metrics.jsonl"));
        for c in std::fs::read_dir(run.join("checkpoints")).unwrap() {
            files.push(c.unwrap().path());
        }
    }
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(out).unwrap().display().to_string();
            format!("{rel} {}", fnv(&std::fs::read(f).unwrap()))
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

fn check_goldens(out: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let golden_digests = fixtures.join("smoke-digests.txt");
    let golden_findings = fixtures.join("smoke-findings.csv");
    let findings = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    let now = digests(out);
    if std::env::var_os("ICLAB_BLESS").is_some() {
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(&golden_digests, &now).unwrap();
        std::fs::write(&golden_findings, &findings).unwrap();
        eprintln!("wrote {} and {}", golden_digests.display(), golden_findings.display());
        return;
    }
    let want = std::fs::read_to_string(&golden_digests).unwrap();
    assert_eq!(
        findings,
        std::fs::read_to_string(&golden_findings).unwrap(),
        "findings.csv differs from {}",
        golden_findings.display()
    );
    let differ: Vec<String> = want
        .lines()
        .zip(now.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("want {a}, got {b}"))
        .collect();
    assert!(
        differ.is_empty() && want.lines().count() == now.lines().count(),
        "the smoke run's bits changed ({} of {} files):\n{}",
        differ.len(),
        want.lines().count(),
        differ.join("\n")
    );
}
