//! Experiment presets: one TOML file per experiment of docs/study.md (E1-E7), in `presets/` at the
//! repo root and built into the binary. A preset names the models to pretrain, the prompt sets to
//! evaluate them on (beside baselines), the figures, and the finding's numeric criteria; its
//! `[scales.*]` tables hold everything that changes between the smoke, laptop and paper scales.
//!
//! [`Preset::plan`] resolves a preset at one scale into a [`Plan`]: concrete model recipes and
//! evaluation sets. Models are identified by their resolved training config (see `runs.rs`), so two
//! presets that declare the same model at the same scale share one trained run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use iclab_core::{ClassSpec, ConfigError, Curriculum, PromptStrategy};
use iclab_model::train::TrainConfig;
use iclab_model::ModelConfig;

use crate::expr::IntExpr;

/// The built-in presets (the files of `presets/`), in report order.
pub const BUILTIN: [(&str, &str); 7] = [
    ("E1", include_str!("../../../presets/E1.toml")),
    ("E2", include_str!("../../../presets/E2.toml")),
    ("E3", include_str!("../../../presets/E3.toml")),
    ("E4", include_str!("../../../presets/E4.toml")),
    ("E5", include_str!("../../../presets/E5.toml")),
    ("E6", include_str!("../../../presets/E6.toml")),
    ("E7", include_str!("../../../presets/E7.toml")),
];

/// The scales every built-in preset defines.
pub const SCALES: [&str; 3] = ["smoke", "laptop", "paper"];

/// One experiment (a TOML file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Short id, e.g. "E1"; used for output folders and `--only`.
    pub id: String,
    pub title: String,
    /// What the experiment asks (a paragraph of the report).
    pub question: String,
    /// The claim its criteria test.
    pub finding: String,
    /// Reported either way (E7): the finding shows INFO instead of counting as a failure.
    #[serde(default)]
    pub report_only: bool,
    /// Values every scale substitutes into the preset (see [`Scale::vars`]): a string "$name" is
    /// replaced by the value, "${name}" inside a string by the value's text.
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    pub scales: BTreeMap<String, Scale>,
    pub models: Vec<ModelDecl>,
    pub evals: Vec<EvalDecl>,
    #[serde(default)]
    pub figures: Vec<FigureDecl>,
    pub criteria: Vec<Criterion>,
    /// The file as parsed, before substitution: a scale with its own `vars` re-reads it.
    #[serde(skip)]
    raw: Option<toml::Table>,
}

/// Seed of the evaluation prompts when a preset (or a sweep grid) names none.
pub const DEFAULT_EVAL_SEED: u64 = 1_000_003;

fn default_eval_seed() -> u64 {
    DEFAULT_EVAL_SEED
}

/// Everything that changes with the scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Input dimension of every model and prompt of the experiment.
    pub d: usize,
    /// Points per prompt (k = 0..n-1 in-context examples before the query).
    pub n: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub steps: u64,
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    #[serde(default)]
    pub warmup_steps: u64,
    /// The study's curriculum (docs/study.md, "Curriculum"): active dimension 5 -> d (+1) and
    /// points 11 -> n (+2) every this many steps; 0 = no curriculum.
    #[serde(default)]
    pub curriculum_interval: usize,
    /// First active dimension of the curriculum (default the study's 5, at most d). Small models
    /// leave the loss plateau of in-context regression much sooner when they start in few
    /// dimensions (Garg et al.'s reason for the curriculum).
    #[serde(default)]
    pub curriculum_dims_start: Option<usize>,
    /// First number of points of the curriculum (default the study's 11, at most n).
    #[serde(default)]
    pub curriculum_points_start: Option<usize>,
    /// Evaluation prompts per prompt set (the study's: 1,280).
    pub eval_prompts: usize,
    #[serde(default = "default_eval_seed")]
    pub eval_seed: u64,
    /// First training seed (seed i of `--seeds N` is train_seed + i).
    #[serde(default)]
    pub train_seed: u64,
    /// Sweep values at this scale, overriding an eval's `sweep` (e.g. nnz values that fit in d).
    #[serde(default)]
    pub sweeps: BTreeMap<String, Vec<toml::Value>>,
    /// `--set`-style overrides of every model's training config (e.g. "optimizer.grad_clip=1.0").
    #[serde(default)]
    pub train_set: Vec<String>,
    /// Overrides of the preset's `vars` at this scale: how a scale restates the task (e.g. the
    /// second class of a mixture) while the preset keeps one set of models, evals and criteria.
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
}

