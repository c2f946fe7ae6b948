"""LF analysis: pure functions over the label matrix (Snorkel's LFAnalysis definitions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import LabelMatrixError
from ..matrix import ABSTAIN, check_label_matrix


def _voted(L: np.ndarray) -> np.ndarray:
    return L != ABSTAIN


def coverage(L) -> np.ndarray:
    """Per LF: share of rows it votes on."""
    L = check_label_matrix(L)
    return _voted(L).mean(axis=0) if len(L) else np.zeros(L.shape[1])


def overlaps(L) -> np.ndarray:
    """Per LF: share of rows where it and at least one other LF vote."""
    L = check_label_matrix(L)
    voted = _voted(L)
    others = voted.sum(axis=1, keepdims=True) - voted
    return (voted & (others > 0)).mean(axis=0) if len(L) else np.zeros(L.shape[1])


def conflicts(L) -> np.ndarray:
    """Per LF: share of rows where another LF votes a different class."""
    L = check_label_matrix(L)
    voted = _voted(L)
    n_classes = int(L.max()) + 1 if L.size else 0
    per_class = np.stack([(L == c).sum(axis=1) for c in range(n_classes)], axis=1) if n_classes else np.zeros((len(L), 0))
    total = voted.sum(axis=1)
    # Votes for a class other than LF j's own vote, counted across all LFs.
    own = np.take_along_axis(per_class, np.where(voted, L, 0), axis=1) if n_classes else np.zeros_like(L)
    disagree = (total[:, None] - own) > 0
    return (voted & disagree).mean(axis=0) if len(L) else np.zeros(L.shape[1])


def polarity(L) -> list[list[int]]:
    """Per LF: the classes it ever votes for."""
    L = check_label_matrix(L)
    return [sorted(int(v) for v in np.unique(col) if v != ABSTAIN) for col in L.T]


def empirical_accuracy(L, y) -> np.ndarray:
    """Per LF: accuracy on the gold-labelled rows it votes on (NaN if none)."""
    L = check_label_matrix(L)
    y = np.asarray(y)
    if y.shape != (L.shape[0],):
        raise LabelMatrixError(f"gold labels have shape {y.shape}; expected ({L.shape[0]},)")
    gold = (y >= 0)[:, None] & _voted(L)
    n = gold.sum(axis=0)
    correct = (gold & (L == y[:, None])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, correct / np.maximum(n, 1), np.nan)


def lf_summary(
    L,
    names: Sequence[str],
    *,
    y=None,
    seconds: Mapping[str, float] | None = None,
    rows_computed: Mapping[str, int] | None = None,
    uncacheable: Mapping[str, str] | None = None,
    lfs: Sequence | None = None,
) -> pd.DataFrame:
    """One row per LF: polarity, coverage, overlaps, conflicts, and with gold, accuracy.

    With ``lfs`` (the LFs of ``L``'s columns), ``compiled``: whether the applier
    runs the LF as a scan (declarative, or a plain LF compiled from its source by
    ``labeling/lf/compile.py``), and ``how``: "declarative", "compiled", or why
    it is called row by row; and, unless ``uncacheable`` is given, the
    ``uncacheable`` column from the LFs' versions (``lf_uncacheable``).

    With ``seconds`` (``ApplyResult.seconds_per_lf``), the time each LF took, and
    ``rows_per_s``: rows computed (``rows_computed``, default all of ``L``'s rows)
    per second, NaN where nothing was computed (read from the cache), so a slow
    LF stands out. With ``uncacheable`` (``ApplyResult.uncacheable``), a column
    saying why an LF's votes are never cached ("" for the others).
    """
    L = check_label_matrix(L)
    if len(names) != L.shape[1]:
        raise LabelMatrixError(f"{len(names)} LF names for a matrix with {L.shape[1]} columns")
    table = pd.DataFrame(
        {
            "polarity": polarity(L),
            "coverage": coverage(L),
            "overlaps": overlaps(L),
            "conflicts": conflicts(L),
        },
        index=pd.Index(list(names), name="lf"),
    )
    if y is not None:
        y = np.asarray(y)
        table["n_gold"] = ((y >= 0)[:, None] & _voted(L)).sum(axis=0)
        table["accuracy"] = empirical_accuracy(L, y)
    if seconds is not None:
        table["seconds"] = [float(seconds.get(n, np.nan)) for n in names]
        rows = np.array([float(rows_computed.get(n, 0)) if rows_computed is not None else float(L.shape[0]) for n in names])
        with np.errstate(divide="ignore", invalid="ignore"):
            table["rows_per_s"] = np.where((rows > 0) & (table["seconds"] > 0), rows / table["seconds"], np.nan)
    if lfs is not None and len(lfs) != L.shape[1]:
        raise LabelMatrixError(f"{len(lfs)} LFs for a matrix with {L.shape[1]} columns")
    if uncacheable is None and lfs is not None:
        from .fingerprint import fingerprint  # walks what each LF reaches: only when asked

        uncacheable = {lf.name: reason for lf in lfs if (reason := fingerprint(lf).uncacheable)}
    if uncacheable is not None:
        table["uncacheable"] = [uncacheable.get(n, "") for n in names]
    if lfs is not None:
        from .compile import compile_lf  # reads LF sources: only when asked

        outcomes = [compile_lf(lf) for lf in lfs]
        table["compiled"] = [o.compiled for o in outcomes]
        table["how"] = [o.reason for o in outcomes]
    return table


def matrix_summary(L) -> dict[str, float]:
    """Whole-matrix coverage (>= 1 vote), overlap (>= 2 votes) and conflict rates."""
    L = check_label_matrix(L)
    if not len(L):
        return {"coverage": 0.0, "overlap": 0.0, "conflict": 0.0}
    voted = _voted(L)
    n_votes = voted.sum(axis=1)
    lo = np.where(voted, L, np.iinfo(np.int64).max).min(axis=1)
    hi = np.where(voted, L, np.iinfo(np.int64).min).max(axis=1)
    return {
        "coverage": float((n_votes > 0).mean()),
        "overlap": float((n_votes > 1).mean()),
        "conflict": float(((n_votes > 1) & (lo != hi)).mean()),
    }
