"""A run's own LFs: saved by content with its artifacts, loaded back under names of their own."""

from __future__ import annotations

import sys
import uuid

import pandas as pd
import pytest

from labeling import apply_lfs, discover_lfs
from labeling.pipeline.run_lfs import LFLoadError, LFSnapshot, load_run_lfs, save_lf_snapshot, snapshot_lfs

from ..conftest import REPO

HELPER = 'WORD = "{word}"\n\n\ndef has_word(text):\n    return WORD in text.lower()\n'
LFS = '''
from pathlib import Path

from snorkel.labeling import labeling_function

from {package}.helpers import has_word
from . import helpers

WORDS = Path(__file__).parent / "words.txt"
OUTSIDE = Path({outside!r})


@labeling_function()
def lf_word(x):
    return 1 if has_word(x.text) else -1


@labeling_function()
def lf_listed(x):
    return 0 if any(w in x.text for w in WORDS.read_text().split()) else -1


@labeling_function(resources=dict(path=OUTSIDE))
def lf_outside(x, path):
    return 1 if path.read_text().strip() in x.text else -1


@labeling_function()
def lf_module_attr(x):
    return 0 if helpers.WORD == "never" else -1
'''
FRAME = pd.DataFrame({"text": ["check my channel", "nice song", "win money now", "plain text"]})


@pytest.fixture
def project(tmp_path):
    """A project folder with an LF module that imports a helper module, reads a file beside it
    and one outside the project; a package name no other test uses."""
    package = f"saved_lfs_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "project"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "helpers.py").write_text(HELPER.format(word="channel"))
    (root / package / "words.txt").write_text("song\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("money")
    (root / package / "lfs.py").write_text(LFS.format(package=package, outside=str(outside)))
    yield root, package, outside
    for name in [n for n in sys.modules if n.startswith(package)]:
        del sys.modules[name]


def _saved(root, package, folder, run_id):
    lfs = discover_lfs([f"{package}.lfs"], root=root)
    snapshot = snapshot_lfs(lfs, [f"{package}.lfs"], root)
    expected = save_lf_snapshot(snapshot, folder)
    return lfs, snapshot, expected, lambda: load_run_lfs(run_id, folder, expected, [lf.name for lf in lfs])


def test_a_run_keeps_its_modules_helpers_and_files_and_votes_with_them_after_edits(project, tmp_path):
    root, package, outside = project
    lfs, snapshot, expected, load = _saved(root, package, tmp_path / "run1" / "lfs", "run1")
    assert set(snapshot.files) == {f"{package}/__init__.py", f"{package}/lfs.py", f"{package}/helpers.py",
                                   f"{package}/words.txt"}
    assert set(snapshot.external) == {str(outside)}
    original = apply_lfs(lfs, FRAME, cardinality=2).L
    # the working tree moves on: the helper, the file beside the module and the module itself
    (root / package / "helpers.py").write_text(HELPER.format(word="money"))
    (root / package / "words.txt").write_text("plain\n")
    (root / package / "lfs.py").write_text("raise RuntimeError('edited')\n")
    loaded = load()
    assert [lf.name for lf in loaded] == [lf.name for lf in lfs]
    assert (apply_lfs(loaded, FRAME, cardinality=2).L == original).all()
    assert all(lf._f.__module__.startswith("_labeling_run_lfs.") for lf in loaded)
    assert load() is loaded  # once per process and run


def test_two_runs_lfs_live_side_by_side(project, tmp_path):
    root, package, _ = project
    _, _, _, load_first = _saved(root, package, tmp_path / "run1" / "lfs", "run1")
    (root / package / "helpers.py").write_text(HELPER.format(word="money"))
    for name in [n for n in sys.modules if n.startswith(package)]:
        del sys.modules[name]
    _, _, _, load_second = _saved(root, package, tmp_path / "run2" / "lfs", "run2")
    first, second = load_first(), load_second()
    assert apply_lfs(first[:1], FRAME, cardinality=2).L[:, 0].tolist() == [1, -1, -1, -1]
    assert apply_lfs(second[:1], FRAME, cardinality=2).L[:, 0].tolist() == [-1, -1, 1, -1]
    assert first[0]._f.__module__ != second[0]._f.__module__


@pytest.mark.parametrize("fault", ["source", "resource", "missing"])
def test_saved_lfs_that_fail_their_recorded_checksums_are_refused(project, tmp_path, fault):
    root, package, _ = project
    folder = tmp_path / "run1" / "lfs"
    _, _, _, load = _saved(root, package, folder, f"run-{fault}")
    path = folder / package / ("words.txt" if fault == "resource" else "helpers.py")
    if fault == "missing":
        path.unlink()
    else:
        path.write_text(path.read_text() + "\n")
    with pytest.raises(LFLoadError, match=f"{path}.*(missing|recorded with the run)"):
        load()


def test_a_changed_file_outside_the_project_is_refused(project, tmp_path):
    root, package, outside = project
    _, _, _, load = _saved(root, package, tmp_path / "run1" / "lfs", "run-outside")
    outside.write_text("other")
    with pytest.raises(LFLoadError, match=f"read {outside}, which was changed since the run"):
        load()


def test_older_runs_and_missing_dependencies_say_why(tmp_path):
    with pytest.raises(LFLoadError, match="recorded without its LFs"):
        load_run_lfs("old", None, {}, ["lf"])
    module = "from snorkel.labeling import labeling_function\nimport no_such_dependency_x1\n"
    expected = save_lf_snapshot(LFSnapshot(("pkg.lfs",), ("lf",), {"pkg/lfs.py": module.encode()}), tmp_path / "lfs")
    with pytest.raises(LFLoadError, match="ModuleNotFoundError: No module named 'no_such_dependency_x1'"):
        load_run_lfs("deps", tmp_path / "lfs", expected, ["lf"])


def test_the_example_projects_lfs_are_saved_with_their_resource_file(tmp_path):
    lfs = discover_lfs(["labeling_functions.youtube_spam"], root=REPO)
    snapshot = snapshot_lfs(lfs, ["labeling_functions.youtube_spam"], REPO)
    assert set(snapshot.files) == {"labeling_functions/__init__.py", "labeling_functions/youtube_spam.py",
                                   "labeling_functions/resources/spam_phrases.txt"}
    assert not snapshot.external
    loaded = load_run_lfs("example", tmp_path / "lfs", save_lf_snapshot(snapshot, tmp_path / "lfs"))
    phrase = next(lf for lf in loaded if lf.name == "phrase_list_spam")
    assert phrase._resources["path"] == tmp_path / "lfs" / "labeling_functions" / "resources" / "spam_phrases.txt"
