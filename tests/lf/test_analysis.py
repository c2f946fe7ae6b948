from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from snorkel.labeling import LFAnalysis

from labeling import LabelMatrixError, conflicts, coverage, lf_summary, matrix_summary, overlaps, polarity

L_SMALL = np.array(
    [
        [0, -1, 1],
        [0, 0, -1],
        [-1, -1, -1],
        [1, 1, 1],
    ]
)


def test_small_matrix_by_hand():
    np.testing.assert_allclose(coverage(L_SMALL), [0.75, 0.5, 0.5])
    np.testing.assert_allclose(overlaps(L_SMALL), [0.75, 0.5, 0.5])
    np.testing.assert_allclose(conflicts(L_SMALL), [0.25, 0.0, 0.25])
    assert polarity(L_SMALL) == [[0, 1], [0, 1], [1]]
    assert matrix_summary(L_SMALL) == {"coverage": 0.75, "overlap": 0.75, "conflict": 0.25}


def test_summary_with_gold_and_timing():
    y = np.array([0, 0, 1, 0])
    table = lf_summary(L_SMALL, ["a", "b", "c"], y=y, seconds={"a": 0.5})
    np.testing.assert_allclose(table["accuracy"], [2 / 3, 0.5, 0.0])
    assert table["n_gold"].tolist() == [3, 2, 2]
    assert table.loc["a", "seconds"] == 0.5 and np.isnan(table.loc["b", "seconds"])


def test_names_must_match_columns():
    with pytest.raises(LabelMatrixError, match="2 LF names"):
        lf_summary(L_SMALL, ["a", "b"])


matrices = arrays(np.int64, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=st.integers(-1, 3))


@given(matrices)
def test_matches_snorkel_lfanalysis(L):
    theirs = LFAnalysis(L).lf_summary()
    ours = lf_summary(L, [f"lf{j}" for j in range(L.shape[1])])
    np.testing.assert_allclose(ours["coverage"], theirs["Coverage"])
    np.testing.assert_allclose(ours["overlaps"], theirs["Overlaps"])
    np.testing.assert_allclose(ours["conflicts"], theirs["Conflicts"])


@given(matrices, st.randoms(use_true_random=False))
def test_per_lf_stats_follow_column_permutation(L, rnd):
    order = list(range(L.shape[1]))
    rnd.shuffle(order)
    for stat in (coverage, overlaps, conflicts):
        np.testing.assert_allclose(stat(L)[order], stat(L[:, order]))


def test_matches_snorkel_on_real_youtube_matrix(youtube_splits):
    from labeling import apply_lfs, discover_lfs

    from ..conftest import REPO

    lfs = discover_lfs(["labeling_functions.youtube_spam"], root=REPO)
    L = apply_lfs(lfs, youtube_splits.dev, cardinality=2).L
    y = youtube_splits.dev["label"].to_numpy()
    theirs = LFAnalysis(L, list(lfs)).lf_summary(y)
    ours = lf_summary(L, [lf.name for lf in lfs], y=y)
    np.testing.assert_allclose(ours["coverage"], theirs["Coverage"])
    np.testing.assert_allclose(ours["conflicts"], theirs["Conflicts"])
    np.testing.assert_allclose(ours["accuracy"].fillna(0), theirs["Emp. Acc."].fillna(0))


def test_rows_per_second_shows_the_slow_lf_and_skips_cached_ones():
    table = lf_summary(L_SMALL, ["a", "b", "c"], seconds={"a": 0.5, "b": 0.001, "c": 0.0},
                       rows_computed={"a": 100, "b": 100, "c": 0})
    assert table.loc["a", "rows_per_s"] == 200 and table.loc["b", "rows_per_s"] == 100_000
    assert np.isnan(table.loc["c", "rows_per_s"]), "nothing computed: no rate"
    plain = lf_summary(L_SMALL, ["a", "b", "c"], seconds={"a": 0.5})
    assert plain.loc["a", "rows_per_s"] == len(L_SMALL) / 0.5
