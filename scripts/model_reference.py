#!/usr/bin/env python3
"""PyTorch reference of iclab's in-context learner, and golden files for its Rust tests.

The module `IclGpt` below is the architecture of docs/study.md ("Model") written the ordinary
PyTorch way (nanoGPT / Hugging Face GPT-2): interleaved x / y tokens, a linear read-in d -> E, learned
position embeddings, pre-LayerNorm GPT-2 blocks with Conv1D weights ([in, out], used as x @ W),
causal attention scaled by 1/sqrt(head_dim), tanh-GELU MLP, final LayerNorm, read-out E -> 1 at
the x-tokens. Its state_dict names are exactly iclab's tensor names (read_in.*, wpe.weight,
h.{l}.ln_1.*, h.{l}.attn.c_attn.*, h.{l}.attn.c_proj.*, h.{l}.ln_2.*, h.{l}.mlp.c_fc.*,
h.{l}.mlp.c_proj.*, ln_f.*, read_out.*), so an iclab checkpoint loads with load_state_dict.

Golden files: random weights (rounded to f32, then used in float64) and random prompts are written
with the model's predictions, MSE loss and every parameter gradient computed in float64, into
crates/iclab-model/tests/fixtures/golden_tiny/. The Rust test tests/golden.rs runs iclab's f32
model on the same weights and inputs and compares (CI needs no Python).

Layout of the fixture directory:
    manifest.json   config, tensor names/shapes in iclab's buffer order, the cases (b, n, loss)
    params.f32      every parameter, iclab's buffer order, little-endian f32
    case{i}_xs.f32  [b, n, d]      case{i}_ys.f32 [b, n]
    case{i}_preds.f64 [b, n]       case{i}_grads.f64 (same layout as params)

Regenerate (from the repository root):
    python3 scripts/model_reference.py
"""

import json
import math
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/iclab-model/tests/fixtures/golden_tiny"


class Conv1D(nn.Module):
    """Hugging Face GPT-2's Conv1D: weight [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, sdpa):
        super().__init__()
        self.n_head = n_head
        self.sdpa = sdpa
        self.c_attn = Conv1D(n_embd, 3 * n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        # [b, t, c] -> [b, nh, t, hs]
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = Conv1D(n_embd, 4 * n_embd)
        self.c_proj = Conv1D(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, sdpa):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5)
        self.attn = Attention(n_embd, n_head, sdpa)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.mlp = Mlp(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class IclGpt(nn.Module):
    """The in-context learner of docs/study.md; config keys as iclab's ModelConfig."""

    def __init__(self, d, n_points, n_layer, n_head, n_embd, sdpa=False):
        super().__init__()
        self.read_in = nn.Linear(d, n_embd)
        self.wpe = nn.Embedding(2 * n_points, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, sdpa) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        self.read_out = nn.Linear(n_embd, 1)

    def gpt2_init(self, n_layer, generator=None):
        """GPT-2 init (docs/study.md): N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0."""
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std, generator=generator)

    def forward(self, xs, ys):
        """xs [b, n, d], ys [b, n] -> predictions [b, n] (read-out at the x-tokens)."""
        b, n, d = xs.shape
        y_tok = torch.zeros_like(xs)
        y_tok[:, :, 0] = ys
        tokens = torch.stack((xs, y_tok), dim=2).reshape(b, 2 * n, d)  # x_1, y_1, x_2, y_2, ...
        h = self.read_in(tokens) + self.wpe.weight[: 2 * n]
        for block in self.h:
            h = block(h)
        return self.read_out(self.ln_f(h))[:, ::2, 0]


def iclab_tensor_order(model, n_layer):
    """iclab's buffer order: read_in, wpe, h.0 .. h.{L-1}, ln_f, read_out."""
    sd = model.state_dict()
    names = ["read_in.weight", "read_in.bias", "wpe.weight"]
    for l in range(n_layer):
        for s in ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                  "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                  "mlp.c_proj.weight", "mlp.c_proj.bias"]:
            names.append(f"h.{l}.{s}")
    names += ["ln_f.weight", "ln_f.bias", "read_out.weight", "read_out.bias"]
    assert sorted(names) == sorted(sd.keys()), "state_dict names differ from iclab's"
    return names


def main():
    cfg = dict(d=3, n_points=6, n_layer=2, n_head=2, n_embd=16)
    torch.manual_seed(0)
    rng = np.random.default_rng(20231129)
    model = IclGpt(**cfg).double()
    names = iclab_tensor_order(model, cfg["n_layer"])
    params = dict(model.named_parameters())
    # Weights of order 0.3 (not GPT-2's 0.02) so every gradient is far from 0; LayerNorm weights
    # around 1; non-zero biases. Rounded to f32 so both sides use exactly the same numbers.
    flat = []
    with torch.no_grad():
        for name in names:
            p = params[name]
            v = rng.standard_normal(p.shape) * 0.3
            if "ln_" in name and name.endswith("weight"):
                v += 1.0
            v = v.astype(np.float32)
            p.copy_(torch.from_numpy(v.astype(np.float64)))
            flat.append(v.ravel())
    OUT.mkdir(parents=True, exist_ok=True)
    np.concatenate(flat).astype("<f4").tofile(OUT / "params.f32")
    cases = []
    # Full length, a shorter prompt (unused positions), a single prompt.
    for i, (b, n) in enumerate([(3, 6), (2, 4), (1, 6)]):
        xs = rng.standard_normal((b, n, cfg["d"])).astype(np.float32)
        ys = rng.standard_normal((b, n)).astype(np.float32)
        model.zero_grad()
        preds = model(torch.from_numpy(xs).double(), torch.from_numpy(ys).double())
        loss = ((preds - torch.from_numpy(ys).double()) ** 2).mean()
        loss.backward()
        grads = np.concatenate([params[nm].grad.numpy().ravel() for nm in names])
        xs.astype("<f4").tofile(OUT / f"case{i}_xs.f32")
        ys.astype("<f4").tofile(OUT / f"case{i}_ys.f32")
        preds.detach().numpy().astype("<f8").tofile(OUT / f"case{i}_preds.f64")
        grads.astype("<f8").tofile(OUT / f"case{i}_grads.f64")
        cases.append(dict(b=b, n=n, loss=loss.item()))
    manifest = dict(
        generator="scripts/model_reference.py",
        torch=torch.__version__,
        config=cfg,
        tensors=[dict(name=nm, shape=list(params[nm].shape)) for nm in names],
        cases=cases,
    )
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {OUT} ({sum(len(f) for f in flat)} parameters, {len(cases)} cases)")


if __name__ == "__main__":
    main()
