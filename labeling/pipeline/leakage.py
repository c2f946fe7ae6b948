"""Which test rows repeat a train or dev text, exactly or nearly (leakage-aware metrics).

A test row whose text (normalised as ``labeling.data.verify.normalize_text``) equals a
train/dev text, or has character 5-gram Jaccard >= ``threshold`` with one (MinHash LSH),
measures memorisation rather than generalisation. Metrics are reported on all test rows
and, side by side, on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.verify import VerificationReport, near_duplicate_pairs, normalize_text

__all__ = ["unleaked_from_verification", "unleaked_test_mask"]


def unleaked_test_mask(train_texts: Sequence[str], dev_texts: Sequence[str], test_texts: Sequence[str],
                       threshold: float = 0.8, max_near_rows: int = 20_000) -> tuple[np.ndarray, str]:
    """``(mask (n_test,) bool: True where the test row has no train/dev duplicate, how)``.

    ``how`` says what was checked: exact and near duplicates, or exact only when the
    distinct texts exceed ``max_near_rows`` (the near search's cost bound; 0 = none).
    A retrain reads the same answer off its verification (``unleaked_from_verification``)."""
    seen = {normalize_text(t) for t in list(train_texts) + list(dev_texts)}
    test_norm = [normalize_text(t) for t in test_texts]
    mask = np.array([t not in seen for t in test_norm], dtype=bool)
    distinct_test = sorted({t for t, m in zip(test_norm, mask) if m and t})
    if max_near_rows and len(seen) + len(distinct_test) > max_near_rows:
        return mask, "exact duplicates only (too many rows for the near-duplicate search)"
    others = sorted(t for t in seen if t)
    pairs, _ = near_duplicate_pairs(others + distinct_test, threshold)
    n_other = len(others)
    near = {distinct_test[max(i, j) - n_other] for i, j, _ in pairs if min(i, j) < n_other <= max(i, j)}
    mask &= np.array([t not in near for t in test_norm], dtype=bool)
    return mask, f"exact and near (character 5-gram Jaccard >= {threshold}) duplicates"


def unleaked_from_verification(report: VerificationReport, test_ids: Sequence[str],
                               threshold: float) -> tuple[np.ndarray, str]:
    """``unleaked_test_mask``'s answer from the run's data verification, which searched
    the same exact and near duplicates (MinHash LSH on every row) at ingestion: the
    search runs once per retrain. ``test_ids`` (n_test,) the test split's row ids."""
    mask = ~np.isin(np.asarray(test_ids, dtype=str), np.array(sorted(report.leaked_test_ids), dtype=str))
    if report.stats.get("near_duplicates_skipped"):
        return mask, "exact duplicates only (verify.max_near_duplicate_rows skipped the near-duplicate search)"
    return mask, f"exact and near (character 5-gram Jaccard >= {threshold}) duplicates"
