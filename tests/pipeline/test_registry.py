"""Model registry: the promotion gate, alias history and rollback followed by a real app."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from labeling import load_config, run_retrain
from labeling.cli import main
from labeling.errors import PromotionRefused, StoreError
from labeling.serve.feedback import FeedbackLog
from labeling.pipeline.registry import CANDIDATE, CHAMPION, Registry, gate, promote_run

from ..conftest import FIXTURES, break_end_model, copy_store, record_model_as_run, tiny_project


@pytest.mark.parametrize(
    "candidate, champion, margin, passed",
    [(0.90, None, 0.0, True), (0.90, 0.90, 0.0, True), (0.89, 0.90, 0.0, False),
     (0.89, 0.90, 0.02, True), (0.87, 0.90, 0.02, False), (0.95, 0.90, 0.0, True)],
)
def test_gate_rule(candidate, champion, margin, passed):
    ok, reason = gate(candidate, champion, margin=margin, metric="accuracy")
    assert ok is passed
    assert reason.startswith("refused") is (not passed)


@pytest.fixture(scope="module")
def two_runs(recorded_youtube_run, tmp_path_factory):
    """The recorded YouTube run as champion, and a worse candidate (two weak LFs) in a copy of its store."""
    config, good = recorded_youtube_run
    tmp = tmp_path_factory.mktemp("registry")
    store = copy_store(good.store_path, tmp / "store.db")
    overrides = [f'project.store="{store}"', f'project.artifacts="{tmp / "artifacts"}"']
    with Registry(store) as registry:
        registry.set(CHAMPION, good.run_id)
    weak_config = load_config(config.base_dir + "/project.toml",
                              [*overrides, 'lfs.modules=["lf_modules.youtube_weak"]', f'lfs.root="{FIXTURES}"',
                               "slices.modules=[]", "label_model.type=majority_vote"])
    weak = run_retrain(weak_config)
    return config, good, weak, store, overrides


def test_a_worse_candidate_is_refused_and_the_run_says_why(two_runs):
    config, good, weak, store, _ = two_runs
    decision = weak.promotion
    assert decision["champion_run_id"] == good.run_id and not decision["passed"] and not decision["promoted"]
    assert decision["candidate_score"] == pytest.approx(weak.metric("served"))
    assert decision["champion_score"] == pytest.approx(good.metric("served"))
    assert decision["candidate_score"] < decision["champion_score"]
    assert decision["reason"].startswith("refused: candidate accuracy")
    with Registry(store) as registry:
        assert registry.get(CHAMPION) == good.run_id and registry.get(CANDIDATE) == weak.run_id
        assert registry.decisions(weak.run_id)[-1]["reason"] == decision["reason"]
    with pytest.raises(PromotionRefused, match="refused: candidate accuracy"):
        promote_run(load_config(config.base_dir + "/project.toml", [f'project.store="{store}"']), store)
    with Registry(store) as registry:
        assert registry.get(CHAMPION) == good.run_id


@pytest.mark.slow  # the margin rule itself is covered by test_gate_rule; this is the command path
def test_the_margin_lets_a_slightly_worse_candidate_through(two_runs):
    config, good, weak, store, overrides = two_runs
    gap = good.metric("served") - weak.metric("served")
    loose = load_config(config.base_dir + "/project.toml", [*overrides, f"promotion.margin={gap + 0.01}"])
    with Registry(store) as registry:
        champion = registry.get(CHAMPION)
    try:
        decision = promote_run(loose, store, weak.run_id)
        assert decision.passed and decision.promoted
    finally:
        with Registry(store) as registry:
            registry.set(CHAMPION, champion)


def test_rollback_walks_back_the_version_stack_and_the_server_follows(two_runs, tmp_path):
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app

    config, good, weak, source, _ = two_runs
    store = copy_store(source, tmp_path / "store.db")
    with Registry(store) as registry:
        registry.set(CHAMPION, good.run_id)
    # The server's own promote path moves the alias directly; the triggers still record it.
    with FeedbackLog(store) as log:
        log.set_alias(weak.run_id, CHAMPION)
    settings = ServeSettings(config_path=config.base_dir + "/project.toml", overrides=(f'project.store="{store}"',),
                             lf_votes="off", alias_poll_s=0.1)
    with TestClient(create_app(settings)) as client:
        assert _served_version(client, weak.run_id) == weak.run_id
        assert main(["rollback", "--config", config.base_dir + "/project.toml", "--set", f'project.store="{store}"']) == 0
        assert _served_version(client, good.run_id) == good.run_id
    with Registry(store) as registry:
        assert registry.get(CHAMPION) == good.run_id
        assert registry.versions(CHAMPION)[-1] == good.run_id
        actions = [(e["run_id"], e["action"]) for e in registry.history(CHAMPION)]
        assert actions[-2:] == [(weak.run_id, "set"), (good.run_id, "rollback")]


def _served_version(client, expected: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    version = ""
    while time.monotonic() < deadline:
        response = client.get("/livez")
        version = response.json().get("model_version", "")
        if version == expected:
            break
        time.sleep(0.1)
    return version


def test_rollback_pops_rather_than_toggles(two_runs, tmp_path):
    _, good, weak, source, _ = two_runs
    store = copy_store(source, tmp_path / "store.db")
    with Registry(store) as registry:
        for run_id in (good.run_id, weak.run_id, good.run_id, weak.run_id):
            registry.set("staging", run_id)
        assert registry.versions("staging") == [good.run_id, weak.run_id, good.run_id, weak.run_id]
        assert registry.rollback("staging") == (weak.run_id, good.run_id)
        assert registry.rollback("staging") == (good.run_id, weak.run_id)
        assert registry.rollback("staging") == (weak.run_id, good.run_id)
        assert registry.versions("staging") == [good.run_id]
        with pytest.raises(StoreError, match="no previous version"):  # the first version has nothing before it
            registry.rollback("staging")
        with pytest.raises(StoreError, match="no run 'nope'"):
            registry.set("staging", "nope")


# --- broken and tampered artifacts at the command line; forced promotions are recorded ----------

@pytest.mark.parametrize("fault, record", [("not-a-zip", True), ("missing", True), ("wrong-key", True),
                                           ("rewritten", False)])
def test_promote_and_export_print_one_line_errors_for_a_run_that_cannot_load(fault, record, tmp_path, capsys):
    config_path = tiny_project(tmp_path)
    run = run_retrain(load_config(config_path))
    named = break_end_model(load_config(config_path), run.run_id, fault, record=record)
    capsys.readouterr()
    for argv in (["promote", run.run_id], ["export-onnx", run.run_id, str(tmp_path / "onnx")]):
        assert main([*argv, "--config", str(config_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
        assert str(named) in err
        if not record:  # files and manifest agree with each other, not with the run's record
            assert "sha256 does not match the one recorded with the run" in err
    assert not (tmp_path / "onnx").exists()
    with Registry(load_config(config_path).resolve(load_config(config_path).store)) as registry:
        assert registry.get(CHAMPION) is None


def test_a_forced_promotion_records_who_why_and_when(tmp_path, capsys):
    import numpy as np

    from labeling import SklearnTextClassifier, load_dataset

    config_path = tiny_project(tmp_path)
    config = load_config(config_path)
    good = run_retrain(config)
    assert main(["promote", good.run_id, "--config", str(config_path)]) == 0
    train = load_dataset(config).train
    flipped = SklearnTextClassifier(2).fit(train["text"].tolist(), 1 - np.asarray(train["label"]))
    worse = record_model_as_run(config, good.run_id, flipped, good.run_id[:-6] + "ffffff")
    capsys.readouterr()
    assert main(["promote", worse, "--config", str(config_path)]) == 1
    assert "refused: candidate accuracy" in capsys.readouterr().err
    assert main(["promote", worse, "--force", "--config", str(config_path)]) == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert main(["promote", worse, "--force", "--reason", "hotfix for ticket 7", "--config", str(config_path)]) == 0
    with Registry(config.resolve(config.store)) as registry:
        assert registry.get(CHAMPION) == worse
        last = registry.decisions(worse)[-1]
        assert (last["forced"], last["promoted"], last["passed"], last["note"]) == (1, 1, 0, "hotfix for ticket 7")
        assert last["actor"].startswith("cli") and last["reason"].endswith("(forced)") and last["created_at"]
        assert registry.history(CHAMPION)[-1]["action"] == "forced"
        assert registry.versions(CHAMPION) == [good.run_id, worse]


def test_the_gate_reuses_recorded_predictions_and_never_rescores(two_runs, tmp_path):
    """Both runs' scores come from their checksummed test predictions: with the champion's
    end model files gone, the gate still scores it; the candidate's model is loaded (a run
    that cannot be served is never promoted) but not run; a tampered file is refused."""
    import shutil

    from labeling.errors import ArtifactError
    from labeling.pipeline.predictions import PREDICTIONS_ARTIFACT, load_test_predictions
    from labeling.pipeline.store import RunStore

    config, good, weak, store, _ = two_runs
    assert "re-scored" not in weak.promotion["reason"]
    copy = copy_store(store, tmp_path / "store.db")
    with RunStore(copy) as runs:
        recorded = {run_id: runs.get_run(run_id) for run_id in (good.run_id, weak.run_id)}
        assert runs.get_documents(weak.run_id)["test_predictions"] == {"artifact": PREDICTIONS_ARTIFACT,
                                                                       "rows": weak.split_sizes["test"]}
    predictions = {run_id: load_test_predictions(run) for run_id, run in recorded.items()}

    def end_model_folder(run_id):
        return Path(next(a["path"] for a in recorded[run_id]["artifacts"] if a["name"] == "end_model/manifest.json")).parent

    project = load_config(config.base_dir + "/project.toml", [f'project.store="{copy}"'])
    moved = tmp_path / "models"
    for run_id, expected in ((good.run_id, PromotionRefused), (weak.run_id, ArtifactError)):
        shutil.move(str(end_model_folder(run_id)), str(moved / run_id))
        try:
            with pytest.raises(expected) as refused:
                promote_run(project, copy)
        finally:
            shutil.move(str(moved / run_id), str(end_model_folder(run_id)))
        if expected is PromotionRefused:  # the champion's files gone: scored from its predictions
            assert "re-scored" not in str(refused.value) and "cannot be loaded" not in str(refused.value)
            with Registry(copy) as registry:
                decision = registry.decisions(weak.run_id)[-1]
            assert decision["candidate_score"] == pytest.approx(weak.metric("served"))
            assert decision["champion_score"] == pytest.approx(good.metric("served"))
        else:  # the candidate's files gone: refused before any score
            assert "end_model" in str(refused.value)
    assert len(predictions[weak.run_id].ids) == weak.split_sizes["test"]
    path = Path(next(a["path"] for a in recorded[weak.run_id]["artifacts"] if a["name"] == PREDICTIONS_ARTIFACT))
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ArtifactError, match="sha256 does not match"):
            load_test_predictions(recorded[weak.run_id])
    finally:
        path.write_bytes(original)


def test_the_gate_compares_a_champion_of_another_label_schema_only_through_the_mapping(tmp_path):
    import csv

    from labeling.cli import main

    from ..conftest import FIXTURES, tiny_project

    project = tiny_project(tmp_path / "p")
    shutil.copytree(FIXTURES / "lf_modules", tmp_path / "p" / "lf_modules")  # the change rewrites it
    rows = list(csv.reader(open(tmp_path / "p" / "comments.csv", encoding="utf-8")))
    with open(tmp_path / "p" / "comments.csv", "w", newline="", encoding="utf-8") as out:  # labels as indices
        csv.writer(out).writerows([rows[0]] + [[text, {"ham": 0, "spam": 1}[label]] for text, label in rows[1:]])
    project.write_text(project.read_text().replace(f'root = "{FIXTURES}"', 'root = "."')
                       .replace("seed = 1", 'seed = 1\nstore = "store.db"\nartifacts = "artifacts"'))
    champion = run_retrain(load_config(project, ["promotion.auto=true"]))
    assert champion.promotion["promoted"]
    for change in (["rename", "ham", "legit"], ["add", "other"]):
        assert main(["schema", *change, "--config", str(project)]) == 0
    candidate = run_retrain(load_config(project))
    reason = candidate.promotion["reason"]
    assert f"champion {champion.run_id} was trained on classes ['ham', 'spam']" in reason
    assert "the candidate on ['legit', 'spam', 'other']" in reason and "predictions mapped" in reason
    assert candidate.promotion["champion_score"] == pytest.approx(champion.promotion["candidate_score"])
