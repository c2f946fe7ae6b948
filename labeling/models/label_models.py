"""Label models: combine a label matrix of LF votes into per-row class probabilities.

Every model follows the scikit-learn contract: settings are constructor keywords,
``fit(L, y=None)`` returns ``self``, learned attributes end in ``_``, and
``predict_proba(L)`` returns an ``(n, k)`` array whose rows sum to 1. Models
serialize to plain JSON-able dicts (``to_dict`` / ``label_model_from_dict``) and
predict from those dicts with numpy alone: snorkel is only needed to *fit*
``SnorkelLabelModel``.

``y`` passed to ``fit`` is aligned with ``L``: a class index for rows with a gold
label (dev rows) and ``-1`` for unlabelled rows. Only ``WeightedMajorityVote`` and
``SnorkelLabelModel(class_balance="dev")`` read it.

Rows where every LF abstains get, by model:

======================  ===========================================================
MajorityVote            uniform: there are no votes to count. ``predict`` then
WeightedMajorityVote    breaks the tie by row index ("random" policy), exactly as
                        WRENCH and the Snorkel tutorials report their numbers.
DawidSkene              P(y | every LF abstained): abstaining is modelled as an LF
                        outcome, so an all-abstain row still carries evidence.
SnorkelLabelModel       ``class_balance_``: snorkel ignores abstains, so the prior
                        is all that is left.
======================  ===========================================================
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..config import ProjectConfig
from ..errors import ArtifactError, ConfigError, LabelError, LabelMatrixError, NotFittedError
from ..matrix import ABSTAIN, check_label_matrix

TIE_BREAKS = ("random", "abstain", "first")
METRICS = ("accuracy", "f1", "macro_f1")

# Probabilities closer than this count as tied; snorkel.utils.probs_to_preds uses the same.
_TIE_TOL = 1e-5


# --------------------------------------------------------------------------- predictions


def _row_hash(i: int) -> int:
    # Same as snorkel.utils.core._hash, re-stated so predicting needs no snorkel import;
    # tests check our "random" tie-breaks equal snorkel's.
    return int(hashlib.sha1(str(i).encode("utf-8")).hexdigest(), 16)


def probs_to_preds(probs, tie_break: str = "random") -> np.ndarray:
    """Argmax of each row; classes within 1e-5 of the row maximum are tied.

    Ties are broken by ``tie_break``:

    - ``"random"`` (default): class ``tied[sha1(str(i)) % len(tied)]`` for row ``i``,
      identical to ``snorkel.utils.probs_to_preds``'s "random" policy. It is
      deterministic given the row's position, and it is what WRENCH's evaluation and
      the Snorkel tutorials use, so our scores reproduce theirs.
    - ``"abstain"``: ``-1``.
    - ``"first"``: the lowest tied class index.
    """
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise LabelMatrixError(f"probs must be (n, k >= 2), got shape {arr.shape}")
    if tie_break not in TIE_BREAKS:
        raise ConfigError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    # class-major (k, n): reductions over k classes run across rows, ~2x faster for small k
    cols = np.ascontiguousarray(arr.T)
    return _pick_among_ties(np.abs(cols - cols.max(axis=0)) < _TIE_TOL, tie_break)


def _pick_among_ties(tied: np.ndarray, tie_break: str) -> np.ndarray:
    """Row predictions from ``tied`` (k, n): the classes at each row's maximum."""
    preds = tied.argmax(axis=0).astype(np.int64)
    n_tied = tied.sum(axis=0, dtype=np.int64)
    rows = np.flatnonzero(n_tied > 1)
    if tie_break == "abstain":
        preds[rows] = ABSTAIN
    elif tie_break == "random" and len(rows):
        # the (pick + 1)-th tied class of each row, without a Python loop per row
        pick = _tie_picks(rows, n_tied[rows])
        tied_rows = tied[:, rows]
        rank = np.cumsum(tied_rows, axis=0) - 1
        preds[rows] = np.argmax(tied_rows & (rank == pick), axis=0)
    return preds


_ROW_HASH_MOD: dict[int, np.ndarray] = {}


def _tie_picks(rows: np.ndarray, n_tied: np.ndarray) -> np.ndarray:
    """``_row_hash(i) % t`` for each row ``i`` with ``t`` tied classes, as Snorkel computes it."""
    modulus = math.lcm(*range(2, int(n_tied.max()) + 1))
    if modulus < 2**63:  # the memoized residues fit an int64 (ties among up to 42 classes)
        return _row_hash_mod(rows, modulus) % n_tied
    # beyond, the residue would overflow: Python integers, per tied row
    return np.array([_row_hash(i) % t for i, t in zip(rows.tolist(), n_tied.tolist())], dtype=np.int64)


def _row_hash_mod(rows: np.ndarray, modulus: int) -> np.ndarray:
    """``_row_hash(i) % modulus`` for each row index, memoized; ``modulus < 2**63``.

    Any tie among t classes, t dividing ``modulus``, needs ``_row_hash(i) % t``,
    which this gives exactly; sha1 per row is the slow part of predicting on
    millions of rows, so it is computed only for the tied rows asked for, once
    per row index per process (-1 marks an index not hashed yet).
    """
    table = _ROW_HASH_MOD.get(modulus, np.empty(0, dtype=np.int64))
    needed = int(rows.max()) + 1 if len(rows) else 0
    if needed > len(table):
        table = np.concatenate([table, np.full(max(needed, 2 * len(table)) - len(table), -1, dtype=np.int64)])
        _ROW_HASH_MOD[modulus] = table
    missing = np.unique(rows[table[rows] < 0])
    if len(missing):
        table[missing] = [_row_hash(i) % modulus for i in missing.tolist()]
    return table[rows]


