"""Versioning and lineage: snapshot ids, LF-set versions, history, reproducing a run."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import sys
import textwrap

import numpy as np
import pytest

from labeling import apply_lfs, discover_lfs, label_matrix_hash, lf_set_version, load_youtube_spam, youtube_tutorial_split
from labeling.cli import main
from labeling.config import config_from_record, load_config
from labeling.pipeline.lineage import config_hash, history, reproduce

from ..conftest import write_project


def test_same_data_gives_the_same_snapshot_id(data_dir, tmp_path, youtube_splits):
    """A fresh read of a byte-identical copy, elsewhere on disk, gives the same id."""
    copy = tmp_path / "elsewhere" / "youtube_spam"
    shutil.copytree(data_dir / "youtube_spam", copy)
    again = youtube_tutorial_split(load_youtube_spam(copy.parent))
    assert again.version == youtube_splits.version
    assert len(again.version) == 16 and again.version == "857e250d83ed6853"  # stable across processes and machines


def test_changed_data_gives_a_new_snapshot_id(youtube_frame):
    base = youtube_tutorial_split(youtube_frame)
    relabelled = youtube_frame.copy()
    relabelled.loc[relabelled["video"] == 5, "label"] = 1 - relabelled.loc[relabelled["video"] == 5, "label"]
    edited = youtube_frame.copy()
    edited.loc[0, "text"] = edited.loc[0, "text"] + " "
    versions = {base.version, youtube_tutorial_split(relabelled).version, youtube_tutorial_split(edited).version}
    assert len(versions) == 3


LF_MODULE = '''
from snorkel.labeling import labeling_function

@labeling_function()
def lf_keyword(x):
    return 1 if "{word}" in x.text.lower() else -1

@labeling_function()
def lf_song(x):
    return 0 if "song" in x.text.lower() else -1
'''


def _lf_set(root, word: str):
    (root / "edited_lfs.py").write_text(textwrap.dedent(LF_MODULE.format(word=word)), encoding="utf-8")
    sys.modules.pop("edited_lfs", None)
    importlib.invalidate_caches()
    return discover_lfs(["edited_lfs"], root=root)


def test_an_edited_lf_gives_a_new_lf_set_version_and_label_matrix(tmp_path, youtube_splits):
    frame = youtube_splits.train
    # Versions are taken right after discovery, as a run does: lf_version reads
    # the source file, so an LF object kept across an edit would hash the new source.
    try:
        before = _lf_set(tmp_path, "check")
        v_before, L_before = lf_set_version(before), apply_lfs(before, frame, cardinality=2).L
        after = _lf_set(tmp_path, "subscribe")
        v_after, L_after = lf_set_version(after), apply_lfs(after, frame, cardinality=2).L
        v_unchanged = lf_set_version(_lf_set(tmp_path, "subscribe"))
    finally:
        sys.modules.pop("edited_lfs", None)
    assert v_before != v_after
    assert v_after == v_unchanged
    assert label_matrix_hash(L_before) != label_matrix_hash(L_after)
    # Only the edited LF's column changed.
    assert np.array_equal(L_before[:, 1], L_after[:, 1]) and not np.array_equal(L_before[:, 0], L_after[:, 0])


def test_the_run_records_its_config_and_rebuilds_it(recorded_youtube_run):
    config, result = recorded_youtube_run
    from labeling import RunStore

    with RunStore(result.store_path) as store:
        recorded = store.get_run(result.run_id)["config"]
    assert config_from_record(recorded) == config
    moved = {**recorded, "base_dir": "/somewhere/else", "store": "x.db"}
    assert config_hash(moved) == config_hash(recorded)
    assert config_hash({**recorded, "seed": 1}) != config_hash(recorded)
    # [serving] came after runs were recorded: at its default a run hashes as before it existed
    assert recorded["serving"] == {"predictor": "auto"}
    assert config_hash({k: v for k, v in recorded.items() if k != "serving"}) == config_hash(recorded)
    assert config_hash({**recorded, "serving": {"predictor": "end_model"}}) != config_hash(recorded)


def test_reproducing_a_recorded_run_matches(recorded_youtube_run):
    config, result = recorded_youtube_run
    again = reproduce(result.store_path, result.run_id)
    assert again.matches, again.format()
    checked = again.checked
    assert checked["label matrix train"]["reproduced"] == result.matrix_hashes["train"]
    assert checked["end model accuracy"]["reproduced"] == result.metric("end model")
    assert len([k for k in checked if k.endswith(" accuracy")]) == len(result.evaluation)


def test_history_lists_runs_with_lineage_and_metrics(recorded_youtube_run, capsys):
    config, result = recorded_youtube_run
    rows = history(result.store_path)
    row = next(r for r in rows if r["run_id"] == result.run_id)
    assert row["dataset_version"] == result.dataset_version and row["lf_set_version"] == result.lf_set_version
    assert row["label_matrix_train"] == result.matrix_hashes["train"]
    assert row["end_model_accuracy"] == pytest.approx(result.metric("end model"))
    assert "candidate" in row["aliases"] or len(rows) > 1
    assert row["warnings"] >= 1  # the tutorial split's train/test leakage
    store_args = ["--config", str(config.base_dir) + "/project.toml", "--set", f'project.store="{result.store_path}"']
    assert main(["history", *store_args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert result.run_id in [r["run_id"] for r in printed]
    assert main(["history", *store_args]) == 0
    assert result.dataset_version in capsys.readouterr().out


@pytest.mark.parametrize("kind, moves", [("auto", False), ("sklearn", True), ("torch", True)])
def test_the_fixed_end_models_new_default_features_move_only_the_hashes_of_runs_they_change(tmp_path, kind, moves):
    body = f'[project]\nname = "h"\nclasses = ["ham", "spam"]\n[end_model]\ntype = "{kind}"\n'
    recorded = json.loads(json.dumps(dataclasses.asdict(load_config(write_project(tmp_path, body))), default=str))
    before = {**recorded, "end_model": {**{k: v for k, v in recorded["end_model"].items() if k != "hash_bits"},
                                        "analyzer": "char_wb", "ngram_min": 2, "ngram_max": 5, "C": 1.0}}
    assert (config_hash(recorded) != config_hash(before)) == moves
