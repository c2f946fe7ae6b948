import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labeling.errors import ArtifactError, ConfigError, LabelError, LabelMatrixError, NotFittedError
from labeling.models.label_models import (
    LABEL_MODELS,
    CandidateScore,
    DawidSkene,
    MajorityVote,
    Selection,
    SnorkelLabelModel,
    WeightedMajorityVote,
    label_model_from_dict,
    probs_to_preds,
    score_predictions,
    select_label_model,
)
from labeling.data.wrench import load_wrench

FAST = {  # every model, cheap enough for property tests
    "majority_vote": lambda k: MajorityVote(k),
    "weighted_majority_vote": lambda k: WeightedMajorityVote(k),
    "dawid_skene": lambda k: DawidSkene(k, max_iter=20),
    "snorkel": lambda k: SnorkelLabelModel(k, n_epochs=20),
}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from labeling.settings import SHARED_DATA
    from labeling.settings import data_dir as configured

    return configured() or SHARED_DATA


def label_matrices(k_max=4, max_rows=30, max_lfs=6):
    @st.composite
    def build(draw):
        k = draw(st.integers(2, k_max))
        n = draw(st.integers(1, max_rows))
        m = draw(st.integers(3, max_lfs))
        L = draw(arrays(np.int64, (n, m), elements=st.integers(-1, k - 1)))
        y = draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
        return k, L, y

    return build()


def _fit(name, k, L, y):
    return FAST[name](k).fit(L, y)


# ------------------------------------------------------------------ probs_to_preds


def test_probs_to_preds_policies():
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [0.5, 0.5], [0.4, 0.4 + 1e-7]])
    assert probs_to_preds(probs, "abstain").tolist() == [1, -1, -1, -1]
    assert probs_to_preds(probs, "first").tolist() == [1, 0, 0, 0]
    with pytest.raises(ConfigError):
        probs_to_preds(probs, "coin")


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(2, 5)), elements=st.sampled_from([0.1, 0.2, 0.3])))
def test_random_tie_break_equals_snorkel(raw):
    from snorkel.utils import probs_to_preds as snorkel_probs_to_preds

    probs = raw / raw.sum(axis=1, keepdims=True)
    assert probs_to_preds(probs).tolist() == snorkel_probs_to_preds(probs).tolist()


# ------------------------------------------------------------------ properties of every model


@pytest.mark.parametrize("name", sorted(FAST))
@settings(max_examples=15, deadline=None)
@given(data=label_matrices())
def test_proba_rows_are_distributions(name, data):
    k, L, y = data
    probs = _fit(name, k, L, y).predict_proba(L)
    assert probs.shape == (len(L), k)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FAST))
@settings(max_examples=10, deadline=None)
@given(data=label_matrices())
def test_json_round_trip_predicts_identically(name, data):
    k, L, y = data
    model = _fit(name, k, L, y)
    restored = label_model_from_dict(json.loads(json.dumps(model.to_dict())))
    assert type(restored) is type(model) and restored.get_params() == model.get_params()
    np.testing.assert_array_equal(restored.predict_proba(L), model.predict_proba(L))


@pytest.mark.parametrize("name", sorted(FAST))
def test_restored_model_is_bit_identical_on_many_seeded_matrices(name):
    # Regression: DawidSkene kept a transposed confusion_ whose strides made BLAS sum in
    # another order than for the C-ordered copy read back from JSON (3e-18 apart).
    rng = np.random.default_rng(7)
    for _ in range(40):
        k, n, m = int(rng.integers(2, 5)), int(rng.integers(1, 31)), int(rng.integers(3, 7))
        L, y = rng.integers(-1, k, size=(n, m)), rng.integers(0, k, size=n)
        model = _fit(name, k, L, y)
        for attr in model._learned:
            value = getattr(model, attr)
            assert not isinstance(value, np.ndarray) or value.flags["C_CONTIGUOUS"]
        restored = label_model_from_dict(json.loads(json.dumps(model.to_dict())))
        np.testing.assert_array_equal(restored.predict_proba(L), model.predict_proba(L))


