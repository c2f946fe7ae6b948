"""The project's SQLite store (via sqlite-utils): runs and their lineage.

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
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from ..errors import StoreError

SCHEMA_VERSION = 1


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


@contextmanager
def writer_lock(store_path: str | Path) -> Iterator[None]:
    """Hold the store's run-writer lock (``<store>.lock``): one retrain records, or one sweep
    looks for orphans, at a time, so a sweep never takes a concurrent retrain's half-written
    folders for orphans. The OS releases it when its holder dies, kill -9 included."""
    import fcntl

    path = Path(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its missing parent folders) readable by its owner only.

    The store holds served texts and feedback: other local users must not read it.
    SQLite gives its -wal and -shm files the database file's mode, so creating the
    file 0o600 before SQLite opens it covers them too. A store created before this
    loses its group and other permissions (with its -wal and -shm files).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = existing.stat().st_mode
                if mode & 0o077:
                    existing.chmod(mode & 0o700)
            except (FileNotFoundError, PermissionError):
                pass  # not there, or not ours: SQLite says what it cannot open


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, readable by its owner only, in a folder made 0o700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


class WriterDatabase(sqlite_utils.Database):
    """sqlite-utils' ``Database`` whose transactions begin as writers (``BEGIN IMMEDIATE``).

    sqlite-utils begins them deferred (``BEGIN``): such a transaction takes a read snapshot at its
    first read (``create(if_not_exists=True)`` reads the schema, an insert reads the table's
    columns) and tries to become a writer only at its first write. If another connection (a
    serving worker) committed in between, SQLite refuses the upgrade with ``database is locked``
    at once, without waiting for the busy timeout: retrains failed under serving traffic.
    ``BEGIN IMMEDIATE`` takes the write lock up front, so a writer waits its turn instead.
    Every sqlite-utils write (``insert_all``, ``upsert``, ``create``...) goes through ``atomic``.
    Needs a connection with ``isolation_level=None`` (``open_db``), so that Python's sqlite3
    opens no deferred transaction of its own.
    """

    @contextmanager
    def atomic(self) -> Iterator[WriterDatabase]:
        if self.conn.in_transaction:
            with super().atomic():  # nested: a savepoint in the writer transaction already open
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


def open_db(path: Path) -> sqlite_utils.Database:
    """The project's SQLite store at ``path`` (created owner-only), in WAL mode with a 30 s busy
    timeout and foreign keys on, its transactions begun as writers (``WriterDatabase``): how
    every part of the project opens it. Raises ``StoreError``."""
    create_private_file(path)
    try:
        # isolation_level=None: no implicit deferred BEGIN; transactions are WriterDatabase.atomic's.
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        db = WriterDatabase(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    return db


class RunStore:
    """Runs and lineage in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = open_db(self.path)
        self._ensure_schema()

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        db = self.db
        with db.atomic():
            db["runs"].create(
                {
                    "id": str, "created_at": str, "project": str, "seed": int, "config": str,
                    "dataset_version": str, "dataset_source": str, "split_sizes": str,
                    "lf_set_version": str, "matrix_hashes": str, "label_model": str, "end_model": str,
                },
                pk="id", if_not_exists=True,
            )
            db["run_lfs"].create(
                {"run_id": str, "position": int, "name": str, "version": str},
                pk=("run_id", "position"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True,
            )
            db["run_metrics"].create(
                {"run_id": str, "name": str, "kind": str, "accuracy": float, "macro_f1": float,
                 "train_rows": int, "coverage": float, "per_class": str, "notes": str},
                pk=("run_id", "name"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True,
            )
            db["run_lf_stats"].create(
                {"run_id": str, "split": str, "lf": str, "coverage": float, "overlaps": float,
                 "conflicts": float, "accuracy": float, "seconds": float},
                pk=("run_id", "split", "lf"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True,
            )
            db["run_artifacts"].create(
                {"run_id": str, "name": str, "path": str, "sha256": str},
                pk=("run_id", "name"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True,
            )
            db["run_documents"].create(
                {"run_id": str, "name": str, "body": str},
                pk=("run_id", "name"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True,
            )
            db["run_intents"].create({"run_id": str, "folder": str, "started_at": str}, pk="run_id",
                                     if_not_exists=True)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def record_run(self, run: RunRecord, *, then: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Insert a run and everything tied to it, all or nothing.

        ``then(connection)`` runs inside the same transaction (the retrain writes the
        run's aliases and promotion decision there), so a crash keeps all or none of it.
        """
        dumps = lambda obj: json.dumps(obj, sort_keys=True, default=str)  # noqa: E731
        try:
            with self.db.atomic():
                self.db["runs"].insert(
                    {
                        "id": run.id, "created_at": run.created_at, "project": run.project, "seed": run.seed,
                        "config": dumps(run.config), "dataset_version": run.dataset_version,
                        "dataset_source": run.dataset_source, "split_sizes": dumps(run.split_sizes),
                        "lf_set_version": run.lf_set_version, "matrix_hashes": dumps(run.matrix_hashes),
                        "label_model": dumps(run.label_model), "end_model": dumps(run.end_model),
                    }
                )
                self.db["run_lfs"].insert_all(
                    {"run_id": run.id, "position": i, "name": n, "version": v} for i, (n, v) in enumerate(run.lfs)
                )
                self.db["run_metrics"].insert_all(
                    {**{k: v for k, v in m.items() if k != "per_class"}, "run_id": run.id, "per_class": dumps(m["per_class"])}
                    for m in run.metrics
                )
                self.db["run_lf_stats"].insert_all({**s, "run_id": run.id} for s in run.lf_stats)
                self.db["run_artifacts"].insert_all(
                    {"run_id": run.id, "name": n, "path": p, "sha256": h} for n, p, h in run.artifacts
                )
                self.db["run_documents"].insert_all(
                    {"run_id": run.id, "name": n, "body": dumps(body)} for n, body in sorted(run.documents.items())
                )
                self.db.execute("DELETE FROM run_intents WHERE run_id = ?", [run.id])
                if then is not None:
                    then(self.db.conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot record run {run.id} in {self.path}: {exc}") from exc

    def begin_run(self, run_id: str, folder: str | Path, started_at: str) -> None:
        """Note, before anything is written to ``folder``, that run ``run_id`` is being recorded there."""
        self._write_intent("INSERT INTO run_intents (run_id, folder, started_at) VALUES (?, ?, ?)",
                           [run_id, str(folder), started_at])

    def end_intent(self, run_id: str) -> None:
        """Forget a run being recorded (its folders are gone: it failed, or it was swept)."""
        self._write_intent("DELETE FROM run_intents WHERE run_id = ?", [run_id])

    def intents(self) -> list[dict]:
        """Runs begun (``begin_run``) and neither recorded nor ended: what a crashed retrain left."""
        return list(self.db["run_intents"].rows_where(order_by="started_at"))

    def _write_intent(self, sql: str, args: list) -> None:
        try:
            with self.db.atomic():
                self.db.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot note a run being recorded in {self.path}: {exc}") from exc

    def get_run(self, run_id: str) -> dict:
        """A run with its LFs, metrics and artifacts, JSON fields decoded."""
        return read_run(self.db, run_id, where=self.path)

    def get_documents(self, run_id: str) -> dict:
        """The run's JSON documents by name (empty for runs recorded before documents existed)."""
        read_run(self.db, run_id, where=self.path)  # an unknown run is an error, not an empty dict
        rows = self.db["run_documents"].rows_where("run_id = ?", [run_id])
        return {row["name"]: json.loads(row["body"]) for row in rows}

    def put_document(self, run_id: str, name: str, body) -> None:
        """Add or replace one document of a recorded run (e.g. a later promotion decision)."""
        read_run(self.db, run_id, where=self.path)
        try:
            with self.db.atomic():
                self.db["run_documents"].upsert(
                    {"run_id": run_id, "name": name, "body": json.dumps(body, sort_keys=True, default=str)},
                    pk=("run_id", "name"),
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot store document {name!r} of run {run_id} in {self.path}: {exc}") from exc

    def list_runs(self) -> list[dict]:
        return list(self.db["runs"].rows_where(order_by="created_at"))

    def count_runs(self) -> int:
        return self.db["runs"].count


def read_run(db: sqlite_utils.Database, run_id: str, *, where: object = "the store") -> dict:
    """Read one run and its rows without touching the schema, so a server's
    read-only connection can use it too."""
    try:
        row = db["runs"].get(run_id)
    except sqlite_utils.db.NotFoundError:
        raise StoreError(f"no run {run_id!r} in {where}") from None
    for key in ("config", "split_sizes", "matrix_hashes", "label_model", "end_model"):
        row[key] = json.loads(row[key])
    clause, args = "run_id = ?", [run_id]
    row["lfs"] = list(db["run_lfs"].rows_where(clause, args, order_by="position"))
    row["metrics"] = [{**m, "per_class": json.loads(m["per_class"])} for m in db["run_metrics"].rows_where(clause, args)]
    row["artifacts"] = list(db["run_artifacts"].rows_where(clause, args, order_by="name"))
    return row
def recorded_files(db: sqlite_utils.Database, run_id: str, part: str) -> tuple[Path | None, dict[str, str]]:
    """The folder ``part`` of a run's artifacts as recorded: ``(folder, {file name: sha256})``, names
    relative to the folder; ``(None, {})`` when the run recorded no such folder (no manifest).
    Raises ``StoreError`` when the run is unknown."""
    prefix = f"{part}/"
    files = {a["name"].removeprefix(prefix): a for a in read_run(db, run_id)["artifacts"] if a["name"].startswith(prefix)}
    if "manifest.json" not in files:
        return None, {}
    return Path(files["manifest.json"]["path"]).parent, {name: a["sha256"] for name, a in files.items()}


def recorded_end_model(db: sqlite_utils.Database, run_id: str) -> tuple[Path, dict[str, str]]:
    """A run's saved end model as recorded: ``(folder, {file name: sha256})``.

    Loaders check the files against these checksums (``load_end_model(folder, expected)``),
    not only against the manifest beside them, which whoever rewrites a model can rewrite too.
    Raises ``StoreError`` when the run is unknown or recorded no end model.
    """
    folder, expected = recorded_files(db, run_id, "end_model")
    if folder is None:
        raise StoreError(f"run {run_id!r} has no saved end model")
    return folder, expected


def end_model_path(db: sqlite_utils.Database, run_id: str) -> Path:
    """The folder of a run's saved end model, from its artifact records."""
    return recorded_end_model(db, run_id)[0]


