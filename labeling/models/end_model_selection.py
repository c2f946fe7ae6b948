"""Choose the end model on dev only: a few small stages, each a one-standard-error pick.

The end model is trained on weak labels (the label model's probabilities on the train
rows some LF covers) and scored on the labelled dev rows with the project's metric.
Test labels are never an input here. The choice runs in stages, each starting from the
previous stage's pick and listing its simplest option first:

1. ``family``: features and classifier (``end_model.candidates``): character n-grams
   (C=1 or C=10), word n-grams, word + character n-grams, word + character n-grams +
   sentence embeddings, sentence embeddings alone, an MLP over embeddings + n-grams.
2. ``C``: for the logistic-regression families, the inverse regularisation strength
   ``C`` in ``C_GRID``, the strongest regularisation first (the simplest model, as the
   one-standard-error rule is usually read). Weak labels are the LFs' own words: a
   loosely regularised model fits them (and their errors) closely: on IMDB, word 1-2
   grams on soft labels scored 86.4% with C=1 against 84.7% with C=10 on 4,500 gold
   train rows held out of the fit (its test gain in the benchmark, where the C=10 pick
   already cut the least confident labels, was smaller: 85.2% -> 85.5%).
3. ``labels``: soft labels (probability weights), hard (argmax) labels, or soft labels
   with the least confident 30% of rows cut.
4. ``class_weight``: none, or "balanced" weights from the weak labels' class mass.
5. ``self_training``: 0, 1 or 2 rounds of adding the train rows no LF covers, labelled
   by the current model where it is confident (p >= 0.9), and refitting.
6. ``decision``: no offsets, or class offsets fitted on dev (two classes: the decision
   threshold on the positive class; more: a prior correction toward dev's class mix),
   scored by 5-fold cross-fitting on dev since they are fitted to dev labels.

When the dev labels cannot choose (fewer than ``DECISION_FOLDS`` labelled rows, or all
of one class: ``labeling.models.label_models.dev_selection_problem``) no stage runs: the
first family tried is fitted with its own settings (soft labels, no class weights, no
self-training, no offsets) and ``EndModelSelection.fallback`` says why.

Within a stage the pick is the earliest option whose dev score is within one standard
error of the best, the standard error of the *difference* between the two options'
scores over 200 paired bootstrap resamples of the dev rows (seeded): a dev set cannot
tell apart closer scores, so the simpler option stays. The difference's error, not one
score's: two options scored on the same rows mostly agree, and the error of one score
(about 0.03 on 100-200 rows) exceeded nearly every gap between options on our dev
sets, so every later stage kept its first option whatever dev said. Every option's dev score
is kept in the result (``EndModelSelection.to_dict``), which the run records.

At scale (what keeps the cost linear in rows and memory bounded):

- the stages run on a seeded subsample of at most ``max_rows`` weak-labelled rows (and
  as many uncovered rows for self-training); the pick is then refitted once on all rows,
  or on a seeded subsample of ``refit_max_rows``, and the record says which;
- families whose cost grows with every character (``COSTLY``: character n-grams, 4
  n-grams per character analysed in Python, with a vocabulary that grows with the
  corpus; sentence embeddings, a tokenizer pass and a pooled vector per token of every
  train, dev and test text) are left out of the candidates when the selection rows hold
  more than ``costly_max_chars`` characters (the record says so and why);
- each family's texts are vectorised once and the features reused by every stage
  (labels, class weights and self-training change targets and weights, not features);
  hashed families go further (``HashedCounts``, one per retrain): each train, uncovered,
  dev and test text is analysed once, and the refit, the decision stage and the run's
  own dev and test predictions read the same counts (IMDB 50k: ~10 hashing passes
  over the same texts before);
- a fit solves for the columns its rows use only (hashed n-grams: ~31k of 2**20 on
  semeval), on one BLAS thread (``threadpoolctl``; threads cost far more than they saved
  on a busy machine), and multi-class (lbfgs) fits start from a neighbour's weights: the C
  path walks away from the family's own C, label treatments, class weights and
  self-training rounds start from the stage's pick, ``word_char_emb`` from ``word_char``;
- the count of models trained is bounded (families + 2 C + 2 label treatments + 1 class
  weighting + 2 self-training rounds + the final refit, whatever the classes) and
  recorded (``rows["fits"]``); ``time_budget_s`` leaves out the options not yet fitted
  once spent, named in ``rows["cut"]``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ConfigError, LabelingError
from .end_models import WORD_AND_CHAR, HashedCounts, SklearnTextClassifier, TorchTextClassifier, soft_targets, take_texts
from .label_models import dev_selection_problem

__all__ = ["COSTLY", "C_GRID", "DECISION_FOLDS", "DEFAULT_FAMILIES", "FAMILIES", "BaselineSelection",
           "EndModelSelection", "StageResult", "affordable_families", "bootstrap_se", "budget_note", "family_model", "metric_score",
           "paired_se", "select_baseline", "select_end_model", "take_texts"]

CONFIDENCE_CUT = 0.3  # "confident" labels drop this share of the least confident rows
SELF_TRAINING_CONFIDENCE = 0.9
C_GRID = (1.0, 3.0, 10.0)  # the C stage's options, the strongest regularisation (the simplest) first
N_BOOTSTRAP = 200
DECISION_FOLDS = 5  # the decision stage's cross-fitting folds: dev needs at least this many labelled rows


def metric_score(y_true, y_pred, metric: str, classes: Sequence[str]) -> float:
    """Score (n,) predicted class indices against (n,) gold indices.

    ``metric``: "accuracy", "macro_f1" (mean F1 over all classes) or "f1:<class>"."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if not len(y_true):
        raise LabelingError("no labelled dev rows to score end models on")
    if metric == "accuracy":
        return float((y_true == y_pred).mean())
    k = len(classes)
    tp = np.bincount(y_true[y_true == y_pred], minlength=k).astype(float)
    denom = np.bincount(y_true, minlength=k) + np.bincount(y_pred, minlength=k)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    if metric == "macro_f1":
        return float(f1.mean())
    kind, _, positive = metric.partition(":")
    if kind != "f1" or positive not in classes:
        raise ConfigError(f"metric {metric!r}: expected 'accuracy', 'macro_f1' or 'f1:<class of {list(classes)}>'")
    return float(f1[list(classes).index(positive)])


