"""Command line: thin commands, each calling one library function.

    python -m labeling retrain --config projects/youtube_spam/project.toml [--json]
    python -m labeling lfs --config ...        list LFs with their versions
    python -m labeling runs --config ...       list recorded runs
    python -m labeling clear-cache --config ...  delete cached LF votes and spaCy parses
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


def _clear_cache(args) -> int:
    from .cache import LFCache, project_cache_dir
    from .parse_cache import ParseCache

    config = load_config(args.config, args.set)
    folder = project_cache_dir(config)
    removed = {"lf_columns": 0, "spacy_segments": 0} if folder is None else {
        "lf_columns": LFCache(folder).clear(), "spacy_segments": ParseCache(folder).clear()}
    if args.json:
        print(json.dumps({"cache": str(folder) if folder else None, "removed": removed}))
    else:
        print(f"cleared {folder}: {removed['lf_columns']} LF vote segments, {removed['spacy_segments']} spaCy parse segments"
              if folder else "the project's cache is off (lfs.cache = \"none\")")
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
    command("clear-cache", _clear_cache, "Delete the project's cached LF votes and spaCy parses.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabelingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
