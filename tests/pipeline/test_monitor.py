"""New-class candidates among served predictions (the monitor's "when to add a class")."""

from __future__ import annotations

import json

import pytest

from labeling.pipeline.monitor import new_class_candidates


def _row(text, probs=(0.55, 0.45), votes=(-1, -1)):
    return {"text": text, "probabilities": json.dumps(list(probs)),
            "lf_votes": None if votes is None else json.dumps(list(votes))}


def test_unsure_texts_no_lf_votes_on_are_clustered_into_candidates_with_terms_and_examples():
    crypto = [_row(f"buy bitcoin crypto wallet now {i}") for i in range(8)]
    pasta = [_row(f"my pasta recipe with tomato sauce {i}") for i in range(6)]
    ignored = ([_row(f"bitcoin sure {i}", probs=(0.95, 0.05)) for i in range(5)]  # the predictor is sure
               + [_row(f"pasta voted {i}", votes=(1, -1)) for i in range(5)]  # an LF votes
               + [_row(f"pasta unlogged {i}", votes=None) for i in range(5)]  # votes not logged yet
               + [{**_row("x"), "text": None}])  # text kept only as a hash
    found = new_class_candidates(crypto + ignored + pasta, 2, examples=2)
    assert [c["size"] for c in found] == [8, 6]
    assert {"bitcoin", "crypto", "wallet"} <= set(found[0]["terms"]) and "pasta" in found[1]["terms"]
    assert len(found[1]["examples"]) == 2 and all("pasta recipe" in t for t in found[1]["examples"])
    assert new_class_candidates(crypto + pasta, 2) == new_class_candidates(crypto + pasta, 2)  # seeded


@pytest.mark.parametrize("rows", [[], [_row("only one unsure text")], [_row("12 34"), _row("56"), _row("78")]])
def test_too_few_or_wordless_texts_give_no_candidate(rows):
    assert new_class_candidates(rows, 2) == ()


# -- span drift (project.task = "spans") ----------------------------------------------------

from labeling.config import MonitorConfig  # noqa: E402
from labeling.pipeline.monitor import compare_spans, served_span_profile, span_reference_profile  # noqa: E402

TYPES = ("PRODUCT", "MONEY", "DATE")


def _span_docs(n, seed, *, money=0.5, empty=0.1):
    """``n`` texts of 8-30 tokens with predicted entities: none with probability ``empty``,
    else a PRODUCT, a MONEY with probability ``money`` and a DATE with probability 0.5."""
    import random

    rng = random.Random(seed)
    texts, docs = [], []
    for _ in range(n):
        text = " ".join("word" for _ in range(rng.randint(8, 30)))
        labels = [] if rng.random() < empty else ["PRODUCT"] + ["MONEY"] * (rng.random() < money) + \
            ["DATE"] * (rng.random() < 0.5)
        texts.append(text)
        docs.append([{"start": 5 * i, "end": 5 * i + 4, "label": t, "score": 0.9} for i, t in enumerate(labels)])
    return texts, docs


def _served(texts, docs, *, keep_text=True):
    return [{"text": t if keep_text else None, "spans": json.dumps([[s["start"], s["end"], s["label"], s["score"]]
                                                                    for s in doc])} for t, doc in zip(texts, docs)]


def _span_verdict(served_rows, settings=MonitorConfig()):
    reference = json.loads(json.dumps(span_reference_profile(*_span_docs(200, 0), TYPES)))  # as the store keeps it
    return compare_spans(reference, served_span_profile(served_rows, reference), settings, run_id="r1")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_in_distribution_span_traffic_gives_no_retrain(seed):
    report = _span_verdict(_served(*_span_docs(300, seed)))
    assert not report.retrain and report.reasons == ()
    assert [c.name for c in report.checks] == [f"entities per 100 tokens: {t}" for t in TYPES] + ["texts with no entity"]
    assert all(c.p_value is not None and c.method in ("permutation", "chi-square") for c in report.checks)
    assert "no retrain needed" in report.format()


def test_shifted_span_traffic_gives_retrain_naming_what_moved():
    more_money = _span_verdict(_served(*_span_docs(300, 1, money=0.9)))
    assert more_money.retrain and [c.name for c in more_money.checks if c.drifted] == ["entities per 100 tokens: MONEY"]
    assert "MONEY differs from the held-out reference" in more_money.reasons[0]
    emptier = _span_verdict(_served(*_span_docs(300, 1, empty=0.4)))
    assert emptier.retrain and "texts with no entity" in {c.name for c in emptier.checks if c.drifted}
    # the same shift in a handful of texts is not enough evidence, and under min_predictions no verdict
    assert not _span_verdict(_served(*_span_docs(60, 1, money=0.7))).retrain
    few = _span_verdict(_served(*_span_docs(10, 1)))
    assert not few.retrain and few.checks == () and "no verdict" in few.format()


def test_span_traffic_kept_as_hashes_is_tested_per_text():
    report = _span_verdict(_served(*_span_docs(300, 1, money=0.9), keep_text=False))
    assert report.retrain and "entities per text: MONEY" in {c.name for c in report.checks if c.drifted}
    assert any("kept only as hashes" in n for n in report.notes)
