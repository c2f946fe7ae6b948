"""A label-schema change carries a real Label Studio project along: no answer is lost."""

from __future__ import annotations

import secrets

import pandas as pd
import pytest

from labeling.cli import main
from labeling.config import load_config
from labeling.review.gold import review_gold
from labeling.review.jobs import label_studio_from_env, pull_review, push_review

from ..conftest import write_project

LFS = '''from snorkel.labeling import labeling_function

ABSTAIN, HAM, SPAM = -1, 0, 1


@labeling_function()
def song(x):
    return HAM if "song" in x.text else ABSTAIN


@labeling_function()
def channel(x):
    return SPAM if "channel" in x.text else ABSTAIN
'''


@pytest.fixture
def ls_project(tmp_path, label_studio, monkeypatch):
    url, key = label_studio
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    rows = [f"check my channel {i}" if i % 2 else f"nice song {i}" for i in range(64)]
    pd.DataFrame({"id": [f"r{i}" for i in range(64)], "text": rows,
                  "label": ["spam" if i % 2 else "ham" for i in range(64)],
                  "split": ["train"] * 56 + ["dev"] * 4 + ["test"] * 4}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "yt_lfs.py").write_text(LFS, encoding="utf-8")
    return write_project(tmp_path, f"""
[project]
name = "lsschema"
classes = ["ham", "spam"]
store = "store.db"
artifacts = "artifacts"
[dataset]
source = "file"
path = "data.csv"
label_field = "label"
id_field = "id"
split = "column"
split_field = "split"
[lfs]
modules = ["yt_lfs"]
root = "."
[label_model]
type = "majority_vote"
[review]
title = "schema {secrets.token_hex(4)}"
""")


def _answers(review) -> dict[str, list[str]]:
    return {key: [c for a in task["annotations"] for r in a["result"] for c in r["value"]["choices"]]
            for key, task in review.existing_tasks(update_config=False).items()}


def test_rename_split_and_merge_keep_every_label_studio_answer(ls_project, capsys):
    config = load_config(ls_project)
    review = label_studio_from_env(config)
    push_review(config, review, strategy="random", n=50)
    tasks = review.existing_tasks()
    for i, key in enumerate(sorted(tasks)):
        review.annotate(int(tasks[key]["id"]), i % 2)
    assert pull_review(config, review)[0].stored == 50
    store = config.resolve(config.store)
    gold, _ = review_gold(store)

    assert main(["schema", "rename", "ham", "legit", "--config", str(ls_project)]) == 0
    assert "Label Studio: 25 answers renamed, 0 unlabelled" in capsys.readouterr().out
    config = load_config(ls_project)
    review = label_studio_from_env(config)
    assert 'value="legit"' in review.label_config() and 'value="ham"' not in review.label_config()
    assert sorted(c for cs in _answers(review).values() for c in cs) == ["legit"] * 25 + ["spam"] * 25
    result, _ = pull_review(config, review)  # all 50 answers survive, as gold with the same classes
    # (the 25 rewritten answers count as updated: Label Studio moved their updated_at)
    assert (result.stored, result.inserted, result.deleted) == (50, 0, 0)
    pd.testing.assert_frame_equal(review_gold(store)[0], gold)

    assert main(["schema", "split", "spam", "--into", "promo", "scam", "--yes", "--config", str(ls_project)]) == 0
    out = capsys.readouterr().out
    assert "review tasks to re-review (old label shown): 25" in out and "25 unlabelled" in out
    config = load_config(ls_project)
    review = label_studio_from_env(config)
    answers = _answers(review)
    assert sorted(c for cs in answers.values() for c in cs) == ["legit"] * 25
    requeued = [t for t in review.existing_tasks(update_config=False).values() if not t["annotations"]]
    assert len(requeued) == 25 and {t["data"]["previous_label"] for t in requeued} == {"spam"}
    assert pull_review(config, review)[0].stored == 25

    assert main(["schema", "merge", "promo", "scam", "--into", "spam", "--config", str(ls_project)]) == 0
    assert 'value="spam"' in label_studio_from_env(load_config(ls_project)).label_config()