# --------------------------------------------------------------------------- metrics


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, cardinality: int) -> np.ndarray:
    # Column k collects abstained predictions: they count as wrong for every class.
    pred = np.where(y_pred < 0, cardinality, y_pred)
    codes = y_true * (cardinality + 1) + pred
    return np.bincount(codes, minlength=cardinality * (cardinality + 1)).reshape(
        cardinality, cardinality + 1
    )


def _score_confusion(conf: np.ndarray, metric: str) -> float:
    n = conf.sum()
    if metric == "accuracy":
        return float(np.trace(conf[:, :-1]) / n) if n else 0.0
    k = conf.shape[0]
    tp = np.diag(conf[:, :k]).astype(np.float64)
    denom = conf[:, :k].sum(axis=0) + conf.sum(axis=1)  # = 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1[1]) if metric == "f1" else float(f1.mean())


def _check_metric(metric: str, cardinality: int) -> None:
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "f1" and cardinality != 2:
        raise ConfigError(f"metric 'f1' is binary (positive class 1); cardinality is {cardinality}")


def score_predictions(y_true, y_pred, metric: str = "accuracy", *, cardinality: int) -> float:
    """Score class predictions (``-1`` = abstained, counted wrong) against gold labels.

    ``"accuracy"``; ``"f1"``: F1 of class 1 (binary tasks, as WRENCH reports sms);
    ``"macro_f1"``: unweighted mean of per-class F1 over all ``cardinality`` classes.
    Gold labels of ``-1`` (unlabelled) are skipped.
    """
    _check_metric(metric, cardinality)
    y_true = _check_labels(y_true, None, cardinality, name="y_true")
    y_pred = _check_labels(y_pred, len(y_true), cardinality, name="y_pred")
    keep = y_true >= 0
    if not keep.any():
        raise LabelError("y_true has no labelled rows to score")
    return _score_confusion(_confusion(y_true[keep], y_pred[keep], cardinality), metric)


def _check_labels(y, n: int | None, cardinality: int, *, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise LabelError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise LabelError(f"{name} has {len(arr)} entries, expected {n} (one per row of L)")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.mod(arr, 1) == 0):
            raise LabelError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < ABSTAIN) | (arr >= cardinality)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LabelError(f"{name}[{i}] = {arr[i]}: must be -1 (unlabelled) or a class in 0..{cardinality - 1}")
    return arr


