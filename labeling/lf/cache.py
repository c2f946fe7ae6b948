"""Per-LF vote cache: one column of votes per LF version, rows keyed by content.

Editing one LF changes only its version (``lf_version``: everything its votes
can depend on, see ``labeling/lf/fingerprint.py``), so only its column is recomputed;
rows are keyed by a type-exact hash of their content (every column, with names
and dtypes), so rows appended to a dataset are the only rows computed, whatever
split or position they land in. Keyword, regex
and length LFs read one text field only, so their columns are keyed by that
text's hash instead (folders ``<lf version>-text``): a repeated text is one entry.

Layout under the cache root (by default ``runs/cache`` beside the project's
store)::

    lf/<lf name>/<lf version>/<segment>.npz   keys (n, 2) uint64, votes (n,) int32

Segments are written atomically (temporary file, then rename) and read with
``allow_pickle=False``. Only cells an LF ran on are stored, and errors never
are: a row an LF failed on, or never reached because a strict run stopped, is
tried again next time.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import itertools
import os
import shutil
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash

__all__ = ["LFCache", "column_keys", "forget_loaded", "project_cache_dir", "row_keys"]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MAX_SEGMENTS = 16
_NULL = b"\x00labeling-null\x00"


def _mix(acc: np.ndarray, values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (acc ^ values) * _MIX + np.uint64(1)


def _digests_to_keys(digests: bytes) -> np.ndarray:
    return np.frombuffer(digests, dtype=np.uint64).reshape(-1, 2).copy()


# Keys of Arrow-backed columns, by the identity of their (immutable) ChunkedArray:
# re-applying LFs to the same frame does not hash its texts again. pandas gives an
# edited column a new array, and an entry goes when its array is freed.
_ARROW_KEYS: dict[int, np.ndarray] = {}


def _arrow_string_keys(column: pd.Series) -> np.ndarray | None:
    """128-bit xxh3 of each value's UTF-8 bytes, read straight from Arrow's buffers
    (no Python string per row): hashing is most of a cached re-apply's time."""
    backing = getattr(column.array, "_pa_array", None)
    if isinstance(backing, pa.ChunkedArray):
        known = _ARROW_KEYS.get(id(backing))
        if known is not None:
            return known
        keys = _hash_arrow_strings(backing)
        if keys is not None:
            keys.flags.writeable = False
            _ARROW_KEYS[id(backing)] = keys
            weakref.finalize(backing, _ARROW_KEYS.pop, id(backing), None)
        return keys
    try:
        array = pa.array(column)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return _hash_arrow_strings(array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array]))


def _hash_arrow_strings(chunked: pa.ChunkedArray) -> np.ndarray | None:
    if not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
        return None
    digest, parts = xxhash.xxh3_128_digest, []
    for chunk in chunked.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1].tolist()
        data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
        valid = chunk.is_valid().to_numpy(zero_copy_only=False).tolist() if chunk.null_count else None
        if valid is None:
            parts.append(b"".join([digest(data[a:b]) for a, b in itertools.pairwise(offsets)]))
        else:
            parts.append(b"".join([digest(data[a:b]) if ok else digest(_NULL) for a, b, ok in zip(offsets, offsets[1:], valid)]))
    return _digests_to_keys(b"".join(parts)) if parts else np.empty((0, 2), np.uint64)


def _framed(parts: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(8, "little") + p for p in parts)


# Values whose repr names them exactly (type included in the tag).
_REPR_EXACT = (decimal.Decimal, fractions.Fraction, complex, datetime.date, datetime.time, datetime.timedelta,
               pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval)


def _encode(value) -> bytes | None:
    """Bytes that differ whenever an LF could tell two cell values apart; None: no such form.

    Types are part of the encoding (``1``, ``1.0``, ``"1"``, ``True`` differ), and
    so is which missing value a cell holds (``None``, ``NaN``, ``pd.NA``, ``NaT``).
    """
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if value is None:
        return b"N"
    if value is pd.NA:
        return b"A"
    if value is pd.NaT:
        return b"T"
    kind = type(value)
    if kind is bool or kind is int:
        return f"{kind.__name__[0]}{value}".encode()
    if kind is float:
        return b"fnan" if value != value else b"f" + value.hex().encode()
    if isinstance(value, np.generic):
        return f"g{value.dtype.str}".encode() + (value.tobytes() if value.dtype != object else b"?")
    if isinstance(value, (bytes, bytearray)):
        return b"y" + bytes(value)
    if isinstance(value, (list, tuple)):
        parts = [_encode(v) for v in value]
        return None if None in parts else f"{kind.__module__}.{kind.__qualname__}(".encode() + _framed(parts)
    if isinstance(value, (dict, set, frozenset)):
        items = value.items() if isinstance(value, dict) else ((v, b"") for v in value)
        pairs = []
        for k, v in items:
            ek, ev = _encode(k), (_encode(v) if isinstance(value, dict) else b"")
            if ek is None or ev is None:
                return None
            pairs.append(_framed([ek, ev]))
        # a dict's order is visible to an LF; a set's is not
        pairs = pairs if isinstance(value, dict) else sorted(pairs)
        return f"{kind.__module__}.{kind.__qualname__}{{".encode() + _framed(pairs)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            inner = _encode(value.tolist())
            return None if inner is None else f"a{value.shape}".encode() + inner
        return f"a{value.dtype.str}{value.shape}".encode() + np.ascontiguousarray(value).tobytes()
    if isinstance(value, _REPR_EXACT) or kind in (int, float):
        return f"r{kind.__module__}.{kind.__qualname__}:{value!r}".encode()
    return None


