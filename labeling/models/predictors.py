"""The served predictor: which of the run's models answers a text, chosen on dev.

A run trains two models that can label a text: the end model (reads the text) and the
label model (reads the row's LF votes). Where the LFs are good and cover most rows the
label model can beat the end model (the YouTube example: label model 95.1%, end model
93.8% on test); elsewhere the end model generalises past the LFs. The candidates:

- ``label_model_backoff``: the label model's probabilities on a row some LF votes on, the
  end model's elsewhere (the standard "backoff" of a weak-supervision system to its
  classifier on rows the LFs do not cover); a tie of the label model is broken by the end
  model. Needs the row's LF votes.
- ``end_model``: the end model's probabilities. Needs the text only.
- ``blend``: on covered rows ``(1 - w) * label model + w * end model`` with ``w`` in
  ``BLEND_WEIGHTS`` (fitted on dev), the end model elsewhere: a linear pool of the two.
  Needs the row's LF votes.

Every function here is pure over arrays: ``end_proba`` (n, k) and ``lm_proba`` (n, k)
class probabilities and ``L`` (n, m) LF votes (-1 abstains). Retrain's evaluation and the
server call the same ``predict_proba``, so what is evaluated is what is served.

Which candidate is "simplest", for the one-SE rule (``TIE_ORDER``), was derived on dev
alone, from two arguments that read no test score:

1. Parameters fitted on dev, the complexity measure: the end model and the label model
   are trained on train (their settings chosen on dev, as every model's), so
   ``end_model`` and ``label_model_backoff`` fit none on dev; ``blend`` fits its weight
   there (``fit_predictor``). So ``blend`` comes last.
2. Between the two that fit none, a dev-only study (``benchmarks/end_models.py``, the
   "tie order study"): on each data set, 100 seeded stratified halvings of the labelled
   dev rows; the rule runs on one half with each of the six orders and the predictor it
   serves is scored on the other half. Held-out dev accuracy (sms: F1 of spam), with the
   blend last, end model first vs backoff first: YouTube example 94.18 vs 94.18 (the
   three agree on every dev row: the order decides nothing there), WRENCH youtube 92.30
   vs 90.55, sms 94.38 vs 94.38, trec 61.64 vs 60.99, semeval 86.37 vs 85.44, IMDB 83.51
   vs 83.24; the mean over the six (each weighs the same) is ``TIE_STUDY``, where the end
   model first is also the best of all six orders (85.40 vs 84.80). The end model also
   reads only the text (no LFs on the request path).

So ``TIE_ORDER`` is ``end_model``, ``label_model_backoff``, ``blend``. An earlier order
(the backoff first) had been set after seeing the YouTube example's test scores; this one
replaces it, and the example now serves its end model on a dev tie (the summary says so
and why). A project that wants the backoff pins it (``serving.predictor``). Caveat: the
held-out halves are not independent of the end model's and label model's own settings,
which were chosen on all of dev.

``select_predictor`` scores the candidates on dev by cross-fitting (``blend``'s weight is
fitted on the other folds of each held-out fold) and keeps the simplest within one
standard error (paired bootstrap, ``end_model_selection.paired_se``) of the best, in
``project.metric``; ``serving.predictor`` pins one instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, LabelingError
from ..matrix import ABSTAIN
from .end_model_selection import metric_score, paired_se

__all__ = ["BLEND_WEIGHTS", "NEEDS_LFS", "PREDICTORS", "TIE_ORDER", "TIE_STUDY", "PredictorSelection", "covered_rows",
           "fit_predictor", "predict", "predict_proba", "select_predictor"]

PREDICTORS = ("label_model_backoff", "end_model", "blend")  # the names serving.predictor takes
# simplest first: the one-SE rule's order on a tie, derived on dev alone (module docstring)
TIE_ORDER = ("end_model", "label_model_backoff", "blend")
# the tie order study's held-out dev score of each order, the mean over the YouTube example, WRENCH
# youtube, sms, trec, semeval and IMDB (benchmarks/end_models.py, dev rows only; per data set in the docstring)
TIE_STUDY: dict[tuple[str, ...], float] = {
    ("end_model", "label_model_backoff", "blend"): 0.85396,
    ("end_model", "blend", "label_model_backoff"): 0.85396,
    ("blend", "end_model", "label_model_backoff"): 0.85164,
    ("blend", "label_model_backoff", "end_model"): 0.85072,
    ("label_model_backoff", "end_model", "blend"): 0.84796,
    ("label_model_backoff", "blend", "end_model"): 0.84784,
}
NEEDS_LFS = {"end_model": False, "label_model_backoff": True, "blend": True}
# the end model's weight in a blend; 0 and 1 are the other two candidates
BLEND_WEIGHTS = tuple(round(w, 1) for w in np.linspace(0.1, 0.9, 9))
# a label-model tie (e.g. one LF for each class) is broken by the end model: its
# probabilities enter with this weight, too small to move any prediction that is not a tie
TIE_WEIGHT = 1e-4
FOLDS = 5


def covered_rows(L) -> np.ndarray:
    """(n,) bool: the rows at least one LF votes on."""
    L = np.asarray(L)
    return (L != ABSTAIN).any(axis=1) if L.ndim == 2 and L.shape[1] else np.zeros(len(L), dtype=bool)


def _check(end_proba, lm_proba, L) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    end_proba, lm_proba = np.asarray(end_proba, dtype=np.float64), np.asarray(lm_proba, dtype=np.float64)
    L = np.asarray(L)
    if end_proba.ndim != 2 or end_proba.shape != lm_proba.shape or L.ndim != 2 or len(L) != len(end_proba):
        raise LabelingError(f"predictor inputs disagree: end-model probabilities {end_proba.shape}, label-model "
                            f"probabilities {lm_proba.shape}, LF votes {L.shape}; expected (n, k), (n, k), (n, m)")
    return end_proba, lm_proba, L


def predict_proba(name: str, end_proba, lm_proba, L, params: Mapping | None = None) -> np.ndarray:
    """(n, k) class probabilities of predictor ``name`` (one of ``PREDICTORS``).

    ``params``: what ``fit_predictor`` returned (``{"weight": w}`` for ``blend``).
    Raises ``ConfigError`` for an unknown name, ``LabelingError`` for shapes that disagree."""
    end_proba, lm_proba, L = _check(end_proba, lm_proba, L)
    if name == "end_model":
        return end_proba
    if name not in PREDICTORS:
        raise ConfigError(f"unknown predictor {name!r}: expected one of {', '.join(PREDICTORS)}")
    weight = TIE_WEIGHT if name == "label_model_backoff" else float((params or {}).get("weight", 0.5))
    pooled = (1.0 - weight) * lm_proba + weight * end_proba
    return np.where(covered_rows(L)[:, None], pooled, end_proba)


def predict(name: str, end_proba, lm_proba, L, params: Mapping | None = None) -> np.ndarray:
    """(n,) predicted class indices of ``predict_proba`` (argmax; the lowest index on exact ties)."""
    return predict_proba(name, end_proba, lm_proba, L, params).argmax(axis=1)


def fit_predictor(name: str, end_proba, lm_proba, L, y, *, metric: str, classes: Sequence[str]) -> dict:
    """The parameters of predictor ``name`` fitted on labelled rows ``y`` (n,) (-1 rows are
    ignored): ``blend``'s weight is the one of ``BLEND_WEIGHTS`` scoring best in ``metric``
    (the smallest on ties); the others have none (``{}``)."""
    if name != "blend":
        return {}
    y = np.asarray(y)
    keep = y >= 0
    if not keep.any():
        return {"weight": 0.5}
    end_proba, lm_proba, L = (np.asarray(a)[keep] for a in (end_proba, lm_proba, L))
    scores = [metric_score(y[keep], predict("blend", end_proba, lm_proba, L, {"weight": w}), metric, classes)
              for w in BLEND_WEIGHTS]
    return {"weight": BLEND_WEIGHTS[int(np.argmax(scores))]}


@dataclass(frozen=True)
class PredictorSelection:
    """Which predictor is served and why.

    ``name``/``params``: what ``predict_proba`` is called with; ``needs_lfs``: whether it
    reads LF votes; ``candidates``: each candidate's cross-fitted dev score and the SE of
    its difference from the best; ``rule``: the decision in words."""

    name: str
    params: dict
    needs_lfs: bool
    metric: str
    rule: str
    pinned: bool = False
    folds: int = 0
    dev_rows: int = 0
    candidates: tuple[dict, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"predictor": self.name, "params": dict(self.params), "needs_lfs": self.needs_lfs,
                "metric": self.metric, "rule": self.rule, "pinned": self.pinned, "folds": self.folds,
                "dev_rows": self.dev_rows, "candidates": [dict(c) for c in self.candidates]}


def _folds(y: np.ndarray, n_folds: int, random_state: int) -> np.ndarray:
    """(n,) fold of each row: stratified by class where every class has ``n_folds`` rows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=random_state) if counts[counts > 0].min() >= n_folds
                else KFold(n_folds, shuffle=True, random_state=random_state))
    folds = np.empty(len(y), dtype=np.int64)
    for i, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
        folds[held] = i
    return folds


