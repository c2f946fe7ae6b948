"""The package tree: stages, imports between modules, and the one public surface."""

from __future__ import annotations

import ast
import re
import graphlib
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import labeling

from .conftest import REPO

LIBRARY = REPO / "labeling"
STAGES = labeling.STAGES


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def _imports(name: str, path: Path):
    """``(line, module imported from, names)`` for every ``from ... import`` in the file,
    function-level imports included: a cycle hidden inside a function is still a cycle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            yield node.lineno, base, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _edges():
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            continue  # stage packages only map names to modules, lazily
        for _, base, names in _imports(name, path):
            if not base.startswith("labeling"):
                continue
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES] or [base]
            for target in targets:
                if target in MODULES and not MODULES[target].name == "__init__.py":
                    yield name, target


def test_stage_packages_say_what_enters_and_leaves():
    for stage in STAGES:
        doc = importlib.import_module(f"labeling.{stage}").__doc__ or ""
        assert "Enters:" in doc and ("Leaves:" in doc or "leaves" in doc), stage


def test_no_import_cycles_between_modules():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for source, target in _edges():
        graph[source].add(target)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("root", ["labeling", "pipelines", "labeling_functions"])
def test_no_module_imports_another_modules_private_names(root):
    offenders = []
    for path in sorted((REPO / root).rglob("*.py")):
        name = _module_name(path)
        for line, base, names in _imports(name, path):
            if base in {"re", "__future__"}:  # re._parser: the stdlib's only regex parser (lf/patterns.py)
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {private} from {base}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("package", ["labeling", *(f"labeling.{s}" for s in STAGES)])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__)), "__all__ is sorted and unique"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_every_stage_export_is_the_same_object_at_the_top_level():
    assert set(STAGES) == {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    for stage in STAGES:
        module = importlib.import_module(f"labeling.{stage}")
        assert sorted(module.__all__) == sorted(n for names in module.EXPORTS.values() for n in names)
        for name in module.__all__:
            assert getattr(module, name) is getattr(labeling, name), (stage, name)
    assert {"apply_lfs", "run_retrain", "select_label_model", "create_app", "push_review", "Workbench"} <= set(
        labeling.__all__)


def test_import_labeling_stays_light():
    code = ("import sys, labeling; heavy = {'torch', 'pandas', 'sklearn', 'fastapi', 'spacy', 'dask', 'snorkel'};"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old, new", sorted(labeling.MOVED_MODULES.items()))
def test_old_module_paths_still_import_with_a_deprecation_warning(old, new):
    sys.modules.pop(f"labeling.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"labeling.{old}")
    assert module is importlib.import_module(new)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_old_review_module_names_come_from_the_review_stage():
    from labeling.review import Annotation, LabelStudioReview, sample_scores, select_for_review
    from labeling.review.label_studio import Annotation as moved

    assert Annotation is moved and callable(sample_scores) and callable(select_for_review) and LabelStudioReview


STORE = LIBRARY / "store"
# SQL as this project writes it (upper-case keywords), not English that starts with "Delete"
_SQL = re.compile(r"^\s*(SELECT\b.*\bFROM\b|INSERT (OR \w+ )?INTO\b|UPDATE \w+ SET\b|DELETE FROM\b|CREATE \w+|"
                  r"ALTER TABLE\b|DROP \w+|PRAGMA \w+|BEGIN\b|COMMIT\b|ROLLBACK\b|SAVEPOINT\b)", re.DOTALL)
_SCHEMA_DDL = re.compile(r"CREATE\s+(UNIQUE\s+)?(TABLE|INDEX|TRIGGER|VIEW)\b", re.IGNORECASE)


def _outside_store():
    for name, path in MODULES.items():
        if STORE not in path.parents:
            yield name, path


def test_every_table_index_and_trigger_is_defined_in_the_store():
    offenders = [f"{path.relative_to(REPO)}:{node.lineno}" for _, path in _outside_store()
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SCHEMA_DDL.search(node.value)]
    assert not offenders, offenders
    assert _SCHEMA_DDL.search((STORE / "schema.py").read_text(encoding="utf-8"))


def test_no_stage_module_writes_sql_or_opens_a_connection():
    offenders = []
    for name, path in _outside_store():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.match(node.value):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} SQL {node.value[:40]!r}")
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                    and _SQL.match(str(node.values[0].value)):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} SQL f-string")
            elif isinstance(node, ast.Attribute) and node.attr in {"execute", "executemany", "executescript"}:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}(")
        for line, base, _ in _imports(name, path):
            if base.split(".")[0] in {"sqlite3", "sqlite_utils", "psycopg"}:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {base}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("lower", ["store", "data", "lf", "models", "pipeline", "review"])
def test_no_import_runs_from_a_lower_stage_up_to_serve(lower):
    above = {"serve", "notebook"} | ({"data", "lf", "models", "pipeline", "review"} if lower == "store" else set())
    offenders = [f"{path.relative_to(REPO)}:{line} imports {base}"
                 for name, path in MODULES.items() if name.startswith(f"labeling.{lower}")
                 for line, base, _ in _imports(name, path)
                 if base.startswith("labeling.") and base.split(".")[1] in above]
    assert not offenders, "\n".join(offenders)
