"""Which test rows repeat a train or dev text, exactly or nearly (leakage-aware metrics).

A test row whose text (normalised as ``labeling.data.verify.normalize_text``) equals a
train/dev text, or has character 5-gram Jaccard >= ``threshold`` with one (MinHash LSH),
measures memorisation rather than generalisation. Metrics are reported on all test rows
and, side by side, on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.verify import near_duplicate_pairs, normalize_text

__all__ = ["unleaked_test_mask"]


def unleaked_test_mask(train_texts: Sequence[str], dev_texts: Sequence[str], test_texts: Sequence[str],
                       threshold: float = 0.8, max_near_rows: int = 20_000) -> tuple[np.ndarray, str]:
    """``(mask (n_test,) bool: True where the test row has no train/dev duplicate, how)``.

    ``how`` says what was checked: exact and near duplicates, or exact only when the
    distinct texts exceed ``max_near_rows`` (the near search's cost bound)."""
    seen = {normalize_text(t) for t in list(train_texts) + list(dev_texts)}
    test_norm = [normalize_text(t) for t in test_texts]
    mask = np.array([t not in seen for t in test_norm], dtype=bool)
    distinct_test = sorted({t for t, m in zip(test_norm, mask) if m and t})
    if len(seen) + len(distinct_test) > max_near_rows:
        return mask, "exact duplicates only (too many rows for the near-duplicate search)"
    others = sorted(t for t in seen if t)
    pairs, _ = near_duplicate_pairs(others + distinct_test, threshold)
    n_other = len(others)
    near = {distinct_test[max(i, j) - n_other] for i, j, _ in pairs if min(i, j) < n_other <= max(i, j)}
    mask &= np.array([t not in near for t in test_norm], dtype=bool)
    return mask, f"exact and near (character 5-gram Jaccard >= {threshold}) duplicates"
