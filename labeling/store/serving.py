"""Predictions served and the feedback on them; model aliases.

The serving process writes here; the retrain pipeline reads gold labels back
(``gold_labels``). Tables:

- ``predictions``: one row per served prediction: id, time, model version,
  probabilities, the LF votes on the text, the text (or only its sha256).
- ``feedback``: a true label, for a prediction id or for a text, keyed by the
  client's idempotency key so that a retried POST is stored once.
- ``model_aliases``: ``alias -> run_id``; the alias every server worker serves.
- ``lf_vote_requeues``: which server start re-queued the votes left pending.

Concurrency: each process (each uvicorn worker) opens its own connection; every
request is one ``BEGIN IMMEDIATE`` transaction (``Connection.transaction``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError
from .connection import TableFamily, utc_now
from .label_schema import current_schema, stamp_for_project, stamp_for_run
from .runs import latest_run_id, read_run, recorded_end_model, recorded_files, run_exists

DEFAULT_ALIAS = "production"

# How a prediction's LF votes stand: computed with the request ("done"), queued
# for the background explainer ("pending" -> "done" or "error"), dropped because
# the explainer's queue was full ("skipped"), not wanted ("off"), or left pending
# by a server that stopped and not computable after the restart ("abandoned").
# Every status but "done", "pending" and "off" comes with ``lf_votes_error``: why.
LF_VOTE_STATUSES = ("done", "pending", "error", "skipped", "off", "abandoned")


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
    # a multi-label run's predicted set (sorted class indices; ``label`` is then -1); None: single-label
    labels: tuple[int, ...] | None = None
    spans: tuple | None = None  # a spans run's answer: ((start, end, label, score), ...); label is then -1
    # the label schema its class indices mean when not its run's (a run of an older schema mapped
    # to the current classes by the server); None: the run's own
    schema_version: str | None = None


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
    labels: tuple[int, ...] | None = None  # a multi-label project's set (sorted class indices; ``label`` -1)
    spans: tuple | None = None  # span feedback: ((start, end, label), ...) character offsets; label is then -1
    other_label: str | None = None  # feedback naming a class outside the schema ("other: <name>"; label -1)


def labels_json(labels: Sequence[int] | None) -> str | None:
    """A label set as the ``labels`` column holds it (None for a single-label row)."""
    return None if labels is None else json.dumps(sorted(int(c) for c in labels))


def _spans_json(spans) -> str | None:
    return None if spans is None else json.dumps([list(s) for s in spans])


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FeedbackLog(TableFamily):
    """One connection to the store, for one process. Not shared across processes."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000, synchronous: str = "FULL"):
        super().__init__(path, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
        self._run_schemas: dict[str, str | None] = {}

    @property
    def store(self):
        """The store ``Connection`` (the name the serving code has always used)."""
        return self.conn

    def transaction(self):
        """One write transaction (``Connection.transaction``)."""
        return self.store.transaction()

    def read(self, sql: str, args: Sequence = ()) -> list[dict]:
        return self.store.read(sql, args)

    # -- predictions --------------------------------------------------------

    def log_predictions(self, records: Sequence[PredictionRecord]) -> None:
        rows = [
            (r.id, r.created_at, r.model_version, json.dumps(list(r.probabilities)), r.label,
             None if r.lf_votes is None else json.dumps(list(r.lf_votes)), r.text, r.text_sha256, r.lf_votes_status,
             r.lf_votes_error, labels_json(r.labels), _spans_json(r.spans))
            for r in records
        ]
        # not serial: plain inserts of new ids exclude no other writer (PostgreSQL takes no write lock)
        with self.store.writing("log predictions", serial=False) as conn:
            # a prediction's class indices mean its run's schema (cached: a run's never changes)
            for version in {r.model_version for r in records} - set(self._run_schemas):
                self._run_schemas[version] = stamp_for_run(conn, version)
            rows = [row + (r.schema_version or self._run_schemas[r.model_version],) for row, r in zip(rows, records)]
            conn.executemany("INSERT INTO predictions (id, created_at, model_version, probabilities, label, lf_votes,"
                             " text, text_sha256, lf_votes_status, lf_votes_error, labels, spans, schema_version)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def set_lf_votes(self, updates: Sequence[tuple]) -> None:
        """Fill in deferred votes: ``(prediction id, votes or None, status[, error])`` per prediction."""
        rows = [(None if u[1] is None else json.dumps(list(u[1])), u[2], u[3] if len(u) > 3 else None, u[0])
                for u in updates]
        with self.store.writing("record LF votes", serial=False) as conn:
            conn.executemany("UPDATE predictions SET lf_votes = ?, lf_votes_status = ?, lf_votes_error = ?"
                             " WHERE id = ?", rows)

    def get_prediction(self, prediction_id: str) -> dict | None:
        return self.store.read_one("SELECT * FROM predictions WHERE id = ?", [prediction_id])

    def claim_pending_votes(self, started_at: str) -> list[dict] | None:
        """The predictions left ``pending`` by servers that stopped before ``started_at``
        (rows ``{id, text, model_version}``, oldest first), or None when another worker of the same
        start already claimed them: one worker per start re-queues, the others would only repeat it."""
        with self.store.writing("read pending LF votes") as conn:
            claimed = conn.execute("INSERT OR IGNORE INTO lf_vote_requeues VALUES (?, ?)",
                                   [started_at, utc_now()]).rowcount
            if not claimed:
                return None
            # rows another host's worker is claiming right now are skipped, not waited for (PostgreSQL)
            cur = conn.execute("SELECT id, text, model_version FROM predictions WHERE lf_votes_status = 'pending'"
                               " AND created_at < ? ORDER BY created_at" + self.store.claim_rows, [started_at])
            return [{"id": pid, "text": text, "model_version": version} for pid, text, version in cur.fetchall()]

    def latest_predictions(self, run_id: str, window: int) -> list[dict]:
        """The latest ``window`` predictions made with ``run_id`` (probabilities, label, lf_votes, text, spans,
        labels: a multi-label run's set).

        Latest by rowid (the order the server committed them), not by ``created_at``:
        the index on ``model_version`` holds rowids in order, so SQLite reads only the
        window instead of sorting every prediction of the run.
        """
        return self.store.read("SELECT probabilities, label, lf_votes, text, spans, labels FROM predictions"
                               " WHERE model_version = ?"
                               " ORDER BY rowid DESC LIMIT ?", [run_id, int(window)])

    def predictions_with_feedback(self) -> list[dict]:
        """Served predictions whose text was kept, oldest first, each with its latest feedback label
        (``feedback_label``, None without feedback)."""
        return self.store.read(
            "SELECT p.id, p.text, p.probabilities, p.lf_votes, p.label, p.model_version,"
            " (SELECT f.label FROM feedback f WHERE f.prediction_id = p.id AND f.label >= 0"
            "  ORDER BY f.created_at DESC, f.rowid DESC"
            "  LIMIT 1) AS feedback_label FROM predictions p WHERE p.text IS NOT NULL ORDER BY p.created_at, p.id")

    # -- feedback -----------------------------------------------------------

    def record_feedback(self, record: FeedbackRecord) -> tuple[dict, bool]:
        """Store ``record`` unless its idempotency key is known: ``(stored row, created)``.

        The key lookup and the insert are in one IMMEDIATE transaction, so two
        concurrent retries of one request cannot both insert.
        """
        with self.store.writing("record feedback") as conn:
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
            # the label index means the served run's schema (the project's when no run is named)
            schema = stamp_for_run(conn, model_version) or stamp_for_project(conn, None)
            row = {**record.__dict__, "model_version": model_version, "text_sha256": text_hash,
                   "schema_version": schema, "labels": labels_json(record.labels),
                   "spans": _spans_json(record.spans)}
            conn.execute(
                "INSERT INTO feedback (id, created_at, idempotency_key, request_sha256, label, prediction_id,"
                " text, text_sha256, model_version, schema_version, labels, spans, other_label) VALUES (:id, :created_at,"
                " :idempotency_key, :request_sha256, :label, :prediction_id, :text, :text_sha256, :model_version,"
                " :schema_version, :labels, :spans, :other_label)",
                row,
            )
            return row, True

    def count_feedback(self) -> int:
        return self.store.read("SELECT count(*) AS n FROM feedback")[0]["n"]

    def gold_rows(self) -> list[dict]:
        """Feedback with its text (its own or its prediction's), oldest first; hash-only texts left out."""
        return self.store.read(
            "SELECT f.id AS id, COALESCE(f.text, p.text) AS text, f.label AS label, f.labels AS labels,"
            " f.created_at AS created_at"
            " FROM feedback f LEFT JOIN predictions p ON p.id = f.prediction_id"
            " WHERE COALESCE(f.text, p.text) IS NOT NULL AND f.spans IS NULL AND (f.label >= 0 OR f.labels IS NOT NULL)"
            " ORDER BY f.created_at, f.rowid")

    def other_labels(self) -> dict[str, int]:
        """How often feedback named each class outside the schema (``other: <name>``), most first."""
        rows = self.store.read("SELECT other_label, count(*) AS n FROM feedback WHERE other_label IS NOT NULL"
                               " GROUP BY other_label ORDER BY n DESC, other_label")
        return {r["other_label"]: int(r["n"]) for r in rows}

    def run_schema_version(self, run_id: str) -> str | None:
        """The label schema version ``run_id`` was trained under (None: unknown run or before versions)."""
        if run_id not in self._run_schemas:
            row = self.store.read_one("SELECT schema_version FROM runs WHERE id = ?", [run_id])
            if row is None or row["schema_version"] is None:
                return None  # not cached: a run recorded later, or stamped when the schema is registered
            self._run_schemas[run_id] = row["schema_version"]
        return self._run_schemas[run_id]

    def label_schema(self, project: str) -> dict | None:
        """The project's current label schema (``label_schema.current_schema``), or None."""
        return current_schema(self.store, project)

    # -- aliases ------------------------------------------------------------

    def set_alias(self, run_id: str, alias: str = DEFAULT_ALIAS) -> None:
        with self.store.writing(f"set alias {alias!r}") as conn:
            upsert_alias(conn, alias, run_id)

    def get_alias(self, alias: str = DEFAULT_ALIAS) -> str | None:
        row = self.store.read_one("SELECT run_id FROM model_aliases WHERE alias = ?", [alias])
        return row["run_id"] if row else None

    # -- run lineage (read-only; RunStore writes these tables) --------------

    def run_exists(self, run_id: str) -> bool:
        return run_exists(self.store, run_id)

    def run_ids(self) -> list[str]:
        """Every recorded run id, oldest first."""
        return [r["id"] for r in self.store.read("SELECT id FROM runs ORDER BY created_at, id")]

    def latest_run_id(self) -> str | None:
        return latest_run_id(self.store)

    def recorded_end_model(self, run_id: str) -> tuple[Path, dict[str, str]]:
        """``(folder, {file name: sha256})`` of the run's end model, as recorded (``runs.recorded_end_model``)."""
        # Under the lock like every statement on this shared connection: a read
        # left running in another thread holds an old snapshot, and the writer's
        # BEGIN IMMEDIATE then fails at once with "database is locked"
        # (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
        with self.store.lock:
            return recorded_end_model(self.store, run_id)

    def recorded_files(self, run_id: str, part: str) -> tuple[Path | None, dict[str, str]]:
        """``runs.recorded_files`` on this connection, under its lock."""
        with self.store.lock:
            return recorded_files(self.store, run_id, part)

    def recorded_run(self, run_id: str) -> dict:
        """The run as recorded (``runs.read_run``), read on this connection under its lock."""
        with self.store.lock:
            return read_run(self.store, run_id, where=self.store.where)

    def end_model_path(self, run_id: str) -> Path:
        return self.recorded_end_model(run_id)[0]

    def run_lineage(self, run_id: str) -> dict:
        """What ``GET /models`` reports about a run: its lineage, not its whole
        record (no config, and no artifact paths of this machine)."""
        run = self.recorded_run(run_id)
        run.pop("config")
        run["lfs"] = [{"name": lf["name"], "version": lf["version"]} for lf in run["lfs"]]
        run["metrics"] = [{k: m[k] for k in ("name", "accuracy", "macro_f1")} for m in run["metrics"]]
        run["artifacts"] = [{"name": a["name"], "sha256": a["sha256"]} for a in run["artifacts"]]
        return run


def upsert_alias(conn: sqlite3.Connection, alias: str, run_id: str) -> None:
    """Point ``alias`` at ``run_id`` inside the caller's transaction."""
    conn.execute("INSERT INTO model_aliases VALUES (?, ?, ?) ON CONFLICT(alias) DO UPDATE SET"
                 " run_id = excluded.run_id, updated_at = excluded.updated_at", [alias, run_id, utc_now()])


def _fetch_one(conn: sqlite3.Connection, sql: str, args: Sequence) -> dict | None:
    cur = conn.execute(sql, tuple(args))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def gold_labels(path: str | Path, classes: Sequence[str] | None = None):
    """Feedback as gold labels ``(id, text, label)`` (a pandas frame) for the retrain pipeline.

    The text is the feedback's own or its prediction's; rows whose text was kept
    only as a hash are left out (a label without its text cannot train). When a
    text got several labels the latest wins. ``label`` is the class index, or
    the class name when ``classes`` is given (the file loader reads either); a
    multi-label project's feedback is a list of them (a set; ``[]`` for no class).
    """
    import pandas as pd

    with FeedbackLog(path) as log:
        rows = log.gold_rows()
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "labels", "created_at"])
    frame = frame.drop_duplicates("text", keep="last").drop(columns="created_at").reset_index(drop=True)
    name = (lambda i: classes[i]) if classes is not None else (lambda i: i)
    frame["label"] = [name(label) if labels is None else [name(c) for c in json.loads(labels)]
                      for label, labels in zip(frame["label"], frame["labels"])]
    return frame.drop(columns="labels")
