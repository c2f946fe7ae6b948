import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labeling.errors import LabelError
from labeling.spans.tags import spans_to_tags, tags_to_spans, vote_tensor


@st.composite
def separated_spans(draw, n_types=3):
    """Non-overlapping spans; in IO, two adjacent spans differ in type (IO cannot tell them apart)."""
    n = draw(st.integers(0, 40))
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=12)))
    spans, prev_type, prev_end = [], None, None
    for start, end in zip(cuts[::2], cuts[1::2]):
        if start == end:
            continue
        t = draw(st.integers(0, n_types - 1))
        if prev_end == start and t == prev_type:
            continue
        spans.append((start, end, t))
        prev_type, prev_end = t, end
    return n, spans


@given(separated_spans())
def test_io_decoding_of_runs_round_trips_spans(case):
    n, spans = case
    assert tags_to_spans(spans_to_tags(spans, n, "io"), "io") == spans


@given(st.integers(0, 30).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(1, 4), max_size=n))))
def test_bio_round_trips_adjacent_spans_of_one_type(case):
    n, widths = case
    spans, start = [], 0
    for w in widths:
        if start + w > n:
            break
        spans.append((start, start + w, 1))
        start += w
    assert tags_to_spans(spans_to_tags(spans, n, "bio"), "bio") == spans


def test_bio_repairs_an_inside_tag_after_o_into_a_start():
    # O I-0 I-0 O B-1 I-0: the stray I's start entities
    assert tags_to_spans([0, 2, 2, 0, 3, 2], "bio") == [(1, 3, 0), (4, 5, 1), (5, 6, 0)]


def test_vote_tensor_stacks_documents_and_marks_silence_abstain():
    weak = [[[(0, 2, 1)], []], [[], [(1, 2, 0)]]]
    V = vote_tensor(weak, [3, 2])
    assert V.tolist() == [[1, -1], [1, -1], [-1, -1], [-1, -1], [-1, 0]]


def test_span_outside_the_document_is_an_error():
    with pytest.raises(LabelError, match="outside"):
        spans_to_tags([(2, 5, 0)], 4)
