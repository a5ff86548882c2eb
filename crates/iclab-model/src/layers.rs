//! The layers of the in-context learner, each an explicit forward and backward pass over flat f32
//! buffers, named as llm.c names them so that a CUDA port can mirror them one to one.
//!
//! Conventions: `bt` = rows (batch rows x tokens), `c` = channels. Every buffer is row-major and
//! contiguous; shapes are in the comments. Backward passes *accumulate* (`+=`) into parameter
//! gradients and into `dinp` where noted, and *overwrite* where noted.

// llm.c style: each pass takes its buffers and sizes explicitly, so that a CUDA kernel can mirror it.
#![allow(clippy::too_many_arguments)]

use crate::matmul::{sgemm, sgemm_bias, View};
use crate::simd::{self, multiversion, LANES};

/// LayerNorm epsilon of GPT-2 (Hugging Face `layer_norm_epsilon`).
pub const LN_EPS: f32 = 1e-5;

/// Tokens the model runs for a prompt of n points: x_1, y_1, ..., y_{n-1}, x_n, 2n - 1 of the
/// prompt's 2n. The last y-token is left out because nothing it computes can reach a prediction:
/// under the causal mask only later tokens attend to it and there are none, and the predictions are
/// read at the x-tokens (docs/study.md, "Prompts"). Predictions are bit for bit the full 2n tokens'
/// (each row's sums lose at most terms that are exactly zero, such as attention to the left-out
/// token); the gradients are theirs up to rounding (the left-out token's rows received exactly zero
/// gradient, but the weight gradients' sums over rows, blocked by the kernel's KC, group the
/// remaining rows differently). 1/(2n) of all the work is saved (docs/benchmarks.md).
pub fn prompt_tokens(n: usize) -> usize {
    (2 * n).saturating_sub(1)
}

/// How a prompt of n points becomes the tokens the model runs (`model.tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokens {
    /// The study's protocol (docs/study.md, "Prompts"): x_1, [y_1, 0, ..., 0], x_2, ..., x_n; the
    /// read-in maps d inputs, the prediction for y_i is read at the x_i token.
    #[default]
    Interleaved,
    /// One token per prediction: token i = [x_i, x_{i-1}, y_{i-1}] (the previous pair, zero for
    /// i = 1), read-in width 2d + 1. Token i sees exactly the pairs 1..i-1 and the query x_i, as
    /// x_i's token does in the interleaved protocol, with half the tokens and no need to pair a
    /// y-token with the x-token before it.
    Pairs,
}

impl Tokens {
    /// Tokens run for a prompt of n points.
    pub fn count(self, n: usize) -> usize {
        match self {
            Tokens::Interleaved => prompt_tokens(n),
            Tokens::Pairs => n,
        }
    }

    /// Positions (rows of wpe) of a model of `n_points` points.
    pub fn positions(self, n_points: usize) -> usize {
        match self {
            Tokens::Interleaved => 2 * n_points,
            Tokens::Pairs => n_points,
        }
    }

    /// Inputs per token (columns of the read-in weight) at input dimension d.
    pub fn width(self, d: usize) -> usize {
        match self {
            Tokens::Interleaved => d,
            Tokens::Pairs => 2 * d + 1,
        }
    }

    /// The non-zero inputs of token t of prompt bi as (first read-in column, values) segments.
    /// Interleaved: x_i = xs[bi, i, :] for t = 2i, the y-token [ys[bi, i], 0, ..., 0] for
    /// t = 2i + 1 (only its first entry meets the read-in weights). Pairs: x_t, then x_{t-1} and
    /// y_{t-1} from column d on (none for t = 0).
    #[inline(always)]
    fn inputs<'a>(
        self,
        xs: &'a [f32],
        ys: &'a [f32],
        bi: usize,
        t: usize,
        n: usize,
        d: usize,
    ) -> [(usize, &'a [f32]); 3] {
        match self {
            Tokens::Interleaved => {
                let i = bi * n + t / 2;
                let seg = if t % 2 == 1 { &ys[i..][..1] } else { &xs[i * d..][..d] };
                [(0, seg), (0, &[]), (0, &[])]
            }
            Tokens::Pairs => {
                let i = bi * n + t;
                let query = (0, &xs[i * d..][..d]);
                if t == 0 {
                    [query, (0, &[]), (0, &[])]
                } else {
                    [query, (d, &xs[(i - 1) * d..][..d]), (2 * d, &ys[i - 1..][..1])]
                }
            }
        }
    }

    /// Row of the token that predicts y_{i+1} (0-based i) of prompt p in a token buffer [b, t, c].
    fn x_row(self, p: usize, i: usize, n: usize) -> usize {
        match self {
            Tokens::Interleaved => p * prompt_tokens(n) + 2 * i,
            Tokens::Pairs => p * n + i,
        }
    }
}

