"""The /ls routes (Label Studio's ML-backend protocol), in-process on the tiny project.

The same routes against a real Label Studio 1.23.2 are in tests/review/test_ls_connect.py.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from labeling import load_config, run_retrain
from labeling.review.gold import GoldStore
from labeling.review.label_studio import KEY_FIELD, Annotation, UnclearAnswer
from labeling.serve.ls_backend import LabelConfigError, hash_basic_auth, parse_label_config, parse_labels_config

from ..conftest import REPO, _free_port, tiny_project

CONFIG = """<View>
  <Text name="comment" value="$body"/>
  <Choices name="verdict" toName="comment" choice="single">
    <Choice value="ham"/><Choice value="spam"/>
  </Choices>
</View>"""


def _app(config_path, **settings):
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app

    return TestClient(create_app(ServeSettings(config_path=str(config_path), lf_votes="off", alias_poll_s=0.05,
                                               **settings)))


def _ready(client, timeout=60.0):
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.05)


def _job(client, job_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/ls/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_project(tmp_path_factory.mktemp("ls_tiny"))
    config = load_config(path)
    return path, config, run_retrain(config).run_id


@contextmanager
def serve_project(path: Path, *args: str):
    """``labeling serve`` of ``path`` in a real uvicorn on 127.0.0.1; yields its URL once ready."""
    from labeling.serve.run import wait_until_ready

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "labeling", "serve", "--config", str(path), "--port", str(port),
                             "--lf-votes", "off", "--alias-poll-s", "0.2", *args],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=str(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ready(url, alive=lambda: proc.poll() is None, timeout=120):
            pytest.fail(f"server did not start: {proc.stderr.read()[-3000:] if proc.poll() is not None else ''}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_schemathesis_finds_no_server_error_on_the_ls_routes(tiny, tmp_path):
    pytest.importorskip("schemathesis")
    path, _, _ = tiny
    with serve_project(path) as url:
        run = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run", url + "/openapi.json", "--include-path-regex", "^/ls",
             "--checks", "not_a_server_error", "--max-examples", "10",
             "--phases", "examples,coverage,fuzzing", "--seed", "1"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path)
    failures = run.stdout[run.stdout.find("FAILURES"):] if "FAILURES" in run.stdout else run.stdout[-3000:]
    assert run.returncode == 0, failures[:6000] + run.stderr[-2000:]


def _event(action, ann_id, task_id, choices, *, text="check out my channel now!", project_id=7, annotator=1):
    result = [] if choices is None else [{"from_name": "verdict", "to_name": "comment", "type": "choices",
                                          "value": {"choices": choices}}]
    return {"action": action, "project": {"id": project_id, "title": "ls-tiny", "label_config": CONFIG},
            "task": {"id": task_id, "data": {"body": text}},
            "annotation": {"id": ann_id, "task": task_id, "result": result, "completed_by": annotator,
                           "updated_at": f"2026-01-01T00:00:{ann_id:02d}Z"}}


def test_label_config_names_are_read_and_bad_configs_are_named():
    control = parse_label_config(CONFIG, ("ham", "spam"))
    assert (control.from_name, control.to_name, control.data_key, control.values) == (
        "verdict", "comment", "body", ("ham", "spam"))
    with pytest.raises(LabelConfigError, match="no <Choices> control"):
        parse_label_config('<View><Text name="t" value="$text"/></View>', ("ham", "spam"))
    with pytest.raises(LabelConfigError, match=r"classes \['ham', 'spam'\].*'verdict': \['pos', 'neg'\]"):
        parse_label_config(CONFIG.replace('"ham"', '"pos"').replace('"spam"', '"neg"'), ("ham", "spam"))
    with pytest.raises(LabelConfigError, match="not XML"):
        parse_label_config("<View>", ("ham", "spam"))


def test_health_setup_predict_and_versions(tiny):
    path, _, run_id = tiny
    with _app(path) as c:
        assert c.get("/ls/health").status_code == 200 and c.get("/ls/").status_code == 200
        _ready(c)
        assert c.post("/ls/setup", json={"project": "1.1", "schema": CONFIG}).json() == {"model_version": run_id}
        assert run_id in c.get("/ls/versions").json()["versions"]
        texts = ["check out my channel 3!", "love this song 4", "love this song!"] * 40  # 120: chunked by 100
        tasks = [{"id": i, "data": {"body": t}} for i, t in enumerate(texts)]
        out = c.post("/ls/predict", json={"tasks": tasks, "label_config": CONFIG, "project": "1.1"})
        assert out.status_code == 200, out.text
        results = out.json()["results"]
        assert len(results) == len(tasks)
        served = c.post("/predict", json={"texts": texts[:3]}).json()["predictions"]
        for r, p in zip(results[:3], served):
            region = r["result"][0]
            assert (region["from_name"], region["to_name"], region["type"]) == ("verdict", "comment", "choices")
            assert region["value"]["choices"] == [p["label"]]
            assert r["score"] == pytest.approx(p["probabilities"][p["label"]])
            assert r["model_version"] == run_id
            assert "LF votes:" in region["meta"]["text"][0]
        assert "weak_exclamation: spam" in results[0]["result"][0]["meta"]["text"][0]
        for bad, problem in ((CONFIG.replace('"spam"', '"eggs"'), "project's classes"),
                             ('<View><Text name="t" value="$body"/></View>', "no <Choices> control")):
            refused = c.post("/ls/predict", json={"tasks": tasks[:1], "label_config": bad})
            assert refused.status_code == 422 and problem in refused.json()["detail"]
            assert c.post("/ls/setup", json={"schema": bad}).status_code == 422
        missing = c.post("/ls/predict", json={"tasks": [{"id": 9, "data": {"text": "x"}}], "label_config": CONFIG})
        assert missing.status_code == 422 and "task 9: data.body" in missing.json()["detail"]


def test_ls_predict_takes_a_batch_over_the_app_body_limit_and_answers_it_in_chunks(tiny):
    path, _, _ = tiny
    # Label Studio sends every selected task in one call: 1.2 MB here, over /predict's 1 MB
    tasks = [{"id": i, "data": {"body": f"love this song {i} " + "la " * 1500}} for i in range(260)]
    with _app(path, max_explain_batch=130) as c:
        _ready(c)
        out = c.post("/ls/predict", json={"tasks": tasks, "label_config": CONFIG})
        assert out.status_code == 200, out.text[:300]
        assert len(out.json()["results"]) == len(tasks)
        too_big = c.post("/predict", json={"texts": [t["data"]["body"] for t in tasks]})
        assert too_big.status_code == 413 and "over 1000000 bytes" in too_big.text


def test_webhook_events_keep_gold_in_step_and_keep_unclear_answers(tiny):
    path, config, _ = tiny
    with _app(path) as c:
        for body, problem in (({"action": "ANNOTATION_CREATED", "project": {"id": 1}}, "needs 'annotation'"),
                              ({"action": "ANNOTATION_CREATED", "annotation": {"id": 1, "task": 1, "result": []}},
                               "needs 'project'"),
                              ({"action": "EXPLODE", "project": {}}, "unknown action 'EXPLODE'"),
                              ({"action": "ANNOTATIONS_DELETED", "project": {"id": 1}}, "needs 'annotations'"),
                              ({"project": {}}, "action")):
            refused = c.post("/ls/webhook", json=body)
            assert refused.status_code == 422 and problem in refused.text, (body, refused.text)
        assert c.post("/ls/webhook", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert c.post("/ls/webhook", json={"action": "TASKS_CREATED"}).json()["status"] == "ignored"

        created = c.post("/ls/webhook", json=_event("ANNOTATION_CREATED", 11, 101, ["spam"]))
        assert created.status_code == 200 and created.json()["status"] == "accepted"
        assert _job(c, created.json()["job"])["outcome"]["inserted"] == 1
        _job(c, c.post("/ls/webhook", json=_event("ANNOTATION_CREATED", 12, 102, ["ham"], text="nice")).json()["job"])

        def gold():
            with GoldStore(config.resolve(config.store)) as store:
                return {r.task_key: r.label for r in store.answers().itertuples()}

        assert gold() == {"ls:7:101": 1, "ls:7:102": 0}
        for choices, reason in ((["ham", "spam"], "2 classes"), ([], "no class"), (None, "no class")):
            job = _job(c, c.post("/ls/webhook", json=_event("ANNOTATION_UPDATED", 11, 101, choices)).json()["job"])
            assert job["status"] == "done" and job["outcome"]["kept"] == 1, job
            assert f"1 answer(s) on tasks ['ls:7:101'] give {reason}" in job["outcome"]["report"]
            assert gold() == {"ls:7:101": 1, "ls:7:102": 0}
        job = _job(c, c.post("/ls/webhook", json=_event("ANNOTATION_UPDATED", 11, 101, ["ham"])).json()["job"])
        assert job["outcome"]["updated"] == 1 and gold()["ls:7:101"] == 0
        deleted = c.post("/ls/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 7},
                                              "annotations": [{"id": 11}]})
        assert _job(c, deleted.json()["job"])["outcome"]["removed"] == 1
        assert gold() == {"ls:7:102": 0}


def test_start_training_runs_one_retrain_and_a_press_on_another_worker_joins_it(tiny):
    path, config, run_id = tiny
    # two apps on one store stand for two server workers: jobs live in the store
    with _app(path) as c, _app(path) as other:
        _ready(c)
        first = c.post("/ls/webhook", json={"action": "START_TRAINING", "project": {"id": 7}}).json()
        second = other.post("/ls/webhook", json={"action": "START_TRAINING", "project": {"id": 7}}).json()
        assert first["status"] == "accepted"
        assert (second["status"], second["job"]) == ("coalesced", first["job"]) and "joined" in second["detail"]
        job = _job(other, first["job"], timeout=300)
        assert job["status"] == "done", job
        assert job["presses"] == 2 and job["outcome"]["run_id"] != run_id
        assert c.get(f"/ls/jobs/{first['job']}").json() | {"age_s": 0} == job | {"age_s": 0}
        assert job["outcome"]["run_id"] in c.get("/ls/versions").json()["versions"]
        if job["outcome"]["promoted"]:  # a promoted run is served, and Label Studio sees a new version
            deadline = time.monotonic() + 30
            while c.post("/ls/setup", json={}).json()["model_version"] != job["outcome"]["run_id"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_basic_auth_guards_every_ls_route_when_set(tiny):
    path, _, _ = tiny
    with _app(path, ls_basic_auth_sha256=hash_basic_auth("ls", "s3cret-pass")) as c:
        assert c.get("/ls/health").status_code == 401
        assert c.get("/ls/health", auth=("ls", "wrong")).status_code == 401
        assert c.get("/ls/health", auth=("ls", "s3cret-pass")).status_code == 200
        token = base64.b64encode(b"ls:s3cret-pass").decode()
        assert c.post("/ls/setup", json={}, headers={"Authorization": f"Basic {token}"}).status_code in (200, 503)
        assert c.get("/livez").status_code == 200  # the rest of the app is not behind it


def test_pull_keeps_the_gold_of_an_answer_that_gives_no_single_class(tmp_path):
    with GoldStore(tmp_path / "store.db") as store:
        from labeling.review.gold import ReviewTask

        store.record_pushed("p", [ReviewTask("row:1", "dataset", "1", "t1", "random"),
                                  ReviewTask("row:2", "dataset", "2", "t2", "random")], {"row:1": 1, "row:2": 2})
        store.record_annotations("p", [Annotation(5, "row:1", "a", 1, "t0"), Annotation(6, "row:2", "a", 0, "t0")])
        result = store.record_annotations("p", [], [UnclearAnswer(5, "row:1", "a", "2 classes")])
        assert (result.deleted, result.kept) == (1, 1)  # row:2's answer was deleted; row:1's is unclear
        assert "1 answer(s) on tasks ['row:1'] give 2 classes" in result.report
        assert store.answers()[["task_key", "label"]].values.tolist() == [["row:1", 1]]


SPANS_CONFIG = """<View>
  <Labels name="entity" toName="review"><Label value="PRODUCT"/><Label value="MONEY"/><Label value="DATE"/></Labels>
  <Text name="review" value="$body"/>
