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

    lf/<lf name>/<lf version>/<segment>.npz   keys (n, 2) uint64, votes (n,) int32 (int64 when a vote needs it)

Segments are written atomically (temporary file, then rename) and read with
``allow_pickle=False``. Only cells an LF ran on are stored, and errors never
are: a row an LF failed on, or never reached because a strict run stopped, is
tried again next time.

A new process (a second CLI run after editing one LF) would hash every text
again and lay the texts out for the scan again, which costs more than scanning
them for one edited LF. So a text column (Arrow strings, no nulls) is also named
by one hash of its whole content (``text_column_digest``: every value's length
and bytes, in order), and what a re-run needs is kept under that name::

    texts/<column digest>.keys.npy            each value's key (n, 2) uint64
    texts/<column digest>.layout.npz          the non-ASCII part of its scan layout: indices, a check
    texts/<column digest>.mapped.bin          ... and the mapped texts' bytes (read by mmap)
    lf/<lf name>/<lf version>/<column digest>.votes.npy   (distinct texts,) int32 (int64 when a vote needs it), in order of appearance

A votes file is written only when every distinct text has a vote, none of them
an error. The names cover the LF's version, the texts' content and the library's
own code, so a changed text, LF or library never reads another's entry; ``texts/`` keeps the most recently used
``_MAX_TEXT_COLUMNS`` columns, at most ``_MAX_TEXT_BYTES``.
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
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash

from .fingerprint import library_digest

__all__ = ["LFCache", "column_keys", "forget_loaded", "project_cache_dir", "row_keys", "text_column_digest"]

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MAX_SEGMENTS = 16
_NULL = b"\x00labeling-null\x00"
# bump when what a column digest names (the keys, the layout) changes form
_TEXT_FORMAT = b"labeling-text-column-1"
#: text columns kept under ``texts/`` (least recently used out first)
_MAX_TEXT_COLUMNS = 16
#: ... and at most this many bytes
_MAX_TEXT_BYTES = 2**30


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


def _string_chunks(column: pd.Series) -> pa.ChunkedArray | None:
    """The column's Arrow string array, when it is one with no nulls."""
    backing = getattr(column.array, "_pa_array", None)
    if (not isinstance(backing, pa.ChunkedArray) or backing.null_count
            or not (pa.types.is_string(backing.type) or pa.types.is_large_string(backing.type))):
        return None
    return backing


# Column digests by the identity of their (immutable) ChunkedArray, as _ARROW_KEYS.
_DIGESTS: dict[int, str] = {}


