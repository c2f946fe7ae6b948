"""Session LFs -> an importable LF module, so the notebook and the pipeline share one truth.

- Declarative LFs (keyword/regex/length) are written as ``regex_lf``/``length_lf`` calls
  and ``similar_to`` LFs as ``similar_to`` calls: the same resources, so the same votes
  and the same ``lf_version`` (their cached votes carry over).
- Any other LF is written by its source (``inspect.getsource``: a notebook cell's source
  is available too), with what it uses from its module: imports, literal constants,
  compiled regexes, and helper functions and classes (by their source, recursively).
  Snorkel ``@preprocessor``s it uses are imported from their module, or, when defined
  in the session or in the LF's own module, written by their source like LFs
  (decorator included, after what the decorator names).
  Something that cannot be written as code (a closure, a live object) raises
  ``WorkbenchError`` naming the LF and the name it uses.

The module is written atomically, then imported and applied to check rows; if any LF
votes differently from the session, the file is removed and the error names the LF.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import sys
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction
from snorkel.map import LambdaMapper

from ..config import ProjectConfig
from ..errors import WorkbenchError
from ..lf.apply import apply_lfs
from ..lf.declarative import LengthSpec, lf_spec
from .kinds import prepare_similarity, similarity_settings

__all__ = ["SavedModule", "lf_module_source", "write_lf_module"]

_FLAG_NAMES = ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII", "LOCALE")


@dataclass(frozen=True)
class SavedModule:
    """Where the LFs went: ``module`` (dotted name), ``path``, the LF ``names``, and the
    project ``config`` with the module added to ``lfs.modules`` (ready for ``run_retrain``).

    ``replaces``: saved LFs that stand in for a project LF of the same name; delete those
    from their old module before retraining (``discover_lfs`` refuses duplicate names).
    ``project_file``: the project TOML whose ``lfs.modules`` lists the module (None when
    there was none to update); ``listed``: whether this save added it there."""

    module: str
    path: Path
    names: tuple[str, ...]
    config: ProjectConfig
    replaces: tuple[str, ...] = ()
    project_file: Path | None = None
    listed: bool = False


def _flags_code(flags: int) -> str:
    # str patterns always carry re.UNICODE; compiling again adds it back
    named = [f"re.{n}" for n in _FLAG_NAMES if flags & getattr(re, n)]
    return " | ".join(named) if named else "0"


def _is_literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value and type(ast.literal_eval(repr(value))) is type(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


class _Module:
    """The parts of the module being written, each name bound once."""

    def __init__(self):
        self.imports: dict[str, str] = {}  # bound name -> import line
        self.constants: dict[str, tuple[object, str]] = {}  # name -> (value, assignment)
        self.helpers: dict[str, tuple[object, str]] = {}  # name -> (object, source)
        self.lfs: list[str] = []
        self.names: set[str] = set()  # module-level names the LFs themselves bind

    def bind(self, owner: str, name: str, value, line: str, table: dict) -> None:
        if name in self.names:
            raise WorkbenchError(f"LF {owner!r} uses {name!r}, which is also the name of a saved LF")
        if name in table:
            known = table[name][0] if isinstance(table[name], tuple) else None
            if table is self.imports:
                if table[name] != line:
                    raise WorkbenchError(f"LF {owner!r}: {name!r} is imported differently by two saved LFs")
                return
            if known is not value and not (_is_literal(value) and known == value):
                raise WorkbenchError(f"LF {owner!r}: two saved LFs use different values named {name!r}")
            return
        for other in (self.imports, self.constants, self.helpers):
            if other is not table and name in other:
                raise WorkbenchError(f"LF {owner!r}: two saved LFs use different things named {name!r}")
        table[name] = line if table is self.imports else (value, line)

    def render(self, title: str) -> str:
        parts = [f'"""{title}"""', "", "from __future__ import annotations", ""]
        parts += sorted(set(self.imports.values()))
        if self.constants:
            parts += [""] + [line for _, line in self.constants.values()]
        for _, source in self.helpers.values():
            parts += ["", "", source.rstrip()]
        for source in self.lfs:
            parts += ["", "", source.rstrip()]
        return "\n".join(parts) + "\n"


def _code_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _code_names(const)
    return names


def _source_of(owner: str, obj) -> tuple[str, ast.AST]:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as exc:
        raise WorkbenchError(f"LF {owner!r}: cannot read the source of {getattr(obj, '__name__', obj)!r}: {exc}") from exc
    return source, ast.parse(source).body[0]


def _decorator_names(node: ast.AST) -> set[str]:
    return {n.id for d in getattr(node, "decorator_list", ()) for n in ast.walk(d) if isinstance(n, ast.Name)}


def _add_globals(out: _Module, owner: str, obj, node: ast.AST, home: str, depth: int = 0) -> None:
    """Bind every module-level name ``obj`` (a function or class) uses, from module ``home``."""
    module_globals = getattr(obj, "__globals__", None) or vars(sys.modules.get(obj.__module__, builtins))
    names = _decorator_names(node)
    if inspect.isfunction(obj):
        names |= _code_names(obj.__code__)
    else:  # a class: what its methods and body use
        names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for name in sorted(names):
        if name not in module_globals or (obj.__name__ == name and module_globals[name] is obj):
            continue
        _add_value(out, owner, name, module_globals[name], home, depth)


def _add_value(out: _Module, owner: str, name: str, value, home: str, depth: int) -> None:
    if inspect.ismodule(value):
        line = f"import {value.__name__}" if value.__name__ == name else f"import {value.__name__} as {name}"
        out.bind(owner, name, value, line, out.imports)
    elif isinstance(value, re.Pattern):
        out.bind(owner, "re", re, "import re", out.imports)
        out.bind(owner, name, value, f"{name} = re.compile({value.pattern!r}, {_flags_code(value.flags)})", out.constants)
    elif _is_literal(value):
        out.bind(owner, name, value, f"{name} = {value!r}", out.constants)
    elif (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ != home \
            and value.__module__ != "__main__" and _importable(value):
        qual = value.__qualname__
        line = f"from {value.__module__} import {qual}" + ("" if qual == name else f" as {name}")
        out.bind(owner, name, value, line, out.imports)
    elif (inspect.isfunction(value) and value.__closure__ is None) or inspect.isclass(value):
        if name in out.helpers and out.helpers[name][0] is value:
            return
        if depth > 10:
            raise WorkbenchError(f"LF {owner!r}: helpers nest too deep at {name!r}")
        source, node = _source_of(owner, value)
        if getattr(node, "name", None) != name:
            raise WorkbenchError(f"LF {owner!r} uses {name!r}, defined as {getattr(node, 'name', '?')!r}: "
                                 "write it under its own name")
        out.bind(owner, name, value, source, out.helpers)
        _add_globals(out, owner, value, node, home, depth + 1)
    elif isinstance(value, LambdaMapper):
        _add_preprocessor(out, owner, name, value, home, depth)
    else:
        raise WorkbenchError(f"LF {owner!r} uses {name!r} ({type(value).__name__}), which cannot be written as code; "
                             "make it a literal constant, an import or a function in the LF's module")


def _add_preprocessor(out: _Module, owner: str, name: str, mapper: LambdaMapper, home: str, depth: int) -> None:
    """A ``@preprocessor`` (a ``LambdaMapper`` around a def): imported from its module, or
    written by its source, decorator included, so the module makes the same preprocessor."""
    if name in out.helpers and out.helpers[name][0] is mapper:
        return
    f = mapper._f
    module = getattr(f, "__module__", None)
    if module not in (home, "__main__", None) and _defines(module, getattr(f, "__name__", ""), mapper):
        line = f"from {module} import {f.__name__}" + ("" if f.__name__ == name else f" as {name}")
        out.bind(owner, name, mapper, line, out.imports)
        return
    if not inspect.isfunction(f) or f.__closure__:
        raise WorkbenchError(f"LF {owner!r} uses the preprocessor {name!r}, whose function is not a plain module-level "
                             "def; write it with @preprocessor() on a def")
    if depth > 10:
        raise WorkbenchError(f"LF {owner!r}: helpers nest too deep at {name!r}")
    source, node = _source_of(owner, f)
    if not isinstance(node, ast.FunctionDef) or not node.decorator_list:
        raise WorkbenchError(f"LF {owner!r} uses the preprocessor {name!r}, not made by a decorator on its def; "
                             "write it with @preprocessor() on a def")
    if node.name != name:
        raise WorkbenchError(f"LF {owner!r} uses {name!r}, defined as {node.name!r}: write it under its own name")
    # the decorator runs where the def is: what it names (pre=[...], memoize_key=...) comes first
    for dep in sorted(_decorator_names(node)):
        if dep in f.__globals__ and f.__globals__[dep] is not mapper:
            _add_value(out, owner, dep, f.__globals__[dep], home, depth + 1)
    out.bind(owner, name, mapper, source, out.helpers)
    _add_globals(out, owner, f, node, home, depth + 1)


def _defines(module: str, name: str, value) -> bool:
    try:
        return getattr(importlib.import_module(module), name, None) is value
    except ImportError:
        return False


def _importable(value) -> bool:
    try:
        target = importlib.import_module(value.__module__)
        for part in value.__qualname__.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return False
    return target is value


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if ident.isidentifier() and not ident[0].isdigit() else f"lf_{ident}"


def _add_lf(out: _Module, lf: LabelingFunction) -> None:
    spec = lf_spec(lf)
    var = _identifier(lf.name)
    if spec is not None:
        if isinstance(spec, LengthSpec):
            out.bind(lf.name, "length_lf", None, "from labeling.lf.declarative import length_lf", out.imports)
            call = (f"length_lf({lf.name!r}, {spec.label}, min_len={spec.lo}, max_len={spec.hi!r}, "
                    f"unit={spec.unit!r}, field={spec.field!r})")
        else:
            out.bind(lf.name, "regex_lf", None, "from labeling.lf.declarative import regex_lf", out.imports)
            out.bind(lf.name, "re", re, "import re", out.imports)
            call = (f"regex_lf({lf.name!r}, {spec.pattern.pattern!r}, {spec.label}, "
                    f"flags={_flags_code(spec.pattern.flags)}, field={spec.field!r})")
        out.names.add(var)
        out.lfs.append(f"{var} = {call}")
        return
    settings = similarity_settings(lf)
    if settings is not None:
        out.bind(lf.name, "similar_to", None, "from labeling.notebook.kinds import similar_to", out.imports)
        args = ", ".join(f"{k}={v!r}" for k, v in settings.items() if k not in ("examples", "label"))
        out.names.add(var)
        out.lfs.append(f"{var} = similar_to({settings['examples']!r}, {settings['label']}, {args})")
        return
    f = lf._f
    if getattr(f, "__closure__", None):
        raise WorkbenchError(f"LF {lf.name!r} is a closure (made by a factory function); save the factory's "
                             "module instead, or rebuild it as a module-level LF")
    source, node = _source_of(lf.name, f)
    if not isinstance(node, ast.FunctionDef):
        raise WorkbenchError(f"LF {lf.name!r}: its function is not a plain def (a lambda?); write it with def")
    if node.decorator_list:
        # The decorator made this LF: the same source (decorator included) makes the same LF.
        out.names.add(node.name)
        out.lfs.append(source)
    else:  # LabelingFunction(name=..., f=..., resources=...) built by hand
        resources = dict(lf._resources)
        if lf._pre or not _is_literal(resources):
            raise WorkbenchError(f"LF {lf.name!r} was built with LabelingFunction(...) and non-literal resources or "
                                 "preprocessors; write it with @labeling_function to save it")
        out.bind(lf.name, "LabelingFunction", LabelingFunction, "from snorkel.labeling import LabelingFunction",
                 out.imports)
        out.names.update({node.name, var})
        out.lfs.append(f"{source.rstrip()}\n\n\n{var} = LabelingFunction(name={lf.name!r}, f={node.name}, "
                       f"resources={resources!r})")
    _add_globals(out, lf.name, f, node, f.__module__)


def lf_module_source(lfs: Sequence[LabelingFunction], *, title: str = "LFs saved from the LF workbench.") -> str:
    """Python source of a module defining ``lfs`` (see the module docstring).

    Raises ``WorkbenchError`` naming the LF for anything that cannot be written as code."""
    out = _Module()
    for lf in lfs:
        _add_lf(out, lf)
    return out.render(title)


def _import_file(path: Path) -> dict[str, LabelingFunction]:
    name = f"_labeling_saved_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling-free helpers look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return {v.name: v for v in vars(module).values() if isinstance(v, LabelingFunction)}


def write_lf_module(lfs: Sequence[LabelingFunction], module: str, config: ProjectConfig, *,
                    check_frame: pd.DataFrame | None = None, check_L: np.ndarray | None = None,
                    overwrite: bool = False) -> SavedModule:
    """Write ``lfs`` as the module ``module`` under ``config``'s LF root, then check it.

    ``check_frame``/``check_L``: rows and the session's votes on them ((n, len(lfs))); the
    written module must vote the same or the file is removed and ``WorkbenchError`` raised.
    Refuses to replace an existing file unless ``overwrite``.
    """
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
        raise WorkbenchError(f"module must be a dotted Python name like 'labeling_functions.more', got {module!r}")
    root = config.resolve(config.lfs.root)
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    if path.exists() and not overwrite:
        raise WorkbenchError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise WorkbenchError(f"no package folder {path.parent} for module {module!r}")
    source = lf_module_source(lfs)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
    backup = path.read_bytes() if path.exists() else None
    tmp.write_text(source, encoding="utf-8")
    os.replace(tmp, path)
    try:
        saved = _import_file(path)
        missing = [lf.name for lf in lfs if lf.name not in saved]
        if missing:
            raise WorkbenchError(f"the saved module does not define {', '.join(missing)}")
        if check_frame is not None and check_L is not None and len(check_frame):
            again = [saved[lf.name] for lf in lfs]
            prepare_similarity(again, check_frame)
            L = apply_lfs(again, check_frame, cardinality=config.cardinality, spacy_model=config.lfs.spacy_model).L
            for j, lf in enumerate(lfs):
                differ = np.flatnonzero(L[:, j] != check_L[:, j])
                if len(differ):
                    raise WorkbenchError(f"LF {lf.name!r} as saved votes differently on {len(differ)} check rows "
                                         f"(first: row {int(differ[0])}); nothing was saved")
    except BaseException:
        if backup is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(backup)
        raise
    modules = config.lfs.modules if module in config.lfs.modules else (*config.lfs.modules, module)
    new_config = dataclasses.replace(config, lfs=dataclasses.replace(config.lfs, modules=tuple(modules)))
    importlib.invalidate_caches()
    sys.modules.pop(module, None)  # a retrain in this process imports the new file, not a stale copy
    return SavedModule(module, path, tuple(lf.name for lf in lfs), new_config)
