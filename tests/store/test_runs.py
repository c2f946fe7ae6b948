from __future__ import annotations

import sqlite3

import pytest

from labeling import RunRecord, RunStore, StoreError


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        id=run_id, created_at="2026-01-01T00:00:00+00:00", project="p", seed=1, config={"a": 1},
        dataset_version="d1", dataset_source="src", split_sizes={"train": 3}, lf_set_version="v1",
        lfs=(("lf_a", "h1"), ("lf_b", "h2")), matrix_hashes={"train": "m1"},
        label_model={"type": "MajorityVote"}, end_model={"type": "sklearn"},
        metrics=({"name": "end model", "kind": "end_model", "accuracy": 0.9, "macro_f1": 0.8, "train_rows": 3,
                  "coverage": 1.0, "per_class": {"a": {"precision": 1.0}}, "notes": ""},),
        lf_stats=({"split": "train", "lf": "lf_a", "coverage": 0.5, "overlaps": 0.1, "conflicts": 0.0,
                   "accuracy": None, "seconds": 0.01},),
        artifacts=(("end_model/x", "/tmp/x", "f" * 64),),
    )


def test_record_and_read_back(store_target):
    with RunStore(store_target) as store:
        store.record_run(_record("r1"))
        run = store.get_run("r1")
        assert store.count_runs() == 1
    assert run["config"] == {"a": 1} and run["matrix_hashes"] == {"train": "m1"}
    assert [(lf["name"], lf["version"]) for lf in run["lfs"]] == [("lf_a", "h1"), ("lf_b", "h2")]
    assert run["metrics"][0]["per_class"] == {"a": {"precision": 1.0}}
    assert run["artifacts"][0]["sha256"] == "f" * 64


def test_wal_mode(tmp_path):
    RunStore(tmp_path / "s.db").close()
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_failed_insert_leaves_nothing(store_target):
    with RunStore(store_target) as store:
        store.record_run(_record("r1"))
        bad = _record("r2")
        # A duplicate LF position violates the primary key half way through the run's rows.
        bad = RunRecord(**{**bad.__dict__, "lfs": (("lf_a", "h1"),), "metrics": bad.metrics * 2})
        with pytest.raises(StoreError, match="r2"):
            store.record_run(bad)
        assert [r["id"] for r in store.list_runs()] == ["r1"]
        assert store.conn.read("SELECT count(*) AS n FROM run_lfs")[0]["n"] == 2


def test_unknown_run(store_target):
    with RunStore(store_target) as store, pytest.raises(StoreError, match="no run 'zz'"):
        store.get_run("zz")



def test_what_runs_in_the_run_transaction_commits_or_rolls_back_with_it(tmp_path):
    with RunStore(tmp_path / "s.db") as store:
        store.begin_run("r1", tmp_path / "artifacts", "2026-01-01T00:00:00+00:00")
        store.conn.raw.execute("CREATE TABLE marks (run_id TEXT)")  # autocommit: no transaction is open

        def fail(conn):
            conn.execute("INSERT INTO marks VALUES ('r1')")
            raise sqlite3.IntegrityError("the decision cannot be written")

        with pytest.raises(StoreError, match="r1"):
            store.record_run(_record("r1"), then=fail)
        assert store.count_runs() == 0 and [i["run_id"] for i in store.intents()] == ["r1"]  # the sweep's clue
        assert store.conn.raw.execute("SELECT count(*) FROM marks").fetchone()[0] == 0
        store.record_run(_record("r1"), then=lambda conn: conn.execute("INSERT INTO marks VALUES ('r1')"))
        assert store.count_runs() == 1 and store.intents() == []  # recorded: the note goes with the same commit
        assert store.conn.raw.execute("SELECT count(*) FROM marks").fetchone()[0] == 1


def _open_run_store(path):
    RunStore(path).close()  # its schema setup reads, then writes (PRAGMA user_version)


def _record_a_run(path):
    with RunStore(path) as store:
        store.record_run(_record("r-busy"))


def _push_review_tasks(path):
    from labeling.review.gold import GoldStore, ReviewTask

    with GoldStore(path) as store:
        store.record_pushed("p", [ReviewTask("k1", "dataset", "1", "some text", "random")], {"k1": 7})


@pytest.mark.parametrize("write", [_open_run_store, _record_a_run, _push_review_tasks])
def test_a_write_waits_for_another_writer_instead_of_failing(tmp_path, write):
    """A transaction that reads before it writes, begun deferred, cannot become a writer while
    another connection writes: SQLite answers 'database is locked' at once, without waiting for
    the busy timeout (a retrain failed so while the server logged predictions). Begun as a
    writer (BEGIN IMMEDIATE), it waits its turn."""
    import threading
    import time

    from labeling.review.gold import GoldStore

    path = tmp_path / "s.db"
    RunStore(path).close()
    GoldStore(path).close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO run_intents VALUES ('x', 'folder', 't')")
    release = threading.Timer(0.5, other.execute, ["COMMIT"])
    release.start()
    started = time.monotonic()
    try:
        write(path)
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started >= 0.4
