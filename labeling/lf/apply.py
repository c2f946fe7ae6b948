"""LFs x rows -> the label matrix L, exactly as Snorkel's ``PandasLFApplier`` computes it.

Where the time goes, and what we do instead of ``DataFrame.apply`` row by row:

- **Cache** (``labeling/lf/cache.py``): each LF's column is looked up by the LF's
  version and each row's content hash; only missing cells are computed, then
  stored. Editing one LF recomputes one column; appending rows computes those rows.
  A text column's keys, the costly part of its scan layout and whole vote columns
  are also kept under one hash of the column's content, so a new process (a second
  CLI run after an edit) neither hashes nor maps the texts again.
- **Declarative LFs** (``labeling/lf/declarative.py``: keyword, regex, length): computed
  and cached per distinct text, all patterns of a field in one multi-pattern scan
  over a buffer of all the texts (``labeling/lf/patterns.py``), with the same answers
  as calling the LF.
- **Any other LF** is called on plain records (a dict with attribute access, no
  pandas Series per row), in worker processes over row chunks (fork: the LFs and
  rows are inherited, nothing is pickled), or on a Dask cluster
  (``labeling/lf/distributed.py``).
- **spaCy LFs** (ours and Snorkel's ``nlp_labeling_function``) share one batched
  parse per distinct text, cached on disk (``labeling/lf/parse_cache.py``).

Faults: by default an LF that raises (or returns something that is not a vote)
stops the run with ``LFApplicationError`` naming the LF, the row id and the
exception; the reported failure is the first LF (in column order) that fails,
on its first failing row, whatever the chunking. With ``fault_tolerant=True``
such cells are left abstaining and counted per LF in ``ApplyResult.errors``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .cache import LFCache, column_keys, row_keys, text_column_digest
from .compile import RuleSpec, fast_spec
from .declarative import LengthSpec, PatternSpec
from ..errors import ConfigError, LFApplicationError
from .fingerprint import fingerprint
from .core import LabelingFunction, resolve_spacy_model, uses_spacy
from ..matrix import ABSTAIN
from .parse_cache import ParseCache, load_pipeline, parse_texts, pipeline_key
from .patterns import ArrowTexts, PatternMatcher, ScanTexts
from ..progress import progress
from .rows import Row, frame_rows
from . import workers
from .workers import chunk_bounds, fork_map

__all__ = ["ApplyResult", "LFErrors", "Row", "apply_lfs", "lf_specs", "spacy_cache_keys"]

#: keep at most this many failing row ids (and messages) per LF
ERROR_SAMPLES = 5
# Below this many cells, starting processes costs more than the work.
_MIN_PARALLEL_CELLS = 20_000
# The same for declarative LFs, in distinct texts x (LFs + 1): a scan costs about
# as much per text as per pattern, and forking costs ~0.1 s (measured: one
# pattern over 50,000 IMDB reviews is faster in one process, ten are not).
_MIN_PARALLEL_SCAN = 150_000


@dataclass(frozen=True)
class LFErrors:
    """Failures of one LF in a fault-tolerant run: how many, and the first few."""

    count: int
    row_ids: tuple
    messages: tuple[str, ...]


@dataclass(frozen=True)
class ApplyResult:
    L: np.ndarray
    #: time spent computing each LF's column (summed over workers; ~0 when cached).
    #: NaN for keyword/regex/length LFs whose column came out of a shared scan: one scan
    #: serves them all and cannot be split between them; its time is in ``shared_seconds``.
    seconds_per_lf: dict[str, float]
    #: fault-tolerant runs: failures per LF (LFs that never failed are absent)
    errors: dict[str, LFErrors] = field(default_factory=dict)
    #: rows computed (not read from the cache) per LF
    rows_computed: dict[str, int] = field(default_factory=dict)
    #: time of work several LFs share: ``"scan of <field>"`` -> seconds (distinct texts,
    #: cache look-ups and the one scan of that field for its declarative LFs)
    shared_seconds: dict[str, float] = field(default_factory=dict)
    #: the LFs each entry of ``shared_seconds`` served
    shared_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: LFs whose votes are never cached, and why (see ``labeling/lf/fingerprint.py``)
    uncacheable: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- calling LFs


def _snorkel_nlp_params(lf: LabelingFunction):
    """Snorkel ``nlp_labeling_function`` settings, when we can parse for it."""
    # Only an imported module can have made such an LF; importing it here would
    # pull in spaCy and torch (seconds) for every apply.
    module = sys.modules.get("snorkel.labeling.lf.nlp")
    if module is None or not isinstance(lf, module.BaseNLPLabelingFunction):
        return None
    params = type(lf)._nlp_config.parameters
    return None if params.pre else params


def _spacy_group(lf: LabelingFunction, spacy_model: str | None, disable: Sequence[str]) -> tuple | None:
    """(pipeline, disabled components, text field, doc field) of a spaCy LF."""
    params = _snorkel_nlp_params(lf)
    if params is not None:
        return (params.language, tuple(sorted(params.disable or ())), params.text_field, params.doc_field)
    if uses_spacy(lf):
        pre = next(p for p in lf._pre if hasattr(p, "doc_field"))
        return (resolve_spacy_model(spacy_model), tuple(sorted(disable)), pre.text_field, pre.doc_field)
    return None


def _call_without_pre(lf: LabelingFunction) -> Callable:
    # The applier has already put the parse where the LF's own preprocessor would;
    # a row without one (no text to parse) goes through that preprocessor and fails as in Snorkel.
    f, resources, doc_field = lf._f, dict(lf._resources), _snorkel_nlp_params(lf).doc_field
    return lambda x: f(x, **resources) if doc_field in x else lf(x)


def _callable(lf: LabelingFunction) -> Callable:
    return _call_without_pre(lf) if _snorkel_nlp_params(lf) is not None else lf


def as_vote(vote, cardinality: int) -> tuple[int, str | None]:
    """(the vote as an int, None), or (ABSTAIN, why ``vote`` is refused).

    Snorkel stores whatever an LF returns into an int matrix, so ``1.0`` (a vote
    read from a NaN-able column) and ``True`` count as 1 there; integral numbers
    are accepted here too. Anything else (``1.5``, ``"1"``, ``None``) is refused
    rather than truncated, as are votes outside -1..cardinality-1.
    """
    if isinstance(vote, (int, np.integer, np.bool_)):  # bool included
        value = int(vote)
    elif isinstance(vote, (float, np.floating)) and np.isfinite(vote) and float(vote).is_integer():
        value = int(vote)
    else:
        return ABSTAIN, f"returned {vote!r} ({type(vote).__name__}); an LF must return an int class index or ABSTAIN (-1)"
    if not ABSTAIN <= value < cardinality:
        return ABSTAIN, f"returned {vote!r}; expected -1 (abstain) or a class index 0..{cardinality - 1}"
    return value, None


def _check_vote(vote, cardinality: int) -> str | None:
    return as_vote(vote, cardinality)[1]


@dataclass
class ChunkOutcome:
    """What one worker computed for one chunk of rows and a set of LFs."""

    votes: np.ndarray  # (rows, lfs) int64
    failed: np.ndarray  # (rows, lfs) bool
    done: np.ndarray  # (rows, lfs) bool: the LF was called on the row (a strict run stops early)
    counts: np.ndarray  # (lfs,) failures
    samples: list  # (lf position, chunk row, message), at most ERROR_SAMPLES per LF
    seconds: np.ndarray  # (lfs,)
    first_error: tuple | None = None  # strict runs: (lf position, chunk row, exception or message)
    after: tuple | None = None  # in a worker: each LF's version once the chunk ran (state it changed shows)


def run_chunk(
    calls: Sequence[Callable],
    rows: Sequence,
    need: np.ndarray,
    cardinality: int,
    *,
    fault_tolerant: bool,
    keep_exceptions: bool = True,
    views: Sequence | None = None,
) -> ChunkOutcome:
    """Call ``calls[j]`` on ``rows[i]`` where ``need[i, j]``, LF by LF.

    ``views[j]``, when given and not None, replaces ``rows`` for LF ``j`` (see ``doc_views``).

    Strict runs stop at the chunk's first failure; LF-major order makes it the
    failure of the lowest failing LF, on its first failing row.
    """
    n, m = len(rows), len(calls)
    out = ChunkOutcome(np.full((n, m), ABSTAIN, np.int64), np.zeros((n, m), bool), np.zeros((n, m), bool),
                       np.zeros(m, np.int64), [], np.zeros(m))
    for j, call in enumerate(calls):
        source = views[j] if views is not None and views[j] is not None else rows
        column, failed, done = out.votes[:, j], out.failed[:, j], out.done[:, j]
        start = time.perf_counter()
        for i in np.flatnonzero(need[:, j]).tolist():
            done[i] = True
            try:
                vote, problem = as_vote(call(source[i]), cardinality)
            except Exception as exc:  # noqa: BLE001 - any LF bug must name the LF and the row
                problem = exc if keep_exceptions else f"{type(exc).__name__}: {exc}"
            if problem is None:
                column[i] = vote
                continue
            failed[i] = True  # never cached, strict or not
            if not fault_tolerant:
                out.seconds[j] += time.perf_counter() - start
                out.first_error = (j, i, problem)
                return out
            out.counts[j] += 1
            if out.counts[j] <= ERROR_SAMPLES:
                message = problem if isinstance(problem, str) else f"{type(problem).__name__}: {problem}"
                out.samples.append((j, i, message))
        out.seconds[j] += time.perf_counter() - start
    return out


# --------------------------------------------------------------------------- processes


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _row_chunk(s: dict, task: int) -> ChunkOutcome:
    a, b = s["bounds"][task]
    views = [v[a:b] if v is not None else None for v in s["views"]]
    out = run_chunk(s["calls"], s["rows"][a:b], s["need"][a:b], s["cardinality"],
                    fault_tolerant=s["fault_tolerant"], keep_exceptions=s["in_process"], views=views)
    if not s["in_process"]:
        out.after = tuple(fingerprint(lf).version for lf in s["lfs"])
    return out


def label_chunk(lfs, rows, need, cardinality, fault_tolerant, spacy_model, spacy_disable, nlp_settings=()):
    """One chunk of rows through ``lfs`` in a process that only has what the task carried (a
    Dask worker): parses for spaCy LFs, the votes, and each LF's version afterwards."""
    for lf, settings in zip(lfs, nlp_settings):
        # an nlp LF's class arrives here unconfigured: configure it as in the process that made the LF
        if settings is not None and getattr(type(lf), "_nlp_config", None) is None:
            type(lf)._create_or_check_preprocessor(*settings)
    views = doc_views(rows, lfs, range(len(lfs)), need, spacy_model, spacy_disable, None, 1, False)
    out = run_chunk([_callable(lf) for lf in lfs], rows, need, cardinality, fault_tolerant=fault_tolerant,
                    keep_exceptions=False, views=views)
    out.after = tuple(fingerprint(lf).version for lf in lfs)  # state an LF changed while running shows here
    return out


