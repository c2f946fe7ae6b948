"""Slices: metrics on the subsets of data users care about (fairness checks).

Users write slicing functions with Snorkel's API in their own module, named in
the config (``[slices] modules``):

    from snorkel.slicing import slicing_function

    @slicing_function()
    def short_comment(x):
        return len(x.text.split()) <= 5

``slice_masks`` applies them to a frame (one boolean column per slice) and
``slice_metrics`` is a pure function from masks, gold labels and predictions to
a table: one row per (slice, method) with its size, accuracy and macro-F1.
Slicing functions live in their own module, not beside the LFs: Snorkel's
``SlicingFunction`` is a kind of ``LabelingFunction`` and would be taken for one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from snorkel.slicing import SlicingFunction, slicing_function

from ..lf.apply import records as row_records
from ..errors import LFApplicationError, LFDiscoveryError
from .evaluate import classification_metrics
from ..lf.core import discover_lfs

__all__ = ["OVERALL", "discover_slices", "slice_masks", "slice_metrics", "slicing_function"]

OVERALL = "overall"


def discover_slices(modules: Sequence[str], *, root=None) -> tuple[SlicingFunction, ...]:
    """The slicing functions of ``modules`` (LF discovery rules: explicit import, definition order)."""
    if not modules:
        return ()
    found = discover_lfs(modules, root=root)
    plain = [f.name for f in found if not isinstance(f, SlicingFunction)]
    if plain:
        raise LFDiscoveryError(f"slice modules {list(modules)} define labeling functions that are not "
                               f"slicing functions: {plain}; use @slicing_function()")
    return found


def slice_masks(sfs: Sequence[SlicingFunction], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{slice name: boolean mask over frame's rows}``; a failing SF names itself and the row."""
    rows = row_records(frame)
    ids = frame["id"].tolist() if "id" in frame.columns else list(range(len(frame)))
    masks = {}
    for sf in sfs:
        mask = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            try:
                mask[i] = bool(sf(row))
            except Exception as exc:  # a slice bug must name the slice and the row
                raise LFApplicationError(sf.name, ids[i], exc) from exc
        masks[sf.name] = mask
    return masks


def slice_metrics(
    masks: Mapping[str, np.ndarray],
    y_true,
    predictions: Mapping[str, np.ndarray],
    classes: Sequence[str],
) -> pd.DataFrame:
    """One row per (slice, method): rows in the slice, their share, accuracy and macro-F1.

    The whole set comes first as slice ``overall``; an empty slice has NaN metrics.
    """
    y_true = np.asarray(y_true)
    records = []
    for name, mask in {OVERALL: np.ones(len(y_true), dtype=bool), **masks}.items():
        mask = np.asarray(mask, dtype=bool)
        for method, y_pred in predictions.items():
            n = int(mask.sum())
            metrics = classification_metrics(y_true[mask], np.asarray(y_pred)[mask], classes) if n else None
            records.append({
                "slice": name, "method": method, "n": n, "share": n / len(y_true) if len(y_true) else np.nan,
                "accuracy": metrics["accuracy"] if metrics else np.nan,
                "macro_f1": metrics["macro_f1"] if metrics else np.nan,
            })
    return pd.DataFrame.from_records(records, columns=["slice", "method", "n", "share", "accuracy", "macro_f1"])
