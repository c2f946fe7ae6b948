"""The loop closes on YouTube: weak LFs -> 50 reviews in a real Label Studio -> refine -> retrain."""

from __future__ import annotations

import pytest

from labeling.config import load_config
from labeling.errors import ConfigError
from labeling.review.jobs import label_studio_from_env, push_review, review_title
from pipelines.close_loop import run_loop, simulation_title


def test_the_loop_refuses_the_projects_own_review_project(youtube_config_path, tmp_path):
    users = review_title(load_config(youtube_config_path))
    with pytest.raises(ConfigError, match="never writes into it"):
        run_loop(str(youtube_config_path), tmp_path, title=users)
    assert simulation_title(load_config(youtube_config_path)) != users
    assert not (tmp_path / "loop.db").exists()  # refused before anything was written


def test_reviews_refinement_and_gold_raise_test_accuracy(label_studio, youtube_config_path, tmp_path, monkeypatch):
    url, key = label_studio
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    # A person's review project for the same dataset, with one answer: the loop must not touch it.
    user = load_config(youtube_config_path, [f'project.store="{tmp_path / "user.db"}"'])
    users_review = label_studio_from_env(user)
    push_review(user, users_review, strategy="entropy", n=50)
    before_tasks = users_review.existing_tasks()
    key = min(before_tasks)
    users_review.annotate(int(before_tasks[key]["id"]), 0)
    lines: list[str] = []
    result = run_loop(str(youtube_config_path), tmp_path / "loop", n=50, log=lines.append)
    after_tasks = users_review.existing_tasks()
    assert set(after_tasks) == set(before_tasks)
    assert [len(after_tasks[k]["annotations"]) for k in sorted(after_tasks)] == \
        [int(k == key) for k in sorted(before_tasks)]
    assert [a.label for a in users_review.annotations()] == [0]
    assert any(simulation_title(user) in line for line in lines)
    assert (result.pushed, result.annotated, result.skipped) == (50, 50, 0)
    assert result.accepted_lfs  # refinement added LFs the dev split confirms
    assert result.after > result.before + 0.01, (result.before, result.after)
    assert any(line.startswith("end model test accuracy: before") for line in lines)
    assert (tmp_path / "loop" / "refined_lfs.py").read_text().count("@labeling_function()") == len(result.accepted_lfs)
