"""LF versions follow what an LF reads: bound builtin methods by their object, files by content."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labeling import apply_lfs, discover_lfs, lf_set_version, lf_summary, lf_uncacheable, lf_version
from labeling.lf.core import labeling_function

# The three idioms of issue 23 (row 2) and a path built at run time, which cannot be versioned.
ISSUE_MODULE = """
    import os
    import re

    from snorkel.labeling import labeling_function

    PROMO = re.compile(r"{pattern}").search
    WORDS = {words!r}.get
    WORDS_FILE = os.path.join(os.path.dirname(__file__), "words.txt")
    FOLDER = os.path.dirname(__file__)


    @labeling_function()
    def promo(x):
        return 1 if PROMO(x.text) else -1


    @labeling_function()
    def listed(x):
        return 1 if any(WORDS(w) for w in x.text.split()) else -1


    @labeling_function()
    def from_file(x):
        with open(WORDS_FILE) as fh:
            return 1 if any(w in x.text.split() for w in fh.read().split()) else -1


    @labeling_function()
    def built_path(x):
        with open(os.path.join(FOLDER, "words" + ".txt")) as fh:
            return 0 if any(w in x.text.split() for w in fh.read().split()) else -1
"""

TEXTS = ["check my channel", "what a song", "nice", "song and channel"]


def _load(root: Path, pattern: str, words: dict, listed: str):
    (root / "words.txt").write_text(listed, encoding="utf-8")
    (root / "issue_lfs.py").write_text(textwrap.dedent(ISSUE_MODULE.format(pattern=pattern, words=words)))
    sys.modules.pop("issue_lfs", None)
    return discover_lfs(["issue_lfs"], root=root)


def test_editing_a_bound_pattern_a_bound_dict_or_a_named_file_changes_versions_and_votes(tmp_path):
    frame = pd.DataFrame({"text": TEXTS})
    cache = tmp_path / "cache"
    before = _load(tmp_path, "channel", {"channel": 1}, "channel\n")
    first = apply_lfs(before, frame, cardinality=2, cache=cache)
    assert first.L[:, :3].tolist() == [[1, 1, 1], [-1, -1, -1], [-1, -1, -1], [1, 1, 1]]
    assert first.uncacheable.keys() == {"built_path"} and "open" in first.uncacheable["built_path"]
    old = [lf_version(lf) for lf in before]

    after = _load(tmp_path, "song", {"song": 1}, "song\n")
    # built_path's version cannot follow its file: it is uncacheable instead
    assert [lf_version(lf) != v for lf, v in zip(after, old)] == [True, True, True, False]
    assert lf_set_version(after) != lf_set_version(before)
    cached = apply_lfs(after, frame, cardinality=2, cache=cache)
    fresh = apply_lfs(after, frame, cardinality=2, cache=None)
    np.testing.assert_array_equal(cached.L, fresh.L)
    assert cached.L.tolist() == [[-1, -1, -1, -1], [1, 1, 1, 0], [-1, -1, -1, -1], [1, 1, 1, 0]]
    # the one that cannot be versioned says so wherever LFs are listed
    assert "built at run time" in lf_uncacheable(after[3])
    table = lf_summary(cached.L, [lf.name for lf in after], lfs=after)
    assert table["uncacheable"].tolist()[:3] == ["", "", ""] and "open" in table.loc["built_path", "uncacheable"]
    sys.modules.pop("issue_lfs", None)


def test_the_shipped_lfs_reading_resources_stay_cacheable():
    from ..conftest import REPO

    lfs = discover_lfs(["labeling_functions.youtube_spam"], root=REPO)
    assert [lf.name for lf in lfs if lf_uncacheable(lf)] == []


# -- for any LF built from these idioms, editing what it reads changes its version -----------------

_KEYS = st.text(alphabet="ab€ ", max_size=3)
_FLAGS = st.sampled_from([0, re.IGNORECASE, re.MULTILINE | re.DOTALL])
IDIOMS = {
    "pattern.search": (st.tuples(st.text(alphabet="ab.*", min_size=1, max_size=4), _FLAGS),
                       lambda v: re.compile(re.escape(v[0]), v[1]).search),
    "dict.get": (st.dictionaries(_KEYS, st.integers(-2, 2), max_size=4), lambda v: v.get),
    "dict.__contains__": (st.dictionaries(_KEYS, st.none(), max_size=4), lambda v: v.__contains__),
    "set.__contains__": (st.sets(_KEYS, max_size=4), lambda v: v.__contains__),
    "frozenset.__contains__": (st.frozensets(_KEYS, max_size=4), lambda v: v.__contains__),
    "list.count": (st.lists(_KEYS, max_size=4), lambda v: v.count),
    "tuple.__contains__": (st.lists(_KEYS, max_size=4).map(tuple), lambda v: v.__contains__),
    "str.__contains__": (_KEYS, lambda v: v.__contains__),
}


def _lf_reading(value, name: str):
    """An LF whose module-level READ is ``value``: the shape an LF module gives it."""
    namespace = {"__name__": "idiom_lfs", "READ": value}
    exec("def f(x):\n    return 1 if READ(x) else -1\n", namespace)  # noqa: S102 - fixed source
    return labeling_function(name=name)(namespace["f"])


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(IDIOMS)), st.data())
def test_editing_what_a_bound_method_reads_changes_the_version(idiom, data):
    values, bind = IDIOMS[idiom]
    a, b = data.draw(values), data.draw(values)
    assume(a != b)
    assert lf_version(_lf_reading(bind(a), "lf")) != lf_version(_lf_reading(bind(b), "lf"))
    assert lf_uncacheable(_lf_reading(bind(a), "lf")) is None


@pytest.fixture(scope="module")
def words_file(tmp_path_factory):
    return tmp_path_factory.mktemp("words") / "words.txt"


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=8), st.binary(max_size=8), st.sampled_from(["str", "Path", "constant"]))
def test_editing_a_file_an_lf_names_changes_the_version(words_file, a, b, how):
    assume(a != b)
    if how == "constant":  # the path is a literal of the LF's own code
        source = f"def f(x):\n    return 1 if open({str(words_file)!r}, 'rb').read() in x else -1\n"
        namespace = {"__name__": "idiom_lfs"}
    else:
        source = "def f(x):\n    return 1 if open(WORDS_FILE, 'rb').read() in x else -1\n"
        namespace = {"__name__": "idiom_lfs", "WORDS_FILE": str(words_file) if how == "str" else words_file}
    exec(source, namespace)  # noqa: S102 - fixed source
    lf = labeling_function(name="lf")(namespace["f"])
    words_file.write_bytes(a)
    version = lf_version(lf)
    words_file.write_bytes(b)
    assert lf_version(lf) != version
    assert lf_uncacheable(lf) is None
