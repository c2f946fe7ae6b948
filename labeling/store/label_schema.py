"""Label schemas: the project's versioned class list, and the one-transaction migration of its rows.

Tables (schema version 3):

- ``label_schemas``: one row per (project, schema version): the classes (JSON, index order),
  the change history (JSON), the change that made it, its plan (what ``--dry-run`` listed),
  and the files (project TOML, LF modules) it rewrites after the store commit.
- ``label_schema_current``: the project's current schema version; ``files_pending`` is 1
  from the store commit until those files are written (then 2 while the change's Label Studio
  step is still to do, 0 when nothing is): the next command finishes them.
- ``label_schema_rows``: every gold/feedback row a change relabelled or unlabelled, with the
  row as it was (so a retired class's gold stays in history, and the change can be checked).

``schema_version`` on runs, predictions, feedback, review tasks and gold rows says which
schema their class indices mean; the store's writers stamp it (``stamp_for_project``,
``stamp_for_run``). Rows from before version 3 get the project's schema when it is first
registered (``ensure_schema``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from ..errors import SchemaChangeError
from .connection import Connection, insert_rows, utc_now
from .schema import SCHEMA_STAMPED

#: ``checkpoint(step)``: called between the migration's steps (a crash test kills there).
Checkpoint = Callable[[str], None]


def _decode(row: dict | None) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    for key in ("classes", "history", "change", "plan", "files"):
        if key in out and isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


def current_schema(conn: Connection, project: str) -> dict | None:
    """The project's current schema ``{version, classes, history, files_pending, files, ...}``, or None."""
    return _decode(conn.read_one(
        "SELECT s.*, c.files_pending FROM label_schema_current c JOIN label_schemas s"
        " ON s.project = c.project AND s.version = c.version WHERE c.project = ?", [project]))


def schema_record(conn: Connection, project: str, version: str) -> dict | None:
    return _decode(conn.read_one("SELECT * FROM label_schemas WHERE project = ? AND version = ?", [project, version]))


def schema_versions(conn: Connection, project: str) -> list[dict]:
    """Every schema the project had, oldest first."""
    rows = conn.read("SELECT * FROM label_schemas WHERE project = ? ORDER BY created_at, version", [project])
    return [_decode(r) for r in rows]


def ensure_schema(conn: Connection, project: str, version: str, classes: Sequence[str], history: list) -> dict:
    """Register the project's first schema (when it has none) and stamp the rows written before
    schema versions existed with it; returns the current schema (which may differ: the caller checks)."""
    with conn.writing("register the label schema") as tx:
        have = tx.execute("SELECT version FROM label_schema_current WHERE project = ?", [project]).fetchone()
        if have is None:
            now = utc_now()
            insert_rows(tx, "label_schemas", [{"project": project, "version": version, "classes": list(classes),
                                               "history": history, "created_at": now}], verb="INSERT OR IGNORE")
            tx.execute("INSERT INTO label_schema_current (project, version, files_pending, updated_at)"
                       " VALUES (?, ?, 0, ?)", [project, version, now])
            for table in SCHEMA_STAMPED:
                tx.execute(f"UPDATE {table} SET schema_version = ? WHERE schema_version IS NULL", [version])
    return current_schema(conn, project)


def stamp_for_project(tx: sqlite3.Connection, project: str | None) -> str | None:
    """Inside a write transaction: the current schema version of ``project``, else of the store's
    only project (review tasks name their Label Studio project's title, not the project's name),
    or None when none is registered yet."""
    row = tx.execute("SELECT version FROM label_schema_current WHERE project = ?", [project]).fetchone() \
        if project is not None else None
    if row is None:
        rows = tx.execute("SELECT version FROM label_schema_current").fetchall()
        return rows[0][0] if len(rows) == 1 else None
    return row[0]


def stamp_for_run(tx: sqlite3.Connection, run_id: str | None) -> str | None:
    """The schema version the run was trained under (None for an unknown or unstamped run)."""
    if not run_id:
        return None
    row = tx.execute("SELECT schema_version FROM runs WHERE id = ?", [run_id]).fetchone()
    return row[0] if row else None


def rows_under_schema(conn: Connection, project: str, version: str) -> dict[str, list[dict]]:
    """What a change of the project's schema ``version`` touches: ``gold`` (task_key, annotator,
    annotation_id, label, labels, source), ``feedback`` (id, label, labels, prediction_id), ``review_tasks``
    (task_key, ls_task_id), ``runs`` (id, schema_version, created_at) and ``aliases`` (alias, run_id).

    Gold, feedback and review tasks are the store's (one project's store; review tasks are keyed
    by their Label Studio project's title), those under ``version`` or from before versions."""
    under = "(schema_version = ? OR schema_version IS NULL)"
    return {
        "gold": conn.read(f"SELECT task_key, annotator, annotation_id, label, labels, source FROM gold_labels WHERE "
                          f"{under} ORDER BY task_key, annotator", [version]),
        "feedback": conn.read(f"SELECT id, label, labels, prediction_id FROM feedback WHERE {under} "
                              "ORDER BY created_at, id", [version]),
        "review_tasks": conn.read(f"SELECT task_key, ls_task_id FROM review_tasks WHERE {under} ORDER BY task_key",
                                  [version]),
        "runs": conn.read("SELECT id, schema_version, created_at FROM runs WHERE project = ? ORDER BY created_at, id",
                          [project]),
        "aliases": conn.read("SELECT alias, run_id FROM model_aliases ORDER BY alias"),
    }


