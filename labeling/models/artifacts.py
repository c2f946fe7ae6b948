"""Save and load models without pickle.

- scikit-learn: skops, loaded with a fixed trusted-type list (skops' own list of
  scikit-learn/numpy/scipy types plus ``TRUSTED_TYPES``); anything else refuses.
- torch: weights in safetensors, vocabulary and settings in JSON.
- label models: JSON (their ``to_dict``).

A model folder holds a ``manifest.json`` with each file's sha256, checked before
anything is loaded, so a swapped or truncated file is refused, not executed. The
manifest alone cannot catch a model rewritten together with its manifest: loaders
take ``expected``, the ``{file name: sha256}`` recorded with the run in the store,
and check the manifest and every file against it first.

Every load failure (a missing file, a malformed manifest, a file of the wrong
format) is an ``ArtifactError`` naming the file, never the library's own exception.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

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
    except (OSError, ValueError) as exc:  # ValueError: invalid JSON or not UTF-8
        raise ArtifactError(f"cannot read {path}: {exc}") from exc


def write_manifest(folder: Path, kind: str, meta: dict) -> dict[str, str]:
    """Write ``folder/manifest.json`` (format, ``kind``, ``meta``, sha256 of every other file in
    the folder, and in its subfolders for the kinds in ``NESTED_KINDS``, named by their POSIX
    path in the folder) and return ``{file name: sha256}``, the manifest's own included."""
    paths = folder.rglob("*") if kind in NESTED_KINDS else folder.iterdir()
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(paths)
             if p.is_file() and p != folder / MANIFEST}
    write_json(folder / MANIFEST, {"format": FORMAT_VERSION, "kind": kind, "meta": meta, "files": files})
    return {**files, MANIFEST: sha256_file(folder / MANIFEST)}


# The files each kind of artifact cannot be loaded without.
REQUIRED_FILES = {
    "sklearn": ("pipeline.skops",),
    "torch": ("weights.safetensors",),  # and vocabulary.json when it reads n-grams
    "label_model": ("label_model.json",),
    "onnx": ("classifier.onnx", "tfidf.json"),
    "spacy_ner": ("pipeline/meta.json", "pipeline/config.cfg"),
}
# Kinds whose files keep the folder layout they had (a run's LF modules, with the
# resource files beside them): their manifest names files by relative POSIX path.
NESTED_KINDS = frozenset({"lf_modules", "spacy_ner"})


def _plain_name(name: str) -> bool:
    return name == Path(name).name and name not in ("", ".", "..", MANIFEST)


def _relative_name(name: str) -> bool:
    """A path inside the folder: relative, POSIX, no ``..``, ``.`` or empty part."""
    path = PurePosixPath(name)
    return (name == path.as_posix() and not path.is_absolute() and "\\" not in name and name != MANIFEST
            and all(part not in ("", ".", "..") for part in name.split("/")))


@contextmanager
def artifact_file(path: Path) -> Iterator[None]:
    """Turn whatever a library raises while reading ``path`` into an ``ArtifactError`` naming it."""
    try:
        yield
    except ArtifactError as exc:
        if str(path) in str(exc):
            raise
        raise ArtifactError(f"{path}: {exc}") from exc
    except Exception as exc:  # skops, safetensors, zipfile, json, a model's from_dict: each has its own
        raise ArtifactError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from exc


def check_recorded(folder: Path, expected: Mapping[str, str]) -> None:
    """Check ``folder``'s files against checksums recorded outside it (the store's run record).

    Raises ``ArtifactError`` naming the first file that is missing or differs, or when
    the record holds no checksum for the manifest.
    """
    folder = Path(folder)
    if MANIFEST not in expected:
        raise ArtifactError(f"{folder / MANIFEST}: no sha256 recorded for it; refusing to load")
    for name, digest in sorted(expected.items(), key=lambda item: item[0] != MANIFEST):
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        if sha256_file(path) != digest:
            raise ArtifactError(f"{path}: sha256 does not match the one recorded with the run; refusing to load")


def _check_shape(path: Path, manifest) -> None:
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{path}: unsupported artifact format {found!r}")
    if not isinstance(manifest.get("kind"), str) or not isinstance(manifest.get("meta"), dict):
        raise ArtifactError(f"{path}: 'kind' (text) and 'meta' (a table) are required")
    nested = manifest["kind"] in NESTED_KINDS
    if not isinstance(files, dict) or not all(
        isinstance(n, str) and isinstance(h, str) and (_relative_name(n) if nested else _plain_name(n))
        for n, h in files.items()
    ):
        what = "relative paths in" if nested else "plain file names of"
        raise ArtifactError(f"{path}: 'files' must map {what} the folder to sha256 digests")
    required = REQUIRED_FILES.get(manifest["kind"], ())
    params = manifest["meta"].get("params")
    if manifest["kind"] == "torch" and (not isinstance(params, dict) or params.get("ngrams", True)):
        required += ("vocabulary.json",)
    missing = [n for n in required if n not in files]
    if missing:
        raise ArtifactError(f"{path}: a {manifest['kind']} artifact needs {missing}, which the manifest does not list")