/// A model to pretrain: a name local to the experiment and its task distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDecl {
    pub name: String,
    /// Legend label (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    pub task: ClassSpec,
    /// Extra `--set`-style overrides of this model's training config.
    #[serde(default)]
    pub train_set: Vec<String>,
}

/// A prompt set and the predictors evaluated on it. With `sweep`, one prompt set per value, named
/// `<name>=<value>`, with every string "$v" in `task` replaced by the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalDecl {
    pub name: String,
    /// The test class (a ClassSpec; "$v" placeholders with `sweep`).
    pub task: toml::Value,
    #[serde(default)]
    pub inputs: PromptStrategy,
    /// Model names of this preset and baseline names (see `baselines.rs`).
    pub predictors: Vec<String>,
    #[serde(default)]
    pub sweep: Option<Vec<toml::Value>>,
    /// Selection cost (docs/study.md, "Baselines": mixture model's error minus the specialist's,
    /// per k): pairs
    /// [model, specialist] reported as curves and CSV.
    #[serde(default)]
    pub costs: Vec<[String; 2]>,
    /// Distances between predictions (E3): pairs [a, b], mean over prompts of (a - b)^2 / E[y^2].
    #[serde(default)]
    pub distances: Vec<[String; 2]>,
}

/// A figure of the experiment's section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FigureDecl {
    /// ICL curves (error vs k with bands, dashed line at 1): one panel per eval.
    Curves {
        name: String,
        title: String,
        evals: Vec<String>,
        /// Default: every predictor of the eval.
        #[serde(default)]
        predictors: Option<Vec<String>>,
    },
    /// Selection cost vs k: one panel per eval, its `costs` pairs.
    Cost {
        name: String,
        title: String,
        evals: Vec<String>,
    },
    /// Distances vs k: one panel per expanded eval of the sweep `eval` (its `distances` pairs).
    Distances { name: String, title: String, eval: String },
    /// Error against the swept value of `eval`, one line per (predictor, k).
    Sweep {
        name: String,
        title: String,
        eval: String,
        x_label: String,
        predictors: Vec<String>,
        ks: Vec<IntExpr>,
        #[serde(default)]
        log_x: bool,
    },
    /// For d = 1: context points, the true function and the predictors' curves over x after k
    /// examples, for prompt `prompt` of each listed eval (one panel per eval and k).
    Picture {
        name: String,
        title: String,
        evals: Vec<String>,
        predictors: Vec<String>,
        ks: Vec<IntExpr>,
        #[serde(default)]
        prompt: usize,
    },
}

/// `k = 3`, `k = "d"` or `k = [3, "d - 1"]` (inclusive range).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KSpec {
    One(IntExpr),
    Range(Vec<IntExpr>),
}

/// How a range of k is reduced to one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    #[default]
    Mean,
    Max,
    Min,
}

/// A number measured from the evaluation (exactly one of `error`, `cost`, `distance`,
/// `first_k_below`, `value`), then `times * x + plus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Quantity {
    /// Prompt set (expanded name for sweeps, e.g. "alpha=0.5").
    #[serde(default)]
    pub eval: Option<String>,
    /// Normalised squared error of this predictor.
    #[serde(default)]
    pub error: Option<String>,
    /// error(a) - error(b) per k (selection cost when b is the specialist).
    #[serde(default)]
    pub cost: Option<[String; 2]>,
    /// Mean squared difference of the predictions of a and b, normalised by E[y^2].
    #[serde(default)]
    pub distance: Option<[String; 2]>,
    /// Sample complexity: the first k in range whose error is below `threshold` (n if none).
    #[serde(default)]
    pub first_k_below: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    /// A constant.
    #[serde(default)]
    pub value: Option<f64>,
    /// Default: every k.
    #[serde(default)]
    pub k: Option<KSpec>,
    #[serde(default)]
    pub agg: Agg,
    #[serde(default)]
    pub times: Option<f64>,
    #[serde(default)]
    pub plus: Option<f64>,
}

