from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.lf.declarative import keyword_lf, lf_spec
from labeling.lf.patterns import (
    _CATEGORIES, ALL, NONE, SOME, ArrowTexts, PatternMatcher, ScanTexts, hyperscan_available, map_to_ascii, translate,
)

pytestmark = [
    pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed"),
    pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning"),  # "[[:alpha:]]" on purpose
]

# Characters where Python's re and a naive translation part ways: case folds that
# leave ASCII (Kelvin sign, long s, dotless i), non-ASCII letters, digits and
# spaces, \x1c (str.isspace), the placeholder bytes themselves, and plain ASCII.
ALPHABET = list("abcksiKSI _-!?./019 \t\n") + ["\u212a", "\u017f", "\u0131", "\u0130", "\u00e9", "\u0663", "\u00a0",
                                                 "\x1c", "\u2019", "\x01", "\x02", "\U0001f600"]

TRICKY = [
    r"\bkiss\b", r"(?<!\w)(?:ok|k)(?!\w)", r"(?<=\s)s+", r"[^a-z]", r"[^\W\d]", r"\s{2,}", r"\S\s\S", r"\d+",
    r"^\s*k", r"k$", r"s\Z", r"\Bi", r"a{,2}b", r".k", r"[[:alpha:]]", r"(?:a|bc|)k", r"x*", r"\b", r"é",
    r"[a-z]+-[0-9]", r"(ab)\1", r"(?i:k)s", r"(?s).k", r"(?m)^k", r"_", r"[\w-]+_", r"(?<![\x01a])k", r"[^\x01]",
    r"(?<!\S)\d", r"[^\d\s]k",
]


# those with a form for buffer scans: no pattern that matches nothing, no anchor inside
BUFFERED = [j for j, p in enumerate(TRICKY) if p not in {r"x*", r"\b", r"(ab)\1", r"(?m)^k", r"é", r"(?i:k)s"}]


@pytest.fixture(scope="module", params=[0, re.IGNORECASE, re.DOTALL], ids=["case", "ignorecase", "dotall"])
def tricky(request):
    patterns = [re.compile(p, request.param) for p in TRICKY]
    buffered = PatternMatcher([patterns[j] for j in BUFFERED])
    assert buffered._block_dbs() is not None
    return patterns, PatternMatcher(patterns), buffered


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=1, max_size=30))
def test_matches_python_re_on_tricky_patterns_and_texts(tricky, texts):
    patterns, matcher, buffered = tricky
    expected = np.array([[p.search(t) is not None for p in patterns] for t in texts])
    np.testing.assert_array_equal(matcher.search(texts), expected)
    # the buffer scan: every pattern that has a buffer form, all texts in one call
    np.testing.assert_array_equal(buffered.search(ScanTexts(texts)), expected[:, BUFFERED])
    # laid out by Arrow from a column in two chunks, strings made only where read
    half = len(texts) // 2
    arrow = pa.chunked_array([pa.array(texts[:half], pa.string()), pa.array(texts[half:], pa.string())])
    from_arrow = ScanTexts(ArrowTexts(arrow), arrow=arrow)
    np.testing.assert_array_equal(buffered.search(from_arrow), expected[:, BUFFERED])
    assert from_arrow.word_counts().tolist() == [len(t.split()) for t in texts]
    # a new process: the non-ASCII part taken back (as kept in the cache), the ASCII buffers laid out again
    restored = ScanTexts.restore(ArrowTexts(arrow), arrow, from_arrow.non_ascii_parts())
    np.testing.assert_array_equal(buffered.search(restored), expected[:, BUFFERED])
    assert restored.word_counts().tolist() == [len(t.split()) for t in texts]
    assert restored.char_counts().tolist() == [len(t) for t in texts]
    assert from_arrow.char_counts().tolist() == ScanTexts(texts).char_counts().tolist() == [len(t) for t in texts]


def test_patterns_it_cannot_translate_run_in_python():
    matcher = PatternMatcher([re.compile(p) for p in (r"(ab)\1", r"(?m)^k", r"é", r"(?i:k)s", r"abc")])
    assert matcher.fallback == [0, 1, 2, 3] and matcher.scanned == [4]


def test_python_syntax_is_translated_not_passed_through():
    # In PCRE "{,2}" is a literal and "[[:alpha:]]" a POSIX class; in Python neither.
    assert translate(re.compile(r"a{,2}")) == rb"(?:[\x61]){0,2}"
    assert PatternMatcher([re.compile(r"[[:alpha:]]")]).search(["x", ":]", "a]"]).ravel().tolist() == [False, True, True]


