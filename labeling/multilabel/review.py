"""The label-error check per class for multi-label gold: confident learning on each class's yes/no.

``likely_label_errors`` (``labeling.review.refinement``, the single-label check) runs once
per class on that class's binary gold and the out-of-sample probability a one-vs-rest
model gives it, so a row is flagged per class it likely misses or wrongly carries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..review.refinement import likely_label_errors
from .end_models import OneVsRestTextClassifier

__all__ = ["multilabel_label_errors", "out_of_sample_class_probs"]


def out_of_sample_class_probs(texts: Sequence[str], Y, *, family: str = "word_hashed", n_folds: int = 5,
                              random_state: int = 0) -> np.ndarray:
    """(n, k) per-class probabilities, each row scored by a one-vs-rest model fitted on the other folds."""
    texts, Y = [str(t) for t in texts], np.asarray(Y)
    folds = np.random.default_rng(random_state).permutation(len(texts)) % n_folds
    P = np.zeros(Y.shape)
    for f in range(n_folds):
        held, rest = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        model = OneVsRestTextClassifier(family, random_state=random_state).fit([texts[i] for i in rest],
                                                                             Y[rest].astype(float))
        P[held] = model.predict_proba([texts[i] for i in held])
    return P


def multilabel_label_errors(texts: Sequence[str], Y, classes: Sequence[str], *, family: str = "word_hashed",
                            n_folds: int = 5, random_state: int = 0) -> pd.DataFrame:
    """Gold rows whose label for a class the out-of-sample model confidently contradicts.

    ``Y``: (n, k) 0/1 gold of labelled rows. Columns: row, text, class, given (1 = the
    gold set holds the class), suggested, self_confidence (the model's probability of the
    given answer); lowest self-confidence first."""
    texts, Y = [str(t) for t in texts], np.asarray(Y).astype(np.int64)
    P = out_of_sample_class_probs(texts, Y, family=family, n_folds=n_folds, random_state=random_state)
    parts = []
    for c, name in enumerate(classes):
        if len(np.unique(Y[:, c])) < 2:
            continue  # a class every row carries (or none): nothing to contradict
        found = likely_label_errors(Y[:, c], np.column_stack([1 - P[:, c], P[:, c]]))
        found.insert(1, "class", name)
        parts.append(found)
    columns = ["row", "text", "class", "given", "suggested", "self_confidence"]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    table.insert(1, "text", [texts[i] for i in table["row"]])
    return table[columns].sort_values("self_confidence", kind="stable").reset_index(drop=True)
