"""The review jobs' wiring (labeling/review/jobs.py)."""

from __future__ import annotations

import dataclasses

import pytest

from labeling.config import ProjectConfig
from labeling.errors import ConfigError
from labeling.models.end_models import SklearnTextClassifier, TorchTextClassifier
from labeling.review.jobs import label_error_model


def _config(**end_model) -> ProjectConfig:
    config = ProjectConfig(name="p", classes=("ham", "spam"), seed=7)
    return dataclasses.replace(config, end_model=dataclasses.replace(config.end_model, **end_model))


@pytest.mark.parametrize("candidates, kind", [(("word_hashed", "word_char"), SklearnTextClassifier),
                                              (("embedding", "word"), TorchTextClassifier)])
def test_with_auto_the_label_error_check_uses_the_first_candidate_family(candidates, kind):
    model = label_error_model(_config(type="auto", candidates=candidates))
    assert isinstance(model, kind) and model.random_state == 7 and model.cardinality == 2


def test_with_fixed_settings_the_label_error_check_uses_them():
    model = label_error_model(_config(type="sklearn", analyzer="word", C=3.0))
    assert isinstance(model, SklearnTextClassifier) and (model.analyzer, model.C) == ("word", 3.0)


def test_an_unknown_first_candidate_is_a_config_error():
    with pytest.raises(ConfigError, match="nope"):
        label_error_model(_config(type="auto", candidates=("nope",)))
