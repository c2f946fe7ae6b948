"""End models trained on probabilistic labels: scikit-learn and torch text classifiers.

Both take soft labels, an ``(n, k)`` array of class probabilities from the label
model, not only its argmax: the label model's confidence is information the end
model should learn from. Hard labels (an ``(n,)`` int array) work too.

- ``SklearnTextClassifier``: TF-IDF n-grams + logistic regression. Soft labels
  become probability weights: each row appears once per class, weighted by the
  probability of that class.
- ``TorchTextClassifier``: TF-IDF n-grams + a linear layer (or one hidden layer)
  trained with soft cross-entropy; runs on a GPU when one is present.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ..errors import LabelingError, NotFittedError


def soft_targets(y, cardinality: int) -> np.ndarray:
    """(n,) class indices or (n, k) probabilities -> validated (n, k) probabilities."""
    y = np.asarray(y)
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer) or (y < 0).any() or (y >= cardinality).any():
            raise LabelingError(f"hard labels must be class indices 0..{cardinality - 1}")
        return np.eye(cardinality)[y]
    if y.ndim != 2 or y.shape[1] != cardinality:
        raise LabelingError(f"soft labels must have shape (n, {cardinality}), got {y.shape}")
    if (y < 0).any() or not np.allclose(y.sum(axis=1), 1.0, atol=1e-4):
        raise LabelingError("soft labels must be non-negative rows summing to 1")
    return y.astype(np.float64)


ANALYZERS = ("char_wb", "word")


def make_vectorizer(analyzer: str, ngram_min: int, ngram_max: int, **kwargs) -> TfidfVectorizer:
    """TF-IDF features. Character n-grams within word bounds (the default) are
    robust to the obfuscated spellings, URLs and emoji of user comments."""
    if analyzer not in ANALYZERS:
        raise LabelingError(f"analyzer must be one of {ANALYZERS}, got {analyzer!r}")
    if not 1 <= ngram_min <= ngram_max:
        raise LabelingError(f"need 1 <= ngram_min <= ngram_max, got {ngram_min}, {ngram_max}")
    return TfidfVectorizer(analyzer=analyzer, ngram_range=(ngram_min, ngram_max), sublinear_tf=True, **kwargs)


def _vocabulary_ids(vectorizer: TfidfVectorizer, texts: Sequence[str], word_cache: dict | None) -> list[list[int]]:
    """Each text's n-grams as vocabulary ids (unknown n-grams dropped), one id per occurrence.

    For ``char_wb`` features with a ``word_cache``, word by word: those n-grams never
    cross a word boundary, so a text's n-grams are the union of its words', and each
    distinct word is analysed once (the cache maps word -> ids)."""
    vocabulary = vectorizer.vocabulary_
    if vectorizer.analyzer != "char_wb" or word_cache is None:
        analyze = vectorizer.build_analyzer()
        return [[vocabulary[g] for g in analyze(text) if g in vocabulary] for text in texts]
    preprocess = vectorizer.build_preprocessor()
    low, high = vectorizer.ngram_range
    out = []
    for text in texts:
        text_ids: list[int] = []
        for word in preprocess(vectorizer.decode(text)).split():
            ids = word_cache.get(word)
            if ids is None:
                padded, ids = f" {word} ", []
                for n in range(low, high + 1):
                    # as scikit-learn: a word shorter than n counts once, whole
                    for start in range(max(1, len(padded) - n + 1)):
                        gram = padded[start:start + n]
                        if gram in vocabulary:
                            ids.append(vocabulary[gram])
                    if len(padded) <= n:  # longer n-grams would repeat the whole word
                        break
                if len(word_cache) > 500_000:  # bounded memory on a long-running server
                    word_cache.clear()
                word_cache[word] = ids
            text_ids.extend(ids)
        out.append(text_ids)
    return out


def _tfidf_weights(vectorizer: TfidfVectorizer, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One text's TF-IDF row as (feature ids, weights), the arithmetic of TfidfTransformer."""
    features, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
    weights = counts.astype(vectorizer.dtype)
    if vectorizer.sublinear_tf:
        weights = np.log(weights) + 1
    if vectorizer.use_idf:
        weights *= vectorizer.idf_[features]
    if vectorizer.norm is not None and len(weights):
        norm = np.sqrt((weights * weights).sum()) if vectorizer.norm == "l2" else np.abs(weights).sum()
        weights /= norm if norm else 1
    return features, weights


