//! Training the experiments' models. A model is identified by its resolved training config: its run
//! directory is `models/<task slug>-s<seed>-<hash of the config's trajectory view>` (see
//! `TrainConfig::trajectory_view`: everything that changes the parameters), so
//! - experiments that declare the same model at the same scale share one run (E1's models serve
//!   E2, E3 and E7; E4's serve E5 and E6);
//! - a rerun skips finished runs (`done.json`) and resumes interrupted ones from their last
//!   checkpoint (bit-exactly, `iclab_model::train`);
//! - a changed config never reuses a stale run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use iclab_core::PromptBatch;
use iclab_model::checkpoint::write_atomic;
use iclab_model::lock::DirLock;
use iclab_model::train::{check_run_config, train_locked, RunDirState, TrainConfig, TrainOptions};
use iclab_model::Gpt;

use crate::eval::ModelSource;
use crate::preset::Plan;

pub use crate::hash::run_name;

/// The run directory name of a config.
pub fn run_key(cfg: &TrainConfig) -> String {
    format!("{}-{:016x}", cfg.name, cfg.trajectory_hash())
}

/// Written into a run directory when its training finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Done {
    pub steps: u64,
    pub final_loss: f32,
    /// Wall-clock seconds of the call that finished it.
    pub seconds: f64,
    pub resumed_from: Option<u64>,
}

/// The `done.json` of a run directory, if it holds a readable one.
fn read_done(dir: &Path) -> Option<Done> {
    let text = std::fs::read_to_string(dir.join("done.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `models_dir` holds `cfg`'s run finished (what [`ensure_trained`] would reuse).
pub fn is_finished(cfg: &TrainConfig, models_dir: &Path) -> bool {
    read_done(&models_dir.join(run_key(cfg))).is_some_and(|d| d.steps == cfg.steps)
}

/// What [`ensure_trained`] did.
#[derive(Clone, Debug)]
pub struct Trained {
    pub key: String,
    pub dir: PathBuf,
    pub done: Done,
    /// True when the run was already finished (nothing trained now).
    pub skipped: bool,
    /// Seconds spent training in this call.
    pub seconds_now: f64,
}

/// Trains `cfg` into `models_dir/<key>` unless it is finished; resumes an interrupted run. Returns
/// Ok(None) when `opts.stop` interrupted it. A finished run counts all its steps in
/// `opts.steps_done`.
pub fn ensure_trained(cfg: &TrainConfig, models_dir: &Path, opts: &TrainOptions) -> anyhow::Result<Option<Trained>> {
    let key = run_key(cfg);
    let dir = models_dir.join(&key);
    let done_path = dir.join("done.json");
    // One writer per run folder: held from the done.json check to its write.
    let lock = DirLock::acquire(&dir).with_context(|| format!("training {key}"))?;
    if let Some(done) = read_done(&dir).filter(|d| d.steps == cfg.steps) {
        // The key is a 64-bit hash: a finished run is reused only when its saved config trains
        // exactly as `cfg` does (a collision or an edited directory is refused).
        // (A done.json beside no checkpoint is a run to train again: nothing of it is lost.)
        if check_run_config(&dir, cfg)? == RunDirState::Same {
            if let Some(c) = &opts.steps_done {
                c.fetch_add(cfg.steps, Ordering::Relaxed);
            }
            return Ok(Some(Trained {
                key,
                dir,
                done,
                skipped: true,
                seconds_now: 0.0,
            }));
        }
    }
    let s = train_locked(cfg, &lock, opts).with_context(|| format!("training {key}"))?;
    if s.stopped_early {
        return Ok(None);
    }
    let done = Done {
        steps: s.steps_done,
        final_loss: s.final_loss,
        seconds: s.seconds,
        resumed_from: s.resumed_from,
    };
    write_atomic(&done_path, serde_json::to_string_pretty(&done)?.as_bytes())
        .with_context(|| format!("writing {}", done_path.display()))?;
    drop(lock);
    Ok(Some(Trained {
        key,
        dir,
        done,
        skipped: false,
        seconds_now: s.seconds,
    }))
}

/// Models trained side by side and the threads each gets: `jobs` (default one per worker thread)
/// capped at the number of models, and the worker threads shared out between them (at least one).
/// Several small models train faster side by side (one thread each) than one after the other with
/// all threads: at these sizes a step does not scale past one core. Results do not depend on the
/// thread count (iclab_model::train), so the split changes only the wall time.
pub fn split_threads(jobs: Option<usize>, models: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let jobs = jobs.unwrap_or(threads).clamp(1, models.max(1));
    (jobs, (threads / jobs).max(1))
}

/// What [`train_many`] reports as it goes, by index into its configs.
pub enum TrainEvent<'a> {
    Start(usize),
    Finished(usize, &'a anyhow::Result<Option<Trained>>),
}

/// [`ensure_trained`] for every config, `jobs` at a time with `threads_per_job` threads each
/// (see [`split_threads`]); `opts` is passed to each. Results are in the order of `cfgs`. Once
/// `opts.stop` is set, the models not yet started are reported as stopped (Ok(None)).
pub fn train_many(
    cfgs: &[&TrainConfig],
    models_dir: &Path,
    (jobs, threads_per_job): (usize, usize),
    opts: &TrainOptions,
    on_event: &(dyn Fn(TrainEvent) + Sync),
) -> Vec<anyhow::Result<Option<Trained>>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<anyhow::Result<Option<Trained>>>>> = cfgs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads_per_job).build();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(cfg) = cfgs.get(i) else {
                        break;
                    };
                    let stopped = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
                    let r = match &pool {
                        _ if stopped => Ok(None),
                        Ok(pool) => {
                            on_event(TrainEvent::Start(i));
                            pool.install(|| ensure_trained(cfg, models_dir, opts))
                        }
                        Err(e) => Err(anyhow::anyhow!("could not start a training thread pool: {e}")),
                    };
                    on_event(TrainEvent::Finished(i, &r));
                    *results[i].lock().expect("result lock") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("result lock").expect("every index is taken once"))
        .collect()
}

