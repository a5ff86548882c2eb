//! `iclab reproduce --scale smoke` runs end to end and writes every file; a rerun reuses the
//! trained models and cached evaluations.

use std::path::Path;
use std::process::Command;

fn run(out: &Path) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_iclab"))
        .args(["--threads", "2", "reproduce", "--scale", "smoke", "--out"])
        .arg(out)
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
            keys.insert(iclab_experiments::runs::run_key(
                &iclab_experiments::runs::train_config(m).unwrap(),
            ));
        }
    }
    assert_eq!(keys.len(), 11, "E1-E7 share 11 distinct models at smoke scale");
    assert_eq!(
        summary["models_trained"].as_u64().unwrap(),
        keys.len() as u64,
        "each distinct model is trained once"
    );

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
