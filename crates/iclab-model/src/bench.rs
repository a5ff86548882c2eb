//! `iclab bench train`: training-step throughput of the in-context learner, with the matmul
//! ceiling measured in the same run and the peak memory (results: docs/benchmarks.md).
//!
//! A step is forward_loss + backward + an Adam update (written out here so that the bench does not
//! depend on the training loop's options). Data: dense linear regression prompts, b x n_points,
//! pre-drawn so that sampling is not timed. scripts/bench_train.py runs the same workload in
//! PyTorch side by side.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::buf::Buf;
use crate::gpt::{chunk_rows, Gpt, ModelConfig};
use crate::matmul::{sgemm, View};
use iclab_core::rng::{normal, stream, Purpose};

/// What one bench run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub preset: String,
    pub config: ModelConfig,
    pub params: usize,
    pub batch: usize,
    pub n: usize,
    pub threads: usize,
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_s: f64,
    /// Prompt tokens per second (batch * 2n per step, as the PyTorch reference counts them; the
    /// model runs 2n - 1 of them, see `layers::prompt_tokens`).
    pub tokens_per_s: f64,
    /// Matmul + attention FLOPs of one step, forward and backward.
    pub gflop_per_step: f64,
    pub gflops: f64,
    /// GFLOP/s of the matmul kernel alone on exactly the step's matmuls (same shapes, same
    /// chunking and threads), measured in this run.
    pub matmul_ceiling_gflops: f64,
    /// gflops / matmul_ceiling_gflops.
    pub fraction_of_ceiling: f64,
    /// GFLOP/s of fused multiply-adds on registers only (no memory traffic), one chain set per
    /// thread, measured in this run: the arithmetic peak no kernel can pass on this machine.
    pub fma_peak_gflops: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_mib: f64,
    pub first_loss: f32,
    pub last_loss: f32,
}

/// FLOPs one training step executes (forward + backward = 3 x forward), counting the matmuls
/// (24 b t C^2 per layer: c_attn 3C^2, attn c_proj C^2, c_fc 4C^2, mlp c_proj 4C^2, 2 flops per
/// multiply-add) and causal attention (q.k and att.v over the t(t+1)/2 visible pairs), over the
/// t = 2n - 1 tokens the model runs (`layers::prompt_tokens`: the last y-token is not). The last
/// block runs its attention projection and MLP (9C^2 of its 12C^2) on the n x-tokens only, and the
/// read-out reads n rows (see `Chunk::forward`): that work is counted once per x-token, so that
/// GFLOP/s measures the arithmetic done, not the arithmetic a full-sequence model would do.
pub fn step_flops(cfg: &ModelConfig, b: usize, n: usize) -> f64 {
    let (n, c, l) = (n as f64, cfg.n_embd as f64, cfg.n_layer as f64);
    let (b, t) = (b as f64, cfg.tokens.count(n as usize) as f64);
    let matmul = 24.0 * b * t * c * c * l - 18.0 * b * (t - n) * c * c;
    let attention = 2.0 * b * c * t * (t + 1.0) * l;
    let readin_out = 2.0 * b * c * (t * cfg.tokens.width(cfg.d) as f64 + n);
    3.0 * (matmul + attention + readin_out)
}

/// Peak resident set size (VmHWM) of this process in bytes, where /proc is available.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Dense linear prompts for the bench: xs [b, n, d] ~ N(0, I), ys = <w, x> with w ~ N(0, I) per prompt.
pub fn bench_batch(cfg: &ModelConfig, b: usize, n: usize, index: u64) -> (Vec<f32>, Vec<f32>) {
    let d = cfg.d;
    let mut rng = stream(index, Purpose::Test, 1);
    let mut xs = Vec::with_capacity(b * n * d);
    let mut ys = Vec::with_capacity(b * n);
    for _ in 0..b {
        let w: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
        for _ in 0..n {
            let x: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
            ys.push(x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() as f32);
            xs.extend(x.iter().map(|&v| v as f32));
        }
    }
    (xs, ys)
}

/// Adam (beta1 0.9, beta2 0.999, eps 1e-8) in place: the bench's stand-in for the trainer's update.
fn adam_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], lr: f32, t: i32) {
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    const SPAN: usize = 1 << 14;
    params
        .par_chunks_mut(SPAN)
        .zip(grads.par_chunks(SPAN))
        .zip(m.par_chunks_mut(SPAN).zip(v.par_chunks_mut(SPAN)))
        .for_each(|((p, g), (m, v))| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        });
}

