"""spaCy parses done once per distinct text, and kept on disk.

``parse_texts`` parses the distinct texts with one batched ``nlp.pipe`` (several
processes for large batches), with only the components asked for. Parses are
saved with spaCy's own ``DocBin`` format (no pickle) under::

    <cache root>/spacy/<pipeline key>/<segment>.spacy + <segment>.keys.npy

keyed by a 128-bit hash of the text; the pipeline key names the pipeline, its
version, spaCy's version and the enabled components, so a different pipeline
never reads another's parses. Every LF that needs a parse shares them.

A ``DocBin`` keeps tokens, tags, POS, morphology, lemmas, dependencies, sentence
starts and entities; ``doc.tensor`` (what ``doc.similarity`` uses with a pipeline
that has no word vectors) travels in each doc's user data, so a doc read back
from the cache or from a worker is the doc the pipeline made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import column_keys
from .core import load_spacy
from .workers import fork_map

__all__ = ["ParseCache", "load_pipeline", "parse_texts", "pipeline_key"]

# Below this many texts, starting worker processes costs more than it saves.
_MIN_TEXTS_PER_PROCESS = 400


def load_pipeline(name: str, disable: Sequence[str] = ()):
    """The pipeline ``name`` with ``disable``d components switched off (loaded once per process)."""
    nlp = load_spacy(name)
    if not disable:
        return nlp
    return _disabled_copy(name, tuple(sorted(disable)))


_DISABLED: dict[tuple[str, tuple[str, ...]], object] = {}


def _disabled_copy(name: str, disable: tuple[str, ...]):
    key = (name, disable)
    if key not in _DISABLED:
        import spacy

        _DISABLED[key] = spacy.blank(name.split(":", 1)[1]) if name.startswith("blank:") else spacy.load(
            name, disable=list(disable)
        )
    return _DISABLED[key]


def pipeline_key(nlp, name: str) -> str:
    import spacy

    meta = getattr(nlp, "meta", {}) or {}
    # "tensors-npz": segments hold the docs and their tensors apart (see _docbin_bytes)
    ident = f"tensors-npz|{name}|{meta.get('lang')}_{meta.get('name')}=={meta.get('version')}|spacy=={spacy.__version__}|{','.join(nlp.pipe_names)}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return column_keys(pd.Series(list(texts), dtype=object))


class ParseCache:
    """Parsed ``Doc``s by (pipeline key, text hash), stored as ``DocBin`` segments under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / "spacy" / key

    def get(self, nlp, key: str, keys: np.ndarray) -> list:
        """Cached docs for ``keys`` (``None`` where not cached)."""
        out: list = [None] * len(keys)
        folder = self._dir(key)
        if not folder.is_dir() or not len(keys):
            return out
        wanted = {(int(a), int(b)): i for i, (a, b) in enumerate(keys.tolist())}
        for keys_path in sorted(folder.glob("*.keys.npy")):
            seg_keys = np.load(keys_path, allow_pickle=False).tolist()
            hits = [wanted.get((a, b)) for a, b in seg_keys]
            if not any(h is not None for h in hits):
                continue
            data = (keys_path.parent / keys_path.name.replace(".keys.npy", ".spacy")).read_bytes()
            for target, doc in zip(hits, docs_from_bytes(data, nlp.vocab)):
                if target is not None:
                    out[target] = doc
        return out

    def put(self, key: str, keys: np.ndarray, docs: Sequence) -> None:
        if len(docs):
            self.put_bytes(key, keys, _docbin_bytes(docs))

    def put_bytes(self, key: str, keys: np.ndarray, data: bytes) -> None:
        """Store a serialized ``DocBin`` whose docs are the texts of ``keys``, in order."""
        if not len(keys):
            return
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        keys_tmp = folder / f".{name}.keys.tmp"
        with open(keys_tmp, "wb") as fh:
            np.save(fh, np.asarray(keys, dtype=np.uint64))
        # docs first, then the keys that make them visible
        os.replace(tmp, folder / f"{name}.spacy")
        os.replace(keys_tmp, folder / f"{name}.keys.npy")

    def clear(self, keys: Iterable[str] | None = None) -> int:
        """Delete the parses of the pipelines ``keys`` (``pipeline_key``; all when None);
        returns how many segments were removed."""
        root = self.root / "spacy"
        count = 0
        for folder in [root] if keys is None else [self._dir(k) for k in keys]:
            count += sum(1 for _ in folder.rglob("*.spacy")) if folder.is_dir() else 0
            shutil.rmtree(folder, ignore_errors=True)
        return count


