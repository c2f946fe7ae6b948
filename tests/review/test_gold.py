"""The gold-label table: idempotent pulls, replaced answers, disagreements; gold in retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling.config import load_config
from labeling.data.datasets import Splits
from labeling.serve.feedback import FeedbackLog, FeedbackRecord, utc_now
from labeling.review.gold import (
    GoldStore,
    ReviewTask,
    all_gold,
    dev_with_gold,
    match_gold,
    read_only_gold,
    review_gold,
    training_rows_with_gold,
)
from labeling.pipeline.retrain import run_retrain
from labeling.errors import ConfigError, LabelError
from labeling.review.label_studio import Annotation, annotations_from_tasks, choice_result

TASKS = [ReviewTask(f"row:{i}", "dataset", str(i), f"text {i}", "random") for i in range(3)]


@pytest.fixture
def store(tmp_path):
    with GoldStore(tmp_path / "s.db") as s:
        s.record_pushed("proj", TASKS, {t.task_key: n for n, t in enumerate(TASKS)})
        yield s


def test_pull_is_idempotent_and_an_edit_replaces_the_answer(store):
    anns = [Annotation(1, "row:0", "alice", 1, "t1"), Annotation(2, "row:1", "alice", 0, "t1")]
    assert store.record_annotations("proj", anns).inserted == 2
    again = store.record_annotations("proj", anns)
    assert (again.stored, again.inserted, again.updated, again.deleted) == (2, 0, 0, 0)
    edited = [Annotation(1, "row:0", "alice", 0, "t2"), anns[1]]
    assert store.record_annotations("proj", edited).updated == 1
    # an annotator's newer annotation on the same task wins; a deleted one disappears
    newer = [Annotation(1, "row:0", "alice", 0, "t2"), Annotation(7, "row:0", "alice", 1, "t3")]
    result = store.record_annotations("proj", newer + [Annotation(9, "row:zzz", "bob", 1, "t1")])
    assert (result.stored, result.deleted, result.unknown_tasks) == (1, 1, 1)
    gold, _ = review_gold(store.path)
    assert gold[["task_key", "label"]].values.tolist() == [["row:0", 1]]


def test_disagreements_are_kept_and_majority_resolves(store):
    store.record_annotations("proj", [
        Annotation(1, "row:0", "alice", 1, "t"), Annotation(2, "row:0", "bob", 0, "t"),
        Annotation(3, "row:1", "alice", 1, "t"), Annotation(4, "row:1", "bob", 1, "t"), Annotation(5, "row:1", "carol", 0, "t"),
    ])
    gold, disagree = review_gold(store.path)
    assert gold.set_index("task_key").loc["row:1", ["label", "n_annotators"]].tolist() == [1, 3]
    assert "row:0" not in set(gold["task_key"])  # a tie is not gold
    assert disagree.set_index("task_key")["resolved"].to_dict() == {"row:0": None, "row:1": 1}
    assert disagree.set_index("task_key").loc["row:0", "answers"] == {"alice": 1, "bob": 0}


def test_all_gold_joins_feedback_and_reviews_win(store):
    store.record_annotations("proj", [Annotation(1, "row:0", "alice", 1, "t")])
    with FeedbackLog(store.path) as log:
        for i, (text, label) in enumerate([("text 0", 0), ("a served text", 1)]):
            log.record_feedback(FeedbackRecord(f"f{i}", utc_now(), f"k{i}", "h", label, None, text, None, None))
    gold = all_gold(store.path).set_index("text")
    assert gold.loc["text 0", "label"] == 1 and gold.loc["text 0", "source"] == "dataset"
    assert gold.loc["a served text", "label"] == 1 and gold.loc["a served text", "source"] == "feedback"
    assert read_only_gold(store.path.parent / "missing.db").empty
    assert not (store.path.parent / "missing.db").exists()


def _splits():
    frame = lambda ids, texts, labels: pd.DataFrame({"id": ids, "text": texts, "label": labels})
    train = frame(["a", "b", "c", "d"], ["ta", "tb", "tc", "same"], [0, 1, 0, 1])
    return Splits(train=train, dev=train.iloc[[0]].reset_index(drop=True),
                  test=frame(["x", "y"], ["tx", "same"], [1, 0]), classes=("ham", "spam"), source="t")


def test_gold_on_test_rows_is_never_used_for_training():
    gold = pd.DataFrame([
        {"task_key": "row:b", "source": "dataset", "row_id": "b", "text": "tb", "label": 0},
        {"task_key": "row:x", "source": "dataset", "row_id": "x", "text": "tx", "label": 1},  # a test row
        {"task_key": "row:d", "source": "dataset", "row_id": "d", "text": "same", "label": 1},  # its text is in test
        {"task_key": "f:1", "source": "feedback", "row_id": None, "text": "ta", "label": 1},  # a dev row, by text
        {"task_key": "f:2", "source": "feedback", "row_id": None, "text": "new", "label": 1},
    ])
    match = match_gold(gold, _splits())
    assert match.summary() == {"train_rows": 2, "extra_rows": 1, "test_rows_excluded": 2}
    assert sorted(match.train_pos.tolist()) == [0, 1]
    soft = np.full((4, 2), 0.5)
    texts, targets, weights = training_rows_with_gold(match, ["ta", "tb", "tc", "same"], soft,
                                                      np.array([False, False, True, True]), 2, 2.0)
    assert texts == ["ta", "tb", "tc", "same", "new"] and "tx" not in texts
    assert targets.tolist() == [[0, 1], [1, 0], [0.5, 0.5], [0.5, 0.5], [0, 1]]
    assert weights.tolist() == [2, 2, 1, 1, 2]
    L_train = np.array([[0], [1], [-1], [1]])
    L_sel, y_sel = dev_with_gold(match, L_train, L_train[[0]], np.array([0]), np.array([[1]]), ["a"], ["a", "b", "c", "d"])
    # dev first; the dev row's own gold does not count twice; then train gold; then extra rows
    assert L_sel.ravel().tolist() == [0, 1, 1] and y_sel.tolist() == [0, 0, 1]


def test_retrain_learns_from_gold_but_never_from_test_rows(youtube_config_path, youtube_splits, tmp_path):
    # Snorkel's model, not selection: its class balance is the one gold labels set
    overrides = ["lfs.modules=['labeling_functions.youtube_spam_weak']", "label_model.type='snorkel'",
                 f"project.store='{tmp_path / 's.db'}'",
                 f"project.artifacts='{tmp_path / 'a'}'"]
    config = load_config(youtube_config_path, overrides)
    train, test = youtube_splits.train.iloc[:40], youtube_splits.test.iloc[:5]
    tasks = [ReviewTask(f"row:{r.id}", "dataset", r.id, r.text, "random") for r in pd.concat([train, test]).itertuples()]
    with GoldStore(config.resolve(config.store)) as store:
        store.record_pushed(config.name, tasks, {t.task_key: i for i, t in enumerate(tasks)})
        labels = pd.concat([train, test])["label"].tolist()
        store.record_annotations(config.name, [Annotation(i, t.task_key, "r", int(y), "t")
                                               for i, (t, y) in enumerate(zip(tasks, labels))])
    with_gold = run_retrain(config, record=False)
    assert with_gold.end_model["gold"] == {"train_rows": 40, "extra_rows": 0, "test_rows_excluded": 5}
    without = run_retrain(load_config(youtube_config_path, overrides + ["review.use_gold=false"]), record=False)
    assert without.end_model["gold"]["train_rows"] == 0
    assert with_gold.label_model["params"]["class_balance"] is not None
    assert without.label_model["params"]["class_balance"] is None
    assert with_gold.metric("end model") != without.metric("end model")


# --- a class renamed in the config never deletes stored gold (issue 12) -----------------------------


def _ls_tasks(choices: dict[str, str]) -> dict[str, dict]:
    """Label Studio task JSON (as the SDK returns it): one submitted answer per task key."""
    return {key: {"id": n, "data": {"task_key": key}, "annotations": [
        {"id": 100 + n, "result": choice_result(choice), "completed_by": {"id": 1, "email": "alice@x"},
         "was_cancelled": False, "updated_at": "2026-01-01T00:00:00Z"}]}
        for n, (key, choice) in enumerate(choices.items())}


def test_answers_with_a_class_the_config_no_longer_declares_stop_the_pull_and_keep_gold(store):
    tasks = _ls_tasks({"row:0": "spam", "row:1": "ham", "row:2": "spam"})
    store.record_annotations("proj", annotations_from_tasks(tasks, ("ham", "spam")))
    before, _ = review_gold(store.path)
    assert before["label"].tolist() == [1, 0, 1]
    # "spam" renamed to "junk" in project.classes: the old answers still say "spam"
    with pytest.raises(LabelError) as info:
        store.record_annotations("proj", annotations_from_tasks(tasks, ("ham", "junk"), title="proj"))
    message = str(info.value)
    assert "2 answer(s) on 2 task(s) choose class(es) ['spam'] that project.classes ['ham', 'junk'] does not declare" in message
    assert "no stored gold label was changed or removed" in message and "--rename 'spam=<new name>'" in message
    assert "['row:0', 'row:2']" in message
    after, _ = review_gold(store.path)
    pd.testing.assert_frame_equal(after, before)  # nothing deleted


def test_renamed_classes_are_mapped_on_pull():
    tasks = _ls_tasks({"row:0": "spam", "row:1": "ham"})
    mapped = annotations_from_tasks(tasks, ("ham", "junk"), renames={"spam": "junk"})
    assert [(a.task_key, a.label, a.annotator) for a in mapped] == [("row:0", 1, "alice@x"), ("row:1", 0, "alice@x")]
    with pytest.raises(ConfigError, match=r"must map onto project.classes \['ham', 'junk'\]; got \{'spam': 'eggs'\}"):
        annotations_from_tasks(tasks, ("ham", "junk"), renames={"spam": "eggs"})


def test_a_pull_with_the_rename_changes_no_stored_gold(store):
    tasks = _ls_tasks({"row:0": "spam", "row:1": "ham"})
    store.record_annotations("proj", annotations_from_tasks(tasks, ("ham", "spam")))
    result = store.record_annotations("proj", annotations_from_tasks(tasks, ("ham", "junk"), renames={"spam": "junk"}))
    assert (result.stored, result.inserted, result.updated, result.deleted) == (2, 0, 0, 0)


def test_cli_rename_must_be_old_equals_new(tmp_path, capsys):
    from labeling.cli import main

    from ..conftest import write_project

    path = write_project(tmp_path, '[project]\nname = "p"\nclasses = ["ham", "junk"]\n')
    assert main(["review", "pull", "--config", str(path), "--rename", "spam"]) == 2
    assert "--rename 'spam' must look like OLD=NEW" in capsys.readouterr().err


def test_gold_stored_under_more_classes_is_refused_by_name_not_an_index_error():
    gold = pd.DataFrame([{"task_key": "row:b", "source": "dataset", "row_id": "b", "text": "tb", "label": 1},
                         {"task_key": "f:9", "source": "feedback", "row_id": None, "text": "new", "label": 2}])
    with pytest.raises(LabelError, match=r"1 stored gold label\(s\) are not a class index of project.classes "
                                         r"\['ham', 'spam'\] \(0..1\): \['2'\], tasks \['f:9'\]"):
        match_gold(gold, _splits())
    assert match_gold(gold.iloc[:1], _splits()).summary()["train_rows"] == 1