multiversion! {
/// Read-in of the interleaved tokens plus position embeddings (llm.c's `encoder_forward`).
///
/// Token 2i is x_i = xs[b, i, :], token 2i+1 is the y-token [ys[b, i], 0, ..., 0] (docs/study.md,
/// "Prompts"); out[b, t, :] = read_in.weight @ token + read_in.bias + wpe[t, :] for the
/// t = 2n - 1 tokens of [`prompt_tokens`]; with [`Tokens::Pairs`], the n pair tokens.
/// out [b, t, c], xs [b, n, d], ys [b, n], w [c, w] (nn.Linear layout, w = `tok.width(d)`),
/// bias [c], wpe [>= t, c].
pub fn encoder_forward(
    out: &mut [f32],
    xs: &[f32],
    ys: &[f32],
    w: &[f32],
    bias: &[f32],
    wpe: &[f32],
    tok: Tokens,
    b: usize,
    n: usize,
    d: usize,
    c: usize,
) {
    // The loops run over the c channels (so that they vectorise; per channel over the d inputs
    // they do not), reading w transposed, [width, c]. Each output sums bias + wpe, then
    // w[ch, j] x[j] in order of j.
    let width = tok.width(d);
    let wt = transpose(&w[..c * width], c, width);
    let (bias, t_len) = (&bias[..c], tok.count(n));
    for bi in 0..b {
        for t in 0..t_len {
            let o = &mut out[(bi * t_len + t) * c..][..c];
            let p = &wpe[t * c..][..c];
            for ch in 0..c {
                o[ch] = bias[ch] + p[ch];
            }
            for (col, seg) in tok.inputs(xs, ys, bi, t, n, d) {
                for (j, &xj) in seg.iter().enumerate() {
                    let wj = &wt[(col + j) * c..][..c];
                    for ch in 0..c {
                        o[ch] += wj[ch] * xj;
                    }
                }
            }
        }
    }
}
}

multiversion! {
/// Backward of [`encoder_forward`]: dw [c, w] +=, dbias [c] +=, dwpe [>= t, c] +=; dout [b, t, c],
/// t = `tok.count(n)`.
pub fn encoder_backward(
    dw: &mut [f32],
    dbias: &mut [f32],
    dwpe: &mut [f32],
    dout: &[f32],
    xs: &[f32],
    ys: &[f32],
    tok: Tokens,
    b: usize,
    n: usize,
    d: usize,
    c: usize,
) {
    // Over channels, into dw transposed (see `encoder_forward`); each entry of dw receives its
    // additions in order of the rows.
    let width = tok.width(d);
    let mut dwt = transpose(&dw[..c * width], c, width);
    let (dbias, t_len) = (&mut dbias[..c], tok.count(n));
    for bi in 0..b {
        for t in 0..t_len {
            let g = &dout[(bi * t_len + t) * c..][..c];
            let dp = &mut dwpe[t * c..][..c];
            for ch in 0..c {
                dp[ch] += g[ch];
                dbias[ch] += g[ch];
            }
            for (col, seg) in tok.inputs(xs, ys, bi, t, n, d) {
                for (j, &xj) in seg.iter().enumerate() {
                    let dwj = &mut dwt[(col + j) * c..][..c];
                    for ch in 0..c {
                        dwj[ch] += g[ch] * xj;
                    }
                }
            }
        }
    }
    dw[..c * width].copy_from_slice(&transpose(&dwt, width, c));
}
}

/// m [rows, cols] -> m^T [cols, rows].
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    transpose_into(&mut t, m, rows, cols);
    t
}

/// out [cols, rows] = m^T for m [rows, cols] contiguous.
pub fn transpose_into(out: &mut [f32], m: &[f32], rows: usize, cols: usize) {
    transpose_strided(out, m, rows, cols, cols);
}

