from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snorkel.labeling import PandasLFApplier
from snorkel.preprocess import preprocessor

from labeling import LFApplicationError, apply_lfs, discover_lfs, labeling_function
from labeling.lf.analysis import lf_summary
from labeling.lf.compile import RuleSpec, compile_lf, fast_spec

from ..conftest import REPO

ABSTAIN, NEG, POS = -1, 0, 1
WORDS = ("kind", "bad", "straße", "i")
TRICKY = re.compile(r"\b(?:ok|fine)\b", re.IGNORECASE)
LIMIT = 5


@pytest.fixture(scope="module")
def plain_lfs():
    return discover_lfs(["labeling_functions.imdb_sentiment_plain"], root=REPO)


@pytest.fixture(scope="module")
def imdb_rows(data_dir):
    from labeling.data.datasets import load_imdb

    frame = load_imdb(data_dir)
    # every 100th review and the first 150 with non-ASCII characters (both kinds of scan)
    non_ascii = frame.index[~frame["text"].map(str.isascii)][:150]
    picked = sorted(set(frame.index[::100]) | set(non_ascii))
    return frame.loc[picked].reset_index(drop=True)


def test_imdb_plain_lfs_all_compile(plain_lfs):
    outcomes = {lf.name: compile_lf(lf) for lf in plain_lfs}
    assert {name: o.reason for name, o in outcomes.items()} == dict.fromkeys(outcomes, "compiled")
    assert all(isinstance(o.spec, RuleSpec) and o.spec.field == "text" for o in outcomes.values())


def test_imdb_plain_lfs_equal_snorkel(plain_lfs, imdb_rows):
    ours = apply_lfs(plain_lfs, imdb_rows, cardinality=2, n_jobs=1)
    theirs = PandasLFApplier(list(plain_lfs)).apply(imdb_rows, progress_bar=False)
    np.testing.assert_array_equal(ours.L, theirs)
    assert (ours.L != ABSTAIN).any(axis=0).all()  # every LF votes somewhere: the comparison means something


# LFs of every recognised shape, over an alphabet with the characters where lower()
# and IGNORECASE disagree (Kelvin sign, dotted/dotless I, long s, sharp s).
@labeling_function()
def any_lower(x):
    return NEG if any(w in x.text.lower() for w in WORDS) else ABSTAIN


@labeling_function()
def alias_elif(x, limit=LIMIT):
    text = x.text
    low = text.lower()
    if "kind" in low and not re.search(r"\d", text):
        return POS
    elif len(text.split()) > limit or "bad" not in text:
        hit = TRICKY.search(x.text)
        return POS if hit else NEG
    else:
        return ABSTAIN


@labeling_function()
def lengths(x):
    if 2 < len(x["text"]) <= 7 or len(x.text.split()) == 3:
        return NEG
    if 4.5 >= len(x.text):
        return POS
    return ABSTAIN


@labeling_function()
def matches(x):
    if re.match(r"k|K", x.text) is not None or re.fullmatch("(?:a|b)+", x.text):
        return POS
    return NEG if all(re.findall(p, x.text, re.I) for p in ("i", "s")) else ABSTAIN


@labeling_function()
def upper_never(x):
    return POS if "Kind" in x.text.lower() or "ß" in x.text.lower() else ABSTAIN


SHAPES = [any_lower, alias_elif, lengths, matches, upper_never]
ALPHABET = st.sampled_from(list("kKiIsSabdn 12\t_ßẞ") + ["\u212a", "\u0130", "\u0131", "\u017f", "é", " ok ", "fine",
                                                           "kind", "bad"])


def test_every_shape_compiles():
    assert [compile_lf(lf).reason for lf in SHAPES] == ["compiled"] * len(SHAPES)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.lists(ALPHABET, max_size=12).map("".join), min_size=1, max_size=25))
