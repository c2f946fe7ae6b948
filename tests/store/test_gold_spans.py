import hashlib

from labeling.store.gold_spans import GoldSpans, gold_span_texts
from labeling.store.serving import FeedbackLog, FeedbackRecord, PredictionRecord


def test_gold_spans_replace_per_task_and_read_back_exactly(store_target):
    text = "Café Noir™ cost $5 on Monday"
    with GoldSpans(store_target) as gold:
        assert gold.replace("p", {"k1": (text, [(17, 19, "MONEY"), (0, 10, "PRODUCT")]), "k2": ("x", [])}) == 2
        gold.replace("p", {"k1": (text, [(23, 29, "DATE")])})  # the reviewer's latest answer wins
        gold.replace("other", {"k1": (text, [(0, 4, "PRODUCT")])})
        assert gold.spans("p") == {"k1": (hashlib.sha256(text.encode()).hexdigest(), [(23, 29, "DATE")]),
                                   "k2": (hashlib.sha256(b"x").hexdigest(), [])}  # reviewed: no entity
        assert gold.spans("other")["k1"][1] == [(0, 4, "PRODUCT")]


def test_span_predictions_and_feedback_are_stored_and_read_as_gold_latest_per_text(store_target):
    text = "the Kindle cost $5"
    sha = hashlib.sha256(text.encode()).hexdigest()
    with GoldSpans(store_target) as gold:
        gold.replace("p", {"k1": (text, [(4, 10, "PRODUCT")])})
    with FeedbackLog(store_target) as log:
        log.log_predictions([PredictionRecord("p1", "2030-01-01T00:00:00+00:00", "run-1", (), -1, None, text, sha,
                                              "off", spans=((4, 10, "PRODUCT", 0.9),))])
        assert log.get_prediction("p1")["spans"] == '[[4, 10, "PRODUCT", 0.9]]'
        # feedback on the prediction, later than the review: it wins for that text
        log.record_feedback(FeedbackRecord("f1", "2999-01-01T00:00:00+00:00", "key-000001", "h", -1, "p1", None, None,
                                           None, spans=((4, 10, "PRODUCT"), (16, 18, "MONEY"))))
        assert log.gold_rows() == []  # span feedback is no class label
    [item] = gold_span_texts(store_target, "p")
    assert (item.source, item.key, item.text, item.text_sha256) == ("feedback", "f1", text, sha)
    assert item.spans == ((4, 10, "PRODUCT"), (16, 18, "MONEY"))


def test_mirror_removes_tasks_no_longer_answered_and_deleted_answers_take_their_spans(store_target):
    text = "the Kindle cost $5"
    with GoldSpans(store_target) as gold:
        gold.replace("p", {"k1": (text, [(4, 10, "PRODUCT")]), "k2": (text, []), "k3": (text, [(16, 18, "MONEY")])},
                     annotation_ids={"k1": 11, "k2": 12, "k3": 13})
        gold.replace("other", {"k2": (text, [(4, 10, "PRODUCT")])}, annotation_ids={"k2": 12})
        # k2's answer was deleted in Label Studio since: a pull mirrors that, other projects untouched
        assert gold.mirror("p", {"k1": (text, [(4, 10, "PRODUCT")]), "k3": (text, [])},
                           annotation_ids={"k1": 11, "k3": 14}) == (1, 1)
        assert {k: s for k, (_, s) in gold.spans("p").items()} == {"k1": [(4, 10, "PRODUCT")], "k3": []}
        assert gold.remove_answers("p", [13, 14, 99]) == ["k3"]  # 13 was replaced by 14 already
        assert gold.remove_answers("p", []) == []
        assert set(gold.spans("p")) == {"k1"} and set(gold.spans("other")) == {"k2"}
