"""Lineage: the history of a project's runs, and reproducing a run from its record.

A run's record holds everything that decided its results: the dataset snapshot
id (content hash of the splits), the LF-set version and each LF's version, the
label-matrix hashes, the full config (seed included) and the metrics.
``reproduce`` rebuilds the config from the record, re-runs the pipeline without
recording with the run's own LFs (loaded from the copy saved with the run, its files
checked against the run's checksums; the working tree's only for a run recorded before
runs kept their LFs, and said), and compares every one of those; a mismatch names
what changed (different data, another library version changing the matrices or the
metrics, or for an older run an edited LF).

A run made before a label-schema change reproduces under its own schema: the dataset's gold is
read through the run's recorded schema version (``data.datasets.load_dataset``), and the store
gold is the snapshot saved with the run (``predictions.load_gold_snapshot``), not the store's
gold now, which the change relabelled (and later reviews extended).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..config import ProjectConfig, config_from_record
from ..data.schema import LabelSchema
from ..multilabel.metrics import METRICS as _MULTILABEL_METRICS
from ..store.connection import connect
from ..store.label_schema import schema_record
from .predictions import load_gold_snapshot
from .store import RunStore, load_recorded_lfs

# Settings that say where things are, not what a run computes.
_LOCATION_KEYS = ("base_dir", "store", "artifacts")
# Settings added after runs were recorded: at these defaults they hash as if absent, so a run
# whose computation did not change keeps its config hash (and its lineage shows no config change).
_ADDED_DEFAULTS = {"task": "single_label", "serving": {"predictor": "auto"}}
# the same for settings inside a section: (section, key) -> default as JSON reads it back
_ADDED_SECTION_DEFAULTS = {("dataset", "weak_label_names"): [], ("end_model", "ner_max_steps"): 3000,
                           ("end_model", "time_budget_s"): 0.0,
                           ("dataset", "label_separator"): ","}
# end_model settings whose default changed (to auto's "word_hashed" features) and that only a
# "sklearn"/"torch" end model reads: name -> (new default, old default). Elsewhere ("auto") the
# new default hashes as the old one, so those runs keep their config hash; a fixed end model's
# moves, since its model changed. end_model.hash_bits (added, 20) is read by "sklearn" only.
_CHANGED_END_MODEL_DEFAULTS = {"analyzer": ("word", "char_wb"), "ngram_min": (1, 2), "ngram_max": (2, 5),
                               "C": (10.0, 1.0)}
_HASH_BITS_DEFAULT = 20


def _without_added_defaults(config: dict) -> dict:
    out = {k: v for k, v in config.items() if not (k in _ADDED_DEFAULTS and v == _ADDED_DEFAULTS[k])}
    for (section, key), default in _ADDED_SECTION_DEFAULTS.items():
        values = out.get(section)
        if isinstance(values, dict) and key in values:
            value = values[key]
            if (list(value) if isinstance(value, (list, tuple)) else value) == default:
                out[section] = {k: v for k, v in values.items() if k != key}
    end_model = out.get("end_model")
    if isinstance(end_model, dict) and end_model.get("type") in ("auto", "torch", None):
        end_model = {k: v for k, v in end_model.items() if not (k == "hash_bits" and v == _HASH_BITS_DEFAULT)}
        if end_model.get("type", "auto") == "auto":
            end_model.update({k: old for k, (new, old) in _CHANGED_END_MODEL_DEFAULTS.items()
                              if k in end_model and end_model[k] == new})
        out["end_model"] = end_model
    return out


def config_hash(config: dict) -> str:
    """Hash of a recorded config without its machine-specific paths (16 hex digits of sha256)."""
    payload = {k: v for k, v in _without_added_defaults(config).items() if k not in _LOCATION_KEYS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def history(store_path: str | Path) -> list[dict]:
    """Every run, oldest first: lineage ids, headline metrics, aliases, promotion
    decision, and what changed since the previous run (data, LFs, config)."""
    from .registry import Registry

    with RunStore(store_path) as store:
        runs = [store.get_run(r["id"]) for r in store.list_runs()]
        documents = {r["id"]: store.get_documents(r["id"]) for r in runs}
    with Registry(store_path) as registry:
        aliases = registry.aliases()
    out, previous = [], None
    for run in runs:
        metrics = {m["name"]: m for m in run["metrics"]}
        label_model = next((m for m in run["metrics"] if m["name"].startswith("label model")), None)
        record = {
            "run_id": run["id"], "created_at": run["created_at"], "seed": run["seed"],
            "dataset_version": run["dataset_version"], "lf_set_version": run["lf_set_version"],
            "config_hash": config_hash(run["config"]), "label_matrix_train": run["matrix_hashes"].get("train", ""),
            "label_model": run["label_model"]["type"], "end_model": run["end_model"]["type"],
            "end_model_accuracy": metrics.get("end model", {}).get("accuracy"),
            "end_model_macro_f1": metrics.get("end model", {}).get("macro_f1"),
            "label_model_accuracy": label_model["accuracy"] if label_model else None,
            "aliases": sorted(a for a, rid in aliases.items() if rid == run["id"]),
            "promotion": documents[run["id"]].get("promotion"),
            "warnings": len(documents[run["id"]].get("verification", {}).get("findings", [])),
        }
        if previous is None:
            record["changes"] = ["first run"]
        else:
            record["changes"] = [name for name, key in (("data", "dataset_version"), ("LFs", "lf_set_version"),
                                                        ("config", "config_hash")) if record[key] != previous[key]]
        out.append(record)
        previous = record
    return out


def format_history(rows: list[dict]) -> str:
    lines = [f"{'run':<24} {'dataset':<16} {'LF set':<16} {'L_train':<12} {'end acc':>7} {'LM acc':>7}  aliases / changes / gate"]
    for r in rows:
        acc = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
        gate = r["promotion"]["reason"] if r["promotion"] else ""
        lines.append(f"{r['run_id']:<24} {r['dataset_version']:<16} {r['lf_set_version']:<16} "
                     f"{r['label_matrix_train'][:12]:<12} {acc(r['end_model_accuracy']):>7} {acc(r['label_model_accuracy']):>7}  "
                     f"{','.join(r['aliases']) or '-'} / {','.join(r['changes']) or 'nothing'} / {gate}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    matches: bool
    checked: dict  # what -> {"recorded": ..., "reproduced": ...}
    mismatches: tuple[str, ...]
    lfs_source: str = "saved with the run"  # where the LFs that ran came from
    gold_source: str = "saved with the run"  # where the store gold it read came from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def format(self) -> str:
        head = f"run {self.run_id}: " + ("reproduced exactly" if self.matches else "DOES NOT reproduce")
        lines = [head, f"  LFs: {self.lfs_source}", f"  store gold: {self.gold_source}"]
        for name, pair in self.checked.items():
            same = "==" if pair["recorded"] == pair["reproduced"] else "!="
            lines.append(f"  {name}: recorded {pair['recorded']} {same} reproduced {pair['reproduced']}")
        return "\n".join(lines)


def recorded_config(store_path: str | Path, run_id: str, *, base_dir: str | Path | None = None) -> ProjectConfig:
    """The config a run was made with; ``base_dir`` re-roots its relative paths
    (reproducing from another checkout of the project)."""
    with RunStore(store_path) as store:
        data = dict(store.get_run(run_id)["config"])
    if base_dir is not None:
        data["base_dir"] = str(Path(base_dir).resolve())
    return config_from_record(data)


def reproduce(store_path: str | Path, run_id: str, *, base_dir: str | Path | None = None) -> Reproduction:
    """Re-run ``run_id`` from its recorded config (nothing is recorded) and compare."""
    from ..store.serving import FeedbackLog
    from .retrain import run_retrain

    with RunStore(store_path) as store:
        run = store.get_run(run_id)
        documents = store.get_documents(run_id)
    config = recorded_config(store_path, run_id, base_dir=base_dir)
    if any(a["name"] == "lfs/manifest.json" for a in run["artifacts"]) or not run["lfs"]:
        with FeedbackLog(store_path) as log:  # LFLoadError when they fail their checks: nothing stands in
            lfs, source = load_recorded_lfs(log, run_id), "saved with the run"
    else:
        lfs, source = None, "the working tree's: the run was recorded before runs kept their LFs"
    gold = load_gold_snapshot(run)
    gold_source = "saved with the run" if gold is not None else \
        "the store's now: the run was recorded before runs kept their gold"
    again = run_retrain(config, record=False, lfs=lfs, schema=run_label_schema(store_path, run), gold=gold)
    checked = {"dataset_version": {"recorded": run["dataset_version"], "reproduced": again.dataset_version}}
    if lfs is None:
        # LF versions name what the LFs are in memory (paths included): compared only when the
        # working tree's LFs ran; the saved ones passed their checksums, and their matrices are compared
        checked["lf_set_version"] = {"recorded": run["lf_set_version"], "reproduced": again.lf_set_version}
        recorded_lfs = {lf["name"]: lf["version"] for lf in run["lfs"]}
        for name, version in again.lfs:
            if recorded_lfs.get(name) != version:
                checked[f"LF {name}"] = {"recorded": recorded_lfs.get(name), "reproduced": version}
    recorded_gold = (run["end_model"].get("gold") or {}).get("sha256")
    if recorded_gold:  # the gold sets a multi-label run trained on: their hash, as its record holds it
        checked["store gold sha256"] = {"recorded": recorded_gold,
                                        "reproduced": (again.end_model.get("gold") or {}).get("sha256")}
    for split, digest in run["matrix_hashes"].items():
        checked[f"label matrix {split}"] = {"recorded": digest, "reproduced": again.matrix_hashes.get(split)}
    reproduced = {row["name"]: row for row in again.to_json()["metrics"]}
    # a multi-label run records every set metric in its own document (its "accuracy" is subset accuracy)
    recorded_rows, keys = ((documents["multilabel_metrics"], _MULTILABEL_METRICS) if "multilabel_metrics" in documents
                           else (run["metrics"], ("accuracy", "macro_f1")))
    for metric in recorded_rows:
        for key in keys:
            other = reproduced.get(metric["name"], {}).get(key)
            checked[f"{metric['name']} {key}"] = {"recorded": metric[key], "reproduced": other}
    mismatches = tuple(name for name, pair in checked.items() if pair["recorded"] != pair["reproduced"])
    return Reproduction(run_id, not mismatches, checked, mismatches, source, gold_source)


def run_label_schema(store_path: str | Path, run: dict) -> LabelSchema | None:
    """The label schema ``run`` was recorded under (None: recorded before schema versions)."""
    if not run.get("schema_version"):
        return None
    with connect(store_path) as conn:
        record = schema_record(conn, run["project"], run["schema_version"])
    return None if record is None else LabelSchema.from_json(record["classes"], record["history"])
