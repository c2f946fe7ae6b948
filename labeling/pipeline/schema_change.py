"""Label-schema changes: plan (what a change will touch) and apply (one store transaction, then files).

Functional core: ``build_plan`` turns the project's schema, a ``SchemaChange`` and what the
store and the files hold now into a ``SchemaPlan``: the gold and feedback rows relabelled or
unlabelled, the review tasks to re-review, the Label Studio config and answers, the LF-module
rewrite (a diff) and the votes a person must look at, the runs and aliases trained under
another schema, and the project TOML's new ``classes`` line. ``format_plan`` prints it
(``--dry-run``). Imperative shell: ``plan_change`` reads the inputs, ``apply_plan`` writes.

Crash rule: the store is migrated in one transaction (``store.label_schema.migrate_schema``)
that also records the files to write (project TOML, LF modules: old sha256 and new text) and
marks them pending. They are then each written atomically (temp file + rename) and the mark
cleared. A process killed in between leaves the store on the new schema with files pending:
``finish_pending`` (run by every ``labeling schema`` command and by retrain) writes the files
whose content is still the old one, so the project is on the old schema or the new, never a mix.
A change made with Label Studio connected records its Label Studio step in the same transaction
(``LABEL_STUDIO_STEP``); after the files the mark says "Label Studio pending"
(``LABEL_STUDIO_PENDING``) until the project there is migrated, so a run killed during that step
is finished by the next ``labeling schema`` command with Label Studio connected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ProjectConfig, load_config
from ..data.schema import LabelSchema, SchemaChange, apply_change, class_mapping
from ..errors import SchemaChangeError
from ..lf.class_refs import rewrite_class_constants
from ..store.connection import connect
from ..store.label_schema import (current_schema, ensure_schema, files_written, map_label_set, migrate_schema,
                                  rows_under_schema, schema_versions)

#: the changes a multi-label project refuses: why, and what to do instead. Its stored label sets map
#: class by class under add, rename and retire (a retired class leaves each set, the others stay).
MULTILABEL_REFUSED = {
    "split": "a label set holding the class does not say which of the new classes its row carries (one, the "
             "other or both), so no stored set can be mapped. Instead: `labeling schema add` each new class, "
             "review the rows of the old class in Label Studio so reviewers tick the new ones, then "
             "`labeling schema retire` the old class",
    "merge": "in a label set the two classes are separate answers, and each run's LF votes (a yes on one, a NOT "
             "on the other), per-class thresholds and label models cannot be added into one class's. Instead: "
             "`labeling schema add` the merged class, review the rows of both in Label Studio so reviewers tick "
             "it, then `labeling schema retire` each of the two",
}
#: ``LABELING_SCHEMA_KILL_AT=N``: the process SIGKILLs itself at the Nth step of an apply (a crash-test hook).
KILL_AT_ENV = "LABELING_SCHEMA_KILL_AT"
#: the entry of a change's ``files`` that stands for its Label Studio step (not a file)
LABEL_STUDIO_STEP = "label_studio"
#: ``files_pending`` once the files are written while the Label Studio step is still to do
LABEL_STUDIO_PENDING = 2


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FileEdit:
    """One file the change rewrites: its content's sha256 now and its new text."""

    path: str
    old_sha256: str
    new_text: str
    diff: str

    def to_json(self) -> dict:
        return {"path": self.path, "old_sha256": self.old_sha256, "new_sha256": _sha256(self.new_text),
                "new_text": self.new_text}


