from __future__ import annotations

import numpy as np
import pytest

from labeling import (
    LabelingError,
    NotFittedError,
    SklearnTextClassifier,
    TorchTextClassifier,
)
from labeling.models.end_models import HashedCounts

TEXTS = ["check out my channel", "subscribe for free money", "love this song", "great voice",
         "visit my website now", "best video ever", "click here to win", "so beautiful"]
HARD = np.array([1, 1, 0, 0, 1, 0, 1, 0])

MODELS = [
    lambda k: SklearnTextClassifier(k, ngram_max=2, C=10.0),
    lambda k: TorchTextClassifier(k, ngram_max=2, epochs=20, lr=0.05, random_state=3),
]


@pytest.mark.parametrize("make", MODELS, ids=["sklearn", "torch"])
def test_soft_one_hot_equals_hard_labels(make):
    a = make(2).fit(TEXTS, HARD)
    b = make(2).fit(TEXTS, np.eye(2)[HARD])
    np.testing.assert_allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS), atol=1e-6)
    assert (a.predict(TEXTS) == HARD).mean() == 1.0


@pytest.mark.parametrize("make", MODELS, ids=["sklearn", "torch"])
def test_soft_labels_are_learned_not_argmaxed(make):
    # Every row 70% spam: the argmax would say "always spam with certainty"; a
    # model trained on the probabilities must predict about 0.7 instead.
    soft = np.tile([0.3, 0.7], (len(TEXTS), 1))
    proba = make(2).fit(TEXTS, soft).predict_proba(TEXTS + ["unseen words entirely"])
    assert proba.shape == (9, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba[:8, 1], 0.7, atol=0.06)
    assert 0.5 < proba[8, 1] < 0.8  # unseen text: the intercept, shrunk toward 0.5


@pytest.mark.parametrize("make", MODELS, ids=["sklearn", "torch"])
def test_multiclass_and_absent_class(make):
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    model = make(4).fit(TEXTS, y)  # class 3 never appears
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert proba[:, 3].max() < 0.05


def test_torch_is_reproducible_from_random_state():
    a = TorchTextClassifier(2, epochs=5, random_state=1).fit(TEXTS, HARD).predict_proba(TEXTS)
    b = TorchTextClassifier(2, epochs=5, random_state=1).fit(TEXTS, HARD).predict_proba(TEXTS)
    c = TorchTextClassifier(2, epochs=5, random_state=2).fit(TEXTS, HARD).predict_proba(TEXTS)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_torch_hidden_layer_learns():
    model = TorchTextClassifier(2, hidden=16, epochs=40, lr=0.02, random_state=0).fit(TEXTS, HARD)
    assert (model.predict(TEXTS) == HARD).all()


@pytest.mark.parametrize(
    "y, message",
    [
        (np.array([0.5, 0.5]), "class indices"),
        (np.full((8, 3), 1 / 3), r"shape \(n, 2\)"),
        (np.full((8, 2), 0.7), "summing to 1"),
        (np.zeros(8, dtype=int), "single class"),
    ],
)
def test_bad_labels(y, message):
    with pytest.raises(LabelingError, match=message):
        SklearnTextClassifier(2).fit(TEXTS if len(y) == 8 else TEXTS[:2], y)


def test_unfitted_and_empty():
    with pytest.raises(NotFittedError):
        SklearnTextClassifier(2).predict_proba(["x"])
    with pytest.raises(LabelingError, match="no training texts"):
        TorchTextClassifier(2).fit([], np.zeros((0, 2)))


@pytest.mark.parametrize("analyzer,low,high", [("char_wb", 2, 5), ("char_wb", 1, 1), ("char_wb", 3, 7), ("word", 1, 2),
                                               ("word", 2, 3)])
@pytest.mark.parametrize("cached", [True, False], ids=["word-cache", "no-cache"])
def test_fast_tfidf_equals_scikit_learn(youtube_frame, analyzer, low, high, cached):
    from labeling.models.end_models import make_vectorizer, tfidf_transform

    texts = youtube_frame["text"].tolist()
    vectorizer = make_vectorizer(analyzer, low, high).fit(texts[:1000])  # the rest holds unseen n-grams
    cache: dict | None = {} if cached else None
    for chunk in (texts, texts[1000:1003], [""], ["   "]):  # bulk, single requests, empty texts
        fast, slow = tfidf_transform(vectorizer, chunk, cache), vectorizer.transform(chunk)
        assert fast.shape == slow.shape and abs(fast - slow).max() < 1e-12


