import json
import subprocess
import sys

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


#: Model, data and serving libraries: printing help needs none of them.
HEAVY = {"fastapi", "uvicorn", "starlette", "pydantic", "pandas", "numpy", "pyarrow", "scipy", "sklearn", "torch",
         "snorkel", "spacy", "dask", "onnx", "onnxruntime", "lightgbm", "transformers"}


def test_help_imports_no_model_data_or_serving_library():
    from .conftest import REPO

    # The real entry point, as a user runs it: -X importtime lists every module imported.
    top = subprocess.run([sys.executable, "-X", "importtime", "-m", "labeling", "--help"], capture_output=True,
                         text=True, cwd=REPO, check=True)
    imported = {line.split("|")[-1].strip().partition(".")[0] for line in top.stderr.splitlines() if "|" in line}
    assert "labeling" in imported and not HEAVY & imported
    # Every command's --help, in one fresh process: none of them may import one either.
    probe = ("import json, sys\nfrom labeling.cli import main\n"
             f"for command in {_commands()!r}:\n"
             "    try:\n        main([command, '--help'])\n    except SystemExit:\n        pass\n"
             "print(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})), file=sys.stderr)")
    every = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    imported = set(json.loads(every.stderr.strip().splitlines()[-1]))
    assert not HEAVY & imported, sorted(HEAVY & imported)


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
