"""Entity-level precision, recall and F1 (exact match), micro and per type.

A predicted entity counts only when its start, end and type all equal a gold entity's
(the CoNLL-2003 / seqeval definition; WRENCH's sequence tables use it too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_counts(gold: Sequence[Sequence[tuple]], pred: Sequence[Sequence[tuple]]) -> np.ndarray:
    """Per document ``(tp, fp, fn)``: an ``(n_docs, 3)`` int array.

    ``gold[d]``, ``pred[d]``: document ``d``'s spans ``(start, end, type)``; duplicates
    count once. Raises ``ValueError`` when the two lists differ in length.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} documents but pred has {len(pred)}")
    counts = np.zeros((len(gold), 3), dtype=np.int64)
    for d, (g, p) in enumerate(zip(gold, pred)):
        g, p = set(map(tuple, g)), set(map(tuple, p))
        hit = len(g & p)
        counts[d] = hit, len(p) - hit, len(g) - hit
    return counts


def micro_f1(counts: np.ndarray) -> float:
    """Micro F1 from summed ``(tp, fp, fn)`` rows (``entity_counts``)."""
    tp, fp, fn = np.asarray(counts).reshape(-1, 3).sum(axis=0)
    return _prf(int(tp), int(fp), int(fn))[2]


def entity_scores(gold: Sequence[Sequence[tuple]], pred: Sequence[Sequence[tuple]],
                  types: Sequence | None = None) -> dict:
    """Micro ``entity_precision``, ``entity_recall``, ``entity_f1`` and ``support`` (gold
    entities), plus ``per_type``: the same four keys for each type (``types``, else every
    type seen in gold or pred). Scores are fractions in [0, 1]; 0.0 where undefined."""
    counts = entity_counts(gold, pred)
    seen = {s[2] for doc in (*gold, *pred) for s in doc}
    per_type = {}
    for t in (types if types is not None else sorted(seen, key=str)):
        c = entity_counts([[s for s in doc if s[2] == t] for doc in gold],
                          [[s for s in doc if s[2] == t] for doc in pred])
        per_type[t] = _scores(c)
    return {**_scores(counts), "per_type": per_type}


def _scores(counts: np.ndarray) -> dict:
    tp, fp, fn = (int(x) for x in counts.sum(axis=0)) if len(counts) else (0, 0, 0)
    p, r, f = _prf(tp, fp, fn)
    return {"entity_precision": p, "entity_recall": r, "entity_f1": f, "support": tp + fn}