@pytest.mark.parametrize("k", [2, 3])
def test_fast_path_predicts_as_the_pipeline(youtube_frame, k):
    texts = youtube_frame["text"].tolist()[:600]
    y = np.arange(len(texts)) % k
    model = SklearnTextClassifier(k).fit(texts, y)
    assert model._fast_path_ok()
    for chunk in (texts, texts[:1], ["never seen ✨ text"]):
        np.testing.assert_allclose(model.predict_proba(chunk), model.pipeline_.predict_proba(chunk), rtol=0, atol=1e-12)


def test_torch_mlp_over_embeddings_and_ngrams_round_trips(tmp_path):
    from labeling import load_end_model, save_end_model

    texts = TEXTS * 4  # 32 rows: enough for a held-out early-stopping slice
    y = np.tile(HARD, 4)
    model = TorchTextClassifier(2, analyzer="word", ngram_min=1, ngram_max=2, max_features=20, embedder="wordllama",
                                hidden=8, epochs=50, lr=0.05, patience=3, random_state=0).fit(texts, y)
    assert model.device_ == "cpu"  # the device actually used (no GPU here)
    assert 1 <= model.epochs_run_ <= 50 and len(model.vectorizer_.vocabulary_) == 20
    assert (model.predict(TEXTS) == HARD).mean() >= 0.75
    model.class_offsets = (0.0, -1.0)
    save_end_model(model, tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").is_file()
    loaded = load_end_model(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-6)


def test_torch_embeddings_alone_need_no_vocabulary(tmp_path):
    from labeling import load_end_model, save_end_model

    model = TorchTextClassifier(2, ngrams=False, embedder="wordllama", epochs=30, lr=0.05).fit(TEXTS, HARD)
    assert not hasattr(model, "vectorizer_")
    save_end_model(model, tmp_path / "e")
    assert not (tmp_path / "e" / "vocabulary.json").exists()
    np.testing.assert_allclose(load_end_model(tmp_path / "e").predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-6)
    with pytest.raises(LabelingError, match="n-grams, an embedder"):
        TorchTextClassifier(2, ngrams=False).fit(TEXTS, HARD)


def test_word_and_char_union_with_embeddings_round_trips(tmp_path):
    import scipy.sparse as sp

    from labeling import load_end_model, save_end_model

    model = SklearnTextClassifier(2, analyzer="word+char_wb", ngram_min=2, ngram_max=4, C=10.0,
                                  embedder="wordllama").fit(TEXTS, np.eye(2)[HARD] * 0.8 + 0.1)
    X = model._features(TEXTS)
    union = model.pipeline_.named_steps["ngrams"]
    n_word = len(union.transformer_list[0][1].vocabulary_)
    n_char = len(union.transformer_list[1][1].vocabulary_)
    assert X.shape == (len(TEXTS), n_word + n_char + 256)
    # three blocks, each of row norm 1/sqrt(3): a row of norm 1, one C for all
    blocks = [X[:, :n_word], X[:, n_word:n_word + n_char], X[:, n_word + n_char:]]
    for block in blocks:
        np.testing.assert_allclose(sp.linalg.norm(block, axis=1), 1 / np.sqrt(3), rtol=1e-5)
    assert not model._fast_path_ok()  # no fast path for a union: the pipeline's own transform
    assert (model.predict(TEXTS) == HARD).all()
    model.class_offsets = (0.0, -0.5)
    save_end_model(model, tmp_path / "u")
    loaded = load_end_model(tmp_path / "u")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-12)


