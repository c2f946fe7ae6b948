"""One place resolves the data folder and the spaCy pipeline for every entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labeling import settings
from labeling.errors import ConfigError, DatasetError
from labeling.settings import data_dir, installed_spacy_pipelines, require_data_dir, spacy_model

from .conftest import REPO


def test_data_folder_argument_then_env_then_shared_data_beside_the_checkout(tmp_path, monkeypatch):
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.setattr(settings, "SHARED_DATA", shared)
    monkeypatch.setenv("LABELING_DATA_DIR", str(tmp_path / "env"))
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("LABELING_DATA_DIR")
    assert data_dir() == shared
    monkeypatch.setattr(settings, "SHARED_DATA", tmp_path / "absent")
    assert data_dir() is None
    with pytest.raises(DatasetError, match="set LABELING_DATA_DIR"):
        require_data_dir(what="the IMDB reviews")
    monkeypatch.setenv("LABELING_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DatasetError, match="typo does not exist"):
        require_data_dir()


def test_the_default_checkout_layout_finds_shared_data():
    assert settings.SHARED_DATA == REPO.parent / "shared" / "data"


@pytest.mark.skipif("en_core_web_sm" in installed_spacy_pipelines(), reason="the official pipeline is installed")
def test_a_missing_default_pipeline_falls_back_to_an_installed_one_and_says_so_once():
    code = ("from labeling.settings import spacy_model\n"
            "print(spacy_model(), spacy_model('en_core_web_sm'), spacy_model('en-core-web-sm'))\n")
    env = {k: v for k, v in os.environ.items() if k != "LABELING_SPACY_MODEL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stand_in = installed_spacy_pipelines()[0]
    assert out.stdout.split() == [stand_in] * 3
    assert out.stderr.count("is not installed; using") == 1 and stand_in in out.stderr


def test_pip_style_names_are_normalised(monkeypatch):
    monkeypatch.delenv("LABELING_SPACY_MODEL", raising=False)
    name = installed_spacy_pipelines()[0]
    assert spacy_model(name.replace("_", "-")) == name
    monkeypatch.setenv("LABELING_SPACY_MODEL", name.replace("_", "-"))
    assert spacy_model("whatever") == name


def test_a_pipeline_folder_is_taken_as_given_whatever_its_name(tmp_path, monkeypatch):
    # a saved pipeline's path is not a package name: "-" and "." in it stay
    folder = tmp_path / "my-pipeline.v2"
    folder.mkdir()
    monkeypatch.setenv(settings.SPACY_MODEL_ENV, str(folder))
    assert spacy_model("en_core_web_sm") == str(folder)
    monkeypatch.setenv(settings.SPACY_MODEL_ENV, str(tmp_path / "missing-folder"))
    with pytest.raises(ConfigError, match="missing-folder"):
        spacy_model("en_core_web_sm")


def test_a_missing_pipeline_error_names_what_is_installed_and_what_to_set(monkeypatch):
    monkeypatch.setenv("LABELING_SPACY_MODEL", "xx-no-such-pipeline")
    with pytest.raises(ConfigError) as err:
        spacy_model()
    message = str(err.value)
    assert "'xx_no_such_pipeline' (from LABELING_SPACY_MODEL) is not installed" in message
    assert f"installed pipelines: {', '.join(installed_spacy_pipelines())}" in message
    assert "lfs.spacy_model" in message


def test_the_cli_reports_a_missing_pipeline_in_one_line(tmp_path):
    # a spaCy LF in a user's project whose pipeline is not installed: one line, no traceback
    env = {k: v for k, v in os.environ.items() if k != "LABELING_SPACY_MODEL"}
    out = subprocess.run([sys.executable, "-m", "labeling", "retrain", "--config",
                          str(REPO / "projects" / "youtube_spam" / "project.toml"), "--set", "lfs.spacy_model=en-core-web-xx",
                          "--set", f'project.store="{tmp_path / "s.db"}"', "--set", f'project.artifacts="{tmp_path / "a"}"'],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: spaCy pipeline 'en_core_web_xx' (from lfs.spacy_model) is not installed")
    assert not (tmp_path / "s.db").exists()