/// Models in memory, by (name, seed index).
#[derive(Default)]
pub struct LoadedModels {
    models: HashMap<(String, usize), (Option<String>, Gpt)>,
}

impl LoadedModels {
    /// Loads every model of `plan` from its finished run under `models_dir`.
    pub fn load(plan: &Plan, models_dir: &Path) -> anyhow::Result<LoadedModels> {
        let mut models = LoadedModels::default();
        for m in &plan.models {
            let cfg = m.config.clone();
            models.add_run(&m.name, m.seed_index, &cfg, &models_dir.join(run_key(&cfg)))?;
        }
        Ok(models)
    }

    /// Adds the finished run in `dir` as model `name` at seed index `seed`, checking that it
    /// trained `cfg`; its predictions are cached as those of `<run key>@<steps>`.
    pub fn add_run(&mut self, name: &str, seed: usize, cfg: &TrainConfig, dir: &Path) -> anyhow::Result<()> {
        let (saved, gpt) = iclab_model::train::load(dir).with_context(|| format!("loading model {name}"))?;
        anyhow::ensure!(
            saved.trajectory_hash() == cfg.trajectory_hash(),
            "{} holds another model than {name} asks for",
            dir.display()
        );
        let id = format!("{}@{}", run_key(cfg), cfg.steps);
        self.models.insert((name.to_string(), seed), (Some(id), gpt));
        Ok(())
    }

    /// Every model of `plan` at its GPT-2 initialisation (untrained; never cached). The criteria
    /// must fail on these.
    pub fn untrained(plan: &Plan) -> anyhow::Result<LoadedModels> {
        let mut models = HashMap::new();
        for m in &plan.models {
            let cfg = m.config.clone();
            models.insert(
                (m.name.clone(), m.seed_index),
                (None, Gpt::new(cfg.model.clone(), cfg.seed)),
            );
        }
        Ok(LoadedModels { models })
    }
}

impl ModelSource for LoadedModels {
    fn predict(&mut self, name: &str, seed: usize, batch: &PromptBatch) -> anyhow::Result<Vec<f32>> {
        let (_, gpt) = self
            .models
            .get_mut(&(name.to_string(), seed))
            .ok_or_else(|| anyhow::anyhow!("no model {name} (seed {seed}) loaded"))?;
        anyhow::ensure!(
            batch.d == gpt.config.d && batch.n >= 1 && batch.n <= gpt.config.n_points,
            "model {name} takes d = {} and n <= {}, the prompts have d = {}, n = {}",
            gpt.config.d,
            gpt.config.n_points,
            batch.d,
            batch.n
        );
        Ok(gpt.predict(batch))
    }

