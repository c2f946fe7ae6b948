"""What a retrain returns (every task shape): ``RunResult``, and the run id it is recorded under."""

from __future__ import annotations

import datetime as _dt
import secrets
from dataclasses import dataclass, field

import pandas as pd

HUMAN_BASELINE = "human (dev labels; chosen by CV on dev)"
ORACLE_BASELINE = "oracle (gold train labels; chosen by CV on train)"


def new_run_id() -> str:
    """A run id: the UTC time to the second and 6 random hex digits."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


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


def summary_header(result: RunResult, *, task: str | None = None) -> list[str]:
    """The first lines of every run summary: run, project, seed (and task shape when not the
    default), dataset version and split sizes, LF set."""
    shape = f"  task {task}" if task else ""
    return [
        f"run {result.run_id}  project {result.project}  seed {result.seed}{shape}",
        f"dataset {result.dataset_version}  splits {result.split_sizes}",
        f"LF set {result.lf_set_version} ({len(result.lfs)} LFs)",
    ]
def _span_gold_line(gold: dict | None) -> str:
    if not gold or not gold.get("texts_read"):
        return f"gold spans from the store: none ({(gold or {}).get('note') or 'not read'})"
    return (f"gold spans from the store: {gold['texts_read']} texts, {gold['spans_read']} spans (sha256 {gold['sha256']}): "
            f"{gold['dev_rows']} dev and {gold['train_rows']} train texts relabelled, {gold['extra_rows']} other texts "
            f"added to training, {gold['test_rows_excluded']} on test left out, {gold['unmatched']} kept only as a hash")


def format_spans_summary(result: RunResult) -> str:
    """The terminal report of a spans run: per-type LF analysis and the entity-level test table."""
    table = result.evaluation[["name", "entity_precision", "entity_recall", "entity_f1", "support"]].copy()
    for col in ("entity_precision", "entity_recall", "entity_f1"):
        table[col] = table[col].map(lambda v: f"{v:.1%}")
    lf_view = result.lf_table.loc["dev"].set_index(["lf", "type"])
    return "\n".join([
        *summary_header(result, task="spans"),
        f"label model {result.label_model['type']} (selected on dev entity F1)  end model spaCy NER "
        f"(dev entity F1 {result.end_model.get('dev_entity_f1', float('nan')):.3f})",
        "",
        _span_gold_line(result.end_model.get("gold")),
        "",
        "LF analysis on dev, per entity type (coverage, overlaps, conflicts: token shares; precision/recall: exact spans):",
        lf_view.to_string(float_format=lambda v: f"{v:.3f}"),
        "",
        "Test split (entity-level, exact match, micro):",
        table.to_string(index=False),
    ])
