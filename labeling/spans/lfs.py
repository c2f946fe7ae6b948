"""Span labeling functions: a row in, spans ``(start, end, label)`` out (character
offsets, end exclusive), and the mapping of character spans onto tokens.

A span LF is any function of the row (a str, a mapping with "text", or an object with a
``text`` attribute, such as a pandas row) returning ``(start, end, label)`` tuples or
spaCy ``Span`` objects (their ``start_char``, ``end_char``, ``label_``). ``SpanLF``
checks and normalises what it returns; ``Gazetteer`` and ``regex_span_lf`` build
common ones declaratively.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, LabelError, LFApplicationError

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks


def _text(row) -> str:
    if isinstance(row, str):
        return row
    if isinstance(row, Mapping):
        return row["text"]
    return row.text


def _row_id(row):
    """What names a row in an error: its id or index label, else the text's start."""
    if isinstance(row, str):
        return row[:40]
    if isinstance(row, Mapping):
        return row.get("id", _text(row)[:40])
    return getattr(row, "name", _text(row)[:40])


class SpanLF:
    """A named span LF. ``fn(row)`` returns spans (tuples or spaCy Spans);
    ``labels``: the entity types it may return (checked when given).

    Calling it returns a sorted list of ``(start, end, label)`` character spans; a
    malformed span raises ``LFApplicationError`` naming the LF and the span.
    """

    def __init__(self, name: str, fn: Callable, labels: Sequence[str] | None = None, *, state=None):
        if not name or not callable(fn):
            raise ConfigError(f"a span LF needs a name and a callable, got {name!r}, {fn!r}")
        self.name, self.fn, self.labels = name, fn, tuple(labels) if labels is not None else None
        # what labeling.lf.fingerprint walks for a version, as for a Snorkel LF: the function, its
        # resources and no preprocessors. Library code is versioned by the package's version, not
        # walked, so the helpers below pass what their matching depends on as ``state`` (hashed by content).
        self._f, self._resources, self._pre = fn, ({"state": state} if state is not None else {}), ()

    def __repr__(self) -> str:
        return f"SpanLF({self.name!r})"

    def __call__(self, row) -> list[tuple[int, int, str]]:
        text = _text(row)
        out = []
        for span in self.fn(row) or ():
            if hasattr(span, "start_char"):  # a spaCy Span
                span = (span.start_char, span.end_char, span.label_)
            try:
                start, end, label = span
            except (TypeError, ValueError):
                raise LFApplicationError(self.name, _row_id(row), f"returned {span!r}, not (start, end, label)") \
                    from None
            if not (isinstance(start, (int, np.integer)) and isinstance(end, (int, np.integer))
                    and 0 <= start < end <= len(text)):
                raise LFApplicationError(self.name, _row_id(row), f"returned {span!r}: offsets must be integers with "
                                         f"0 <= start < end <= {len(text)} (the text's length)")
            if self.labels is not None and label not in self.labels:
                raise LFApplicationError(self.name, _row_id(row), f"returned label {label!r}, not one of {self.labels}")
            out.append((int(start), int(end), label))
        return sorted(out)


def span_labeling_function(name: str | None = None, labels: Sequence[str] | None = None):
    """Decorator: ``@span_labeling_function(labels=["DATE"])`` makes a ``SpanLF`` named
    after the function (or ``name``)."""

    def wrap(fn: Callable) -> SpanLF:
        return SpanLF(name or fn.__name__, fn, labels)

    return wrap


def token_offsets(text: str, tokens: Sequence[str] | None = None) -> np.ndarray:
    """Character ``(start, end)`` of each token, ``(n_tokens, 2)`` int.

    ``tokens``: the document's given tokens, found in order in ``text`` (raises
    ``LabelError`` naming the first one not found); None splits ``text`` into words and
    single punctuation marks (``TOKEN_PATTERN``).
    """
    if tokens is None:
        return np.array([m.span() for m in TOKEN_PATTERN.finditer(text)], dtype=np.int64).reshape(-1, 2)
    offsets, cursor = [], 0
    for i, token in enumerate(tokens):
        start = text.find(token, cursor)
        if start < 0 or not token:
            raise LabelError(f"token {i} {token!r} is not in the text after offset {cursor}")
        offsets.append((start, start + len(token)))
        cursor = start + len(token)
    return np.array(offsets, dtype=np.int64).reshape(-1, 2)


def char_spans_to_tokens(spans: Iterable[tuple[int, int, str]], offsets: np.ndarray,
                         mode: str = "expand") -> list[tuple[int, int, str]]:
    """Character spans -> token spans ``(first token, last token + 1, label)``.

    ``offsets``: ``token_offsets``. ``mode`` (spaCy's ``alignment_mode``): "strict"
    raises ``LabelError`` for a span whose ends are not token boundaries; "contract" keeps
    the tokens wholly inside the span; "expand" the tokens it touches. Spans left with
    no token are dropped.
    """
    if mode not in ("strict", "contract", "expand"):
        raise ConfigError(f"mode must be 'strict', 'contract' or 'expand', got {mode!r}")
    starts, ends = offsets[:, 0].tolist(), offsets[:, 1].tolist()
    out = []
    for start, end, label in spans:
        if mode == "expand":
            first, last = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end)
        else:
            first, last = bisect.bisect_left(starts, start), bisect.bisect_right(ends, end)
            if mode == "strict" and (first >= len(starts) or starts[first] != start or last == 0
                                     or ends[last - 1] != end):
                raise LabelError(f"span {(start, end, label)} does not start and end on token boundaries")
        if first < last:
            out.append((first, last, label))
    return out


