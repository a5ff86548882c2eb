//! The GPT-2-style in-context learner of docs/study.md ("Model"), llm.c style: every parameter in one
//! flat buffer, every activation allocated once, explicit forward and backward passes built from
//! the layer functions of [`crate::layers`].
//!
//! Parallelism: the batch is cut into a fixed number of chunks that depends only on the batch size
//! (never on the thread count). Each chunk runs the whole forward and backward pass on its rows
//! with its own activations and its own parameter-gradient buffer; the chunk gradients are then
//! summed in chunk order. Every floating-point sum therefore happens in the same order with 1 or 16
//! threads, and losses and gradients are bit-identical.

use crate::buf::Buf;
use iclab_core::{ConfigError, PromptBatch};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layers::*;

/// Size of the transformer (docs/study.md, "Model": d, n points, layers, heads, width E).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Input dimension: x-token = x, y-token = [y, 0, ..., 0].
    pub d: usize,
    /// Maximum points per prompt; block size (positions) = 2 * n_points tokens (n_points in pairs).
    pub n_points: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// How prompts become tokens (default: the study's interleaved x and y tokens). Left out of
    /// the saved config when it is the default, so configs and their hashes stay as they were.
    #[serde(default, skip_serializing_if = "is_interleaved")]
    pub tokens: Tokens,
}

fn is_interleaved(t: &Tokens) -> bool {
    *t == Tokens::Interleaved
}

/// Names of the size presets, for error messages.
pub const PRESETS: &str = "tiny, small, standard";

impl ModelConfig {
    /// "tiny" (d 5, n 11, 2 layers, 2 heads, 64 wide), "small" (d 10, n 21, 4 layers, 4 heads, 128),
    /// "standard" (d 20, n 41, 12 layers, 8 heads, 256): the study's paper size (about 9.5 M params).
    pub fn preset(name: &str) -> Result<ModelConfig, ConfigError> {
        let (d, n_points, n_layer, n_head, n_embd) = match name {
            "tiny" => (5, 11, 2, 2, 64),
            "small" => (10, 21, 4, 4, 128),
            "standard" => (20, 41, 12, 8, 256),
            _ => return Err(ConfigError::new("model.preset", name, PRESETS)),
        };
        Ok(ModelConfig {
            d,
            n_points,
            n_layer,
            n_head,
            n_embd,
            tokens: Tokens::Interleaved,
        })
    }

    /// All sizes >= 1 and the width divisible by the number of heads.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("d", self.d),
            ("n_points", self.n_points),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
        ] {
            iclab_core::error::check_at_least(field, v, 1)?;
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ConfigError::new(
                "n_embd",
                self.n_embd,
                format!("a multiple of n_head = {}", self.n_head),
            ));
        }
        Ok(())
    }

    /// Number of f32 parameters.
    pub fn num_params(&self) -> usize {
        Layout::new(self).total
    }

    /// Positions per prompt at full length (rows of wpe).
    pub fn block_size(&self) -> usize {
        self.tokens.positions(self.n_points)
    }
}

/// One named tensor of the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// Offsets of one block's tensors. Each weight is immediately followed by its bias.
#[derive(Clone, Debug)]
struct LayerOffsets {
    ln_1_w: usize,
    ln_1_b: usize,
    c_attn_w: usize,
    c_attn_b: usize,
    attn_proj_w: usize,
    attn_proj_b: usize,
    ln_2_w: usize,
    ln_2_b: usize,
    c_fc_w: usize,
    c_fc_b: usize,
    mlp_proj_w: usize,
    mlp_proj_b: usize,
}

/// Where every tensor lives in the flat buffer: read_in, wpe, h.0 .. h.{L-1}, ln_f, read_out.
#[derive(Clone, Debug)]
struct Layout {
    read_in_w: usize,
    read_in_b: usize,
    wpe: usize,
    layers: Vec<LayerOffsets>,
    ln_f_w: usize,
    ln_f_b: usize,
    read_out_w: usize,
    read_out_b: usize,
    total: usize,
    tensors: Vec<TensorInfo>,
}

