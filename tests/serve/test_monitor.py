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
IN_DISTRIBUTION = (50, 200, 2000)
N_ONE_CLASS = 200


@pytest.fixture(scope="module")
def served(recorded_youtube_run, tmp_path_factory, data_dir):
    """Serve the YouTube run (texts kept) and log, in turn: samples of 50, 200 and 2,000 texts
    drawn from the project's test split (the reference's source; with replacement, seeded),
    200 of its spam comments only, then IMDB reviews; each checked over its own window.

    The 2,000 are the served predictions of the test split's texts (each served once), logged
    again as drawn: the server's answer to a text does not change, and serving 2,000 texts
    with inline spaCy LFs took 37 s."""
    from fastapi.testclient import TestClient

    from labeling.data.datasets import load_dataset
    from labeling.serve.app import ServeSettings, create_app
    from labeling.serve.feedback import FeedbackLog, PredictionRecord

    config, result = recorded_youtube_run
    store = copy_store(result.store_path, tmp_path_factory.mktemp("monitor") / "store.db")
    settings = ServeSettings(config_path=config.base_dir + "/project.toml", overrides=(f'project.store="{store}"',),
                             run_id=result.run_id, store_text=True, alias_poll_s=0.1,
                             lf_votes="inline")  # votes in the log before the drift check reads it
    test = load_dataset(config).test
    spam = test[test["label"] == config.classes.index("spam")]["text"]
    imdb = pd.read_csv(data_dir / "imdb" / "test.csv").sample(N_SHIFTED, random_state=0)["text"]
    samples = [*((f"in-distribution {n}", test["text"].sample(n, replace=True, random_state=n).tolist())
                 for n in IN_DISTRIBUTION[:2]),
               ("test split", test["text"].tolist()),
               ("one class", spam.sample(N_ONE_CLASS, replace=True, random_state=0).tolist()),
               ("shifted", [text[:1500] for text in imdb])]
    checks = {}

    def check(name, window):
        checks[name] = check_drift(store, dataclasses.replace(config.monitor, window=window), result.run_id)

    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, texts in samples:
            for start in range(0, len(texts), 100):
                r = client.post("/predict", json={"texts": texts[start : start + 100]})
                assert r.status_code == 200, r.text
            if name != "test split":
                check(name, len(texts))
                continue
            n = IN_DISTRIBUTION[2]
            with FeedbackLog(store) as log:
                rows = log.read("SELECT * FROM predictions WHERE model_version = ? ORDER BY rowid DESC LIMIT ?",
                                [result.run_id, len(texts)])
                drawn = np.random.default_rng(n).integers(len(rows), size=n)
                log.log_predictions([PredictionRecord(
                    f"drawn-{i}", rows[j]["created_at"], result.run_id, tuple(json.loads(rows[j]["probabilities"])),
                    rows[j]["label"], tuple(json.loads(rows[j]["lf_votes"])), rows[j]["text"], rows[j]["text_sha256"])
                    for i, j in enumerate(drawn.tolist())])
            check(f"in-distribution {n}", n)
    return config, result, store, checks


@pytest.mark.parametrize("n", IN_DISTRIBUTION)
def test_in_distribution_traffic_of_any_size_is_not_flagged(served, n):
    _, result, _, checks = served
    report = checks[f"in-distribution {n}"]
    print(report.format())
    assert report.n_predictions == n
    assert not report.retrain, report.format()
    tested = [c for c in report.checks if c.p_value is not None]
    low = min(tested, key=lambda c: c.p_value)
    print(f"in-distribution {n}: smallest p {low.p_value:.3g} ({low.name}), Holm-adjusted {low.p_adjusted:.3g}; "
          f"predicted classes p {next(c.p_value for c in tested if c.name == 'predicted classes'):.3g}")
    # every LF twice, the classes, the confidence and the OOV share: one family, Holm-corrected
    assert len(tested) == 2 * len(result.lfs) + 3 and all(c.p_adjusted >= c.p_value for c in tested)
    assert len(report.lf_drift) == len(result.lfs)
    # Jensen-Shannon stays the reported effect size; its old fixed 0.1 threshold is no verdict
    assert {c.effect for c in report.checks if c.name == "predicted classes"} == {"Jensen-Shannon"}
    # the detectable shift shrinks with the traffic (to the reference's own limit)
    classes = next(c for c in report.checks if c.name == "predicted classes")
    assert 0 < classes.detectable < 1


