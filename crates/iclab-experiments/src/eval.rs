//! Evaluation of models and baselines on the same prompt sets (docs/study.md, "Metric"):
//! predictions of every predictor after k = 0..n-1 examples, cached on disk by a hash of
//! (predictor, prompt set), and the per-k statistics derived from them: normalised error curves
//! with bootstrap bands (and spread across training seeds), selection costs and distances between
//! predictors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;

use iclab_core::metrics::{self, Curve, CurvePoint};
use iclab_core::rng::Purpose;
use iclab_core::{Prompt, PromptBatch, PromptSampler};

use iclab_model::checkpoint::write_atomic;

use crate::hash;
use crate::preset::{EvalPlan, Plan};

/// Bump when the meaning of cached predictions changes (baseline definitions, prompt protocol).
pub const CACHE_VERSION: u32 = 1;

/// Where the models' predictions come from: trained checkpoints, or untrained models in tests.
pub trait ModelSource {
    /// Predictions [b * n] of model `name` (training seed index `seed`) on `batch` [b, n, d].
    fn predict(&mut self, name: &str, seed: usize, batch: &PromptBatch) -> anyhow::Result<Vec<f32>>;
    /// Identity of that model for the prediction cache (None: never cache).
    fn cache_id(&self, name: &str, seed: usize) -> Option<String>;
}

/// One prompt set with every predictor's predictions.
pub struct EvalData {
    pub plan: EvalPlan,
    pub prompts: Vec<Prompt>,
    /// E[y^2] of the test class (the normaliser: predicting 0 scores 1).
    pub ey2: f64,
    /// predictor -> per training seed (one entry for baselines) -> [prompt][k].
    pub preds: BTreeMap<String, Vec<Vec<Vec<f64>>>>,
}

/// Every prompt set of an experiment.
pub struct Evaluated {
    pub evals: Vec<EvalData>,
    pub seeds: usize,
    /// Bootstrap seed of every band.
    pub bootstrap_seed: u64,
}

/// The identity of a prompt set (what its prompts depend on).
#[derive(Serialize)]
struct EvalId<'a> {
    version: u32,
    task: &'a iclab_core::ClassSpec,
    inputs: &'a iclab_core::PromptStrategy,
    d: usize,
    n: usize,
    prompts: usize,
    seed: u64,
}

fn eval_id(e: &EvalPlan) -> String {
    serde_json::to_string(&EvalId {
        version: CACHE_VERSION,
        task: &e.task,
        inputs: &e.inputs,
        d: e.d,
        n: e.n,
        prompts: e.prompts,
        seed: e.seed,
    })
    .expect("serialisable")
}

/// The prompts of an eval: indices 0..prompts of stream (eval seed, Eval), all d coordinates
/// active, n points.
pub fn prompts(e: &EvalPlan) -> anyhow::Result<Vec<Prompt>> {
    let sampler = PromptSampler::new(e.task.clone(), e.inputs.clone(), e.d, e.seed)
        .map_err(|err| anyhow::anyhow!("eval {}: {err}", e.name))?;
    Ok(sampler.prompts(e.seed, Purpose::Eval, e.prompts, e.n, e.d))
}

/// E[y^2] of an eval's targets.
pub fn expected_y2(e: &EvalPlan) -> anyhow::Result<f64> {
    let sampler = PromptSampler::new(e.task.clone(), e.inputs.clone(), e.d, e.seed)
        .map_err(|err| anyhow::anyhow!("eval {}: {err}", e.name))?;
    Ok(sampler.expected_y2(e.d))
}

/// Cached predictions: `dir/<hash>.f32` (little-endian f32, [prompts, n], then an 8-byte
/// little-endian FNV-1a checksum of the key and the values) beside a JSON note of what they are.
/// Written atomically (temp file + rename) so an interrupted run never leaves a truncated file;
/// read back only when the size and the checksum agree, otherwise recomputed with a log line
/// saying so.
struct Cache<'a> {
    dir: Option<&'a Path>,
}

