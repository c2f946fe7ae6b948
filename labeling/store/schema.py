"""The store's schema: every table, index, trigger and pragma, its version and its migrations.

Version 1 is the schema the stages created piecemeal before this package (runs via
sqlite-utils in ``pipeline/store.py``, the serving log in ``serve/feedback.py``, alias history
and promotions in ``pipeline/registry.py``, review tasks and gold in ``review/gold.py``); a
store written by those versions has ``PRAGMA user_version`` 1 (or 0 when only a server opened
it). Each later version is one numbered ``Migration``; ``connection.upgrade`` applies the
missing ones in one writer transaction.

Every statement is idempotent (``IF NOT EXISTS``, columns added only when missing): a store
an older process touched again after an upgrade (it rewrites ``user_version`` to 1) is
upgraded again without harm.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

#: Set on every connection. WAL: readers never block the one writer; FULL: an acknowledged
#: write survives power loss, not only a killed process (``synchronous`` can be lowered per
#: connection by the server's settings).
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON")
BUSY_TIMEOUT_MS = 30000

# The version-1 tables, column for column as the stages created them (sqlite-utils typed
# Python ``float`` columns REAL, ``int`` INTEGER, ``str`` TEXT).
V1_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created_at TEXT, project TEXT, seed INTEGER, config TEXT, dataset_version TEXT,
    dataset_source TEXT, split_sizes TEXT, lf_set_version TEXT, matrix_hashes TEXT, label_model TEXT, end_model TEXT
);
CREATE TABLE IF NOT EXISTS run_lfs (
    run_id TEXT REFERENCES runs(id), position INTEGER, name TEXT, version TEXT, PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS run_metrics (
    run_id TEXT REFERENCES runs(id), name TEXT, kind TEXT, accuracy REAL, macro_f1 REAL, train_rows INTEGER,
    coverage REAL, per_class TEXT, notes TEXT, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS run_lf_stats (
    run_id TEXT REFERENCES runs(id), split TEXT, lf TEXT, coverage REAL, overlaps REAL, conflicts REAL,
    accuracy REAL, seconds REAL, PRIMARY KEY (run_id, split, lf)
);
CREATE TABLE IF NOT EXISTS run_artifacts (
    run_id TEXT REFERENCES runs(id), name TEXT, path TEXT, sha256 TEXT, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS run_documents (
    run_id TEXT REFERENCES runs(id), name TEXT, body TEXT, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS run_intents (run_id TEXT PRIMARY KEY, folder TEXT, started_at TEXT);
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
CREATE TABLE IF NOT EXISTS model_alias_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT NOT NULL, run_id TEXT NOT NULL,
    previous_run_id TEXT, changed_at TEXT NOT NULL, action TEXT NOT NULL DEFAULT 'set'
);
CREATE TRIGGER IF NOT EXISTS model_aliases_history_insert AFTER INSERT ON model_aliases BEGIN
    INSERT INTO model_alias_history (alias, run_id, previous_run_id, changed_at)
    VALUES (NEW.alias, NEW.run_id, NULL, NEW.updated_at);
END;
CREATE TRIGGER IF NOT EXISTS model_aliases_history_update AFTER UPDATE ON model_aliases
WHEN NEW.run_id IS NOT OLD.run_id BEGIN
    INSERT INTO model_alias_history (alias, run_id, previous_run_id, changed_at)
    VALUES (NEW.alias, NEW.run_id, OLD.run_id, NEW.updated_at);
END;
CREATE TABLE IF NOT EXISTS promotions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, candidate_run_id TEXT NOT NULL,
    champion_run_id TEXT, metric TEXT NOT NULL, candidate_score REAL, champion_score REAL,
    margin REAL NOT NULL, passed INTEGER NOT NULL, promoted INTEGER NOT NULL, reason TEXT NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0, actor TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS review_tasks (
    task_key TEXT PRIMARY KEY, project TEXT, source TEXT, row_id TEXT, text TEXT, text_sha256 TEXT,
    ls_task_id INTEGER, strategy TEXT, pushed_at TEXT
);
CREATE TABLE IF NOT EXISTS gold_labels (
    task_key TEXT REFERENCES review_tasks(task_key), annotator TEXT, annotation_id INTEGER, label INTEGER,
    source TEXT, updated_at TEXT, pulled_at TEXT, PRIMARY KEY (task_key, annotator)
);
"""

