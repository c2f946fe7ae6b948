"""save(): the written module imports, defines the session's new LFs, and votes identically."""

from __future__ import annotations

import dataclasses
import re
import sys

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import LabelingFunction, labeling_function

from labeling import WorkbenchError, apply_lfs, discover_lfs, keyword_lf, length_lf, lf_version, regex_lf
from labeling.lf.core import spacy_labeling_function
from labeling.config import LabelModelConfig, LFConfig, ProjectConfig
from labeling.data.datasets import Splits
from labeling.notebook import Workbench, lf_module_source

NEG, POS, ABSTAIN = 0, 1, -1
PRAISE = ("great", "fun")
NUMBER = re.compile(r"\d+\s*/\s*10")


def mentions_praise(text: str) -> bool:
    return any(word in text.lower().split() for word in PRAISE)


@labeling_function()
def lf_praise(x):
    return POS if mentions_praise(x.text) else ABSTAIN


@labeling_function(name="lf_rating_renamed")
def lf_rating(x):
    return NEG if NUMBER.search(x.text) and x.text.startswith("1") else ABSTAIN


def _exclaim(x, mark):
    return NEG if x.text.count(mark) >= 2 else ABSTAIN


EXCLAIM = LabelingFunction(name="exclaim", f=_exclaim, resources={"mark": "!"})

TEXTS = ["great fun!", "1/10 awful!!", "a movie", "fun fun 9/10", "bad bad bad", "10/10 great", "meh!!", "ok"]


def _forget_package():
    for name in [n for n in sys.modules if n == "mylfs" or n.startswith("mylfs.")]:
        del sys.modules[name]


@pytest.fixture
def project(tmp_path):
    # each test's package lives in its own folder: an imported one from another test must not shadow it
    _forget_package()
    yield from _project(tmp_path)
    _forget_package()


def _project(tmp_path):
    (tmp_path / "mylfs").mkdir()
    (tmp_path / "mylfs" / "__init__.py").write_text("")
    config = ProjectConfig(name="tiny", classes=("neg", "pos"), label_model=LabelModelConfig(type="majority_vote"),
                           lfs=LFConfig(modules=(), root="."), base_dir=str(tmp_path))
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(TEXTS))], "text": TEXTS,
                          "label": [POS, NEG, NEG, POS, NEG, POS, NEG, POS]})
    splits = Splits(train=frame.assign(label=-1), dev=frame, test=frame, classes=("neg", "pos"), source="tiny")
    yield config, splits


SESSION = [lf_praise, lf_rating, EXCLAIM, keyword_lf("kw_bad", ["bad", "awful"], NEG),
           regex_lf("re_score", r"\b(?:9|10)/10\b", POS, flags=re.IGNORECASE | re.MULTILINE),
           length_lf("short", NEG, min_len=1, max_len=1, unit="words")]


def test_saved_module_imports_and_votes_identically(project):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[], cache=None)
    for lf in SESSION:
        wb.add(lf)
    saved = wb.save("mylfs.saved")
    assert saved.path == config.resolve(".") / "mylfs" / "saved.py"
    assert saved.names == tuple(lf.name for lf in SESSION)
    assert saved.config.lfs.modules == ("mylfs.saved",)
    loaded = discover_lfs(saved.config.lfs.modules, root=config.resolve(config.lfs.root))
    assert [lf.name for lf in loaded] == [lf.name for lf in SESSION]
    frame = pd.concat([splits.train, splits.dev], ignore_index=True)
    assert np.array_equal(apply_lfs(loaded, frame, cardinality=2).L, np.vstack([wb.L_train, wb.L_dev]))
    assert wb.L_train[:, 0].tolist() == [1, -1, -1, 1, -1, 1, -1, -1]  # the LFs really vote
    # the same source and resources: the same versions, so cached votes carry over
    decorated_and_declarative = [0, 1, 3, 4, 5]
    assert [lf_version(loaded[j]) for j in decorated_and_declarative] == \
        [lf_version(SESSION[j]) for j in decorated_and_declarative]


def test_source_writes_declarative_lfs_as_factory_calls():
    source = lf_module_source(SESSION[3:])
    assert "kw_bad = regex_lf('kw_bad', " in source and "flags=re.IGNORECASE, field='text')" in source
    assert "flags=re.IGNORECASE | re.MULTILINE" in source
    assert "short = length_lf('short', 0, min_len=1, max_len=1, unit='words', field='text')" in source
    assert "def " not in source


def test_source_writes_plain_lfs_with_what_they_use():
    source = lf_module_source([lf_praise, lf_rating])
    assert "PRAISE = ('great', 'fun')" in source and "POS = 1" in source and "ABSTAIN = -1" in source
    assert "def mentions_praise(text: str) -> bool:" in source
    assert "NUMBER = re.compile('\\\\d+\\\\s*/\\\\s*10', 0)" in source and "import re" in source
    assert "from snorkel.labeling.lf.core import labeling_function" in source
    assert '@labeling_function(name="lf_rating_renamed")' in source


def test_only_new_lfs_are_saved(project):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[lf_praise], cache=None)
    with pytest.raises(WorkbenchError, match="no new LFs"):
        wb.save("mylfs.saved")
    wb.add(EXCLAIM)
    saved = wb.save("mylfs.saved")
    assert saved.names == ("exclaim",) and saved.replaces == ()
    wb.replace(keyword_lf("lf_praise", ["great"], POS))
    saved = wb.save("mylfs.saved", overwrite=True)
    assert saved.names == ("lf_praise", "exclaim") and saved.replaces == ("lf_praise",)