impl Layout {
    fn new(cfg: &ModelConfig) -> Layout {
        let (c, d) = (cfg.n_embd, cfg.d);
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut push = |name: String, shape: Vec<usize>| -> usize {
            let offset = tensors.last().map(|t| t.offset + t.len).unwrap_or(0);
            let len = shape.iter().product();
            tensors.push(TensorInfo {
                name,
                shape,
                offset,
                len,
            });
            offset
        };
        let read_in_w = push("read_in.weight".into(), vec![c, cfg.tokens.width(d)]);
        let read_in_b = push("read_in.bias".into(), vec![c]);
        let wpe = push("wpe.weight".into(), vec![cfg.block_size(), c]);
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let h = |s: &str| format!("h.{l}.{s}");
            layers.push(LayerOffsets {
                ln_1_w: push(h("ln_1.weight"), vec![c]),
                ln_1_b: push(h("ln_1.bias"), vec![c]),
                c_attn_w: push(h("attn.c_attn.weight"), vec![c, 3 * c]),
                c_attn_b: push(h("attn.c_attn.bias"), vec![3 * c]),
                attn_proj_w: push(h("attn.c_proj.weight"), vec![c, c]),
                attn_proj_b: push(h("attn.c_proj.bias"), vec![c]),
                ln_2_w: push(h("ln_2.weight"), vec![c]),
                ln_2_b: push(h("ln_2.bias"), vec![c]),
                c_fc_w: push(h("mlp.c_fc.weight"), vec![c, 4 * c]),
                c_fc_b: push(h("mlp.c_fc.bias"), vec![4 * c]),
                mlp_proj_w: push(h("mlp.c_proj.weight"), vec![4 * c, c]),
                mlp_proj_b: push(h("mlp.c_proj.bias"), vec![c]),
            });
        }
        let ln_f_w = push("ln_f.weight".into(), vec![c]);
        let ln_f_b = push("ln_f.bias".into(), vec![c]);
        let read_out_w = push("read_out.weight".into(), vec![1, c]);
        let read_out_b = push("read_out.bias".into(), vec![1]);
        let total = tensors.last().map(|t| t.offset + t.len).unwrap_or(0);
        Layout {
            read_in_w,
            read_in_b,
            wpe,
            layers,
            ln_f_w,
            ln_f_b,
            read_out_w,
            read_out_b,
            total,
            tensors,
        }
    }

    /// pt[w] = the transpose of p[w] for each block's four weights ([in, out] -> [out, in], at the
    /// same offset); other entries of pt are left as they are. The backward pass reads
    /// weight^T for every chunk's input gradient.
    fn transpose_weights(&self, cfg: &ModelConfig, p: &[f32], pt: &mut [f32]) {
        let c = cfg.n_embd;
        let mut weights: Vec<(usize, usize, usize)> = self
            .layers
            .iter()
            .flat_map(|o| {
                [
                    (o.c_attn_w, c, 3 * c),
                    (o.attn_proj_w, c, c),
                    (o.c_fc_w, c, 4 * c),
                    (o.mlp_proj_w, 4 * c, c),
                ]
            })
            .collect();
        weights.sort_unstable();
        // One disjoint slice of pt per weight, so that the transposes run in parallel: serial,
        // they were the one single-threaded part of a step's backward pass.
        let mut jobs = Vec::with_capacity(weights.len());
        let (mut rest, mut at) = (pt, 0);
        for &(off, rows, cols) in &weights {
            let (_, tail) = rest.split_at_mut(off - at);
            let (wt, tail) = tail.split_at_mut(rows * cols);
            jobs.push((&p[off..][..rows * cols], wt, rows, cols));
            (rest, at) = (tail, off + rows * cols);
        }
        jobs.into_par_iter()
            .for_each(|(w, wt, rows, cols)| transpose_into(wt, w, rows, cols));
    }
}

