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


def test_lfs_command_lists_versions(youtube_config_path, capsys):
    assert main(["lfs", "--config", str(youtube_config_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["lfs"]) >= 10 and all(len(lf["version"]) == 16 for lf in payload["lfs"])
    assert any(lf["spacy"] for lf in payload["lfs"])
