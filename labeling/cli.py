"""Command line: thin commands, each calling one library function.

    python -m labeling retrain --config projects/youtube_spam/project.toml [--json]
    python -m labeling lfs --config ...        list LFs with their versions
    python -m labeling runs --config ...       list recorded runs
    python -m labeling review push|pull ...    send rows to Label Studio / read answers back as gold
    python -m labeling refine --config ...     LF accuracy on gold, suggested LFs, likely label errors
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import load_config
from .errors import LabelingError

DEFAULT_CONFIG = "projects/youtube_spam/project.toml"


def _retrain(args) -> int:
    from .retrain import format_summary, run_retrain

    config = load_config(args.config, args.set)
    result = run_retrain(config, show_progress=not args.quiet and sys.stderr.isatty() or args.progress)
    print(json.dumps(result.to_json(), indent=2) if args.json else format_summary(result))
    return 0


def _lfs(args) -> int:
    from .lfs import discover_lfs, lf_set_version, lf_version, uses_spacy

    config = load_config(args.config, args.set)
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    rows = [{"name": lf.name, "version": lf_version(lf), "spacy": uses_spacy(lf)} for lf in lfs]
    if args.json:
        print(json.dumps({"lf_set_version": lf_set_version(lfs), "lfs": rows}, indent=2))
    else:
        print(f"LF set {lf_set_version(lfs)}")
        for row in rows:
            print(f"  {row['name']:<32} {row['version']}{'  (spaCy)' if row['spacy'] else ''}")
    return 0


def _runs(args) -> int:
    from .store import RunStore

    config = load_config(args.config, args.set)
    with RunStore(config.resolve(config.store)) as store:
        runs = store.list_runs()
    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        for run in runs:
            print(f"{run['id']}  {run['created_at']}  dataset {run['dataset_version']}  LFs {run['lf_set_version']}")
    return 0


def _review(args) -> int:
    from .review_job import label_studio_from_env, pull_review, push_review

    config = load_config(args.config, args.set)
    review = label_studio_from_env(config)
    if args.action == "push":
        summary = push_review(config, review, strategy=args.strategy, n=args.n, source=args.source)
        out = {"project_id": summary.result.project_id, "strategy": summary.strategy, "source": summary.source,
               "selected": summary.selected, "created": summary.result.created, "skipped": summary.result.skipped,
               "redacted": summary.redacted}
        text = (f"pushed {out['created']} new tasks ({out['skipped']} already there) to Label Studio project "
                f"{out['project_id']}; strategy {out['strategy']}, source {out['source']}, redacted {out['redacted']}")
    else:
        result, disagreements = pull_review(config, review)
        out = {**result.__dict__, "disagreements": disagreements.to_dict(orient="records")}
        text = (f"{result.stored} answers stored ({result.inserted} new, {result.updated} updated, {result.deleted} "
                f"removed); {len(disagreements)} tasks where annotators disagree")
        for row in disagreements.itertuples():
            text += f"\n  {row.task_key}: {row.answers} -> {row.resolved if row.resolved is not None else 'unresolved'}"
    print(json.dumps(out, indent=2, default=str) if args.json else text)
    return 0


def _refine(args) -> int:
    from .refine import format_report
    from .review_job import refine_from_gold

    config = load_config(args.config, args.set)
    report = refine_from_gold(config, top=args.top)
    if args.json:
        print(json.dumps({"n_gold": report.n_gold, "lfs": report.lf_table.reset_index().to_dict(orient="records"),
                          "worst": report.worst, "uncovered": report.uncovered.to_dict(orient="records"),
                          "suggestions": [s.__dict__ for s in report.suggestions], "lf_code": report.lf_code,
                          "label_errors": report.label_errors.to_dict(orient="records")}, indent=2, default=str))
    else:
        print(format_report(report, config.classes))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labeling", description="Weak-supervision labeling pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", default=DEFAULT_CONFIG, help=f"project TOML file (default {DEFAULT_CONFIG})")
        sub.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config setting (repeatable)")
        sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
        sub.set_defaults(func=func)
        return sub

    retrain = command("retrain", _retrain, "Apply LFs, fit the label and end models, evaluate, record the run.")
    retrain.add_argument("--quiet", action="store_true", help="no progress bars")
    retrain.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    command("lfs", _lfs, "List the project's labeling functions and their versions.")
    command("runs", _runs, "List the runs recorded in the project's store.")
    review = command("review", _review, "Push rows to Label Studio for review, or pull the answers in as gold labels.")
    review.add_argument("action", choices=("push", "pull"))
    review.add_argument("--strategy", default=None, help="push: entropy, margin, conflict, uncovered, low_confidence, "
                        "disagreed or random (default: review.strategy)")
    review.add_argument("--n", type=int, default=None, help="push: how many rows (default: review.n)")
    review.add_argument("--source", choices=("dataset", "served"), default="dataset",
                        help="push: the dataset's train rows or the served predictions")
    refine_cmd = command("refine", _refine, "Refine from gold: LF accuracy, wrong votes, uncovered rows, "
                         "suggested LFs, likely label errors.")
    refine_cmd.add_argument("--top", type=int, default=10, help="how many LFs to suggest")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabelingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
