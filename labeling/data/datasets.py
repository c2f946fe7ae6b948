"""Datasets: fetch (sha256-verified), read, validate, split and hash.

Every dataset is turned into one canonical frame with columns ``id`` (str, unique),
``text`` (str) and ``label`` (int class index, -1 where no gold label is known),
plus the source's other columns untouched. LFs therefore always read ``x.text``.

Data never ships with the project: built-in datasets are downloaded from their
official source and verified against published checksums, or read from a local
copy in the folder named by ``LABELING_DATA_DIR``.
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import ChecksumError, DatasetError, LabelError
from ..store.connection import connect, store_exists, table_names
from ..store.label_schema import current_schema
from .schema import LabelSchema, label_reading
from ..settings import DATA_DIR_ENV
from ..settings import data_dir as local_data_dir
from ..settings import require_data_dir
CACHE_DIR_ENV = "LABELING_CACHE_DIR"

YOUTUBE_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/00380/YouTube-Spam-Collection-v1.zip"
)
YOUTUBE_CLASSES = ("ham", "spam")
# Published checksums of the five CSVs (UCI YouTube Spam Collection v1).
YOUTUBE_FILES = {
    "Youtube01-Psy.csv": "19797e6c77690e3c8809cfd2853ae7341390636367ba66cf5d4f4083f0b88535",
    "Youtube02-KatyPerry.csv": "902c614f8ef24f987d6f614d7e6111aa5160b89a0646b68e007bd6044a3d123b",
    "Youtube03-LMFAO.csv": "702ef589860a1831956f527760a3d9737ef8a07ab36c7de35b92b8898b8c3928",
    "Youtube04-Eminem.csv": "92f54eb6b22fdf3b7ae85e1f500e5aa7442edd025e504b988a97078756187e76",
    "Youtube05-Shakira.csv": "1d8ab47b71e8037c51183b2fc62f0591a48a4b54f3a4f5d9d3043113b274e98e",
}
SPLIT_NAMES = ("train", "dev", "test")


@dataclass(frozen=True, eq=False)
class Splits:
    """Train (LF votes only, gold kept for the oracle baseline), dev and test frames."""

    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame
    classes: tuple[str, ...]
    source: str
    #: what reading the gold labels through the label schema changed (``carry_labels``); empty: nothing
    label_schema: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Content hash of all three splits: same rows, texts, labels and split, same id."""
        digest = hashlib.sha256()
        for name in SPLIT_NAMES:
            digest.update(f"[{name}]".encode())
            digest.update(frame_hash(getattr(self, name)).encode())
        return digest.hexdigest()[:16]

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


#: rows joined into one buffer at a time by ``frame_hash``
HASH_CHUNK_ROWS = 65_536


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 over the canonical columns (id, text, label), row order included: of the
    rows ``f"{id}\\x1f{text}\\x1f{int(label)}\\x1e"`` in UTF-8, laid end to end.

    Arrow-backed id and text columns without missing values and integer labels are
    joined by Arrow ``HASH_CHUNK_ROWS`` rows at a time (no Python object per row);
    anything else row by row, to the same digest."""
    digest = hashlib.sha256()
    ids, texts, labels = frame["id"], frame["text"], frame["label"]
    arrow = (all(isinstance(c.dtype, pd.StringDtype) and c.dtype.storage == "pyarrow" for c in (ids, texts))
             and pd.api.types.is_integer_dtype(labels.dtype) and not ids.isna().any() and not texts.isna().any())
    if not arrow:
        for row_id, text, label in zip(ids, texts, labels):
            digest.update(f"{row_id}\x1f{text}\x1f{int(label)}\x1e".encode("utf-8", "surrogatepass"))
        return digest.hexdigest()
    id_array, text_array, label_array = pa.array(ids), pa.array(texts), pa.array(labels.to_numpy(dtype=np.int64))
    for lo in range(0, len(frame), HASH_CHUNK_ROWS):
        # cast a slice at a time: a large_string copy of the column would double it
        ends = pc.binary_join_element_wise(label_array.slice(lo, HASH_CHUNK_ROWS).cast(pa.large_string()),
                                           _large("\x1e"), _large(""))
        rows = pc.binary_join_element_wise(id_array.slice(lo, HASH_CHUNK_ROWS).cast(pa.large_string()),
                                           text_array.slice(lo, HASH_CHUNK_ROWS).cast(pa.large_string()),
                                           ends, _large("\x1f"))
        for chunk in getattr(rows, "chunks", [rows]):
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
            if len(chunk):
                digest.update(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])
    return digest.hexdigest()


def release_freed_memory() -> None:
    """Hand memory this process has freed back to the operating system: Arrow's pool
    (mimalloc or jemalloc) and glibc's malloc each keep freed pages for their own next
    allocations, which the other allocator cannot reuse, so one stage's freed buffers
    would stay in the process's footprint through every later stage (measured at 1M IMDB
    rows: splitting by boolean masks left 3.9 GB of freed Arrow buffers in the process).
    Best effort: glibc's part is skipped where ``malloc_trim`` does not exist."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "labeling")


