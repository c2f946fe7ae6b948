"""What an LF's votes can depend on, as one hash: the LF's version for the vote cache and lineage.

An LF's vote is a function of the row and of everything the LF can reach:
its code, default arguments, closure cells, the module-level values and helper
functions it names (in its own module or imported from another module of the
project, however deep the chain of helpers), attributes of project modules it
reads (``config.THRESHOLD``), the classes and callable objects it uses (their
methods and attributes), its resources and its preprocessors (their code and
state). ``fingerprint`` walks all of it:

- code is hashed as the interpreter runs it (bytecode, constants, names), not
  as the file reads now: editing a helper's file between sessions gives a new
  version in the session that runs the new code, and only there;
- data is hashed by content (numpy arrays and pandas objects by their bytes),
  never by a ``repr`` that may truncate; a builtin method bound to an object
  (``re.compile(...).search``, ``{...}.get``) by that object;
- a file named by a ``Path``, or by a str that names an existing regular file
  (``open(WORDS_FILE)``, resolved as ``open`` resolves it), is hashed by its
  content; an LF whose code calls a file reader (``open``, ``read_text``,
  ``read_csv``...) while nothing it reaches names a file (its module's own
  ``__file__`` aside) is uncacheable: the path is built at run time, so no
  version can follow the file. (An LF that names one file and reads another
  whose path it builds is versioned by the named one only.)
- library code (the standard library, site-packages) is named with its
  package version instead of walked;
- a value that cannot be hashed faithfully (an object of a library type with
  no readable state, a structure past ``MAX_NODES`` objects) makes the LF
  *uncacheable*: its votes are always computed, and the reason is reported
  (``ApplyResult.uncacheable``, ``lf_summary``).

Snorkel preprocessors' memo (``_cache``) is not part of the state: it only
holds results the preprocessor would compute again.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import functools
import hashlib
import json
import os
import re
import stat
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_NODES", "Fingerprint", "fingerprint", "library_digest"]

#: an LF reaching more objects than this is not versioned (it is computed every time)
MAX_NODES = 200_000

# Object attributes that are caches, not state that decides a vote.
_MEMO_ATTRS = frozenset({"_cache"})
# Attributes of objects holding a loaded pipeline (versioned by the applier via pipeline_key).
_PIPELINE_ATTRS = frozenset({"_nlp", "nlp"})
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__", "__annotations__",
                         "__slots__", "__firstlineno__", "__static_attributes__", "__parameters__", "__orig_bases__"})
_REPR_EXACT = (decimal.Decimal, fractions.Fraction, complex, datetime.date, datetime.time, datetime.timedelta,
               enum.Enum, range, type(Ellipsis), type(NotImplemented))


# Names of calls that read files (or their presence) by path: code naming one makes the LF's
# votes depend on files, which only a path the walk can see (a str or Path value) versions.
_FILE_READERS = frozenset({
    "open", "read_text", "read_bytes", "read_csv", "read_json", "read_parquet", "read_table", "read_excel",
    "read_feather", "read_pickle", "load", "loadtxt", "genfromtxt", "fromfile", "listdir", "scandir", "iterdir",
    "glob", "rglob", "walk", "exists", "isfile", "isdir", "getsize", "getmtime", "stat",
})
# A str is looked up as a file only when it could be a path: one line, with a separator or a suffix.
_PATHLIKE = re.compile(r"[/\\]|\.[A-Za-z0-9]{1,10}\Z")
_FILE_DIGESTS: dict[tuple, str] = {}
_SETTLED_NS = 2_000_000_000


def _file_digest(path: str | PurePath) -> str | None:
    """sha256 of the regular file ``path`` names (relative to the working directory, as
    ``open`` resolves it), or None when it names none.

    Kept per (inode, size, mtime, ctime) once the file is older than the clock's
    coarseness (git's "racy" rule): a write within the same timestamp tick as the
    one hashed could leave all four unchanged, a later write cannot (no tool sets
    ctime back)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        try:
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            return None
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
            if len(_FILE_DIGESTS) > 10_000:
                _FILE_DIGESTS.clear()
            _FILE_DIGESTS[key] = digest
    return digest


def _may_name_file(text: str) -> bool:
    return 0 < len(text) <= 4096 and "\n" not in text and "\0" not in text and _PATHLIKE.search(text) is not None


def _bound_to(v: Any) -> Any:
    """The object a builtin method or method-wrapper is bound to (``PATTERN.search``,
    ``WORDS.get``), or None for unbound ones and module functions (``len``, ``math.sqrt``)."""
    if not isinstance(v, (types.BuiltinMethodType, types.MethodWrapperType)):
        return None
    owner = getattr(v, "__self__", None)
    return None if owner is None or isinstance(owner, types.ModuleType) else owner


_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType, types.WrapperDescriptorType,
                types.MethodDescriptorType, types.ClassMethodDescriptorType, types.MethodWrapperType)


