"""labeling: weak supervision from labeling functions to a served end model.

The data flow, one module per stage:

    datasets -> lfs -> apply -> analysis -> label_models -> end_models
             -> evaluate -> artifacts + store   (retrain wires them; cli is the shell)
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
    NotFittedError,
    StoreError,
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
    lf_version,
    resolve_spacy_model,
    spacy_labeling_function,
)
from .matrix import ABSTAIN, check_label_matrix, label_matrix_hash
from .retrain import RunResult, format_summary, run_retrain
from .store import RunRecord, RunStore

__all__ = [
    "ABSTAIN",
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
]
