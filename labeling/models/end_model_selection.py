"""Choose the end model on dev only: a few small stages, each a one-standard-error pick.

The end model is trained on weak labels (the label model's probabilities on the train
rows some LF covers) and scored on the labelled dev rows with the project's metric.
Test labels are never an input here. The choice runs in stages, each starting from the
previous stage's pick and listing its simplest option first:

1. ``family``: features and classifier (``end_model.candidates``): character n-grams
   (C=1 or C=10), word n-grams, word + character n-grams, word + character n-grams +
   sentence embeddings, sentence embeddings alone, an MLP over embeddings + n-grams.
2. ``labels``: soft labels (probability weights), hard (argmax) labels, or soft labels
   with the least confident 30% of rows cut.
3. ``class_weight``: none, or "balanced" weights from the weak labels' class mass.
4. ``self_training``: 0, 1 or 2 rounds of adding the train rows no LF covers, labelled
   by the current model where it is confident (p >= 0.9), and refitting.
5. ``decision``: no offsets, or class offsets fitted on dev (two classes: the decision
   threshold on the positive class; more: a prior correction toward dev's class mix),
   scored by 5-fold cross-fitting on dev since they are fitted to dev labels.

Within a stage the pick is the earliest option whose dev score is within one standard
error of the best, the standard error of the *difference* between the two options'
scores over 200 paired bootstrap resamples of the dev rows (seeded): a dev set cannot
tell apart closer scores, so the simpler option stays. The difference's error, not one
score's: two options scored on the same rows mostly agree, and the error of one score
(about 0.03 on 100-200 rows) exceeded nearly every gap between options on our dev
sets, so every later stage kept its first option whatever dev said. Every option's dev score
is kept in the result (``EndModelSelection.to_dict``), which the run records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError, LabelingError
from .end_models import WORD_AND_CHAR, SklearnTextClassifier, TorchTextClassifier, soft_targets

__all__ = ["DEFAULT_FAMILIES", "FAMILIES", "EndModelSelection", "StageResult", "bootstrap_se", "metric_score",
           "paired_se", "select_end_model"]

CONFIDENCE_CUT = 0.3  # "confident" labels drop this share of the least confident rows
SELF_TRAINING_CONFIDENCE = 0.9
N_BOOTSTRAP = 200


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


def _family(name: str, k: int, seed: int, embedder: str):
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
    if name == "embedding":
        return TorchTextClassifier(k, ngrams=False, embedder=embedder, hidden=0, epochs=100, lr=0.02,
                                   batch_size=64, patience=5, random_state=seed)
    if name == "mlp":
        return TorchTextClassifier(k, analyzer="word", ngram_min=1, ngram_max=2, max_features=50_000,
                                   embedder=embedder, hidden=64, epochs=30, lr=0.003, batch_size=64,
                                   patience=3, random_state=seed)
    raise ConfigError(f"unknown end-model candidate {name!r}; expected one of {FAMILIES}")


FAMILIES = ("char_wb", "char_wb_C10", "word", "word_char", "word_char_emb", "embedding", "mlp")
DEFAULT_FAMILIES = ("word", "word_char", "word_char_emb", "embedding")


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
    """The fitted pick and how it was reached. ``settings``: the option chosen per stage."""

    model: object
    metric: str
    stages: tuple[StageResult, ...]
    settings: dict
    dev_score: float

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "dev_score": self.dev_score, "settings": dict(self.settings),
            "rule": "per stage, the simplest option whose dev score is within one standard error of the best's "
                    "(paired bootstrap of the score difference)",
            "stages": [{"stage": s.stage, "chosen": s.chosen,
                        "candidates": [{"name": n, "dev_score": v, "tolerance": t}
                                       for (n, v), t in zip(s.options, s.tolerances)]} for s in self.stages],
        }


@dataclass(frozen=True)
class _Recipe:
    """How to train one option: family, label treatment, class weights, self-training."""

    family: str
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
) -> EndModelSelection:
    """Fit and choose an end model on dev only (see the module docstring).

    ``texts`` (n,) training texts with ``soft_labels`` (n, k) weak labels and optional
    ``sample_weight`` (n,) (gold rows may weigh more); ``dev_texts`` (m,) with gold
    ``y_dev`` (m,) class indices, the only labels read; ``unlabelled_texts``: train rows
    no LF covers, for self-training. Raises ``LabelingError`` on empty dev or bad labels,
    ``ConfigError`` on an unknown family or metric.
    """
    k = len(classes)
    texts, dev_texts = list(texts), list(dev_texts)
    unlabelled = list(unlabelled_texts)
    targets = soft_targets(soft_labels, k)
    weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    y_dev = np.asarray(y_dev)
    labelled = y_dev >= 0
    dev_texts, y_dev = [t for t, keep in zip(dev_texts, labelled) if keep], y_dev[labelled]
    metric_score(y_dev, y_dev, metric, classes)  # validates the metric and that dev is not empty
    if not families:
        raise ConfigError("no end-model candidates to select from")
    seed = random_state

    def fit(recipe: _Recipe, base=None):
        """Train ``recipe``; self-training rounds continue from ``base`` (the previous round)."""
        model = _family(recipe.family, k, seed, embedder)
        model.embedding_cache = embedding_cache
        t, w, x = targets, weights, texts
        if recipe.labels == "hard":
            t = np.eye(k)[targets.argmax(axis=1)]
        elif recipe.labels == "confident":
            confidence = targets.max(axis=1)
            keep = confidence >= np.quantile(confidence, CONFIDENCE_CUT)
            t, w, x = t[keep], w[keep], [s for s, kept in zip(x, keep) if kept]
        if recipe.class_weight == "balanced":
            mass = t.sum(axis=0)
            per_class = np.divide(len(t), k * mass, out=np.zeros(k), where=mass > 0)
            w = w * (t @ per_class)
        if recipe.self_training and base is not None and unlabelled:
            proba = base.predict_proba(unlabelled)
            sure = proba.max(axis=1) >= SELF_TRAINING_CONFIDENCE
            x = x + [s for s, ok in zip(unlabelled, sure) if ok]
            t = np.vstack([t, np.eye(k)[proba[sure].argmax(axis=1)]])
            w = np.concatenate([w, np.ones(int(sure.sum()))])
        return model.fit(x, t, sample_weight=w)

    stages: list[StageResult] = []

    def run_stage(name: str, recipes: list[_Recipe], labels: list[str], models: list | None = None):
        fitted = models or []
        for i, recipe in enumerate(recipes):
            if i >= len(fitted):
                if progress:
                    progress(f"end model {name}: {labels[i]}")
                fitted.append(fit(recipe))
        preds = [m.predict(dev_texts) for m in fitted]
        chosen, tolerances, scores = _one_se_pick(list(zip(labels, preds)), y_dev, metric, classes, seed)
        stages.append(StageResult(name, tuple(zip(labels, map(float, scores))), tuple(map(float, tolerances)),
                                  labels[chosen]))
        return recipes[chosen], fitted[chosen]

    recipe, model = run_stage("family", [_Recipe(f) for f in families], list(families))
    recipe, model = run_stage("labels", [recipe, replace(recipe, labels="hard"), replace(recipe, labels="confident")],
                              ["soft", "hard", f"confident (least {CONFIDENCE_CUT:.0%} cut)"], [model])
    recipe, model = run_stage("class_weight", [recipe, replace(recipe, class_weight="balanced")],
                              ["none", "balanced"], [model])
    if unlabelled:
        chain = [model]
        for rounds in (1, 2):
            if progress:
                progress(f"end model self_training: {rounds} round(s)")
            # round r: the rows round r-1's model is confident on, labelled by it
            chain.append(fit(replace(recipe, self_training=1), base=chain[-1]))
        recipe, model = run_stage("self_training", [recipe, replace(recipe, self_training=1),
                                                    replace(recipe, self_training=2)], ["0", "1", "2"], chain)
    offsets = _decision_offsets(model, dev_texts, y_dev, k, metric, classes, seed, stages)
    if offsets is not None:
        model.class_offsets = offsets
    settings = {"family": recipe.family, "labels": recipe.labels, "class_weight": recipe.class_weight,
                "self_training": recipe.self_training, "decision": stages[-1].chosen}
    dev_score = metric_score(y_dev, model.predict(dev_texts), metric, classes)
    return EndModelSelection(model, metric, tuple(stages), settings, dev_score)


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


def _decision_offsets(model, dev_texts, y_dev, k, metric, classes, seed, stages, n_folds: int = 5) -> tuple | None:
    """Pick class offsets on dev (the ``decision`` stage); None keeps the model as it is.

    Offsets are fitted to dev labels, so their dev score is cross-fitted: each fold's
    predictions use offsets fitted on the other folds (scoring offsets on the rows they
    were fitted to would flatter them). The offsets kept are then fitted on all of dev."""
    proba = model.predict_proba(dev_texts)
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