def _run_local(calls, rows, need, cardinality, fault_tolerant, n_jobs, show,
               chunk_rows: int | None = None, views: Sequence | None = None,
               lfs: Sequence | None = None) -> list[tuple[int, ChunkOutcome]]:
    bounds = chunk_bounds(len(rows), chunk_rows)
    # a chunk size given by the caller is taken as is, however small the input
    parallel = n_jobs > 1 and (chunk_rows is not None or need.sum() >= _MIN_PARALLEL_CELLS)
    state = {"calls": calls, "rows": rows, "need": need, "cardinality": cardinality, "bounds": bounds,
             "views": list(views) if views is not None else [None] * len(calls), "lfs": list(lfs or ()),
                 "fault_tolerant": fault_tolerant, "in_process": not parallel}
    # each chunk in a fresh fork of this process: an LF that keeps state sees the same state whichever
    # worker runs which chunk, so a run never differs from the next
    outcomes = fork_map(_row_chunk, state, len(bounds), n_jobs if parallel else 1, show, fresh=True)
    return [(a, o) for (a, _), o in zip(bounds, outcomes)]


# --------------------------------------------------------------------------- declarative LFs


def _word_counts(texts: Sequence[str]) -> np.ndarray:
    """``[len(t.split()) for t in texts]``, counted on a buffer of the texts."""
    return ScanTexts(texts).word_counts()