def test_the_detectable_shift_shrinks_with_traffic(served):
    _, _, _, checks = served
    shift = [next(c.detectable for c in checks[f"in-distribution {n}"].checks if c.name == "predicted classes")
             for n in IN_DISTRIBUTION]
    assert shift == sorted(shift, reverse=True) and shift[0] > shift[-1]


@pytest.mark.parametrize("name", ["one class", "shifted"])
def test_shifted_traffic_is_flagged_with_its_p_value(served, name):
    _, _, _, checks = served
    report = checks[name]
    print(report.format())
    assert report.retrain, report.format()
    drifted = [c for c in report.checks if c.drifted]
    assert all(c.p_adjusted < 0.05 for c in drifted)
    assert report.reasons and all("p = " in r or "p < " in r for r in report.reasons)
    if name == "one class":  # served only spam: the predicted classes move
        assert "predicted classes" in {c.name for c in drifted}
    else:  # IMDB reviews served to the YouTube model: LFs stop voting, the vocabulary is new
        assert any(c.name.startswith("LF coverage") for c in drifted)
        assert "out-of-vocabulary tokens" in {c.name for c in drifted}


def test_monitor_is_deterministic(served):
    _, result, store, checks = served
    config = served[0]
    again = check_drift(store, dataclasses.replace(config.monitor, window=N_SHIFTED), result.run_id)
    assert again == checks["shifted"]


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
    reference = {**REFERENCE, "confidence": {"mean": 0.85, "histogram": [0] * 8 + [50, 50]}, "oov_share": 0.0,
                 "oov_histogram": [100] + [0] * 9}
    steady["confidence"]["histogram"] = [0] * 8 + [50, 50]
    report = compare(reference, steady, MonitorConfig())
    assert not report.retrain, report.format()
    shifted = served_profile(_rows(100, [0.45, 0.55], [-1, -1], "totally new words here"), REFERENCE)
    report = compare(reference, shifted, MonitorConfig())
    drifted = {c.name for c in report.checks if c.drifted}
    # every LF rate that moved at n = 100 against 100 (b: 0.1 -> 0 too); conflict of b (0 -> 0) did not
    assert drifted == {"LF coverage: a", "LF coverage: b", "LF conflict: a", "predicted classes", "confidence",
                       "out-of-vocabulary tokens"}
    assert all(c.p_adjusted < 0.05 for c in report.checks if c.drifted)
    # a reference recorded before the OOV histogram: the share is reported, not tested
    old = compare(REFERENCE, shifted, MonitorConfig())
    oov = next(c for c in old.checks if c.name == "out-of-vocabulary tokens")
    assert oov.p_value is None and not oov.drifted and oov.value == pytest.approx(0.9)


@pytest.mark.parametrize("n", [50, 200, 2000])
def test_in_distribution_draws_are_flagged_at_most_at_the_level(n):
    """Served counts drawn from the reference's own distribution: over 100 seeded draws the
    Holm-corrected verdict says RETRAIN in at most about alpha of them (binomial slack)."""
    rng = np.random.default_rng(n)
    reference = {**REFERENCE, "lf_coverage": [0.3, 0.02], "lf_conflict": [0.006, 0.006],
                 "class_distribution": [0.7, 0.3], "n_reference": 400,
                 "confidence": {"mean": 0.8, "histogram": [0, 0, 0, 0, 0, 40, 80, 80, 100, 100]}}
    retrains = 0
    for _ in range(100):
        a, b, both = rng.binomial(n, [0.3, 0.02, 0.006]) / n
        spam = rng.binomial(n, 0.3) / n
        served = {"n": n, "n_with_votes": n, "lf_coverage": [a, b], "lf_conflict": [both, both],
                  "class_distribution": [1 - spam, spam], "oov_share": None, "oov_histogram": None,
                  "confidence": {"mean": 0.8, "histogram": rng.multinomial(
                      n, np.array(reference["confidence"]["histogram"]) / 400).tolist()}}
        retrains += compare(reference, served, MonitorConfig()).retrain
    assert retrains <= 10, retrains


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
    assert "predicted classes" in drift and "p (Holm)" in drift
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
