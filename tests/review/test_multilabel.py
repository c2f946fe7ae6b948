"""Multi-label review: ``<Choices choice="multiple">`` pre-annotated with the served set, sets pulled as gold."""

from __future__ import annotations

import random

import pytest

from labeling.config import load_config
from labeling.errors import LabelError
from labeling.pipeline.retrain import run_retrain
from labeling.review.gold import GoldStore
from labeling.review.multilabel import (
    MultiLabelReview,
    multilabel_labeling_config,
    pull_multilabel_review,
    push_multilabel_review,
    result_set,
    set_result,
    set_tasks,
)

from ..multilabel.conftest import CLASSES, write_tiny_multilabel


@pytest.mark.parametrize("names", [[], ["music"], ["food", "sport"], ["sport", "music", "food"]])
def test_a_set_round_trips_through_a_result(names):
    assert result_set(set_result(names), CLASSES) == sorted(CLASSES.index(n) for n in names)


def test_an_undeclared_class_is_refused_naming_the_task_and_the_config_is_multiple_choice():
    with pytest.raises(LabelError, match="task 'k1'.*'jazz'"):
        result_set(set_result(["music", "jazz"]), CLASSES, where="task 'k1'")
    config = multilabel_labeling_config(CLASSES)
    assert 'choice="multiple"' in config and "required" not in config
    task = set_tasks(["k"], ["t"], [["music"]], model_version="r1", scores=[0.9])[0]
    assert task["predictions"][0]["result"] == set_result(["music"]) and task["predictions"][0]["score"] == 0.9


def test_label_studio_round_trip_of_20_sets(label_studio, tmp_path):
    url, key = label_studio
    path = write_tiny_multilabel(tmp_path / "project")
    config = load_config(path, [f'review.title="ml-{random.getrandbits(32):x}"'])
    result = run_retrain(config)
    review = MultiLabelReview(url, key, title=config.review.title, classes=config.classes)
    pushed = push_multilabel_review(config, review, n=20)
    assert pushed.created == 20
    tasks = review.existing_tasks()
    rng = random.Random(0)
    wanted = {}
    for task_key, task in tasks.items():  # every task arrives pre-annotated with the served run's set
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == result.run_id
        served = result_set(prediction["result"], CLASSES)
        # a reviewer keeps the set on half the tasks, and answers another set (the empty one included) elsewhere
        answer = served if rng.random() < 0.5 else sorted(rng.sample(range(3), rng.randint(0, 3)))
        review.annotate_set(pushed.task_ids[task_key], [CLASSES[c] for c in answer])
        wanted[task_key] = (task["data"]["text"], answer)
    assert any(not a for _, a in wanted.values())
    pulled = pull_multilabel_review(config, review)
    assert pulled.inserted == 20 and pull_multilabel_review(config, review).inserted == 0  # idempotent
    with GoldStore(config.resolve(config.store)) as store:
        stored = store.label_sets(config.review.title)
    assert {k: list(by.values())[0] for k, by in stored.items()} == wanted  # exact
    # a pull mirrors Label Studio: an answer deleted there since the last pull takes its gold with it
    gone = sorted(wanted)[0]
    review.client.annotations.delete(review.existing_tasks()[gone]["annotations"][0]["id"])
    assert pull_multilabel_review(config, review).deleted == 1
    with GoldStore(config.resolve(config.store)) as store:
        assert set(store.label_sets(config.review.title)) == set(wanted) - {gone}


def test_refine_reports_lfs_per_class_and_flags_a_wrong_gold_class(tmp_path):
    from labeling.review.multilabel import refine_multilabel

    path = write_tiny_multilabel(tmp_path / "project")
    rows = tmp_path / "project" / "rows.csv"
    # one sport-only row (a dev row under the project's seed: gold refine reads) wrongly given food too
    text = rows.read_text(encoding="utf-8").replace("what a goal in the match 6,sport\n",
                                                     "what a goal in the match 6,sport|food\n")
    rows.write_text(text, encoding="utf-8")
    report = refine_multilabel(load_config(path))
    table = report.lf_table
    assert table.loc[("kw_music", "music"), "yes_precision"] == 1.0
    assert table.loc[("no_food_in_studio", "food"), "no_accuracy"] == 1.0
    flagged = report.label_errors
    assert flagged[["text", "class", "given", "suggested"]].values.tolist() == [
        ["what a goal in the match 6", "food", 1, 0]]
    assert "LFs per class on gold" in report.format()


def test_a_reviewed_set_is_each_class_most_annotators_tick_and_an_even_split_is_no_gold(tmp_path):
    from labeling.review.gold import ReviewTask
    from labeling.review.label_studio import Annotation
    from labeling.review.multilabel import review_gold_sets

    tasks = [ReviewTask(f"dataset:{i}", "dataset", str(i), f"text {i}", "margin") for i in range(2)]
    answers = {"dataset:0": {"a": (0, 1), "b": (1,), "c": (1, 2)},  # music by all, sport and food by one of three
               "dataset:1": {"a": (0,), "b": ()}}  # sport by one of two: tied
    with GoldStore(tmp_path / "store.db") as store:
        store.record_pushed("p", tasks, {t.task_key: i for i, t in enumerate(tasks)})
        store.record_annotations("p", [Annotation(n, key, who, -1, "t", labels) for n, (key, who, labels) in enumerate(
            (key, who, labels) for key, by in answers.items() for who, labels in by.items())])
    gold, tied = review_gold_sets(tmp_path / "store.db", "p")
    assert gold[["task_key", "row_id", "label"]].values.tolist() == [["dataset:0", "0", [1]]] and tied == 1