</View>"""
TYPES = ("PRODUCT", "MONEY", "DATE")


@pytest.fixture(scope="module")
def spans_tiny(tmp_path_factory):
    """A spans project (the span LFs and texts of tests/pipeline/test_spans_retrain.py) with one
    quick run: its NER trained a few steps only, enough to serve. Train texts carry no gold,
    as in a real project, so no oracle NER is trained (half the run's time)."""
    import json

    from tests.pipeline.test_spans_retrain import LF_MODULE, span_rows

    folder = tmp_path_factory.mktemp("ls_spans")
    rows = [{**r, "spans": [] if r["split"] == "train" else r["spans"]} for r in span_rows(260, 0)]
    (folder / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "span_lfs.py").write_text(LF_MODULE)
    (folder / "project.toml").write_text('[project]\nname = "ls-spans"\ntask = "spans"\n'
                                         'classes = ["PRODUCT", "MONEY", "DATE"]\n[dataset]\nsource = "file"\n'
                                         'path = "reviews.jsonl"\nlabel_field = "spans"\nid_field = "id"\n'
                                         'split = "column"\nsplit_field = "split"\n[lfs]\nmodules = ["span_lfs"]\n'
                                         '[end_model]\nner_max_steps = 3\n')
    config = load_config(folder / "project.toml")
    return folder / "project.toml", config, run_retrain(config).run_id


def test_spans_label_config_needs_labels_on_a_text_with_the_projects_types():
    control = parse_labels_config(SPANS_CONFIG, TYPES)
    assert (control.from_name, control.to_name, control.data_key) == ("entity", "review", "body")
    for bad, problem in (
            (SPANS_CONFIG.replace('<Label value="DATE"/>', '<Label value="PERSON"/>'),
             r"'entity' lacks the entity type\(s\) \['DATE'\] and has \['PERSON'\], not in the project's types"),
            (SPANS_CONFIG.replace('<Label value="DATE"/>', ''), r"lacks the entity type\(s\) \['DATE'\]"),
            (CONFIG, "no <Labels> control"),
            (SPANS_CONFIG.replace("<Text ", "<Image "), "not <Text> showing a task field")):
        with pytest.raises(LabelConfigError, match=problem):
            parse_labels_config(bad, TYPES)


def _span_event(action, ann_id, task_id, spans, text, *, key=None):
    from labeling.review.spans import span_result

    result = span_result(spans, text, from_name="entity", to_name="review")
    return {"action": action, "project": {"id": 3, "title": "ls-spans", "label_config": SPANS_CONFIG},
            "task": {"id": task_id, "data": {"body": text, **({KEY_FIELD: key} if key else {})}},
            "annotation": {"id": ann_id, "task": task_id, "result": result, "completed_by": 1}}


def test_spans_project_setup_predict_and_webhook_gold_spans(spans_tiny):
    from labeling.config import MonitorConfig
    from labeling.pipeline.monitor import check_drift
    from labeling.store.gold_spans import GoldSpans

    path, config, run_id = spans_tiny
    texts = ["I bought the Kindle for $40 on Monday.", "Paid 30 dollars for a ThinkPad.", "nothing here"]
    with _app(path) as c:
        _ready(c)
        assert c.post("/ls/setup", json={"schema": SPANS_CONFIG}).json() == {"model_version": run_id}
        refused = c.post("/ls/setup", json={"schema": CONFIG})
        assert refused.status_code == 422 and "no <Labels> control" in refused.json()["detail"]
        bad = c.post("/ls/predict", json={"tasks": [{"id": 1, "data": {"body": texts[0]}}],
                                          "label_config": SPANS_CONFIG.replace("PRODUCT", "ITEM")})
        assert bad.status_code == 422 and "lacks the entity type(s) ['PRODUCT']" in bad.json()["detail"]
        out = c.post("/ls/predict", json={"tasks": [{"id": i, "data": {"body": t}} for i, t in enumerate(texts)],
                                          "label_config": SPANS_CONFIG})
        assert out.status_code == 200, out.text
        served = c.post("/predict", json={"texts": texts}).json()["predictions"]
        for text, answer, prediction in zip(texts, out.json()["results"], served):
            assert answer["model_version"] == run_id
            assert [{"start": r["value"]["start"], "end": r["value"]["end"], "label": r["value"]["labels"][0],
                     "score": r["score"]} for r in answer["result"]] == prediction["spans"]
            assert all((r["from_name"], r["to_name"], r["type"], r["value"]["text"]) ==
                       ("entity", "review", "labels", text[r["value"]["start"]:r["value"]["end"]])
                       for r in answer["result"])
            assert answer["score"] == min((s["score"] for s in prediction["spans"]), default=1.0)
        # `labeling monitor` of a spans run: the served entities against the run's NER on dev
        report = check_drift(config.resolve(config.store), MonitorConfig(min_predictions=6), project=config.name)
        assert report.run_id == run_id and report.n_predictions == 6
        assert [c.name for c in report.checks] == [f"entities per text: {t}" for t in TYPES] + [
            "texts with no entity"]  # served without --store-text: no tokens to count
        assert any("kept only as hashes" in note for note in report.notes)

        def gold():
            with GoldSpans(config.resolve(config.store)) as store:
                return {k: s for k, (_, s) in store.spans(config.name).items()}

        text = texts[0]
        spans = [(13, 19, "PRODUCT"), (24, 27, "MONEY"), (31, 37, "DATE")]
        job = _job(c, c.post("/ls/webhook", json=_span_event("ANNOTATION_CREATED", 21, 201, spans, text,
                                                              key="r7")).json()["job"])
        assert job["outcome"]["stored"] == 1 and job["outcome"]["spans"] == 3, job
        _job(c, c.post("/ls/webhook", json=_span_event("ANNOTATION_CREATED", 22, 202, [], texts[2])).json()["job"])
        assert gold() == {"r7": spans, "ls:3:202": []}
        wrong = _span_event("ANNOTATION_UPDATED", 21, 201, spans[:1], text, key="r7")
        wrong["annotation"]["result"][0]["value"]["text"] = "Kindel"  # offsets that say another text
        job = _job(c, c.post("/ls/webhook", json=wrong).json()["job"])
        assert job["outcome"]["kept"] == 1 and "task 'r7': span 13..19 says 'Kindel'" in job["outcome"]["report"]
        assert gold()["r7"] == spans  # the gold stored before is kept
        deleted = c.post("/ls/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 3},
                                              "annotations": [{"id": 21}, {"id": 99}]})
        assert _job(c, deleted.json()["job"])["outcome"]["tasks"] == ["r7"]
        assert gold() == {"ls:3:202": []}