/// Rows per chunk for a batch of `b` prompts: at most `MAX_CHUNKS` chunks, at least `MIN_ROWS`
/// rows each. Depends on `b` only, so the arithmetic is the same for every thread count.
pub(crate) fn chunk_rows(b: usize) -> usize {
    const MAX_CHUNKS: usize = 4;
    const MIN_ROWS: usize = 8;
    let chunks = b.div_ceil(MIN_ROWS).clamp(1, MAX_CHUNKS);
    b.div_ceil(chunks).max(1)
}

/// Activations and scratch of one chunk of the batch, allocated for the largest (rows, tokens)
/// seen and reused. `bt` = rows * tokens of the current pass.
#[derive(Default)]
struct Chunk {
    cap_rows: usize,
    cap_n: usize,
    rows: usize,
    n: usize,
    xs: Buf,        // [rows, n, d]
    ys: Buf,        // [rows, n]
    residual: Buf,  // [2L + 1, bt, c]: read-in output, then per block after attn and after mlp
    ln1: Buf,       // [L, bt, c]
    ln1_mean: Buf,  // [L, bt]
    ln1_rstd: Buf,  // [L, bt]
    qkv: Buf,       // [L, bt, 3c]
    att: Buf,       // [L, rows, nh, t, t]
    atty: Buf,      // [L, bt, c]
    ln2: Buf,       // [L, bt, c]
    ln2_mean: Buf,  // [L, bt]
    ln2_rstd: Buf,  // [L, bt]
    fch: Buf,       // [L, bt, 4c]: c_fc's output, then GELU's derivative at it
    fch_gelu: Buf,  // [L, bt, 4c]
    x_resid: Buf,   // [rows * n, c]: the last block's input at the x-tokens
    lnf: Buf,       // [rows * n, c]: x-tokens only, like everything after the last attention
    lnf_mean: Buf,  // [rows * n]
    lnf_rstd: Buf,  // [rows * n]
    preds: Buf,     // [rows, n]
    dpreds: Buf,    // [rows, n]
    dresidual: Buf, // [bt, c]
    dbuf: Buf,      // [bt, c]
    dqkv: Buf,      // [bt, 3c]
    dfch: Buf,      // [bt, 4c]
    grads: Buf,     // [num_params]: this chunk's share of the parameter gradient
}

impl Chunk {
    /// Makes room for `rows` prompts of `n` points (grows only).
    fn ensure(&mut self, cfg: &ModelConfig, rows: usize, n: usize, with_grads: bool) {
        if rows > self.cap_rows || n > self.cap_n {
            let rows = rows.max(self.cap_rows);
            let n = n.max(self.cap_n);
            let t = cfg.tokens.count(n);
            let (l, c, nh) = (cfg.n_layer, cfg.n_embd, cfg.n_head);
            let (bt, bn) = (rows * t, rows * n);
            let had_grads = !self.grads.is_empty();
            *self = Chunk {
                cap_rows: rows,
                cap_n: n,
                xs: Buf::zeroed(bn * cfg.d),
                ys: Buf::zeroed(bn),
                residual: Buf::zeroed((2 * l + 1) * bt * c),
                ln1: Buf::zeroed(l * bt * c),
                ln1_mean: Buf::zeroed(l * bt),
                ln1_rstd: Buf::zeroed(l * bt),
                qkv: Buf::zeroed(l * bt * 3 * c),
                att: Buf::zeroed(l * rows * nh * t * t),
                atty: Buf::zeroed(l * bt * c),
                ln2: Buf::zeroed(l * bt * c),
                ln2_mean: Buf::zeroed(l * bt),
                ln2_rstd: Buf::zeroed(l * bt),
                fch: Buf::zeroed(l * bt * 4 * c),
                fch_gelu: Buf::zeroed(l * bt * 4 * c),
                x_resid: Buf::zeroed(bn * c),
                lnf: Buf::zeroed(bn * c),
                lnf_mean: Buf::zeroed(bn),
                lnf_rstd: Buf::zeroed(bn),
                preds: Buf::zeroed(bn),
                dpreds: Buf::zeroed(bn),
                ..Chunk::default()
            };
            if had_grads {
                self.alloc_backward(cfg);
            }
        }
        if with_grads && self.grads.is_empty() {
            self.alloc_backward(cfg);
        }
        self.rows = rows;
        self.n = n;
    }

