//! `iclab bench`: timing workloads. `iclab bench baselines` times the baselines that apply to
//! sparse prompts; scripts/bench_baselines.py runs the scikit-learn/numpy reference side by side.
//! Results and how to rerun them: docs/benchmarks.md.

use std::time::Instant;

use iclab_core::baselines::{self, Baseline, LinearPrior, MixtureBayes};
use iclab_core::rng::Purpose;
use iclab_core::{ClassSpec, PromptSampler, PromptStrategy};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: Bench,
}

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Least squares, ridge, LASSO at 5 alphas, 3-NN, averaging and the dense+sparse Bayes
    /// predictor on sparse prompts (default: 1,280 prompts x 41 points, d = 20, nnz = 2).
    Baselines(BaselinesArgs),
    /// Training steps of the transformer (forward + backward + Adam, batch 64, full-length
    /// prompts): steps/s, tokens/s, GFLOP/s, the matmul ceiling measured in the same run, peak memory.
    Train(TrainBenchArgs),
    /// The matmul kernel against matrixmultiply on each single-threaded matmul of one chunk of a
    /// preset's step (forward, input and weight gradients, attention), timed alternately, plus the
    /// register-only FMA peak: the measurement behind the kernel choice.
    Matmul(MatmulBenchArgs),
}

#[derive(clap::Args)]
pub struct MatmulBenchArgs {
    /// Model size whose shapes to time: tiny, small or standard.
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Seconds per round and kernel (5 rounds per shape).
    #[arg(long, default_value_t = 0.1)]
    seconds: f64,
}

#[derive(clap::Args)]
pub struct TrainBenchArgs {
    /// Model size: tiny, small or standard (the study's paper size, docs/study.md).
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Time at least this many steps...
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// ...and at least this many seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Print one JSON line (for scripts/bench_train.py) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct BaselinesArgs {
    #[arg(long, default_value_t = 1280)]
    prompts: usize,
    #[arg(long, default_value_t = 41)]
    n: usize,
    #[arg(long, default_value_t = 20)]
    d: usize,
    #[arg(long, default_value_t = 2)]
    nnz: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON line (for scripts/bench_baselines.py) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        Bench::Baselines(a) => run_baselines(a),
        Bench::Train(a) => run_train(a),
        Bench::Matmul(a) => run_matmul(a),
    }
}

fn run_baselines(a: BaselinesArgs) -> anyhow::Result<()> {
    if a.n < 1 || a.prompts < 1 {
        anyhow::bail!(iclab_core::ConfigError::new(
            "n / prompts",
            format!("{} / {}", a.n, a.prompts),
            "integers >= 1"
        ));
    }
    let sparse = ClassSpec::Sparse {
        nnz: a.nnz,
        normalize: false,
    };
    let sampler = PromptSampler::new(sparse.clone(), PromptStrategy::Isotropic, a.d, a.seed)?;
    let t = Instant::now();
    let prompts = sampler.prompts(a.seed, Purpose::Eval, a.prompts, a.n, a.d);
    let t_prompts = t.elapsed().as_secs_f64();

    let prior = ClassSpec::Mixture {
        weights: vec![0.5, 0.5],
        classes: vec![ClassSpec::Dense { normalize: false }, sparse],
    };
    let comps = LinearPrior::of_mixture(&prior, a.d, &PromptStrategy::Isotropic).expect("linear mixture");
    let mut list: Vec<Box<dyn Baseline>> = vec![
        Box::new(baselines::LeastSquares),
        Box::new(baselines::Ridge {
            lambda: baselines::DEFAULT_RIDGE_LAMBDA,
        }),
    ];
    for alpha in baselines::LASSO_ALPHAS {
        list.push(Box::new(baselines::Lasso::new(alpha)));
    }
    list.push(Box::new(baselines::Knn { neighbours: 3 }));
    list.push(Box::new(baselines::Averaging));
    list.push(Box::new(MixtureBayes::new("bayes(dense+sparse)", comps, a.d)?));

    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    let total = Instant::now();
    for b in &list {
        let t = Instant::now();
        let e = baselines::errors(&prompts, b.as_ref(), a.nnz as f64);
        let secs = t.elapsed().as_secs_f64();
        // The mean error at k = nnz + 1 keeps the work observable (and is a sanity check).
        let m = e.iter().map(|r| r[(a.nnz + 1).min(a.n - 1)]).sum::<f64>() / e.len() as f64;
        rows.push((b.name(), secs, m));
    }
    let total = total.elapsed().as_secs_f64();
    let unconverged: Vec<String> = list.iter().flat_map(|b| b.diagnostics()).collect();
    if a.json {
        let per: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(n, s, _)| (n.clone(), serde_json::json!(s))).collect();
        println!(
            "{}",
            serde_json::json!({
                "prompts": a.prompts, "n": a.n, "d": a.d, "nnz": a.nnz, "threads": threads,
                "prompt_seconds": t_prompts, "baseline_seconds": total, "per_baseline": per,
                "diagnostics": unconverged,
            })
        );
        return Ok(());
    }
    println!(
        "bench baselines: {} sparse(nnz={}) prompts x {} points, d = {}, {} threads",
        a.prompts, a.nnz, a.n, a.d, threads
    );
    println!("prompt sampling: {t_prompts:.3} s\n");
    println!(
        "{:<24} {:>10} {:>18}",
        "baseline",
        "seconds",
        format!("error at k={}", a.nnz + 1)
    );
    for (name, secs, m) in &rows {
        println!("{name:<24} {secs:>10.3} {m:>18.4}");
    }
    println!("{:<24} {total:>10.3}", "total (baselines)");
    for d in &unconverged {
        println!("warning: {d}");
    }
    Ok(())
}

