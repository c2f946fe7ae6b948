import numpy as np
import pytest

from labeling import LabelingError, classification_metrics
from labeling.pipeline.evaluate import (
    EvalRow,
    class_recall,
    evaluation_table,
    lf_alone_predictions,
    majority_class,
    random_predictions,
    table_score,
    vanished_classes,
    vanished_warnings,
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


ABC = ("a", "b", "c")


def test_a_class_the_end_model_never_predicts_is_reported_with_the_metric_that_would_weigh_it():
    y = np.array([0, 0, 1, 1, 2, 2, 2, -1])
    end = np.array([0, 0, 1, 1, 1, 1, 0, 1])  # never "c"
    label = np.array([0, 1, 1, 1, 2, 2, 0, 2])
    covered = np.array([True, True, True, True, True, False, True, True])  # row 5: the tie-break's "c"
    recall = class_recall(y, {"end model": end, "label model": label}, ABC, counted={"label model": covered})
    assert recall["rows"] == 7
    assert recall["per_class"]["c"] == {"support": 3, "recall": {"end model": 0.0, "label model": pytest.approx(2 / 3)},
                                        "predicted": {"end model": 0, "label model": 2}}
    assert recall["per_class"]["a"]["recall"] == {"end model": 1.0, "label model": 0.5}
    assert vanished_classes(recall, "end model", "label model") == ["c"]
    assert vanished_warnings(recall, "end model", "label model", "accuracy") == [
        "class 'c' vanishes: the label model predicts it on 2 dev rows (recall 66.7% of its 3), the end model on none; "
        "project.metric = 'macro_f1' would weigh it"]
    assert vanished_warnings(recall, "end model", "label model", "macro_f1")[0].endswith(
        "it scores 0 in the macro_f1 the end model was chosen on")


@pytest.mark.parametrize("label", [
    np.array([0, 1, 1, 1, 2, 0, 0, 1]),  # the label model predicts "c" only where no LF votes (a tie-break)
    np.array([0, 1, 1, 1, 0, 0, 0, 1]),  # nor does the label model predict it
])
def test_no_class_vanishes_no_warning(label):
    y = np.array([0, 0, 1, 1, 2, 2, 2, -1])
    end = np.array([0, 0, 1, 1, 1, 1, 0, 1])
    covered = np.array([True, True, True, True, False, True, True, True])
    recall = class_recall(y, {"end model": end, "label model": label}, ABC, counted={"label model": covered})
    assert vanished_classes(recall, "end model", "label model") == []
    assert vanished_warnings(recall, "end model", "label model", "accuracy") == []
    # and where the end model predicts every class the label model does
    both = class_recall(y, {"end model": y.clip(0), "label model": y.clip(0)}, ABC)
    assert vanished_warnings(both, "end model", "label model", "accuracy") == []
