"""scripts/setup.sh runs pip only when pyproject.toml or constraints.txt changed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

from .conftest import REPO


def test_setup_skips_pip_while_the_venv_is_up_to_date(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "pyproject.toml", "constraints.txt"):
        shutil.copy2(REPO / name, root / name)
    # a venv whose python records pip calls instead of running them (no network, seconds)
    log = tmp_path / "pip.log"
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\ncase "$*" in *"-m pip"*) echo "$*" >> "{log}"; exit 0;; esac\n'
                      f'exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)

    def setup() -> tuple[int, str]:
        before = len(log.read_text().splitlines()) if log.exists() else 0
        out = subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True, timeout=300,
                             env={**os.environ})
        assert out.returncode == 0, out.stderr
        return len(log.read_text().splitlines()) - before, out.stderr

    calls, _ = setup()
    assert calls == 3  # pip upgrade, torch, the project
    calls, err = setup()
    assert calls == 0 and "up to date" in err  # before: pip ran (12 s, 40 lines of warnings) every time
    with open(root / "constraints.txt", "a") as fh:
        fh.write("# changed\n")
    calls, _ = setup()
    assert calls == 3
