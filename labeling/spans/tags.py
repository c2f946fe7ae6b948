"""Spans <-> per-token tags, and the token vote tensor the aggregators read.

Conventions (one place, used by every span module):

- a span is ``(start, end, type)`` in token offsets, ``end`` exclusive; ``type`` is an
  index into the project's entity types here (names are mapped at the loader);
- IO tags: one int per token, the type index, or ``ABSTAIN`` (-1) for O;
- BIO tags: ``0`` = O, ``1 + 2t`` = B-t, ``2 + 2t`` = I-t (the HMM's state numbering);
- the vote tensor is IO: ``V[i, j]`` is the type LF ``j`` gives token ``i``, or ``ABSTAIN``
  where LF ``j`` gives it no span.

Whether an LF's silence means "not an entity" is the aggregator's choice, not the
tensor's: majority and weighted votes read ``ABSTAIN`` as no vote (the plain token vote),
while the HMM reads it as an O observation, as skweak's and WRENCH's HMMs do (every LF
labels every token, O where it found no entity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import LabelError
from ..matrix import ABSTAIN

Span = tuple[int, int, int]


def spans_to_tags(spans: Sequence[Span], n_tokens: int, scheme: str = "io") -> np.ndarray:
    """Tags ``(n_tokens,)`` int for one document's spans (``scheme`` "io" or "bio").

    Where spans overlap, the longer one wins (ties: the later one); an empty or
    out-of-range span raises ``LabelError``.
    """
    _check_scheme(scheme)
    tags = np.full(n_tokens, ABSTAIN if scheme == "io" else 0, dtype=np.int64)
    for start, end, label in sorted(spans, key=lambda s: s[1] - s[0]):
        if not 0 <= start < end <= n_tokens:
            raise LabelError(f"span {(start, end, label)} is outside the document's {n_tokens} tokens or empty")
        if scheme == "io":
            tags[start:end] = label
        else:
            tags[start] = 1 + 2 * label
            tags[start + 1:end] = 2 + 2 * label
    return tags


def tags_to_spans(tags, scheme: str = "io") -> list[Span]:
    """The spans of one document's tags, in order.

    IO: maximal runs of one type (two adjacent entities of one type merge, the IO
    scheme's known limit). BIO: a B starts an entity, following I's of its type extend it;
    an I after O or after another type starts one (the usual repair, as seqeval's
    non-strict mode does).
    """
    _check_scheme(scheme)
    tags = np.asarray(tags, dtype=np.int64)
    if scheme == "io":
        types = tags
        starts = np.zeros(len(tags), dtype=bool)
    else:
        types = np.where(tags > 0, (tags - 1) // 2, ABSTAIN)
        starts = (tags > 0) & ((tags - 1) % 2 == 0)  # B tags always start an entity
    if not len(tags):
        return []
    change = np.empty(len(tags), dtype=bool)
    change[0] = True
    change[1:] = types[1:] != types[:-1]
    boundary = np.flatnonzero(change | starts)
    ends = np.append(boundary[1:], len(tags))
    return [(int(s), int(e), int(types[s])) for s, e in zip(boundary, ends) if types[s] != ABSTAIN]


def vote_tensor(weak: Sequence[Sequence[Sequence[Span]]], lengths: Sequence[int]) -> np.ndarray:
    """The IO vote tensor ``(sum(lengths), m)`` int of all documents, stacked in order.

    ``weak[d][j]``: LF ``j``'s spans in document ``d``; ``lengths[d]``: its token count.
    """
    n_lfs = {len(doc) for doc in weak}
    if len(n_lfs) > 1:
        raise LabelError(f"documents have different numbers of LFs: {sorted(n_lfs)}")
    m = n_lfs.pop() if n_lfs else 0
    columns = [np.concatenate([spans_to_tags(doc[j], n, "io") for doc, n in zip(weak, lengths)])
               if len(weak) else np.empty(0, np.int64) for j in range(m)]
    return np.stack(columns, axis=1) if columns else np.empty((int(np.sum(lengths)), 0), np.int64)


def split_docs(values: np.ndarray, lengths) -> list[np.ndarray]:
    """Per-document slices of a token-stacked array."""
    return np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _check_scheme(scheme: str) -> None:
    if scheme not in ("io", "bio"):
        raise LabelError(f"tag scheme must be 'io' or 'bio', got {scheme!r}")
