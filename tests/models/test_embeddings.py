import numpy as np
import pytest

from labeling.errors import ConfigError
from labeling.models.embeddings import Embedder, EmbeddingCache, embed_texts, load_embedder


def test_wordllama_works_offline_with_unit_rows(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = embed_texts(["check out my channel", "subscribe to my channel", "lovely song"])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # related texts are nearer than unrelated ones
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_truncated_dims():
    assert load_embedder("wordllama:64").embed(["a text"]).shape == (1, 64)
    with pytest.raises(ConfigError, match="1..256"):
        load_embedder("wordllama:300")


@pytest.mark.parametrize("spec", ["glove", "model2vec", "sentence-transformers:"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(ConfigError, match="unknown embedder"):
        load_embedder(spec)


def _counting(dim=4):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0, 0.0][:dim] for t in texts])

    return Embedder("counting", dim, encode), calls


def test_each_distinct_text_is_embedded_once_and_cached_by_content(tmp_path):
    embedder, calls = _counting()
    cache = EmbeddingCache(tmp_path)
    first = embed_texts(["aa", "b", "aa"], embedder, cache)
    assert calls == [["aa", "b"]]
    np.testing.assert_array_equal(first[0], first[2])
    again = embed_texts(["b", "ccc", "aa"], embedder, cache)
    assert calls[-1] == ["ccc"]  # only the new text
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])
    # a fresh cache object (as in a new process) reads the same vectors from disk
    np.testing.assert_array_equal(embed_texts(["aa"], embedder, EmbeddingCache(tmp_path)), first[:1])
    assert calls[-1] == ["ccc"]


def test_zero_vectors_stay_zero_instead_of_nan():
    embedder = Embedder("zeros", 3, lambda texts: np.zeros((len(texts), 3)))
    assert not np.isnan(embedder.embed(["x"])).any()