@dataclass(frozen=True)
class Fingerprint:
    """``version``: 16 hex digits; ``uncacheable``: why the LF's votes must not be cached, or None."""

    version: str
    uncacheable: str | None = None


class _TooLarge(Exception):
    pass


@functools.lru_cache(maxsize=None)
def _is_library(module_name: str | None) -> bool:
    if not module_name:
        return True
    top = module_name.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in ("builtins", _OWN_PACKAGE):
        # this package too, wherever it is installed: its caches and settings change as it
        # runs, so walking it would make every LF look stateful; its source digest versions it
        return True
    module = sys.modules.get(module_name) or sys.modules.get(top)
    path = getattr(module, "__file__", None)
    # a notebook's __main__ or a module made at run time has no file: it is project code
    return path is not None and ("site-packages" in path or "dist-packages" in path)


_OWN_PACKAGE = __name__.split(".", 1)[0]


@functools.lru_cache(maxsize=None)
def _own_source_digest() -> str:
    """sha256 (16 hex digits) of this package's Python files: an edit to the library's own
    code (a keyword LF's matching, say) gives every LF a new version."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def library_digest() -> str:
    """16 hex digits naming this package's code as the process runs it: what is derived
    from data by the library's own rules (a scan layout) is kept under it."""
    return _own_source_digest()


@functools.lru_cache(maxsize=None)
def _package_version(module_name: str) -> str | None:
    if module_name.split(".", 1)[0] == _OWN_PACKAGE:
        return _own_source_digest()
    top = sys.modules.get(module_name.split(".", 1)[0])
    version = getattr(top, "__version__", None)
    return version if isinstance(version, str) else None


def _library_name(obj: Any) -> dict:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__
    return {"lib": f"{module}.{name}", "v": _package_version(module) if module else None}


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # comprehensions, lambdas and nested functions
            names |= _code_names(const)
    return names


