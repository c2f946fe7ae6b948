"""Our server as the ML backend of a real Label Studio 1.23.2: connect, predictions on every
task, answers arriving as gold through webhooks, Start Training, predict-all."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from labeling import load_config, run_retrain
from labeling.review.gold import GoldStore
from labeling.review.jobs import connect_backend, predict_all
from labeling.review.label_studio import LabelStudioReview, choice_result

from ..conftest import tiny_project
from ..serve.test_ls_backend import serve_project

N_TASKS = 200
N_ANSWERS = 20


def _until(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def backend_server(tmp_path_factory):
    """A tiny project with one run, served by a real uvicorn on 127.0.0.1: ``(url, config)``."""
    path = tiny_project(tmp_path_factory.mktemp("ls_connect"))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("[promotion]\nauto = true\n")  # Start Training's run is promoted when the gate passes
    config = load_config(path)
    run_retrain(config)
    with serve_project(path) as url:
        yield url, config


def _gold(config) -> dict[str, tuple[int, int]]:
    with GoldStore(config.resolve(config.store)) as store:
        return {r["task_key"]: (r["annotation_id"], r["label"]) for r in store.conn.read(
            "SELECT task_key, annotation_id, label FROM gold_labels")}


def test_label_studio_connects_predicts_sends_answers_and_trains(label_studio, backend_server):
    ls_url, key = label_studio
    url, config = backend_server
    review = LabelStudioReview(ls_url, key, title=f"ls-backend-{secrets.token_hex(4)}", classes=config.classes)
    pid = review.ensure_project()
    texts = [f"check out my channel {i}!" if i % 2 else f"love this song {i}" for i in range(N_TASKS)]
    review.client.projects.import_tasks(pid, request=[{"text": t, "lf_votes": ""} for t in texts])

    connected = connect_backend(review, url + "/ls/")
    assert connected["state"] == "CO", connected
    again = connect_backend(review, url + "/ls")  # idempotent: the same URL reuses the connection
    assert again["reused"] and again["id"] == connected["id"]
    assert len(review.client.ml.list(project=pid)) == 1

    with httpx.Client(base_url=url, trust_env=False, timeout=60) as http:
        version = http.post("/ls/setup", json={}).json()["model_version"]
        started = time.monotonic()
        # Label Studio saves these one by one: 65 s for 200 tasks on a loaded 2-core machine
        review.client.actions.create(id="retrieve_tasks_predictions", project=pid,
                                     selected_items={"all": True, "excluded": []},
                                     request_options={"timeout_in_seconds": 300})
        retrieve_s = time.monotonic() - started
        tasks = {int(t.id): t.model_dump() for t in review.client.tasks.list(project=pid, fields="all", page_size=500)}
        assert len(tasks) == N_TASKS and review.tasks_without_prediction(version) == {}
        served = http.post("/predict", json={"texts": texts}).json()["predictions"]
        by_text = {t: p["label"] for t, p in zip(texts, served)}
        for task in tasks.values():
            [prediction] = [p for p in task["predictions"] if p["model_version"] == version]
            assert prediction["result"][0]["value"]["choices"] == [by_text[task["data"]["text"]]]
            assert "LF votes:" in prediction["result"][0]["meta"]["text"][0]
        print(f"retrieve_tasks_predictions of {N_TASKS} tasks: {retrieve_s:.2f} s")

        # answers made in Label Studio arrive as gold through the backend's webhook, no pull
        ids = sorted(tasks)[:N_ANSWERS]
        answers = {}
        for i, task_id in enumerate(ids):
            ann = review.client.annotations.create(task_id, result=choice_result(config.classes[i % 2]))
            answers[task_id] = int(ann.id)
        gold = _until(lambda: len(_gold(config)) == N_ANSWERS and _gold(config), f"{N_ANSWERS} gold rows")
        assert {v[0] for v in gold.values()} == set(answers.values())

        # an answer edited to two classes keeps its gold, and the job says so
        edited = ids[0]
        before = _gold(config)
        two = [{**choice_result("ham")[0], "value": {"choices": ["ham", "spam"]}}]
        review.client.annotations.update(answers[edited], result=two)
        kept = _until(lambda: [j for j in http.get("/ls/jobs").json()["jobs"]
                               if j["action"] == "ANNOTATION_UPDATED" and j["status"] == "done"], "the update event")
        assert kept[0]["outcome"]["kept"] == 1 and "give 2 classes" in kept[0]["outcome"]["report"]
        assert _gold(config) == before

        # a deleted annotation removes its gold
        review.client.annotations.delete(answers[ids[1]])
        _until(lambda: len(_gold(config)) == N_ANSWERS - 1, "the deleted answer's gold to go")

        # Start Training: a retrain with the gold, gated as any run
        review.client.ml.train(connected["id"])
        job = _until(lambda: [j for j in http.get("/ls/jobs").json()["jobs"]
                              if j["kind"] == "training" and j["status"] in ("done", "failed")], "training", 300)[0]
        assert job["status"] == "done", job
        assert job["outcome"]["run_id"] in http.get("/ls/versions").json()["versions"]
        assert job["outcome"]["promoted"], job["outcome"]["reason"]
        if job["outcome"]["promoted"]:
            new = _until(lambda: (v := http.post("/ls/setup", json={}).json()["model_version"]) != version and v,
                         "the promoted version")
            assert new == job["outcome"]["run_id"]
            summary = predict_all(review, url + "/ls/", batch=64)
            assert (summary.model_version, summary.stored) == (new, N_TASKS)
            assert review.tasks_without_prediction(new) == {}
            assert predict_all(review, url + "/ls/").stored == 0  # resumable: nothing left to do