def _sizes(layout: ScanTexts, units: set[str]) -> dict[str, np.ndarray]:
    return {u: layout.word_counts() if u == "words" else layout.char_counts() for u in units}


def _spec_chunk(s: dict, task: int) -> tuple[np.ndarray, dict]:
    a, b = s["bounds"][task]
    texts = s["texts"][a:b]
    return s["matcher"].search(texts), _sizes(ScanTexts(texts), s["units"]) if s["units"] else {}


@functools.lru_cache(maxsize=16)
def _matcher(patterns: tuple) -> PatternMatcher:
    # compiling the scan databases takes ~0.1 s per pattern; re-applies reuse them
    return PatternMatcher(patterns)


# Below this share of repeated texts, a column is laid out for the scan whole rather than
# its distinct texts taken first: a take copies every text (~0.06 s for 65 MB of IMDB
# reviews, more than one pattern's scan), while a few repeats scanned twice cost little.
_SCAN_WHOLE_BELOW_REPEATS = 0.1


@dataclass
class _Distinct:
    """A text column as its distinct values: ``texts[codes]`` is the column."""

    codes: np.ndarray
    first: np.ndarray  # position of each distinct text's first row
    keys: np.ndarray  # content key of each distinct text
    #: the whole column as Arrow (None: ``_texts`` is given, a list)
    source: pa.ChunkedArray | None = None
    _texts: Sequence[str] | None = None
    _layout: tuple[ScanTexts, np.ndarray | None] | None = None
    #: the column's ``text_column_digest`` and a cache keeping its layout, when both exist
    digest: str | None = None
    cache: LFCache | None = None

    def __len__(self) -> int:
        return len(self.first)

    @property
    def texts(self) -> Sequence[str]:
        """The distinct texts: a list, or ArrowTexts (Python strings only where read); taken on first use."""
        if self._texts is None:
            self._texts = _take_strings(self.source, self.first)
        return self._texts

    def subset(self, wanted: np.ndarray) -> Sequence[str]:
        """``[texts[i] for i in wanted]`` (``wanted`` increasing), taken from the column directly."""
        if self.source is not None:
            return _take_strings(self.source, self.first[wanted])
        return [self.texts[i] for i in wanted.tolist()]

    def layout(self) -> tuple[ScanTexts, np.ndarray | None]:
        """(texts laid out for buffer scans, the row of each distinct text in it or None
        when the layout holds exactly the distinct texts). Built on first use and kept: each
        re-apply after an edit scans the same texts again. A new process takes the costly
        non-ASCII part back from the cache (``LFCache.text_layout``) instead of mapping it again."""
        if self._layout is None:
            whole = self.source is not None and len(self.first) < len(self.codes) and \
                len(self.first) >= (1 - _SCAN_WHOLE_BELOW_REPEATS) * len(self.codes)
            texts, rows = (ArrowTexts(self.source), self.first) if whole else (self.texts, None)
            arrow = texts.array if isinstance(texts, ArrowTexts) else None
            keep = arrow is not None and self.digest is not None and self.cache is not None
            kept = self.cache.text_layout(self.digest, len(texts)) if keep else None
            if kept is not None:
                layout = ScanTexts.restore(texts, arrow, kept)
            else:
                layout = ScanTexts(texts, arrow=arrow)
                if keep:
                    self.cache.store_text_layout(self.digest, len(texts), layout.non_ascii_parts())
            self._layout = layout, rows
        return self._layout


# Distinct values of whole columns, by the identity of their memoized, read-only
# content keys (see cache.column_keys): re-applies skip the dedup and the layout.
_DISTINCT: dict[int, _Distinct] = {}


