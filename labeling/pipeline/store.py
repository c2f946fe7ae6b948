"""Runs and their lineage in the project's store: the pipeline's names for ``labeling.store.runs``.

The tables, their schema and the SQL live in ``labeling.store`` (``runs`` for these); this
module keeps the names the pipeline and its users import from here.
"""

from __future__ import annotations

from ..store.connection import create_private_file, store_exists, write_private_text, writer_lock
from ..store.runs import RunRecord, RunStore, end_model_path, read_run, recorded_end_model, recorded_files
from ..store.schema import SCHEMA_VERSION



def load_recorded_end_model(store, run_id: str):
    """The end model of ``run_id``, its files checked against the checksums recorded with the run.

    ``store``: anything with ``recorded_end_model(run_id)`` (a ``RunStore`` or a ``FeedbackLog``,
    whose lock is released before the slow load). Raises ``StoreError`` (unknown run) or
    ``ArtifactError`` (any load failure, file named).
    """
    from ..models.artifacts import load_end_model, read_manifest
    from ..spans.end_model import KIND as SPACY_NER, SpacyNER

    folder, expected = store.recorded_end_model(run_id)
    kind = read_manifest(folder, expected)["kind"]
    if kind == SPACY_NER:  # a spans run: spans, not class probabilities
        return SpacyNER.load(folder, expected)
    if kind == "multilabel_ovr":  # a multi-label run's one-vs-rest model
        from ..multilabel.end_models import load_multilabel_end_model

        return load_multilabel_end_model(folder, expected)
    return load_end_model(folder, expected)


def load_recorded_label_model(log, run_id: str):
    """The label model of ``run_id``, its files checked against the checksums recorded with the run.
    ``log``: anything with ``recorded_files(run_id, part)`` (a ``FeedbackLog``). Raises
    ``StoreError`` (unknown run, or none saved) or ``ArtifactError`` (any load failure, file named)."""
    from ..errors import StoreError
    from ..models.artifacts import load_label_model

    folder, expected = log.recorded_files(run_id, "label_model")
    if folder is None:
        raise StoreError(f"run {run_id!r} has no saved label model")
    return load_label_model(folder, expected)


def load_recorded_lfs(log, run_id: str) -> tuple:
    """The run's own LFs, loaded from its saved copy (``pipeline.run_lfs.load_run_lfs``), the files
    checked against the checksums recorded with the run. ``log``: a ``FeedbackLog`` (read under its
    lock). Raises ``StoreError`` (unknown run) or ``LFLoadError`` (none saved, a file fails its
    checksum, they do not import)."""
    from .run_lfs import FOLDER, load_run_lfs

    folder, expected = log.recorded_files(run_id, FOLDER)
    names = [lf["name"] for lf in log.recorded_run(run_id)["lfs"] if lf["version"] != "precomputed"]
    return load_run_lfs(run_id, folder, expected, names) if names else ()


__all__ = [
    "SCHEMA_VERSION",
    "RunRecord",
    "RunStore",
    "create_private_file",
    "end_model_path",
    "load_recorded_end_model",
    "load_recorded_label_model",
    "load_recorded_lfs",
    "read_run",
    "recorded_end_model",
    "recorded_files",
    "store_exists",
    "write_private_text",
    "writer_lock",
]