@pytest.mark.parametrize("name", sorted(FAST))
def test_determinism_from_random_state(name):
    rng = np.random.default_rng(3)
    L = rng.integers(-1, 3, size=(60, 5))
    y = rng.integers(0, 3, size=60)
    first = _fit(name, 3, L, y).predict_proba(L)
    np.testing.assert_array_equal(first, _fit(name, 3, L, y).predict_proba(L))


@settings(max_examples=30, deadline=None)
@given(data=label_matrices(), seed=st.integers(0, 1000))
def test_majority_vote_ignores_lf_order(data, seed):
    k, L, _ = data
    perm = np.random.default_rng(seed).permutation(L.shape[1])
    assert MajorityVote(k).fit(L).predict(L).tolist() == MajorityVote(k).fit(L[:, perm]).predict(L[:, perm]).tolist()


# ------------------------------------------------------------------ documented all-abstain behaviour


def test_all_abstain_rows():
    L = np.array([[0, 0, 1], [1, 1, -1], [0, 1, 1], [-1, -1, -1]] * 10)
    y = np.array([0, 1, 1, 0] * 10)
    abstain = L.shape[0] - 1
    for model in (MajorityVote(2), WeightedMajorityVote(2)):
        np.testing.assert_allclose(model.fit(L, y).predict_proba(L)[abstain], [0.5, 0.5])
    snorkel = SnorkelLabelModel(2, n_epochs=50, class_balance=[0.7, 0.3]).fit(L)
    np.testing.assert_allclose(snorkel.predict_proba(L)[abstain], [0.7, 0.3])
    ds = DawidSkene(2).fit(L)
    prior, conf = ds.class_prior_, ds.confusion_
    expected = prior * np.prod(conf[:, :, 0], axis=0)  # P(y) * prod_j P(LF j abstains | y)
    np.testing.assert_allclose(ds.predict_proba(L)[abstain], expected / expected.sum())


def test_majority_vote_fractions():
    probs = MajorityVote(3).fit(np.array([[0, 0, 2, -1]])).predict_proba(np.array([[0, 0, 2, -1]]))
    np.testing.assert_allclose(probs, [[2 / 3, 0, 1 / 3]])


def test_weighted_majority_vote_trusts_accurate_lfs():
    # LF 0 is always right on dev, LFs 1 and 2 always wrong and outvote it in plain MV
    y = np.array([0, 1] * 20)
    L = np.stack([y, 1 - y, 1 - y], axis=1)
    wmv = WeightedMajorityVote(2).fit(L, y)
    assert wmv.weights_[0] > 0 > wmv.weights_[1]
    assert wmv.predict(L).tolist() == y.tolist()
    assert MajorityVote(2).fit(L).predict(L).tolist() == (1 - y).tolist()


# ------------------------------------------------------------------ snorkel wrapper


def test_snorkel_numpy_proba_matches_snorkel():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    noisy = np.where(rng.random((300, 6)) < 0.7, y[:, None], rng.integers(0, 3, size=(300, 6)))
    L = np.where(rng.random((300, 6)) < 0.6, noisy, -1)
    ours = SnorkelLabelModel(3, n_epochs=200, class_balance="dev").fit(L, y)

    from snorkel.labeling.model import LabelModel

    theirs = LabelModel(cardinality=3, verbose=False)
    theirs.fit(L, class_balance=list(ours.class_balance_), n_epochs=200, lr=0.01, seed=0, progress_bar=False)
    np.testing.assert_allclose(ours.predict_proba(L), theirs.predict_proba(L), atol=1e-6)
    assert ours.mu_.shape == (6 * 3, 3)