def _distinct(column: pd.Series, keys: np.ndarray) -> _Distinct:
    """``column`` (``keys``: its column_keys) as its distinct values."""
    if id(keys) in _DISTINCT:
        return _DISTINCT[id(keys)]
    codes, first = _first_positions(keys[:, 0])
    if not np.array_equal(keys[:, 1], keys[first[codes], 1]):  # a 64-bit collision: be exact instead
        codes, first = _first_positions(column)
    backing = getattr(column.array, "_pa_array", None)
    if isinstance(backing, pa.ChunkedArray):
        # a new wrapper of the same chunks: holding pandas' own would keep its memo entries alive
        out = _Distinct(codes, first, keys[first], source=pa.chunked_array(backing.chunks, type=backing.type))
    else:
        out = _Distinct(codes, first, keys[first], _texts=column.iloc[first].tolist())
    if not keys.flags.writeable:
        _DISTINCT[id(keys)] = out
        weakref.finalize(keys, _DISTINCT.pop, id(keys), None)
    return out


def _first_positions(values) -> tuple[np.ndarray, np.ndarray]:
    """(code of each value, position of each code's first value), codes in order of appearance."""
    codes, uniques = pd.factorize(values)
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return codes, first


def _take_strings(backing: pa.ChunkedArray, positions: np.ndarray) -> ArrowTexts:
    """The strings at increasing ``positions`` of an Arrow column, as ``ArrowTexts`` (no
    Python string is made until one is read).

    Taken chunk by chunk: a take across chunks first concatenates them (measured:
    0.54 s against 0.14 s for 50,000 of 200,000 reviews).
    """
    parts = []
    bases = np.cumsum([0] + [len(chunk) for chunk in backing.chunks])
    cuts = np.searchsorted(positions, bases)
    for chunk, base, a, b in zip(backing.chunks, bases, cuts, cuts[1:]):
        if b > a:
            parts.append(chunk if b - a == len(chunk) else chunk.take(pa.array(positions[a:b] - base)))
    return ArrowTexts(pa.chunked_array(parts, type=backing.type))


def _all_strings(column: pd.Series) -> bool:
    if column.dtype == object:
        return pd.api.types.infer_dtype(column.to_numpy(), skipna=False) == "string"
    return pd.api.types.is_string_dtype(column.dtype) and not column.isna().any()


def _compute_specs(texts: Sequence[str] | _Distinct, group: dict[int, PatternSpec | LengthSpec],
                   n_jobs: int) -> dict[int, np.ndarray]:
    """Votes of declarative LFs (one field's) on ``texts``: all patterns in one scan.

    Patterns with a buffer form are scanned in one call over all texts, here;
    others, and lengths, in chunks of texts, in worker processes when it pays.
    """
    distinct = texts if isinstance(texts, _Distinct) else None
    pattern_js = [j for j, s in group.items() if isinstance(s, PatternSpec)]
    rule_js = [j for j, s in group.items() if isinstance(s, RuleSpec)]  # compiled plain LFs
    patterns = tuple(group[j].pattern for j in pattern_js) + tuple(p for j in rule_js for p in group[j].patterns)
    matcher = _matcher(patterns) if patterns else None
    units = {s.unit for s in group.values() if isinstance(s, LengthSpec)}.union(*(group[j].units for j in rule_js))
    if matcher is None or matcher.has_buffer_form():
        # one pass over the buffers for the patterns, one for the sizes, in this process
        layout, rows = distinct.layout() if distinct is not None else \
            (ScanTexts(texts, arrow=texts.array if isinstance(texts, ArrowTexts) else None), None)
        hits = matcher.search(layout) if matcher is not None else np.zeros((len(layout.texts), 0), bool)
        sizes = _sizes(layout, units)
        if rows is not None:  # laid out with its repeats: each distinct text's first row
            hits, sizes = hits[rows], {u: size[rows] for u, size in sizes.items()}
    else:  # text by text, in chunks, in worker processes when it pays
        texts = distinct.texts if distinct is not None else texts
        bounds = chunk_bounds(len(texts), 4 * workers.CHUNK_ROWS)
        parallel = n_jobs if len(texts) * (len(group) + 1) >= _MIN_PARALLEL_SCAN else 1
        state = {"texts": texts, "matcher": matcher, "units": units, "bounds": bounds}
        parts = fork_map(_spec_chunk, state, len(bounds), parallel)
        hits = np.concatenate([p[0] for p in parts]) if parts else np.zeros((len(texts), len(patterns)), bool)
        sizes = {u: np.concatenate([p[1][u] for p in parts]) if parts else np.zeros(0, np.int64) for u in units}
    votes = {}
    for pos, j in enumerate(pattern_js):
        votes[j] = np.where(hits[:, pos], group[j].label, ABSTAIN)
    offset = len(pattern_js)
    for j in rule_js:
        votes[j] = group[j].votes(hits[:, offset : offset + len(group[j].patterns)], sizes)
        offset += len(group[j].patterns)
    for j, spec in group.items():
        if isinstance(spec, LengthSpec):
            size = sizes[spec.unit]
            ok = (size >= spec.lo) & (size <= (spec.hi if spec.hi is not None else np.iinfo(np.int64).max))
            votes[j] = np.where(ok, spec.label, ABSTAIN)
    return votes


@dataclass
class _SpecColumn:
    votes: np.ndarray  # (n,) int
    computed: int  # rows whose vote was not read from the cache
    field: str  # the text field whose one scan (shared with the other LFs on it) gave the column


