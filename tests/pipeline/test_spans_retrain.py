"""The spans task end to end: a project of Python span LFs on texts of our own making,
and a spans_json project with precomputed LFs, through run_retrain and the store."""

from __future__ import annotations

import json
import random
import time
import uuid

from pathlib import Path

import httpx
import pytest

from labeling.cli import main
from labeling.config import MonitorConfig, load_config, project_config_from_dict
from labeling.errors import ConfigError
from labeling.pipeline.report import write_report
from labeling.pipeline.retrain import format_summary, run_retrain
from labeling.pipeline.spans_retrain import ORACLE_NAME, load_span_splits
from labeling.review.jobs import connect_backend, label_studio_from_env, predict_all
from labeling.review.spans import span_result
from labeling.store.gold_spans import GoldSpans
from labeling.spans.end_model import SpacyNER
from labeling.store.runs import RunStore
from tests.serve.test_app import TOKEN, Server

PRODUCTS = ["Galaxy S9", "iPhone 12", "Kindle", "PlayStation 5", "ThinkPad"]
DATES = ["March 3", "June 21", "Monday", "last Friday", "2019"]
TEMPLATES = ["I bought the {p} for {m} on {d}.", "On {d} the {p} cost {m}, a bargain.",
             "Paid {m} for a {p}.", "The {p} arrived {d} and works."]
LF_MODULE = '''
from labeling.spans.lfs import Gazetteer, regex_span_lf

money = regex_span_lf("money", r"\\$\\d+(?:\\.\\d\\d)?|\\d+ dollars", "MONEY")
products = Gazetteer("products", {"PRODUCT": ["Galaxy S9", "iPhone 12", "Kindle", "PlayStation 5"]})
dates = regex_span_lf("dates", r"(?:March|June) \\d+|Monday|\\b(?:19|20)\\d\\d\\b", "DATE")
'''


def span_rows(n: int, seed: int) -> list[dict]:
    rng, rows = random.Random(seed), []
    for i in range(n):
        values = {"p": rng.choice(PRODUCTS), "m": rng.choice([f"${rng.randint(5, 900)}", f"{rng.randint(5, 90)} dollars"]),
                  "d": rng.choice(DATES)}
        text, spans, template = "", [], rng.choice(TEMPLATES)
        for literal, field, _, _ in __import__("string").Formatter().parse(template):
            text += literal
            if field:
                spans.append([len(text), len(text) + len(values[field]), {"p": "PRODUCT", "m": "MONEY", "d": "DATE"}[field]])
                text += values[field]
        rows.append({"id": f"r{i}", "text": text, "spans": spans, "split": "train" if i < 200 else "dev" if i < 250 else "test"})
    return rows


@pytest.fixture
def span_project(tmp_path):
    (tmp_path / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in span_rows(300, 0)) + "\n")
    (tmp_path / "span_lfs.py").write_text(LF_MODULE)
    (tmp_path / "project.toml").write_text('''
[project]
name = "reviews-spans"
task = "spans"
classes = ["PRODUCT", "MONEY", "DATE"]
[dataset]
source = "file"
path = "reviews.jsonl"
label_field = "spans"
id_field = "id"
split = "column"
split_field = "split"
[lfs]
modules = ["span_lfs"]
[end_model]
ner_max_steps = 10
[review]
title = "reviews-spans-%s"
''' % uuid.uuid4().hex[:8])
    return load_config(tmp_path / "project.toml")


def _stored_gold(store_path, project: str) -> dict:
    with GoldSpans(store_path) as store:
        return {k: s for k, (_, s) in store.spans(project).items()}


