"""LF return values -> int codes -> the (n, m, k) vote tensor, through the single-label applier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snorkel.labeling import labeling_function

from labeling.errors import LabelMatrixError, LFApplicationError
from labeling.lf.apply import apply_lfs
from labeling.lf.declarative import keyword_lf
from labeling.models.label_models import DawidSkene, MajorityVote, probs_to_preds
from labeling.multilabel.label_models import ExclusiveLabelModel
from labeling.multilabel.votes import (
    NO,
    NOT,
    YES,
    apply_cardinality,
    class_matrix,
    decode_votes,
    encode_vote,
    multilabel_lfs,
    votes_summary,
)

A = -1


@pytest.mark.parametrize("vote, expected", [
    (A, [A, A, A]),
    (2, [A, A, YES]),
    ([0, 2], [YES, A, YES]),
    ((1,), [A, YES, A]),
    (NOT(1), [A, NO, A]),
    ([0, NOT(2)], [YES, A, NO]),
    ([], [A, A, A]),
    ({1, 2}, [A, YES, YES]),
])
def test_each_return_value_decodes_to_its_votes(vote, expected):
    T = decode_votes(np.array([[encode_vote(vote)]]), 3)
    assert T[0, 0].tolist() == expected


@pytest.mark.parametrize("vote", ["1", None, 1.5, [0, "x"], [31], [1, NOT(1)]])
def test_a_bad_return_value_is_refused(vote):
    with pytest.raises(LabelMatrixError):
        encode_vote(vote)


def test_a_vote_for_a_class_outside_the_project_names_the_lf_and_row():
    with pytest.raises(LabelMatrixError, match=r"LF 'b' votes .* on row 1"):
        decode_votes(np.array([[0, A], [A, encode_vote([0, 3])]]), 3, names=["a", "b"])


def test_the_applier_runs_list_and_not_votes_beside_compiled_keyword_lfs():
    @labeling_function()
    def both(x):
        return [0, 1] if "both" in x.text else A

    @labeling_function()
    def not_food(x):
        return NOT(2) if "studio" in x.text else A

    lfs = multilabel_lfs([keyword_lf("kw", ["goal"], 0), both, not_food])
    frame = pd.DataFrame({"text": ["a goal", "both here", "studio both", "nothing"]})
    L = apply_lfs(lfs, frame, cardinality=apply_cardinality(), n_jobs=1).L
    T = decode_votes(L, 3)
    assert T[:, 0, 0].tolist() == [YES, A, A, A]
    assert T[1, 1].tolist() == [YES, YES, A] and T[2, 2].tolist() == [A, A, NO]
    assert (T[3] == A).all()


def test_set_votes_come_back_whole_from_the_vote_cache(tmp_path):
    """A set vote is a 63-bit code: the cache kept columns as int32, and the second retrain
    of GoEmotions read [amusement, joy] back as class 131074."""
    @labeling_function()
    def amused_and_joyful(x):
        return [1, 17] if "haha" in x.text else NOT(2)

    frame = pd.DataFrame({"text": ["haha", "meh", "haha yes"]})
    runs = [decode_votes(apply_lfs(multilabel_lfs([amused_and_joyful]), frame, cardinality=apply_cardinality(),
                                   n_jobs=1, cache=tmp_path).L, 28) for _ in range(2)]
    assert np.array_equal(runs[0], runs[1])
    assert runs[1][0, 0, [1, 17]].tolist() == [YES, YES] and runs[1][1, 0, 2] == NO


def test_an_lf_returning_a_string_fails_with_its_name():
    @labeling_function()
    def wordy(x):
        return "sport"

    with pytest.raises(LFApplicationError, match="wordy"):
        apply_lfs(multilabel_lfs([wordy]), pd.DataFrame({"text": ["x"]}), cardinality=apply_cardinality(), n_jobs=1)


def test_class_matrix_keeps_the_lfs_of_a_class_and_reads_their_silence_as_no():
    T = decode_votes(np.array([[0, 1, A], [A, 1, A], [A, A, NOT(0)]]), 2)
    L0, lfs = class_matrix(T, 0)
    assert lfs.tolist() == [0, 2] and L0.tolist() == [[1, 0], [0, 0], [0, 0]]
    L0, _ = class_matrix(T, 0, silent_as_no=False)
    assert L0.tolist() == [[1, A], [A, A], [A, 0]]


def test_votes_summary_is_per_lf_and_class_with_gold_precision():
    T = decode_votes(np.array([[0], [0], [NOT(1)]]), 2)
    Y = np.array([[1, 0], [0, 1], [0, 0]])
    table = votes_summary(T, ["lf"], ["a", "b"], Y)
    assert table.loc[("lf", "a"), "yes_precision"] == 0.5
    assert table.loc[("lf", "b"), "no_accuracy"] == 1.0


def test_declarative_lfs_take_not_and_a_list_as_one_encoded_vote():
    lfs = [keyword_lf("kw_not", ["studio"], NOT(2)), keyword_lf("kw_both", ["stadium"], encode_vote([0, 1]))]
    frame = pd.DataFrame({"text": ["studio", "stadium", "x"]})
    T = decode_votes(apply_lfs(lfs, frame, cardinality=apply_cardinality(), n_jobs=1).L, 3)
    assert T[0, 0].tolist() == [A, A, NO] and T[1, 1].tolist() == [YES, YES, A] and (T[2] == A).all()


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.integers(2, 4).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, 3)), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, k - 1)), max_size=3))),
    st.sampled_from(["majority_vote", "dawid_skene"]), st.sampled_from(["random", "first"]))
def test_rows_with_one_label_each_get_the_single_label_pipelines_predictions(case, base, tie_break):
    """The issue's invariant: a multi-label project whose rows carry exactly one class, with
    LFs voting one class each, predicts what the single-label pipeline predicts: the same
    LFs through the same applier, the classes declared exclusive, the same label model."""
    k, rows, noisy = case
    frame = pd.DataFrame({"text": [f"w{c} n{noise}" for c, noise in rows]})
    lfs = [keyword_lf(f"kw{c}", [f"w{c}"], c) for c in range(k)]
    lfs += [keyword_lf(f"noise{i}", [f"n{noise}"], c) for i, (noise, c) in enumerate(noisy)]
    L = apply_lfs(lfs, frame, cardinality=k, n_jobs=1).L
    T = decode_votes(apply_lfs(multilabel_lfs(lfs), frame, cardinality=apply_cardinality(), n_jobs=1).L, k)
    single = (MajorityVote if base == "majority_vote" else DawidSkene)(k).fit(L)
    sets = ExclusiveLabelModel(base, tie_break=tie_break).fit(T)
    np.testing.assert_allclose(sets.predict_proba(T), single.predict_proba(L), atol=1e-12)
    predicted = sets.predict(T)
    assert (predicted.sum(axis=1) == 1).all()
    assert predicted.argmax(axis=1).tolist() == probs_to_preds(single.predict_proba(L), tie_break).tolist()