@dataclass(frozen=True)
class SchemaPlan:
    """What ``change`` does to the project (every list is what the apply then does, row for row)."""

    project: str
    change: SchemaChange
    old: LabelSchema
    new: LabelSchema
    mapping: tuple[int | None, ...]
    # {task_key, annotator, old, new}: relabelled (new: class) or unlabelled (new: None); a label set's
    # old and new are lists of classes, and ``lost`` the classes it loses (a retired one)
    gold: tuple[dict, ...]
    feedback: tuple[dict, ...]  # {id, old, new}
    review: tuple[str, ...]  # task keys whose gold is unlabelled: re-review them (old label shown)
    label_studio: dict  # {"choices": [old, new], "answers_renamed": n, "answers_unlabelled": n}
    files: tuple[FileEdit, ...]  # project TOML first, then LF modules
    lf_votes: tuple[str, ...]  # "path:line: code" voting with a class whose index or name changes
    lf_manual: tuple[str, ...]  # edits only a person can make
    runs: tuple[dict, ...]  # {id, schema_version, comparison}
    aliases: tuple[dict, ...]  # {alias, run_id, comparison}

    @property
    def clean(self) -> bool:
        """No label is lost and no LF needs a person: the change may apply without ``--yes``."""
        return not (any(r["new"] is None or r.get("lost") for r in self.gold + self.feedback) or self.lf_manual)

    def to_json(self) -> dict:
        return {"project": self.project, "change": self.change.to_json(), "old_version": self.old.version,
                "new_version": self.new.version, "old_classes": list(self.old.classes),
                "new_classes": list(self.new.classes), "mapping": list(self.mapping), "gold": list(self.gold),
                "feedback": list(self.feedback), "review": list(self.review), "label_studio": self.label_studio,
                "files": [{"path": f.path, "diff": f.diff} for f in self.files], "lf_votes": list(self.lf_votes),
                "lf_manual": list(self.lf_manual), "runs": list(self.runs), "aliases": list(self.aliases),
                "clean": self.clean}


def comparison(change: SchemaChange) -> str:
    """How the gate compares a run of the old schema with one of the new (issue 27)."""
    if change.op in ("rename", "merge"):
        return "through the mapping (the old run's predictions mapped)"
    return "on the classes both schemas know"


_CLASSES_LINE = re.compile(r"^(?P<lead>[ \t]*classes[ \t]*=[ \t]*)\[[^\]]*\](?P<rest>[^\n]*)", re.MULTILINE)


def rewrite_toml(text: str, new: LabelSchema, renamed: dict[str, str]) -> str:
    """The project TOML with ``[project] classes`` (and an ``f1:<class>`` metric of a renamed class)
    rewritten, comments and layout elsewhere kept. Raises ``SchemaChangeError`` when the file's
    ``classes`` is not one plain list this can rewrite, or the metric names a class that goes."""
    data = tomllib.loads(text)
    project = data.get("project", {})
    matches = list(_CLASSES_LINE.finditer(text))
    if len(matches) != 1:
        raise SchemaChangeError("the project TOML's classes must be one `classes = [...]` list to be rewritten")
    listed = ", ".join(json.dumps(c) for c in new.classes)
    out = (text[:matches[0].start()] + f"{matches[0]['lead']}[{listed}]  # index = position; label schema "
           f"{new.version}" + text[matches[0].end():])
    metric = project.get("metric", "")
    if metric.startswith("f1:"):
        positive = metric[3:]
        if positive in renamed:
            out = re.sub(rf'(metric\s*=\s*)"f1:{re.escape(positive)}"', rf'\g<1>"f1:{renamed[positive]}"', out, count=1)
        elif positive not in new.classes:
            raise SchemaChangeError(f"project.metric = {metric!r} names class {positive!r}, which this change "
                                    "removes: set another metric first")
    expected = {**project, "classes": list(new.classes)}
    if "metric" in project and project["metric"].startswith("f1:") and project["metric"][3:] in renamed:
        expected["metric"] = f"f1:{renamed[project['metric'][3:]]}"
    if tomllib.loads(out) != {**data, "project": expected}:
        raise SchemaChangeError("rewriting the project TOML's classes would change other settings: edit it by hand")
    return out


