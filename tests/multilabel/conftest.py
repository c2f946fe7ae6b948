"""A tiny multi-label project: 90 short texts, classes sport/music/food, 5 LFs (one returns a list, one NOT)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ..conftest import FIXTURES, write_project

TEXTS = {
    (0,): "what a goal in the match {i}",
    (1,): "a new song on guitar {i} from the studio",
    (2,): "hot pizza and soup {i}",
    (0, 1): "a song at the stadium goal {i}",
    (1, 2): "guitar song about pizza {i}",
    (): "nothing to see {i}",
}
CLASSES = ("sport", "music", "food")

PROJECT = """
[project]
name = "tiny_multilabel"
task = "multi_label"
classes = ["sport", "music", "food"]
seed = 3
metric = "{metric}"
store = "store.db"
artifacts = "artifacts"
[dataset]
source = "file"
path = "rows.csv"
label_field = "labels"
label_separator = "|"
split = "random"
dev_size = 0.3
test_size = 0.3
[lfs]
modules = ["lf_modules.multilabel_topics"]
root = "{root}"
cache = "none"
n_jobs = 1
[end_model]
type = "sklearn"
analyzer = "word"
"""


def write_tiny_multilabel(folder: Path, *, metric: str = "macro_f1", single: bool = False, rows: int = 90) -> Path:
    """The project TOML of a tiny multi-label project of ``rows`` rows in ``folder`` (``single``: every row one class)."""
    folder.mkdir(parents=True, exist_ok=True)
    sets = [s for s in TEXTS if len(s) == 1] if single else list(TEXTS)
    with open(folder / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels"])
        for i in range(rows):
            labels = sets[i % len(sets)]
            writer.writerow([TEXTS[labels].format(i=i), "|".join(CLASSES[c] for c in labels) or "[]"])
    return write_project(folder, PROJECT.format(metric=metric, root=FIXTURES))


@pytest.fixture
def tiny_multilabel(tmp_path) -> Path:
    return write_tiny_multilabel(tmp_path / "project")
