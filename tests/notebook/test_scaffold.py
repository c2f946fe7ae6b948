"""labeling init: a data file or WRENCH folder in -> a project that retrains without edits."""

from __future__ import annotations

import json
import tomllib

import pandas as pd
import pytest

from labeling import ConfigError, LFDiscoveryError, load_config
from labeling.cli import main
from labeling.notebook.scaffold import add_lf_module, init_project, propose_classes, propose_columns

# the retrain in these tests: the cheapest end-model family; everything else as init wrote it
FAST = ["--set", 'end_model.candidates=["word_hashed"]', "--quiet"]


def _retrain(project, capsys) -> str:
    capsys.readouterr()
    assert main(["retrain", "--config", str(project / "project.toml"), *FAST]) == 0
    return capsys.readouterr().out


def test_init_on_the_headerless_sms_file_retrains_at_once(data_dir, tmp_path, capsys):
    project = tmp_path / "sms_init"
    assert main(["init", str(project), "--data", str(data_dir / "sms_spam" / "SMSSpamCollection")]) == 0
    assert "starter LFs" in capsys.readouterr().out
    settings = tomllib.loads((project / "project.toml").read_text())
    assert settings["project"]["classes"] == ["ham", "spam"]
    assert settings["dataset"] | {"path": ""} == {
        "source": "file", "path": "", "format": "csv", "delimiter": "\t", "columns": ["label", "text"],
        "quoted": False, "text_field": "text", "label_field": "label", "split": "random", "dev_size": 0.1,
        "test_size": 0.2}
    assert settings["lfs"]["modules"] == ["sms_init_lfs"]
    source = (project / "sms_init_lfs.py").read_text()
    assert "return SPAM" in source and "return HAM" in source  # starter LFs for both classes
    notebook = json.loads((project / "write_lfs.ipynb").read_text())
    assert any("load_config('project.toml')" in "".join(c["source"]) for c in notebook["cells"])
    out = _retrain(project, capsys)
    assert "recorded in" in out and "end model" in out


def test_init_on_a_wrench_folder_reads_its_classes_and_retrains(data_dir, tmp_path, capsys):
    project = tmp_path / "wrench_init"
    assert main(["init", str(project), "--data", str(data_dir / "wrench" / "youtube"), "--starter-lfs", "4"]) == 0
    settings = tomllib.loads((project / "project.toml").read_text())
    assert settings["project"]["classes"] == ["HAM", "SPAM"]  # from label.json
    assert settings["dataset"]["source"] == "wrench"
    assert "recorded in" in _retrain(project, capsys)


def test_starter_lfs_come_from_dev_rows_only(tmp_path):
    # the keyword "zebra" marks class b on test rows only; "apple" marks a on dev: only apple is suggested
    rows = ([{"text": f"apple pie number {i}", "label": "a", "split": "dev"} for i in range(12)]
            + [{"text": f"plain words here {i}", "label": "b", "split": "dev"} for i in range(12)]
            + [{"text": f"zebra stripes {i}", "label": "b", "split": "test"} for i in range(12)]
            + [{"text": f"train row {i}", "label": "", "split": "train"} for i in range(12)])
    data = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    result = init_project(tmp_path / "p", data)
    assert result.columns == {"text": "text", "label": "label", "id": "", "split": "split"}
    source = result.lf_path.read_text()
    assert "apple" in source and "zebra" not in source