class _Walker:
    def __init__(self) -> None:
        self.nodes = 0
        self.reasons: list[str] = []
        self.active: set[int] = set()
        self.done: dict[int, Any] = {}
        self.keep: list = []  # objects whose ids are in `done` stay alive during the walk
        self.files = 0  # files named by a str or Path the walk met (hashed by content)
        self.readers: list[str] = []  # project functions that call a file reader: where, and which

    def reason(self, text: str) -> None:
        if text not in self.reasons:
            self.reasons.append(text)

    # -- entry points --------------------------------------------------------------------------
    def value(self, v: Any, where: str) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(where)
        if isinstance(v, str) and _may_name_file(v):
            digest = _file_digest(v)
            if digest is not None:
                self.files += 1
                return ["str", v, "file", digest]
        if v is None or isinstance(v, (bool, int, str)):
            return [type(v).__name__, v]
        if isinstance(v, float):
            return ["float", v.hex()]
        key = id(v)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            return ["cycle", type(v).__qualname__]
        self.active.add(key)
        try:
            out = self._value(v, where)
        finally:
            self.active.discard(key)
        self.done[key] = out
        self.keep.append(v)
        return out

    def _value(self, v: Any, where: str) -> Any:
        from snorkel.labeling import LabelingFunction

        if isinstance(v, bytes):
            return ["bytes", hashlib.sha256(v).hexdigest()]
        if isinstance(v, PurePath):
            digest = _file_digest(v)
            self.files += digest is not None
            return ["path", str(v), digest]
        if isinstance(v, re.Pattern):
            return ["regex", v.pattern if isinstance(v.pattern, str) else v.pattern.hex(), int(v.flags)]
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                return ["ndarray", str(v.shape), self.value(v.tolist(), where)]
            return ["ndarray", v.dtype.str, str(v.shape), hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()]
        if isinstance(v, np.generic):
            return ["np", v.dtype.str, v.tobytes().hex() if v.dtype != object else repr(v)]
        if isinstance(v, (pd.Series, pd.DataFrame, pd.Index)):
            return self._pandas(v, where)
        if isinstance(v, LabelingFunction):
            return ["lf", self.lf(v)]
        if isinstance(v, (dict, types.MappingProxyType)):
            return ["dict", type(v).__qualname__, [[self.value(k, where), self.value(x, where)] for k, x in v.items()]]
        if isinstance(v, (set, frozenset)):
            items = [self.value(x, where) for x in v]
            return ["set", sorted(json.dumps(i, sort_keys=True) for i in items)]
        if isinstance(v, (list, tuple)):
            return [type(v).__qualname__, [self.value(x, where) for x in v]]
        if isinstance(v, _REPR_EXACT):
            return ["repr", type(v).__module__, type(v).__qualname__, repr(v)]
        if isinstance(v, types.ModuleType):
            return ["module", v.__name__]  # its attributes are walked by the code that reads them
        if isinstance(v, types.CodeType):
            return self.code(v, where)
        owner = _bound_to(v)
        if owner is not None:  # PATTERN.search, WORDS.get: what it answers is its object's
            return ["bound", getattr(v, "__qualname__", getattr(v, "__name__", "")), self.value(owner, where)]
        if isinstance(v, (types.FunctionType, types.MethodType, functools.partial, staticmethod, classmethod,
                          property, types.BuiltinFunctionType, functools.cached_property)):
            return self.callable(v, where)
        if isinstance(v, type):
            return self.cls(v, where)
        if isinstance(v, _DESCRIPTORS):  # slots and C methods of a class: named by the class walk
            return ["descriptor", type(v).__name__, getattr(v, "__qualname__", getattr(v, "__name__", ""))]
        if isinstance(v, types.CellType):
            try:
                return ["cell", self.value(v.cell_contents, where)]
            except ValueError:
                return ["cell", "empty"]
        return self.obj(v, where)

    def _pandas(self, v, where: str) -> Any:
        try:
            hashed = pd.util.hash_pandas_object(v, index=True).to_numpy()
        except TypeError:
            self.reason(f"{where}: a pandas {type(v).__name__} with unhashable cells")
            return ["pandas", "unhashable"]
        dtypes = [str(v.dtype)] if not isinstance(v, pd.DataFrame) else [str(d) for d in v.dtypes]
        names = list(map(str, v.columns)) if isinstance(v, pd.DataFrame) else [str(getattr(v, "name", None))]
        return ["pandas", type(v).__name__, dtypes, names, hashlib.sha256(hashed.tobytes()).hexdigest()]

    # -- code ------------------------------------------------------------------------------------
    def code(self, code: types.CodeType, where: str) -> Any:
        consts = [self.code(c, where) if isinstance(c, types.CodeType) else self.value(c, where) for c in code.co_consts]
        return ["code", code.co_name, hashlib.sha256(code.co_code).hexdigest(), consts, list(code.co_names),
                list(code.co_varnames), list(code.co_freevars), list(code.co_cellvars), code.co_flags,
                code.co_argcount, code.co_kwonlyargcount]

    def callable(self, f: Any, where: str) -> Any:
        if isinstance(f, functools.partial):
            return ["partial", self.value(f.func, where), self.value(list(f.args), where),
                    self.value(dict(f.keywords), where)]
        if isinstance(f, types.MethodType):
            return ["method", self.value(f.__func__, where), self.value(f.__self__, where)]
        if isinstance(f, (staticmethod, classmethod)):
            return [type(f).__name__, self.value(f.__func__, where)]
        if isinstance(f, property):
            return ["property", self.value(f.fget, where), self.value(f.fset, where)]
        if isinstance(f, functools.cached_property):
            return ["cached_property", self.value(f.func, where)]
        if not isinstance(f, types.FunctionType) or _is_library(getattr(f, "__module__", None)):
            return _library_name(f)
        where = f"{where} -> {f.__qualname__}"
        reads = sorted(_code_names(f.__code__) & _FILE_READERS)
        if reads:
            self.readers.append(f"{where} calls {', '.join(reads)}")
        out = ["function", f.__qualname__, self.code(f.__code__, where),
               self.value(f.__defaults__, where), self.value(f.__kwdefaults__, where),
               self.value(f.__closure__ or (), where), self.globals_of(f, where)]
        wrapped = getattr(f, "__wrapped__", None)
        if wrapped is not None:
            out.append(self.value(wrapped, where))
        return out

    def globals_of(self, f: types.FunctionType, where: str) -> Any:
        """The module-level values ``f`` names; for project modules it reads, their attributes it names."""
        names = _code_names(f.__code__)
        found = []
        for name in sorted(names):
            if name not in f.__globals__:
                continue
            value = f.__globals__[name]
            if isinstance(value, types.ModuleType):
                found.append([name, self.module_attrs(value, names, where)])
            elif name == "__file__":  # the module's own file: its code is versioned as it runs, not as it reads
                found.append([name, ["str", value]])
            else:
                found.append([name, self.value(value, where)])
        return found

    def module_attrs(self, module: types.ModuleType, names: set[str], where: str) -> Any:
        if _is_library(module.__name__):
            return ["module", module.__name__, _package_version(module.__name__)]
        key = ("module", id(module), frozenset(names))
        if key in self.active:
            return ["cycle", module.__name__]
        self.active.add(key)  # type: ignore[arg-type]
        try:
            attrs = []
            for name in sorted(names):
                if hasattr(module, name):
                    value = getattr(module, name)
                    attrs.append([name, self.module_attrs(value, names, where) if isinstance(value, types.ModuleType)
                                  else self.value(value, f"{where} -> {module.__name__}.{name}")])
            return ["module", module.__name__, attrs]
        finally:
            self.active.discard(key)  # type: ignore[arg-type]

    def cls(self, c: type, where: str) -> Any:
        if _is_library(c.__module__):
            return _library_name(c)
        where = f"{where} -> {c.__qualname__}"
        attrs = [[k, self.value(v, where)] for k, v in c.__dict__.items() if k not in _CLASS_SKIP]
        bases = [self.value(b, where) for b in c.__bases__]
        return ["class", c.__qualname__, bases, attrs]

    def obj(self, v: Any, where: str) -> Any:
        kind = type(v)
        state: dict[str, Any] = {}
        if hasattr(v, "__dict__"):
            state.update(vars(v))
        for slot in getattr(kind, "__slots__", ()) if isinstance(getattr(kind, "__slots__", ()), (tuple, list)) else ():
            if hasattr(v, slot):
                state[slot] = getattr(v, slot)
        if kind is object:  # a sentinel
            return ["sentinel"]
        if not state and not hasattr(v, "__dict__"):
            if callable(v) and _is_library(getattr(v, "__module__", None) or kind.__module__):
                return _library_name(v)  # builtin methods, ufuncs, compiled functions
            if _is_library(kind.__module__):
                self.reason(f"{where}: a {kind.__module__}.{kind.__qualname__} object cannot be versioned")
                return ["opaque", kind.__qualname__]
        skip = _MEMO_ATTRS | (_PIPELINE_ATTRS if _is_library(kind.__module__) else frozenset())
        return ["object", self.value(kind, where),
                [[k, self.value(x, f"{where}.{k}")] for k, x in sorted(state.items()) if k not in skip]]

    # -- LFs -------------------------------------------------------------------------------------
    def lf(self, lf) -> Any:
        where = f"LF {lf.name!r}"
        out = [lf.name, self.value(type(lf), where), self.value(lf._f, where),
               self.value(dict(lf._resources), f"{where} resources"), self.value(list(lf._pre), f"{where} preprocessors")]
        config = getattr(type(lf), "_nlp_config", None)  # Snorkel's nlp LFs keep their spaCy settings on the class
        if config is not None:
            out.append(self.value(tuple(config.parameters), f"{where} spaCy settings"))
        return out


def fingerprint(lf) -> Fingerprint:
    """The LF's version (16 hex digits) and, when its votes must not be cached, why."""
    walker = _Walker()
    try:
        payload = walker.lf(lf)
    except _TooLarge as exc:
        payload = [lf.name, "too large"]
        walker.reason(f"{exc.args[0]}: reaches more than {MAX_NODES} objects")
    except Exception as exc:  # noqa: BLE001 - a value whose walk fails cannot be versioned
        payload = [lf.name, "failed"]
        walker.reason(f"LF {lf.name!r}: cannot be versioned ({type(exc).__name__}: {exc})")
    if walker.readers and not walker.files:
        walker.reason(f"{walker.readers[0]} but reaches no str or Path naming a file: a path built at run time "
                      "cannot be versioned (name the file in a module-level constant or a resource)")
    blob = json.dumps(payload, sort_keys=True, default=repr).encode()
    return Fingerprint(hashlib.sha256(blob).hexdigest()[:16], "; ".join(walker.reasons) or None)
