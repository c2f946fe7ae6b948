"""The ``spans_json`` source: tokenized documents with gold and weak spans.

The format is CHMM's and WRENCH's sequence-tagging format (``../shared/data/bc5cdr``):
a JSON object ``{doc_id: {"data": {"text": [tokens]}, "label": [[start, end, type], ...],
"weak_labels": [[[start, end, type], ...] for each LF]}}``, token offsets with ``end``
exclusive, and a ``meta.json`` beside it naming the LFs (``lf``, in ``weak_labels``
order), the entity types (``entity_types``) and ``lf_rec``, the recommended LF subset
that WRENCH's published numbers use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, LabelError
from ..settings import require_data_dir
from .tags import spans_to_tags, vote_tensor

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SpanDataset:
    """One split: ``ids[d]``, ``tokens[d]`` (a tuple of str), ``gold[d]`` and
    ``weak[d][j]`` (tuples of spans ``(start, end, type index)``, token offsets, end
    exclusive), with the LF names (``lf_names[j]``) and the entity ``types``."""

    ids: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]
    gold: tuple[tuple[tuple[int, int, int], ...], ...]
    weak: tuple[tuple[tuple[tuple[int, int, int], ...], ...], ...]
    lf_names: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per document, ``(n_docs,)`` int."""
        return np.array([len(t) for t in self.tokens], dtype=np.int64)

    def votes(self) -> np.ndarray:
        """The IO vote tensor ``(n_tokens, m)`` (``tags.vote_tensor``)."""
        return vote_tensor(self.weak, self.lengths)

    def gold_tags(self, scheme: str = "io") -> np.ndarray:
        """Gold tags of all documents, stacked ``(n_tokens,)``."""
        if not self.tokens:
            return np.empty(0, np.int64)
        return np.concatenate([spans_to_tags(g, len(t), scheme) for g, t in zip(self.gold, self.tokens)])


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc}") from exc


def _select_lfs(names: list[str], weak_label_names, meta: dict, path: Path) -> list[int]:
    if weak_label_names is None:
        return list(range(len(names)))
    if weak_label_names == "lf_rec":
        if "lf_rec" not in meta:
            raise DatasetError(f"weak_label_names='lf_rec' but {path.parent / 'meta.json'} has no 'lf_rec'")
        weak_label_names = meta["lf_rec"]
    if isinstance(weak_label_names, str) or not all(isinstance(n, str) for n in weak_label_names):
        raise DatasetError(f"weak_label_names must be a list of LF names or 'lf_rec', got {weak_label_names!r}")
    unknown = [n for n in weak_label_names if n not in names]
    if unknown:
        raise DatasetError(f"weak_label_names {unknown} are not LFs of {path} (meta.json names {len(names)})")
    return [names.index(n) for n in weak_label_names]


def _span(raw, n_tokens: int, types: list[str], where: str) -> tuple[int, int, int]:
    ok = (isinstance(raw, (list, tuple)) and len(raw) == 3 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                   for x in raw[:2]))
    if not ok:
        raise DatasetError(f"{where}: span {raw!r} is not [start, end, type] with integer token offsets")
    start, end, label = raw
    if not 0 <= start < end <= n_tokens:
        raise DatasetError(f"{where}: span {raw!r} is empty or outside the document's {n_tokens} tokens "
                           "(token offsets, end exclusive)")
    if label not in types:
        raise DatasetError(f"{where}: span {raw!r} has type {label!r}, not one of {types}")
    return start, end, types.index(label)


