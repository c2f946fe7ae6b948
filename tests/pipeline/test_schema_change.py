"""Label-schema changes end to end on a small project: plans equal what applying did, crashes leave
the old schema or the new, the TOML and LF modules follow the store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from labeling.cli import main
from labeling.config import load_config
from labeling.errors import SchemaChangeError
from labeling.pipeline.schema_change import KILL_AT_ENV, finish_pending, project_schema
from labeling.store.gold import GoldStore, ReviewTask
from labeling.store.serving import FeedbackLog, FeedbackRecord

from ..conftest import REPO

CLASSES = ["ham", "promo", "scam"]
LF_MODULE = '''"""LFs of the schema tests."""

from snorkel.labeling import labeling_function

ABSTAIN, HAM, PROMO, SCAM = -1, 0, 1, 2


@labeling_function()
def song(x):
    return HAM if "song" in x.text else ABSTAIN


@labeling_function()
def channel(x):
    return PROMO if "channel" in x.text else ABSTAIN


@labeling_function()
def prize(x):
    return SCAM if "prize" in x.text else ABSTAIN
'''
PROJECT = """# a small project of the schema tests
[project]
name = "schema"
classes = {classes}           # index = position
seed = 1
store = "store.db"
[dataset]
source = "file"
path = "comments.csv"
[lfs]
modules = ["schema_lfs"]
root = "."
[label_model]
type = "majority_vote"
"""
# (CLI words, classes after): one of each change
CHANGES = {
    "add": (["add", "other"], ["ham", "promo", "scam", "other"]),
    "rename": (["rename", "ham", "legit"], ["legit", "promo", "scam"]),
    "merge": (["merge", "promo", "scam", "--into", "spam"], ["ham", "spam"]),
    "split": (["split", "ham", "--into", "legit", "chat"], ["legit", "chat", "promo", "scam"]),
    "retire": (["retire", "promo"], ["ham", "scam"]),
}


def make_project(folder: Path) -> Path:
    """The project with 6 review tasks answered by two annotators (12 gold rows) and 6 feedback rows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schema_lfs.py").write_text(LF_MODULE, encoding="utf-8")
    path = folder / "project.toml"
    path.write_text(PROJECT.format(classes=json.dumps(CLASSES)), encoding="utf-8")
    config = load_config(path)
    project_schema(config)  # registered before the rows, as a retrain or a schema command does
    store = config.resolve(config.store)
    tasks = [ReviewTask(f"t{i}", "dataset", str(i), f"text {i}", "random") for i in range(6)]
    with GoldStore(store) as gold:
        gold.record_pushed("schema review", tasks, {t.task_key: i + 1 for i, t in enumerate(tasks)})
        gold.record_annotations("schema review", [
            SimpleNamespace(task_key=f"t{i}", annotator=who, annotation_id=10 * i + n, label=(i + n) % 3,
                            updated_at=f"2026-01-0{n + 1}") for i in range(6) for n, who in enumerate(("a", "b"))])
    with FeedbackLog(store) as log:
        for i in range(6):
            log.record_feedback(FeedbackRecord(f"f{i}", f"2026-01-01T00:00:0{i}", f"k{i}", "x", i % 3, None,
                                               f"served {i}", None, None))
    return path


def labels(config_path: Path) -> dict:
    """Gold and feedback labels as class names of the store's current schema, with their schema versions."""
    with sqlite3.connect(str(config_path.parent / "store.db")) as conn:
        version, classes = conn.execute("SELECT c.version, s.classes FROM label_schema_current c JOIN label_schemas s"
                                        " USING (project, version)").fetchone()
        classes = json.loads(classes)
        gold = {(k, a): (classes[lab], v) for k, a, lab, v in conn.execute(
            "SELECT task_key, annotator, label, schema_version FROM gold_labels")}
        feedback = {i: (classes[lab], v) for i, lab, v in conn.execute("SELECT id, label, schema_version FROM feedback")}
    return {"version": version, "classes": classes, "gold": gold, "feedback": feedback}


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_commands_dry_run_lists_exactly_what_the_change_then_did(tmp_path, capsys, change):
    words, after = CHANGES[change]
    path = make_project(tmp_path / "p")
    args = ["schema", *words, "--config", str(path)]
    before = labels(path)
    files_before = {p: p.read_text() for p in (path, tmp_path / "p" / "schema_lfs.py")}

    code, text = run_cli([*args, "--dry-run"], capsys)
    _, planned = run_cli([*args, "--dry-run", "--json"], capsys)
    plan = json.loads(planned)
    assert code == 0 and labels(path) == before and all(p.read_text() == t for p, t in files_before.items())

    code, applied = run_cli([*args, "--yes"], capsys)
    assert code == 0 and applied.startswith(text.rstrip("\n")), "the apply prints the dry run's listing"
    now = labels(path)
    assert now["classes"] == after == plan["new_classes"] and now["version"] == plan["new_version"]
    # every row is on the new schema; the rows the plan listed are exactly those whose class changed
    assert {v for _, v in [*now["gold"].values(), *now["feedback"].values()]} == {plan["new_version"]}
    moved = [{"task_key": k, "annotator": a, "old": old, "new": now["gold"].get((k, a), (None,))[0]}
             for (k, a), (old, _) in sorted(before["gold"].items())
             if (k, a) not in now["gold"] or CLASSES.index(old) != after.index(now["gold"][(k, a)][0])]
    assert plan["gold"] == moved
    moved = [{"id": i, "old": old, "new": now["feedback"].get(i, (None,))[0]}
             for i, (old, _) in sorted(before["feedback"].items())
             if i not in now["feedback"] or CLASSES.index(old) != after.index(now["feedback"][i][0])]
    assert plan["feedback"] == moved
    assert plan["review"] == sorted({g["task_key"] for g in plan["gold"] if g["new"] is None})
    changed = [str(p) for p, t in files_before.items() if p.read_text() != t]
    assert [f["path"] for f in plan["files"]] == changed
    assert load_config(path).classes == tuple(after)
    # the rewritten LF module still votes each class it has a constant for by its new index
    namespace = {}
    exec((tmp_path / "p" / "schema_lfs.py").read_text(), namespace)
    for name, index in ((c.upper(), after.index(c)) for c in after if c.upper() in namespace):
        assert namespace[name] == index, name


