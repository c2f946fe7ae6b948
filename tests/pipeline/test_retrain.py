"""The retrain job end to end, on real data: YouTube (binary) and TREC (6 classes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
from labeling.errors import LabelingError
from labeling.models.end_model_selection import C_GRID

from ..conftest import FIXTURES, REPO, tiny_project, write_project

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
    # The example's end model is chosen on dev (end_model.type = "auto"): measured 93.8%, below
    # the tutorial's 94.4% and below its label model (95.1%); the summary says so (below).
    assert result.metric("end model") >= 0.93
    assert result.metric("end model") < TUTORIAL_END_MODEL_ACC  # when this fails, the target is met: tighten


def test_youtube_label_model_is_chosen_on_dev_and_explained(youtube_run):
    config, result = youtube_run
    assert config.label_model.type == "auto"
    selection = result.label_model["selection"]
    # every default candidate plus the incumbent, each with its dev score, and the rule that decided
    assert len(selection["candidates"]) >= 5 and all(0 <= c["dev_score"] <= 1 for c in selection["candidates"])
    assert selection["chosen"] == result.label_model["type"] + "()" and "incumbent" in selection["rule"]
    # the chosen model's test accuracy is not below the model the project used before selection
    assert result.metric("label model (SnorkelLabelModel)") >= 0.951


def test_end_model_beats_every_baseline_and_lf_and_says_where_it_loses(youtube_run):
    _, result = youtube_run
    table = result.evaluation.set_index("name")
    end = table.loc["end model", "accuracy"]
    others = table[table["kind"].isin(["baseline", "lf"])]
    beaten = others.drop(index=[n for n in others.index if n.startswith(("oracle", "human"))])
    assert len(beaten) >= 2 + 10  # random, majority class, >= 10 LFs
    assert (beaten["accuracy"] < end).all(), beaten[beaten["accuracy"] >= end]
    # chosen on dev, it does not beat the label model on this test split; the summary says so
    label_model = table[table["kind"] == "label_model"]["accuracy"].iloc[-1]
    assert end < label_model
    assert f"end model LOSES TO the label model on test accuracy ({end:.1%} vs {label_model:.1%})" in format_summary(result)
    assert any(n.startswith("oracle") for n in table.index) and any(n.startswith("human") for n in table.index)
    assert table.loc["end model", "train_rows"] < 1586  # uncovered rows were filtered
    assert set(table.columns) >= {"macro_f1", "precision_spam", "recall_ham", "coverage"}


def test_the_served_predictor_is_chosen_on_dev_and_the_summary_says_why_it_scores_below_simpler_models(youtube_run):
    """Issue 25: the example's three candidates agree on every dev row, so the rule serves the
    first in its tie order, derived on dev alone (``predictors.TIE_ORDER``): the end model. On
    test it scores below the label model and majority vote (93.8% < 95.1%, 95.9%), and the
    summary says why: dev cannot tell the candidates apart."""
    _, result = youtube_run
    served = result.end_model["served"]
    assert served["predictor"] == "end_model" and not served["needs_lfs"] and not served["pinned"]
    assert [c["name"] for c in served["candidates"]] == ["end_model", "label_model_backoff", "blend"]
    assert len({c["dev_score"] for c in served["candidates"]}) == 1  # a tie on dev
    table = result.evaluation.set_index("name")
    assert table.loc["served", "accuracy"] == table.loc["end model", "accuracy"]
    text = format_summary(result)
    assert "end model LOSES TO the label model on test accuracy" in text
    assert "; served anyway, as chosen on dev: 'end_model': the simplest candidate" in text
    assert "which cannot tell the candidates apart, and on a tie the rule serves the first of end_model, " in text
    assert result.promotion["candidate_score"] == pytest.approx(result.metric("served"))


def test_run_is_recorded_with_lineage_and_verified_artifacts(youtube_run):
    config, result = youtube_run
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
    assert run["dataset_version"] == result.dataset_version
    assert run["lf_set_version"] == result.lf_set_version
    assert [lf["name"] for lf in run["lfs"]] == [name for name, _ in result.lfs]
    assert run["matrix_hashes"] == result.matrix_hashes and len(run["matrix_hashes"]["train"]) == 64
    assert run["label_model"]["type"] and run["end_model"]["params"]["C"] == result.end_model["params"]["C"]
    assert run["end_model"]["selection"]["settings"]["family"] in ("word", "word_char", "word_char_emb", "embedding")
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
    assert list(payload["stages"]) == ["load", "discover_lfs", "apply", "label_model", "leakage", "end_model",
                                       "documents", "promotion_gate", "record"]
    apply_stage = payload["stages"]["apply"]
    assert apply_stage["rows"] == sum(result.split_sizes.values()) and apply_stage["peak_rss_mb"] > 0
    assert apply_stage["rows_per_s"] == pytest.approx(apply_stage["rows"] / apply_stage["seconds"], rel=0.01)
    assert "Stages:" in text and "peak RSS MiB" in text and "promotion_gate" in text


def test_summary_explains_its_numbers(youtube_run):
    import dataclasses

    _, result = youtube_run
    text = format_summary(result)
    # one meaning of "coverage" per table: the test table's column is the share of train learned from
    test_table = text.split("Test split")[1]
    assert "coverage" not in test_table.splitlines()[1] and "train_share" in test_table.splitlines()[1]
    assert "coverage = share of train rows the LF votes on" in text
    assert "predicting the majority class where it abstains" in text  # why LF rows look like the majority class
    assert "gold rows used: 0" in text
    # an end model above its oracle is commented on; a NaN dev accuracy is explained
    ev = result.evaluation.copy()
    oracle = ev["name"].str.startswith("oracle")
    ev.loc[oracle, "accuracy"] = ev.loc[ev["name"] == "end model", "accuracy"].iloc[0] - 0.01
    lf_table = result.lf_table.copy()
    first_lf = lf_table.loc["dev"].index[0]
    lf_table.loc[("dev", first_lf), "accuracy"] = float("nan")
    text = format_summary(dataclasses.replace(result, evaluation=ev, lf_table=lf_table))
    assert "scores above the oracle" in text and "not an upper bound" in text and "within noise" in text
    assert f"dev accuracy is blank (NaN) where an LF votes on no dev row: {first_lf}" in text


HUMAN, ORACLE = "human (dev labels; chosen by CV on dev)", "oracle (gold train labels; chosen by CV on train)"


def test_baselines_are_chosen_by_cross_validation_on_their_own_rows_and_the_table_says_how(youtube_run):
    config, result = youtube_run
    table = result.evaluation.set_index("name")
    baselines = result.end_model["baselines"]
    assert baselines["human"]["rows"] == {"what": "dev", "labelled": 100, "cv": 100, "folds": 5, "final": 100}
    assert baselines["oracle"]["rows"]["what"] == "gold train" and baselines["oracle"]["rows"]["final"] == 1586
    # the end model's candidate families, each logistic-regression family with every C
    names = [c["name"] for c in baselines["human"]["candidates"]]
    assert names == [f"{f} C={c:g}" for f in ("word", "word_char", "word_char_emb") for c in C_GRID] + ["embedding"]
    for key, name in (("human", HUMAN), ("oracle", ORACLE)):
        assert table.loc[name, "notes"] == baselines[key]["note"]
        assert baselines[key]["note"].startswith(f"{baselines[key]['chosen']}, chosen by 5-fold cross-validation on ")
        assert f"{key} baseline: {baselines[key]['note']}" in format_summary(result)
    with RunStore(result.store_path) as store:
        assert store.get_run(result.run_id)["end_model"]["baselines"] == baselines


def test_per_class_dev_recall_is_recorded_and_no_class_vanishes_on_the_example(youtube_run):
    _, result = youtube_run
    recall = result.end_model["class_recall"]
    served = "end model"  # the example serves its end model (a tie on dev)
    assert (recall["served"], recall["reference"], recall["rows"]) == (served, "label model", 100)
    assert set(recall["per_class"]) == {"ham", "spam"} and recall["vanished"] == recall["warnings"] == []
    assert all(0.9 <= row["recall"][served] <= 1 for row in recall["per_class"].values())
    assert "vanishes" not in format_summary(result)
    with RunStore(result.store_path) as store:
        assert store.get_run(result.run_id)["end_model"]["class_recall"] == recall


def test_a_class_the_end_model_drops_is_a_warning_naming_the_metric_that_would_weigh_it(youtube_run):
    import dataclasses

    from labeling.models.label_models import MajorityVote
    from labeling.pipeline.retrain import _dev_class_recall

    config, result = youtube_run

    only_ham = np.zeros(5, dtype=np.int64)  # an end model that never predicts spam
    y = np.array([0, 0, 1, 1, 1])
    L = np.array([[0], [0], [1], [1], [-1]])  # the last row: no LF votes, the label model's tie-break
    recall = _dev_class_recall(config, y, L, MajorityVote(cardinality=2).fit(L), "end_model", only_ham)
    assert recall["vanished"] == ["spam"] and recall["per_class"]["spam"]["predicted"] == {"end model": 0,
                                                                                           "label model": 2}
    (warning,) = recall["warnings"]
    assert warning.startswith("class 'spam' vanishes: the label model predicts it on 2 dev rows (recall ")
    assert warning.endswith("the end model on none; project.metric = 'macro_f1' would weigh it")
    text = format_summary(dataclasses.replace(result, end_model={**result.end_model, "class_recall": recall}))
    assert f"WARNING: {warning}" in text


@pytest.mark.slow  # ~24 s: a whole retrain in a subprocess; in-process reproduction stays in test_lineage and test_schema_change_runs
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


@pytest.mark.slow  # ~12 s: a whole retrain; the torch end model keeps its unit tests in tests/models/test_end_models.py
def test_torch_end_model_by_config(youtube_config_path, tmp_path):
    config = load_config(youtube_config_path, [*_overrides(tmp_path), "end_model.type=torch"])
    result = run_retrain(config, record=False)
    assert result.end_model["type"] == "torch"
    import torch

    assert result.end_model["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # not "auto"
    table = result.evaluation.set_index("name")
    end = result.metric("end model")
    assert end >= 0.93  # measured 94.1% with the default torch settings (CPU)
    assert end > table[table["kind"] == "lf"]["accuracy"].max()
    assert end > table.loc["human (dev labels; chosen by CV on dev)", "accuracy"]


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


# slow: ~60 s; multi-class selection stays in the default suite through
# tests/models/test_label_models.py's trec case and the end-model selection tests
@pytest.mark.slow
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


# --- labelled splits missing a class: baselines that cannot be computed are skipped, with why ----------

MISSING_CLASS = """
[project]
name = "missing_class"
classes = ["ham", "spam"]
store = "store.db"
artifacts = "artifacts"
[dataset]
source = "file"
path = "comments.csv"
text_field = "text"
label_field = "label"
id_field = "id"
split = "column"
split_field = "part"
[lfs]
modules = ["lf_modules.youtube_weak"]
root = "{root}"
cache = "none"
n_jobs = 1
[label_model]
type = "majority_vote"
"""


def _missing_class_project(tmp_path, youtube_splits, *, train_gold: bool):
    """YouTube comments whose dev split holds only ham rows (and train, optionally, no gold)."""
    train, test = youtube_splits.train.iloc[:300], youtube_splits.test.iloc[:80]
    dev = youtube_splits.train.iloc[300:][lambda f: f["label"] == 0].iloc[:15]
    rows = [{"id": r.id, "text": r.text, "label": ("ham", "spam")[r.label] if part != "train" or train_gold else "",
             "part": part}
            for part, frame in (("train", train), ("dev", dev), ("test", test)) for r in frame.itertuples()]
    pd.DataFrame(rows).to_csv(tmp_path / "comments.csv", index=False)
    return load_config(write_project(tmp_path, MISSING_CLASS.format(root=FIXTURES)))


def test_a_dev_split_missing_a_class_skips_the_human_baseline_and_says_why(tmp_path, youtube_splits):
    config = _missing_class_project(tmp_path, youtube_splits, train_gold=True)
    result = run_retrain(config)  # used to stop: "the training labels hold a single class"
    table = result.evaluation.set_index("name")
    human = table.loc["human (dev labels; chosen by CV on dev)"]
    assert np.isnan(human["accuracy"]) and np.isnan(human["macro_f1"])
    assert human["notes"] == ("not computed: the dev split has gold labels of class 'ham' only (15 rows); "
                              "an end model needs at least two classes")
    # everything that can be computed still is
    assert 0.5 < table.loc["end model", "accuracy"] <= 1
    assert 0.5 < table.loc["oracle (gold train labels; chosen by CV on train)", "accuracy"] <= 1
    assert "human (dev labels; chosen by CV on dev): not computed: the dev split has gold labels of class 'ham' only" in format_summary(result)
    record = {m["name"]: m for m in result.to_json()["metrics"]}["human (dev labels; chosen by CV on dev)"]
    assert record["accuracy"] is None and record["notes"].startswith("not computed: ")
    with RunStore(result.store_path) as store:
        stored = {m["name"]: m for m in store.get_run(result.run_id)["metrics"]}
    assert stored["human (dev labels; chosen by CV on dev)"]["accuracy"] is None
    assert stored["human (dev labels; chosen by CV on dev)"]["notes"] == human["notes"]
    from labeling.pipeline.report import write_report

    page = write_report(result.store_path, result.run_id).read_text(encoding="utf-8")
    assert "not computed: the dev split has gold labels of class &#x27;ham&#x27; only" in page


def test_train_without_gold_records_why_there_is_no_oracle(tmp_path, youtube_splits):
    result = run_retrain(_missing_class_project(tmp_path, youtube_splits, train_gold=False), record=False)
    oracle = result.evaluation.set_index("name").loc["oracle (gold train labels; chosen by CV on train)"]
    assert np.isnan(oracle["accuracy"]) and oracle["train_rows"] == 0
    assert oracle["notes"] == "not computed: the train split has no gold labels"


def test_an_end_model_with_one_class_to_learn_names_itself_and_records_nothing(tmp_path, youtube_splits):
    config = _missing_class_project(tmp_path, youtube_splits, train_gold=False)
    frame = pd.read_csv(tmp_path / "comments.csv", keep_default_na=False)
    # no "!" in train: only weak_song (ham) votes there; dev keeps both classes
    frame = frame[(frame["part"] != "train") | ~frame["text"].str.contains("!")]
    dev = youtube_splits.dev.iloc[:10]
    extra = pd.DataFrame({"id": "d-" + dev["id"], "text": dev["text"], "label": dev["label"].map({0: "ham", 1: "spam"}),
                          "part": "dev"})
    pd.concat([frame, extra]).to_csv(tmp_path / "comments.csv", index=False)
    with pytest.raises(LabelingError, match=r"the end model cannot be trained: its \d+ training rows .* carry only "
                                            r"class 'ham'; it needs LF votes or gold labels of at least two classes"):
        run_retrain(config)
    assert not config.resolve(config.store).exists() and not config.resolve(config.artifacts).exists()


# --- "auto" with too few or one-class dev labels: the simplest models, and why ------------------

AUTO = ['label_model.type="auto"', 'end_model.type="auto"', 'end_model.candidates=["word_hashed", "word"]']


def _tiny_dev_project(tmp_path, dev: list[str]) -> Path:
    """MISSING_CLASS with 100 train rows, 30 test rows of both classes, and a dev split of
    exactly ``dev`` (class names)."""
    def row(i, part, label):
        spam = label == "spam" if part == "dev" else i % 2 == 1
        return {"id": f"{part}-{i}", "text": f"check out my channel {i}!" if spam else f"love this song {i}",
                "label": label or ("spam" if spam else "ham"), "part": part}
    rows = ([row(i, "train", "") for i in range(100)] + [row(i, "dev", c) for i, c in enumerate(dev)]
            + [row(i, "test", "") for i in range(30)])
    pd.DataFrame(rows).to_csv(tmp_path / "comments.csv", index=False)
    return write_project(tmp_path, MISSING_CLASS.format(root=FIXTURES))


@pytest.mark.parametrize("dev, why", [
    (["spam"], "there is 1 labelled dev row; scoring candidates needs at least 5"),
    (["ham", "spam", "ham", "spam"], "there are 4 labelled dev rows; scoring candidates needs at least 5"),
    (["ham"] * 10, "all 10 labelled dev rows are of class 'ham'; on one class the dev score ranks only that "
                   "class's recall, so it cannot tell candidates apart"),
], ids=["1 row", "4 rows", "one class"])
def test_auto_with_too_few_or_one_class_dev_labels_keeps_the_simplest_models_and_records_why(tmp_path, dev, why):
    # used to stop: "error: y_dev has 4 labelled rows; need at least n_folds=5" (one class: every candidate 1.000)
    result = run_retrain(load_config(_tiny_dev_project(tmp_path, dev), AUTO))
    summary = format_summary(result)
    assert (f"label model not chosen on dev: MajorityVote(), the simplest candidate, kept: {why}. Label more dev rows "
            '(of every class), or set label_model.type = "majority_vote" or "snorkel"') in summary
    assert (f"end model not chosen on dev: word_hashed, the first candidate, kept with its own settings (soft labels, "
            f"no class weights, no self-training, no decision offsets): {why}.") in summary
    assert 'set end_model.type = "sklearn" or "torch"' in summary
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
    lm, em = run["label_model"], run["end_model"]
    assert lm["type"] == "MajorityVote" and lm["selection"]["fallback"] == why and lm["selection"]["candidates"] == []
    assert em["selection"]["fallback"] == why and em["selection"]["stages"] == []
    assert em["selection"]["settings"]["family"] == "word_hashed"


def test_cli_retrain_with_four_dev_rows_records_and_an_empty_dev_split_is_named(tmp_path, capsys):
    from labeling.cli import main

    def retrain(dev):
        folder = tmp_path / str(len(dev))
        folder.mkdir()
        config = _tiny_dev_project(folder, dev)
        code = main(["retrain", "--config", str(config), "--json", "--quiet", *[a for o in AUTO for a in ("--set", o)]])
        return code, capsys.readouterr()

    code, out = retrain(["ham", "spam", "ham", "spam"])
    assert code == 0, out.err
    payload = json.loads(out.out)
    assert payload["label_model"]["selection"]["fallback"].startswith("there are 4 labelled dev rows")
    assert payload["end_model"]["selection"]["fallback"].startswith("there are 4 labelled dev rows")
    # no dev rows at all: the dataset's error (the same for every label model), not an internal one
    code, out = retrain([])
    assert code == 2 and out.err.startswith("error: ") and "the dev split is empty" in out.err
    assert "y_dev" not in out.err and "n_folds" not in out.err


# --- recording: artifacts verified before the run, a crash leaves nothing or a whole run --------

def _assert_whole(config, n_runs: int) -> None:
    """The store and the artifact folder hold only whole runs: every run's files load against its
    recorded checksums, every run has its promotion decision, the candidate is the newest run,
    and no folder is left that no run owns."""
    from labeling.models.artifacts import load_end_model, load_label_model
    from labeling.pipeline.registry import CANDIDATE, Registry
    from labeling.pipeline.store import recorded_end_model

    root = config.resolve(config.artifacts)
    with RunStore(config.resolve(config.store)) as store:
        runs = [row["id"] for row in store.list_runs()]
        assert len(runs) == n_runs
        for run_id in runs:
            folder, expected = recorded_end_model(store.conn, run_id)
            load_end_model(folder, expected)
            labels = {a["name"].removeprefix("label_model/"): a["sha256"] for a in store.get_run(run_id)["artifacts"]
                      if a["name"].startswith("label_model/")}
            load_label_model(folder.parent / "label_model", labels)
            assert store.get_documents(run_id)["promotion"]["candidate_run_id"] == run_id
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(runs) if root.exists() else not runs
    with RunStore(config.resolve(config.store)) as store:
        assert store.intents() == []
    if runs:
        with Registry(config.resolve(config.store)) as registry:
            assert registry.get(CANDIDATE) == runs[-1]
            assert {d["candidate_run_id"] for d in registry.decisions()} == set(runs)


def test_retrain_checks_that_its_artifacts_load_before_recording_the_run(tmp_path, monkeypatch):
    from labeling import ArtifactError
    from labeling.models import artifacts

    config = load_config(tiny_project(tmp_path))
    real_save = artifacts.save_end_model

    def save_unloadable(model, folder):  # a writer that produces a self-consistent but unreadable model
        real_save(model, folder)
        (folder / "pipeline.skops").write_bytes(b"not a zip")
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"]["pipeline.skops"] = sha256_file(folder / "pipeline.skops")
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return {name: sha256_file(folder / name) for name in ("pipeline.skops", "manifest.json")}

    monkeypatch.setattr(artifacts, "save_end_model", save_unloadable)
    with pytest.raises(ArtifactError, match=r"\.partial/end_model/pipeline\.skops: cannot be loaded: BadZipFile"):
        run_retrain(config)
    _assert_whole(config, 0)
    root = config.resolve(config.artifacts)
    assert not root.exists() or not any(root.iterdir())


def test_sweep_removes_what_a_dead_retrain_left_and_gives_undecided_runs_a_decision(tmp_path):
    from labeling.pipeline.retrain import sweep_orphans

    config = load_config(tiny_project(tmp_path))
    first = run_retrain(config)
    root = config.resolve(config.artifacts)
    partial, unrecorded = "20000101T000000-aaaaaa", "20000101T000000-bbbbbb"
    with RunStore(config.resolve(config.store)) as store:  # two retrains that died after noting their run
        for run_id in (partial, unrecorded):
            store.begin_run(run_id, root, "2000-01-01T00:00:00+00:00")
        store.conn.raw.execute("DELETE FROM run_documents WHERE name = 'promotion'")  # as older versions left it
    (root / f".{partial}.partial" / "end_model").mkdir(parents=True)
    shutil.copytree(root / first.run_id, root / unrecorded)  # complete, but its run was never committed
    # Folders the store never noted (another project sharing the artifact folder): never touched.
    foreign = [root / "20000101T000000-cccccc", root / ".20000101T000000-dddddd.partial"]
    for folder in foreign:
        folder.mkdir()
    swept = sweep_orphans(config)
    assert swept.to_dict() == {"partial": [f".{partial}.partial"], "unrecorded": [unrecorded],
                               "undecided": [first.run_id]}
    assert all(folder.is_dir() for folder in foreign)
    for folder in foreign:
        folder.rmdir()
    _assert_whole(config, 1)
    with RunStore(config.resolve(config.store)) as store:
        decision = store.get_documents(first.run_id)["promotion"]
        assert store.intents() == []
    assert decision["reason"].startswith("never gated") and not decision["passed"] and not decision["promoted"]
    assert sweep_orphans(config).to_dict() == {}  # nothing left to do


# Where the killed retrain stops: after each write that a crash could interrupt.
CRASH_MOMENTS = ("label_model_saved", "end_model_saved", "renamed", "in_transaction", "done")


def _retrain_until(config_path: str, moment: str, marker: str) -> None:
    """Run in a child process: retrain, and at ``moment`` say so in ``marker`` and wait to be killed."""
    import time

    from labeling.models import artifacts
    from labeling.pipeline import retrain
    from labeling.pipeline.store import RunStore as Store

    def pause():
        Path(marker).write_text(moment)
        time.sleep(600)

    def after(func):
        def wrapped(*args, **kwargs):
            out = func(*args, **kwargs)
            pause()
            return out
        return wrapped

    def before(func):
        def wrapped(*args, **kwargs):
            pause()
            return func(*args, **kwargs)
        return wrapped

    if moment == "label_model_saved":
        artifacts.save_label_model = after(artifacts.save_label_model)
    elif moment == "end_model_saved":
        artifacts.save_end_model = after(artifacts.save_end_model)
    elif moment == "renamed":
        Store.record_run = before(Store.record_run)
    elif moment == "in_transaction":  # every row written, the transaction not committed
        retrain.write_decision = after(retrain.write_decision)
    run_retrain(load_config(config_path))
    pause()


def test_kill_9_during_retrain_leaves_nothing_or_a_whole_run(tmp_path):
    import multiprocessing
    import time

    from labeling.pipeline.retrain import sweep_orphans

    config_path = tiny_project(tmp_path)
    config = load_config(config_path)
    # One forkserver imports the library once; each retrain is a fresh process forked from it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["labeling.pipeline.retrain", __name__])
    recorded = 0
    started = time.monotonic()
    for moment in CRASH_MOMENTS:
        marker = tmp_path / f"{moment}.reached"
        child = context.Process(target=_retrain_until, args=(str(config_path), moment, str(marker)))
        child.start()
        deadline = time.monotonic() + 120
        while not marker.exists() and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        child.kill()  # SIGKILL
        child.join(10)
        assert marker.exists() and child.exitcode == -9, (moment, child.exitcode)
        recorded += moment == "done"
        swept = sweep_orphans(config).to_dict()
        print(f"killed at {moment}: swept {swept}")
        if moment in ("label_model_saved", "end_model_saved"):
            assert list(swept) == ["partial"]
        elif moment in ("renamed", "in_transaction"):
            assert list(swept) == ["unrecorded"]
        else:
            assert swept == {}
        _assert_whole(config, recorded)
    print(f"{len(CRASH_MOMENTS)} kill -9 rounds in {time.monotonic() - started:.1f}s")
    assert run_retrain(config).swept == {}  # the next retrain finds nothing left to sweep
    _assert_whole(config, recorded + 1)


# slow: ~60 s; the default suite keeps a real LocalCluster in tests/lf/test_distributed.py
@pytest.mark.slow
def test_retrain_on_a_dask_cluster_whose_workers_lack_the_client_environment(recorded_youtube_run, tmp_path,
                                                                             monkeypatch):
    """The client names its spaCy pipeline in LABELING_SPACY_MODEL; the workers start
    without it and would pick the installed stand-in on their own. The resolved name
    travels with each task, so the cluster's matrices and metrics equal a local run's
    with the same setting (and differ from the stand-in's: a name left behind shows)."""
    distributed = pytest.importorskip("distributed")
    import spacy

    from labeling.lf.core import SPACY_MODEL_ENV, resolve_spacy_model

    config, stand_in = recorded_youtube_run
    monkeypatch.delenv(SPACY_MODEL_ENV, raising=False)  # the worker processes start from this environment
    # a pipeline no worker would resolve by itself: the stand-in without its entity recogniser, saved to a folder
    own = tmp_path / "pipeline_without_ner"
    spacy.load(resolve_spacy_model(config.lfs.spacy_model), exclude=["ner"]).to_disk(own)
    overrides = ['lfs.cache="none"']
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env={"PYTHONPATH": str(REPO)}) as cluster, \
            distributed.Client(cluster) as client:
        monkeypatch.setenv(SPACY_MODEL_ENV, str(own))
        assert client.run(lambda: os.environ.get(SPACY_MODEL_ENV)) == {w: None for w in client.scheduler_info()["workers"]}
        runs = {}
        for name, extra in (("local", []), ("remote", [f'lfs.scheduler="{cluster.scheduler_address}"'])):
            runs[name] = run_retrain(load_config(config.base_dir + "/project.toml", [
                f'project.store="{tmp_path / name / "store.db"}"', f'project.artifacts="{tmp_path / name / "artifacts"}"',
                *overrides, *extra]))
    local, remote = runs["local"], runs["remote"]
    assert local.matrix_hashes != stand_in.matrix_hashes  # the workers' own pipeline would give other votes
    assert remote.matrix_hashes == local.matrix_hashes
    assert remote.metric("end model") == pytest.approx(local.metric("end model"))