    fn alloc_backward(&mut self, cfg: &ModelConfig) {
        let c = cfg.n_embd;
        let bt = self.cap_rows * cfg.tokens.count(self.cap_n);
        self.dresidual = Buf::zeroed(bt * c);
        self.dbuf = Buf::zeroed(bt * c);
        self.dqkv = Buf::zeroed(bt * 3 * c);
        self.dfch = Buf::zeroed(bt * 4 * c);
        self.grads = Buf::zeroed(cfg.num_params());
    }

    /// The whole forward pass of this chunk's rows (inputs already copied into xs, ys).
    fn forward(&mut self, cfg: &ModelConfig, lay: &Layout, p: &[f32]) {
        let _ftz = crate::simd::FlushSubnormals::new();
        let (b, n, d, c, nh) = (self.rows, self.n, cfg.d, cfg.n_embd, cfg.n_head);
        let (tok, t) = (cfg.tokens, cfg.tokens.count(n));
        let bt = b * t;
        let (bc, bc3, bc4) = (bt * c, bt * 3 * c, bt * 4 * c);
        let att_len = b * nh * t * t;
        encoder_forward(
            &mut self.residual[..bc],
            &self.xs,
            &self.ys,
            &p[lay.read_in_w..][..c * tok.width(d)],
            &p[lay.read_in_b..][..c],
            &p[lay.wpe..][..t * c],
            tok,
            b,
            n,
            d,
            c,
        );
        for (l, o) in lay.layers.iter().enumerate() {
            // residual[2l] -> (attention) residual[2l+1] -> (mlp) residual[2l+2]
            let (done, rest) = self.residual.split_at_mut((2 * l + 1) * bc);
            let res_in = &done[2 * l * bc..][..bc];
            let (res_mid, rest) = rest.split_at_mut(bc);
            let res_out = &mut rest[..bc];
            let ln1 = &mut self.ln1[l * bc..][..bc];
            let ln1_mean = &mut self.ln1_mean[l * bt..][..bt];
            let ln1_rstd = &mut self.ln1_rstd[l * bt..][..bt];
            let qkv = &mut self.qkv[l * bc3..][..bc3];
            let att = &mut self.att[l * att_len..][..att_len];
            let atty = &mut self.atty[l * bc..][..bc];

            layernorm_forward(
                ln1,
                ln1_mean,
                ln1_rstd,
                res_in,
                &p[o.ln_1_w..][..c],
                &p[o.ln_1_b..][..c],
                bt,
                c,
            );
            matmul_forward(
                qkv,
                ln1,
                &p[o.c_attn_w..][..c * 3 * c],
                &p[o.c_attn_b..][..3 * c],
                None,
                bt,
                c,
                3 * c,
            );
            attention_forward(atty, att, qkv, b, t, c, nh);
            // Only the x-tokens' outputs of the last block reach the loss (docs/study.md,
            // "Prompts": predictions are read out at the x-tokens, outputs at y-tokens are
            // ignored). Its attention needs every token's keys and values, but from its output
            // projection on it runs on the m = b * n x-token rows alone. That skips 9C^2 of its
            // 12C^2 per-token matmul work for the n - 1 y-tokens run: about 3/(8L) of the blocks'
            // matmuls, 19% at 2 layers, 9% at 4.
            let (m, res_in) = if l + 1 == cfg.n_layer {
                compact_x_rows(atty, tok, b, n, c);
                gather_x_rows(&mut self.x_resid, res_in, tok, b, n, c);
                (b * n, &self.x_resid[..b * n * c])
            } else {
                (bt, res_in)
            };
            let (mc, mc4) = (m * c, m * 4 * c);
            let ln2 = &mut self.ln2[l * bc..][..mc];
            let ln2_mean = &mut self.ln2_mean[l * bt..][..m];
            let ln2_rstd = &mut self.ln2_rstd[l * bt..][..m];
            let fch = &mut self.fch[l * bc4..][..mc4];
            let fch_gelu = &mut self.fch_gelu[l * bc4..][..mc4];
            let (res_mid, res_out) = (&mut res_mid[..mc], &mut res_out[..mc]);
            matmul_forward(
                res_mid,
                &atty[..mc],
                &p[o.attn_proj_w..][..c * c],
                &p[o.attn_proj_b..][..c],
                Some(res_in),
                m,
                c,
                c,
            );
            layernorm_forward(
                ln2,
                ln2_mean,
                ln2_rstd,
                res_mid,
                &p[o.ln_2_w..][..c],
                &p[o.ln_2_b..][..c],
                m,
                c,
            );
            matmul_forward(
                fch,
                ln2,
                &p[o.c_fc_w..][..c * 4 * c],
                &p[o.c_fc_b..][..4 * c],
                None,
                m,
                c,
                4 * c,
            );
            // fch keeps gelu'(fch) from here on: all the backward pass reads of it.
            gelu_forward_keep_grad(fch_gelu, fch);
            matmul_forward(
                res_out,
                fch_gelu,
                &p[o.mlp_proj_w..][..4 * c * c],
                &p[o.mlp_proj_b..][..c],
                Some(res_mid),
                m,
                4 * c,
                c,
            );
        }
        // From here on, [b * n] x-token rows (see above).
        let (l, bn) = (cfg.n_layer, b * n);
        layernorm_forward(
            &mut self.lnf[..bn * c],
            &mut self.lnf_mean[..bn],
            &mut self.lnf_rstd[..bn],
            &self.residual[2 * l * bc..][..bn * c],
            &p[lay.ln_f_w..][..c],
            &p[lay.ln_f_b..][..c],
            bn,
            c,
        );
        readout_forward(
            &mut self.preds[..bn],
            &self.lnf[..bn * c],
            &p[lay.read_out_w..][..c],
            p[lay.read_out_b],
            bn,
            c,
        );
    }

