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

/// A small preset whose second class and one label come from `vars`, overridden by one scale.
const WITH_VARS: &str = r#"
id = "V1"
title = "dense against ${second_name}"
question = "q"
finding = "f"
[vars]
second = { class = "sparse", nnz = 2 }
second_name = "sparse"
[scales.a]
d = 4
n = 8
n_layer = 1
n_head = 1
n_embd = 8
steps = 10
batch_size = 4
lr = 1e-3
eval_prompts = 4
[scales.b]
d = 4
n = 8
n_layer = 1
n_head = 1
n_embd = 8
steps = 10
batch_size = 4
lr = 1e-3
eval_prompts = 4
vars = { second = { class = "noisy_linear", noise_std = 2.0 }, second_name = "noisy" }
[[models]]
name = "$second_name"
task = "$second"
[[models]]
name = "mixture"
task = { class = "mixture", weights = [0.5, 0.5], classes = [{ class = "dense" }, "$second"] }
[[evals]]
name = "$second_name"
task = "$second"
predictors = ["mixture", "$second_name", "bayes:${second_name}"]
[[criteria]]
text = "on ${second_name} prompts"
left = { eval = "$second_name", error = "mixture" }
op = "<"
right = { value = 1.0 }
"#;

#[test]
fn scale_vars_restate_the_task_and_the_words() {
    let p = Preset::parse("v.toml", WITH_VARS).unwrap();
    // Without a scale of its own, the preset reads the top-level vars.
    assert_eq!(p.title, "dense against sparse");
    let a = p.plan("a", 1).unwrap();
    assert_eq!(a.models[0].name, "sparse");
    assert_eq!(a.models[0].config.task.name(), "sparse(nnz=2)");
    let b = p.plan("b", 1).unwrap();
    assert_eq!(b.preset.title, "dense against noisy");
    assert_eq!(b.models[0].name, "noisy");
    assert_eq!(b.models[0].config.task.name(), "noisy_linear(noise_std=2)");
    assert!(
        b.models[1].config.task.name().contains("noisy_linear"),
        "{}",
        b.models[1].config.task.name()
    );
    assert_eq!(b.evals[0].name, "noisy");
    assert_eq!(b.evals[0].predictors[2], "bayes:noisy");
    assert_eq!(b.preset.criteria[0].text, "on noisy prompts");
}

#[test]
fn unknown_and_cyclic_vars_are_refused_naming_the_field() {
    let e = Preset::parse(
        "v.toml",
        &WITH_VARS.replace("task = \"$second\"\n[[models]]", "task = \"$secnd\"\n[[models]]"),
    )
    .unwrap_err();
    assert!(e.field.contains("models[0].task") && e.value == "$secnd", "{e}");
    assert!(e.allowed.contains("$second"), "{e}");
    let e = Preset::parse(
        "v.toml",
        &WITH_VARS.replace("title = \"dense against ${second_name}\"", "title = \"${nope}\""),
    )
    .unwrap_err();
    assert!(e.field.contains("title") && e.value == "${nope}", "{e}");
    let cyclic = WITH_VARS.replace(
        "second_name = \"sparse\"\n",
        "second_name = \"sparse\"\nloop = \"$loop\"\n",
    );
    let e = Preset::parse("v.toml", &cyclic.replace("name = \"mixture\"", "name = \"$loop\"")).unwrap_err();
    assert!(e.allowed.contains("no cycles"), "{e}");
    let e = Preset::parse("v.toml", &WITH_VARS.replace("[vars]\n", "[vars]\nv = 1\n")).unwrap_err();
    assert!(e.value == "v", "{e}");
}

/// The scales of `id` as a TOML table, after `scales_from`.
fn scales_of(p: &Preset, scale: &str) -> iclab_experiments::preset::Scale {
    p.scales[scale].clone()
}

#[test]
fn scales_from_shares_the_scales_and_lays_differences_over_them() {
    let e1 = Preset::builtin("E1").unwrap();
    let e4 = Preset::builtin("E4").unwrap();
    for (id, base) in [("E2", &e1), ("E3", &e1), ("E7", &e1), ("E5", &e4), ("E6", &e4)] {
        let p = Preset::builtin(id).unwrap();
        for s in SCALES {
            let (mine, theirs) = (scales_of(&p, s), scales_of(base, s));
            // Sizes and training are shared exactly; vars only gain or replace entries.
            assert_eq!(
                (mine.d, mine.n, mine.n_layer, mine.steps, mine.lr),
                (theirs.d, theirs.n, theirs.n_layer, theirs.steps, theirs.lr),
                "{id} {s}"
            );
            for k in theirs.vars.keys() {
                assert!(mine.vars.contains_key(k), "{id} {s} lost var {k}");
            }
        }
    }
    // E2 adds one var at the laptop scale; E6 replaces E4's sinusoid whole (sigma 0.3, no merge).
    let e2 = Preset::builtin("E2").unwrap();
    assert_eq!(e2.scales["laptop"].vars["second_threshold"], toml::Value::Float(0.9));
    assert_eq!(
        e2.scales["laptop"].vars["second_name"],
        e1.scales["laptop"].vars["second_name"]
    );
    let e6 = Preset::builtin("E6").unwrap();
    let sigma = &e6.scales["laptop"].vars["sinusoid"]["frequency"]["sigma"];
    assert_eq!(*sigma, toml::Value::Float(0.3));
}

#[test]
fn scales_from_reads_the_folder_first_and_refuses_bad_ids() {
    let dir = std::env::temp_dir().join(format!("iclab-scales-from-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let builtin = |id: &str| {
        iclab_experiments::preset::BUILTIN
            .iter()
            .find(|(i, _)| *i == id)
            .unwrap()
            .1
    };
    // An edited E1.toml beside E2.toml: E2's laptop models follow the edit.
    let e1 = builtin("E1").replace("[scales.laptop]           # minutes per model on 2 CPU cores; the recipe's sweep: docs/findings.md\nd = 4\nn = 12\nn_layer = 4", "[scales.laptop]\nd = 4\nn = 12\nn_layer = 2");
    assert_ne!(e1, builtin("E1"), "the edit applies");
    std::fs::write(dir.join("E1.toml"), &e1).unwrap();
    std::fs::write(dir.join("E2.toml"), builtin("E2")).unwrap();
    let e2 = Preset::load(&dir.join("E2.toml")).unwrap();
    assert_eq!(e2.scales["laptop"].n_layer, 2);
    assert_eq!(Preset::builtin("E2").unwrap().scales["laptop"].n_layer, 4);
    // No such preset; one that itself shares scales; not a string.
    let e = Preset::parse(
        "x.toml",
        &builtin("E2").replace("scales_from = \"E1\"", "scales_from = \"E9\""),
    )
    .unwrap_err();
    assert!(
        e.field.contains("scales_from") && e.value == "E9" && e.allowed.contains("E1..E7"),
        "{e}"
    );
    let e = Preset::parse(
        "x.toml",
        &builtin("E2").replace("scales_from = \"E1\"", "scales_from = \"E5\""),
    )
    .unwrap_err();
    assert!(e.allowed.contains("without scales_from"), "{e}");
    let e = Preset::parse(
        "x.toml",
        &builtin("E2").replace("scales_from = \"E1\"", "scales_from = 1"),
    )
    .unwrap_err();
    assert!(e.field.contains("scales_from"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