def test_compiled_votes_equal_calling_the_lf(texts):
    frame = pd.DataFrame({"text": texts})
    ours = apply_lfs(SHAPES, frame, cardinality=2, n_jobs=1).L
    called = np.array([[lf(row) for lf in SHAPES] for _, row in frame.iterrows()])
    np.testing.assert_array_equal(ours, called)
    for j, lf in enumerate(SHAPES):  # the spec's own Python evaluation agrees too
        assert [fast_spec(lf).vote(t) for t in texts] == called[:, j].tolist()


def _nested(x):
    return x


@labeling_function()
def calls_helper(x):
    return POS if _nested(x.text) else ABSTAIN


@labeling_function()
def loops(x):
    for w in WORDS:
        if w in x.text:
            return POS
    return ABSTAIN


@labeling_function()
def two_fields(x):
    return POS if "a" in x.text and "b" in x.title else ABSTAIN


@labeling_function()
def may_return_none(x):
    if "a" in x.text:
        return POS


@labeling_function()
def regex_on_lower(x):
    return POS if re.search("a", x.text.lower()) else ABSTAIN


@preprocessor()
def upper(x):
    x.text = x.text.upper()
    return x


@labeling_function(pre=[upper])
def with_pre(x):
    return POS if "A" in x.text else ABSTAIN


OPAQUE = [calls_helper, loops, two_fields, may_return_none, regex_on_lower, with_pre]


def test_unrecognised_lfs_say_why_and_run_as_python():
    reasons = {lf.name: compile_lf(lf).reason for lf in OPAQUE}
    line = {lf.name: inspect.getsourcelines(lf._f)[1] + 2 for lf in OPAQUE}  # the first line of the body
    assert reasons["calls_helper"] == f"line {line['calls_helper']}: condition not recognised: _nested(x.text)"
    assert reasons["loops"] == f"line {line['loops']}: statement not recognised: For"
    assert reasons["two_fields"] == "reads several fields ['text', 'title']"
    assert reasons["may_return_none"] == "a path falls off the end (returns None)"
    assert reasons["regex_on_lower"] == f"line {line['regex_on_lower']}: regex on .lower() text (use re.IGNORECASE)"
    assert reasons["with_pre"] == "has preprocessors"
    lfs = [calls_helper, loops, two_fields, regex_on_lower]
    frame = pd.DataFrame({"text": ["a bad", "kind", "A"], "title": ["b", "", "b"]})
    np.testing.assert_array_equal(apply_lfs(lfs, frame, cardinality=2, n_jobs=1).L,
                                  PandasLFApplier(lfs).apply(frame, progress_bar=False))


def test_lf_summary_says_what_was_compiled(plain_lfs):
    from labeling.lf.declarative import keyword_lf

    lfs = [plain_lfs[0], loops, keyword_lf("kw", ["a"], POS)]
    L = np.array([[1, -1, 1], [-1, 1, -1]])
    table = lf_summary(L, [lf.name for lf in lfs], lfs=lfs)
    assert table["compiled"].tolist() == [True, False, True]
    assert table["how"].tolist() == ["compiled", compile_lf(loops).reason, "declarative"]
    assert table["how"].iloc[1].endswith("statement not recognised: For")


@labeling_function()
def label_too_big(x):
    return 2 if "zz" in x.text else ABSTAIN


def test_out_of_range_label_fails_like_a_called_lf():
    frame = pd.DataFrame({"id": ["r0", "r1"], "text": ["a", "zz"]})
    assert compile_lf(label_too_big).compiled
    with pytest.raises(LFApplicationError, match=r"label_too_big.*r1.*returned 2"):
        apply_lfs([label_too_big], frame, cardinality=2, n_jobs=1)
    tolerant = apply_lfs([label_too_big], frame, cardinality=2, n_jobs=1, fault_tolerant=True)
    assert tolerant.L.tolist() == [[-1], [-1]] and tolerant.errors["label_too_big"].row_ids == ("r1",)
