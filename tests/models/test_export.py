"""ONNX export of the scikit-learn end model: parity with scikit-learn on real YouTube texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeling import ArtifactError, SklearnTextClassifier, load_end_model
from labeling.cli import main
from labeling.models.export import OnnxTextClassifier, export_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def exported(recorded_youtube_run, tmp_path_factory):
    config, result = recorded_youtube_run
    folder = tmp_path_factory.mktemp("onnx") / "model"
    assert main(["export-onnx", result.run_id, str(folder), "--config", config.base_dir + "/project.toml",
                 "--set", f'project.store="{result.store_path}"']) == 0
    model = load_end_model(Path(result.artifacts["end_model/manifest.json"]["path"]).parent)
    return model, folder


def test_onnx_probabilities_match_scikit_learn(exported, youtube_frame):
    model, folder = exported
    texts = youtube_frame["text"].tolist()  # all 1,956 comments: train and held-out
    expected = model.predict_proba(texts)
    got = OnnxTextClassifier(folder).predict_proba(texts)
    assert got.shape == expected.shape == (1956, 2)
    gap = float(np.abs(got - expected).max())
    print(f"\nmax |p_onnx - p| over {len(texts)} YouTube comments: {gap:.3g}")
    assert gap < 1e-5


def test_the_manifest_names_the_classes(exported):
    _, folder = exported
    from labeling.models.artifacts import read_manifest

    assert read_manifest(folder)["meta"]["class_names"] == ["ham", "spam"]
    assert OnnxTextClassifier(folder).class_names == ["ham", "spam"]
    # the example serves its end model (a tie on dev goes to it): the export carries all it needs
    assert read_manifest(folder)["meta"]["lfs_not_carried"] == ""


def test_the_export_says_when_the_served_predictor_reads_lf_votes():
    from labeling.models.export import lfs_not_carried

    assert lfs_not_carried(None) == lfs_not_carried({"predictor": "end_model", "needs_lfs": False}) == ""
    note = lfs_not_carried({"predictor": "label_model_backoff", "needs_lfs": True})
    assert "serves 'label_model_backoff'" in note and "carries the end model only" in note
    assert 'serving.predictor = "end_model"' in note


def test_a_tampered_export_is_refused(exported, tmp_path):
    import shutil

    _, folder = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "classifier.onnx").write_bytes((copy / "classifier.onnx").read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        OnnxTextClassifier(copy)


def test_only_the_sklearn_end_model_exports(tmp_path):
    with pytest.raises(ArtifactError, match="scikit-learn end model"):
        export_onnx(object(), tmp_path / "x")


def test_a_union_or_embedding_model_is_refused_by_name(tmp_path):
    texts = ["check out my channel", "love this song", "subscribe now", "great voice"]
    model = SklearnTextClassifier(2, analyzer="word+char_wb").fit(texts, np.array([1, 0, 1, 0]))
    with pytest.raises(ArtifactError, match="analyzer='word\\+char_wb'"):
        export_onnx(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    hashed = SklearnTextClassifier(2, analyzer="word", ngram_min=1, ngram_max=2, hash_bits=10).fit(texts, [1, 0, 1, 0])
    with pytest.raises(ArtifactError, match="hashes them into 2\\*\\*10 columns"):
        export_onnx(hashed, tmp_path / "x")