fn run_matmul(a: MatmulBenchArgs) -> anyhow::Result<()> {
    let cfg = iclab_model::ModelConfig::preset(&a.preset)?;
    if a.batch < 1 {
        anyhow::bail!(iclab_core::ConfigError::new("batch", a.batch, "an integer >= 1"));
    }
    if !(a.seconds > 0.0 && a.seconds <= 60.0) {
        anyhow::bail!(iclab_core::ConfigError::new(
            "seconds",
            a.seconds,
            "a number in (0, 60]"
        ));
    }
    let rows = iclab_model::bench::bench_matmul(&cfg, a.batch, a.seconds);
    let peak = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()?
        .install(|| iclab_model::bench::fma_peak(0.5));
    println!(
        "matmul bench: preset {} (batch {}, one chunk, 1 thread); GFLOP/s, medians of 5 alternating rounds",
        a.preset, a.batch
    );
    println!(
        "{:<22} {:>16} {:>10} {:>16} {:>8}",
        "matmul", "m x k x n", "kernel", "matrixmultiply", "ratio"
    );
    for r in &rows {
        let shape = format!("{}x{}x{}", r.m, r.k, r.n);
        println!(
            "{:<22} {:>16} {:>10.1} {:>16.1} {:>8.2}",
            r.name, shape, r.kernel_gflops, r.matrixmultiply_gflops, r.ratio
        );
    }
    println!("register-only FMA peak, 1 thread: {peak:.1} GFLOP/s (NaN: no AVX-512, the kernel is matrixmultiply's)");
    Ok(())
}

fn run_train(a: TrainBenchArgs) -> anyhow::Result<()> {
    let cfg = iclab_model::ModelConfig::preset(&a.preset)?;
    if a.batch < 1 {
        anyhow::bail!(iclab_core::ConfigError::new("batch", a.batch, "an integer >= 1"));
    }
    let r = iclab_model::bench::bench_train(&a.preset, &cfg, a.batch, a.steps, a.seconds);
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let c = &r.config;
    println!(
        "train bench: preset {} (d {}, n {}, {} layers, {} heads, {} wide, {} params), batch {}, {} threads",
        r.preset, c.d, c.n_points, c.n_layer, c.n_head, c.n_embd, r.params, r.batch, r.threads
    );
    println!(
        "  steps/s          {:10.2}   ({} steps in {:.2} s)",
        r.steps_per_s, r.steps, r.seconds
    );
    println!("  tokens/s         {:10.0}", r.tokens_per_s);
    println!(
        "  GFLOP/s          {:10.1}   ({:.3} GFLOP per step: matmuls + attention, fwd + bwd)",
        r.gflops, r.gflop_per_step
    );
    println!(
        "  matmul ceiling   {:10.1}   GFLOP/s (the kernel alone on the step's matmuls)",
        r.matmul_ceiling_gflops
    );
    println!("  of ceiling       {:10.1} %", 100.0 * r.fraction_of_ceiling);
    println!(
        "  FMA peak         {:10.1}   GFLOP/s (register-only multiply-adds on {} threads; ceiling {:.0}% of it)",
        r.fma_peak_gflops,
        r.threads,
        100.0 * r.matmul_ceiling_gflops / r.fma_peak_gflops
    );
    println!("  peak memory      {:10.1}   MiB (VmHWM)", r.peak_mib);
    println!("  loss             {:10.4} -> {:.4}", r.first_loss, r.last_loss);
    Ok(())
}