def bootstrap_se(y_true, y_pred, metric: str, classes: Sequence[str], random_state: int = 0) -> float:
    """Standard deviation of the metric over ``N_BOOTSTRAP`` resamples of the rows (seeded)."""
    rng = np.random.default_rng(random_state)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    draws = rng.integers(0, len(y_true), size=(N_BOOTSTRAP, len(y_true)))
    return float(np.std([metric_score(y_true[d], y_pred[d], metric, classes) for d in draws]))


# C=10 for the n-gram families: on the dev splits of the YouTube example and WRENCH youtube,
# sms, trec and semeval, C=10 scored at or above C=1 (far above on the multi-class sets,
# where C=1 underfits); "char_wb" (C=1) stays for projects that list it.
def paired_se(y_true, pred_a, pred_b, metric: str, classes: Sequence[str], random_state: int = 0) -> float:
    """Standard deviation of metric(a) - metric(b) over ``N_BOOTSTRAP`` resamples of the
    rows, both scored on each same resample (seeded; 0 where a and b agree everywhere)."""
    rng = np.random.default_rng(random_state)
    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if np.array_equal(pred_a, pred_b):
        return 0.0
    draws = rng.integers(0, len(y_true), size=(N_BOOTSTRAP, len(y_true)))
    return float(np.std([metric_score(y_true[d], pred_a[d], metric, classes)
                         - metric_score(y_true[d], pred_b[d], metric, classes) for d in draws]))


def family_model(name: str, k: int, seed: int, embedder: str):
    """The unfitted model of candidate family ``name`` (one of ``FAMILIES``) for ``k`` classes;
    raises ``ConfigError`` for an unknown name."""
    if name == "word_char":
        return SklearnTextClassifier(k, analyzer=WORD_AND_CHAR, ngram_min=2, ngram_max=5, C=10.0, random_state=seed)
    if name == "word_char_emb":
        return SklearnTextClassifier(k, analyzer=WORD_AND_CHAR, ngram_min=2, ngram_max=5, C=10.0, embedder=embedder,
                                     random_state=seed)
    if name == "char_wb":
        return SklearnTextClassifier(k, analyzer="char_wb", ngram_min=2, ngram_max=5, C=1.0, random_state=seed)
    if name == "char_wb_C10":
        return SklearnTextClassifier(k, analyzer="char_wb", ngram_min=2, ngram_max=5, C=10.0, random_state=seed)
    if name == "word":
        return SklearnTextClassifier(k, analyzer="word", ngram_min=1, ngram_max=2, C=10.0, random_state=seed)
    if name == "word_hashed":  # "word" without a vocabulary: its memory and artifact do not grow with the corpus
        return SklearnTextClassifier(k, analyzer="word", ngram_min=1, ngram_max=2, C=10.0, hash_bits=20,
                                     random_state=seed)
    if name == "embedding":
        return TorchTextClassifier(k, ngrams=False, embedder=embedder, hidden=0, epochs=100, lr=0.02,
                                   batch_size=64, patience=5, random_state=seed)
    if name == "mlp":
        return TorchTextClassifier(k, analyzer="word", ngram_min=1, ngram_max=2, max_features=50_000,
                                   embedder=embedder, hidden=64, epochs=30, lr=0.003, batch_size=64,
                                   patience=3, random_state=seed)
    raise ConfigError(f"unknown end-model candidate {name!r}; expected one of {FAMILIES}")


# a family whose features are another's n-grams with embeddings appended: its fit starts from that one's weights
_EXTENDS = {"word_char_emb": "word_char"}
FAMILIES = ("char_wb", "char_wb_C10", "word", "word_hashed", "word_char", "word_char_emb", "embedding", "mlp")
# simplest first; "word_hashed" is "word" without a vocabulary that grows with the corpus
DEFAULT_FAMILIES = ("word_hashed", "word_char", "word_char_emb", "embedding")


@dataclass(frozen=True)
class StageResult:
    """One stage: each option's dev score, its tolerance (one standard error of its
    difference from the best option; 0 for the best) and the pick."""

    stage: str
    options: tuple[tuple[str, float], ...]
    tolerances: tuple[float, ...]
    chosen: str


@dataclass(frozen=True, eq=False)
class EndModelSelection:
    """The fitted pick and how it was reached. ``settings``: the option chosen per stage;
    ``rows``: how many train rows the stages and the final fit used, and why (``scale``);
    ``fallback``: why dev could not choose (no stage ran, ``stages`` is empty; "" when it
    chose); ``dev_score`` is None when dev has no labelled rows."""

    model: object
    metric: str
    stages: tuple[StageResult, ...]
    settings: dict
    dev_score: float | None
    rows: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)  # candidate family -> why it was not tried
    fallback: str = ""

    def to_dict(self) -> dict:
        rule = ("per stage, the simplest option whose dev score is within one standard error of the best's "
                "(paired bootstrap of the score difference)")
        if self.fallback:
            rule = (f"{self.settings['family']}, the first candidate, kept with its own settings (soft labels, no "
                    f"class weights, no self-training, no decision offsets): {self.fallback}. Label more dev rows "
                    "(of every class), or set end_model.type = \"sklearn\" or \"torch\" to choose the model yourself")
        return {
            "metric": self.metric, "dev_score": self.dev_score, "settings": dict(self.settings), "rule": rule,
            "fallback": self.fallback, "rows": dict(self.rows), "dropped_candidates": dict(self.dropped),
            "stages": [{"stage": s.stage, "chosen": s.chosen,
                        "candidates": [{"name": n, "dev_score": v, "tolerance": t}
                                       for (n, v), t in zip(s.options, s.tolerances)]} for s in self.stages],
        }


@dataclass(frozen=True)
class _Recipe:
    """How to train one option: family, C (None: the family's own), label treatment,
    class weights, self-training."""

    family: str
    C: float | None = None
    labels: str = "soft"
    class_weight: str = "none"
    self_training: int = 0


