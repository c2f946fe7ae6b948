"""Optional ONNX export of the scikit-learn end model.

Limitation, checked with skl2onnx 1.20: its TF-IDF converter refuses
``analyzer="char_wb"`` (our default features; "only tokenizer='word' is fully
supported"), and its word tokenizer is not scikit-learn's regex (it also needs
an OS locale at run time). So the export splits the pipeline where it can be
exact:

- ``classifier.onnx``: the logistic regression, converted by skl2onnx with
  double-precision input (TF-IDF features -> class probabilities);
- ``tfidf.json``: the vectorizer's settings, vocabulary and idf weights, from
  which ``OnnxTextClassifier`` rebuilds the same scikit-learn featurizer.

Any ONNX runtime can run the classifier; the featurization is the documented
scikit-learn TF-IDF (n-grams of the settings in ``tfidf.json``, sublinear tf,
idf, L2 norm). A ``manifest.json`` holds each file's sha256, checked before
loading, as for every other artifact; nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .artifacts import write_manifest, artifact_file, read_json, read_manifest, write_json
from .end_models import WORD_AND_CHAR, SklearnTextClassifier, make_vectorizer
from ..errors import ArtifactError

BATCH = 64  # rows per ONNX call: features are dense there, so bound the memory


def lfs_not_carried(served: dict | None) -> str:
    """Why an ONNX export does not answer as the run's server does, or "" when it does.

    ``served``: the run's served-predictor record (``end_model["served"]``, from
    ``models.predictors.select_predictor``; None for runs recorded before it). The export
    carries the end model only; a served predictor that reads LF votes needs the run's LFs
    (Python, often spaCy), which no ONNX graph holds."""
    if not served or not served.get("needs_lfs"):
        return ""
    return (f"the run serves {served['predictor']!r}, which reads the run's LF votes; this export carries the end "
            "model only (LFs are Python code an ONNX runtime cannot run), so it answers as the end model: "
            "pin serving.predictor = \"end_model\" to serve what the export computes")


def export_onnx(model: SklearnTextClassifier, folder: str | Path,
                class_names: Sequence[str] | None = None, served: dict | None = None) -> dict[str, str]:
    """Write ``model`` as ONNX classifier + JSON featurizer into a new folder; ``{file: sha256}``.

    ``class_names`` (one per class index, the project's ``classes``) go into the
    manifest so a consumer of the folder can name the ONNX outputs. ``served``: the
    run's served-predictor record; when it reads LF votes the manifest's ``lfs_not_carried``
    says so (``lfs_not_carried``)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    if not isinstance(model, SklearnTextClassifier):
        raise ArtifactError(f"ONNX export supports the scikit-learn end model, not {type(model).__name__}")
    model._check_fitted()
    if model.embedder or model.analyzer == WORD_AND_CHAR:
        # tfidf.json describes one vectorizer; embeddings would need the embedder in the runtime
        raise ArtifactError(f"ONNX export supports one n-gram vectorizer without embeddings; this model has "
                            f"analyzer={model.analyzer!r}, embedder={model.embedder!r}")
    if model.hash_bits:
        # tfidf.json lists a vocabulary; hashed n-grams have none (ONNX has no murmurhash)
        raise ArtifactError(f"ONNX export needs a vocabulary of n-grams; this model hashes them into "
                            f"2**{model.hash_bits} columns (end_model.hash_bits = 0, or end_model.candidates without "
                            "\"word_hashed\", trains one with a vocabulary)")
    if class_names is not None and len(class_names) != model.cardinality:
        raise ArtifactError(f"{len(class_names)} class names for a model with {model.cardinality} classes")
    vectorizer = model.pipeline_.named_steps["ngrams"]
    classifier = model.pipeline_.named_steps["logreg"]
    n_features = len(vectorizer.vocabulary_)
    onnx_model = convert_sklearn(
        classifier, initial_types=[("features", DoubleTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
    )
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as exc:  # an existing folder is never overwritten
        raise ArtifactError(f"cannot create the export folder {folder}: {exc}") from exc
    (folder / "classifier.onnx").write_bytes(onnx_model.SerializeToString())
    write_json(folder / "tfidf.json", {
        "analyzer": model.analyzer, "ngram_min": model.ngram_min, "ngram_max": model.ngram_max,
        "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
        "idf": vectorizer.idf_.tolist(),
    })
    meta = {"params": model.get_params(), "classes": [int(c) for c in classifier.classes_],
            "class_names": None if class_names is None else [str(c) for c in class_names],
            "lfs_not_carried": lfs_not_carried(served)}
    return write_manifest(folder, "onnx", meta)


class OnnxTextClassifier:
    """``predict_proba(texts)`` from an exported folder, through onnxruntime."""

    def __init__(self, folder: str | Path):
        import onnxruntime

        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest["kind"] != "onnx":
            raise ArtifactError(f"{folder}: not an ONNX export (kind {manifest['kind']!r})")
        with artifact_file(folder / "manifest.json"):
            self.cardinality = int(manifest["meta"]["params"]["cardinality"])
            self.classes_ = np.asarray(manifest["meta"]["classes"])
            self.class_names = manifest["meta"].get("class_names")  # None in exports made before they were kept
        with artifact_file(folder / "tfidf.json"):
            spec = read_json(folder / "tfidf.json")
            self.vectorizer = make_vectorizer(spec["analyzer"], spec["ngram_min"], spec["ngram_max"],
                                              vocabulary=spec["vocabulary"])
            self.vectorizer.idf_ = np.asarray(spec["idf"], dtype=np.float64)
        with artifact_file(folder / "classifier.onnx"):
            self.session = onnxruntime.InferenceSession(str(folder / "classifier.onnx"),
                                                        providers=["CPUExecutionProvider"])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        X = self.vectorizer.transform(list(texts)).tocsr()
        out = np.zeros((X.shape[0], self.cardinality))
        for start in range(0, X.shape[0], BATCH):
            dense = X[start : start + BATCH].toarray()
            _, probs = self.session.run(None, {"features": dense})
            out[start : start + BATCH, self.classes_] = probs
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)
