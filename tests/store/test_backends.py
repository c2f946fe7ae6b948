"""The store on both backends: every table family on SQLite and on a real PostgreSQL (a fresh
database per test), PostgreSQL's locks and claims, its transactional upgrade, and ``store copy``
between the two."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from labeling.cli import main
from labeling.errors import StoreError, StoreVersionError
from labeling.store import dialect, registry
from labeling.store.connection import SLOW_UPGRADE_ENV, connect, store_version, table_names, writer_lock
from labeling.store.gold import GoldStore, ReviewTask
from labeling.store.runs import RunStore
from labeling.store.schema import SCHEMA_VERSION
from labeling.store.serving import FeedbackLog, FeedbackRecord, IdempotencyConflict, PredictionRecord
from labeling.store.transfer import copy_store

from ..conftest import FIXTURES, REPO, tiny_project
from .test_runs import _record

sys.path.insert(0, str(FIXTURES))
from make_v1_store import ROWS, build  # noqa: E402

T = "2026-01-01T00:00:00+00:00"


def _prediction(pid: str, status: str = "done", created_at: str = T) -> PredictionRecord:
    return PredictionRecord(pid, created_at, "r1", (0.25, 0.75), 1, (1, -1), f"text {pid}", f"sha {pid}", status)


def _feedback(key: str, sha: str = "body", prediction_id: str | None = "p1") -> FeedbackRecord:
    return FeedbackRecord(f"f-{key}", T, key, sha, 0, prediction_id, None, None, None)


def test_every_table_family_works_on_both_backends(store_target):
    with RunStore(store_target) as runs:
        runs.record_run(_record("r1"))
        runs.record_run(_record("r2"))
        assert runs.lf_stats("r1")[0]["overlaps"] == 0.1
        assert runs.get_run("r1")["metrics"][0]["accuracy"] == 0.9  # a double, not PostgreSQL's 4-byte REAL
    with FeedbackLog(store_target) as log:
        log.log_predictions([_prediction("p1"), _prediction("p2", "pending")])
        row, created = log.record_feedback(_feedback("key-0001"))
        again, created_again = log.record_feedback(_feedback("key-0001"))
        assert created and not created_again and again["id"] == row["id"] and again["model_version"] == "r1"
        with pytest.raises(IdempotencyConflict):
            log.record_feedback(_feedback("key-0001", sha="another body"))
        assert [r["text"] for r in log.latest_predictions("r1", 5)] == ["text p2", "text p1"]  # latest first
        assert log.gold_rows()[0]["text"] == "text p1" and log.count_feedback() == 1
        log.set_alias("r1")
        log.set_alias("r2")
        with log.transaction() as conn:
            registry.mark_last_move(conn, "production", "r2", "rollback", previous_run_id="r1")
            registry.write_decision(conn, {
                "candidate_run_id": "r1", "champion_run_id": "r2", "metric": "accuracy", "candidate_score": 0.9,
                "champion_score": 0.8, "margin": 0.0, "passed": True, "promoted": True, "reason": "better",
                "forced": False, "actor": "", "note": ""}, alias="production", candidate_alias="candidate")
        moves = [(h["alias"], h["run_id"], h["previous_run_id"], h["action"])
                 for h in registry.alias_history(log.store)]
        assert moves == [("production", "r1", None, "set"), ("production", "r2", "r1", "rollback"),
                         ("candidate", "r1", None, "set"), ("production", "r1", "r2", "set")]
        assert registry.promotions(log.store, "r1")[0]["passed"] == 1
        assert registry.aliases(log.store) == {"candidate": "r1", "production": "r1"}
        assert log.claim_pending_votes("2027") == [{"id": "p2", "text": "text p2", "model_version": "r1"}]
        assert log.claim_pending_votes("2027") is None  # one worker per server start re-queues
    with GoldStore(store_target) as gold:
        gold.record_pushed("p", [ReviewTask("k1", "dataset", "1", "some text", "random")], {"k1": 7})
        gold.record_pushed("p", [ReviewTask("k1", "dataset", "1", "some text", "other")], {"k1": 8})
        ann = SimpleNamespace(task_key="k1", annotator="a", annotation_id=1, label=1, updated_at=T)
        assert gold.record_annotations("p", [ann]).inserted == 1
        assert gold.record_annotations("p", [SimpleNamespace(**{**ann.__dict__, "label": 0})]).updated == 1
        assert gold.tasks("p")[0]["strategy"] == "random" and gold.task_key_for("p", 8) == "k1"
        assert gold.answers()["label"].tolist() == [0]
        assert gold.remove_answers([1]) == 1
    assert store_version(store_target) == SCHEMA_VERSION
    assert {"runs", "predictions", "gold_labels", "schema_migrations"} <= table_names(store_target)


def test_sqlite_statements_in_postgresql_spelling():
    sql = dialect.PostgresSQL(lambda table: ["task_key", "annotator"])
    assert sql.translate("SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND c = :name") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%%' AND c = %(name)s", None)
    assert sql.translate("INSERT OR IGNORE INTO lf_vote_requeues VALUES (?, ?)")[0] == (
        'INSERT INTO "lf_vote_requeues" VALUES (%s, %s) ON CONFLICT DO NOTHING')
    assert sql.translate('INSERT OR REPLACE INTO "gold_labels" ("task_key", "annotator", "label") VALUES (?, ?, ?)')[0] \
        == ('INSERT INTO "gold_labels" ("task_key", "annotator", "label") VALUES (%s, %s, %s)'
            ' ON CONFLICT ("task_key", "annotator") DO UPDATE SET "label" = EXCLUDED."label"')
    ddl = dialect.ddl("CREATE TABLE IF NOT EXISTS feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, x REAL,"
                      " overlaps REAL, n INTEGER, t TEXT)")
    assert ddl == ("CREATE TABLE IF NOT EXISTS feedback ( rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,"
                   "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x DOUBLE PRECISION,"
                   ' "overlaps" DOUBLE PRECISION, n BIGINT, t TEXT COLLATE "C")')
    assert dialect.ddl("ALTER TABLE t ADD COLUMN c INTEGER") == "ALTER TABLE t ADD COLUMN IF NOT EXISTS c BIGINT"
    assert dialect.describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def _hold_a_write(log: FeedbackLog, seconds: float) -> threading.Thread:
    """Hold a serial write transaction of ``log`` for ``seconds``, in a thread; returns once it holds it."""
    holding = threading.Event()

    def hold():
        with log.transaction():
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    return thread


def test_postgresql_serial_writers_wait_for_each_other_and_inserts_do_not(postgres_url):
    """The advisory write lock is PostgreSQL's BEGIN IMMEDIATE: a read-then-write transaction
    (an idempotency key, a gate) on one host waits for another host's; plain inserts pass."""
    with FeedbackLog(postgres_url) as first, FeedbackLog(postgres_url) as second:
        first.log_predictions([_prediction("p1")])
        holder = _hold_a_write(first, 0.5)
        started = time.monotonic()
        second.log_predictions([_prediction("p2")])  # not serial: no wait
        assert time.monotonic() - started < 0.4
        second.record_feedback(_feedback("key-0002"))  # serial: waits for the first to commit
        assert time.monotonic() - started >= 0.4
        holder.join()