# Columns added to version-1 tables after they first shipped: a store written before them
# lacks them (SQLite cannot add a column "if not exists", so each is checked).
V1_LATE_COLUMNS = {
    "predictions": {"lf_votes_status": "TEXT NOT NULL DEFAULT 'done'", "lf_votes_error": "TEXT"},
    "promotions": {"forced": "INTEGER NOT NULL DEFAULT 0", "actor": "TEXT NOT NULL DEFAULT ''",
                   "note": "TEXT NOT NULL DEFAULT ''"},
}

V2_STATEMENTS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL
);
-- Partial: only the (few) pending rows are indexed, so a restart finds them without a scan.
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions(created_at) WHERE lf_votes_status = 'pending';
CREATE INDEX IF NOT EXISTS model_alias_history_alias ON model_alias_history(alias, seq);
CREATE INDEX IF NOT EXISTS review_tasks_project ON review_tasks(project);
CREATE INDEX IF NOT EXISTS promotions_candidate ON promotions(candidate_run_id);
"""


# Version 3: the Label Studio backend's jobs (webhook events, START_TRAINING), so that every
# server worker answers ``GET /ls/jobs/<id>`` and one training job runs across workers.
# ``owner_pid``: the process running the job (a training job whose process is gone is over).
V3_STATEMENTS = """
CREATE TABLE IF NOT EXISTS ls_jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, progress TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '{}', error TEXT NOT NULL DEFAULT '', presses INTEGER NOT NULL DEFAULT 1,
    owner_pid INTEGER
);
CREATE INDEX IF NOT EXISTS ls_jobs_created ON ls_jobs(created_at);
CREATE INDEX IF NOT EXISTS ls_jobs_kind_status ON ls_jobs(kind, status);
"""


# Gold entity spans from span review (task = "spans"): one row per span of a reviewed text,
# character offsets (end exclusive), the text's sha256 to tie them to the text they index.
V4_STATEMENTS = """
CREATE TABLE IF NOT EXISTS gold_spans (
    project TEXT NOT NULL, task_key TEXT NOT NULL, text_sha256 TEXT NOT NULL, start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL, label TEXT NOT NULL, pulled_at TEXT NOT NULL,
    PRIMARY KEY (project, task_key, start_char, end_char, label)
);
"""


def statements(script: str) -> list[str]:
    """``script`` split into complete statements (a trigger body's ``;`` does not end it)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    return out


def _v1(conn: sqlite3.Connection) -> None:
    for statement in statements(V1_TABLES):
        conn.execute(statement)


def _v2(conn: sqlite3.Connection) -> None:
    _v1(conn)  # a version-1 store may lack the tables of stages that never opened it
    for table, columns in V1_LATE_COLUMNS.items():
        _add_missing_columns(conn, table, columns)
    for statement in statements(V2_STATEMENTS):
        conn.execute(statement)


def _run_script(script: str) -> Callable[[sqlite3.Connection], None]:
    """A migration step that runs ``script``'s statements in order."""
    def apply(conn: sqlite3.Connection) -> None:
        for statement in statements(script):
            conn.execute(statement)
    return apply


_v3 = _run_script(V3_STATEMENTS)
_v4 = _run_script(V4_STATEMENTS)


#: Tables holding a ``schema_version`` column from version 5 on (the label schema a row's
#: class indices mean; see ``store.label_schema``).
SCHEMA_STAMPED = ("runs", "predictions", "feedback", "review_tasks", "gold_labels")

# Version 5 (self-contained: only portable CREATE ... IF NOT EXISTS and ADD COLUMN; its
# number may move when other branches add migrations).
V5_STATEMENTS = """
CREATE TABLE IF NOT EXISTS label_schemas (
    project TEXT NOT NULL, version TEXT NOT NULL, classes TEXT NOT NULL, history TEXT NOT NULL,
    previous_version TEXT, change TEXT, plan TEXT, files TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (project, version)
);
CREATE TABLE IF NOT EXISTS label_schema_current (
    project TEXT PRIMARY KEY, version TEXT NOT NULL, files_pending INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_schema_rows (
    version TEXT NOT NULL, table_name TEXT NOT NULL, row_key TEXT NOT NULL, old_label INTEGER, new_label INTEGER,
    old_row TEXT NOT NULL, PRIMARY KEY (version, table_name, row_key)
);
"""


def _add_missing_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, spec in columns.items():
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {spec}")


def _v5(conn: sqlite3.Connection) -> None:
    _v1(conn)
    for statement in statements(V5_STATEMENTS):
        conn.execute(statement)
    # NULL on old rows until the project's schema is first registered
    # (``label_schema.ensure_schema``), which stamps them with it.
    for table in SCHEMA_STAMPED:
        _add_missing_columns(conn, table, {"schema_version": "TEXT"})


#: Tables whose rows may hold a label set (``project.task = "multi_label"``), from version 6 on.
LABEL_SET_TABLES = ("predictions", "feedback", "gold_labels")


def _v6(conn: sqlite3.Connection) -> None:
    """Version 6 (self-contained: only portable ADD COLUMN; its number may move when other
    branches add migrations): ``labels`` on predictions, feedback and gold labels, a JSON list
    of class indices (sorted; ``[]`` = a labelled row with no class) for a multi-label
    project's rows, NULL on single-label rows, whose ``label`` keeps the class index. A
    multi-label row's ``label`` is -1: no one class stands for a set."""
    _v1(conn)
    for table in LABEL_SET_TABLES:
        _add_missing_columns(conn, table, {"labels": "TEXT"})


def _v7(conn: sqlite3.Connection) -> None:
    """Spans downstream: served span predictions and span feedback as JSON ``[[start, end,
    label, score?], ...]`` (NULL on single-label rows), and the text of a reviewed span task,
    so that gold spans of texts outside the dataset can be trained on. Self-contained
    (only ADD COLUMN on tables every store has); its number may move at a merge."""
    _v1(conn)
    _v4(conn)
    for table in ("predictions", "feedback"):
        _add_missing_columns(conn, table, {"spans": "TEXT"})
    _add_missing_columns(conn, "gold_spans", {"text": "TEXT"})


def _v8(conn: sqlite3.Connection) -> None:
    # Version 6 (self-contained; its number may move when other branches add migrations): feedback
    # may name a class outside the schema ("other: <name>"): label -1 and the name here.
    _add_missing_columns(conn, "feedback", {"other_label": "TEXT"})


def _v9(conn: sqlite3.Connection) -> None:
    """The Label Studio annotation a gold span row came from (NULL for rows pulled before), so
    that the backend's ``ANNOTATIONS_DELETED`` webhook, which names annotation ids only, removes
    the gold spans of a deleted answer. Self-contained (only ADD COLUMN after creating the
    table where missing); its number may move at a merge."""
    _v4(conn)
    _add_missing_columns(conn, "gold_spans", {"text": "TEXT", "annotation_id": "INTEGER"})


@dataclass(frozen=True)
class Migration:
    """One schema version: ``apply(connection)`` runs inside the upgrade's writer transaction.

    The same step runs on both backends: ``connection`` is a ``sqlite3.Connection`` or, on
    PostgreSQL, a ``connection.PostgresTransaction`` that translates SQLite's SQL
    (``dialect``). So write SQLite's SQL with upper-case ``TEXT``/``INTEGER``/``REAL`` types,
    ``CREATE TABLE/INDEX IF NOT EXISTS`` and ``ALTER TABLE ... ADD COLUMN``; a new trigger also
    needs its PL/pgSQL spelling in ``dialect.POSTGRES_TRIGGERS``.
    """

    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS = (
    Migration(1, "create the run, serving, registry and review tables (the schema before versions)", _v1),
    Migration(2, "add late columns to old predictions/promotions tables; record migrations in"
                 " schema_migrations; index alias history, review tasks by project, promotions by run", _v2),
    Migration(3, "add ls_jobs: the Label Studio backend's jobs, shared by every server worker", _v3),
    Migration(4, "add gold_spans (reviewed entity spans of spans projects)", _v4),
    Migration(5, "label schemas: versioned class lists with their change history (label_schemas,"
                 " label_schema_current, label_schema_rows); schema_version on runs, predictions, feedback,"
                 " review tasks and gold labels", _v5),
    Migration(6, "labels (a JSON list of class indices) on predictions, feedback and gold labels: the label"
                 " sets of multi-label projects", _v6),
    Migration(7, "spans downstream: spans on predictions and feedback, the text of gold_spans rows", _v7),
    Migration(8, "feedback.other_label: a label outside the label schema (`other: <name>`, label -1)", _v8),
    Migration(9, "gold_spans.annotation_id: the Label Studio answer a gold span came from", _v9),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
