"""The Label Studio backend's jobs (``ls_jobs``): webhook events and training runs.

Every server worker writes its jobs here and reads any worker's back, so ``GET /ls/jobs/<id>``
answers the same from each; a training job is claimed under the store's writer transaction, so
two workers pressed at once start one retrain and the second press joins it (``presses``).
A job row: ``id``, ``kind`` ("event" | "training"), ``action``, ``status`` (queued, running,
done, failed), ``created_at``/``updated_at`` (Unix seconds), ``progress``, ``outcome`` (a
JSON object), ``error``, ``presses``, ``owner_pid`` (the process doing the work).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .connection import TableFamily

ACTIVE = ("queued", "running")
#: Rows kept: older ones are dropped as new jobs come.
MAX_JOBS_KEPT = 1000
_COLUMNS = ("kind", "action", "status", "progress", "outcome", "error", "presses", "owner_pid")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _row(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {**row, "outcome": json.loads(row["outcome"] or "{}")}


class JobStore(TableFamily):
    """The ``ls_jobs`` table of the store at ``path`` (one connection, shared by a worker's threads)."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL"):
        super().__init__(path, synchronous=synchronous)


    def add(self, job_id: str, kind: str, action: str, *, status: str = "queued") -> dict:
        now = time.time()
        with self.conn.writing("record a Label Studio job") as conn:
            conn.execute("INSERT INTO ls_jobs (id, kind, action, status, created_at, updated_at, owner_pid) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", (job_id, kind, action, status, now, now, os.getpid()))
            self._prune(conn)
        return self.get(job_id)

    def claim_training(self, job_id: str, action: str = "START_TRAINING") -> tuple[dict, bool]:
        """The training job that runs now, joined (``presses`` + 1, ``True``), or a new one
        (``job_id``, queued, owned by this process, ``False``). One writer transaction: of two
        workers pressed at once, one creates the job and the other joins it. A training job
        whose owning process is gone (killed server) is marked failed and no longer joined."""
        now = time.time()
        with self.conn.writing("claim the Label Studio training job") as conn:
            for row in conn.execute("SELECT id, owner_pid FROM ls_jobs WHERE kind = 'training' AND status IN "
                                    "('queued', 'running') ORDER BY created_at DESC").fetchall():
                if _alive(row[1]):
                    conn.execute("UPDATE ls_jobs SET presses = presses + 1, updated_at = ? WHERE id = ?",
                                 (now, row[0]))
                    return self.get(row[0]), True
                conn.execute("UPDATE ls_jobs SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                             (f"the server process {row[1]} running it stopped", now, row[0]))
            conn.execute("INSERT INTO ls_jobs (id, kind, action, status, created_at, updated_at, owner_pid) "
                         "VALUES (?, 'training', ?, 'queued', ?, ?, ?)", (job_id, action, now, now, os.getpid()))
            self._prune(conn)
        return self.get(job_id), False

    def update(self, job_id: str, **fields) -> None:
        """Set some of ``status``, ``progress``, ``outcome`` (a dict), ``error``."""
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        if "outcome" in fields:
            fields["outcome"] = json.dumps(fields["outcome"], sort_keys=True, default=str)
        names = ", ".join(f"{name} = ?" for name in fields)
        with self.conn.writing("update a Label Studio job") as conn:
            conn.execute(f"UPDATE ls_jobs SET {names}, updated_at = ? WHERE id = ?",
                         (*fields.values(), time.time(), job_id))

    def get(self, job_id: str) -> dict | None:
        return _row(self.conn.read_one("SELECT * FROM ls_jobs WHERE id = ?", (job_id,)))

    def recent(self, limit: int = 20) -> list[dict]:
        """The latest ``limit`` jobs, newest first."""
        return [_row(r) for r in self.conn.read("SELECT * FROM ls_jobs ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                                (int(limit),))]

    @staticmethod
    def _prune(conn) -> None:
        conn.execute("DELETE FROM ls_jobs WHERE status NOT IN ('queued', 'running') AND id NOT IN "
                     "(SELECT id FROM ls_jobs ORDER BY created_at DESC, rowid DESC LIMIT ?)", (MAX_JOBS_KEPT,))


__all__ = ["ACTIVE", "MAX_JOBS_KEPT", "JobStore"]
