import pytest

from labeling.spans.metrics import entity_counts, entity_scores


def test_exact_match_micro_and_per_type_known_answer():
    gold = [[(0, 2, "Chem"), (5, 6, "Dis")], [(1, 3, "Dis")]]
    pred = [[(0, 2, "Chem"), (5, 7, "Dis")], [(1, 3, "Dis"), (4, 5, "Chem")]]
    s = entity_scores(gold, pred)
    assert (s["entity_precision"], s["entity_recall"], s["support"]) == (0.5, pytest.approx(2 / 3), 3)
    assert s["entity_f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s["per_type"]["Chem"] == {"entity_precision": 0.5, "entity_recall": 1.0,
                                     "entity_f1": pytest.approx(2 / 3), "support": 1}
    assert s["per_type"]["Dis"]["entity_f1"] == 0.5
    assert entity_counts(gold, pred).tolist() == [[1, 1, 1], [1, 1, 0]]


def test_wrong_type_or_boundary_is_no_match_and_empty_is_zero():
    assert entity_scores([[(0, 1, 0)]], [[(0, 1, 1)]])["entity_f1"] == 0.0
    assert entity_scores([[]], [[]])["entity_f1"] == 0.0
    assert entity_scores([[]], [[]], types=[0])["per_type"] == {0: {"entity_precision": 0.0, "entity_recall": 0.0,
                                                                    "entity_f1": 0.0, "support": 0}}


def test_document_counts_must_match():
    with pytest.raises(ValueError, match="documents"):
        entity_counts([[]], [])
