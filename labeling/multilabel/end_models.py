"""Multi-label end models: one-vs-rest over the single-label families, or one MLP with a
sigmoid head; soft per-class targets.

``OneVsRestTextClassifier`` vectorizes the texts once (the family's TF-IDF features)
and fits one binary logistic regression per class on the label model's soft
probability of that class (each row enters as a positive weighted p and a negative
weighted 1 - p, as the single-label models take soft labels), so its cost grows with
k only by the k small linear fits. ``predict_proba`` gives (n, k) probabilities,
``fit_thresholds`` chooses per-class thresholds on dev, ``predict`` gives label sets.
Saved with the single-label artifact format (one ``save_end_model`` folder per class)
plus a manifest; nothing is pickled.

``SigmoidMLPTextClassifier`` is the single-label torch MLP (``TorchTextClassifier``:
TF-IDF n-grams into one hidden layer) with k sigmoid outputs trained by binary
cross-entropy on the soft per-class targets: one network for all k classes, so k adds
only a (hidden, k) output layer. Same contract (``random_state``, torch's global RNG
untouched, safetensors weights with checksums).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, ConfigError, LabelingError, NotFittedError
from ..models.artifacts import load_end_model, read_json, read_manifest, save_end_model, write_json, write_manifest
from ..models.end_model_selection import family_model
from ..models.end_models import SklearnTextClassifier, TorchTextClassifier
from .label_models import DEFAULT_THRESHOLD, choose_thresholds

__all__ = ["MULTILABEL_FAMILIES", "OVR_FAMILIES", "OneVsRestTextClassifier", "SigmoidMLPTextClassifier",
           "load_multilabel_end_model", "multilabel_end_model", "predict_label_sets", "save_multilabel_end_model"]

# the single-label families whose features one vectorization can share across the k classes
OVR_FAMILIES = ("char_wb", "char_wb_C10", "word", "word_hashed", "word_char")
MULTILABEL_FAMILIES = (*OVR_FAMILIES, "mlp")


class _LabelSets:
    """Per-class thresholds over ``predict_proba``'s (n, k) and the label sets they give."""

    def fit_thresholds(self, texts: Sequence[str], Y):
        """Per-class thresholds chosen on labelled rows (dev) by ``choose_thresholds``."""
        self.thresholds_ = choose_thresholds(self.predict_proba(texts), Y)
        return self

    def predict_sets(self, P) -> np.ndarray:
        thresholds = getattr(self, "thresholds_", np.full(np.asarray(P).shape[1], DEFAULT_THRESHOLD))
        return (np.asarray(P) >= thresholds).astype(np.int8)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, k) 0/1: the predicted label sets."""
        return self.predict_sets(self.predict_proba(texts))


class SigmoidMLPTextClassifier(_LabelSets, TorchTextClassifier):
    """``TorchTextClassifier`` with a sigmoid head: ``fit(texts, P)`` with ``P`` (n, k)
    per-class targets in [0, 1] (soft or 0/1 gold), loss = sum over classes of binary
    cross-entropy (mean over rows, ``sample_weight``-weighted); ``predict_proba`` gives
    (n, k) independent probabilities. Constructor settings are ``TorchTextClassifier``'s
    (``cardinality`` = k); ``class_offsets`` must stay empty."""

    def _targets(self, y) -> np.ndarray:
        P = np.asarray(y, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.cardinality or not np.isfinite(P).all() or (P < 0).any() or (P > 1).any():
            raise LabelingError(f"multi-label targets must be (n, {self.cardinality}) numbers in [0, 1], "
                                f"got shape {P.shape}")
        return P

    @staticmethod
    def _row_loss(logits, targets):
        import torch

        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(dim=1)

    @staticmethod
    def _activate(logits):
        import torch

        return torch.sigmoid(logits)


def multilabel_end_model(family: str, k: int, random_state: int = 0):
    """The unfitted multi-label end model of ``family`` (one of ``MULTILABEL_FAMILIES``):
    one-vs-rest over a single-label family, or "mlp": ``SigmoidMLPTextClassifier`` over
    word 1-2-gram TF-IDF (50k features), 64 hidden units, early stopping on 10% of the rows."""
    if family == "mlp":
        return SigmoidMLPTextClassifier(k, analyzer="word", ngram_min=1, ngram_max=2, max_features=50_000, hidden=64,
                                        epochs=30, lr=0.003, batch_size=128, patience=3, random_state=random_state)
    if family not in OVR_FAMILIES:
        raise ConfigError(f"multi-label end model family {family!r}: expected one of {MULTILABEL_FAMILIES}")
    return OneVsRestTextClassifier(family, random_state=random_state)


class OneVsRestTextClassifier(_LabelSets):
    """k binary ``SklearnTextClassifier``s of one family over one shared vectorization.

    ``family``: one of ``OVR_FAMILIES`` (``labeling.models.end_model_selection.family_model``);
    ``C``: logistic regression's inverse regularization strength (None: the family's).
    Learned: ``models_`` (k fitted binary models; None for a class whose soft targets
    hold one side only, predicted at its constant), ``constant_`` (k floats),
    ``thresholds_`` (k floats, after ``fit_thresholds``)."""

    def __init__(self, family: str = "word_hashed", C: float | None = None, random_state: int = 0):
        self.family = family
        self.C = C
        self.random_state = random_state

    def get_params(self) -> dict:
        return {"family": self.family, "C": self.C, "random_state": self.random_state}

    def _base(self) -> SklearnTextClassifier:
        if self.family not in OVR_FAMILIES:
            raise ConfigError(f"one-vs-rest end model family {self.family!r}: expected one of {OVR_FAMILIES}")
        model = family_model(self.family, 2, self.random_state, "")
        if self.C is not None:  # the inverse regularization strength, else the family's own
            model.C = float(self.C)
        return model

    def fit(self, texts: Sequence[str], P, sample_weight=None) -> OneVsRestTextClassifier:
        """``texts`` (n,); ``P`` (n, k) soft per-class targets in [0, 1] (or 0/1 gold);
        ``sample_weight`` (n,)."""
        P = np.asarray(P, dtype=np.float64)
        base = self._base()
        vectorizer = base.vectorizer()
        X = vectorizer.fit_transform(list(texts))
        self.vectorizer_ = vectorizer
        self.models_, self.constant_ = [], []
        for c in range(P.shape[1]):
            p = P[:, c].clip(0, 1)
            if not ((p > 0).any() and (p < 1).any()):
                self.models_.append(None)
                self.constant_.append(float(p.mean()) if len(p) else 0.0)
                continue
            targets = np.column_stack([1 - p, p])
            self.models_.append(self._base().fit_features(vectorizer, X, targets, sample_weight))
            self.constant_.append(float(p.mean()))
        self.cardinality_ = P.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("OneVsRestTextClassifier is not fitted; call fit(texts, P) first")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, k): each class's probability on its own (rows need not sum to 1)."""
        self._check_fitted()
        texts = list(texts)
        out = np.zeros((len(texts), self.cardinality_))
        if not texts:
            return out
        fitted = next((m for m in self.models_ if m is not None), None)
        X = fitted._features(texts) if fitted is not None else None
        for c, model in enumerate(self.models_):
            out[:, c] = self.constant_[c] if model is None else model.predict_proba_features(X)[:, 1]
        return out



