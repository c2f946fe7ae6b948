"""The retrain job end to end, on real data: YouTube (binary) and TREC (6 classes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from labeling import (
    DatasetError,
    LabelError,
    LFApplicationError,
    RunStore,
    format_summary,
    load_config,
    load_dataset,
    load_end_model,
    load_label_model,
    run_retrain,
)
from labeling.data.datasets import sha256_file

from ..conftest import FIXTURES, REPO, write_project

# Published Snorkel spam tutorial figures on the same split.
TUTORIAL_LABEL_MODEL_ACC = 0.860
TUTORIAL_END_MODEL_ACC = 0.944


def _overrides(tmp: Path) -> list[str]:
    return [f'project.store="{tmp / "store.db"}"', f'project.artifacts="{tmp / "artifacts"}"']


@pytest.fixture(scope="module")
def youtube_run(youtube_config_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("youtube")
    config = load_config(youtube_config_path, _overrides(tmp))
    return config, run_retrain(config)


def test_youtube_meets_the_published_figures(youtube_run):
    _, result = youtube_run
    lm = result.evaluation[result.evaluation["kind"] == "label_model"].set_index("name")["accuracy"]
    label_model_acc = lm[[n for n in lm.index if n.startswith("label model")][0]]
    assert label_model_acc >= TUTORIAL_LABEL_MODEL_ACC
    assert result.metric("end model") >= TUTORIAL_END_MODEL_ACC


def test_youtube_label_model_is_chosen_on_dev_and_explained(youtube_run):
    config, result = youtube_run
    assert config.label_model.type == "auto"
    selection = result.label_model["selection"]
    # every default candidate plus the incumbent, each with its dev score, and the rule that decided
    assert len(selection["candidates"]) >= 5 and all(0 <= c["dev_score"] <= 1 for c in selection["candidates"])
    assert selection["chosen"] == result.label_model["type"] + "()" and "incumbent" in selection["rule"]
    # the chosen model's test accuracy is not below the model the project used before selection
    assert result.metric("label model (SnorkelLabelModel)") >= 0.951


def test_end_model_beats_every_baseline_lf_and_label_model(youtube_run):
    _, result = youtube_run
    table = result.evaluation.set_index("name")
    end = table.loc["end model", "accuracy"]
    others = table[table["kind"].isin(["baseline", "lf", "label_model"])]
    beaten = others.drop(index=[n for n in others.index if n.startswith(("oracle", "human"))])
    assert len(beaten) >= 2 + 10 + 2  # random, majority class, >= 10 LFs, MV, label model
    assert (beaten["accuracy"] < end).all(), beaten[beaten["accuracy"] >= end]
    assert any(n.startswith("oracle") for n in table.index) and any(n.startswith("human") for n in table.index)
    assert table.loc["end model", "train_rows"] < 1586  # uncovered rows were filtered
    assert set(table.columns) >= {"macro_f1", "precision_spam", "recall_ham", "coverage"}


def test_run_is_recorded_with_lineage_and_verified_artifacts(youtube_run):
    config, result = youtube_run
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
    assert run["dataset_version"] == result.dataset_version
    assert run["lf_set_version"] == result.lf_set_version
    assert [lf["name"] for lf in run["lfs"]] == [name for name, _ in result.lfs]
    assert run["matrix_hashes"] == result.matrix_hashes and len(run["matrix_hashes"]["train"]) == 64
    assert run["label_model"]["type"] and run["end_model"]["params"]["C"] == 1.0
    assert {m["name"] for m in run["metrics"]} == set(result.evaluation["name"])
    for artifact in run["artifacts"]:
        assert sha256_file(Path(artifact["path"])) == artifact["sha256"]
    run_dir = Path(config.resolve(config.artifacts)) / result.run_id
    end_model = load_end_model(run_dir / "end_model")
    load_label_model(run_dir / "label_model")
    test = load_dataset(config).test
    accuracy = float((end_model.predict(test["text"].tolist()) == test["label"].to_numpy()).mean())
    assert accuracy == pytest.approx(result.metric("end model"))


def test_summary_and_json_are_complete(youtube_run):
    _, result = youtube_run
    text = format_summary(result)
    assert result.run_id in text and "end model" in text and "oracle" in text
    payload = json.loads(json.dumps(result.to_json()))
    assert payload["label_matrix_hashes"]["train"] == result.matrix_hashes["train"]
    assert {row["name"] for row in payload["metrics"]} == set(result.evaluation["name"])
    # the stage table: every stage with its seconds, peak RSS and, where rows are counted, rows/s
    assert list(payload["stages"]) == ["load", "discover_lfs", "apply", "label_model", "end_model", "record",
                                       "promotion_gate"]
    apply_stage = payload["stages"]["apply"]
    assert apply_stage["rows"] == sum(result.split_sizes.values()) and apply_stage["peak_rss_mb"] > 0
    assert apply_stage["rows_per_s"] == pytest.approx(apply_stage["rows"] / apply_stage["seconds"], rel=0.01)
    assert "Stages:" in text and "peak RSS MiB" in text and "promotion_gate" in text


def test_rerun_from_the_cli_reproduces_hashes_and_metrics(youtube_run, youtube_config_path, tmp_path):
    _, first = youtube_run
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.retrain", "--config", str(youtube_config_path), "--json",
         *[arg for o in _overrides(tmp_path) for arg in ("--set", o)]],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    second = json.loads(proc.stdout)
    assert second["run_id"] != first.run_id
    assert second["label_matrix_hashes"] == first.matrix_hashes
    assert second["dataset_version"] == first.dataset_version
    assert second["lf_set_version"] == first.lf_set_version
    ours = {r["name"]: (r["accuracy"], r["macro_f1"]) for r in second["metrics"]}
    theirs = {r["name"]: (r["accuracy"], r["macro_f1"]) for r in first.to_json()["metrics"]}
    assert ours == theirs


def test_torch_end_model_by_config(youtube_config_path, tmp_path):
    config = load_config(youtube_config_path, [*_overrides(tmp_path), "end_model.type=torch"])
    result = run_retrain(config, record=False)
    assert result.end_model["type"] == "torch"
    table = result.evaluation.set_index("name")
    end = result.metric("end model")
    assert end >= 0.93  # measured 94.1% with the default torch settings (CPU)
    assert end > table[table["kind"] == "lf"]["accuracy"].max()
    assert end > table.loc["human (end model on dev labels)", "accuracy"]


# --- multi-class: TREC questions from WRENCH, read as a user's JSONL file ---------------

@pytest.fixture(scope="module")
def trec_project(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trec")
    classes = json.loads((data_dir / "wrench" / "trec" / "label.json").read_text())
    rows = []
    for split in ("train", "valid", "test"):
        for key, item in json.loads((data_dir / "wrench" / "trec" / f"{split}.json").read_text()).items():
            rows.append({"qid": f"{split}-{key}", "question": item["data"]["text"],
                         "type": classes[str(item["label"])], "part": split})
    pd.DataFrame(rows).to_json(tmp / "questions.jsonl", orient="records", lines=True)
    names = json.dumps([classes[str(i)] for i in range(len(classes))])
    return write_project(tmp, f"""