/// What the cache holds for a key.
enum Cached {
    Hit(Vec<Vec<f64>>),
    Missing,
    /// A file that fails its checks (why), to be recomputed.
    Bad(String),
}

fn cache_checksum(key: &str, values: &[u8]) -> u64 {
    let mut acc = Vec::with_capacity(16);
    acc.extend_from_slice(&iclab_model::hash::fnv1a(key.as_bytes()).to_le_bytes());
    acc.extend_from_slice(&iclab_model::hash::fnv1a(values).to_le_bytes());
    iclab_model::hash::fnv1a(&acc)
}

impl Cache<'_> {
    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.map(|d| d.join(format!("{key}.f32")))
    }

    fn get(&self, key: &str, rows: usize, n: usize) -> Cached {
        let Some(path) = self.path(key) else {
            return Cached::Missing;
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Cached::Missing,
            Err(e) => return Cached::Bad(format!("cannot read {}: {e}", path.display())),
        };
        let want = rows * n * 4 + 8;
        if bytes.len() != want {
            return Cached::Bad(format!(
                "{} has {} bytes, not {want} ({rows} x {n} predictions and a checksum): truncated or of an \
                 older format",
                path.display(),
                bytes.len()
            ));
        }
        let (values, sum) = bytes.split_at(rows * n * 4);
        let stored = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
        let actual = cache_checksum(key, values);
        if stored != actual {
            return Cached::Bad(format!(
                "{}: checksum mismatch (stored {stored:016x}, computed {actual:016x}): the values were changed",
                path.display()
            ));
        }
        let vals: Vec<f64> = values
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        Cached::Hit(vals.chunks_exact(n.max(1)).map(<[f64]>::to_vec).collect())
    }

    /// The cached predictions of `key`, if intact; a damaged file is logged (and then recomputed
    /// by the caller).
    fn lookup(&self, key: &str, rows: usize, n: usize, what: &str, log: &mut dyn FnMut(&str)) -> Option<Vec<Vec<f64>>> {
        match self.get(key, rows, n) {
            Cached::Hit(v) => Some(v),
            Cached::Missing => None,
            Cached::Bad(why) => {
                log(&format!("    cache: {why}; recomputing the predictions of {what}"));
                None
            }
        }
    }

    fn put(&self, key: &str, note: &str, preds: &[Vec<f64>]) -> anyhow::Result<()> {
        let Some(path) = self.path(key) else { return Ok(()) };
        let dir = path.parent().expect("cache file has a folder");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut bytes = Vec::with_capacity(preds.len() * preds.first().map_or(0, Vec::len) * 4 + 8);
        for row in preds {
            for v in row {
                bytes.extend_from_slice(&(*v as f32).to_le_bytes());
            }
        }
        let sum = cache_checksum(key, &bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        write_atomic(&path, &bytes)?;
        write_atomic(&path.with_extension("json"), note.as_bytes())
            .with_context(|| format!("writing note for {key}"))?;
        Ok(())
    }
}

/// Rounds predictions to f32, the precision of the cache, so that fresh and cached runs report
/// identical numbers.
fn round_f32(preds: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    preds
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as f32 as f64).collect())
        .collect()
}

/// Model predictions on `prompts` as [prompt][k], in chunks of 256 prompts.
pub fn model_predictions(
    models: &mut dyn ModelSource,
    name: &str,
    seed: usize,
    prompts: &[Prompt],
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(256) {
        let batch = PromptBatch::from_prompts(chunk);
        let p = models.predict(name, seed, &batch)?;
        anyhow::ensure!(
            p.len() == batch.b * batch.n,
            "model {name} returned {} predictions for a [{}, {}] batch",
            p.len(),
            batch.b,
            batch.n
        );
        out.extend(
            p.chunks_exact(batch.n)
                .map(|r| r.iter().map(|&v| v as f64).collect::<Vec<f64>>()),
        );
    }
    Ok(out)
}

