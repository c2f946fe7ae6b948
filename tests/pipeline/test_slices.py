"""Slices: Snorkel slicing functions and per-slice metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.errors import LFApplicationError, LFDiscoveryError
from labeling.pipeline.slices import discover_slices, slice_masks, slice_metrics, slicing_function

from ..conftest import FIXTURES, REPO


def test_slice_metrics_per_slice_and_method():
    y = np.array([0, 0, 1, 1, 1, 0])
    masks = {"first_half": np.array([1, 1, 1, 0, 0, 0], bool), "empty": np.zeros(6, bool)}
    preds = {"model": np.array([0, 1, 1, 1, 0, 0])}
    table = slice_metrics(masks, y, preds, ("ham", "spam")).set_index("slice")
    assert list(table.index) == ["overall", "first_half", "empty"]
    assert table.loc["overall", "accuracy"] == pytest.approx(4 / 6)
    assert table.loc["first_half", "accuracy"] == pytest.approx(2 / 3) and table.loc["first_half", "n"] == 3
    assert table.loc["first_half", "share"] == pytest.approx(0.5)
    assert table.loc["empty", "n"] == 0 and np.isnan(table.loc["empty", "accuracy"])


def test_youtube_slices_are_discovered_and_applied():
    sfs = discover_slices(["labeling_functions.youtube_slices"], root=REPO)
    assert [sf.name for sf in sfs] == ["short_comment", "has_link", "long_comment"]
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["nice song", "check http://x.com now " + "word " * 5,
                                                          "word " * 45]})
    masks = slice_masks(sfs, frame)
    assert masks["short_comment"].tolist() == [True, False, False]
    assert masks["has_link"].tolist() == [False, True, False]
    assert masks["long_comment"].tolist() == [False, False, True]


def test_plain_lfs_are_not_slices():
    with pytest.raises(LFDiscoveryError, match="not slicing functions"):
        discover_slices(["lf_modules.broken"], root=FIXTURES)
    assert discover_slices([]) == ()


def test_a_failing_slice_names_itself_and_the_row():
    @slicing_function()
    def broken(x):
        return 1 / 0

    with pytest.raises(LFApplicationError, match="'broken' failed on row 'r1'"):
        slice_masks([broken], pd.DataFrame({"id": ["r1"], "text": ["x"]}))


def test_the_run_records_slice_metrics(recorded_youtube_run):
    _, result = recorded_youtube_run
    table = pd.DataFrame(result.documents["slices"]).set_index(["slice", "method"])
    assert table.loc[("overall", "end model"), "accuracy"] == pytest.approx(result.metric("end model"))
    assert table.loc[("overall", "end model"), "n"] == 370
    assert 0 < table.loc[("has_link", "end model"), "n"] < table.loc[("short_comment", "end model"), "n"] < 370
