from __future__ import annotations

import pytest

from labeling import ConfigError, load_config
from labeling.config import parse_override

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


def test_the_store_is_a_sqlite_path_or_a_postgresql_url(tmp_path):
    path = write_project(tmp_path, MINIMAL)
    url = "postgresql://labeling@db.internal:5432/labeling"
    config = load_config(path, [f'project.store="{url}"', 'project.artifacts="a"'])
    assert config.resolve(config.store) == url  # kept as given, not a path under the project
    assert config.store_folder() == tmp_path  # the LF cache and reports go beside the artifacts
    assert load_config(path).store_folder() == tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"project.store = mysql://\.\.\.: expected a SQLite file path or a"):
        load_config(path, ['project.store="mysql://u@h/db"'])


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
        ("[project]\nname='x'\nclasses=['a','b']\ntask='ranking'\n", "project.task = 'ranking'"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_project(tmp_path, body))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


# Out-of-range values stop at load with the key, the value and the range, whether they
# come from the file or from --set (issue 12: a negative seed used to end in numpy).
@pytest.mark.parametrize(
    "override, message",
    [
        ("project.seed=-1", r"project\.seed = -1 is out of range: .*\[0, 4294967295\]"),
        ("project.seed=4294967296", r"project\.seed = 4294967296 is out of range"),
        ("dataset.dev_size=0", r"dataset\.dev_size = 0\.0 is out of range: .*\(0, 1\)"),
        ("dataset.test_size=1.5", r"dataset\.test_size = 1\.5 is out of range"),
        ("dataset.test_size=nan", r"dataset\.test_size = nan is out of range: expected a finite number"),
        ("dataset.dev_size=0.8", r"dev_size \+ dataset\.test_size = 0\.8 \+ 0\.2 must be below 1"),
        ("lfs.n_jobs=-2", r"lfs\.n_jobs = -2 is out of range: .*\[0, inf\)"),
        ("label_model.n_epochs=0", r"label_model\.n_epochs = 0 is out of range"),
        ("label_model.lr=0", r"label_model\.lr = 0\.0 is out of range: .*\(0, inf\)"),
        ("label_model.lr=inf", r"label_model\.lr = inf is out of range"),
        ("label_model.tie_break=coin", r"label_model\.tie_break = 'coin': expected one of"),
        ("end_model.C=-1", r"end_model\.C = -1\.0 is out of range"),
        ("end_model.ngram_min=3", r"end_model\.ngram_min = 3 is above end_model\.ngram_max = 2"),
        ("end_model.hash_bits=9", r"end_model\.hash_bits = 9: expected 0 \(a vocabulary\) or 10\.\.24"),
        ("end_model.batch_size=0", r"end_model\.batch_size = 0 is out of range"),
        ("review.n=0", r"review\.n = 0 is out of range: .*\[1, inf\)"),
        ("review.n=-5", r"review\.n = -5 is out of range"),
        ("review.gold_weight=-1", r"review\.gold_weight = -1\.0 is out of range"),
        ("review.strategy=best", r"review\.strategy = 'best': expected one of"),
        ("verify.min_class_share=1.1", r"verify\.min_class_share = 1\.1 is out of range: .*\[0, 1\]"),
        ("monitor.window=0", r"monitor\.window = 0 is out of range"),
        ("monitor.alpha=0", r"monitor\.alpha = 0\.0 is out of range"),
        ("promotion.margin=2", r"promotion\.margin = 2\.0 is out of range: .*\[-1, 1\]"),
        ("project.colour=red", r"unknown setting in \[project\]: colour"),
        ("label_model.epochs=3", r"unknown setting\(s\) in \[label_model\]: epochs"),
    ],
)
def test_out_of_range_values_name_the_key_value_and_range(tmp_path, override, message):
    path = write_project(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=message):
        load_config(path, [override])
    # the same value written in the file fails the same way
    section, key, value = parse_override(override)
    tables = {"project": {"name": "demo", "classes": ["neg", "pos"]}, "dataset": {"path": "data.csv"}}
    tables.setdefault(section, {})[key] = value
    body = "\n".join(f"[{name}]\n" + "".join(f"{k} = {v!r}\n" for k, v in table.items())
                     for name, table in tables.items())
    with pytest.raises(ConfigError, match=message):
        load_config(write_project(tmp_path, body))