def _relabel(tx: sqlite3.Connection, table: str, key_sql: str, key_of, rows: list[dict], mapping: Sequence,
             version: str) -> None:
    """Relabel ``rows`` of ``table`` through ``mapping``; unmappable rows are deleted, kept in
    ``label_schema_rows`` with their old values (as every relabelled row is). A label set
    (``labels``, a multi-label row) is mapped class by class: a class without a new one leaves
    the set, the row's other classes stay, and the row is kept (``map_label_set``)."""
    history, moved, gone, sets = [], [], [], []
    for row in rows:
        label = row["label"]
        if row.get("labels") is not None:
            old = json.loads(row["labels"]) if isinstance(row["labels"], str) else list(row["labels"])
            new_set, key = map_label_set(old, mapping), key_of(row)
            if new_set != sorted(old):
                history.append({"version": version, "table_name": table, "row_key": json.dumps(key),
                                "old_label": label, "new_label": label, "old_row": row})
            sets.append((json.dumps(new_set), version, *key))
            continue
        new = mapping[label] if label is not None and 0 <= label < len(mapping) else label
        key = key_of(row)
        if new != label:
            history.append({"version": version, "table_name": table, "row_key": json.dumps(key), "old_label": label,
                            "new_label": new, "old_row": row})
        (gone if new is None else moved).append((new, version, *key))
    insert_rows(tx, "label_schema_rows", history)
    tx.executemany(f"UPDATE {table} SET label = ?, schema_version = ? WHERE {key_sql}", moved)
    tx.executemany(f"DELETE FROM {table} WHERE {key_sql}", [k[2:] for k in gone])
    tx.executemany(f"UPDATE {table} SET labels = ?, schema_version = ? WHERE {key_sql}", sets)


def map_label_set(labels: Sequence[int], mapping: Sequence[int | None]) -> list[int]:
    """A label set (class indices) under a schema change's ``mapping``: each class's new index,
    sorted; a class mapped to None (retired) is dropped, the others stay."""
    return sorted({mapping[c] for c in labels if mapping[c] is not None})


def migrate_schema(conn: Connection, project: str, *, old_version: str, new: dict, mapping: Sequence[int | None],
                   checkpoint: Checkpoint | None = None) -> None:
    """Move the project from schema ``old_version`` to ``new`` in ONE write transaction.

    ``new``: ``{version, classes, history, change, plan, files}`` (``files``: what the caller writes
    after the commit; ``files_pending`` stays 1 until ``files_written``). Gold and feedback labels are
    mapped (``mapping[old index]`` -> new index; None: the row is deleted and kept in
    ``label_schema_rows``); review tasks are restamped. A kill at any point leaves the old schema or
    the new, never a mix. Raises ``SchemaChangeError`` when the project's schema is no longer
    ``old_version`` (another change came first).
    """
    step = checkpoint or (lambda name: None)
    with conn.writing(f"change the label schema of {project!r}") as tx:
        row = tx.execute("SELECT version FROM label_schema_current WHERE project = ?", [project]).fetchone()
        if row is None or row[0] != old_version:
            raise SchemaChangeError(f"the label schema of {project!r} is {row[0] if row else 'unregistered'}, not "
                                    f"{old_version}: plan the change again")
        rows = rows_under_schema(conn, project, old_version)
        insert_rows(tx, "label_schemas", [{
            "project": project, "version": new["version"], "classes": list(new["classes"]), "history": new["history"],
            "previous_version": old_version, "change": new["change"], "plan": new.get("plan"),
            "files": new.get("files") or [], "created_at": utc_now()}], verb="INSERT OR REPLACE")
        step("store: schema recorded")
        _relabel(tx, "gold_labels", "task_key = ? AND annotator = ?", lambda r: (r["task_key"], r["annotator"]),
                 rows["gold"], mapping, new["version"])
        step("store: gold relabelled")
        _relabel(tx, "feedback", "id = ?", lambda r: (r["id"],), rows["feedback"], mapping, new["version"])
        step("store: feedback relabelled")
        tx.executemany("UPDATE review_tasks SET schema_version = ? WHERE task_key = ?",
                       [(new["version"], r["task_key"]) for r in rows["review_tasks"]])
        step("store: review tasks restamped")
        tx.execute("UPDATE label_schema_current SET version = ?, files_pending = ?, updated_at = ? WHERE project = ?",
                   [new["version"], 1 if new.get("files") else 0, utc_now(), project])
        step("store: current schema set")


def files_written(conn: Connection, project: str, version: str, pending: int = 0) -> None:
    """The files of ``version``'s change are written: ``pending`` is what is left (0: nothing; the
    pipeline's ``LABEL_STUDIO_PENDING``: its Label Studio step)."""
    with conn.writing("note the schema files written") as tx:
        tx.execute("UPDATE label_schema_current SET files_pending = ?, updated_at = ? WHERE project = ? AND version = ?",
                   [pending, utc_now(), project, version])


def relabelled_rows(conn: Connection, version: str) -> list[dict]:
    """The rows the change to ``version`` relabelled or unlabelled (``label_schema_rows``)."""
    rows = conn.read("SELECT * FROM label_schema_rows WHERE version = ? ORDER BY table_name, row_key", [version])
    return [{**r, "row_key": json.loads(r["row_key"]), "old_row": json.loads(r["old_row"])} for r in rows]
