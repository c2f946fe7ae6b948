"""The loop closes on YouTube: weak LFs -> 50 reviews in a real Label Studio -> refine -> retrain."""

from __future__ import annotations

import secrets

from pipelines.close_loop import run_loop


def test_reviews_refinement_and_gold_raise_test_accuracy(label_studio, youtube_config_path, tmp_path, monkeypatch):
    url, key = label_studio
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    lines: list[str] = []
    result = run_loop(str(youtube_config_path), tmp_path, n=50, title=f"loop {secrets.token_hex(4)}", log=lines.append)
    assert (result.pushed, result.annotated) == (50, 50)
    assert result.accepted_lfs  # refinement added LFs the dev split confirms
    assert result.after > result.before + 0.01, (result.before, result.after)
    assert any(line.startswith("end model test accuracy: before") for line in lines)
    assert (tmp_path / "refined_lfs.py").read_text().count("@labeling_function()") == len(result.accepted_lfs)