@pytest.mark.parametrize("override", ["project.seed=0", "project.seed=4294967295", "dataset.dev_size=0.4",
                                      "review.gold_weight=0", "promotion.margin=-0.05", "lfs.n_jobs=0",
                                      "end_model.ngram_min=2", "end_model.hash_bits=0",
                                      "end_model.hash_bits=24"])
def test_values_at_the_edge_of_their_range_load(tmp_path, override):
    load_config(write_project(tmp_path, MINIMAL), [override])


def test_a_recorded_config_is_checked_too(tmp_path):
    from labeling.config import config_from_record

    record = load_config(write_project(tmp_path, MINIMAL)).to_dict()
    assert config_from_record(record).seed == 7
    with pytest.raises(ConfigError, match=r"project\.seed = -3 is out of range"):
        config_from_record({**record, "seed": -3})


def test_an_override_into_a_value_that_is_not_a_section(tmp_path):
    path = write_project(tmp_path, 'review = 3\n' + MINIMAL)
    with pytest.raises(ConfigError, match="review is not a \\[section\\]"):
        load_config(path, ["review.n=5"])


def test_config_choices_match_the_library():
    from labeling.config import _CHOICES
    from labeling.data.wrench import RELATION_TEXTS
    from labeling.models.label_models import TIE_BREAKS
    from labeling.review.label_studio import STRATEGIES

    assert _CHOICES[("label_model", "tie_break")] == TIE_BREAKS
    assert _CHOICES[("review", "strategy")] == STRATEGIES
    assert _CHOICES[("dataset", "relation_text")] == RELATION_TEXTS


def test_task_defaults_to_single_label_and_does_not_move_old_config_hashes(tmp_path):
    from labeling.pipeline.lineage import config_hash

    config = load_config(write_project(tmp_path, MINIMAL))
    assert config.task == "single_label"
    recorded = config.to_dict()
    before = {k: v for k, v in recorded.items() if k != "task"}  # a run recorded before the key existed
    assert config_hash(recorded) == config_hash(before)
    assert config_hash({**recorded, "task": "multi_label"}) != config_hash(before)


def test_span_settings_at_their_defaults_do_not_move_old_config_hashes(tmp_path):
    from labeling.pipeline.lineage import config_hash

    recorded = load_config(write_project(tmp_path, MINIMAL)).to_dict()
    before = {**recorded, "dataset": {k: v for k, v in recorded["dataset"].items() if k != "weak_label_names"},
              "end_model": {k: v for k, v in recorded["end_model"].items() if k != "ner_max_steps"}}
    assert config_hash(recorded) == config_hash(before)
    assert config_hash({**recorded, "dataset": {**recorded["dataset"], "weak_label_names": ["lf_rec"]}}) \
        != config_hash(before)


def test_the_end_model_time_budget_is_off_by_default_checked_and_does_not_move_old_config_hashes(tmp_path):
    from labeling.pipeline.lineage import config_hash

    recorded = load_config(write_project(tmp_path, MINIMAL)).to_dict()
    assert recorded["end_model"]["time_budget_s"] == 0.0
    before = {**recorded, "end_model": {k: v for k, v in recorded["end_model"].items() if k != "time_budget_s"}}
    assert config_hash(recorded) == config_hash(before)
    assert config_hash({**recorded, "end_model": {**recorded["end_model"], "time_budget_s": 30.0}}) \
        != config_hash(before)
    assert load_config(write_project(tmp_path, MINIMAL), ["end_model.time_budget_s=30"]).end_model.time_budget_s == 30.0
    with pytest.raises(ConfigError, match="time_budget_s"):
        load_config(write_project(tmp_path, MINIMAL), ["end_model.time_budget_s=-1"])
