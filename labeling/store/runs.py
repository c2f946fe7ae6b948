"""Runs and their lineage: the ``run*`` tables.

A run is written in one transaction after every step succeeded, so a failed run
leaves no record behind. Tables:

- ``runs``: one row per run: config, seed, dataset version, LF-set version,
  label-matrix hashes, label-model and end-model settings.
- ``run_lfs``: the LFs of a run, in column order, with their source hashes.
- ``run_metrics``: the evaluation table of a run.
- ``run_lf_stats``: LF analysis of a run, per split.
- ``run_artifacts``: saved files with their sha256.
- ``run_documents``: named JSON documents of a run (verification report,
  slice metrics, test-split predictions, the monitoring reference profile).
- ``run_intents``: runs being recorded: written (and committed) before a retrain
  creates its artifact folder, deleted in the transaction that records the run.
  A row left behind names the folders of a retrain that died; only those are
  ever swept, never a folder this store does not know (another project's).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError
from .connection import Connection, TableFamily, insert_rows
from .label_schema import stamp_for_project


@dataclass(frozen=True)
class RunRecord:
    id: str
    created_at: str
    project: str
    seed: int
    config: dict
    dataset_version: str
    dataset_source: str
    split_sizes: dict
    lf_set_version: str
    lfs: tuple[tuple[str, str], ...]  # (name, version) in column order
    matrix_hashes: dict  # split -> label-matrix hash
    label_model: dict
    end_model: dict
    metrics: tuple[dict, ...]
    lf_stats: tuple[dict, ...]
    artifacts: tuple[tuple[str, str, str], ...]  # (name, path, sha256)
    documents: dict = field(default_factory=dict)  # name -> JSON-able document


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class RunStore(TableFamily):
    """Runs and lineage in the project's store (``conn``: its ``Connection``)."""


    def record_run(self, run: RunRecord, *, then: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Insert a run and everything tied to it, all or nothing.

        ``then(connection)`` runs inside the same transaction (the retrain writes the
        run's aliases and promotion decision there), so a crash keeps all or none of it.
        """
        with self.conn.writing(f"record run {run.id}") as conn:
            insert_rows(conn, "runs", [{
                "id": run.id, "created_at": run.created_at, "project": run.project, "seed": run.seed,
                "config": _dumps(run.config), "dataset_version": run.dataset_version,
                "dataset_source": run.dataset_source, "split_sizes": _dumps(run.split_sizes),
                "lf_set_version": run.lf_set_version, "matrix_hashes": _dumps(run.matrix_hashes),
                "label_model": _dumps(run.label_model), "end_model": _dumps(run.end_model),
                "schema_version": stamp_for_project(conn, run.project),
            }])
            insert_rows(conn, "run_lfs", ({"run_id": run.id, "position": i, "name": n, "version": v}
                                          for i, (n, v) in enumerate(run.lfs)))
            insert_rows(conn, "run_metrics", ({**{k: v for k, v in m.items() if k != "per_class"}, "run_id": run.id,
                                               "per_class": _dumps(m["per_class"])} for m in run.metrics))
            insert_rows(conn, "run_lf_stats", ({**s, "run_id": run.id} for s in run.lf_stats))
            insert_rows(conn, "run_artifacts", ({"run_id": run.id, "name": n, "path": p, "sha256": h}
                                                for n, p, h in run.artifacts))
            insert_rows(conn, "run_documents", ({"run_id": run.id, "name": n, "body": _dumps(body)}
                                                for n, body in sorted(run.documents.items())))
            conn.execute("DELETE FROM run_intents WHERE run_id = ?", [run.id])
            if then is not None:
                then(conn)

    def begin_run(self, run_id: str, folder: str | Path, started_at: str) -> None:
        """Note, before anything is written to ``folder``, that run ``run_id`` is being recorded there."""
        with self.conn.writing("note a run being recorded") as conn:
            conn.execute("INSERT INTO run_intents (run_id, folder, started_at) VALUES (?, ?, ?)",
                         [run_id, str(folder), started_at])

    def end_intent(self, run_id: str) -> None:
        """Forget a run being recorded (its folders are gone: it failed, or it was swept)."""
        with self.conn.writing("note a run being recorded") as conn:
            conn.execute("DELETE FROM run_intents WHERE run_id = ?", [run_id])

    def intents(self) -> list[dict]:
        """Runs begun (``begin_run``) and neither recorded nor ended: what a crashed retrain left."""
        return self.conn.read("SELECT * FROM run_intents ORDER BY started_at")

    def get_run(self, run_id: str) -> dict:
        """A run with its LFs, metrics and artifacts, JSON fields decoded."""
        return read_run(self.conn, run_id, where=self.conn.where)

    def get_documents(self, run_id: str) -> dict:
        """The run's JSON documents by name (empty for runs recorded before documents existed)."""
        read_run(self.conn, run_id, where=self.conn.where)  # an unknown run is an error, not an empty dict
        rows = self.conn.read("SELECT name, body FROM run_documents WHERE run_id = ?", [run_id])
        return {row["name"]: json.loads(row["body"]) for row in rows}

    def put_document(self, run_id: str, name: str, body) -> None:
        """Add or replace one document of a recorded run (e.g. a later promotion decision)."""
        read_run(self.conn, run_id, where=self.conn.where)
        with self.conn.writing(f"store document {name!r} of run {run_id}") as conn:
            put_document(conn, run_id, name, body)

    def lf_stats(self, run_id: str) -> list[dict]:
        """The run's LF analysis rows (``run_lf_stats``), per split and LF."""
        return self.conn.read("SELECT * FROM run_lf_stats WHERE run_id = ? ORDER BY split, lf", [run_id])

    def list_runs(self) -> list[dict]:
        return self.conn.read("SELECT * FROM runs ORDER BY created_at")

    def count_runs(self) -> int:
        return self.conn.read("SELECT count(*) AS n FROM runs")[0]["n"]

    def undecided_runs(self) -> list[str]:
        """Ids of the runs that have no promotion decision (their retrain stopped before it), sorted."""
        rows = self.conn.read("SELECT id FROM runs WHERE id NOT IN"
                              " (SELECT run_id FROM run_documents WHERE name = 'promotion') ORDER BY id")
        return [row["id"] for row in rows]

    def recorded_end_model(self, run_id: str) -> tuple[Path, dict[str, str]]:
        return recorded_end_model(self.conn, run_id)


def put_document(conn: sqlite3.Connection, run_id: str, name: str, body) -> None:
    """Add or replace document ``name`` of ``run_id`` inside the caller's transaction."""
    conn.execute("INSERT INTO run_documents (run_id, name, body) VALUES (?, ?, ?)"
                 " ON CONFLICT(run_id, name) DO UPDATE SET body = excluded.body", [run_id, name, _dumps(body)])


def read_run(conn: Connection, run_id: str, *, where: object = "the store") -> dict:
    """Read one run and its rows (a query per table, each under the connection's lock)."""
    row = conn.read_one("SELECT * FROM runs WHERE id = ?", [run_id])
    if row is None:
        raise StoreError(f"no run {run_id!r} in {where}")
    for key in ("config", "split_sizes", "matrix_hashes", "label_model", "end_model"):
        row[key] = json.loads(row[key])
    row["lfs"] = conn.read("SELECT * FROM run_lfs WHERE run_id = ? ORDER BY position", [run_id])
    row["metrics"] = [{**m, "per_class": json.loads(m["per_class"])}
                      for m in conn.read("SELECT * FROM run_metrics WHERE run_id = ? ORDER BY name", [run_id])]
    row["artifacts"] = conn.read("SELECT * FROM run_artifacts WHERE run_id = ? ORDER BY name", [run_id])
    return row


def run_exists(conn: Connection, run_id: str) -> bool:
    return conn.read_one("SELECT 1 AS one FROM runs WHERE id = ?", [run_id]) is not None


def latest_run_id(conn: Connection) -> str | None:
    row = conn.read_one("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1")
    return row["id"] if row else None


def recorded_files(conn: Connection, run_id: str, part: str) -> tuple[Path | None, dict[str, str]]:
    """The folder ``part`` of a run's artifacts as recorded: ``(folder, {file name: sha256})``, names
    relative to the folder; ``(None, {})`` when the run recorded no such folder (no manifest).
    Raises ``StoreError`` when the run is unknown."""
    prefix = f"{part}/"
    files = {a["name"].removeprefix(prefix): a for a in read_run(conn, run_id)["artifacts"]
             if a["name"].startswith(prefix)}
    if "manifest.json" not in files:
        return None, {}
    return Path(files["manifest.json"]["path"]).parent, {name: a["sha256"] for name, a in files.items()}


def recorded_end_model(conn: Connection, run_id: str) -> tuple[Path, dict[str, str]]:
    """A run's saved end model as recorded: ``(folder, {file name: sha256})``.

    Loaders check the files against these checksums (``load_end_model(folder, expected)``),
    not only against the manifest beside them, which whoever rewrites a model can rewrite too.
    Raises ``StoreError`` when the run is unknown or recorded no end model.
    """
    folder, expected = recorded_files(conn, run_id, "end_model")
    if folder is None:
        raise StoreError(f"run {run_id!r} has no saved end model")
    return folder, expected


def end_model_path(conn: Connection, run_id: str) -> Path:
    """The folder of a run's saved end model, from its artifact records."""
    return recorded_end_model(conn, run_id)[0]