class Gazetteer(SpanLF):
    """A dictionary LF: every occurrence of a term, as its label, on token boundaries.

    ``terms``: label -> the terms of that label. ``case``: "sensitive", "insensitive", or
    "smart" (insensitive, except terms written all in capitals, such as acronyms, which
    must match as written). ``longest``: the leftmost-longest non-overlapping matches (as
    spaCy's ``PhraseMatcher`` with ``filter_spans``), else every match. Matching walks a
    token trie from each token, so its cost grows with the text and the longest term,
    not the number of terms. A term listed under two labels keeps the first.
    """

    def __init__(self, name: str, terms: Mapping[str, Iterable[str]], *, case: str = "smart", longest: bool = True):
        if case not in ("sensitive", "insensitive", "smart"):
            raise ConfigError(f"case must be 'sensitive', 'insensitive' or 'smart', got {case!r}")
        self.case, self.longest = case, longest
        self._tries = ({}, {})  # (exact, casefolded): nested dicts keyed by token; None marks a term's end
        for label, words in terms.items():
            for term in words:
                toks = TOKEN_PATTERN.findall(term)
                if not toks:
                    raise ConfigError(f"gazetteer {name!r}: term {term!r} has no tokens")
                folded = case == "insensitive" or (case == "smart" and not term.isupper())
                node = self._tries[folded]
                for tok in toks:
                    node = node.setdefault(tok.casefold() if folded else tok, {})
                node.setdefault(None, label)
        super().__init__(name, self._match, labels=list(terms),
                         state=({k: sorted(v) for k, v in terms.items()}, case, longest))

    def _match(self, row):
        text = _text(row)
        found = list(TOKEN_PATTERN.finditer(text))
        exact = [m.group() for m in found]
        # only the tries that hold terms are walked (one of them for "sensitive" and "insensitive")
        walks = [(trie, toks) for trie, toks in zip(self._tries, (exact, [t.casefold() for t in exact]) if
                                                    self._tries[1] else (exact, exact)) if trie]
        spans, i = [], 0
        while i < len(found):
            ends = []  # (end token, label) of every term starting at token i
            for trie, toks in walks:
                node, j = trie, i
                while j < len(toks) and toks[j] in node:
                    node, j = node[toks[j]], j + 1
                    if None in node:
                        ends.append((j, node[None]))
            if not ends:
                i += 1
                continue
            if self.longest:
                j, label = max(ends, key=lambda e: e[0])
                spans.append((found[i].start(), found[j - 1].end(), label))
                i = j
            else:
                spans.extend((found[i].start(), found[j - 1].end(), label) for j, label in sorted(set(ends)))
                i += 1
        return spans


def regex_span_lf(name: str, pattern: str, label: str, *, flags: int = 0, group: int | str = 0) -> SpanLF:
    """A span LF giving ``label`` to every match of ``pattern`` (its ``group``), empty
    matches skipped. Raises ``ConfigError`` for a pattern that does not compile."""
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"span LF {name!r}: bad regex {pattern!r}: {exc}") from exc

    def match(row):
        return [(m.start(group), m.end(group), label) for m in compiled.finditer(_text(row))
                if m.end(group) > m.start(group)]

    return SpanLF(name, match, [label], state=(pattern, flags, label, group))


def _span_lf_from_docs(name: str, nlp_name: str, labels: Sequence[str], find, state=None) -> SpanLF:
    """A span LF that parses the row with the spaCy pipeline ``nlp_name`` (loaded once per
    process, ``labeling.lf.core.load_spacy``) and returns ``find(doc)``'s spans. ``state``
    (the terms or patterns) is the LF's state, so that its version follows them."""
    from ..lf.core import load_spacy

    def match(row):
        return find(load_spacy(nlp_name)(_text(row)))

    return SpanLF(name, match, labels, state=(nlp_name, state))


def phrase_matcher_lf(name: str, terms: Mapping[str, Iterable[str]], *, attr: str = "LOWER",
                      nlp: str = "blank:en") -> SpanLF:
    """spaCy's ``PhraseMatcher`` as a span LF: ``terms`` label -> phrases, matched on the
    token attribute ``attr`` ("LOWER": case-insensitive, "ORTH": exact), overlapping matches
    reduced to the longest (``spacy.util.filter_spans``). ``nlp``: the pipeline whose
    tokenizer splits rows and terms ("blank:en" by default: no model needed)."""
    from spacy.matcher import PhraseMatcher

    from ..lf.core import load_spacy

    vocab = load_spacy(nlp).vocab
    matcher = PhraseMatcher(vocab, attr=attr)
    for label, phrases in terms.items():
        matcher.add(label, [load_spacy(nlp).make_doc(p) for p in phrases])

    lf = _span_lf_from_docs(name, nlp, list(terms), lambda doc: [(sp.start_char, sp.end_char, vocab.strings[m])
                                                                  for m, sp in _labelled(matcher(doc), doc)],
                            state=({k: sorted(v) for k, v in terms.items()}, attr))
    return lf