def test_one_vectorizer_with_embeddings_weighs_both_alike():
    import scipy.sparse as sp

    model = SklearnTextClassifier(2, analyzer="word", ngram_min=1, ngram_max=1, embedder="wordllama").fit(TEXTS, HARD)
    X = model._features(TEXTS)
    n_word = len(model.pipeline_.named_steps["ngrams"].vocabulary_)
    np.testing.assert_allclose(sp.linalg.norm(X[:, :n_word], axis=1), 1 / np.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(sp.linalg.norm(X[:, n_word:], axis=1), 1 / np.sqrt(2), rtol=1e-5)


def test_the_sklearn_config_carries_its_embedder():
    from labeling.config import EndModelConfig
    from labeling.models.end_models import make_end_model

    model = make_end_model(EndModelConfig(type="sklearn", analyzer="word", embedder="wordllama"), 2, 0)
    assert isinstance(model, SklearnTextClassifier) and model.embedder == "wordllama" and model.analyzer == "word"


@pytest.mark.parametrize("k,hash_bits", [(2, 0), (3, 0), (3, 14)], ids=["binary", "3-class", "3-class-hashed"])
def test_fit_on_used_columns_and_warm_start_reach_the_full_fit(youtube_frame, k, hash_bits):
    """Columns no training row uses are left out of the solve and warm starts begin from a
    neighbour's weights: the fitted model is scikit-learn's own full, cold fit (to solver
    tolerance), over all the vectorizer's columns."""
    from sklearn.linear_model import LogisticRegression

    texts = youtube_frame["text"].tolist()[:300]
    y = np.arange(len(texts)) % k
    model = SklearnTextClassifier(k, analyzer="word", ngram_max=2, C=3.0, hash_bits=hash_bits)
    vectorizer = model.vectorizer()
    X = vectorizer.fit_transform(texts)
    fit_rows = np.arange(len(texts)) < 200  # the other rows' n-grams are columns no fit row uses
    neighbour = SklearnTextClassifier(k, analyzer="word", ngram_max=2, C=10.0, hash_bits=hash_bits).fit_features(
        vectorizer, X[fit_rows], y[fit_rows])
    warm = model.fit_features(vectorizer, X[fit_rows], y[fit_rows], warm_start_from=neighbour)
    logreg = warm.pipeline_.named_steps["logreg"]
    full = LogisticRegression(**logreg.get_params()).fit(X[fit_rows], y[fit_rows])
    assert logreg.coef_.shape == full.coef_.shape == (1 if k == 2 else k, X.shape[1])
    assert not logreg.warm_start and not (X[fit_rows].getnnz(axis=0) == 0).all()
    np.testing.assert_allclose(warm.predict_proba_features(X[~fit_rows]), full.predict_proba(X[~fit_rows]), atol=5e-3)
    np.testing.assert_allclose(warm.predict_proba(texts[200:]), warm.pipeline_.predict_proba(texts[200:]), atol=1e-12)


def test_a_fit_with_embeddings_starts_from_the_same_ngrams_without_them(youtube_frame):
    """word+char n-grams -> the same with embeddings appended: the warm start rescales the
    n-gram weights to the new block weights; the fit reaches the cold fit's optimum."""
    from labeling.models.end_models import WORD_AND_CHAR

    texts = youtube_frame["text"].tolist()[:150]
    y = np.arange(len(texts)) % 3
    settings = dict(analyzer=WORD_AND_CHAR, ngram_min=2, ngram_max=4, C=3.0)
    source = SklearnTextClassifier(3, **settings).fit(texts, y)
    target = SklearnTextClassifier(3, embedder="wordllama:64", **settings)
    vectorizer = target.vectorizer()
    X = vectorizer.fit_transform(texts)
    warm = target.fit_features(vectorizer, X, y, warm_start_from=source).predict_proba_features(X)
    cold = SklearnTextClassifier(3, embedder="wordllama:64", **settings).fit_features(vectorizer, X, y)
    np.testing.assert_allclose(warm, cold.predict_proba_features(X), atol=5e-3)


@pytest.mark.parametrize("absent", [None, 2], ids=["every-class", "a-class-without-mass"])
def test_soft_labels_fit_one_row_per_text_to_the_optimum_of_rows_repeated_per_class(youtube_frame, absent):
    """Multi-class soft labels are fitted with one row per text and its whole target row:
    the optimum of scikit-learn's fit on each row repeated once per class, weighted by that
    class's mass times the row's weight (what the fit did before), without the k-fold rows."""
    from sklearn.linear_model import LogisticRegression

    texts = youtube_frame["text"].tolist()[:240]
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(4), size=len(texts))
    if absent is not None:
        soft[:, absent] = 0
        soft /= soft.sum(axis=1, keepdims=True)
    weights = rng.uniform(0.5, 2.0, size=len(texts))
    model = SklearnTextClassifier(4, analyzer="word", ngram_max=2, C=3.0)
    vectorizer = model.vectorizer()
    X = vectorizer.fit_transform(texts)
    fitted = model.fit_features(vectorizer, X, soft, sample_weight=weights)
    rows, classes = np.nonzero(soft > 0)
    logreg = fitted.pipeline_.named_steps["logreg"]
    repeated = LogisticRegression(**logreg.get_params()).fit(X[rows], classes,
                                                             sample_weight=soft[rows, classes] * weights[rows])
    np.testing.assert_array_equal(logreg.classes_, repeated.classes_)
    expected = np.zeros((len(texts), 4))
    expected[:, repeated.classes_] = repeated.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba_features(X), expected, atol=2e-3)
    np.testing.assert_allclose(fitted.predict_proba(texts), fitted.pipeline_.predict_proba(texts) if absent is None
                               else expected, atol=2e-3)


