"""The label schema's pure changes: classes, index mapping, version."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.data.schema import (LabelSchema, SchemaChange, apply_change, carry_map, class_mapping, label_reading,
                                   next_classes, resolve_class)
from labeling.errors import SchemaChangeError

START = ("ham", "promo", "scam")


@pytest.mark.parametrize("change, classes, mapping", [
    (SchemaChange("add", (), ("other",)), ("ham", "promo", "scam", "other"), (0, 1, 2)),
    (SchemaChange("rename", ("ham",), ("legit",)), ("legit", "promo", "scam"), (0, 1, 2)),
    (SchemaChange("merge", ("scam", "promo"), ("spam",)), ("ham", "spam"), (0, 1, 1)),
    (SchemaChange("merge", ("ham", "scam"), ("scam",)), ("scam", "promo"), (0, 1, 0)),
    (SchemaChange("split", ("ham",), ("legit", "chat")), ("legit", "chat", "promo", "scam"), (None, 2, 3)),
    (SchemaChange("retire", ("promo",), ()), ("ham", "scam"), (0, None, 1)),
])
def test_each_change_gives_its_classes_and_index_mapping(change, classes, mapping):
    assert next_classes(START, change) == (classes, mapping)


@pytest.mark.parametrize("change, says", [
    (SchemaChange("retire", ("ham",), ()), "at least 2"),
    (SchemaChange("rename", ("nope",), ("x",)), "'nope' is not in"),
    (SchemaChange("rename", ("ham",), ("spam",)), "'spam' is already"),
    (SchemaChange("merge", ("ham", "ham"), ("x",)), "two different"),
    (SchemaChange("add", (), (" x",)), "surrounding spaces"),
    (SchemaChange("drop", ("ham",), ()), "unknown schema change"),
])
def test_a_change_that_does_not_fit_names_the_problem(change, says):
    with pytest.raises(SchemaChangeError, match=says):
        next_classes(("ham", "spam"), change)


def test_the_version_hashes_classes_and_history():
    first = LabelSchema.initial(["ham", "spam"])
    renamed, _ = apply_change(first, SchemaChange("rename", ("ham",), ("legit",)))
    back, _ = apply_change(renamed, SchemaChange("rename", ("legit",), ("ham",)))
    assert first.version == LabelSchema.initial(("ham", "spam")).version and len(first.version) == 12
    assert back.classes == first.classes and back.version != first.version  # same classes, other history
    assert LabelSchema.from_json(back.classes, back.history_json()) == back


NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])
CHANGES = st.one_of(
    st.builds(lambda n: SchemaChange("add", (), (n,)), NAMES),
    st.builds(lambda o, n: SchemaChange("rename", (o,), (n,)), NAMES, NAMES),
    st.builds(lambda a, b, c: SchemaChange("merge", (a, b), (c,)), NAMES, NAMES, NAMES),
    st.builds(lambda a, b, c: SchemaChange("split", (a,), (b, c)), NAMES, NAMES, NAMES),
    st.builds(lambda n: SchemaChange("retire", (n,), ()), NAMES),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(CHANGES, max_size=6))
def test_any_sequence_of_changes_keeps_classes_unique_and_maps_each_label_to_its_class(changes):
    schema = LabelSchema.initial(["a", "b", "c"])
    for change in changes:
        try:
            new, mapping = apply_change(schema, change)
        except SchemaChangeError:
            continue
        assert len(set(new.classes)) == len(new.classes) >= 2 and len(mapping) == len(schema.classes)
        for old, target in class_mapping(schema.classes, new.classes, mapping).items():
            if change.op == "rename" and old == change.sources[0]:
                assert target == change.targets[0]
            elif change.op == "merge" and old in change.sources:
                assert target == change.targets[0]
            elif change.op in ("split", "retire") and old == change.sources[0]:
                assert target is None
            else:
                assert target == old  # every other class keeps its labels, whatever its new index
        schema = new


def _changed(*changes) -> LabelSchema:
    schema = LabelSchema.initial(["ham", "spam"])
    for change in changes:
        schema, _ = apply_change(schema, change)
    return schema


RENAME = SchemaChange("rename", ("ham",), ("legit",))
SPLIT = SchemaChange("split", ("spam",), ("promo", "scam"))
MERGE_BACK = SchemaChange("merge", ("promo", "scam"), ("spam",))


@pytest.mark.parametrize("changes, carried, names", [
    ((), (0, 1), {"ham": 0, "spam": 1}),
    ((RENAME,), (0, 1), {"ham": 0, "spam": 1, "legit": 0}),
    ((RENAME, SPLIT), (0, None), {"ham": 0, "spam": None, "legit": 0, "promo": 1, "scam": 2}),
    # split, then merged back whole: the first schema's spam is all of the new spam again
    ((RENAME, SPLIT, MERGE_BACK), (0, 1), {"ham": 0, "spam": 1, "legit": 0, "promo": 1, "scam": 1}),
    # a piece of the split retired: the old spam rows cannot be told apart
    ((SPLIT, SchemaChange("retire", ("scam",), ())), (0, None), {"ham": 0, "spam": None, "promo": 1, "scam": None}),
    # the name reused later: it keeps its first meaning
    ((RENAME, SchemaChange("add", (), ("ham",))), (0, 1), {"ham": 0, "spam": 1, "legit": 0}),
])
def test_data_labels_are_carried_from_the_first_schema_through_the_history(changes, carried, names):
    schema = _changed(*changes)
    assert carry_map(schema) == carried
    assert label_reading(schema) == (("ham", "spam"), names)


@settings(max_examples=60, deadline=None)
@given(st.lists(CHANGES, max_size=6))
def test_carrying_agrees_with_the_one_step_mappings_wherever_they_carry_a_label(changes):
    schema, chained = LabelSchema.initial(["a", "b", "c"]), (0, 1, 2)
    for change in changes:
        try:
            schema, step = apply_change(schema, change)
        except SchemaChangeError:
            continue
        chained = tuple(None if j is None else step[j] for j in chained)
    carried = carry_map(schema)
    # the piecewise carry only adds labels the chain lost (a split merged back), never moves one
    assert all(c == j for c, j in zip(carried, chained) if j is not None)


def test_a_class_name_a_rename_merge_or_split_gave_resolves_to_the_class_it_became():
    schema = _changed(RENAME, SPLIT, MERGE_BACK, SchemaChange("rename", ("legit",), ("good",)))
    assert resolve_class(schema, "legit") == ("good", "")  # given by a rename, renamed again
    assert resolve_class(schema, "promo") == ("spam", "")  # given by the split, merged
    assert resolve_class(schema, "ham") == ("good", "")
    assert resolve_class(_changed(SPLIT), "spam")[0] is None
