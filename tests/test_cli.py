import json

import pytest

from labeling.cli import build_parser, main


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and len(out.splitlines()) > 3


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented_in_the_readme(command):
    from .conftest import REPO

    assert f"python -m labeling {command}" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("script, command", [("retrain", "retrain"), ("serve", "serve"), ("review", "review")])
def test_pipeline_scripts_are_the_cli_commands(script, command, capsys):
    import importlib

    module = importlib.import_module(f"pipelines.{script}")
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    assert f"usage: labeling {command}" in capsys.readouterr().out


def test_lfs_command_lists_versions(youtube_config_path, capsys):
    assert main(["lfs", "--config", str(youtube_config_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["lfs"]) >= 10 and all(len(lf["version"]) == 16 for lf in payload["lfs"])
    assert any(lf["spacy"] for lf in payload["lfs"])


def test_lfs_command_says_which_lfs_are_uncacheable_and_why(tmp_path, capsys):
    import sys
    import textwrap

    from .conftest import TINY_PROJECT, write_project

    (tmp_path / "built_path_lfs.py").write_text(textwrap.dedent("""
        import os
        from snorkel.labeling import labeling_function

        @labeling_function()
        def built_path(x):
            with open(os.path.join(os.path.dirname(__file__), "words" + ".txt")) as fh:
                return 1 if fh.read() in x.text else -1
    """))
    config = write_project(tmp_path, TINY_PROJECT.format(root=tmp_path).replace("lf_modules.youtube_weak", "built_path_lfs"))
    assert main(["lfs", "--config", str(config), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["lfs"]
    assert "built at run time" in row["uncacheable"]
    assert main(["lfs", "--config", str(config)]) == 0
    assert "uncacheable (votes always computed): LF 'built_path'" in capsys.readouterr().out
    sys.modules.pop("built_path_lfs", None)
