"""Multi-label metrics: micro/macro/samples F1, subset accuracy, Hamming loss, per class.

``Y`` (gold) and ``P`` (predictions) are (n, k) arrays of 0/1 (rows of ``Y`` that
are -1 are unlabelled and left out). Definitions are scikit-learn's
(``f1_score(average=...)``, ``accuracy_score`` = subset accuracy, ``hamming_loss``),
with ``zero_division=0``: a class neither predicted nor present scores 0 in macro-F1; in
samples-F1 a row with no gold class and none predicted scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

__all__ = ["F1_METRICS", "METRICS", "multilabel_metrics", "score"]

METRICS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
F1_METRICS = METRICS[:3]  # what a dev choice or the promotion gate may rank multi-label runs by


def _labelled(Y, P) -> tuple[np.ndarray, np.ndarray]:
    Y, P = np.asarray(Y), np.asarray(P)
    if Y.shape != P.shape:
        raise ValueError(f"gold {Y.shape} and predictions {P.shape} differ in shape")
    keep = Y[:, 0] >= 0 if Y.shape[1] else np.ones(len(Y), dtype=bool)
    return Y[keep].astype(np.int8), (P[keep] > 0).astype(np.int8)


def score(Y, P, metric: str) -> float:
    """One of ``METRICS`` (Hamming loss: lower is better; the rest higher)."""
    Y, P = _labelled(Y, P)
    if len(Y) == 0:
        return float("nan")
    if metric == "subset_accuracy":
        return float(accuracy_score(Y, P))
    if metric == "hamming_loss":
        return float(hamming_loss(Y, P))
    average = metric.removesuffix("_f1")
    if metric not in METRICS:
        raise ValueError(f"unknown multi-label metric {metric!r}; expected one of {METRICS}")
    # samples-F1: a row with no gold class and none predicted is right (1), as in subset accuracy
    return float(f1_score(Y, P, average=average, zero_division=1 if average == "samples" else 0))


def multilabel_metrics(Y, P, classes: Sequence[str], covered=None) -> dict:
    """Every metric of ``METRICS``, ``per_class`` ({class: precision, recall, f1, support,
    predicted}) and, given ``covered`` ((n,) bool: rows some LF votes on), ``coverage``."""
    Yl, Pl = _labelled(Y, P)
    out = {m: score(Y, P, m) for m in METRICS}
    if len(Yl):
        p, r, f, s = precision_recall_fscore_support(Yl, Pl, average=None, zero_division=0,
                                                     labels=np.arange(len(classes)))
    else:
        p = r = f = s = np.zeros(len(classes))
    out["per_class"] = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i]),
                            "predicted": int(Pl[:, i].sum()) if len(Pl) else 0} for i, c in enumerate(classes)}
    if covered is not None:
        out["coverage"] = float(np.mean(covered)) if len(covered) else 0.0
    return out
