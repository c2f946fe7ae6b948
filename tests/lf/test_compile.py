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


# Greek (final sigma), Turkish dotted/dotless i, German sharp s, combining marks
INTERNATIONAL = ("οδ", "ο", "ı", "i", "é", "e\u0301", "ß", "ss", "ﬀ")


@labeling_function()
def international_lower(x):
    return POS if any(w in x.text.lower() for w in INTERNATIONAL) else ABSTAIN


@labeling_function()
def final_sigma(x):
    if "ς" in x.text.lower():
        return POS
    return NEG if "σ" in x.text.lower() else ABSTAIN


@labeling_function()
def upper_ss(x):
    return POS if "SS" in x.text.upper() else ABSTAIN


@labeling_function()
def casefold_ss(x):
    return POS if "ss" in x.text.casefold() else ABSTAIN


SHAPES = [any_lower, alias_elif, lengths, matches, upper_never, international_lower]
# context-dependent or one-to-many case mappings: called, never compiled
NOT_COMPILED = [final_sigma, upper_ss, casefold_ss]
ALPHABET = st.sampled_from(list("kKiIsSabdn 12\t_ßẞ") + ["\u212a", "\u0130", "\u0131", "\u017f", "é", " ok ", "fine",
                                                           "kind", "bad"]
                           + ["Σ", "σ", "ς", "ΟΔΟΣ", "Ο", "Δ", "ΑΣ.", "Σ\u0301", "e\u0301", "\u0307", "É", "ﬀ", "FF"])


def test_every_shape_compiles():
    assert [compile_lf(lf).reason for lf in SHAPES] == ["compiled"] * len(SHAPES)


def test_case_mappings_that_depend_on_context_are_not_compiled():
    reasons = [compile_lf(lf).reason for lf in NOT_COMPILED]
    assert "Final_Sigma" in reasons[0] and "'ς' in .lower()" in reasons[0]
    assert [r.split(": ", 1)[1] for r in reasons[1:]] == ["`in` on something other than a text field: x.text.upper()",
                                                       "`in` on something other than a text field: x.text.casefold()"]
    frame = pd.DataFrame({"text": ["ΟΔΟΣ", "ΟΔΟΣ ΑΣ", "ΟΔΟΣΑ", "Σ", "straße", "STRASSE"]})
    L = apply_lfs(NOT_COMPILED, frame, cardinality=2, n_jobs=1).L
    assert L.tolist() == [[1, -1, -1], [1, -1, -1], [0, -1, -1], [0, -1, -1], [-1, 1, 1], [-1, 1, 1]]
    np.testing.assert_array_equal(L, PandasLFApplier(NOT_COMPILED).apply(frame, progress_bar=False))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.lists(ALPHABET, max_size=12).map("".join), min_size=1, max_size=25))
def test_compiled_votes_equal_calling_the_lf(texts):
    frame = pd.DataFrame({"text": texts})
    lfs = SHAPES + NOT_COMPILED
    ours = apply_lfs(lfs, frame, cardinality=2, n_jobs=1).L
    called = np.array([[lf(row) for lf in lfs] for _, row in frame.iterrows()])
    np.testing.assert_array_equal(ours, called)
    for j, lf in enumerate(SHAPES):  # the spec's own Python evaluation agrees too
        assert [fast_spec(lf).vote(t) for t in texts] == called[:, j].tolist()


def test_the_final_sigma_case_of_the_issue():
    # as compiled on a660ff6 (a table lowering Σ to σ only) it voted -1 on ΟΔΟΣ
    frame = pd.DataFrame({"text": ["ΟΔΟΣ"]})
    assert apply_lfs([final_sigma], frame, cardinality=2, n_jobs=1).L.tolist() == [[POS]] == [[final_sigma(frame.iloc[0])]]


# Row frames whose columns are named like pd.Series attributes: on the row Series
# Snorkel passes, x.name is the index label, x.index the column labels... and
# only the names a Series lacks (x.clear, x.to_series) read their columns.
@labeling_function()
def attr_name(x):
    return POS if "a" in x.name else ABSTAIN


@labeling_function()
def attr_index(x):
    return POS if "a" in x.index else NEG


@labeling_function()
def attr_values(x):
    return POS if "a" in x.values else ABSTAIN


@labeling_function()
def attr_shape(x):
    return POS if len(x.shape) > 1 else NEG


@labeling_function()
def attr_axes(x):
    return NEG if len(x.axes) >= 1 else ABSTAIN


@labeling_function()
def attr_clear(x):
    return POS if "a" in x.clear else ABSTAIN


@labeling_function()
def attr_to_series(x):
    return NEG if "b" in x.to_series else ABSTAIN


@labeling_function()
def item_name(x):
    return NEG if "a" in x["name"] else ABSTAIN


SERIES_ATTRIBUTES = [attr_name, attr_index, attr_values, attr_shape, attr_axes]
COLUMNS_NAMED_LIKE_ATTRIBUTES = [attr_clear, attr_to_series, item_name]
ATTRIBUTE_COLUMNS = ("name", "index", "values", "shape", "axes", "size", "dtype", "clear", "to_series", "text")


def test_series_attributes_are_not_compiled_as_columns():
    for lf in SERIES_ATTRIBUTES:
        assert "is the row's own attribute" in compile_lf(lf).reason, lf.name
    assert [compile_lf(lf).reason for lf in COLUMNS_NAMED_LIKE_ATTRIBUTES] == ["compiled"] * 3


def test_x_name_is_the_index_label_as_in_snorkel():
    frame = pd.DataFrame({"name": ["bob", "alice"], "text": ["hi", "ho"]}, index=["alice_1", "bob_2"])
    lfs = [attr_name, item_name]
    ours = apply_lfs(lfs, frame, cardinality=2, n_jobs=1).L
    assert ours.tolist() == [[POS, ABSTAIN], [ABSTAIN, NEG]]
    np.testing.assert_array_equal(ours, PandasLFApplier(lfs).apply(frame, progress_bar=False))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.text("ab", min_size=1, max_size=3), st.lists(st.text("ab ", max_size=4),
                                                                            min_size=len(ATTRIBUTE_COLUMNS),
                                                                            max_size=len(ATTRIBUTE_COLUMNS))),
                min_size=1, max_size=8, unique_by=lambda r: r[0]))
def test_rows_with_columns_named_like_series_attributes_vote_as_in_snorkel(rows):
    frame = pd.DataFrame([cells for _, cells in rows], columns=list(ATTRIBUTE_COLUMNS),
                         index=[label for label, _ in rows])
    lfs = SERIES_ATTRIBUTES + COLUMNS_NAMED_LIKE_ATTRIBUTES
    np.testing.assert_array_equal(apply_lfs(lfs, frame, cardinality=2, n_jobs=1).L,
                                  PandasLFApplier(lfs).apply(frame, progress_bar=False))


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
