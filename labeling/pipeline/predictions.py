"""A run's test-split predictions as a checksummed artifact (not a JSON blob in SQLite).

``predictions/test_predictions.npz`` in the run's artifact folder holds the test
rows' ids, gold labels, both models' class probabilities and the served predictor's; its sha256 is in the
run's artifact records like every other file, and is checked on every read. The
promotion gate scores runs from these (no model is loaded or run again), and the
report draws its confusion matrix and calibration from them.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.datasets import sha256_file
from ..errors import ArtifactError

__all__ = ["GOLD_ARTIFACT", "PREDICTIONS_ARTIFACT", "TestPredictions", "gold_snapshot_bytes", "load_gold_snapshot", "load_test_predictions",
           "save_gold_snapshot", "save_test_predictions"]

PREDICTIONS_ARTIFACT = "predictions/test_predictions.npz"
#: the store gold a run read (reviews and feedback, labels of the run's label schema): ``reproduce``
#: reads it instead of the store, whose gold a later schema change relabels and new answers extend
GOLD_ARTIFACT = "gold/gold.jsonl"
GOLD_COLUMNS = ("task_key", "source", "row_id", "text", "label")


@dataclass(frozen=True, eq=False)
class TestPredictions:
    """``ids`` (n,) str, ``y`` (n,) int gold, ``end_model`` / ``label_model`` / ``served`` (n, k)
    float32 probabilities (``served``: the run's served predictor, ``models.predictors``; None in
    runs recorded before it, which served the end model)."""

    ids: np.ndarray
    y: np.ndarray
    end_model: np.ndarray
    label_model: np.ndarray
    served: np.ndarray | None = None

    @property
    def served_proba(self) -> np.ndarray:
        """(n, k): what the run serves (the end model's for runs recorded before the served predictor)."""
        return self.end_model if self.served is None else self.served

    def matches(self, ids, y) -> bool:
        """Whether these are predictions for exactly these test rows (ids and gold, in order)."""
        ids, y = np.asarray(ids).astype(str), np.asarray(y)
        return ids.shape == self.ids.shape and bool((ids == self.ids).all()) and bool((y == self.y).all())


def save_test_predictions(folder: str | Path, predictions: TestPredictions) -> dict[str, str]:
    """Write the artifact under ``folder``; returns ``{relative name: sha256}``."""
    path = Path(folder) / PREDICTIONS_ARTIFACT
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, ids=np.asarray(predictions.ids).astype(str), y=np.asarray(predictions.y, dtype=np.int64),
                            end_model=np.asarray(predictions.end_model, dtype=np.float32),
                            label_model=np.asarray(predictions.label_model, dtype=np.float32),
                            **({} if predictions.served is None else
                               {"served": np.asarray(predictions.served, dtype=np.float32)}))
    return {PREDICTIONS_ARTIFACT: sha256_file(path)}


def load_test_predictions(run: dict) -> TestPredictions | None:
    """The recorded predictions of ``run`` (a ``read_run`` dict), or None for a run
    recorded without them. Raises ``ArtifactError`` when the file is missing, does
    not match its recorded sha256 or cannot be read."""
    path = _checked_artifact(run, PREDICTIONS_ARTIFACT, "test predictions")
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return TestPredictions(data["ids"], data["y"], data["end_model"], data["label_model"],
                                   data["served"] if "served" in data.files else None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: cannot read test predictions: {exc}") from exc


def _checked_artifact(run: dict, name: str, what: str) -> Path | None:
    """The path of ``run``'s artifact ``name`` after its sha256 is checked (None: not recorded)."""
    record = next((a for a in run.get("artifacts", ()) if a["name"] == name), None)
    if record is None:
        return None
    path = Path(record["path"])
    if not path.is_file():
        raise ArtifactError(f"{path}: {what} of run {run.get('id')!r} are missing")
    if sha256_file(path) != record["sha256"]:
        raise ArtifactError(f"{path}: sha256 does not match the run record; refusing to read")
    return path


def save_gold_snapshot(folder: str | Path, gold: pd.DataFrame) -> dict[str, str]:
    """Write the gold a run read (``review.gold.all_gold``'s columns) as JSON lines under ``folder``;
    returns ``{relative name: sha256}``."""
    path = Path(folder) / GOLD_ARTIFACT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gold_snapshot_bytes(gold))
    return {GOLD_ARTIFACT: sha256_file(path)}


def gold_snapshot_bytes(gold: pd.DataFrame) -> bytes:
    """The bytes ``save_gold_snapshot`` writes (so a run can record their sha256 before writing
    them): one JSON line per row; ``label`` a class index, or a sorted list of them (a label set)."""
    lines = []
    for row in gold[list(GOLD_COLUMNS)].itertuples(index=False):
        values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in row]
        label = values[-1]
        values[-1] = sorted(int(c) for c in label) if isinstance(label, (list, tuple, np.ndarray)) else int(label)
        lines.append(json.dumps(dict(zip(GOLD_COLUMNS, values)), ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


def load_gold_snapshot(run: dict) -> pd.DataFrame | None:
    """The gold ``run`` read (``save_gold_snapshot``), or None for a run recorded without it.
    Raises ``ArtifactError`` when the file is missing, fails its sha256 or cannot be read."""
    path = _checked_artifact(run, GOLD_ARTIFACT, "gold labels")
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read the run's gold labels: {exc}") from exc
    return pd.DataFrame(rows, columns=list(GOLD_COLUMNS))
