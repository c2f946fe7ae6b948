"""The multi-label workbench: an LF tried shows its per-class coverage and accuracy on dev."""

from __future__ import annotations

import math

from snorkel.labeling import labeling_function

from labeling.config import load_config
from labeling.multilabel.votes import NOT
from labeling.notebook.multilabel import MultiLabelWorkbench

from ..multilabel.conftest import write_tiny_multilabel


@labeling_function()
def pizza_not_sport(x):
    """Pizza: food, and no sport (wrong on the 'goal' rows it does not see)."""
    return [2, NOT(0)] if "pizza" in x.text else -1


def test_try_lf_reports_per_class_coverage_and_dev_accuracy(tmp_path):
    config = load_config(write_tiny_multilabel(tmp_path / "project"), ['lfs.cache="none"'])
    bench = MultiLabelWorkbench(config)
    report = bench.try_lf(pizza_not_sport)
    table = report.per_class
    assert list(table.index) == ["sport", "food"]  # the classes it votes on, in class order
    assert table.loc["food", "dev_yes_precision"] == 1.0 and table.loc["sport", "dev_no_accuracy"] == 1.0
    assert table.loc["food", "train_yes_coverage"] > 0 and table.loc["food", "train_no_coverage"] == 0
    assert math.isnan(table.loc["sport", "dev_yes_precision"])  # it never says yes to sport
    assert report.metric == "macro_f1" and not math.isnan(report.score_with)
    assert "pizza_not_sport" in str(report) and [lf.name for lf in bench.lfs][0] == "kw_sport"
