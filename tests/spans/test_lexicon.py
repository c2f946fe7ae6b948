"""The span lexicon learnt from (weak) entity annotations."""

from __future__ import annotations

import pytest

from labeling.errors import ConfigError
from labeling.spans.lexicon import ruler_patterns, span_lexicon

DOCS = [["Aspirin", "eases", "pain", "."], ["aspirin", "and", "pain", "relief"], ["no", "pain", "here"]]
# "aspirin" is a Chemical both times it occurs; "pain" a Disease in 1 of its 3 occurrences
SPANS = [[(0, 1, 0), (2, 3, 1)], [(0, 1, 0)], []]


@pytest.mark.parametrize(("min_count", "min_ratio", "expected"), [
    (1, 0.3, {("aspirin",): 0, ("pain",): 1}),
    (1, 0.5, {("aspirin",): 0}),
    (2, 0.3, {("aspirin",): 0}),
    (3, 0.1, {}),
])
def test_a_string_joins_when_marked_often_enough_among_all_its_occurrences(min_count, min_ratio, expected):
    assert span_lexicon(DOCS, SPANS, min_count=min_count, min_ratio=min_ratio) == expected


def test_the_more_frequent_type_wins_and_multi_token_strings_count_their_occurrences():
    docs = [["x", "y", "z"], ["x", "y"], ["x", "y"]]
    spans = [[(0, 2, 1)], [(0, 2, 0)], [(0, 2, 1)]]
    assert span_lexicon(docs, spans, min_ratio=0.6) == {("x", "y"): 1}


def test_ruler_patterns_match_lower_cased_tokens_with_an_id():
    assert ruler_patterns({("a", "b"): 1}, ["Chemical", "Disease"]) == [
        {"label": "Disease", "pattern": [{"LOWER": "a"}, {"LOWER": "b"}], "id": "lexicon"}]


@pytest.mark.parametrize(("min_count", "min_ratio"), [(0, 0.5), (1, 0.0), (1, 1.5)])
def test_bad_thresholds_are_refused(min_count, min_ratio):
    with pytest.raises(ConfigError, match="min_count"):
        span_lexicon(DOCS, SPANS, min_count=min_count, min_ratio=min_ratio)
