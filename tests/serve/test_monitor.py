"""Monitoring: served traffic through the real app and predictions table vs the training data."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd
import pytest

from labeling.cli import main
from labeling.config import MonitorConfig
from labeling.serve.monitor import check_drift, compare, oov_share, served_profile

from ..conftest import copy_store

N_SHIFTED = 100
N_UNSHIFTED = 250


@pytest.fixture(scope="module")
def served(recorded_youtube_run, tmp_path_factory, data_dir):
    """Serve the YouTube run (texts kept) and log held-out YouTube texts, then IMDB reviews."""
    from fastapi.testclient import TestClient

    from labeling.serve.app import ServeSettings, create_app

    config, result = recorded_youtube_run
    store = copy_store(result.store_path, tmp_path_factory.mktemp("monitor") / "store.db")
    settings = ServeSettings(config_path=config.base_dir + "/project.toml", overrides=(f'project.store="{store}"',),
                             run_id=result.run_id, store_text=True, alias_poll_s=0.1,
                             lf_votes="inline")  # votes in the log before the drift check reads it
    # Unshifted: a bootstrap sample of the held-out video's comments (the reference's source,
    # with sampling noise); shifted: IMDB movie reviews.
    youtube = pd.read_csv(data_dir / "youtube_spam" / "Youtube05-Shakira.csv")["CONTENT"]
    youtube = youtube.sample(N_UNSHIFTED, replace=True, random_state=1).tolist()
    imdb = pd.read_csv(data_dir / "imdb" / "test.csv").sample(N_SHIFTED, random_state=0)["text"]
    imdb = [text[:1500] for text in imdb]
    checks = {}
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        for texts, name in ((youtube, "unshifted"), (imdb, "shifted")):
            for start in range(0, len(texts), 100):
                r = client.post("/predict", json={"texts": texts[start : start + 100]})
                assert r.status_code == 200, r.text
            checks[name] = check_drift(store, dataclasses.replace(config.monitor, window=len(texts)), result.run_id)
    return config, result, store, checks


def test_unshifted_held_out_youtube_traffic_is_not_flagged(served):
    _, result, _, checks = served
    report = checks["unshifted"]
    assert report.n_predictions == N_UNSHIFTED
    assert not report.retrain, report.format()
    print(report.format())
    values = {c.name: c.value for c in report.checks}
    assert 0 < values["predicted-class Jensen-Shannon"] < 0.05
    assert max(v for name, v in values.items() if name.startswith("LF ")) < 0.1
    assert len(report.lf_drift) == len(result.lfs)


def test_imdb_reviews_served_to_the_youtube_model_are_flagged(served):
    _, _, _, checks = served
    report = checks["shifted"]
    assert report.n_predictions == N_SHIFTED and report.retrain
    drifted = {c.name for c in report.checks if c.drifted}
    assert "out-of-vocabulary token share increase" in drifted or "predicted-class Jensen-Shannon" in drifted
    assert any(name.startswith("LF coverage") for name in drifted)
    assert report.reasons and all(" > " in reason for reason in report.reasons)
    print(report.format())


def test_monitor_command_exit_code_says_whether_to_retrain(served, capsys):
    config, result, store, _ = served
    args = ["monitor", "--config", config.base_dir + "/project.toml", "--set", f'project.store="{store}"',
            "--set", f"monitor.window={N_SHIFTED}", "--run-id", result.run_id, "--json"]
    assert main(args) == 3
    assert json.loads(capsys.readouterr().out)["retrain"] is True
    assert main([*args[:-3], "--run-id", "no-such-run"]) == 2


REFERENCE = {
    "classes": ["ham", "spam"], "lfs": ["a", "b"], "lf_coverage": [0.5, 0.1], "lf_conflict": [0.1, 0.0],
    "class_distribution": [0.5, 0.5], "confidence": {"mean": 0.8, "histogram": [0] * 10}, "oov_share": 0.1,
    "n_reference": 100, "vocabulary": ["check", "out", "my", "song"],
}


def _rows(n, probs, votes, text):
    return [{"probabilities": json.dumps(probs), "label": int(np.argmax(probs)), "lf_votes": json.dumps(votes),
             "text": text} for _ in range(n)]


def test_compare_flags_each_kind_of_drift():
    steady = served_profile(_rows(50, [0.1, 0.9], [1, -1], "check out my song")
                            + _rows(50, [0.9, 0.1], [-1, -1], "my song"), REFERENCE)
    steady["lf_coverage"], steady["lf_conflict"] = [0.5, 0.1], [0.1, 0.0]
    report = compare({**REFERENCE, "confidence": {"mean": 0.9, "histogram": [0] * 10}, "oov_share": 0.0},
                     steady, MonitorConfig())
    assert not report.retrain, report.format()
    shifted = served_profile(_rows(100, [0.45, 0.55], [-1, -1], "totally new words here"), REFERENCE)
    report = compare(REFERENCE, shifted, MonitorConfig())
    drifted = {c.name for c in report.checks if c.drifted}
    assert drifted == {"LF coverage: a", "predicted-class Jensen-Shannon", "mean confidence drop",
                       "out-of-vocabulary token share increase"}


def test_too_little_traffic_gives_no_verdict_and_hashed_texts_skip_oov():
    few = served_profile(_rows(10, [0.1, 0.9], [1, -1], None), REFERENCE)
    report = compare(REFERENCE, few, MonitorConfig(min_predictions=50))
    assert not report.retrain and "at least 50" in report.reasons[0]
    # not "no retrain needed": too little traffic is no verdict
    assert "no retrain needed" not in report.format()
    assert "not enough traffic (10 of 50 predictions needed)" in report.format().splitlines()[0]
    hashed = compare(REFERENCE, served_profile(_rows(60, [0.1, 0.9], [1, -1], None), REFERENCE), MonitorConfig())
    assert any("OOV share not measured" in n for n in hashed.notes)


def test_oov_share_counts_tokens():
    assert oov_share(["check out THIS", "song"], {"check", "out", "song"}) == pytest.approx(0.25)
    assert np.isnan(oov_share(["!!!"], {"a"}))


def test_the_run_report_shows_the_drift(served):
    from labeling.pipeline.report import write_report

    config, result, store, _ = served
    path = write_report(store, result.run_id, monitor_settings=dataclasses.replace(config.monitor, window=N_SHIFTED))
    html = path.read_text(encoding="utf-8")
    drift = html[html.index('<section id="drift">'):html.index('<section id="verification">')]
    assert f"{N_SHIFTED} served predictions" in drift and "retrain recommended" in drift
    assert "predicted-class Jensen-Shannon" in drift
    # Reports show served traffic: owner-only, like the store.
    assert path.stat().st_mode & 0o077 == 0 and path.parent.stat().st_mode & 0o077 == 0


def test_monitor_reads_only_its_window_through_the_index(tmp_path):
    from labeling.serve.feedback import FeedbackLog, PredictionRecord
    from labeling.serve.monitor import served_rows

    with FeedbackLog(tmp_path / "s.db") as log:
        log.log_predictions([
            PredictionRecord(id=f"p{i}", created_at=f"2026-01-01T00:00:{59 - i % 60:02d}+00:00",
                             model_version="a" if i % 3 else "b", probabilities=(i / 100, 1 - i / 100), label=0,
                             lf_votes=None, text=f"t{i}", text_sha256="h")
            for i in range(100)])
        # The latest by commit order (rowid), whatever the clock said.
        assert [r["text"] for r in served_rows(log, "a", 3)] == ["t98", "t97", "t95"]
        plan = " ".join(r["detail"] for r in log.read(
            "EXPLAIN QUERY PLAN SELECT probabilities, label, lf_votes, text FROM predictions WHERE model_version = ?"
            " ORDER BY rowid DESC LIMIT ?", ["a", 3]))
    # No scan of the table and no sort of the run's predictions: 3.7 s at 130k rows before.
    assert "USING INDEX predictions_model_version" in plan and "TEMP B-TREE" not in plan, plan