def _one_se_pick(options: list[tuple[str, np.ndarray]], y_dev, metric, classes,
                 seed) -> tuple[int, list[float], list[float]]:
    """(index of the simplest option within one SE of the best, each option's SE of its
    difference from the best, every option's dev score)."""
    scores = [metric_score(y_dev, pred, metric, classes) for _, pred in options]
    best = int(np.argmax(scores))
    tolerances = [paired_se(y_dev, options[best][1], pred, metric, classes, seed) for _, pred in options]
    chosen = next(i for i, s in enumerate(scores) if s >= scores[best] - tolerances[i] - 1e-12)
    return chosen, tolerances, scores


def _one_thread(select):
    """``select`` run with BLAS and OpenMP pools (scikit-learn's lbfgs, numpy) held to one thread.

    Selection is many small fits: threads cost more than they save, and far more on a busy
    machine (TREC, 500 dev rows, 6 classes, 2 cores under load: 8 s per fit with 2 threads,
    0.09 s with 1; multinomial lbfgs was 60-90x slower with 2 threads than 1)."""
    @functools.wraps(select)
    def limited(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return select(*args, **kwargs)
    return limited


SELECTION_MAX_ROWS = 20_000
COSTLY_MAX_CHARS = 4_000_000
# families whose time (and for n-grams, vocabulary) grows with every character of every text
_CHAR_COST = "character 2-5-grams, 4 per character, analysed in Python; the vocabulary grows with the corpus"
_EMBED_COST = "sentence embeddings: a tokenizer pass and a pooled vector per token of every train, dev and test text"
COSTLY = {"char_wb": _CHAR_COST, "char_wb_C10": _CHAR_COST, "word_char": _CHAR_COST,
          "word_char_emb": f"{_CHAR_COST}; {_EMBED_COST}", "embedding": _EMBED_COST, "mlp": _EMBED_COST}


def affordable_families(families: Sequence[str], rows: int, chars: int,
                        costly_max_chars: int = COSTLY_MAX_CHARS) -> tuple[list[str], dict]:
    """(the families tried, {family left out: why}): the ``COSTLY`` ones are left out when
    ``rows`` texts of ``chars`` characters exceed ``costly_max_chars`` (0 = never), unless
    nothing else is left."""
    dropped = {}
    if costly_max_chars and chars > costly_max_chars:
        dropped = {f: (f"the {rows:,} selection rows hold {chars:,} characters, above "
                       f"end_model.costly_max_chars = {costly_max_chars:,}; its cost grows with every character "
                       f"({COSTLY[f]})") for f in families if f in COSTLY}
    tried = [f for f in families if f not in dropped] or list(families)  # nothing else to try: keep them
    return tried, {f: why for f, why in dropped.items() if f not in tried}


def _subsample(n: int, cap: int, rng) -> np.ndarray | None:
    """Sorted row indices of a seeded subsample of ``cap`` of ``n`` rows; None keeps all."""
    if not cap or n <= cap:
        return None
    return np.sort(rng.choice(n, cap, replace=False))


def _texts(texts) -> list | pd.Series:
    """A pandas Series of texts kept as one (positions from 0), anything else a list.

    A Series stays as it comes: pandas 3 holds texts as Arrow strings, and a list of a
    million reviews as Python strings took GBs (IMDB, 200k rows: 3.45 GB peak), while the
    stages read a subsample and the final fit at most ``refit_max_rows`` rows."""
    if isinstance(texts, pd.Series):
        return texts.reset_index(drop=True)
    return list(texts)


def _lengths(texts) -> np.ndarray:
    """(n,) character counts of ``texts`` (a list or a Series)."""
    if isinstance(texts, pd.Series):
        return texts.str.len().fillna(0).to_numpy(dtype=np.int64)
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


@_one_thread
def select_end_model(
    texts: Sequence[str],
    soft_labels,
    dev_texts: Sequence[str],
    y_dev,
    *,
    classes: Sequence[str],
    metric: str = "accuracy",
    families: Sequence[str] = DEFAULT_FAMILIES,
    sample_weight=None,
    unlabelled_texts: Sequence[str] = (),
    embedder: str = "wordllama",
    embedding_cache=None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
    max_rows: int = SELECTION_MAX_ROWS,
    refit_max_rows: int = 0,
    costly_max_chars: int = COSTLY_MAX_CHARS,
    time_budget_s: float = 0.0,
    feature_cache: HashedCounts | None = None,
) -> EndModelSelection:
    """Fit and choose an end model on dev only (see the module docstring).

    ``texts`` (n,) training texts with ``soft_labels`` (n, k) weak labels and optional
    ``sample_weight`` (n,) (gold rows may weigh more); ``dev_texts`` (m,) with gold
    ``y_dev`` (m,) class indices, the only labels read; ``unlabelled_texts``: train rows
    no LF covers, for self-training. ``max_rows``: the stages run on a seeded subsample
    of this many rows (0 = all); ``refit_max_rows``: the pick's final fit uses at most
    this many (0 = all); ``costly_max_chars``: the ``COSTLY`` families are tried only
    when the selection rows hold at most this many characters (0 = always);
    ``time_budget_s``: once the selection has run this many seconds (0 = no limit), the
    options not yet fitted are left out (each stage keeps its first option), and
    ``rows["cut"]`` names them per stage: a cut run depends on the machine's speed, so it
    says so, and the choice is reproducible only without a cut. With too few
    or one-class dev labels the first family is kept without a choice (``fallback``).
    ``feature_cache``: the run's ``HashedCounts`` (a new one where None): hashed families
    read each train, uncovered and dev text's counts from it, analysed once (its "dev" set
    is ``dev_texts`` as given, labelled or not); the train and uncovered counts are dropped
    from it on return. Raises ``ConfigError`` on an unknown family or metric.
    """
    k = len(classes)
    texts, dev_texts = _texts(texts), list(dev_texts)
    all_dev = dev_texts
    unlabelled = _texts(unlabelled_texts)
    targets = soft_targets(soft_labels, k)
    weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    y_dev = np.asarray(y_dev)
    labelled = y_dev >= 0
    dev_texts, y_dev = [t for t, keep in zip(dev_texts, labelled) if keep], y_dev[labelled]
    metric_score([0], [0], metric, classes)  # validates the metric
    fallback = dev_selection_problem(y_dev, DECISION_FOLDS, classes)
    if not families:
        raise ConfigError("no end-model candidates to select from")
    for name in families:
        if name not in FAMILIES:
            raise ConfigError(f"unknown end-model candidate {name!r}; expected one of {FAMILIES}")
    seed = random_state
    rng = np.random.default_rng(seed)
    # the stages' rows: a seeded subsample, drawn before anything else reads the RNG
    max_rows = min((c for c in (max_rows, refit_max_rows) if c), default=0)  # never more than the final fit
    picked = _subsample(len(texts), max_rows, rng)
    picked_unlabelled = _subsample(len(unlabelled), max_rows, rng)
    refit_rows = _subsample(len(texts), refit_max_rows, rng)
    refit_unlabelled = _subsample(len(unlabelled), refit_max_rows, rng)
    cache = feature_cache if feature_cache is not None else HashedCounts()
    dev = (all_dev, np.flatnonzero(labelled))

    def dev_proba(model) -> np.ndarray:
        return cache.predict_proba(model, "dev", *dev)

    sample = _Data.of(texts, targets, weights, unlabelled, picked, picked_unlabelled, dev, cache)
    tried, dropped = affordable_families(families, len(sample.texts), sum(map(len, sample.texts)), costly_max_chars)

    fits = [0]  # how many models were trained, recorded
    clock, cut = time.perf_counter(), {}  # the time budget, and the options it left out per stage

    def out_of_time(stage: str, option: str) -> bool:
        """True (and ``option`` recorded as cut) once the selection has spent ``time_budget_s``."""
        if not time_budget_s or time.perf_counter() - clock <= time_budget_s:
            return False
        cut.setdefault(stage, []).append(option)
        if progress:
            progress(f"end model {stage}: {option} left out, the {time_budget_s:g} s time budget is spent")
        return True

    def fit(recipe: _Recipe, data: _Data, base=None, start=None):
        """Train ``recipe`` on ``data``; self-training rounds continue from ``base`` (the previous
        round). ``start``: a model of the same family on ``data``'s features to warm-start from
        (``base`` where None)."""
        fits[0] += 1
        model = family_model(recipe.family, k, seed, embedder)
        if recipe.C is not None:
            model.C = recipe.C
        model.embedding_cache = embedding_cache
        t, w, x = data.targets, data.weights, data.texts
        keep = None
        if recipe.labels == "hard":
            t = np.eye(k)[t.argmax(axis=1)]
        elif recipe.labels == "confident":
            confidence = t.max(axis=1)
            keep = confidence >= np.quantile(confidence, CONFIDENCE_CUT)
            t, w, x = t[keep], w[keep], [s for s, kept in zip(x, keep) if kept]
        if recipe.class_weight == "balanced":
            mass = t.sum(axis=0)
            per_class = np.divide(len(t), k * mass, out=np.zeros(k), where=mass > 0)
            w = w * (t @ per_class)
        extra: list[str] = []
        sure = None
        if recipe.self_training and base is not None and data.unlabelled:
            proba = data.proba(base, recipe.family, "unlabelled")
            sure = proba.max(axis=1) >= SELF_TRAINING_CONFIDENCE
            extra = [s for s, ok in zip(data.unlabelled, sure) if ok]
            t = np.vstack([t, np.eye(k)[proba[sure].argmax(axis=1)]])
            w = np.concatenate([w, np.ones(int(sure.sum()))])
        if isinstance(model, SklearnTextClassifier):
            vectorizer, X = data.features(recipe.family, model)
            X = X if keep is None else X[keep]
            if extra:
                X = sp.vstack([X, data.transformed(recipe.family, "unlabelled")[sure]], format="csr")
            start = start if start is not None else base
            return model.fit_features(vectorizer, X, t, sample_weight=w,
                                      warm_start_from=start if isinstance(start, SklearnTextClassifier) else None)
        return model.fit(x + extra, t, sample_weight=w)

    stages: list[StageResult] = []

    def run_stage(name: str, recipes: list[_Recipe], labels: list[str], models: list | None = None, start=None):
        """Fit the options (an option's model given in ``models`` is reused; None: fit it, warm-started
        from ``start``), score, pick."""
        fitted = list(models or []) + [None] * (len(recipes) - len(models or []))
        for i, recipe in enumerate(recipes):
            if fitted[i] is None and not (i and out_of_time(name, labels[i])):
                if progress:
                    progress(f"end model {name}: {labels[i]}")
                fitted[i] = fit(recipe, sample, start=start)
        kept = [i for i, m in enumerate(fitted) if m is not None]
        recipes, labels, fitted = [recipes[i] for i in kept], [labels[i] for i in kept], [fitted[i] for i in kept]
        preds = [sample.proba(m, r.family, "dev").argmax(axis=1) for m, r in zip(fitted, recipes)]
        chosen, tolerances, scores = _one_se_pick(list(zip(labels, preds)), y_dev, metric, classes, seed)
        stages.append(StageResult(name, tuple(zip(labels, map(float, scores))), tuple(map(float, tolerances)),
                                  labels[chosen]))
        return recipes[chosen], fitted[chosen]

    def self_trained(recipe: _Recipe, data: _Data, rounds: int) -> list:
        """The models of 0..rounds self-training rounds; round r: the rows round r-1's model is sure of."""
        chain = [fit(replace(recipe, self_training=0), data)]
        for r in range(1, rounds + 1):
            if progress:
                progress(f"end model self_training: {r} round(s)")
            chain.append(fit(replace(recipe, self_training=1), data, base=chain[-1]))
        return chain

    if fallback:
        # Dev scores here would pick by chance (or by one class's recall): the first family
        # with its own settings is the choice that needs no evidence. No self-training either.
        recipe = _Recipe(tried[0])
        if recipe.family in COSTLY and costly_max_chars:
            refit_rows = _within_chars(texts, refit_rows, costly_max_chars, rng)
        full = _Data.of(texts, targets, weights, [], refit_rows, None, dev, cache, final=True)
        model = fit(recipe, full)
        full.release()
        sample.release()
        _drop_train(cache)
        rows = {"train": len(texts), "selection": 0, "selection_max_rows": max_rows, "unlabelled": len(unlabelled),
                "fits": fits[0], "time_budget_s": time_budget_s, "cut": {},
                "selection_unlabelled": 0, "selection_dev_score": None, "final": len(full.texts), "final_unlabelled": 0,
                "note": f"no selection stage ran; {recipe.family} was fitted on "
                        + (f"all {len(texts):,} rows" if refit_rows is None
                           else f"a seeded subsample of {len(full.texts):,} of {len(texts):,} rows")}
        settings = {"family": recipe.family, "C": getattr(model, "C", None), "labels": recipe.labels,
                    "class_weight": recipe.class_weight, "self_training": 0, "decision": "none"}
        dev_score = metric_score(y_dev, dev_proba(model).argmax(axis=1), metric, classes) if len(y_dev) else None
        return EndModelSelection(model, metric, (), settings, dev_score, rows, dropped, fallback)

    # each family's model, a family that extends another's n-grams (with embeddings) warm-started from it
    by_family: dict = {}
    for i, family in enumerate(tried):
        if not (i and out_of_time("family", family)):
            if progress:
                progress(f"end model family: {family}")
            by_family[family] = fit(_Recipe(family), sample, start=by_family.get(_EXTENDS.get(family)))
    recipe, model = run_stage("family", [_Recipe(f) for f in by_family], list(by_family), list(by_family.values()))
    # options not picked are dropped as each stage ends: a hashed family's weights span all
    # 2**20 columns (9 classes: 75 MB a model), and six kept to the end held semeval's peak above 1 GB
    del by_family
    if isinstance(model, SklearnTextClassifier):
        # the family's own C is already fitted: reused, not refitted; the others walk the C path
        # away from it, each warm-started from its neighbour's weights
        path = {model.C: model}
        for c in sorted(C_GRID, key=lambda c: abs(np.log(c / model.C))):
            if c not in path and not out_of_time("C", f"{c:g}"):
                neighbour = min(path, key=lambda fitted_c: abs(np.log(c / fitted_c)))
                if progress:
                    progress(f"end model C: {c:g}")
                path[c] = fit(replace(recipe, C=c), sample, start=path[neighbour])
        recipe, model = run_stage("C", [replace(recipe, C=c) for c in C_GRID if c in path],
                                  [f"{c:g}" for c in C_GRID if c in path], [path[c] for c in C_GRID if c in path])
        del path
    recipe, model = run_stage("labels", [recipe, replace(recipe, labels="hard"), replace(recipe, labels="confident")],
                              ["soft", "hard", f"confident (least {CONFIDENCE_CUT:.0%} cut)"], [model], start=model)
    recipe, model = run_stage("class_weight", [recipe, replace(recipe, class_weight="balanced")],
                              ["none", "balanced"], [model], start=model)
    if sample.unlabelled:
        chain = [model]
        for rounds in (1, 2):
            if out_of_time("self_training", str(rounds)):
                break
            if progress:
                progress(f"end model self_training: {rounds} round(s)")
            chain.append(fit(replace(recipe, self_training=1), sample, base=chain[-1]))
        recipe, model = run_stage("self_training", [replace(recipe, self_training=r) for r in range(len(chain))],
                                  [str(r) for r in range(len(chain))], chain)
        del chain
    proba = dev_proba(model)
    offsets = _decision_offsets(proba, y_dev, k, metric, classes, seed, stages)
    selection_score = metric_score(y_dev, proba.argmax(axis=1) if offsets is None else _apply_offsets(proba, offsets),
                                   metric, classes)
    sample.release()
    if refit_rows is not None:  # an independent subsample: few of the stages' rows are refitted
        _drop_train(cache)
    rows = {"train": len(texts), "selection": len(sample.texts), "selection_max_rows": max_rows,
            "unlabelled": len(unlabelled), "selection_unlabelled": len(sample.unlabelled),
            "selection_dev_score": selection_score}
    if picked is None and picked_unlabelled is None:
        rows.update(final=len(texts), final_unlabelled=len(unlabelled),
                    note="the stages ran on every row; the pick is their model")
    else:
        if recipe.family in COSTLY and costly_max_chars:
            # its final fit keeps within the same character budget
            refit_rows = _within_chars(texts, refit_rows, costly_max_chars, rng)
        full = _Data.of(texts, targets, weights, unlabelled, refit_rows, refit_unlabelled, dev, cache, final=True)
        if progress:
            progress(f"end model: refit {recipe.family} on {len(full.texts):,} rows")
        model = self_trained(recipe, full, recipe.self_training)[-1]
        full.release()
        if offsets is not None:  # the decision stage chose offsets: refitted to the refitted model on dev
            _, offsets = _fit_offsets(dev_proba(model), y_dev, k, metric, classes)
        rows.update(final=len(full.texts), final_unlabelled=len(full.unlabelled),
                    note=(f"the stages ran on a seeded subsample of {len(sample.texts):,} of {len(texts):,} rows; the "
                          f"pick was refitted on {len(full.texts):,}"
                          + ("" if refit_rows is None else " (a seeded subsample: end_model.max_rows)")))
    if offsets is not None:
        model.class_offsets = offsets
    _drop_train(cache)
    rows["fits"] = fits[0]  # models trained, the final refit included: the selection's cost in fits
    rows.update(time_budget_s=time_budget_s, cut=cut)
    if cut:
        rows["note"] += "; " + budget_note(time_budget_s, cut)
    settings = {"family": recipe.family, "C": getattr(model, "C", None), "labels": recipe.labels, "class_weight": recipe.class_weight,
                "self_training": recipe.self_training, "decision": stages[-1].chosen}
    dev_score = metric_score(y_dev, dev_proba(model).argmax(axis=1), metric, classes)
    return EndModelSelection(model, metric, tuple(stages), settings, dev_score, rows, dropped)


def _drop_train(cache: HashedCounts) -> None:
    """Free the train and uncovered rows' counts: after the fits only dev and test are scored."""
    cache.drop("train")
    cache.drop("unlabelled")


def budget_note(time_budget_s: float, cut: dict) -> str:
    """What a spent time budget left out (``cut``: stage -> options), for the run's notes."""
    left_out = "; ".join(f"{stage} {', '.join(options)}" for stage, options in cut.items())
    return (f"the {time_budget_s:g} s time budget (end_model.time_budget_s) was spent before every option was fitted: "
            f"left out {left_out}; each stage kept its first option, so this choice depends on the machine's speed")


def _within_chars(texts, rows: np.ndarray | None, budget: int, rng) -> np.ndarray | None:
    """``rows`` (None = all) cut to a seeded subsample whose texts hold about ``budget`` characters."""
    rows = np.arange(len(texts)) if rows is None else rows
    chars = int(_lengths(texts)[rows].sum())
    if chars <= budget:
        return None if len(rows) == len(texts) else rows
    keep = max(2, int(len(rows) * budget / chars))
    return np.sort(rng.choice(rows, keep, replace=False))


class _Data:
    """Training rows of one fit (texts, (n, k) targets, (n,) weights, uncovered texts), with
    each sklearn family's TF-IDF features computed once and shared by every fit on them;
    hashed families read their counts from ``cache`` (``HashedCounts``), shared with the other
    fits of the run. ``sources``: set name ("train", "unlabelled", "dev") -> (all its texts,
    the positions of this fit's rows, None: all)."""

    def __init__(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, unlabelled: list[str],
                 sources: dict, cache: HashedCounts, final: bool = False):
        self.texts, self.targets, self.weights, self.unlabelled = texts, targets, weights, unlabelled
        self.sources, self.cache, self.final = sources, cache, final
        self._features: dict = {}

    @classmethod
    def of(cls, texts, targets: np.ndarray, weights: np.ndarray, unlabelled,
           rows: np.ndarray | None, unlabelled_rows: np.ndarray | None, dev: tuple, cache: HashedCounts,
           final: bool = False) -> "_Data":
        """The given ``rows`` of the training rows and ``unlabelled_rows`` of the uncovered ones
        (None: all); ``dev``: (dev texts, the labelled rows' positions). ``final``: the last fit
        on these train rows, which frees their counts once its features are computed."""
        sources = {"train": (texts, rows), "unlabelled": (unlabelled, unlabelled_rows), "dev": dev}
        return cls(take_texts(texts, rows), targets if rows is None else targets[rows],
                   weights if rows is None else weights[rows], take_texts(unlabelled, unlabelled_rows), sources, cache,
                   final)

    def features(self, family: str, model: SklearnTextClassifier):
        """(the family's vectorizer fitted on the rows' texts, their (n, d) features)."""
        if family not in self._features:
            if HashedCounts.features_of(model) is not None:
                self._features[family] = self.cache.fit_transform(model, "train", *self.sources["train"])
                self._features[(family, "model")] = model
                if self.final:  # nothing reads them again: not held beside the features during the fit
                    self.cache.drop("train")
            else:
                vectorizer = model.vectorizer()
                self._features[family] = (vectorizer, vectorizer.fit_transform(self.texts))
        return self._features[family]

    def transformed(self, family: str, name: str):
        """Features of set ``name``'s rows ("dev", "unlabelled") by the family's vectorizer, computed once."""
        key = (family, name)
        if key not in self._features:
            vectorizer, hashed = self._features[family][0], self._features.get((family, "model"))
            if hashed is not None:
                counts = self.cache.counts(hashed, name, *self.sources[name])
                self._features[key] = vectorizer.named_steps["tfidf"].transform(counts)
            else:
                self._features[key] = vectorizer.transform(take_texts(*self.sources[name]))
        return self._features[key]

    def proba(self, model, family: str, name: str) -> np.ndarray:
        """``model.predict_proba`` of set ``name``'s rows, from shared features where the model reads them."""
        if isinstance(model, SklearnTextClassifier) and family in self._features:
            return model.predict_proba_features(self.transformed(family, name))
        return model.predict_proba(take_texts(*self.sources[name]))

    def release(self) -> None:
        self._features.clear()


def _fit_offsets(proba: np.ndarray, y: np.ndarray, k: int, metric: str, classes) -> tuple[str, tuple]:
    """Class offsets fitted to ``(proba, y)``: for two classes the threshold on class 1
    (grid 0.10..0.90, the one nearest 0.5 among equals), else a prior correction
    toward ``y``'s class mix."""
    if k == 2:
        margin = np.log(np.clip(proba[:, 1], 1e-9, 1)) - np.log(np.clip(proba[:, 0], 1e-9, 1))
        grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
        scored = [(metric_score(y, (margin >= np.log(t / (1 - t))).astype(int), metric, classes), -abs(t - 0.5), t)
                  for t in grid]
        t = max(scored)[2]
        return f"threshold {t:.2f}", (0.0, float(-np.log(t / (1 - t))))
    prior = (np.bincount(y, minlength=k) + 1.0) / (len(y) + k)
    return "prior correction to dev", tuple(float(v) for v in np.log(prior) - np.log(proba.mean(axis=0) + 1e-9))


def _apply_offsets(proba: np.ndarray, offsets: tuple) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return (np.log(proba) + np.asarray(offsets)).argmax(axis=1)


def _decision_offsets(proba: np.ndarray, y_dev, k, metric, classes, seed, stages,
                      n_folds: int = DECISION_FOLDS) -> tuple | None:
    """Pick class offsets on dev (the ``decision`` stage) from the model's (m, k) dev
    probabilities ``proba``; None keeps the model as it is.

    Offsets are fitted to dev labels, so their dev score is cross-fitted: each fold's
    predictions use offsets fitted on the other folds (scoring offsets on the rows they
    were fitted to would flatter them). The offsets kept are then fitted on all of dev."""
    folds = np.random.default_rng(seed).permutation(len(y_dev)) % n_folds
    crossed = np.empty(len(y_dev), dtype=np.int64)
    for fold in range(n_folds):
        held = folds == fold
        if held.any():
            _, offsets = _fit_offsets(proba[~held], y_dev[~held], k, metric, classes)
            crossed[held] = _apply_offsets(proba[held], offsets)
    name, offsets = _fit_offsets(proba, y_dev, k, metric, classes)
    options = [("none", proba.argmax(axis=1)), (f"{name} (cross-fitted on dev)", crossed)]
    chosen, tolerances, scores = _one_se_pick(options, y_dev, metric, classes, seed)
    stages.append(StageResult("decision", tuple((n, float(v)) for (n, _), v in zip(options, scores)),
                              tuple(map(float, tolerances)), options[chosen][0]))
    return offsets if chosen else None


# Baselines trained on gold labels alone (the "human" baseline on dev, the "oracle" on gold
# train): their family and C are chosen by k-fold cross-validation on those rows, since
# reusing the weak-label end model's settings undersold them (IMDB, 500 dev rows: 59.7% with
# the end model's settings, 80.1% with word 1-2 grams and C=10).
BASELINE_FOLDS = 5
BASELINE_CV_MAX_ROWS = 2_000  # the cross-validation reads a seeded subsample beyond this many rows
# "word_hashed" bounds memory at millions of rows; a baseline fits at most baseline_max_rows, and on
# few rows hashing costs accuracy: n-grams unseen in training keep a column (and the top IDF) in a
# new text's row and dilute its norm (IMDB, 500 dev rows, C=10: 74.9% hashed, 80.2% with a vocabulary)
_VOCABULARY_FOR_BASELINES = {"word_hashed": "word"}


@dataclass(frozen=True, eq=False)
class BaselineSelection:
    """A model trained on gold labels only and how it was chosen: each option's
    cross-validated score and tolerance (one standard error of its gap to the best),
    the pick, and ``rows``: how many rows the cross-validation and the final fit read."""

    model: object
    metric: str
    options: tuple[tuple[str, float], ...]
    tolerances: tuple[float, ...]
    chosen: str
    rows: dict
    dropped: dict = field(default_factory=dict)  # candidate family -> why it was not tried

    @property
    def cv_score(self) -> float:
        return dict(self.options)[self.chosen]

    def note(self) -> str:
        """One line for the evaluation table: what was chosen, how, on which rows."""
        rows = self.rows
        text = (f"{self.chosen}, chosen by {rows['folds']}-fold cross-validation on {rows['cv']:,} {rows['what']} rows "
                f"({self.metric} {self.cv_score:.3f}; the simplest option within one standard error of the best, "
                f"of {len(self.options)})")
        if rows["cv"] < rows["labelled"]:
            text += f"; the cross-validation read a seeded subsample of {rows['cv']:,} of {rows['labelled']:,} rows"
        if rows["final"] < rows["labelled"]:
            text += f"; fitted on a seeded subsample of {rows['final']:,} of {rows['labelled']:,} rows"
        return text

    def to_dict(self) -> dict:
        return {"metric": self.metric, "chosen": self.chosen, "cv_score": self.cv_score, "note": self.note(),
                "rule": "the simplest option whose cross-validated score is within one standard error of the best's "
                        "(paired bootstrap of the out-of-fold score difference)",
                "rows": dict(self.rows), "dropped_candidates": dict(self.dropped),
                "candidates": [{"name": n, "cv_score": v, "tolerance": t}
                               for (n, v), t in zip(self.options, self.tolerances)]}


def _stratified_folds(y: np.ndarray, n_folds: int, rng) -> np.ndarray:
    """(n,) fold index of each row: a seeded shuffle dealt round-robin within each class."""
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]
    folds = np.empty(len(y), dtype=np.int64)
    folds[order] = np.arange(len(y)) % n_folds
    return folds


