#!/usr/bin/env bash
# Create .venv and install the project with the tested, pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip runs only when what it installs from changed: the stamp holds the sha256 of
# pyproject.toml and constraints.txt as of the last complete install.
STAMP=.venv/.labeling-setup-stamp
WANT=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && .venv/bin/python -c "import importlib.metadata as m; m.version('labeling')" 2>/dev/null; then
    echo "setup: .venv up to date (delete $STAMP to reinstall)" >&2
    exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and alone, pinned: an unpinned resolve would pull a CUDA build.
.venv/bin/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
echo "$WANT" > "$STAMP"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))" >&2
