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
    assert ("--config" in out or command == "init") and len(out.splitlines()) > 3  # init writes a config


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented_with_an_example(command):
    from .conftest import REPO

    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    assert any(f"python -m labeling {command}" in page.read_text(encoding="utf-8") for page in pages)


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
