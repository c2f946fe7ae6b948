"""LF votes on served texts, computed off the request path.

A prediction is answered as soon as the end model has scored it and the log
holds it; the project's LFs (a spaCy parse plus a dozen regexes, ~10 ms a text
here) then run in a separate, lower-priority process that fills in the
prediction's ``lf_votes``. Its own process: spaCy would otherwise hold the
worker's GIL and stretch the latency of the requests behind it.

The queue is bounded: when the explainer falls behind by ``max_queued``
requests, new predictions are logged with ``lf_votes_status = "skipped"``
rather than letting memory grow without limit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Sequence

import pandas as pd

from ..errors import LabelingError


def lf_votes(lfs, texts: Sequence[str], cardinality: int, spacy_model: str | None) -> list[tuple[int, ...] | None]:
    """Each text's LF votes; ``None`` for a text on which an LF fails (the others keep theirs)."""
    from ..lf.apply import apply_lfs

    if not lfs:
        return [() for _ in texts]

    def apply(chunk: Sequence[str]):
        # n_jobs=1: a server process must never fork (its threads, locks and sockets would be copied)
        L = apply_lfs(lfs, pd.DataFrame({"text": list(chunk)}), cardinality=cardinality, spacy_model=spacy_model,
                      n_jobs=1).L
        return [tuple(int(v) for v in row) for row in L]

    try:
        return apply(texts)
    except LabelingError:
        if len(texts) == 1:
            return [None]
    out: list[tuple[int, ...] | None] = []
    for text in texts:  # find the failing texts one by one: a rare path
        try:
            out.extend(apply([text]))
        except LabelingError:
            out.append(None)
    return out


def _run(config_path: str, overrides: tuple[str, ...], store: str, jobs: mp.Queue, parent: int, nice: int) -> None:
    """The explainer process: read (prediction id, text) batches, write their votes."""
    from ..config import load_config
    from .feedback import FeedbackLog
    from ..lf.core import discover_lfs

    if nice:
        os.nice(nice)
    config = load_config(config_path, list(overrides))
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root)) if config.lfs.modules else ()
    lf_votes(lfs, ["warm-up"], config.cardinality, config.lfs.spacy_model)
    with FeedbackLog(store) as log:
        while True:
            try:
                batch = [jobs.get(timeout=0.5)]
            except queue.Empty:
                if os.getppid() != parent:  # the worker died (kill -9): do not linger as an orphan
                    return
                continue
            while len(batch) < 64:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                return
            items = [item for request in batch for item in request]
            votes = lf_votes(lfs, [text for _, text in items], config.cardinality, config.lfs.spacy_model)
            log.set_lf_votes([(pid, v, "done" if v is not None else "error") for (pid, _), v in zip(items, votes)])


class Explainer:
    """Owns the background process of one server worker."""

    def __init__(self, config_path: str, overrides: tuple[str, ...], store: str, *, max_queued: int = 10_000,
                 nice: int = 10):
        ctx = mp.get_context("spawn")  # a fork of a threaded server process is not safe
        self._jobs = ctx.Queue(max_queued)
        self._process = ctx.Process(target=_run, name="lf-explainer", daemon=True,
                                    args=(config_path, overrides, store, self._jobs, os.getpid(), nice))
        self._process.start()
        self.skipped = 0

    def submit(self, items: Sequence[tuple[str, str]]) -> bool:
        """Queue ``(prediction id, text)`` pairs; False when the queue is full (the caller marks them skipped)."""
        try:
            self._jobs.put_nowait(list(items))
            return True
        except queue.Full:
            self.skipped += len(items)
            return False

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
