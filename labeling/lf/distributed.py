"""Row-wise LFs on a Dask cluster: ``apply_lfs(..., scheduler="tcp://host:8786")``.

Snorkel's ``DaskLFApplier`` goes through ``dask.dataframe.map_partitions``, whose
meta inference calls every LF on a dummy row (that breaks on pandas 3 and on any
LF that reads real values). Here each chunk of rows is one plain task: the task
gets the LFs, the chunk's records and which cells to compute, and returns the
votes, the failures (counted per LF, with sample rows) and per-LF time, the same
``ChunkOutcome`` the local worker processes return. The applier merges chunks by
position, so the label matrix cannot depend on which worker ran what: if a worker
dies mid-run, the scheduler reruns its tasks elsewhere and the result is the same.

Workers must be able to import the LF modules (as for any Dask task), and have
the spaCy pipeline installed when spaCy LFs run; parses are made on the workers.
Everything else travels with each task: the pipeline name is resolved on the
client (``LABELING_SPACY_MODEL`` there, or the project's setting), so a worker
started without that variable parses with the same pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .core import LabelingFunction, resolve_spacy_model
from .rows import frame_rows
from .workers import chunk_bounds

__all__ = ["run_on_dask"]


def _nlp_settings(lf) -> tuple | None:
    """A Snorkel nlp LF's spaCy settings, which Snorkel keeps on the LF's class, not on the LF."""
    config = getattr(type(lf), "_nlp_config", None)
    return tuple(config.parameters) if config is not None else None


def run_on_dask(
    scheduler,
    task: Callable,
    lfs: Sequence[LabelingFunction],
    frame: pd.DataFrame,
    need: np.ndarray,
    cardinality: int,
    *,
    fault_tolerant: bool,
    spacy_model: str | None = None,
    spacy_disable: Sequence[str] = (),
    chunk_rows: int | None = None,
) -> list:
    """``[(first row, task's result), ...]`` for ``frame``'s rows in chunks, computed on the cluster.

    ``task(lfs, rows, need, cardinality, fault_tolerant, spacy_model, spacy_disable, nlp_settings)``
    runs on a worker (the applier passes ``apply.label_chunk``); it must be importable there.
    """
    from distributed import Client

    # Resolved here, on the client: a worker's environment is not the client's, and
    # the cached votes are keyed by the pipeline the client resolved.
    spacy_model = resolve_spacy_model(spacy_model)
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        rows = frame_rows(frame)  # the rows Snorkel's applier would pass, built once here
        bounds = chunk_bounds(len(rows), chunk_rows)
        futures = [
            client.submit(task, list(lfs), rows[a:b], need[a:b], cardinality, fault_tolerant,
                          spacy_model, tuple(spacy_disable), [_nlp_settings(lf) for lf in lfs], pure=False)
            for a, b in bounds
        ]
        outcomes = client.gather(futures)
    finally:
        if client is not scheduler:
            client.close()
    return [(a, out) for (a, _), out in zip(bounds, outcomes)]
