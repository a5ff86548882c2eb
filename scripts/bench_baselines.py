#!/usr/bin/env python3
"""Side-by-side timing of iclab's baselines and a scikit-learn/numpy reference (docs/benchmarks.md).

Workload: sparse prompts (nnz = 2, w ~ N(0, I) on a uniform support, x ~ N(0, I_20)), 41 points,
every prefix k = 1..40 fitted separately, looping over prompts and k as Garg et al.'s reference code
(src/baselines.py) does: least squares (numpy lstsq), ridge (sklearn Ridge), LASSO at 5 alphas
(sklearn Lasso, fit_intercept=False, default tol 1e-4), 3-NN and averaging (numpy), and the exact
dense+sparse Bayes predictor (numpy, vectorised over the 190 supports for each prompt and k).

The reference is timed on --ref-prompts prompts (default 128) and scaled linearly to --prompts
(its cost is exactly linear in the number of prompts); iclab runs the full --prompts.

Usage (from the repository root, after `cargo build --release`):
    python3 scripts/bench_baselines.py [--prompts 1280] [--ref-prompts 128] [--iclab target/release/iclab]
"""

import argparse
import itertools
import json
import subprocess
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, Ridge

D, N, NNZ = 20, 41, 2
ALPHAS = [1.0, 0.1, 0.01, 0.001, 0.0001]


def prompts(m, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((m, N, D))
    w = np.zeros((m, D))
    for i in range(m):
        s = rng.choice(D, NNZ, replace=False)
        w[i, s] = rng.standard_normal(NNZ)
    return xs, np.einsum("mnd,md->mn", xs, w)


def least_squares(x, y, q):
    return q @ np.linalg.lstsq(x, y, rcond=None)[0]


def ridge(x, y, q):
    return Ridge(alpha=0.1, fit_intercept=False).fit(x, y).predict(q[None])[0]


def lasso(alpha):
    def f(x, y, q):
        return Lasso(alpha=alpha, fit_intercept=False, max_iter=10_000).fit(x, y).predict(q[None])[0]

    return f


def knn(x, y, q):
    idx = np.argsort(((x - q) ** 2).sum(1), kind="stable")[:3]
    return y[idx].mean()


def averaging(x, y, q):
    return q @ (x * y[:, None]).mean(0)


SUPPORTS = np.array(list(itertools.combinations(range(D), NNZ)))  # [190, 2]
SIGMA2 = 1e-12


def bayes(x, y, q):
    """0.5 dense + 0.5 sparse(nnz=2), w ~ N(0, I) on the support, noise variance 1e-12."""
    k = len(y)
    g, b, yy = x.T @ x, x.T @ y, y @ y
    # Sparse: all supports at once. gs [190, 2, 2], bs [190, 2]
    gs = g[SUPPORTS[:, :, None], SUPPORTS[:, None, :]] + SIGMA2 * np.eye(NNZ)
    bs = b[SUPPORTS]
    ms = np.linalg.solve(gs, bs[..., None])[..., 0]
    quad = np.maximum(yy - (bs * ms).sum(1), 0) / SIGMA2
    logdet = np.linalg.slogdet(gs)[1]
    log_ev = -0.5 * (quad + k * np.log(SIGMA2) + NNZ * np.log(1 / SIGMA2) + logdet) + np.log(0.5 / len(SUPPORTS))
    preds = (q[SUPPORTS] * ms).sum(1)
    gd = g + SIGMA2 * np.eye(D)
    md = np.linalg.solve(gd, b)
    quad_d = max(yy - b @ md, 0) / SIGMA2
    log_d = -0.5 * (quad_d + k * np.log(SIGMA2) + D * np.log(1 / SIGMA2) + np.linalg.slogdet(gd)[1]) + np.log(0.5)
    lw = np.append(log_ev, log_d)
    p = np.append(preds, q @ md)
    wts = np.exp(lw - lw.max())
    return (wts * p).sum() / wts.sum()


def reference(m):
    xs, ys = prompts(m)
    baselines = [("least_squares", least_squares), ("ridge", ridge)]
    baselines += [(f"lasso(alpha={a:g})", lasso(a)) for a in ALPHAS]
    baselines += [("3-nn", knn), ("averaging", averaging), ("bayes(dense+sparse)", bayes)]
    times = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, f in baselines:
            t = time.perf_counter()
            for i in range(m):
                for k in range(1, N):
                    f(xs[i, :k], ys[i, :k], xs[i, k])
            times[name] = time.perf_counter() - t
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=1280)
    ap.add_argument("--ref-prompts", type=int, default=128)
    ap.add_argument("--iclab", default="target/release/iclab")
    a = ap.parse_args()

    t = time.perf_counter()
    out = subprocess.run([a.iclab, "bench", "baselines", "--json", "--prompts", str(a.prompts)],
                         check=True, capture_output=True, text=True).stdout
    ours_wall = time.perf_counter() - t
    ours = json.loads(out)
    scale = a.prompts / a.ref_prompts
    ref = reference(a.ref_prompts)
    ref_total = sum(ref.values()) * scale

    print(f"workload: {a.prompts} sparse(nnz={NNZ}) prompts x {N} points, d = {D}, every prefix k = 1..{N - 1}")
    print(f"iclab threads: {ours['threads']}; reference timed on {a.ref_prompts} prompts, scaled x{scale:g}\n")
    print(f"{'baseline':<22} {'iclab s':>10} {'reference s':>12} {'ratio':>8}")
    for name, secs in ours["per_baseline"].items():
        key = "ridge" if name.startswith("ridge") else name
        r = ref.get(key, float("nan")) * scale
        print(f"{name:<22} {secs:>10.3f} {r:>12.2f} {r / secs:>8.0f}x")
    total = ours["baseline_seconds"]
    print(f"{'total':<22} {total:>10.3f} {ref_total:>12.2f} {ref_total / total:>8.0f}x")
    print(f"(iclab process wall time incl. prompt sampling: {ours_wall:.2f} s)")
    for d in ours.get("diagnostics", []):
        print("iclab warning:", d)


if __name__ == "__main__":
    main()
