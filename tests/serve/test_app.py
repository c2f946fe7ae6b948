"""The model server, run for real: uvicorn in a subprocess on 127.0.0.1.

One trained run is made per session (``served_project``); a second version is the
same artifacts recorded under another run id, so a swap test costs no training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from labeling import RunStore, load_config, run_retrain
from labeling.serve.feedback import FeedbackLog, gold_labels, text_sha256

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "projects" / "youtube_spam" / "project.toml"
TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``token_via``: how the token reaches the server: "file" (``--token-file``), "stdin"
    (``--token-file -``) or "env" (``$LABELING_SERVE_TOKEN``)."""

    def __init__(self, project: dict, *, workers: int = 2, extra: tuple[str, ...] = (), ready_path: str = "/readyz",
                 token_via: str = "file", env: dict | None = None, port: int | None = None):
        self.ready_path = ready_path
        self.workers = workers
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "pipelines.serve", "--config", str(project.get("config", CONFIG)), "--port", str(self.port),
               "--workers", str(workers), "--max-body-bytes", str(MAX_BODY), "--alias-poll-s", "0.2", *extra]
        for o in project["overrides"]:
            cmd += ["--set", o]
        env = {**{k: v for k, v in os.environ.items() if k != "LABELING_SERVE_TOKEN"}, **(env or {})}
        if token_via == "file":
            token_file = project["root"] / f"token-{self.port}"
            token_file.write_text(TOKEN + "\n")
            cmd += ["--token-file", str(token_file)]
        elif token_via == "stdin":
            cmd += ["--token-file", "-"]
        else:
            env["LABELING_SERVE_TOKEN"] = TOKEN
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self.log_path = project["root"] / f"server-{self.port}.log"
        self.stderr = open(self.log_path, "wb")
        # Own session: kill -9 reaches the supervisor and every worker.
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr,
                                     stdin=subprocess.PIPE if token_via == "stdin" else subprocess.DEVNULL)
        if token_via == "stdin":
            self.proc.stdin.write((TOKEN + "\n").encode())
            self.proc.stdin.close()

    def processes(self) -> dict[int, tuple[int, str]]:
        """Every live process of the server's session: pid -> (parent pid, command line)."""
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.proc.pid:  # the session id: the supervisor leads the session
                    out[int(entry.name)] = (int(fields[1]), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
        return out

    def lf_vote_processes(self) -> list[int]:
        """The LF-votes processes: the spawned processes that spawned none (workers spawn
        them; with 1 worker, uvicorn serves in the supervisor itself)."""
        spawned = {pid: ppid for pid, (ppid, cmd) in self.processes().items() if "spawn_main" in cmd}
        return [pid for pid in spawned if pid not in spawned.values()]

    def wait_ready(self, timeout: float = 300.0) -> None:
        from labeling.serve.run import wait_until_ready

        if wait_until_ready(self.url, self.workers, path=self.ready_path, timeout=timeout,
                            alive=lambda: self.proc.poll() is None):
            return
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(self.stderr.name).read_text()[-3000:]}")
        self.kill()
        raise RuntimeError("server not ready in time")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()


@pytest.fixture(scope="module")
def server(project_paths, request):
    # Started before the model exists: its imports overlap training, and it waits for the run.
    # The token comes from the environment: the case that must scrub it (test_token_not_in_any_process_environment).
    srv = Server(project_paths, workers=2, extra=("--store-text",), token_via="env")
    try:
        request.getfixturevalue("served_project")
        srv.wait_ready()
    except BaseException:
        srv.kill()
        raise
    yield srv
    srv.stop()