def test_snorkel_fit_leaves_global_rngs_alone():
    import torch

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    torch_state = torch.get_rng_state()
    SnorkelLabelModel(2, n_epochs=5).fit(np.array([[0, 1, 0], [1, 1, -1], [0, 0, 0]]))
    assert (np.random.random(), random.random()) == expected
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_snorkel_fit_leaves_torch_thread_count_alone():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SnorkelLabelModel(2, n_epochs=5).fit(np.array([[0, 1, 0], [1, 1, -1], [0, 0, 0]]))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("k", "l2", "optimizer", "seed"), [
    (2, 0.0, "sgd", 0),  # the workbench's and the pipeline's default: light SGD, no L2 graph
    (2, 0.1, "sgd", 3),  # L2 term and weight decay kept
    (3, 0.0, "sgd", 1),
    (3, 0.05, "adam", 2),  # not SGD: torch's optimizer, only logging trimmed
])
def test_fast_snorkel_fit_mu_is_bit_identical_to_snorkel(k, l2, optimizer, seed):
    from snorkel.labeling.model import LabelModel

    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, 3_000)
    votes = np.where(rng.random((3_000, 5)) < 0.75, y[:, None], rng.integers(0, k, (3_000, 5)))
    L = np.where(rng.random((3_000, 5)) < 0.5, votes, -1)
    ours = SnorkelLabelModel(cardinality=k, n_epochs=150, l2=l2, optimizer=optimizer, random_state=seed).fit(L)
    ref = LabelModel(cardinality=k, verbose=False)
    ref.fit(L, class_balance=[1 / k] * k, n_epochs=150, lr=0.01, l2=l2, optimizer=optimizer, seed=seed,
            progress_bar=False)
    np.testing.assert_array_equal(ours.mu_, ref.mu.detach().numpy().astype(np.float64))
    np.testing.assert_allclose(ours.predict_proba(L), ref.predict_proba(L), atol=1e-6)
    assert (ours.predict(L) == ref.predict(L, tie_break_policy="random")).all()


# ------------------------------------------------------------------ bad input


def test_bad_inputs_raise_specific_errors():
    L = np.array([[0, 1, -1], [1, 1, 0]])
    with pytest.raises(LabelMatrixError):
        MajorityVote(2).fit(np.array([[0, 2, 1]]))  # vote 2 with cardinality 2
    with pytest.raises(LabelMatrixError):
        MajorityVote(2).fit(np.array([0, 1, 1]))  # 1-D
    with pytest.raises(LabelMatrixError):
        SnorkelLabelModel(2).fit(L[:, :2])  # < 3 LFs
    with pytest.raises(LabelError):
        WeightedMajorityVote(2).fit(L)  # no gold labels
    with pytest.raises(LabelError):
        WeightedMajorityVote(2).fit(L, np.array([0, 5]))
    with pytest.raises(LabelError):
        WeightedMajorityVote(2).fit(L, np.array([0]))
    with pytest.raises(NotFittedError):
        MajorityVote(2).predict_proba(L)
    with pytest.raises(LabelMatrixError):
        MajorityVote(2).fit(L).predict_proba(L[:, :2])  # other LF count than fitted
    with pytest.raises(ConfigError):
        MajorityVote(1).fit(L)
    with pytest.raises(ConfigError):
        SnorkelLabelModel(2, optimizer="lbfgs").fit(L)


def test_from_dict_rejects_unknown_or_broken():
    saved = MajorityVote(2).fit(np.array([[0, 1, 1]])).to_dict()
    with pytest.raises(ArtifactError):
        label_model_from_dict({**saved, "type": "os.system"})
    with pytest.raises(ArtifactError):
        label_model_from_dict({**saved, "learned": {}})
    with pytest.raises(ArtifactError):
        label_model_from_dict({"type": "MajorityVote"})


def test_registry_and_to_dict_shape():
    assert set(LABEL_MODELS) == {"majority_vote", "weighted_majority_vote", "dawid_skene", "snorkel"}
    d = MajorityVote(3).fit(np.array([[0, 1, 2]])).to_dict()
    assert d == {"type": "MajorityVote", "params": {"cardinality": 3, "random_state": 0}, "learned": {"n_lfs_": 3}}


# ------------------------------------------------------------------ metrics and selection


