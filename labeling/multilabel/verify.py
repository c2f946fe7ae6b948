"""``verify`` for a multi-label project: its gold label sets, then the data checks every project gets.

The raw label column of a file source is read first, so every problem is listed with the
rows it is on (loading stops at the first): a class name the project does not declare, a
set joined by another separator than ``dataset.label_separator`` (``"sport;music"`` with
separator ``","``: split by ``";"`` it names classes), an empty item between two separators,
a class repeated in one set. Then ``data.verify.verify_splits`` runs on the loaded splits
(duplicates, conflicting gold sets, leakage, drift), with the class counts and class
findings computed per class of the sets (a row counts once for each class it carries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..data.verify import MAX_EXAMPLES, Finding, VerificationReport, verify_splits
from .gold import class_index, is_missing, load_multilabel_dataset

__all__ = ["SEPARATORS", "label_value_findings", "verify_multilabel_dataset"]

#: separators a label column is often written with: a set joined by another is named as such
SEPARATORS = (",", ";", "|", "/", " ")
_PER_CLASS = ("unknown_labels", "missing_class", "class_imbalance")  # verify_splits reads a label as one class


def _items(value, separator: str) -> list:
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str):
        if value.strip() == "[]":
            return []
        return value.split(separator) if separator else [value]
    return [value]


def label_value_findings(values: Sequence, ids: Sequence, classes: Sequence[str], separator: str) -> list[Finding]:
    """Pure: the findings on raw gold values (see the module docstring), each naming its rows."""
    index = {name: i for i, name in enumerate(classes)}
    k = len(classes)
    unknown: dict[str, list[str]] = {}
    joined: dict[str, list[str]] = {}  # other separator -> rows
    empty, repeated = [], []
    for value, row in zip(values, ids):
        if is_missing(value):
            continue
        items = _items(value, separator)
        if isinstance(value, str) and value.strip() and any(not str(i).strip() for i in items):
            empty.append(str(row))
        found = []
        for item in items:
            if isinstance(item, str) and not item.strip():
                continue
            c = class_index(item, index, k)
            if c is not None:
                found.append(c)
                continue
            other = next((s for s in SEPARATORS if s != separator and isinstance(item, str) and s in item.strip()
                          and all(class_index(p, index, k) is not None for p in item.split(s) if p.strip())), None)
            if other is not None:
                joined.setdefault(other, []).append(f"{row}: {item!r}")
            else:
                unknown.setdefault(str(item).strip(), []).append(str(row))
        if len(found) != len(set(found)):
            repeated.append(str(row))
    out = [Finding("label_separator", "error",
                   f"{len(rows)} row(s) join their classes with {sep!r}, not dataset.label_separator {separator!r} "
                   f"(set dataset.label_separator = {sep!r}, or rewrite those rows)", count=len(rows),
                   examples=tuple(rows[:MAX_EXAMPLES])) for sep, rows in joined.items()]
    out += [Finding("unknown_labels", "error",
                    f"{name!r} is not one of the project's classes {list(classes)} (or an index 0..{k - 1}); "
                    f"on {len(rows)} row(s)", count=len(rows), examples=tuple(rows[:MAX_EXAMPLES]))
            for name, rows in sorted(unknown.items())]
    if empty:
        out.append(Finding("empty_label_item", "warning", f"{len(empty)} row(s) have an empty item between "
                           f"separators {separator!r} (ignored)", count=len(empty), examples=tuple(empty[:MAX_EXAMPLES])))
    if repeated:
        out.append(Finding("repeated_label", "warning", f"{len(repeated)} row(s) name a class twice in one set "
                           "(counted once)", count=len(repeated), examples=tuple(repeated[:MAX_EXAMPLES])))
    return out


def verify_multilabel_dataset(config) -> VerificationReport:
    """The ``verify`` command for ``project.task = "multi_label"``; reads, writes nothing."""
    from ..data.datasets import read_table

    ds = config.dataset
    early: list[Finding] = []
    if ds.source == "file" and ds.label_field and ds.path:
        path = config.resolve(ds.path)
        raw = read_table(path, format=ds.format, delimiter=ds.delimiter, columns=ds.columns, quoted=ds.quoted)
        if ds.label_field in raw.columns:
            ids = raw[ds.id_field].astype(str).tolist() if ds.id_field and ds.id_field in raw.columns else \
                [f"line {i + 2}" for i in range(len(raw))]
            early = label_value_findings(raw[ds.label_field].tolist(), ids, config.classes, ds.label_separator)
            if any(f.severity == "error" for f in early):
                return VerificationReport(str(path), "", {"raw": len(raw)}, {}, tuple(early))
    splits, Ys = load_multilabel_dataset(config)
    report = verify_splits(splits, config.verify)
    counts, findings = {}, [f for f in report.findings if f.code not in _PER_CLASS]
    for name, Y in Ys.items():
        gold = Y[Y[:, 0] >= 0]
        per_class = {c: int(gold[:, i].sum()) for i, c in enumerate(config.classes)}
        counts[name] = {**per_class, "no class": int((gold.sum(axis=1) == 0).sum()), "unlabelled": int(len(Y) - len(gold))}
        missing = [c for c, n in per_class.items() if n == 0]
        if len(gold) and missing and name != "train":
            findings.append(Finding("missing_class", "warning", f"no gold set carries class(es) {missing}", split=name))
    return replace(report, class_counts=counts, findings=tuple(early + findings))
