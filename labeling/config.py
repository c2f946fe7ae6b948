"""Project configuration: one TOML file per project, read into frozen dataclasses.

A user starts a project by copying ``projects/youtube_spam/project.toml``. Paths
in the file are relative to the file itself, so a project folder can be moved.
Overrides (``--set end_model.type=torch``) are type-checked against the field's
current type, so a typo fails loudly instead of silently changing nothing.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .store.dialect import is_postgres

SPLITS = ("youtube_tutorial", "random", "column")
FORMATS = ("csv", "parquet", "jsonl")
LABEL_MODEL_TYPES = ("snorkel", "majority_vote", "auto")
END_MODEL_TYPES = ("sklearn", "torch", "auto")
# end_model.type = "auto": the model families tried in the first selection stage, simplest first
END_MODEL_CANDIDATES = ("char_wb", "char_wb_C10", "word", "word_hashed", "word_char", "word_char_emb", "embedding", "mlp")
REDACT_MODES = ("all", "served", "none")


@dataclass(frozen=True)
class DatasetConfig:
    source: str = "file"  # "youtube_spam" (built in), "file", or "wrench" (path = a WRENCH folder)
    path: str = ""  # file source: a CSV/Parquet/JSONL file
    format: str = ""  # inferred from the suffix when empty
    delimiter: str = ""  # CSV: the field separator; "" = a tab for .tsv, else a comma
    columns: tuple[str, ...] = ()  # CSV without a header row: its column names, in order
    quoted: bool = True  # CSV: values may be "quoted"; false: a quote is an ordinary character
    text_field: str = "text"
    label_field: str = ""  # optional gold labels (class names or indices)
    # project.task = "multi_label": a gold str is split by this into class names or indices
    label_separator: str = ","
    id_field: str = ""  # row ids; row positions when empty
    split: str = "random"  # one of SPLITS
    split_field: str = ""  # split="column": values train/dev/test
    dev_size: float = 0.1
    test_size: float = 0.2
    url: str = ""  # built-in sources: override the download URL (mirrors)
    # Columns holding weak labels computed elsewhere (other systems, crowd votes): class
    # index, -1 = abstain; used as LF columns beside the Python LFs. source = "wrench"
    # (path = a WRENCH dataset folder) adds the folder's stored LFs.
    weak_label_fields: tuple[str, ...] = ()
    # source = "wrench", relation datasets (rows with entity spans): the text the end model
    # reads, one of labeling.data.wrench.RELATION_TEXTS ("sentence", "entity_markers",
    # "between"); serve texts rendered the same way (labeling.data.wrench.render_relation)
    relation_text: str = "entity_markers"
    # source = "spans_json" (path = a folder of train/valid/test .json and meta.json in the
    # CHMM/WRENCH span format, labeling.spans.data): the LFs kept, by name, or ["lf_rec"]
    # (a bare "lf_rec" is read as that) for meta.json's recommended subset; () = all
    weak_label_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class LFConfig:
    modules: tuple[str, ...] = ()
    root: str = "."  # where the LF modules are importable from, relative to the config
    spacy_model: str = "en_core_web_sm"
    cache: str = ""  # LF vote and spaCy parse cache folder; "" = lf_cache beside the store, "none" = off
    n_jobs: int = 0  # worker processes for row-wise LFs; 0 = all cores
    scheduler: str = ""  # a Dask scheduler address to apply the LFs on a cluster


@dataclass(frozen=True)
class LabelModelConfig:
    type: str = "snorkel"
    n_epochs: int = 500
    lr: float = 0.01
    l2: float = 0.0
    tie_break: str = "random"
    # With type "auto": the incumbent, a model of this type with the settings above, stays
    # unless a candidate beats it on dev by more than one standard error. "" = no incumbent:
    # the simplest candidate within one standard error of the best is chosen.
    prefer: str = ""


@dataclass(frozen=True)
class EndModelConfig:
    # "auto" (new projects): chosen on dev only by labeling.models.end_model_selection;
    # "sklearn" / "torch": exactly the settings below.
    type: str = "auto"
    # sklearn / torch: TF-IDF over "word" or "char_wb" (character) n-grams. The defaults are the
    # "word_hashed" candidate of auto (word 1-2 grams hashed into 2**hash_bits columns, C=10):
    # its cost and memory do not grow with a vocabulary (IMDB 50k: the old char_wb 2-5 vocabulary
    # took 296 s and 6.4 GB). hash_bits = 0: a vocabulary, as before (sklearn only; torch always
    # builds one, capped by its own max_features)
    analyzer: str = "word"
    ngram_min: int = 1
    ngram_max: int = 2
    C: float = 10.0
    hash_bits: int = 20
    ngrams: bool = True  # torch: the TF-IDF n-gram block
    embedder: str = ""  # torch and sklearn: sentence embeddings beside the n-grams, e.g. "wordllama"
    hidden: int = 0  # torch: 0 = logistic regression on n-grams, >0 = one hidden layer
    epochs: int = 30
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 64
    patience: int = 0  # torch: >0 = early stopping after this many epochs without improvement
    device: str = "auto"  # torch: "auto" uses a GPU when present
    # auto: the first stage's candidate families (END_MODEL_CANDIDATES), simplest first;
    # later stages (labels, class weights, self-training, decision offsets) always run.
    # "word_hashed" (word n-grams, hashed) where "word" would hold a vocabulary growing with the corpus
    candidates: tuple[str, ...] = ("word_hashed", "word_char", "word_char_emb", "embedding")  # "mlp" too: slower on CPU
    auto_embedder: str = "wordllama"  # auto: the embedder of the "embedding" and "mlp" candidates
    baseline_max_rows: int = 20000  # human/oracle baselines: a seeded subsample beyond this many rows (0 = all)
    # auto: the selection stages run on a seeded subsample of this many weak-labelled rows, then
    # the pick is refitted on all of them (or on max_rows); 0 = select on every row
    selection_max_rows: int = 20000
    max_rows: int = 100000  # the end model's final fit: a seeded subsample beyond this many rows (0 = all)
    # auto: character n-gram and embedding candidates (end_model_selection.COSTLY) are left out when
    # the selection rows hold more characters than this (their cost grows with every character); 0 = always
    costly_max_chars: int = 4000000
    # auto: once the selection has run this many seconds, the options not yet fitted are left
    # out (each stage keeps its first option) and the run names them; 0 = no limit. A cut
    # choice depends on the machine's speed, so it is reproducible only without one
    time_budget_s: float = 0.0
    # task = "spans": the spaCy NER end model's training steps (spaCy's max_steps; the best
    # checkpoint on dev is kept)
    ner_max_steps: int = 3000


@dataclass(frozen=True)
class ReviewConfig:
    title: str = ""  # Label Studio project title; "" = the project's name
    redact: str = "served"  # whose text is redacted before it leaves for annotators: all | served | none
    redact_persons: bool = True  # person names too (spaCy NER, the lfs.spacy_model pipeline)
    strategy: str = "entropy"  # default sampling strategy (labeling.review.STRATEGIES)
    n: int = 50  # rows per push
    use_gold: bool = True  # retrain reads gold labels (reviews + serving feedback) from the store
    gold_weight: float = 1.0  # end-model sample weight of a gold row (a label-model row weighs 1)


@dataclass(frozen=True)
class VerifyConfig:
    """Ingestion checks (labeling/data/verify.py)."""

    near_duplicate_jaccard: float = 0.8  # character 5-gram Jaccard at or above which texts are near duplicates
    max_near_duplicate_rows: int = 0  # above this many distinct texts the near-duplicate search is skipped; 0: never
    min_class_share: float = 0.1  # warn when a gold class has less than this share of the labelled rows
    max_empty_share: float = 0.5  # more empty texts than this share stops the run
    fail_on: tuple[str, ...] = ()  # warning codes to treat as fatal, e.g. ["train_test_leakage"]
    drift_alpha: float = 0.01  # family-wise level (Holm) of the split-drift tests between train, dev and test
    drift_min_effect: float = 0.1  # smallest split difference reported (total variation, or a token's row share)


@dataclass(frozen=True)
class MonitorConfig:
    """When served traffic has drifted enough to retrain (labeling/serve/monitor.py)."""

    window: int = 1000  # the latest N predictions of the served model
    min_predictions: int = 50  # fewer served predictions: no verdict
    alpha: float = 0.05  # family-wise level (Holm) of the drift tests: RETRAIN when one is significant at it


@dataclass(frozen=True)
class PromotionConfig:
    """The gate a candidate passes to become champion (labeling/pipeline/registry.py)."""

    metric: str = "accuracy"  # on the gold test split
    margin: float = 0.0  # candidate must score >= champion - margin
    auto: bool = False  # retrain promotes a candidate that passes the gate


@dataclass(frozen=True)
class ServingConfig:
    """What answers a served text (labeling/models/predictors.py)."""

    # "auto": chosen on dev (cross-fitted, one-SE rule toward the simplest); or one of
    # models.predictors.PREDICTORS pinned, e.g. "end_model" where computing LF votes per
    # request costs too much latency
    predictor: str = "auto"


@dataclass(frozen=True)
class SlicesConfig:
    """Modules defining Snorkel slicing functions (labeling/pipeline/slices.py)."""

    modules: tuple[str, ...] = ()
    root: str = "."


@dataclass(frozen=True)
class ProjectConfig:
    name: str
    classes: tuple[str, ...]
    seed: int = 0
    # What "better" means on dev wherever something is chosen (end model selection):
    # "accuracy", "macro_f1", or "f1:<class>" (F1 of that class, e.g. "f1:spam").
    metric: str = "accuracy"
    # The shape of a row's label: one class ("single_label"), a set of classes ("multi_label"),
    # or typed character spans ("spans"). One pipeline; the shape is dispatched at few seams.
    task: str = "single_label"
    store: str = "runs/labeling.db"  # a SQLite file, or a PostgreSQL URL (postgresql://user@host/db)
    artifacts: str = "runs/artifacts"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    lfs: LFConfig = field(default_factory=LFConfig)
    label_model: LabelModelConfig = field(default_factory=LabelModelConfig)
    end_model: EndModelConfig = field(default_factory=EndModelConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    slices: SlicesConfig = field(default_factory=SlicesConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    base_dir: str = "."  # the config file's folder; relative paths resolve against it

    def resolve(self, path: str) -> Path:
        """``path`` against the config's folder; a PostgreSQL URL (``project.store``) is kept as given."""
        if is_postgres(path):
            return path  # type: ignore[return-value]  # the store layer takes a path or a URL
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def store_folder(self) -> Path:
        """The local folder for what lives beside the store (LF cache, run reports): the store
        file's folder, or, with a PostgreSQL store, the artifacts folder's parent."""
        store = self.resolve(self.store)
        return self.resolve(self.artifacts).parent if is_postgres(store) else store.parent

    @property
    def cardinality(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "dataset": DatasetConfig,
    "lfs": LFConfig,
    "label_model": LabelModelConfig,
    "end_model": EndModelConfig,
    "review": ReviewConfig,
    "verify": VerifyConfig,
    "monitor": MonitorConfig,
    "promotion": PromotionConfig,
    "slices": SlicesConfig,
    "serving": ServingConfig,
}
_CHOICES = {
    ("dataset", "split"): SPLITS,
    ("dataset", "format"): ("",) + FORMATS,
    ("dataset", "relation_text"): ("sentence", "entity_markers", "between"),  # wrench.RELATION_TEXTS (a test keeps them equal)
    ("label_model", "type"): LABEL_MODEL_TYPES,
    ("label_model", "prefer"): ("", "snorkel", "majority_vote"),
    ("end_model", "type"): END_MODEL_TYPES,
    ("end_model", "analyzer"): ("char_wb", "word"),
    ("review", "redact"): REDACT_MODES,
    # micro_f1/samples_f1: multi-label projects only ("accuracy" gates a multi-label run on project.metric)
    ("promotion", "metric"): ("accuracy", "macro_f1", "micro_f1", "samples_f1"),
    ("serving", "predictor"): ("auto", "label_model_backoff", "end_model", "blend"),  # predictors.PREDICTORS (a test keeps them equal)
    ("label_model", "tie_break"): ("random", "abstain", "first"),  # label_models.TIE_BREAKS (a test keeps them equal)
    ("review", "strategy"): ("entropy", "margin", "conflict", "uncovered", "low_confidence", "disagreed", "random"),
}
TASKS = ("single_label", "multi_label", "spans")
SEED_MAX = 2**32 - 1  # scikit-learn and numpy's legacy RNG take seeds in [0, 2**32 - 1]
_INF = math.inf
# (section, key) -> (low, high, low inclusive, high inclusive). Values outside would only
# fail later, deep in a library (numpy, scikit-learn, torch), or silently mean nothing.
_RANGES: dict[tuple[str, str], tuple[float, float, bool, bool]] = {
    ("project", "seed"): (0, SEED_MAX, True, True),
    ("dataset", "dev_size"): (0, 1, False, False),
    ("dataset", "test_size"): (0, 1, False, False),
    ("lfs", "n_jobs"): (0, _INF, True, False),
    ("end_model", "ner_max_steps"): (1, _INF, True, False),
    ("label_model", "n_epochs"): (1, _INF, True, False),
    ("label_model", "lr"): (0, _INF, False, False),
    ("label_model", "l2"): (0, _INF, True, False),
    ("end_model", "ngram_min"): (1, _INF, True, False),
    ("end_model", "ngram_max"): (1, _INF, True, False),
    ("end_model", "C"): (0, _INF, False, False),
    ("end_model", "hash_bits"): (0, 24, True, True),
    ("end_model", "hidden"): (0, _INF, True, False),
    ("end_model", "epochs"): (1, _INF, True, False),
    ("end_model", "lr"): (0, _INF, False, False),
    ("end_model", "weight_decay"): (0, _INF, True, False),
    ("end_model", "batch_size"): (1, _INF, True, False),
    ("end_model", "baseline_max_rows"): (0, _INF, True, False),
    ("end_model", "selection_max_rows"): (0, _INF, True, False),
    ("end_model", "max_rows"): (0, _INF, True, False),
    ("end_model", "costly_max_chars"): (0, _INF, True, False),
    ("end_model", "time_budget_s"): (0, _INF, True, False),
    ("review", "n"): (1, _INF, True, False),
    ("review", "gold_weight"): (0, _INF, True, False),
    ("verify", "near_duplicate_jaccard"): (0, 1, True, True),
    ("verify", "max_near_duplicate_rows"): (0, _INF, True, False),
    ("verify", "min_class_share"): (0, 1, True, True),
    ("verify", "max_empty_share"): (0, 1, True, True),
    ("verify", "drift_alpha"): (0, 1, False, False),
    ("verify", "drift_min_effect"): (0, 1, True, True),
    ("monitor", "window"): (1, _INF, True, False),
    ("monitor", "min_predictions"): (1, _INF, True, False),
    ("monitor", "alpha"): (0, 1, False, False),
    ("promotion", "margin"): (-1, 1, True, True),
}