    /// The whole backward pass of this chunk, from self.dpreds into self.grads (overwritten).
    /// `pt` holds every block weight transposed, at the weight's own offset (see
    /// [`Layout::transpose_weights`]).
    fn backward(&mut self, cfg: &ModelConfig, lay: &Layout, p: &[f32], pt: &[f32]) {
        let _ftz = crate::simd::FlushSubnormals::new();
        let (b, n, d, c, nh) = (self.rows, self.n, cfg.d, cfg.n_embd, cfg.n_head);
        let (tok, t) = (cfg.tokens, cfg.tokens.count(n));
        let bt = b * t;
        let (bc, bc3, bc4) = (bt * c, bt * 3 * c, bt * 4 * c);
        let att_len = b * nh * t * t;
        let g = &mut self.grads[..];
        g.fill(0.0);
        let dres = &mut self.dresidual[..bc];
        let dbuf = &mut self.dbuf[..bc];
        let dqkv = &mut self.dqkv[..bc3];
        let dfch = &mut self.dfch[..bc4];
        // The read-out, the final LayerNorm and the last block down to its attention ran on the
        // bn = b * n x-token rows only (see `forward`); their gradients are [bn, c] until the
        // attention, where they are expanded back to every token (zero at the y-tokens).
        let bn = b * n;
        {
            let (gw, gb) = g[lay.read_out_w..].split_at_mut(c);
            readout_backward(
                dbuf,
                gw,
                &mut gb[..1],
                &self.dpreds[..bn],
                &self.lnf,
                &p[lay.read_out_w..][..c],
                bn,
                c,
            );
        }
        dres[..bn * c].fill(0.0);
        {
            let (gw, gb) = g[lay.ln_f_w..].split_at_mut(c);
            let l = cfg.n_layer;
            layernorm_backward(
                dres,
                gw,
                &mut gb[..c],
                dbuf,
                &self.residual[2 * l * bc..][..bn * c],
                &p[lay.ln_f_w..][..c],
                &self.lnf_mean[..bn],
                &self.lnf_rstd[..bn],
                bn,
                c,
            );
        }
        for (l, o) in lay.layers.iter().enumerate().rev() {
            let last = l + 1 == cfg.n_layer;
            let m = if last { bn } else { bt };
            let (mc, mc4) = (m * c, m * 4 * c);
            let res_in = &self.residual[2 * l * bc..][..bc];
            let res_mid = &self.residual[(2 * l + 1) * bc..][..mc];
            let ln1 = &self.ln1[l * bc..][..bc];
            let qkv = &self.qkv[l * bc3..][..bc3];
            let att = &self.att[l * att_len..][..att_len];
            let atty = &self.atty[l * bc..][..mc];
            let ln2 = &self.ln2[l * bc..][..mc];
            let fch = &self.fch[l * bc4..][..mc4];
            let fch_gelu = &self.fch_gelu[l * bc4..][..mc4];
            let dfch = &mut dfch[..mc4];

            // residual_out = res_mid + fch_gelu @ W_proj + b: d res_mid = dres (pass-through).
            let (gw, gb) = wb(g, o.mlp_proj_w, 4 * c * c, c);
            matmul_backward(
                dfch,
                gw,
                gb,
                &dres[..mc],
                fch_gelu,
                &pt[o.mlp_proj_w..][..4 * c * c],
                m,
                4 * c,
                c,
            );
            gelu_backward_from_grad(dfch, fch);
            let (gw, gb) = wb(g, o.c_fc_w, c * 4 * c, 4 * c);
            matmul_backward(dbuf, gw, gb, dfch, ln2, &pt[o.c_fc_w..][..c * 4 * c], m, c, 4 * c);
            let (gw, gb) = wb(g, o.ln_2_w, c, c);
            layernorm_backward(
                dres,
                gw,
                gb,
                dbuf,
                res_mid,
                &p[o.ln_2_w..][..c],
                &self.ln2_mean[l * bt..][..m],
                &self.ln2_rstd[l * bt..][..m],
                m,
                c,
            );
            // res_mid = res_in + atty @ W_attn_proj + b.
            let (gw, gb) = wb(g, o.attn_proj_w, c * c, c);
            matmul_backward(dbuf, gw, gb, &dres[..mc], atty, &pt[o.attn_proj_w..][..c * c], m, c, c);
            if last {
                // Back to every token: the y-tokens' outputs of this block had no gradient.
                expand_x_rows(dbuf, tok, b, n, c);
                expand_x_rows(dres, tok, b, n, c);
            }
            attention_backward(dqkv, dbuf, qkv, att, b, t, c, nh);
            let (gw, gb) = wb(g, o.c_attn_w, c * 3 * c, 3 * c);
            matmul_backward(dbuf, gw, gb, dqkv, ln1, &pt[o.c_attn_w..][..c * 3 * c], bt, c, 3 * c);
            let (gw, gb) = wb(g, o.ln_1_w, c, c);
            layernorm_backward(
                dres,
                gw,
                gb,
                dbuf,
                res_in,
                &p[o.ln_1_w..][..c],
                &self.ln1_mean[l * bt..][..bt],
                &self.ln1_rstd[l * bt..][..bt],
                bt,
                c,
            );
        }
        let (gw, rest) = g[lay.read_in_w..].split_at_mut(c * tok.width(d));
        let (gb, rest) = rest.split_at_mut(c);
        let gwpe = &mut rest[lay.wpe - lay.read_in_b - c..][..t * c];
        encoder_backward(gw, gb, gwpe, dres, &self.xs, &self.ys, tok, b, n, d, c);
    }
}