def test_without_starter_lfs_retrain_says_what_to_write_first(tmp_path, capsys):
    data = tmp_path / "rows.jsonl"
    pd.DataFrame({"body": [f"some text number {i} here" for i in range(40)],
                  "target": ["x", "y"] * 20}).to_json(data, orient="records", lines=True)
    project = tmp_path / "empty_lfs_init"
    assert main(["init", str(project), "--data", str(data), "--starter-lfs", "0"]) == 0
    capsys.readouterr()
    assert main(["retrain", "--config", str(project / "project.toml"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "defines no labeling functions yet" in err and "write_lfs.ipynb" in err and "Traceback" not in err


def test_ambiguous_columns_give_one_error_with_every_choice_and_write_nothing(tmp_path):
    data = tmp_path / "rows.csv"
    pd.DataFrame({"question": [f"what is thing number {i} about" for i in range(30)],
                  "answer": [f"it is about the number {i} really" for i in range(30)],
                  "topic": ["a", "b", "c"] * 10, "mood": ["up", "down"] * 15}).to_csv(data, index=False)
    with pytest.raises(ConfigError) as caught:
        init_project(tmp_path / "p", data)
    message = str(caught.value)
    assert "--label-field" in message and "'topic'" in message and "'mood'" in message
    assert "nothing was written" in message and not (tmp_path / "p").exists()
    result = init_project(tmp_path / "p", data, label_field="topic")
    assert result.columns["text"] == "question" and result.classes == ("a", "b", "c")


def test_init_refuses_to_overwrite_a_project(data_dir, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "project.toml").write_text("# mine\n")
    with pytest.raises(ConfigError, match="already holds a project"):
        init_project(project, data_dir / "wrench" / "youtube")
    assert (project / "project.toml").read_text() == "# mine\n"


@pytest.mark.parametrize("values, expected", [
    (["spam", "ham", None, ""], ("ham", "spam")),
    ([0, 1, 2, 1], ("0", "1", "2")),
])
def test_classes_are_read_from_the_labels(values, expected):
    assert propose_classes(pd.Series(values)) == expected


def test_list_valued_labels_are_named_as_multi_label():
    from labeling import DatasetError

    with pytest.raises(DatasetError, match="multi-label or span"):
        propose_classes(pd.Series([["a", "b"], ["a"]]))


@pytest.mark.parametrize("data, message", [("goemotions/dev.tsv", "multi-label"), ("bc5cdr", "span annotations"),
                                           ("goemotions", "labels.txt")])
def test_multi_label_and_span_data_are_recognised_and_refused(data_dir, tmp_path, data, message):
    from labeling import DatasetError

    with pytest.raises(DatasetError, match=message):
        init_project(tmp_path / "p", data_dir / data)
    assert not (tmp_path / "p").exists()


def test_columns_named_for_their_role_settle_it():
    frame = pd.DataFrame({"id": ["r1", "r2", "r3", "r4"], "text": ["x y z w"] * 4, "label": ["a", "b", "a", "b"]})
    assert propose_columns(frame) == {"text": "text", "label": "label", "id": "id", "split": ""}


def test_add_lf_module_keeps_comments_and_is_idempotent(tmp_path):
    path = tmp_path / "project.toml"
    path.write_text('[project]\nname = "p"\nclasses = ["a", "b"]\n\n[lfs]  # mine\n'
                    'modules = ["one"]  # keep me\nroot = "."\n')
    assert add_lf_module(path, "two") is True
    assert add_lf_module(path, "two") is False
    text = path.read_text()
    assert "# keep me" in text and "# mine" in text
    assert load_config(path).lfs.modules == ("one", "two")


def test_workbench_save_lists_the_module_in_project_toml(tmp_path):
    from labeling import Workbench, keyword_lf

    rows = pd.DataFrame({"text": ["buy cheap pills now", "hello friend", "cheap deals here", "see you soon"] * 5,
                         "label": ["spam", "ham"] * 10})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = init_project(tmp_path / "wb_init", tmp_path / "rows.csv", starter_lfs=0)
    wb = Workbench(load_config(result.project_file), splits=None)
    wb.add(keyword_lf("kw_cheap", ["cheap"], 1))
    saved = wb.save("wb_init_more")
    assert saved.listed and saved.project_file == result.project_file
    assert load_config(result.project_file).lfs.modules == ("wb_init_lfs", "wb_init_more")
    with pytest.raises(LFDiscoveryError, match="no labeling functions yet"):  # the empty starter module
        from labeling.lf.core import discover_lfs

        discover_lfs(["wb_init_lfs"], root=result.project_file.parent)


@pytest.mark.slow
def test_the_projects_notebook_runs_top_to_bottom(data_dir, tmp_path):
    from ..test_notebooks import executed

    result = init_project(tmp_path / "nb_init", data_dir / "sms_spam" / "SMSSpamCollection")
    notebook = executed(result.notebook)
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    # the workbench's save listed its module in the project's file
    assert load_config(result.project_file).lfs.modules == ("nb_init_lfs", "nb_init_lfs_workbench")
