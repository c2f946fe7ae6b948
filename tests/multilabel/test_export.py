"""ONNX export of the one-vs-rest end model: the same probabilities and sets, or a clear refusal."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.errors import ArtifactError
from labeling.multilabel.end_models import OneVsRestTextClassifier
from labeling.multilabel.export import OnnxMultiLabelClassifier, export_multilabel_onnx

from .conftest import CLASSES, TEXTS


def _fitted(family: str) -> OneVsRestTextClassifier:
    rows = [(s, t.format(i=i)) for i in range(12) for s, t in TEXTS.items()]
    Y = np.array([[int(c in s) for c in range(3)] for s, _ in rows], dtype=float)
    Y[:, 2] = 0  # a class no training row carries: served at its constant
    texts = [t for _, t in rows]
    return OneVsRestTextClassifier(family).fit(texts, Y).fit_thresholds(texts, Y.astype(np.int8))


def test_export_gives_the_same_probabilities_and_sets(tmp_path):
    pytest.importorskip("onnxruntime")
    model = _fitted("word")
    export_multilabel_onnx(model, tmp_path / "onnx", CLASSES)
    loaded = OnnxMultiLabelClassifier(tmp_path / "onnx")
    texts = ["a song at the stadium goal 99", "hot pizza 3", "unseen words"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    assert (loaded.predict(texts) == model.predict(texts)).all() and loaded.class_names == list(CLASSES)


def test_a_hashed_model_is_refused_saying_why_and_what_exports(tmp_path):
    with pytest.raises(ArtifactError, match="hashes its n-grams.*word_hashed"):
        export_multilabel_onnx(_fitted("word_hashed"), tmp_path / "onnx", CLASSES)
    assert not (tmp_path / "onnx").exists()


def test_export_onnx_command_exports_a_multilabel_run(tiny_multilabel, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from labeling.cli import main
    from labeling.config import load_config
    from labeling.pipeline.retrain import run_retrain

    result = run_retrain(load_config(tiny_multilabel))  # the tiny project's end model: word n-grams
    assert main(["export-onnx", "--config", str(tiny_multilabel), result.run_id, str(tmp_path / "out")]) == 0
    loaded = OnnxMultiLabelClassifier(tmp_path / "out")
    assert loaded.predict(["a song at the stadium goal 1"]).tolist() == [[1, 1, 0]]
