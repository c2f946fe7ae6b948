"""The multi-label gold codec and dataset loader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling.config import load_config
from labeling.errors import DatasetError, LabelError
from labeling.multilabel.gold import decode_gold, encode_gold, gold_from_codes, gold_to_codes, load_multilabel_dataset, parse_gold

from ..conftest import write_project

CLASSES = ("sport", "music", "food")


def test_lists_strings_indices_empty_and_missing():
    values = [["sport", "food"], "music, food", [1], 2, [], "", "[]", None, float("nan"), ("0", "music")]
    Y = parse_gold(values, CLASSES)
    assert Y.tolist() == [[1, 0, 1], [0, 1, 1], [0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0],
                          [-1, -1, -1], [-1, -1, -1], [1, 1, 0]]


def test_the_separator_is_configurable():
    assert parse_gold(["sport|food"], CLASSES, separator="|").tolist() == [[1, 0, 1]]


def test_an_unknown_class_names_the_row_and_the_value():
    with pytest.raises(LabelError, match=r"row 'r2' has label 'sport,golf': 'golf' is not one"):
        parse_gold(["sport", "sport,golf"], CLASSES, ids=["r1", "r2"])


def test_codes_round_trip_and_sets_encode_by_name():
    Y = np.array([[1, 0, 1], [0, 0, 0], [-1, -1, -1]], dtype=np.int8)
    assert gold_to_codes(Y).tolist() == [5, 0, -1]
    assert np.array_equal(gold_from_codes(gold_to_codes(Y), 3), Y)
    assert encode_gold(["food", "sport"], CLASSES) == [0, 2] and decode_gold(Y[0], CLASSES) == ["sport", "food"]


def test_a_jsonl_list_column_loads_into_splits(tmp_path):
    with open(tmp_path / "rows.jsonl", "w", encoding="utf-8") as handle:
        for i in range(40):
            labels = [["sport"], ["music", "food"], []][i % 3] if i < 36 else None
            handle.write(json.dumps({"text": f"row {i}", "labels": labels}) + "\n")
    path = write_project(tmp_path, """
[project]
name = "jl"
task = "multi_label"
classes = ["sport", "music", "food"]
[dataset]
source = "file"
path = "rows.jsonl"
label_field = "labels"
split = "random"
dev_size = 0.25
test_size = 0.25
""")
    splits, Ys = load_multilabel_dataset(load_config(path))
    assert sum(splits.sizes().values()) == 40
    assert (Ys["dev"] >= 0).all() and (Ys["test"] >= 0).all()
    assert (Ys["train"][:, 0] < 0).sum() == 4  # the unlabelled rows stay in train
    assert {tuple(r) for r in Ys["dev"]} <= {(1, 0, 0), (0, 1, 1), (0, 0, 0)}


def test_a_missing_label_column_is_named(tmp_path):
    (tmp_path / "rows.csv").write_text("text,label\na,sport\n", encoding="utf-8")
    path = write_project(tmp_path, """
[project]
name = "x"
task = "multi_label"
classes = ["sport", "music"]
[dataset]
source = "file"
path = "rows.csv"
label_field = "labels"
""")
    with pytest.raises(DatasetError, match="label column 'labels' not found"):
        load_multilabel_dataset(load_config(path))
