import numpy as np
import pytest

from labeling import LabelingError, classification_metrics
from labeling.pipeline.evaluate import (
    EvalRow,
    evaluation_table,
    lf_alone_predictions,
    majority_class,
    random_predictions,
    table_score,
)


def test_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_metrics_need_gold_everywhere():
    with pytest.raises(LabelingError, match="gold label on every row"):
        classification_metrics([0, -1], [0, 0], ("a", "b"))
    with pytest.raises(LabelingError, match="3 predictions for 2"):
        classification_metrics([0, 1], [0, 0, 1], ("a", "b"))


def test_baselines():
    assert majority_class([1, 1, 0, -1, -1, -1]) == 1
    assert majority_class([0, 1]) == 0
    r = random_predictions(1000, 3, random_state=1)
    assert set(r) == {0, 1, 2} and np.array_equal(r, random_predictions(1000, 3, random_state=1))
    np.testing.assert_array_equal(lf_alone_predictions(np.array([[1, -1], [-1, 0]]), 0), [[1, 0], [0, 0]])


@pytest.mark.parametrize("metric, expected", [("accuracy", 0.6), ("macro_f1", (0.5 + 0.8 + 0.0) / 3),
                                              ("f1:a", 0.5), ("f1:b", 0.8), ("f1:c", 0.0)])
def test_a_table_row_is_scored_with_the_projects_metric(metric, expected):
    classes = ("a", "b", "c")
    row = EvalRow("end model", "end_model", classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], classes))
    table = evaluation_table([row], classes)
    assert table_score(table.iloc[0], metric) == pytest.approx(expected)
    unleaked = table_score(table.iloc[0], metric, suffix="_unleaked") if ":" not in metric else None
    assert unleaked is None or np.isnan(unleaked)  # no leakage-free rows were scored
