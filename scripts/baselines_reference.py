#!/usr/bin/env python3
"""Golden LASSO fits from scikit-learn for iclab's baseline tests.

Writes crates/iclab-core/tests/fixtures/lasso_sklearn.json: for a set of (d, k, alpha) cases, the
design x [k, d], targets y [k] and scikit-learn's solution of
    min_w 1/(2k) ||y - X w||^2 + alpha ||w||_1      (Lasso, fit_intercept=False)
solved to tol = 1e-12. The Rust test `lasso_matches_scikit_learn_fixtures` compares iclab's
coordinate descent against it, so CI needs no Python.

Regenerate (from the repository root):
    python3 scripts/baselines_reference.py
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import Lasso

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/iclab-core/tests/fixtures/lasso_sklearn.json"


def main():
    rng = np.random.default_rng(20231129)
    cases = []
    # Underdetermined (k < d), square-ish and overdetermined designs; sparse, dense and noisy targets;
    # alphas spanning "all zero" to "almost least squares" (Garg et al.'s grid).
    for d, k in [(5, 3), (5, 12), (10, 6), (20, 10), (20, 41), (8, 8)]:
        for alpha in [1.0, 0.1, 0.01, 0.001]:
            x = rng.standard_normal((k, d))
            w_true = np.zeros(d)
            support = rng.choice(d, size=min(2, d), replace=False)
            w_true[support] = rng.standard_normal(len(support))
            if len(cases) % 3 == 2:
                w_true = rng.standard_normal(d)  # dense target
            y = x @ w_true + (0.1 * rng.standard_normal(k) if len(cases) % 2 else 0.0)
            model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=1_000_000)
            model.fit(x, y)
            cases.append(
                {
                    "d": d,
                    "k": k,
                    "alpha": alpha,
                    "x": x.ravel().tolist(),
                    "y": y.tolist(),
                    "w": model.coef_.tolist(),
                    "n_iter": int(model.n_iter_),
                }
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "generator": "scripts/baselines_reference.py",
                "sklearn_version": sklearn.__version__,
                "objective": "1/(2k)||y - Xw||^2 + alpha ||w||_1, no intercept, tol 1e-12",
                "cases": cases,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