def test_serving_predictor_pins_what_is_served_and_the_table_scores_it(tmp_path):
    """``serving.predictor`` pins the served predictor; the dev scores of every candidate are still
    recorded, the `served` row scores what is served, and the gate scores it too."""
    config = load_config(tiny_project(tmp_path), ['serving.predictor="end_model"'])
    result = run_retrain(config)
    served = result.end_model["served"]
    assert served["predictor"] == "end_model" and served["pinned"] and not served["needs_lfs"]
    assert served["rule"].startswith("pinned by serving.predictor = 'end_model'")
    assert [c["name"] for c in served["candidates"]][:2] == ["end_model", "label_model_backoff"]
    assert result.metric("served") == result.metric("end model")
    assert result.promotion["candidate_score"] == pytest.approx(result.metric("served"))
    text = format_summary(result)
    assert "served predictor: end_model: pinned by serving.predictor" in text
    with RunStore(result.store_path) as store:
        assert store.get_run(result.run_id)["end_model"]["served"] == served


def test_a_served_predictor_below_a_simpler_model_on_test_is_said_with_why():
    from labeling.pipeline.retrain import _served_lines

    table = pd.DataFrame({"name": ["majority vote", "label model (MajorityVote)", "end model", "served"],
                          "kind": ["label_model", "label_model", "end_model", "served"],
                          "accuracy": [0.96, 0.95, 0.94, 0.94]})
    served = {"predictor": "end_model", "needs_lfs": False, "rule": "r", "params": {},
              "candidates": [{"name": n, "dev_score": 0.94, "tolerance": 0.0}
                             for n in ("label_model_backoff", "end_model", "blend")]}
    lines = _served_lines(served, table, "accuracy", "accuracy")
    assert lines[-1].startswith("served predictor scores below majority vote 96.0%, label model (MajorityVote) 95.0% "
                                "on test: it was chosen on dev (label_model_backoff 0.940, end_model 0.940, blend 0.940)"
                                ", which cannot tell the candidates apart, and on a tie the rule serves the first of "
                                "end_model, label_model_backoff, blend (an order derived on dev alone")
    pinned = _served_lines({**served, "pinned": True}, table, "accuracy", "accuracy")
    assert pinned[-1].endswith("on test: it is pinned by serving.predictor (dev: label_model_backoff 0.940, "
                               "end_model 0.940, blend 0.940)")
    table.loc[3, "accuracy"] = 0.97
    assert not any("scores below" in line for line in _served_lines(served, table, "accuracy", "accuracy"))
