"""The drift tests' statistics (labeling/data/drift.py)."""

from __future__ import annotations

import numpy as np

from labeling.data.drift import rate_test


def test_rate_test_holds_its_level_on_units_and_finds_a_doubled_rate():
    rng = np.random.default_rng(0)

    def sample(n, rate):
        sizes = rng.integers(5, 40, size=n)
        return rng.poisson(rate * sizes), sizes

    null = [rate_test(*sample(80, 0.05), *sample(60, 0.05), permutations=199, seed=i).p_value for i in range(100)]
    assert 0.0 <= np.mean(np.array(null) < 0.05) <= 0.12  # about its level under the null
    shifted = rate_test(*sample(80, 0.05), *sample(60, 0.10), seed="x")
    assert shifted.p_value < 0.01 and shifted.statistic > 0 and shifted.method == "permutation"
    assert rate_test([0, 0], [5, 5], [0], [3]).method == "none"  # no event: nothing to test