/// GFLOP/s of the matmul kernel on exactly one step's matmuls: per chunk of the batch (as the
/// model cuts it, in parallel over chunks), for every layer, the forward of c_attn, attn.c_proj,
/// c_fc and mlp.c_proj and the two backward products (dinp, dweight) of each.
pub fn matmul_ceiling(cfg: &ModelConfig, b: usize, n: usize, min_seconds: f64) -> f64 {
    let rows = chunk_rows(b);
    let n_chunks = b.div_ceil(rows);
    let (c, t) = (cfg.n_embd, cfg.tokens.count(n));
    let bt = rows * t;
    // (in, out) of the four matmuls of a block.
    let shapes = [(c, 3 * c), (c, c), (c, 4 * c), (4 * c, c)];
    // On the same kind of memory as the model's activations (huge pages where allowed).
    struct Scratch {
        inp: Buf,
        w: Buf,
        out: Buf,
        dw: Buf,
    }
    let filled = |len: usize, f: &dyn Fn(usize) -> f32| {
        let mut b = Buf::zeroed(len);
        b.iter_mut().enumerate().for_each(|(k, v)| *v = f(k));
        b
    };
    let mut scratch: Vec<Scratch> = (0..n_chunks)
        .map(|i| Scratch {
            inp: filled(bt * 4 * c, &|k| ((k * 7 + i) % 13) as f32 * 0.01),
            w: filled(16 * c * c, &|k| ((k * 5) % 11) as f32 * 0.01),
            out: Buf::zeroed(bt * 4 * c),
            dw: Buf::zeroed(4 * c * c),
        })
        .collect();
    let one_step = |scratch: &mut [Scratch]| {
        scratch.par_iter_mut().for_each(|s| {
            for _ in 0..cfg.n_layer {
                for &(ci, co) in &shapes {
                    let inp = View::new(&s.inp[..bt * ci], bt, ci);
                    let w = View::new(&s.w[..ci * co], ci, co);
                    sgemm(inp, w, &mut s.out, co, true); // forward
                    let dout = View::new(&s.inp[..bt * co], bt, co);
                    let w_t = View::new(&s.w[..ci * co], co, ci); // the model transposes once per step
                    sgemm(dout, w_t, &mut s.out, ci, false); // dinp
                    sgemm(inp.t(), dout, &mut s.dw, co, true); // dweight
                }
            }
        })
    };
    one_step(&mut scratch);
    let flops = 2.0 * 3.0 * (n_chunks * bt) as f64 * 12.0 * (c * c) as f64 * cfg.n_layer as f64;
    let t0 = Instant::now();
    let mut reps = 0;
    while reps < 2 || t0.elapsed().as_secs_f64() < min_seconds {
        one_step(&mut scratch);
        reps += 1;
    }
    flops * reps as f64 / t0.elapsed().as_secs_f64() / 1e9
}

/// GFLOP/s of register-only fused multiply-adds on every thread of the pool at once, for at least
/// `min_seconds` (see [`crate::matmul::fma_chains`]); NaN where the CPU lacks AVX-512, whose
/// kernel it bounds.
pub fn fma_peak(min_seconds: f64) -> f64 {
    const ITERS: usize = 1 << 20;
    let threads = rayon::current_num_threads();
    let t0 = Instant::now();
    let mut rounds = 0usize;
    while rounds == 0 || t0.elapsed().as_secs_f64() < min_seconds {
        let sums: Option<Vec<f32>> = (0..threads)
            .into_par_iter()
            .map(|i| crate::matmul::fma_chains(ITERS, i as f32))
            .collect();
        match sums {
            Some(s) => std::hint::black_box(s),
            None => return f64::NAN,
        };
        rounds += 1;
    }
    let flops = (rounds * threads * ITERS) as f64 * crate::matmul::FMA_CHAIN_FLOPS;
    flops / t0.elapsed().as_secs_f64() / 1e9
}