def read_manifest(folder: Path, expected: Mapping[str, str] | None = None) -> dict:
    """The folder's manifest, after checking every listed file's sha256.

    ``expected``: ``{file name: sha256}`` recorded with the run; when given, the
    manifest itself and every file are checked against it first.
    """
    folder = Path(folder)
    if expected is not None:
        check_recorded(folder, expected)
    manifest = read_json(folder / MANIFEST)
    _check_shape(folder / MANIFEST, manifest)
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        if sha256_file(path) != digest:
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
        return write_manifest(folder, "sklearn", {"params": params})
    if isinstance(model, TorchTextClassifier):
        from safetensors.numpy import save_file

        model._check_fitted()
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in model.net_.state_dict().items()}
        if model.ngrams:
            tensors["tfidf.idf"] = model.vectorizer_.idf_.astype(np.float32)
            vocabulary = {term: int(i) for term, i in model.vectorizer_.vocabulary_.items()}
            write_json(folder / "vocabulary.json", vocabulary)
        save_file(tensors, str(folder / "weights.safetensors"))
        return write_manifest(folder, "torch", {"params": params})
    raise ArtifactError(f"cannot save end model of type {type(model).__name__}")


def _load_sklearn(folder: Path, params: dict) -> SklearnTextClassifier:
    import skops.io as sio

    path = folder / "pipeline.skops"
    with artifact_file(path):
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ArtifactError(f"{path}: refusing untrusted types {untrusted}")
    with artifact_file(folder / MANIFEST):
        model = SklearnTextClassifier(**params)
    with artifact_file(path):
        model.pipeline_ = sio.load(path, trusted=list(TRUSTED_TYPES))
    model.classes_ = np.arange(model.cardinality)
    return model


def _load_torch(folder: Path, params: dict) -> TorchTextClassifier:
    import torch
    from safetensors.numpy import load_file
    from .end_models import make_vectorizer

    with artifact_file(folder / MANIFEST):
        model = TorchTextClassifier(**params)
    weights = folder / "weights.safetensors"
    with artifact_file(weights):
        tensors = load_file(str(weights))
    n_sparse = 0
    if model.ngrams:
        with artifact_file(weights):
            idf = tensors.pop("tfidf.idf").astype(np.float64)
        with artifact_file(folder / "vocabulary.json"):
            vocabulary = read_json(folder / "vocabulary.json")
            vectorizer = make_vectorizer(model.analyzer, model.ngram_min, model.ngram_max, dtype=np.float32,
                                         vocabulary=vocabulary)
            vectorizer.idf_ = idf  # refused when the vocabulary's size does not match the saved idf
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


def load_end_model(folder: str | Path, expected: Mapping[str, str] | None = None):
    """Load an end model saved by ``save_end_model``; verifies checksums first.

    ``expected``: the run's recorded ``{file name: sha256}`` (see ``read_manifest``).
    Raises ``ArtifactError`` naming the file for any failure.
    """
    folder = Path(folder)
    manifest = read_manifest(folder, expected)
    loaders = {"sklearn": _load_sklearn, "torch": _load_torch}
    if manifest["kind"] not in loaders:
        raise ArtifactError(f"{folder / MANIFEST}: unknown model kind {manifest['kind']!r}")
    params = manifest["meta"].get("params")
    if not isinstance(params, dict):
        raise ArtifactError(f"{folder / MANIFEST}: 'meta.params' (the model's settings) is missing")
    params = dict(params)
    if isinstance(params.get("class_offsets"), list):  # JSON gives back a list
        params["class_offsets"] = tuple(params["class_offsets"])
    with artifact_file(folder):  # anything the per-file checks did not name
        return loaders[manifest["kind"]](folder, params)


def save_label_model(model, folder: str | Path) -> dict[str, str]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    write_json(folder / "label_model.json", model.to_dict())
    return write_manifest(folder, "label_model", {"type": type(model).__name__})


def load_label_model(folder: str | Path, expected: Mapping[str, str] | None = None):
    """Load a label model saved by ``save_label_model``; raises ``ArtifactError`` naming the file."""
    from .label_models import label_model_from_dict

    folder = Path(folder)
    manifest = read_manifest(folder, expected)
    if manifest["kind"] != "label_model":
        raise ArtifactError(f"{folder / MANIFEST}: not a label model (kind {manifest['kind']!r})")
    path = folder / "label_model.json"
    with artifact_file(path):
        return label_model_from_dict(read_json(path))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