/// Comparison operator of a criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn symbol(&self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    /// False whenever either side is NaN.
    pub fn holds(&self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// One numeric check of the finding: `left op right`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// What it checks, in words.
    pub text: String,
    pub left: Quantity,
    pub op: Op,
    pub right: Quantity,
    /// "finding" (default) or "power": a power check shows that the comparison can come out
    /// either way at this scale; when one fails, the finding is untestable, not held.
    #[serde(default, skip_serializing_if = "CriterionKind::is_finding")]
    pub kind: CriterionKind,
}

/// What a criterion is for (see [`Criterion::kind`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionKind {
    #[default]
    Finding,
    Power,
}

impl CriterionKind {
    fn is_finding(&self) -> bool {
        *self == CriterionKind::Finding
    }
    /// As findings.csv and summary.json write it.
    pub fn label(&self) -> &'static str {
        match self {
            CriterionKind::Finding => "finding",
            CriterionKind::Power => "power",
        }
    }
}

/// A model recipe at one scale and training seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    pub name: String,
    pub label: String,
    /// Training seed index (0..seeds).
    pub seed_index: usize,
    /// Everything that trains it (its run key is `runs::run_key(&config)`): TrainConfig's
    /// defaults, the scale's sizes and training, then the scale's and the model's `train_set`.
    pub config: TrainConfig,
}

/// A resolved prompt set.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalPlan {
    /// `<name>` or `<name>=<value>` for sweeps.
    pub name: String,
    /// The declaring eval's name and the swept value (for sweeps).
    pub group: String,
    pub sweep_value: Option<f64>,
    pub task: ClassSpec,
    pub inputs: PromptStrategy,
    pub d: usize,
    pub n: usize,
    pub prompts: usize,
    pub seed: u64,
    pub predictors: Vec<String>,
    pub costs: Vec<[String; 2]>,
    pub distances: Vec<[String; 2]>,
}

impl EvalPlan {
    /// What a baseline is built for.
    pub fn target(&self) -> crate::baselines::Target<'_> {
        crate::baselines::Target {
            name: &self.name,
            task: &self.task,
            d: self.d,
            inputs: &self.inputs,
        }
    }
}

/// The pretraining task of model `name` among `models`.
pub fn models_task<'m>(models: &'m [ModelDecl], name: &str) -> Option<&'m ClassSpec> {
    models.iter().find(|m| m.name == name).map(|m| &m.task)
}

/// A preset resolved at one scale.
#[derive(Clone, Debug)]
pub struct Plan {
    pub preset: Preset,
    pub scale_name: String,
    pub scale: Scale,
    pub seeds: usize,
    /// Every model at every seed (seed-major within a model).
    pub models: Vec<ModelPlan>,
    pub evals: Vec<EvalPlan>,
}