def save_multilabel_end_model(model, folder: str | Path) -> dict[str, str]:
    """One single-label artifact folder per fitted class model (one-vs-rest) or the MLP's
    torch folder, and a manifest over them all; returns ``{file name: sha256}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    model._check_fitted()
    thresholds = np.asarray(getattr(model, "thresholds_", [])).tolist()
    files: dict[str, str] = {}
    if isinstance(model, SigmoidMLPTextClassifier):
        files = {f"mlp/{name}": digest for name, digest in save_end_model(model, folder / "mlp").items()}
        write_json(folder / "multilabel.json", {"params": model.get_params(), "thresholds_": thresholds})
        return {**files, **write_manifest(folder, "multilabel_mlp", {"params": model.get_params()})}
    for c, m in enumerate(model.models_):
        if m is not None:
            files.update({f"class_{c}/{name}": digest for name, digest in save_end_model(m, folder / f"class_{c}").items()})
    write_json(folder / "multilabel.json", {"params": model.get_params(), "constant_": model.constant_,
                                            "thresholds_": thresholds, "fitted": [m is not None for m in model.models_]})
    return {**files, **write_manifest(folder, "multilabel_ovr", {"params": model.get_params()})}


def load_multilabel_end_model(folder: str | Path, expected=None):
    """The inverse of ``save_multilabel_end_model``; checksums first. Raises ``ArtifactError``."""
    folder = Path(folder)
    manifest = read_manifest(folder, expected)
    if manifest["kind"] not in ("multilabel_ovr", "multilabel_mlp"):
        raise ArtifactError(f"{folder}: not a multi-label end model (kind {manifest['kind']!r})")
    meta = read_json(folder / "multilabel.json")
    if manifest["kind"] == "multilabel_mlp":
        net = load_end_model(folder / "mlp")
        model = SigmoidMLPTextClassifier(**net.get_params())
        model.net_, model.device_, model.classes_ = net.net_, net.device_, net.classes_
        if model.ngrams:
            model.vectorizer_ = net.vectorizer_
    else:
        model = OneVsRestTextClassifier(**meta["params"])
        model.models_ = [load_end_model(folder / f"class_{c}") if fitted else None
                         for c, fitted in enumerate(meta["fitted"])]
        model.constant_, model.cardinality_ = list(meta["constant_"]), len(meta["fitted"])
    if meta["thresholds_"]:
        model.thresholds_ = np.asarray(meta["thresholds_"], dtype=np.float64)
    return model


def predict_label_sets(model, texts: Sequence[str], classes: Sequence[str]) -> list[dict]:
    """What a multi-label model answers for each text: ``{"labels": [class names] (its
    thresholds; [] = no class), "probabilities": {class: P(class present)}}``."""
    P = model.predict_proba(texts)
    sets = model.predict_sets(P)
    return [{"labels": [classes[c] for c in np.flatnonzero(row)],
             "probabilities": {name: float(p) for name, p in zip(classes, probs)}} for row, probs in zip(sets, P)]
