"""End models trained on probabilistic labels: scikit-learn and torch text classifiers.

Both take soft labels, an ``(n, k)`` array of class probabilities from the label
model, not only its argmax: the label model's confidence is information the end
model should learn from. Hard labels (an ``(n,)`` int array) work too.

- ``SklearnTextClassifier``: TF-IDF n-grams + logistic regression. Soft labels
  become probability weights: each row appears once per class, weighted by the
  probability of that class.
- ``TorchTextClassifier``: TF-IDF n-grams and/or sentence embeddings + a linear
  layer (or one hidden layer) trained with soft cross-entropy, early stopping
  optional; runs on a GPU when one is present.

Both take ``class_offsets``, log-space class offsets applied to the predicted
probabilities (a prior correction or a decision threshold, chosen on dev by
``labeling.models.end_model_selection``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

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


# Word 1-2 grams and character n-grams side by side: words carry meaning, characters
# survive misspellings; on dev their union scored at or above either alone.
WORD_AND_CHAR = "word+char_wb"


def make_ngram_features(analyzer: str, ngram_min: int, ngram_max: int, weight: float = 1.0):
    """``make_vectorizer``, or for ``"word+char_wb"`` a union of word 1-2 grams and
    ``char_wb`` ngram_min..ngram_max grams. Each block's rows have L2 norm ``weight``."""
    if analyzer != WORD_AND_CHAR:
        return make_vectorizer(analyzer, ngram_min, ngram_max)
    return FeatureUnion([("word", make_vectorizer("word", 1, 2)),
                         ("char", make_vectorizer("char_wb", ngram_min, ngram_max))],
                        transformer_weights={"word": weight, "char": weight})


def word_analyzer(vectorizer):
    """``vectorizer.build_analyzer()`` (a scikit-learn text vectorizer), the same n-grams in
    the same order, faster for plain word n-grams (lowercased, its ``token_pattern``, no
    accents stripped, no stop words or custom steps): n-grams joined over ``zip`` of the
    token list instead of scikit-learn's slice per n-gram (IMDB: word 1-2 gram analysis
    was the largest cost of a retrain). Any other setting gets scikit-learn's analyzer."""
    analyze = vectorizer.build_analyzer()
    plain = (vectorizer.analyzer == "word" and vectorizer.lowercase and vectorizer.input == "content"
             and vectorizer.strip_accents is None and vectorizer.stop_words is None
             and vectorizer.preprocessor is None and vectorizer.tokenizer is None)
    if not plain:
        return analyze
    tokenize, (low, high) = re.compile(vectorizer.token_pattern).findall, vectorizer.ngram_range
    if tokenize.__self__.groups > 1:  # scikit-learn refuses such a pattern: its own analyzer says so
        return analyze
    single = tokenize.__self__.groups == 1  # findall returns the group, as scikit-learn's tokenizer does

    def fast(doc):
        if type(doc) is not str or single:
            return analyze(doc)
        tokens = tokenize(doc.lower())
        grams = tokens[:] if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams.extend(map(" ".join, zip(*(tokens[i:] for i in range(n)))))
        return grams
    return fast


