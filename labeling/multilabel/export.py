"""ONNX export of a multi-label run's one-vs-rest end model.

One ``labeling.models.export`` folder per fitted class (its binary logistic regression as
``classifier.onnx`` over the TF-IDF featurizer of ``tfidf.json``), and a manifest holding
the class names, the per-class thresholds chosen on dev and the constants of classes
whose training targets held one side only. ``OnnxMultiLabelClassifier`` reads it back and
gives the same probabilities and label sets as the model served.

A model over hashed n-grams (family ``word_hashed``, the default first candidate) cannot
be exported: ``tfidf.json`` rebuilds a featurizer from its vocabulary, which a
``HashingVectorizer`` does not keep; the error says so and which families can.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from ..models.artifacts import read_manifest, write_manifest
from ..models.export import OnnxTextClassifier, export_onnx
from .end_models import OneVsRestTextClassifier
from .label_models import DEFAULT_THRESHOLD

__all__ = ["OnnxMultiLabelClassifier", "export_multilabel_onnx"]

KIND = "onnx_multilabel"


def export_multilabel_onnx(model: OneVsRestTextClassifier, folder: str | Path,
                           class_names: Sequence[str]) -> dict[str, str]:
    """Write ``model`` (fitted) into the new ``folder``; returns ``{file: sha256}``. Raises
    ``ArtifactError`` for a model over hashed n-grams, or class names that do not match it."""
    if not isinstance(model, OneVsRestTextClassifier):
        raise ArtifactError(f"multi-label ONNX export takes a OneVsRestTextClassifier, not {type(model).__name__}")
    model._check_fitted()
    if len(class_names) != model.cardinality_:
        raise ArtifactError(f"{len(class_names)} class names for a model of {model.cardinality_} classes")
    if any(getattr(m, "hash_bits", None) for m in model.models_ if m is not None):
        raise ArtifactError(f"cannot export this one-vs-rest model to ONNX: its family {model.family!r} hashes its "
                            "n-grams (no vocabulary), and the export rebuilds the featurizer from a vocabulary "
                            "(tfidf.json); retrain with end_model.type = \"sklearn\" (analyzer \"word\" or \"char_wb\") "
                            "or end_model.candidates without \"word_hashed\" to export it")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as exc:  # an existing folder is never overwritten
        raise ArtifactError(f"cannot create the export folder {folder}: {exc}") from exc
    files: dict[str, str] = {}
    for c, m in enumerate(model.models_):
        if m is not None:
            exported = export_onnx(m, folder / f"class_{c}", [f"not {class_names[c]}", str(class_names[c])])
            files.update({f"class_{c}/{name}": digest for name, digest in exported.items()})
    thresholds = np.asarray(getattr(model, "thresholds_", np.full(model.cardinality_, DEFAULT_THRESHOLD)))
    meta = {"class_names": [str(c) for c in class_names], "thresholds": thresholds.tolist(),
            "constant": [float(v) for v in model.constant_], "fitted": [m is not None for m in model.models_],
            "family": model.family}
    return {**files, **write_manifest(folder, KIND, meta)}


class OnnxMultiLabelClassifier:
    """``predict_proba(texts)`` ((n, k), each class on its own) and ``predict`` (the label sets
    its thresholds give) from an exported folder, through onnxruntime; checksums first."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest["kind"] != KIND:
            raise ArtifactError(f"{folder}: not a multi-label ONNX export (kind {manifest['kind']!r})")
        meta = manifest["meta"]
        self.class_names = list(meta["class_names"])
        self.thresholds_ = np.asarray(meta["thresholds"], dtype=np.float64)
        self.constant_ = list(meta["constant"])
        self.models_ = [OnnxTextClassifier(folder / f"class_{c}") if fitted else None
                        for c, fitted in enumerate(meta["fitted"])]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), len(self.models_)))
        for c, m in enumerate(self.models_):
            out[:, c] = self.constant_[c] if m is None else m.predict_proba(texts)[:, 1]
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, k) 0/1: the label sets."""
        return (self.predict_proba(texts) >= self.thresholds_).astype(np.int8)
