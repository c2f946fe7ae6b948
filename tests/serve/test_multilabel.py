"""Serving a multi-label run: label sets with per-class probabilities, set feedback, the gate on sets."""

from __future__ import annotations

import time
import uuid

import pytest

from labeling.config import load_config
from labeling.pipeline.retrain import run_retrain
from labeling.serve.feedback import FeedbackLog, gold_labels

from ..multilabel.conftest import CLASSES, write_tiny_multilabel

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    path = write_tiny_multilabel(tmp_path_factory.mktemp("ml_serve") / "project")
    config = load_config(path)
    return path, config, run_retrain(config)


def _app(path, **settings):
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app, hash_token

    settings.setdefault("lf_votes", "off")  # no LF-votes process where a test is not about votes

    return TestClient(create_app(ServeSettings(config_path=str(path), token_sha256=hash_token(TOKEN),
                                               alias_poll_s=0.05, store_text=True, **settings)))


def _ready(client) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)


def _feedback(client, body, key=None):
    return client.post("/feedback", json=body, headers={**AUTH, "Idempotency-Key": key or uuid.uuid4().hex})


def test_predict_returns_sets_with_probabilities_and_thresholds_and_logs_them(multilabel_run):
    path, config, result = multilabel_run
    with _app(path) as c:
        _ready(c)
        r = c.post("/predict", json={"texts": ["a song at the stadium goal 7", "nothing to see 3"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_version"] == result.run_id and set(body["thresholds"]) == set(CLASSES)
        first, second = body["predictions"]
        assert first["labels"] == ["sport", "music"] and second["labels"] == []
        assert set(first["probabilities"]) == set(CLASSES) and first["lf_votes_status"] == "off"
        # the set is what the thresholds make of the probabilities
        assert all((p >= body["thresholds"][c]) == (c in first["labels"]) for c, p in first["probabilities"].items())
        logged = c.get(f"/predictions/{first['id']}", headers=AUTH).json()
        assert logged["labels"] == ["sport", "music"] and logged["model_version"] == result.run_id
    with FeedbackLog(result.store_path) as log:
        row = log.get_prediction(first["id"])
    assert row["labels"] == "[0, 1]" and row["label"] == -1


@pytest.mark.parametrize("mode", ["inline", "background", "off"])
def test_predictions_log_the_lf_votes_of_the_served_runs_own_lfs_unless_switched_off(multilabel_run, mode):
    """Each LF's vote code is logged, read back as the classes it said yes and NOT to; the
    votes are those the run's applier gives the same text (its saved LFs, not the working tree's)."""
    import json

    import pandas as pd

    from labeling.lf.apply import apply_lfs
    from labeling.multilabel.votes import apply_cardinality, describe_votes, multilabel_lfs
    from labeling.pipeline.store import load_recorded_lfs

    path, config, result = multilabel_run
    text = "a song at the stadium goal 7"
    with _app(path, lf_votes=mode) as c:
        _ready(c)
        first = c.post("/predict", json={"texts": [text]}).json()["predictions"][0]
        deadline = time.monotonic() + 30
        while (logged := c.get(f"/predictions/{first['id']}", headers=AUTH).json())["lf_votes_status"] == "pending" \
                and time.monotonic() < deadline:  # the LF-votes process fills them in
            time.sleep(0.05)
    with FeedbackLog(result.store_path) as log:
        row = log.get_prediction(first["id"])
        lfs = multilabel_lfs(load_recorded_lfs(log, result.run_id))
    if mode == "off":
        assert first["lf_votes_status"] == "off" and first["lf_votes"] is None and row["lf_votes"] is None
        return
    expected = apply_lfs(lfs, pd.DataFrame({"text": [text]}), cardinality=apply_cardinality(), n_jobs=1).L[0].tolist()
    assert first["lf_votes_status"] == ("done" if mode == "inline" else "pending")
    assert logged["lf_votes_status"] == "done" and json.loads(row["lf_votes"]) == expected
    assert logged["lf_votes"] == describe_votes(expected, CLASSES) == (first["lf_votes"] if mode == "inline" else
                                                                       logged["lf_votes"])
    assert {"yes": ["sport"], "no": []} in logged["lf_votes"] and None in logged["lf_votes"]
    assert len(logged["lf_votes"]) == len(result.lfs)
    if mode == "inline":  # the monitor reads them: LF coverage drift per LF, set class shares
        from labeling.config import MonitorConfig
        from labeling.pipeline.monitor import check_drift

        report = check_drift(result.store_path, MonitorConfig(min_predictions=1), result.run_id)
        assert [r["lf"] for r in report.lf_drift] == [name for name, _ in result.lfs]
        assert {r["lf"]: r["served_coverage"] for r in report.lf_drift}["kw_sport"] == 1.0
        assert not any("no LF votes" in note for note in report.notes)


def test_feedback_takes_a_set_validated_against_the_classes(multilabel_run):
    path, config, result = multilabel_run
    with _app(path) as c:
        _ready(c)
        pid = c.post("/predict", json={"text": "guitar song about pizza 1"}).json()["predictions"][0]["id"]
        key = uuid.uuid4().hex
        first = _feedback(c, {"prediction_id": pid, "labels": ["food", "music"]}, key)
        assert first.status_code == 201 and first.json()["labels"] == ["music", "food"]
        again = _feedback(c, {"prediction_id": pid, "labels": ["music", "food", "music"]}, key)  # same set
        assert again.status_code == 200 and again.json()["replayed"]
        assert _feedback(c, {"prediction_id": pid, "labels": ["music"]}, key).status_code == 409
        empty = _feedback(c, {"text": "a text about none of them", "labels": []})
        assert empty.status_code == 201 and empty.json()["labels"] == []
        unknown = _feedback(c, {"text": "t", "labels": ["music", "jazz"]})
        assert unknown.status_code == 422 and "jazz" in unknown.text
        assert _feedback(c, {"text": "t", "label": "music"}).status_code == 422  # a set is asked for
    gold = gold_labels(result.store_path, config.classes).set_index("text")["label"]
    assert gold["guitar song about pizza 1"] == ["music", "food"] and gold["a text about none of them"] == []


def test_the_gate_scores_a_multilabel_run_on_label_sets(multilabel_run):
    path, config, result = multilabel_run
    assert result.promotion["metric"] == "macro_f1" and result.promotion["passed"]
    with _app(path) as c:
        _ready(c)
        r = c.post("/admin/promote", json={"run_id": result.run_id}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert "label sets" in r.json()["reason"] and r.json()["promoted"]


def test_ls_predict_answers_a_multiple_choice_set_and_refuses_a_single_choice_config(multilabel_run):
    from labeling.review.multilabel import multilabel_labeling_config, result_set

    path, config, result = multilabel_run
    label_config = multilabel_labeling_config(CLASSES)
    tasks = [{"id": 1, "data": {"text": "a song at the stadium goal 2"}}, {"id": 2, "data": {"text": "nothing 9"}}]
    with _app(path) as c:
        _ready(c)
        r = c.post("/ls/predict", json={"tasks": tasks, "label_config": label_config})
        assert r.status_code == 200, r.text
        first, second = r.json()["results"]
        assert result_set(first["result"], CLASSES) == [0, 1] and result_set(second["result"], CLASSES) == []
        assert 0.5 <= first["score"] <= 1 and first["model_version"] == result.run_id
        single = c.post("/ls/predict", json={"tasks": tasks, "label_config": label_config.replace("multiple", "single")})
        assert single.status_code == 422 and "multiple" in single.json()["detail"]


def test_webhook_answers_of_a_multilabel_project_are_stored_as_gold_sets_the_retrain_reads(multilabel_run):
    from labeling.review.label_studio import review_title
    from labeling.review.multilabel import multilabel_labeling_config, set_result, store_gold_sets

    path, config, _ = multilabel_run
    project = {"id": 8, "title": review_title(config), "label_config": multilabel_labeling_config(CLASSES)}

    edits = iter(range(10))

    def event(action, names, text="a served song about soup"):
        return {"action": action, "project": project, "task": {"id": 201, "data": {"text": text}},
                "annotation": {"id": 21, "task": 201, "result": set_result(names), "completed_by": 1,
                               "updated_at": f"2026-01-01T00:00:{next(edits):02d}Z"}}

    def done(c, body):
        job_id = c.post("/ls/webhook", json=body).json()["job"]
        deadline = time.monotonic() + 30
        while (job := c.get(f"/ls/jobs/{job_id}").json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["status"] == "done", job
        return job["outcome"]

    def stored():
        return store_gold_sets(config).gold.set_index("text")["label"].to_dict().get("a served song about soup")

    with _app(path) as c:
        _ready(c)
        created = done(c, event("ANNOTATION_CREATED", ["music", "food"]))
        assert created["inserted"] == 1, created
        assert stored() == [1, 2]
        kept = done(c, event("ANNOTATION_UPDATED", ["music", "dance"]))
        assert kept["kept"] == 1 and "the undeclared class 'dance'" in kept["report"]
        assert "tick only the project's classes" in kept["report"]
        assert stored() == [1, 2]
        assert done(c, event("ANNOTATION_UPDATED", []))["updated"] == 1  # none ticked: labelled, no class
        assert stored() == []
