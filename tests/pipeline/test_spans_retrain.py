"""The spans task end to end: a project of Python span LFs on texts of our own making,
and a spans_json project with precomputed LFs, through run_retrain and the store."""

from __future__ import annotations

import json
import random

from pathlib import Path

import httpx
import pytest

from labeling.config import load_config, project_config_from_dict
from labeling.errors import ConfigError
from labeling.pipeline.retrain import format_summary, run_retrain
from labeling.pipeline.spans_retrain import ORACLE_NAME, load_span_splits
from labeling.spans.end_model import SpacyNER
from labeling.store.runs import RunStore
from tests.serve.test_app import Server

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


def _texts(n: int, seed: int) -> list[dict]:
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
    (tmp_path / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in _texts(300, 0)) + "\n")
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
''')
    return load_config(tmp_path / "project.toml")


def test_spans_project_retrains_records_and_reloads_its_end_model(span_project):
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
    analysis = result.documents["span_lf_analysis"]
    assert {(a["split"], a["lf"], a["type"]) for a in analysis} >= {("dev", "money", "MONEY")}
    dev_money = next(a for a in analysis if (a["split"], a["lf"], a["type"]) == ("dev", "money", "MONEY"))
    assert dev_money["precision"] == 1.0 and dev_money["recall"] == 1.0
    with RunStore(span_project.resolve(span_project.store)) as store:
        run = store.get_run(result.run_id)
        path, expected = store.recorded_end_model(result.run_id)
    assert run["end_model"]["type"] == "spacy_ner"
    model = SpacyNER.load(path, expected)
    text = "I bought the Kindle for $40 on Monday."
    expected_spans = model.predict_text([text])[0]
    assert all({"start", "end", "label", "score"} == set(s) and 0 <= s["score"] <= 1 for s in expected_spans)
    # served over HTTP by a real uvicorn server: /predict answers spans with types and scores
    srv = Server({"config": span_project.base_dir + "/project.toml", "overrides": [],
                  "root": Path(span_project.base_dir)}, workers=1)
    try:
        srv.wait_ready(timeout=180)
        answer = httpx.post(f"{srv.url}/predict", json={"texts": [text, "nothing"]}, timeout=60).json()
    finally:
        srv.stop()
    assert answer["model_version"] == result.run_id
    assert answer["predictions"][0]["spans"] == expected_spans and len(answer["predictions"]) == 2


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


def test_a_spans_project_may_have_one_entity_type_and_others_still_need_two(tmp_path):
    one = {"project": {"name": "p", "task": "spans", "classes": ["DATE"]}}
    assert project_config_from_dict(one, base_dir=tmp_path).classes == ("DATE",)
    with pytest.raises(ConfigError, match="at least two class names"):
        project_config_from_dict({"project": {"name": "p", "classes": ["DATE"]}}, base_dir=tmp_path)