/// out [cols, rows] = m^T for m [rows, cols] with rows `ld` apart. On AVX-512 CPUs in [16, 16]
/// blocks transposed in registers (attention transposes every prompt's keys and values, and the
/// step every weight); elsewhere in [32, 32] blocks, so that both the reads and the writes stay
/// within a few cache lines at a time.
pub fn transpose_strided(out: &mut [f32], m: &[f32], rows: usize, cols: usize, ld: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ld >= cols,
        "transpose: rows {ld} apart are narrower than {cols} columns"
    );
    let (out, m) = (&mut out[..rows * cols], &m[..(rows - 1) * ld + cols]);
    #[cfg(target_arch = "x86_64")]
    if simd::level() == 3 {
        // SAFETY: level 3 means AVX-512F; the slices were cut to the sizes the loop touches.
        unsafe { transpose_avx512(out, m, rows, cols, ld) };
        return;
    }
    transpose_blocked(out, m, rows, cols, ld);
}

/// [`transpose_strided`] in [32, 32] blocks (m and out already cut to their sizes).
fn transpose_blocked(out: &mut [f32], m: &[f32], rows: usize, cols: usize, ld: usize) {
    const B: usize = 32;
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    out[j * rows + i] = m[i * ld + j];
                }
            }
        }
    }
}

/// [`transpose_strided`] in [16, 16] blocks held in registers: 16 row loads, 64 shuffles, 16
/// column stores per block (rows past the matrix's end load as zeros and columns past it are not
/// stored). Faster than the blocked loop and than 16-lane gathers of one column at a time
/// (docs/benchmarks.md).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_avx512(out: &mut [f32], m: &[f32], rows: usize, cols: usize, ld: usize) {
    use std::arch::x86_64::*;
    for i0 in (0..rows).step_by(16) {
        let nr = (rows - i0).min(16);
        let row_mask = simd::lane_mask(nr);
        for j0 in (0..cols).step_by(16) {
            let nc = (cols - j0).min(16);
            let col_mask = simd::lane_mask(nc);
            // SAFETY: row i0 + i < rows, columns j0.. masked to j0 + nc <= cols: inside m's
            // [..(rows - 1) ld + cols].
            let block: [__m512; 16] = std::array::from_fn(|i| {
                if i < nr {
                    _mm512_maskz_loadu_ps(col_mask, m.as_ptr().add((i0 + i) * ld + j0))
                } else {
                    _mm512_setzero_ps()
                }
            });
            let block = transpose_16x16(block);
            for (j, &col) in block.iter().enumerate().take(nc) {
                // SAFETY: out[(j0 + j) rows + i0 + r] for r < nr lies inside [cols, rows].
                _mm512_mask_storeu_ps(out.as_mut_ptr().add((j0 + j) * rows + i0), row_mask, col);
            }
        }
    }
}

/// The transpose of a [16, 16] block held as 16 row vectors: vector j of the result holds column
/// j. Three rounds of shuffles, each pairing vectors 1, 2 then 4 and 8 apart (lane numbers L of
/// 128-bit quarters, entry e of row r written r.e):
/// 1. unpack lo/hi (32-bit) of rows (r, r+1), then lo/hi (64-bit) of those, 2 apart: quarter L of
///    vector 4g + k holds column 4L + k of rows 4g..4g+3;
/// 2. and 3. `shuffle_f32x4` picking quarters (0, 2) (imm 0x88) or (1, 3) (0xdd) of two vectors,
///    4 then 8 apart, which sorts the quarters into whole columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_16x16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // Round 1: t[2p] / t[2p+1] = unpack lo / hi of rows 2p, 2p+1.
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    // Then, per group g of 4 rows: u[4g + k] quarter L = column 4L + k, rows 4g..4g+3.
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let (g, k) = (i / 4, i % 4);
        let (a, b) = (
            _mm512_castps_pd(t[4 * g + k / 2]),
            _mm512_castps_pd(t[4 * g + 2 + k / 2]),
        );
        _mm512_castpd_ps(if k % 2 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        })
    });
    // Round 2: pair groups 0-1 and 2-3 (vectors 4 apart).
    let v: [__m512; 16] = std::array::from_fn(|i| {
        let (h, k, hi) = (i / 8, i % 4, (i / 4) % 2 == 1);
        let (a, b) = (u[8 * h + k], u[8 * h + 4 + k]);
        if hi {
            _mm512_shuffle_f32x4::<0xdd>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        }
    });
    // Round 3: pair the halves (vectors 8 apart).
    std::array::from_fn(|j| {
        let (a, b) = (v[j % 8], v[8 + j % 8]);
        if j < 8 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(a, b)
        }
    })
}