def load_spans_json(path: str | Path, *, weak_label_names: Sequence[str] | str | None = None,
                    types: Sequence[str] | None = None) -> SpanDataset:
    """Read one ``spans_json`` split file (see the module docstring).

    ``weak_label_names``: keep these LFs, in this order (a list of names, or ``"lf_rec"``
    for meta.json's recommended subset); None keeps all. ``types``: the entity types
    (default: meta.json's ``entity_types``). Raises ``DatasetError`` naming the file, the
    document id and the span for malformed input (a span that is not three items,
    non-integer, empty or outside the tokens, of an unknown type; a document whose LF
    count differs from meta.json's).
    """
    path = Path(path)
    meta = _read_json(path.parent / "meta.json", "spans_json meta.json")
    names = meta.get("lf")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{path.parent / 'meta.json'} must name the LFs in 'lf' (a list of str)")
    types = list(types if types is not None else meta.get("entity_types") or [])
    if not types:
        raise DatasetError(f"{path.parent / 'meta.json'} has no 'entity_types' and none were given")
    keep = _select_lfs(names, weak_label_names, meta, path)
    raw = _read_json(path, "spans_json split")
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a JSON object of documents keyed by id")
    ids, tokens, gold, weak = [], [], [], []
    for doc_id, doc in raw.items():
        where = f"{path.name} document {doc_id!r}"
        try:
            toks = doc["data"]["text"]
            labels, weak_labels = doc["label"], doc["weak_labels"]
        except (KeyError, TypeError):
            raise DatasetError(f"{where}: needs data.text, label and weak_labels") from None
        if not isinstance(toks, list) or not all(isinstance(t, str) for t in toks):
            raise DatasetError(f"{where}: data.text must be a list of token strings")
        if not isinstance(weak_labels, list) or len(weak_labels) != len(names):
            raise DatasetError(f"{where}: weak_labels has {len(weak_labels) if isinstance(weak_labels, list) else '?'}"
                               f" LFs but meta.json names {len(names)}")
        ids.append(str(doc_id))
        tokens.append(tuple(toks))
        gold.append(tuple(_span(s, len(toks), types, f"{where} gold") for s in labels))
        weak.append(tuple(tuple(_span(s, len(toks), types, f"{where} LF {names[j]!r}") for s in weak_labels[j])
                          for j in keep))
    return SpanDataset(tuple(ids), tuple(tokens), tuple(gold), tuple(weak), tuple(names[j] for j in keep),
                       tuple(types))


def load_bc5cdr(split: str, *, weak_label_names: Sequence[str] | str | None = None,
                data_dir: str | Path | None = None) -> SpanDataset:
    """BC5CDR (Li et al. 2016) with CHMM's 30 span LFs, from ``<data dir>/bc5cdr/<split>.json``.

    ``split``: "train", "valid" or "test" (500 abstracts each). The data folder is
    ``data_dir``, else ``$LABELING_DATA_DIR``, else the checkout's ``../shared/data``.
    """
    if split not in SPLITS:
        raise DatasetError(f"bc5cdr split must be one of {SPLITS}, got {split!r}")
    folder = require_data_dir(data_dir, what="bc5cdr") / "bc5cdr"
    return load_spans_json(folder / f"{split}.json", weak_label_names=weak_label_names)


def span_problem(span, text: str, types: Sequence[str]) -> str:
    """Why ``span`` is not ``(start, end, type)`` with ``0 <= start < end <= len(text)``
    (character offsets, end exclusive) and a type of ``types``; "" when it is."""
    if not (isinstance(span, (list, tuple)) and len(span) == 3):
        return f"span {span!r} is not [start, end, type]"
    start, end, label = span
    if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
            and not isinstance(end, bool) and 0 <= start < end <= len(text)):
        return f"span {list(span)!r} is not inside its text: it needs 0 <= start < end <= {len(text)}"
    if label not in types:
        return f"span {list(span)!r} has type {label!r}, not one of {list(types)}"
    return ""


def check_char_spans(spans: Sequence, text: str, types: Sequence[str], *, where: str) -> list[tuple[int, int, str]]:
    """``spans`` checked against ``text`` (``span_problem``) and for overlaps, sorted; raises
    ``LabelError`` naming ``where`` and the first problem."""
    out = []
    for span in spans:
        problem = span_problem(span, text, types)
        if problem:
            raise LabelError(f"{where}: {problem}")
        out.append((int(span[0]), int(span[1]), str(span[2])))
    out.sort()
    for a, b in zip(out, out[1:]):
        if b[0] < a[1]:
            raise LabelError(f"{where}: spans {list(a)} and {list(b)} overlap (one entity per character)")
    return out