def _non_ascii_chars():
    import sys

    folds = {"\u0130", "\u0131", "\u017f", "\u212a"}
    chars = (chr(c) for c in range(128, sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    return [c for c in chars if c not in folds]


def test_category_states_match_python_re_on_every_non_ascii_character():
    """How each category treats the characters a placeholder stands for (the
    mapped translation relies on this table)."""
    chars = _non_ascii_chars()
    wordish = [c for c in chars if c.isalnum()]
    spaces = [c for c in chars if not c.isalnum() and c.isspace()]
    other = [c for c in chars if not c.isalnum() and not c.isspace()]
    probes = {"\\d": r"\d", "\\D": r"\D", "\\s": r"\s", "\\S": r"\S", "\\w": r"\w", "\\W": r"\W"}
    from re import _constants as C
    from re import _parser as sre_parse

    for source in probes.values():
        (op, av), = sre_parse.parse(source)
        category = av[0][1] if op is C.IN else av
        pattern = re.compile(source)
        states = []
        for group in (wordish, spaces, other):
            share = sum(pattern.fullmatch(c) is not None for c in group) / len(group)
            states.append(NONE if share == 0 else ALL if share == 1 else SOME)
        assert tuple(states) == _CATEGORIES[category], source


def test_keyword_patterns_need_no_confirmation_on_non_ascii_texts():
    spec = lf_spec(keyword_lf("scorn", ["worst", "awful"], 0))
    matcher = PatternMatcher([spec.pattern, re.compile(r"\d+"), re.compile(r"(?<!\s)_")])
    assert matcher.mapped_exact == {0}
    texts = ["the wörst", "café: awful!", "awfulé", "éawful", "\u0131 awful", "awful\u212a", "x"]
    assert matcher.search(texts)[:, 0].tolist() == [False, True, False, False, True, False, False]


def test_mapping_keeps_one_byte_per_character():
    text = "naïve café — 😀 \u0131 ok\u00a0\u2009x"
    mapped = map_to_ascii(text)
    assert len(mapped) == len(text) and mapped == b"na_ve caf_ \x01 \x01 \x02 ok\x80\x80x"


def test_spaces_need_no_confirmation_on_non_ascii_texts():
    matcher = PatternMatcher([re.compile(r"highly\s+recommend"), re.compile(r"\S\s\S"), re.compile(r"\d")])
    assert matcher.mapped_exact == {0, 1}
    texts = ["highly\u00a0recommend", "highly\u2019recommend é", "a\u3000b", "\u0663é", "x\u2009\u0663"]
    assert matcher.search(texts).tolist() == [[True, True, False], [False, True, False], [False, True, False],
                                              [False, False, True], [False, True, True]]


def test_a_buffer_scan_with_too_many_matches_hands_over_to_per_text_scans(monkeypatch):
    import labeling.lf.patterns as patterns_module

    monkeypatch.setattr(patterns_module, "_MAX_MATCHES_PER_TEXT", 0)
    texts = ["e" * 50] * 30 + ["no match", "caf\u00e9 e"]
    matcher = PatternMatcher([re.compile("e"), re.compile("z")])
    assert matcher.has_buffer_form()
    hits = matcher.search(ScanTexts(texts[:5]))  # few matches: the buffer scan answers
    assert hits[:, 0].all() and matcher.has_buffer_form()
    hits = matcher.search(ScanTexts(texts * 40))  # 60,000 matches: over the limit
    assert hits[:, 0].tolist() == ([True] * 30 + [False, True]) * 40 and not hits[:, 1].any()
    assert not matcher.has_buffer_form(), "this matcher scans text by text from now on"


def test_word_counts_in_blocks_of_the_buffer_equal_str_split(monkeypatch):
    import labeling.lf.patterns as patterns_module

    texts = ["a b", "", " x  y z ", "é\u00a0b c", "long text here, with words " * 3, "\x1c\x1fq", "q", "\u0131 i"]
    for block in (1, 3, 7, 64, 1 << 21):  # a block may end mid-text: it is widened to whole texts
        monkeypatch.setattr(patterns_module, "_COUNT_BLOCK", block)
        assert ScanTexts(texts).word_counts().tolist() == [len(t.split()) for t in texts], block