def _ngram_blocks(vectorizer) -> list[tuple[int, int]]:
    """Column ranges of the L2-normalised TF-IDF blocks of a fitted ``vectorizer()``
    (word, character, hashed; embedding columns after them are not n-grams)."""
    ngrams = getattr(vectorizer, "ngrams", vectorizer)  # with embeddings: their n-gram part
    parts = [t for _, t in ngrams.transformer_list] if hasattr(ngrams, "transformer_list") else [ngrams]
    sizes = [len(p.vocabulary_) if hasattr(p, "vocabulary_") else p.named_steps["hash"].n_features for p in parts]
    ends = np.cumsum(sizes)
    return [(int(e - n), int(e)) for e, n in zip(ends, sizes)]


def _as_unseen(X, fit: np.ndarray, held: np.ndarray, blocks: list[tuple[int, int]]):
    """The ``held`` rows of ``X`` (features fitted on every row's text) as a vectorizer
    fitted on the ``fit`` rows alone would give them, up to IDF: n-gram columns no fit row
    has are dropped and each block rescaled to its norm before. Without this a held
    row's own n-grams, unknown to the model, dilute its norm as no new text's would (IMDB,
    500 dev rows: cross-validated accuracy 0.73 with the diluted rows, 0.78 per-fold
    vectorizers, 0.80 on test)."""
    block_of = np.full(X.shape[1], -1)  # each column's n-gram block; -1: not an n-gram (embeddings)
    for i, (start, stop) in enumerate(blocks):
        block_of[start:stop] = i
    seen = (X[fit].getnnz(axis=0) > 0) | (block_of < 0)
    rows = X[held].tocsr()
    kept = sp.csr_matrix(rows.multiply(seen.astype(np.float64)[None, :]))
    kept.eliminate_zeros()

    def block_norms(matrix):
        coo = matrix.tocoo()
        ngram = block_of[coo.col] >= 0
        squares = np.zeros((matrix.shape[0], len(blocks)))
        np.add.at(squares, (coo.row[ngram], block_of[coo.col[ngram]]), coo.data[ngram] ** 2)
        return np.sqrt(squares)

    before, after = block_norms(rows), block_norms(kept)
    scale = np.divide(before, after, out=np.ones_like(before), where=after > 0)
    coo = kept.tocoo()
    ngram = block_of[coo.col] >= 0
    coo.data[ngram] *= scale[coo.row[ngram], block_of[coo.col[ngram]]]
    return coo.tocsr()


