"""A run's own LFs: saved with its artifacts at retrain, loaded from there to serve it.

What a run's model was trained on are the votes of the LFs as they were when it
ran; serving, explaining and monitoring that model must use those LFs, not the
files in the working tree, which a user edits between runs.

``snapshot_lfs`` (right after the retrain imported its LFs) keeps, by content:

- the source of each configured LF module, of the packages above it, and of every
  project module they import (found in their import statements, transitively):
  the modules under ``lfs.root`` that are not this library or an installed package;
- the files the LFs and those modules name by path (a ``Path`` or an absolute path
  string, in an LF's resources or a module-level value, one container deep; a
  folder counts as its files): those under the folder the modules are imported
  from are kept beside the sources, where a path built from ``__file__`` finds
  them; any other is recorded by sha256.

``save_lf_snapshot`` writes them into the run's ``lfs`` folder, laid out by module
name (``pkg/mod.py``, ``pkg/__init__.py``, ``pkg/resources/words.txt``), with a
manifest (kind ``lf_modules``); the retrain records every file's sha256 with the
run, like the models'. A module imported only by a string (``importlib``) or a file
named relative to the working directory is not found: its LFs then fail to load, or
read the working directory's file, as they would anywhere else.

``load_run_lfs`` checks those files against the checksums recorded with the run,
then runs the saved sources (read once, compiled from memory: never a ``.pyc``,
never the working tree) as modules named ``_labeling_run_lfs.<key>.<name>``, the
key unique to the run and its manifest: imports between the saved modules resolve
inside the snapshot, and two runs' LFs never share a module. A file an LF names
outside the snapshot must still have the sha256 recorded for it. Any failure is an
``LFLoadError`` saying why; nothing falls back to other code.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..errors import ArtifactError, LabelingError

__all__ = ["LFLoadError", "LFSnapshot", "load_run_lfs", "save_lf_snapshot", "snapshot_lfs"]

KIND = "lf_modules"
FOLDER = "lfs"  # the run's artifact folder and the prefix of its recorded file names
PACKAGE = "_labeling_run_lfs"  # parent of every loaded run's modules
_OWN = __name__.split(".", 1)[0]
# a folder an LF names is saved whole up to these bounds
MAX_FOLDER_FILES = 2_000
MAX_FOLDER_BYTES = 64 << 20


class LFLoadError(LabelingError):
    """A run's saved LFs cannot be loaded: none saved, a file fails its checksum, or they do not import."""


@dataclass(frozen=True)
class LFSnapshot:
    """What a run's LFs are made of: ``files`` (POSIX path under ``lfs.root`` -> bytes),
    ``external`` (absolute path of a file outside it -> sha256), ``modules`` (the
    configured LF modules, in order) and ``lf_names`` (the LFs, in column order)."""

    modules: tuple[str, ...]
    lf_names: tuple[str, ...]
    files: Mapping[str, bytes] = field(default_factory=dict)
    external: Mapping[str, str] = field(default_factory=dict)


# -- snapshot (retrain) -----------------------------------------------------------------


def _is_library_file(path: Path) -> bool:
    return "site-packages" in path.parts or "dist-packages" in path.parts


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _module_source(name: str, root: Path) -> tuple[Path, str, Path] | None:
    """``(file, path in the snapshot, source folder)`` of project module ``name``: the file it was
    imported from (else the one under ``root`` it would be), laid out by its dotted name under
    the folder it is imported from. None for a module of this library, the standard library,
    an installed package, a namespace folder or one without a source file."""
    top = name.partition(".")[0]
    if top == _OWN or top in sys.stdlib_module_names:
        return None
    parts = name.split(".")
    module = sys.modules.get(name)
    found = getattr(module, "__file__", None) if module is not None else None
    if found is None:
        base = root.joinpath(*parts)
        found = next((str(c) for c in (base / "__init__.py", base.parent / f"{parts[-1]}.py") if c.is_file()), None)
    if found is None:
        return None
    path = Path(found).resolve()
    if _is_library_file(path) or path.suffix != ".py":
        return None
    package = path.name == "__init__.py"
    rel = "/".join(parts) + ("/__init__.py" if package else ".py")
    return path, rel, path.parents[len(parts) - (0 if package else 1)]