def test_hashed_counts_give_the_features_and_predictions_of_a_model_featurising_its_own_texts():
    model = SklearnTextClassifier(2, analyzer="word", ngram_min=1, ngram_max=2, C=10.0, hash_bits=12)
    cache, rows = HashedCounts(), np.array([6, 0, 2, 3, 4, 5])
    vectorizer, X = cache.fit_transform(model, "train", TEXTS, rows)
    own = model.vectorizer().fit_transform([TEXTS[i] for i in rows])
    assert (X != own).nnz == 0 and cache.analysed == len(rows)
    shared = SklearnTextClassifier(**model.get_params()).fit_features(vectorizer, X, HARD[rows])
    model.fit([TEXTS[i] for i in rows], HARD[rows])
    for _ in range(2):  # the second time from the counts: nothing hashed again
        np.testing.assert_array_equal(cache.predict_proba(shared, "train", TEXTS), model.predict_proba(TEXTS))
    assert cache.analysed == len(TEXTS)  # the two rows not asked for before, once
    cache.drop("train")
    with pytest.raises(LabelingError, match="held 8 texts, now given 2"):
        cache.counts(model, "dev", TEXTS) is not None and cache.counts(model, "dev", TEXTS[:2])
    with pytest.raises(LabelingError, match="not hashed"):
        cache.counts(SklearnTextClassifier(2), "dev", TEXTS)


def test_the_fixed_sklearn_end_model_defaults_to_autos_hashed_word_features_and_keeps_a_vocabulary_on_request():
    from labeling.config import EndModelConfig
    from labeling.models.end_model_selection import family_model
    from labeling.models.end_models import make_end_model

    fixed = make_end_model(EndModelConfig(type="sklearn"), 2, 0)
    assert fixed.get_params() == family_model("word_hashed", 2, 0, "").get_params()
    assert HashedCounts.features_of(fixed) == ("word", 1, 2, 20)
    old = make_end_model(EndModelConfig(type="sklearn", analyzer="char_wb", ngram_min=2, ngram_max=5, C=1.0,
                                        hash_bits=0), 2, 0).fit(TEXTS, HARD)
    assert HashedCounts.features_of(old) is None and " ch" in old.pipeline_.named_steps["ngrams"].vocabulary_


@pytest.mark.parametrize("settings", [{"ngram_range": (1, 2)}, {"ngram_range": (2, 3)}, {"lowercase": False},
                                      {"token_pattern": r"(?u)\b(\w)\w+\b"}, {"stop_words": ["the"]}])
def test_the_word_analyzer_gives_scikit_learns_ngrams_in_its_order(youtube_frame, settings):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from labeling.models.end_models import word_analyzer

    vectorizer = TfidfVectorizer(**settings)
    fast, slow = word_analyzer(vectorizer), vectorizer.build_analyzer()
    assert all(fast(t) == slow(t) for t in youtube_frame["text"].tolist()[:300] + ["", "a", "x y z", "Ab CD ab"])