def _apply_specs(frame: pd.DataFrame, specs: dict[int, PatternSpec | LengthSpec], names: Sequence[str],
                 versions: dict[int, str], lf_cache: LFCache | None, cardinality: int,
                 n_jobs: int) -> tuple[dict[int, _SpecColumn], dict[str, float]]:
    """Columns of declarative LFs, computed once per distinct text of their field,
    and the seconds each field's shared work took.

    Their votes depend on that text alone, so they are cached by the text's
    content key (not the row's): a review repeated a thousand times, or moved to
    another row, is looked up once.
    """
    out: dict[int, _SpecColumn] = {}
    took: dict[str, float] = {}
    by_field: dict[str, dict[int, PatternSpec | LengthSpec]] = {}
    for j, spec in specs.items():
        by_field.setdefault(spec.field, {})[j] = spec
    for name, group in by_field.items():
        start = time.perf_counter()
        column = frame[name]
        digest = text_column_digest(column) if lf_cache is not None else None
        distinct = _distinct(column, lf_cache.text_keys(column, digest) if lf_cache is not None
                             else column_keys(column))
        if digest is not None:
            distinct.digest, distinct.cache = digest, lf_cache
        codes, keys, size = distinct.codes, distinct.keys, len(distinct)
        cached = [j for j in group if lf_cache is not None and versions.get(j) is not None]  # else uncacheable
        votes: dict[int, np.ndarray] = {}
        todo: dict[int, np.ndarray | None] = {}  # distinct texts still without a vote; None: read whole
        if digest is not None:
            for j in cached:
                found = lf_cache.column_votes(names[j], versions[j], digest, size)
                if found is not None:
                    votes[j], todo[j] = found, None
        for j in group:
            if j not in votes:
                votes[j], todo[j] = np.full(size, ABSTAIN, dtype=np.int64), np.ones(size, dtype=bool)
        if size and any(todo[j] is not None for j in cached):
            order = np.argsort(keys[:, 0])
            query = keys[order]
            for j in cached:
                if todo[j] is not None:
                    votes[j], found = lf_cache.lookup(names[j], versions[j], keys, order, query)
                    todo[j] = ~found
        compute = [j for j in group if todo[j] is not None and todo[j].any()]
        if compute:
            wanted = np.flatnonzero(np.logical_or.reduce([todo[j] for j in compute]))
            computed = _compute_specs(distinct if len(wanted) == size else distinct.subset(wanted),
                                      {j: group[j] for j in compute}, n_jobs)
            for j in compute:
                votes[j][wanted] = computed[j]
                if j in cached:
                    keep = todo[j][order] & (votes[j][order] < cardinality)  # key order: stored without a sort
                    lf_cache.store(names[j], versions[j], query[keep], votes[j][order][keep])
        for j in cached:
            # every distinct text has its vote now: kept whole for the next run, unless one is an error
            if digest is not None and todo[j] is not None and size and (votes[j] < cardinality).all():
                lf_cache.store_column_votes(names[j], versions[j], digest, votes[j])
        took[name] = time.perf_counter() - start
        rows = np.bincount(codes, minlength=size) if any(todo[j] is not None for j in group) else None
        for j in group:
            out[j] = _SpecColumn(votes[j][codes], 0 if todo[j] is None else int(rows[todo[j]].sum()), name)
    return out, took


# --------------------------------------------------------------------------- spaCy


def doc_views(rows: list, lfs: Sequence[LabelingFunction], positions: Sequence[int], need: np.ndarray,
              spacy_model, disable, parse_cache, n_process, show) -> list[list | None]:
    """For each LF at ``positions``: the rows it is called on, or None for ``rows`` themselves.

    A spaCy LF gets copies of the rows holding a Doc in its doc field, as
    Snorkel's preprocessor hands it a copy of the row: the Doc never shows up
    in the rows other LFs see. Snorkel's nlp LFs of one configuration share one
    Doc per row (its memoized preprocessor does the same); rows repeating a text
    share its parse unless an LF of the group may change a Doc, and then each row
    has its own copy, and each of our spaCy LFs that may change it has its own
    (Snorkel parses again for each of them). A row whose text is not a string,
    or has no such field, gets no Doc: the LF's own preprocessor runs on it and
    fails as it does under Snorkel.
    """
    views: list[list | None] = [None] * len(positions)
    groups: dict[tuple, list[int]] = {}
    for pos, j in enumerate(positions):
        group = _spacy_group(lfs[j], spacy_model, disable)
        if group is not None:
            groups.setdefault(group, []).append(pos)
    for (pipeline, disabled, text_field, doc_field), members in groups.items():
        wanted = [i for i in np.flatnonzero(need[:, members].any(axis=1)).tolist()
                  if isinstance(dict.get(rows[i], text_field), str)]
        nlp = _snorkel_pipeline(lfs[positions[members[0]]]) or load_pipeline(pipeline, disabled)
        texts = [dict.get(rows[i], text_field) for i in wanted]
        docs = parse_texts(texts, nlp, name=f"{pipeline}-{'-'.join(disabled)}", cache=parse_cache,
                           n_process=n_process) if wanted else []
        mutating = {pos for pos in members if may_change_doc(lfs[positions[pos]])}
        shared_by_group = _snorkel_nlp_params(lfs[positions[members[0]]]) is not None
        if mutating:
            seen: set[int] = set()
            for k, doc in enumerate(docs):
                if id(doc) in seen:
                    docs[k] = doc.copy()
                seen.add(id(doc))
        view = list(rows)
        for i, doc in zip(wanted, progress(docs, total=len(docs), desc="spaCy", enabled=show)):
            view[i] = rows[i].copy()
            view[i][doc_field] = doc
        for pos in members:
            if pos in mutating and not shared_by_group:
                own = list(rows)
                for i, doc in zip(wanted, docs):
                    own[i] = rows[i].copy()
                    own[i][doc_field] = doc.copy()
                views[pos] = own
            else:
                views[pos] = view
    return views


