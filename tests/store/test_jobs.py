"""``ls_jobs``: the Label Studio backend's jobs, shared by every server worker (two connections
to one store file stand for two workers)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labeling.store import jobs as jobs_module
from labeling.store.jobs import JobStore


def test_a_job_written_by_one_worker_is_read_by_another(tmp_path):
    with JobStore(tmp_path / "s.db") as one, JobStore(tmp_path / "s.db") as two:
        one.add("e1", "event", "ANNOTATION_CREATED")
        one.update("e1", status="done", outcome={"inserted": 1})
        job = two.get("e1")
        assert (job["status"], job["outcome"], job["presses"]) == ("done", {"inserted": 1}, 1)
        assert [j["id"] for j in two.recent()] == ["e1"] and two.get("nope") is None
        with pytest.raises(ValueError, match="unknown job fields"):
            one.update("e1", colour="red")


def test_training_is_claimed_once_across_workers_and_a_later_press_joins(tmp_path):
    with JobStore(tmp_path / "s.db") as one, JobStore(tmp_path / "s.db") as two:
        first, joined = one.claim_training("t1")
        assert not joined and first["status"] == "queued"
        again, joined = two.claim_training("t2")
        assert joined and again["id"] == "t1" and two.get("t1")["presses"] == 2 and two.get("t2") is None
        one.update("t1", status="done")
        fresh, joined = two.claim_training("t3")
        assert not joined and fresh["id"] == "t3"


def test_a_training_job_whose_process_died_is_failed_not_joined(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with JobStore(tmp_path / "s.db") as store:
        store.claim_training("t1")
        store.conn.raw.execute("UPDATE ls_jobs SET owner_pid = ? WHERE id = 't1'", (dead.pid,))
        job, joined = store.claim_training("t2")
        assert not joined and job["id"] == "t2"
        assert store.get("t1")["status"] == "failed" and str(dead.pid) in store.get("t1")["error"]


def test_old_jobs_are_dropped_but_never_a_running_one(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_JOBS_KEPT", 3)
    with JobStore(tmp_path / "s.db") as store:
        store.claim_training("t0")
        for i in range(5):
            store.add(f"e{i}", "event", "ANNOTATION_CREATED", status="done")
        assert {j["id"] for j in store.recent(10)} == {"t0", "e2", "e3", "e4"}
