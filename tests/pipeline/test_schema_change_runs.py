"""Runs across label-schema changes: retrain reads the data file through the schema history after
each change, runs recorded before a change reproduce exactly, and the gate compares across schemas
only through the mapping (the chain the issue's end-to-end story walks, without Label Studio)."""

from __future__ import annotations

import json
import shutil
import sys
from types import SimpleNamespace

import pytest

from labeling.cli import main
from labeling.config import load_config
from labeling.pipeline.lineage import reproduce
from labeling.pipeline.retrain import run_retrain, summary_notes
from labeling.store.gold import GoldStore, ReviewTask
from labeling.store.serving import FeedbackLog, FeedbackRecord

from ..conftest import FIXTURES, TINY_PROJECT, tiny_project

#: the two LFs the split adds (voting the new classes' indices: ham/legit 0, promo 1, scam 2)
SPLIT_LFS = '''

PROMO, SCAM = 1, 2


@labeling_function()
def channel(x):
    return PROMO if "channel" in x.text else ABSTAIN


@labeling_function()
def prize(x):
    return SCAM if "prize" in x.text else ABSTAIN
'''


def chain_project(folder):
    """``tiny_project`` with its LFs copied into the project (a schema change rewrites them) and
    4 feedback rows, so every run reads store gold."""
    path = tiny_project(folder)
    shutil.copy(FIXTURES / "lf_modules" / "youtube_weak.py", folder / "chain_lfs.py")
    path.write_text(TINY_PROJECT.format(root=".").replace("lf_modules.youtube_weak", "chain_lfs"), encoding="utf-8")
    with FeedbackLog(load_config(path).resolve(load_config(path).store)) as log:
        for i in range(4):
            log.record_feedback(FeedbackRecord(f"f{i}", f"2026-01-01T00:00:0{i}", f"k{i}", "x", i % 2, None,
                                               f"served text {i}!", None, None))
    return path


def retrain(path):
    """A retrain as a fresh ``labeling retrain`` process runs it: the LF module imported anew (this
    process imported it before a schema change or an edit rewrote it)."""
    sys.modules.pop("chain_lfs", None)
    return run_retrain(load_config(path))


def schema(args, path, capsys):
    code = main(["schema", *args, "--yes", "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_retrain_follows_each_change_and_every_earlier_run_reproduces(tmp_path, capsys):
    path = chain_project(tmp_path / "p")
    runs = {"before": retrain(path)}
    schema(["rename", "ham", "legit"], path, capsys)
    runs["renamed"] = retrain(path)
    # a rename moves no index: the data file reads the same, only the names change
    assert runs["renamed"].dataset_version == runs["before"].dataset_version
    assert runs["renamed"].documents["label_schema"]["relabelled"] == {"ham -> legit": 60}

    schema(["split", "spam", "--into", "promo", "scam"], path, capsys)
    with open(tmp_path / "p" / "chain_lfs.py", "a", encoding="utf-8") as lfs:
        lfs.write(SPLIT_LFS)
    # 20 reviewed rows: the split's classes told apart by a person
    tasks = [ReviewTask(f"t{i}", "served", None, f"{'free prize' if i % 2 else 'my channel'} number {i}", "random")
             for i in range(20)]
    with GoldStore(load_config(path).resolve(load_config(path).store)) as gold:
        gold.record_pushed("chain review", tasks, {t.task_key: i + 1 for i, t in enumerate(tasks)})
        gold.record_annotations("chain review", [
            SimpleNamespace(task_key=t.task_key, annotator="a", annotation_id=i, label=1 + i % 2,
                            updated_at="2026-02-01") for i, t in enumerate(tasks)])
    runs["split"] = retrain(path)
    shown = runs["split"].documents["label_schema"]
    assert shown["unlabelled"] == {"spam": 60} and sum(shown["dropped_from"].values()) > 0
    assert runs["split"].end_model["gold"]["extra_rows"] == 20 + 2  # the reviews, and the 2 ham feedback rows
    assert any("unlabelled (split or retired) spam: 60" in note for note in summary_notes(runs["split"]))

    assert main(["promote", runs["split"].run_id, "--config", str(path)]) == 0
    schema(["merge", "promo", "scam", "--into", "spam"], path, capsys)
    runs["merged"] = retrain(path)
    # the split's spam pieces are whole again: the data file's spam rows are spam again
    assert runs["merged"].dataset_version == runs["before"].dataset_version
    decision = runs["merged"].promotion
    assert "predictions mapped to the current classes" in decision["reason"], decision["reason"]

    store = load_config(path).resolve(load_config(path).store)
    for name in ("before", "renamed", "split"):  # each made before a change that relabelled its gold
        run = runs[name]
        again = reproduce(store, run.run_id, base_dir=tmp_path / "p")
        assert again.matches, (name, again.format())
        assert again.gold_source == "saved with the run"
