"""The store's schema version and migrations: a store written before ``labeling.store``
(the code of a660ff6, schema version 1) upgrades in one transaction, and works after."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from labeling import load_config, run_retrain
from labeling.cli import main
from labeling.errors import StoreVersionError
from labeling.pipeline.lineage import history, reproduce
from labeling.pipeline.registry import CHAMPION, Registry, promote_run
from labeling.store.connection import SLOW_UPGRADE_ENV, Connection, store_version, upgrade_store
from labeling.store.schema import MIGRATIONS, SCHEMA_VERSION
from labeling.store.serving import FeedbackLog

from ..conftest import FIXTURES, REPO, tiny_project

STEPS_AFTER_V1 = [f"{m.version}: {m.description}" for m in MIGRATIONS[1:]]

sys.path.insert(0, str(FIXTURES))
from make_v1_store import ROWS, build  # noqa: E402

STEPS_AFTER_V1 = [f"{m.version}: {m.description}" for m in MIGRATIONS[1:]]
RUN_TABLES = ("runs", "run_lfs", "run_metrics", "run_lf_stats", "run_artifacts", "run_documents")


def _objects(path) -> set[str]:
    with sqlite3.connect(str(path)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def _count(path, table: str) -> int:
    with sqlite3.connect(str(path)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_new_store_is_created_at_the_current_version(tmp_path):
    Connection(tmp_path / "s.db").close()
    assert store_version(tmp_path / "s.db") == SCHEMA_VERSION
    with sqlite3.connect(str(tmp_path / "s.db")) as conn:
        applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert applied == [m.version for m in MIGRATIONS]


def test_a_store_from_a660ff6_upgrades_in_one_step_and_keeps_its_rows(tmp_path):
    store = build(tmp_path / "old.db")
    assert store_version(store) == 1
    assert upgrade_store(store, dry_run=True) == STEPS_AFTER_V1
    assert store_version(store) == 1 and "schema_migrations" not in _objects(store)  # a dry run changes nothing
    with FeedbackLog(store) as log:  # any stage's open upgrades it
        assert log.get_prediction("p1")["text"] == "check out my channel"
        assert log.get_alias("staging") == "r-old"
    assert store_version(store) == SCHEMA_VERSION
    assert {"schema_migrations", "model_alias_history_alias", "review_tasks_project"} <= _objects(store)
    assert {t: _count(store, t) for t in ROWS} == {t: len(rows) for t, rows in ROWS.items()}
    assert upgrade_store(store, dry_run=True) == [] and upgrade_store(store) == []


def test_an_upgrade_adds_columns_a_store_older_still_lacks(tmp_path):
    store = tmp_path / "older.db"
    with sqlite3.connect(str(store)) as conn:  # promotions and predictions as first shipped
        conn.execute("CREATE TABLE promotions (seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
                     " candidate_run_id TEXT NOT NULL, champion_run_id TEXT, metric TEXT NOT NULL,"
                     " candidate_score REAL, champion_score REAL, margin REAL NOT NULL, passed INTEGER NOT NULL,"
                     " promoted INTEGER NOT NULL, reason TEXT NOT NULL)")
        conn.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, model_version TEXT"
                     " NOT NULL, probabilities TEXT NOT NULL, label INTEGER NOT NULL, lf_votes TEXT, text TEXT,"
                     " text_sha256 TEXT NOT NULL)")
    with Registry(store) as registry:
        assert registry.decisions() == [] and registry.aliases() == {}
    with sqlite3.connect(str(store)) as conn:
        columns = {t: {row[1] for row in conn.execute(f"PRAGMA table_info({t})")} for t in ("promotions", "predictions")}
    assert {"forced", "actor", "note"} <= columns["promotions"]
    assert {"lf_votes_status", "lf_votes_error"} <= columns["predictions"]


def test_a_store_newer_than_the_code_is_refused_naming_both_versions(tmp_path):
    store = build(tmp_path / "new.db")
    with sqlite3.connect(str(store)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    message = f"schema version {SCHEMA_VERSION + 7}, newer than this code's {SCHEMA_VERSION}"
    with pytest.raises(StoreVersionError, match=message):
        FeedbackLog(store)
    with pytest.raises(StoreVersionError, match=message):
        upgrade_store(store, dry_run=True)
    assert store_version(store) == SCHEMA_VERSION + 7 and "schema_migrations" not in _objects(store)


def test_an_upgrade_killed_half_way_leaves_the_old_version_and_the_next_open_finishes_it(tmp_path):
    store = build(tmp_path / "old.db")
    code = "import sys; from labeling.store.connection import Connection; Connection(sys.argv[1])"
    child = subprocess.Popen([sys.executable, "-c", code, str(store)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO), SLOW_UPGRADE_ENV: "60"})
    try:
        deadline = time.monotonic() + 60
        probe = sqlite3.connect(str(store), timeout=0, isolation_level=None)
        while True:  # the child holds the write lock once its upgrade transaction began
            assert child.poll() is None and time.monotonic() < deadline, "the upgrade never began"
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                time.sleep(0.05)
            except sqlite3.OperationalError:
                break
        time.sleep(0.5)  # its step ran (milliseconds); it now sleeps inside the transaction
        probe.close()
    finally:
        child.kill()  # SIGKILL: no rollback, no cleanup
        child.wait()
    assert child.returncode == -9
    assert store_version(store) == 1
    assert not {"schema_migrations", "model_alias_history_alias"} & _objects(store)
    assert upgrade_store(store) == STEPS_AFTER_V1
    assert store_version(store) == SCHEMA_VERSION and "model_alias_history_alias" in _objects(store)


def test_the_store_upgrade_command_prints_its_steps(tmp_path, capsys):
    project = tiny_project(tmp_path / "p")
    store = build(tmp_path / "p" / "old.db")
    args = ["--config", str(project), "--set", f'project.store="{store}"']
    assert main(["store", "upgrade", *args, "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [f"would apply {step}" for step in STEPS_AFTER_V1]
    assert store_version(store) == 1
    assert main(["store", "upgrade", *args]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [f"applied {step}" for step in STEPS_AFTER_V1]
    assert main(["store", "upgrade", *args, "--json"]) == 0
    assert '"steps": []' in capsys.readouterr().out


def test_runs_in_an_upgraded_store_reproduce_list_promote_and_roll_back(tmp_path):
    project = tiny_project(tmp_path / "p")
    made = tmp_path / "p" / "runs.db"
    config = load_config(project, [f'project.store="{made}"'])
    first, second = run_retrain(config).run_id, run_retrain(config).run_id
    old = build(tmp_path / "p" / "old.db")
    with sqlite3.connect(str(old)) as conn:  # the runs' rows, as version 1 holds them (same columns)
        conn.execute("ATTACH DATABASE ? AS made", [str(made)])
        for table in RUN_TABLES:  # version 1's columns only (later versions added some)
            names = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
            conn.execute(f"INSERT INTO main.{table} SELECT {names} FROM made.{table}")
    assert store_version(old) == 1
    config = load_config(project, [f'project.store="{old}"'])

    assert [row["run_id"] for row in history(old)][-2:] == [first, second]
    assert store_version(old) == SCHEMA_VERSION
    assert promote_run(config, old, first).promoted
    assert promote_run(config, old, second, force=True, note="upgrade test").promoted
    with Registry(old) as registry:
        assert registry.get(CHAMPION) == second
        assert registry.rollback() == (second, first)
        assert registry.get(CHAMPION) == first and registry.get("staging") == "r-old"
    again = reproduce(old, first)
    assert again.matches, again.mismatches