def _vocabulary_ids(vectorizer: TfidfVectorizer, texts: Sequence[str], word_cache: dict | None) -> list[list[int]]:
    """Each text's n-grams as vocabulary ids (unknown n-grams dropped), one id per occurrence.

    For ``char_wb`` features with a ``word_cache``, word by word: those n-grams never
    cross a word boundary, so a text's n-grams are the union of its words', and each
    distinct word is analysed once (the cache maps word -> ids)."""
    vocabulary = vectorizer.vocabulary_
    if vectorizer.analyzer != "char_wb" or word_cache is None:
        analyze, find = word_analyzer(vectorizer), vocabulary.get  # one lookup per n-gram
        return [[i for i in map(find, analyze(text)) if i is not None] for text in texts]
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
    if len(texts) > 32 and vectorizer.analyzer == "char_wb" and word_cache is None:
        # char n-grams in bulk: scikit-learn's counting is the faster; word n-grams: ours (word_analyzer)
        counts = CountVectorizer.transform(vectorizer, texts)
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

    def _offset(self, proba: np.ndarray) -> np.ndarray:
        """Add ``class_offsets`` (k,) to the log-probabilities and renormalise: a prior
        correction, or for two classes a decision threshold t on class 1 as offsets
        ``(0, -logit(t))``. Chosen on dev by ``select_end_model``; empty = none."""
        offsets = np.asarray(self.class_offsets, dtype=np.float64)
        if not offsets.size or not offsets.any():
            return proba
        if offsets.shape != (self.cardinality,):
            raise LabelingError(f"class_offsets must hold {self.cardinality} numbers, got {list(offsets)}")
        with np.errstate(divide="ignore"):
            return softmax(np.log(proba) + offsets, axis=1)

    def get_params(self) -> dict:
        """Constructor settings, read off the signature as scikit-learn does."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"}


class _NgramsAndEmbeddings:
    """A model's n-gram vectorizer with its sentence embeddings appended: the features
    ``SklearnTextClassifier.vectorizer()`` gives a model with an ``embedder``."""

    def __init__(self, model: SklearnTextClassifier, ngrams):
        self.model, self.ngrams = model, ngrams

    def fit_transform(self, texts: list[str]) -> sp.csr_matrix:
        return self.model._with_embeddings(self.ngrams.fit_transform(texts), texts)

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return self.model._with_embeddings(self.ngrams.transform(texts), texts)


def _fit_on_used_columns(logreg: LogisticRegression, X: sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray,
                         start=None) -> LogisticRegression:
    """``logreg.fit(X, y, sample_weight)`` on the columns some row of ``X`` uses, its
    coefficients then widened back to all of ``X``'s columns (zero elsewhere).

    The same optimum: under L2 a column no row uses gets weight 0. But the solver no longer
    carries them: hashed word n-grams (2**20 columns) of 1,749 semeval texts use ~31k, and
    lbfgs's 9-class iterates and history over all 2**20 columns took minutes and GBs.
    ``start``: ``(coef (classes, columns), intercept)`` for lbfgs to start from (a warm start:
    a nearby C, other sample weights), else None."""
    from threadpoolctl import threadpool_limits

    # liblinear's cost follows the nonzeros, not the columns: narrowing X cost it more than it
    # saved (IMDB 50k retrain: column selection and counting took ~6% of the run's time)
    used = np.arange(X.shape[1]) if logreg.solver == "liblinear" else np.flatnonzero(X.getnnz(axis=0))
    narrow = len(used) < X.shape[1]
    warm = start is not None and logreg.solver == "lbfgs" and start[0].shape == (len(np.unique(y)), X.shape[1])
    if warm:
        # scikit-learn's warm_start reads coef_/intercept_ as the initial point
        logreg.set_params(warm_start=True)
        logreg.coef_ = start[0][:, used] if narrow else start[0].copy()
        logreg.intercept_ = np.array(start[1], copy=True)
    # one BLAS/OpenMP thread: on a busy machine multinomial lbfgs ran 60-90x slower on 2 than on 1
    with threadpool_limits(limits=1):
        logreg.fit(X[:, used] if narrow else X, y, sample_weight=sample_weight)
    if warm:
        logreg.set_params(warm_start=False)  # the saved model's settings as a cold fit's
    if narrow:
        coef = np.zeros((logreg.coef_.shape[0], X.shape[1]), dtype=logreg.coef_.dtype)
        coef[:, used] = logreg.coef_
        logreg.coef_, logreg.n_features_in_ = coef, X.shape[1]
    return logreg


def _soft_multinomial_loss_gradient(w, X, Xt, T, s, l2):
    """Loss and gradient of scikit-learn's multinomial lbfgs objective on soft labels, over
    ``(k, d + 1)`` parameters (ravelled; the last column the intercept): sum_i s_i *
    cross-entropy(T_i, softmax(X_i W' + b)) / sum(s) + l2 / 2 * ||W||^2. The same value as
    scikit-learn's with each row repeated once per class, weighted by that class's mass."""
    k = T.shape[1]
    W = w.reshape(k, -1)
    Z = X @ W[:, :-1].T + W[:, -1]
    top = Z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(Z - top).sum(axis=1))
    total = s.sum()
    loss = float(s @ (log_norm - (T * Z).sum(axis=1))) / total + 0.5 * l2 * float((W[:, :-1] ** 2).sum())
    G = (np.exp(Z - log_norm[:, None]) - T) * (s / total)[:, None]  # (n, k): d loss / d logits
    grad = np.empty_like(W)
    grad[:, :-1] = (Xt @ G).T + l2 * W[:, :-1]
    grad[:, -1] = G.sum(axis=0)
    return loss, grad.ravel()


def _fit_soft_multinomial(logreg: LogisticRegression, X: sp.csr_matrix, targets: np.ndarray, weights: np.ndarray,
                          classes: np.ndarray, start=None) -> LogisticRegression:
    """``logreg`` (multinomial, lbfgs) fitted to ``X`` (n, d) with soft ``targets`` (n, k)
    over ``classes`` (k,), the class indices with mass, and ``weights`` (n,), on the columns some row uses (see
    ``_fit_on_used_columns``).

    The objective and solver settings are scikit-learn's (L-BFGS-B, its ``tol``, ``max_iter``,
    ftol, maxls, L2 scaled by the weights' sum) for the rows repeated once per class with
    mass; here each row enters once with its whole target row. The optimum is the same,
    while a product with ``X`` costs n rows instead of up to n * k: a label model's soft
    labels give every class some mass, so semeval's 1,749 rows x 9 classes were 15,741
    repeated rows, and trec's 4,791 x 6 were 28,746. ``start``: ``(coef (k, d), intercept)``."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    used = np.flatnonzero(X.getnnz(axis=0))
    Xu = sp.csr_matrix(X[:, used] if len(used) < X.shape[1] else X, dtype=np.float64)
    k = targets.shape[1]
    w0 = np.zeros((k, len(used) + 1))
    if start is not None and start[0].shape == (k, X.shape[1]):
        w0[:, :-1], w0[:, -1] = start[0][:, used], start[1]
    s = np.asarray(weights, dtype=np.float64)
    with threadpool_limits(limits=1):
        result = minimize(_soft_multinomial_loss_gradient, w0.ravel(), method="L-BFGS-B", jac=True,
                          args=(Xu, Xu.T.tocsr(), targets, s, 1.0 / (logreg.C * s.sum())),
                          options={"maxiter": logreg.max_iter, "maxls": 50, "gtol": logreg.tol,
                                   "ftol": 64 * np.finfo(float).eps})
    W = result.x.reshape(k, -1)
    coef = np.zeros((k, X.shape[1]))
    coef[:, used] = W[:, :-1]
    logreg.coef_, logreg.intercept_ = coef, W[:, -1].copy()
    logreg.classes_, logreg.n_features_in_ = classes, X.shape[1]
    logreg.n_iter_ = np.array([min(result.nit, logreg.max_iter)], dtype=np.int32)
    return logreg


class SklearnTextClassifier(_TextClassifier):
    """TF-IDF n-grams (``analyzer``: "char_wb", "word", or "word+char_wb", word 1-2
    grams beside char_wb ngram_min..ngram_max grams), optionally with sentence
    embeddings (``embedder``, a spec of ``labeling.models.embeddings``; "" = none)
    appended, + logistic regression. Every feature block's rows have the same L2
    norm, so one ``C`` regularises them alike; the embeddings are recomputed (or read
    from ``embedding_cache``) at prediction, never saved."""

    def __init__(
        self,
        cardinality: int = 2,
        *,
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 5,
        C: float = 1.0,
        embedder: str = "",
        class_offsets: tuple = (),
        random_state: int = 0,
        hash_bits: int = 0,
    ):
        self.cardinality = cardinality
        self.analyzer = analyzer
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.C = C
        self.embedder = embedder
        self.class_offsets = class_offsets
        self.random_state = random_state
        self.hash_bits = hash_bits

    def _block_weight(self) -> float:
        """Each block's row norm: 1/sqrt(blocks), so a whole row has norm 1."""
        blocks = (2 if self.analyzer == WORD_AND_CHAR else 1) + bool(self.embedder)
        return float(1 / np.sqrt(blocks))

    def _make_pipeline(self) -> Pipeline:
        # liblinear suits small sparse problems but is binary-only in current
        # scikit-learn, so multi-class uses lbfgs.
        solver = "liblinear" if self.cardinality == 2 else "lbfgs"
        if self.hash_bits:
            # n-grams hashed into 2**hash_bits columns: no vocabulary to build, hold or save, so
            # memory and the artifact stay the same size however many rows and n-grams there are
            # (the same TF-IDF arithmetic as the vectorizer; rare collisions share a weight)
            if not 10 <= self.hash_bits <= 24:
                raise LabelingError(f"hash_bits must be in 10..24, got {self.hash_bits}")
            if self.analyzer not in ANALYZERS:
                raise LabelingError(f"hash_bits needs analyzer 'word' or 'char_wb', got {self.analyzer!r}")
            vectorizer = Pipeline([
                ("hash", HashingVectorizer(analyzer=self.analyzer, ngram_range=(self.ngram_min, self.ngram_max),
                                           n_features=2**self.hash_bits, alternate_sign=False, norm=None)),
                ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ])
        else:
            vectorizer = make_ngram_features(self.analyzer, self.ngram_min, self.ngram_max, self._block_weight())
        return Pipeline(
            [
                ("ngrams", vectorizer),
                # hashed: far more columns (2**hash_bits) than rows, where liblinear's dual solver
                # reaches the same optimum ~4x sooner (measured: 18k IMDB reviews, 2**20 columns)
                ("logreg", LogisticRegression(C=self.C, solver=solver, max_iter=2000, random_state=self.random_state,
                                              dual=bool(self.hash_bits) and solver == "liblinear")),
            ]
        )

    def _features(self, texts: list[str]) -> sp.csr_matrix:
        X = self.pipeline_.named_steps["ngrams"].transform(texts)
        return self._with_embeddings(X, texts)

    def _with_embeddings(self, X, texts: list[str]) -> sp.csr_matrix:
        if not self.embedder:
            return X
        from .embeddings import embed_texts

        weight = self._block_weight()
        E = embed_texts(texts, self.embedder, cache=getattr(self, "embedding_cache", None))
        scale = weight if self.analyzer != WORD_AND_CHAR else 1.0  # a union is weighted inside
        return sp.hstack([X * scale, sp.csr_matrix(E * weight)]).tocsr()

    def vectorizer(self):
        """The unfitted features of these settings, with ``fit_transform(texts)`` and
        ``transform(texts)`` giving (n, d) rows (``fit_features`` takes it fitted): the
        TF-IDF vectorizer (with ``hash_bits``, hashing + TF-IDF weights in a pipeline),
        and with an ``embedder`` the embeddings appended."""
        ngrams = self._make_pipeline().named_steps["ngrams"]
        return _NgramsAndEmbeddings(self, ngrams) if self.embedder else ngrams

    def fit(self, texts: Sequence[str], y, sample_weight=None) -> SklearnTextClassifier:
        """``texts`` (n,) strings; ``y`` (n,) class indices or (n, k) probabilities (each
        row enters once per class it gives mass to, weighted by that mass);
        ``sample_weight`` (n,). The n-gram vocabulary and IDF come from ``texts``."""
        texts = _check_texts(texts)
        vectorizer = self.vectorizer()
        # each text is analysed once, though soft labels train on it once per class
        X = vectorizer.fit_transform(texts)
        return self.fit_features(vectorizer, X, y, sample_weight)

    def fit_features(self, vectorizer, X, y, sample_weight=None, warm_start_from=None) -> SklearnTextClassifier:
        """Fit on features already computed: ``vectorizer`` (from ``vectorizer()``) fitted,
        ``X`` (n, d) its rows of the n training texts, ``y`` (n,) or (n, k) labels. Lets one
        vectorisation serve several fits (end-model selection). ``warm_start_from``: a
        ``SklearnTextClassifier`` fitted on the same features (or on the same n-grams, where
        this model appends embeddings) whose weights the multi-class (lbfgs) solver starts
        from, for a path of nearby fits (C, label treatments, families); the optimum is the
        same, reached in fewer iterations (semeval, word+char n-grams, C=3 from C=10's
        weights: 18 iterations against 54); ignored by liblinear and where nothing fits."""
        targets = soft_targets(y, self.cardinality)
        if X.shape[0] != len(targets):
            raise LabelingError(f"{X.shape[0]} feature rows for {len(targets)} labels")
        weights = np.ones(len(targets)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rows, classes = np.nonzero(targets > 0)
        if len(np.unique(classes)) < 2:
            raise LabelingError("the training labels hold a single class; an end model needs at least two")
        pipeline = self._make_pipeline()
        # the pipeline keeps the n-gram part only: embeddings are recomputed, never saved
        pipeline.steps[0] = ("ngrams", vectorizer.ngrams if isinstance(vectorizer, _NgramsAndEmbeddings) else vectorizer)
        logreg = pipeline.named_steps["logreg"]
        if logreg.solver == "liblinear":
            # more columns than rows (the n-grams of a few thousand texts): liblinear's dual solver
            # reaches the same optimum far sooner (1,586 YouTube comments, 16,634 word n-grams:
            # 4 ms against 1 s for the primal one)
            logreg.set_params(dual=X.shape[1] > len(rows))
        # soft labels: one weighted row per class with mass (the sparse rows repeat, not the text)
        present = np.unique(classes)
        start = self._warm_start(warm_start_from, X.shape[1], present)
        if logreg.solver == "lbfgs" and len(present) > 2:
            # one row per text, its whole target row: not one row per class with mass
            _fit_soft_multinomial(logreg, X, targets[:, present], weights, present, start)
        else:
            _fit_on_used_columns(logreg, X[rows], classes, targets[rows, classes] * weights[rows], start)
        self.pipeline_ = pipeline
        self.classes_ = np.arange(self.cardinality)
        return self

    def _warm_start(self, source, width: int, classes: np.ndarray) -> tuple | None:
        """``(coef (classes, width), intercept)`` from ``source``'s weights, or None: ``source``
        was fitted on these features, or on the same n-grams without this model's extra
        columns (word+char n-grams -> the same with embeddings), its weights rescaled to this
        model's block weights (same logits) and 0 on the new columns."""
        if source is None or not np.array_equal(source.pipeline_.classes_, classes):
            return None
        logreg = source.pipeline_.named_steps["logreg"]
        coef = logreg.coef_
        if coef.shape[1] < width:
            same_ngrams = all(getattr(source, a) == getattr(self, a)
                              for a in ("analyzer", "ngram_min", "ngram_max", "hash_bits"))
            if not same_ngrams or source.embedder or not self.embedder:
                return None
            coef = np.hstack([coef * (source._block_weight() / self._block_weight()),
                              np.zeros((coef.shape[0], width - coef.shape[1]))])
        return (coef, logreg.intercept_) if coef.shape[1] == width else None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        texts = list(texts)
        cache = self._fast_cache()
        if cache is not None:
            proba = self._fast_proba(texts, cache)
        else:
            proba = self.pipeline_.named_steps["logreg"].predict_proba(self._features(texts))
        return self._widen(proba)

    def predict_proba_features(self, X) -> np.ndarray:
        """``predict_proba`` of texts whose features ``X`` (n, d) the fitted ``vectorizer()``
        computed: one vectorisation, several models."""
        self._check_fitted()
        return self._widen(self.pipeline_.named_steps["logreg"].predict_proba(X))

    def _widen(self, proba: np.ndarray) -> np.ndarray:
        # A class absent from training gets probability 0, keeping the (n, k) shape.
        out = np.zeros((proba.shape[0], self.cardinality))
        out[:, self.pipeline_.classes_] = proba
        return self._offset(out)

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
        if self.embedder or not isinstance(self.pipeline_.named_steps["ngrams"], TfidfVectorizer):
            return None
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


class HashedCounts:
    """Hashed n-gram counts (before TF-IDF weighting) of named sets of texts, each text
    analysed once per feature family while the cache lives (one retrain).

    A ``HashingVectorizer`` keeps no state: a text's counts never change, so every hashed
    model with the same analyzer, n-gram range and ``hash_bits`` (the selection's candidates,
    C values, label treatments and refit, and the dev and test predictions) reads the same
    rows, and only its TF-IDF weights are fitted per model. Word n-gram analysis in Python
    was the largest cost of an IMDB 50k retrain: its texts were analysed ~10 times.

    A set is named by the caller (``"train"``, ``"dev"``, ``"test"``): the name must stand
    for the same texts for the cache's life (their count is checked). Memory: the counts
    of the rows asked for, as one float32 sparse matrix per set (8 bytes per n-gram of a
    text: IMDB reviews hold ~343 distinct word 1-2 grams); ``drop`` frees a set.
    ``analysed`` counts the texts hashed so far."""

    def __init__(self):
        self._sets: dict = {}  # (features, name) -> (sorted positions, their counts, texts' count)
        self.analysed = 0

    @staticmethod
    def features_of(model) -> tuple | None:
        """The key of ``model``'s hashed n-grams, or None where its features are not
        hashed n-grams alone (a vocabulary, embeddings, torch)."""
        if not isinstance(model, SklearnTextClassifier) or not model.hash_bits or model.embedder:
            return None
        return model.analyzer, model.ngram_min, model.ngram_max, model.hash_bits

    def counts(self, model, name: str, texts, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """(len(rows), 2**hash_bits) counts of ``texts[rows]`` (None: all) in ``model``'s
        hashed n-grams, in the order of ``rows``; texts not hashed before are hashed now.
        Raises ``LabelingError`` when ``model``'s features are not hashed, or ``name`` was
        given a different number of texts before."""
        features = self.features_of(model)
        if features is None:
            raise LabelingError(f"{type(model).__name__} with hash_bits={getattr(model, 'hash_bits', None)}: "
                                "its features are not hashed n-grams alone")
        rows = np.arange(len(texts)) if rows is None else np.asarray(rows, dtype=np.int64)
        have, matrix, size = self._sets.get((features, name), (np.zeros(0, np.int64), None, len(texts)))
        if size != len(texts):
            raise LabelingError(f"feature cache: {name!r} held {size} texts, now given {len(texts)}")
        at = np.minimum(np.searchsorted(have, rows), max(len(have) - 1, 0))
        missing = np.unique(rows[~((len(have) > 0) & (have[at] == rows))]) if len(have) else np.unique(rows)
        if len(missing):
            hasher = model._make_pipeline().named_steps["ngrams"].named_steps["hash"]
            # held as float32: counts are whole numbers, exact below 2**24, in 8 bytes per entry not 12
            new = hasher.transform(take_texts(texts, missing)).tocsr().astype(np.float32)
            self.analysed += len(missing)
            have = np.concatenate([have, missing])
            matrix = new if matrix is None else sp.vstack([matrix, new], format="csr")
            order = np.argsort(have, kind="stable")
            have, matrix = have[order], matrix[order]
            self._sets[(features, name)] = (have, matrix, len(texts))
        return matrix[np.searchsorted(have, rows)].astype(np.float64)

    def fit_transform(self, model, name: str, texts, rows: np.ndarray | None = None):
        """(``model.vectorizer()`` fitted on ``texts[rows]``, their (n, d) features): the
        same as ``vectorizer.fit_transform`` of those texts, from the cached counts."""
        vectorizer = model.vectorizer()
        vectorizer.named_steps["hash"].fit(None)  # stateless; marks the pipeline fitted
        X = vectorizer.named_steps["tfidf"].fit_transform(self.counts(model, name, texts, rows))
        return vectorizer, X

    def predict_proba(self, model, name: str, texts, rows: np.ndarray | None = None) -> np.ndarray:
        """``model.predict_proba(texts[rows])`` (None: all), from the cached counts where
        ``model``'s features are hashed n-grams (else the model's own path)."""
        if self.features_of(model) is None:
            return model.predict_proba(take_texts(texts, rows))
        tfidf = model.pipeline_.named_steps["ngrams"].named_steps["tfidf"]
        return model.predict_proba_features(tfidf.transform(self.counts(model, name, texts, rows)))

    def drop(self, name: str) -> None:
        """Free every feature family's counts of set ``name``."""
        for key in [key for key in self._sets if key[1] == name]:
            del self._sets[key]


def take_texts(items, rows: np.ndarray | None) -> list:
    """The texts at positions ``rows`` (None: all) as a list: of a pandas Series (Arrow-backed
    strings), only those rows become Python strings."""
    if hasattr(items, "iloc"):
        return (items if rows is None else items.iloc[rows]).tolist()
    return items if rows is None else [items[i] for i in rows]


def _torch_network(n_sparse: int, n_dense: int, hidden: int, cardinality: int, generator):
    """A linear layer over [sparse n-grams | dense embeddings] (-> ReLU -> linear when
    ``hidden``), initialised from ``generator`` (torch's global RNG is never touched)."""
    import torch

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            width = hidden or cardinality
            # The sparse block is a bare weight, used through torch.sparse.mm: a dense
            # copy of a batch of 10^5 n-gram columns would cost more than the product.
            self.sparse = torch.nn.Parameter(torch.zeros(n_sparse, width))
            self.dense = torch.nn.Linear(n_dense, width) if n_dense else None
            self.bias = torch.nn.Parameter(torch.zeros(width))
            self.out = torch.nn.Linear(hidden, cardinality) if hidden else None

        def forward(self, xs, xd):
            h = self.bias.expand(xd.shape[0] if xs is None else xs.shape[0], -1)
            if xs is not None and self.sparse.shape[0]:
                h = h + torch.sparse.mm(xs, self.sparse)
            if self.dense is not None:
                h = h + self.dense(xd)
            return self.out(torch.relu(h)) if self.out is not None else h

    net = MLP()
    with torch.no_grad():
        fan_in = max(1, n_sparse + n_dense)
        bound = 1.0 / np.sqrt(fan_in)
        net.sparse.uniform_(-bound, bound, generator=generator)
        if net.dense is not None:
            net.dense.weight.uniform_(-bound, bound, generator=generator)
            net.dense.bias.zero_()
        if net.out is not None:
            b = 1.0 / np.sqrt(hidden)
            net.out.weight.uniform_(-b, b, generator=generator)
            net.out.bias.zero_()
    return net


@contextmanager
def _cpu_threads(device, n: int = 1):
    """Run small CPU torch work on ``n`` threads, restoring the setting after: on a
    loaded machine torch's thread pool spins, and a 64-row batch took 10x longer
    on 2 threads than on 1 (measured). GPU work is left alone."""
    import torch

    if str(device) != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sparse_tensor(X: sp.csr_matrix, device):
    import torch

    X = X.tocoo()
    indices = torch.as_tensor(np.vstack([X.row, X.col]), dtype=torch.int64)
    return torch.sparse_coo_tensor(indices, torch.as_tensor(X.data, dtype=torch.float32), X.shape,
                                   device=device, check_invariants=False).coalesce()


class TorchTextClassifier(_TextClassifier):
    """An MLP (or, with ``hidden=0``, a linear model) over TF-IDF n-grams and/or
    sentence embeddings, trained with soft cross-entropy on the label model's
    probabilities.

    ``embedder``: an embedding spec (``labeling.models.embeddings``), "" for none.
    ``ngrams``: use the TF-IDF n-gram block, its vocabulary capped at the
    ``max_features`` most frequent n-grams (0 = no cap; the cap bounds memory on
    large corpora). ``patience`` > 0 stops training when the
    soft cross-entropy on a held-out ``validation_fraction`` of the training rows (or
    on ``eval_set`` passed to ``fit``) has not improved for that many epochs, and
    keeps the best epoch's weights. ``device_`` records the device actually used.
    """

    def __init__(
        self,
        cardinality: int = 2,
        *,
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 5,
        ngrams: bool = True,
        max_features: int = 0,
        embedder: str = "",
        hidden: int = 0,
        epochs: int = 30,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        patience: int = 0,
        validation_fraction: float = 0.1,
        device: str = "auto",
        class_offsets: tuple = (),
        random_state: int = 0,
    ):
        self.cardinality = cardinality
        self.analyzer = analyzer
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.ngrams = ngrams
        self.max_features = max_features
        self.embedder = embedder
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.class_offsets = class_offsets
        self.random_state = random_state

    def _device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _features(self, texts: list[str]) -> tuple[sp.csr_matrix | None, np.ndarray]:
        """(TF-IDF (n, vocabulary) or None, embeddings (n, d) float32, d = 0 without an embedder)."""
        X = self.vectorizer_.transform(texts).tocsr().astype(np.float32) if self.ngrams else None
        if not self.embedder:
            return X, np.zeros((len(texts), 0), np.float32)
        from .embeddings import embed_texts

        return X, embed_texts(texts, self.embedder, cache=getattr(self, "embedding_cache", None))

    def network(self, n_sparse: int, n_dense: int, generator=None):
        """The untrained module for these settings and input widths (artifacts load into it)."""
        import torch

        generator = generator if generator is not None else torch.Generator().manual_seed(self.random_state)
        return _torch_network(n_sparse, n_dense, self.hidden, self.cardinality, generator)

    def fit(self, texts: Sequence[str], y, sample_weight=None, eval_set=None) -> TorchTextClassifier:
        """``texts`` (n,) strings; ``y`` (n,) class indices or (n, k) probabilities;
        ``sample_weight`` (n,); ``eval_set``: optional ``(texts, y)`` for early stopping."""
        with _cpu_threads(self._device()):
            return self._fit(texts, y, sample_weight, eval_set)

    def _fit(self, texts, y, sample_weight, eval_set) -> TorchTextClassifier:
        import torch

        texts = _check_texts(texts)
        if not (self.ngrams or self.embedder):
            raise LabelingError("the torch end model needs n-grams, an embedder, or both")
        targets = self._targets(y)
        weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rng = np.random.default_rng(self.random_state)
        fit_rows = np.arange(len(texts))
        if self.patience and eval_set is None and len(texts) >= 20:
            held = rng.random(len(texts)) < self.validation_fraction
            eval_set = ([texts[i] for i in np.flatnonzero(held)], targets[held])
            fit_rows = np.flatnonzero(~held)
        fit_texts = [texts[i] for i in fit_rows]
        if self.ngrams:
            self.vectorizer_ = make_vectorizer(self.analyzer, self.ngram_min, self.ngram_max, dtype=np.float32,
                                               max_features=self.max_features or None)
            self.vectorizer_.fit(fit_texts)
        X, E = self._features(fit_texts)
        device = self._device()
        generator = torch.Generator().manual_seed(self.random_state)
        n_sparse = X.shape[1] if X is not None else 0
        net = self.network(n_sparse, E.shape[1], generator).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        T = torch.as_tensor(targets[fit_rows], dtype=torch.float32, device=device)
        W = torch.as_tensor(weights[fit_rows], dtype=torch.float32, device=device)
        Ed = torch.as_tensor(E, device=device)
        if eval_set is not None:
            eval_texts = _check_texts(eval_set[0])
            eval_T = torch.as_tensor(self._targets(eval_set[1]), dtype=torch.float32, device=device)
            eval_X, eval_E = self._features(eval_texts)
            eval_inputs = (None if eval_X is None else _sparse_tensor(eval_X, device), torch.as_tensor(eval_E, device=device))
        best, best_loss, waited, self.epochs_run_ = None, np.inf, 0, 0
        for _ in range(self.epochs):
            net.train()
            order = torch.randperm(len(fit_rows), generator=generator).numpy()
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                xs = None if X is None else _sparse_tensor(X[idx], device)
                loss = (self._row_loss(net(xs, Ed[idx]), T[idx]) * W[idx]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.epochs_run_ += 1
            if self.patience and eval_set is not None:
                net.eval()
                with torch.no_grad():
                    val = float(self._row_loss(net(*eval_inputs), eval_T).mean())
                if val < best_loss - 1e-6:
                    best_loss, waited = val, 0
                    best = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
        if best is not None:
            net.load_state_dict(best)
        self.device_ = str(device)
        self.net_ = net.eval().cpu()
        self.device_ = str(device)  # the device "auto" resolved to, recorded with the run
        self.classes_ = np.arange(self.cardinality)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, k) class probabilities of ``texts``, after any ``class_offsets``."""
        import torch

        self._check_fitted()
        X, E = self._features(list(texts))
        out = []
        with torch.no_grad(), _cpu_threads("cpu"):
            for start in range(0, len(E), 1024):
                xs = None if X is None else _sparse_tensor(X[start : start + 1024], "cpu")
                out.append(self._activate(self.net_(xs, torch.as_tensor(E[start : start + 1024]))).double().numpy())
        return self._offset(np.concatenate(out) if out else np.zeros((0, self.cardinality)))

    # The output head, which a multi-label subclass replaces with k sigmoids.
    def _targets(self, y) -> np.ndarray:
        return soft_targets(y, self.cardinality)

    @staticmethod
    def _row_loss(logits, targets):
        """Per-row soft cross-entropy: the label model's probabilities are the target."""
        import torch

        return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)

    @staticmethod
    def _activate(logits):
        import torch

        return torch.softmax(logits, dim=1)


END_MODELS = {"sklearn": SklearnTextClassifier, "torch": TorchTextClassifier}


def make_end_model(config, cardinality: int, random_state: int) -> _TextClassifier:
    """Build the end model an ``EndModelConfig`` names, with its settings."""
    features = dict(analyzer=config.analyzer, ngram_min=config.ngram_min, ngram_max=config.ngram_max)
    if config.type == "sklearn":
        return SklearnTextClassifier(cardinality, C=config.C, embedder=config.embedder, random_state=random_state,
                                     hash_bits=config.hash_bits, **features)
    if config.type == "torch":
        return TorchTextClassifier(
            cardinality,
            **features,
            ngrams=config.ngrams,
            embedder=config.embedder,
            hidden=config.hidden,
            epochs=config.epochs,
            patience=config.patience,
            lr=config.lr,
            weight_decay=config.weight_decay,
            batch_size=config.batch_size,
            device=config.device,
            random_state=random_state,
        )
    raise LabelingError(f"unknown end model type {config.type!r}; expected one of {sorted(END_MODELS)}")
