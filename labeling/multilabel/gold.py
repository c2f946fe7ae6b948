"""The multi-label gold codec, and the multi-label dataset loader.

A row's gold label is a set of classes. In a file it is a list column (Parquet,
JSONL) or a string split by ``dataset.label_separator`` (default ``","``), of class
names or indices; an empty list (or an empty string in a list column's place) is a
labelled row with no class; a missing value (None, NaN) is an unlabelled row.

In memory the gold of n rows is ``Y``, an (n, k) int8 array of 0/1, with every
entry -1 on an unlabelled row. The canonical frame's ``label`` column holds the set
as a bit mask (``sum(2**c)``; -1 unlabelled), so the dataset version, the splits
and the verification hash it as they hash a class index (at most 62 classes).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.datasets import (SPLIT_NAMES, Splits, canonicalize, read_table, split_by_column, split_random,
                             stored_label_schema)
from ..data.schema import label_reading
from ..errors import DatasetError, LabelError
from ..settings import require_data_dir

__all__ = ["MAX_CLASSES", "GOEMOTIONS", "class_index", "decode_gold", "encode_gold", "gold_from_codes", "gold_to_codes",
           "is_missing", "load_multilabel_dataset", "parse_gold"]

MAX_CLASSES = 62  # the bit mask of the label column is an int64
GOEMOTIONS = "goemotions"  # the built-in source: ../shared/data/goemotions (train/dev/test TSV)
_GOLD = "__gold__"


def is_missing(value) -> bool:
    """A missing gold value (None, NaN, NA): an unlabelled row."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def class_index(item, index: dict[str, int], k: int) -> int | None:
    """The class index a gold item names (a class name in ``index``, or an index 0..k-1), or None."""
    if isinstance(item, str):
        item = item.strip()
        if item in index:
            return index[item]
    try:
        as_int = int(item)
    except (TypeError, ValueError):
        return None
    return as_int if float(item) == as_int and 0 <= as_int < k else None


def parse_gold(values: Sequence, classes: Sequence[str], *, separator: str = ",",
               ids: Sequence | None = None, source: str = "dataset") -> np.ndarray:
    """Gold label values -> ``Y`` ((n, k) int8: 0/1, -1 rows unlabelled).

    A value is a list/tuple/array of class names or indices, a str split by
    ``separator`` (surrounding spaces ignored; ``""`` and ``"[]"`` are the empty set), a single
    class index, or missing (None/NaN: unlabelled). Raises ``LabelError`` naming the
    row (its id) and the value that is not a class."""
    classes = tuple(classes)
    k = len(classes)
    index = {name: i for i, name in enumerate(classes)}
    Y = np.zeros((len(values), k), dtype=np.int8)
    parsed: dict = {}  # each distinct str once: a file repeats a handful of label sets
    for i, value in enumerate(values):
        if isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
        elif is_missing(value):
            Y[i] = -1
            continue
        elif isinstance(value, str):
            if value not in parsed:
                # "[]" spells the empty set where a cell cannot be an empty list (CSV: empty = missing)
                parsed[value] = ([] if value.strip() == "[]" else
                                 [p for p in value.split(separator) if p.strip()] if separator else [value])
            items = parsed[value]
        else:
            items = [value]
        for item in items:
            c = class_index(item, index, k)
            if c is None:
                row = ids[i] if ids is not None else i
                raise LabelError(f"{source}: row {row!r} has label {value!r}: {item!r} is not one of the project's "
                                 f"classes {list(classes)} (or an index 0..{k - 1})")
            Y[i, c] = 1
    return Y


def gold_to_codes(Y: np.ndarray) -> np.ndarray:
    """``Y`` -> one int64 bit mask per row (-1 unlabelled)."""
    Y = np.asarray(Y)
    if Y.shape[1] > MAX_CLASSES:
        raise DatasetError(f"a multi-label project holds at most {MAX_CLASSES} classes, got {Y.shape[1]}")
    codes = (Y.clip(0).astype(np.int64) << np.arange(Y.shape[1], dtype=np.int64)).sum(axis=1)
    return np.where(Y[:, 0] < 0, -1, codes) if Y.shape[1] else codes


def gold_from_codes(codes, k: int) -> np.ndarray:
    """The inverse of ``gold_to_codes``."""
    codes = np.asarray(codes, dtype=np.int64)
    Y = ((codes[:, None] >> np.arange(k, dtype=np.int64)) & 1).astype(np.int8)
    Y[codes < 0] = -1
    return Y


def encode_gold(labels: Sequence, classes: Sequence[str]) -> list[int]:
    """Class names or indices (a set, as ``/feedback`` takes it) -> sorted class indices."""
    Y = parse_gold([list(labels)], classes, source="gold")
    return np.flatnonzero(Y[0] == 1).tolist()


def decode_gold(Y_row, classes: Sequence[str]) -> list[str]:
    """One row of ``Y`` -> its class names (``[]``: labelled, no class)."""
    return [classes[c] for c in np.flatnonzero(np.asarray(Y_row) == 1)]