multiversion! {
/// LayerNorm over the last axis: out [bt, c], mean [bt], rstd [bt], inp [bt, c], weight/bias [c].
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    bt: usize,
    c: usize,
) {
    let (weight, bias) = (&weight[..c], &bias[..c]);
    for r in 0..bt {
        let x = &inp[r * c..][..c];
        let m = simd::sum(x) / c as f32;
        // Lane i % 16 sums element i, as in `simd::sum`. Written over whole chunks of 16 (not
        // `acc[i % 16]` per element, which compiles to scalar adds through the stack) so that it
        // vectorises.
        let mut acc = [0.0f32; LANES];
        let mut chunks = x.chunks_exact(LANES);
        for xc in &mut chunks {
            for i in 0..LANES {
                acc[i] += (xc[i] - m) * (xc[i] - m);
            }
        }
        for (i, &xi) in chunks.remainder().iter().enumerate() {
            acc[i] += (xi - m) * (xi - m);
        }
        let v = simd::hsum(acc) / c as f32;
        let s = 1.0 / (v + LN_EPS).sqrt();
        let o = &mut out[r * c..][..c];
        for i in 0..c {
            o[i] = (x[i] - m) * s * weight[i] + bias[i];
        }
        mean[r] = m;
        rstd[r] = s;
    }
}
}

multiversion! {
/// Backward of [`layernorm_forward`]: dinp [bt, c] +=, dweight/dbias [c] +=; dout [bt, c].
pub fn layernorm_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    mean: &[f32],
    rstd: &[f32],
    bt: usize,
    c: usize,
) {
    let (weight, dweight, dbias) = (&weight[..c], &mut dweight[..c], &mut dbias[..c]);
    for r in 0..bt {
        let g = &dout[r * c..][..c];
        let x = &inp[r * c..][..c];
        let (m, s) = (mean[r], rstd[r]);
        // The two reductions of the LayerNorm Jacobian: mean(w * g) and mean(w * g * xhat).
        // Lane i % 16 sums element i, over whole chunks of 16 so that it vectorises (see
        // `layernorm_forward`).
        let mut acc1 = [0.0f32; LANES];
        let mut acc2 = [0.0f32; LANES];
        let mut lane_sums = |x: &[f32], g: &[f32], w: &[f32]| {
            for i in 0..x.len() {
                let xhat = (x[i] - m) * s;
                let dnorm = w[i] * g[i];
                acc1[i] += dnorm;
                acc2[i] += dnorm * xhat;
            }
        };
        let whole = c - c % LANES;
        for q in (0..whole).step_by(LANES) {
            lane_sums(&x[q..q + LANES], &g[q..q + LANES], &weight[q..q + LANES]);
        }
        lane_sums(&x[whole..], &g[whole..], &weight[whole..]);
        let dnorm_mean = simd::hsum(acc1) / c as f32;
        let dnorm_norm_mean = simd::hsum(acc2) / c as f32;
        let di = &mut dinp[r * c..][..c];
        for i in 0..c {
            let xhat = (x[i] - m) * s;
            let dnorm = weight[i] * g[i];
            dbias[i] += g[i];
            dweight[i] += xhat * g[i];
            di[i] += (dnorm - dnorm_mean - xhat * dnorm_norm_mean) * s;
        }
    }
}
}

/// out [bt, oc] = inp [bt, c] @ weight [c, oc] + bias [oc]  (Hugging Face Conv1D layout), plus
/// `residual` [bt, oc] when given: the residual add of a block is fused into its projection.
pub fn matmul_forward(
    out: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    bt: usize,
    c: usize,
    oc: usize,
) {
    let out = &mut out[..bt * oc];
    let (inp, weight) = (View::new(inp, bt, c), View::new(weight, c, oc));
    sgemm_bias(inp, weight, &bias[..oc], residual.map(|res| &res[..bt * oc]), out, oc);
}

