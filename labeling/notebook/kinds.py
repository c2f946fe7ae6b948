"""LF kinds users build from examples: similarity to seed texts, and rules mined from gold.

- ``similar_to(examples, label, threshold)``: votes ``label`` where the cosine similarity
  of a row's sentence embedding to the nearest seed text is at least ``threshold``
  (embeddings from ``labeling.models.embeddings``, unit rows, so cosine = dot product).
- ``from_gold(report)``: the keyword suggestions of a refine report (or any
  ``KeywordSuggestion``s) as declarative regex LFs, searching exactly the pattern whose
  precision the report measured.

Both return ordinary Snorkel ``LabelingFunction`` objects whose settings live in their
resources, so ``lf_version`` changes when the seeds, threshold or embedder change, and the
workbench can write them back as factory calls (``similarity_settings``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from ..errors import ConfigError
from ..lf.cache import column_keys
from ..lf.declarative import regex_lf
from ..matrix import ABSTAIN
from ..models.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, embed_texts
from ..review.refinement import KeywordSuggestion, RefineReport, keyword_pattern

__all__ = ["from_gold", "prepare_similarity", "similar_to", "similarity_settings"]

#: similarities are rounded to this many decimals before the threshold test, so a vector
#: computed in a batch and one computed alone (equal up to float rounding) vote alike
SIMILARITY_DECIMALS = 4


class _VectorMemo:
    """Embeddings of texts seen in this process, by (embedder spec, text).

    The vote function reads it row by row; ``prepare_similarity`` fills it in one batch
    (through the on-disk cache) before the rows are voted on, and worker processes forked
    after that inherit it. A miss embeds the one text.
    """

    def __init__(self):
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._seeds: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._stored: dict[tuple[str, str], set[str]] = {}  # (cache root, spec) -> texts known to be there

    def fill(self, spec: str, texts: Sequence[str], cache: EmbeddingCache | None) -> None:
        distinct = list(dict.fromkeys(texts))
        missing = [t for t in distinct if (spec, t) not in self._vectors]
        if missing:
            for text, vector in zip(missing, embed_texts(missing, spec, cache=cache)):
                self._vectors[(spec, text)] = vector
        if cache is not None:
            # texts embedded earlier in this process (without this cache) go to disk too
            stored = self._stored.setdefault((str(cache.root), spec), set())
            stored.update(missing)
            unsaved = [t for t in distinct if t not in stored]
            if unsaved:
                keys = column_keys(pd.Series(unsaved, dtype="string[pyarrow]"))
                cache.store(spec, keys, np.vstack([self._vectors[(spec, t)] for t in unsaved]))
                stored.update(unsaved)

    def vector(self, spec: str, text: str) -> np.ndarray:
        if (spec, text) not in self._vectors:
            self.fill(spec, [text], None)
        return self._vectors[(spec, text)]

    def seeds(self, spec: str, seeds: tuple[str, ...]) -> np.ndarray:
        if (spec, seeds) not in self._seeds:
            self._seeds[(spec, seeds)] = np.vstack([self.vector(spec, s) for s in seeds])
        return self._seeds[(spec, seeds)]

    def __repr__(self) -> str:
        # lf_version hashes the globals a vote function uses: the memo's contents must not count
        return "_VectorMemo()"


_MEMO = _VectorMemo()


def _field_text(x, field: str) -> str:
    return str(x[field] if hasattr(x, "__getitem__") and not isinstance(x, tuple) else getattr(x, field))


def _similar_vote(x, field: str, seeds: tuple, label: int, threshold: float, embedder: str) -> int:
    similarity = float(np.max(_MEMO.seeds(embedder, seeds) @ _MEMO.vector(embedder, _field_text(x, field))))
    return label if round(similarity, SIMILARITY_DECIMALS) >= threshold else ABSTAIN


def _slug(text: str, words: int = 5) -> str:
    return "_".join(re.findall(r"\w+", text.lower())[:words]) or "text"


def similar_to(
    examples: Iterable[str],
    label: int,
    threshold: float = 0.8,
    *,
    name: str | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    field: str = "text",
) -> LabelingFunction:
    """An LF voting ``label`` where ``max_i cos(embed(x[field]), embed(examples[i])) >= threshold``.

    ``examples``: one or more seed texts. ``threshold`` in [-1, 1] (WordLlama similarities of
    unrelated English texts sit around 0.3-0.5, paraphrases above 0.8). ``name`` defaults to
    ``similar_<first seed>``. ``embedder``: a spec of ``labeling.models.embeddings.load_embedder``.
    Raises ``ConfigError`` for no seeds, a label < 0 or a threshold outside [-1, 1].
    """
    seeds = tuple(dict.fromkeys(str(e) for e in examples))
    name = name or f"similar_{_slug(seeds[0]) if seeds else 'text'}"
    if not seeds:
        raise ConfigError(f"LF {name!r}: similar_to needs at least one example text")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
        raise ConfigError(f"LF {name!r}: label must be a class index >= 0, got {label!r}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"LF {name!r}: threshold is a cosine similarity in [-1, 1], got {threshold!r}")
    resources = {"field": field, "seeds": seeds, "label": int(label), "threshold": float(threshold),
                 "embedder": embedder}
    return LabelingFunction(name=name, f=_similar_vote, resources=resources)


def similarity_settings(lf: LabelingFunction) -> dict | None:
    """The ``similar_to`` keywords an LF was built with (``examples``, ``label``, ...), or None."""
    if getattr(lf, "_f", None) is not _similar_vote or getattr(lf, "_pre", ()):
        return None
    res = dict(lf._resources)
    return {"examples": list(res["seeds"]), "label": res["label"], "threshold": res["threshold"],
            "name": lf.name, "embedder": res["embedder"], "field": res["field"]}


def prepare_similarity(lfs: Sequence[LabelingFunction], frame, *, cache: str | Path | None = None) -> None:
    """Embed, in one batch, the texts the ``similar_to`` LFs among ``lfs`` will see in ``frame``.

    Optional (a vote embeds a text it has not seen) but ~100x faster than text by text;
    ``cache``: a folder whose ``embeddings/`` keeps the vectors between sessions.
    """
    store = EmbeddingCache(cache) if cache is not None else None
    wanted: dict[str, set[str]] = {}
    for lf in lfs:
        settings = similarity_settings(lf)
        if settings is not None and settings["field"] in frame.columns:
            wanted.setdefault(settings["embedder"], set()).add(settings["field"])
    for spec, fields in wanted.items():
        for field in sorted(fields):
            _MEMO.fill(spec, frame[field].astype(str).tolist(), store)


def from_gold(
    source: RefineReport | Sequence[KeywordSuggestion],
    *,
    accepted_only: bool = True,
    prefix: str = "gold",
    taken: Iterable[str] = (),
) -> list[LabelingFunction]:
    """Keyword suggestions from gold labels as ready LFs, one per suggestion.

    ``source``: a ``RefineReport`` (its suggestions that held-out rows confirm, all of
    them with ``accepted_only=False``) or ``KeywordSuggestion``s. Each LF searches the
    suggestion's pattern (``keyword_pattern``: its words, any spacing, case-insensitive),
    the one its precision was measured with. Names are ``<prefix>_<ngram>``, made unique
    against each other and ``taken`` (the names already in the session).
    """
    if isinstance(source, RefineReport):
        suggestions = source.accepted() if accepted_only else list(source.suggestions)
    else:
        suggestions = list(source)
    names = set(taken)
    lfs = []
    for s in suggestions:
        name = f"{prefix}_{_slug(s.ngram)}"
        while name in names:
            name += "_"
        names.add(name)
        lfs.append(regex_lf(name, keyword_pattern(s.ngram), s.label, flags=re.IGNORECASE))
    return lfs
