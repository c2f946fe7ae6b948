"""Multi-label metrics on small frames with known answers."""

import numpy as np
import pytest

from labeling.multilabel.metrics import multilabel_metrics, score


def test_known_values():
    Y = np.array([[1, 0], [0, 1], [-1, -1]])
    P = np.array([[1, 0], [1, 1], [1, 1]])  # the unlabelled row is left out
    m = multilabel_metrics(Y, P, ["a", "b"], covered=np.array([True, False, True]))
    assert m["subset_accuracy"] == 0.5 and m["hamming_loss"] == 0.25
    assert m["micro_f1"] == pytest.approx(0.8)  # tp 2, fp 1, fn 0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1,
                                   "predicted": 2}
    assert m["coverage"] == pytest.approx(2 / 3)


def test_an_empty_set_predicted_for_an_empty_gold_set_is_right():
    Y = P = np.zeros((2, 3), dtype=np.int8)
    assert score(Y, P, "samples_f1") == 1.0 and score(Y, P, "subset_accuracy") == 1.0
    assert score(Y, P, "macro_f1") == 0.0  # no class present: nothing to score above 0
