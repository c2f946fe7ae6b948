"""Sentence embeddings of texts: offline by default, cached on disk by text hash.

An embedder maps texts to an (n, d) float32 array whose rows have unit L2 norm (so a dot
product is the cosine similarity). It is named by a spec string:

- ``"wordllama"`` (default) or ``"wordllama:<dim>"``: WordLlama's static token embeddings
  (MIT), mean-pooled: the 256-d ``l2_supercat`` model, or its first ``dim`` <= 256
  components (trained Matryoshka-style, so truncation keeps most of the quality). The
  weights and tokenizer ship inside the PyPI wheel, so this works with no network. Its
  loader looks for the tokenizer under ``cache_dir/tokenizers`` and otherwise downloads it,
  so we pass the package's own folder as ``cache_dir``.
- ``"model2vec:<name or path>"``: a Model2Vec static model (``pip install model2vec``).
- ``"sentence-transformers:<name or path>"``: any sentence-transformers model
  (``pip install sentence-transformers``); a hub name needs the network once, a local
  folder does not.

The cache keeps one folder per embedder spec: ``<root>/embeddings/<key>/<segment>.npz``
holding ``keys`` (n, 2) uint64 (xxh3-128 of each text's UTF-8 bytes, as the LF vote
cache keys texts) and ``vectors`` (n, d) float32, written atomically, read without pickle.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..lf.cache import column_keys

__all__ = ["Embedder", "EmbeddingCache", "embed_texts", "load_embedder"]

DEFAULT_EMBEDDER = "wordllama"


@dataclass(frozen=True)
class Embedder:
    """A named text -> vector function. ``embed(texts)`` is (n, dim) float32, rows unit-norm."""

    spec: str
    dim: int
    encode: Callable[[list[str]], np.ndarray] = field(repr=False, compare=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


_LOADED: dict[str, Embedder] = {}


def load_embedder(spec: str = DEFAULT_EMBEDDER) -> Embedder:
    """The embedder named by ``spec`` (see the module docstring), loaded once per process.

    Raises ``ConfigError`` for an unknown spec or a missing optional package, naming what
    to install.
    """
    if spec in _LOADED:
        return _LOADED[spec]
    kind, _, arg = spec.partition(":")
    if kind == "wordllama":
        embedder = _wordllama(spec, int(arg) if arg else 256)
    elif kind == "model2vec" and arg:
        model = _import("model2vec", "model2vec").StaticModel.from_pretrained(arg)
        embedder = Embedder(spec, int(model.dim), lambda texts: model.encode(texts))
    elif kind == "sentence-transformers" and arg:
        model = _import("sentence_transformers", "sentence-transformers").SentenceTransformer(arg)
        embedder = Embedder(spec, int(model.get_sentence_embedding_dimension()),
                            lambda texts: model.encode(texts, batch_size=64, show_progress_bar=False))
    else:
        raise ConfigError(f"unknown embedder {spec!r}; use 'wordllama[:dim]', 'model2vec:<model>' or "
                          "'sentence-transformers:<model>'")
    _LOADED[spec] = embedder
    return embedder


def _import(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"this embedder needs the {package} package: pip install {package}") from exc


def _wordllama(spec: str, dim: int) -> Embedder:
    wordllama = _import("wordllama", "wordllama")
    try:
        if not 1 <= dim <= 256:
            raise ValueError(f"dim must be in 1..256, got {dim}")
        model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, dim=256,
                                         trunc_dim=None if dim == 256 else dim)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"cannot load {spec!r}: {exc}") from exc
    return Embedder(spec, dim, lambda texts: model.embed(texts, norm=True, return_np=True))


class EmbeddingCache:
    """Vectors by (embedder spec, text hash), in ``<root>/embeddings``."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / "embeddings"

    def _dir(self, spec: str) -> Path:
        return self.root / hashlib.sha256(spec.encode()).hexdigest()[:16]

    def lookup(self, spec: str, keys: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (n, dim) float32, found (n,) bool)`` for ``keys`` (n, 2) uint64."""
        vectors = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        folder = self._dir(spec)
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
            with np.load(path, allow_pickle=False) as segment:
                seg_keys, seg_vectors = segment["keys"], segment["vectors"]
            if seg_vectors.shape[1] != dim:
                continue
            index = pd.MultiIndex.from_arrays([seg_keys[:, 0], seg_keys[:, 1]])
            pos = index.get_indexer(pd.MultiIndex.from_arrays([keys[:, 0], keys[:, 1]]))
            hit = (pos >= 0) & ~found
            vectors[hit] = seg_vectors[pos[hit]]
            found |= hit
        return vectors, found

    def store(self, spec: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        folder = self._dir(spec)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{uuid.uuid4().hex}.tmp.npz"
        np.savez(tmp, keys=np.asarray(keys, dtype=np.uint64), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, folder / f"{uuid.uuid4().hex}.npz")


def embed_texts(texts: Sequence[str], embedder: str | Embedder = DEFAULT_EMBEDDER,
                cache: EmbeddingCache | None = None) -> np.ndarray:
    """(n, d) float32 unit-norm embeddings of ``texts``; each distinct text embedded once,
    and with ``cache`` only texts not embedded before by the same embedder spec."""
    model = load_embedder(embedder) if isinstance(embedder, str) else embedder
    series = pd.Series(list(texts), dtype="string[pyarrow]")
    keys = column_keys(series)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    unique_keys = keys[first]
    if cache is None:
        vectors, found = np.zeros((len(first), model.dim), np.float32), np.zeros(len(first), bool)
    else:
        vectors, found = cache.lookup(model.spec, unique_keys, model.dim)
    missing = np.flatnonzero(~found)
    if len(missing):
        vectors[missing] = model.embed([str(series.iat[first[i]]) for i in missing])
        if cache is not None:
            cache.store(model.spec, unique_keys[missing], vectors[missing])
    return vectors[inverse.reshape(-1)]