impl Plan {
    pub fn d(&self) -> usize {
        self.scale.d
    }
    pub fn n(&self) -> usize {
        self.scale.n
    }
    /// Model names of the preset, in declaration order.
    pub fn model_names(&self) -> Vec<String> {
        self.preset.models.iter().map(|m| m.name.clone()).collect()
    }
    pub fn is_model(&self, name: &str) -> bool {
        self.preset.models.iter().any(|m| m.name == name)
    }
    /// Legend label of a predictor.
    pub fn label(&self, predictor: &str) -> String {
        self.preset
            .models
            .iter()
            .find(|m| m.name == predictor)
            .map(|m| m.label.clone().unwrap_or_else(|| format!("{} model", m.name)))
            .unwrap_or_else(|| crate::baselines::label(predictor))
    }
    /// Baseline `name` (see `baselines.rs`) for prompt set `e`; `bayes:<model>` reads that
    /// model's pretraining task.
    pub fn baseline(&self, name: &str, e: &EvalPlan) -> anyhow::Result<crate::baselines::Made> {
        crate::baselines::make_with(name, |m| models_task(&self.preset.models, m), &e.target())
    }
    pub fn eval(&self, name: &str) -> Option<&EvalPlan> {
        self.evals.iter().find(|e| e.name == name)
    }
    /// The expanded evals of a declared eval (one, or one per sweep value), in order.
    pub fn group(&self, group: &str) -> Vec<&EvalPlan> {
        self.evals.iter().filter(|e| e.group == group).collect()
    }
}

/// Display of a sweep value: integers without a fraction ("3"), other numbers as Rust prints
/// them ("0.5", "2.8").
pub fn fmt_value(v: f64) -> String {
    format!("{v}")
}

fn value_as_f64(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Replaces every string "$v" inside `t` by `v`.
fn substitute(t: &toml::Value, v: &toml::Value) -> toml::Value {
    match t {
        toml::Value::String(s) if s == "$v" => v.clone(),
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(|x| substitute(x, v)).collect()),
        toml::Value::Table(tb) => toml::Value::Table(tb.iter().map(|(k, x)| (k.clone(), substitute(x, v))).collect()),
        other => other.clone(),
    }
}

/// Replaces, everywhere in `t`, a string "$name" by `vars[name]` and "${name}" inside a string by
/// the value's text; "$v" is left for sweeps. `at` names the position in errors.
fn substitute_vars(
    t: &toml::Value,
    vars: &BTreeMap<String, toml::Value>,
    at: &str,
    depth: usize,
) -> Result<toml::Value, ConfigError> {
    let known = || {
        let mut names: Vec<String> = vars.keys().map(|k| format!("${k}")).collect();
        names.push("$v (a sweep value)".into());
        format!("a variable of the preset's [vars] or the scale's: {}", names.join(", "))
    };
    Ok(match t {
        toml::Value::String(s) if s.starts_with('$') && !s.starts_with("${") && s != "$v" => {
            let value = vars.get(&s[1..]).ok_or_else(|| ConfigError::new(at, s, known()))?;
            // A variable's value may name others (a convex class of "$sinusoid"); a cycle would
            // recurse forever, so the nesting is bounded.
            if depth >= 8 {
                return Err(ConfigError::new(at, s, "variables nested at most 8 deep (no cycles)"));
            }
            substitute_vars(value, vars, at, depth + 1)?
        }
        toml::Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..]
                    .find('}')
                    .ok_or_else(|| ConfigError::new(at, s, "\"${name}\" closed by '}'"))?;
                let name = &rest[i + 2..i + end];
                match vars.get(name) {
                    Some(toml::Value::String(v)) => out.push_str(v),
                    Some(v) => out.push_str(&v.to_string()),
                    None => return Err(ConfigError::new(at, format!("${{{name}}}"), known())),
                }
                rest = &rest[i + end + 1..];
            }
            out.push_str(rest);
            toml::Value::String(out)
        }
        toml::Value::Array(a) => toml::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| substitute_vars(x, vars, &format!("{at}[{i}]"), depth))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(tb) => toml::Value::Table(
            tb.iter()
                .map(|(k, x)| Ok((k.clone(), substitute_vars(x, vars, &format!("{at}.{k}"), depth)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        other => other.clone(),
    })
}

fn raw_table(source: &str, text: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| {
        ConfigError::new(
            source,
            e.to_string().trim(),
            "a preset as documented in presets/README.md",
        )
    })
}