def _feedback(client: httpx.Client, body: dict, key: str | None = None, headers=AUTH) -> httpx.Response:
    return client.post("/feedback", json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def test_happy_paths(server, served_project):
    first = served_project["runs"][0]
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/livez").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == first
        one = c.post("/predict", json={"text": "check out my channel http://spam.example"})
        assert one.status_code == 200 and one.headers["X-Model-Version"] == first
        p = one.json()["predictions"][0]
        assert one.json()["model_version"] == first and p["label"] in ("ham", "spam")
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-6
        assert p["lf_votes"] is None and p["lf_votes_status"] == "pending"  # computed after the answer
        explained = c.post("/predict", json={"text": "check out my channel http://spam.example", "explain": True},
                           headers=AUTH)
        votes = explained.json()["predictions"][0]["lf_votes"]
        assert len(votes) == 20 and explained.json()["predictions"][0]["lf_votes_status"] == "done"
        batch = c.post("/predict", json={"texts": ["great song", "subscribe to me!!!", "love it"]})
        assert batch.status_code == 200 and len(batch.json()["predictions"]) == 3
        fb = _feedback(c, {"prediction_id": p["id"], "label": "spam"})
        assert fb.status_code == 201 and fb.json()["model_version"] == first and fb.headers["X-Model-Version"]
        assert _feedback(c, {"text": "a text nobody predicted", "label": "ham"}).status_code == 201
        models = c.get("/models").json()
        assert models["model_version"] == first and models["lineage"]["lfs"] and models["lineage"]["artifacts"]
        schema = c.get("/openapi.json").json()
        assert {"/predict", "/feedback", "/models", "/livez", "/readyz", "/admin/promote",
                "/predictions/{prediction_id}"} <= set(schema["paths"])
        # The background explainer fills in the same votes the inline path computed.
        deadline = time.monotonic() + 60
        while (logged := c.get(f"/predictions/{p['id']}").json())["lf_votes_status"] == "pending":
            assert time.monotonic() < deadline, "background LF votes never arrived"
            time.sleep(0.2)
        assert logged["lf_votes_status"] == "done" and logged["lf_votes"] == votes
        assert logged["explanation"] and set(logged["explanation"].values()) <= {"ham", "spam"}
        assert c.get("/predictions/no-such-id").status_code == 404
    with FeedbackLog(served_project["store"]) as log:
        row = log.get_prediction(p["id"])
    assert row["model_version"] == first and row["text_sha256"] == text_sha256("check out my channel http://spam.example")
    gold = gold_labels(served_project["store"], classes=("ham", "spam"))
    assert {"check out my channel http://spam.example": "spam", "a text nobody predicted": "ham"}.items() <= dict(
        zip(gold["text"], gold["label"])).items()
    assert list(gold.columns) == ["id", "text", "label"]


def test_refusals(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert _feedback(c, {"text": "x", "label": "ham"}, headers={}).status_code == 401
        wrong = _feedback(c, {"text": "x", "label": "ham"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        assert c.post("/admin/promote", json={"run_id": "x"}).status_code == 401
        big = c.post("/predict", json={"text": "spam " * (MAX_BODY // 4)})
        assert big.status_code == 413
        unknown = _feedback(c, {"text": "x", "label": "eggs"})
        assert unknown.status_code == 422 and "'ham' or 'spam'" in unknown.json()["message"]
        both = c.post("/predict", json={"text": "a", "texts": ["b"]})
        assert both.status_code == 422 and "exactly one" in both.json()["message"]
        assert c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert c.post("/predict", json={"texts": []}).status_code == 422
        surrogate = c.post("/predict", content=b'{"text": "a\\ud800b"}', headers={"content-type": "application/json"})
        assert surrogate.status_code == 422 and "unicode" in surrogate.json()["message"]
        no_key = c.post("/feedback", json={"text": "x", "label": "ham"}, headers=AUTH)
        assert no_key.status_code == 422 and "idempotency-key" in no_key.json()["message"].lower()
        assert _feedback(c, {"prediction_id": "no-such-id", "label": "ham"}).status_code == 404
        assert c.post("/admin/promote", json={"run_id": "no-such-run"}, headers=AUTH).status_code == 409


def test_idempotent_retry_stores_once(server, served_project):
    key, body = uuid.uuid4().hex, {"text": "retried text", "label": "spam"}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        answers = [_feedback(c, body, key) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 200, 200]
        assert len({a.json()["feedback_id"] for a in answers}) == 1 and answers[-1].json()["replayed"]
        assert _feedback(c, {**body, "label": "ham"}, key).status_code == 409
    with FeedbackLog(served_project["store"]) as log:
        assert log.read("SELECT count(*) AS n FROM feedback WHERE idempotency_key = ?", [key])[0]["n"] == 1


def test_in_process_app_keeps_only_text_hashes_by_default(served_project):
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app, hash_token

    settings = ServeSettings(config_path=str(CONFIG), overrides=tuple(served_project["overrides"]),
                             token_sha256=hash_token(TOKEN), lf_votes="off", alias="in-process-test")
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        r = c.post("/predict", json={"text": "private words"})
        assert r.status_code == 200 and r.json()["predictions"][0]["lf_votes"] is None
        assert r.json()["predictions"][0]["lf_votes_status"] == "off"
        pid = r.json()["predictions"][0]["id"]
        assert c.post("/feedback", json={"text": "private", "label": "ham"},
                      headers={**AUTH, "Idempotency-Key": uuid.uuid4().hex}).status_code == 201
    with FeedbackLog(served_project["store"]) as log:
        row = log.get_prediction(pid)
        assert row["text"] is None and row["text_sha256"] == text_sha256("private words")
        assert log.read("SELECT count(*) AS n FROM feedback WHERE text = 'private'")[0]["n"] == 0


def test_schemathesis_finds_no_failure(server, project_paths):
    pytest.importorskip("schemathesis")
    st = Path(sys.executable).parent / "st"
    # Every check: no server error, responses conform to the schema, schema-valid bodies are
    # accepted and invalid ones refused. An invalid body may also be refused for its size (413).
    (project_paths["root"] / "schemathesis.toml").write_text(
        '[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "404", "409", "413", "422"]\n')
    # Bounded: a few examples per operation. /admin/promote only ever sees unknown run ids (409).
    run = subprocess.run(
        # /ls (Label Studio's protocol) checks more than its schema can say, and a valid START_TRAINING
        # would retrain this project: tests/serve/test_ls_backend.py fuzzes it on a tiny project.
        [str(st), "run", server.url + "/openapi.json", "--checks", "all", "--max-examples", "10",
         "--exclude-path-regex", "^/ls",
         "--phases", "examples,coverage,fuzzing", "--header", f"Authorization: Bearer {TOKEN}", "--seed", "1"],
        capture_output=True, text=True, timeout=120, cwd=project_paths["root"],  # its report folder lands there
    )
    failures = run.stdout[run.stdout.find("FAILURES"):] if "FAILURES" in run.stdout else run.stdout[-3000:]
    assert run.returncode == 0, failures[:6000] + run.stderr[-2000:]


def _hammer(url: str, keys: list[str], acked: list[str], failures: list[str], label_of=lambda i: "ham") -> None:
    with httpx.Client(base_url=url, timeout=60) as c:
        for i, key in enumerate(keys):
            try:
                r = _feedback(c, {"text": f"load {key}", "label": label_of(i)}, key)
            except httpx.TransportError as exc:
                failures.append(f"transport: {exc!r}")
                return  # the server is gone (the crash test): stop, do not spin on refused connections
            if r.status_code == 201:
                acked.append(key)
            else:
                failures.append(f"{r.status_code}: {r.text}")


def _stored_keys(store, prefix: str) -> list[str]:
    """The idempotency keys stored under ``prefix`` (a list: a duplicate would show), on either backend."""
    with FeedbackLog(store) as log:
        return [r["idempotency_key"] for r in log.read("SELECT idempotency_key FROM feedback"
                                                        " WHERE idempotency_key LIKE ?", [prefix + "%"])]


def _stored_predictions(store, ids: list[str]) -> set[str]:
    with FeedbackLog(store) as log:
        return {r["id"] for r in log.read("SELECT id FROM predictions")} & set(ids)


def _predict_load(url: str, acked: list[str], failures: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as c:
        while True:
            try:
                r = c.post("/predict", json={"texts": ["check out my channel", "nice video"]})
            except httpx.TransportError:
                return  # the server is gone (the crash test)
            if r.status_code == 200:
                acked.extend(p["id"] for p in r.json()["predictions"])
            else:
                failures.append(f"{r.status_code}: {r.text}")


def kill_9_rounds(project: dict, store, rounds: int = 2) -> None:
    """``rounds`` times: start a 2-worker server on ``store`` (a SQLite path or a PostgreSQL URL),
    send feedback (4 threads) and predictions (2 threads), kill -9 every process mid-write; then
    every acknowledged feedback key and prediction id is stored, each key once."""
    for round_ in range(rounds):
        started = time.monotonic()
        srv = Server(project, workers=2, extra=("--no-lf-votes",))
        srv.wait_ready()
        print(f"crash round {round_}: server up in {time.monotonic() - started:.1f}s")
        prefix = f"crash{round_}-" + uuid.uuid4().hex[:8] + "-"
        acked: list[str] = []
        predicted: list[str] = []
        failures: list[str] = []
        keys = [f"{prefix}{i:05d}" for i in range(100_000)]
        threads = [threading.Thread(target=_hammer, args=(srv.url, keys[t::4], acked, failures), daemon=True)
                   for t in range(4)]
        threads += [threading.Thread(target=_predict_load, args=(srv.url, predicted, failures), daemon=True)
                    for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while (len(acked) < 100 * (round_ + 1) or not predicted) and time.monotonic() < deadline and not failures:
            time.sleep(0.02)
        srv.kill()  # SIGKILL to the supervisor and both workers, mid-write
        for t in threads:
            t.join(timeout=30)
        print(f"crash round {round_}: {len(acked)} feedback and {len(predicted)} predictions acknowledged"
              " before kill -9")
        assert len(acked) > 20 and predicted, failures[:3]
        if not isinstance(store, str):
            conn = sqlite3.connect(store)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                conn.close()
        stored = _stored_keys(store, prefix)
        assert set(acked) <= set(stored) and len(stored) == len(set(stored))
        assert _stored_predictions(store, predicted) == set(predicted)
        assert not [f for f in failures if "locked" in f]


def test_concurrent_feedback_all_stored(server, served_project):
    prefix = "conc-" + uuid.uuid4().hex[:8] + "-"
    keys = [f"{prefix}{i:05d}" for i in range(1000)]
    acked: list[str] = []
    failures: list[str] = []
    threads = [threading.Thread(target=_hammer, args=(server.url, keys[t::8], acked, failures)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(acked) == 1000
    assert set(_stored_keys(served_project["store"], prefix)) == set(acked)


def test_kill_9_loses_no_acknowledged_write(served_project):
    kill_9_rounds(served_project, served_project["store"])


def test_promote_under_load_fails_no_request(server, served_project):
    first, second = served_project["runs"]
    stop = threading.Event()
    statuses: Counter = Counter()
    versions: Counter = Counter()
    errors: list[str] = []
    mismatched: list[tuple] = []

    def load():
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while not stop.is_set():
                r = c.post("/predict", json={"texts": ["check out my channel", "nice video"]})
                statuses[r.status_code] += 1
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                versions[r.json()["model_version"]] += 1
                if r.json()["model_version"] != r.headers["X-Model-Version"]:
                    mismatched.append((r.json()["model_version"], r.headers["X-Model-Version"]))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/admin/promote", json={"run_id": second}, headers=AUTH)
            assert r.status_code == 200, r.text
            assert {k: r.json()[k] for k in ("model_version", "previous", "promoted")} == {
                "model_version": second, "previous": first, "promoted": True}
            # The other worker follows the alias; wait until answers name only the new version.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(c.get("/models").json()["model_version"] == second for _ in range(8)):
                    break
                time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, (statuses, errors[:3])
    assert mismatched == []
    assert set(versions) <= {first, second} and versions[second] > 0, versions
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.post("/admin/promote", json={"run_id": first}, headers=AUTH).json()["model_version"] == first


# --- artifacts that fail to load, tampered runs and the promotion gate, in-process -------------

def _tiny_app(config_path: Path, **settings):
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app, hash_token

    settings = {"lf_votes": "off", **settings}
    return TestClient(create_app(ServeSettings(config_path=str(config_path), token_sha256=hash_token(TOKEN),
                                               alias_poll_s=0.05, **settings)))


def _wait(client, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        ready = client.get("/readyz")
        if check(ready) or time.monotonic() > deadline:
            return ready
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_project_runs(tmp_path_factory):
    """A tiny project with a good run, a copy of it, a worse one, and one recorded run per way of failing to load."""
    import numpy as np

    from labeling import SklearnTextClassifier, load_dataset

    from ..conftest import break_end_model, record_model_as_run, tiny_project

    config_path = tiny_project(tmp_path_factory.mktemp("tiny_serving"))
    config = load_config(config_path)
    good = run_retrain(config).run_id
    train = load_dataset(config).train
    texts, y = train["text"].tolist(), np.asarray(train["label"])
    runs = {"good": good, "copy": record_model_as_run(config, good, SklearnTextClassifier(2).fit(texts, y), good + "-copy"),
            "worse": record_model_as_run(config, good, SklearnTextClassifier(2).fit(texts, 1 - y), good + "-worse")}
    named = {}
    for fault, record in (("not-a-zip", True), ("missing", True), ("wrong-key", True), ("rewritten", False)):
        runs[fault] = record_model_as_run(config, good, SklearnTextClassifier(2).fit(texts, y), f"{good}-{fault}")
        named[fault] = break_end_model(config, runs[fault], fault, record=record)
    return config_path, config, runs, named


@pytest.fixture
def tiny_runs(tiny_project_runs):
    _, config, runs, _ = tiny_project_runs
    with FeedbackLog(config.resolve(config.store)) as log:
        log.set_alias(runs["good"])  # else a server starts on the latest run, one of the broken ones
    return tiny_project_runs


def test_admin_promote_refuses_runs_that_cannot_load_with_409_naming_the_file(tiny_runs):
    config_path, config, runs, named = tiny_runs
    with _tiny_app(config_path) as c:
        assert _wait(c, lambda r: r.status_code == 200).json()["model_version"] == runs["good"]
        for fault, path in named.items():
            r = c.post("/admin/promote", json={"run_id": runs[fault]}, headers=AUTH)
            assert r.status_code == 409 and str(path) in r.json()["detail"], (fault, r.status_code, r.text)
            if fault == "rewritten":
                assert "recorded with the run" in r.json()["detail"]
        ok = c.post("/predict", json={"text": "check out my channel!"})
        assert ok.status_code == 200 and ok.json()["model_version"] == runs["good"]
    with FeedbackLog(config.resolve(config.store)) as log:
        assert log.get_alias() == runs["good"]  # no refused run ever became the alias


def test_the_model_loader_survives_a_bad_alias_and_readyz_names_what_is_served(tiny_runs):
    config_path, config, runs, named = tiny_runs
    with _tiny_app(config_path) as c, FeedbackLog(config.resolve(config.store)) as log:
        assert _wait(c, lambda r: r.status_code == 200).json()["model_version"] == runs["good"]
        for fault, path in named.items():
            log.set_alias(runs[fault])  # as another worker or the CLI could
            ready = _wait(c, lambda r: str(path) in r.json()["detail"])
            assert ready.status_code == 200 and ready.json()["model_version"] == runs["good"], ready.json()
            assert runs[fault] in ready.json()["detail"] and f"still serving {runs['good']}" in ready.json()["detail"]
            assert c.post("/predict", json={"text": "love this song"}).json()["model_version"] == runs["good"]
        log.set_alias(runs["copy"])  # the follower is alive: the next good alias is served
        ready = _wait(c, lambda r: r.json()["model_version"] == runs["copy"])
        assert ready.json() == {"status": "ready", "model_version": runs["copy"], "detail": "",
                                "worker": c.get("/livez").json()["worker"]}


def test_a_server_started_on_a_bad_alias_is_not_ready_until_a_good_run_is_promoted(tiny_runs):
    config_path, config, runs, named = tiny_runs
    with FeedbackLog(config.resolve(config.store)) as log:
        log.set_alias(runs["not-a-zip"])
    with _tiny_app(config_path) as c:
        ready = _wait(c, lambda r: r.json()["detail"] != "")
        assert ready.status_code == 503 and ready.json()["model_version"] == ""
        assert str(named["not-a-zip"]) in ready.json()["detail"] and "BadZipFile" in ready.json()["detail"]
        assert c.post("/predict", json={"text": "hi"}).status_code == 503
        promoted = c.post("/admin/promote", json={"run_id": runs["good"]}, headers=AUTH)
        assert promoted.status_code == 200 and promoted.json()["model_version"] == runs["good"]
        assert _wait(c, lambda r: r.status_code == 200).json() == {"status": "ready", "model_version": runs["good"],
                                                                   "detail": "", "worker": ready.json()["worker"]}
        assert c.post("/predict", json={"text": "hi"}).json()["model_version"] == runs["good"]


def test_admin_promote_goes_through_the_gate_and_a_force_is_recorded(tiny_runs):
    from labeling.pipeline.registry import CHAMPION, Registry

    config_path, config, runs, _ = tiny_runs
    with _tiny_app(config_path) as c:
        _wait(c, lambda r: r.status_code == 200)
        again = c.post("/admin/promote", json={"run_id": runs["good"]}, headers=AUTH)
        assert again.json() == {"model_version": runs["good"], "previous": runs["good"], "promoted": False,
                                "forced": False, "reason": "already champion"}
        passing = c.post("/admin/promote", json={"run_id": runs["copy"]}, headers=AUTH)
        assert passing.status_code == 200 and passing.json()["promoted"] and not passing.json()["forced"]
        # the copy was recorded without test predictions, so it is run on the test rows, and said
        assert passing.json()["reason"] == ("candidate accuracy 1.0000 >= champion 1.0000; candidate re-scored"
                                            " (no recorded predictions for these test rows)")
        refused = c.post("/admin/promote", json={"run_id": runs["worse"]}, headers=AUTH)
        assert refused.status_code == 409 and "refused: candidate accuracy" in refused.json()["detail"]
        assert c.get("/livez").json()["model_version"] == runs["copy"]
        forced = c.post("/admin/promote", json={"run_id": runs["worse"], "force_reason": "rollout test"}, headers=AUTH)
        assert forced.status_code == 200 and forced.json()["forced"] and forced.json()["model_version"] == runs["worse"]
    with Registry(config.resolve(config.store)) as registry:
        assert registry.get(CHAMPION) == runs["worse"]
        last = registry.decisions(runs["worse"])[-1]
        assert (last["forced"], last["note"], last["actor"]) == (1, "rollout test", "POST /admin/promote from testclient")
        assert registry.history(CHAMPION)[-1]["action"] == "forced"


# -- the serving token (issue 12.3) ---------------------------------------------


@pytest.mark.parametrize("token, problem", [
    ("short-" + "x1y2z3", "characters long"),
    ("ab" * 20, "distinct characters"),
    ("change-me-" + "0123456789abcdef0123456789", "placeholder 'change-me'"),
    ("MyPassword" + "0123456789abcdefghijklmnop", "placeholder 'password'"),
])
def test_weak_tokens_are_refused_with_how_to_make_one(token, problem):
    from labeling.errors import WeakTokenError
    from labeling.serve.app import check_token_strength

    with pytest.raises(WeakTokenError, match=problem) as caught:
        check_token_strength(token)
    assert "secrets.token_urlsafe(32)" in str(caught.value) and "--token-file" in str(caught.value)
    check_token_strength(TOKEN)  # the tests' own token: 43 characters, random


def test_serve_command_refuses_the_readme_placeholder_token(tmp_path):
    # The README used to say LABELING_SERVE_TOKEN=change-me; a file with it is refused the same way.
    env = {**os.environ, "LABELING_SERVE_TOKEN": "change-me"}
    (tmp_path / "weak").write_text("change-me\n")
    for cmd_env, extra in ((env, []), ({k: v for k, v in env.items() if k != "LABELING_SERVE_TOKEN"},
                                       ["--token-file", str(tmp_path / "weak")])):
        run = subprocess.run([sys.executable, "-m", "pipelines.serve", "--config", str(CONFIG), "--port", "1", *extra],
                             cwd=REPO, env=cmd_env, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 2, run.stderr
        assert "too weak" in run.stderr and "secrets.token_urlsafe(32)" in run.stderr


def test_token_not_in_any_process_environment(server):
    # The module's server got its token from $LABELING_SERVE_TOKEN: supervisor, workers and
    # LF-votes processes must all have it scrubbed from /proc/<pid>/environ.
    processes = server.processes()
    assert len(server.lf_vote_processes()) == 2 and len(processes) >= 5, "\n".join(f"{p} {v}" for p, v in processes.items())
    for pid in processes:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert TOKEN.encode() not in environ and b"LABELING_SERVE_TOKEN" not in environ, processes[pid]
    with httpx.Client(base_url=server.url, timeout=30) as c:  # and the token still works
        assert _feedback(c, {"text": "token check", "label": "ham"}).status_code == 201


# -- abuse bounds (issue 12.5) ----------------------------------------------------


def test_explain_needs_the_token_and_is_capped(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        anonymous = c.post("/predict", json={"text": "check out my channel", "explain": True})
        assert anonymous.status_code == 401
        wrong = c.post("/predict", json={"text": "x", "explain": True}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        too_many = c.post("/predict", json={"texts": ["great song"] * 101, "explain": True}, headers=AUTH)
        assert too_many.status_code == 422 and "explain is limited to 100 texts" in too_many.json()["message"]
        assert c.post("/predict", json={"texts": ["great song"] * 101}).status_code == 200  # no explain: open
        capped = c.post("/predict", json={"texts": ["great song"] * 100, "explain": True}, headers=AUTH)
        assert capped.status_code == 200
        assert {p["lf_votes_status"] for p in capped.json()["predictions"]} == {"done"}


def _closed_within(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reads return b"")."""
    sock.settimeout(limit)
    started = time.monotonic()
    while True:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except ConnectionResetError:
            return time.monotonic() - started
        except TimeoutError:
            raise AssertionError(f"the server still held the connection after {limit} s") from None


def test_half_sent_requests_are_closed_and_token_read_from_stdin(served_project):
    srv = Server(served_project, workers=1, extra=("--no-lf-votes", "--request-read-timeout-s", "1"),
                 ready_path="/livez", token_via="stdin")
    try:
        srv.wait_ready()
        halves = {
            "nothing sent": b"",
            "half the headers": b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
            "headers, half the body": (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 40\r\n\r\n{\"text\": \"hal"),
        }
        socks = {}
        for name, data in halves.items():
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            sock.sendall(data)
            socks[name] = sock
        try:
            for name, sock in socks.items():
                waited = _closed_within(sock, 5.0)
                assert waited < 3.0, (name, waited)  # 1 s deadline, counted from the connection
        finally:
            for sock in socks.values():
                sock.close()
        with httpx.Client(base_url=srv.url, timeout=30) as c:  # whole requests still go through; the token came in on stdin
            assert _feedback(c, {"text": "stdin token", "label": "ham"}).status_code == 201
            assert _feedback(c, {"text": "stdin token", "label": "ham"}, headers={}).status_code == 401
    finally:
        srv.stop()


def test_store_is_private(served_project):
    for path in (served_project["store"], Path(str(served_project["store"]) + "-wal")):
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


# -- LF votes across restarts, and a bounded LF-votes process (issue 12.5) ---------


def _statuses(store: Path, ids: list[str]) -> dict[str, tuple]:
    conn = sqlite3.connect(store)
    try:
        marks = ",".join("?" * len(ids))
        return {pid: (status, votes, error) for pid, status, votes, error in conn.execute(
            f"SELECT id, lf_votes_status, lf_votes, lf_votes_error FROM predictions WHERE id IN ({marks})", ids)}
    finally:
        conn.close()


def test_pending_lf_votes_survive_a_restart_and_the_lf_process_is_recycled(served_project):
    store = served_project["store"]
    first = Server(served_project, workers=1, extra=("--store-text",))
    try:
        first.wait_ready()
        (explainer,) = first.lf_vote_processes()
        os.kill(explainer, signal.SIGSTOP)  # the LF votes stay pending, for sure, until the crash
        with httpx.Client(base_url=first.url, timeout=30) as c:
            ids = [p["id"] for i in range(6) for p in c.post(
                "/predict", json={"texts": [f"restart text {i}.{j} check out my channel" for j in range(5)]}
            ).json()["predictions"]]
        assert {s for s, _, _ in _statuses(store, ids).values()} == {"pending"}
    finally:
        first.kill()
    # A prediction of a hash-only server, left pending: its votes cannot be computed any more.
    with FeedbackLog(store) as log:
        from labeling.serve.feedback import PredictionRecord, utc_now

        log.log_predictions([PredictionRecord(id="hash-only-" + uuid.uuid4().hex, created_at=utc_now(),
                                              model_version="v", probabilities=(0.5, 0.5), label=0, lf_votes=None,
                                              text=None, text_sha256=text_sha256("gone"), lf_votes_status="pending")])
        hashed = log.read("SELECT id FROM predictions WHERE id LIKE 'hash-only-%' ORDER BY rowid DESC LIMIT 1")[0]["id"]
    second = Server(served_project, workers=1, extra=("--store-text", "--lf-votes-max-texts", "10"))
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, timeout=30) as c:
            more = [c.post("/predict", json={"text": f"fresh words {i} zq{i}x"}).json()["predictions"][0]["id"]
                    for i in range(25)]
            deadline = time.monotonic() + 90
            while {s for s, _, _ in _statuses(store, ids + more).values()} != {"done"}:
                assert time.monotonic() < deadline, Counter(s for s, _, _ in _statuses(store, ids + more).values())
                time.sleep(0.2)
            # 30 re-queued + 25 new texts, a fresh process after every >= 10 texts: two handovers
            # at least (the second is seen once the process that wrote the last votes exited).
            while (restarts := c.get("/models").json()["lf_votes_restarts"]) < 2:
                assert time.monotonic() < deadline, restarts
                time.sleep(0.2)
        assert all(len(json.loads(v)) == 20 for _, v, _ in _statuses(store, ids + more).values())
        status, votes, error = _statuses(store, [hashed])[hashed]
        assert status == "abandoned" and votes is None and "--store-text" in error
    finally:
        second.stop()


# -- LF votes that cannot be computed (issue 17.2) ---------------------------------


def test_unavailable_lf_votes_are_logged_reported_and_never_done(served_project):
    missing = "no_such_spacy_pipeline_" + uuid.uuid4().hex[:6]
    srv = Server(served_project, workers=1, env={"LABELING_SPACY_MODEL": missing})
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            ready = c.get("/readyz").json()
            assert ready["status"] == "degraded" and missing in ready["detail"], ready
            background = c.post("/predict", json={"text": "check out my channel"}).json()["predictions"][0]
            assert background["lf_votes_status"] == "error" and missing in background["lf_votes_error"]
            explained = c.post("/predict", json={"text": "check out my channel", "explain": True}, headers=AUTH)
            p = explained.json()["predictions"][0]
            assert p["lf_votes"] is None and p["lf_votes_status"] == "error" and missing in p["lf_votes_error"]
            logged = c.get(f"/predictions/{background['id']}").json()
            assert logged["lf_votes_status"] == "error" and missing in logged["lf_votes_error"]
    finally:
        srv.stop()
    log = srv.log_path.read_text()
    assert f"spaCy pipeline '{missing}' (from LABELING_SPACY_MODEL) is not installed" in log, log[-2000:]


# --- issue 23: bad input answers stay small, headers are capped, children die, retrain under load ----


def test_422_echoes_at_most_200_characters_of_an_input_and_json_errors_name_line_and_column(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        # Non-ASCII: the 422's ASCII escaping turns each of these characters into 6 bytes.
        too_many = c.post("/predict", json={"texts": ["é"] * 1001})
        long_text = c.post("/predict", json={"text": "ü" * 6000})
        for r in (too_many, long_text):
            assert r.status_code == 422 and len(r.content) < 3000, len(r.content)
            echoed = [e["input"] if isinstance(e["input"], str) else json.dumps(e["input"]) for e in r.json()["detail"]]
            assert max(map(len, echoed)) <= 200
        assert "at most 1000" in too_many.json()["message"]
        assert long_text.json()["detail"][0]["input_clipped_to_chars"] == 200
        bad = b'{"texts": ["a",\n  "b"\n  "c"]}'
        with pytest.raises(json.JSONDecodeError) as parse:
            json.loads(bad)
        r = c.post("/predict", content=bad, headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.json()["message"] == f"invalid JSON at line 3 column 3: {parse.value.msg}" == (
            f"invalid JSON at line {parse.value.lineno} column {parse.value.colno}: {parse.value.msg}")


def _raw_get(url: str, header_bytes: int) -> bytes:
    """GET /livez with one header of ``header_bytes``; what came back ("" when the server reset us)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * header_bytes + b"\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
            return answer
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_request_headers_over_64_kb_are_answered_431(server):
    assert _raw_get(server.url, 60_000).startswith(b"HTTP/1.1 200")
    assert _raw_get(server.url, 100_000).startswith(b"HTTP/1.1 431")
    started = time.monotonic()
    huge = _raw_get(server.url, 40_000_000)  # past what is drained: answered 431, or cut off
    assert time.monotonic() - started < 8 and (huge == b"" or huge.startswith(b"HTTP/1.1 431"))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/livez").status_code == 200


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_mid_batch_leaves_no_child_and_a_free_port(served_project):
    """kill -9 of the supervisor of a ``--workers 2`` server while its LF-votes processes have a
    backlog: its workers, LF-votes processes and resource tracker are gone within 5 s, nothing
    answers on the port, and a restart on that port serves."""
    srv = Server(served_project, workers=2, extra=("--max-body-bytes", "2000000"))
    try:
        started = time.monotonic()
        srv.wait_ready()
        print(f"kill -9 test: server ready in {time.monotonic() - started:.1f} s")
        texts = [f"check out my channel {i}, subscribe and win a prize at www.example.com" for i in range(1000)]
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            for _ in range(2):  # ~10 ms of LF CPU a text: a backlog of seconds for the LF-votes processes
                assert c.post("/predict", json={"texts": texts}).status_code == 200
        children = psutil.Process(srv.proc.pid).children(recursive=True)
        lf_votes = srv.lf_vote_processes()
        assert len(lf_votes) == 2 and set(lf_votes) < {p.pid for p in children}
        os.kill(srv.proc.pid, signal.SIGKILL)  # the supervisor only: the kernel does not kill its children
        srv.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not all(_gone(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [(p.pid, p.cmdline()[-3:]) for p in children if not _gone(p)] == []
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", srv.port)) != 0  # nothing listens any more
    finally:
        srv.kill()
    # One worker: what is checked is that the port can be bound again, not how many workers serve.
    restart = Server(served_project, workers=1, extra=("--no-lf-votes",), ready_path="/livez", port=srv.port)
    try:
        restart.wait_ready(timeout=120)
    finally:
        restart.stop()


@pytest.mark.slow  # two retrains of the example: ~50-75 s; tests/pipeline/test_store.py checks the mechanism fast
def test_retrain_while_serving_under_load_records_every_run(server, served_project):
    """Two retrains on the store a server writes to under 3 threads of predictions and feedback:
    every run records; no request and no retrain meets ``database is locked``."""
    stop = threading.Event()
    statuses: Counter = Counter()
    problems: list[str] = []

    def load(thread: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            n = 0
            while not stop.is_set():
                n += 1
                r = c.post("/predict", json={"texts": [f"check out my channel {thread}-{n}", "nice song"]})
                statuses[r.status_code] += 1
                if r.status_code != 200:
                    problems.append(r.text)
                    continue
                fb = _feedback(c, {"prediction_id": r.json()["predictions"][1]["id"], "label": "ham"})
                statuses[fb.status_code] += 1
                if fb.status_code != 201:
                    problems.append(fb.text)

    threads = [threading.Thread(target=load, args=(t,), daemon=True) for t in range(3)]
    for t in threads:
        t.start()
    config = load_config(CONFIG, [*served_project["overrides"], "label_model.type=majority_vote",
                                  "end_model.type=sklearn"])
    try:
        runs = [run_retrain(config).run_id for _ in range(2)]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    with RunStore(served_project["store"]) as store:
        assert [store.get_run(r)["id"] for r in runs] == runs
    assert problems == [] and statuses[200] > 10 and statuses[201] > 10, (statuses, problems[:3])


# -- the served run's own LFs; --run-id pins without moving an alias; /models names only a real alias (issue 23) --


# the tiny project's two weak LFs, copied so that the test can edit them
OWN_LFS = (Path(__file__).parents[1] / "fixtures" / "lf_modules" / "youtube_weak.py").read_text()
ADDED_LF = '''

@labeling_function()
def weak_channel(x):
    return SPAM if "channel" in x.text.lower() else ABSTAIN
'''


@pytest.fixture(scope="module")
def own_lf_project(tmp_path_factory):
    """The tiny project with its LF module copied into a folder of its own (a package name no other
    test imports), so that the test can edit it; one recorded run."""
    from ..conftest import FIXTURES, tiny_project

    folder = tmp_path_factory.mktemp("own_lfs")
    package = f"own_lfs_{uuid.uuid4().hex[:8]}"
    (folder / "lfroot" / package).mkdir(parents=True)
    (folder / "lfroot" / package / "__init__.py").write_text("")
    module = folder / "lfroot" / package / "spam_lfs.py"
    module.write_text(OWN_LFS)
    config_path = tiny_project(folder)
    config_path.write_text(config_path.read_text().replace(str(FIXTURES), str(folder / "lfroot"))
                           .replace("lf_modules.youtube_weak", f"{package}.spam_lfs"))
    first = run_retrain(load_config(config_path)).run_id
    return {"root": folder, "overrides": [], "config": config_path, "module": module, "package": package,
            "first": first}


def _explained(c: httpx.Client, text: str) -> dict:
    r = c.post("/predict", json={"text": text, "explain": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def _logged_votes(c: httpx.Client, text: str) -> dict:
    """A background prediction of ``text`` once its LF votes are in the log."""
    pid = c.post("/predict", json={"text": text}).json()["predictions"][0]["id"]
    deadline = time.monotonic() + 60
    while (logged := c.get(f"/predictions/{pid}").json())["lf_votes_status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return logged


def test_the_served_run_votes_with_its_own_lfs_through_edits_and_a_live_swap(own_lf_project):
    """Row 1 of issue 23, end to end: an LF edited on disk after the run changes no served vote;
    a run with another LF set, promoted while serving, brings its LFs with it."""
    project, module = own_lf_project, own_lf_project["module"]
    config = load_config(project["config"])
    module.write_text(OWN_LFS.replace('"song" in', '"channel" in'))  # edited after the run, never retrained
    srv = Server(project, workers=1, extra=("--store-text",))
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            assert c.get("/readyz").json()["status"] == "ready"
            before = _explained(c, "what a song")
            assert before["lf_votes"] == [0, -1] and before["lf_votes_status"] == "done", before
            assert _explained(c, "my channel!")["lf_votes"] == [-1, 1]  # the edited LF would vote 0 here
            logged = _logged_votes(c, "what a song")
            assert (logged["lf_votes"], logged["explanation"]) == ([0, -1], {"weak_song": "ham"})
            assert logged["model_version"] == project["first"]
            # the working tree gains an LF (and keeps the edit); the new run is promoted while serving
            module.write_text(OWN_LFS.replace('"song" in', '"channel" in') + ADDED_LF)
            for name in [n for n in sys.modules if n.startswith(project["package"])]:
                del sys.modules[name]  # this process imported the module for the first run
            second = run_retrain(config).run_id
            promoted = c.post("/admin/promote", json={"run_id": second, "force_reason": "issue 23 test"}, headers=AUTH)
            assert promoted.status_code == 200 and promoted.json()["model_version"] == second, promoted.text
            after = _explained(c, "what a song")
            assert after["lf_votes"] == [-1, -1, -1] and after["lf_votes_status"] == "done", after
            assert _explained(c, "my channel!")["lf_votes"] == [0, 1, 1]
            logged = _logged_votes(c, "my channel!")
            assert logged["model_version"] == second and logged["lf_votes"] == [0, 1, 1]
            assert logged["explanation"] == {"weak_song": "ham", "weak_exclamation": "spam", "weak_channel": "spam"}
            assert [lf["name"] for lf in c.get("/models").json()["lineage"]["lfs"]] == [
                "weak_song", "weak_exclamation", "weak_channel"]
            old = c.get(f"/predictions/{before['id']}").json()  # the first run's votes, under its names
            assert old["model_version"] == project["first"] and old["explanation"] == {"weak_song": "ham"}
    finally:
        srv.stop()


@pytest.fixture
def unaliased_tiny_run(tmp_path):
    """A fresh tiny project with one run (gated, not promoted: no production alias) and a worse one."""
    import numpy as np

    from labeling import SklearnTextClassifier, load_dataset

    from ..conftest import record_model_as_run, tiny_project

    config_path = tiny_project(tmp_path)
    config = load_config(config_path)
    good = run_retrain(config).run_id
    train = load_dataset(config).train
    worse = record_model_as_run(config, good, SklearnTextClassifier(2).fit(train["text"].tolist(),
                                                                          1 - np.asarray(train["label"])), good + "-w")
    return config_path, config, good, worse


def test_models_names_the_alias_only_when_it_exists(unaliased_tiny_run):
    """Row 7 of issue 23: a server that fell back to the latest run says so, not "production"."""
    config_path, config, good, worse = unaliased_tiny_run
    with FeedbackLog(config.resolve(config.store)) as log:
        assert log.get_alias() is None
        latest = log.latest_run_id()
    with _tiny_app(config_path) as c, FeedbackLog(config.resolve(config.store)) as log:
        _wait(c, lambda r: r.status_code == 200)
        models = c.get("/models").json()
        assert (models["model_version"], models["alias"]) == (latest, "latest run (no alias)")
        log.set_alias(good)
        _wait(c, lambda r: r.json()["model_version"] == good)
        deadline = time.monotonic() + 10
        while (models := c.get("/models").json())["alias"] != "production":
            assert time.monotonic() < deadline, models["alias"]
            time.sleep(0.05)
        assert models["model_version"] == good


def test_serve_run_id_serves_that_run_and_moves_no_alias(unaliased_tiny_run, capsys):
    """Row 6 of issue 23: --run-id pins the run it names; no alias moves, so the gate cannot be skipped."""
    from labeling.cli import main
    from labeling.pipeline.registry import CHAMPION, Registry

    config_path, config, good, worse = unaliased_tiny_run
    with Registry(config.resolve(config.store)) as registry:
        registry.set(CHAMPION, good)
        history = registry.history()
    with _tiny_app(config_path, run_id=worse) as c:
        ready = _wait(c, lambda r: r.status_code == 200)
        assert ready.json()["model_version"] == worse
        assert c.post("/predict", json={"text": "love this song"}).json()["model_version"] == worse
        models = c.get("/models").json()
        assert (models["model_version"], models["alias"]) == (worse, "pinned by --run-id (no alias)")
        refused = c.post("/admin/promote", json={"run_id": good}, headers=AUTH)
        assert refused.status_code == 409 and "pinned by --run-id" in refused.json()["detail"]
        time.sleep(0.2)  # a few alias polls: a pinned server follows no alias
        assert c.get("/livez").json()["model_version"] == worse
    with Registry(config.resolve(config.store)) as registry:
        assert registry.get(CHAMPION) == good and registry.history() == history
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "follows and moves no alias" in " ".join(capsys.readouterr().out.split())


def test_a_run_whose_lfs_cannot_be_loaded_says_so_and_computes_no_votes(tiny_runs):
    """Row 1 of issue 23: a run recorded without its LFs is served, but no other LFs vote for it."""
    config_path, config, runs, _ = tiny_runs
    with FeedbackLog(config.resolve(config.store)) as log:
        log.set_alias(runs["copy"])  # recorded (by conftest.record_model_as_run) without its LFs
    try:
        with _tiny_app(config_path, lf_votes="inline") as c, FeedbackLog(config.resolve(config.store)) as log:
            ready = _wait(c, lambda r: r.status_code == 200).json()
            assert (ready["status"], ready["lf_votes"], ready["model_version"]) == ("degraded", "unavailable", runs["copy"])
            assert f"run {runs['copy']} was recorded without its LFs" in ready["detail"]
            p = c.post("/predict", json={"text": "love this song"}).json()["predictions"][0]
            assert p["lf_votes"] is None and p["lf_votes_status"] == "error"
            assert "recorded without its LFs" in p["lf_votes_error"]
            log.set_alias(runs["good"])  # its LFs were saved with it: the swap brings them
            ready = _wait(c, lambda r: r.json()["model_version"] == runs["good"]).json()
            assert ready["status"] == "ready" and "lf_votes" not in ready
            p = c.post("/predict", json={"text": "love this song"}).json()["predictions"][0]
            assert (p["lf_votes"], p["lf_votes_status"]) == ([0, -1], "done")
    finally:
        with FeedbackLog(config.resolve(config.store)) as log:
            log.set_alias(runs["good"])


# --- the served predictor (issue 25): what retrain evaluated is what /predict answers ---------

def test_a_run_serving_the_label_model_backoff_answers_over_http_as_its_evaluation(tmp_path):
    import numpy as np

    from labeling import load_dataset
    from labeling.pipeline.predictions import load_test_predictions

    from ..conftest import tiny_project

    config_path = tiny_project(tmp_path)
    overrides = ['serving.predictor="label_model_backoff"']
    config = load_config(config_path, overrides)
    result = run_retrain(config)
    served = result.end_model["served"]
    assert (served["predictor"], served["pinned"], served["needs_lfs"]) == ("label_model_backoff", True, True)
    test = load_dataset(config).test
    with RunStore(config.resolve(config.store)) as store:
        recorded = load_test_predictions(store.get_run(result.run_id))
    srv = Server({"root": tmp_path, "overrides": overrides, "config": config_path}, workers=1)
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            body = c.post("/predict", json={"texts": test["text"].tolist()}).json()
            single = c.post("/predict", json={"text": test["text"].iloc[0]}).json()
    finally:
        srv.stop()
    assert body["predictor"] == single["predictor"] == "label_model_backoff"
    assert {p["predictor"] for p in body["predictions"]} == {"label_model_backoff"}
    # the LF votes were computed to answer, so they are logged with the answer
    assert {p["lf_votes_status"] for p in body["predictions"]} == {"done"}
    probs = np.array([[p["probabilities"][c] for c in config.classes] for p in body["predictions"]])
    np.testing.assert_allclose(probs, recorded.served, atol=1e-5)
    np.testing.assert_allclose(list(single["predictions"][0]["probabilities"].values()), recorded.served[0], atol=1e-5)
    labels = np.array([config.classes.index(p["label"]) for p in body["predictions"]])
    assert float((labels == test["label"].to_numpy()).mean()) == pytest.approx(result.metric("served"))


def _schema_project(tmp_path: Path) -> tuple[Path, str]:
    """The tiny project with its own store and a copy of its LF module (a schema change rewrites
    it), retrained once: (project TOML, run id)."""
    from ..conftest import FIXTURES, tiny_project

    project = tiny_project(tmp_path / "p")
    shutil.copytree(FIXTURES / "lf_modules", tmp_path / "p" / "lf_modules")
    project.write_text(project.read_text().replace(f'root = "{FIXTURES}"', 'root = "."')
                       .replace("seed = 1", 'seed = 1\nstore = "store.db"\nartifacts = "artifacts"'))
    return project, run_retrain(load_config(project)).run_id


def test_after_a_schema_change_feedback_maps_renamed_classes_refuses_gone_ones_readyz_and_monitor_say_older(
        tmp_path):
    from labeling.cli import main

    project, run_id = _schema_project(tmp_path)
    with _tiny_app(project) as running:  # started before the changes: it says it must be restarted
        assert _wait(running, lambda r: r.status_code == 200).status_code == 200
        for change in (["rename", "ham", "legit"], ["add", "other"], ["retire", "other", "--yes"]):
            assert main(["schema", *change, "--config", str(project)]) == 0
        stale = running.get("/readyz").json()["detail"]
        assert "this server's classes ['ham', 'spam'] are older than the project's label schema" in stale
        assert "restart it" in stale
    with _tiny_app(project) as client:
        ready = _wait(client, lambda r: r.status_code == 200)
        assert ready.json()["model_version"] == run_id
        assert f"served run {run_id} has label schema" in ready.json()["detail"] and "older" in ready.json()["detail"]
        headers = {**AUTH, "Idempotency-Key": "schema-key-1"}
        mapped = client.post("/feedback", json={"text": "a song", "label": "ham"}, headers=headers)
        assert mapped.status_code == 201 and mapped.json()["label"] == "legit"
        for label, says in (("other", "'other' was retired (retire other)"), ("zzz", "'zzz' is not in label schema")):
            refused = client.post("/feedback", json={"text": "x", "label": label},
                                  headers={**AUTH, "Idempotency-Key": f"schema-key-{label}"})
            assert refused.status_code == 422 and says in refused.json()["message"], refused.json()
            assert "label schema" in refused.json()["message"] and "label" in refused.json()["message"]
        for n in range(2):  # a class outside the schema: kept and counted, never trained on
            other = client.post("/feedback", json={"text": f"buy crypto {n}", "label": "other: crypto"},
                                headers={**AUTH, "Idempotency-Key": f"schema-other-{n}"})
            assert other.status_code == 201 and other.json()["label"] == "other: crypto"
        empty = client.post("/feedback", json={"text": "x", "label": "other: "},
                            headers={**AUTH, "Idempotency-Key": "schema-other-empty"})
        assert empty.status_code == 422 and "needs the name" in empty.json()["message"]
    from labeling.serve.monitor import check_drift
    from labeling.store.serving import gold_labels

    config = load_config(project)
    report = check_drift(config.resolve(config.store), config.monitor, run_id, project=config.name)
    assert any(f"run {run_id} has label schema" in n and "older than the project's" in n for n in report.notes)
    assert report.other_labels == {"crypto": 2} and "outside the schema (other: <name>): crypto 2" in report.format()
    assert (gold_labels(config.resolve(config.store))["label"] >= 0).all()


def test_a_run_of_an_older_schema_answers_in_the_current_classes_or_says_which_class_it_cannot_map(tmp_path):
    """After ``add``, the older run's probabilities are given in the current classes (the new
    class 0) and logged under the current schema; after ``retire`` of a class it predicts, it is
    not served, and /readyz names the class."""
    from labeling.cli import main
    from labeling.store.serving import FeedbackLog

    project, run_id = _schema_project(tmp_path)
    assert main(["schema", "add", "other", "--config", str(project)]) == 0
    with _tiny_app(project) as client:
        ready = _wait(client, lambda r: r.status_code == 200)
        assert ready.json()["model_version"] == run_id
        answer = client.post("/predict", json={"text": "check out my channel"}).json()["predictions"][0]
        assert set(answer["probabilities"]) == {"ham", "spam", "other"} and answer["probabilities"]["other"] == 0
        with FeedbackLog(tmp_path / "p" / "store.db") as log:
            current = log.label_schema(load_config(project).name)
            logged = log.get_prediction(answer["id"])
        assert logged["schema_version"] == current["version"]
    assert main(["schema", "retire", "spam", "--yes", "--config", str(project)]) == 0
    with _tiny_app(project) as client:
        refused = _wait(client, lambda r: "no one current class" in r.text, timeout=30)
        assert refused.status_code == 503 and "'spam' (" in refused.text and "retrain and promote" in refused.text