def _verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise DatasetError(f"data file missing: {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(f"{path}: sha256 {actual} does not match the published {expected}")


def _download(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except OSError as exc:
        raise DatasetError(
            f"cannot download {url} ({exc}); offline? Point {DATA_DIR_ENV} at a local copy."
        ) from exc


def _extract_verified(archive: bytes, files: dict[str, str], target: Path) -> None:
    """Extract ``files`` from a zip into ``target``, all or nothing."""
    try:
        members = {Path(n).name: n for n in zipfile.ZipFile(io.BytesIO(archive)).namelist()}
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"downloaded archive is not a zip file: {exc}") from exc
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            for name, expected in files.items():
                if name not in members:
                    raise DatasetError(f"downloaded archive lacks {name}")
                # Some redistributed copies of Youtube01 start with a blank line;
                # the published checksum is of the file without it.
                data = zf.read(members[name]).lstrip(b"\r\n")
                (staging / name).write_bytes(data)
                _verify(staging / name, expected)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_youtube_spam(data_dir: str | Path | None = None, *, url: str = "", cache_dir: Path | None = None) -> Path:
    """Return a folder holding the five verified YouTube Spam CSVs.

    Order: the local data folder (``data_dir``, else ``labeling.settings.data_dir``:
    ``$LABELING_DATA_DIR`` or the checkout's ``../shared/data``), which may hold the
    files directly or in ``youtube_spam/``; then the download cache; then a download.
    """
    local = local_data_dir(data_dir)
    if local:
        folder = Path(local)
        if (folder / "youtube_spam").is_dir():
            folder = folder / "youtube_spam"
        for name, expected in YOUTUBE_FILES.items():
            _verify(folder / name, expected)
        return folder
    cache = Path(cache_dir or default_cache_dir()) / "youtube_spam"
    try:
        for name, expected in YOUTUBE_FILES.items():
            _verify(cache / name, expected)
        return cache
    except DatasetError:
        pass
    cache.parent.mkdir(parents=True, exist_ok=True)
    _extract_verified(_download(url or YOUTUBE_URL), YOUTUBE_FILES, cache)
    return cache


def load_youtube_spam(data_dir: str | Path | None = None, *, url: str = "") -> pd.DataFrame:
    """All 1,956 comments in canonical form, with ``video`` (1-5) and ``comment_id``."""
    folder = fetch_youtube_spam(data_dir, url=url)
    frames = []
    for video, name in enumerate(sorted(YOUTUBE_FILES), start=1):
        df = pd.read_csv(folder / name, dtype={"COMMENT_ID": str, "CONTENT": str})
        # COMMENT_ID repeats within a file (duplicated rows), so ids are file positions.
        df["row_id"] = [f"v{video}-{i}" for i in range(len(df))]
        df["video"] = video
        frames.append(df)
    frame = canonicalize(
        pd.concat(frames, ignore_index=True),
        text_field="CONTENT", label_field="CLASS", id_field="row_id", classes=YOUTUBE_CLASSES, source=str(folder),
    )
    return frame.rename(columns=str.lower)


def youtube_tutorial_split(frame: pd.DataFrame) -> Splits:
    """The Snorkel spam tutorial's split, so our numbers compare with the published ones.

    Each video's rows are shuffled with seed 123; train = videos 1-4, dev = 100
    rows sampled from train (seed 123), test = all of video 5.
    """
    shuffled = [
        frame[frame["video"] == v].sample(frac=1, random_state=123).reset_index(drop=True)
        for v in range(1, 6)
    ]
    train = pd.concat(shuffled[:4])
    dev = train.sample(100, random_state=123).reset_index(drop=True)
    return Splits(
        train=train.reset_index(drop=True),
        dev=dev,
        test=shuffled[4],
        classes=YOUTUBE_CLASSES,
        source="youtube_spam",
    )


def _infer_format(path: Path, fmt: str) -> str:
    if fmt:
        return fmt
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in formats:
        raise DatasetError(f"{path}: cannot tell the format from suffix {suffix!r}; set dataset.format")
    return formats[suffix]


#: rows per Arrow record batch read from a Parquet file
READ_BATCH_ROWS = 65_536
#: bytes per block read from a CSV file
READ_BLOCK_BYTES = 16 << 20
#: bytes of a Parquet column chunk read at a time
READ_BUFFER_BYTES = 8 << 20
# pandas' own string dtype, Arrow-backed: the columns keep the reader's buffers
_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def read_batches(path: str | Path, *, format: str = "", delimiter: str = "",
                 columns: tuple[str, ...] | list[str] = (), quoted: bool = True) -> Iterator[pa.RecordBatch]:
    """A CSV or Parquet file as a stream of Arrow record batches (CSV: every column str).

    Only one batch (``READ_BATCH_ROWS`` rows, or ``READ_BLOCK_BYTES`` of CSV) is
    being decoded at a time, and no value becomes a Python object.
    CSV: ``delimiter`` ("" = a tab for ``.tsv``, else a comma); ``columns`` names the
    columns of a file without a header row (its first row is then data); ``quoted=False``:
    a double quote is an ordinary character (files such as SMSSpamCollection, one row a line).
    Raises ``DatasetError`` naming the file when it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    fmt = _infer_format(path, format)
    if fmt not in ("csv", "parquet"):
        raise DatasetError(f"{path}: streamed reading takes CSV or Parquet, not {fmt}")
    try:
        if fmt == "parquet":
            # Read buffered, page by page: by default a whole row group's column chunks are
            # read (pre-buffered) at once, the size of the file when it holds one row group
            # (pandas' to_parquet of up to 1M rows writes one), 0.8 GB beside the 1.3 GB of text
            # at 1M IMDB rows.
            reader = pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
            yield from reader.iter_batches(batch_size=READ_BATCH_ROWS)
            return
        delimiter = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        with open(path, newline="", encoding="utf-8") as fh:
            header = list(columns) or next(csv.reader(fh, delimiter=delimiter), None)
        if not header:
            raise DatasetError(f"{path}: the file is empty (no header row)")
        yield from pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=READ_BLOCK_BYTES, column_names=list(columns) or None),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             quote_char='"' if quoted else False),
            # as pandas' read_csv(dtype=str, keep_default_na=False, na_values=[""]) did
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except (pa.ArrowException, ValueError, OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as {fmt}: {exc}") from exc


def read_table(path: str | Path, *, format: str = "", delimiter: str = "",
               columns: tuple[str, ...] | list[str] = (), quoted: bool = True) -> pd.DataFrame:
    """A CSV, Parquet or JSONL file as a frame (CSV: every column str; ``delimiter``,
    ``columns`` and ``quoted`` as in ``read_batches``).

    CSV and Parquet are read in Arrow batches (``read_batches``) straight into
    Arrow-backed string columns: a 1M-row file costs about its text size, not a
    Python object per cell.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    fmt = _infer_format(path, format)
    if fmt in ("csv", "parquet"):
        batches = list(read_batches(path, format=fmt, delimiter=delimiter, columns=columns, quoted=quoted))
        if not batches:
            schema = pq.read_schema(path) if fmt == "parquet" else None
            return pd.DataFrame(columns=list(schema.names) if schema is not None else [])
        strings = {pa.string(): _STR, pa.large_string(): _STR}
        return pa.Table.from_batches(batches).to_pandas(types_mapper=strings.get)
    try:
        return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read as {fmt}: {exc}") from exc


def _missing(value) -> bool:
    """None, NaN, NaT or pd.NA (a scalar whose truth value would raise)."""
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _row_list(ids: pd.Series, mask) -> str:
    """Up to five row ids for an error message ("row 'a'", "rows 'a', 'b' and 3 more")."""
    bad = ids[np.asarray(mask, dtype=bool)].tolist()
    shown = ", ".join(repr(str(i)) for i in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"row{'s' if len(bad) > 1 else ''} {shown}{more}"


def encode_labels(values: pd.Series, classes: tuple[str, ...], ids: pd.Series, *, source: str,
                  also: tuple[str, ...] = ()) -> np.ndarray:
    """Class names or indices -> indices; missing -> -1; anything else names the row.

    ``also``: more names read as labels (``len(classes) + j``: class names of later label-schema
    versions, ``load_dataset`` carries them to the current schema); indices stay ``0..len(classes)-1``."""
    # each distinct value once (a million rows hold a handful), named by its first row
    codes, uniques = pd.factorize(pd.Series(values).reset_index(drop=True), use_na_sentinel=True)
    first = np.full(len(uniques), len(codes), dtype=np.int64)
    np.minimum.at(first, codes[codes >= 0], np.flatnonzero(codes >= 0))
    row_ids = pd.Series(ids).reset_index(drop=True)
    encoded = _encode_values(list(uniques), [row_ids.iloc[i] for i in first], classes, source, also)
    return np.where(codes >= 0, encoded[np.maximum(codes, 0)] if len(encoded) else -1, -1).astype(np.int64)


def _encode_values(values: list, ids: list, classes: tuple[str, ...], source: str,
                   also: tuple[str, ...] = ()) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes + also)}
    out = np.full(len(values), -1, dtype=np.int64)
    for pos, (value, row_id) in enumerate(zip(values, ids)):
        # pd.isna covers None, NaN and the nullable dtypes' pd.NA (Int64, boolean, string),
        # whose truth value raises: a missing label is an unlabelled row in every dtype.
        if _missing(value) or (isinstance(value, str) and value.strip() == ""):
            continue
        key = value.strip() if isinstance(value, str) else value
        if isinstance(key, str) and key in index:
            out[pos] = index[key]
            continue
        try:
            as_int = int(key)
        except (TypeError, ValueError):
            as_int = None
        if as_int is not None and float(key) == as_int and 0 <= as_int < len(classes):
            out[pos] = as_int
            continue
        raise LabelError(
            f"{source}: row {row_id!r} has label {value!r}, which is not one of the "
            f"project's classes {list(classes)} (or an index 0..{len(classes) - 1})"
            + (f" nor a class of a later label schema {list(also)}" if also else "")
        )
    return out