def _labelled(matches, doc):
    """spaCy matches ``(match id, start, end)`` -> ``(match id, Span)``, longest first wins."""
    from spacy.util import filter_spans

    spans = filter_spans([doc[s:e] for _, s, e in matches])
    ids = {(s, e): m for m, s, e in matches}
    return [(ids[(sp.start, sp.end)], sp) for sp in spans]


def matcher_lf(name: str, patterns: Mapping[str, Sequence[list[dict]]], *, nlp: str = "blank:en") -> SpanLF:
    """spaCy's rule-based ``Matcher`` as a span LF: ``patterns`` label -> token patterns
    (spaCy's pattern syntax, e.g. ``[{"LIKE_NUM": True}, {"LOWER": "dollars"}]``), overlapping
    matches reduced to the longest. Attributes set by a trained component (POS, ENT_TYPE)
    need ``nlp`` to be a pipeline that sets them."""
    from spacy.matcher import Matcher

    from ..lf.core import load_spacy

    vocab = load_spacy(nlp).vocab
    matcher = Matcher(vocab)
    for label, pats in patterns.items():
        matcher.add(label, list(pats))
    lf = _span_lf_from_docs(name, nlp, list(patterns), lambda doc: [(sp.start_char, sp.end_char, vocab.strings[m])
                                                                     for m, sp in _labelled(matcher(doc), doc)],
                            state={k: list(v) for k, v in patterns.items()})
    return lf


def spacy_ner_lf(name: str, type_map: Mapping[str, str], *, nlp: str = "en_core_web_sm") -> SpanLF:
    """An installed spaCy NER pipeline as a span LF: its entities whose label ``type_map``
    names, given our type ``type_map[label]`` (e.g. ``{"DATE": "DATE", "MONEY": "MONEY"}``);
    other entities are dropped. ``nlp``: the pipeline (``labeling.settings.spacy_model``
    resolves a missing ``en_core_web_sm`` to an installed stand-in)."""
    from ..settings import spacy_model

    resolved, mapping = spacy_model(nlp), dict(type_map)

    def find(doc):
        return [(e.start_char, e.end_char, mapping[e.label_]) for e in doc.ents if e.label_ in mapping]

    return _span_lf_from_docs(name, resolved, sorted(set(mapping.values())), find, state=(resolved, mapping))


def apply_span_lfs(lfs: Sequence[SpanLF], texts: Sequence[str], *, cache: str | Path | None = None) -> SpanVotes:
    """Apply span LFs to texts: ``spans[d][j]`` is LF ``j``'s character spans in text ``d``.

    ``cache``: a folder; an LF's spans are kept there per LF version
    (``labeling.lf.fingerprint``) and text (sha256), so a rerun computes only new texts or
    changed LFs. An LF that cannot be versioned is always computed (``uncacheable``).
    """
    from ..lf.fingerprint import fingerprint

    names = [lf.name for lf in lfs]
    if len(set(names)) != len(names):
        raise ConfigError(f"span LF names must be unique, got {names}")
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in texts]
    columns, versions, seconds, computed, uncacheable = [], [], [], [], {}
    for lf in lfs:
        fp = fingerprint(lf)
        versions.append(fp.version)
        path = Path(cache) / "spans" / f"{lf.name}-{fp.version}.json" if cache and not fp.uncacheable else None
        stored = _read_cache(path) if path else {}
        start, fresh = time.perf_counter(), 0
        column = []
        for key, text in zip(keys, texts):
            if key not in stored:
                stored[key] = [list(s) for s in lf(text)]
                fresh += 1
            column.append([tuple(s) for s in stored[key]])
        if path and fresh:
            _write_cache(path, stored)
        if fp.uncacheable:
            uncacheable[lf.name] = fp.uncacheable
        columns.append(column)
        seconds.append(time.perf_counter() - start)
        computed.append(fresh)
    spans = [[columns[j][d] for j in range(len(lfs))] for d in range(len(texts))]
    return SpanVotes(spans, tuple(names), tuple(versions), tuple(seconds), tuple(computed), uncacheable)


@dataclass(frozen=True)
class SpanVotes:
    """What ``apply_span_lfs`` returns: ``spans[d][j]`` (character spans), the LF names and
    versions, seconds per LF, texts computed (not from the cache) per LF, and why an LF
    was not cached (name -> reason)."""

    spans: list
    names: tuple[str, ...]
    versions: tuple[str, ...]
    seconds: tuple[float, ...]
    computed: tuple[int, ...]
    uncacheable: dict


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or damaged: computed again and rewritten
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)  # readers see the old file or the new one, never a half-written one
