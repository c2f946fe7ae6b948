"""LF votes on served texts, computed off the request path.

A prediction is answered as soon as the end model has scored it and the log
holds it; the project's LFs (a spaCy parse plus a dozen regexes, ~10 ms a text
here) then run in a separate, lower-priority process that fills in the
prediction's ``lf_votes``. Its own process: spaCy would otherwise hold the
worker's GIL and stretch the latency of the requests behind it.

The queue is bounded: when the explainer falls behind by ``max_queued``
requests, new predictions are logged with ``lf_votes_status = "skipped"``
rather than letting memory grow without limit.

The process is bounded too: spaCy keeps every new word it meets in its
vocabulary (~15 KB a new word, never freed), so after ``max_texts`` texts the
process exits and a fresh one takes over the same queue.

Votes are computed by the LFs of the run that made the prediction, loaded from the
copy saved with that run (``FeedbackLog.load_lfs``), never from the working tree: a
request names its run, and the process keeps the last few runs' LFs loaded.

When the LFs cannot run at all (the spaCy pipeline is not installed, say), the
process says so once (``Explainer.error``, logged with the cause) and marks what
it is given ``error`` with that cause; the server reports itself degraded.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Sequence

import pandas as pd

from ..errors import ConfigError, LabelingError, LFVotesUnavailable, StoreError
from ..pipeline.run_lfs import LFLoadError
from ..pipeline.store import load_recorded_lfs

logger = logging.getLogger(__name__)


_SPECS: dict[int, tuple] = {}  # id of an LF sequence -> (that sequence, its lf_specs): the last few served


def _compiled(lfs) -> dict:
    """``lf_specs(lfs)``, compiled once per LF sequence (a served run's LFs do not change)."""
    from ..lf.apply import lf_specs

    kept = _SPECS.get(id(lfs))
    if kept is None or kept[0] is not lfs:  # the sequence is held, so its id is not reused while kept
        kept = _SPECS[id(lfs)] = (lfs, lf_specs(lfs))
        while len(_SPECS) > _RunLFs.KEEP + 1:
            del _SPECS[next(iter(_SPECS))]
    return kept[1]


def served_lfs(lfs, task: str):
    """A run's loaded LFs as the applier takes them for ``task``: a multi-label run's return
    label sets, encoded as one int each (``multilabel.votes.multilabel_lfs``). Wrapped once per
    loaded run, so their compiled specs are reused."""
    from ..multilabel.votes import multilabel_lfs

    return tuple(multilabel_lfs(lfs)) if task == "multi_label" and lfs else lfs


def vote_cardinality(config) -> int:
    """The cardinality the served votes are checked against: the classes, or for a multi-label
    project every set code (``multilabel.votes.apply_cardinality``)."""
    from ..multilabel.votes import apply_cardinality

    return apply_cardinality() if config.task == "multi_label" else config.cardinality


def lf_votes(lfs, texts: Sequence[str], cardinality: int,
             spacy_model: str | None) -> tuple[list[tuple[int, ...] | None], list[str | None]]:
    """Each text's LF votes, and for a text on which an LF fails ``None`` and the error
    (the other texts keep theirs): two lists of ``len(texts)``.

    Raises ``LFVotesUnavailable`` when the LFs cannot run on any text (a setting or
    the environment, not a text, is at fault: e.g. the spaCy pipeline is missing).
    """
    from ..lf.apply import apply_lfs

    if not lfs:
        return [() for _ in texts], [None] * len(texts)
    specs = _compiled(lfs)

    def apply(chunk: Sequence[str]):
        # n_jobs=1: a server process must never fork (its threads, locks and sockets would be copied);
        # the LFs' specs compiled once per LF set, and no state check (nothing is cached): ~8 of a
        # single text's ~20 ms of CPU on the example (benchmarks/lf_votes_cost.py)
        L = apply_lfs(lfs, pd.DataFrame({"text": list(chunk)}), cardinality=cardinality, spacy_model=spacy_model,
                      n_jobs=1, specs=specs, check_state=False).L
        return [tuple(int(v) for v in row) for row in L]

    try:
        return apply(texts), [None] * len(texts)
    except ConfigError as exc:
        raise LFVotesUnavailable(f"LF votes cannot be computed: {exc}") from exc
    except LabelingError as exc:
        if len(texts) == 1:
            logger.warning("LF votes failed on a served text: %s", exc)
            return [None], [str(exc)]
    votes: list[tuple[int, ...] | None] = []
    errors: list[str | None] = []
    for text in texts:  # find the failing texts one by one: a rare path
        try:
            votes.extend(apply([text]))
            errors.append(None)
        except LabelingError as exc:
            logger.warning("LF votes failed on a served text: %s", exc)
            votes.append(None)
            errors.append(str(exc))
    return votes, errors


class _RunLFs:
    """The LFs of the last few runs seen, loaded from their saved copies; for a run whose LFs
    cannot be loaded, why (a string): its predictions get that error, never other LFs' votes."""

    KEEP = 4

    def __init__(self, log, task: str = "single_label"):
        self.log, self.loaded, self.task = log, {}, task

    def get(self, run_id: str):
        if run_id not in self.loaded:
            try:
                self.loaded[run_id] = served_lfs(load_recorded_lfs(self.log, run_id), self.task)
            except (LFLoadError, StoreError) as exc:
                logger.error("LF votes of run %s cannot be computed: %s", run_id, exc)
                self.loaded[run_id] = str(exc)
            while len(self.loaded) > self.KEEP:
                del self.loaded[next(iter(self.loaded))]
        return self.loaded[run_id]


def _by_run(batch) -> list[tuple[str, list]]:
    """The requests of a batch, merged per run (in order of arrival)."""
    runs: dict[str, list] = {}
    for request in batch:
        if request is not None and request[1]:
            runs.setdefault(request[0], []).extend(request[1])
    return list(runs.items())


def _vote_updates(items, votes, errors) -> list[tuple]:
    return [(pid, v, "done" if v is not None else "error", e) for (pid, _), v, e in zip(items, votes, errors)]


def _run(config_path: str, overrides: tuple[str, ...], store: str, run_id: str, jobs: mp.Queue, events: mp.Queue,
         parent: int, nice: int, max_texts: int) -> None:
    """The explainer process: read (run id, [(prediction id, text)]) requests, write their votes."""
    from ..config import load_config
    from .feedback import FeedbackLog
    from .lifeline import die_with_parent

    # Before anything slow: a worker killed while this process loads spaCy, or is blocked on a
    # half-written queue message (it holds that pipe's write end too: no EOF), must not leave it behind.
    die_with_parent()
    if nice:
        os.nice(nice)
    unavailable = ""
    with FeedbackLog(store) as log:
        run_lfs = _RunLFs(log)
        try:
            config = load_config(config_path, list(overrides))
            run_lfs.task = config.task
            lfs = run_lfs.get(run_id)
            if not isinstance(lfs, str):
                lf_votes(lfs, ["warm-up"], vote_cardinality(config), config.lfs.spacy_model)
        except LabelingError as exc:
            unavailable = str(exc) if isinstance(exc, LFVotesUnavailable) else f"LF votes cannot be computed: {exc}"
            logger.error("%s", unavailable)
        events.put(("unavailable", unavailable) if unavailable else ("ready", ""))
        done = 0
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
            stop = None in batch
            for version, items in _by_run(batch):
                lfs = run_lfs.get(version)  # the LFs of the run that made these predictions, or why not
                if not unavailable and not isinstance(lfs, str):
                    try:
                        votes, errors = lf_votes(lfs, [text for _, text in items], vote_cardinality(config),
                                                 config.lfs.spacy_model)
                    except LFVotesUnavailable as exc:
                        unavailable = str(exc)
                        logger.error("%s", unavailable)
                        events.put(("unavailable", unavailable))
                if unavailable or isinstance(lfs, str):
                    votes, errors = [None] * len(items), [unavailable or lfs] * len(items)
                log.set_lf_votes(_vote_updates(items, votes, errors))
                done += len(items)
            if stop:
                return
            if max_texts and done >= max_texts and not unavailable:
                events.put(("recycle", str(done)))
                return


class Explainer:
    """Owns the background process of one server worker (and its successors).

    ``error`` is "" while the LFs run, else why they cannot; ``poll()`` (called by
    the worker now and then, and by ``submit``) reads what the process reported and
    starts a successor when it exited: after ``max_texts`` texts, or a crash.
    """

    def __init__(self, config_path: str, overrides: tuple[str, ...], store: str, *, max_queued: int = 10_000,
                 nice: int = 10, max_texts: int = 5_000, run_id: str = ""):
        self._ctx = mp.get_context("spawn")  # a fork of a threaded server process is not safe
        self._jobs = self._ctx.Queue(max_queued)
        self._events = self._ctx.Queue()
        # run_id: the run whose LFs the process loads and warms up as it starts (the one served)
        self._args = (config_path, overrides, store, run_id, self._jobs, self._events, os.getpid(), nice, max_texts)
        self.skipped = 0
        self.restarts = 0
        self.error = ""
        self.ready = False  # the process reported whether the LFs run
        self._last_start = 0.0
        self._lock = threading.Lock()  # the worker's request path and its follower thread both poll
        self._start()

    def _start(self) -> None:
        self._process = self._ctx.Process(target=_run, name="lf-explainer", daemon=True, args=self._args)
        self._process.start()
        self._last_start = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def poll(self) -> None:
        with self._lock:
            self._poll()

    def _poll(self) -> None:
        while True:
            try:
                kind, detail = self._events.get_nowait()
            except queue.Empty:
                break
            if kind in ("ready", "unavailable"):
                self.ready, self.error = True, detail
        if self._process.is_alive():
            return
        code = self._process.exitcode  # 0: it stopped after max_texts, to hand over to a fresh one
        if code != 0:
            error = f"the LF-votes process exited with code {code}; restarting it"
            if error != self.error:
                logger.error("%s", error)
            self.error = error
            if time.monotonic() - self._last_start < 5.0:  # crashing as it starts: do not spin
                return
        self._process.join()
        self.restarts += 1
        self._start()

    def submit(self, items: Sequence[tuple[str, str]], *, run_id: str) -> bool:
        """Queue ``(prediction id, text)`` pairs of predictions made by run ``run_id`` (whose LFs
        vote on them); False when the queue is full (the caller marks them skipped)."""
        self.poll()
        try:
            self._jobs.put_nowait((run_id, list(items)))
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
