from __future__ import annotations

import numpy as np
import pytest
from snorkel.labeling import PandasLFApplier
from snorkel.labeling.lf.nlp import nlp_labeling_function

import labeling.lf.parse_cache as parse_module
from labeling import apply_lfs, discover_lfs
from labeling.lf.core import resolve_spacy_model, uses_spacy
from labeling.lf.parse_cache import ParseCache, load_pipeline, parse_texts, pipeline_key

from ..conftest import REPO


@pytest.fixture(scope="module")
def spacy_lfs():
    return [lf for lf in discover_lfs(["labeling_functions.youtube_spam"], root=REPO) if uses_spacy(lf)]


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline(resolve_spacy_model())


def _count_pipes(monkeypatch, nlp) -> list[int]:
    calls: list[int] = []
    real = type(nlp).pipe

    def counting(self, texts, **kwargs):
        texts = list(texts)
        calls.append(len(texts))
        return real(self, texts, **kwargs)

    monkeypatch.setattr(type(nlp), "pipe", counting)
    return calls


def test_cached_parses_give_the_same_votes_without_parsing(spacy_lfs, youtube_splits, tmp_path, monkeypatch, nlp):
    frame = youtube_splits.train.iloc[:300]
    calls = _count_pipes(monkeypatch, nlp)
    cold = apply_lfs(spacy_lfs, frame, cardinality=2, cache=ParseCache(tmp_path))
    assert calls == [frame["text"].nunique()]
    warm = apply_lfs(spacy_lfs, frame, cardinality=2, cache=ParseCache(tmp_path))
    assert calls == [frame["text"].nunique()], "the second run parses nothing"
    np.testing.assert_array_equal(cold.L, warm.L)


def test_only_new_texts_are_parsed_and_docs_round_trip(nlp, tmp_path, monkeypatch):
    cache = ParseCache(tmp_path)
    first = parse_texts(["Taylor Swift sings.", "Visit www.example.com now"], nlp, name="p", cache=cache)
    calls = _count_pipes(monkeypatch, nlp)
    again = parse_texts(["Visit www.example.com now", "New text here", "Taylor Swift sings."], nlp, name="p", cache=cache)
    assert calls == [1]
    for a, b in ((first[0], again[2]), (first[1], again[0])):
        assert _annotations(a) == _annotations(b)


def _annotations(doc) -> tuple:
    return ([(t.text, t.tag_, t.pos_, t.lemma_, t.dep_, t.head.i) for t in doc],
            [(e.text, e.label_) for e in doc.ents], [s.text for s in doc.sents])


def test_worker_processes_parse_like_one_process_and_fill_the_cache(nlp, youtube_splits, tmp_path, monkeypatch):
    monkeypatch.setattr(parse_module, "_MIN_TEXTS_PER_PROCESS", 10)
    texts = youtube_splits.train["text"].iloc[:60].tolist()
    one = parse_texts(texts, nlp, name="p")
    cache = ParseCache(tmp_path)
    two = parse_texts(texts, nlp, name="p", cache=cache, n_process=2)
    assert [_annotations(d) for d in two] == [_annotations(d) for d in one]
    calls = _count_pipes(monkeypatch, nlp)
    cached = parse_texts(texts, nlp, name="p", cache=cache, n_process=2)
    assert calls == [] and [_annotations(d) for d in cached] == [_annotations(d) for d in one]


def test_pipeline_key_names_the_enabled_components(nlp):
    name = resolve_spacy_model()
    without_ner = load_pipeline(name, ("ner",))
    assert "ner" not in without_ner.pipe_names
    assert pipeline_key(nlp, name) != pipeline_key(without_ner, name)


_SNORKEL_NLP = {}


def _snorkel_nlp_lf():
    # Snorkel configures one spaCy preprocessor per class: build the LF once.
    if "lf" not in _SNORKEL_NLP:
        @nlp_labeling_function(language=resolve_spacy_model(), disable=["lemmatizer"])
        def has_person(x):
            return 0 if any(ent.label_ == "PERSON" for ent in x.doc.ents) else -1

        _SNORKEL_NLP["lf"] = has_person
    return _SNORKEL_NLP["lf"]


def test_snorkel_nlp_labeling_functions_use_the_shared_cached_parse(youtube_splits, tmp_path, monkeypatch):
    lf = _snorkel_nlp_lf()
    frame = youtube_splits.train.iloc[:150]
    theirs = PandasLFApplier([lf]).apply(frame, progress_bar=False)
    ours = apply_lfs([lf], frame, cardinality=2, cache=ParseCache(tmp_path))
    np.testing.assert_array_equal(ours.L, theirs)
    keys = list((tmp_path / "spacy").iterdir())
    assert len(keys) == 1, "one pipeline (without the lemmatizer) parsed"
    assert "lemmatizer" not in parse_module.load_pipeline(resolve_spacy_model(), ("lemmatizer",)).pipe_names
