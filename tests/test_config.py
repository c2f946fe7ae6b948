from __future__ import annotations

import pytest

from labeling import ConfigError, load_config

from .conftest import write_project

MINIMAL = """
[project]
name = "demo"
classes = ["neg", "pos"]
seed = 7

[dataset]
path = "data.csv"
"""


def test_example_project_loads(youtube_config_path):
    config = load_config(youtube_config_path)
    assert config.name == "youtube_spam" and config.classes == ("ham", "spam") and config.cardinality == 2
    assert config.lfs.modules == ("labeling_functions.youtube_spam",)
    assert config.resolve(config.lfs.root) == youtube_config_path.parents[2]


def test_paths_resolve_against_the_config_file(tmp_path):
    config = load_config(write_project(tmp_path, MINIMAL))
    assert config.resolve(config.dataset.path) == tmp_path / "data.csv"
    assert config.resolve(config.store) == tmp_path / "runs" / "labeling.db"
    assert config.dataset.text_field == "text" and config.end_model.type == "auto"  # new projects: chosen on dev


def test_overrides_are_type_checked(tmp_path):
    path = write_project(tmp_path, MINIMAL)
    config = load_config(path, ["end_model.type=torch", "end_model.epochs=3", "label_model.lr=1"])
    assert config.end_model.type == "torch" and config.end_model.epochs == 3 and config.label_model.lr == 1.0
    with pytest.raises(ConfigError, match="end_model.epochs must be int"):
        load_config(path, ["end_model.epochs=many"])
    with pytest.raises(ConfigError, match="end_model.type = 'keras'"):
        load_config(path, ["end_model.type=keras"])
    with pytest.raises(ConfigError, match="unknown setting.*colour"):
        load_config(path, ["dataset.colour=red"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["seed=3"])


@pytest.mark.parametrize(
    "body, message",
    [
        ("[project]\nname='x'\n", "needs 'classes'"),
        ("[project]\nname='x'\nclasses=['a']\n", "at least two"),
        ("[project]\nname='x'\nclasses=['a','a']\n", "duplicates"),
        ("[project]\nname='x'\nclasses=['a','b']\nseed='1'\n", "project.seed must be int"),
        ("[project]\nname='x'\nclasses=['a','b']\n[extra]\n", "unknown section"),
        ("[project\n", "invalid TOML"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_project(tmp_path, body))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