def test_an_existing_module_is_kept_unless_overwrite(project):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[], cache=None).add(EXCLAIM)
    target = config.resolve(".") / "mylfs" / "saved.py"
    target.write_text("# mine\n")
    with pytest.raises(WorkbenchError, match="exists; pass overwrite=True"):
        wb.save("mylfs.saved")
    assert target.read_text() == "# mine\n"
    wb.save("mylfs.saved", overwrite=True)
    assert "def _exclaim" in target.read_text()


COUNTER = {"calls": 0}


@labeling_function()
def lf_uses_object(x):
    return POS if np.char.str_len(np.array([x.text]))[0] > 3 else ABSTAIN


def _make(word):
    @labeling_function(name=f"has_{word}")
    def has(x):
        return POS if word in x.text else ABSTAIN

    return has


SERIES = pd.Series([1, 2])


@labeling_function()
def lf_uses_series(x):
    return POS if len(x.text) > SERIES.iloc[0] else ABSTAIN


def test_what_cannot_be_code_is_refused_naming_it(project):
    config, splits = project
    with pytest.raises(WorkbenchError, match="'has_good' is a closure"):
        lf_module_source([_make("good")])
    with pytest.raises(WorkbenchError, match=r"'lf_uses_series' uses 'SERIES' \(Series\)"):
        lf_module_source([lf_uses_series])
    assert "import numpy as np" in lf_module_source([lf_uses_object])


def test_a_module_that_would_vote_differently_is_removed(project, monkeypatch):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[], cache=None).add(lf_praise)
    # the session's column no longer matches what the source computes
    wb.L_dev[:, 0] = ABSTAIN
    with pytest.raises(WorkbenchError, match="'lf_praise' as saved votes differently on 3 check rows"):
        wb.save("mylfs.saved")
    assert not (config.resolve(".") / "mylfs" / "saved.py").exists()


def test_bad_module_names(project):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[], cache=None).add(EXCLAIM)
    with pytest.raises(WorkbenchError, match="dotted Python name"):
        wb.save("mylfs/saved.py")
    with pytest.raises(WorkbenchError, match="no package folder"):
        wb.save("nowhere.saved")


@spacy_labeling_function()
def spacy_has_number(x):
    return NEG if any(token.like_num for token in x.doc) else ABSTAIN


def test_spacy_lfs_are_saved_by_source(project):
    config, splits = project
    wb = Workbench(config, splits=splits, lfs=[], cache=None).add(spacy_has_number)
    saved = wb.save("mylfs.spacy_saved")
    source = saved.path.read_text()
    assert "from labeling.lf.core import spacy_labeling_function" in source and "@spacy_labeling_function()" in source
    loaded = discover_lfs(["mylfs.spacy_saved"], root=config.resolve("."))
    assert lf_version(loaded[0]) == lf_version(spacy_has_number)
    assert np.array_equal(apply_lfs(loaded, splits.train, cardinality=2).L[:, 0], wb.L_train[:, 0])
    assert (wb.L_train[:, 0] == NEG).sum() == 3  # "1/10", "9/10", "10/10"


# Preprocessors: one imported from another module, one defined here (in a session: a cell)
# whose decorator names the imported one.
from snorkel.map import LambdaMapper  # noqa: E402
from snorkel.preprocess import preprocessor  # noqa: E402

from ..fixtures.lf_modules.text_preprocessors import lowered  # noqa: E402

WH_WORDS = ("what", "how", "why")


@preprocessor(pre=[lowered])
def wh_word(x):
    x.wh = next((w for w in WH_WORDS if x.lowered.startswith(w)), None)
    return x


@labeling_function(pre=[wh_word])
def lf_question(x):
    return POS if x.wh is not None else ABSTAIN


@labeling_function(pre=[lowered])
def lf_lowered_fun(x):
    return NEG if "fun" in x.lowered else ABSTAIN


def test_lfs_with_preprocessors_are_saved_and_vote_identically(project):
    config, splits = project
    splits = dataclasses.replace(splits, train=splits.train.assign(text=[f"How {t}" if i % 3 else t
                                                                          for i, t in enumerate(splits.train["text"])]))
    wb = Workbench(config, splits=splits, lfs=[], cache=None).add(lf_question).add(lf_lowered_fun)
    saved = wb.save("mylfs.with_pre")
    source = saved.path.read_text()
    assert "from tests.fixtures.lf_modules.text_preprocessors import lowered" in source
    assert "@preprocessor(pre=[lowered])\ndef wh_word(x):" in source and "WH_WORDS = ('what', 'how', 'why')" in source
    assert source.index("def wh_word") < source.index("def lf_question")
    loaded = discover_lfs(["mylfs.with_pre"], root=config.resolve("."))
    L = apply_lfs(loaded, splits.train, cardinality=2).L
    np.testing.assert_array_equal(L, wb.L_train)
    assert (L[:, 0] == POS).sum() == 5 and (L[:, 1] == NEG).sum() == 2  # both LFs really vote
    assert lf_version(loaded[1]) == lf_version(lf_lowered_fun)  # the same source and the same imported preprocessor


def _strip(x):
    x.text = x.text.strip()
    return x


STRIPPED = LambdaMapper("stripped", f=_strip)


@labeling_function(pre=[STRIPPED])
def lf_uses_stripped(x):
    return POS if x.text else ABSTAIN


def test_a_preprocessor_that_is_not_a_decorated_def_is_refused_naming_it():
    with pytest.raises(WorkbenchError, match="'lf_uses_stripped' uses the preprocessor 'STRIPPED', not made by a decorator"):
        lf_module_source([lf_uses_stripped])
