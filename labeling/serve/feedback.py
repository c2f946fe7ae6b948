"""Predictions served and the feedback on them, in the project's SQLite store.

The serving process writes here; the retrain pipeline reads gold labels back
(``gold_labels``). Tables, beside the run tables of ``store.py``:

- ``predictions``: one row per served prediction: id, time, model version,
  probabilities, the LF votes on the text, the text (or only its sha256).
- ``feedback``: a true label, for a prediction id or for a text, keyed by the
  client's idempotency key so that a retried POST is stored once.
- ``model_aliases``: ``alias -> run_id``; the alias every server worker serves.

Concurrency: each process (each uvicorn worker) opens its own connection; every
request is one ``BEGIN IMMEDIATE`` transaction, so a writer takes the write
lock up front and waits (``busy_timeout``) instead of failing half-way when a
deferred read transaction cannot be upgraded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlite_utils

from ..errors import StoreError
from ..pipeline.store import create_private_file, read_run, recorded_end_model, recorded_files

DEFAULT_ALIAS = "production"


class IdempotencyConflict(StoreError):
    """An idempotency key was reused with a different request body."""


class UnknownPrediction(StoreError):
    """Feedback names a prediction id that was never served."""


@dataclass(frozen=True)
class PredictionRecord:
    id: str
    created_at: str
    model_version: str
    probabilities: tuple[float, ...]
    label: int
    lf_votes: tuple[int, ...] | None  # one vote per LF, -1 = abstain; None until computed, or when LFs failed
    text: str | None  # None when only the hash is kept (privacy setting)
    text_sha256: str
    lf_votes_status: str = "done"  # see LF_VOTE_STATUSES
    lf_votes_error: str | None = None  # why the votes are missing (status "error", "skipped" or "abandoned")


@dataclass(frozen=True)
class FeedbackRecord:
    id: str
    created_at: str
    idempotency_key: str
    request_sha256: str  # of the canonical request body: a reused key with another body is refused
    label: int
    prediction_id: str | None
    text: str | None
    text_sha256: str | None
    model_version: str | None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


# How a prediction's LF votes stand: computed with the request ("done"), queued
# for the background explainer ("pending" -> "done" or "error"), dropped because
# the explainer's queue was full ("skipped"), not wanted ("off"), or left pending
# by a server that stopped and not computable after the restart ("abandoned").
# Every status but "done", "pending" and "off" comes with ``lf_votes_error``: why.
LF_VOTE_STATUSES = ("done", "pending", "error", "skipped", "off", "abandoned")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, model_version TEXT NOT NULL,
    probabilities TEXT NOT NULL, label INTEGER NOT NULL, lf_votes TEXT,
    text TEXT, text_sha256 TEXT NOT NULL, lf_votes_status TEXT NOT NULL DEFAULT 'done', lf_votes_error TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
    request_sha256 TEXT NOT NULL, label INTEGER NOT NULL,
    prediction_id TEXT REFERENCES predictions(id), text TEXT, text_sha256 TEXT, model_version TEXT
);
CREATE INDEX IF NOT EXISTS feedback_prediction ON feedback(prediction_id);
CREATE INDEX IF NOT EXISTS predictions_model_version ON predictions(model_version);
CREATE TABLE IF NOT EXISTS lf_vote_requeues (started_at TEXT PRIMARY KEY, claimed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS model_aliases (alias TEXT PRIMARY KEY, run_id TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


class FeedbackLog:
    """One connection to the store, for one process. Not shared across processes."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000, synchronous: str = "FULL"):
        self.path = Path(path)
        create_private_file(self.path)
        # Several threads of one worker (FastAPI's thread pool) share this
        # connection; the lock serialises them, SQLite serialises the processes.
        self._lock = threading.RLock()
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves.
            self.conn = sqlite3.connect(str(self.path), timeout=busy_timeout_ms / 1000, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self.conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged write survives power loss, not only a killed process.
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            with self.transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
                if "lf_votes_status" not in columns:  # a store written before votes could be deferred
                    conn.execute("ALTER TABLE predictions ADD COLUMN lf_votes_status TEXT NOT NULL DEFAULT 'done'")
                if "lf_votes_error" not in columns:
                    conn.execute("ALTER TABLE predictions ADD COLUMN lf_votes_error TEXT")
                # Partial: only the (few) pending rows are indexed, so a restart finds them without a scan.
                conn.execute("CREATE INDEX IF NOT EXISTS predictions_pending ON predictions(created_at)"
                             " WHERE lf_votes_status = 'pending'")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open feedback store {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the write lock is taken at BEGIN, not at the first write."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def read(self, sql: str, args: Sequence = ()) -> list[dict]:
        with self._lock:
            cur = self.conn.execute(sql, tuple(args))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    # -- predictions --------------------------------------------------------

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        rows = [
            (r.id, r.created_at, r.model_version, json.dumps(list(r.probabilities)), r.label,
             None if r.lf_votes is None else json.dumps(list(r.lf_votes)), r.text, r.text_sha256, r.lf_votes_status,
             r.lf_votes_error)
            for r in records
        ]
        try:
            with self.transaction() as conn:
                conn.executemany("INSERT INTO predictions (id, created_at, model_version, probabilities, label, lf_votes,"
                                 " text, text_sha256, lf_votes_status, lf_votes_error)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot log predictions in {self.path}: {exc}") from exc

    def set_lf_votes(self, updates: Sequence[tuple]) -> None:
        """Fill in deferred votes: ``(prediction id, votes or None, status[, error])`` per prediction."""
        rows = [(None if u[1] is None else json.dumps(list(u[1])), u[2], u[3] if len(u) > 3 else None, u[0])
                for u in updates]
        try:
            with self.transaction() as conn:
                conn.executemany("UPDATE predictions SET lf_votes = ?, lf_votes_status = ?, lf_votes_error = ?"
                                 " WHERE id = ?", rows)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot record LF votes in {self.path}: {exc}") from exc

    def get_prediction(self, prediction_id: str) -> dict | None:
        rows = self.read("SELECT * FROM predictions WHERE id = ?", [prediction_id])
        return rows[0] if rows else None

    def claim_pending_votes(self, started_at: str) -> list[dict] | None:
        """The predictions left ``pending`` by servers that stopped before ``started_at``
        (rows ``{id, text, model_version}``, oldest first), or None when another worker of the same start
        already claimed them: one worker per start re-queues, the others would only repeat it."""
        try:
            with self.transaction() as conn:
                claimed = conn.execute("INSERT OR IGNORE INTO lf_vote_requeues VALUES (?, ?)",
                                       [started_at, utc_now()]).rowcount
                if not claimed:
                    return None
                cur = conn.execute("SELECT id, text, model_version FROM predictions WHERE lf_votes_status = 'pending'"
                                   " AND created_at < ? ORDER BY created_at", [started_at])
                return [{"id": pid, "text": text, "model_version": version} for pid, text, version in cur.fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read pending LF votes in {self.path}: {exc}") from exc

    # -- feedback -----------------------------------------------------------

    def record_feedback(self, record: FeedbackRecord) -> tuple[dict, bool]:
        """Store ``record`` unless its idempotency key is known: ``(stored row, created)``.

        The key lookup and the insert are in one IMMEDIATE transaction, so two
        concurrent retries of one request cannot both insert.
        """
        try:
            with self.transaction() as conn:
                existing = _fetch_one(conn, "SELECT * FROM feedback WHERE idempotency_key = ?", [record.idempotency_key])
                if existing is not None:
                    if existing["request_sha256"] != record.request_sha256:
                        raise IdempotencyConflict(
                            f"Idempotency-Key {record.idempotency_key!r} was used for a different request")
                    return existing, False
                model_version, text_hash = record.model_version, record.text_sha256
                if record.prediction_id is not None:
                    prediction = _fetch_one(conn, "SELECT model_version, text_sha256 FROM predictions WHERE id = ?",
                                            [record.prediction_id])
                    if prediction is None:
                        raise UnknownPrediction(f"no prediction {record.prediction_id!r}")
                    model_version, text_hash = prediction["model_version"], prediction["text_sha256"]
                row = {**record.__dict__, "model_version": model_version, "text_sha256": text_hash}
                conn.execute(
                    "INSERT INTO feedback (id, created_at, idempotency_key, request_sha256, label, prediction_id,"
                    " text, text_sha256, model_version) VALUES (:id, :created_at, :idempotency_key, :request_sha256,"
                    " :label, :prediction_id, :text, :text_sha256, :model_version)",
                    row,
                )
                return row, True
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot record feedback in {self.path}: {exc}") from exc

    def count_feedback(self) -> int:
        return self.read("SELECT count(*) AS n FROM feedback")[0]["n"]

    # -- aliases ------------------------------------------------------------

    def set_alias(self, run_id: str, alias: str = DEFAULT_ALIAS) -> None:
        with self.transaction() as conn:
            upsert_alias(conn, alias, run_id)

    def get_alias(self, alias: str = DEFAULT_ALIAS) -> str | None:
        rows = self.read("SELECT run_id FROM model_aliases WHERE alias = ?", [alias])
        return rows[0]["run_id"] if rows else None

    # -- run lineage (read-only; RunStore writes these tables) --------------

    def run_exists(self, run_id: str) -> bool:
        return bool(self.read("SELECT 1 AS one FROM sqlite_master WHERE name = 'runs'")) and bool(
            self.read("SELECT 1 AS one FROM runs WHERE id = ?", [run_id]))

    def latest_run_id(self) -> str | None:
        if not self.read("SELECT 1 AS one FROM sqlite_master WHERE name = 'runs'"):
            return None
        rows = self.read("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1")
        return rows[0]["id"] if rows else None

    def recorded_end_model(self, run_id: str) -> tuple[Path, dict[str, str]]:
        """``(folder, {file name: sha256})`` of the run's end model, as recorded (``store.recorded_end_model``)."""
        # Under the lock like every statement on this shared connection: a read
        # left running in another thread holds an old snapshot, and the writer's
        # BEGIN IMMEDIATE then fails at once with "database is locked"
        # (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
        with self._lock:
            return recorded_end_model(sqlite_utils.Database(self.conn), run_id)

    def load_lfs(self, run_id: str) -> tuple:
        """The run's own LFs, loaded from its saved copy (``pipeline.run_lfs.load_run_lfs``), the files
        checked against the checksums recorded with the run. Raises ``StoreError`` (unknown run) or
        ``LFLoadError`` (none saved, a file fails its checksum, they do not import)."""
        from ..pipeline.run_lfs import FOLDER, load_run_lfs

        with self._lock:
            db = sqlite_utils.Database(self.conn)
            folder, expected = recorded_files(db, run_id, FOLDER)
            names = [lf["name"] for lf in read_run(db, run_id)["lfs"] if lf["version"] != "precomputed"]
        return load_run_lfs(run_id, folder, expected, names) if names else ()

    def recorded_run(self, run_id: str) -> dict:
        """The run as recorded (``store.read_run``), read on this connection under its lock,
        without the schema writes a ``RunStore`` makes (which a busy server's writers lock out)."""
        with self._lock:
            return read_run(sqlite_utils.Database(self.conn), run_id)

    def end_model_path(self, run_id: str) -> Path:
        return self.recorded_end_model(run_id)[0]

    def load_end_model(self, run_id: str):
        """The run's end model, its files checked against the checksums recorded with the run.

        Raises ``StoreError`` (unknown run) or ``ArtifactError`` (any load failure, file named).
        """
        from ..models.artifacts import load_end_model

        folder, expected = self.recorded_end_model(run_id)  # the lock is released before the slow load
        return load_end_model(folder, expected)

    def run_lineage(self, run_id: str) -> dict:
        """What ``GET /models`` reports about a run: its lineage, not its whole
        record (no config, and no artifact paths of this machine)."""
        with self._lock:
            run = read_run(sqlite_utils.Database(self.conn), run_id, where=self.path)
        run.pop("config")
        run["lfs"] = [{"name": lf["name"], "version": lf["version"]} for lf in run["lfs"]]
        run["metrics"] = [{k: m[k] for k in ("name", "accuracy", "macro_f1")} for m in run["metrics"]]
        run["artifacts"] = [{"name": a["name"], "sha256": a["sha256"]} for a in run["artifacts"]]
        return run


class GroupCommitWriter:
    """Writes predictions from many concurrent requests, one transaction per batch.

    Each commit costs an fsync (``synchronous=FULL``); under load, one thread
    commits everything that arrived while the previous commit was on disk, so
    throughput grows with load instead of queueing behind one fsync per request.
    A request is answered only after its batch committed (``done`` is called with
    ``None``) so an acknowledged prediction id is always in the log.
    """

    def __init__(self, log: FeedbackLog, *, max_rows: int = 10_000):
        self.log, self.max_rows = log, max_rows
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[PredictionRecord], done: Callable[[BaseException | None], None]) -> None:
        self._queue.put((records, done))

    def submit_votes(self, updates: Sequence[tuple[str, tuple[int, ...] | None, str]]) -> None:
        """Queue an LF-vote update (no one waits for it)."""
        self._queue.put((updates, None))

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            rows = len(items[0][0]) if items[0] is not None else 0
            while rows < self.max_rows:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                rows += len(items[-1][0]) if items[-1] is not None else 0
            stop = None in items
            items = [item for item in items if item is not None]
            waiting = [item for item in items if item[1] is not None]
            error: BaseException | None = None
            try:
                if waiting:
                    self.log.log_predictions([r for records, _ in waiting for r in records])
            except Exception as exc:  # every waiting request learns its write failed
                error = exc
            for _, done in waiting:
                done(error)
            votes = [u for updates, done in items if done is None for u in updates]
            if votes:
                try:
                    self.log.set_lf_votes(votes)
                except StoreError:
                    pass  # the rows keep status "pending": an explanation lost, never a prediction


def upsert_alias(conn: sqlite3.Connection, alias: str, run_id: str) -> None:
    """Point ``alias`` at ``run_id`` inside the caller's transaction."""
    conn.execute("INSERT INTO model_aliases VALUES (?, ?, ?) ON CONFLICT(alias) DO UPDATE SET"
                 " run_id = excluded.run_id, updated_at = excluded.updated_at", [alias, run_id, utc_now()])


def _fetch_one(conn: sqlite3.Connection, sql: str, args: Sequence) -> dict | None:
    cur = conn.execute(sql, tuple(args))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def gold_labels(path: str | Path, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Feedback as gold labels ``(id, text, label)`` for the retrain pipeline.

    The text is the feedback's own or its prediction's; rows whose text was kept
    only as a hash are left out (a label without its text cannot train). When a
    text got several labels the latest wins. ``label`` is the class index, or
    the class name when ``classes`` is given (the file loader reads either).
    """
    with FeedbackLog(path) as log:
        rows = log.read(
            "SELECT f.id AS id, COALESCE(f.text, p.text) AS text, f.label AS label, f.created_at AS created_at"
            " FROM feedback f LEFT JOIN predictions p ON p.id = f.prediction_id"
            " WHERE COALESCE(f.text, p.text) IS NOT NULL ORDER BY f.created_at, f.rowid"
        )
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "created_at"])
    frame = frame.drop_duplicates("text", keep="last").drop(columns="created_at").reset_index(drop=True)
    if classes is not None:
        frame["label"] = [classes[i] for i in frame["label"]]
    return frame