def tfidf_transform(vectorizer: TfidfVectorizer, texts: Sequence[str], word_cache: dict | None = None) -> sp.csr_matrix:
    """``vectorizer.transform(texts)``, the same arithmetic without its per-call
    validation (~0.7 ms, more than the features of one comment, and a server
    scores one comment at a time), and for ``char_wb`` features each distinct
    word analysed once. Equal to within float rounding (tested)."""
    if len(texts) > 32 and (vectorizer.analyzer != "char_wb" or word_cache is None):
        counts = CountVectorizer.transform(vectorizer, texts)  # in bulk, scikit-learn's counting is the faster
    else:
        ids = _vocabulary_ids(vectorizer, texts, word_cache)
        rows = np.repeat(np.arange(len(texts)), [len(i) for i in ids])
        cols = np.fromiter((c for text_ids in ids for c in text_ids), dtype=np.int64, count=len(rows))
        counts = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(texts), len(vectorizer.vocabulary_)))
        counts.sum_duplicates()  # a repeated n-gram becomes its count
    X = counts.astype(vectorizer.dtype)
    if vectorizer.sublinear_tf:
        X.data = np.log(X.data) + 1
    if vectorizer.use_idf:
        X.data *= vectorizer.idf_[X.indices]
    if vectorizer.norm is not None:
        norms = (np.sqrt(X.multiply(X).sum(axis=1)) if vectorizer.norm == "l2" else abs(X).sum(axis=1)).A1
        norms[norms == 0] = 1
        X.data /= np.repeat(norms, np.diff(X.indptr)).astype(X.dtype)
    return X


# Texts on which a loaded model's fast path is checked against scikit-learn's own.
_PROBE_TEXTS = ("", "a", "Check out my channel!!! http://example.com/x?y=1", "nice song \u2764\ufe0f 2:31",
                "SUBSCRIBE subscribe Subscribe", "the the the the", "\u00e9t\u00e9 na\u00efve caf\u00e9 \u4e2d\u6587")


def _check_texts(texts) -> list[str]:
    texts = list(texts)
    if not texts:
        raise LabelingError("no training texts: every row was filtered out (no LF voted?)")
    if not all(isinstance(t, str) for t in texts):
        raise LabelingError("texts must be strings")
    return texts


class _TextClassifier:
    """The shared contract: ``fit(texts, y)``, ``predict_proba(texts) -> (n, k)``, ``predict``."""

    cardinality: int

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)

    def get_params(self) -> dict:
        """Constructor settings, read off the signature as scikit-learn does."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"}


class SklearnTextClassifier(_TextClassifier):
    def __init__(
        self,
        cardinality: int = 2,
        *,
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 5,
        C: float = 1.0,
        random_state: int = 0,
    ):
        self.cardinality = cardinality
        self.analyzer = analyzer
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.C = C
        self.random_state = random_state

    def _make_pipeline(self) -> Pipeline:
        # liblinear suits small sparse problems but is binary-only in current
        # scikit-learn, so multi-class uses lbfgs.
        solver = "liblinear" if self.cardinality == 2 else "lbfgs"
        return Pipeline(
            [
                ("ngrams", make_vectorizer(self.analyzer, self.ngram_min, self.ngram_max)),
                ("logreg", LogisticRegression(C=self.C, solver=solver, max_iter=2000, random_state=self.random_state)),
            ]
        )

    def fit(self, texts: Sequence[str], y, sample_weight=None) -> SklearnTextClassifier:
        texts = _check_texts(texts)
        targets = soft_targets(y, self.cardinality)
        weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rows, classes = np.nonzero(targets > 0)
        if len(np.unique(classes)) < 2:
            raise LabelingError("the training labels hold a single class; an end model needs at least two")
        self.pipeline_ = self._make_pipeline().fit(
            [texts[i] for i in rows], classes, logreg__sample_weight=targets[rows, classes] * weights[rows]
        )
        self.classes_ = np.arange(self.cardinality)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        texts = list(texts)
        cache = self._fast_cache()
        proba = self._fast_proba(texts, cache) if cache is not None else self.pipeline_.predict_proba(texts)
        # A class absent from training gets probability 0, keeping the (n, k) shape.
        out = np.zeros((proba.shape[0], self.cardinality))
        out[:, self.pipeline_.classes_] = proba
        return out

    def _fast_proba(self, texts: list[str], word_cache: dict) -> np.ndarray:
        logreg = self.pipeline_.named_steps["logreg"]
        vectorizer = self.pipeline_.named_steps["ngrams"]
        if len(texts) <= 8:  # a server's single requests: no sparse matrix, whose set-up costs more than the sums
            scores = np.empty((len(texts), logreg.coef_.shape[0]))
            for i, ids in enumerate(_vocabulary_ids(vectorizer, texts, word_cache)):
                features, weights = _tfidf_weights(vectorizer, ids)
                scores[i] = logreg.coef_[:, features] @ weights + logreg.intercept_
        else:
            scores = tfidf_transform(vectorizer, texts, word_cache) @ logreg.coef_.T + logreg.intercept_
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            return np.column_stack([1 - positive, positive])
        return softmax(scores, axis=1)

    def _fast_cache(self) -> dict | None:
        """The fast path's word cache, or None where the fast path is not used.

        Decided once per fitted (or loaded) pipeline: the fast path must agree with
        the pipeline's own predict_proba on probe texts."""
        pipeline, cache = getattr(self, "_fast", (None, None))
        if pipeline is not self.pipeline_:
            cache, probes = {}, list(_PROBE_TEXTS)
            try:
                agrees = np.allclose(self._fast_proba(probes, cache), self.pipeline_.predict_proba(probes),
                                     rtol=0, atol=1e-12)
            except (KeyError, AttributeError, ValueError):  # a pipeline of another shape
                agrees = False
            cache = cache if agrees else None
            self._fast = (self.pipeline_, cache)
        return cache

    def _fast_path_ok(self) -> bool:
        return self._fast_cache() is not None


