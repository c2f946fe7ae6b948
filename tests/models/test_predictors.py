import itertools

import numpy as np
import pytest

from labeling.errors import ConfigError, LabelingError
from labeling.models import predictors
from labeling.models.predictors import (
    PREDICTORS,
    TIE_ORDER,
    TIE_STUDY,
    fit_predictor,
    predict,
    predict_proba,
    select_predictor,
)

AB = ("a", "b")
END = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
LM = np.array([[0.1, 0.9], [0.5, 0.5], [0.5, 0.5], [0.8, 0.2]])
L = np.array([[1, -1], [0, 1], [-1, -1], [0, 0]])  # row 2: no LF votes


def test_end_model_is_the_end_models_probabilities():
    np.testing.assert_array_equal(predict_proba("end_model", END, LM, L), END)


def test_backoff_reads_the_label_model_where_an_lf_votes_and_breaks_its_ties_with_the_end_model():
    proba = predict_proba("label_model_backoff", END, LM, L)
    np.testing.assert_allclose(proba[[0, 3]], LM[[0, 3]], atol=1e-3)
    np.testing.assert_array_equal(proba[2], END[2])  # uncovered: the end model
    # row 1: the label model ties 0.5/0.5; the end model says b
    assert predict("label_model_backoff", END, LM, L).tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_blend_pools_on_covered_rows_only():
    proba = predict_proba("blend", END, LM, L, {"weight": 0.3})
    np.testing.assert_allclose(proba[0], 0.7 * LM[0] + 0.3 * END[0])
    np.testing.assert_array_equal(proba[2], END[2])


def test_no_lfs_at_all_is_the_end_model_for_every_predictor():
    for name in PREDICTORS:
        np.testing.assert_array_equal(predict_proba(name, END, LM, np.zeros((4, 0), dtype=int)), END)


def test_unknown_predictor_and_mismatched_shapes_raise():
    with pytest.raises(ConfigError, match="unknown predictor 'vote'"):
        predict_proba("vote", END, LM, L)
    with pytest.raises(LabelingError, match="disagree"):
        predict_proba("end_model", END, LM[:3], L)
    with pytest.raises(ConfigError, match="serving.predictor"):
        select_predictor(END, LM, L, [0, 1, 0, 1], classes=AB, pinned="vote")


def test_blend_weight_is_fitted_to_the_labels():
    # end model right on covered rows 0 and 3 only where it gets enough weight
    y = np.array([0, 1, 0, 1])
    assert fit_predictor("blend", END, LM, L, y, metric="accuracy", classes=AB)["weight"] >= 0.6
    assert fit_predictor("end_model", END, LM, L, y, metric="accuracy", classes=AB) == {}


def _dev(n: int, lm_right: float, end_right: float, seed: int = 0):
    """Two-class dev rows, every row covered; each model right on the given share of rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def model(right):
        pred = np.where(rng.random(n) < right, y, 1 - y)
        return np.column_stack([np.where(pred == 0, 0.8, 0.2), np.where(pred == 0, 0.2, 0.8)])

    return model(end_right), model(lm_right), np.ones((n, 1), dtype=int), y


def test_selection_serves_the_label_model_when_it_is_clearly_better_on_dev():
    end, lm, votes, y = _dev(400, lm_right=0.95, end_right=0.7)
    chosen = select_predictor(end, lm, votes, y, classes=AB)
    assert chosen.name in ("label_model_backoff", "blend") and chosen.needs_lfs
    scores = {c["name"]: c["dev_score"] for c in chosen.candidates}
    assert scores["label_model_backoff"] > scores["end_model"] + 0.15
    assert chosen.folds == 5 and chosen.dev_rows == 400


def test_selection_serves_the_end_model_when_it_is_clearly_better_on_dev():
    end, lm, votes, y = _dev(400, lm_right=0.7, end_right=0.95)
    chosen = select_predictor(end, lm, votes, y, classes=AB)
    assert chosen.name in ("end_model", "blend")
    assert chosen.name == "end_model" or "one standard error below" in chosen.rule


def test_a_tie_on_dev_serves_the_simplest():
    end, lm, votes, y = _dev(400, lm_right=0.8, end_right=0.8, seed=1)
    chosen = select_predictor(end, end.copy(), votes, y, classes=AB)  # identical predictions: dev cannot tell
    assert chosen.name == TIE_ORDER[0] == "end_model" and not chosen.needs_lfs
    assert {c["tolerance"] for c in chosen.candidates} == {0.0}
    assert [c["name"] for c in chosen.candidates] == list(TIE_ORDER)


def test_the_order_decides_a_tie_and_nothing_else():
    end, lm, votes, y = _dev(400, lm_right=0.8, end_right=0.8, seed=1)
    for order in itertools.permutations(PREDICTORS):
        assert select_predictor(end, end.copy(), votes, y, classes=AB, order=order).name == order[0]
    end, lm, votes, y = _dev(400, lm_right=0.95, end_right=0.7)
    assert {select_predictor(end, lm, votes, y, classes=AB, order=order).name
            for order in itertools.permutations(PREDICTORS)} <= {"label_model_backoff", "blend"}
    with pytest.raises(ConfigError, match="permutation"):
        select_predictor(end, lm, votes, y, classes=AB, order=("end_model", "blend"))


def test_the_tie_order_follows_its_dev_only_derivation():
    """``TIE_ORDER`` (module docstring): the candidate with a parameter fitted on dev (the
    blend's weight) last; of the orders that put it last, the one the dev-only tie order
    study (``benchmarks/end_models.py``, ``TIE_STUDY``) scores best on held-out dev halves."""
    y = np.array([0, 1, 0, 1])
    fitted = {name: len(fit_predictor(name, END, LM, L, y, metric="accuracy", classes=AB)) for name in PREDICTORS}
    assert fitted == {"end_model": 0, "label_model_backoff": 0, "blend": 1}
    assert sorted(TIE_ORDER, key=fitted.get) == list(TIE_ORDER)
    assert set(TIE_STUDY) == set(itertools.permutations(PREDICTORS))
    last = {order: score for order, score in TIE_STUDY.items() if fitted[order[-1]] == max(fitted.values())}
    assert max(last, key=last.get) == TIE_ORDER


def test_pin_serves_the_pinned_predictor_and_still_reports_the_scores():
    end, lm, votes, y = _dev(200, lm_right=0.95, end_right=0.7)
    chosen = select_predictor(end, lm, votes, y, classes=AB, pinned="end_model")
    assert chosen.name == "end_model" and chosen.pinned and "pinned by serving.predictor" in chosen.rule
    assert len(chosen.candidates) == 3


def test_no_labelled_dev_rows_serves_the_end_model():
    chosen = select_predictor(END, LM, L, [-1] * 4, classes=AB)
    assert chosen.name == "end_model" and "no labelled dev rows" in chosen.rule and not chosen.candidates


def test_few_dev_rows_leave_the_blend_out():
    chosen = select_predictor(END, LM, L, [0, 1, 0, 1], classes=AB)
    assert [c["name"] for c in chosen.candidates] == ["end_model", "label_model_backoff"]


def test_predictor_names_are_the_configs_choices():
    from labeling.config import _CHOICES

    assert _CHOICES[("serving", "predictor")] == ("auto", *predictors.PREDICTORS)
