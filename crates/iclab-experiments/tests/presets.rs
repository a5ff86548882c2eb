//! The built-in presets parse, resolve at every scale, and declare shared models identically.

use iclab_experiments::preset::{Preset, SCALES};

#[test]
fn every_builtin_preset_resolves_at_every_scale() {
    for p in Preset::builtins().unwrap() {
        for s in SCALES {
            let plan = p.plan(s, 2).unwrap_or_else(|e| panic!("{} at {s}: {e}", p.id));
            assert_eq!(plan.models.len(), 2 * p.models.len());
            assert!(!plan.evals.is_empty());
        }
    }
}

#[test]
fn bad_presets_are_refused_naming_the_field() {
    let good = iclab_experiments::preset::BUILTIN[0].1;
    let e = Preset::parse(
        "x.toml",
        &good.replace(
            "predictors = [\"mixture\", \"dense\"",
            "predictors = [\"mixtur\", \"dense\"",
        ),
    )
    .unwrap_err();
    assert!(e.field.contains("predictors") && e.value == "mixtur", "{e}");
    let e = Preset::parse("x.toml", &good.replace("[scales.laptop]", "[scales.laptop]\nbogus = 1")).unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let p = Preset::builtin("E1").unwrap();
    assert!(p.plan("huge", 1).unwrap_err().to_string().contains("smoke"));
    assert!(Preset::builtin("E9").is_err());
}
