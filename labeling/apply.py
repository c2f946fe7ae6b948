"""LFs x rows -> the label matrix L.

Rows are plain records (not ``DataFrame.apply``), and texts that spaCy LFs need
are parsed once, in batches, before any LF runs, and shared by all of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import LFApplicationError
from .lfs import LabelingFunction, load_spacy, resolve_spacy_model, uses_spacy
from .matrix import ABSTAIN
from .progress import progress


class Row(dict):
    """A data point: ``x.text`` and ``x["text"]`` both work, as with a pandas Series."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class ApplyResult:
    L: np.ndarray
    seconds_per_lf: dict[str, float]


def _rows(frame: pd.DataFrame) -> list[Row]:
    columns = list(frame.columns)
    return [Row(zip(columns, values)) for values in frame.itertuples(index=False, name=None)]


def _attach_docs(rows: list[Row], lfs: Sequence[LabelingFunction], spacy_model: str | None, show: bool) -> None:
    if not any(uses_spacy(lf) for lf in lfs):
        return
    nlp = load_spacy(resolve_spacy_model(spacy_model))
    # Parse each distinct text once: comment datasets repeat texts a lot.
    unique = list(dict.fromkeys(str(r["text"]) for r in rows))
    docs = nlp.pipe(unique, batch_size=256)
    parsed = dict(zip(unique, progress(docs, total=len(unique), desc="spaCy parse", enabled=show)))
    for row in rows:
        row["doc"] = parsed[str(row["text"])]


def _check_vote(vote, lf: LabelingFunction, row_id, cardinality: int) -> int:
    if isinstance(vote, (bool, np.bool_)) or not isinstance(vote, (int, np.integer)):
        raise LFApplicationError(lf.name, row_id, f"returned {vote!r}; an LF must return an int class index or ABSTAIN (-1)")
    if not ABSTAIN <= vote < cardinality:
        raise LFApplicationError(lf.name, row_id, f"returned {vote}; expected -1 (abstain) or a class index 0..{cardinality - 1}")
    return int(vote)


def apply_lfs(
    lfs: Sequence[LabelingFunction],
    frame: pd.DataFrame,
    *,
    cardinality: int,
    spacy_model: str | None = None,
    show_progress: bool = False,
) -> ApplyResult:
    """Run every LF on every row of ``frame``; column j of ``L`` is ``lfs[j]``.

    An LF that raises, or returns something that is not a vote, stops the run
    with an ``LFApplicationError`` naming the LF and the row's id.
    """
    rows = _rows(frame)
    _attach_docs(rows, lfs, spacy_model, show_progress)
    ids = frame["id"].tolist() if "id" in frame.columns else list(range(len(frame)))
    L = np.full((len(rows), len(lfs)), ABSTAIN, dtype=np.int64)
    seconds: dict[str, float] = {}
    for j, lf in enumerate(progress(lfs, total=len(lfs), desc="labeling functions", enabled=show_progress)):
        start = time.perf_counter()
        column = L[:, j]
        for i, row in enumerate(rows):
            try:
                vote = lf(row)
            except Exception as exc:  # any LF bug must name the LF and the row
                raise LFApplicationError(lf.name, ids[i], exc) from exc
            column[i] = _check_vote(vote, lf, ids[i], cardinality)
        seconds[lf.name] = time.perf_counter() - start
    return ApplyResult(L=L, seconds_per_lf=seconds)