/// Backward of [`matmul_forward`]: dinp [bt, c] = dout @ weight^T (overwritten), dweight [c, oc] +=
/// inp^T @ dout, dbias [oc] += column sums of dout [bt, oc]. The residual's gradient is dout itself.
/// `weight_t` is the weight transposed, [oc, c] row-major: the model transposes each weight once
/// per step (see `Gpt::backward`) instead of once per chunk inside the kernel.
pub fn matmul_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight_t: &[f32],
    bt: usize,
    c: usize,
    oc: usize,
) {
    let dout_v = View::new(dout, bt, oc);
    sgemm(dout_v, View::new(weight_t, oc, c), dinp, c, false);
    sgemm(View::new(inp, bt, c).t(), dout_v, dweight, oc, true);
    column_sums(dbias, &dout[..bt * oc], oc);
}

multiversion! {
/// acc [oc] += sums over the rows of m [rows, oc], row by row.
fn column_sums(acc: &mut [f32], m: &[f32], oc: usize) {
    let acc = &mut acc[..oc];
    for row in m.chunks_exact(oc) {
        for i in 0..oc {
            acc[i] += row[i];
        }
    }
}
}

/// Causal multi-head self-attention, scaled by 1/sqrt(head_dim) (docs/study.md, "Model").
/// out [b, t, c] (heads concatenated), att [b, nh, t, t] (softmax probabilities, upper triangle 0),
/// qkv [b, t, 3c] = [q | k | v], head h at columns h*hs..(h+1)*hs of each.
///
/// Per (prompt, head): scores [t, t] = q k^T and out = att v are two small matmuls through the
/// kernel (strided views into qkv, no copies); the causal softmax runs row by row in between.
pub fn attention_forward(out: &mut [f32], att: &mut [f32], qkv: &[f32], b: usize, t_len: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    // One prompt's keys transposed, [c, t]: head h's k^T [hs, t] is rows h hs.. of it, contiguous,
    // as the kernel reads b (a strided b costs it a copy per call, per head).
    let mut kt = vec![0.0f32; c * t_len];
    for bi in 0..b {
        let qkv_b = &qkv[bi * t_len * c3..][..t_len * c3];
        transpose_strided(&mut kt, &qkv_b[c..], t_len, c, c3);
        for h in 0..nh {
            let att_bh = &mut att[(bi * nh + h) * t_len * t_len..][..t_len * t_len];
            let q = head_view(qkv_b, h * hs, t_len, hs, c3); // [t, hs]
            let k_t = View::new(&kt[h * hs * t_len..][..hs * t_len], hs, t_len); // [hs, t]
            let v = head_view(qkv_b, 2 * c + h * hs, t_len, hs, c3); // [t, hs]
            sgemm(q, k_t, att_bh, t_len, false); // scores [t, t]
            softmax_causal(att_bh, t_len, scale);
            let o = &mut out[bi * t_len * c + h * hs..];
            sgemm(View::new(att_bh, t_len, t_len), v, o, c, false); // out [t, hs], row stride c
        }
    }
}

/// Row t of att [t, t] (raw scores q.k) becomes softmax(scale * scores[0..=t]), zero after t.
fn softmax_causal(att: &mut [f32], t_len: usize, scale: f32) {
    let att = &mut att[..t_len * t_len];
    #[cfg(target_arch = "x86_64")]
    if simd::level() == 3 {
        // SAFETY: level 3 means AVX-512F; att holds [t, t].
        unsafe { softmax_causal_avx512(att, t_len, scale) };
        return;
    }
    softmax_causal_portable(att, t_len, scale);
}

/// [`softmax_causal`] in 16-lane vectors, the last one of each row masked. The portable loop
/// compiles to a 16-lane loop plus narrower and scalar code for what is left of each row past
/// whole chunks of 16: at small's t = 41, 285 of a head's 861 exps (all of the first 15 rows).
/// The bits are the portable
/// loop's: the same exp lane by lane ([`simd::exp_avx512`]), each exp added to lane i % 16 of
/// the sum in order and the lanes summed by [`simd::hsum`], as [`simd::sum`] does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_causal_avx512(att: &mut [f32], t_len: usize, scale: f32) {
    use std::arch::x86_64::*;
    let scale_v = _mm512_set1_ps(scale);
    for t in 0..t_len {
        let row = &mut att[t * t_len..][..t_len];
        let (len, p) = (t + 1, row.as_mut_ptr());
        // SAFETY (every access below): lanes c0 + i < len <= t_len of the row; the rest masked.
        let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
        for c0 in (0..len).step_by(16) {
            let m = simd::lane_mask(len - c0);
            vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, m, p.add(c0)));
        }
        let maxv = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        let mut acc = _mm512_setzero_ps();
        for c0 in (0..len).step_by(16) {
            let m = simd::lane_mask(len - c0);
            let x = _mm512_maskz_loadu_ps(m, p.add(c0));
            let e = simd::exp_avx512(_mm512_mul_ps(_mm512_sub_ps(x, maxv), scale_v));
            _mm512_mask_storeu_ps(p.add(c0), m, e);
            acc = _mm512_mask_add_ps(acc, m, acc, e);
        }
        let mut lanes = [0.0f32; simd::LANES];
        _mm512_storeu_ps(lanes.as_mut_ptr(), acc);
        let inv = _mm512_set1_ps(1.0 / simd::hsum(lanes));
        for c0 in (0..len).step_by(16) {
            let m = simd::lane_mask(len - c0);
            _mm512_mask_storeu_ps(p.add(c0), m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p.add(c0)), inv));
        }
        row[len..].fill(0.0);
    }
}