def test_score_predictions_matches_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 3, 200), rng.integers(-1, 3, 200)
    assert score_predictions(y, pred, "accuracy", cardinality=3) == pytest.approx(accuracy_score(y, pred))
    assert score_predictions(y, pred, "macro_f1", cardinality=3) == pytest.approx(
        f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    )
    yb, pb = y % 2, np.where(pred < 0, -1, pred % 2)
    assert score_predictions(yb, pb, "f1", cardinality=2) == pytest.approx(
        f1_score(yb, pb, labels=[1], average="micro")
    )
    with pytest.raises(ConfigError):
        score_predictions(y, pred, "f1", cardinality=3)


def _synthetic(rng, n, accs):
    y = rng.integers(0, 2, n)
    right = rng.random((n, len(accs))) < np.array(accs)
    votes = np.where(right, y[:, None], 1 - y[:, None])
    return np.where(rng.random((n, len(accs))) < 0.8, votes, -1), y


def test_select_prefers_accurate_weighting_and_reports_all():
    rng = np.random.default_rng(0)
    accs = [0.95, 0.3, 0.3, 0.3, 0.55]
    L_train, _ = _synthetic(rng, 400, accs)
    L_dev, y_dev = _synthetic(rng, 200, accs)
    candidates = [MajorityVote(2), WeightedMajorityVote(2), DawidSkene(2)]
    selection = select_label_model(L_train, L_dev, y_dev, 2, candidates=candidates)
    assert isinstance(selection, Selection)
    assert all(isinstance(s, CandidateScore) for s in selection.scores) and len(selection.scores) == 3
    assert isinstance(selection.model, WeightedMajorityVote)
    again = select_label_model(L_train, L_dev, y_dev, 2, candidates=candidates)
    assert again.scores == selection.scores


def test_incumbent_is_kept_on_a_tie_and_replaced_when_clearly_beaten():
    rng = np.random.default_rng(1)
    # LF 0 is right 95% of the time, the others are coin flips that outvote it.
    accs = [0.95, 0.5, 0.5, 0.5, 0.5]
    L_train, _ = _synthetic(rng, 400, accs)
    L_dev, y_dev = _synthetic(rng, 300, accs)
    beaten = select_label_model(L_train, L_dev, y_dev, 2, candidates=[MajorityVote(2), WeightedMajorityVote(2)], prefer=0)
    assert beaten.index == 1 and beaten.scores[1].dev_score - beaten.scores[0].dev_score > beaten.tolerance
    # Two models that vote alike: the incumbent stays even when listed after the simpler one.
    L = np.array([[0, 0, 0], [1, 1, 1]] * 10)
    y = np.array([0, 1] * 10)
    kept = select_label_model(L, L, y, 2, candidates=[MajorityVote(2), WeightedMajorityVote(2)], prefer=1)
    assert kept.index == 1 and kept.name == "WeightedMajorityVote()"
    with pytest.raises(ConfigError, match="prefer"):
        select_label_model(L, L, y, 2, candidates=[MajorityVote(2)], prefer=3)


def test_select_ties_go_to_simpler_model():
    L = np.array([[0, 0, 0], [1, 1, 1]] * 10)
    y = np.array([0, 1] * 10)
    selection = select_label_model(L, L, y, 2, candidates=[MajorityVote(2), WeightedMajorityVote(2)], tie_se=0)
    assert selection.name == "MajorityVote()"
    with pytest.raises(ConfigError):
        select_label_model(L, L, y, 2, metric="auc")


TOO_FEW_OR_ONE_CLASS = {  # dev labels (6 dev rows, -1 = unlabelled) -> why dev cannot choose
    "0 labelled": ([-1] * 6, "there are no labelled dev rows; scoring candidates needs at least 5"),
    "1 labelled": ([1] + [-1] * 5, "there is 1 labelled dev row; scoring candidates needs at least 5"),
    "4 labelled": ([0, 1, 0, 1, -1, -1], "there are 4 labelled dev rows; scoring candidates needs at least 5"),
    "one class": ([1] * 6, "all 6 labelled dev rows are of class 'spam'; on one class the dev score ranks only "
                           "that class's recall, so it cannot tell candidates apart"),
}


