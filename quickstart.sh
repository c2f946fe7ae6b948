#!/usr/bin/env bash
# Set everything up, then run the retrain pipeline on the example project.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
# The data folder (../shared/data when present) and the spaCy pipeline (an
# installed en_core_web_* when the official one is missing) are resolved by the
# library itself (labeling/settings.py), as for every other command.
exec .venv/bin/python -m pipelines.retrain "$@"