multiversion! {
/// [`softmax_causal`] in plain loops (CPUs without AVX-512).
fn softmax_causal_portable(att: &mut [f32], t_len: usize, scale: f32) {
    for t in 0..t_len {
        let row = &mut att[t * t_len..][..t_len];
        let mut maxv = f32::NEG_INFINITY;
        for &v in &row[..=t] {
            maxv = maxv.max(v);
        }
        for v in row[..=t].iter_mut() {
            *v = simd::exp((*v - maxv) * scale);
        }
        let inv = 1.0 / simd::sum(&row[..=t]);
        for v in row[..=t].iter_mut() {
            *v *= inv;
        }
        row[t + 1..].fill(0.0);
    }
}
}

/// Backward of [`attention_forward`]: dqkv [b, t, 3c] (overwritten); dout [b, t, c], qkv and att
/// as saved by the forward pass. Per (prompt, head), with A = att and dO = dout:
/// dA = dO v^T, dv = A^T dO, dP = A * (dA - rowsum(A * dA)) * scale (softmax backward; 0 above the
/// diagonal where A = 0), dq = dP k, dk = dP^T q.
pub fn attention_backward(
    dqkv: &mut [f32],
    dout: &[f32],
    qkv: &[f32],
    att: &[f32],
    b: usize,
    t_len: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    let mut dp = vec![0.0f32; t_len * t_len]; // [t, t] scratch
    let mut vt = vec![0.0f32; c * t_len]; // one prompt's values transposed, [c, t] (see forward)
    for bi in 0..b {
        let qkv_b = &qkv[bi * t_len * c3..][..t_len * c3];
        let dqkv_b = &mut dqkv[bi * t_len * c3..][..t_len * c3];
        let dout_b = &dout[bi * t_len * c..][..t_len * c];
        transpose_strided(&mut vt, &qkv_b[2 * c..], t_len, c, c3);
        for h in 0..nh {
            let a = View::new(&att[(bi * nh + h) * t_len * t_len..][..t_len * t_len], t_len, t_len);
            let q = head_view(qkv_b, h * hs, t_len, hs, c3);
            let k = head_view(qkv_b, c + h * hs, t_len, hs, c3);
            let v_t = View::new(&vt[h * hs * t_len..][..hs * t_len], hs, t_len); // [hs, t]
            let d_o = head_view(dout_b, h * hs, t_len, hs, c); // [t, hs]
            sgemm(d_o, v_t, &mut dp, t_len, false); // dA [t, t]
            sgemm(a.t(), d_o, &mut dqkv_b[2 * c + h * hs..], c3, false); // dv [t, hs]
            softmax_backward(&mut dp, a.data, t_len, scale);
            let dpv = View::new(&dp, t_len, t_len);
            sgemm(dpv, k, &mut dqkv_b[h * hs..], c3, false); // dq [t, hs]
            sgemm(dpv.t(), q, &mut dqkv_b[c + h * hs..], c3, false); // dk [t, hs]
        }
    }
}

multiversion! {
/// dp [t, t] holds dA on entry and dP = A * (dA - rowsum(A * dA)) * scale on return.
fn softmax_backward(dp: &mut [f32], a: &[f32], t_len: usize, scale: f32) {
    for t in 0..t_len {
        let row = &mut dp[t * t_len..][..t_len];
        let ar = &a[t * t_len..][..t_len];
        let s = simd::dot(ar, row);
        for (d, &p) in row.iter_mut().zip(ar) {
            *d = p * (*d - s) * scale;
        }
    }
}
}

