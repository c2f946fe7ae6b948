"""Save and load models without pickle.

- scikit-learn: skops, loaded with a fixed trusted-type list (skops' own list of
  scikit-learn/numpy/scipy types plus ``TRUSTED_TYPES``); anything else refuses.
- torch: weights in safetensors, vocabulary and settings in JSON.
- label models: JSON (their ``to_dict``).

A model folder holds a ``manifest.json`` with each file's sha256, checked before
anything is loaded, so a swapped or truncated file is refused, not executed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..data.datasets import sha256_file
from .end_models import SklearnTextClassifier, TorchTextClassifier
from ..errors import ArtifactError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Types trusted beyond skops' defaults. Empty on purpose: our pipelines hold only
# scikit-learn and numpy objects, which skops already knows to be safe.
TRUSTED_TYPES: tuple[str, ...] = ()


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True), encoding="utf-8")


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def _write_manifest(folder: Path, kind: str, meta: dict) -> dict[str, str]:
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST}
    write_json(folder / MANIFEST, {"format": FORMAT_VERSION, "kind": kind, "meta": meta, "files": files})
    return {**files, MANIFEST: sha256_file(folder / MANIFEST)}


def read_manifest(folder: Path) -> dict:
    """The folder's manifest, after checking every listed file's sha256."""
    folder = Path(folder)
    manifest = read_json(folder / MANIFEST)
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{folder}: unsupported artifact format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{folder}: {name} is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{path}: sha256 does not match the manifest; refusing to load")
    return manifest


def save_end_model(model, folder: str | Path) -> dict[str, str]:
    """Write ``model`` into a new folder; returns ``{file name: sha256}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    params = model.get_params()
    if isinstance(model, SklearnTextClassifier):
        import skops.io as sio

        model._check_fitted()
        sio.dump(model.pipeline_, folder / "pipeline.skops")
        return _write_manifest(folder, "sklearn", {"params": params})
    if isinstance(model, TorchTextClassifier):
        from safetensors.numpy import save_file

        model._check_fitted()
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in model.net_.state_dict().items()}
        if model.ngrams:
            tensors["tfidf.idf"] = model.vectorizer_.idf_.astype(np.float32)
            vocabulary = {term: int(i) for term, i in model.vectorizer_.vocabulary_.items()}
            write_json(folder / "vocabulary.json", vocabulary)
        save_file(tensors, str(folder / "weights.safetensors"))
        return _write_manifest(folder, "torch", {"params": params})
    raise ArtifactError(f"cannot save end model of type {type(model).__name__}")


def _load_sklearn(folder: Path, params: dict) -> SklearnTextClassifier:
    import skops.io as sio

    path = folder / "pipeline.skops"
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ArtifactError(f"{path}: refusing untrusted types {untrusted}")
    model = SklearnTextClassifier(**params)
    model.pipeline_ = sio.load(path, trusted=list(TRUSTED_TYPES))
    model.classes_ = np.arange(model.cardinality)
    return model


def _load_torch(folder: Path, params: dict) -> TorchTextClassifier:
    import torch
    from safetensors.numpy import load_file
    from .end_models import make_vectorizer

    model = TorchTextClassifier(**params)
    tensors = load_file(str(folder / "weights.safetensors"))
    n_sparse = 0
    if model.ngrams:
        vocabulary = read_json(folder / "vocabulary.json")
        vectorizer = make_vectorizer(model.analyzer, model.ngram_min, model.ngram_max, dtype=np.float32,
                                     vocabulary=vocabulary)
        vectorizer.idf_ = tensors.pop("tfidf.idf").astype(np.float64)
        model.vectorizer_, n_sparse = vectorizer, len(vocabulary)
    n_dense = tensors["net.dense.weight"].shape[1] if "net.dense.weight" in tensors else 0
    net = model.network(n_sparse, n_dense)
    state = {k.removeprefix("net."): torch.from_numpy(v) for k, v in tensors.items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{folder}: weights do not fit the saved settings: {exc}") from exc
    model.net_, model.device_ = net.eval(), "cpu"
    model.classes_ = np.arange(model.cardinality)
    return model


def load_end_model(folder: str | Path):
    """Load an end model saved by ``save_end_model``; verifies checksums first."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    loaders = {"sklearn": _load_sklearn, "torch": _load_torch}
    if manifest["kind"] not in loaders:
        raise ArtifactError(f"{folder}: unknown model kind {manifest['kind']!r}")
    params = dict(manifest["meta"]["params"])
    if "class_offsets" in params:  # JSON gives back a list
        params["class_offsets"] = tuple(params["class_offsets"])
    return loaders[manifest["kind"]](folder, params)


def save_label_model(model, folder: str | Path) -> dict[str, str]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    write_json(folder / "label_model.json", model.to_dict())
    return _write_manifest(folder, "label_model", {"type": type(model).__name__})


def load_label_model(folder: str | Path):
    from .label_models import label_model_from_dict

    folder = Path(folder)
    read_manifest(folder)
    return label_model_from_dict(read_json(folder / "label_model.json"))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
