"""Label model fit and majority vote at scale: 1M rows x 20 LFs from a known generative model.

    python benchmarks/label_model_scale.py [--rows 1000000] [--lfs 20] [--seed 0] [--no-reference]

L is drawn from the model the Snorkel label model assumes (conditionally
independent LFs): each LF votes on a row with its own propensity, and when it
votes it is right with its own accuracy, else it picks a wrong class uniformly.
Prints the time of ``SnorkelLabelModel.fit`` (ours: snorkel's optimizer, our fast
statistics) next to snorkel's own ``LabelModel.fit`` on the same L (identical
learned parameters are checked), and of ``MajorityVote`` prediction; plus the
accuracy of both against the true labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.models.label_models import MajorityVote, SnorkelLabelModel, probs_to_preds


def synthetic_label_matrix(n: int, m: int, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    accuracy = rng.uniform(0.55, 0.9, m)
    propensity = rng.uniform(0.05, 0.5, m)
    wrong = (y[:, None] + rng.integers(1, k, (n, m))) % k
    votes = np.where(rng.random((n, m)) < accuracy, y[:, None], wrong)
    return np.where(rng.random((n, m)) < propensity, votes, -1), y


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lfs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip snorkel's own LabelModel.fit")
    args = parser.parse_args(argv)
    L, y = synthetic_label_matrix(args.rows, args.lfs, seed=args.seed)
    print(f"L: {L.shape[0]:,} x {L.shape[1]} (coverage {(L != -1).any(axis=1).mean():.1%}); "
          f"load average {os.getloadavg()}")
    # imports and torch's first-call setup are not the fit
    SnorkelLabelModel(cardinality=2, n_epochs=2).fit(L[:1000])

    model, t_fit = _timed(lambda: SnorkelLabelModel(cardinality=2, random_state=args.seed).fit(L))
    print(f"SnorkelLabelModel.fit (500 epochs)      {t_fit:8.3f} s")
    if not args.no_reference:
        from snorkel.labeling.model import LabelModel

        reference = LabelModel(cardinality=2, verbose=False)
        _, t_ref = _timed(lambda: reference.fit(L, class_balance=[0.5, 0.5], n_epochs=500, lr=0.01, l2=0.0,
                                                optimizer="sgd", seed=args.seed, progress_bar=False))
        same = np.array_equal(model.mu_, reference.mu.detach().numpy().astype(np.float64))
        print(f"snorkel LabelModel.fit (reference)      {t_ref:8.3f} s   ours {t_ref / t_fit:.1f}x faster; "
              f"identical mu: {same}")
    probs, t_lm_proba = _timed(lambda: model.predict_proba(L))
    print(f"SnorkelLabelModel.predict_proba         {t_lm_proba:8.3f} s")

    mv = MajorityVote(cardinality=2).fit(L)
    _, t_proba = _timed(lambda: mv.predict_proba(L))
    _, t_first = _timed(lambda: mv.predict(L))
    mv_pred, t_pred = _timed(lambda: mv.predict(L))
    print(f"MajorityVote.predict_proba              {t_proba:8.3f} s")
    print(f"MajorityVote.predict (first call)       {t_first:8.3f} s   (hashes each tied row once per process)")
    print(f"MajorityVote.predict                    {t_pred:8.3f} s")
    print(f"accuracy vs true y: label model {(probs_to_preds(probs) == y).mean():.4f}, "
          f"majority vote {(mv_pred == y).mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