def _diff(path: str, old: str, new: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{Path(path).name}", f"b/{Path(path).name}"))


def build_plan(project: str, schema: LabelSchema, change: SchemaChange, rows: dict, *, toml: tuple[str, str],
               lf_sources: dict[str, str]) -> SchemaPlan:
    """The plan of ``change`` (pure): ``rows``: ``store.label_schema.rows_under_schema``; ``toml``:
    ``(path, text)`` of the project TOML; ``lf_sources``: LF module path -> source.
    Raises ``SchemaChangeError`` for a change that does not fit the schema."""
    new, mapping = apply_change(schema, change)
    names = class_mapping(schema.classes, new.classes, mapping)
    renamed = {change.sources[0]: change.targets[0]} if change.op == "rename" else {}

    def moved(row):
        """{old, new} class of a row whose index changes (new None: unlabelled), or {old, new, lost}
        classes of a label set whose indices change; None otherwise."""
        label, labels = row["label"], _label_set(row)
        if labels is not None:
            after = map_label_set(labels, mapping)
            if after == sorted(labels):
                return None
            return {"old": [schema.classes[c] for c in labels], "new": [new.classes[c] for c in after],
                    "lost": [schema.classes[c] for c in labels if mapping[c] is None]}
        if label is None or not 0 <= label < len(mapping) or mapping[label] == label:
            return None
        return {"old": schema.classes[label], "new": names[schema.classes[label]]}

    gold = tuple({"task_key": r["task_key"], "annotator": r["annotator"], **m} for r in rows["gold"]
                 if (m := moved(r)))
    feedback = tuple({"id": r["id"], **m} for r in rows["feedback"] if (m := moved(r)))
    review = tuple(sorted({g["task_key"] for g in gold if g["new"] is None}))
    answers = [r for r in rows["gold"] if r["source"] == "label_studio"]
    # each answer's classes (one, or a set's): renamed when it names a renamed class, relabelled when
    # one moves to another index, unlabelled when it has no class left (a set never is: it keeps the rest)
    held = [(_label_set(r), [r["label"]] if _label_set(r) is None else _label_set(r)) for r in answers]
    label_studio = {
        "choices": [list(schema.classes), list(new.classes)],
        "answers_renamed": sum(1 for _, cs in held if any(schema.classes[c] in renamed for c in cs)),
        "answers_relabelled": sum(1 for _, cs in held if any(mapping[c] not in (None, c) for c in cs)),
        "answers_unlabelled": sum(1 for s, cs in held if s is None and mapping[cs[0]] is None),
    }
    toml_path, toml_text = toml
    new_toml = rewrite_toml(toml_text, new, renamed)
    files = [FileEdit(toml_path, _sha256(toml_text), new_toml, _diff(toml_path, toml_text, new_toml))]
    votes, manual = [], []
    for path, source in sorted(lf_sources.items()):
        rewrite = rewrite_class_constants(source, schema.classes, new.classes, mapping, renamed, path=path)
        votes += rewrite.votes
        manual += rewrite.manual
        if rewrite.new_source != source:
            files.append(FileEdit(path, _sha256(source), rewrite.new_source, _diff(path, source, rewrite.new_source)))
    how = comparison(change)
    runs = tuple({"id": r["id"], "schema_version": r["schema_version"], "comparison": how} for r in rows["runs"])
    aliases = tuple({"alias": a["alias"], "run_id": a["run_id"], "comparison": how} for a in rows["aliases"])
    return SchemaPlan(project, change, schema, new, mapping, gold, feedback, review, label_studio, tuple(files),
                      tuple(votes), tuple(manual), runs, aliases)


def _label_set(row: dict) -> list[int] | None:
    """A multi-label row's set of class indices (``labels``, JSON in the store), None for a class row."""
    labels = row.get("labels")
    return None if labels is None else (json.loads(labels) if isinstance(labels, str) else list(labels))


def _rows(title: str, items, fmt) -> list[str]:
    items = list(items)
    return [f"{title}: {len(items)}"] + [f"  {fmt(i)}" for i in items]


def format_plan(plan: SchemaPlan) -> str:
    """The ``--dry-run`` listing: every row, answer, file and run the change touches."""
    def label(row):
        lost = f" (loses {', '.join(row['lost'])})" if row.get("lost") else ""
        return f"{row['old']} -> {row['new'] if row['new'] is not None else '(unlabelled)'}{lost}"

    ls = plan.label_studio
    lines = [f"schema {plan.old.version} -> {plan.new.version}: {plan.change.describe()}",
             f"classes: {list(plan.old.classes)} -> {list(plan.new.classes)}",
             *_rows("gold rows", plan.gold, lambda g: f"{g['task_key']} ({g['annotator']}): {label(g)}"),
             *_rows("feedback rows", plan.feedback, lambda f: f"{f['id']}: {label(f)}"),
             *_rows("review tasks to re-review (old label shown)", plan.review, str),
             f"Label Studio: label config choices {ls['choices'][0]} -> {ls['choices'][1]}; answers renamed "
             f"{ls['answers_renamed']}, relabelled {ls['answers_relabelled']}, unlabelled {ls['answers_unlabelled']}",
             *_rows("files rewritten", plan.files, lambda f: f.path),
             *[line for f in plan.files for line in f.diff.splitlines()],
             *_rows("LF lines voting a changed class", plan.lf_votes, str),
             *_rows("LF edits needed by hand", plan.lf_manual, str),
             *_rows("runs under another schema (compared " + comparison(plan.change) + ")", plan.runs,
                    lambda r: f"{r['id']} (schema {r['schema_version']})"),
             *_rows("aliases", plan.aliases, lambda a: f"{a['alias']} -> {a['run_id']}"),
             "clean: applies without --yes" if plan.clean else "not clean: labels are lost or LFs need a person "
             "(apply with --yes)"]
    return "\n".join(lines)


def _lf_module_paths(config: ProjectConfig) -> list[Path]:
    root = config.resolve(config.lfs.root)
    paths = []
    for module in config.lfs.modules:
        base = root / Path(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                paths.append(candidate)
                break
    return paths


def project_schema(config: ProjectConfig) -> LabelSchema:
    """The project's current schema from its store (registered from ``config.classes`` when the store
    has none). Raises ``SchemaChangeError`` when the TOML's classes disagree with the store's."""
    with connect(config.resolve(config.store)) as conn:
        first = LabelSchema.initial(config.classes)
        row = ensure_schema(conn, config.name, first.version, first.classes, first.history_json())
    schema = LabelSchema.from_json(row["classes"], row["history"])
    if schema.classes != tuple(config.classes):
        pending = " (its files are still being written: run `labeling schema show` to finish)" \
            if row["files_pending"] else ""
        raise SchemaChangeError(
            f"project.classes {list(config.classes)} differ from the store's label schema {row['version']} "
            f"{list(schema.classes)}{pending}; change classes with `labeling schema ...`, not by editing the TOML")
    return schema


def plan_change(config_path: str | Path, change: SchemaChange, overrides=(), review=None) -> SchemaPlan:
    """Read the project, its store and its LF modules, and plan ``change`` (nothing written but a
    first registration of the schema, and an interrupted change finished: ``finish_pending``).
    Raises ``SchemaChangeError`` while an earlier change's Label Studio step is pending and
    ``review`` is None (connect Label Studio first), for a spans project, and for a split or merge of
    a multi-label project (``MULTILABEL_REFUSED`` says why and what to do instead)."""
    finish_pending(config_path, review)
    if label_studio_pending(config_path):
        raise SchemaChangeError("the last label-schema change did not finish in Label Studio: set LABEL_STUDIO_URL "
                                "and LABEL_STUDIO_API_KEY and run `labeling schema show` to finish it first")
    config = load_config(config_path, overrides)
    if config.task == "spans":
        # gold spans (type names) are not rewritten by a change yet: refusing beats leaving them
        # meaning other types
        raise SchemaChangeError(
            f"labeling schema {change.op}: project {config.name!r} has task = 'spans', whose stored gold spans a "
            "label-schema change does not map yet; single_label and multi_label projects can change their classes")
    if config.task == "multi_label" and change.op in MULTILABEL_REFUSED:
        raise SchemaChangeError(f"labeling schema {change.op}: project {config.name!r} has task = 'multi_label': "
                                f"{MULTILABEL_REFUSED[change.op]}")
    schema = project_schema(config)
    with connect(config.resolve(config.store)) as conn:
        rows = rows_under_schema(conn, config.name, schema.version)
    path = Path(config_path).resolve()
    sources = {str(p): p.read_text(encoding="utf-8") for p in _lf_module_paths(config)}
    return build_plan(config.name, schema, change, rows, toml=(str(path), path.read_text(encoding="utf-8")),
                      lf_sources=sources)


class _Steps:
    """Counts the apply's steps; SIGKILLs the process at step ``$LABELING_SCHEMA_KILL_AT``."""

    def __init__(self):
        self.n, self.kill_at = 0, int(os.environ.get(KILL_AT_ENV) or 0)

    def __call__(self, name: str) -> None:
        self.n += 1
        if self.n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _write_atomically(path: Path, text: str, step) -> None:
    tmp = path.with_name(f".{path.name}.schema-tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    step(f"temp written {path}")
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    step(f"replaced {path}")


def _write_pending(conn: Connection, project: str, record: dict, step) -> list[str]:
    written = []
    entries = record.get("files") or []
    if record["files_pending"] == LABEL_STUDIO_PENDING:
        return written
    for entry in entries:
        if LABEL_STUDIO_STEP in entry:
            continue
        path = Path(entry["path"])
        now = _sha256(path.read_text(encoding="utf-8")) if path.is_file() else None
        if now == entry["new_sha256"]:
            continue
        if now != entry["old_sha256"]:
            raise SchemaChangeError(f"{path} changed since schema {record['version']} was planned: it is not "
                                    "rewritten; edit it to the new schema by hand, then run the command again")
        _write_atomically(path, entry["new_text"], step)
        written.append(str(path))
    files_written(conn, project, record["version"],
                  LABEL_STUDIO_PENDING if any(LABEL_STUDIO_STEP in e for e in entries) else 0)
    step("files noted written")
    return written


def _migrate_label_studio(conn: Connection, project: str, record: dict, review, step) -> dict | None:
    """The Label Studio step of the change to ``record`` (idempotent), then nothing is pending.
    None when no Label Studio step is pending or ``review`` is None (not connected)."""
    if record["files_pending"] != LABEL_STUDIO_PENDING or review is None:
        return None
    entry = next(e[LABEL_STUDIO_STEP] for e in record["files"] if LABEL_STUDIO_STEP in e)
    step("label studio: begun")
    moved = review.migrate_schema(entry["old_classes"], entry["new_classes"], entry["names"])
    files_written(conn, project, record["version"], 0)
    step("label studio: done")
    return moved


def _store_of(config_path: str | Path) -> tuple[str, Path] | None:
    """``(project name, store path)`` read from the TOML as it is (None when it cannot say)."""
    path = Path(config_path)
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    store = Path(project.get("store", ProjectConfig.store)).expanduser()
    store = store if store.is_absolute() else (path.parent / store).resolve()
    return (project["name"], store) if isinstance(project.get("name"), str) and store.is_file() else None


def finish_pending(config_path: str | Path, review=None) -> list[str]:
    """Write the files of a schema change whose process died after the store commit, and migrate
    its Label Studio project when that step was cut short and ``review`` (the project's
    ``LabelStudioReview``) is given; returns what it finished (paths, and ``"Label Studio"``).

    Nothing to do (and nothing opened beyond the store) when no change is pending."""
    found = _store_of(config_path)
    if found is None:
        return []
    project, store = found
    with connect(store) as conn:
        record = current_schema(conn, project)
        if not record or not record["files_pending"]:
            return []
        steps = _Steps()
        done = _write_pending(conn, project, record, steps)
        record = current_schema(conn, project)
        if _migrate_label_studio(conn, project, record, review, steps) is not None:
            done.append("Label Studio")
        return done


def label_studio_pending(config_path: str | Path) -> bool:
    """Whether a schema change's Label Studio step is still to do (connect it and run ``labeling schema show``)."""
    found = _store_of(config_path)
    if found is None:
        return False
    with connect(found[1]) as conn:
        record = current_schema(conn, found[0])
    return bool(record) and record["files_pending"] == LABEL_STUDIO_PENDING


@dataclass(frozen=True)
class SchemaResult:
    plan: SchemaPlan
    applied: bool
    files: tuple[str, ...] = field(default=())
    label_studio: dict | None = None  # answers renamed / unlabelled there (None: not connected)


def apply_plan(config_path: str | Path, plan: SchemaPlan, *, yes: bool = False, overrides=(),
               review=None) -> SchemaResult:
    """Apply ``plan`` (from ``plan_change``): nothing when it is not clean and ``yes`` is False.

    ``review``: the project's ``LabelStudioReview`` (None: no Label Studio): its config and
    answers follow, after the store and the files (``LabelStudioReview.migrate_schema``,
    idempotent). Raises ``SchemaChangeError`` when the store's schema moved since the plan, or a
    file to rewrite changed since (the store is then already on the new schema: fix it, re-run)."""
    if not plan.clean and not yes:
        return SchemaResult(plan, False)
    config = load_config(config_path, overrides)
    step = _Steps()
    files = [f.to_json() for f in plan.files]
    if review is not None:
        names = class_mapping(plan.old.classes, plan.new.classes, plan.mapping)
        files.append({LABEL_STUDIO_STEP: {"old_classes": list(plan.old.classes), "new_classes": list(plan.new.classes),
                                          "names": {old: new for old, new in names.items() if new != old}}})
    new = {"version": plan.new.version, "classes": list(plan.new.classes), "history": plan.new.history_json(),
           "change": plan.change.to_json(), "plan": plan.to_json(), "files": files}
    with connect(config.resolve(config.store)) as conn:
        migrate_schema(conn, plan.project, old_version=plan.old.version, new=new, mapping=plan.mapping,
                       checkpoint=step)
        step("store committed")
        written = _write_pending(conn, plan.project, current_schema(conn, plan.project), step)
        moved = _migrate_label_studio(conn, plan.project, current_schema(conn, plan.project), review, step)
    return SchemaResult(plan, True, tuple(written), moved)


def show_schema(config_path: str | Path, overrides=(), review=None) -> dict:
    """The project's schema: current version and classes, and every version with the change that made it
    (an interrupted change is finished first, its Label Studio step when ``review`` is given)."""
    finished = finish_pending(config_path, review)
    config = load_config(config_path, overrides)
    schema = project_schema(config)
    with connect(config.resolve(config.store)) as conn:
        versions = schema_versions(conn, config.name)
    return {"version": schema.version, "classes": list(schema.classes), "finished_files": finished,
            "label_studio_pending": label_studio_pending(config_path),
            "history": [{"version": v["version"], "classes": v["classes"], "created_at": v["created_at"],
                         "change": SchemaChange.from_json(v["change"]).describe() if v["change"] else "init",
                         "previous_version": v["previous_version"]} for v in versions]}


def format_show(shown: dict) -> str:
    lines = [f"label schema {shown['version']}: {', '.join(f'{i}={c}' for i, c in enumerate(shown['classes']))}"]
    lines += [f"finished {'migrating' if p == 'Label Studio' else 'writing'} {p} (a change was interrupted)"
              for p in shown["finished_files"]]
    if shown.get("label_studio_pending"):
        lines.append("Label Studio still has the previous classes (a change was interrupted): set LABEL_STUDIO_URL "
                     "and LABEL_STUDIO_API_KEY and run `labeling schema show` to finish it")
    lines += [f"  {v['version']}  {v['created_at']}  {v['change']}  -> {v['classes']}" for v in shown["history"]]
    return "\n".join(lines)


__all__ = ["FileEdit", "SchemaPlan", "SchemaResult", "apply_plan", "build_plan", "finish_pending", "format_plan",
           "format_show", "label_studio_pending", "plan_change", "project_schema", "rewrite_toml", "show_schema"]
