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
    assert_eq!(a.models[0].task.name(), "sparse(nnz=2)");
    let b = p.plan("b", 1).unwrap();
    assert_eq!(b.preset.title, "dense against noisy");
    assert_eq!(b.models[0].name, "noisy");
    assert_eq!(b.models[0].task.name(), "noisy_linear(noise_std=2)");
    assert!(
        b.models[1].task.name().contains("noisy_linear"),
        "{}",
        b.models[1].task.name()
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
