"""One story of a multi-label project: retrain -> serve (real uvicorn) -> feedback with a set ->
Label Studio review push/pull (the CLI) -> the next retrain reads both -> report. 300 generated rows, so it stays a few seconds past its servers' start."""

from __future__ import annotations

import json
import random
import uuid

import httpx

from labeling.config import load_config
from labeling.pipeline.report import write_report
from labeling.pipeline.retrain import run_retrain
from labeling.review.gold import GoldStore
from labeling.cli import main
from labeling.review.multilabel import MultiLabelReview, result_set
from labeling.serve.feedback import gold_labels

from ..serve.test_app import AUTH, Server
from .conftest import CLASSES, write_tiny_multilabel


def test_a_multilabel_project_from_retrain_to_report(label_studio, tmp_path, monkeypatch, capsys):
    url, key = label_studio
    path = write_tiny_multilabel(tmp_path / "project", rows=300)
    # the majority vote: label-model selection has its own tests, and this one stays short
    overrides = [f'review.title="ml-e2e-{random.getrandbits(32):x}"', 'label_model.type="majority_vote"']
    config = load_config(path, overrides)
    result = run_retrain(config)
    assert result.metric("end model", "macro_f1") > 0.8
    server = Server({"config": path, "overrides": overrides, "root": tmp_path}, workers=1, extra=("--store-text",))
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            answer = c.post("/predict", json={"text": "guitar song about pizza 1000"}).json()
            assert answer["model_version"] == result.run_id
            served = answer["predictions"][0]
            assert served["labels"] == ["music", "food"] and set(answer["thresholds"]) == set(CLASSES)
            fb = c.post("/feedback", json={"prediction_id": served["id"], "labels": ["food"]},
                        headers={**AUTH, "Idempotency-Key": uuid.uuid4().hex})
            assert fb.status_code == 201 and fb.json()["labels"] == ["food"]
    finally:
        server.stop()
    assert gold_labels(result.store_path, config.classes).set_index("text")["label"].to_dict() == {
        "guitar song about pizza 1000": ["food"]}

    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    command = ["--config", str(path), *(a for o in overrides for a in ("--set", o)), "--json"]
    assert main(["review", "push", "--n", "8", *command]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 8
    review = MultiLabelReview(url, key, title=config.review.title, classes=config.classes)
    wanted = {}
    for task_key, task in review.existing_tasks().items():  # a reviewer accepts every pre-annotated set
        answer = result_set(task["predictions"][0]["result"], CLASSES)
        review.annotate_set(int(task["id"]), [CLASSES[c] for c in answer])
        wanted[task_key] = (task["data"]["text"], answer)
    assert main(["review", "pull", *command]) == 0
    assert json.loads(capsys.readouterr().out)["inserted"] == 8
    with GoldStore(config.resolve(config.store)) as store:
        assert {k: next(iter(v.values())) for k, v in store.label_sets(config.review.title).items()} == wanted
    # the loop closes: the next retrain trains on the reviewed sets and the served text's feedback set
    again = run_retrain(config, record=False).end_model["gold"]
    assert (again["read"], again["train_rows"], again["extra_rows"], again["test_rows_excluded"]) == (9, 8, 1, 0)

    html = write_report(result.store_path, result.run_id).read_text(encoding="utf-8")
    assert "multilabel-per-class" in html and "micro_f1" in html
