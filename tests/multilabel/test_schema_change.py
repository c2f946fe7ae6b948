"""Label-schema changes of a multi-label project: add, rename and retire map the stored label sets
class by class (real SQLite store, real files); split and merge are refused saying why."""

from __future__ import annotations

import shutil

import pytest

from labeling.config import load_config
from labeling.data.schema import SchemaChange
from labeling.errors import SchemaChangeError
from labeling.multilabel.gold import decode_gold, load_multilabel_dataset
from labeling.pipeline.schema_change import apply_plan, plan_change
from labeling.review.multilabel import store_gold_sets

from ..conftest import FIXTURES
from .conftest import write_tiny_multilabel
from .test_retrain import _store_gold


@pytest.fixture
def project(tmp_path, store_target):
    """The tiny project on each store backend, with its own copy of the LF modules: a change may rewrite them."""
    shutil.copytree(FIXTURES / "lf_modules", tmp_path / "lfs" / "lf_modules")
    path = write_tiny_multilabel(tmp_path / "project")
    text = path.read_text(encoding="utf-8").replace(str(FIXTURES), str(tmp_path / "lfs"))
    path.write_text(text.replace('store = "store.db"', f'store = "{store_target}"'), encoding="utf-8")
    return path


def _sets(config) -> dict[str, list[str]]:
    """The store's gold sets as the next retrain reads them: text -> class names."""
    gold = store_gold_sets(config).gold
    return {text: [config.classes[c] for c in labels] for text, labels in zip(gold["text"], gold["label"])}


def _apply(path, op, sources, targets, *, yes=False):
    return apply_plan(path, plan_change(path, SchemaChange(op, tuple(sources), tuple(targets))), yes=yes)


def test_rename_add_and_retire_map_each_stored_set_class_by_class(project):
    config = load_config(project)
    texts = _store_gold(config, load_multilabel_dataset(config)[0])
    before = _sets(config)
    assert before[texts["reviewed"]] == ["sport", "food"] and before["zebras crossing the road"] == ["food"]

    assert _apply(project, "rename", ["music"], ["songs"]).applied  # no set loses a class: applies
    config = load_config(project)
    assert config.classes == ("sport", "songs", "food")
    assert _sets(config) == {t: [c.replace("music", "songs") for c in cs] for t, cs in before.items()}
    assert _apply(project, "add", [], ["travel"]).applied

    retire = plan_change(project, SchemaChange("retire", ("food",), ()))
    lost = {tuple(g["old"]): g for g in retire.gold + retire.feedback}
    assert lost[("sport", "food")]["new"] == ["sport"] and lost[("sport", "food")]["lost"] == ["food"]
    assert not retire.clean and not apply_plan(project, retire).applied  # sets lose a class: needs --yes
    assert apply_plan(project, retire, yes=True).applied
    config = load_config(project)
    assert config.classes == ("sport", "songs", "travel")
    after = _sets(config)
    # the retired class leaves each set; the row's other classes stay, and a set of it alone is the empty set
    assert after[texts["reviewed"]] == ["sport"] and after[texts["fed"]] == ["songs"]
    assert after["zebras crossing the road"] == [] and set(after) == set(before)
    # the data file is never rewritten: its sets are read through the schema (music -> songs, food gone)
    splits, Ys = load_multilabel_dataset(config)
    read = {text: decode_gold(y, config.classes) for name, Y in Ys.items()
            for text, y in zip(getattr(splits, name)["text"], Y)}
    assert read["guitar song about pizza 4"] == ["songs"] and read["a song at the stadium goal 3"] == ["sport", "songs"]
    assert read["hot pizza and soup 2"] == []


@pytest.mark.parametrize("argv", [("split", ["music"], ["rock", "jazz"]), ("merge", ["sport", "music"], ["events"])])
def test_split_and_merge_are_refused_saying_why_and_what_to_do(project, argv):
    before = project.read_text(encoding="utf-8")
    with pytest.raises(SchemaChangeError, match=r"task = 'multi_label'.*label set.*Instead: `labeling schema add`"):
        plan_change(project, SchemaChange(argv[0], tuple(argv[1]), tuple(argv[2])))
    assert project.read_text(encoding="utf-8") == before
