"""``labeling init``: a new project folder from a data file, ready to retrain.

The columns (text, gold label, id, split) and the classes are proposed from the data;
when a role has more than one candidate nothing is written and one ``ConfigError``
lists every choice with the flag that settles it. With gold labels, starter keyword
LFs are suggested from the dev split's labelled rows only (the refinement's engine,
``labeling.review.refinement.suggest_keyword_lfs``, with its readiness bar), so the
new project retrains at once; test rows are never read.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import keyword
import os
import re
import shutil
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import (
    DatasetConfig,
    EndModelConfig,
    LabelModelConfig,
    LFConfig,
    MonitorConfig,
    PromotionConfig,
    ReviewConfig,
    SlicesConfig,
    VerifyConfig,
    project_config_from_dict,
)
from ..data.datasets import load_dataset, read_table
from ..data.wrench import load_wrench
from ..errors import ConfigError, DatasetError
from ..review.refinement import format_lf_code, readiness, suggest_keyword_lfs

# Column names that say a column's role; a single match settles the role.
TEXT_NAMES = ("text", "sentence", "content", "comment", "body", "review", "message", "document", "tweet", "sms",
              "utterance", "question", "title")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "gold", "y", "sentiment", "intent", "tag")
ID_NAMES = ("id", "_id", "uid", "row_id", "doc_id", "example_id", "comment_id", "key", "idx")
SPLIT_VALUES = {"train", "dev", "valid", "validation", "test"}
#: most distinct values a label column may hold to be proposed without a flag
MAX_CLASSES = 100
_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                   ".ndjson": "jsonl"}


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` wrote: the project file, the LF module (``lf_module``, a
    dotted name importable from the project folder, at ``lf_path``), the notebook, the
    columns and classes it chose, and the starter LFs' names (empty without gold)."""

    project_file: Path
    lf_module: str
    lf_path: Path
    notebook: Path
    columns: dict[str, str]
    classes: tuple[str, ...]
    starter_lfs: tuple[str, ...]
    source: str  # "file" or "wrench"

    def format(self) -> str:
        roles = ", ".join(f"{role} = {column!r}" for role, column in self.columns.items() if column)
        lines = [f"wrote {self.project_file}", f"  data: {self.source}; {roles or 'the WRENCH folder'}",
                 f"  classes: {list(self.classes)}",
                 f"  LF module {self.lf_module} ({self.lf_path.name}): "
                 + (f"{len(self.starter_lfs)} starter LFs from the dev split's gold labels"
                    if self.starter_lfs else "empty: write your first LFs there or in the notebook"),
                 f"  notebook: {self.notebook}",
                 f"next: .venv/bin/python -m labeling retrain --config {self.project_file}"]
        return "\n".join(lines)


# ---------------------------------------------------------------- reading the data


@dataclass(frozen=True)
class _Layout:
    """How a CSV-like file is laid out, as ``dataset`` settings."""

    format: str
    delimiter: str = ""
    header: bool = True
    quoted: bool = True


def _sample_lines(path: Path, n: int = 200) -> list[str]:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return [line for _, line in zip(range(n), handle)]