def _goemotions(config) -> tuple[Splits, str]:
    folder = require_data_dir(what="goemotions") / "goemotions"
    names = [line.strip() for line in (folder / "labels.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    if tuple(names) != tuple(config.classes):
        raise DatasetError(f"{folder}/labels.txt has classes {names}; the project declares {list(config.classes)}")
    parts = {}
    for name in SPLIT_NAMES:
        path = folder / f"{name}.tsv"
        frame = pd.read_csv(path, sep="\t", header=None, names=["text", _GOLD, "id"], quoting=csv.QUOTE_NONE,
                            dtype=str, keep_default_na=False)
        parts[name] = _canonical(frame, config, "text", "id", str(path))
    return Splits(**parts, classes=tuple(config.classes), source=str(folder)), str(folder)


def _canonical(frame: pd.DataFrame, config, text_field: str, id_field: str, source: str) -> pd.DataFrame:
    out = canonicalize(frame, text_field=text_field, id_field=id_field, classes=config.classes, source=source)
    reading, carry = _schema_reading(config)
    Y = parse_gold(out[_GOLD].tolist(), reading, separator=config.dataset.label_separator,
                   ids=out["id"].tolist(), source=source)
    out["label"] = gold_to_codes(carry_sets(Y, carry, len(config.classes)))
    return out.drop(columns=[_GOLD])


def _schema_reading(config) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    """The class names a data file's sets are read in (the first label schema's, then later
    names: ``data.schema.label_reading``) and the current class each became (None: retired)."""
    first, names = label_reading(stored_label_schema(config))
    reading = first + tuple(n for n in names if n not in first)
    return reading, tuple(names[n] for n in reading)


def carry_sets(Y: np.ndarray, carry, k: int) -> np.ndarray:
    """Sets read in one schema's classes (``Y``: (n, len(carry))) as sets of the current ``k``
    classes: column ``i`` moves to ``carry[i]`` (a renamed class follows its rows), a retired
    class (None) leaves each set and the row's other classes stay; unlabelled rows stay -1.
    A data file is never rewritten by a label-schema change: it is read through this."""
    if tuple(carry) == tuple(range(k)):
        return Y
    out = np.zeros((len(Y), k), dtype=np.int8)
    for i, j in enumerate(carry):
        if j is not None:
            out[:, j] |= Y[:, i].clip(0)
    out[Y[:, 0] < 0 if Y.shape[1] else np.zeros(len(Y), dtype=bool)] = -1
    return out


def load_multilabel_dataset(config) -> tuple[Splits, dict[str, np.ndarray]]:
    """The project's multi-label dataset: ``(splits, {split: Y})``; each split's
    ``label`` column is the gold bit mask (-1 unlabelled), ``Y`` as ``parse_gold``.

    Sources: ``"file"`` (CSV/TSV/Parquet/JSONL, split as configured) and the built-in
    ``"goemotions"`` (the authors' train/dev/test). Raises ``DatasetError`` (a missing
    column, an empty split, dev/test rows without gold) and ``LabelError``."""
    ds = config.dataset
    if len(config.classes) > MAX_CLASSES:
        raise DatasetError(f"a multi-label project holds at most {MAX_CLASSES} classes, got {len(config.classes)}")
    if ds.source == GOEMOTIONS:
        splits, source = _goemotions(config)
    elif ds.source == "file":
        if not ds.path or not ds.label_field:
            raise DatasetError("a multi-label file source needs dataset.path and dataset.label_field")
        path = config.resolve(ds.path)
        raw = read_table(path, format=ds.format, delimiter=ds.delimiter, columns=ds.columns, quoted=ds.quoted)
        if ds.label_field not in raw.columns:
            raise DatasetError(f"{path}: label column {ds.label_field!r} not found; columns are {list(raw.columns)}")
        frame = _canonical(raw.rename(columns={ds.label_field: _GOLD}), config, ds.text_field, ds.id_field, str(path))
        source = str(path)
        if ds.split == "column":
            splits = split_by_column(frame, ds.split_field, classes=config.classes, source=source)
        elif ds.split == "random":
            splits = split_random(frame, dev_size=ds.dev_size, test_size=ds.test_size, random_state=config.seed,
                                  classes=config.classes, source=source)
        else:
            raise DatasetError(f"dataset.split {ds.split!r} only applies to the youtube_spam source")
    else:
        raise DatasetError(f"project.task = 'multi_label' reads dataset.source 'file' or {GOEMOTIONS!r}, "
                           f"not {ds.source!r}")
    for name in SPLIT_NAMES:
        part = getattr(splits, name)
        if len(part) == 0:
            raise DatasetError(f"{source}: the {name} split is empty")
        if name != "train" and (part["label"] < 0).any():
            raise DatasetError(f"{source}: every {name} row needs a gold label (a set, [] for none)")
    k = len(config.classes)
    return splits, {name: gold_from_codes(getattr(splits, name)["label"].to_numpy(), k) for name in SPLIT_NAMES}
