"""LF analysis for span LFs, per entity type: what each LF covers and how well, on dev.

Token-level counts read the IO vote tensor (``tags.vote_tensor``); precision and recall
are entity-level (exact match, ``metrics``) on the LF's own spans against dev gold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..matrix import ABSTAIN
from .metrics import entity_counts


def span_lf_summary(V: np.ndarray, weak: Sequence[Sequence[Sequence[tuple]]], lf_names: Sequence[str],
                    types: Sequence[str], gold: Sequence[Sequence[tuple]] | None = None) -> pd.DataFrame:
    """One row per (LF, entity type): ``coverage`` (fraction of tokens the LF gives that
    type), ``overlaps`` (fraction of those tokens another LF also labels), ``conflicts``
    (fraction of them another LF gives another type), ``spans`` (count), and with ``gold``
    (dev) ``precision`` and ``recall`` of its spans of that type (exact match; NaN where
    undefined). ``V``: (n_tokens, m) IO votes; ``weak[d][j]``: LF j's token spans in doc d
    (type indices); ``gold[d]``: gold spans of doc d.
    """
    V = np.asarray(V)
    n = max(len(V), 1)
    rows = []
    for j, name in enumerate(lf_names):
        others = np.delete(V, j, axis=1)
        for t, type_name in enumerate(types):
            mine = V[:, j] == t
            n_mine = int(mine.sum())
            other_votes = others[mine]
            row = {"lf": name, "type": type_name, "coverage": n_mine / n,
                   "overlaps": float((other_votes != ABSTAIN).any(axis=1).mean()) if n_mine else 0.0,
                   "conflicts": float(((other_votes != ABSTAIN) & (other_votes != t)).any(axis=1).mean())
                   if n_mine else 0.0,
                   "spans": sum(1 for doc in weak for s in doc[j] if s[2] == t)}
            if gold is not None:
                tp, fp, fn = entity_counts([[s for s in g if s[2] == t] for g in gold],
                                           [[s for s in doc[j] if s[2] == t] for doc in weak]).sum(axis=0)
                row["precision"] = tp / (tp + fp) if tp + fp else float("nan")
                row["recall"] = tp / (tp + fn) if tp + fn else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)