def text_column_digest(column: pd.Series) -> str | None:
    """32 hex digits naming the whole content of an Arrow-backed string column with no
    nulls (how many values, each one's length and UTF-8 bytes, in order; not how Arrow
    chunks it) and the library code that reads it (``fingerprint.library_digest``), or
    None for any other column. One pass of xxh3-128 over the buffers: ~6 ms for 65 MB
    of IMDB reviews, against ~30-90 ms for a key per value."""
    backing = _string_chunks(column)
    if backing is None:
        return None
    known = _DIGESTS.get(id(backing))
    if known is not None:
        return known
    # the library's code is part of the name: what is kept under it (keys, a scan layout) is made by that code
    hasher = xxhash.xxh3_128(_TEXT_FORMAT + library_digest().encode())
    hasher.update(len(backing).to_bytes(8, "little"))
    spans = []
    for chunk in backing.chunks:  # every length first, then every byte: the framing is unambiguous
        if not len(chunk):
            continue
        _, offsets_buf, data_buf = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        hasher.update(np.diff(offsets).astype("<i8"))
        spans.append((data_buf, int(offsets[0]), int(offsets[-1])))
    for data_buf, a, b in spans:
        if b > a:
            hasher.update(memoryview(data_buf)[a:b])
    digest = hasher.hexdigest()
    _DIGESTS[id(backing)] = digest
    weakref.finalize(backing, _DIGESTS.pop, id(backing), None)
    return digest


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
        keys, votes = np.array(keys, dtype=np.uint64), _votes_array(votes)  # copies: kept in memory
        if len(keys) > 1 and not np.all(keys[1:, 0] >= keys[:-1, 0]):  # stored sorted: lookups need no sort
            by_key = np.argsort(keys[:, 0], kind="stable")
            keys, votes = keys[by_key], votes[by_key]
        path = folder / f"{uuid.uuid4().hex}.npz"
        _write_atomic(path, lambda fh: np.savez(fh, keys=keys, votes=votes))
        _remember((path,), keys, votes)

    # -- text columns named by their content (see the module docstring)

    def _texts(self, digest: str, suffix: str) -> Path:
        return self.root / "texts" / f"{digest}{suffix}"

    def text_keys(self, column: pd.Series, digest: str | None) -> np.ndarray:
        """``column_keys(column)``; for a column with a ``digest`` (``text_column_digest``),
        read from ``texts/`` when an earlier run kept them, else computed and kept there."""
        backing = _string_chunks(column) if digest is not None else None
        if backing is None:
            return column_keys(column)
        known = _ARROW_KEYS.get(id(backing))
        if known is not None:
            return known
        path = self._texts(digest, ".keys.npy")
        keys = _read_array(path, shape=(len(column), 2), dtype=np.uint64)
        if keys is None:
            keys = column_keys(column)
            self._write_text_file(path, lambda fh: np.save(fh, keys, allow_pickle=False))
        keys.flags.writeable = False
        _ARROW_KEYS[id(backing)] = keys
        weakref.finalize(backing, _ARROW_KEYS.pop, id(backing), None)
        return keys

    def text_layout(self, digest: str, n: int) -> dict | None:
        """What ``ScanTexts.non_ascii_parts()`` gave for the ``n`` texts laid out for the column
        ``digest``, as kept by ``store_text_layout`` (the mapped bytes a read-only map of the
        kept file); None when not kept, or damaged."""
        path = self._texts(digest, ".layout.npz")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in _LAYOUT_ARRAYS + ("n", "size", "check")}
            mapped = _map_file(self._texts(digest, ".mapped.bin"), int(arrays["size"][0]))
        except (OSError, ValueError, KeyError, EOFError, TypeError, IndexError, zipfile.BadZipFile):
            return None
        # a file of another format, truncated or altered is a miss, never a layout of other texts
        if (arrays["n"].tolist() != [n]
                or any(arrays[k].dtype != np.int64 or arrays[k].ndim != 1 for k in _LAYOUT_ARRAYS)
                or len(arrays["mapped_idx"]) != len(arrays["mapped_starts"])
                or arrays["check"].tobytes() != _layout_check(n, [arrays[k] for k in _LAYOUT_ARRAYS], mapped)):
            return None
        _touch(path)
        parts = {k: arrays[k] for k in _LAYOUT_ARRAYS}
        parts["mapped_buffer"] = mapped
        return parts

    def store_text_layout(self, digest: str, n: int, parts: dict) -> None:
        """Keep ``ScanTexts.non_ascii_parts()`` of the ``n`` texts laid out for the column ``digest``."""
        arrays = [np.asarray(parts[k], dtype=np.int64) for k in _LAYOUT_ARRAYS]
        mapped = parts["mapped_buffer"]
        check = np.frombuffer(_layout_check(n, arrays, mapped), dtype=np.uint8)
        # the bytes first: the layout file, written last, is what makes them found
        self._write_text_file(self._texts(digest, ".mapped.bin"), lambda fh: fh.write(mapped))
        self._write_text_file(self._texts(digest, ".layout.npz"), lambda fh: np.savez(
            fh, n=np.array([n]), size=np.array([len(mapped)]), check=check, **dict(zip(_LAYOUT_ARRAYS, arrays))))

    def _write_text_file(self, path: Path, write) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, write)
        # at most _MAX_TEXT_COLUMNS columns and _MAX_TEXT_BYTES: the least recently used
        # go, never the one being written (a reader racing this sees a missing file: a miss;
        # a map of a removed file stays readable)
        columns: dict[str, list[Path]] = {}
        for p in path.parent.iterdir():
            if not p.name.startswith("."):
                columns.setdefault(p.name.split(".")[0], []).append(p)
        stats = {name: [(p, _stat(p)) for p in files] for name, files in columns.items()}
        used = {name: max((st.st_mtime for _, st in files if st), default=0.0) for name, files in stats.items()}
        size = {name: sum(st.st_size for _, st in files if st) for name, files in stats.items()}
        total, count = sum(size.values()), len(columns)
        for name in sorted(columns, key=used.__getitem__):
            if count <= _MAX_TEXT_COLUMNS and total <= _MAX_TEXT_BYTES:
                break
            if name == path.name.split(".")[0]:
                continue
            for p in columns[name]:
                p.unlink(missing_ok=True)
            total, count = total - size[name], count - 1

    def column_votes(self, name: str, version: str, digest: str, n: int) -> np.ndarray | None:
        """The votes of LF ``name`` at ``version`` on the ``n`` distinct texts of the column
        ``digest`` (in order of first appearance), when a run kept them whole; else None."""
        path = self._dir(name, version) / f"{digest}.votes.npy"
        known = _LOADED.get((path,))
        if known is not None:
            return known[1]
        votes = _read_array(path, shape=(n,), dtype=(np.int32, np.int64))
        if votes is not None:
            _remember((path,), np.empty((0, 2), np.uint64), votes)
        return votes

    def store_column_votes(self, name: str, version: str, digest: str, votes: np.ndarray) -> None:
        """Keep a whole column (see ``column_votes``); only votes an LF returned, never errors."""
        folder = self._dir(name, version)
        folder.mkdir(parents=True, exist_ok=True)
        votes = _votes_array(votes)
        path = folder / f"{digest}.votes.npy"
        _write_atomic(path, lambda fh: np.save(fh, votes, allow_pickle=False))
        _remember((path,), np.empty((0, 2), np.uint64), votes)

    def versions(self, name: str) -> list[str]:
        folder = self.root / "lf" / name
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def clear(self, names: Iterable[str] | None = None) -> int:
        """Delete the cached columns of the LFs ``names`` (every LF's when None); returns
        how many segment files were removed. A cache folder may be shared by projects:
        naming the project's LFs leaves the others' columns alone."""
        root = self.root / "lf"
        folders = [root] if names is None else [root / name for name in names]
        if names is None:  # the texts are shared by every project's LFs: only a full clear drops them
            shutil.rmtree(self.root / "texts", ignore_errors=True)
        count = 0
        for folder in folders:
            count += sum(1 for _ in folder.rglob("*.npz")) if folder.is_dir() else 0
            shutil.rmtree(folder, ignore_errors=True)
            for segments in [s for s in _LOADED if s and s[0].is_relative_to(folder)]:
                del _LOADED[segments]
        return count