[project]
name = "trec"
classes = {names}
seed = 1
[dataset]
source = "file"
path = "questions.jsonl"
text_field = "question"
label_field = "type"
id_field = "qid"
split = "column"
split_field = "part"
[lfs]
modules = ["lf_modules.trec_questions"]
root = "{FIXTURES}"
[label_model]
type = "majority_vote"
[end_model]
analyzer = "word"
ngram_min = 1
ngram_max = 2
C = 10.0
""")


def test_multiclass_trec_end_to_end(trec_project):
    config = load_config(trec_project)
    result = run_retrain(config)
    assert result.split_sizes == {"train": 5033, "dev": 500, "test": 500}
    assert config.cardinality == 6
    table = result.evaluation.set_index("name")
    assert {f"precision_{c}" for c in config.classes} <= set(table.columns)
    end = table.loc["end model", "accuracy"]
    assert end > table.loc["random", "accuracy"] + 0.3
    assert end > table.filter(like="majority class", axis=0)["accuracy"].iloc[0]
    assert end > table.loc["majority vote", "accuracy"]
    with RunStore(result.store_path) as store:
        assert store.count_runs() == 1


# --- bad input: a clear error and no run record -------------------------------------------

BAD_BASE = """
[project]
name = "bad"
classes = ["ham", "spam"]
[dataset]
source = "file"
path = "{path}"
text_field = "{text}"
label_field = "label"
split = "random"
dev_size = 0.25
test_size = 0.25
[lfs]
modules = ["lf_modules.broken"]
root = "{root}"
[label_model]
type = "majority_vote"
"""


def _bad_case(tmp_path, rows, *, text="text", path="data.csv"):
    if rows is not None:
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "data.csv", index=False)
    return load_config(write_project(tmp_path, BAD_BASE.format(path=path, text=text, root=FIXTURES)))


GOOD_ROWS = [[f"check this {i} out", "spam" if i % 2 else "ham"] for i in range(12)]


@pytest.mark.parametrize(
    "rows, kwargs, error, message",
    [
        (GOOD_ROWS, {"path": "missing.csv"}, DatasetError, "not found: .*missing.csv"),
        (GOOD_ROWS, {"text": "body"}, DatasetError, "text column 'body' not found"),
        (GOOD_ROWS[:5] + [["check it", "eggs"]] + GOOD_ROWS[6:], {}, LabelError, "row '5' has label 'eggs'"),
        ([], {}, DatasetError, "empty"),
        (GOOD_ROWS[:7] + [["a ", "ham"]] + GOOD_ROWS[8:], {}, LFApplicationError, "lf_divides_by_length.*row '7'"),
    ],
    ids=["missing-file", "missing-text-column", "unknown-class", "empty", "lf-raises"],
)
def test_bad_input_gives_clear_error_and_no_record(tmp_path, rows, kwargs, error, message):
    config = _bad_case(tmp_path, rows, **kwargs)
    with pytest.raises(error, match=message):
        run_retrain(config)
    store = config.resolve(config.store)
    if store.exists():
        with RunStore(store) as s:
            assert s.count_runs() == 0
    artifacts = config.resolve(config.artifacts)
    assert not artifacts.exists() or not any(artifacts.iterdir())


def test_cli_reports_errors_without_traceback(tmp_path):
    config_path = write_project(tmp_path, BAD_BASE.format(path="missing.csv", text="text", root=FIXTURES))
    proc = subprocess.run([sys.executable, "-m", "labeling", "retrain", "--config", str(config_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: dataset file not found") and "Traceback" not in proc.stderr


def test_retrain_on_a_dask_cluster_whose_workers_lack_the_client_environment(recorded_youtube_run, tmp_path,
                                                                             monkeypatch):
    """Workers started without LABELING_SPACY_MODEL: the resolved pipeline travels with
    each task, and the run's matrices and metrics equal the local run's."""
    distributed = pytest.importorskip("distributed")
    from labeling.lf.core import SPACY_MODEL_ENV

    config, local = recorded_youtube_run
    client_model = os.environ.get(SPACY_MODEL_ENV)
    if not client_model:
        pytest.skip(f"{SPACY_MODEL_ENV} is not set: the client and workers would resolve the same pipeline")
    monkeypatch.delenv(SPACY_MODEL_ENV)  # the worker processes start from this environment
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env={"PYTHONPATH": str(REPO)}) as cluster, \
            distributed.Client(cluster) as client:
        monkeypatch.setenv(SPACY_MODEL_ENV, client_model)
        assert client.run(lambda: os.environ.get(SPACY_MODEL_ENV)) == {w: None for w in client.scheduler_info()["workers"]}
        remote_config = load_config(config.base_dir + "/project.toml", [
            f'project.store="{tmp_path / "store.db"}"', f'project.artifacts="{tmp_path / "artifacts"}"',
            f'lfs.scheduler="{cluster.scheduler_address}"', 'lfs.cache="none"'])
        remote = run_retrain(remote_config)
    assert remote.matrix_hashes == local.matrix_hashes
    assert remote.metric("end model") == pytest.approx(local.metric("end model"))
