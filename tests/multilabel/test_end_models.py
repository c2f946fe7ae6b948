"""Multi-label end models: the sigmoid MLP and one-vs-rest on small texts with known label sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from labeling.errors import ArtifactError, LabelingError
from labeling.multilabel.end_models import (
    SigmoidMLPTextClassifier,
    load_multilabel_end_model,
    multilabel_end_model,
    save_multilabel_end_model,
)

WORDS = ("goal match", "song guitar", "pizza soup")


def _data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < 0.4).astype(np.int8)
    texts = [" ".join(w for w, y in zip(WORDS, row) if y) + f" row{i}" for i, row in enumerate(Y)]
    return texts, Y


def _mlp(**kw):
    return SigmoidMLPTextClassifier(3, analyzer="word", ngram_min=1, ngram_max=1, hidden=16, epochs=15, lr=0.02,
                                    batch_size=32, device="cpu", **kw)


def test_the_sigmoid_mlp_learns_overlapping_label_sets_from_soft_targets():
    texts, Y = _data()
    model = _mlp().fit(texts, Y * 0.8 + 0.1).fit_thresholds(texts, Y)
    P = model.predict_proba(texts)
    assert P.shape == (150, 3) and not np.allclose(P.sum(axis=1), 1)  # independent per class, not a softmax
    assert (model.predict(texts) == Y).mean() > 0.95
    assert (model.predict(texts).sum(axis=1) > 1).any()


def test_the_sigmoid_mlp_follows_random_state_not_torchs_global_seed_which_it_never_sets():
    texts, Y = _data(60)
    torch.manual_seed(123)
    a = _mlp(random_state=4).fit(texts, Y)
    assert torch.initial_seed() == 123
    torch.manual_seed(7)
    b = _mlp(random_state=4).fit(texts, Y)
    np.testing.assert_array_equal(a.predict_proba(texts), b.predict_proba(texts))


@pytest.mark.parametrize("targets", [np.full((4, 3), 1.5), np.zeros((4, 2))])
def test_targets_outside_0_1_or_of_the_wrong_width_are_refused(targets):
    with pytest.raises(LabelingError, match=r"\(n, 3\)"):
        _mlp().fit(["a", "b", "c", "d"], targets)


@pytest.mark.parametrize("family", ["mlp", "word"])
def test_saved_without_pickle_and_loaded_with_checksums(tmp_path, family):
    texts, Y = _data(60)
    model = multilabel_end_model(family, 3, random_state=0)
    if family == "mlp":
        model.epochs, model.patience = 3, 0
    model.fit(texts, Y.astype(float)).fit_thresholds(texts, Y)
    files = save_multilabel_end_model(model, tmp_path / "em")
    assert not [p for p in (tmp_path / "em").rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    again = load_multilabel_end_model(tmp_path / "em", files)
    assert type(again) is type(model)
    np.testing.assert_array_equal(again.predict_proba(texts), model.predict_proba(texts))
    np.testing.assert_array_equal(again.thresholds_, model.thresholds_)
    meta = tmp_path / "em" / "multilabel.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "thresholds_": [0.1, 0.1, 0.1]}))
    with pytest.raises(ArtifactError, match="multilabel.json"):
        load_multilabel_end_model(tmp_path / "em", files)
