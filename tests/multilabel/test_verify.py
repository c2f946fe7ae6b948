"""``verify`` of multi-label data: separator problems and unknown class names, named with their rows."""

from __future__ import annotations

import csv

import pytest

from labeling.cli import main
from labeling.config import load_config
from labeling.multilabel.verify import label_value_findings, verify_multilabel_dataset

from .conftest import CLASSES


@pytest.mark.parametrize("value, code, row", [
    ("sport;music", "label_separator", "r1: 'sport;music'"),
    ("sport|jazz", "unknown_labels", "r1"),
    ("sport||music", "empty_label_item", "r1"),
    ("music|music", "repeated_label", "r1"),
])
def test_each_problem_is_named_with_its_row(value, code, row):
    findings = label_value_findings(["sport|music", value, None, "[]"], ["r0", "r1", "r2", "r3"], CLASSES, "|")
    assert [f.code for f in findings] == [code] and findings[0].examples == (row,)


def test_clean_values_give_no_finding():
    assert label_value_findings([["sport", 1], "food", "", "[]", None, "0|2"], list("abcdef"), CLASSES, "|") == []


def test_verify_command_on_a_multilabel_file(tiny_multilabel, capsys):
    config = load_config(tiny_multilabel)
    report = verify_multilabel_dataset(config)
    assert report.ok and set(report.class_counts["test"]) == {*CLASSES, "no class", "unlabelled"}
    rows = tiny_multilabel.parent / "rows.csv"
    lines = rows.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("|", ";")  # one set joined by another separator
    with open(rows, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text", "labels"], *(next(csv.reader([line])) for line in lines[1:])])
    assert main(["verify", "--config", str(tiny_multilabel)]) == 2
    out = capsys.readouterr().out
    assert "label_separator" in out and "line 6" in out and "';'" in out
