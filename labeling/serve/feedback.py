"""Predictions served and the feedback on them: the server's side of the store.

The tables and their SQL live in ``labeling.store.serving`` (``FeedbackLog``); this module
adds the server's group commit of the prediction log (``GroupCommitWriter``) and keeps the
names the server and its users import from here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from ..errors import StoreError
from ..store.connection import utc_now
from ..store.serving import (
    DEFAULT_ALIAS,
    LF_VOTE_STATUSES,
    FeedbackLog,
    FeedbackRecord,
    IdempotencyConflict,
    PredictionRecord,
    UnknownPrediction,
    gold_labels,
    text_sha256,
    upsert_alias,
)

__all__ = [
    "DEFAULT_ALIAS",
    "LF_VOTE_STATUSES",
    "FeedbackLog",
    "FeedbackRecord",
    "GroupCommitWriter",
    "IdempotencyConflict",
    "PredictionRecord",
    "UnknownPrediction",
    "gold_labels",
    "text_sha256",
    "upsert_alias",
    "utc_now",
]


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
