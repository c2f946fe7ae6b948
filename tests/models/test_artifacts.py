from __future__ import annotations

import json

import numpy as np
import pytest

from labeling import (
    ArtifactError,
    MajorityVote,
    SklearnTextClassifier,
    TorchTextClassifier,
    load_end_model,
    load_label_model,
    save_end_model,
    save_label_model,
)
from labeling.models.artifacts import MANIFEST

TEXTS = ["check out my channel", "subscribe now", "love this song", "great voice", "free gift card", "so good"]
Y = np.array([1, 1, 0, 0, 1, 0])


@pytest.mark.parametrize(
    "model",
    [SklearnTextClassifier(2, ngram_max=2), TorchTextClassifier(2, epochs=5), TorchTextClassifier(3, hidden=8, epochs=5)],
    ids=["sklearn", "torch-linear", "torch-mlp-3class"],
)
def test_round_trip_gives_identical_probabilities(model, tmp_path):
    y = Y if model.cardinality == 2 else np.array([0, 1, 2, 0, 1, 2])
    model.fit(TEXTS, y)
    files = save_end_model(model, tmp_path / "m")
    assert MANIFEST in files and all(len(h) == 64 for h in files.values())
    loaded = load_end_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    probe = TEXTS + ["never seen before"]
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-6)


def test_no_pickle_in_saved_files(tmp_path):
    save_end_model(SklearnTextClassifier(2).fit(TEXTS, Y), tmp_path / "s")
    save_end_model(TorchTextClassifier(2, epochs=2).fit(TEXTS, Y), tmp_path / "t")
    for path in list((tmp_path / "s").iterdir()) + list((tmp_path / "t").iterdir()):
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"\x80\x05", f"{path} looks like a pickle"


def test_tampered_file_is_refused(tmp_path):
    save_end_model(SklearnTextClassifier(2).fit(TEXTS, Y), tmp_path / "m")
    target = tmp_path / "m" / "pipeline.skops"
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        load_end_model(tmp_path / "m")


def test_untrusted_type_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import FunctionTransformer

    model = SklearnTextClassifier(2).fit(TEXTS, Y)
    save_end_model(model, tmp_path / "m")
    # Swap in a pipeline holding a function reference skops does not trust,
    # and re-sign the manifest as an attacker with write access could.
    model.pipeline_.steps.insert(0, ("f", FunctionTransformer(json.loads)))
    sio.dump(model.pipeline_, tmp_path / "m" / "pipeline.skops")
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    from labeling.data.datasets import sha256_file

    manifest["files"]["pipeline.skops"] = sha256_file(tmp_path / "m" / "pipeline.skops")
    (tmp_path / "m" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="untrusted types"):
        load_end_model(tmp_path / "m")


def test_missing_and_existing_folders(tmp_path):
    with pytest.raises(ArtifactError, match="cannot read"):
        load_end_model(tmp_path / "nothing")
    (tmp_path / "m").mkdir()
    with pytest.raises(FileExistsError):
        save_end_model(SklearnTextClassifier(2).fit(TEXTS, Y), tmp_path / "m")


def test_label_model_round_trip(tmp_path):
    L = np.array([[0, 1, -1], [1, 1, 1], [-1, -1, 0], [-1, -1, -1]])
    model = MajorityVote(cardinality=2).fit(L)
    save_label_model(model, tmp_path / "lm")
    np.testing.assert_allclose(load_label_model(tmp_path / "lm").predict_proba(L), model.predict_proba(L))