@pytest.mark.parametrize("case", sorted(TOO_FEW_OR_ONE_CLASS))
@pytest.mark.parametrize("prefer", [None, 2])
def test_too_few_or_one_class_dev_labels_keep_the_simplest_or_preferred_candidate_and_say_why(case, prefer):
    y_dev, why = TOO_FEW_OR_ONE_CLASS[case]
    rng = np.random.default_rng(0)
    L_train, _ = _synthetic(rng, 100, [0.9, 0.7, 0.6])
    L_dev, _ = _synthetic(rng, 6, [0.9, 0.7, 0.6])
    candidates = [MajorityVote(2), WeightedMajorityVote(2), DawidSkene(2, max_iter=20)]
    selection = select_label_model(L_train, L_dev, np.array(y_dev), 2, candidates=candidates, prefer=prefer,
                                   classes=("ham", "spam"))
    chosen = 0 if prefer is None else prefer
    assert selection.fallback == why and selection.scores == () and selection.index == chosen
    assert type(selection.model) is type(candidates[chosen]) and selection.model.predict_proba(L_dev).shape == (6, 2)
    # one candidate is no choice: it is scored (one class) or its score cannot be computed (a clear error)
    if case == "one class":
        alone = select_label_model(L_train, L_dev, np.array(y_dev), 2, candidates=[MajorityVote(2)])
        assert not alone.fallback and len(alone.scores) == 1
    else:
        with pytest.raises(LabelError, match="labelled rows; scoring a candidate needs at least n_folds=5"):
            select_label_model(L_train, L_dev, np.array(y_dev), 2, candidates=[MajorityVote(2)])


@pytest.mark.parametrize("prefer, kept", [("", "MajorityVote(), the simplest candidate,"),
                                          ("snorkel", "the incumbent snorkel")])
def test_auto_label_model_with_four_dev_labels_falls_back_and_names_the_setting(prefer, kept):
    from labeling.config import project_config_from_dict
    from labeling.models.label_models import fit_label_model

    config = project_config_from_dict({"project": {"name": "p", "classes": ["ham", "spam"]},
                                       "label_model": {"type": "auto", "prefer": prefer, "n_epochs": 20}})
    rng = np.random.default_rng(0)
    L_train, _ = _synthetic(rng, 100, [0.9, 0.7, 0.6])
    L_dev, y_dev = _synthetic(rng, 4, [0.9, 0.7, 0.6])
    model, info = fit_label_model(config, L_train, L_dev, y_dev)  # used to stop: "need at least n_folds=5"
    assert type(model) is (SnorkelLabelModel if prefer else MajorityVote)
    assert info["fallback"] == "there are 4 labelled dev rows; scoring candidates needs at least 5"
    assert info["rule"].startswith(f"{kept} kept: there are 4 labelled dev rows") and info["candidates"] == []
    assert 'set label_model.type = "majority_vote" or "snorkel"' in info["rule"]
    json.dumps(info)  # recorded with the run


# ------------------------------------------------------------------ real WRENCH data

WRENCH = {  # folder: (metric, published MV, best published label model), WRENCH paper, %
    "youtube_1586": ("accuracy", 84.00, 84.00),
    "sms": ("f1", 23.97, 23.97),
    "trec": ("accuracy", 60.80, 64.20),
    "semeval": ("accuracy", 77.33, 77.33),
}


def _wrench(data_dir, folder):
    path = data_dir / "wrench" / folder
    if not path.is_dir():
        pytest.skip(f"WRENCH data not found at {path}")
    return load_wrench(path)


@pytest.mark.parametrize("folder", sorted(WRENCH))
def test_majority_vote_reproduces_wrench(data_dir, folder):
    ds = _wrench(data_dir, folder)
    metric, published, _ = WRENCH[folder]
    preds = MajorityVote(ds.cardinality).fit(ds.train.L).predict(ds.test.L)
    assert round(100 * score_predictions(ds.test.y, preds, metric, cardinality=ds.cardinality), 2) == published


