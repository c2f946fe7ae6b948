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
