from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from labeling import ConfigError, LFDiscoveryError, discover_lfs, lf_set_version, lf_version, spacy_labeling_function
from labeling.lf.core import LabelingFunction, SpacyDoc, labeling_function, load_spacy, resolve_spacy_model, uses_spacy


def _write_module(root: Path, name: str, body: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")


LF_SOURCE = """
    from snorkel.labeling import labeling_function

    @labeling_function()
    def lf_a(x):
        return 1 if "buy" in x.text else -1

    @labeling_function()
    def lf_b(x):
        return 0 if len(x.text) < {limit} else -1

    HELPER = 3
"""


@pytest.fixture
def lf_root(tmp_path, monkeypatch):
    # Fresh module names per test: discovery imports them.
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    return tmp_path


def test_discovery_is_explicit_and_ordered(lf_root):
    _write_module(lf_root, "spam_lfs_1", LF_SOURCE.format(limit=5))
    lfs = discover_lfs(["spam_lfs_1"], root=lf_root)
    assert [lf.name for lf in lfs] == ["lf_a", "lf_b"]
    assert str(lf_root) not in sys.path  # root is only on the path during import


def test_discovery_errors(lf_root):
    _write_module(lf_root, "no_lfs", "X = 1\n")
    _write_module(lf_root, "dup_1", LF_SOURCE.format(limit=5))
    _write_module(lf_root, "dup_2", LF_SOURCE.format(limit=6))
    with pytest.raises(LFDiscoveryError, match="defines no labeling functions"):
        discover_lfs(["no_lfs"], root=lf_root)
    with pytest.raises(LFDiscoveryError, match="cannot import"):
        discover_lfs(["does_not_exist"], root=lf_root)
    with pytest.raises(LFDiscoveryError, match="duplicate LF name 'lf_a'"):
        discover_lfs(["dup_1", "dup_2"], root=lf_root)
    with pytest.raises(LFDiscoveryError, match="empty"):
        discover_lfs([], root=lf_root)


def test_version_changes_with_source_only(lf_root):
    _write_module(lf_root, "v_1", LF_SOURCE.format(limit=5))
    _write_module(lf_root, "v_2", LF_SOURCE.format(limit=9))
    _write_module(lf_root, "v_3", LF_SOURCE.format(limit=5))
    one, two, three = (discover_lfs([m], root=lf_root) for m in ("v_1", "v_2", "v_3"))
    assert lf_version(one[0]) == lf_version(two[0]) == lf_version(three[0])  # lf_a untouched
    assert lf_version(one[1]) != lf_version(two[1])  # lf_b edited
    assert lf_set_version(one) == lf_set_version(three) != lf_set_version(two)
    assert lf_set_version(one) != lf_set_version(one[::-1])  # column order is part of it


def test_version_tracks_resource_file_contents(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("free\n")

    @labeling_function(resources=dict(path=words))
    def lf_words(x, path):
        return 1 if x.text in path.read_text().split() else -1

    before = lf_version(lf_words)
    words.write_text("free\nwin\n")
    assert lf_version(lf_words) != before
    assert lf_words(SimpleNamespace(text="win")) == 1


def test_version_of_set_resources_ignores_order():
    make = lambda words: labeling_function(name="kw", resources=dict(words=words))(lambda x, words: -1)  # noqa: E731
    assert lf_version(make({"a", "b", "c"})) == lf_version(make({"c", "b", "a"}))
    assert lf_version(make({"a", "b"})) != lf_version(make({"a", "b", "c"}))


@spacy_labeling_function()
def lf_person(x):
    return 0 if any(ent.label_ == "PERSON" for ent in x.doc.ents) else -1


def test_spacy_lf_parses_on_its_own_and_reuses_a_given_doc():
    from labeling import lf_uncacheable

    assert uses_spacy(lf_person)
    assert lf_uncacheable(lf_person) is None  # its preprocessor's code reaches the Row class: versioned
    assert lf_person(SimpleNamespace(text="I love Taylor Swift so much")) == 0
    assert lf_person(pd.Series({"text": "great video"})) == -1
    nlp = load_spacy(resolve_spacy_model())
    row = {"text": "ignored", "doc": nlp("Barack Obama was here")}
    assert SpacyDoc()(row) is row


def test_spacy_model_setting_and_clear_error(monkeypatch):
    monkeypatch.delenv("LABELING_SPACY_MODEL", raising=False)
    assert resolve_spacy_model("blank:en") == "blank:en"
    with pytest.raises(ConfigError, match="xx_custom.*not installed"):
        resolve_spacy_model("xx_custom")
    monkeypatch.setenv("LABELING_SPACY_MODEL", "blank:en")
    assert resolve_spacy_model("xx_custom") == "blank:en"
    with pytest.raises(ConfigError, match="no_such_pipeline.*not installed"):
        load_spacy("no_such_pipeline")


SHARED_REGEX_SOURCE = """
    import re
    from snorkel.labeling import labeling_function

    _PROMO = re.compile(r"{pattern}")

    def _has_promo(text):
        return bool(_PROMO.search(text))

    @labeling_function()
    def lf_promo(x):
        return 1 if _has_promo(x.text) else -1

    @labeling_function()
    def lf_other(x):
        return 0 if x.text == "hi" else -1
"""


def test_version_follows_module_level_helpers(lf_root):
    _write_module(lf_root, "shared_1", SHARED_REGEX_SOURCE.format(pattern="free"))
    _write_module(lf_root, "shared_2", SHARED_REGEX_SOURCE.format(pattern="free|win"))
    one, two = discover_lfs(["shared_1"], root=lf_root), discover_lfs(["shared_2"], root=lf_root)
    assert lf_version(one[0]) != lf_version(two[0])  # the regex its helper uses changed
    assert lf_version(one[1]) == lf_version(two[1])  # lf_other uses none of it


# --------------------------------------------------------------------------- what an LF's version covers


def _versions_differ(make_a, make_b) -> bool:
    return lf_version(make_a()) != lf_version(make_b())


def _factory(threshold):
    @labeling_function(name="long")
    def long_text(x):
        return 1 if len(x.text) > threshold else -1

    return long_text


def test_version_covers_closures_and_defaults():
    assert lf_version(_factory(5)) != lf_version(_factory(9))
    assert lf_version(_factory(5)) == lf_version(_factory(5))

    def with_default(limit):
        def f(x, limit=limit):
            return 1 if len(x.text) > limit else -1
        return labeling_function(name="d")(f)

    assert lf_version(with_default(3)) != lf_version(with_default(4))


class _Threshold:
    cut = 3

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return 1 if len(x.text) * self.scale > self.cut else -1


def test_version_covers_callable_objects_and_class_attributes(monkeypatch):
    one = LabelingFunction("obj", f=_Threshold(1))
    two = LabelingFunction("obj", f=_Threshold(2))
    assert lf_version(one) != lf_version(two)
    before = lf_version(one)
    monkeypatch.setattr(_Threshold, "cut", 4)
    assert lf_version(one) != before


def test_version_covers_large_numpy_resources_by_content():
    weights = np.zeros(100_000)
    lf = labeling_function(name="w", resources=dict(w=weights))(lambda x, w: 1 if w[50_000] > 0 else -1)
    before = lf_version(lf)
    weights[50_000] = 1.0  # repr would show "..." here
    assert lf_version(lf) != before


HELPER_CHAIN = """
    import {config}

    def level4(t):
        return len(t) > {config}.LIMIT

    def level3(t):
        return level4(t)

    def level2(t):
        return level3(t)

    def level1(t):
        return level2(t)
"""

CHAIN_LFS = """
    from snorkel.labeling import labeling_function
    from {helpers} import level1

    @labeling_function()
    def lf_chain(x):
        return 1 if level1(x.text) else -1
"""


def _chain(root, limit, compare=">"):
    """The LF of a fresh import (a new session) of chain_lfs -> helpers (4 calls deep) -> cfg.LIMIT."""
    _write_module(root, "cfg", f"LIMIT = {limit}\n")
    _write_module(root, "helpers", HELPER_CHAIN.format(config="cfg").replace(">", compare))
    _write_module(root, "chain_lfs", CHAIN_LFS.format(helpers="helpers"))
    for name in ("cfg", "helpers", "chain_lfs"):
        sys.modules.pop(name, None)
    return discover_lfs(["chain_lfs"], root=root)[0]


def test_version_covers_imported_helpers_deep_chains_and_config_modules(lf_root):
    base = lf_version(_chain(lf_root, 5))
    assert lf_version(_chain(lf_root, 5)) == base  # same code, same config: same version
    assert lf_version(_chain(lf_root, 6)) != base  # a config module attribute read four calls down
    # a helper in another module, edited between sessions
    assert lf_version(_chain(lf_root, 5, compare=">=")) != base


def test_a_helper_file_edited_in_a_session_keeps_the_version_of_the_code_that_runs(lf_root):
    lf = _chain(lf_root, 5)
    before = lf_version(lf)
    _write_module(lf_root, "helpers", HELPER_CHAIN.format(config="cfg").replace(">", ">="))  # not re-imported
    assert lf_version(lf) == before  # the votes come from the loaded code, so do the cached ones


def test_version_covers_preprocessor_code_and_globals():
    from snorkel.preprocess import preprocessor

    def make(power):
        @preprocessor()
        def square(x):
            x.sq = x.num ** power
            return x

        return labeling_function(name="p", pre=[square])(lambda x: 1 if x.sq > 4 else -1)

    assert lf_version(make(2)) != lf_version(make(3))


def test_an_lf_reaching_an_opaque_object_is_uncacheable_and_says_why(tmp_path):
    import threading

    from labeling import apply_lfs, lf_summary, lf_uncacheable

    lock = threading.Lock()
    lf = labeling_function(name="locked", resources=dict(lock=lock))(lambda x, lock: 1)
    assert "_thread.lock" in lf_uncacheable(lf) and "locked" in lf_uncacheable(lf)
    frame = pd.DataFrame({"text": ["a", "b"]})
    apply_lfs([lf], frame, cardinality=2, cache=tmp_path)
    again = apply_lfs([lf], frame, cardinality=2, cache=tmp_path)
    assert again.rows_computed == {"locked": 2}  # computed every time, never read from the cache
    table = lf_summary(again.L, ["locked"], uncacheable=again.uncacheable)
    assert "_thread.lock" in table.loc["locked", "uncacheable"]
