"""The multi-label retrain, end to end on a tiny project (real store, real artifacts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling.config import load_config
from labeling.data.datasets import sha256_file
from labeling.errors import ConfigError
from labeling.multilabel import retrain as retrain_module
from labeling.multilabel.end_models import predict_label_sets
from labeling.multilabel.gold import load_multilabel_dataset
from labeling.multilabel.retrain import cross_fitted_score
from labeling.pipeline.lineage import config_hash
from labeling.pipeline.retrain import format_summary, run_retrain
from labeling.pipeline.predictions import GOLD_ARTIFACT
from labeling.pipeline.store import RunStore, load_recorded_end_model
from labeling.review.gold import GoldStore, ReviewTask
from labeling.review.label_studio import Annotation
from labeling.store.serving import FeedbackLog, FeedbackRecord

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


def _store_gold(config, splits):
    """Gold in the store of ``config``: a reviewed set and feedback sets on train, test and served
    texts; returns the texts it labelled, by role."""
    train, test = splits.train.reset_index(drop=True), splits.test.reset_index(drop=True)
    reviewed, fed, tied = (train.iloc[i] for i in range(3))
    title, store_path = config.review.title or config.name, config.resolve(config.store)
    tasks = [ReviewTask(f"dataset:{row['id']}", "dataset", str(row["id"]), str(row["text"]), "margin")
             for row in (reviewed, tied)]
    with GoldStore(store_path) as store:
        store.record_pushed(title, tasks, {t.task_key: n for n, t in enumerate(tasks)})
        store.record_annotations(title, [
            Annotation(1, tasks[0].task_key, "alice", -1, "t1", (0, 2)), Annotation(2, tasks[0].task_key, "bob", -1, "t1", (0, 2)),
            Annotation(3, tasks[1].task_key, "alice", -1, "t1", (0,)), Annotation(4, tasks[1].task_key, "bob", -1, "t1", ())])
    feedback = [(reviewed["text"], (1,)),  # a person's review beats this feedback
                (fed["text"], (0,)), (fed["text"], (1, 2)),  # the latest feedback on a text wins
                (test["text"].iloc[0], (0,)),  # on a test text: never trained on
                ("zebras crossing the road", (2,))]  # a served text in no split: added
    with FeedbackLog(store_path) as log:
        for i, (text, labels) in enumerate(feedback):
            log.record_feedback(FeedbackRecord(f"f{i}", f"2026-01-01T00:00:0{i}", f"k{i}", "x", -1, None, str(text),
                                               None, None, labels=labels))
    return {"reviewed": str(reviewed["text"]), "fed": str(fed["text"]), "tied": str(tied["text"]),
            "test": str(test["text"].iloc[0])}


def test_reviewed_and_feedback_sets_become_the_next_runs_training_rows_and_are_recorded(tiny_multilabel, monkeypatch):
    config = load_config(tiny_multilabel, ['label_model.type="majority_vote"', "review.gold_weight=2"])
    texts = _store_gold(config, load_multilabel_dataset(config)[0])
    fits, weights = [], []

    def spy(family, texts, targets, *args, **kwargs):
        fits.append(dict(zip(texts, np.asarray(targets).tolist())))
        weights.append(dict(zip(texts, [] if kwargs.get("sample_weight") is None else kwargs["sample_weight"])))
        return fit_end_model(family, texts, targets, *args, **kwargs)

    fit_end_model = retrain_module._fit_end_model
    monkeypatch.setattr(retrain_module, "_fit_end_model", spy)
    result = run_retrain(config)
    served = "zebras crossing the road"
    with_served = [f for f in fits if served in f]  # end-model fits (the gold baselines' never hold it)
    trained = with_served[-1]  # the end model's own, after its selection
    assert trained[texts["reviewed"]] == [1.0, 0.0, 1.0] and trained[texts["fed"]] == [0.0, 1.0, 1.0]
    assert trained[served] == [0.0, 0.0, 1.0] and texts["test"] not in trained
    weight = weights[fits.index(trained)]
    assert weight[texts["reviewed"]] == weight[served] == 2 and weight[texts["tied"]] == 1
    gold = result.end_model["gold"]
    assert {k: gold[k] for k in ("read", "train_rows", "extra_rows", "test_rows_excluded", "unresolved_tasks")} == {
        "read": 4, "train_rows": 2, "extra_rows": 1, "test_rows_excluded": 1, "unresolved_tasks": 1}
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
    assert run["end_model"]["gold"] == gold
    snapshot = result.artifacts[GOLD_ARTIFACT]
    assert snapshot["sha256"] == gold["sha256"] == sha256_file(snapshot["path"])
    assert "gold sets from the store: 4 read" in format_summary(result)
    off = run_retrain(load_config(tiny_multilabel, ['label_model.type="majority_vote"', "review.use_gold=false"]),
                      record=False)
    assert off.end_model["gold"]["read"] == 0 and sum(served in f for f in fits) == len(with_served)


def test_reproduce_reads_the_runs_gold_snapshot_not_the_gold_sets_added_since(tiny_multilabel):
    """Reviews and feedback arriving after a run do not move its reproduction; a tampered
    snapshot is refused naming the file, before anything runs."""
    from labeling.errors import ArtifactError
    from labeling.pipeline.lineage import reproduce

    config = load_config(tiny_multilabel, ['label_model.type="majority_vote"'])
    texts = _store_gold(config, load_multilabel_dataset(config)[0])
    result = run_retrain(config)
    with FeedbackLog(result.store_path) as log:  # later answers: a new text and a relabelled train row
        for i, (text, labels) in enumerate([("kittens purring on the sofa", (0, 1, 2)), (texts["tied"], (1,))]):
            log.record_feedback(FeedbackRecord(f"g{i}", f"2026-02-01T00:00:0{i}", f"l{i}", "x", -1, None, text,
                                               None, None, labels=labels))
    again = reproduce(result.store_path, result.run_id)
    assert again.matches, again.format()
    assert again.lfs_source == again.gold_source == "saved with the run"
    assert {"label matrix train", "store gold sha256", "end model macro_f1", "end model hamming_loss"} <= set(again.checked)
    snapshot = result.artifacts[GOLD_ARTIFACT]["path"]
    with open(snapshot, "a", encoding="utf-8") as handle:
        handle.write('{"task_key": "feedback:x", "source": "feedback", "row_id": null, "text": "t", "label": [0]}\n')
    with pytest.raises(ArtifactError, match=r"gold\.jsonl"):
        reproduce(result.store_path, result.run_id)