_DOC_METHODS_THAT_CHANGE = frozenset({"retokenize", "set_ents", "merge", "set_extension", "from_array", "from_bytes",
                                      "from_dict", "from_disk", "copy_from"})
_STORES = frozenset({"STORE_ATTR", "STORE_SUBSCR", "DELETE_ATTR", "DELETE_SUBSCR"})


def may_change_doc(lf: LabelingFunction) -> bool:
    """Whether the LF's code (or a project helper it calls) may change an object it was given.

    A conservative reading of the bytecode: any attribute or item store, or a
    call of a Doc method that changes the Doc, counts; a false alarm only costs
    a Doc copy.
    """
    import dis
    import types

    todo, seen = [lf._f], set()
    while todo:
        f = todo.pop()
        code = getattr(f, "__code__", None)
        if code is None:
            call = getattr(type(f), "__call__", None)
            code = getattr(call, "__code__", None)
            if code is None:
                continue
        if id(code) in seen:
            continue
        seen.add(id(code))
        codes = [code]
        while codes:
            c = codes.pop()
            codes += [k for k in c.co_consts if isinstance(k, types.CodeType)]
            for ins in dis.get_instructions(c):
                if ins.opname in _STORES or ins.argval in _DOC_METHODS_THAT_CHANGE:
                    return True
        module_globals = getattr(f, "__globals__", {})
        for name in code.co_names:
            helper = module_globals.get(name)
            if isinstance(helper, types.FunctionType) and not _library_module(helper.__module__):
                todo.append(helper)
    return False


def order_dependent(lf: LabelingFunction) -> str | None:
    """Why the LF's votes depend on the order rows are seen in (a memo keyed by part of the row), or None."""
    from snorkel.map.core import get_hashable

    for p in getattr(lf, "_pre", ()):
        key = getattr(p, "_memoize_key", None)
        if getattr(p, "memoize", False) and key is not None and key is not get_hashable:
            return (f"LF {lf.name!r}: preprocessor {getattr(p, 'name', p)!r} memoizes by its own memoize_key, so "
                    "a row may get the result of an earlier row; it runs in one process, in row order, uncached")
    return None


def _library_module(name: str | None) -> bool:
    module = sys.modules.get(name or "")
    path = getattr(module, "__file__", None) or ""
    return name is None or "site-packages" in path or name.split(".")[0] in sys.stdlib_module_names


def spacy_cache_keys(lfs: Sequence[LabelingFunction], spacy_model: str | None = None,
                     disable: Sequence[str] = ()) -> set[str]:
    """The parse-cache keys (``parse_cache.pipeline_key``) ``lfs``' spaCy groups use: what
    ``clear-cache`` deletes for a project. Loads each pipeline (once per process)."""
    keys = set()
    for lf in lfs:
        group = _spacy_group(lf, spacy_model, disable)
        if group is not None:
            pipeline, disabled = group[0], group[1]
            nlp = _snorkel_pipeline(lf) or load_pipeline(pipeline, disabled)
            keys.add(pipeline_key(nlp, f"{pipeline}-{'-'.join(disabled)}"))
    return keys


def _snorkel_pipeline(lf: LabelingFunction):
    """The pipeline a Snorkel spaCy LF's preprocessor has already loaded (no second copy)."""
    if _snorkel_nlp_params(lf) is None:
        return None
    return getattr(type(lf)._nlp_config.nlp, "_nlp", None)


def _cache_version(lf: LabelingFunction, version: str, spacy_model, disable) -> str:
    group = _spacy_group(lf, spacy_model, disable)
    if group is None:
        return version
    nlp = _snorkel_pipeline(lf) or load_pipeline(group[0], group[1])
    return f"{version}-{pipeline_key(nlp, group[0])}"


# --------------------------------------------------------------------------- the applier


def records(frame: pd.DataFrame, positions: np.ndarray | None = None) -> list[Row]:
    """Rows of ``frame`` (those at ``positions``) as the records LFs and slicing functions see."""
    return frame_rows(frame, positions)


def _as_cache(cache) -> tuple[LFCache | None, ParseCache | None]:
    if cache is None:
        return None, None
    if isinstance(cache, ParseCache):  # parses only: every vote is computed
        return None, cache
    root = cache.root if isinstance(cache, LFCache) else Path(cache)
    return LFCache(root), ParseCache(root)


def lf_specs(lfs: Sequence[LabelingFunction]) -> dict[int, PatternSpec | LengthSpec | RuleSpec]:
    """{column j: the spec the applier scans for ``lfs[j]``} (``compile.fast_spec``) for the
    LFs it can compile; the others run as Python. Pass to ``apply_lfs(specs=...)``."""
    return {j: spec for j, lf in enumerate(lfs) if (spec := fast_spec(lf)) is not None}