/// The [t, hs] block of one head inside rows of width `stride`, starting at column `col`.
fn head_view(m: &[f32], col: usize, t_len: usize, hs: usize, stride: usize) -> View<'_> {
    View {
        data: &m[col..],
        rows: t_len,
        cols: hs,
        rs: stride,
        cs: 1,
    }
}

const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2 / pi)

multiversion! {
/// tanh-approximated GELU (GPT-2's "gelu_new"): out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
/// computed as x * sigmoid(2u) (the same function: 0.5 (1 + tanh u) = 1 / (1 + e^{-2u})).
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = x * gelu_sigmoid(x);
    }
}
}

multiversion! {
/// Backward of [`gelu_forward`]: dinp = gelu'(inp) * dout (overwritten).
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    for ((di, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
        *di = gelu_grad(x) * g;
    }
}
}

multiversion! {
/// [`gelu_forward`] for training: `inp_grad` holds the input on entry and GELU's derivative at it
/// on return, all that [`gelu_backward_from_grad`] needs. The sigmoid (an exp and a division, the
/// division the bound of both passes) is computed once instead of again in the backward pass;
/// the derivative's bits are those [`gelu_backward`] computes.
pub fn gelu_forward_keep_grad(out: &mut [f32], inp_grad: &mut [f32]) {
    for (o, xg) in out.iter_mut().zip(inp_grad.iter_mut()) {
        let x = *xg;
        let s = gelu_sigmoid(x);
        *o = x * s;
        *xg = gelu_grad_at(x, s);
    }
}
}

multiversion! {
/// Backward of [`gelu_forward_keep_grad`]: d [n] holds dout on entry and dinp = gelu'(inp) * dout
/// on return, `grad` holding gelu'(inp).
pub fn gelu_backward_from_grad(d: &mut [f32], grad: &[f32]) {
    for (di, &g) in d.iter_mut().zip(grad) {
        *di *= g;
    }
}
}

/// s = 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
#[inline(always)]
fn gelu_sigmoid(x: f32) -> f32 {
    let u = GELU_SCALE * (x + 0.044715 * x * x * x);
    1.0 / (1.0 + simd::exp(-2.0 * u))
}

/// d/dx [x s] = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u' = s + 2 x s (1 - s) u'.
#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    gelu_grad_at(x, gelu_sigmoid(x))
}

/// [`gelu_grad`] with s = gelu_sigmoid(x) given.
#[inline(always)]
fn gelu_grad_at(x: f32, s: f32) -> f32 {
    let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
    s + 2.0 * x * s * (1.0 - s) * du
}

/// out = a + b (llm.c's `residual_forward`; the model fuses it into [`matmul_forward`]).
pub fn residual_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// Read-out at the x-tokens: preds [rows] = lnf[r, :] . w [c] + bias, lnf [rows, c] holding the
/// final LayerNorm at the x-tokens only (docs/study.md, "Prompts": the prediction for y_i is the
/// read-out at the x_i token; the model's last block runs on the x-tokens alone, see
/// `Chunk::forward`).
pub fn readout_forward(preds: &mut [f32], lnf: &[f32], w: &[f32], bias: f32, rows: usize, c: usize) {
    for (p, h) in preds[..rows].iter_mut().zip(lnf.chunks_exact(c)) {
        *p = simd::dot(h, w) + bias;
    }
}

/// Backward of [`readout_forward`]: dlnf [rows, c] (overwritten), dw [c] +=, dbias [1] +=;
/// dpreds [rows].
pub fn readout_backward(
    dlnf: &mut [f32],
    dw: &mut [f32],
    dbias: &mut [f32],
    dpreds: &[f32],
    lnf: &[f32],
    w: &[f32],
    rows: usize,
    c: usize,
) {
    let dw = &mut dw[..c];
    for r in 0..rows {
        let g = dpreds[r];
        let h = &lnf[r * c..][..c];
        for ch in 0..c {
            dw[ch] += g * h[ch];
        }
        dbias[0] += g;
        for (dl, &wc) in dlnf[r * c..][..c].iter_mut().zip(w) {
            *dl = g * wc;
        }
    }
}

