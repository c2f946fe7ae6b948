"""The spaCy NER end model's options: the lexicon ruler, the tok2vec settings, saving."""

from __future__ import annotations

import pytest

from labeling.errors import ConfigError
from labeling.spans.end_model import SpacyNER, make_doc

TYPES = ("Chemical", "Disease")


def _docs(model, n=12):
    vocab = model.blank().vocab
    docs = [make_doc(vocab, ["the", "drug", f"x{d % 3}", "causes", "pain", "."], [(2, 3, 0), (4, 5, 1)], TYPES)
            for d in range(n)]
    return docs[: n // 2], docs[n // 2:]


def _fit(**params):
    model = SpacyNER(TYPES, max_steps=2, eval_frequency=1, batch_size=50, width=16, depth=1, **params)
    return model.fit(*_docs(model))


def test_a_ruler_before_the_ner_sets_the_lexicon_entities_of_an_untrained_ner(tmp_path):
    model = _fit(ruler="before", lexicon_min_count=2, lexicon_min_ratio=0.5)
    assert model.ruler_ == {"mode": "before", "min_count": 2, "min_ratio": 0.5, "patterns": 4}
    # document rules ("auto") are scored with the ruler; dev has nothing for one to add, so
    # the simplest wins the tie
    assert {r[3] for r in model.ruler_scores_} == {"none", "abbreviations", "repeats", "abbreviations+repeats"}
    assert model.doc_rules_ == "none"
    # every token is a lexicon string, so the NER has nothing left to label
    assert model.predict_token_spans([["PAIN", "x2"]])[0] == [(0, 1, 1), (1, 2, 0)]
    text = model.predict_text(["x0 pain"])[0]
    assert [(s["start"], s["end"], s["label"], s["score"]) for s in text] == [(0, 2, "Chemical", 1.0),
                                                                             (3, 7, "Disease", 1.0)]
    files = model.save(tmp_path / "m")
    loaded = SpacyNER.load(tmp_path / "m", files)
    assert loaded.ruler_ == model.ruler_ and "entity_ruler" in loaded.nlp_.pipe_names
    probe = [["PAIN", "and", "x2"], ["the", "drug", "x1", "causes", "pain"]]
    assert loaded.predict_token_spans(probe) == model.predict_token_spans(probe)


def test_auto_keeps_the_ruler_setting_with_the_best_dev_f1():
    model = _fit(ruler="auto")
    # dev repeats train's strings, so a lexicon is exact there and beats two steps of NER
    assert model.ruler_["mode"] in {"before", "after"} and model.dev_f1_ == 1.0


def test_no_ruler_is_the_ner_alone():
    model = _fit(ruler="off")
    assert model.ruler_["mode"] == "off" and "entity_ruler" not in model.nlp_.pipe_names


def test_document_rules_add_short_forms_with_their_long_forms_score_and_survive_saving(tmp_path):
    model = _fit(ruler="before", lexicon_min_count=2, doc_rules="abbreviations")
    text = "x1 (XA) causes pain; XA again"
    # the ruler marks x1 and pain; "XA" is defined by "x1 ( XA )" and marked at both places
    assert model.predict_token_spans([text.replace("(", "( ").replace(")", " )").replace(";", " ;").split()])[0] == [
        (0, 1, 0), (2, 3, 0), (5, 6, 1), (7, 8, 0)]
    got = [(s["start"], s["end"], s["label"], s["score"]) for s in model.predict_text([text])[0]]
    assert got == [(0, 2, "Chemical", 1.0), (4, 6, "Chemical", 1.0), (15, 19, "Disease", 1.0), (21, 23, "Chemical", 1.0)]
    loaded = SpacyNER.load(tmp_path / "m", model.save(tmp_path / "m"))
    assert loaded.doc_rules_ == "abbreviations" and loaded.predict_text([text]) == model.predict_text([text])


@pytest.mark.parametrize("params", [{"ruler": "sometimes"}, {"doc_rules": "sometimes"}, {"batch_size": 0}, {"depth": 0}, {"embed_scale": 0}])
def test_bad_settings_are_refused_before_training(params):
    model = SpacyNER(TYPES, **params)
    with pytest.raises(ConfigError):
        model.fit(*_docs(model))


def test_a_source_tok2vec_must_be_an_installed_pipeline():
    model = SpacyNER(TYPES, source_tok2vec="no_such_pipeline_package", max_steps=1)
    with pytest.raises(ConfigError, match="no_such_pipeline_package"):
        model.fit(*_docs(model))
