"""The review jobs' wiring (labeling/review/jobs.py)."""

from __future__ import annotations

import dataclasses

import pytest

from labeling.config import ProjectConfig
from labeling.errors import ConfigError
from labeling.models.end_models import SklearnTextClassifier, TorchTextClassifier
from labeling.review.jobs import label_error_model


def _config(**end_model) -> ProjectConfig:
    config = ProjectConfig(name="p", classes=("ham", "spam"), seed=7)
    return dataclasses.replace(config, end_model=dataclasses.replace(config.end_model, **end_model))


@pytest.mark.parametrize("candidates, kind", [(("word_hashed", "word_char"), SklearnTextClassifier),
                                              (("embedding", "word"), TorchTextClassifier)])
def test_with_auto_the_label_error_check_uses_the_first_candidate_family(candidates, kind):
    model = label_error_model(_config(type="auto", candidates=candidates))
    assert isinstance(model, kind) and model.random_state == 7 and model.cardinality == 2


def test_with_fixed_settings_the_label_error_check_uses_them():
    model = label_error_model(_config(type="sklearn", analyzer="word", C=3.0))
    assert isinstance(model, SklearnTextClassifier) and (model.analyzer, model.C) == ("word", 3.0)


def test_an_unknown_first_candidate_is_a_config_error():
    with pytest.raises(ConfigError, match="nope"):
        label_error_model(_config(type="auto", candidates=("nope",)))


def test_served_candidates_name_the_votes_with_the_serving_runs_lfs(tmp_path):
    """Issue 23 row 1: served votes are shown under the LF names of the run that computed them,
    never the working tree's; votes of a run with other LFs are left out."""
    from labeling import load_config, run_retrain
    from labeling.review.jobs import served_candidates
    from labeling.serve.feedback import FeedbackLog, PredictionRecord, text_sha256

    from ..conftest import tiny_project

    config = load_config(tiny_project(tmp_path))
    run = run_retrain(config).run_id

    def logged(pid, at, version, votes):
        return PredictionRecord(id=pid, created_at=at, model_version=version, probabilities=(0.5, 0.5), label=0,
                                lf_votes=votes, text=pid, text_sha256=text_sha256(pid), lf_votes_status="done")

    with FeedbackLog(config.resolve(config.store)) as log:
        log.log_predictions([logged("older", "2000-01-01", "a-run-with-3-lfs", (0, -1, 1)),
                             logged("newer", "2001-01-01", run, (0, -1))])
    candidates, version, names = served_candidates(config)
    assert names == ["weak_song", "weak_exclamation"] and version == f"served:{run},a-run-with-3-lfs"
    assert candidates.votes == [None, (0, -1)]


def test_rows_where_the_label_model_ties_get_the_served_models_pre_annotation(tmp_path):
    from labeling import load_config, run_retrain
    from labeling.review.jobs import served_model_where_tied
    from labeling.review.label_studio import ReviewItem, build_tasks

    from ..conftest import tiny_project

    config = load_config(tiny_project(tmp_path / "p"))
    items = [ReviewItem("row:1", "check out my channel 1!", (0.5, 0.5), (-1, -1), "entropy"),
             ReviewItem("row:2", "love this song 2", (0.9, 0.1), (0, -1), "entropy")]
    assert served_model_where_tied(config, items, ["a", "b"]) == items  # no run recorded yet: unchanged
    run_id = run_retrain(config).run_id
    items = served_model_where_tied(config, items, ["check out my channel 1!", "love this song 2"])
    tasks = build_tasks(items, classes=config.classes, lf_names=["a", "b"], model_version="label-model:x")
    tied, clear = (t["predictions"][0] for t in tasks)
    assert tied["model_version"] == f"end-model:{run_id}" and tied["result"][0]["value"]["choices"] == ["spam"]
    assert clear["model_version"] == "label-model:x" and clear["score"] == 0.9


@pytest.mark.parametrize("sizes, runs", [
    ([300_000, 300_000, 300_000, 900_000, 1, 1], [[0, 1], [2], [3], [4, 5]]),
    ([10] * 5, [[0, 1, 2, 3, 4]]),
    ([], []),
])
def test_predict_all_requests_stay_under_the_body_budget(sizes, runs):
    from labeling.review.jobs import request_chunks

    assert request_chunks(list(range(len(sizes))), sizes, max_bytes=800_000) == runs


def _counted(n: int, produced: list, fail_at: int | None = None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"item {i} failed")
        produced.append(i)
        yield i


def test_ahead_keeps_order_and_stays_within_its_queue():
    """predict-all's stages: each in its own thread, at most one queued item plus the one in
    hand ahead of the consumer (a bounded memory of batches), items in their order."""
    import time

    from labeling.review.jobs import ahead

    produced: list = []
    seen = []
    for item in ahead(ahead(_counted(20, produced))):
        time.sleep(0.002)  # a slow consumer: the producers must wait, not run on
        seen.append(item)
        assert len(produced) - len(seen) <= 4  # two stages: a queued item and one in hand each
    assert seen == list(range(20))


def test_ahead_raises_a_producers_error_where_its_item_would_come_and_stops_on_close():
    import threading

    from labeling.review.jobs import ahead

    got = []
    with pytest.raises(ValueError, match="item 3 failed"):
        for item in ahead(x * 10 for x in ahead(_counted(9, [], fail_at=3))):
            got.append(item)
    assert got == [0, 10, 20]
    produced: list = []
    stages = ahead(ahead(_counted(10**6, produced)))
    next(stages)
    stages.close()  # the consumer leaves: both producer threads stop
    assert len(produced) < 10 and not [t for t in threading.enumerate() if t.name == "pipeline-stage"]