/// Predictions [prompt][k] of model `name` (training seed index `seed`) on the prompts of prompt
/// set `e`, read from the `cache` folder when they are there. The flag is true when they were
/// computed now. A damaged cache file is recomputed, and `log` says so.
pub fn model_predictions_cached(
    models: &mut dyn ModelSource,
    name: &str,
    seed: usize,
    e: &EvalPlan,
    prompts: &[Prompt],
    cache: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<(Vec<Vec<f64>>, bool)> {
    let cache = Cache { dir: cache };
    let eid = eval_id(e);
    let id = models.cache_id(name, seed);
    let key = id.as_ref().map(|id| hash::hex(&format!("{id}\n{eid}")));
    let what = format!("model {name} (seed {seed}) on {}", e.name);
    if let Some(v) = key
        .as_deref()
        .and_then(|k| cache.lookup(k, prompts.len(), e.n, &what, log))
    {
        return Ok((v, false));
    }
    let v = round_f32(model_predictions(models, name, seed, prompts)?);
    if let (Some(k), Some(id)) = (&key, &id) {
        cache.put(k, &format!("{{\"model\": {id:?}, \"eval\": {eid}}}\n"), &v)?;
    }
    Ok((v, true))
}

/// Predictions [prompt][k] of baseline `b` on the prompts of prompt set `e`, read from the `cache`
/// folder when they are there; `log` gets the baseline's diagnostics. The flag is true when they
/// were computed now.
pub fn baseline_predictions_cached(
    b: &crate::baselines::Made,
    e: &EvalPlan,
    prompts: &[Prompt],
    cache: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<(Vec<Vec<f64>>, bool)> {
    let cache = Cache { dir: cache };
    let eid = eval_id(e);
    let id = format!("baseline v{CACHE_VERSION} {}", b.identity);
    let key = hash::hex(&format!("{id}\n{eid}"));
    let what = format!("{} on {}", b.identity, e.name);
    if let Some(v) = cache.lookup(&key, prompts.len(), e.n, &what, log) {
        return Ok((v, false));
    }
    let v: Vec<Vec<f64>> = prompts.par_iter().map(|pr| b.baseline.predict(pr)).collect();
    let v = round_f32(v);
    for line in b.baseline.diagnostics() {
        log(&format!("    {} on {}: {line}", b.identity, e.name));
    }
    cache.put(&key, &format!("{{\"baseline\": {id:?}, \"eval\": {eid}}}\n"), &v)?;
    Ok((v, true))
}

/// Evaluates every predictor of every prompt set of `plan`. `cache`: folder of cached predictions
/// (None: compute everything). `log`: progress lines.
pub fn evaluate(
    plan: &Plan,
    models: &mut dyn ModelSource,
    cache: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Evaluated> {
    let mut evals = Vec::new();
    for e in &plan.evals {
        let prompts = prompts(e)?;
        let ey2 = expected_y2(e)?;
        let mut preds = BTreeMap::new();
        let (mut hits, mut computed) = (0, 0);
        for p in &e.predictors {
            let per_seed = if plan.is_model(p) {
                let mut per_seed = Vec::new();
                for s in 0..plan.seeds {
                    let (v, now) = model_predictions_cached(models, p, s, e, &prompts, cache, log)?;
                    per_seed.push(v);
                    if now {
                        computed += 1
                    } else {
                        hits += 1
                    }
                }
                per_seed
            } else {
                let b = plan.baseline(p, e)?;
                let (v, now) = baseline_predictions_cached(&b, e, &prompts, cache, log)?;
                if now {
                    computed += 1
                } else {
                    hits += 1
                }
                vec![v]
            };
            preds.insert(p.clone(), per_seed);
        }
        log(&format!(
            "  evaluated {:<14} {} predictors ({computed} computed, {hits} cached)",
            e.name,
            e.predictors.len()
        ));
        evals.push(EvalData {
            plan: e.clone(),
            prompts,
            ey2,
            preds,
        });
    }
    Ok(Evaluated {
        evals,
        seeds: plan.seeds,
        bootstrap_seed: plan.scale.eval_seed,
    })
}

/// Per-k statistic of one or more training seeds.
#[derive(Clone, Debug)]
pub struct SeedCurves {
    pub name: String,
    /// One curve per seed (bootstrap band over prompts).
    pub per_seed: Vec<Curve>,
}

impl SeedCurves {
    /// The curve reported: mean over seeds of each seed's mean. Band: the bootstrap 5-95% band over
    /// prompts with one seed; the range (min..max) of the seeds' means with several. std: over
    /// prompts with one seed, over seeds' means with several.
    pub fn combined(&self) -> Curve {
        if self.per_seed.len() == 1 {
            let mut c = self.per_seed[0].clone();
            c.name = self.name.clone();
            return c;
        }
        let s = self.per_seed.len() as f64;
        let n = self.per_seed[0].points.len();
        let points = (0..n)
            .map(|i| {
                let means: Vec<f64> = self.per_seed.iter().map(|c| c.points[i].mean).collect();
                let mean = means.iter().sum::<f64>() / s;
                let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (s - 1.0);
                CurvePoint {
                    k: self.per_seed[0].points[i].k,
                    mean,
                    std: var.sqrt(),
                    lo: means.iter().copied().fold(f64::INFINITY, f64::min),
                    hi: means.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                }
            })
            .collect();
        Curve {
            name: self.name.clone(),
            points,
        }
    }

    /// Seed `s`'s means per k (the last seed's for predictors with fewer seeds: baselines).
    pub fn means(&self, s: usize) -> Vec<f64> {
        self.per_seed[s.min(self.per_seed.len() - 1)]
            .points
            .iter()
            .map(|p| p.mean)
            .collect()
    }
}

impl EvalData {
    fn preds_of(&self, p: &str) -> anyhow::Result<&Vec<Vec<Vec<f64>>>> {
        self.preds
            .get(p)
            .ok_or_else(|| anyhow::anyhow!("predictor {p} is not evaluated on {}", self.plan.name))
    }

    /// Normalised squared errors [prompt][k] of predictor `p` at seed `s`.
    pub fn errors(&self, p: &str, s: usize) -> anyhow::Result<Vec<Vec<f64>>> {
        let per_seed = self.preds_of(p)?;
        Ok(metrics::squared_errors(
            &self.prompts,
            &per_seed[s.min(per_seed.len() - 1)],
            self.ey2,
        ))
    }

    pub fn seeds_of(&self, p: &str) -> usize {
        self.preds.get(p).map_or(0, Vec::len)
    }

    /// Error curves of predictor `p`, one per seed.
    pub fn error_curves(&self, p: &str, label: &str, bootstrap_seed: u64) -> anyhow::Result<SeedCurves> {
        let per_seed = (0..self.seeds_of(p))
            .map(|s| Ok(metrics::curve(label, &self.errors(p, s)?, bootstrap_seed)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !per_seed.is_empty(),
            "predictor {p} is not evaluated on {}",
            self.plan.name
        );
        Ok(SeedCurves {
            name: label.to_string(),
            per_seed,
        })
    }

    /// error(a) - error(b) per prompt and k, as curves (selection cost when b is the specialist):
    /// seed s of a against seed s of b.
    pub fn cost_curves(&self, a: &str, b: &str, label: &str, bootstrap_seed: u64) -> anyhow::Result<SeedCurves> {
        let seeds = self.seeds_of(a).max(self.seeds_of(b));
        let per_seed = (0..seeds)
            .map(|s| {
                let (ea, eb) = (self.errors(a, s)?, self.errors(b, s)?);
                let diff: Vec<Vec<f64>> = ea
                    .iter()
                    .zip(&eb)
                    .map(|(ra, rb)| ra.iter().zip(rb).map(|(x, y)| x - y).collect())
                    .collect();
                Ok(metrics::curve(label, &diff, bootstrap_seed))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SeedCurves {
            name: label.to_string(),
            per_seed,
        })
    }

    /// Mean over prompts of (prediction a - prediction b)^2 / E[y^2] per k (E3), as curves.
    pub fn distance_curves(&self, a: &str, b: &str, label: &str, bootstrap_seed: u64) -> anyhow::Result<SeedCurves> {
        let (pa, pb) = (self.preds_of(a)?, self.preds_of(b)?);
        let seeds = pa.len().max(pb.len());
        let per_seed = (0..seeds)
            .map(|s| {
                let (xa, xb) = (&pa[s.min(pa.len() - 1)], &pb[s.min(pb.len() - 1)]);
                let sq: Vec<Vec<f64>> = xa
                    .iter()
                    .zip(xb)
                    .map(|(ra, rb)| ra.iter().zip(rb).map(|(x, y)| (x - y).powi(2) / self.ey2).collect())
                    .collect();
                metrics::curve(label, &sq, bootstrap_seed)
            })
            .collect();
        Ok(SeedCurves {
            name: label.to_string(),
            per_seed,
        })
    }
}

impl Evaluated {
    pub fn get(&self, eval: &str) -> anyhow::Result<&EvalData> {
        self.evals
            .iter()
            .find(|e| e.plan.name == eval)
            .ok_or_else(|| anyhow::anyhow!("no eval named {eval}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> EvalPlan {
        EvalPlan {
            name: "dense".into(),
            group: "dense".into(),
            sweep_value: None,
            task: iclab_core::ClassSpec::Dense { normalize: false },
            inputs: iclab_core::PromptStrategy::Isotropic,
            d: 3,
            n: 6,
            prompts: 20,
            seed: 5,
            predictors: vec!["least_squares".into()],
            costs: Vec::new(),
            distances: Vec::new(),
        }
    }

    /// A cache file whose values were changed (or cut short, or of the old format without a
    /// checksum) is recomputed, with a log line, and the result equals a fresh computation.
    #[test]
    fn damaged_cached_predictions_are_recomputed_and_said_so() {
        let dir = std::env::temp_dir().join(format!("iclab-cache-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = plan();
        let prompts = prompts(&e).unwrap();
        let b = crate::baselines::make_with("least_squares", |_| None, &e.target()).unwrap();
        let mut lines = Vec::new();
        let (fresh, now) =
            baseline_predictions_cached(&b, &e, &prompts, Some(&dir), &mut |s| lines.push(s.to_string())).unwrap();
        assert!(now);
        let (hit, now) =
            baseline_predictions_cached(&b, &e, &prompts, Some(&dir), &mut |s| lines.push(s.to_string())).unwrap();
        assert!(!now && hit == fresh && lines.is_empty(), "{lines:?}");
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "f32"))
            .unwrap();
        let good = std::fs::read(&file).unwrap();
        let mut changed = good.clone();
        changed[4..8].copy_from_slice(&123.0f32.to_le_bytes()); // a plausible value, another number
        let cases = [
            (changed, "checksum mismatch"),
            (good[..good.len() - 8].to_vec(), "older format"),
            (good[..10].to_vec(), "truncated"),
        ];
        for (bytes, needle) in cases {
            std::fs::write(&file, bytes).unwrap();
            let mut lines = Vec::new();
            let (v, now) =
                baseline_predictions_cached(&b, &e, &prompts, Some(&dir), &mut |s| lines.push(s.to_string())).unwrap();
            assert!(now, "{needle}: not recomputed");
            assert!(v == fresh, "{needle}: recomputed values differ from a fresh run");
            assert!(
                lines.iter().any(|l| l.contains(needle) && l.contains("recomputing")),
                "{needle}: {lines:?}"
            );
            assert_eq!(
                std::fs::read(&file).unwrap(),
                good,
                "{needle}: the file is not rewritten"
            );
        }
        // No temporary files are left behind.
        assert!(std::fs::read_dir(&dir)
            .unwrap()
            .all(|f| !f.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