/// Times training steps of `cfg` at batch `b` and full length n_points, for at least `steps`
/// steps and `min_seconds` seconds (after 2 warm-up steps).
pub fn bench_train(preset: &str, cfg: &ModelConfig, b: usize, steps: usize, min_seconds: f64) -> BenchReport {
    let n = cfg.n_points;
    let mut gpt = Gpt::new(cfg.clone(), 0);
    let batches: Vec<(Vec<f32>, Vec<f32>)> = (0..8).map(|i| bench_batch(cfg, b, n, i)).collect();
    let p = gpt.params.len();
    let (mut m, mut v) = (vec![0.0f32; p], vec![0.0f32; p]);
    let mut t_adam = 0;
    let mut step = |gpt: &mut Gpt, i: usize| -> f32 {
        let (xs, ys) = &batches[i % batches.len()];
        let loss = gpt.forward_loss(xs, ys, b, n);
        gpt.backward();
        t_adam += 1;
        let Gpt { params, grads, .. } = gpt;
        adam_update(params, grads, &mut m, &mut v, 1e-4, t_adam);
        loss
    };
    let first_loss = step(&mut gpt, 0);
    step(&mut gpt, 1);
    let t0 = Instant::now();
    let mut done = 0;
    let mut last_loss = first_loss;
    while done < steps || t0.elapsed().as_secs_f64() < min_seconds {
        last_loss = step(&mut gpt, done + 2);
        done += 1;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let ceiling = matmul_ceiling(cfg, b, n, (seconds / 4.0).clamp(0.5, 5.0));
    let fma_peak = fma_peak(0.5);
    let flops = step_flops(cfg, b, n);
    let steps_per_s = done as f64 / seconds;
    let gflops = flops * steps_per_s / 1e9;
    BenchReport {
        preset: preset.to_string(),
        config: cfg.clone(),
        params: p,
        batch: b,
        n,
        threads: rayon::current_num_threads(),
        steps: done,
        seconds,
        steps_per_s,
        tokens_per_s: steps_per_s * (b * 2 * n) as f64,
        gflop_per_step: flops / 1e9,
        gflops,
        matmul_ceiling_gflops: ceiling,
        fraction_of_ceiling: gflops / ceiling,
        fma_peak_gflops: fma_peak,
        peak_mib: peak_memory_bytes()
            .map(|x| x as f64 / (1024.0 * 1024.0))
            .unwrap_or(f64::NAN),
        first_loss,
        last_loss,
    }
}

/// One matmul shape of `iclab bench matmul`: GFLOP/s of the kernel [`sgemm`] uses and of
/// matrixmultiply on it, measured alternately in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct MatmulShapeReport {
    pub name: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub kernel_gflops: f64,
    pub matrixmultiply_gflops: f64,
    /// Median over the rounds of kernel / matrixmultiply (each round times both back to back).
    pub ratio: f64,
}

/// The single-threaded matmuls of one chunk of a `cfg` step at batch `b` (as the model cuts it):
/// per linear layer the forward, the input gradient (weight pre-transposed, as the model does)
/// and the weight gradient, then one head's attention products. Each is timed alternately on
/// the kernel and on matrixmultiply, 5 rounds of `seconds_per_round` each.
pub fn bench_matmul(cfg: &ModelConfig, b: usize, seconds_per_round: f64) -> Vec<MatmulShapeReport> {
    let (c, t, hs) = (cfg.n_embd, cfg.tokens.count(cfg.n_points), cfg.n_embd / cfg.n_head);
    let bt = chunk_rows(b) * t;
    // (name, m, k, n, a transposed, b transposed)
    let mut shapes: Vec<(String, usize, usize, usize, bool, bool)> = Vec::new();
    for (layer, ci, co) in [
        ("c_attn", c, 3 * c),
        ("attn.c_proj", c, c),
        ("c_fc", c, 4 * c),
        ("mlp.c_proj", 4 * c, c),
    ] {
        shapes.push((format!("{layer} forward"), bt, ci, co, false, false));
        shapes.push((format!("{layer} dinp"), bt, co, ci, false, false));
        shapes.push((format!("{layer} dweight"), ci, bt, co, true, false));
    }
    shapes.push(("attention q k^T".into(), t, hs, t, false, true));
    shapes.push(("attention att v".into(), t, t, hs, false, false));
    let mut out = Vec::new();
    for (name, m, k, n, a_t, b_t) in shapes {
        let a_data: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.01 - 0.06).collect();
        let b_data: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.01 - 0.05).collect();
        let a = if a_t {
            View::new(&a_data, k, m).t()
        } else {
            View::new(&a_data, m, k)
        };
        let bv = if b_t {
            View::new(&b_data, n, k).t()
        } else {
            View::new(&b_data, k, n)
        };
        let mut cbuf = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let mut time = |f: &dyn Fn(&mut [f32])| {
            f(&mut cbuf);
            let t0 = Instant::now();
            let mut reps = 0usize;
            while reps < 2 || t0.elapsed().as_secs_f64() < seconds_per_round {
                f(&mut cbuf);
                reps += 1;
            }
            flops * reps as f64 / t0.elapsed().as_secs_f64() / 1e9
        };
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            let g1 = time(&|c| sgemm(a, bv, c, n, true));
            let g2 = time(&|c| crate::matmul::sgemm_matrixmultiply(a, bv, c, n, true));
            ours.push(g1);
            theirs.push(g2);
            ratios.push(g1 / g2);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|x, y| x.total_cmp(y));
            v[v.len() / 2]
        };
        out.push(MatmulShapeReport {
            name,
            m,
            k,
            n,
            kernel_gflops: median(&mut ours),
            matrixmultiply_gflops: median(&mut theirs),
            ratio: median(&mut ratios),
        });
    }
    out
}
