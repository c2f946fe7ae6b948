"""Fixtures of the serving tests: one trained run of the example project per session, and a
second version of it (the same artifacts under another run id), so a swap costs no training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labeling import RunRecord, RunStore, load_config, run_retrain

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "projects" / "youtube_spam" / "project.toml"


def _copy_run(store_path: Path, artifacts: Path, run_id: str, new_id: str) -> None:
    """Record ``run_id``'s models again under ``new_id``: a second servable version."""
    shutil.copytree(artifacts / run_id, artifacts / new_id)
    with RunStore(store_path) as store:
        run = store.get_run(run_id)
        store.record_run(RunRecord(
            # Older than the original, so "the latest run" is the original whichever a worker sees first.
            id=new_id, created_at="2000-01-01T00:00:00+00:00", project=run["project"], seed=run["seed"], config=run["config"],
            dataset_version=run["dataset_version"], dataset_source=run["dataset_source"],
            split_sizes=run["split_sizes"], lf_set_version=run["lf_set_version"],
            lfs=tuple((lf["name"], lf["version"]) for lf in run["lfs"]), matrix_hashes=run["matrix_hashes"],
            label_model=run["label_model"], end_model=run["end_model"],
            metrics=tuple({k: v for k, v in m.items() if k != "run_id"} for m in run["metrics"]), lf_stats=(),
            artifacts=tuple((a["name"], a["path"].replace(f"/{run_id}/", f"/{new_id}/"), a["sha256"])
                            for a in run["artifacts"]),
        ))


@pytest.fixture(scope="session")
def project_paths(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("serving")
    # these tests are about the end model with LF votes in the background (what the example serves on
    # its dev tie), so they pin it whatever dev chooses; the backoff has its own test
    overrides = [f'project.store="{root / "s.db"}"', f'project.artifacts="{root / "a"}"',
                 'serving.predictor="end_model"']
    return {"root": root, "overrides": overrides, "store": root / "s.db"}


@pytest.fixture(scope="session")
def served_project(project_paths):
    root, overrides = project_paths["root"], project_paths["overrides"]
    result = run_retrain(load_config(CONFIG, overrides))
    second = result.run_id + "-b"
    _copy_run(root / "s.db", root / "a", result.run_id, second)
    return {"root": root, "overrides": overrides, "store": root / "s.db", "runs": (result.run_id, second)}
