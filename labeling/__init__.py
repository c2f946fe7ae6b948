"""labeling: weak supervision from labeling functions to a served end model.

The data flow, one module per stage:

    datasets -> lfs -> apply -> analysis -> label_models -> end_models
             -> evaluate -> artifacts + store   (retrain wires them; cli is the shell)
    verify (at ingestion), slices, registry (aliases, gate, rollback), lineage
    (history, reproduce), monitor (served traffic vs training data), report (HTML)
"""

from .analysis import conflicts, coverage, empirical_accuracy, lf_summary, matrix_summary, overlaps, polarity
from .apply import ApplyResult, LFErrors, Row, apply_lfs
from .cache import LFCache, project_cache_dir
from .declarative import keyword_lf, length_lf, regex_lf
from .parse_cache import ParseCache
from .artifacts import load_end_model, load_label_model, save_end_model, save_label_model
from .config import ProjectConfig, load_config, project_config_from_dict
from .datasets import (
    DATA_DIR_ENV,
    Splits,
    canonicalize,
    fetch_youtube_spam,
    frame_hash,
    load_dataset,
    load_imdb,
    load_youtube_spam,
    read_table,
    split_random,
    youtube_tutorial_split,
)
from .config import config_from_record
from .end_models import SklearnTextClassifier, TorchTextClassifier, make_end_model
from .errors import (
    ArtifactError,
    ChecksumError,
    ConfigError,
    DatasetError,
    LabelError,
    LabelingError,
    LabelMatrixError,
    LFApplicationError,
    LFDiscoveryError,
    MonitorError,
    NotFittedError,
    PromotionRefused,
    StoreError,
    VerificationError,
)
from .evaluate import EvalRow, classification_metrics, evaluation_table
from .label_models import (
    DawidSkene,
    MajorityVote,
    Selection,
    SnorkelLabelModel,
    WeightedMajorityVote,
    label_model_from_dict,
    probs_to_preds,
    select_label_model,
)
from .lfs import (
    SpacyDoc,
    discover_lfs,
    labeling_function,
    lf_set_version,
    lf_uncacheable,
    lf_version,
    resolve_spacy_model,
    spacy_labeling_function,
)
from .lineage import Reproduction, history, reproduce
from .matrix import ABSTAIN, check_label_matrix, label_matrix_hash
from .monitor import DriftCheck, MonitorReport, check_drift, reference_profile, served_profile
from .registry import CANDIDATE, CHAMPION, GateDecision, Registry, gate, promote_run
from .report import render_report, write_report
from .slices import discover_slices, slice_masks, slice_metrics, slicing_function
from .verify import Finding, VerificationReport, raise_on_errors, verify_dataset, verify_splits
from .retrain import RunResult, format_summary, run_retrain
from .store import RunRecord, RunStore
from .redact import RedactionSettings, redact_text, redact_texts
from .review import LabelStudioReview, ReviewError, labeling_config, sample_scores, select_for_review
from .gold import GoldStore, all_gold, review_gold
from .refine import RefineReport, lf_accuracy_table, likely_label_errors, refine, suggest_keyword_lfs, wilson_interval
from .review_job import pull_review, push_review, refine_from_gold

__all__ = [
    "ABSTAIN",
    "CANDIDATE",
    "CHAMPION",
    "DriftCheck",
    "Finding",
    "GateDecision",
    "MonitorError",
    "MonitorReport",
    "PromotionRefused",
    "Registry",
    "Reproduction",
    "VerificationError",
    "VerificationReport",
    "check_drift",
    "config_from_record",
    "discover_slices",
    "gate",
    "history",
    "promote_run",
    "raise_on_errors",
    "reference_profile",
    "render_report",
    "reproduce",
    "served_profile",
    "slice_masks",
    "slice_metrics",
    "slicing_function",
    "verify_dataset",
    "verify_splits",
    "write_report",
    "DATA_DIR_ENV",
    "ApplyResult",
    "ArtifactError",
    "ChecksumError",
    "ConfigError",
    "DatasetError",
    "DawidSkene",
    "EvalRow",
    "LFApplicationError",
    "LFCache",
    "LFDiscoveryError",
    "LFErrors",
    "LabelError",
    "LabelMatrixError",
    "LabelingError",
    "MajorityVote",
    "NotFittedError",
    "ParseCache",
    "ProjectConfig",
    "Row",
    "RunRecord",
    "RunResult",
    "RunStore",
    "Selection",
    "SklearnTextClassifier",
    "SnorkelLabelModel",
    "SpacyDoc",
    "Splits",
    "StoreError",
    "TorchTextClassifier",
    "WeightedMajorityVote",
    "apply_lfs",
    "canonicalize",
    "check_label_matrix",
    "classification_metrics",
    "conflicts",
    "coverage",
    "discover_lfs",
    "empirical_accuracy",
    "evaluation_table",
    "fetch_youtube_spam",
    "format_summary",
    "frame_hash",
    "keyword_lf",
    "label_matrix_hash",
    "label_model_from_dict",
    "labeling_function",
    "lf_set_version",
    "lf_summary",
    "length_lf",
    "lf_uncacheable",
    "lf_version",
    "load_config",
    "load_dataset",
    "load_end_model",
    "load_imdb",
    "load_label_model",
    "load_youtube_spam",
    "make_end_model",
    "matrix_summary",
    "overlaps",
    "polarity",
    "probs_to_preds",
    "project_cache_dir",
    "project_config_from_dict",
    "read_table",
    "regex_lf",
    "resolve_spacy_model",
    "run_retrain",
    "save_end_model",
    "save_label_model",
    "select_label_model",
    "spacy_labeling_function",
    "split_random",
    "youtube_tutorial_split",
    # review and refinement
    "GoldStore",
    "LabelStudioReview",
    "RedactionSettings",
    "RefineReport",
    "ReviewError",
    "all_gold",
    "labeling_config",
    "lf_accuracy_table",
    "likely_label_errors",
    "pull_review",
    "push_review",
    "redact_text",
    "redact_texts",
    "refine",
    "refine_from_gold",
    "review_gold",
    "sample_scores",
    "select_for_review",
    "suggest_keyword_lfs",
    "wilson_interval",
]
