"""labeling: weak supervision from labeling functions to a served end model.

The package tree is the data flow; each stage is a subpackage whose ``__init__`` says
what enters and leaves it:

    store/     the project's store (SQLite file or PostgreSQL): every table, schema version, migrations
    data/      files, built-in and WRENCH datasets -> validated splits; verification
    lf/        LFs + rows -> the label matrix L (apply, vote cache, spaCy parses, Dask)
    models/    L -> label model -> probabilistic labels -> end model; artifacts, ONNX
    spans/     span LFs + tokens -> token vote tensor -> aggregated entity spans; entity F1
    multilabel/ set-valued LF votes -> n x m x k vote tensor -> label sets; multi-label F1s
    pipeline/  the retrain job: evaluation, store, registry and gate, lineage, slices, report
    serve/     the HTTP app, LF votes on served texts, prediction/feedback log, monitor
    review/    Label Studio review, redaction, gold labels, refinement
    notebook/  the LF workbench: try, fix and save LFs against a project's data

Shared basics stay at the top: ``config`` (project TOML), ``errors``, ``matrix``
(ABSTAIN, label-matrix checks and hashes) and ``cli`` (one command per library call).
This module is the one public surface: every name in ``__all__`` is imported from its
stage on first use, so ``import labeling`` is fast and loads no model library.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

import lazy_loader

#: The stages, in the order data flows through them; each ``labeling.<stage>.EXPORTS``
#: maps its modules to their public names, which are all public here too.
STAGES = ("store", "data", "lf", "models", "spans", "multilabel", "pipeline", "serve", "review", "notebook")
_BASICS = {
    "errors": ["ArtifactError", "ChecksumError", "ConfigError", "DatasetError", "LabelError", "LabelingError",
               "LabelMatrixError", "LFApplicationError", "LFDiscoveryError", "MonitorError", "NotFittedError",
               "PromotionRefused", "SchemaChangeError", "StoreError", "StoreVersionError", "VerificationError", "WorkbenchError"],
    "config": ["config_from_record", "load_config", "project_config_from_dict", "ProjectConfig"],
    "matrix": ["ABSTAIN", "check_label_matrix", "label_matrix_hash"],
}


def _exports() -> dict[str, list[str]]:
    exports = dict(_BASICS)
    for stage in STAGES:  # a stage's __init__ only names its modules: importing it loads nothing else
        for module, names in importlib.import_module(f"{__name__}.{stage}").EXPORTS.items():
            exports[f"{stage}.{module}"] = names
    return exports


_getattr, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_exports())

#: Module paths from before the stage subpackages (0.1), kept importable with a
#: DeprecationWarning until 0.3: ``labeling.apply`` -> ``labeling.lf.apply``. (The old
#: ``labeling.review`` module is now the ``review`` stage, which exports its names.)
MOVED_MODULES = {
    "datasets": "labeling.data.datasets",
    "verify": "labeling.data.verify",
    "wrench": "labeling.data.wrench",
    "lfs": "labeling.lf.core",
    "declarative": "labeling.lf.declarative",
    "patterns": "labeling.lf.patterns",
    "parse_cache": "labeling.lf.parse_cache",
    "apply": "labeling.lf.apply",
    "cache": "labeling.lf.cache",
    "workers": "labeling.lf.workers",
    "distributed": "labeling.lf.distributed",
    "analysis": "labeling.lf.analysis",
    "label_models": "labeling.models.label_models",
    "end_models": "labeling.models.end_models",
    "artifacts": "labeling.models.artifacts",
    "export": "labeling.models.export",
    "retrain": "labeling.pipeline.retrain",
    "evaluate": "labeling.pipeline.evaluate",
    "registry": "labeling.pipeline.registry",
    "lineage": "labeling.pipeline.lineage",
    "slices": "labeling.pipeline.slices",
    "report": "labeling.pipeline.report",
    "serving": "labeling.serve.app",
    "explainer": "labeling.serve.votes",
    "feedback": "labeling.serve.feedback",
    "monitor": "labeling.serve.monitor",
    "gold": "labeling.review.gold",
    "refine": "labeling.review.refinement",
    "redact": "labeling.review.redact",
    "review_job": "labeling.review.jobs",
}


def _moved(old: str) -> str:
    new = MOVED_MODULES[old]
    warnings.warn(f"labeling.{old} moved to {new}; import from there (or from labeling)",
                  DeprecationWarning, stacklevel=3)
    return new


def __getattr__(name: str):
    if name in MOVED_MODULES and name not in __all__:
        return importlib.import_module(_moved(name))
    return _getattr(name)


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``labeling.<old module>`` and hands back the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(_moved(spec.name.partition(".")[2]))

    def exec_module(self, module):
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())