def test_a_lossy_change_is_refused_without_yes_and_a_clean_one_applies(tmp_path, capsys):
    path = make_project(tmp_path / "p")
    code, text = run_cli(["schema", "retire", "promo", "--config", str(path)], capsys)
    assert code == 1 and "(unlabelled)" in text and "not applied" in text
    assert labels(path)["classes"] == CLASSES
    code, text = run_cli(["schema", "add", "other", "--config", str(path)], capsys)
    assert code == 0 and "applied: label schema" in text


def test_show_lists_the_history_and_retrain_refuses_a_hand_edited_class_list(tmp_path, capsys):
    path = make_project(tmp_path / "p")
    run_cli(["schema", "rename", "ham", "legit", "--config", str(path)], capsys)
    code, text = run_cli(["schema", "show", "--config", str(path)], capsys)
    assert code == 0 and "0=legit, 1=promo, 2=scam" in text and "rename ham legit" in text and "init" in text
    for bad, says in ((["rename", "ham"], "rename takes 1"), (["merge", "promo", "--into", "x"], "merge takes 2"),
                      (["retire", "nope"], "'nope' is not in"), (["add", "promo"], "'promo' is already"),
                      (["split", "scam", "--into", "a", "a"], "'a' twice"), (["add", "x", "--into", "y"], "--into")):
        assert main(["schema", *bad, "--config", str(path), "--dry-run"]) == 2
        assert says in capsys.readouterr().err
    edited = path.read_text()
    path.write_text(edited.replace('"legit"', '"ham"'))
    with pytest.raises(SchemaChangeError, match=r"differ from the store's label schema .*labeling schema"):
        project_schema(load_config(path))


#: steps of ``merge promo scam --into spam``: 5 inside the store transaction, its commit, temp file
#: and rename for the TOML and for the LF module, the files noted written
KILL_POINTS = list(range(1, 12))
# the default suite kills inside the store transaction, after its commit and after the last
# file; the other eight points run with -m slow
QUICK = {1, 6, 11}


@pytest.mark.parametrize("kill_at", [k if k in QUICK else pytest.param(k, marks=pytest.mark.slow)
                                     for k in KILL_POINTS])
def test_kill_9_during_a_change_leaves_the_old_schema_or_the_new_and_a_rerun_finishes_it(tmp_path, capsys, kill_at):
    path = make_project(tmp_path / "p")
    lfs = tmp_path / "p" / "schema_lfs.py"
    old_files = {path: path.read_text(), lfs: lfs.read_text()}
    before = labels(path)
    cmd = [sys.executable, "-m", "labeling", "schema", "merge", "promo", "scam", "--into", "spam", "--yes",
           "--config", str(path)]
    env = {**os.environ, "PYTHONPATH": str(REPO), KILL_AT_ENV: str(kill_at)}
    child = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert child.returncode == -9, child.stderr
    now = labels(path)
    if now["version"] == before["version"]:  # killed before the commit: nothing changed anywhere
        assert now == before and all(p.read_text() == t for p, t in old_files.items())
    else:  # committed: every row on the new schema; the files are old or new, never half-written
        assert now["classes"] == ["ham", "spam"]
        assert {v for _, v in [*now["gold"].values(), *now["feedback"].values()]} == {now["version"]}
        assert not list((tmp_path / "p").glob("*.schema-tmp")) or kill_at in (7, 9)
    finish_pending(path)  # what the next command does first
    assert load_config(path).classes == tuple(labels(path)["classes"])
    env.pop(KILL_AT_ENV)
    if labels(path)["version"] == before["version"]:
        assert subprocess.run(cmd, env=env, capture_output=True, text=True).returncode == 0
    final = labels(path)
    assert final["classes"] == ["ham", "spam"] and load_config(path).classes == ("ham", "spam")
    assert {c for c, _ in final["gold"].values()} == {"ham", "spam"}
    assert "SPAM = 1" in lfs.read_text() and "ABSTAIN, HAM, PROMO, SCAM = -1, 0, 1, 1" in lfs.read_text()