# --------------------------------------------------------------------------- shared math


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _vote_totals(L: np.ndarray, cardinality: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(n, k) sum over LFs of each LF's weight (1 if none) for the class it voted."""
    w = np.ones(L.shape[1]) if weights is None else weights
    return np.stack([(L == c) @ w for c in range(cardinality)], axis=1).astype(np.float64)


def _outcome_one_hot(L: np.ndarray, cardinality: int) -> np.ndarray:
    """(n, m * (k + 1)) indicators of each LF's outcome, abstain first."""
    outcomes = np.arange(ABSTAIN, cardinality)
    return (L[:, :, None] == outcomes).reshape(L.shape[0], -1).astype(np.float64)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _snorkel_fit_context() -> Iterator[None]:
    """Run snorkel's fit without leaking its process-wide side effects."""
    import torch

    # snorkel's fit reseeds Python's, numpy's and torch's global RNGs; putting them back
    # keeps every other caller's random stream as it was.
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    # Its per-epoch tensors are tiny (m*k rows); torch's intra-op thread pool costs more
    # than it saves there, 10-25x more on a busy 2-core machine (measured on WRENCH).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class _LightSGD:
    """The SGD step snorkel's fit asks of its optimizer, without ``torch.optim.SGD``'s per-step overhead.

    It calls torch's own functional ``sgd`` with the settings ``SGD(params, lr, momentum,
    weight_decay)`` passes it (dampening 0, no Nesterov; foreach/fused left to torch's
    default, as the class leaves them), so every update is the same float32 arithmetic.
    The class's hooks, profiler records and state bookkeeping cost ~60 us a step, a fifth
    of an epoch on a 10-LF matrix; and building the class imports ``torch._dynamo``, 2-5 s
    on the first fit in a process (a workbench's opening, a pipeline run) spent on
    nothing a fit uses.
    """

    def __init__(self, params, *, lr: float, momentum: float, weight_decay: float):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.momentum_buffers = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None  # what Optimizer.zero_grad(set_to_none=True) does

    def step(self) -> None:
        import torch
        from torch.optim.sgd import sgd

        with_grad = [i for i, p in enumerate(self.params) if p.grad is not None]
        buffers = [self.momentum_buffers[i] for i in with_grad]
        with torch.no_grad():
            sgd([self.params[i] for i in with_grad], [self.params[i].grad for i in with_grad], buffers,
                weight_decay=self.weight_decay, momentum=self.momentum, lr=self.lr, dampening=0.0,
                nesterov=False, maximize=False)
        for i, buffer in zip(with_grad, buffers):  # sgd fills in the first step's buffers
            self.momentum_buffers[i] = buffer


def _fast_snorkel_label_model(base: type) -> type:
    """snorkel's LabelModel, fitted to the same ``mu`` bit for bit, faster.

    - O: snorkel builds O = L_ind^T L_ind / n from a dense float64 one-hot matrix: 10+ s
      for 1M x 20. The entries are integer counts below 2^24, which float32 sums
      exactly, so O (and the fit) are identical, in a fraction of the time.
    - Epochs: an epoch is one gradient step on a (m*k, k) parameter, so Python overhead
      around it dominates (~0.55 ms an epoch, 0.28 s for 500 epochs at m = 10). Cut,
      without touching the arithmetic: the per-epoch logging (``loss.item()``, train/eval
      toggles) when not verbose; the L2 term's ``eye(d)`` matmul and norm when ``l2 = 0``
      (it adds an exact 0 to the loss and to the gradient); ``torch.optim.SGD``'s wrapper
      (``_LightSGD``). About 0.15 s for the same 500 epochs.
    ``tests/models/test_label_models.py`` checks ``mu`` equals snorkel's own LabelModel's.
    """

    class FastO(base):
        def _execute_logging(self, loss):
            if self.config.verbose:
                return super()._execute_logging(loss)
            return {}  # not verbose: only running-loss bookkeeping nobody reads

        def _loss_l2(self, l2=0):
            import torch

            if isinstance(l2, (int, float)) and l2 == 0:
                # ||0 @ (mu - mu_init)||^2 is exactly 0 with an exactly-0 gradient while mu is
                # finite; a diverging mu still raises snorkel's "Loss is NaN", an epoch later
                return torch.zeros((), device=self.config.device)
            return super()._loss_l2(l2)

        def _set_optimizer(self) -> None:
            tc = self.train_config
            schedules = tc.lr_scheduler_config
            if tc.optimizer != "sgd" or tc.lr_scheduler != "constant" or schedules.warmup_steps \
                    or schedules.warmup_percentage:
                return super()._set_optimizer()  # schedulers need a real torch Optimizer
            self.optimizer = _LightSGD(self.parameters(), lr=tc.lr, momentum=tc.optimizer_config.sgd_config.momentum,
                                       weight_decay=tc.l2)

        def _generate_O(self, L: np.ndarray, higher_order: bool = False) -> None:
            import torch

            if higher_order:
                return super()._generate_O(L, higher_order)
            n, self.n = self.n, 1  # the clique bookkeeping only, on one row
            try:
                self._get_augmented_label_matrix(L[:1])
            finally:
                self.n = n
            k = self.cardinality
            one_hot = np.zeros((L.shape[0], L.shape[1] * k), dtype=np.float32)
            for y in range(1, k + 1):
                one_hot[:, y - 1 :: k] = L == y
            counts = (one_hot.T @ one_hot).astype(np.float64)
            self.d = one_hot.shape[1]
            self.O = torch.from_numpy(counts / self.n).float().to(self.config.device)

    return FastO


@contextlib.contextmanager
def _light_lf_analysis() -> Iterator[None]:
    """During fit, snorkel builds a sparse ``LFAnalysis`` only for LF coverages (2 s per 1M x 20)."""
    from snorkel.labeling.model import label_model as module

    class Coverages:
        def __init__(self, L):
            self._L = np.asarray(L)

        def lf_coverages(self) -> np.ndarray:
            return np.count_nonzero(self._L != ABSTAIN, axis=0) / self._L.shape[0]

    real = module.LFAnalysis
    module.LFAnalysis = Coverages
    try:
        yield
    finally:
        module.LFAnalysis = real


# --------------------------------------------------------------------------- base class


class BaseLabelModel(ABC):
    """Shared contract: validation, predict, params and JSON round trip."""

    #: Learned attribute names saved by ``to_dict``.
    _learned: ClassVar[tuple[str, ...]] = ()
    #: True when per-LF parameters are estimated from ``y``: scoring such a model on the
    #: rows it was fitted to would be optimistic, so selection cross-fits it.
    fits_to_labels: ClassVar[bool] = False

    cardinality: int
    random_state: int

    def get_params(self) -> dict[str, Any]:
        """Constructor settings, by name (read back from the attributes they set)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _validate_params(self) -> None:
        k = self.cardinality
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
            raise ConfigError(f"{type(self).__name__}: cardinality must be an int >= 2, got {k!r}")

    def fit(self, L, y=None) -> BaseLabelModel:
        self._validate_params()
        L = check_label_matrix(L, self.cardinality, name="L")
        if L.shape[0] == 0 or L.shape[1] == 0:
            raise LabelMatrixError(f"L must have at least one row and one LF, got shape {L.shape}")
        labels = None if y is None else _check_labels(y, L.shape[0], self.cardinality)
        self._fit(L, labels)
        # A model restored from JSON holds C-ordered float64 arrays; give the fitted one the
        # same layout, or BLAS may sum in another order and the two differ in the last bit.
        for name in self._learned:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                setattr(self, name, np.ascontiguousarray(value, dtype=np.float64))
        self.n_lfs_ = int(L.shape[1])
        return self

    def predict_proba(self, L) -> np.ndarray:
        return self._predict_proba(self._check_input(L))

    def _check_input(self, L) -> np.ndarray:
        if not hasattr(self, "n_lfs_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(L) first")
        L = check_label_matrix(L, self.cardinality, name="L")
        if L.shape[1] != self.n_lfs_:
            raise LabelMatrixError(f"L has {L.shape[1]} LFs; the model was fitted on {self.n_lfs_}")
        return L

    def predict(self, L, tie_break: str = "random") -> np.ndarray:
        return probs_to_preds(self.predict_proba(L), tie_break)

    def to_dict(self) -> dict[str, Any]:
        if not hasattr(self, "n_lfs_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; nothing to save")
        learned = {name: getattr(self, name) for name in ("n_lfs_", *self._learned)}
        return {"type": type(self).__name__, "params": _jsonable(self.get_params()), "learned": _jsonable(learned)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def _fit(self, L: np.ndarray, y: np.ndarray | None) -> None: ...

    @abstractmethod
    def _predict_proba(self, L: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- models


class MajorityVote(BaseLabelModel):
    """Share of non-abstaining votes per class; all-abstain rows are uniform.

    This is WRENCH's ``MajorityVoting``; with ``predict(tie_break="random")`` it
    reproduces WRENCH's published MV scores exactly. ``random_state`` is accepted for a
    uniform interface: nothing here is random (ties are broken by row index).
    """

    def __init__(self, cardinality: int = 2, random_state: int = 0):
        self.cardinality = cardinality
        self.random_state = random_state

    def _fit(self, L: np.ndarray, y: np.ndarray | None) -> None:
        pass

    def _class_counts(self, L: np.ndarray) -> np.ndarray:
        """(k, n) votes per class; k passes over L, memory-bound (~40 ms per 1M x 20)."""
        if L.shape[1] >= 256 or self.cardinality >= 127:
            return np.stack([np.add.reduce(L == c, axis=1, dtype=np.int64) for c in range(self.cardinality)])
        # Votes fit a byte (checked), and so do per-row counts of < 256 LFs: each pass reads
        # 1/8 of the memory, and einsum's byte row sums are ~3x faster than add.reduce's.
        L = L.astype(np.int8, copy=False)
        return np.stack([np.einsum("ij->i", (L == c).view(np.uint8)) for c in range(self.cardinality)])

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        counts = self._class_counts(L).T.astype(np.float64)
        counts[counts.sum(axis=1) == 0] = 1.0
        return counts / counts.sum(axis=1, keepdims=True)

    def predict(self, L, tie_break: str = "random") -> np.ndarray:
        """``probs_to_preds(predict_proba(L), tie_break)``, from the integer counts.

        Shares within 1e-5 are equal counts (they differ by at least 1/n_lfs), so
        ties, and how they are broken, are the same; no probabilities are built.
        """
        if tie_break not in TIE_BREAKS:
            raise ConfigError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
        L = self._check_input(L)
        if L.shape[1] >= int(1 / _TIE_TOL):
            return super().predict(L, tie_break)
        counts = self._class_counts(L)
        if self.cardinality == 2:  # the common case, without the general tie search's (k, n) passes
            preds = (counts[1] > counts[0]).astype(np.int64)
            rows = np.flatnonzero(counts[0] == counts[1])
            if tie_break == "abstain":
                preds[rows] = ABSTAIN
            elif tie_break == "random" and len(rows):
                preds[rows] = _row_hash_mod(rows, 2) % 2  # the (pick + 1)-th of the two tied classes
            return preds
        return _pick_among_ties(counts == counts.max(axis=0), tie_break)


class WeightedMajorityVote(BaseLabelModel):
    """Majority vote with per-LF log-odds weights from accuracy on labelled rows.

    LF ``j``'s accuracy on the rows with ``y >= 0`` where it voted is shrunk toward the
    pooled accuracy of all LFs with ``smoothing`` pseudo-votes, since most LFs fire on
    a handful of dev rows. Weight = ``log(acc * (k - 1) / (1 - acc))``: the naive-Bayes
    weight of an LF that is right with probability ``acc`` and otherwise picks a wrong
    class uniformly; below-chance LFs get negative weight. Probabilities are the softmax
    of weighted vote totals, so all-abstain rows are uniform.
    """

    _learned = ("accuracies_", "weights_")
    fits_to_labels = True

    def __init__(self, cardinality: int = 2, smoothing: float = 1.0, random_state: int = 0):
        self.cardinality = cardinality
        self.smoothing = smoothing
        self.random_state = random_state

    def _validate_params(self) -> None:
        super()._validate_params()
        if not self.smoothing > 0:
            raise ConfigError(f"smoothing must be > 0, got {self.smoothing!r}")

    def _fit(self, L: np.ndarray, y: np.ndarray | None) -> None:
        if y is None or not (y >= 0).any():
            raise LabelError(
                "WeightedMajorityVote needs gold labels: fit(L, y) with y[i] the class of "
                "labelled (dev) rows and -1 elsewhere"
            )
        labelled = y >= 0
        L_lab, y_lab = L[labelled], y[labelled]
        fired = (L_lab != ABSTAIN).sum(axis=0)
        correct = (L_lab == y_lab[:, None]).sum(axis=0)
        pooled = correct.sum() / fired.sum() if fired.sum() else 1.0 / self.cardinality
        acc = (correct + self.smoothing * pooled) / (fired + self.smoothing)
        # a perfect or hopeless LF would get an infinite weight and override all others
        acc = np.clip(acc, 1e-3, 1 - 1e-3)
        self.accuracies_ = acc
        self.weights_ = np.log(acc * (self.cardinality - 1) / (1 - acc))

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        return _softmax(_vote_totals(L, self.cardinality, np.asarray(self.weights_)))


class DawidSkene(BaseLabelModel):
    """Dawid & Skene (1979) EM: a class prior and a per-LF confusion matrix.

    ``confusion_[j, y, o]`` = P(LF j's outcome is ``o - 1`` | class y), with outcome 0
    meaning abstain. Abstaining is an outcome rather than missing data because most
    LFs vote for a single class: conditioned on firing, such an LF says nothing, and
    only *when* it fires separates the classes. EM starts from majority-vote posteriors;
    ``smoothing`` pseudo-counts keep probabilities off 0. Deterministic:
    ``random_state`` is accepted for a uniform interface.
    """

    _learned = ("class_prior_", "confusion_", "n_iter_")

    def __init__(
        self,
        cardinality: int = 2,
        max_iter: int = 100,
        tol: float = 1e-6,
        smoothing: float = 1.0,
        random_state: int = 0,
    ):
        self.cardinality = cardinality
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.random_state = random_state

    def _validate_params(self) -> None:
        super()._validate_params()
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ConfigError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if not self.tol >= 0 or not self.smoothing > 0:
            raise ConfigError(f"need tol >= 0 and smoothing > 0, got {self.tol!r}, {self.smoothing!r}")

    def _fit(self, L: np.ndarray, y: np.ndarray | None) -> None:
        k, m = self.cardinality, L.shape[1]
        X = _outcome_one_hot(L, k)
        posterior = MajorityVote(k)._predict_proba(L)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            prior = (posterior.sum(axis=0) + self.smoothing) / (len(L) + k * self.smoothing)
            counts = (posterior.T @ X).reshape(k, m, k + 1).transpose(1, 0, 2) + self.smoothing
            confusion = counts / counts.sum(axis=2, keepdims=True)
            updated = self._posterior(X, prior, confusion)
            change = np.abs(updated - posterior).max()
            posterior = updated
            if change < self.tol:
                break
        self.class_prior_, self.confusion_, self.n_iter_ = prior, confusion, n_iter

    def _posterior(self, X: np.ndarray, prior: np.ndarray, confusion: np.ndarray) -> np.ndarray:
        k = self.cardinality
        log_conf = np.log(confusion).transpose(0, 2, 1).reshape(-1, k)
        return _softmax(np.log(prior) + X @ log_conf)

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        X = _outcome_one_hot(L, self.cardinality)
        return self._posterior(X, np.asarray(self.class_prior_), np.asarray(self.confusion_))


class SnorkelLabelModel(BaseLabelModel):
    """Snorkel's matrix-completion ``LabelModel`` (Ratner et al. 2019), fitted by snorkel.

    After fitting we keep snorkel's ``mu`` (``mu_[j*k + c, y]`` = P(LF j votes c | y))
    and the class prior ``class_balance_``, and predict in numpy exactly as snorkel's
    ``predict_proba`` does: ``softmax(log P(y) + sum_j log mu_[j, vote_j, y])`` over
    non-abstaining votes, so all-abstain rows get ``class_balance_``.

    ``class_balance``: ``None`` (uniform, snorkel's default), ``"dev"`` (class frequencies
    of the labelled rows of ``y``, add-one smoothed so no class gets prior 0), or ``k``
    positive numbers (normalized). Snorkel needs at least 3 LFs.
    """

    _learned = ("mu_", "class_balance_")
    # Only the class prior (k numbers) may come from y, too little to bias selection.
    fits_to_labels = False

    def __init__(
        self,
        cardinality: int = 2,
        n_epochs: int = 500,
        lr: float = 0.01,
        l2: float = 0.0,
        optimizer: str = "sgd",
        class_balance: str | Sequence[float] | None = None,
        random_state: int = 0,
    ):
        self.cardinality = cardinality
        self.n_epochs = n_epochs
        self.lr = lr
        self.l2 = l2
        self.optimizer = optimizer
        self.class_balance = class_balance
        self.random_state = random_state

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.optimizer not in ("sgd", "adam", "adamax"):
            raise ConfigError(f"optimizer must be 'sgd', 'adam' or 'adamax', got {self.optimizer!r}")
        if not (isinstance(self.n_epochs, int) and self.n_epochs >= 1) or not self.lr > 0 or self.l2 < 0:
            raise ConfigError(f"need n_epochs >= 1, lr > 0, l2 >= 0; got {self.n_epochs}, {self.lr}, {self.l2}")
        if isinstance(self.class_balance, str) and self.class_balance != "dev":
            raise ConfigError(f"class_balance must be None, 'dev' or k numbers, got {self.class_balance!r}")

    def _resolve_class_balance(self, y: np.ndarray | None) -> np.ndarray:
        k = self.cardinality
        if self.class_balance is None:
            return np.full(k, 1.0 / k)
        if isinstance(self.class_balance, str):
            if y is None or not (y >= 0).any():
                raise LabelError("class_balance='dev' needs gold labels: fit(L, y) with -1 for unlabelled rows")
            counts = np.bincount(y[y >= 0], minlength=k) + 1.0
            return counts / counts.sum()
        balance = np.asarray(self.class_balance, dtype=np.float64)
        if balance.shape != (k,) or not np.all(balance > 0):
            raise ConfigError(f"class_balance must be {k} positive numbers, got {self.class_balance!r}")
        return balance / balance.sum()

    def _fit(self, L: np.ndarray, y: np.ndarray | None) -> None:
        if L.shape[1] < 3:
            raise LabelMatrixError(f"SnorkelLabelModel needs at least 3 LFs, L has {L.shape[1]}")
        from snorkel.labeling.model import LabelModel  # only fitting needs snorkel

        balance = self._resolve_class_balance(y)
        model = _fast_snorkel_label_model(LabelModel)(cardinality=self.cardinality, verbose=False)
        with _snorkel_fit_context(), _light_lf_analysis():
            model.fit(
                L,
                class_balance=balance.tolist(),
                n_epochs=self.n_epochs,
                lr=self.lr,
                l2=self.l2,
                optimizer=self.optimizer,
                seed=self.random_state,
                progress_bar=False,
            )
        self.mu_ = model.mu.detach().cpu().numpy().astype(np.float64)
        self.class_balance_ = np.asarray(model.p, dtype=np.float64)

    def _predict_proba(self, L: np.ndarray) -> np.ndarray:
        k = self.cardinality
        # snorkel stores mu as float32 and takes its log there; doing the same keeps our
        # probabilities equal to its predict_proba up to summation order
        log_mu = np.log(np.asarray(self.mu_, dtype=np.float32)).astype(np.float64)
        one_hot = _outcome_one_hot(L, k).reshape(len(L), -1, k + 1)[:, :, 1:].reshape(len(L), -1)
        return _softmax(one_hot @ log_mu + np.log(np.asarray(self.class_balance_)))


LABEL_MODELS: dict[str, type[BaseLabelModel]] = {
    "majority_vote": MajorityVote,
    "weighted_majority_vote": WeightedMajorityVote,
    "dawid_skene": DawidSkene,
    "snorkel": SnorkelLabelModel,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in LABEL_MODELS.values()}


def label_model_from_dict(d: Mapping[str, Any]) -> BaseLabelModel:
    """Rebuild a fitted model from ``to_dict`` output, without refitting."""
    if not isinstance(d, Mapping) or not {"type", "params", "learned"} <= d.keys():
        raise ArtifactError("label model dict needs keys 'type', 'params' and 'learned'")
    cls = _BY_CLASS_NAME.get(d["type"])
    if cls is None:
        raise ArtifactError(f"unknown label model type {d['type']!r}; known: {sorted(_BY_CLASS_NAME)}")
    try:
        model = cls(**d["params"])
    except TypeError as exc:
        raise ArtifactError(f"bad params for {d['type']}: {exc}") from exc
    model._validate_params()
    expected = {"n_lfs_", *cls._learned}
    learned = d["learned"]
    if not isinstance(learned, Mapping) or set(learned) != expected:
        raise ArtifactError(f"{d['type']} learned attributes must be {sorted(expected)}")
    for name, value in learned.items():
        setattr(model, name, np.asarray(value, dtype=np.float64) if isinstance(value, list) else value)
    return model


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class CandidateScore:
    name: str
    params: dict
    dev_score: float
    metric: str


@dataclass(frozen=True)
class Selection:
    """The chosen fitted model, and every candidate's dev score to explain the choice.

    ``tolerance`` is the margin below the best dev score within which a candidate
    listed earlier (simpler) was preferred: one bootstrap standard error.

    ``fallback``: why the dev labels could not choose (``dev_selection_problem``); the
    preferred candidate, else the first (simplest), was then kept without scoring any, and
    ``scores`` is empty. "" when dev chose.
    """

    model: BaseLabelModel
    name: str
    scores: tuple[CandidateScore, ...]
    metric: str
    tolerance: float = 0.0
    index: int = 0  # the chosen candidate's position among the candidates (and in ``scores`` when scored)
    fallback: str = ""


# snorkel's loss is dense in (m*k)^2 and runs ~1 s per 100 epochs at m*k = 400 on CPU;
# past this size the default grid leaves it out (e.g. semeval's 164 LFs x 9 classes).
SNORKEL_MAX_MK = 512


def default_candidates(cardinality: int, n_lfs: int, random_state: int = 0) -> list[BaseLabelModel]:
    """The default selection grid, simplest first (ties go to the earliest)."""
    k, rs = cardinality, random_state
    models: list[BaseLabelModel] = [
        MajorityVote(k, random_state=rs),
        # more pseudo-votes toward the pooled accuracy = fewer effective parameters
        WeightedMajorityVote(k, smoothing=10.0, random_state=rs),
        WeightedMajorityVote(k, smoothing=1.0, random_state=rs),
        DawidSkene(k, random_state=rs),
    ]
    if 3 <= n_lfs and n_lfs * k <= SNORKEL_MAX_MK:
        # snorkel's own defaults first, then a slower lr, a regularized long run, and the
        # dev class prior; 800 epochs in all keeps selection to seconds
        for lr, l2, n_epochs, class_balance in (
            (0.01, 0.0, 100, None),
            (0.001, 0.0, 100, None),
            (0.01, 0.1, 500, None),
            (0.01, 0.0, 100, "dev"),
        ):
            models.append(
                SnorkelLabelModel(
                    k, n_epochs=n_epochs, lr=lr, l2=l2, class_balance=class_balance, random_state=rs
                )
            )
    return models


def _candidate_name(model: BaseLabelModel) -> str:
    defaults = type(model)().get_params()
    changed = {
        k: v for k, v in model.get_params().items() if k not in ("cardinality", "random_state") and v != defaults[k]
    }
    return f"{type(model).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def _clone(model: BaseLabelModel) -> BaseLabelModel:
    return type(model)(**model.get_params())


def _bootstrap_se(y: np.ndarray, pred: np.ndarray, k: int, metric: str, rng: np.random.Generator) -> float:
    draws = rng.integers(0, len(y), size=(200, len(y)))
    scores = [_score_confusion(_confusion(y[idx], pred[idx], k), metric) for idx in draws]
    return float(np.std(scores))


def dev_selection_problem(y_dev, min_rows: int, classes: Sequence[str] | None = None) -> str:
    """Why the gold labels ``y_dev`` ((m,) class indices, -1 = unlabelled) cannot choose
    between candidate models, or "" when they can.

    Too few labelled rows (fewer than ``min_rows``, the folds a cross-fitted score needs):
    the scores are noise, or cannot be computed. One class only: a model that predicts it
    everywhere scores best, so the scores rank nothing but that class's recall (every
    candidate often scores 1.000). ``classes`` names the classes in the message."""
    y = np.asarray(y_dev)
    labelled = y[y >= 0]
    if len(labelled) < min_rows:
        count = (f"{len(labelled)} labelled dev row{'' if len(labelled) == 1 else 's'}" if len(labelled)
                 else "no labelled dev rows")
        return f"there {'is' if len(labelled) == 1 else 'are'} {count}; scoring candidates needs at least {min_rows}"
    present = np.unique(labelled)
    if len(present) < 2:
        name = classes[int(present[0])] if classes is not None else int(present[0])
        return (f"all {len(labelled)} labelled dev rows are of class {name!r}; on one class the dev score ranks only "
                "that class's recall, so it cannot tell candidates apart")
    return ""


def select_label_model(
    L_train,
    L_dev,
    y_dev,
    cardinality: int,
    *,
    metric: str = "accuracy",
    candidates: Sequence[BaseLabelModel] | None = None,
    random_state: int = 0,
    n_folds: int = 5,
    tie_se: float = 1.0,
    prefer: int | None = None,
    classes: Sequence[str] | None = None,
) -> Selection:
    """Fit each candidate, score it on the dev split only, and pick one.

    Every candidate is fitted on the train and dev rows together, with dev gold labels
    visible only to models that read ``y`` (class balance, WMV accuracies); the test
    split is never seen. A model whose per-LF parameters come from the labels
    (``fits_to_labels``) is scored by ``n_folds``-fold cross-fitting over the dev rows,
    since scoring it on the labels it was fitted to flatters it. Predictions use the
    "random" tie-break, the one reported scores use.

    The pick is the earliest (simplest) candidate whose dev score is within ``tie_se``
    bootstrap standard errors of the best (the one-standard-error rule): dev sets of
    100-500 rows cannot tell apart scores closer than that. ``tie_se=0`` takes the
    plain best, ties still going to the earliest.

    ``prefer``: the index of an incumbent candidate (the model a project ran with
    so far). It is kept while it is within that margin of the best: replacing a
    model needs evidence that the replacement is better, not a tie on 100 rows.

    When the dev labels cannot choose (``dev_selection_problem``: fewer than ``n_folds``
    labelled rows, or one class only) and there is more than one candidate, the
    ``prefer`` candidate, else the first (simplest), is fitted and kept unscored, and
    ``Selection.fallback`` says why. ``classes``: class names for that message. Raises
    ``LabelError`` when a single candidate cannot be scored (fewer than ``n_folds`` rows).
    """
    _check_metric(metric, cardinality)
    L_train = check_label_matrix(L_train, cardinality, name="L_train")
    L_dev = check_label_matrix(L_dev, cardinality, name="L_dev")
    if L_train.shape[1] != L_dev.shape[1]:
        raise LabelMatrixError(f"L_train has {L_train.shape[1]} LFs but L_dev has {L_dev.shape[1]}")
    y_dev = _check_labels(y_dev, len(L_dev), cardinality, name="y_dev")
    labelled = np.flatnonzero(y_dev >= 0)
    if not (isinstance(n_folds, int) and n_folds >= 2) or tie_se < 0:
        raise ConfigError(f"need n_folds >= 2 and tie_se >= 0, got {n_folds!r}, {tie_se!r}")
    models = list(candidates) if candidates is not None else default_candidates(
        cardinality, L_train.shape[1], random_state
    )
    if not models:
        raise ConfigError("no candidate label models to select from")
    if prefer is not None and not (isinstance(prefer, int) and 0 <= prefer < len(models)):
        raise ConfigError(f"prefer must index one of the {len(models)} candidates, got {prefer!r}")
    L_fit = np.vstack([L_train, L_dev])
    n_train = len(L_train)
    y_fit = np.concatenate([np.full(n_train, ABSTAIN), y_dev])
    problem = dev_selection_problem(y_dev, n_folds, classes) if len(models) > 1 else ""
    if problem:
        # Scores on these labels would pick a winner by chance (or by one class's recall):
        # the simplest candidate (or the incumbent) is the choice that needs no evidence.
        chosen = 0 if prefer is None else prefer
        model = _clone(models[chosen]).fit(L_fit, y_fit)
        return Selection(model, _candidate_name(models[chosen]), (), metric, 0.0, chosen, fallback=problem)
    if len(labelled) < n_folds:
        raise LabelError(f"y_dev has {len(labelled)} labelled rows; scoring a candidate needs at least "
                         f"n_folds={n_folds}")

    rng = np.random.default_rng(random_state)
    folds = rng.permutation(len(labelled)) % n_folds
    y_true = y_dev[labelled]

    fitted, scores, all_preds = [], [], []
    for candidate in models:
        model = _clone(candidate).fit(L_fit, y_fit)
        if candidate.fits_to_labels:
            probs = np.empty((len(labelled), cardinality))
            for fold in range(n_folds):
                held_out = labelled[folds == fold]
                y_fold = y_fit.copy()
                y_fold[n_train + held_out] = ABSTAIN
                probs[folds == fold] = _clone(candidate).fit(L_fit, y_fold).predict_proba(L_dev[held_out])
            # the "random" tie-break hashes the row's position in the dev split
            full = np.full((len(L_dev), cardinality), 1.0 / cardinality)
            full[labelled] = probs
            pred = probs_to_preds(full)[labelled]
        else:
            pred = probs_to_preds(model.predict_proba(L_dev))[labelled]
        score = _score_confusion(_confusion(y_true, pred, cardinality), metric)
        fitted.append(model)
        all_preds.append(pred)
        scores.append(CandidateScore(_candidate_name(candidate), _jsonable(candidate.get_params()), score, metric))

    best = int(np.argmax([s.dev_score for s in scores]))
    tolerance = tie_se * _bootstrap_se(y_true, all_preds[best], cardinality, metric, rng) if tie_se else 0.0
    within = [i for i, s in enumerate(scores) if s.dev_score >= scores[best].dev_score - tolerance - 1e-12]
    chosen = prefer if prefer in within else within[0]
    return Selection(fitted[chosen], scores[chosen].name, tuple(scores), metric, tolerance, chosen)


__all__ = [
    "LABEL_MODELS",
    "METRICS",
    "SNORKEL_MAX_MK",
    "TIE_BREAKS",
    "BaseLabelModel",
    "CandidateScore",
    "DawidSkene",
    "MajorityVote",
    "Selection",
    "SnorkelLabelModel",
    "WeightedMajorityVote",
    "default_candidates",
    "dev_selection_problem",
    "label_model_from_dict",
    "probs_to_preds",
    "score_predictions",
    "select_label_model",
]


def fit_label_model(config: ProjectConfig, L_train, L_dev, y_dev, class_balance=None):
    """The configured label model, plus the dev scores behind an automatic choice."""
    lm = config.label_model
    k, seed = config.cardinality, config.seed

    def configured(kind: str):
        if kind == "majority_vote":
            return MajorityVote(cardinality=k, random_state=seed)
        return SnorkelLabelModel(cardinality=k, n_epochs=lm.n_epochs, lr=lm.lr, l2=lm.l2,
                                 class_balance=class_balance, random_state=seed)

    if lm.type != "auto":
        return configured(lm.type).fit(L_train), {}
    candidates = default_candidates(k, L_train.shape[1], seed)
    if lm.prefer:
        candidates.insert(0, configured(lm.prefer))
    selection = select_label_model(L_train, L_dev, y_dev, k, candidates=candidates, random_state=seed,
                                   prefer=0 if lm.prefer else None, classes=config.classes)
    if selection.fallback:
        kept = f"the incumbent {lm.prefer}" if lm.prefer else f"{selection.name}, the simplest candidate,"
        rule = (f"{kept} kept: {selection.fallback}. Label more dev rows (of every class), "
                'or set label_model.type = "majority_vote" or "snorkel" to choose the model yourself')
    elif lm.prefer and selection.index == 0:
        rule = f"incumbent {lm.prefer} kept: no candidate beats it on dev by more than one standard error"
    else:
        rule = (f"{selection.name}: the simplest candidate within one standard error of the best dev score"
                + (f" (the incumbent {lm.prefer} was beaten)" if lm.prefer else ""))
    return selection.model, {
        "metric": selection.metric, "tolerance": selection.tolerance, "chosen": selection.name, "rule": rule,
        "fallback": selection.fallback,
        "candidates": [{"name": s.name, "params": s.params, "dev_score": s.dev_score} for s in selection.scores],
    }