def _check_range(where: str, value: Any, key: tuple[str, str]) -> None:
    """ConfigError naming the key, the value and the allowed range when ``value`` is outside it."""
    if key not in _RANGES:
        return
    low, high, low_in, high_in = _RANGES[key]
    inside = (isinstance(value, (int, float)) and math.isfinite(value)
              and (value >= low if low_in else value > low) and (value <= high if high_in else value < high))
    if not inside:
        bounds = f"{'[' if low_in else '('}{low}, {'inf' if high == _INF else high}{']' if high_in else ')'}"
        raise ConfigError(f"{where} = {value!r} is out of range: expected a finite number in {bounds}")


def _check_relations(config: ProjectConfig) -> None:
    """Settings that are valid alone but not together."""
    ds, em = config.dataset, config.end_model
    if ds.dev_size + ds.test_size >= 1:
        raise ConfigError(f"dataset.dev_size + dataset.test_size = {ds.dev_size} + {ds.test_size} must be below 1 "
                          "(the train split would be empty)")
    if em.hash_bits and not 10 <= em.hash_bits <= 24:
        raise ConfigError(f"end_model.hash_bits = {em.hash_bits}: expected 0 (a vocabulary) or 10..24")
    if em.ngram_min > em.ngram_max:
        raise ConfigError(f"end_model.ngram_min = {em.ngram_min} is above end_model.ngram_max = {em.ngram_max}")