def canonicalize(
    frame: pd.DataFrame,
    *,
    text_field: str,
    classes: tuple[str, ...],
    label_field: str = "",
    id_field: str = "",
    source: str = "dataset",
    also_labels: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Validate a user's frame and return it in canonical form (id, text, label, ...).

    ``also_labels``: more class names the label column may hold (``encode_labels``' ``also``)."""
    if len(frame) == 0:
        raise DatasetError(f"{source}: the dataset is empty")
    for role, column in (("text", text_field), ("label", label_field), ("id", id_field)):
        if column and column not in frame.columns:
            raise DatasetError(
                f"{source}: {role} column {column!r} not found; columns are {list(frame.columns)}"
            )
    out = frame.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    if id_field:
        # astype(str) would turn a missing id into the id "nan" or "<NA>"
        missing_ids = out[id_field].map(_missing).to_numpy(dtype=bool)
        if missing_ids.any():
            positions = ", ".join(map(str, np.flatnonzero(missing_ids)[:5].tolist()))
            raise DatasetError(f"{source}: id column {id_field!r} is missing in {int(missing_ids.sum())} row(s), "
                               f"at row position(s) {positions}")
    ids = out[id_field].astype(str) if id_field else pd.Series([str(i) for i in range(len(out))], index=out.index)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise DatasetError(f"{source}: id column {id_field!r} repeats ids, e.g. {duplicated.iloc[0]!r}")
    texts = out[text_field]
    # Missing text is refused whatever the dtype (None, NaN, the string dtype's pd.NA):
    # an LF would read it as the word "nan" or "<NA>".
    arrow = isinstance(texts.dtype, pd.StringDtype)  # every present value is a str: no per-row check
    missing = texts.isna() if arrow else texts.map(_missing) | ~texts.map(lambda t: isinstance(t, str))
    bad = missing.to_numpy(dtype=bool)
    if bad.any():
        raise DatasetError(f"{source}: text column {text_field!r} is missing or not text in {int(bad.sum())} "
                           f"row(s): {_row_list(ids, bad)}")
    labels = encode_labels(out[label_field], classes, ids, source=source, also=also_labels) if label_field else np.full(len(out), -1, dtype=np.int64)
    out = out.drop(columns=[c for c in (text_field, label_field, id_field) if c])
    out = out.drop(columns=[c for c in ("id", "text", "label") if c in out.columns])
    out.insert(0, "label", labels)
    # Arrow-backed columns are inserted as they are (to_numpy would make a Python str per row)
    out.insert(0, "text", texts.array if arrow else texts.astype(str).to_numpy())
    out.insert(0, "id", ids.array if isinstance(ids.dtype, pd.StringDtype) else ids.to_numpy())
    return out.reset_index(drop=True)


def split_random(frame: pd.DataFrame, *, dev_size: float, test_size: float, random_state: int, classes: tuple[str, ...], source: str) -> Splits:
    """Deterministic split: dev and test are drawn from the gold-labelled rows only."""
    if not (0 < dev_size < 1 and 0 < test_size < 1 and dev_size + test_size < 1):
        raise DatasetError(f"{source}: dev_size and test_size must be in (0, 1) and sum below 1")
    labelled = np.flatnonzero(frame["label"].to_numpy() >= 0)
    if len(labelled) < 2:
        raise DatasetError(f"{source}: a random split needs gold labels for dev and test; found {len(labelled)} labelled row(s)")
    order = np.random.default_rng(random_state).permutation(labelled)
    n_test = max(1, round(test_size * len(frame))) if len(labelled) > 2 else 1
    n_dev = max(1, round(dev_size * len(frame))) if len(labelled) > 2 else 1
    n_test, n_dev = min(n_test, len(order) - 1), min(n_dev, max(1, len(order) - n_test))
    test_rows, dev_rows = order[:n_test], order[n_test : n_test + n_dev]
    held = np.zeros(len(frame), dtype=bool)
    held[test_rows] = held[dev_rows] = True
    return Splits(
        train=frame[~held].reset_index(drop=True),
        dev=frame.iloc[np.sort(dev_rows)].reset_index(drop=True),
        test=frame.iloc[np.sort(test_rows)].reset_index(drop=True),
        classes=classes,
        source=source,
    )


def split_by_column(frame: pd.DataFrame, column: str, *, classes: tuple[str, ...], source: str) -> Splits:
    if column not in frame.columns:
        raise DatasetError(f"{source}: split column {column!r} not found; columns are {list(frame.columns)}")
    values = frame[column].astype(str).str.strip().str.lower().replace({"valid": "dev", "validation": "dev"})
    unknown = sorted(set(values) - set(SPLIT_NAMES))
    if unknown:
        raise DatasetError(f"{source}: split column {column!r} has values {unknown}; expected train/dev/test")
    parts = {name: _rows(frame, np.flatnonzero((values == name).to_numpy(dtype=bool))) for name in SPLIT_NAMES}
    return Splits(**parts, classes=classes, source=source)


def _rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows at ``positions`` (ascending), 0-indexed: a slice that shares the frame's
    buffers when they are one run of rows (a file written split by split), else a copy."""
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return frame.iloc[positions[0] : positions[-1] + 1].reset_index(drop=True)
    return frame.iloc[positions].reset_index(drop=True)


def stored_label_schema(config) -> LabelSchema:
    """The project's label schema as its store holds it (read only: no store is created), or the
    first schema of ``config.classes`` when the store has none or holds other classes (a config
    recorded under an older schema: ``reproduce`` passes that run's schema itself)."""
    first = LabelSchema.initial(config.classes)
    store = config.resolve(config.store)
    if not store_exists(store) or "label_schema_current" not in table_names(store):
        return first
    with connect(store) as conn:
        row = current_schema(conn, config.name)
    if row is None or tuple(row["classes"]) != tuple(config.classes):
        return first
    return LabelSchema.from_json(row["classes"], row["history"])


def carry_labels(splits: Splits, carry: tuple[int | None, ...], reading: tuple[str, ...],
                 schema: LabelSchema) -> Splits:
    """``splits`` whose labels index ``reading`` (the first schema's classes, then later names)
    with labels of the current ``schema``: ``carry[i]`` is the class ``reading[i]`` became (None:
    its rows are unlabelled, e.g. a split or retired class). Unlabelled train rows stay (label -1,
    LF votes only); unlabelled dev/test rows are dropped (both need gold). The counts are kept in
    ``Splits.label_schema`` (empty when nothing moved)."""
    if carry == tuple(range(len(carry))) and reading == schema.classes:
        return splits if splits.classes == schema.classes else replace(splits, classes=schema.classes)
    lookup = np.array([-1 if j is None else j for j in carry] + [-1], dtype=np.int64)  # [-1]: label -1 stays
    relabelled: dict[str, int] = {}
    unlabelled: dict[str, int] = {}
    dropped: dict[str, int] = {}
    parts = {}
    for name in SPLIT_NAMES:
        frame = getattr(splits, name)
        old = frame["label"].to_numpy()
        new = lookup[np.where(old >= 0, old, len(carry))]
        for i in np.unique(old[old >= 0]):
            n = int((old == i).sum())
            if carry[i] is None:
                unlabelled[reading[i]] = unlabelled.get(reading[i], 0) + n
            elif reading[i] != schema.classes[carry[i]]:
                key = f"{reading[i]} -> {schema.classes[carry[i]]}"
                relabelled[key] = relabelled.get(key, 0) + n
        frame = frame.assign(label=new)
        if name != "train":
            lost = (old >= 0) & (new < 0)
            dropped[name] = int(lost.sum())
            frame = frame[~lost].reset_index(drop=True) if lost.any() else frame
        parts[name] = frame
    report = {"schema_version": schema.version, "relabelled": relabelled, "unlabelled": unlabelled,
              "dropped_from": dropped} if relabelled or unlabelled else {}
    return replace(splits, **parts, classes=schema.classes, label_schema=report)


def load_dataset(config, schema: LabelSchema | None = None) -> Splits:
    """The project's dataset, validated and split as its config says, with gold labels under the
    project's label ``schema`` (default: the store's, ``stored_label_schema``).

    A data file is never rewritten by a schema change: its labels are read in the first schema
    (indices) or by any class name the schema ever had (``data.schema.label_reading``), split as
    before, then carried to the current classes (``carry_labels``: a renamed or merged class's rows
    follow it; a split or retired class's rows are unlabelled, counted in ``Splits.label_schema``).
    Raises ``DatasetError`` when ``schema``'s classes are not ``config.classes``."""
    ds = config.dataset
    schema = stored_label_schema(config) if schema is None else schema
    if tuple(schema.classes) != tuple(config.classes):
        raise DatasetError(f"label schema {schema.version} has classes {list(schema.classes)}; the project declares "
                           f"{list(config.classes)}")
    first, names = label_reading(schema)
    later = tuple(n for n in names if n not in first)
    carry = tuple(names[n] for n in first + later)
    if ds.source == "youtube_spam":
        frame = load_youtube_spam(url=ds.url)
        if first != YOUTUBE_CLASSES:
            raise DatasetError(f"youtube_spam has classes {list(YOUTUBE_CLASSES)}; the project's first label schema "
                               f"declares {list(first)}")
        if ds.split == "youtube_tutorial":
            return carry_labels(youtube_tutorial_split(frame), carry, first + later, schema)
        source = "youtube_spam"
    elif ds.source == "wrench":
        from .wrench import wrench_frames

        frames = wrench_frames(config.resolve(ds.path), first, ds.relation_text)
        return carry_labels(Splits(frames["train"], frames["dev"], frames["test"], first, str(config.resolve(ds.path))),
                            carry, first + later, schema)
    elif ds.source == "file":
        if not ds.path:
            raise DatasetError("dataset.path is empty; name the CSV/Parquet/JSONL file to read")
        path = config.resolve(ds.path)
        frame = canonicalize(
            read_table(path, format=ds.format, delimiter=ds.delimiter, columns=ds.columns, quoted=ds.quoted),
            text_field=ds.text_field,
            label_field=ds.label_field,
            id_field=ds.id_field,
            classes=first,
            source=str(path),
            also_labels=later,
        )
        source = str(path)
    else:
        raise DatasetError(f"unknown dataset.source {ds.source!r}; expected 'youtube_spam', 'file' or 'wrench'")
    if ds.split == "column":
        splits = split_by_column(frame, ds.split_field, classes=first, source=source)
    elif ds.split == "random":
        # split on the labels as written, so the rows of each split stay put across schema changes
        splits = split_random(frame, dev_size=ds.dev_size, test_size=ds.test_size, random_state=config.seed, classes=first, source=source)
    else:
        raise DatasetError(f"dataset.split {ds.split!r} only applies to the youtube_spam source")
    splits = carry_labels(splits, carry, first + later, schema)
    for name in SPLIT_NAMES:
        if len(getattr(splits, name)) == 0:
            raise DatasetError(f"{source}: the {name} split is empty")
    for name in ("dev", "test"):
        if (getattr(splits, name)["label"] < 0).any():
            raise DatasetError(f"{source}: every {name} row needs a gold label")
    return splits


IMDB_CLASSES = ("neg", "pos")
IMDB_SPLITS = ("train", "test")


def load_imdb(data_dir: str | Path | None = None, *, splits: tuple[str, ...] = IMDB_SPLITS) -> pd.DataFrame:
    """IMDB reviews (Maas et al. 2011) in canonical form, from ``$LABELING_DATA_DIR/imdb``.

    Not downloaded: the archive is 80 MB; the local copy is one CSV per split
    (``id, rating, label, text``). Ids are ``<split>-<label>-<review id>``.
    """
    root = require_data_dir(data_dir, what="the IMDB reviews (imdb/)") / "imdb"
    frames = []
    for split in splits:
        path = root / f"{split}.csv"
        if not path.is_file():
            raise DatasetError(f"IMDB split {split!r} not found at {path}; set {DATA_DIR_ENV} to the data folder")
        df = pd.read_csv(path, dtype={"text": str})
        df["row_id"] = [f"{split}-{lab}-{i}" for lab, i in zip(df["label"], df["id"])]
        df["split"] = split
        frames.append(df.drop(columns=["id"]))
    return canonicalize(pd.concat(frames, ignore_index=True), text_field="text", label_field="label",
                        id_field="row_id", classes=IMDB_CLASSES, source=str(root))