def test_postgresql_claims_skip_rows_another_host_holds(postgres_url):
    with FeedbackLog(postgres_url) as first, FeedbackLog(postgres_url) as second:
        first.log_predictions([_prediction("p1", "pending", "2026-01-01"), _prediction("p2", "pending", "2026-01-02")])
        with first.store.transaction(serial=False) as conn:
            conn.execute("SELECT id FROM predictions WHERE id = 'p1' FOR UPDATE")  # another host claiming p1
            started = time.monotonic()
            claimed = second.claim_pending_votes("2027")
            assert time.monotonic() - started < 5  # skipped, not waited for (lock_timeout is 30 s)
        assert [r["id"] for r in claimed] == ["p2"]


def test_postgresql_run_writer_lock_is_held_across_connections(postgres_url):
    order: list[str] = []

    def second():
        with writer_lock(postgres_url):
            order.append("second")

    with writer_lock(postgres_url):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]


def test_a_postgresql_store_newer_than_the_code_is_refused(postgres_url):
    connect(postgres_url).close()
    with connect(postgres_url) as conn, conn.transaction() as tx:
        tx.execute(f"UPDATE {dialect.POSTGRES_VERSION_TABLE} SET version = ?", [SCHEMA_VERSION + 3])
    with pytest.raises(StoreVersionError, match=f"schema version {SCHEMA_VERSION + 3}, newer than this code's"):
        FeedbackLog(postgres_url)