def apply_lfs(
    lfs: Sequence[LabelingFunction],
    frame: pd.DataFrame,
    *,
    cardinality: int,
    spacy_model: str | None = None,
    show_progress: bool = False,
    fault_tolerant: bool = False,
    cache: str | Path | LFCache | None = None,
    n_jobs: int | None = None,
    scheduler=None,
    spacy_disable: Sequence[str] = (),
    chunk_rows: int | None = None,
    specs: Mapping[int, PatternSpec | LengthSpec | RuleSpec] | None = None,
    check_state: bool = True,
) -> ApplyResult:
    """Run every LF on every row of ``frame``; column j of ``L`` is ``lfs[j]``.

    ``cache``: a folder (or ``LFCache``) for per-LF votes and spaCy parses, a
    ``ParseCache`` for parses only; ``None`` computes everything. ``n_jobs``: worker processes (default: all
    cores). ``scheduler``: a Dask scheduler address or ``distributed.Client`` to
    run the row-wise LFs on a cluster instead. ``spacy_disable``: pipeline
    components no LF of ours needs (Snorkel's spaCy LFs name their own).
    ``chunk_rows``: rows per task for worker processes and Dask (default
    ``workers.CHUNK_ROWS``); when given, workers are used however small the input.
    ``specs``: ``lf_specs(lfs)`` computed once by a caller that applies the same LFs
    again and again (a server, per request), else compiled here. ``check_state=False``
    skips the versions taken before and after an in-process run to find an LF that
    changes its own state (such an LF's votes are then not cached, and the result says
    so): a caller without ``cache`` that reads only ``L`` has no use for them. Both
    save ~0.2 ms an LF per call (``benchmarks/lf_votes_cost.py``).
    """
    n, m = len(frame), len(lfs)
    names = [lf.name for lf in lfs]
    if len(set(names)) < m:  # columns, timings, faults and cached votes are all by name (Snorkel refuses too)
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ConfigError(f"LF names must be unique; given more than once: {', '.join(map(repr, twice))}")
    n_jobs = _default_jobs() if n_jobs is None else max(1, int(n_jobs))
    lf_cache, parse_cache = _as_cache(cache)
    L = np.full((n, m), ABSTAIN, dtype=np.int64)
    failed = np.zeros((n, m), dtype=bool)
    done = np.zeros((n, m), dtype=bool)  # cells an LF was actually called on: only those are cached
    computed = np.zeros(m, dtype=np.int64)
    seconds = {lf.name: 0.0 for lf in lfs}
    first_errors: list[tuple] = []  # strict runs: (LF column, row, problem); the lowest LF's first row is raised

    specs = dict(lf_specs(lfs) if specs is None else specs)
    strings = {f for f in {spec.field for spec in specs.values()} if f in frame.columns and _all_strings(frame[f])}
    specs = {j: spec for j, spec in specs.items() if spec.field in strings}
    opaque = [j for j in range(m) if j not in specs]
    versions: dict[int, str | None] = {}  # None: the LF is uncacheable
    uncacheable: dict[str, str] = {}
    if lf_cache is not None:
        for j, lf in enumerate(lfs):
            printed = fingerprint(lf)
            reason = printed.uncacheable or order_dependent(lf)
            if reason is not None:
                uncacheable[lf.name], versions[j] = reason, None
            else:  # text-keyed columns get their own folders: a key means one thing per folder
                versions[j] = (f"{printed.version}-text" if j in specs
                               else _cache_version(lf, printed.version, spacy_model, spacy_disable))
    shared_seconds: dict[str, float] = {}
    shared_by: dict[str, tuple[str, ...]] = {}
    if specs and n:
        columns, took = _apply_specs(frame, specs, names, versions, lf_cache, cardinality, n_jobs)
        for field_name, secs in took.items():
            shared_seconds[f"scan of {field_name}"] = secs
            shared_by[f"scan of {field_name}"] = tuple(names[j] for j in sorted(columns)
                                                       if columns[j].field == field_name)
        for j, col in columns.items():
            L[:, j] = col.votes
            computed[j] = col.computed
            seconds[names[j]] = float("nan")  # in shared_seconds: not separable per LF
            bad = np.flatnonzero(col.votes >= cardinality)
            if len(bad):  # a declarative LF's label outside the classes: same error as any LF
                if not fault_tolerant:
                    first_errors.append((j, int(bad[0]), _check_vote(int(col.votes[bad[0]]), cardinality)))
                failed[bad, j] = True

    samples: dict[int, list] = {}
    if opaque and n:
        need = np.ones((n, len(opaque)), dtype=bool)
        if lf_cache is not None:
            # text columns' keys as kept by an earlier run (a new process hashes no text again)
            kept = {name: lf_cache.text_keys(column, digest) for name, column in frame.items()
                     if frame.columns.is_unique and (digest := text_column_digest(column)) is not None}
            keys, keyed = row_keys(frame, kept, with_mask=True)
            order = np.argsort(keys[:, 0])
            query = keys[order]
            for pos, j in enumerate(opaque):
                if versions[j] is None:
                    continue
                votes, found = lf_cache.lookup(lfs[j].name, versions[j], keys, order, query)
                found &= keyed
                L[found, j] = votes[found]
                need[found, pos] = False
        positions = np.flatnonzero(need.any(axis=1))
        sub_need = need[positions]
        computed[opaque] = sub_need.sum(axis=0)
        # LFs whose votes depend on the rows before them run here, in row order, as in Snorkel
        check_state = check_state or lf_cache is not None
        before = {j: fingerprint(lfs[j]).version for j in opaque} if check_state else {}
        ordered = {j: why for j in opaque if (why := order_dependent(lfs[j])) is not None}
        spread = [j for j in opaque if j not in ordered]
        local: tuple | None = None  # (rows, views) in this process, made once

        def here() -> tuple:
            nonlocal local
            if local is None:
                rows = records(frame, positions)
                local = rows, doc_views(rows, lfs, opaque, sub_need, spacy_model, spacy_disable, parse_cache,
                                        n_jobs, show_progress)
            return local

        def merge(outcomes, columns: list[int]) -> None:
            cols = [opaque.index(j) for j in columns]
            for offset, out in outcomes:
                span = positions[offset : offset + len(out.votes)]
                for k, (pos, j) in enumerate(zip(cols, columns)):
                    mask = sub_need[offset : offset + len(out.votes), pos]
                    L[span[mask], j] = out.votes[mask, k]
                    failed[span, j] = out.failed[:, k]
                    done[span, j] = out.done[:, k]
                    seconds[lfs[j].name] += float(out.seconds[k])
                if out.first_error is not None:
                    k, i, problem = out.first_error
                    first_errors.append((columns[k], int(span[i]), problem))
                for k, i, message in out.samples:
                    samples.setdefault(columns[k], []).append((int(span[i]), message))

        def run(columns: list[int], jobs: int) -> list:
            if not columns or not len(positions):
                return []
            cols = [opaque.index(j) for j in columns]
            if scheduler is not None and jobs > 1:
                from .distributed import run_on_dask

                return run_on_dask(scheduler, label_chunk, [lfs[j] for j in columns], frame.iloc[positions],
                                   sub_need[:, cols], cardinality, fault_tolerant=fault_tolerant,
                                   spacy_model=spacy_model, spacy_disable=spacy_disable, chunk_rows=chunk_rows)
            rows, views = here()
            return _run_local([_callable(lfs[j]) for j in columns], rows, sub_need[:, cols], cardinality,
                              fault_tolerant, jobs, show_progress, chunk_rows, [views[p] for p in cols],
                              [lfs[j] for j in columns])

        # spaCy parses may leave cyclic garbage worth collecting as they go; rows and plain LFs do not
        pause = all(_spacy_group(lfs[j], spacy_model, spacy_disable) is None for j in opaque)
        with _cyclic_gc_paused(pause):
            outcomes = run(spread, n_jobs if scheduler is None else 2)
            # an LF whose state changed while it ran in a worker: its votes hang on which rows that worker
            # had seen, so it runs again here, over all rows in order
            reported = [out.after for _, out in outcomes if out.after is not None]
            if reported and not before:  # workers ran the LFs: this process's copies are as they were before
                before = {j: fingerprint(lfs[j]).version for j in opaque}
            redo = sorted({spread[k] for after in reported for k, version in enumerate(after)
                           if version != before[spread[k]]})
            merge(outcomes, spread)
            first_errors[:] = [e for e in first_errors if e[0] not in redo]
            for j in redo:
                samples.pop(j, None)
            merge(run(redo + list(ordered), 1), redo + list(ordered))
        for j in opaque:
            if j in ordered:
                uncacheable[lfs[j].name] = ordered[j]
            elif j in redo or (check_state and fingerprint(lfs[j]).version != before[j]):
                uncacheable[lfs[j].name] = (f"LF {lfs[j].name!r} changed its own state while running; its votes "
                                            "depend on the rows it saw before (LFs must be pure)")
            else:
                continue
            if lf_cache is not None:
                versions[j] = None
        if lf_cache is not None:
            for pos, j in enumerate(opaque):
                if versions[j] is None:
                    continue
                store = done[:, j] & ~failed[:, j] & keyed
                lf_cache.store(lfs[j].name, versions[j], keys[store], L[store, j])

    if first_errors:
        j, i, problem = min(first_errors, key=lambda e: (e[0], e[1]))
        if isinstance(problem, BaseException):
            raise LFApplicationError(lfs[j].name, _row_id(frame, i), problem) from problem
        raise LFApplicationError(lfs[j].name, _row_id(frame, i), problem)

    errors = {}
    for j in np.flatnonzero(failed.any(axis=0)).tolist():
        found = sorted(samples.get(j, []))[:ERROR_SAMPLES]
        if not found:  # declarative or compiled LFs with an out-of-range label
            found = [(int(i), _check_vote(int(L[i, j]), cardinality))
                     for i in np.flatnonzero(failed[:, j])[:ERROR_SAMPLES]]
        errors[lfs[j].name] = LFErrors(int(failed[:, j].sum()), tuple(_row_id(frame, i) for i, _ in found),
                                       tuple(msg for _, msg in found))
    L[failed] = ABSTAIN
    return ApplyResult(L=L, seconds_per_lf=seconds, errors=errors,
                       rows_computed={lf.name: int(computed[j]) for j, lf in enumerate(lfs)},
                       shared_seconds=shared_seconds, shared_by=shared_by, uncacheable=uncacheable)


@contextlib.contextmanager
def _cyclic_gc_paused(pause: bool = True):
    """Python's cyclic garbage collector off for the block (back on after, if it was on).

    The records built for LFs (one per row: 50,000 dicts for IMDB) live through the
    whole run; with the collector on, they are moved to its oldest generation as LFs
    allocate, and every few runs in a long-lived process (the workbench) that triggers
    a full collection of everything the process holds (measured: 0.16-0.76 s). They
    hold no cycles and are freed by reference counting when the run ends, so off, no
    collection ever sees them. Memory that LFs leave in cycles waits for the end.
    """
    was = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause and was:
            gc.enable()


def _row_id(frame: pd.DataFrame, i: int):
    """The id users know a row by: its ``id`` column, else its position."""
    return frame["id"].iloc[[i]].tolist()[0] if "id" in frame.columns else i