/// Keeps the rows that predict (the x-tokens) of a token buffer in place: [b, t, c] -> [b * n, c],
/// x-token i of prompt p moving to row p * n + i (already there with [`Tokens::Pairs`]). Rows are
/// moved in ascending order, so each is read before anything overwrites it (row r = p n + i is
/// written from row p (2n - 1) + 2i >= r).
pub fn compact_x_rows(buf: &mut [f32], tok: Tokens, b: usize, n: usize, c: usize) {
    if tok == Tokens::Pairs {
        return;
    }
    for r in 1..b * n {
        let from = tok.x_row(r / n, r % n, n);
        buf.copy_within(from * c..(from + 1) * c, r * c);
    }
}

/// Inverse of [`compact_x_rows`] for gradients: [b * n, c] -> [b, t, c] in place, the y-token
/// rows zero (they did not reach the output). Rows move in descending order, so each is read
/// before anything overwrites it (row r is written into rows x_row >= r and the y-token after it).
pub fn expand_x_rows(buf: &mut [f32], tok: Tokens, b: usize, n: usize, c: usize) {
    if tok == Tokens::Pairs {
        return;
    }
    let t = tok.count(n);
    for r in (0..b * n).rev() {
        let to = tok.x_row(r / n, r % n, n);
        buf.copy_within(r * c..(r + 1) * c, to * c);
        if to % t + 1 < t {
            buf[(to + 1) * c..][..c].fill(0.0);
        }
    }
}

/// out [b * n, c] = the x-token rows of inp [b, t, c] (see [`compact_x_rows`]).
pub fn gather_x_rows(out: &mut [f32], inp: &[f32], tok: Tokens, b: usize, n: usize, c: usize) {
    for (r, o) in out[..b * n * c].chunks_exact_mut(c).enumerate() {
        let from = tok.x_row(r / n, r % n, n);
        o.copy_from_slice(&inp[from * c..][..c]);
    }
}

/// Mean squared error (the training loss, docs/study.md, "Prompts"): returns the *sum* of squared
/// errors over [bt] (the caller divides by the total count, which spans all chunks) and writes
/// dpreds = 2 (pred - y) / count.
pub fn mse_forward(dpreds: &mut [f32], preds: &[f32], ys: &[f32], count: usize) -> f64 {
    let mut sum = 0.0f64;
    let k = 2.0 / count as f32;
    for ((dp, &p), &y) in dpreds.iter_mut().zip(preds).zip(ys) {
        let e = p - y;
        sum += (e as f64) * (e as f64);
        *dp = k * e;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 causal softmax gives the portable loop's bits on every row length around the
    /// 16-lane chunks (rows 1..=t of t up to 82, standard's prompt).
    #[test]
    fn softmax_causal_paths_agree_bit_for_bit() {
        for t_len in [1, 2, 15, 16, 17, 33, 41, 82] {
            let scores: Vec<f32> = (0..t_len * t_len)
                .map(|i| ((i * 7919) % 1013) as f32 * 0.01 - 5.0)
                .collect();
            let mut want = scores.clone();
            softmax_causal_portable(&mut want, t_len, 0.17);
            let mut got = scores.clone();
            softmax_causal(&mut got, t_len, 0.17);
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "t = {t_len}");
            let row_sum: f32 = want[(t_len - 1) * t_len..].iter().sum();
            assert!((row_sum - 1.0).abs() < 1e-5, "t = {t_len}: last row sums to {row_sum}");
        }
    }

    /// Both paths of `transpose_strided` (the AVX-512 gathers where the CPU has them, and the
    /// blocked loop) against the definition, on row counts around the 16-row gathers and the
    /// 32-row blocks, with rows wider than the matrix (ld > cols, as for a prompt's keys in qkv).
    #[test]
    fn transpose_strided_is_the_transpose_on_every_block_edge() {
        for &(rows, cols) in &[(1, 1), (15, 5), (16, 16), (17, 33), (42, 128), (65, 7)] {
            let ld = cols + 3;
            let m: Vec<f32> = (0..rows * ld).map(|x| x as f32).collect();
            let want: Vec<f32> = (0..cols * rows).map(|x| m[(x % rows) * ld + x / rows]).collect();
            let mut got = vec![f32::NAN; rows * cols];
            transpose_strided(&mut got, &m, rows, cols, ld);
            assert_eq!(got, want, "{rows} x {cols} (dispatched)");
            let mut got = vec![f32::NAN; rows * cols];
            transpose_blocked(&mut got, &m[..(rows - 1) * ld + cols], rows, cols, ld);
            assert_eq!(got, want, "{rows} x {cols} (blocked)");
        }
    }
}
