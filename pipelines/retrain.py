"""Retrain: apply the project's LFs, fit label and end models, evaluate, record the run.

    python -m pipelines.retrain [--config projects/youtube_spam/project.toml] [--json] [--set k=v]
"""

from __future__ import annotations

import sys

from labeling.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["retrain", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