# A segment is the DocBin (without user data) followed by the docs' tensors as one .npz:
# DocBin's own user-data round trip decodes each doc's msgpack through an entry-point
# lookup (~2 ms a doc), which made re-reading cached parses 5x slower than parsing
# in bulk. Layout: _SEGMENT_MAGIC, the DocBin's length (8 bytes, little-endian), the
# DocBin, then an .npz of ``rows`` (n,) int64 (-1: no tensor), ``data`` (sum rows, width).
_SEGMENT_MAGIC = b"labeling-docs-1\n"


def _docbin_bytes(docs: Sequence) -> bytes:
    """A segment of ``docs``: tokens and annotations (``DocBin``) and their tensors (the docs are left as they were)."""
    import io

    from spacy.tokens import DocBin

    docbin = DocBin(docs=docs).to_bytes()
    tensors = [np.asarray(doc.tensor, dtype=np.float32) for doc in docs]
    rows = np.array([t.shape[0] if t.ndim == 2 else -1 for t in tensors], dtype=np.int64)
    width = next((t.shape[1] for t in tensors if t.ndim == 2), 0)
    data = (np.concatenate([t for t in tensors if t.ndim == 2], axis=0) if (rows >= 0).any()
            else np.zeros((0, width), dtype=np.float32))
    out = io.BytesIO()
    np.savez(out, rows=rows, data=data)
    return _SEGMENT_MAGIC + len(docbin).to_bytes(8, "little") + docbin + out.getvalue()


def docs_from_bytes(data: bytes, vocab) -> list:
    """The docs of a segment written by ``_docbin_bytes``, tensors restored."""
    import io

    from spacy.tokens import DocBin

    head = len(_SEGMENT_MAGIC)
    if not data.startswith(_SEGMENT_MAGIC):
        raise ValueError("not a parse-cache segment")
    size = int.from_bytes(data[head:head + 8], "little")
    docs = list(DocBin().from_bytes(data[head + 8:head + 8 + size]).get_docs(vocab))
    with np.load(io.BytesIO(data[head + 8 + size:]), allow_pickle=False) as arrays:
        rows, tensors = arrays["rows"], arrays["data"]
    offset = 0
    for doc, n in zip(docs, rows.tolist()):
        if n >= 0:
            doc.tensor = tensors[offset:offset + n]
            offset += n
    return docs


def _parse_chunk(state: dict, task: int) -> bytes:
    a, b = state["bounds"][task]
    return _docbin_bytes(list(state["nlp"].pipe(state["texts"][a:b], batch_size=state["batch_size"])))


def parse_texts(
    texts: Sequence[str],
    nlp,
    *,
    name: str,
    cache: ParseCache | None = None,
    n_process: int = 1,
    batch_size: int = 256,
) -> list:
    """One ``Doc`` per text, parsing each distinct uncached text once.

    Several processes parse in forked workers that send back one ``DocBin`` per
    chunk, which also goes to the cache as it is. spaCy's own ``n_process`` sends
    each doc back on its own, and reading one costs ~2 ms in the parent (a registry
    lookup per doc), more than parsing a short comment.
    """
    unique = list(dict.fromkeys(texts))
    keys = text_keys(unique)
    pkey = pipeline_key(nlp, name)
    docs = cache.get(nlp, pkey, keys) if cache is not None else [None] * len(unique)
    todo = [i for i, d in enumerate(docs) if d is None]
    processes = max(1, min(n_process, len(todo) // _MIN_TEXTS_PER_PROCESS))
    if processes > 1:
        # a few chunks per process: balanced, and each DocBin stays small
        size = -(-len(todo) // (4 * processes))
        bounds = [(a, min(a + size, len(todo))) for a in range(0, len(todo), size)]
        state = {"nlp": nlp, "texts": [unique[i] for i in todo], "bounds": bounds, "batch_size": batch_size}
        for (a, b), data in zip(bounds, fork_map(_parse_chunk, state, len(bounds), processes, desc="spaCy")):
            for i, doc in zip(todo[a:b], docs_from_bytes(data, nlp.vocab)):
                docs[i] = doc
            if cache is not None:
                cache.put_bytes(pkey, keys[todo[a:b]], data)
    elif todo:
        parsed = list(nlp.pipe((unique[i] for i in todo), batch_size=batch_size))
        for i, doc in zip(todo, parsed):
            docs[i] = doc
        if cache is not None:
            cache.put(pkey, keys[todo], parsed)
    by_text = dict(zip(unique, docs))
    return [by_text[t] for t in texts]
