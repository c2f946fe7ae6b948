"""Multi-label LF votes: what an LF's return value means, and the n x m x k vote tensor.

An LF of a multi-label project uses the same Snorkel ``@labeling_function`` API and
returns one of

- ``ABSTAIN`` (-1): no opinion on any class;
- a class index ``c``: a *yes* vote for ``c`` (no opinion on the others);
- an iterable of class indices (and ``NOT(c)`` votes): a vote for each;
- ``NOT(c)``: a *no* vote for ``c`` ("not this class", snorkel #1064).

So that the single-label applier (compiled keyword/regex scans, the vote cache,
worker processes, Dask) runs these LFs unchanged, every return value is one int:
a class index as itself, a set of yes/no votes as ``SET_BASE + yes_mask + (no_mask
<< SET_BITS)``. The code does not depend on the project's classes, so cached votes
stay valid when classes are added. ``NOT`` and a set vote name classes below
``SET_BITS`` (30); single-class yes votes take any index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from ..errors import LabelMatrixError
from ..matrix import ABSTAIN

__all__ = ["NO", "SET_BASE", "SET_BITS", "YES", "NOT", "MultiLabelLF", "apply_cardinality", "class_matrix",
           "decode_votes", "describe_votes", "encode_vote", "multilabel_lfs", "votes_summary"]

YES, NO = 1, 0  # ABSTAIN (-1) is the third value of the vote tensor
SET_BITS = 30
SET_BASE = 1 << 62


def _check_class(c, what: str) -> int:
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= int(c) < SET_BITS:
        raise LabelMatrixError(f"{what}: expected a class index in 0..{SET_BITS - 1}, got {c!r}")
    return int(c)


def _set_code(yes: int, no: int) -> int:
    if yes & no:
        raise LabelMatrixError("a vote says both yes and NOT for the same class")
    return SET_BASE + yes + (no << SET_BITS)


def NOT(c: int) -> int:  # noqa: N802 - the public spelling the issue asks for (labeling.NOT(c))
    """A "not class ``c``" vote (an int an LF returns, alone or in a list)."""
    return _set_code(0, 1 << _check_class(c, "NOT(c)"))


def encode_vote(vote) -> int:
    """One LF return value as its int code (see the module docstring).

    Raises ``LabelMatrixError`` for anything else (a str, a float class, a negative
    index other than ABSTAIN)."""
    if vote is None:
        raise LabelMatrixError("returned None; an LF returns a class index, a list of them, NOT(c) or ABSTAIN")
    if isinstance(vote, (int, np.integer)) and not isinstance(vote, bool):
        return int(vote)
    if isinstance(vote, (str, bytes)) or not isinstance(vote, Iterable):
        raise LabelMatrixError(f"returned {vote!r} ({type(vote).__name__}); an LF returns a class index, a list of "
                               "them, NOT(c) or ABSTAIN")
    yes = no = 0
    for v in vote:
        if isinstance(v, (int, np.integer)) and int(v) >= SET_BASE:
            no |= (int(v) - SET_BASE) >> SET_BITS
            yes |= (int(v) - SET_BASE) & ((1 << SET_BITS) - 1)
        elif isinstance(v, (int, np.integer)) and int(v) == ABSTAIN:
            continue
        else:
            yes |= 1 << _check_class(v, f"returned {vote!r}")
    return ABSTAIN if not (yes or no) else _set_code(yes, no)


class MultiLabelLF(LabelingFunction):
    """A Snorkel LF whose return value (a class, a list of classes, NOT(c)) is encoded
    as one int by ``encode_vote``: what the single-label applier stores and caches."""

    def __call__(self, x):
        return encode_vote(super().__call__(x))


def multilabel_lfs(lfs: Sequence[LabelingFunction]) -> list[LabelingFunction]:
    """``lfs`` ready for ``labeling.lf.apply.apply_lfs``: plain Snorkel LFs (which may
    return lists) become ``MultiLabelLF``s with the same name, function, resources and
    preprocessors; other LF types (Snorkel's nlp LFs) are kept and must return an int
    (a class or ``NOT(c)``)."""
    out = []
    for lf in lfs:
        if type(lf) is LabelingFunction:
            lf = MultiLabelLF(lf.name, lf._f, resources=dict(lf._resources), pre=list(lf._pre))
        out.append(lf)
    return out


def apply_cardinality() -> int:
    """The ``cardinality`` the single-label applier checks codes against: every code is below."""
    return SET_BASE + (1 << (2 * SET_BITS))


def describe_votes(codes: Sequence[int], classes: Sequence[str]) -> list[dict | None]:
    """One row of LF vote codes as the classes each LF said yes and NOT to: per LF
    ``{"yes": [names], "no": [names]}``, or None where it abstained. Raises
    ``LabelMatrixError`` for a code naming a class outside ``classes``."""
    T = decode_votes(np.asarray([list(codes)], dtype=np.int64).reshape(1, -1), len(classes))[0]
    return [None if (row == ABSTAIN).all() else
            {"yes": [classes[c] for c in np.flatnonzero(row == YES)], "no": [classes[c] for c in np.flatnonzero(row == NO)]}
            for row in T]


def decode_votes(L, cardinality: int, names: Sequence[str] | None = None) -> np.ndarray:
    """The (n, m, k) int8 vote tensor of the (n, m) code matrix ``L``: ``YES`` (1),
    ``NO`` (0) or ``ABSTAIN`` (-1) for each row, LF and class.

    Raises ``LabelMatrixError`` naming the LF and row of a vote for a class outside
    ``0..cardinality-1``."""
    L = np.asarray(L, dtype=np.int64)
    if L.ndim != 2:
        raise LabelMatrixError(f"L must be 2-D (rows x LFs), got shape {L.shape}")
    n, m = L.shape
    k = int(cardinality)
    T = np.full((n, m, k), ABSTAIN, dtype=np.int8)
    single = (L >= 0) & (L < SET_BASE)
    bad = (L < ABSTAIN) | (single & (L >= k))
    sets = L >= SET_BASE
    if sets.any():
        code = np.where(sets, L - SET_BASE, 0)
        yes, no = code & ((1 << SET_BITS) - 1), code >> SET_BITS
        if k < SET_BITS:
            bad |= sets & (((yes | no) >> k) != 0)
        for c in range(min(k, SET_BITS)):
            T[:, :, c][((yes >> c) & 1).astype(bool)] = YES
            T[:, :, c][((no >> c) & 1).astype(bool)] = NO
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        who = names[j] if names is not None else f"column {j}"
        raise LabelMatrixError(f"LF {who!r} votes {int(L[i, j])} on row {i}: a class outside 0..{k - 1}")
    rows, cols = np.nonzero(single)
    T[rows, cols, L[rows, cols]] = YES
    return T


def class_matrix(T: np.ndarray, c: int, *, silent_as_no: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The per-class binary label matrix of class ``c``: ``(L_c, lfs)`` with ``L_c``
    (n, len(lfs)) in {1 yes, 0 no, -1 abstain} over the LFs that vote on ``c`` in ``T``.

    ``silent_as_no``: an LF that votes on ``c`` somewhere and abstains on a row says
    "not c" there (one-vs-rest, skweak's ``[NOT label, label]``): an LF that only ever says
    yes carries its evidence in *when* it fires."""
    col = T[:, :, c]
    lfs = np.flatnonzero((col != ABSTAIN).any(axis=0))
    L_c = col[:, lfs].astype(np.int64)
    if silent_as_no:
        L_c[L_c == ABSTAIN] = NO
    return L_c, lfs


def votes_summary(T: np.ndarray, names: Sequence[str], classes: Sequence[str], Y=None) -> pd.DataFrame:
    """``lf_summary`` per class: one row per (LF, class) the LF votes on, with its
    yes/no coverage, and with gold ``Y`` ((n, k) 0/1, rows of -1 unlabelled) the
    precision of its yes votes and the accuracy of its no votes."""
    rows = []
    labelled = None if Y is None else (np.asarray(Y)[:, 0] >= 0)
    for j, name in enumerate(names):
        for c, cls in enumerate(classes):
            v = T[:, j, c]
            yes, no = v == YES, v == NO
            if not (yes.any() or no.any()):
                continue
            row = {"lf": name, "class": cls, "yes_coverage": float(yes.mean()), "no_coverage": float(no.mean())}
            if Y is not None:
                y = np.asarray(Y)[:, c]
                ly, ln = yes & labelled, no & labelled
                row["yes_precision"] = float(y[ly].mean()) if ly.any() else float("nan")
                row["no_accuracy"] = float(1 - y[ln].mean()) if ln.any() else float("nan")
            rows.append(row)
    columns = ["lf", "class", "yes_coverage", "no_coverage"] + (["yes_precision", "no_accuracy"] if Y is not None else [])
    return pd.DataFrame(rows, columns=columns).set_index(["lf", "class"])
