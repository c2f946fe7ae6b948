import pytest

from labeling.spans.doclevel import DOC_RULES, abbreviation_spans, add_abbreviations, add_repeats, apply_doc_rules

TOKENS = "rheumatoid arthritis ( RA ) patients ; RA and RA - like aspirin ( A ) in RA".split()


def test_a_defined_short_form_takes_its_long_forms_type_everywhere_in_the_document():
    spans = [(0, 2, 1), (12, 13, 0)]  # "rheumatoid arthritis" Disease; "aspirin" Chemical, "( A )" too short
    assert abbreviation_spans(TOKENS, spans) == [(3, 4, 1), (7, 8, 1), (9, 10, 1), (17, 18, 1)]


def test_add_abbreviations_keeps_existing_entities_over_short_forms():
    spans = [(0, 2, 1), (9, 12, 0)]  # "RA - like" already an entity
    assert add_abbreviations(TOKENS, spans) == [(0, 2, 1), (3, 4, 1), (7, 8, 1), (9, 12, 0), (17, 18, 1)]


def test_no_definition_no_change():
    assert add_abbreviations(["RA", "in", "RA"], [(0, 1, 0)]) == [(0, 1, 0)]


def test_add_repeats_marks_other_occurrences_with_the_majority_type_longest_first():
    tokens = "Lung cancer and lung cancer ; cancer , Cancer and lung".split()
    # "lung cancer" (type 1) is found again at 3 before "cancer" could take its token 4;
    # "lung" alone is never marked
    assert add_repeats(tokens, [(0, 2, 1), (6, 7, 0)]) == [(0, 2, 1), (3, 5, 1), (6, 7, 0), (8, 9, 0)]
    # "a" marked 1 twice and 0 once: its unmarked occurrence takes the majority type 1
    assert add_repeats("a b a b A c a".split(), [(0, 1, 1), (2, 3, 1), (4, 5, 0)])[-1] == (6, 7, 1)
    assert add_repeats(["a", "b"], []) == []


@pytest.mark.parametrize("rules", sorted(DOC_RULES))
def test_doc_rules_only_add_entities(rules):
    spans = [(0, 2, 1), (7, 8, 1), (12, 13, 0)]  # the long form, one "RA", "aspirin"
    out = apply_doc_rules(rules, TOKENS, spans)
    assert set(spans) <= set(out) and out == sorted(out)
    assert (rules == "none") == (out == spans)