def _imported_names(source: bytes, name: str, is_package: bool) -> set[str]:
    """Every module name an import statement of the source may load (``from a import b``: ``a`` and ``a.b``)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            try:
                base = (importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                        if node.level else node.module or "")
            except ImportError:
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {n for n in found if n}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _paths_in(value, depth: int = 0) -> Iterator[Path]:
    """Paths a value names: a ``Path``, an absolute path string, inside containers one level deep."""
    if isinstance(value, PurePath):
        yield Path(value)
    elif isinstance(value, str):
        if value.startswith("/") and len(value) < 4096 and "\n" not in value:
            yield Path(value)
    elif depth < 2 and isinstance(value, Mapping):
        for item in list(value.values()):
            yield from _paths_in(item, depth + 1)
    elif depth < 2 and isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value)[:10_000]:
            yield from _paths_in(item, depth + 1)


def _named_files(lfs, modules: Sequence[types.ModuleType]) -> Iterator[Path]:
    """The existing files the LFs' resources and the modules' top-level values name (folders expanded)."""
    values = [lf._resources for lf in lfs]
    values += [v for m in modules for k, v in vars(m).items() if not k.startswith("__")]
    for path in (p for v in values for p in _paths_in(v)):
        try:
            if path.is_file():
                yield path.resolve()
            elif path.is_dir():
                yield from _folder_files(path.resolve())
        except OSError:
            continue


def _folder_files(folder: Path) -> list[Path]:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if len(files) > MAX_FOLDER_FILES or sum(p.stat().st_size for p in files) > MAX_FOLDER_BYTES:
        raise LFLoadError(f"the LFs name the folder {folder}, over {MAX_FOLDER_FILES} files or "
                          f"{MAX_FOLDER_BYTES >> 20} MiB: a run cannot keep it; name the files the LFs read")
    return files


def snapshot_lfs(lfs, modules: Sequence[str], root: str | Path) -> LFSnapshot:
    """The sources and files the LFs ``lfs``, discovered from ``modules`` under ``root``, are made of.

    Call it right after ``discover_lfs``: the sources are read then, as the run imported them.
    Raises ``LFLoadError`` when a configured module has no source file under ``root``."""
    root = Path(root).resolve()
    files: dict[str, bytes] = {}
    folders = {root}  # where the saved modules are imported from: their files keep their place under it
    seen: set[str] = set()
    pending = [n for m in modules for n in (*_parents(m), m)]
    loaded = []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        found = _module_source(name, root)
        if found is None:
            if name in modules:
                raise LFLoadError(f"LF module {name!r} has no source file: a run cannot keep it")
            continue
        path, rel, folder = found
        source = path.read_bytes()
        files[rel] = source
        folders.add(folder)
        if name in sys.modules:
            loaded.append(sys.modules[name])
        imported = _imported_names(source, name, path.name == "__init__.py")
        pending += [n for i in imported for n in (*_parents(i), i) if n not in seen]
    external: dict[str, str] = {}
    for path in _named_files(lfs, loaded):
        folder = next((f for f in sorted(folders, key=lambda f: -len(f.parts)) if _under(path, f)), None)
        if folder is not None and not _is_library_file(path):
            files.setdefault(path.relative_to(folder).as_posix(), path.read_bytes())
        else:
            external[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return LFSnapshot(tuple(modules), tuple(lf.name for lf in lfs), files, external)


def save_lf_snapshot(snapshot: LFSnapshot, folder: str | Path) -> dict[str, str]:
    """Write the snapshot into the new folder ``folder`` with its manifest: ``{relative path: sha256}``."""
    from ..models.artifacts import write_manifest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    for name, data in sorted(snapshot.files.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    meta = {"modules": list(snapshot.modules), "lfs": list(snapshot.lf_names), "external": dict(snapshot.external),
            "sources": sorted(n for n in snapshot.files if n.endswith(".py"))}
    return write_manifest(folder, KIND, meta)


# -- load (serving) ---------------------------------------------------------------------


class _Snapshot:
    """One run's saved modules, importable under ``prefix``."""

    def __init__(self, prefix: str, folder: Path, sources: dict[str, bytes]):
        self.prefix, self.folder, self.sources = prefix, folder, sources
        self.tops = {name.split("/", 1)[0].removesuffix(".py") for name in sources}
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self._import

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        # absolute imports of the project's modules resolve inside this snapshot
        top = name.partition(".")[0]
        if level == 0 and top in self.tops:
            module = builtins.__import__(f"{self.prefix}.{name}", globals, locals, fromlist, 0)
            return module if fromlist else sys.modules[f"{self.prefix}.{top}"]
        return builtins.__import__(name, globals, locals, fromlist, level)

    def spec(self, fullname: str) -> importlib.machinery.ModuleSpec | None:
        rel = fullname[len(self.prefix) + 1:].replace(".", "/") if fullname != self.prefix else ""
        for candidate, package in ((f"{rel}/__init__.py", True), (f"{rel}.py", False)):
            if rel and candidate in self.sources:
                spec = importlib.machinery.ModuleSpec(fullname, _Loader(self, candidate),
                                                      origin=str(self.folder / candidate), is_package=package)
                spec.has_location = True
                return spec
        if not rel or any(name.startswith(rel + "/") for name in self.sources):  # a folder without __init__.py
            return importlib.machinery.ModuleSpec(fullname, _Loader(self, None), is_package=True)
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, snapshot: _Snapshot, name: str | None):
        self.snapshot, self.name = snapshot, name

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        if self.name is None:
            return
        path = str(self.snapshot.folder / self.name)
        module.__file__ = path
        module.__dict__["__builtins__"] = self.snapshot.builtins
        exec(compile(self.snapshot.sources[self.name], path, "exec", dont_inherit=True), module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules of every loaded run snapshot (and their common parent package)."""

    def __init__(self):
        self.snapshots: dict[str, _Snapshot] = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PACKAGE:
            return importlib.machinery.ModuleSpec(fullname, _Loader(None, None), is_package=True)  # type: ignore[arg-type]
        if not fullname.startswith(PACKAGE + "."):
            return None
        key = ".".join(fullname.split(".")[:2])
        snapshot = self.snapshots.get(key)
        return snapshot.spec(fullname) if snapshot is not None else None


_FINDER = _Finder()
_LOCK = threading.Lock()
_LOADED: dict[str, tuple] = {}  # module prefix -> the LFs loaded under it


def _finder() -> _Finder:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return _FINDER


def _check_external(snapshot: _Snapshot, lfs, modules, recorded: Mapping[str, str]) -> None:
    """Every file the loaded LFs name outside their snapshot must hold what the run read."""
    for path in _named_files(lfs, modules):
        if _under(path, snapshot.folder.resolve()):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if recorded.get(str(path)) != digest:
            said = "was changed since the run" if str(path) in recorded else "was not saved with the run"
            raise LFLoadError(f"the run's LFs read {path}, which {said}")


def load_run_lfs(run_id: str, folder: str | Path | None, expected: Mapping[str, str] | None,
                 lf_names: Sequence[str] | None = None) -> tuple:
    """The LFs of run ``run_id`` from its saved ``folder``, its files checked against ``expected``
    (``{relative path: sha256}`` recorded with the run). ``lf_names``: the LFs the run recorded,
    in column order; the loaded ones must be exactly those.

    Loaded once per process and run (and manifest); raises ``LFLoadError`` saying why they cannot be."""
    from ..lf.core import lfs_in_modules
    from ..models.artifacts import MANIFEST, read_manifest

    if folder is None or not expected:
        raise LFLoadError(f"run {run_id} was recorded without its LFs (by a version that did not save them); "
                          "retrain to serve LF votes with the run's own LFs")
    folder = Path(folder)
    try:
        manifest = read_manifest(folder, expected)
        if manifest["kind"] != KIND:
            raise ArtifactError(f"{folder / MANIFEST}: not a run's LFs (kind {manifest['kind']!r})")
        sources = {}
        for name in manifest["meta"].get("sources", []):
            data = (folder / name).read_bytes()  # read once: what runs is what was checked
            if hashlib.sha256(data).hexdigest() != expected.get(name):
                raise ArtifactError(f"{folder / name}: sha256 does not match the one recorded with the run")
            sources[name] = data
    except (ArtifactError, OSError) as exc:
        raise LFLoadError(f"run {run_id}'s LFs cannot be loaded: {exc}") from exc
    key = re.sub(r"\W", "_", f"r{run_id}_{expected[MANIFEST][:12]}")
    prefix = f"{PACKAGE}.{key}"
    with _LOCK:
        if prefix in _LOADED:
            return _LOADED[prefix]
        snapshot = _Snapshot(prefix, folder, sources)
        _finder().snapshots[prefix] = snapshot
        modules = manifest["meta"].get("modules", [])
        try:
            imported = [(name, importlib.import_module(f"{prefix}.{name}")) for name in modules]
            lfs = lfs_in_modules(imported)
            _check_external(snapshot, lfs, [m for n, m in sys.modules.items() if n.startswith(prefix + ".")],
                            manifest["meta"].get("external", {}))
        except Exception as exc:  # whatever the saved code raises as it imports: it is not served
            for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
                del sys.modules[name]
            del _finder().snapshots[prefix]
            if isinstance(exc, LFLoadError):
                raise
            raise LFLoadError(f"run {run_id}'s LFs cannot be loaded: {type(exc).__name__}: {exc}") from exc
        names = [lf.name for lf in lfs]
        if lf_names is not None and names != list(lf_names):
            raise LFLoadError(f"run {run_id}'s saved LFs are {names}, not the {list(lf_names)} recorded with it")
        _LOADED[prefix] = lfs
        return lfs
