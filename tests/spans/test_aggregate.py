import numpy as np
import pytest

from labeling.errors import LabelMatrixError, NotFittedError
from labeling.spans.aggregate import (
    SpanHMM,
    TokenMajorityVote,
    TokenWeightedVote,
    select_span_aggregator,
)
from labeling.spans.metrics import entity_scores
from labeling.spans.tags import vote_tensor


def test_majority_vote_known_answer_ties_to_the_lower_type_and_runs_become_entities():
    V = np.array([[0, 0, 1], [1, -1, -1], [-1, -1, -1], [0, 1, -1], [0, -1, -1]])
    mv = TokenMajorityVote(2).fit(V)
    assert mv.predict_tags(V).tolist() == [0, 1, -1, 0, 0]
    assert mv.predict_spans(V, [2, 3]) == [[(0, 1, 0), (1, 2, 1)], [(1, 3, 0)]]
    assert TokenMajorityVote(2, min_votes=2).fit(V).predict_tags(V).tolist() == [0, -1, -1, -1, -1]


def test_weighted_vote_precision_settles_conflicts_and_log_odds_drops_imprecise_lfs():
    # dev: LF 0 right 4/4 times on type 0; LF 1 votes type 1 and is right 1 time in 4
    V_dev = np.array([[0, 1], [0, 1], [0, 1], [0, -1], [-1, 1]])
    y_dev = np.array([0, 0, 0, 0, 1])
    wv = TokenWeightedVote(2, weighting="precision", smoothing=0.0).fit(V_dev, None, y_dev)
    np.testing.assert_allclose(wv.precision_[[0, 1], [0, 1]], [1.0, 0.25])
    assert wv.precision_[1, 0] == 0.5  # no votes and no smoothing: no evidence either way
    V = np.array([[0, 1], [-1, 1], [-1, -1]])
    assert wv.predict_tags(V).tolist() == [0, 1, -1]
    lo = TokenWeightedVote(2, weighting="log_odds", smoothing=0.0).fit(V_dev, None, y_dev)
    assert lo.predict_tags(V).tolist() == [0, -1, -1]  # LF 1 alone is below 50% precision: O


def test_weighted_vote_needs_gold_tags():
    with pytest.raises(LabelMatrixError, match="needs gold IO tags"):
        TokenWeightedVote(2).fit(np.zeros((3, 1), int))


def _synthetic(n_docs=30, length=25, seed=0):
    """Entities of two types; LFs 0 and 1 find 90% of them exactly, LF 2 fires at random."""
    rng = np.random.default_rng(seed)
    gold, weak = [], []
    for _ in range(n_docs):
        spans, pos = [], int(rng.integers(0, 3))
        while pos + 3 < length:
            w = int(rng.integers(1, 4))
            spans.append((pos, pos + w, int(rng.integers(0, 2))))
            pos += w + int(rng.integers(1, 5))
        noise = [(p, p + 1, int(rng.integers(0, 2))) for p in rng.choice(length, 2, replace=False)]
        weak.append([[s for s in spans if rng.random() < 0.9] for _ in range(2)] + [noise])
        gold.append(spans)
    lengths = np.full(n_docs, length)
    return vote_tensor(weak, lengths), lengths, gold


@pytest.mark.parametrize("scheme", ["io", "bio"])
def test_hmm_recovers_entities_from_two_good_lfs_and_one_noisy_and_is_reproducible(scheme):
    V, lengths, gold = _synthetic()
    hmm = SpanHMM(2, scheme=scheme, random_state=3).fit(V, lengths)
    f1 = entity_scores(gold, hmm.predict_spans(V, lengths))["entity_f1"]
    assert f1 > 0.85
    again = SpanHMM(2, scheme=scheme, random_state=3).fit(V, lengths)
    np.testing.assert_array_equal(hmm.emission_, again.emission_)
    probs = hmm.predict_proba(V, lengths)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert hmm.log_likelihood_ == sorted(hmm.log_likelihood_)  # EM never lowers the likelihood (MAP: nearly)


def test_hmm_on_agreeing_lfs_gives_their_spans_and_bio_keeps_adjacent_entities_apart():
    weak = [[[(0, 2, 0), (2, 3, 0), (5, 6, 1)]] * 3]
    V = vote_tensor(weak, [7])
    assert SpanHMM(2, scheme="io").fit(V, [7]).predict_spans(V, [7]) == [[(0, 3, 0), (5, 6, 1)]]
    spans = SpanHMM(2, scheme="bio").fit(V, [7]).predict_spans(V, [7])
    assert spans == [[(0, 3, 0), (5, 6, 1)]]  # the vote tensor is IO: LF runs of one type merge


def test_unfitted_and_mismatched_votes_are_errors():
    with pytest.raises(NotFittedError):
        SpanHMM(2).predict_tags(np.zeros((2, 1), int))
    with pytest.raises(LabelMatrixError, match="neither ABSTAIN"):
        TokenMajorityVote(2).fit(np.array([[2]]))
    with pytest.raises(LabelMatrixError, match="lengths sum to"):
        TokenMajorityVote(2).fit(np.array([[0]]), [3])


def test_selection_scores_every_candidate_on_dev_and_takes_the_simplest_within_one_se():
    V, lengths, gold = _synthetic(40)
    half = int(lengths[:20].sum())
    sel = select_span_aggregator(V[:half], lengths[:20], V[half:], lengths[20:], gold[20:], 2, random_state=0)
    assert len(sel.scores) == len(sel.fitted) == 6 and sel.name == sel.scores[sel.index][0]
    assert sel.model is sel.fitted[sel.index]
    best = max(s for _, s in sel.scores)
    assert sel.scores[sel.index][1] >= best - sel.tolerance - 1e-12
    assert all(s < best - sel.tolerance for _, s in sel.scores[:sel.index])
    plain = select_span_aggregator(V[:half], lengths[:20], V[half:], lengths[20:], gold[20:], 2, tie_se=0)
    assert plain.scores[plain.index][1] == best


def test_selection_with_dev_tokens_also_scores_each_candidate_with_abbreviations():
    V, lengths, gold = _synthetic(20)
    half = int(lengths[:10].sum())
    tokens = [["w"] * int(n) for n in lengths[10:]]
    sel = select_span_aggregator(V[:half], lengths[:10], V[half:], lengths[10:], gold[10:], 2,
                                 candidates=[TokenMajorityVote(2)], dev_tokens=tokens)
    assert [name for name, _ in sel.scores] == ["TokenMajorityVote()", "TokenMajorityVote() + abbreviations"]
    assert sel.scores[0][1] == sel.scores[1][1] and sel.index == 0 and not sel.abbreviations  # no "( X )": a tie