@pytest.mark.parametrize("folder", ["youtube_1586", "trec", "semeval"])
def test_selection_beats_best_published(data_dir, folder):
    ds = _wrench(data_dir, folder)
    metric, _, best = WRENCH[folder]
    selection = select_label_model(ds.train.L, ds.valid.L, ds.valid.y, ds.cardinality, metric=metric)
    test = score_predictions(ds.test.y, selection.model.predict(ds.test.L), metric, cardinality=ds.cardinality)
    assert 100 * test >= best


def test_fast_snorkel_fit_is_identical_to_snorkel_and_majority_vote_ties_match_snorkel():
    from snorkel.labeling.model import LabelModel
    from snorkel.utils import probs_to_preds as snorkel_probs_to_preds

    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 20_000)
    votes = np.where(rng.random((20_000, 6)) < 0.7, y[:, None], rng.integers(0, 3, (20_000, 6)))
    L = np.where(rng.random((20_000, 6)) < 0.4, votes, -1)
    ours = SnorkelLabelModel(cardinality=3, n_epochs=100).fit(L)
    ref = LabelModel(cardinality=3, verbose=False)
    ref.fit(L, class_balance=[1 / 3] * 3, n_epochs=100, lr=0.01, l2=0.0, optimizer="sgd", seed=0, progress_bar=False)
    np.testing.assert_array_equal(ours.mu_, ref.mu.detach().numpy().astype(np.float64))
    mv = MajorityVote(cardinality=3).fit(L)
    probs = mv.predict_proba(L)
    assert (probs_to_preds(probs) == snorkel_probs_to_preds(probs)).all()
    for tie_break in ("random", "abstain", "first"):
        assert (mv.predict(L, tie_break) == probs_to_preds(probs, tie_break)).all()


def test_binary_majority_vote_predict_matches_snorkel_tie_breaks():
    from snorkel.utils import probs_to_preds as snorkel_probs_to_preds

    L = np.random.default_rng(3).integers(-1, 2, size=(5_000, 4))  # many ties and all-abstain rows
    mv = MajorityVote(cardinality=2).fit(L)
    probs = mv.predict_proba(L)
    assert (mv.predict(L) == snorkel_probs_to_preds(probs)).all()
    for tie_break in ("random", "abstain", "first"):
        assert (mv.predict(L, tie_break) == probs_to_preds(probs, tie_break)).all()


@settings(max_examples=30, deadline=None)
@given(batches=st.lists(st.lists(st.integers(0, 5000), min_size=1, max_size=40), min_size=1, max_size=4),
       cardinality=st.integers(2, 5))
def test_row_hashes_are_memoized_only_for_rows_asked(batches, cardinality):
    from math import lcm

    from labeling.models.label_models import _row_hash, _row_hash_mod

    modulus = lcm(*range(2, cardinality + 1))
    for rows in batches:  # calls in sequence grow and reuse the table
        got = _row_hash_mod(np.asarray(rows, dtype=np.int64), modulus)
        assert got.tolist() == [_row_hash(i) % modulus for i in rows]


@pytest.mark.parametrize("k", [42, 43, 50, 64])
def test_random_tie_break_equals_snorkel_with_many_classes(k):
    from snorkel.utils import probs_to_preds as snorkel_probs_to_preds

    rng = np.random.default_rng(k)
    # rows tied among 2..k classes, some among all k (lcm(2..k) overflows int64 from k = 43)
    tied = rng.random((300, k)) < rng.uniform(0.05, 1.0, size=(300, 1))
    tied[::7] = True
    tied[tied.sum(axis=1) == 0, 0] = True
    probs = tied / tied.sum(axis=1, keepdims=True)
    expected = snorkel_probs_to_preds(probs).tolist()
    assert probs_to_preds(probs).tolist() == expected
    # majority vote on a matrix whose vote counts tie the same classes
    L = np.full((300, k), -1, dtype=np.int64)
    rows, classes = np.nonzero(tied)
    L[rows, classes] = classes
    mv = MajorityVote(cardinality=k).fit(L)
    assert mv.predict(L).tolist() == expected
