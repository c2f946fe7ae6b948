"""Gold spans from the store placed against a spans project's splits (no training here)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from labeling.errors import LabelError
from labeling.pipeline.spans_data import load_span_splits, read_span_gold, span_dev_split
from labeling.store.gold_spans import GoldSpans
from labeling.store.serving import FeedbackLog, FeedbackRecord
from tests.pipeline.test_spans_retrain import span_project, span_rows  # noqa: F401 (the fixture)


def test_gold_spans_relabel_dev_and_train_add_extra_texts_and_leave_test_out(span_project):  # noqa: F811
    rows = span_rows(300, 0)
    splits = load_span_splits(span_project)
    first = {split: next(r for r in rows if r["split"] == split and
                         sum(x["text"] == r["text"] for x in rows) == 1) for split in ("train", "dev", "test")}
    extra = "A brand new text about a Kindle."
    store = span_project.resolve(span_project.store)
    with GoldSpans(store) as gold:
        gold.replace(span_project.name, {
            first["train"]["id"]: (first["train"]["text"], []),  # reviewed: no entity
            first["test"]["id"]: (first["test"]["text"], [tuple(s) for s in first["test"]["spans"]]),
            "x1": (extra, [(25, 31, "PRODUCT")]),
        })
    with FeedbackLog(store) as log:  # span feedback on a dev text: its first entity only
        s = first["dev"]["spans"][0]
        log.record_feedback(FeedbackRecord("f1", "2030-01-01T00:00:00+00:00", "key-00001", "h", -1, None,
                                           first["dev"]["text"], hashlib.sha256(first["dev"]["text"].encode()).hexdigest(),
                                           None, spans=((s[0], s[1], s[2]),)))
    placed = read_span_gold(span_project, splits)
    assert {k: placed.summary[k] for k in ("texts_read", "train_rows", "dev_rows", "extra_rows", "test_rows_excluded")} \
        == {"texts_read": 4, "train_rows": 1, "dev_rows": 1, "extra_rows": 1, "test_rows_excluded": 1}
    assert placed.summary["sources"] == ["feedback", "review"] and len(placed.summary["sha256"]) == 16
    d = splits["train"].data.ids.index(first["train"]["id"])
    assert placed.train == {d: ()}
    dev = span_dev_split(span_project)
    i = dev.ids.index(first["dev"]["id"])
    assert len(dev.gold[i]) == 1 and dev.gold[i][0] == splits["dev"].data.gold[i][0]  # the first entity only
    tokens, spans = placed.extra[0]
    assert [" ".join(tokens[a:b]) for a, b, _ in spans] == ["Kindle"]
    off = read_span_gold(dataclasses.replace(span_project, review=dataclasses.replace(span_project.review,
                                                                                      use_gold=False)), splits)
    assert off.summary["texts_read"] == 0 and off.summary["note"] == "review.use_gold is off"
    with GoldSpans(store) as gold:
        gold.replace(span_project.name, {"x2": ("Bob paid", [(0, 3, "PERSON")])})
    with pytest.raises(LabelError, match=r"review 'x2' have type\(s\) \['PERSON'\], not in project.classes"):
        read_span_gold(span_project, splits)


def test_a_project_without_a_store_reads_no_gold_and_creates_none(span_project):  # noqa: F811
    placed = read_span_gold(span_project, load_span_splits(span_project))
    assert placed.summary["texts_read"] == 0 and not span_project.resolve(span_project.store).exists()
