"""Metrics and the simple baselines every result is compared with.

Seed-talk baselines: random, majority class, each LF alone, majority vote, the
label model, the end model, "human" (the end model trained only on the labelled
dev rows) and "oracle" (the end model trained on gold train labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from ..errors import LabelingError
from ..matrix import ABSTAIN, check_label_matrix


@dataclass(frozen=True)
class EvalRow:
    """One line of the evaluation table."""

    name: str
    kind: str  # baseline | lf | label_model | end_model
    metrics: dict
    train_rows: int | None = None  # labelled rows the method learned from
    coverage: float | None = None  # share of the train split those rows are
    notes: str = ""
    extra: dict = field(default_factory=dict)


NOT_COMPUTED = "not computed: "


def not_computed(name: str, kind: str, classes: Sequence[str], reason: str, *, train_rows: int | None = None,
                 coverage: float | None = None) -> EvalRow:
    """The row of a method this data cannot evaluate: no metrics (None), and ``reason`` in the notes,
    so the table, the run record and the report say why instead of the run stopping."""
    per_class = {c: {"precision": None, "recall": None, "f1": None, "support": None} for c in classes}
    return EvalRow(name, kind, {"accuracy": None, "macro_f1": None, "per_class": per_class, "n": 0},
                   train_rows, coverage, NOT_COMPUTED + reason)


def single_class_reason(y, classes: Sequence[str], what: str) -> str | None:
    """Why an end model cannot be trained on labels ``y`` (-1 = none), or None when it can."""
    y = np.asarray(y)
    present = np.unique(y[y >= 0])
    if len(present) >= 2:
        return None
    if not len(present):
        return f"{what} has no gold labels"
    return (f"{what} has gold labels of class {classes[int(present[0])]!r} only ({int((y == present[0]).sum())} rows); "
            "an end model needs at least two classes")


def classification_metrics(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1 over all ``k`` classes."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise LabelingError(f"{len(y_pred)} predictions for {len(y_true)} gold labels")
    if (y_true < 0).any():
        raise LabelingError("evaluation needs a gold label on every row")
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "n": int(len(y_true)),
    }


def random_predictions(n: int, cardinality: int, random_state: int) -> np.ndarray:
    return np.random.default_rng(random_state).integers(0, cardinality, size=n)


def majority_class(y_dev) -> int:
    """The most frequent gold class in dev (lowest index on ties)."""
    y = np.asarray(y_dev)
    y = y[y >= 0]
    if not len(y):
        raise LabelingError("majority-class baseline needs gold labels in dev")
    return int(np.bincount(y).argmax())


def lf_alone_predictions(L, fallback: int) -> np.ndarray:
    """Each LF as a classifier: its vote where it votes, ``fallback`` elsewhere -> (n, m)."""
    L = check_label_matrix(L)
    return np.where(L == ABSTAIN, fallback, L)


def table_score(row: pd.Series, metric: str, *, suffix: str = "") -> float:
    """A row of ``evaluation_table`` scored with the project's metric ("accuracy",
    "macro_f1" or "f1:<class>": the F1 of that class from its precision and recall);
    ``suffix`` "_unleaked" reads the leakage-free columns (accuracy and macro-F1 only).
    NaN where the row was not computed. Raises ``KeyError`` for a class the table lacks."""
    kind, _, positive = metric.partition(":")
    if kind != "f1" or not positive:
        return float(row[f"{metric}{suffix}"]) if pd.notna(row[f"{metric}{suffix}"]) else float("nan")
    if suffix:
        raise KeyError(f"the table holds no {suffix} column for {metric!r}")
    precision, recall = row[f"precision_{positive}"], row[f"recall_{positive}"]
    if pd.isna(precision) or pd.isna(recall):
        return float("nan")
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def evaluation_table(rows: Sequence[EvalRow], classes: Sequence[str]) -> pd.DataFrame:
    """Rows as a flat frame: one column per metric, per-class precision/recall spelled out."""
    records = []
    for row in rows:
        record = {
            "name": row.name,
            "kind": row.kind,
            "accuracy": row.metrics["accuracy"],
            "macro_f1": row.metrics["macro_f1"],
        }
        for cls in classes:
            record[f"precision_{cls}"] = row.metrics["per_class"][cls]["precision"]
            record[f"recall_{cls}"] = row.metrics["per_class"][cls]["recall"]
        unleaked = row.extra.get("unleaked")
        # side by side: the same metrics on the test rows that repeat no train/dev text
        record["accuracy_unleaked"] = unleaked["accuracy"] if unleaked else None
        record["macro_f1_unleaked"] = unleaked["macro_f1"] if unleaked else None
        record["train_rows"] = row.train_rows
        record["coverage"] = row.coverage
        record["notes"] = row.notes
        records.append(record)
    return pd.DataFrame.from_records(records)


def class_recall(y_true, predictions: dict[str, np.ndarray], classes: Sequence[str], *,
                 counted: dict[str, np.ndarray] | None = None) -> dict:
    """Per class, each model's recall and how many rows it predicts the class on.

    ``y_true`` (n,) gold class indices (-1 = none: left out of the recall, not of the
    counts); ``predictions``: model name -> (n,) predicted class indices; ``counted``:
    model name -> (n,) bool, the rows whose predictions are counted (e.g. the rows some
    LF votes on, where a label model's prediction is its own and not a tie-break);
    default every row. Returns ``{"rows": n, "per_class": {class: {"support": int,
    "recall": {model: float | None}, "predicted": {model: int}}}}`` (recall None for a
    class without gold rows)."""
    y_true = np.asarray(y_true)
    labelled = y_true >= 0
    per_class = {}
    for j, cls in enumerate(classes):
        gold = labelled & (y_true == j)
        support = int(gold.sum())
        per_class[cls] = {
            "support": support,
            "recall": {name: float((np.asarray(pred)[gold] == j).mean()) if support else None
                       for name, pred in predictions.items()},
            "predicted": {name: int(((np.asarray(pred) == j) & (counted or {}).get(name, True)).sum())
                          for name, pred in predictions.items()},
        }
    return {"rows": int(labelled.sum()), "per_class": per_class}


def vanished_classes(recall: dict, served: str, reference: str) -> list[str]:
    """The classes ``reference`` predicts on some row of ``recall`` (``class_recall``'s
    result) and ``served`` never does."""
    return [cls for cls, row in recall["per_class"].items()
            if row["predicted"][reference] > 0 and row["predicted"][served] == 0]


def vanished_warnings(recall: dict, served: str, reference: str, metric: str, split: str = "dev") -> list[str]:
    """One warning per class ``vanished_classes`` finds, with the metric that would weigh it."""
    lines = []
    for cls in vanished_classes(recall, served, reference):
        row = recall["per_class"][cls]
        ref_recall = row["recall"][reference]
        found = "" if ref_recall is None else f" (recall {ref_recall:.1%} of its {row['support']})"
        line = (f"class {cls!r} vanishes: the {reference} predicts it on {row['predicted'][reference]} {split} rows"
                f"{found}, the {served} on none")
        lines.append(line + ("; project.metric = 'macro_f1' would weigh it" if metric != "macro_f1" else
                             "; it scores 0 in the macro_f1 the end model was chosen on"))
    return lines
