"""similar_to (cosine similarity to seed texts over cached embeddings) and from_gold LFs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from labeling import ConfigError, apply_lfs, lf_version
from labeling.lf.cache import column_keys
from labeling.models.embeddings import EmbeddingCache, embed_texts
from labeling.notebook import from_gold, lf_kind, lf_module_source, prepare_similarity, similar_to
from labeling.review.refinement import KeywordSuggestion, refine

SEEDS = ["Subscribe to my channel for free gift cards", "check out my new video"]
TEXTS = [
    "Subscribe to my channel for free gift cards",  # a seed itself: similarity 1
    "check out my new video",
    "please subscribe to my channel, free gift cards inside",
    "I love this song so much",
    "the drums at 2:30 are incredible",
    "Katy Perry looks amazing here",
]


def _expected(texts, seeds, threshold):
    sims = (embed_texts(texts) @ embed_texts(seeds).T).max(axis=1)
    return np.where(np.round(sims, 4) >= threshold, 1, -1), sims


def test_similar_to_votes_where_cosine_to_the_nearest_seed_reaches_the_threshold():
    expected, sims = _expected(TEXTS, SEEDS, 0.8)
    lf = similar_to(SEEDS, 1, 0.8)
    frame = pd.DataFrame({"text": TEXTS})
    L = apply_lfs([lf], frame, cardinality=2, n_jobs=1).L[:, 0]
    assert L.tolist() == expected.tolist()
    assert L[:2].tolist() == [1, 1] and sims[:2] == pytest.approx(1.0, abs=1e-5)
    assert (L[3:] == -1).all()  # music comments are not the spam seeds
    # row by row (Snorkel's way) agrees with the batch
    assert [lf(pd.Series({"text": t})) for t in TEXTS] == L.tolist()
    assert lf.name == "similar_subscribe_to_my_channel_for" and lf_kind(lf) == "similarity"


def test_similar_to_threshold_moves_the_votes():
    _, sims = _expected(TEXTS, SEEDS, 0.0)
    frame = pd.DataFrame({"text": TEXTS})
    loose = similar_to(SEEDS, 1, float(np.round(np.sort(sims)[1], 4)), name="loose")
    assert (apply_lfs([loose], frame, cardinality=2, n_jobs=1).L[:, 0] == 1).sum() == len(TEXTS) - 1


def test_similar_to_settings_version_and_errors():
    a = similar_to(SEEDS, 1, 0.8, name="s")
    assert lf_version(a) == lf_version(similar_to(SEEDS, 1, 0.8, name="s"))
    assert lf_version(a) != lf_version(similar_to(SEEDS, 1, 0.7, name="s"))
    assert lf_version(a) != lf_version(similar_to(SEEDS[:1], 1, 0.8, name="s"))
    with pytest.raises(ConfigError, match="at least one example"):
        similar_to([], 1)
    with pytest.raises(ConfigError, match="threshold"):
        similar_to(SEEDS, 1, 1.5)
    with pytest.raises(ConfigError, match="label"):
        similar_to(SEEDS, -1)


def test_prepare_similarity_fills_the_embedding_cache(tmp_path):
    frame = pd.DataFrame({"text": TEXTS + ["a text seen only here"]})
    prepare_similarity([similar_to(SEEDS, 1)], frame, cache=tmp_path)
    cache = EmbeddingCache(tmp_path)
    keys = column_keys(pd.Series(frame["text"].tolist(), dtype="string[pyarrow]"))
    _, found = cache.lookup("wordllama", keys, 256)
    assert found.all()


def test_similar_to_is_saved_as_a_factory_call():
    source = lf_module_source([similar_to(SEEDS, 1, 0.75, name="spam_like")])
    assert ("spam_like = similar_to(['Subscribe to my channel for free gift cards', 'check out my new video'], 1, "
            "threshold=0.75, name='spam_like', embedder='wordllama', field='text')") in source
    namespace: dict = {}
    exec(compile(source, "saved", "exec"), namespace)
    assert lf_version(namespace["spam_like"]) == lf_version(similar_to(SEEDS, 1, 0.75, name="spam_like"))


def _suggestion(ngram, label):
    return KeywordSuggestion(ngram, label, 1.0, 0.8, 0.1, 5, 2)


def test_from_gold_makes_one_declarative_lf_per_suggestion():
    lfs = from_gold([_suggestion("check out", 1), _suggestion("song", 0), _suggestion("check-out", 1)],
                    taken=["gold_song"])
    assert [lf.name for lf in lfs] == ["gold_check_out", "gold_song_", "gold_check_out_"]
    assert all(lf_kind(lf) == "declarative" for lf in lfs)
    frame = pd.DataFrame({"text": ["Check   OUT my channel", "checkout this", "nice SONG", "songs", "check-out"]})
    L = apply_lfs(lfs, frame, cardinality=2, n_jobs=1).L
    # the suggestion's own pattern: its words, any spacing, case-insensitive, whole words
    assert L[:, 0].tolist() == [1, -1, -1, -1, -1]
    assert L[:, 1].tolist() == [-1, -1, 0, -1, -1]
    assert L[:, 2].tolist() == [-1, -1, -1, -1, 1]


def test_from_gold_takes_a_refine_report_and_its_accepted_suggestions():
    texts = ["check out my channel"] * 4 + ["love this song"] * 4 + ["great song"] * 2 + ["visit my channel now"] * 3
    y = np.array([1] * 4 + [0] * 6 + [1] * 3)
    L = np.full((len(texts), 1), -1)
    held_texts = ["check out my page", "check out this", "this song rocks", "channel of mine"]
    held_y = [1, 1, 0, 1]
    report = refine(L, y, texts, ["none"], ["ham", "spam"], held_out=(held_texts, held_y))
    assert report.suggestions
    everything = from_gold(report, accepted_only=False)
    accepted = from_gold(report)
    assert len(everything) == len(report.suggestions)
    assert [lf.name for lf in accepted] == [f"gold_{s.ngram.replace(' ', '_')}" for s in report.accepted()]
    for lf, s in zip(everything, report.suggestions):
        assert lf.name == "gold_" + re.sub(r"\W+", "_", s.ngram)
        votes = apply_lfs([lf], pd.DataFrame({"text": texts}), cardinality=2, n_jobs=1).L[:, 0]
        hits = [bool(re.search(r"\b" + r"\s+".join(map(re.escape, s.ngram.split())) + r"\b", t, re.I)) for t in texts]
        assert votes.tolist() == [s.label if h else -1 for h in hits]