def _write_atomic(path: Path, write) -> None:
    """``write(file)`` to a temporary file beside ``path``, then renamed: readers see all of it or nothing."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _votes_array(votes) -> np.ndarray:
    """A copy of ``votes`` as int32, or int64 when a vote needs it: a multi-label set vote
    is a 63-bit code that int32 would wrap into another (wrong) class."""
    votes = np.array(votes, dtype=np.int64)
    if votes.size and (votes.min() < np.iinfo(np.int32).min or votes.max() > np.iinfo(np.int32).max):
        return votes
    return votes.astype(np.int32)


def _read_array(path: Path, *, shape: tuple, dtype) -> np.ndarray | None:
    """The array saved at ``path`` when it has exactly this shape and dtype (or one of a
    tuple of dtypes); else None."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    dtypes = [np.dtype(d) for d in (dtype if isinstance(dtype, tuple) else (dtype,))]
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype not in dtypes:
        return None
    _touch(path)
    return array


_LAYOUT_ARRAYS = ("mapped_idx", "mapped_starts", "re_idx")


def _layout_check(n: int, arrays: list[np.ndarray], mapped) -> bytes:
    """xxh3-128 of a kept layout, all of it: damage is a miss."""
    hasher = xxhash.xxh3_128(_TEXT_FORMAT)
    hasher.update(n.to_bytes(8, "little"))
    for a in arrays:
        hasher.update(len(a).to_bytes(8, "little"))
        hasher.update(np.ascontiguousarray(a))  # read in place: no copy
    hasher.update(mapped)  # its size is in the layout file, checked too
    return hasher.digest()


def _map_file(path: Path, size: int):
    """The bytes of ``path``, mapped read-only (pages read as a scan reaches them); ``size`` must be its size."""
    if path.stat().st_size != size:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, not {size}")
    return memoryview(np.memmap(path, dtype=np.uint8, mode="r")) if size else memoryview(b"")


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


def _touch(path: Path) -> None:
    try:  # marks the entry as used, for the least-recently-used bound
        os.utime(path)
    except OSError:
        pass


def project_cache_dir(config) -> Path | None:
    """A project's cache folder: ``lfs.cache``, by default ``lf_cache`` beside the store."""
    setting = config.lfs.cache
    if setting.lower() == "none":
        return None
    return config.resolve(setting) if setting else config.store_folder() / "lf_cache"


def forget_loaded() -> None:
    """Drop the segments this process holds in memory: the next lookups read the files, as a new process does."""
    _LOADED.clear()
