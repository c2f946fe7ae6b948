import hashlib

from labeling.store.gold_spans import GoldSpans


def test_gold_spans_replace_per_task_and_read_back_exactly(tmp_path):
    text = "Café Noir™ cost $5 on Monday"
    with GoldSpans(tmp_path / "s.db") as gold:
        assert gold.replace("p", {"k1": (text, [(17, 19, "MONEY"), (0, 10, "PRODUCT")]), "k2": ("x", [])}) == 2
        gold.replace("p", {"k1": (text, [(23, 29, "DATE")])})  # the reviewer's latest answer wins
        gold.replace("other", {"k1": (text, [(0, 4, "PRODUCT")])})
        assert gold.spans("p") == {"k1": (hashlib.sha256(text.encode()).hexdigest(), [(23, 29, "DATE")]),
                                   "k2": (hashlib.sha256(b"x").hexdigest(), [])}  # reviewed: no entity
        assert gold.spans("other")["k1"][1] == [(0, 4, "PRODUCT")]
