"""The prediction/feedback log: group commit, deferred LF votes, schema migration."""

from __future__ import annotations


def _prediction(i: int, pid: str | None = None):
    from labeling.serve.feedback import PredictionRecord

    return PredictionRecord(id=pid or f"p{i}", created_at="2026-01-01T00:00:00+00:00", model_version="v1",
                            probabilities=(0.25, 0.75), label=1, lf_votes=None, text=None, text_sha256="h",
                            lf_votes_status="pending")


def test_group_commit_acknowledges_every_write_once_committed(tmp_path):
    import threading

    from labeling.serve.feedback import FeedbackLog, GroupCommitWriter

    with FeedbackLog(tmp_path / "s.db") as log:
        writer = GroupCommitWriter(log)
        results: list = []
        lock = threading.Lock()

        def done(error):
            with lock:
                results.append(error)

        threads = [threading.Thread(target=lambda t=t: [writer.submit([_prediction(t * 100 + i)], done)
                                                        for i in range(100)]) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.submit_votes([("p7", (1, -1), "done")])
        writer.close()
        assert results == [None] * 400
        assert log.read("SELECT count(*) AS n FROM predictions")[0]["n"] == 400
        row = log.get_prediction("p7")
        assert (row["lf_votes"], row["lf_votes_status"]) == ("[1, -1]", "done")


def test_group_commit_reports_a_failed_batch_to_every_waiter(tmp_path):
    from labeling.serve.feedback import FeedbackLog, GroupCommitWriter

    with FeedbackLog(tmp_path / "s.db") as log:
        log.log_predictions([_prediction(0, "dup")])
        writer = GroupCommitWriter(log)
        errors: list = []
        writer.submit([_prediction(1, "dup")], errors.append)  # primary key taken: the batch fails
        writer.close()
        assert len(errors) == 1 and "UNIQUE" in str(errors[0])
        assert log.read("SELECT count(*) AS n FROM predictions")[0]["n"] == 1


def test_store_from_before_deferred_votes_is_migrated(tmp_path):
    import sqlite3

    from labeling.serve.feedback import FeedbackLog

    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, model_version TEXT NOT NULL,"
                 " probabilities TEXT NOT NULL, label INTEGER NOT NULL, lf_votes TEXT, text TEXT,"
                 " text_sha256 TEXT NOT NULL)")
    conn.execute("INSERT INTO predictions VALUES ('old', 't', 'v', '[0.5, 0.5]', 0, '[0]', NULL, 'h')")
    conn.commit()
    conn.close()
    with FeedbackLog(tmp_path / "old.db") as log:
        assert log.get_prediction("old")["lf_votes_status"] == "done"
        log.log_predictions([_prediction(1)])
        assert log.get_prediction("p1")["lf_votes_status"] == "pending"


def test_store_and_its_wal_are_owner_only(tmp_path):
    import os

    from labeling.serve.feedback import FeedbackLog
    from labeling.pipeline.store import RunStore, write_private_text

    with FeedbackLog(tmp_path / "new" / "s.db") as log:
        log.log_predictions([_prediction(1)])
        for name in ("s.db", "s.db-wal"):
            assert (tmp_path / "new" / name).stat().st_mode & 0o777 == 0o600, name
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)  # a store made before this: opened, it loses group and other permissions
    with RunStore(old):
        assert old.stat().st_mode & 0o777 == 0o600
    report = tmp_path / "reports" / "r.html"
    write_private_text(report, "<html>")
    assert report.stat().st_mode & 0o777 == 0o600 and report.parent.stat().st_mode & 0o777 == 0o700


def test_pending_votes_are_claimed_once_per_start(tmp_path):
    from labeling.serve.feedback import FeedbackLog

    with FeedbackLog(tmp_path / "s.db") as log, FeedbackLog(tmp_path / "s.db") as other_worker:
        log.log_predictions([_prediction(1), _prediction(2)])
        log.set_lf_votes([("p2", (1, -1), "done")])
        start = "2026-06-01T00:00:00+00:00"
        # with the run that made each prediction: its LFs, and only its, vote on it when re-queued
        assert log.claim_pending_votes(start) == [{"id": "p1", "text": None, "model_version": "v1"}]
        assert other_worker.claim_pending_votes(start) is None  # the same start: already claimed
        log.set_lf_votes([("p1", None, "abandoned", "why")])
        assert log.get_prediction("p1")["lf_votes_error"] == "why"
        assert log.claim_pending_votes("2026-07-01T00:00:00+00:00") == []
