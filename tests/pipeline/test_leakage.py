"""The retrain's leakage-free test rows come from the verification's one MinHash search."""

from __future__ import annotations

import numpy as np

from labeling.data.verify import verify_splits
from labeling.pipeline.leakage import unleaked_from_verification, unleaked_test_mask


def test_verification_and_a_fresh_search_find_the_same_leaked_test_rows(youtube_splits):
    s = youtube_splits
    report = verify_splits(s)
    mask, how = unleaked_from_verification(report, s.test["id"].astype(str).tolist(), 0.8)
    fresh, _ = unleaked_test_mask(s.train["text"].tolist(), s.dev["text"].tolist(), s.test["text"].tolist(), 0.8)
    np.testing.assert_array_equal(mask, fresh)
    # the tutorial split leaks 36 test rows into train (30 exact, 6 near: test_verify), dev adds none new here
    assert (~mask).sum() >= report.stats["train_test_leakage_exact"] + report.stats["train_test_leakage_near"] == 36
    assert "near" in how
    assert "leaked_test_ids" not in report.to_dict()  # ids are for the run, not the recorded report
