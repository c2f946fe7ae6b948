import json
from pathlib import Path

import numpy as np
import pytest

from labeling.errors import DatasetError
from labeling.data.wrench import WrenchDataset, load_wrench


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from labeling.settings import SHARED_DATA
    from labeling.settings import data_dir as configured

    return configured() or SHARED_DATA


def _write(folder: Path, splits=None, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    row = {"label": 1, "weak_labels": [1, -1, 0], "data": {"text": "hi"}}
    splits = splits or {}
    for name in ("train", "valid", "test"):
        content = splits.get(name, {"0": row, "7": {**row, "label": 0, "data": {"text": "yo"}}})
        (folder / f"{name}.json").write_text(content if isinstance(content, str) else json.dumps(content))
    (folder / "label.json").write_text(json.dumps(labels or {"0": "ham", "1": "spam"}))
    return folder


def test_load_tiny(tmp_path):
    ds = load_wrench(_write(tmp_path / "toy"))
    assert isinstance(ds, WrenchDataset)
    assert ds.name == "toy" and ds.class_names == ("ham", "spam") and ds.cardinality == 2
    assert ds.train.ids == ("0", "7") and ds.train.texts == ("hi", "yo")
    np.testing.assert_array_equal(ds.train.L, [[1, -1, 0], [1, -1, 0]])
    np.testing.assert_array_equal(ds.train.y, [1, 0])
    assert ds.train.L.dtype == np.int64 and not ds.train.L.flags.writeable


@pytest.mark.parametrize(
    "content, needle",
    [
        ('{"0": {"label": 1', "invalid JSON"),
        ({"0": {"label": 1, "weak_labels": [1, 0, 0], "data": {"text": "a"}},
          "x9": {"label": 1, "weak_labels": [1, 0], "data": {"text": "b"}}}, "'x9'"),
        ({"5": {"label": 1, "weak_labels": [1, 3, 0], "data": {"text": "a"}}}, "'5'"),
        ({"5": {"label": 4, "weak_labels": [1, 0, 0], "data": {"text": "a"}}}, "label 4"),
        ({"5": {"label": 1, "data": {"text": "a"}}}, "weak_labels"),
        ([1, 2], "object"),
    ],
)
def test_bad_split_names_file_and_row(tmp_path, content, needle):
    folder = _write(tmp_path / "bad", splits={"valid": content})
    with pytest.raises(DatasetError, match="valid.json") as err:
        load_wrench(folder)
    assert needle in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_wrench(tmp_path / "nope")
    folder = _write(tmp_path / "nolabel")
    (folder / "test.json").unlink()
    with pytest.raises(DatasetError, match="test.json"):
        load_wrench(folder)
    folder = _write(tmp_path / "badlabels", labels={"0": "a", "2": "b"})
    with pytest.raises(DatasetError, match="label.json"):
        load_wrench(folder)


def test_real_wrench_sizes(data_dir):
    expected = {"youtube_1586": (1586, 120, 250, 10, 2), "sms": (4571, 500, 500, 73, 2),
                "trec": (5033, 500, 500, 68, 6), "semeval": (1749, 178, 600, 164, 9)}
    for folder, (n_train, n_valid, n_test, n_lfs, k) in expected.items():
        path = data_dir / "wrench" / folder
        if not path.is_dir():
            pytest.skip(f"WRENCH data not found at {path}")
        ds = load_wrench(path)
        assert (len(ds.train), len(ds.valid), len(ds.test), ds.n_lfs, ds.cardinality) == (
            n_train, n_valid, n_test, n_lfs, k)


WRENCH_PROJECT = """
[project]
name = "wrench_youtube"
classes = ["ham", "spam"]
[dataset]
source = "wrench"
path = "{path}"
[label_model]
type = "majority_vote"
[end_model]
type = "sklearn"
"""


@pytest.mark.slow  # ~10 s: a whole WRENCH retrain; the loader and its vote columns keep their unit tests here
def test_wrench_source_runs_end_to_end_with_stored_votes_as_lf_columns(data_dir, tmp_path):
    from labeling import load_config, run_retrain

    folder = data_dir / "wrench" / "youtube"
    (tmp_path / "project.toml").write_text(WRENCH_PROJECT.format(path=folder), encoding="utf-8")
    config = load_config(tmp_path / "project.toml")
    result = run_retrain(config, record=False)
    ds = load_wrench(folder)
    assert result.split_sizes == {"train": len(ds.train), "dev": len(ds.valid), "test": len(ds.test)}
    assert [name for name, _ in result.lfs] == [f"wrench_lf_{j}" for j in range(ds.n_lfs)]
    assert all(version == "precomputed" for _, version in result.lfs)
    from labeling.matrix import label_matrix_hash

    assert result.matrix_hashes["train"] == label_matrix_hash(ds.train.L)
    # WRENCH's published majority vote on youtube is 84.0 (random ties); the end model beats it
    assert result.metric("majority vote") == pytest.approx(0.84, abs=0.02)
    assert result.metric("end model") > result.metric("majority vote")


def test_precomputed_vote_out_of_range_names_column_and_row():
    import pandas as pd

    from labeling.data.wrench import precomputed_votes

    frame = pd.DataFrame({"id": ["a", "b"], "crowd": [1, 2]})
    with pytest.raises(DatasetError, match=r"'crowd', row 'b'.*0\.\.1 or -1"):
        precomputed_votes(frame, ["crowd"], 2)
    np.testing.assert_array_equal(precomputed_votes(frame.iloc[:1], ["crowd"], 2), [[1]])


SENTENCE = "The chapter of canons met in the basilica ."  # chapter: 4..11, canons: 15..21


@pytest.mark.parametrize("relation_text, expected", [
    ("sentence", SENTENCE),
    ("entity_markers", "The [E2] chapter [/E2] of [E1] canons [/E1] met in the basilica ."),
    ("between", "E2FIRST canons ENT1 chapter ENT2 BETWEEN of"),
])
def test_a_relation_row_is_rendered_as_named(relation_text, expected):
    from labeling.data.wrench import render_relation

    assert render_relation(SENTENCE, [15, 21], [4, 11], relation_text) == expected


def test_bad_relation_settings_and_spans_are_named(tmp_path):
    from labeling.data.wrench import render_relation
    from labeling.errors import ConfigError

    with pytest.raises(ConfigError, match="'mintz'.*between"):
        render_relation(SENTENCE, [15, 21], [4, 11], "mintz")
    with pytest.raises(ConfigError, match="relation_text"):
        load_wrench(_write(tmp_path / "ok"), relation_text="mintz")
    row = {"label": 1, "weak_labels": [1, -1, 0], "data": {"text": SENTENCE, "span1": [15, 99], "span2": [4, 11]}}
    with pytest.raises(DatasetError, match=r"train\.json, id 'r1': entity span \[15, 99\]"):
        load_wrench(_write(tmp_path / "bad", splits={"train": {"r1": row}}))


def test_relation_rows_load_as_rendered_texts_other_rows_as_they_are(tmp_path):
    row = {"label": 1, "weak_labels": [1, -1, 0], "data": {"text": SENTENCE, "span1": [15, 21], "span2": [4, 11]}}
    folder = _write(tmp_path / "rel", splits={"train": {"r1": row}})
    assert load_wrench(folder).train.texts == ("The [E2] chapter [/E2] of [E1] canons [/E1] met in the basilica .",)
    assert load_wrench(folder, relation_text="between").train.texts == ("E2FIRST canons ENT1 chapter ENT2 BETWEEN of",)
    assert load_wrench(folder, relation_text="sentence").train.texts == (SENTENCE,)
    assert load_wrench(folder).valid.texts == ("hi", "yo")  # no spans: the text as it is