def _sniff(path: Path) -> _Layout:
    """Format, delimiter, header row and quoting of a data file (suffix first, then content)."""
    suffix = path.suffix.lower()
    fmt = _SUFFIX_FORMATS.get(suffix)
    if fmt in ("parquet", "jsonl"):
        return _Layout(fmt)
    lines = [line.rstrip("\r\n") for line in _sample_lines(path)]
    lines = [line for line in lines if line]
    if not lines:
        raise DatasetError(f"{path}: the file is empty")
    if fmt is None and lines[0].lstrip().startswith("{"):
        return _Layout("jsonl")
    delimiter = "\t" if suffix == ".tsv" else "," if suffix == ".csv" else ""
    if not delimiter:
        # the separator giving every sampled line the same number (>1) of fields; tab first
        for candidate in ("\t", ",", ";", "|"):
            widths = {len(next(csv.reader([line], delimiter=candidate, quoting=csv.QUOTE_NONE))) for line in lines}
            if len(widths) == 1 and widths.pop() > 1:
                delimiter = candidate
                break
        else:
            raise DatasetError(f"{path}: cannot tell the format (not CSV/TSV with a constant number of fields, "
                               "Parquet or JSONL); give the file a .csv, .tsv, .parquet or .jsonl suffix")
    rows = list(csv.reader(lines, delimiter=delimiter))
    first, rest = rows[0], rows[1:]
    # a header row: short distinct names, none of them a value seen again in its column
    seen = [{row[j] for row in rest if j < len(row)} for j in range(len(first))]
    header = (len(set(first)) == len(first)
              and all(re.fullmatch(r"[A-Za-z_][\w .\-]{0,63}", cell or "") for cell in first)
              and not any(cell in seen[j] for j, cell in enumerate(first)))
    # quotes: ordinary characters when reading them as quotes would merge lines into one row
    quoted = True
    if any('"' in line for line in lines):
        n_lines = sum(1 for _ in path.open(encoding="utf-8", errors="replace")) - header
        layout = _Layout("csv", delimiter, header, True)
        try:
            quoted = len(_read(path, layout, _names(path, layout))) == n_lines
        except DatasetError:
            quoted = False
    return _Layout("csv", delimiter, header, quoted)


def _names(path: Path, layout: _Layout) -> tuple[str, ...]:
    """Placeholder names for the columns of a file without a header row."""
    if layout.format != "csv" or layout.header:
        return ()
    first = next(csv.reader(_sample_lines(path, 1), delimiter=layout.delimiter,
                            quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE))
    return tuple(f"column_{j + 1}" for j in range(len(first)))


def _read(path: Path, layout: _Layout, columns: tuple[str, ...]) -> pd.DataFrame:
    return read_table(path, format=layout.format, delimiter=layout.delimiter if layout.delimiter != "," else "",
                      columns=columns, quoted=layout.quoted)


# ---------------------------------------------------------------- proposing the columns


def _is_texty(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, str) for v in values.head(200))


def _mean_length(series: pd.Series) -> float:
    values = series.dropna()
    return float(values.astype(str).str.len().mean()) if len(values) else 0.0


def _named(columns: Sequence[str], names: Sequence[str]) -> list[str]:
    return [c for c in columns if str(c).strip().lower() in names]


def _split_column(frame: pd.DataFrame) -> list[str]:
    out = []
    for column in frame.columns:
        values = set(frame[column].dropna().astype(str).str.strip().str.lower().unique()[:10])
        if "train" in values and values <= SPLIT_VALUES and len(values) >= 2:
            out.append(column)
    return out


def _choose(role: str, given: str | None, candidates: list[str], columns: list[str], problems: list[str],
            flag: str, *, optional: bool) -> str:
    """The column for ``role``: ``given`` (checked), the single candidate, "" when there is
    none and the role is optional; otherwise a line is added to ``problems``."""
    if given is not None:
        if given and given not in columns:
            problems.append(f"{role}: no column {given!r}; columns are {columns}")
        return given
    if len(candidates) == 1:
        return candidates[0]
    if not candidates and optional:
        return ""
    choices = candidates or columns
    none = f", or {flag} '' for none" if optional else ""
    problems.append(f"{role}: {'several columns could be it' if candidates else 'no column looks like it'}: "
                    f"{', '.join(map(repr, choices))}; pass {flag} COLUMN{none}")
    return ""


