"""Multi-label label models and per-class thresholds on small tensors with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.models.label_models import MajorityVote
from labeling.multilabel.label_models import (
    ExclusiveLabelModel,
    MultiLabelMajorityVote,
    PerClassLabelModel,
    choose_thresholds,
    dawid_skene_per_class,
    multilabel_label_model_from_dict,
)
from labeling.models.label_models import DawidSkene
from labeling.multilabel.votes import NOT, class_matrix, decode_votes, encode_vote

A = -1


def test_majority_vote_keeps_every_class_with_more_yes_than_no():
    L = np.array([[0, 1, A], [0, NOT(0), A], [encode_vote([0, 1]), NOT(1), 1], [A, A, A]])
    T = decode_votes(L, 3)
    P = MultiLabelMajorityVote().fit(T).predict(T)
    assert P.tolist() == [[1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_thresholds_maximize_f1_per_class_and_keep_the_highest_tie():
    P = np.array([[0.1, 0.9], [0.4, 0.8], [0.6, 0.2], [0.9, 0.7]])
    Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    assert choose_thresholds(P, Y).tolist() == [0.6, 0.7]


def test_a_class_absent_from_dev_keeps_the_default_threshold():
    assert choose_thresholds(np.array([[0.3], [0.9]]), np.array([[0], [0]])).tolist() == [0.5]


def _tensor(n=400, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 2)) < 0.4).astype(np.int8)
    cols = [np.where((Y[:, j % 2] == 1) & (rng.random(n) < 0.7) | (rng.random(n) < 0.05), j % 2, A) for j in range(5)]
    return decode_votes(np.stack(cols, axis=1), 2), Y


@pytest.mark.parametrize("base", ["weighted_mv", "dawid_skene", "snorkel", "majority_vote"])
def test_per_class_models_recover_the_classes_and_round_trip_through_json(base):
    T, Y = _tensor()
    model = PerClassLabelModel(base, n_epochs=50).fit(T, Y).fit_thresholds(T, Y)
    pred = model.predict(T)
    assert (pred == Y).mean() > 0.85
    again = multilabel_label_model_from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.array_equal(again.predict(T), pred)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 6))
def test_one_em_over_all_classes_fits_what_k_separate_dawid_skene_fits_fit(seed, k, m):
    rng = np.random.default_rng(seed)
    T = rng.choice(np.array([A, 0, 1], dtype=np.int8), size=(60, m, k), p=[0.7, 0.1, 0.2])
    T[:, :, 0] = np.where(rng.random((60, m)) < 0.5, A, T[:, :, 0])  # classes differ in how often LFs speak
    models, lfs = dawid_skene_per_class(T, max_iter=30)
    for c in range(k):
        L_c, cols = class_matrix(T, c, silent_as_no=False)
        assert lfs[c].tolist() == cols.tolist()
        if not len(cols):
            assert models[c] is None
            continue
        ref = DawidSkene(2, max_iter=30).fit(L_c)
        assert models[c].n_iter_ == ref.n_iter_
        np.testing.assert_allclose(models[c].confusion_, ref.confusion_, atol=1e-9)
        np.testing.assert_allclose(models[c].predict_proba(L_c), ref.predict_proba(L_c), atol=1e-9)


def test_snorkel_falls_back_to_dawid_skene_for_a_class_with_fewer_than_3_lfs():
    T, Y = _tensor()
    model = PerClassLabelModel("snorkel", n_epochs=20).fit(T)
    assert set(model.fallbacks_) == {1} and "needs 3" in model.fallbacks_[1]  # class 1: LFs 1 and 3 only
    assert type(model.models_[0]).__name__ == "SnorkelLabelModel"


def test_a_class_no_lf_votes_on_is_never_predicted():
    T = decode_votes(np.array([[0], [A]]), 2)
    model = PerClassLabelModel("dawid_skene").fit(T)
    assert model.predict_proba(T)[:, 1].tolist() == [0.0, 0.0] and 1 in model.fallbacks_


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(2, 4).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.lists(st.integers(-1, k - 1), min_size=3, max_size=3), min_size=1, max_size=30))),
    st.sampled_from(["random", "first"]))
def test_exclusive_classes_predict_what_the_single_label_pipeline_predicts(case, tie_break):
    """Rows with one class each and LFs voting one class: the declared-exclusive model
    gives each row the single-label majority vote's class (same tie-break)."""
    k, rows = case
    L = np.array(rows, dtype=np.int64)
    single = MajorityVote(k).fit(L).predict(L, tie_break=tie_break)
    sets = ExclusiveLabelModel("majority_vote", tie_break=tie_break).fit(decode_votes(L, k)).predict(decode_votes(L, k))
    assert (sets.sum(axis=1) == 1).all()
    assert sets.argmax(axis=1).tolist() == single.tolist()