def _feedback(srv, body: dict, key: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/feedback", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key})


def _review_in_label_studio(config_path: str, review, gold: dict, capsys) -> dict:
    """``review push`` 20 texts, answer them in Label Studio as a reviewer would (the true
    spans; the first task: no entity) and ``review pull``; returns key -> the answered spans.
    A pull that meets an answer whose text does not match its offsets stores nothing."""
    assert main(["review", "push", "--config", config_path, "--n", "20", "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert (pushed["created"], pushed["strategy"]) == (20, "low_confidence")
    tasks = review.existing_tasks()
    assert len(tasks) == 20 and all(t["predictions"][0]["model_version"] for t in tasks.values())
    answered = {}
    for i, (key, task) in enumerate(sorted(tasks.items())):
        text = task["data"]["text"]
        answered[key] = [] if i == 0 else sorted(tuple(s) for s in gold[key])
        review.annotate_spans(task["id"], answered[key], text)
    key, task = next(iter(sorted(tasks.items())))
    bad = span_result([(0, 3, "DATE")], task["data"]["text"])
    bad[0]["value"]["text"] = "xyz"  # offsets that say another text
    wrong = review.client.annotations.create(task["id"], result=bad)
    assert main(["review", "pull", "--config", config_path]) == 2
    assert f"task {key!r}: span 0..3 says 'xyz'" in capsys.readouterr().err
    review.client.annotations.delete(wrong.id)
    assert main(["review", "pull", "--config", config_path, "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert (pulled["tasks"], pulled["no_entity"]) == (20, 1)
    return answered


def test_spans_project_retrains_serves_reviews_promotes_and_reports(span_project, label_studio, capsys, monkeypatch):
    """The issue's own project end to end: retrain, serve (predictions logged, span feedback
    checked and stored), review in a real Label Studio (push with the served run's spans, pull
    the reviewer's exactly), retrain again reading that gold, promote it through the gate
    (entity F1 on dev) and watch the alias-following server swap to it, then the run's report."""
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio[1])
    result = run_retrain(span_project)
    out = json.loads(json.dumps(result.to_json()))  # what `retrain --json` prints
    rows = {r["name"]: r for r in out["metrics"]}
    assert {"LF money", "LF products", "LF dates", "majority vote", "end model (spaCy NER)"} <= set(rows)
    assert all({"entity_precision", "entity_recall", "entity_f1"} <= set(r) for r in out["metrics"])
    label_model = next(r for n, r in rows.items() if n.startswith("label model ("))
    assert label_model["entity_f1"] > 0.8  # the LFs are nearly exact on these texts
    assert [lf["name"] for lf in out["lfs"]] == ["money", "products", "dates"]
    report = format_summary(result)
    assert "LF analysis on dev, per entity type" in report and "end model (spaCy NER)" in report
    assert "gold spans from the store: none" in report
    analysis = result.documents["span_lf_analysis"]
    dev_money = next(a for a in analysis if (a["split"], a["lf"], a["type"]) == ("dev", "money", "MONEY"))
    assert dev_money["precision"] == 1.0 and dev_money["recall"] == 1.0
    # the retrain gated the run (entity F1 on dev) and made it the candidate, as single-label runs
    assert result.promotion["metric"] == "dev entity_f1" and result.promotion["champion_run_id"] is None
    store_path = span_project.resolve(span_project.store)
    with RunStore(store_path) as store:
        run = store.get_run(result.run_id)
        path, expected = store.recorded_end_model(result.run_id)
    assert run["end_model"]["type"] == "spacy_ner" and run["end_model"]["gold"]["texts_read"] == 0
    model = SpacyNER.load(path, expected)
    text = "I bought the Kindle for $40 on Monday."
    expected_spans = model.predict_text([text])[0]
    assert all({"start", "end", "label", "score"} == set(s) and 0 <= s["score"] <= 1 for s in expected_spans)
    dev_text = load_span_splits(span_project)["dev"].texts[0]
    dev_gold = next(r["spans"] for r in span_rows(300, 0) if r["text"] == dev_text)
    config_path = span_project.base_dir + "/project.toml"
    assert main(["promote", result.run_id, "--config", config_path, "--json"]) == 0  # no champion yet: passes
    assert json.loads(capsys.readouterr().out)["reason"].startswith("no champion yet")
    # served over HTTP by a real uvicorn server that follows the production alias
    srv = Server({"config": span_project.base_dir + "/project.toml", "overrides": [],
                  "root": Path(span_project.base_dir)}, workers=1, extra=("--store-text",))
    try:
        srv.wait_ready(timeout=180)
        answer = httpx.post(f"{srv.url}/predict", json={"texts": [text, "nothing"]}, timeout=60).json()
        assert answer["model_version"] == result.run_id
        assert answer["predictions"][0]["spans"] == expected_spans and len(answer["predictions"]) == 2
        pid = answer["predictions"][0]["id"]
        logged = httpx.get(f"{srv.url}/predictions/{pid}", timeout=60).json()  # logged with the run and schema
        assert logged["model_version"] == result.run_id and logged["spans"] == expected_spans
        assert logged["schema_version"]
        good = {"prediction_id": pid, "spans": [{"start": 13, "end": 19, "label": "PRODUCT", "text": "Kindle"},
                                                {"start": 24, "end": 27, "label": "MONEY"}]}
        first = _feedback(srv, good, "span-fb-0001")
        assert first.status_code == 201 and first.json()["spans"][0] == {"start": 13, "end": 19, "label": "PRODUCT"}
        assert _feedback(srv, good, "span-fb-0001").json()["replayed"] is True
        refused = {
            "outside": ({"start": 30, "end": 99, "label": "DATE"}, "not inside its text: it needs 0 <= start < end <= 38"),
            "type": ({"start": 13, "end": 19, "label": "PERSON"}, "PERSON"),
            "text": ({"start": 13, "end": 19, "label": "PRODUCT", "text": "Kindel"}, "says 'Kindel' but the text there"),
        }
        for case, (span, message) in refused.items():
            bad = _feedback(srv, {"prediction_id": pid, "spans": [span]}, f"span-fb-{case}")
            assert bad.status_code == 422 and message in bad.text, (case, bad.text)
        overlap = _feedback(srv, {"text": text, "spans": [{"start": 13, "end": 19, "label": "PRODUCT"},
                                                          {"start": 15, "end": 22, "label": "PRODUCT"}]}, "span-fb-ov")
        assert overlap.status_code == 422 and "overlap" in overlap.text
        assert _feedback(srv, {"prediction_id": "nope", "spans": []}, "span-fb-404").status_code == 404
        # a dev text's true entities, posted as feedback: the next retrain's dev gold
        relabel = [{"start": s, "end": e, "label": t} for s, e, t in dev_gold[:1]]
        assert _feedback(srv, {"text": dev_text, "spans": relabel}, "span-fb-dev1").status_code == 201

        review = label_studio_from_env(span_project)
        gold_by_key = {r["id"]: r["spans"] for r in span_rows(300, 0)}
        answered = _review_in_label_studio(config_path, review, gold_by_key, capsys)
        with GoldSpans(store_path) as store:  # exactly what the reviewer gave
            assert {k: s for k, (_, s) in store.spans(span_project.name).items()} == \
                {k: [tuple(x) for x in v] for k, v in answered.items()}
        # the server as the review's ML backend: Label Studio accepts its <Labels> answers, and a
        # reviewer's answer deleted there takes its gold spans with it through the webhook
        assert connect_backend(review, f"{srv.url}/ls/")["state"] == "CO"
        gone = sorted(answered)[-1]
        review.client.annotations.delete(review.existing_tasks()[gone]["annotations"][0]["id"])
        del answered[gone]
        deadline = time.monotonic() + 60
        while gone in _stored_gold(store_path, span_project.name):
            assert time.monotonic() < deadline, "the deleted answer's gold spans stayed"
            time.sleep(0.2)

        second = run_retrain(span_project)
        gold = second.end_model["gold"]
        texts = {r["id"]: r["text"] for r in span_rows(300, 0)}
        reviewed = {texts[k] for k in answered}
        assert gold["sources"] == ["feedback", "review"] and gold["extra_rows"] == 1  # the served text: no split
        assert gold["texts_read"] == len(reviewed | {dev_text, text})
        test_texts = {r["text"] for r in span_rows(300, 0) if r["split"] == "test"}  # generated texts repeat
        assert gold["test_rows_excluded"] == len((reviewed | {dev_text}) & test_texts)
        assert gold["train_rows"] + gold["dev_rows"] == sum(
            r["split"] != "test" and r["text"] in (reviewed | {dev_text}) - test_texts for r in span_rows(300, 0))
        assert second.dataset_version != result.dataset_version  # the relabelled dev text moved the snapshot
        assert main(["promote", second.run_id, "--config", config_path, "--json"]) == 0
        decision = json.loads(capsys.readouterr().out)
        assert decision["promoted"] and decision["metric"] == "dev entity_f1"
        assert decision["champion_run_id"] == result.run_id and decision["champion_score"] is not None
        deadline = time.monotonic() + 60
        while httpx.post(f"{srv.url}/predict", json={"text": text}, timeout=60).json()["model_version"] != second.run_id:
            assert time.monotonic() < deadline, "the server did not follow the promoted alias"
            time.sleep(0.3)
        # predict-all: the promoted run's entities on every task, through /ls/predict, into Label Studio
        summary = predict_all(review, f"{srv.url}/ls/")
        assert (summary.model_version, summary.stored) == (second.run_id, 20)
        task = next(iter(review.existing_tasks().values()))
        [mine] = [p for p in task["predictions"] if p["model_version"] == second.run_id]
        served = httpx.post(f"{srv.url}/predict", json={"text": task["data"]["text"]}, timeout=60).json()
        assert [{"start": r["value"]["start"], "end": r["value"]["end"], "label": r["value"]["labels"][0],
                 "score": r["score"]} for r in mine["result"]] == served["predictions"][0]["spans"]
    finally:
        srv.stop()
    page = write_report(store_path, second.run_id, monitor_settings=MonitorConfig(min_predictions=1)).read_text()
    for expected_text in ("Entity-level evaluation on test", "PRODUCT F1", "promoted: candidate dev entity_f1", "on 50 dev documents",
                          "texts_read", "end model (spaCy NER)", "Served traffic vs dev",
                          "entities per 100 tokens: PRODUCT", "texts with no entity"):
        assert expected_text in page, expected_text


def _spans_json(folder, n_docs=40):
    """A spans_json folder: tokens 'drug X causes disease Y', two LFs, one right, one noisy."""
    meta = {"lf": ["dict", "noisy"], "entity_types": ["Chemical", "Disease"], "lf_rec": ["dict"]}
    (folder / "meta.json").write_text(json.dumps(meta))
    for name in ("train", "valid", "test"):
        docs = {}
        for d in range(n_docs):
            toks = ["the", "drug", f"x{d % 7}", "causes", f"y{d % 5}", "pain", "."]
            gold = [[2, 3, "Chemical"], [4, 6, "Disease"]]
            docs[str(d)] = {"data": {"text": toks}, "label": gold,
                            "weak_labels": [gold if d % 4 else gold[:1], [[0, 1, "Disease"]] if d % 3 == 0 else []]}
        (folder / f"{name}.json").write_text(json.dumps(docs))


def test_spans_json_source_keeps_weak_label_names_and_scores_entities(tmp_path):
    _spans_json(tmp_path)
    config = project_config_from_dict({
        "project": {"name": "chem", "task": "spans", "classes": ["Chemical", "Disease"]},
        "dataset": {"source": "spans_json", "path": ".", "weak_label_names": "lf_rec"},
        "end_model": {"ner_max_steps": 5}}, base_dir=tmp_path)
    assert config.dataset.weak_label_names == ("lf_rec",)
    splits = load_span_splits(config)
    assert splits["train"].data.lf_names == ("dict",)
    result = run_retrain(config, record=False)
    rows = {r["name"]: r for r in result.to_json()["metrics"]}
    assert rows["LF dict"]["entity_precision"] == 1.0
    assert set(rows["majority vote"]["per_class"]) == {"Chemical", "Disease"}
    # gold train spans exist here, so the same NER trained on them is the oracle row
    assert rows[ORACLE_NAME]["kind"] == "baseline" and rows[ORACLE_NAME]["entity_f1"] >= 0
    reference = result.documents["monitor_reference"]  # what `labeling monitor` compares served entities with
    assert (reference["kind"], reference["types"], reference["n_reference"]) == ("spans", ["Chemical", "Disease"], 40)
    assert len(reference["tokens"]) == len(reference["entities"]) == 40


def test_a_spans_project_may_have_one_entity_type_and_others_still_need_two(tmp_path):
    one = {"project": {"name": "p", "task": "spans", "classes": ["DATE"]}}
    assert project_config_from_dict(one, base_dir=tmp_path).classes == ("DATE",)
    with pytest.raises(ConfigError, match="at least two class names"):
        project_config_from_dict({"project": {"name": "p", "classes": ["DATE"]}}, base_dir=tmp_path)
