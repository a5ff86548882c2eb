#!/usr/bin/env python3
"""Training throughput of iclab's transformer against PyTorch, side by side in one run.

Both train the same model (scripts/model_reference.py's IclGpt, GPT-2 init) on the same workload:
batch 64 of full-length dense linear regression prompts (x ~ N(0, I_d), y = <w, x>, w ~ N(0, I_d)
per prompt), pre-drawn so that sampling is not timed, one step = forward + MSE + backward + Adam
(lr 1e-4). PyTorch runs with the fastest of {1, THREADS} threads x its two attention paths (probed);
iclab runs `iclab bench train --preset P --json` with RAYON_NUM_THREADS=THREADS. The two run one
after the other (never at the same time: they would share the cores), in --rounds alternating
pairs; the table shows the pair with the median ratio and lists every pair's.

Targets (docs/benchmarks.md): iclab >= 2x PyTorch's steps/s on tiny, >= 1.5x on small, >= 1x on standard,
and standard's step at >= 50% of the matmul ceiling measured in the same run.

Usage (from the repository root, after `cargo build --release`):
    python3 scripts/bench_train.py                       # tiny and small
    python3 scripts/bench_train.py --presets tiny small standard --seconds 20
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from model_reference import IclGpt  # noqa: E402

PRESETS = {  # as iclab's ModelConfig::preset
    "tiny": dict(d=5, n_points=11, n_layer=2, n_head=2, n_embd=64),
    "small": dict(d=10, n_points=21, n_layer=4, n_head=4, n_embd=128),
    "standard": dict(d=20, n_points=41, n_layer=12, n_head=8, n_embd=256),
}
TARGETS = {"tiny": 2.0, "small": 1.5, "standard": 1.0}


def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_torch(cfg, batch, seconds, min_steps, sdpa):
    torch.manual_seed(0)
    model = IclGpt(**cfg, sdpa=sdpa)
    model.gpt2_init(cfg["n_layer"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    n, d = cfg["n_points"], cfg["d"]
    batches = []
    for _ in range(8):
        xs = torch.randn(batch, n, d)
        w = torch.randn(batch, d, 1)
        batches.append((xs, (xs @ w)[:, :, 0]))

    def step(i):
        xs, ys = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = ((model(xs, ys) - ys) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    first = step(0)
    step(1)
    t0 = time.perf_counter()
    done = 0
    last = first
    while done < min_steps or time.perf_counter() - t0 < seconds:
        last = step(done + 2)
        done += 1
    secs = time.perf_counter() - t0
    return dict(steps=done, seconds=secs, steps_per_s=done / secs, first_loss=first, last_loss=last, sdpa=sdpa)


def best_torch(cfg, batch, seconds, min_steps, threads):
    """PyTorch at its best: a short probe of both attention paths (fused SDPA, explicit masked
    softmax) with 1 and `threads` intra-op threads (on a busy machine OpenMP's spinning barriers
    can make 2 threads far slower than 1 on small ops), then the timed run with the fastest."""
    probe = {}
    for th in sorted({1, threads}):
        torch.set_num_threads(th)
        for sdpa in (True, False):
            probe[(th, sdpa)] = bench_torch(cfg, batch, 1.0, 1, sdpa)["steps_per_s"]
    th, sdpa = max(probe, key=probe.get)
    torch.set_num_threads(th)
    out = bench_torch(cfg, batch, seconds, min_steps, sdpa)
    out["threads"] = th
    out["probe"] = {f"{k[0]} threads, sdpa {k[1]}": v for k, v in probe.items()}
    return out


def bench_iclab(binary, preset, batch, seconds, min_steps, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [binary, "bench", "train", "--preset", preset, "--batch", str(batch), "--seconds", str(seconds),
           "--steps", str(min_steps), "--json"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=list(PRESETS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0, help="minimum timed seconds per side and preset")
    ap.add_argument("--steps", type=int, default=3, help="minimum timed steps per side and preset")
    ap.add_argument("--iclab", default="target/release/iclab", help="path of the iclab binary")
    ap.add_argument("--rounds", type=int, default=3,
                    help="timed PyTorch / iclab pairs per preset, run alternately; the table shows the pair with "
                         "the median ratio (a shared host's speed can drift by 1.5x within minutes, and one pair "
                         "timed across such a drift gives a ratio that says nothing)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds {args.rounds}: at least 1")
    rows = []
    for preset in args.presets:
        cfg = PRESETS[preset]
        first = best_torch(cfg, args.batch, args.seconds, args.steps, args.threads)
        pairs = []
        for k in range(args.rounds):
            # Later rounds keep the threads and attention path the probe chose (set_num_threads persists).
            t = first if k == 0 else dict(first, **bench_torch(cfg, args.batch, args.seconds, args.steps, first["sdpa"]))
            r = bench_iclab(args.iclab, preset, args.batch, args.seconds, args.steps, args.threads)
            pairs.append((t, r, r["steps_per_s"] / t["steps_per_s"]))
        ratios = [p[2] for p in pairs]
        t, r, ratio = sorted(pairs, key=lambda p: p[2])[len(pairs) // 2]
        t["peak_mib"] = peak_mib()  # cumulative over the presets run so far in this process
        rows.append((preset, t, r, ratio, ratios))
        print(json.dumps(dict(preset=preset, torch=t, iclab=r, ratio=ratio, ratios=ratios)), file=sys.stderr)
    print(f"PyTorch {torch.__version__} (best of 1 / {args.threads} threads) vs iclab ({args.threads} threads), "
          f"median of {args.rounds} alternating pair(s), "
          f"batch {args.batch} (steps/s = forward + backward + Adam); load average {os.getloadavg()[0]:.1f}")
    hdr = (f"{'preset':9} {'torch st/s':>13} {'iclab st/s':>10} {'ratio':>6} {'target':>6} {'iclab GF/s':>10} "
           f"{'ceiling':>8} {'of ceil':>7} {'iclab MiB':>9} {'torch MiB':>9}  every pair's ratio")
    print(hdr)
    for preset, t, r, ratio, ratios in rows:
        ok = "ok" if ratio >= TARGETS[preset] else "MISS"
        torch_col = f"{t['steps_per_s']:.2f} ({t['threads']}t)"
        print(f"{preset:9} {torch_col:>13} {r['steps_per_s']:10.2f} {ratio:6.2f} {TARGETS[preset]:5.1f}x "
              f"{r['gflops']:10.1f} {r['matmul_ceiling_gflops']:8.1f} {100 * r['fraction_of_ceiling']:6.1f}% "
              f"{r['peak_mib']:9.1f} {t['peak_mib']:9.1f}  {ok:4} {' '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
