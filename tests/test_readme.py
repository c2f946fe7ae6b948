"""README's commands, run as a new user runs them: in a fresh copy of the repository,
with no environment variable set beyond the data folder (no LABELING_SPACY_MODEL,
no wrapper script). Each command is looked up in README.md first, so the README
and this test cannot drift apart.

The fast tests run README's Python snippets and the cheap commands; the slow one
runs the quickstart's pipeline and the lineage/registry/monitoring commands
(a few minutes on a loaded 2-core machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG = "--config projects/youtube_spam/project.toml"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, data_dir):
    """(repository copy, environment): tracked and untracked-not-ignored files only,
    ``.venv`` pointing at the test's interpreter, the environment stripped to what
    any shell has plus the data folder."""
    root = tmp_path_factory.mktemp("fresh") / "repo"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env["LABELING_DATA_DIR"] = str(data_dir)
    return root, env


def run(fresh, command: str, *, timeout: int = 600) -> subprocess.CompletedProcess:
    root, env = fresh
    proc = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, f"{command}\n{proc.stderr[-3000:]}"
    return proc


def readme_command(text: str) -> str:
    """``text`` as README gives it (with ``$C`` spelled out)."""
    assert text in README, f"README no longer has {text!r}"
    return text.replace("$C", CONFIG)


def test_readme_python_snippets_run_as_written(fresh):
    apply_snippet, lf_snippet = (b for b in _python_blocks() if "apply_lfs(" in b or "spacy_labeling_function" in b)
    root, _ = fresh
    (root / "snippet_apply.py").write_text(apply_snippet, encoding="utf-8")
    # the LF-writing snippet, then its LFs called on a row: the spaCy one loads the pipeline
    # the library resolves (no LABELING_SPACY_MODEL in this environment)
    (root / "snippet_lfs.py").write_text(lf_snippet + "\nfrom types import SimpleNamespace\n"
                                         "print(lf_check_out(SimpleNamespace(text='Check out my channel')),"
                                         " lf_short_with_person(SimpleNamespace(text='Barack Obama sings well')))\n",
                                         encoding="utf-8")
    out = run(fresh, ".venv/bin/python snippet_apply.py")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[[1, -1, -1], [-1, 0, -1], [1, -1, 1]]"
    out = run(fresh, ".venv/bin/python snippet_lfs.py")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "0"]


def test_cheap_readme_commands_work_without_settings(fresh):
    for command in ("verify", "lfs"):
        out = run(fresh, f".venv/bin/python -m labeling {command} {CONFIG}", timeout=300)
        assert out.returncode == 0, f"{command}: {out.stderr[-3000:]}"
    assert "LF set" in out.stdout


@pytest.mark.slow
def test_quickstart_pipeline_and_lineage_commands(fresh):
    # quickstart.sh = scripts/setup.sh (pip; skipped here: the venv exists) + this command
    assert "exec .venv/bin/python -m pipelines.retrain" in (REPO / "quickstart.sh").read_text()
    first = run(fresh, ".venv/bin/python -m pipelines.retrain --json")
    assert first.returncode == 0, first.stderr[-3000:]
    run_id = json.loads(first.stdout)["run_id"]
    commands = [readme_command(c) for c in (
        ".venv/bin/python -m labeling history $C",
        ".venv/bin/python -m labeling reproduce RUN_ID $C",
        ".venv/bin/python -m labeling promote [RUN_ID] $C",
        ".venv/bin/python -m labeling rollback $C",
    )]
    for command in commands:
        command = command.replace("[RUN_ID]", run_id).replace("RUN_ID", run_id)
        out = run(fresh, command)
        # rollback with no earlier champion is a clear refusal (exit 2), not a crash
        assert out.returncode in ((0, 2) if "rollback" in command else (0,)), f"{command}\n{out.stderr[-3000:]}"
    for command in ("monitor", "report", "runs", "clear-cache"):
        out = run(fresh, f".venv/bin/python -m labeling {command} {CONFIG}")
        assert out.returncode == 0, f"{command}: {out.stderr[-3000:]}"
    assert "not enough traffic" in run(fresh, f".venv/bin/python -m labeling monitor {CONFIG}").stdout