@_one_thread
def select_baseline(
    texts: Sequence[str],
    y,
    *,
    classes: Sequence[str],
    metric: str = "accuracy",
    families: Sequence[str] = DEFAULT_FAMILIES,
    what: str = "labelled",
    embedder: str = "wordllama",
    embedding_cache=None,
    random_state: int = 0,
    n_folds: int = BASELINE_FOLDS,
    cv_max_rows: int = BASELINE_CV_MAX_ROWS,
    max_rows: int = 0,
    dropped: dict | None = None,
) -> BaselineSelection:
    """The best model ``texts`` (n,) with gold ``y`` (n,) class indices (-1 = none, left
    out) can train, its family (of ``families``) and, for the logistic-regression families,
    its ``C`` (of ``C_GRID``) chosen by ``n_folds``-fold stratified cross-validation on these
    rows alone with the one-standard-error rule toward the simplest option (families in
    the order given, then the strongest regularisation), then refitted on all rows.

    Each family's features are fitted once on the cross-validation rows' texts (no label
    is read) and shared by its folds and C values. Cost: the cross-validation reads at
    most ``cv_max_rows`` rows (a seeded subsample; 0 = all) and the final fit at most
    ``max_rows`` (0 = all). ``what`` names the rows in the note ("dev", "gold train");
    ``dropped``: families the caller left out and why, recorded. Raises
    ``LabelingError`` when the rows hold fewer than two classes, ``ConfigError`` on an
    unknown family or metric.
    """
    k, seed = len(classes), random_state
    texts, y = _texts(texts), np.asarray(y)
    if len(texts) != len(y):
        raise LabelingError(f"{len(texts)} texts for {len(y)} labels")
    keep = y >= 0
    texts = (texts[keep].reset_index(drop=True) if isinstance(texts, pd.Series)
             else [t for t, kept in zip(texts, keep) if kept])
    y = y[keep].astype(np.int64)
    if len(np.unique(y)) < 2:
        raise LabelingError(f"a baseline needs gold labels of at least two classes; the {len(y)} {what} rows hold "
                            f"{len(np.unique(y))}")
    metric_score(y, y, metric, classes)  # validates the metric
    if not families:
        raise ConfigError("no end-model candidates to select from")
    rng = np.random.default_rng(seed)
    cv_rows, final_rows = _subsample(len(texts), cv_max_rows, rng), _subsample(len(texts), max_rows, rng)
    cv_texts, cv_y = take_texts(texts, cv_rows), y if cv_rows is None else y[cv_rows]
    n_folds = max(2, min(n_folds, len(cv_y)))
    folds = _stratified_folds(cv_y, n_folds, rng)

    def model_of(family: str, C: float | None):
        model = family_model(family, k, seed, embedder)
        model.embedding_cache = embedding_cache
        if C is not None:
            model.C = C
        return model

    def out_of_fold(fit_predict) -> np.ndarray:
        """(n_cv,) predictions of each fold's rows by a model fitted on the other folds:
        ``fit_predict(fold, fit_mask, held_mask)``."""
        pred = np.empty(len(cv_y), dtype=np.int64)
        for fold in range(n_folds):
            held = folds == fold
            train_y = cv_y[~held]
            # a fold whose other folds hold one class can only predict it
            pred[held] = fit_predict(fold, ~held, held) if len(np.unique(train_y)) > 1 else train_y[0]
        return pred

    def texts_of(mask) -> list[str]:
        return take_texts(cv_texts, np.flatnonzero(mask))

    options: list[tuple[str, np.ndarray]] = []
    recipes: list[tuple[str, float | None]] = []
    shared: dict[str, tuple] = {}  # family -> (vectorizer fitted on the CV rows, their features)
    for family in dict.fromkeys(_VOCABULARY_FOR_BASELINES.get(f, f) for f in families):
        if not isinstance(family_model(family, k, seed, embedder), SklearnTextClassifier):
            options.append((family, out_of_fold(lambda fold, fit, held, family=family: model_of(family, None).fit(
                texts_of(fit), cv_y[fit]).predict_proba(texts_of(held)).argmax(axis=1))))
            recipes.append((family, None))
            continue
        # one vectorisation per family (no label read), shared by every fold and C; each fold
        # sees the held rows as its own vectorizer would (see _as_unseen)
        vectorizer = model_of(family, None).vectorizer()
        X = vectorizer.fit_transform(cv_texts)
        shared[family] = (vectorizer, X)
        blocks = _ngram_blocks(vectorizer)
        for C in C_GRID:
            options.append((f"{family} C={C:g}", out_of_fold(
                lambda fold, fit, held, C=C, family=family, vectorizer=vectorizer, X=X, blocks=blocks:
                model_of(family, C).fit_features(vectorizer, X[fit], cv_y[fit]).predict_proba_features(
                    _as_unseen(X, fit, held, blocks)).argmax(axis=1))))
            recipes.append((family, C))
    chosen, tolerances, scores = _one_se_pick(options, cv_y, metric, classes, seed)
    final_texts, final_y = take_texts(texts, final_rows), y if final_rows is None else y[final_rows]
    family, C = recipes[chosen]
    if cv_rows is None and final_rows is None and family in shared:  # the CV rows are all rows: reuse their features
        model = model_of(family, C).fit_features(*shared[family], y)
    else:
        model = model_of(family, C).fit(final_texts, final_y)
    rows = {"what": what, "labelled": len(y), "cv": len(cv_y), "folds": n_folds, "final": len(final_y)}
    return BaselineSelection(model, metric, tuple((n, float(v)) for (n, _), v in zip(options, scores)),
                             tuple(map(float, tolerances)), options[chosen][0], rows, dict(dropped or {}))
