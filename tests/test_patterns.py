from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.patterns import PatternMatcher, hyperscan_available, translate

pytestmark = [
    pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed"),
    pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning"),  # "[[:alpha:]]" on purpose
]

# Characters where Python's re and a naive translation part ways: case folds that
# leave ASCII (Kelvin sign, long s, dotless i), non-ASCII letters, digits and
# spaces, \x1c (str.isspace), and plain ASCII.
ALPHABET = list("abcksiKSI _-!?./019 \t\n") + ["\u212a", "\u017f", "\u0131", "\u00e9", "\u0663", "\u00a0", "\x1c", "\u2019"]

TRICKY = [
    r"\bkiss\b", r"(?<!\w)(?:ok|k)(?!\w)", r"(?<=\s)s+", r"[^a-z]", r"[^\W\d]", r"\s{2,}", r"\S\s\S", r"\d+",
    r"^\s*k", r"k$", r"s\Z", r"\Bi", r"a{,2}b", r".k", r"[[:alpha:]]", r"(?:a|bc|)k", r"x*", r"\b", r"é",
    r"[a-z]+-[0-9]", r"(ab)\1", r"(?i:k)s", r"(?s).k", r"(?m)^k",
]


@pytest.fixture(scope="module", params=[0, re.IGNORECASE], ids=["case", "ignorecase"])
def tricky(request):
    patterns = [re.compile(p, request.param) for p in TRICKY]
    return patterns, PatternMatcher(patterns)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=1, max_size=30))
def test_matches_python_re_on_tricky_patterns_and_texts(tricky, texts):
    patterns, matcher = tricky
    expected = np.array([[p.search(t) is not None for p in patterns] for t in texts])
    np.testing.assert_array_equal(matcher.search(texts), expected)


def test_patterns_it_cannot_translate_run_in_python():
    matcher = PatternMatcher([re.compile(p) for p in (r"(ab)\1", r"(?m)^k", r"é", r"(?i:k)s", r"abc")])
    assert matcher.fallback == [0, 1, 2, 3] and matcher.scanned == [4]


def test_python_syntax_is_translated_not_passed_through():
    # In PCRE "{,2}" is a literal and "[[:alpha:]]" a POSIX class; in Python neither.
    assert translate(re.compile(r"a{,2}")) == rb"(?:[\x61]){0,2}"
    assert PatternMatcher([re.compile(r"[[:alpha:]]")]).search(["x", ":]", "a]"]).ravel().tolist() == [False, True, True]
