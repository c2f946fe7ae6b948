"""Gold labels in the project's store: reviewed tasks and their annotations.

The tables (``review_tasks``, ``gold_labels``), their SQL and what each row means live in
``labeling.store.gold``; this module is the review stage's view of them.

``review_gold`` resolves annotators into one label per task (majority; a tie
is a disagreement left unresolved) and ``disagreements`` lists every task
whose annotators differ. ``all_gold`` adds the serving feedback
(``feedback.gold_labels``), so the retrain job and refinement read one table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LabelError
from ..store.connection import store_exists, table_names
from ..store.gold import GoldStore as _StoredGold
from ..store.gold import PullResult, ReviewTask
from ..store.serving import gold_labels as feedback_gold_labels
from .label_studio import describe_unclear

GOLD_COLUMNS = ["task_key", "source", "row_id", "text", "label", "n_annotators", "agreement"]


class GoldStore(_StoredGold):
    """The review side of the project's store (``labeling.store.gold``), whose pull results
    describe the unclear answers they kept (``describe_unclear``)."""

    def record_annotations(self, project: str, annotations, unclear=()) -> PullResult:
        result = super().record_annotations(project, annotations, unclear)
        known = self.pushed_keys(project) if unclear else set()
        return dataclasses.replace(result, report=describe_unclear([u for u in unclear if u.task_key in known]))


def _resolve(answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    gold, disagree = [], []
    for key, group in answers.groupby("task_key", sort=True):
        counts = group["label"].value_counts()
        first = group.iloc[0]
        top = counts[counts == counts.max()]
        if len(counts) > 1:
            disagree.append({"task_key": key, "text": first["text"], "row_id": first["row_id"],
                             "answers": dict(zip(group["annotator"], group["label"].astype(int))),
                             "resolved": int(top.index[0]) if len(top) == 1 else None})
        if len(top) == 1:
            gold.append({"task_key": key, "source": first["source"], "row_id": first["row_id"], "text": first["text"],
                         "label": int(top.index[0]), "n_annotators": len(group),
                         "agreement": float(counts.max() / len(group))})
    return (pd.DataFrame(gold, columns=GOLD_COLUMNS),
            # object dtype: an unresolved tie stays None instead of becoming NaN
            pd.DataFrame(disagree, columns=["task_key", "text", "row_id", "answers", "resolved"], dtype=object))


def review_gold(store_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(gold, disagreements)`` from the reviews: one majority label per task, and
    every task whose annotators differ (ties have ``resolved`` None and no gold row)."""
    with GoldStore(store_path) as store:
        return _resolve(store.answers())


def all_gold(store_path: str | Path) -> pd.DataFrame:
    """Review gold plus serving feedback, one label per text (a review wins over feedback).

    Columns: task_key, source (``dataset``, ``served`` or ``feedback``), row_id, text, label.
    """
    reviewed, _ = review_gold(store_path)
    feedback = feedback_gold_labels(store_path)
    feedback = pd.DataFrame({"task_key": "feedback:" + feedback["id"].astype(str), "source": "feedback",
                             "row_id": None, "text": feedback["text"], "label": feedback["label"].astype(int)})
    frame = pd.concat([reviewed[["task_key", "source", "row_id", "text", "label"]], feedback], ignore_index=True)
    return frame.drop_duplicates("text", keep="first").reset_index(drop=True)


def read_only_gold(store_path: str | Path | None) -> pd.DataFrame:
    """``all_gold`` for a store that may not exist yet (or None): an empty table, no new file."""
    if store_path is None or not store_exists(store_path):
        return pd.DataFrame(columns=["task_key", "source", "row_id", "text", "label"])
    if not {"review_tasks", "feedback"} & table_names(store_path):
        return pd.DataFrame(columns=["task_key", "source", "row_id", "text", "label"])
    return all_gold(store_path)




# --------------------------------------------------------------------------- retrain hooks


@dataclass(frozen=True, eq=False)
class GoldMatch:
    """Gold labels placed against a run's splits.

    ``train_pos``/``train_labels``: gold on train rows (matched by row id, else by
    text). ``extra``: gold texts in no split (served traffic), as a frame with
    ``id``, ``text``, ``label``. Gold on a test row or a test text is counted in
    ``n_test`` and used for nothing: test rows are never trained on.
    """

    train_pos: np.ndarray
    train_labels: np.ndarray
    extra: pd.DataFrame
    n_test: int

    @property
    def n_rows(self) -> int:
        return len(self.train_pos) + len(self.extra)

    def summary(self) -> dict:
        return {"train_rows": int(len(self.train_pos)), "extra_rows": int(len(self.extra)),
                "test_rows_excluded": int(self.n_test)}


def match_gold(gold: pd.DataFrame, splits) -> GoldMatch:
    """Place ``gold`` (``all_gold``'s columns) against ``splits`` (a ``datasets.Splits``).

    Raises ``LabelError`` when a stored label is no class index of ``splits.classes`` (gold
    stored while the config declared more classes): dropping it would lose gold silently."""
    k = len(splits.classes)
    labels = pd.to_numeric(gold["label"], errors="coerce").to_numpy(dtype=np.float64) if len(gold) else np.zeros(0)
    bad = ~((labels >= 0) & (labels < k) & (labels == np.round(labels)))
    if bad.any():
        keys = gold["task_key"].astype(str)[bad].tolist()
        raise LabelError(
            f"{int(bad.sum())} stored gold label(s) are not a class index of project.classes {list(splits.classes)} "
            f"(0..{k - 1}): {sorted({str(v) for v in gold['label'][bad]})}, tasks {keys[:5]}. They were stored while "
            "the config declared more classes; put the removed class back in project.classes, or set "
            "review.use_gold = false to train without gold")
    pos, taken, extra, n_test = place_gold(gold, splits)
    labels = gold["label"].to_numpy()
    extra_rows = [{"id": str(gold["task_key"].iloc[j]), "text": str(gold["text"].iloc[j]), "label": int(labels[j])}
                  for j in extra]
    return GoldMatch(np.asarray(pos, dtype=np.int64), np.asarray([int(labels[j]) for j in taken], dtype=np.int64),
                     pd.DataFrame(extra_rows, columns=["id", "text", "label"]), n_test)


