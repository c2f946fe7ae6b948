"""Labeling functions: explicit discovery, versions, and spaCy-backed LFs.

Users write LFs with Snorkel's ``@labeling_function`` (the API they know) in
modules under ``labeling_functions/``. We never register LFs as an import side
effect: ``discover_lfs`` imports the modules a project names and collects the
module-level ``LabelingFunction`` objects, in definition order.

An LF's version is a hash of everything its votes can depend on (its code,
helpers, constants, resources and preprocessors: ``labeling/lf/fingerprint.py``), so
editing an LF, a helper it calls, or the keyword list it uses gives it a new version.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from snorkel.labeling import LabelingFunction, labeling_function

from ..errors import LFDiscoveryError
from ..matrix import ABSTAIN
from ..settings import DEFAULT_SPACY_MODEL, SPACY_MODEL_ENV, missing_pipeline_error, spacy_model
from .fingerprint import fingerprint
from .rows import Row

__all__ = [
    "ABSTAIN",
    "DEFAULT_SPACY_MODEL",
    "SPACY_MODEL_ENV",
    "LabelingFunction",
    "SpacyDoc",
    "discover_lfs",
    "labeling_function",
    "lf_set_version",
    "lf_uncacheable",
    "lf_version",
    "lfs_in_modules",
    "load_spacy",
    "resolve_spacy_model",
    "spacy_labeling_function",
    "uses_spacy",
]

def resolve_spacy_model(configured: str | None = None) -> str:
    """The spaCy pipeline to use (``labeling.settings.spacy_model``): the environment
    overrides the project setting; a missing default falls back to an installed
    ``en_core_web_*`` pipeline. Raises ``ConfigError`` naming the installed pipelines."""
    return spacy_model(configured)


@functools.lru_cache(maxsize=4)
def load_spacy(name: str):
    """Load (once per process) the spaCy pipeline ``name``; ``"blank:en"`` gives a blank one."""
    import spacy

    if name.startswith("blank:"):
        return spacy.blank(name.split(":", 1)[1])
    try:
        return spacy.load(name)
    except (OSError, ImportError) as exc:
        raise missing_pipeline_error(name) from exc


def _set_field(x: Any, field: str, value: Any) -> Any:
    # Snorkel hands LFs pandas Series, our applier hands Rows; never mutate the
    # caller's row, since other LFs see it too.
    if isinstance(x, Row):
        x = x.copy()
    elif isinstance(x, pd.Series):  # an object copy can hold a Doc
        x = x.astype(object)
    else:
        x = copy.copy(x)
    if isinstance(x, Mapping) or hasattr(x, "__setitem__"):
        x[field] = value
    else:
        setattr(x, field, value)
    return x


class SpacyDoc:
    """Preprocessor that gives an LF ``x.doc``: the spaCy parse of ``x.<text_field>``.

    The applier parses every text once with ``nlp.pipe`` and fills ``doc`` before
    any LF runs, so this only parses when an LF is called on its own (in a
    notebook, or by Snorkel's applier).
    """

    def __init__(self, text_field: str = "text", doc_field: str = "doc"):
        self.text_field = text_field
        self.doc_field = doc_field

    def __call__(self, x: Any) -> Any:
        if _get_field(x, self.doc_field) is not None:
            return x
        nlp = load_spacy(resolve_spacy_model())
        # the text as it is: None or a number fails here, as in Snorkel's SpacyPreprocessor
        return _set_field(x, self.doc_field, nlp(_get_field(x, self.text_field)))

    def __repr__(self) -> str:
        return f"SpacyDoc(text_field={self.text_field!r}, doc_field={self.doc_field!r})"


def _get_field(x: Any, field: str) -> Any:
    if isinstance(x, Mapping):
        return x.get(field)
    return getattr(x, field, None)


def spacy_labeling_function(
    name: str | None = None,
    resources: Mapping[str, Any] | None = None,
    text_field: str = "text",
) -> Callable[[Callable[..., int]], LabelingFunction]:
    """Like ``@labeling_function`` but the LF receives ``x.doc``, a spaCy ``Doc``.

    The pipeline is a project setting (``lfs.spacy_model``), not baked into the
    LF, so the same LF runs with the official or a locally installed pipeline.
    """

    def decorate(f: Callable[..., int]) -> LabelingFunction:
        return LabelingFunction(
            name=name or f.__name__, f=f, resources=resources, pre=[SpacyDoc(text_field)]
        )

    return decorate


def uses_spacy(lf: LabelingFunction) -> bool:
    return any(isinstance(p, SpacyDoc) for p in getattr(lf, "_pre", ()))


def lf_version(lf: LabelingFunction) -> str:
    """Hash of everything the LF's votes can depend on (``labeling/lf/fingerprint.py``):
    its code, defaults, closures, the helpers, constants, classes and project
    modules it reaches, its resources (by content) and its preprocessors."""
    return fingerprint(lf).version


def lf_uncacheable(lf: LabelingFunction) -> str | None:
    """Why the LF's votes cannot be cached (something it reaches has no faithful version), or None."""
    return fingerprint(lf).uncacheable


def lf_set_version(lfs: Sequence[LabelingFunction]) -> str:
    """Version of an ordered LF set: column order matters for the label matrix."""
    blob = json.dumps([(lf.name, lf_version(lf)) for lf in lfs]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@contextmanager
def _on_path(root: Path | None):
    if root is None:
        yield
        return
    entry = str(root)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def discover_lfs(modules: Iterable[str], *, root: str | Path | None = None,
                 allow_empty: bool = False) -> tuple[LabelingFunction, ...]:
    """Import ``modules`` (dotted names, importable from ``root``) and return their LFs.

    LFs come in module order, then definition order, so the label matrix's
    columns are stable. Names must be unique across modules. A module defining no
    LF raises ``LFDiscoveryError`` saying what to write, unless ``allow_empty`` (the
    project has LF columns of its own: WRENCH, ``dataset.weak_label_fields``).
    """
    modules = list(modules)
    if not modules:
        raise LFDiscoveryError("no labeling-function modules configured (lfs.modules is empty)")
    imported = []
    with _on_path(Path(root).resolve() if root is not None else None):
        for module_name in modules:
            try:
                imported.append((module_name, importlib.import_module(module_name)))
            except ImportError as exc:
                raise LFDiscoveryError(f"cannot import LF module {module_name!r}: {exc}") from exc
    return lfs_in_modules(imported, allow_empty=allow_empty)


def lfs_in_modules(modules: Iterable[tuple[str, Any]], *, allow_empty: bool = False) -> tuple[LabelingFunction, ...]:
    """The module-level LFs of ``(name, module)`` pairs, in module then definition order.

    Raises ``LFDiscoveryError`` for a module without LFs (unless ``allow_empty``) or an
    LF name used twice."""
    found: list[LabelingFunction] = []
    origin: dict[str, str] = {}
    for module_name, module in modules:
        lfs_here = [v for v in vars(module).values() if isinstance(v, LabelingFunction)]
        if not lfs_here and not allow_empty:
            where = getattr(module, "__file__", None) or module_name
            raise LFDiscoveryError(
                f"LF module {module_name!r} ({where}) defines no labeling functions yet: write at least one "
                "there (a function decorated with snorkel's @labeling_function(), or keyword_lf/regex_lf from "
                "labeling), e.g. in the project's write_lfs.ipynb with the workbench, then retrain")
        for lf in lfs_here:
            if lf.name in origin:
                raise LFDiscoveryError(
                    f"duplicate LF name {lf.name!r} in {module_name!r} and {origin[lf.name]!r}"
                )
            origin[lf.name] = module_name
            found.append(lf)
    return tuple(found)
