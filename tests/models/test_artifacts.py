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


# --- every load failure is an ArtifactError naming the file ------------------------------

def _resign(folder) -> None:
    """Rewrite the manifest's checksums for the files as they are now, as an attacker
    (or a buggy writer) with write access could: the manifest alone then vouches for them."""
    from labeling.data.datasets import sha256_file

    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"] if (folder / name).exists()}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _edit_manifest(edit):
    def apply(folder):
        manifest = json.loads((folder / MANIFEST).read_text())
        edit(manifest)
        (folder / MANIFEST).write_text(json.dumps(manifest))
    return apply


def _replace(name: str, data: bytes):
    def apply(folder):
        (folder / name).write_bytes(data)
        _resign(folder)
    return apply


@pytest.mark.parametrize(
    "kind, fault, message",
    [
        ("sklearn", _edit_manifest(lambda m: m.update(file=m.pop("files"))), r"manifest\.json: 'files' must map"),
        ("sklearn", _edit_manifest(lambda m: m.pop("kind")), r"manifest\.json: 'kind' \(text\) and 'meta'"),
        ("sklearn", _edit_manifest(lambda m: m["meta"].pop("params")), r"manifest\.json: 'meta\.params'"),
        ("sklearn", _edit_manifest(lambda m: m["meta"]["params"].update(bogus=1)), r"manifest\.json: cannot be loaded: TypeError"),
        ("sklearn", _edit_manifest(lambda m: m["files"].clear()), r"manifest\.json: a sklearn artifact needs \['pipeline\.skops'\]"),
        ("sklearn", _edit_manifest(lambda m: m["files"].update({"../x": "0" * 64})), r"plain file names"),
        ("sklearn", lambda f: (f / MANIFEST).write_bytes(b"\xff\xfe not json"), r"cannot read .*manifest\.json"),
        ("sklearn", lambda f: (f / "pipeline.skops").unlink(), r"pipeline\.skops is missing"),
        ("sklearn", _replace("pipeline.skops", b"this is not a zip file"), r"pipeline\.skops: cannot be loaded: BadZipFile"),
        ("torch", _replace("weights.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"), r"weights\.safetensors: cannot be loaded"),
        ("torch", _replace("vocabulary.json", b"[1, 2]"), r"vocabulary\.json: cannot be loaded"),
        ("label", _replace("label_model.json", b'{"type": "MajorityVote", "wrong": 1}'), r"label_model\.json: label model dict needs keys"),
        ("label", _replace("label_model.json", b'{"type": "NoSuchModel", "params": {}, "learned": {}}'), r"label_model\.json: unknown label model type"),
    ],
    ids=["manifest-wrong-key", "manifest-no-kind", "manifest-no-params", "manifest-bad-params",
         "manifest-lists-no-model", "manifest-path-escape", "manifest-not-utf8", "missing-file", "pipeline-not-a-zip",
         "weights-not-safetensors", "vocabulary-not-a-dict", "label-model-wrong-key", "label-model-unknown-type"],
)
def test_every_load_failure_is_an_artifact_error_naming_the_file(kind, fault, message, tmp_path):
    folder = tmp_path / "m"
    if kind == "label":
        save_label_model(MajorityVote(cardinality=2).fit(np.array([[0, 1], [1, -1]])), folder)
        load = load_label_model
    else:
        model = SklearnTextClassifier(2) if kind == "sklearn" else TorchTextClassifier(2, epochs=2)
        save_end_model(model.fit(TEXTS, Y), folder)
        load = load_end_model
    fault(folder)
    with pytest.raises(ArtifactError, match=message) as caught:
        load(folder)
    assert str(folder) in str(caught.value)


def test_a_model_rewritten_with_its_manifest_is_refused_against_the_recorded_checksums(tmp_path):
    recorded = save_end_model(SklearnTextClassifier(2).fit(TEXTS, Y), tmp_path / "m")
    # Another model (trained on flipped labels) written over the files, its own manifest included.
    save_end_model(SklearnTextClassifier(2).fit(TEXTS, 1 - Y), tmp_path / "other")
    for path in (tmp_path / "other").iterdir():
        (tmp_path / "m" / path.name).write_bytes(path.read_bytes())
    swapped = load_end_model(tmp_path / "m")  # the manifest alone vouches for the swap...
    assert (swapped.predict(TEXTS) == 1 - Y).all()
    with pytest.raises(ArtifactError, match=r"manifest\.json: sha256 does not match the one recorded with the run"):
        load_end_model(tmp_path / "m", recorded)  # ...the run's record does not


def test_recorded_checksums_are_required_for_every_recorded_file(tmp_path):
    recorded = save_end_model(SklearnTextClassifier(2).fit(TEXTS, Y), tmp_path / "m")
    with pytest.raises(ArtifactError, match=r"manifest\.json: no sha256 recorded"):
        load_end_model(tmp_path / "m", {k: v for k, v in recorded.items() if k != MANIFEST})
    (tmp_path / "m" / "pipeline.skops").unlink()
    with pytest.raises(ArtifactError, match=r"pipeline\.skops is missing"):
        load_end_model(tmp_path / "m", recorded)


@pytest.mark.parametrize("hash_bits", [0, 18], ids=["vocabulary", "hashed"])
def test_a_model_fitted_on_shared_features_round_trips_through_skops(hash_bits, tmp_path):
    """End-model selection fits on features vectorised once (``fit_features``); hashed
    n-grams (the scalable ``word_hashed`` family) hold no vocabulary. Either way the saved
    pipeline loads through skops (no pickle) and predicts as trained, and as ``fit``."""
    texts = ["great film", "awful film", "great acting", "awful plot", "loved it", "hated it"] * 5
    y = np.array([1, 0, 1, 0, 1, 0] * 5)
    soft = np.column_stack([1 - y * 0.8 - 0.1, y * 0.8 + 0.1])
    settings = dict(analyzer="word", ngram_min=1, ngram_max=2, C=10.0, hash_bits=hash_bits)
    model = SklearnTextClassifier(2, **settings)
    vectorizer = model.vectorizer()
    model.fit_features(vectorizer, vectorizer.fit_transform(texts), soft)
    direct = SklearnTextClassifier(2, **settings).fit(texts, soft)
    probe = ["great plot", "awful acting", "unseen words"]
    np.testing.assert_allclose(model.predict_proba(probe), direct.predict_proba(probe), atol=1e-12)
    assert model.predict(probe)[:2].tolist() == [1, 0]
    save_end_model(model, tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    loaded = load_end_model(tmp_path / "m")
    assert loaded.hash_bits == hash_bits
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-12)
    if hash_bits:  # the features are 2**hash_bits columns, whatever the texts
        assert loaded.pipeline_.named_steps["logreg"].coef_.shape == (1, 2**hash_bits)
