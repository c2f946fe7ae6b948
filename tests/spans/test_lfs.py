import re

import numpy as np
import pytest

from labeling.errors import ConfigError, LabelError, LFApplicationError
from labeling.spans.lfs import (
    Gazetteer,
    char_spans_to_tokens,
    regex_span_lf,
    span_labeling_function,
    token_offsets,
)

TEXT = "New York City and new york; the AIDS ward treats aids."


def _words(spans, text=TEXT):
    return [(text[s:e], label) for s, e, label in spans]


def test_gazetteer_takes_the_longest_match_leftmost_first():
    gaz = Gazetteer("places", {"LOC": ["New York", "New York City", "York"]}, case="sensitive")
    assert _words(gaz(TEXT)) == [("New York City", "LOC")]
    every = Gazetteer("places", {"LOC": ["New York", "New York City", "York"]}, case="sensitive", longest=False)
    assert _words(every(TEXT)) == [("New York", "LOC"), ("New York City", "LOC"), ("York", "LOC")]


@pytest.mark.parametrize("case, expected", [
    ("sensitive", [("New York", "LOC"), ("AIDS", "DIS")]),
    ("insensitive", [("New York", "LOC"), ("new york", "LOC"), ("AIDS", "DIS"), ("aids", "DIS")]),
    ("smart", [("New York", "LOC"), ("new york", "LOC"), ("AIDS", "DIS")]),  # acronyms keep their case
])
def test_gazetteer_case_options(case, expected):
    gaz = Gazetteer("g", {"LOC": ["New York"], "DIS": ["AIDS"]}, case=case)
    assert _words(gaz({"text": TEXT})) == expected


def test_gazetteer_matches_on_token_boundaries_only():
    assert Gazetteer("g", {"X": ["York"]})("Yorkshire") == []


def test_regex_lf_and_decorated_lf_return_checked_character_spans():
    money = regex_span_lf("money", r"\$\d+(?:\.\d\d)?", "MONEY")
    assert _words(money("it cost $12.50, not $3"), "it cost $12.50, not $3") == [("$12.50", "MONEY"), ("$3", "MONEY")]
    with pytest.raises(ConfigError, match="bad regex"):
        regex_span_lf("bad", "(", "X")

    @span_labeling_function(labels=["YEAR"])
    def years(row):
        return [(m.start(), m.end(), "YEAR") for m in re.finditer(r"\b(19|20)\d\d\b", row)]

    assert years.name == "years" and years("in 1999 and 2024") == [(3, 7, "YEAR"), (12, 16, "YEAR")]


@pytest.mark.parametrize("returned, message", [
    ([(5, 2, "X")], "0 <= start < end"),
    ([(0, 99, "X")], "0 <= start < end"),
    ([(0, 1, "Y")], "label 'Y'"),
    ([(0, 1)], "not \\(start, end, label\\)"),
])
def test_malformed_lf_output_names_the_lf(returned, message):
    lf = span_labeling_function("bad", labels=["X"])(lambda row: returned)
    with pytest.raises(LFApplicationError, match=f"'bad'.*{message}|{message}"):
        lf("short text")


def test_spacy_like_spans_are_accepted():
    class FakeSpan:
        start_char, end_char, label_ = 0, 3, "X"

    assert span_labeling_function("s")(lambda row: [FakeSpan()])("abc d") == [(0, 3, "X")]


def test_character_spans_map_to_tokens_in_each_alignment_mode():
    text = "Aspirin-induced asthma, severe."
    offsets = token_offsets(text)
    assert [text[s:e] for s, e in offsets] == ["Aspirin", "-", "induced", "asthma", ",", "severe", "."]
    given = token_offsets(text, ["Aspirin", "-", "induced", "asthma", ",", "severe", "."])
    np.testing.assert_array_equal(offsets, given)
    span = [(2, 22, "D")]  # "pirin-induced asthma": starts inside a token
    assert char_spans_to_tokens(span, offsets, "expand") == [(0, 4, "D")]
    assert char_spans_to_tokens(span, offsets, "contract") == [(1, 4, "D")]
    assert char_spans_to_tokens([(16, 22, "D")], offsets, "strict") == [(3, 4, "D")]
    with pytest.raises(LabelError, match="token boundaries"):
        char_spans_to_tokens(span, offsets, "strict")
    with pytest.raises(LabelError, match="not in the text"):
        token_offsets(text, ["Aspirin", "aspirin"])


def test_apply_span_lfs_caches_per_lf_version_and_recomputes_a_changed_lf(tmp_path):
    from labeling.spans.lfs import apply_span_lfs, regex_span_lf

    texts = ["paid $5 on Monday", "nothing here", "paid $7"]
    money = regex_span_lf("money", r"\$\d+", "MONEY")
    first = apply_span_lfs([money], texts, cache=tmp_path)
    assert first.spans == [[[(5, 7, "MONEY")]], [[]], [[(5, 7, "MONEY")]]] and first.computed == (3,)
    again = apply_span_lfs([money], texts + ["$9"], cache=tmp_path)
    assert again.computed == (1,) and again.spans[:3] == first.spans and again.versions == first.versions
    changed = regex_span_lf("money", r"\$\d+|\d+ dollars", "MONEY")
    redone = apply_span_lfs([changed], texts, cache=tmp_path)
    assert redone.versions != first.versions and redone.computed == (3,)


def test_spacy_helpers_match_phrases_patterns_and_map_ner_types():
    from labeling.lf.fingerprint import fingerprint
    from labeling.spans.lfs import matcher_lf, phrase_matcher_lf, spacy_ner_lf

    text = "I bought an iphone 12 and a Galaxy for 500 dollars on March 3, 2020."
    phones = phrase_matcher_lf("phones", {"PRODUCT": ["iPhone 12", "Galaxy"]})
    assert phones(text) == [(12, 21, "PRODUCT"), (28, 34, "PRODUCT")]
    other = phrase_matcher_lf("phones", {"PRODUCT": ["iPhone 12"]})
    assert fingerprint(other).version != fingerprint(phones).version  # the version follows the terms
    money = matcher_lf("money", {"MONEY": [[{"LIKE_NUM": True}, {"LOWER": "dollars"}]]})
    assert money(text) == [(39, 50, "MONEY")]
    ner = spacy_ner_lf("ner", {"DATE": "WHEN"})
    assert ("WHEN" in {label for _, _, label in ner(text)}) and all(label == "WHEN" for _, _, label in ner(text))
