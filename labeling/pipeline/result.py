"""What a retrain returns (``RunResult``) and the names of its baseline rows, for every task shape."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["HUMAN_BASELINE", "ORACLE_BASELINE", "RunResult"]

HUMAN_BASELINE = "human (dev labels; chosen by CV on dev)"
ORACLE_BASELINE = "oracle (gold train labels; chosen by CV on train)"


@dataclass(frozen=True, eq=False)
class RunResult:
    """Everything a run produced; ``to_json`` is what ``--json`` prints."""

    run_id: str
    project: str
    seed: int
    dataset_version: str
    split_sizes: dict
    lf_set_version: str
    lfs: tuple[tuple[str, str], ...]
    matrix_hashes: dict
    label_model: dict
    end_model: dict
    evaluation: pd.DataFrame
    lf_table: pd.DataFrame
    artifacts: dict = field(default_factory=dict)
    store_path: str = ""
    timings: dict = field(default_factory=dict)
    documents: dict = field(default_factory=dict)  # verification, slices, test predictions, monitor reference
    promotion: dict = field(default_factory=dict)  # the gate's decision on this run (recorded runs)
    swept: dict = field(default_factory=dict)  # what the sweep before this run removed or completed
    stages: dict = field(default_factory=dict)  # per stage: seconds, peak RSS (MiB), rows, rows/s

    def metric(self, name: str, column: str = "accuracy") -> float:
        rows = self.evaluation[self.evaluation["name"] == name]
        if rows.empty:
            raise KeyError(name)
        return float(rows.iloc[0][column])

    def to_json(self) -> dict:
        table = self.evaluation.astype(object).where(self.evaluation.notna(), None)
        return {
            "run_id": self.run_id,
            "project": self.project,
            "seed": self.seed,
            "dataset_version": self.dataset_version,
            "split_sizes": self.split_sizes,
            "lf_set_version": self.lf_set_version,
            "lfs": [{"name": n, "version": v} for n, v in self.lfs],
            "label_matrix_hashes": self.matrix_hashes,
            "label_model": self.label_model,
            "end_model": self.end_model,
            "metrics": table.to_dict(orient="records"),
            "artifacts": self.artifacts,
            "store": self.store_path,
            "timings_s": self.timings,
            "stages": self.stages,
            "verification": {k: self.documents["verification"][k] for k in ("findings", "stats")}
            if "verification" in self.documents else None,
            "slices": self.documents.get("slices"),
            "promotion": self.promotion or None,
            "swept": self.swept or None,
        }
