"""Multi-label label models: votes (n, m, k) -> P(class present) (n, k) -> label sets.

Every model has ``fit(T, Y=None)``, ``predict_proba(T)`` ((n, k) in [0, 1], each class on
its own), ``fit_thresholds(T_dev, Y_dev)`` (per-class decision thresholds chosen on dev)
and ``predict(T)`` ((n, k) 0/1). ``T`` is ``votes.decode_votes``'s tensor; ``Y`` is
(n, k) 0/1 with -1 rows unlabelled.

- ``MultiLabelMajorityVote``: Argilla 1.x's rule (argilla #983): every class with more
  yes than no votes. No thresholds.
- ``PerClassLabelModel``: one binary single-label model per class (skweak's
  ``[NOT label, label]``) over the LFs that vote on that class, an LF silent on a row
  saying "not c" there: weighted majority vote, Dawid-Skene or Snorkel's LabelModel
  (``labeling.models.label_models``). Snorkel needs 3 LFs of a class: a class with fewer
  falls back to Dawid-Skene, listed in ``fallbacks_``.
- ``ExclusiveLabelModel``: the classes declared mutually exclusive: yes votes become a
  single-label matrix, a single-label model gives P over classes, a row gets its top
  class (if above that class's threshold). On rows with one gold class each, with the
  single-label pipeline's votes and tie-break, it predicts what that pipeline predicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ArtifactError, ConfigError, NotFittedError
from ..matrix import ABSTAIN
from ..models.label_models import (
    DawidSkene,
    MajorityVote,
    SnorkelLabelModel,
    WeightedMajorityVote,
    label_model_from_dict,
    probs_to_preds,
)
from .votes import NO, YES, class_matrix

__all__ = ["BASES", "ExclusiveLabelModel", "MultiLabelMajorityVote", "PerClassLabelModel", "choose_thresholds",
           "dawid_skene_per_class", "multilabel_label_model_from_dict"]

BASES = ("majority_vote", "weighted_mv", "dawid_skene", "snorkel")
DEFAULT_THRESHOLD = 0.5


def choose_thresholds(P, Y, *, default: float = DEFAULT_THRESHOLD, max_candidates: int = 256) -> np.ndarray:
    """Per class, the threshold t (predict ``P >= t``) that maximizes F1 on the labelled rows of ``Y``.

    Candidates are the class's distinct probabilities (at most ``max_candidates``
    quantiles of them); among equal F1s the highest t wins (fewer false positives).
    A class absent from ``Y`` keeps ``default``. Returns (k,) floats."""
    P, Y = np.asarray(P, dtype=np.float64), np.asarray(Y)
    keep = Y[:, 0] >= 0
    P, Y = P[keep], Y[keep]
    out = np.full(P.shape[1], default)
    for c in range(P.shape[1]):
        y = Y[:, c] == 1
        if not y.any():
            continue
        cands = np.unique(P[:, c])
        if len(cands) > max_candidates:
            cands = np.unique(np.quantile(P[:, c], np.linspace(0, 1, max_candidates)))
        pred = P[:, c][None, :] >= cands[:, None]
        tp = (pred & y).sum(axis=1)
        f1 = 2 * tp / np.maximum(pred.sum(axis=1) + y.sum(), 1)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        out[c] = float(cands[best[-1]])
    return out


class _MultiLabelModel:
    _learned: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._params}

    def _check_fitted(self) -> None:
        if not hasattr(self, "cardinality_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(T) first")

    def fit_thresholds(self, T_dev, Y_dev) -> _MultiLabelModel:
        """Per-class thresholds chosen on dev (``choose_thresholds``); returns self."""
        self.thresholds_ = choose_thresholds(self.predict_proba(T_dev), Y_dev)
        return self

    def predict(self, T) -> np.ndarray:
        P = self.predict_proba(T)
        thresholds = getattr(self, "thresholds_", np.full(P.shape[1], DEFAULT_THRESHOLD))
        return (P >= thresholds).astype(np.int8)

    def to_dict(self) -> dict:
        self._check_fitted()
        learned = {"cardinality_": self.cardinality_, **self._learned_dict()}
        if hasattr(self, "thresholds_"):
            learned["thresholds_"] = np.asarray(self.thresholds_).tolist()
        return {"type": type(self).__name__, "params": self.get_params(), "learned": learned}

    def _learned_dict(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


def _check_T(T) -> np.ndarray:
    T = np.asarray(T)
    if T.ndim != 3:
        raise ConfigError(f"the vote tensor must be 3-D (rows x LFs x classes), got shape {T.shape}")
    return T


class MultiLabelMajorityVote(_MultiLabelModel):
    """Every class with more yes than no votes (Argilla's multi-label rule).

    ``predict_proba``: yes / (yes + no) per class, 0 where no LF votes on it."""

    _params = ("random_state",)

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, T, Y=None) -> MultiLabelMajorityVote:
        self.cardinality_ = _check_T(T).shape[2]
        return self

    def predict_proba(self, T) -> np.ndarray:
        self._check_fitted()
        T = _check_T(T)
        yes, no = (T == YES).sum(axis=1), (T == NO).sum(axis=1)
        return np.where(yes + no > 0, yes / np.maximum(yes + no, 1), 0.0)

    def fit_thresholds(self, T_dev, Y_dev) -> MultiLabelMajorityVote:
        return self  # the rule is fixed: more yes than no

    def predict(self, T) -> np.ndarray:
        T = _check_T(T)
        self._check_fitted()
        return ((T == YES).sum(axis=1) > (T == NO).sum(axis=1)).astype(np.int8)


def _ds_entries(T: np.ndarray, lfs_mask: np.ndarray):
    """The non-abstain votes of ``T`` as flat arrays: row, (class, LF) cell, outcome (1 no, 2 yes)."""
    i, j, c = np.nonzero(T != ABSTAIN)
    k, m = lfs_mask.shape
    return i, c * m + j, T[i, j, c].astype(np.int64) + 1


def _ds_log_odds(n: int, entries, log_prior: np.ndarray, log_conf: np.ndarray, lfs_mask: np.ndarray) -> np.ndarray:
    """(n, k) log P(class c present | votes) - log P(absent | votes) under per-class
    Dawid-Skene parameters ``log_prior`` (k, 2), ``log_conf`` (k, m, 2, 3) (outcome 0 =
    abstain). Every row starts from "all of the class's LFs abstain"; each vote then adds
    its outcome's log-likelihood over the abstain one, so the cost is the number of votes."""
    i, cell, outcome = entries
    k, m = lfs_mask.shape
    diff = log_conf[:, :, 1] - log_conf[:, :, 0]                     # y=1 minus y=0, (k, m, 3)
    base = log_prior[:, 1] - log_prior[:, 0] + np.where(lfs_mask, diff[:, :, 0], 0.0).sum(axis=1)
    gain = (diff - diff[:, :, :1]).reshape(k * m, 3)[cell, outcome]
    return base[None, :] + np.bincount(i * k + cell // m, weights=gain, minlength=n * k).reshape(n, k)


def dawid_skene_per_class(T, *, max_iter: int = 100, tol: float = 1e-6, smoothing: float = 1.0):
    """Per-class binary Dawid-Skene (``DawidSkene(2)`` on ``class_matrix(T, c, silent_as_no=False)``
    for every class), fitted by one EM over all k classes at once.

    Same start (binary majority-vote posteriors), updates, smoothing and per-class stopping
    rule (a class stops when its posteriors move less than ``tol``) as k separate fits,
    but each step is a few ``bincount``s over the votes, not k dense (n, m_c * 3) products:
    O(votes + n k) per step. ``T`` (n, m, k) in {1 yes, 0 no, -1 abstain}. Returns ``(models,
    lfs)``: per class a fitted ``DawidSkene(2)`` over its LFs (None where no LF votes on
    it) and those LF columns. Source: Dawid & Skene (1979)."""
    T = _check_T(T)
    n, m, k = T.shape
    lfs_mask = (T != ABSTAIN).any(axis=0).T                           # (k, m): LF j votes on class c
    entries = _ds_entries(T, lfs_mask)
    i, cell, outcome = entries
    flat = i * k + cell // m
    yes = np.bincount(flat, weights=outcome == 2, minlength=n * k).reshape(n, k)
    no = np.bincount(flat, weights=outcome == 1, minlength=n * k).reshape(n, k)
    post = np.where(yes + no > 0, yes / np.maximum(yes + no, 1), 0.5)   # binary majority vote
    prior = np.zeros((k, 2))
    conf = np.zeros((k, m, 2, 3))
    n_iter = np.zeros(k, dtype=np.int64)
    active = lfs_mask.any(axis=1)
    for step in range(1, max_iter + 1):
        if not active.any():
            break
        mass = np.stack([1 - post, post], axis=2)                      # (n, k, 2)
        totals = mass.sum(axis=0)                                      # (k, 2)
        step_prior = (totals + smoothing) / (n + 2 * smoothing)
        counts = np.zeros((k * m, 3, 2))
        for o in (1, 2):
            sel = outcome == o
            for y in (0, 1):
                counts[:, o, y] = np.bincount(cell[sel], weights=mass[i[sel], cell[sel] // m, y], minlength=k * m)
        counts = counts.reshape(k, m, 3, 2).transpose(0, 1, 3, 2)      # (k, m, y, outcome)
        counts[..., 0] = totals[:, None, :] - counts[..., 1] - counts[..., 2]
        counts = np.maximum(counts, 0) + smoothing
        step_conf = counts / counts.sum(axis=3, keepdims=True)
        updated = 1 / (1 + np.exp(-_ds_log_odds(n, entries, np.log(step_prior), np.log(step_conf), lfs_mask)))
        change = np.abs(updated - post).max(axis=0) if n else np.zeros(k)
        prior[active], conf[active], n_iter[active] = step_prior[active], step_conf[active], step
        post[:, active] = updated[:, active]
        active &= change >= tol
    models, lfs = [], []
    for c in range(k):
        cols = np.flatnonzero(lfs_mask[c])
        lfs.append(cols)
        if not len(cols):
            models.append(None)
            continue
        model = DawidSkene(2, max_iter=max_iter, tol=tol, smoothing=smoothing)
        model.class_prior_ = np.ascontiguousarray(prior[c])
        model.confusion_ = np.ascontiguousarray(conf[c, cols])
        model.n_iter_, model.n_lfs_ = int(n_iter[c]), len(cols)
        models.append(model)
    return models, lfs


def _binary_model(base: str, params: dict, random_state: int):
    if base == "majority_vote":
        return MajorityVote(2, random_state=random_state)
    if base == "weighted_mv":
        return WeightedMajorityVote(2, smoothing=params.get("smoothing", 10.0), random_state=random_state)
    if base == "dawid_skene":
        return DawidSkene(2, random_state=random_state)
    if base == "snorkel":
        return SnorkelLabelModel(2, n_epochs=params.get("n_epochs", 100), lr=params.get("lr", 0.01),
                                 l2=params.get("l2", 0.0), random_state=random_state)
    raise ConfigError(f"unknown per-class label model {base!r}; expected one of {BASES}")


class PerClassLabelModel(_MultiLabelModel):
    """One binary label model per class over the LFs that vote on it (see the module docstring).

    ``base``: one of ``BASES``; ``n_epochs``/``lr``/``l2``: Snorkel's; ``smoothing``: the
    weighted vote's. A class no LF votes on gets P = 0. Learned: ``models_`` (k fitted
    binary models or None), ``lfs_`` (each class's LF columns), ``fallbacks_`` ({class
    index: why its model is not ``base``})."""

    _params = ("base", "n_epochs", "lr", "l2", "smoothing", "random_state")
    fits_to_labels_bases = ("weighted_mv",)

    def __init__(self, base: str = "dawid_skene", n_epochs: int = 100, lr: float = 0.01, l2: float = 0.0,
                 smoothing: float = 10.0, random_state: int = 0):
        self.base, self.n_epochs, self.lr, self.l2 = base, n_epochs, lr, l2
        self.smoothing, self.random_state = smoothing, random_state

    @property
    def fits_to_labels(self) -> bool:
        return self.base in self.fits_to_labels_bases

    def fit(self, T, Y=None) -> PerClassLabelModel:
        T = _check_T(T)
        if self.base not in BASES:
            raise ConfigError(f"unknown per-class label model {self.base!r}; expected one of {BASES}")
        k = T.shape[2]
        self.models_, self.lfs_, self.fallbacks_ = [], [], {}
        if self.base == "dawid_skene":
            models, lfs = dawid_skene_per_class(T)
            self.models_, self.lfs_ = models, [cols.tolist() for cols in lfs]
            self.fallbacks_ = {c: "no LF votes on this class: never predicted" for c, m in enumerate(models) if m is None}
            self.cardinality_ = k
            return self
        for c in range(k):
            L_c, lfs = class_matrix(T, c, silent_as_no=self.base != "dawid_skene")
            self.lfs_.append(lfs.tolist())
            if not len(lfs):
                self.models_.append(None)
                self.fallbacks_[c] = "no LF votes on this class: never predicted"
                continue
            base = self.base
            y = None
            if base == "snorkel" and len(lfs) < 3:
                base = "dawid_skene"
                self.fallbacks_[c] = f"{len(lfs)} LF(s) vote on it; Snorkel's LabelModel needs 3: Dawid-Skene instead"
                L_c, _ = class_matrix(T, c, silent_as_no=False)
            if base == "weighted_mv":
                y = None if Y is None else np.where(np.asarray(Y)[:, 0] >= 0, np.asarray(Y)[:, c], ABSTAIN)
                if y is None or not ((y >= 0).any() and len(np.unique(y[y >= 0])) == 2):
                    base, y = "majority_vote", None
                    self.fallbacks_[c] = "no labelled rows of both kinds to weigh the LFs: majority vote instead"
            model = _binary_model(base, self.get_params(), self.random_state)
            self.models_.append(model.fit(L_c, y) if y is not None else model.fit(L_c))
        self.cardinality_ = k
        return self

    def predict_proba(self, T) -> np.ndarray:
        self._check_fitted()
        T = _check_T(T)
        P = np.zeros((T.shape[0], self.cardinality_))
        for c, (model, lfs) in enumerate(zip(self.models_, self.lfs_)):
            if model is None:
                continue
            L_c = T[:, lfs, c].astype(np.int64)
            if not isinstance(model, DawidSkene):
                L_c[L_c == ABSTAIN] = NO
            P[:, c] = model.predict_proba(L_c)[:, 1]
        return P

    def _learned_dict(self) -> dict:
        return {"models_": [None if m is None else m.to_dict() for m in self.models_], "lfs_": self.lfs_,
                "fallbacks_": {str(c): why for c, why in self.fallbacks_.items()}}


def single_label_matrix(T: np.ndarray) -> np.ndarray:
    """Yes votes as a single-label (n, m) matrix: an LF's class where it says yes to
    exactly one class, else ABSTAIN (its no votes and multi-class yes votes say nothing
    a single-label model can read)."""
    yes = T == YES
    one = yes.sum(axis=2) == 1
    return np.where(one, yes.argmax(axis=2), ABSTAIN).astype(np.int64)


class ExclusiveLabelModel(_MultiLabelModel):
    """Classes declared mutually exclusive: a single-label model over the yes votes,
    and each row's top class (ties by ``tie_break``, as ``probs_to_preds``), kept only
    where its probability reaches that class's threshold (when thresholds are fitted).

    ``base``: "majority_vote" or "dawid_skene". ``predict_proba``: the single-label
    model's (n, k) distribution."""

    _params = ("base", "tie_break", "random_state")

    def __init__(self, base: str = "majority_vote", tie_break: str = "random", random_state: int = 0):
        self.base, self.tie_break, self.random_state = base, tie_break, random_state

    def fit(self, T, Y=None) -> ExclusiveLabelModel:
        T = _check_T(T)
        if self.base not in ("majority_vote", "dawid_skene"):
            raise ConfigError(f"ExclusiveLabelModel base must be 'majority_vote' or 'dawid_skene', got {self.base!r}")
        k = T.shape[2]
        model = (MajorityVote if self.base == "majority_vote" else DawidSkene)(k, random_state=self.random_state)
        self.model_ = model.fit(single_label_matrix(T))
        self.cardinality_ = k
        return self

    def predict_proba(self, T) -> np.ndarray:
        self._check_fitted()
        return self.model_.predict_proba(single_label_matrix(_check_T(T)))

    def predict(self, T) -> np.ndarray:
        P = self.predict_proba(T)
        top = probs_to_preds(P, tie_break=self.tie_break)
        out = np.zeros(P.shape, dtype=np.int8)
        rows = np.flatnonzero(top >= 0)
        out[rows, top[rows]] = 1
        if hasattr(self, "thresholds_"):
            out[rows[P[rows, top[rows]] < self.thresholds_[top[rows]]], :] = 0
        return out

    def _learned_dict(self) -> dict:
        return {"model_": self.model_.to_dict()}


_BY_NAME = {cls.__name__: cls for cls in (MultiLabelMajorityVote, PerClassLabelModel, ExclusiveLabelModel)}


def multilabel_label_model_from_dict(d: Mapping[str, Any]):
    """Rebuild a fitted multi-label label model from its ``to_dict``; raises ``ArtifactError``."""
    if not isinstance(d, Mapping) or not {"type", "params", "learned"} <= d.keys() or d["type"] not in _BY_NAME:
        raise ArtifactError(f"not a multi-label label model: expected type one of {sorted(_BY_NAME)}")
    try:
        model = _BY_NAME[d["type"]](**d["params"])
    except TypeError as exc:
        raise ArtifactError(f"bad params for {d['type']}: {exc}") from exc
    learned = dict(d["learned"])
    model.cardinality_ = int(learned.pop("cardinality_"))
    if "thresholds_" in learned:
        model.thresholds_ = np.asarray(learned.pop("thresholds_"), dtype=np.float64)
    if "models_" in learned:
        model.models_ = [None if m is None else label_model_from_dict(m) for m in learned["models_"]]
        model.lfs_ = [list(map(int, lfs)) for lfs in learned["lfs_"]]
        model.fallbacks_ = {int(c): why for c, why in learned["fallbacks_"].items()}
    if "model_" in learned:
        model.model_ = label_model_from_dict(learned["model_"])
    return model