def test_a_postgresql_upgrade_killed_half_way_leaves_nothing_and_the_next_open_finishes_it(postgres_url):
    import psycopg

    code = "import sys; from labeling.store.connection import connect; connect(sys.argv[1])"
    child = subprocess.Popen([sys.executable, "-c", code, postgres_url], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO), SLOW_UPGRADE_ENV: "60"})
    try:
        with psycopg.connect(postgres_url, autocommit=True) as probe:
            deadline = time.monotonic() + 60
            # the child holds the write lock once its upgrade transaction began
            while not probe.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                                    [dialect.WRITE_LOCK_KEY]).fetchone()[0]:
                assert child.poll() is None and time.monotonic() < deadline, "the upgrade never began"
                time.sleep(0.05)
        time.sleep(0.3)  # its first step ran; it now sleeps inside the transaction
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -9
    assert store_version(postgres_url) == 0 and table_names(postgres_url) == set()
    FeedbackLog(postgres_url).close()
    assert store_version(postgres_url) == SCHEMA_VERSION


def _rows(path, table: str) -> list[tuple]:
    with sqlite3.connect(str(path)) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_store_copy_moves_a_store_from_todays_main_to_postgresql_and_back(tmp_path, postgres_url, capsys):
    project = tiny_project(tmp_path / "p")
    store = build(tmp_path / "p" / "old.db")
    args = ["--config", str(project), "--set", f'project.store="{store}"']
    assert main(["store", "copy", *args, "--to", postgres_url]) == 0
    assert f"predictions: {len(ROWS['predictions'])} row(s)" in capsys.readouterr().out
    with FeedbackLog(postgres_url) as log:
        assert log.count_feedback() == len(ROWS["feedback"]) and log.run_ids() == ["r-old"]
        assert len(log.read("SELECT * FROM model_alias_history")) == len(_rows(store, "model_alias_history"))
        log.set_alias("r-old", "copied")  # identity columns continue after the copied ids
    with pytest.raises(StoreError, match="is not empty: table runs has 1 row"):
        copy_store(store, postgres_url)
    back = tmp_path / "back.db"
    pg_args = ["--config", str(project), "--set", f'project.store="{postgres_url}"']
    assert main(["store", "copy", *pg_args, "--to", str(back), "--json"]) == 0
    assert '"runs": 1' in capsys.readouterr().out
    for table in ("runs", "run_metrics", "predictions", "feedback", "promotions", "gold_labels"):
        assert _rows(back, table) == _rows(store, table), table
    assert len(_rows(back, "model_alias_history")) == len(_rows(store, "model_alias_history")) + 1


def test_a_text_with_nul_is_stored_on_postgresql_with_a_replacement_character(postgres_url):
    # our API and SQLite take U+0000 in a text; PostgreSQL's text cannot hold it
    with FeedbackLog(postgres_url) as log:
        log.log_predictions([dataclasses.replace(_prediction("p1"), text="a\x00b")])
        assert log.get_prediction("p1")["text"] == "a\ufffdb"


def test_label_sets_are_stored_and_read_back_on_both_backends(store_target):
    """Migration 6: a multi-label prediction, feedback and review answer keep their sets."""
    from labeling.store.serving import gold_labels

    with FeedbackLog(store_target) as log:
        log.log_predictions([dataclasses.replace(_prediction("p1"), label=-1, labels=(1, 0))])
        log.record_feedback(dataclasses.replace(_feedback("key-0002"), label=-1, labels=(2, 0)))
        log.record_feedback(dataclasses.replace(_feedback("key-0003", prediction_id=None), label=-1, labels=(),
                                                text="no class at all"))
        assert log.get_prediction("p1")["labels"] == "[0, 1]"
    frame = gold_labels(store_target, ("a", "b", "c")).set_index("text")["label"]
    assert frame.to_dict() == {"text p1": ["a", "c"], "no class at all": []}
    with GoldStore(store_target) as gold:
        gold.record_pushed("p", [ReviewTask("k1", "dataset", "1", "some text", "margin")], {"k1": 7})
        ann = SimpleNamespace(task_key="k1", annotator="a", annotation_id=1, label=-1, updated_at=T, labels=(0, 2))
        assert gold.record_annotations("p", [ann]).inserted == 1
        assert gold.record_annotations("p", [SimpleNamespace(**{**ann.__dict__, "labels": (2,)})]).updated == 1
        assert gold.label_sets("p") == {"k1": {"a": ("some text", [2])}}
