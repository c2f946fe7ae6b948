"""Work over chunks in forked processes that inherit their inputs.

The LF applier and the spaCy parser both split work into numbered tasks over
data the parent already holds (LFs, rows, compiled patterns, a loaded pipeline).
Forked workers inherit that state, so only task numbers and results cross a
process boundary: nothing is pickled on the way in.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

from .patterns import scan_lock
from ..progress import progress

__all__ = ["CHUNK_ROWS", "chunk_bounds", "fork_map"]

#: rows (or distinct texts) per task for worker processes and Dask
CHUNK_ROWS = 2000


def chunk_bounds(n: int, size: int | None = None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks of ``size`` (default ``CHUNK_ROWS``)."""
    size = max(1, int(size or CHUNK_ROWS))  # read at call time: a setting, not a frozen default
    return [(a, min(a + size, n)) for a in range(0, n, size)]

_FORK_STATE: dict = {}
_FORK_LOCK = threading.Lock()


def fork_map(fn: Callable[[dict, int], object], state: dict, n_tasks: int, n_jobs: int, show: bool = False,
             desc: str = "LF chunks", fresh: bool = False) -> list:
    """``[fn(state, t) for t in range(n_tasks)]``, in forked processes when ``n_jobs > 1``.

    ``fresh``: each task in its own fork, so that no task sees what an earlier one
    left in a worker's memory (results cannot depend on scheduling).
    """
    if n_jobs <= 1 or n_tasks <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(state, t) for t in progress(range(n_tasks), total=n_tasks, desc=desc, enabled=show)]
    with _FORK_LOCK:  # workers read the module-level state: one forked map at a time
        _FORK_STATE.update(state, fn=fn)
        try:
            with scan_lock():  # no pattern scan in flight while forking
                pool = multiprocessing.get_context("fork").Pool(min(n_jobs, n_tasks),
                                                                maxtasksperchild=1 if fresh else None)
            with pool:
                return pool.map(_in_fork, range(n_tasks), chunksize=1)
        finally:
            _FORK_STATE.clear()


def _in_fork(task: int):
    return _FORK_STATE["fn"](_FORK_STATE, task)
