"""Benchmarks never write into the project's store."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys

import pytest

from .conftest import REPO, copy_store


def _serve_load():
    spec = importlib.util.spec_from_file_location("serve_load", REPO / "benchmarks" / "serve_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _predictions(path) -> int:
    with sqlite3.connect(str(path)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return db.execute("SELECT count(*) FROM predictions").fetchone()[0] if "predictions" in tables else 0


def _project(recorded_youtube_run, tmp_path):
    config, result = recorded_youtube_run
    store = copy_store(result.store_path, tmp_path / "project" / "store.db")
    return str(REPO / "projects" / "youtube_spam" / "project.toml"), [f'project.store="{store}"'], store


def test_serve_load_points_the_server_at_a_copy_of_the_store(recorded_youtube_run, tmp_path):
    from labeling.config import load_config
    from labeling.serve.feedback import FeedbackLog, PredictionRecord, text_sha256, utc_now

    config_path, overrides, store = _project(recorded_youtube_run, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    served = load_config(config_path, _serve_load().isolated_store(config_path, overrides, scratch))
    copy = served.resolve(served.store)
    assert copy.parent == scratch and copy != store
    with sqlite3.connect(str(copy)) as db, sqlite3.connect(str(store)) as orig:
        assert db.execute("SELECT id FROM runs").fetchall() == orig.execute("SELECT id FROM runs").fetchall()
    with FeedbackLog(copy) as log:  # what the benchmark's server does with its traffic
        log.log_predictions([PredictionRecord(id="p1", created_at=utc_now(), model_version="r", probabilities=(0.5, 0.5),
                                              label=0, lf_votes=None, text=None, text_sha256=text_sha256("x"))])
    assert _predictions(copy) == 1 and _predictions(store) == 0


def test_serve_load_copies_the_store_into_a_new_postgresql_database_and_drops_it(recorded_youtube_run, tmp_path,
                                                                                 postgres_server):
    import json

    import psycopg

    from labeling.serve.feedback import FeedbackLog

    config_path, overrides, store = _project(recorded_youtube_run, tmp_path)
    (tmp_path / "scratch").mkdir()
    with _serve_load().postgres_copy(postgres_server, config_path, overrides, tmp_path / "scratch") as served:
        url = json.loads(served[-1].split("=", 1)[1])
        with FeedbackLog(url) as log:
            assert log.run_ids() == [recorded_youtube_run[1].run_id]
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [database]).fetchone()[0] == 0
    assert _predictions(store) == 0


@pytest.mark.slow
def test_serve_load_run_leaves_the_project_store_untouched(recorded_youtube_run, tmp_path, capsys):
    config_path, overrides, store = _project(recorded_youtube_run, tmp_path)
    before = _predictions(store)
    assert _serve_load().main(["--config", config_path, "--set", overrides[0], "--workers", "1", "--lf-votes", "off",
                               "--rate", "20", "--seconds", "1", "--batch-size", "20", "--batch-repeats", "1"]) == 0
    assert '"single_predict"' in capsys.readouterr().out
    assert _predictions(store) == before


def test_retrain_scale_ratio_table_lists_every_stage_with_its_ratio_to_the_smallest_size():
    spec = importlib.util.spec_from_file_location("retrain_scale", REPO / "benchmarks" / "retrain_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(scale):
        stages = {name: {"seconds": 2.0 * scale, "peak_rss_mb": 100.0 * scale}
                  for name in ("load", "apply", "end_model")}
        return {"cold": {"wall_s": 10.0 * scale, "peak_rss_mb": 100.0 * scale, "stages": stages}}

    table = module.ratio_table({50_000: run(1), 200_000: run(4), 1_000_000: run(20), "apply": []})
    lines = table.splitlines()
    assert "rows ratio: 4, 20" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["load", "apply", "end_model", "wall", "peak"]
    assert lines[2].split()[1:] == ["2.00", "8.00", "40.00", "4.0", "20.0"]
    assert module.ratio_table({50_000: run(1)}) == ""  # one size: nothing to compare


def test_spans_benchmark_reads_test_only_after_every_choice_is_fixed(monkeypatch):
    """benchmarks/spans.py: every selection (valid) happens before the first test load."""
    from labeling.spans.data import SpanDataset

    spec = importlib.util.spec_from_file_location("spans_bench", REPO / "benchmarks" / "spans.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "spans_bench", bench)  # its dataclass looks its module up there
    spec.loader.exec_module(bench)
    events = []

    def load(split, weak_label_names=None, data_dir=None):
        events.append(("load", split))
        doc = (("a", "b", "c"),)
        return SpanDataset(("0",), doc, (((0, 1, 0),),), ((((0, 1, 0),),),), ("lf",), ("X",))

    real_select = bench.select_span_aggregator

    def select(*args, **kwargs):
        events.append(("select", None))
        return real_select(*args, **{**kwargs, "n_folds": 2, "candidates": bench.default_span_candidates(1)[:2]})

    monkeypatch.setattr(bench, "load_bc5cdr", load)
    monkeypatch.setattr(bench, "select_span_aggregator", select)
    rows = bench.score(None, bench.choose(None, ("lf_rec", "all"), end_model=False))
    assert rows and all("test_f1" in r for r in rows)
    first_test = events.index(("load", "test"))
    assert [e for e in events if e[0] == "select"] == [e for e in events[:first_test] if e[0] == "select"]
    assert events.count(("select", None)) == 2


def test_the_tie_order_study_scores_every_order_on_held_out_dev_halves():
    """benchmarks/end_models.py's tie order study reads dev arrays only; an order matters only
    where dev halves cannot tell the candidates apart, and there the better one scores higher."""
    import numpy as np

    spec = importlib.util.spec_from_file_location("end_models", REPO / "benchmarks" / "end_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    # the end model right on 90% of rows, the label model on 85%: close enough for a half to tie often
    end, lm = (np.where(rng.random(60) < right, y, 1 - y) for right in (0.9, 0.85))
    dev = {"end": np.eye(2)[end] * 0.6 + 0.2, "lm": np.eye(2)[lm] * 0.6 + 0.2, "L": np.ones((60, 1), dtype=int),
           "y": y}
    study = module.tie_order_study(dev, classes=("a", "b"), metric="accuracy", repeats=5)
    assert set(study["mean"]) == set(module.ORDERS) and study["rows"] == 60 and 0 <= study["decided"] <= 1
    first = {order[0]: score for order, score in study["mean"].items()}
    assert first["end_model"] >= first["label_model_backoff"]
    ranked = module.rank_orders({"one": study, "two": study})
    assert [o for o, _ in ranked] == sorted(module.ORDERS, key=lambda o: -study["mean"][o])