def place_gold(gold: pd.DataFrame, splits) -> tuple[list[int], list[int], list[int], int]:
    """Where each row of ``gold`` (``all_gold``'s columns, best first) falls against ``splits``:
    ``(train positions, the gold row placed on each, gold rows in no split, gold rows on test)``.
    A train row is matched by row id (dataset gold), else by text, and takes the first gold row
    that lands on it; gold on a test row or a test text is only counted: test is never trained on."""
    train_ids = {str(v): i for i, v in enumerate(splits.train["id"])}
    train_texts: dict[str, int] = {}
    for i, t in enumerate(splits.train["text"]):
        train_texts.setdefault(str(t), i)
    test_ids = {str(v) for v in splits.test["id"]}
    test_texts = {str(t) for t in splits.test["text"]}
    pos, taken, extra, n_test, seen = [], [], [], 0, set()
    for j, row in enumerate(gold.itertuples(index=False)):
        row_id, text = (None if pd.isna(row.row_id) else str(row.row_id)), str(row.text)
        if (row.source == "dataset" and row_id in test_ids) or text in test_texts:
            n_test += 1
            continue
        i = train_ids.get(row_id) if row.source == "dataset" else None
        i = train_texts.get(text) if i is None else i
        if i is None:
            extra.append(j)
        elif i not in seen:
            seen.add(i)
            pos.append(i)
            taken.append(j)
    return pos, taken, extra, n_test


def gold_outside_dev(match: GoldMatch, dev_ids, train_ids) -> np.ndarray:
    """Which of ``match.train_pos`` are no dev row (by id): the gold rows selection adds to dev."""
    in_dev = {str(v) for v in dev_ids}
    return np.array([str(train_ids[p]) not in in_dev for p in match.train_pos], dtype=bool)


def dev_with_gold(match: GoldMatch, L_train, L_dev, y_dev, L_extra, dev_ids, train_ids, y_extra=None):
    """The labelled rows for label-model selection and class balance: dev, then gold
    train rows not already in dev, then the extra gold rows. ``L`` may be (n, m) votes or
    an (n, m, k) vote tensor, ``y`` class indices or (n, k) label sets (``y_extra``: the
    extra rows' labels as such, when ``match.extra["label"]`` is not)."""
    keep = gold_outside_dev(match, dev_ids, train_ids)
    L = np.concatenate([L_dev, L_train[match.train_pos[keep]], L_extra])
    y_extra = match.extra["label"].to_numpy() if y_extra is None else y_extra
    y = np.concatenate([y_dev, np.asarray(match.train_labels)[keep], np.asarray(y_extra).reshape(-1, *np.shape(y_dev)[1:])])
    return L, y.astype(np.int64)


def training_rows_with_gold(match: GoldMatch, train_texts, soft, covered, cardinality: int, weight: float):
    """End-model rows: covered train rows with the label model's soft labels, gold
    train rows with their gold label (covered or not), then the extra gold rows.
    Returns ``(texts, targets, sample_weight)``; ``texts`` is a pandas Series (positions
    from 0) when ``train_texts`` is one, so a million Arrow-backed texts never become a
    list of Python strings, else a list."""
    targets = np.asarray(soft, dtype=np.float64).copy()
    use = np.asarray(covered, dtype=bool).copy()
    weights = np.ones(len(targets))
    eye = np.eye(cardinality)
    if len(match.train_pos):
        targets[match.train_pos] = eye[match.train_labels]
        use[match.train_pos] = True
        weights[match.train_pos] = weight
    if isinstance(train_texts, pd.Series):
        texts = pd.concat([train_texts[use].astype(str), match.extra["text"].astype(str)], ignore_index=True)
    else:
        texts = [str(t) for t, u in zip(train_texts, use) if u] + match.extra["text"].astype(str).tolist()
    extra_labels = match.extra["label"].to_numpy(dtype=np.int64)
    targets = np.vstack([targets[use], eye[extra_labels]])
    weights = np.concatenate([weights[use], np.full(len(extra_labels), weight)])
    return texts, targets, weights


def gold_class_balance(y, cardinality: int) -> tuple[float, ...]:
    """Class frequencies of the labelled rows, add-one smoothed (no class gets prior 0)."""
    y = np.asarray(y)
    counts = np.bincount(y[y >= 0], minlength=cardinality) + 1.0
    return tuple(float(c) for c in counts / counts.sum())


__all__ = [
    "GoldMatch",
    "GoldStore",
    "PullResult",
    "ReviewTask",
    "all_gold",
    "dev_with_gold",
    "gold_class_balance",
    "gold_outside_dev",
    "match_gold",
    "place_gold",
    "read_only_gold",
    "review_gold",
    "training_rows_with_gold",
]
