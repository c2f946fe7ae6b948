"""Review round trip for a project: push rows to Label Studio, or pull answers and refine.

    eval "$(scripts/label_studio.sh start)"
    python -m pipelines.review push [--strategy entropy] [--n 50] [--source dataset|served]
    python -m pipelines.review pull        # answers -> gold labels, then the refinement report
"""

from __future__ import annotations

import argparse
import sys

from labeling.config import load_config
from labeling.review.refinement import format_report
from labeling.review.jobs import label_studio_from_env, pull_review, push_review, refine_from_gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("push", "pull"))
    parser.add_argument("--config", default="projects/youtube_spam/project.toml")
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--source", choices=("dataset", "served"), default="dataset")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    review = label_studio_from_env(config)
    if args.action == "push":
        summary = push_review(config, review, strategy=args.strategy, n=args.n, source=args.source)
        print(f"pushed {summary.result.created} tasks ({summary.result.skipped} already there), "
              f"strategy {summary.strategy}, redacted {summary.redacted}")
        return 0
    result, disagreements = pull_review(config, review)
    print(f"{result.stored} answers in the store ({result.inserted} new, {result.updated} updated); "
          f"{len(disagreements)} disagreements")
    print(format_report(refine_from_gold(config), config.classes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
