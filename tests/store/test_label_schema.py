"""The label-schema migration of the store, on both backends: one transaction, old schema or new."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labeling.data.schema import LabelSchema, SchemaChange, apply_change
from labeling.store.connection import connect
from labeling.store.gold import GoldStore, ReviewTask
from labeling.store.label_schema import current_schema, ensure_schema, migrate_schema, relabelled_rows
from labeling.store.serving import FeedbackLog, FeedbackRecord

FIRST = LabelSchema.initial(["ham", "promo", "scam"])


class Crash(Exception):
    """Stands in for a process dying inside the transaction."""


def _labels(conn) -> dict:
    gold = conn.read("SELECT task_key, annotator, label, schema_version FROM gold_labels ORDER BY task_key, annotator")
    feedback = conn.read("SELECT id, label, schema_version FROM feedback ORDER BY id")
    return {"gold": [tuple(r.values()) for r in gold], "feedback": [tuple(r.values()) for r in feedback],
            "version": current_schema(conn, "p")["version"]}


def _stocked(target):
    """3 review tasks answered by two annotators, 3 feedback rows, under ``FIRST``."""
    with connect(target) as conn:
        ensure_schema(conn, "p", FIRST.version, FIRST.classes, FIRST.history_json())
    tasks = [ReviewTask(f"t{i}", "dataset", str(i), f"text {i}", "random") for i in range(3)]
    with GoldStore(target) as gold:
        gold.record_pushed("p review", tasks, {t.task_key: i + 1 for i, t in enumerate(tasks)})
        gold.record_annotations("p review", [
            SimpleNamespace(task_key=f"t{i}", annotator=who, annotation_id=10 * i + n, label=(i + n) % 3,
                            updated_at="2026-01-01") for i in range(3) for n, who in enumerate(("a", "b"))])
    with FeedbackLog(target) as log:
        for i in range(3):
            log.record_feedback(FeedbackRecord(f"f{i}", f"2026-01-01T00:00:0{i}", f"k{i}", "x", i, None,
                                               f"served {i}", None, None))


@pytest.mark.parametrize("change", [SchemaChange("merge", ("promo", "scam"), ("spam",)),
                                    SchemaChange("split", ("ham",), ("legit", "chat"))])
def test_a_migration_killed_inside_its_transaction_leaves_the_old_schema_and_a_rerun_moves_every_row(
        store_target, change):
    _stocked(store_target)
    new, mapping = apply_change(FIRST, change)
    record = {"version": new.version, "classes": list(new.classes), "history": new.history_json(),
              "change": change.to_json(), "plan": None, "files": []}

    def crash(step):
        if step == "store: feedback relabelled":  # gold already relabelled inside the transaction
            raise Crash(step)

    with connect(store_target) as conn:
        before = _labels(conn)
        with pytest.raises(Crash):
            migrate_schema(conn, "p", old_version=FIRST.version, new=record, mapping=mapping, checkpoint=crash)
        assert _labels(conn) == before and relabelled_rows(conn, new.version) == []
        migrate_schema(conn, "p", old_version=FIRST.version, new=record, mapping=mapping)
        after = _labels(conn)
    assert after["version"] == new.version
    moved = {(k, a): mapping[lab] for k, a, lab, _ in before["gold"]}
    assert [(k, a, lab) for k, a, lab, _ in after["gold"]] == [(k, a, j) for (k, a), j in moved.items() if j is not None]
    assert {v for *_, v in after["gold"] + after["feedback"]} == {new.version}
    assert [(i, lab) for i, lab, _ in after["feedback"]] == [(i, mapping[lab]) for i, lab, _ in before["feedback"]
                                                             if mapping[lab] is not None]
    changed = sum(mapping[lab] != lab for _, _, lab, _ in before["gold"]) + \
        sum(mapping[lab] != lab for _, lab, _ in before["feedback"])
    with connect(store_target) as conn:
        assert len(relabelled_rows(conn, new.version)) == changed