def propose_columns(frame: pd.DataFrame, *, text_field: str | None = None, label_field: str | None = None,
                    id_field: str | None = None, split_field: str | None = None) -> dict[str, str]:
    """``{"text", "label", "id", "split"}`` -> column ("" = none) for ``frame``.

    A role given as an argument is taken as given ("" = none); otherwise a column whose
    name says the role (``TEXT_NAMES``, ``LABEL_NAMES``, ``ID_NAMES``; a split column holds
    only train/dev/valid/test) settles it, then the data: the text is the one column of long,
    mostly distinct strings, the label the one other column with 2..``MAX_CLASSES`` values.
    Raises ``ConfigError`` listing every undecided role with its choices and flag."""
    columns = [str(c) for c in frame.columns]
    problems: list[str] = []
    split = _choose("split column", split_field, _split_column(frame), columns, problems, "--split-field",
                    optional=True)
    ids = [c for c in _named(columns, ID_NAMES) if frame[c].notna().all() and frame[c].is_unique]
    id_ = _choose("id column", id_field, ids, columns, problems, "--id-field", optional=True)
    rest = [c for c in columns if c not in (split, id_)]
    texty = [c for c in rest if _is_texty(frame[c])]
    named = _named(texty, TEXT_NAMES)
    n = max(1, len(frame))
    long = [c for c in texty if _mean_length(frame[c]) >= 15 and frame[c].nunique() >= 0.5 * n]
    text = _choose("text column", text_field, named if len(named) == 1 else long, columns, problems, "--text-field",
                   optional=False)
    rest = [c for c in rest if c != text]
    named = _named(rest, LABEL_NAMES)
    few = [c for c in rest if 2 <= frame[c].nunique() <= min(MAX_CLASSES, max(2, n // 2))
           and not isinstance(frame[c].dropna().head(1).tolist()[0] if frame[c].notna().any() else None, (list, dict))
           and (not _is_texty(frame[c]) or _mean_length(frame[c]) <= 40)]
    label = _choose("label column", label_field, named if len(named) == 1 else few, columns, problems,
                    "--label-field", optional=True)
    if problems:
        raise ConfigError("cannot tell which column is which; nothing was written:\n  " + "\n  ".join(problems))
    return {"text": text, "label": label, "id": id_, "split": split}


def propose_classes(labels: pd.Series, *, column: str = "label") -> tuple[str, ...]:
    """The class names the gold labels use: sorted names, or ``"0".."k-1"`` for indices.

    Raises ``DatasetError`` for list-valued labels (multi-label or span annotations,
    which need one single-label column), and ``ConfigError`` when fewer than two classes
    are seen or integer labels are not 0..k-1 (pass ``--classes``)."""
    values = labels.dropna()
    values = values[~values.map(lambda v: isinstance(v, str) and not v.strip())]
    if values.map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray))).any():
        raise DatasetError(f"label column {column!r} holds lists or objects (multi-label or span annotations); "
                           "a project trains a single-label classifier: write one class name per row in a column "
                           "of its own and pass --label-field")
    names = sorted({str(v).strip() for v in values})
    if len(names) < 2:
        raise ConfigError(f"label column {column!r} has {len(names)} class(es) {names}; a project needs at least two: "
                          "pass --classes A,B,... (or --label-field '' when the file has no gold labels)")
    if all(re.fullmatch(r"-?\d+(\.0+)?", n) for n in names):
        ints = sorted({int(float(n)) for n in names})
        if ints != list(range(len(ints))):
            raise ConfigError(f"label column {column!r} holds class indices {ints}, not 0..{len(ints) - 1}: "
                              "pass --classes with the class names in index order")
        return tuple(str(i) for i in ints)
    return tuple(names)


# ---------------------------------------------------------------- writing the project


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "project"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"p_{name}"
    return name


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


_SECTION_NOTES = {
    "dataset": "where the rows come from and how they are split (dev and test need gold labels)",
    "lfs": "labeling-function modules, importable from `root` (this folder)",
    "label_model": "combines the LF votes; auto = chosen on dev",
    "end_model": "the classifier trained on the label model's labels; auto = chosen on dev only",
    "review": "Label Studio review (labeling review push/pull)",
    "verify": "ingestion checks run by retrain and `labeling verify`",
    "monitor": "drift of served traffic (`labeling monitor`)",
    "promotion": "the gate a candidate passes to become the served champion",
    "slices": "Snorkel slicing functions: metrics per slice",
}
_CLASSES = {"dataset": DatasetConfig, "lfs": LFConfig, "label_model": LabelModelConfig, "end_model": EndModelConfig,
            "review": ReviewConfig, "verify": VerifyConfig, "monitor": MonitorConfig, "promotion": PromotionConfig,
            "slices": SlicesConfig}


