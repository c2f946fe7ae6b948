"""Span review: <Labels> on <Text>, pushed with pre-annotations and pulled back exactly."""

from __future__ import annotations

import random

import pytest

from labeling.config import project_config_from_dict
from labeling.review.label_studio import ReviewError
from labeling.review.span_jobs import pull_span_review
from labeling.store.gold_spans import GoldSpans
from labeling.review.spans import SpanReview, result_spans, span_labeling_config, span_result, span_tasks

TYPES = ("PRODUCT", "MONEY", "DATE")


def _docs(n: int, seed: int = 0):
    """Texts with spans, some non-ASCII (offsets are characters, not bytes)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        product, money, date = rng.choice(["Kindle", "Galaxy S9", "Café Noir™"]), f"${rng.randint(1, 999)}", \
            rng.choice(["Monday", "3 März 2020", "June 21"])
        text = f"Row {i}: the {product} cost {money} on {date} — fine."
        spans = [(text.index(product), text.index(product) + len(product), "PRODUCT"),
                 (text.index(money), text.index(money) + len(money), "MONEY"),
                 (text.index(date), text.index(date) + len(date), "DATE")]
        docs.append((f"k{i}", text, sorted(spans)))
    return docs


def test_results_round_trip_and_bad_offsets_are_refused():
    key, text, spans = _docs(1)[0]
    assert result_spans(span_result(spans, text), text, types=TYPES) == spans
    shifted = span_result([(spans[0][0] + 1, spans[0][1] + 1, "PRODUCT")], text)
    shifted[0]["value"]["text"] = text[spans[0][0]:spans[0][1]]
    with pytest.raises(ReviewError, match="says"):
        result_spans(shifted, text, where="task k0")
    with pytest.raises(ReviewError, match="not inside"):
        result_spans(span_result([(0, len(text) + 1, "DATE")], text + "x"), text)
    with pytest.raises(ReviewError, match="not one of"):
        result_spans(span_result([(0, 3, "PERSON")], text), text, types=TYPES)
    assert '<Labels name="label" toName="text">' in span_labeling_config(TYPES)
    task = span_tasks([key], [text], [spans], model_version="r1")[0]
    assert task["predictions"][0]["result"] == span_result(spans, text)


def test_label_studio_round_trip_of_20_documents(label_studio, tmp_path):
    url, key = label_studio
    docs = _docs(20)
    review = SpanReview(url, key, title=f"spans-{random.getrandbits(32):x}", classes=TYPES)
    pushed = review.push(span_tasks([k for k, _, _ in docs], [t for _, t, _ in docs], [s for _, _, s in docs],
                                    model_version="run-1"))
    assert pushed.created == 20
    tasks = review.existing_tasks()
    for k, text, spans in docs:  # the pre-annotations arrived exactly
        predictions = tasks[k].get("predictions") or []
        assert predictions and result_spans(predictions[0]["result"], text, types=TYPES) == spans
        review.annotate_spans(pushed.task_ids[k], spans, text)  # a reviewer accepts them
    gold = review.gold_spans()
    assert {k: g for k, g in gold.items()} == {k: (t, s) for k, t, s in docs}
    config = project_config_from_dict({"project": {"name": "spans", "task": "spans", "classes": list(TYPES)}},
                                      base_dir=tmp_path)
    pulled = pull_span_review(config, review)  # and into the store, exactly
    assert (pulled.tasks, pulled.spans, pulled.no_entity, pulled.removed) == (20, 60, 0, 0)
    with GoldSpans(config.resolve(config.store)) as store:
        assert {k: s for k, (_, s) in store.spans("spans").items()} == {k: s for k, _, s in docs}
    # a pull mirrors Label Studio: an answer deleted there takes its gold with it, a skip
    # replacing an answer leaves none, and an emptied answer is a text with no entity
    answers = review.span_answers()
    review.client.annotations.delete(answers["k0"][2])
    review.client.annotations.update(answers["k1"][2], was_cancelled=True)
    review.annotate_spans(pushed.task_ids["k2"], [], docs[2][1])
    pulled = pull_span_review(config, review)
    assert (pulled.tasks, pulled.spans, pulled.no_entity, pulled.removed) == (18, 51, 1, 2)
    with GoldSpans(config.resolve(config.store)) as store:
        stored = {k: s for k, (_, s) in store.spans("spans").items()}
    assert stored == {**{k: s for k, _, s in docs[3:]}, "k2": []}
