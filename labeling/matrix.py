"""The label matrix: the one data structure every stage after the LFs shares.

``L[i, j]`` is the vote of labeling function ``j`` on row ``i``: a class index in
``0..k-1`` or ``ABSTAIN`` (-1). Stages take and return plain int arrays so they
stay pure functions and compose with numpy, Snorkel and WRENCH alike.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .errors import LabelMatrixError

ABSTAIN = -1


def check_label_matrix(L, cardinality: int | None = None, *, name: str = "L") -> np.ndarray:
    """Return ``L`` as a 2-D int64 array, or raise naming what is wrong with it."""
    arr = np.asarray(L)
    if arr.ndim != 2:
        raise LabelMatrixError(f"{name} must be 2-D (rows x LFs), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise LabelMatrixError(f"{name} must hold integer votes, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        low = int(arr.min())
        if low < ABSTAIN:
            row, col = map(int, np.argwhere(arr == low)[0])
            raise LabelMatrixError(f"{name}[{row}, {col}] = {low}: votes must be >= {ABSTAIN} (abstain)")
        if cardinality is not None:
            high = int(arr.max())
            if high >= cardinality:
                row, col = map(int, np.argwhere(arr == high)[0])
                raise LabelMatrixError(
                    f"{name}[{row}, {col}] = {high}: votes must be < cardinality {cardinality}"
                )
    return arr


def label_matrix_hash(L) -> str:
    """sha256 of the matrix's shape and int64 little-endian bytes: equal votes, equal hash."""
    arr = np.ascontiguousarray(check_label_matrix(L), dtype="<i8")
    digest = hashlib.sha256(f"{arr.shape[0]}x{arr.shape[1]}:".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()
