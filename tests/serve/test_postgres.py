"""Serving on a PostgreSQL store: the kill -9 durability rounds, and two server processes (two
hosts behind a load balancer) sharing one store: aliases, live swaps, feedback, the gate."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from labeling.serve.feedback import FeedbackLog
from labeling.store.transfer import copy_store

from .test_app import AUTH, Server, _feedback, _stored_keys, kill_9_rounds


@pytest.fixture
def pg_project(served_project, postgres_url):
    """The served example project with its store copied into a fresh PostgreSQL database."""
    copy_store(served_project["store"], postgres_url)
    first, _ = served_project["runs"]
    with FeedbackLog(postgres_url) as log:
        log.set_alias(first)
    overrides = [o for o in served_project["overrides"] if not o.startswith("project.store=")]
    return {**served_project, "store": postgres_url, "overrides": [*overrides, f'project.store="{postgres_url}"']}


def test_kill_9_loses_no_acknowledged_write_on_postgresql(pg_project):
    kill_9_rounds(pg_project, pg_project["store"])


def _wait_for(check, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_two_servers_share_aliases_swaps_feedback_and_the_gate(pg_project):
    first, second = pg_project["runs"]
    servers = [Server(pg_project, workers=1, extra=("--no-lf-votes",)) for _ in range(2)]
    try:
        for srv in servers:
            srv.wait_ready()
        with httpx.Client(base_url=servers[0].url, timeout=60) as a, \
                httpx.Client(base_url=servers[1].url, timeout=60) as b:
            assert [c.get("/models").json()["model_version"] for c in (a, b)] == [first, first]
            # a live swap through one host: the other follows the shared alias
            promoted = a.post("/admin/promote", json={"run_id": second}, headers=AUTH)
            assert promoted.status_code == 200 and promoted.json()["promoted"], promoted.text
            assert _wait_for(lambda: b.get("/models").json()["model_version"] == second)
            assert b.post("/predict", json={"text": "check out my channel"}).json()["model_version"] == second
            # the gate on the other host sees the first host's champion
            again = b.post("/admin/promote", json={"run_id": second}, headers=AUTH).json()
            assert (again["promoted"], again["reason"]) == (False, "already champion")
            # feedback through both: each lands once; a retry through the other host is a replay
            prefix = "two-hosts-" + uuid.uuid4().hex[:8] + "-"
            results: list[int] = []

            def send(client, keys):
                results.extend(_feedback(client, {"text": f"text {k}", "label": "spam"}, k).status_code
                               for k in keys)

            keys = [f"{prefix}{i:04d}" for i in range(60)]
            threads = [threading.Thread(target=send, args=(c, keys[i::2])) for i, c in enumerate((a, b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert results == [201] * 60
            retried = [_feedback(client, {"text": f"text {k}", "label": "spam"}, k).status_code
                       for client, k in ((b, keys[0]), (a, keys[1]))]
            assert retried == [200, 200]
        assert sorted(_stored_keys(pg_project["store"], prefix)) == keys
        with FeedbackLog(pg_project["store"]) as log:
            moves = [(h["run_id"], h["previous_run_id"]) for h in log.read("SELECT * FROM model_alias_history"
                                                                           " WHERE alias = 'production' ORDER BY seq")]
        assert moves[-1] == (second, first)
    finally:
        for srv in servers:
            srv.stop()