/// The text of the preset whose scales `scales_from = "id"` names: `dir/id.toml` if there is one,
/// else the built-in preset.
fn scales_source(id: &str, dir: Option<&Path>) -> Result<(String, String), ConfigError> {
    if let Some(path) = dir.map(|d| d.join(format!("{id}.toml"))).filter(|p| p.is_file()) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                "scales_from",
                id,
                format!("a readable preset ({}: {e})", path.display()),
            )
        })?;
        return Ok((path.display().to_string(), text));
    }
    BUILTIN
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(i, text)| (format!("presets/{i}.toml"), text.to_string()))
        .ok_or_else(|| {
            ConfigError::new(
                "scales_from",
                id,
                "a built-in preset id (E1..E7) or the id of a preset file in the same folder",
            )
        })
}

/// Lays a preset's own `[scales.*]` over the ones it shares: per scale, each field replaces the
/// shared one, except `vars` and `sweeps`, whose entries are laid over the shared entries one by
/// one (a value is replaced whole, never merged inside).
fn merge_scales(shared: &mut toml::Table, own: toml::Table) {
    for (name, scale) in own {
        match (shared.get_mut(&name), scale) {
            (Some(toml::Value::Table(base)), toml::Value::Table(fields)) => {
                for (field, v) in fields {
                    match (base.get_mut(&field), v) {
                        (Some(toml::Value::Table(entries)), toml::Value::Table(over))
                            if field == "vars" || field == "sweeps" =>
                        {
                            entries.extend(over);
                        }
                        (_, v) => {
                            base.insert(field, v);
                        }
                    }
                }
            }
            (_, scale) => {
                shared.insert(name, scale);
            }
        }
    }
}

/// The training config of one model at `scale`: TrainConfig's defaults, the scale's sizes and
/// training, then `train_set` overrides. Checkpoints every tenth of the run (at least 100 steps)
/// and logs the loss every 10 steps.
fn model_config(
    scale: &Scale,
    task: &ClassSpec,
    seed: u64,
    curriculum: Curriculum,
    train_set: &[String],
) -> Result<TrainConfig, ConfigError> {
    let mut cfg = TrainConfig {
        name: crate::hash::run_name(task, seed),
        seed,
        steps: scale.steps,
        batch_size: scale.batch_size,
        checkpoint_every: (scale.steps / 10).max(100),
        keep_every: 0,
        log_every: 10,
        eval_every: (scale.steps / 10).max(1),
        model: ModelConfig {
            d: scale.d,
            n_points: scale.n,
            n_layer: scale.n_layer,
            n_head: scale.n_head,
            n_embd: scale.n_embd,
            tokens: Default::default(),
        },
        task: task.clone(),
        inputs: PromptStrategy::Isotropic,
        curriculum,
        ..TrainConfig::default()
    };
    cfg.optimizer.lr = scale.lr;
    cfg.optimizer.warmup_steps = scale.warmup_steps;
    let cfg = iclab_core::config::resolve(&cfg, None, train_set)?;
    cfg.validate()?;
    Ok(cfg)
}

