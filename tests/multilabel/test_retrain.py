"""The multi-label retrain, end to end on a tiny project (real store, real artifacts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling.config import load_config
from labeling.errors import ConfigError
from labeling.multilabel.end_models import predict_label_sets
from labeling.multilabel.retrain import cross_fitted_score
from labeling.pipeline.lineage import config_hash
from labeling.pipeline.retrain import format_summary, run_retrain
from labeling.pipeline.store import RunStore, load_recorded_end_model

from .conftest import write_tiny_multilabel

KEYS = {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"}


def test_retrain_records_one_row_per_method_with_the_multilabel_metrics(tiny_multilabel):
    config = load_config(tiny_multilabel, ["label_model.type=auto"])
    result = run_retrain(config)
    out = result.to_json()
    names = [row["name"] for row in out["metrics"]]
    assert names[:2] == ["random", "prior ({sport, music}, from dev)"] or names[0] == "random"
    assert {"majority vote", "end model"} <= set(names)
    assert any(n.startswith("label model (") for n in names) and any(n.startswith("LF ") for n in names)
    assert any(n.startswith("human") for n in names) and any(n.startswith("oracle") for n in names)
    assert all(KEYS <= set(row) for row in out["metrics"])
    end = next(r for r in out["metrics"] if r["name"] == "end model")
    assert end["macro_f1"] > 0.8
    assert [c["name"] for c in out["label_model"]["selection"]["candidates"]][0] == "MultiLabelMajorityVote"
    selection = out["end_model"]["selection"]
    assert set(selection["stages"]["rows"]) == {"covered", "all"} and selection["pick"]["rows"] in ("covered", "all")
    human = next(r for r in out["metrics"] if r["name"].startswith("human"))
    assert "chosen by 3-fold cross-validation on dev" in human["notes"]
    assert set(out["end_model"]["baselines"]["human"]["options"]) == {"word_hashed C=1", "word_hashed C=10",
                                                                      "char_wb C=1", "char_wb C=10"}
    json.dumps(out)
    assert "Test split:" in format_summary(result)
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
        assert {m["name"] for m in run["metrics"]} == set(names)
    with RunStore(result.store_path) as store:
        model = load_recorded_end_model(store, result.run_id)  # checksums recorded with the run checked
    answer = predict_label_sets(model, ["what a goal in the match", "a song at the stadium goal"], config.classes)
    assert [a["labels"] for a in answer] == [["sport"], ["sport", "music"]]
    assert set(answer[0]["probabilities"]) == {"sport", "music", "food"}


def test_thresholds_scored_on_folds_they_were_not_chosen_on():
    P = np.array([[0.2], [0.1], [0.9], [0.3]])
    Y = np.array([[1], [0], [1], [0]])
    folds = np.array([0, 0, 1, 1])
    # fold 0 from fold 1 (t = 0.9): row 0 missed; fold 1 from fold 0 (t = 0.2): rows 2 and 3 predicted
    assert cross_fitted_score(P, Y, folds, "micro_f1") == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))


def test_a_single_label_metric_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="multi-label project takes"):
        load_config(write_tiny_multilabel(tmp_path, metric="f1:sport"))


def test_the_separator_setting_at_its_default_keeps_single_label_config_hashes():
    from labeling.config import ProjectConfig

    recorded = ProjectConfig(name="p", classes=("a", "b")).to_dict()
    before = {**recorded, "dataset": {k: v for k, v in recorded["dataset"].items() if k != "label_separator"}}
    assert config_hash(recorded) == config_hash(before)


def test_the_report_of_a_multilabel_run_shows_set_metrics_per_class_tables_and_thresholds(tiny_multilabel):
    from labeling.pipeline.report import write_report

    result = run_retrain(load_config(tiny_multilabel))
    html = write_report(result.store_path, result.run_id).read_text(encoding="utf-8")
    for text in ("micro_f1", "samples_f1", "hamming_loss", "multilabel-per-class", "multilabel-thresholds",
                 "yes precision (dev)", "kw_food", "no confusion matrix"):
        assert text in html, text
    assert "Test split:" in format_summary(result) and "promotion gate (macro_f1)" in format_summary(result)
