"""Review round trip for a project: ``labeling review`` and ``labeling refine``.

    eval "$(scripts/label_studio.sh start)"
    python -m pipelines.review push [--strategy entropy] [--n 50] [--source dataset|served]
    python -m pipelines.review pull        # answers -> gold labels, then the refinement report
"""

from __future__ import annotations

import sys

from labeling.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    code = cli_main(["review", *argv])
    if code == 0 and argv[:1] == ["pull"]:  # the pull's answers are what refinement reads
        options = [a for a in argv[1:] if not a.startswith("--rename")]
        config = [v for k, v in zip(options, options[1:]) if k == "--config"]
        code = cli_main(["refine", *(["--config", config[0]] if config else [])])
    return code


if __name__ == "__main__":
    sys.exit(main())