def _coerce(where: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of the field's default."""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise ConfigError(f"{where} must be {type(default).__name__}, got {value!r}")
    return value


def _build(cls: type, where: str, values: dict[str, Any]):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where}]: {', '.join(unknown)}")
    defaults = cls() if cls is not ProjectConfig else None
    kwargs = {}
    for key, value in values.items():
        default = getattr(defaults, key) if defaults is not None else None
        kwargs[key] = _coerce(f"{where}.{key}", value, default) if default is not None else value
        choices = _CHOICES.get((where, key))
        if choices and kwargs[key] not in choices:
            raise ConfigError(f"{where}.{key} = {value!r}: expected one of {', '.join(map(repr, choices))}")
        _check_range(f"{where}.{key}", kwargs[key], (where, key))
    return cls(**kwargs)


def config_from_record(data: dict[str, Any]) -> ProjectConfig:
    """Rebuild a config from ``ProjectConfig.to_dict()`` (as a run records it).

    Sections a record lacks (older runs) take their defaults, so a run keeps
    reproducing after new settings are added.
    """
    data = dict(data)
    sections = {name: _build(cls, name, dict(data.pop(name, {}))) for name, cls in _SECTIONS.items()}
    known = {f.name for f in dataclasses.fields(ProjectConfig)} - set(_SECTIONS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"recorded config has unknown setting(s): {', '.join(unknown)}")
    _check_range("project.seed", data.get("seed", 0), ("project", "seed"))
    config = ProjectConfig(**{**data, "classes": tuple(data["classes"])}, **sections)
    _check_relations(config)
    return config


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` with a TOML value (bare words are taken as strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    section, name = key.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, name, value


def project_config_from_dict(data: dict[str, Any], *, base_dir: str | Path = ".") -> ProjectConfig:
    data = dict(data)
    project = data.pop("project", {})
    if not isinstance(project, dict):
        raise ConfigError("[project] must be a table")
    project = dict(project)
    sections = {}
    for name, cls in _SECTIONS.items():
        section = data.pop(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table")
        if name == "dataset" and isinstance(section.get("weak_label_names"), str):
            section = {**section, "weak_label_names": [section["weak_label_names"]]}
        sections[name] = _build(cls, name, section)
    if data:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(data))}")
    for required in ("name", "classes"):
        if required not in project:
            raise ConfigError(f"[project] needs {required!r}")
    classes = project.pop("classes")
    # a spans project's classes are its entity types: one is enough (O is implicit)
    fewest = 1 if project.get("task") == "spans" else 2
    if not isinstance(classes, list) or len(classes) < fewest or not all(isinstance(c, str) for c in classes):
        what = "at least one entity type" if fewest == 1 else "at least two class names"
        raise ConfigError(f"project.classes must list {what}, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"project.classes has duplicates: {classes!r}")
    known = {"name": str, "seed": int, "store": str, "artifacts": str, "metric": str, "task": str}
    for key, value in project.items():
        if key not in known:
            raise ConfigError(f"unknown setting in [project]: {key}")
        if not isinstance(value, known[key]) or isinstance(value, bool):
            raise ConfigError(f"project.{key} must be {known[key].__name__}, got {value!r}")
        _check_range(f"project.{key}", value, ("project", key))
    store = project.get("store", "")
    if "://" in store and not is_postgres(store):
        raise ConfigError(f"project.store = {store.split('://')[0]}://...: expected a SQLite file path or a"
                          " postgresql:// URL")
    if project.get("task", "single_label") not in TASKS:
        raise ConfigError(f"project.task = {project['task']!r}: expected one of {', '.join(map(repr, TASKS))}")
    check_metric(project.get("metric", "accuracy"), tuple(classes), project.get("task", "single_label"))
    if sections["promotion"].metric in ("micro_f1", "samples_f1") and project.get("task") != "multi_label":
        raise ConfigError(f"promotion.metric = {sections['promotion'].metric!r} scores label sets: a single-label "
                          "project's gate takes 'accuracy' or 'macro_f1'")
    unknown = sorted(set(sections["end_model"].candidates) - set(END_MODEL_CANDIDATES))
    if unknown or not sections["end_model"].candidates:
        raise ConfigError(f"end_model.candidates {list(sections['end_model'].candidates)}: each must be one of "
                          f"{', '.join(map(repr, END_MODEL_CANDIDATES))} (at least one)")
    config = ProjectConfig(classes=tuple(classes), base_dir=str(Path(base_dir).resolve()), **project, **sections)
    _check_relations(config)
    return config


def check_metric(metric: str, classes: tuple[str, ...], task: str = "single_label") -> str:
    """``project.metric``: "accuracy", "macro_f1" or "f1:<one of classes>"; a multi-label
    project: "micro_f1", "macro_f1" or "samples_f1" too ("accuracy" reads as macro-F1
    there). Raises ConfigError."""
    kind, _, positive = metric.partition(":")
    if task == "multi_label":
        if metric in ("accuracy", "micro_f1", "macro_f1", "samples_f1"):
            return metric
        raise ConfigError(f"project.metric = {metric!r}: a multi-label project takes 'micro_f1', 'macro_f1' or "
                          "'samples_f1'")
    if metric in ("accuracy", "macro_f1") or (kind == "f1" and positive in classes):
        return metric
    raise ConfigError(f"project.metric = {metric!r}: expected 'accuracy', 'macro_f1' or 'f1:<class>' "
                      f"with a class of {list(classes)}")


def load_config(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> ProjectConfig:
    """Read a project TOML file and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        for text in overrides:
            section, key, value = parse_override(text)
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {text!r}: {section} is not a [section] in the file")
            table[key] = value
        return project_config_from_dict(data, base_dir=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
