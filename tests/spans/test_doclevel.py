from labeling.spans.doclevel import abbreviation_spans, add_abbreviations

TOKENS = "rheumatoid arthritis ( RA ) patients ; RA and RA - like aspirin ( A ) in RA".split()


def test_a_defined_short_form_takes_its_long_forms_type_everywhere_in_the_document():
    spans = [(0, 2, 1), (12, 13, 0)]  # "rheumatoid arthritis" Disease; "aspirin" Chemical, "( A )" too short
    assert abbreviation_spans(TOKENS, spans) == [(3, 4, 1), (7, 8, 1), (9, 10, 1), (17, 18, 1)]


def test_add_abbreviations_keeps_existing_entities_over_short_forms():
    spans = [(0, 2, 1), (9, 12, 0)]  # "RA - like" already an entity
    assert add_abbreviations(TOKENS, spans) == [(0, 2, 1), (3, 4, 1), (7, 8, 1), (9, 12, 0), (17, 18, 1)]


def test_no_definition_no_change():
    assert add_abbreviations(["RA", "in", "RA"], [(0, 1, 0)]) == [(0, 1, 0)]