def cross_fitted(name: str, end_proba, lm_proba, L, y, folds: np.ndarray, *, metric: str,
                 classes: Sequence[str]) -> np.ndarray:
    """(n,) out-of-fold predictions of ``name``: each fold predicted with parameters fitted on the others."""
    pred = np.empty(len(y), dtype=np.int64)
    for f in np.unique(folds):
        held = folds == f
        params = fit_predictor(name, end_proba[~held], lm_proba[~held], L[~held], y[~held], metric=metric,
                               classes=classes)
        pred[held] = predict(name, end_proba[held], lm_proba[held], L[held], params)
    return pred


def select_predictor(end_proba, lm_proba, L, y, *, classes: Sequence[str], metric: str = "accuracy",
                     pinned: str = "auto", n_folds: int = FOLDS, random_state: int = 0,
                     order: Sequence[str] = TIE_ORDER) -> PredictorSelection:
    """Choose the served predictor on dev: ``end_proba``, ``lm_proba`` (n, k) and ``L`` (n, m)
    of the dev rows, ``y`` (n,) their gold classes (-1 = none, left out).

    Each candidate is scored in ``metric`` on out-of-fold predictions (``n_folds``-fold
    cross-fitting, seeded); the simplest candidate (first in ``order``, by default
    ``TIE_ORDER``; another order of ``PREDICTORS`` for the tie order study) within one standard error
    of the best is chosen. ``pinned`` (``serving.predictor``) other than
    "auto" is served whatever the scores (which are still reported). With fewer labelled
    rows than ``2 * n_folds`` ``blend`` is not scored; with none, the end model is served.
    The parameters served are refitted on every labelled dev row. Raises ``ConfigError``
    for an unknown ``pinned``."""
    if pinned != "auto" and pinned not in PREDICTORS:
        raise ConfigError(f"serving.predictor = {pinned!r}: expected 'auto' or one of {', '.join(PREDICTORS)}")
    if sorted(order) != sorted(PREDICTORS):
        raise ConfigError(f"predictor order {list(order)}: expected a permutation of {', '.join(PREDICTORS)}")
    end_proba, lm_proba, L = _check(end_proba, lm_proba, L)
    y = np.asarray(y)
    keep = y >= 0
    end_proba, lm_proba, L, y = end_proba[keep], lm_proba[keep], L[keep], y[keep]
    n = len(y)
    names = [p for p in order if p != "blend" or n >= 2 * n_folds]
    if not n:
        name = "end_model" if pinned == "auto" else pinned
        return PredictorSelection(name, {"weight": 0.5} if name == "blend" else {}, NEEDS_LFS[name], metric,
                                  "pinned by serving.predictor; no labelled dev rows to score it" if pinned != "auto"
                                  else "no labelled dev rows to compare predictors on: the end model is served",
                                  pinned=pinned != "auto")
    folds = _folds(y, n_folds, random_state) if n >= 2 * n_folds else np.zeros(n, dtype=np.int64)
    preds = {name: cross_fitted(name, end_proba, lm_proba, L, y, folds, metric=metric, classes=classes)
             for name in names}
    scores = {name: metric_score(y, pred, metric, classes) for name, pred in preds.items()}
    best = max(names, key=lambda name: scores[name])
    tolerance = {name: paired_se(y, preds[best], preds[name], metric, classes, random_state) for name in names}
    auto = next(name for name in names if scores[name] >= scores[best] - tolerance[name] - 1e-12)
    candidates = tuple({"name": name, "dev_score": scores[name], "tolerance": tolerance[name],
                        "needs_lfs": NEEDS_LFS[name]} for name in names)
    cv = f"{len(np.unique(folds))}-fold cross-fitted" if n >= 2 * n_folds else "unfitted"
    if pinned != "auto":
        name = pinned
        rule = (f"pinned by serving.predictor = {pinned!r} (the rule would choose {auto!r}: {metric} on dev "
                f"{scores[auto]:.3f})")
    else:
        name = auto
        where = f"on {n} dev rows, {cv}"
        if auto == best and auto != names[0]:
            rule = (f"{auto!r}: the best ({metric} {scores[auto]:.3f} {where}); every simpler candidate scores more "
                    "than one standard error below it")
        elif auto == best:
            rule = (f"{auto!r}: the simplest candidate, and none scores above it ({metric} {scores[auto]:.3f} "
                    f"{where})")
        else:
            rule = (f"{auto!r}: the simplest within one standard error of the best ({best!r}, {metric} "
                    f"{scores[best]:.3f} vs {scores[auto]:.3f} {where})")
    params = fit_predictor(name, end_proba, lm_proba, L, y, metric=metric, classes=classes)
    return PredictorSelection(name, params, NEEDS_LFS[name], metric, rule, pinned=pinned != "auto",
                              folds=len(np.unique(folds)), dev_rows=n, candidates=candidates)