/// A weight's and the following bias's gradient slices.
fn wb(g: &mut [f32], w_off: usize, w_len: usize, b_len: usize) -> (&mut [f32], &mut [f32]) {
    let (w, b) = g[w_off..][..w_len + b_len].split_at_mut(w_len);
    (w, b)
}

/// The in-context learner: parameters, their gradient and the activations of the last pass.
pub struct Gpt {
    pub config: ModelConfig,
    /// Every parameter, one flat buffer in [`Gpt::tensors`] order (llm.c style).
    pub params: Vec<f32>,
    /// Gradient of the last [`Gpt::forward_loss`], same layout as `params`.
    pub grads: Vec<f32>,
    /// Scratch for the block weights transposed, refreshed by every backward pass.
    params_t: Buf,
    layout: Layout,
    chunks: Vec<Chunk>,
    preds: Vec<f32>,
    /// (b, n) of the last forward_loss, while its activations are still in the chunks.
    loss_pass: Option<(usize, usize)>,
}

impl Gpt {
    /// GPT-2 initialisation (docs/study.md, "Model"): weights N(0, 0.02), residual output projections
    /// (attn.c_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm weights 1. Draws come
    /// from `rng::stream(seed, Purpose::Init, 0)` in buffer order. Panics on an invalid config
    /// (call [`ModelConfig::validate`] first).
    pub fn new(config: ModelConfig, seed: u64) -> Gpt {
        if let Err(e) = config.validate() {
            panic!("Gpt::new: {e}");
        }
        let layout = Layout::new(&config);
        let mut params = vec![0.0f32; layout.total];
        let mut rng = iclab_core::rng::stream(seed, iclab_core::rng::Purpose::Init, 0);
        let resid_std = 0.02 / (2.0 * config.n_layer as f64).sqrt();
        for t in &layout.tensors {
            let slot = &mut params[t.offset..][..t.len];
            let name = t.name.as_str();
            if name.ends_with(".bias") {
                continue; // zero
            }
            if name.contains("ln_") {
                slot.fill(1.0);
                continue;
            }
            let std = if name.ends_with("c_proj.weight") {
                resid_std
            } else {
                0.02
            };
            for v in slot.iter_mut() {
                *v = (std * iclab_core::rng::normal(&mut rng)) as f32;
            }
        }
        Gpt::with_layout(config, layout, params)
    }