impl Preset {
    /// Parses and validates a preset; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Preset, ConfigError> {
        Preset::parse_in(source, text, None)
    }

    /// [`Preset::parse`], with `scales_from = "ID"` read from `dir/ID.toml` when `dir` holds one,
    /// else from the built-in preset ID.
    fn parse_in(source: &str, text: &str, dir: Option<&Path>) -> Result<Preset, ConfigError> {
        let mut raw = raw_table(source, text)?;
        if let Some(from) = raw.remove("scales_from") {
            let id = from
                .as_str()
                .ok_or_else(|| ConfigError::new(format!("{source}.scales_from"), &from, "a preset id, e.g. \"E1\""))?;
            let (base_source, base_text) = scales_source(id, dir).map_err(|e| e.within(source))?;
            let base = raw_table(&base_source, &base_text)?;
            if base.contains_key("scales_from") {
                return Err(ConfigError::new(
                    format!("{source}.scales_from"),
                    id,
                    "a preset that defines its own scales (one without scales_from)",
                ));
            }
            let mut scales = match base.get("scales") {
                Some(toml::Value::Table(t)) => t.clone(),
                _ => toml::Table::new(),
            };
            match raw.remove("scales") {
                None => {}
                Some(toml::Value::Table(own)) => merge_scales(&mut scales, own),
                Some(other) => return Err(ConfigError::new(format!("{source}.scales"), other, "a table of scales")),
            }
            raw.insert("scales".to_string(), toml::Value::Table(scales));
        }
        Preset::from_raw(source, raw, None)
    }

    /// The preset with the top-level `vars`, overridden by scale `scale`'s (when given),
    /// substituted into everything but the `vars` tables themselves.
    fn from_raw(source: &str, raw: toml::Table, scale: Option<&str>) -> Result<Preset, ConfigError> {
        let table_of = |v: Option<&toml::Value>, field: &str| -> Result<BTreeMap<String, toml::Value>, ConfigError> {
            match v {
                None => Ok(BTreeMap::new()),
                Some(toml::Value::Table(t)) => Ok(t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                Some(other) => Err(ConfigError::new(field, other, "a table of name = value")),
            }
        };
        let mut vars = table_of(raw.get("vars"), "vars").map_err(|e| e.within(source))?;
        if let Some(name) = scale {
            let scale_vars = raw.get("scales").and_then(|s| s.get(name)).and_then(|s| s.get("vars"));
            vars.extend(table_of(scale_vars, &format!("scales.{name}.vars")).map_err(|e| e.within(source))?);
        }
        if vars.contains_key("v") {
            return Err(ConfigError::new(
                format!("{source}.vars"),
                "v",
                "any name but v (\"$v\" is a sweep's value)",
            ));
        }
        let mut substituted = toml::Table::new();
        for (k, v) in &raw {
            let v = if k == "vars" || k == "scales" {
                v.clone()
            } else {
                substitute_vars(v, &vars, k, 0).map_err(|e| e.within(source))?
            };
            substituted.insert(k.clone(), v);
        }
        let mut preset = Preset::deserialize(toml::Value::Table(substituted)).map_err(|e| {
            ConfigError::new(
                source,
                e.to_string().trim(),
                "a preset as documented in presets/README.md",
            )
        })?;
        preset.validate().map_err(|e| e.within(source))?;
        preset.raw = Some(raw);
        Ok(preset)
    }

    /// Reads a preset file (its `scales_from` from the same folder, else built in).
    pub fn load(path: &Path) -> anyhow::Result<Preset> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Ok(Preset::parse_in(&path.display().to_string(), &text, path.parent())?)
    }

    /// The built-in preset `id` ("E1".."E7").
    pub fn builtin(id: &str) -> Result<Preset, ConfigError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(i, _)| i.eq_ignore_ascii_case(id))
            .ok_or_else(|| ConfigError::new("experiment", id, "one of E1, E2, E3, E4, E5, E6, E7"))?;
        Preset::parse(&format!("presets/{}.toml", id.to_uppercase()), text)
    }

    /// Every built-in preset, in order.
    pub fn builtins() -> Result<Vec<Preset>, ConfigError> {
        BUILTIN.iter().map(|(id, _)| Preset::builtin(id)).collect()
    }

    /// Structural checks that do not depend on the scale (names exist and are unique).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.scales.is_empty() {
            return Err(ConfigError::new(
                "scales",
                "{}",
                "at least one scale, e.g. [scales.laptop]",
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, m) in self.models.iter().enumerate() {
            if names.contains(&m.name.as_str()) || crate::baselines::is_baseline(&m.name) {
                return Err(ConfigError::new(
                    format!("models[{i}].name"),
                    &m.name,
                    "a name not used by another model or a baseline",
                ));
            }
            names.push(&m.name);
        }
        let mut eval_names: Vec<String> = Vec::new();
        for (i, e) in self.evals.iter().enumerate() {
            let field = format!("evals[{i}]");
            if eval_names.contains(&e.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    &e.name,
                    "a name not used by another eval",
                ));
            }
            eval_names.push(e.name.clone());
            for p in &e.predictors {
                if !names.contains(&p.as_str()) && !crate::baselines::is_baseline(p) {
                    return Err(ConfigError::new(
                        format!("{field}.predictors"),
                        p,
                        format!(
                            "a model of this preset ({}) or a baseline ({})",
                            names.join(", "),
                            crate::baselines::NAMES.join(", ")
                        ),
                    ));
                }
            }
            for pair in e.costs.iter().chain(&e.distances) {
                for p in pair {
                    if !e.predictors.contains(p) {
                        return Err(ConfigError::new(
                            format!("{field}.costs/distances"),
                            p,
                            format!("one of the eval's predictors ({})", e.predictors.join(", ")),
                        ));
                    }
                }
            }
        }
        for (i, c) in self.criteria.iter().enumerate() {
            for (side, q) in [("left", &c.left), ("right", &c.right)] {
                let field = format!("criteria[{i}].{side}");
                let kinds = [
                    q.error.is_some(),
                    q.cost.is_some(),
                    q.distance.is_some(),
                    q.first_k_below.is_some(),
                    q.value.is_some(),
                ];
                if kinds.iter().filter(|b| **b).count() != 1 {
                    return Err(ConfigError::new(
                        field,
                        format!("{q:?}"),
                        "exactly one of error, cost, distance, first_k_below, value",
                    ));
                }
                if q.value.is_none() && q.eval.is_none() {
                    return Err(ConfigError::new(
                        format!("{field}.eval"),
                        "(missing)",
                        "the name of an eval",
                    ));
                }
                if q.first_k_below.is_some() && q.threshold.is_none() {
                    return Err(ConfigError::new(
                        format!("{field}.threshold"),
                        "(missing)",
                        "a number (first_k_below needs a threshold)",
                    ));
                }
                if let Some(KSpec::Range(r)) = &q.k {
                    if r.len() != 2 {
                        return Err(ConfigError::new(
                            format!("{field}.k"),
                            format!("{r:?}"),
                            "an integer, an expression, or [from, to]",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Resolves the preset at scale `scale_name` with `seeds` training seeds.
    pub fn plan(&self, scale_name: &str, seeds: usize) -> Result<Plan, ConfigError> {
        match (&self.raw, self.scales.get(scale_name)) {
            (Some(raw), Some(scale)) if !scale.vars.is_empty() => {
                Preset::from_raw(&format!("presets/{}.toml", self.id), raw.clone(), Some(scale_name))?
                    .plan_substituted(scale_name, seeds)
            }
            _ => self.plan_substituted(scale_name, seeds),
        }
    }

    /// [`Preset::plan`] once the scale's `vars` are in.
    fn plan_substituted(&self, scale_name: &str, seeds: usize) -> Result<Plan, ConfigError> {
        let scale = self.scales.get(scale_name).ok_or_else(|| {
            ConfigError::new(
                format!("{}.scale", self.id),
                scale_name,
                format!("one of {}", self.scales.keys().cloned().collect::<Vec<_>>().join(", ")),
            )
        })?;
        let field = format!("{}.scales.{scale_name}", self.id);
        if seeds < 1 {
            return Err(ConfigError::new("seeds", seeds, "an integer >= 1"));
        }
        if scale.d < 1 {
            return Err(ConfigError::new(format!("{field}.d"), scale.d, "an integer >= 1"));
        }
        if scale.n < 2 {
            return Err(ConfigError::new(format!("{field}.n"), scale.n, "an integer >= 2"));
        }
        if scale.eval_prompts < 2 {
            return Err(ConfigError::new(
                format!("{field}.eval_prompts"),
                scale.eval_prompts,
                "an integer >= 2",
            ));
        }
        let curriculum = if scale.curriculum_interval == 0 {
            Curriculum::fixed(scale.d, scale.n)
        } else {
            let mut c = Curriculum::spec(scale.d, scale.n, scale.curriculum_interval);
            if let Some(s) = scale.curriculum_dims_start {
                c.dims.start = s.clamp(1, scale.d);
            }
            if let Some(s) = scale.curriculum_points_start {
                c.points.start = s.clamp(1, scale.n);
            }
            c
        };
        let mut models = Vec::new();
        for m in &self.models {
            m.task
                .validate(scale.d)
                .map_err(|e| e.within(&format!("{}.models.{}.task", self.id, m.name)))?;
            for s in 0..seeds {
                let seed = scale.train_seed + s as u64;
                let train_set: Vec<String> = scale.train_set.iter().chain(&m.train_set).cloned().collect();
                let config = model_config(scale, &m.task, seed, curriculum, &train_set)
                    .map_err(|e| e.within(&format!("{}.models.{}", self.id, m.name)))?;
                models.push(ModelPlan {
                    name: m.name.clone(),
                    label: m.label.clone().unwrap_or_else(|| format!("{} model", m.name)),
                    seed_index: s,
                    config,
                });
            }
        }
        let mut evals = Vec::new();
        for e in &self.evals {
            let field = format!("{}.evals.{}", self.id, e.name);
            let values: Option<&Vec<toml::Value>> = scale.sweeps.get(&e.name).or(e.sweep.as_ref());
            let instances: Vec<(String, Option<f64>, toml::Value)> = match values {
                None => vec![(e.name.clone(), None, e.task.clone())],
                Some(vs) => {
                    let mut out = Vec::new();
                    for v in vs {
                        let x = value_as_f64(v).ok_or_else(|| {
                            ConfigError::new(format!("{field}.sweep"), v, "numbers (integers or floats)")
                        })?;
                        out.push((format!("{}={}", e.name, fmt_value(x)), Some(x), substitute(&e.task, v)));
                    }
                    out
                }
            };
            for (name, sweep_value, task) in instances {
                let task = ClassSpec::deserialize(task).map_err(|err| {
                    ConfigError::new(
                        format!("{field}.task"),
                        err.to_string().trim(),
                        "a class as listed by `iclab classes`",
                    )
                })?;
                task.validate(scale.d)
                    .map_err(|err| err.within(&format!("{field}.task")))?;
                evals.push(EvalPlan {
                    name,
                    group: e.name.clone(),
                    sweep_value,
                    task,
                    inputs: e.inputs.clone(),
                    d: scale.d,
                    n: scale.n,
                    prompts: scale.eval_prompts,
                    seed: scale.eval_seed,
                    predictors: e.predictors.clone(),
                    costs: e.costs.clone(),
                    distances: e.distances.clone(),
                });
            }
        }
        let plan = Plan {
            preset: self.clone(),
            scale_name: scale_name.to_string(),
            scale: scale.clone(),
            seeds,
            models,
            evals,
        };
        // Every eval a criterion or figure names must exist at this scale.
        for (i, c) in self.criteria.iter().enumerate() {
            for q in [&c.left, &c.right] {
                if let Some(ev) = &q.eval {
                    if plan.eval(ev).is_none() {
                        return Err(ConfigError::new(
                            format!("{}.criteria[{i}].eval", self.id),
                            ev,
                            format!(
                                "an eval at scale {scale_name}: {}",
                                plan.evals
                                    .iter()
                                    .map(|e| e.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        Ok(plan)
    }
}

/// Parses `--only E1,E4` against the presets' ids.
pub fn select<'a>(presets: &'a [Preset], only: &[String]) -> Result<Vec<&'a Preset>, ConfigError> {
    if only.is_empty() {
        return Ok(presets.iter().collect());
    }
    let ids: Vec<&str> = presets.iter().map(|p| p.id.as_str()).collect();
    let mut out = Vec::new();
    for o in only {
        let p = presets
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(o.trim()))
            .ok_or_else(|| ConfigError::new("--only", o, format!("a comma-separated list of {}", ids.join(", "))))?;
        if !out.iter().any(|q: &&Preset| q.id == p.id) {
            out.push(p);
        }
    }
    // Keep the report order of the presets.
    out.sort_by_key(|p| presets.iter().position(|q| q.id == p.id));
    Ok(out)
}
