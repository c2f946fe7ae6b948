"""labeling: weak supervision from labeling functions to a served end model.

The package tree is the data flow; each stage is a subpackage whose ``__init__`` says
what enters and leaves it:

    data/      files, built-in and WRENCH datasets -> validated splits; verification
    lf/        LFs + rows -> the label matrix L (apply, vote cache, spaCy parses, Dask)
    models/    L -> label model -> probabilistic labels -> end model; artifacts, ONNX
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

_getattr, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "errors": ["ArtifactError", "ChecksumError", "ConfigError", "DatasetError", "LabelError", "LabelingError", "LabelMatrixError", "LFApplicationError", "LFDiscoveryError", "MonitorError", "NotFittedError", "PromotionRefused", "StoreError", "VerificationError", "WorkbenchError"],
        "config": ["config_from_record", "load_config", "project_config_from_dict", "ProjectConfig"],
        "matrix": ["ABSTAIN", "check_label_matrix", "label_matrix_hash"],
        "data.datasets": ["canonicalize", "DATA_DIR_ENV", "fetch_youtube_spam", "frame_hash", "load_dataset", "load_imdb", "load_youtube_spam", "read_table", "split_random", "Splits", "youtube_tutorial_split"],
        "data.verify": ["Finding", "raise_on_errors", "VerificationReport", "verify_dataset", "verify_splits"],
        "data.wrench": ["load_wrench"],
        "lf.core": ["discover_lfs", "labeling_function", "lf_set_version", "lf_uncacheable", "lf_version", "resolve_spacy_model", "spacy_labeling_function", "SpacyDoc"],
        "lf.declarative": ["keyword_lf", "length_lf", "regex_lf"],
        "lf.apply": ["apply_lfs", "ApplyResult", "LFErrors", "Row"],
        "lf.cache": ["LFCache", "project_cache_dir"],
        "lf.parse_cache": ["ParseCache"],
        "lf.analysis": ["conflicts", "coverage", "empirical_accuracy", "lf_summary", "matrix_summary", "overlaps", "polarity"],
        "models.label_models": ["DawidSkene", "fit_label_model", "label_model_from_dict", "MajorityVote", "probs_to_preds", "select_label_model", "Selection", "SnorkelLabelModel", "WeightedMajorityVote"],
        "models.end_models": ["make_end_model", "SklearnTextClassifier", "TorchTextClassifier"],
        "models.embeddings": ["EmbeddingCache", "embed_texts", "load_embedder"],
        "models.artifacts": ["load_end_model", "load_label_model", "save_end_model", "save_label_model"],
        "pipeline.evaluate": ["classification_metrics", "EvalRow", "evaluation_table"],
        "pipeline.retrain": ["format_summary", "run_retrain", "RunResult"],
        "pipeline.store": ["RunRecord", "RunStore"],
        "pipeline.registry": ["CANDIDATE", "CHAMPION", "gate", "GateDecision", "promote_run", "Registry"],
        "pipeline.lineage": ["history", "reproduce", "Reproduction"],
        "pipeline.slices": ["discover_slices", "slice_masks", "slice_metrics", "slicing_function"],
        "pipeline.report": ["render_report", "write_report"],
        "serve.app": ["create_app", "ServeSettings"],
        "serve.feedback": ["FeedbackLog"],
        "serve.monitor": ["check_drift", "DriftCheck", "MonitorReport", "reference_profile", "served_profile"],
        "review.label_studio": ["Annotation", "labeling_config", "LabelStudioReview", "ReviewError", "sample_scores", "select_for_review"],
        "review.redact": ["redact_text", "redact_texts", "RedactionSettings"],
        "review.gold": ["all_gold", "GoldStore", "review_gold", "ReviewTask"],
        "review.refinement": ["format_lf_code", "lf_accuracy_table", "likely_label_errors", "refine", "RefineReport", "suggest_keyword_lfs", "wilson_interval"],
        "review.jobs": ["dataset_candidates", "pull_review", "push_review", "refine_from_gold"],
        "notebook.workbench": ["Workbench"],
        "notebook.report": ["LFReport"],
        "notebook.kinds": ["from_gold", "similar_to"],
        "notebook.save": ["SavedModule"],
    },
)

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
    "store": "labeling.pipeline.store",
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
