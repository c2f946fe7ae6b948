"""Command line: thin commands, each calling one library function.

    python -m labeling init PATH --data FILE   a new project from a data file or WRENCH folder
    python -m labeling retrain --config projects/youtube_spam/project.toml [--json]
    python -m labeling lfs --config ...        list LFs with their versions
    python -m labeling runs --config ...       list recorded runs
    python -m labeling review push|pull ...    send rows to Label Studio / read answers back as gold
    python -m labeling review connect|predict-all ...  connect the server as Label Studio's ML backend
    python -m labeling refine --config ...     LF accuracy on gold, suggested LFs, likely label errors
    python -m labeling history | reproduce RUN_ID | promote [RUN_ID] | rollback
    python -m labeling verify | monitor | report [RUN_ID] | export-onnx RUN_ID OUT
    python -m labeling clear-cache --config ...  delete cached LF votes and spaCy parses
    python -m labeling schema show|add|rename|merge|split|retire ... [--dry-run] [--yes]  change the classes
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .config import load_config
from .errors import LabelingError

DEFAULT_CONFIG = "projects/youtube_spam/project.toml"


def _retrain(args) -> int:
    from .pipeline.retrain import format_summary, run_retrain
    from .pipeline.schema_change import finish_pending

    finish_pending(args.config)  # a schema change killed after its store commit: its files first
    config = load_config(args.config, args.set)
    result = run_retrain(config, show_progress=not args.quiet and sys.stderr.isatty() or args.progress)
    print(json.dumps(result.to_json(), indent=2) if args.json else format_summary(result))
    return 0


def _lfs(args) -> int:
    from .lf.core import discover_lfs, lf_set_version, lf_uncacheable, lf_version, uses_spacy

    config = load_config(args.config, args.set)
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    rows = [{"name": lf.name, "version": lf_version(lf), "spacy": uses_spacy(lf), "uncacheable": lf_uncacheable(lf)}
            for lf in lfs]
    if args.json:
        print(json.dumps({"lf_set_version": lf_set_version(lfs), "lfs": rows}, indent=2))
    else:
        print(f"LF set {lf_set_version(lfs)}")
        for row in rows:
            print(f"  {row['name']:<32} {row['version']}{'  (spaCy)' if row['spacy'] else ''}")
            if row["uncacheable"]:
                print(f"    uncacheable (votes always computed): {row['uncacheable']}")
    return 0


def _runs(args) -> int:
    from .pipeline.store import RunStore

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
    from .review.jobs import connect_backend, label_studio_from_env, predict_all, pull_review, push_review

    config = load_config(args.config, args.set)
    renames = dict(_rename(r) for r in args.rename)
    review = label_studio_from_env(config)
    auth = _basic_auth_pair(args.ls_basic_auth_file)
    if args.action == "connect":
        out = connect_backend(review, args.url, basic_auth=auth)
        text = (f"ML backend {out['url']} {'already connected' if out['reused'] else 'connected'} to Label Studio "
                f"project {review.title!r} (backend id {out['id']}): state {out['state']}"
                + (f"; error: {out['error']}" if out["error"] else ""))
    elif args.action == "predict-all":
        summary = predict_all(review, args.url, batch=args.batch, basic_auth=auth,
                              show_progress=sys.stderr.isatty() or args.progress)
        out = summary.__dict__
        text = (f"{summary.stored} predictions of model version {summary.model_version} stored "
                f"({summary.tasks} tasks had none, {summary.batches} batches)")
    elif config.task == "multi_label" and args.action in ("push", "pull"):  # label sets: their own push and pull
        from .review.multilabel import pull_multilabel_review, push_multilabel_review

        if args.action == "push":
            pushed = push_multilabel_review(config, review, n=args.n)
            out = {"project_id": pushed.project_id, "created": pushed.created, "skipped": pushed.skipped}
            text = (f"pushed {pushed.created} new tasks ({pushed.skipped} already there) to Label Studio project "
                    f"{pushed.project_id}, pre-annotated with the served run's label sets")
        else:
            pulled = pull_multilabel_review(config, review)
            out = pulled.__dict__
            text = (f"{pulled.stored} label sets stored ({pulled.inserted} new, {pulled.updated} updated, "
                    f"{pulled.deleted} removed because deleted in Label Studio)")
    elif args.action == "push":
        if config.task == "spans":  # dataset texts with the served run's entities
            from .review.span_jobs import push_span_review

            summary = push_span_review(config, review, strategy=args.strategy, n=args.n)
        else:
            summary = push_review(config, review, strategy=args.strategy, n=args.n, source=args.source)
        out = {"project_id": summary.result.project_id, "strategy": summary.strategy, "source": summary.source,
               "selected": summary.selected, "created": summary.result.created, "skipped": summary.result.skipped,
               "redacted": summary.redacted}
        text = (f"pushed {out['created']} new tasks ({out['skipped']} already there) to Label Studio project "
                f"{out['project_id']}; strategy {out['strategy']}, source {out['source']}, redacted {out['redacted']}")
    elif config.task == "spans":  # pull: the answers as gold spans
        from .review.span_jobs import pull_span_review

        summary = pull_span_review(config, review)
        out = summary.__dict__
        text = (f"{summary.spans} gold spans of {summary.tasks} answered tasks stored ({summary.no_entity} marked as "
                f"holding no entity, {summary.removed} removed: their answer was deleted in Label Studio); offsets "
                "checked against each task's text")
    else:
        result, disagreements = pull_review(config, review, renames=renames)
        out = {**result.__dict__, "disagreements": disagreements.to_dict(orient="records")}
        text = (f"{result.stored} answers stored ({result.inserted} new, {result.updated} updated, {result.deleted} "
                f"removed because deleted in Label Studio); {len(disagreements)} tasks where annotators disagree")
        if result.report:
            text += f"\n{result.report}"
        for row in disagreements.itertuples():
            text += f"\n  {row.task_key}: {row.answers} -> {row.resolved if row.resolved is not None else 'unresolved'}"
    print(json.dumps(out, indent=2, default=str) if args.json else text)
    return 0


def _rename(text: str) -> tuple[str, str]:
    from .errors import ConfigError

    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise ConfigError(f"--rename {text!r} must look like OLD=NEW (class names)")
    return old, new


def _refine(args) -> int:
    from .review.refinement import format_report
    from .review.jobs import refine_from_gold

    config = load_config(args.config, args.set)
    if config.task == "multi_label":  # per class: LF precision on the gold sets, label errors
        from .review.multilabel import refine_multilabel

        ml = refine_multilabel(config, top=args.top)
        print(json.dumps({"n_gold": ml.n_gold, "lfs": ml.lf_table.reset_index().to_dict(orient="records"),
                          "worst": ml.worst, "label_errors": ml.label_errors.to_dict(orient="records")},
                         indent=2, default=str) if args.json else ml.format())
        return 0
    report = refine_from_gold(config, top=args.top)
    if args.json:
        print(json.dumps({"n_gold": report.n_gold, "lfs": report.lf_table.reset_index().to_dict(orient="records"),
                          "worst": report.worst, "uncovered": report.uncovered.to_dict(orient="records"),
                          "suggestions": [s.__dict__ for s in report.suggestions], "lf_code": report.lf_code,
                          "label_errors": report.label_errors.to_dict(orient="records"),
                          "label_errors_note": report.label_errors_note}, indent=2, default=str))
    else:
        print(format_report(report, config.classes))
    return 0


def _store(config):
    return config.resolve(config.store)


def _store_command(args) -> int:
    from .errors import ConfigError

    if args.action == "copy":
        return _store_copy(args)
    if args.to is not None:
        raise ConfigError("--to is for 'store copy'")
    return _store_upgrade(args)


def _store_copy(args) -> int:
    from pathlib import Path

    from .errors import ConfigError
    from .store.dialect import is_postgres
    from .store.transfer import copy_store

    if args.to is None:
        raise ConfigError("store copy needs --to (a SQLite file path or a postgresql:// URL)")
    target = args.to if is_postgres(args.to) else Path(args.to).expanduser().resolve()
    copied = copy_store(_store(load_config(args.config, args.set)), target)
    _print(args, {"copied": copied},
           "\n".join(f"{table}: {rows} row(s)" for table, rows in copied.items()) + f"\ncopied into {args.to}")
    return 0


def _store_upgrade(args) -> int:
    from .store.connection import upgrade_store

    steps = upgrade_store(_store(load_config(args.config, args.set)), dry_run=args.dry_run)
    verb = "would apply" if args.dry_run else "applied"
    _print(args, {"dry_run": args.dry_run, "steps": steps},
           "\n".join(f"{verb} {step}" for step in steps) if steps else "store is up to date")
    return 0


def _schema(args) -> int:
    from .data.schema import SchemaChange
    from .errors import SchemaChangeError
    from .pipeline.schema_change import apply_plan, format_plan, format_show, plan_change, show_schema

    from .review.jobs import KEY_ENV, URL_ENV, label_studio_from_env

    # connected Label Studio follows the change (and finishes one an interrupted run left)
    review = label_studio_from_env(load_config(args.config, args.set)) \
        if os.environ.get(URL_ENV) and os.environ.get(KEY_ENV) else None
    if args.action == "show":
        shown = show_schema(args.config, args.set, review=review)
        _print(args, shown, format_show(shown))
        return 0
    names, into = tuple(args.names), tuple(args.into or ())
    if bool(into) != (args.action in ("merge", "split")):
        raise SchemaChangeError(f"schema {args.action}: --into is for merge and split only (merge A B --into C, "
                                "split A --into B C)")
    sources, targets = {"add": ((), names), "rename": (names[:1], names[1:]), "retire": (names, ())}.get(
        args.action, (names, into))
    plan = plan_change(args.config, SchemaChange(args.action, sources, targets), args.set, review=review)
    if args.dry_run:
        _print(args, plan.to_json(), format_plan(plan))
        return 0
    if review is not None:  # the TOML may have been finished above: Label Studio reads its classes now
        review = label_studio_from_env(load_config(args.config, args.set))
    result = apply_plan(args.config, plan, yes=args.yes, overrides=args.set, review=review)
    verdict = (f"applied: label schema {plan.new.version}" if result.applied
               else "not applied: the change loses labels or needs LF edits by hand; re-run with --yes to apply")
    if result.label_studio is not None:
        verdict += (f"; Label Studio: {result.label_studio['renamed']} answers renamed, "
                    f"{result.label_studio['unlabelled']} unlabelled (old class kept in previous_label)")
    _print(args, {**plan.to_json(), "applied": result.applied, "written": list(result.files),
                  "label_studio": result.label_studio}, f"{format_plan(plan)}\n{verdict}")
    return 0 if result.applied else 1


def _print(args, payload, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def _history(args) -> int:
    from .pipeline.lineage import format_history, history

    rows = history(_store(load_config(args.config, args.set)))
    _print(args, rows, format_history(rows))
    return 0


def _reproduce(args) -> int:
    from pathlib import Path

    from .pipeline.lineage import reproduce

    config = load_config(args.config, args.set)
    result = reproduce(_store(config), args.run_id, base_dir=Path(args.config).parent)
    _print(args, result.to_dict(), result.format())
    return 0 if result.matches else 1


def _promote(args) -> int:
    from .errors import PromotionRefused
    from .pipeline.registry import promote_run

    if args.force and not args.reason:
        print("error: --force needs --reason: a forced promotion records who forced it and why", file=sys.stderr)
        return 2
    config = load_config(args.config, args.set)
    try:
        decision = promote_run(config, _store(config), args.run_id, force=args.force, actor=_actor(),
                               note=args.reason or "")
    except PromotionRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    verdict = "promoted" if decision.promoted else "unchanged"
    _print(args, decision.to_dict(), f"{verdict}: {decision.candidate_run_id}: {decision.reason}")
    return 0


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (some containers)
        return "cli"


def _rollback(args) -> int:
    from .pipeline.registry import Registry

    config = load_config(args.config, args.set)
    with Registry(_store(config)) as registry:
        old, new = registry.rollback(args.alias)
    _print(args, {"alias": args.alias, "from": old, "to": new}, f"{args.alias}: {old} -> {new}")
    return 0


def _verify(args) -> int:
    from .data.verify import verify_dataset

    config = load_config(args.config, args.set)
    if config.task == "multi_label":  # label sets: their separator and class names first
        from .multilabel.verify import verify_multilabel_dataset

        report = verify_multilabel_dataset(config)
    else:
        report = verify_dataset(config)
    _print(args, report.to_dict(), report.format())
    return 0 if report.ok else 2


def _monitor(args) -> int:
    from .serve.monitor import check_drift

    config = load_config(args.config, args.set)
    report = check_drift(_store(config), config.monitor, args.run_id, project=config.name)
    _print(args, report.to_dict(), report.format())
    return 3 if report.retrain else 0


def _report(args) -> int:
    from .pipeline.report import write_report

    config = load_config(args.config, args.set)
    path = write_report(_store(config), args.run_id, monitor_settings=config.monitor,
                        folder=config.store_folder())
    _print(args, {"report": str(path)}, str(path))
    return 0


def _export_onnx(args) -> int:
    from .models.artifacts import load_end_model
    from .models.export import export_onnx, lfs_not_carried
    from .pipeline.store import RunStore

    config = load_config(args.config, args.set)
    with RunStore(_store(config)) as store:
        folder, expected = store.recorded_end_model(args.run_id)
        served = store.get_run(args.run_id)["end_model"].get("served")
    if config.task == "multi_label":  # one graph per class, thresholds in the manifest
        from .multilabel.end_models import load_multilabel_end_model
        from .multilabel.export import export_multilabel_onnx

        files = export_multilabel_onnx(load_multilabel_end_model(folder, expected), args.out, config.classes)
        _print(args, {"folder": args.out, "files": files, "lfs_not_carried": None},
               f"exported {args.run_id} to {args.out}")
        return 0
    files = export_onnx(load_end_model(folder, expected), args.out, config.classes, served=served)
    note = lfs_not_carried(served)
    _print(args, {"folder": args.out, "files": files, "lfs_not_carried": note or None},
           f"exported {args.run_id} to {args.out}" + (f"\nWARNING: {note}" if note else ""))
    return 0


def _clear_cache(args) -> int:
    from .lf.apply import spacy_cache_keys
    from .lf.cache import LFCache, project_cache_dir
    from .lf.core import discover_lfs
    from .lf.parse_cache import ParseCache

    config = load_config(args.config, args.set)
    folder = project_cache_dir(config)
    removed = {"lf_columns": 0, "spacy_segments": 0}
    if folder is not None:
        # Only this project's entries: the folder may be shared (lfs.cache, a common store folder).
        lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
        removed = {"lf_columns": LFCache(folder).clear([lf.name for lf in lfs]),
                   "spacy_segments": ParseCache(folder).clear(spacy_cache_keys(lfs, config.lfs.spacy_model))}
    if args.json:
        print(json.dumps({"cache": str(folder) if folder else None, "removed": removed}))
    else:
        print(f"cleared this project's entries in {folder}: {removed['lf_columns']} LF vote segments, "
              f"{removed['spacy_segments']} spaCy parse segments"
              if folder else "the project's cache is off (lfs.cache = \"none\")")
    return 0


def _init(args) -> int:
    from .notebook.scaffold import init_project

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    result = init_project(args.path, args.data, text_field=args.text_field, label_field=args.label_field,
                          id_field=args.id_field, split_field=args.split_field, classes=classes, name=args.name,
                          starter_lfs=args.starter_lfs, seed=args.seed)
    _print(args, {"project_file": str(result.project_file), "lf_module": result.lf_module,
                  "notebook": str(result.notebook), "columns": result.columns, "classes": list(result.classes),
                  "starter_lfs": list(result.starter_lfs), "source": result.source}, result.format())
    return 0


def _serve(args) -> int:
    import os

    from .errors import WeakTokenError
    from .serve.app import ServeSettings, check_token_strength, hash_token
    from .serve.feedback import utc_now
    from .serve.run import TOKEN_ENV, read_token, reexec_without_token, serve

    load_config(args.config, args.set)  # a bad config fails here, in one line, not in every worker
    token = ""
    try:
        if args.token_file:
            token = read_token(args.token_file)
            if not token:
                raise WeakTokenError(f"the token file {args.token_file} is empty")
        elif os.environ.get(TOKEN_ENV):
            token = os.environ[TOKEN_ENV]
        if token:
            check_token_strength(token)
    except OSError as exc:
        raise WeakTokenError(f"cannot read the token file: {exc}") from exc
    if os.environ.get(TOKEN_ENV) and args.reexec:
        reexec_without_token(["labeling", *args.argv], token)  # does not return
    limits = {name: getattr(args, name) for name in _SERVE_LIMITS if getattr(args, name) is not None}
    settings = ServeSettings(
        config_path=os.path.abspath(args.config), overrides=tuple(args.set), run_id=args.run_id,
        token_sha256=args.token_sha256 or (hash_token(token) if token else ""), store_text=args.store_text,
        lf_votes=args.lf_votes, started_at=utc_now(), **limits,
        ls_basic_auth_sha256=_ls_basic_auth(args.ls_basic_auth_file),
    )
    if not settings.token_sha256:
        print("warning: no token given (--token-file); write endpoints and explain will refuse every request",
              file=sys.stderr)
    serve(settings, host=args.host, port=args.port, workers=args.workers)
    return 0


def _basic_auth_pair(path: str) -> tuple[str, str] | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            user, _, password = handle.readline().strip().partition(":")
    except OSError as exc:
        raise LabelingError(f"cannot read the Label Studio Basic auth file: {exc}") from exc
    return user, password


def _ls_basic_auth(path: str) -> str:
    from .serve.ls_backend import read_basic_auth_file

    if not path:
        return ""
    try:
        return read_basic_auth_file(path)
    except OSError as exc:
        raise LabelingError(f"cannot read the Label Studio Basic auth file: {exc}") from exc


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

    init = commands.add_parser("init", help="Start a project from a data file or WRENCH folder: project.toml, "
                               "an LF module (starter LFs from dev gold labels), the LF notebook.",
                               description="Start a project from a data file (CSV/TSV with or without a header, "
                               "Parquet, JSONL) or a WRENCH folder: proposes the text, label, id and split columns "
                               "and the classes, writes project.toml, an LF module listed in lfs.modules (starter "
                               "keyword LFs from the dev split's gold labels) and write_lfs.ipynb. Overwrites "
                               "nothing; an ambiguous column stops it with the choices and the flag to pass.")
    init.add_argument("path", help="the new project folder (must not exist or be empty)")
    init.add_argument("--data", required=True, help="a .csv/.tsv/.parquet/.jsonl file (or a headerless TSV such as "
                      "SMSSpamCollection), or a WRENCH dataset folder")
    for role in ("text", "label", "id", "split"):
        init.add_argument(f"--{role}-field", default=None, metavar="COLUMN",
                          help=f"the {role} column (default: proposed from the data; '' = none)")
    init.add_argument("--classes", default=None, metavar="A,B,...", help="class names in index order "
                      "(default: from the label column, or the WRENCH folder's label.json)")
    init.add_argument("--name", default=None, help="project name (default: the folder's name)")
    init.add_argument("--seed", type=int, default=0, help="project.seed (the random split, the models)")
    init.add_argument("--starter-lfs", type=int, default=10, metavar="N",
                      help="at most N starter keyword LFs from dev gold labels (0: none)")
    init.add_argument("--json", action="store_true", help="print machine-readable JSON")
    init.set_defaults(func=_init)
    retrain = command("retrain", _retrain, "Apply LFs, fit the label and end models, evaluate, record the run.")
    retrain.add_argument("--quiet", action="store_true", help="no progress bars")
    retrain.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    command("lfs", _lfs, "List the project's labeling functions and their versions.")
    command("runs", _runs, "List the runs recorded in the project's store.")
    review = command("review", _review, "Push rows to Label Studio for review, or pull the answers in as gold labels.")
    review.add_argument("action", choices=("push", "pull", "connect", "predict-all"),
                        help="connect: register the server's /ls/ as the project's ML backend; predict-all: store "
                             "the served model's prediction on every task that has none of its version")
    review.add_argument("--url", default="http://127.0.0.1:8000/ls/",
                        help="connect, predict-all: the server's Label Studio backend URL (default %(default)s)")
    review.add_argument("--ls-basic-auth-file", default="", metavar="PATH",
                        help="connect, predict-all: 'user:password' the server was started with")
    review.add_argument("--batch", type=int, default=1000,
                        help="predict-all: tasks per listed page, per /ls/predict batch and per import "
                             "(default %(default)s)")
    review.add_argument("--progress", action="store_true", help="predict-all: a progress bar even off a terminal")
    review.add_argument("--strategy", default=None, help="push: entropy, margin, conflict, uncovered, low_confidence, "
                        "disagreed or random (default: review.strategy)")
    review.add_argument("--n", type=int, default=None, help="push: how many rows (default: review.n)")
    review.add_argument("--source", choices=("dataset", "served"), default="dataset",
                        help="push: the dataset's train rows or the served predictions")
    review.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="pull: read answers choosing class OLD as class NEW (a class renamed in the config)")
    refine_cmd = command("refine", _refine, "Refine from gold: LF accuracy, wrong votes, uncovered rows, "
                         "suggested LFs, likely label errors.")
    refine_cmd.add_argument("--top", type=int, default=10, help="how many LFs to suggest")
    command("history", _history, "List runs with their lineage, metrics, aliases and what changed.")
    reproduce = command("reproduce", _reproduce, "Re-run a recorded run from its stored config and compare "
                        "label-matrix hashes and metrics (exit 1 on a mismatch).")
    reproduce.add_argument("run_id")
    promote = command("promote", _promote, "Promote the candidate (or RUN_ID) to champion if it passes the gate "
                      "on the gold test split (exit 1 when refused).")
    promote.add_argument("run_id", nargs="?", default=None)
    promote.add_argument("--force", action="store_true", help="promote even when the gate refuses (recorded as forced, "
                         "with --reason and the user)")
    promote.add_argument("--reason", default=None, help="why (required with --force; recorded)")
    rollback = command("rollback", _rollback, "Point the served alias back at its previous version.")
    rollback.add_argument("--alias", default="production", help="alias to roll back (default: the served champion)")
    command("verify", _verify, "Check the dataset: schema, empty texts, duplicates, leakage, class balance, "
            "label names (exit 2 on a fatal problem).")
    monitor = command("monitor", _monitor, "Compare served traffic with the training data and say whether to "
                      "retrain (exit 3 when drift is found).")
    monitor.add_argument("--run-id", default=None, help="served run (default: the champion, else the latest run)")
    report = command("report", _report, "Write the HTML report of a run (default: the latest) beside the store.")
    report.add_argument("run_id", nargs="?", default=None)
    export = command("export-onnx", _export_onnx, "Export a run's scikit-learn end model to ONNX "
                     "(classifier graph + TF-IDF JSON).")
    export.add_argument("run_id")
    export.add_argument("out", help="new folder to write")
    serve_cmd = command("serve", _serve, "Serve the champion (or --run-id) end model over HTTP with uvicorn; "
                        "token from --token-file PATH ('-': stdin) or $LABELING_SERVE_TOKEN.")
    _serve_options(serve_cmd)
    store_cmd = command("store", _store_command, "upgrade: upgrade the project's store to this version's schema "
                        "(one transaction; --dry-run: print the steps only); copy --to TARGET: copy every table "
                        "into a new, empty store (a SQLite path or a postgresql:// URL) in one transaction.")
    store_cmd.add_argument("action", choices=("upgrade", "copy"))
    store_cmd.add_argument("--to", default=None, help="copy: the target store (SQLite file path or postgresql:// URL)")
    store_cmd.add_argument("--dry-run", action="store_true", help="print the migration steps, change nothing")
    schema = command("schema", _schema, "Show or change the label schema (the classes and their history): add, "
                     "rename, merge, split or retire a class across the store, the TOML and LF modules "
                     "(--dry-run: list every change; applied when nothing is lost, or with --yes).")
    schema.add_argument("action", choices=("show", "add", "rename", "merge", "split", "retire"))
    schema.add_argument("names", nargs="*", help="add NAME | rename OLD NEW | merge A B | split A | retire NAME")
    schema.add_argument("--into", nargs="+", default=None, metavar="CLASS",
                        help="merge A B --into C (C may be A, B or new); split A --into B C")
    schema.add_argument("--dry-run", action="store_true", help="print what the change would do, change nothing")
    schema.add_argument("--yes", action="store_true", help="apply even when gold/feedback rows lose their label "
                        "or LFs need edits by hand")
    command("clear-cache", _clear_cache, "Delete the project's cached LF votes and spaCy parses (its LFs' and its "
            "pipeline's only; other projects sharing the folder keep theirs).")
    return parser


#: serve options whose default is ServeSettings' (None on the command line: not given).
_SERVE_LIMITS = ("max_body_bytes", "max_explain_batch", "request_read_timeout_s", "lf_votes_max_texts", "alias_poll_s")


def _serve_options(sub: argparse.ArgumentParser) -> None:
    # Defaults left as None are ServeSettings' own (filled in by _serve): reading them here
    # would import the serving app (fastapi, pandas) to print any command's --help.
    sub.add_argument("--run-id", default="", help="serve this run only: it follows and moves no alias (promote "
                     "runs with `promote`, through the gate); default: the alias, else the latest run")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8000)
    sub.add_argument("--workers", type=int, default=1)
    sub.add_argument("--token-file", default="", metavar="PATH",
                     help="file holding the bearer token ('-': read it from stdin); else $LABELING_SERVE_TOKEN")
    sub.add_argument("--token-sha256", default="", help="sha256 hex of the bearer token, instead of the token")
    sub.add_argument("--store-text", action="store_true", help="log predicted texts, not only their sha256")
    sub.add_argument("--lf-votes", choices=("background", "inline", "off"), default="background",
                     help="LF votes logged with each prediction: computed after answering (default), before, or not")
    sub.add_argument("--no-lf-votes", dest="lf_votes", action="store_const", const="off", help="same as --lf-votes off")
    sub.add_argument("--max-body-bytes", type=int, default=None)
    sub.add_argument("--max-explain-batch", type=int, default=None,
                     help="most texts one explain request may hold")
    sub.add_argument("--request-read-timeout-s", type=float, default=None,
                     help="close a connection whose request has not fully arrived within this many seconds")
    sub.add_argument("--lf-votes-max-texts", type=int, default=None,
                     help="replace the LF-votes process after this many texts (bounds its memory)")
    sub.add_argument("--alias-poll-s", type=float, default=None)
    sub.add_argument("--ls-basic-auth-file", default="", metavar="PATH",
                     help="a file with one line 'user:password' that the /ls Label Studio backend routes then need "
                          "(enter the same in Label Studio's Connect Model form); default: open")


def main(argv: list[str] | None = None, *, reexec: bool = False) -> int:
    """Run one command. ``reexec``: the process is a command line of its own (``python -m
    labeling``), so ``serve`` may replace it to drop a token from its start-up environment."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv, args.reexec = argv, reexec
    try:
        return args.func(args)
    except LabelingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