    fn cache_id(&self, name: &str, seed: usize) -> Option<String> {
        self.models.get(&(name.to_string(), seed)).and_then(|(k, _)| k.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run directory whose saved config differs from the requested one (a 64-bit key
    /// collision, or a directory edited by hand) must be refused, not silently reused.
    #[test]
    fn finished_run_with_another_config_is_refused() {
        let models = std::env::temp_dir().join(format!("iclab-runkey-{}", std::process::id()));
        let requested = TrainConfig {
            steps: 7,
            ..TrainConfig::default()
        };
        let dir = models.join(run_key(&requested));
        std::fs::create_dir_all(&dir).unwrap();
        let mut saved = requested.clone();
        saved.optimizer.lr *= 2.0;
        std::fs::write(dir.join("config.toml"), toml::to_string(&saved).unwrap()).unwrap();
        let done = Done {
            steps: 7,
            final_loss: 0.5,
            seconds: 1.0,
            resumed_from: None,
        };
        std::fs::write(dir.join("done.json"), serde_json::to_string(&done).unwrap()).unwrap();
        // A run with checkpoints (one that never wrote a checkpoint would be trained afresh).
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        std::fs::write(dir.join("checkpoints/step_00000007.safetensors"), b"").unwrap();

        let err = ensure_trained(&requested, &models, &TrainOptions::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("different configuration") && msg.contains("lr"), "{msg}");

        // The same directory with the matching config is reused without training.
        std::fs::write(dir.join("config.toml"), toml::to_string(&requested).unwrap()).unwrap();
        let t = ensure_trained(&requested, &models, &TrainOptions::default())
            .unwrap()
            .unwrap();
        assert!(t.skipped);
        std::fs::remove_dir_all(&models).unwrap();
    }

    /// Two writers on one run folder, `iclab train`'s and `iclab reproduce`'s (or `sweep`'s): the
    /// second is refused at once naming the first's PID, whichever starts first.
    #[test]
    fn two_writers_on_one_run_folder_are_refused_in_both_orders() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let models = std::env::temp_dir().join(format!("iclab-runlock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&models);
        let mut cfg = TrainConfig {
            steps: 1_000_000,
            batch_size: 2,
            eval_every: 0,
            checkpoint_every: 1_000_000,
            ..TrainConfig::default()
        };
        cfg.model.n_layer = 1;
        cfg.model.n_embd = 16;
        let dir = models.join(run_key(&cfg));
        let wait_for_holder = || {
            let t0 = std::time::Instant::now();
            while !std::fs::read_to_string(dir.join(iclab_model::lock::LOCK_FILE))
                .is_ok_and(|t| t.trim() == std::process::id().to_string())
            {
                assert!(t0.elapsed().as_secs() < 120, "no holder");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        let expected = format!("{} is in use by PID {}", dir.display(), std::process::id());
        for reproduce_first in [true, false] {
            let stop = Arc::new(AtomicBool::new(false));
            let opts = TrainOptions {
                stop: Some(stop.clone()),
                ..TrainOptions::default()
            };
            std::thread::scope(|s| {
                let first = s.spawn(|| {
                    if reproduce_first {
                        ensure_trained(&cfg, &models, &opts).map(|_| ())
                    } else {
                        iclab_model::train::train(&cfg, &dir, &opts).map(|_| ())
                    }
                });
                struct StopOnDrop(Arc<AtomicBool>);
                impl Drop for StopOnDrop {
                    fn drop(&mut self) {
                        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                let _guard = StopOnDrop(stop.clone());
                wait_for_holder();
                let second = if reproduce_first {
                    iclab_model::train::train(&cfg, &dir, &TrainOptions::default()).map(|_| ())
                } else {
                    ensure_trained(&cfg, &models, &TrainOptions::default()).map(|_| ())
                };
                let e = format!("{:#}", second.unwrap_err());
                assert!(e.contains(&expected), "reproduce first: {reproduce_first}: {e}");
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                first.join().unwrap().unwrap();
            });
        }
        std::fs::remove_dir_all(&models).unwrap();
    }
}