    /// A model with the given parameters (in [`Gpt::tensors`] order).
    pub fn from_params(config: ModelConfig, params: Vec<f32>) -> Result<Gpt, ConfigError> {
        config.validate()?;
        let layout = Layout::new(&config);
        if params.len() != layout.total {
            return Err(ConfigError::new(
                "params.len",
                params.len(),
                format!("{} parameters for {config:?}", layout.total),
            ));
        }
        Ok(Gpt::with_layout(config, layout, params))
    }

    fn with_layout(config: ModelConfig, layout: Layout, params: Vec<f32>) -> Gpt {
        let grads = vec![0.0; params.len()];
        Gpt {
            config,
            params,
            grads,
            params_t: Buf::default(),
            layout,
            chunks: Vec::new(),
            preds: Vec::new(),
            loss_pass: None,
        }
    }

    /// Names (Hugging Face GPT2Model names plus read_in / read_out), shapes and ranges into
    /// `params`, in buffer order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.layout.tensors.clone()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    fn check_inputs(&self, xs: &[f32], ys: &[f32], b: usize, n: usize) {
        let cfg = &self.config;
        assert!(
            n >= 1 && n <= cfg.n_points,
            "Gpt: n = {n} points, allowed: 1..={} (model n_points)",
            cfg.n_points
        );
        assert_eq!(
            xs.len(),
            b * n * cfg.d,
            "Gpt: xs must be [b = {b}, n = {n}, d = {}]",
            cfg.d
        );
        assert_eq!(ys.len(), b * n, "Gpt: ys must be [b = {b}, n = {n}]");
    }

    /// Runs the forward pass over the chunks; predictions left in each chunk.
    fn run_forward(&mut self, xs: &[f32], ys: &[f32], b: usize, n: usize, with_grads: bool) {
        self.check_inputs(xs, ys, b, n);
        let d = self.config.d;
        let rows = chunk_rows(b);
        let n_chunks = b.div_ceil(rows);
        if self.chunks.len() < n_chunks {
            self.chunks.resize_with(n_chunks, Chunk::default);
        }
        for (ci, ch) in self.chunks[..n_chunks].iter_mut().enumerate() {
            let r0 = ci * rows;
            let r = rows.min(b - r0);
            ch.ensure(&self.config, r, n, with_grads);
            ch.xs[..r * n * d].copy_from_slice(&xs[r0 * n * d..][..r * n * d]);
            ch.ys[..r * n].copy_from_slice(&ys[r0 * n..][..r * n]);
        }
        let (cfg, lay, p) = (&self.config, &self.layout, &self.params[..]);
        self.chunks[..n_chunks]
            .par_iter_mut()
            .for_each(|ch| ch.forward(cfg, lay, p));
        self.preds.clear();
        for ch in &self.chunks[..n_chunks] {
            self.preds.extend_from_slice(&ch.preds[..ch.rows * n]);
        }
    }

    /// Predictions at every x position: xs [b, n, d], ys [b, n] -> [b, n]; prediction i (0-based)
    /// is the read-out at token 2i (x_{i+1}) and has seen exactly i examples. Panics unless
    /// 1 <= n <= n_points and the lengths match.
    pub fn forward(&mut self, xs: &[f32], ys: &[f32], b: usize, n: usize) -> &[f32] {
        self.loss_pass = None;
        self.run_forward(xs, ys, b, n, false);
        &self.preds
    }

    /// Forward, then the mean squared error over all b*n predictions (the training loss,
    /// docs/study.md, "Prompts").
    pub fn forward_loss(&mut self, xs: &[f32], ys: &[f32], b: usize, n: usize) -> f32 {
        self.run_forward(xs, ys, b, n, true);
        let rows = chunk_rows(b);
        let n_chunks = b.div_ceil(rows);
        let count = b * n;
        let mut sum = 0.0f64;
        for ch in &mut self.chunks[..n_chunks] {
            let m = ch.rows * n;
            sum += mse_forward(&mut ch.dpreds[..m], &ch.preds[..m], &ch.ys[..m], count);
        }
        self.loss_pass = Some((b, n));
        (sum / count as f64) as f32
    }

    /// Gradient of the last [`Gpt::forward_loss`] written into `self.grads` (overwritten).
    /// Panics if no forward_loss preceded it (a forward or predict in between discards it).
    pub fn backward(&mut self) {
        let (b, _n) = self.loss_pass.expect("Gpt::backward needs a preceding forward_loss");
        let n_chunks = b.div_ceil(chunk_rows(b));
        let (cfg, lay, p) = (&self.config, &self.layout, &self.params[..]);
        if self.params_t.len() != p.len() {
            self.params_t = Buf::zeroed(p.len());
        }
        lay.transpose_weights(cfg, p, &mut self.params_t);
        let pt = &self.params_t[..];
        self.chunks[..n_chunks]
            .par_iter_mut()
            .for_each(|ch| ch.backward(cfg, lay, p, pt));
        // Sum the chunk gradients in chunk order; the split over parameters is fixed.
        let chunks = &self.chunks[..n_chunks];
        const SPAN: usize = 1 << 14;
        self.grads.par_chunks_mut(SPAN).enumerate().for_each(|(si, out)| {
            let _ftz = crate::simd::FlushSubnormals::new();
            let (off, len) = (si * SPAN, out.len());
            out.copy_from_slice(&chunks[0].grads[off..][..len]);
            for ch in &chunks[1..] {
                for (o, &v) in out.iter_mut().zip(&ch.grads[off..][..len]) {
                    *o += v;
                }
            }
        });
    }

    /// Inference on any number of prompts (chunked internally): [b, n] predictions.
    /// Panics unless batch.d == config.d and 1 <= batch.n <= n_points.
    pub fn predict(&mut self, batch: &PromptBatch) -> Vec<f32> {
        assert_eq!(
            batch.d, self.config.d,
            "Gpt::predict: prompts have d = {}, the model d = {}",
            batch.d, self.config.d
        );
        const MAX_B: usize = 64;
        let (n, d) = (batch.n, batch.d);
        let mut out = Vec::with_capacity(batch.b * n);
        let mut r0 = 0;
        while r0 < batch.b {
            let r = MAX_B.min(batch.b - r0);
            let p = self.forward(&batch.xs[r0 * n * d..][..r * n * d], &batch.ys[r0 * n..][..r * n], r, n);
            out.extend_from_slice(p);
            r0 += r;
        }
        out
    }
}