def _object_keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keys of object cells by their typed encoding (a seed apart from plain text keys), and
    which cells have one: a cell of an unknown type makes its row uncacheable."""
    digest = xxhash.xxh3_128_digest
    encoded = [_encode(v) for v in values.tolist()]
    ok = np.array([e is not None for e in encoded], dtype=bool)
    blob = b"".join([digest(e if e is not None else b"", seed=1) for e in encoded])
    return (_digests_to_keys(blob) if blob else np.empty((0, 2), np.uint64)), ok


def _column_keys(column: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """(keys, cells that have a key or None when all do)."""
    if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        values = column.to_numpy() if column.dtype == object else None
        if values is not None and pd.api.types.infer_dtype(values, skipna=False) == "string":
            digest = xxhash.xxh3_128_digest
            return _digests_to_keys(b"".join([digest(v.encode("utf-8", "surrogatepass")) for v in values])), None
        if values is None:
            keys = _arrow_string_keys(column)
            if keys is not None:
                return keys, None
            values = column.to_numpy(dtype=object)
        keys, ok = _object_keys(values)
        return keys, (None if ok.all() else ok)
    if isinstance(column.dtype, pd.CategoricalDtype):  # categories compared as the objects they are
        keys, ok = _object_keys(column.to_numpy(dtype=object))
        return keys, (None if ok.all() else ok)
    # numbers, dates: pandas' siphash, twice with different keys (the dtype is in the row key's tag)
    first = pd.util.hash_pandas_object(column, index=False).to_numpy(np.uint64)
    second = pd.util.hash_pandas_object(column, index=False, hash_key="labeling-cache-2").to_numpy(np.uint64)
    return np.stack([first, second], axis=1), None


def column_keys(column: pd.Series) -> np.ndarray:
    """(n, 2) uint64 content keys of one column's values, type-exact.

    A cell with no exact byte form (an arbitrary object) gets a key that means
    nothing; ``row_keys(..., with_mask=True)`` says which rows those are.
    """
    return _column_keys(column)[0]


def row_keys(frame: pd.DataFrame, columns: dict[str, np.ndarray] | None = None, *, with_mask: bool = False):
    """(n, 2) uint64 content keys of whole rows: every column, its name and dtype.

    ``columns``: ``column_keys`` already computed, by column name (reused, not redone).
    ``with_mask``: also return which rows have an exact key (n,) bool; rows holding
    a value of a type with no exact byte form must be neither looked up nor stored.
    """
    keys = np.zeros((len(frame), 2), dtype=np.uint64)
    ok = np.ones(len(frame), dtype=bool)
    for name, column in frame.items():
        tag = np.frombuffer(xxhash.xxh3_128_digest(f"{name!r}\x00{column.dtype}".encode()), dtype=np.uint64)
        known = None if columns is None else columns.get(name)
        column_ok = None
        if known is None:
            known, column_ok = _column_keys(column)
        if column_ok is not None:
            ok &= column_ok
        keys = _mix(keys, known ^ tag)
    return (keys, ok) if with_mask else keys


# Segments read or written by this process, by their paths. A segment file is
# never rewritten (new names for new data, merges write a new file), so a path
# names one content for good: an edit-and-re-apply loop in a notebook reads the
# unchanged columns from memory. Bounded by bytes, least recently used out first.
_LOADED: collections.OrderedDict[tuple[Path, ...], tuple[np.ndarray, np.ndarray]] = collections.OrderedDict()
_LOADED_MAX_BYTES = 512 * 2**20


def _remember(segments: tuple[Path, ...], keys: np.ndarray, votes: np.ndarray) -> None:
    if not segments:
        return
    keys.flags.writeable = votes.flags.writeable = False
    _LOADED[segments] = (keys, votes)
    total = sum(k.nbytes + v.nbytes for k, v in _LOADED.values())
    while total > _LOADED_MAX_BYTES and len(_LOADED) > 1:
        _, (k, v) = _LOADED.popitem(last=False)
        total -= k.nbytes + v.nbytes


class LFCache:
    """Votes of each LF version by row key, stored under ``root``; see the module docstring."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, name: str, version: str) -> Path:
        return self.root / "lf" / name / version

    def _load(self, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        """Every segment of ``folder``, sorted by key."""
        segments = tuple(sorted(folder.glob("*.npz"))) if folder.is_dir() else ()
        known = _LOADED.get(segments)
        if known is not None:
            _LOADED.move_to_end(segments)
            return known
        keys, votes = [np.empty((0, 2), np.uint64)], [np.empty(0, np.int32)]
        for path in segments:
            with np.load(path, allow_pickle=False) as data:
                keys.append(data["keys"])
                votes.append(data["votes"])
        keys, votes = np.concatenate(keys), np.concatenate(votes)
        if len(segments) > 1:
            by_key = np.argsort(keys[:, 0], kind="stable")
            keys, votes = keys[by_key], votes[by_key]
        _remember(segments, keys, votes)
        return keys, votes

    def lookup(self, name: str, version: str, keys: np.ndarray, order: np.ndarray | None = None,
               query: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(votes, found) for ``keys``; ``votes`` is meaningless where ``found`` is False.

        ``order`` (``np.argsort(keys[:, 0])``) and ``query`` (``keys[order]``): for
        looking up many LFs with the same keys; matching two sorted arrays is
        cache-friendly.
        """
        stored_keys, stored_votes = self._load(self._dir(name, version))
        votes = np.zeros(len(keys), dtype=np.int64)
        found = np.zeros(len(keys), dtype=bool)
        if not len(stored_keys) or not len(keys):
            return votes, found
        order = np.argsort(keys[:, 0]) if order is None else order
        query = keys[order] if query is None else query
        if len(stored_keys) == len(query) and np.array_equal(stored_keys, query):
            # the column holds exactly these keys (a re-apply to the same texts): no search
            votes[order] = stored_votes
            found[:] = True
            return votes, found
        pos = np.minimum(np.searchsorted(stored_keys[:, 0], query[:, 0]), len(stored_keys) - 1)
        hit = (stored_keys[pos, 0] == query[:, 0]) & (stored_keys[pos, 1] == query[:, 1])
        found[order] = hit
        votes[order[hit]] = stored_votes[pos[hit]]
        return votes, found

    def store(self, name: str, version: str, keys: np.ndarray, votes: np.ndarray) -> None:
        if not len(keys):
            return
        folder = self._dir(name, version)
        folder.mkdir(parents=True, exist_ok=True)
        self._write(folder, keys, votes)
        segments = sorted(folder.glob("*.npz"))
        if len(segments) > _MAX_SEGMENTS:  # appends add segments; merge them now and then
            all_keys, all_votes = self._load(folder)
            _, unique = np.unique(all_keys, axis=0, return_index=True)
            self._write(folder, all_keys[unique], all_votes[unique])
            for path in segments:
                path.unlink(missing_ok=True)

    @staticmethod
    def _write(folder: Path, keys: np.ndarray, votes: np.ndarray) -> None:
        keys, votes = np.array(keys, dtype=np.uint64), np.array(votes, dtype=np.int32)  # copies: kept in memory
        if len(keys) > 1 and not np.all(keys[1:, 0] >= keys[:-1, 0]):  # stored sorted: lookups need no sort
            by_key = np.argsort(keys[:, 0], kind="stable")
            keys, votes = keys[by_key], votes[by_key]
        name = f"{uuid.uuid4().hex}.npz"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, votes=votes)
        os.replace(tmp, folder / name)
        _remember((folder / name,), keys, votes)

    def versions(self, name: str) -> list[str]:
        folder = self.root / "lf" / name
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def clear(self, names: Iterable[str] | None = None) -> int:
        """Delete the cached columns of the LFs ``names`` (every LF's when None); returns
        how many segment files were removed. A cache folder may be shared by projects:
        naming the project's LFs leaves the others' columns alone."""
        root = self.root / "lf"
        folders = [root] if names is None else [root / name for name in names]
        count = 0
        for folder in folders:
            count += sum(1 for _ in folder.rglob("*.npz")) if folder.is_dir() else 0
            shutil.rmtree(folder, ignore_errors=True)
            for segments in [s for s in _LOADED if s and s[0].is_relative_to(folder)]:
                del _LOADED[segments]
        return count


def project_cache_dir(config) -> Path | None:
    """A project's cache folder: ``lfs.cache``, by default ``lf_cache`` beside the store."""
    setting = config.lfs.cache
    if setting.lower() == "none":
        return None
    return config.resolve(setting) if setting else config.resolve(config.store).parent / "lf_cache"


def forget_loaded() -> None:
    """Drop the segments this process holds in memory: the next lookups read the files, as a new process does."""
    _LOADED.clear()