def render_project_toml(values: dict[str, dict[str, Any]], comments: dict[str, str], header: str) -> str:
    """A project file: the settings in ``values`` (section -> key -> value, ``project``
    first), each with its comment from ``comments`` ("section.key"), then every other
    setting of the section commented out at its default, so all of them are in view."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section in ("project", *_CLASSES):
        given = values.get(section, {})
        out += ["", f"[{section}]" + (f"  # {_SECTION_NOTES[section]}" if section in _SECTION_NOTES else "")]
        for key, value in given.items():
            line = f"{key} = {_toml_value(value)}"
            note = comments.get(f"{section}.{key}")
            out.append(f"{line:<40}  # {note}" if note else line)
        if section in _CLASSES:
            for f in dataclasses.fields(_CLASSES[section]):
                if f.name not in given:
                    out.append(f"# {f.name} = {_toml_value(getattr(_CLASSES[section](), f.name))}")
    return "\n".join(out) + "\n"


def _notebook(project: str, module: str, classes: Sequence[str]) -> dict:
    """The LF-writing notebook (notebooks/write_lfs.ipynb's steps) opened on this project."""
    from ..review.refinement import class_constants

    constants = class_constants(classes)
    consts = ", ".join(constants.values())
    values = ", ".join(str(i) for i in constants)
    first = constants[len(classes) - 1]

    def cell(kind: str, text: str) -> dict:
        out = {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": {}, "source": text.strip("\n")}
        return {**out, "execution_count": None, "outputs": []} if kind == "code" else out

    cells = [
        cell("markdown", f"# Write labeling functions for `{project}`\n\nThe workbench opens the project once "
             "(splits, its LFs, its label model) and then answers for any new LF in a second or two: coverage, "
             "overlap and conflict on train, dev accuracy with a 95% Wilson interval, the label model's dev score "
             "with and without it, its wrong votes on dev, rows no LF covers. `save` writes the session's new LFs "
             "into a module, checks it votes the same, and adds it to `lfs.modules` in `project.toml`."),
        cell("code", "from labeling import (\n    Workbench, format_summary, keyword_lf, labeling_function, "
             "load_config, regex_lf, run_retrain, similar_to,\n)\n\n"
             f"{consts} = {values}\nABSTAIN = -1\n\nconfig = load_config('project.toml')\nwb = Workbench(config)\nwb"),
        cell("markdown", "## Look at the data\n\nRows no LF votes on yet, and a search over the labelled dev rows:"),
        cell("code", "wb.sample(10, where='uncovered')"),
        cell("code", "wb.search(r'\\bfree\\b', split='dev')"),
        cell("markdown", "## Try an LF\n\nA keyword LF is scanned over all texts at once. Replace the words "
             "and the class with your own:"),
        cell("code", f"kw_first = keyword_lf('kw_first', ['free', 'win'], {first})\nwb.try_lf(kw_first)"),
        cell("markdown", "Any Snorkel LF works too:"),
        cell("code", f"@labeling_function()\ndef lf_short(x):\n    return {first} if len(x.text.split()) < 3 "
             "else ABSTAIN\n\nwb.try_lf(lf_short)"),
        cell("markdown", "## Keep, save, retrain"),
        cell("code", "wb.add(kw_first)\nwb.summary()"),
        cell("code", f"saved = wb.save('{module}_workbench', overwrite=True)  # also listed in project.toml\n"
             "print(saved.config.lfs.modules)"),
        cell("code", "result = run_retrain(saved.config)\nprint(format_summary(result))"),
    ]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                         "name": "python3"},
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _multi_label_columns(frame: pd.DataFrame, skip: Sequence[str | None] = ()) -> list[str]:
    """Columns of comma-separated class indices ("3", "2,14"), some rows holding several."""
    out = []
    for column in frame.columns:
        if column in skip or not _is_texty(frame[column]):
            continue
        values = frame[column].dropna().astype(str).head(2000)
        if len(values) and values.str.fullmatch(r"\d+(,\d+)*").all() and values.str.contains(",").any():
            out.append(str(column))
    return out


def _folder_kind(folder: Path) -> str:
    """Why a folder that is no WRENCH dataset cannot start a project (what it looks like)."""
    names = {p.name for p in folder.iterdir()}
    sample = next((folder / n for n in ("train.json", "valid.json", "test.json") if n in names), None)
    if sample is not None and sample.stat().st_size:
        with sample.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(65536)
        if '"weak_labels"' in head or re.search(r'"label"\s*:\s*\[\s*\[', head):
            return ("span annotations (token spans with types per document, as in NER weak supervision): a "
                    "project trains a text classifier, one class per row; this format is not supported")
    if "labels.txt" in names and any(n.endswith(".tsv") for n in names):
        return ("a folder of TSV files with labels.txt (GoEmotions-style, often multi-label): run init on one "
                "file with one class per row (--data FOLDER/train.tsv)")
    return "a folder is read as a WRENCH dataset, which needs label.json, train.json, valid.json and test.json"


def _balanced(suggestions: list, n: int) -> list:
    """Up to ``n`` suggestions taken in turn from each class, best first: ranked alone,
    a majority class's keywords would fill the list and the label model see one class."""
    by_class: dict[int, list] = {}
    for s in suggestions:
        by_class.setdefault(s.label, []).append(s)
    out: list = []
    while len(out) < n and any(by_class.values()):
        for label in sorted(by_class):
            if by_class[label] and len(out) < n:
                out.append(by_class[label].pop(0))
    return out


def _relative(target: Path, start: Path) -> str:
    target, start = target.resolve(), start.resolve()
    try:
        if os.path.commonpath([target, start]) != target.anchor:
            return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:  # another drive (Windows)
        pass
    return target.as_posix()  # nothing in common but the root: the absolute path reads better


def init_project(path: str | Path, data: str | Path, *, text_field: str | None = None,
                 label_field: str | None = None, id_field: str | None = None, split_field: str | None = None,
                 classes: Sequence[str] | None = None, name: str | None = None, starter_lfs: int = 10,
                 seed: int = 0) -> InitResult:
    """Write a new project folder ``path`` for the data file or WRENCH folder ``data``.

    Reads CSV/TSV (with or without a header row; the separator and quoting are sniffed),
    Parquet or JSONL, or a WRENCH folder (classes from its ``label.json``, its stored LFs
    as columns). Writes ``project.toml`` (commented, every setting in view), an LF module
    ``<name>_lfs.py`` listed in ``lfs.modules`` and the notebook ``write_lfs.ipynb``. With
    gold labels, up to ``starter_lfs`` keyword LFs suggested from the dev split's labelled
    rows (``suggest_keyword_lfs`` and the refinement's ``readiness`` bar: precision >= 0.9,
    95% Wilson lower bound >= 0.6) fill the module; otherwise it is empty.

    ``*_field``: the column of that role ("" = none), otherwise proposed by
    ``propose_columns``; ``classes``: otherwise ``propose_classes``. Raises ``ConfigError``
    when ``path`` already holds a project or a file (nothing is overwritten), or when a
    column is ambiguous (one message listing every choice); ``DatasetError`` for data it
    cannot read. Everything is written into a temporary folder first and moved into place
    whole, so a failure leaves nothing behind.
    """
    target, data = Path(path), Path(data)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "a project" if (target / "project.toml").exists() else "files"
        raise ConfigError(f"{target} already holds {what}; init writes a new folder and overwrites nothing: "
                          "choose another path")
    if not data.exists():
        raise DatasetError(f"data not found: {data}")
    name = name or target.resolve().name
    module = f"{_identifier(name)}_lfs"
    target_abs = target.resolve()
    values: dict[str, dict[str, Any]] = {
        "project": {"name": name, "classes": [], "seed": seed, "metric": "accuracy",
                    "store": f"runs/{_identifier(name)}.db", "artifacts": "runs/artifacts"},
    }
    comments = {"project.classes": "class index = position", "project.metric": "what 'better' means on dev: "
                "accuracy | macro_f1 | \"f1:<class>\"", "project.store": "runs, aliases, predictions (SQLite)",
                "lfs.modules": "LF modules, in column order", "lfs.root": "LF modules are importable from here",
                "label_model.type": "snorkel | majority_vote | auto (chosen on dev)",
                "end_model.type": "auto: chosen on dev only | sklearn | torch"}
    columns: dict[str, str] = {}
    is_wrench = data.is_dir()
    if is_wrench:
        if not (data / "label.json").is_file():
            raise DatasetError(f"{data}: {_folder_kind(data)}")
        found = load_wrench(data).class_names
        class_names = tuple(classes) if classes else found
        values["dataset"] = {"source": "wrench", "path": _relative(data, target_abs)}
        comments["dataset.source"] = "a WRENCH folder: its stored LFs are columns wrench_lf_<j>"
        comments["project.classes"] = "from the folder's label.json; class index = position"
    else:
        layout = _sniff(data)
        placeholder = _names(data, layout)
        frame = _read(data, layout, placeholder)
        for column in _multi_label_columns(frame, skip=(text_field, label_field, id_field, split_field)):
            raise DatasetError(f"{data}: column {column!r} holds several class indices in some rows ('2,14'): "
                               "multi-label data; a project trains a single-label classifier: keep one class per "
                               "row in a column of its own and pass --label-field, or --label-field '' for none")
        columns = propose_columns(frame, text_field=text_field, label_field=label_field, id_field=id_field,
                                  split_field=split_field)
        class_names = tuple(classes) if classes else (
            propose_classes(frame[columns["label"]], column=columns["label"]) if columns["label"] else ())
        if not class_names:
            raise ConfigError(f"{data} has no gold label column, so the classes cannot be read from it: pass "
                              "--classes A,B,... (dev and test rows need gold labels before retrain can evaluate)")
        dataset: dict[str, Any] = {"source": "file", "path": _relative(data, target_abs)}
        if layout.format != _SUFFIX_FORMATS.get(data.suffix.lower()):
            dataset["format"] = layout.format
        if layout.delimiter not in ("", ",") and not (layout.delimiter == "\t" and data.suffix.lower() == ".tsv"):
            dataset["delimiter"] = layout.delimiter
        if placeholder:
            # a file without a header row: its columns are named here by the role they play
            renamed = {old: role for role, old in columns.items() if old}
            dataset["columns"] = [renamed.get(c, c) for c in placeholder]
            columns = {role: (role if old else "") for role, old in columns.items()}
            comments["dataset.columns"] = "the file has no header row: its columns, in order"
        if not layout.quoted:
            dataset["quoted"] = False
            comments["dataset.quoted"] = "a \" is an ordinary character in this file"
        dataset["text_field"] = columns["text"]
        if columns["label"]:
            dataset["label_field"] = columns["label"]
        if columns["id"]:
            dataset["id_field"] = columns["id"]
        if columns["split"]:
            dataset.update(split="column", split_field=columns["split"])
        else:
            dataset.update(split="random", dev_size=0.1, test_size=0.2)
            comments["dataset.split"] = "seeded; dev and test are drawn from the labelled rows"
        values["dataset"] = dataset
    values["project"]["classes"] = list(class_names)
    values["lfs"] = {"modules": [module], "root": ".", "spacy_model": "en_core_web_sm"}
    values["label_model"] = {"type": "auto"}
    values["end_model"] = {"type": "auto"}
    config = project_config_from_dict(values, base_dir=target_abs)

    labelled = is_wrench or bool(columns.get("label"))
    lf_code, lf_names = "", ()
    if labelled and starter_lfs:
        splits = load_dataset(config)
        dev = splits.dev
        y = dev["label"].to_numpy()
        suggestions = suggest_keyword_lfs(dev["text"].astype(str).tolist(), y, top=max(100, starter_lfs))
        ready = _balanced([s for s, why in zip(suggestions, readiness(suggestions, None)) if why is None],
                          starter_lfs)
        if ready:
            lf_code = format_lf_code(ready, class_names)
            lf_names = tuple(re.findall(r"^def (\w+)\(", lf_code, flags=re.MULTILINE))
    if lf_code:
        lf_source = (f'"""Labeling functions of {name}.\n\nStarter LFs: keyword LFs suggested from the gold labels of '
                     'the dev split (labeling init);\nkeep, edit or delete them, and add your own."""\n'
                     + lf_code.split('\n', 1)[1])
    else:
        reason = "the data has no gold labels" if not labelled else "no keyword met the precision bar on dev"
        lf_source = (f'"""Labeling functions of {name}: none yet ({reason}).\n\n'
                     "Write them here (Snorkel's @labeling_function, or keyword_lf / regex_lf / length_lf from\n"
                     'labeling), or in write_lfs.ipynb beside project.toml, then run retrain."""\n\n'
                     "from snorkel.labeling import labeling_function  # noqa: F401\n\nABSTAIN = -1\n")
    header = (f"{name}: written by `labeling init` from {data.name}.\n"
              "Paths are relative to this file. Every setting is listed; the ones commented out keep\n"
              "their default. Run: .venv/bin/python -m labeling retrain --config <this file>")
    text = render_project_toml(values, comments, header)
    check = project_config_from_dict(tomllib.loads(text), base_dir=target_abs)
    if check.to_dict() != config.to_dict():  # the file must say what was checked above
        raise ConfigError("internal: the rendered project.toml differs from the proposed settings")

    staging = target_abs.parent / f".{target_abs.name}.init-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        (staging / "project.toml").write_text(text, encoding="utf-8")
        (staging / f"{module}.py").write_text(lf_source, encoding="utf-8")
        (staging / "write_lfs.ipynb").write_text(json.dumps(_notebook(name, module, class_names), indent=1) + "\n",
                                                 encoding="utf-8")
        (staging / ".gitignore").write_text("runs/\n", encoding="utf-8")
        if target_abs.exists():
            target_abs.rmdir()  # empty (checked above)
        os.replace(staging, target_abs)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return InitResult(target_abs / "project.toml", module, target_abs / f"{module}.py",
                      target_abs / "write_lfs.ipynb", columns, tuple(class_names), lf_names,
                      "wrench" if is_wrench else "file")


def add_lf_module(project_file: str | Path, module: str) -> bool:
    """List ``module`` in ``[lfs] modules`` of ``project_file``, keeping every other line
    (comments included); False when it is listed already. The new text must parse to the
    same settings plus the module, or nothing is written (``ConfigError``)."""
    path = Path(project_file)
    text = path.read_text(encoding="utf-8")
    before = tomllib.loads(text)
    modules = list(before.get("lfs", {}).get("modules", []))
    if module in modules:
        return False
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"\s*\[lfs\]\s*(#.*)?$", line)), None)
    if start is None:
        new = text.rstrip("\n") + f"\n\n[lfs]\nmodules = {_toml_value([module])}\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
        at = next((i for i in range(start + 1, end) if re.match(r"\s*modules\s*=", lines[i])), None)
        if at is None:
            lines.insert(start + 1, f"modules = {_toml_value([module])}\n")
        else:
            last = at
            while "]" not in lines[last].split("#", 1)[0] and last + 1 < end:
                last += 1
            note = re.search(r"\]\s*(#.*)$", lines[last])
            lines[at : last + 1] = [f"modules = {_toml_value([*modules, module])}"
                                    + (f"  {note.group(1)}" if note else "") + "\n"]
        new = "".join(lines)
    after = tomllib.loads(new)
    expected = {**before, "lfs": {**before.get("lfs", {}), "modules": [*modules, module]}}
    if after != expected:
        raise ConfigError(f"{path}: cannot add {module!r} to lfs.modules without changing other settings; "
                          "add it by hand")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return True