class TorchTextClassifier(_TextClassifier):
    def __init__(
        self,
        cardinality: int = 2,
        *,
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 5,
        hidden: int = 0,
        epochs: int = 30,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.cardinality = cardinality
        self.analyzer = analyzer
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _network(self, n_features: int, generator):
        import torch

        layers = []
        width = n_features
        if self.hidden:
            layers += [torch.nn.Linear(width, self.hidden), torch.nn.ReLU()]
            width = self.hidden
        layers.append(torch.nn.Linear(width, self.cardinality))
        net = torch.nn.Sequential(*layers)
        # Seeded init through our own generator: never touch torch's global RNG.
        with torch.no_grad():
            for layer in net:
                if isinstance(layer, torch.nn.Linear):
                    bound = 1.0 / np.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.zero_()
        return net

    def fit(self, texts: Sequence[str], y, sample_weight=None) -> TorchTextClassifier:
        import torch

        texts = _check_texts(texts)
        targets = soft_targets(y, self.cardinality)
        weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.vectorizer_ = make_vectorizer(self.analyzer, self.ngram_min, self.ngram_max, dtype=np.float32)
        X = self.vectorizer_.fit_transform(texts).tocsr()
        device = self._device()
        generator = torch.Generator().manual_seed(self.random_state)
        net = self._network(X.shape[1], generator).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        T = torch.as_tensor(targets, dtype=torch.float32)
        W = torch.as_tensor(weights, dtype=torch.float32)
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(X.shape[0], generator=generator).numpy()
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                xb = torch.as_tensor(X[idx].toarray(), device=device)
                log_p = torch.log_softmax(net(xb), dim=1)
                # Soft cross-entropy: the label model's probabilities are the target.
                loss = -((T[idx].to(device) * log_p).sum(dim=1) * W[idx].to(device)).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.net_ = net.eval().cpu()
        self.device_ = str(device)  # the device "auto" resolved to, recorded with the run
        self.classes_ = np.arange(self.cardinality)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._check_fitted()
        X = self.vectorizer_.transform(list(texts)).tocsr()
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], 1024):
                xb = torch.as_tensor(X[start : start + 1024].toarray())
                out.append(torch.softmax(self.net_(xb), dim=1).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cardinality))


END_MODELS = {"sklearn": SklearnTextClassifier, "torch": TorchTextClassifier}


def make_end_model(config, cardinality: int, random_state: int) -> _TextClassifier:
    """Build the end model an ``EndModelConfig`` names, with its settings."""
    features = dict(analyzer=config.analyzer, ngram_min=config.ngram_min, ngram_max=config.ngram_max)
    if config.type == "sklearn":
        return SklearnTextClassifier(cardinality, C=config.C, random_state=random_state, **features)
    if config.type == "torch":
        return TorchTextClassifier(
            cardinality,
            **features,
            hidden=config.hidden,
            epochs=config.epochs,
            lr=config.lr,
            weight_decay=config.weight_decay,
            batch_size=config.batch_size,
            device=config.device,
            random_state=random_state,
        )
    raise LabelingError(f"unknown end model type {config.type!r}; expected one of {sorted(END_MODELS)}")
